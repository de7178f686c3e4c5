/*
 * prepare.h — protocol-level prepared statements under transaction pooling
 * (prepare.c): interned per worker, mapped per client, remembered per
 * server connection.
 */
#ifndef PGSHARD_PROXY_PREPARE_H
#define PGSHARD_PROXY_PREPARE_H

#include "proxy/proxy.h"

ps_entry_t *ps_intern(worker_t *w, const wire_parse_msg_t *m);
void ps_unref(worker_t *w, ps_entry_t *e);
int ps_client_put(client_t *c, const char *name, ps_entry_t *e);
ps_entry_t *ps_client_get(client_t *c, const char *name);
int ps_client_del(client_t *c, const char *name);
void ps_client_free(client_t *c);
bool ps_server_has(server_t *s, ps_entry_t *e);
int ps_server_add(server_t *s, ps_entry_t *e);
void ps_server_del(server_t *s, ps_entry_t *e);
void ps_server_free(server_t *s);
void ps_registry_free(worker_t *w);
/* Append a Parse message for e under its server-side name. */
void ps_put_parse(wire_buf_t *b, const ps_entry_t *e);

#endif
