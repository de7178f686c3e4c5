/*
 * cancel.h — query cancellation (cancel.c): the sessions' made-up keys,
 * and CancelRequests forwarded to the backends running their queries.
 */
#ifndef PGSHARD_PROXY_CANCEL_H
#define PGSHARD_PROXY_CANCEL_H

#include "proxy/proxy.h"

void cancel_register(client_t *c);
void cancel_unregister(client_t *c);
void cancel_forward(worker_t *w, int32_t pid, int32_t key);
/* Ask s's backend to cancel what it runs (its client went away mid-statement). */
void cancel_server(worker_t *w, const server_t *s);
int cancel_init(int n_workers); /* before the workers start; cancel_free after they stop */
void cancel_free(void);
int cancel_worker_start(worker_t *w); /* its inbox for requests other workers accept */
void cancel_worker_stop(worker_t *w);

#endif
