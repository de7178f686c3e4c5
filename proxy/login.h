/*
 * login.h — a client's way in (login.c): startup, authentication, the
 * parameters to report, the login timeout.
 */
#ifndef PGSHARD_PROXY_LOGIN_H
#define PGSHARD_PROXY_LOGIN_H

#include "proxy/proxy.h"

void login_read(client_t *c);   /* startup and password messages */
void login_finish(client_t *c); /* the parameters are known: ReadyForQuery */
/* The pool could not open a server for the waiting client c (it is out of p->waiting). */
void login_connect_failed(client_t *c, pool_t *p, const char *why, const uint8_t *error_body,
                          size_t error_len);
/* Close the clients that have not logged in within login_timeout. */
void login_timeouts(worker_t *w, time_t now);
void login_params_free(worker_t *w); /* at shutdown and reload */

#endif
