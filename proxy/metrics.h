/*
 * metrics.h — the Prometheus endpoint (metrics.c): GET /metrics on
 * metrics_listen, served by worker 0's event loop.
 */
#ifndef PGSHARD_PROXY_METRICS_H
#define PGSHARD_PROXY_METRICS_H

#include "proxy/proxy.h"

/*
 * On worker 0, before its loop runs: listen on the config's metrics_listen.
 * 0 when it is off or listening; -1 (logged) when the address cannot be bound.
 */
int metrics_start(worker_t *w);
/* On worker 0, after a reload: listen where the new config says (a failure is logged and
 * the old address kept). */
void metrics_reload(worker_t *w);
/* After its loop has ended. */
void metrics_stop(worker_t *w);

#endif
