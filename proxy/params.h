/*
 * params.h — session parameters that follow a client across server
 * connections (params.c): startup parameters and session SETs, replayed
 * with one query. The lists themselves are in proxy.h.
 */
#ifndef PGSHARD_PROXY_PARAMS_H
#define PGSHARD_PROXY_PARAMS_H

#include "proxy/proxy.h"

void params_free(param_list_t *l);
int params_set(param_list_t *l, const char *name, const char *stmt);
void params_remove(param_list_t *l, const char *name);
int params_copy(param_list_t *dst, const param_list_t *src);
/* Turn startup-packet parameters (and `options` -c switches) into SET statements.
 * On an unusable parameter, returns -1 with a message in err. */
int params_from_startup(param_list_t *l, const wire_startup_t *s, char *err, size_t errlen);
/* Hash of startup + session lists, to tell whether a server already has them. */
uint64_t params_hash(const param_list_t *startup, const param_list_t *session);
/* "RESET ALL; <startup sets>; <session sets>" — what makes a server match a client. */
char *params_sync_sql(const param_list_t *startup, const param_list_t *session);

#endif
