/*
 * worker.h — the workers (worker.c): one event loop per thread,
 * shared-nothing.
 */
#ifndef PGSHARD_PROXY_WORKER_H
#define PGSHARD_PROXY_WORKER_H

#include "proxy/proxy.h"

int worker_start(worker_t *w, int index, cfg_ref_t *cfg);
void worker_reap_now(worker_t *w); /* at shutdown, when no callback is on the stack */
void worker_stop(worker_t *w);
void worker_join(worker_t *w);
void worker_set_config(worker_t *w, cfg_ref_t *cfg);

extern int g_n_workers;
extern worker_t *g_workers;

#endif
