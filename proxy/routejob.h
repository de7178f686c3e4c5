/*
 * routejob.h — long statements routed off the workers' loops (routejob.c).
 */
#ifndef PGSHARD_PROXY_ROUTEJOB_H
#define PGSHARD_PROXY_ROUTEJOB_H

#include "proxy/proxy.h"

/* Statements at least this long are routed by the routing thread. */
#define ROUTEJOB_MIN_LEN (64 * 1024)

/* Route c's Query off the loop; c->plan is set and c resumed when done. 0, or -1. */
int routejob_start(client_t *c, const char *sql, size_t len);
void routejob_forget(client_t *c); /* c closes: its plan, when it comes, is dropped */
void routejob_done_cb(evutil_socket_t fd, short what, void *arg);
void routejob_worker_free(worker_t *w);

#endif
