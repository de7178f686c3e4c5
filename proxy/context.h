/*
 * context.h — what every layer of a worker asks of it (context.c): the
 * config in force, routing with the worker's plan cache, and a reaper pass
 * after the current callback.
 */
#ifndef PGSHARD_PROXY_CONTEXT_H
#define PGSHARD_PROXY_CONTEXT_H

#include "proxy/proxy.h"

cfg_ref_t *context_cfg_ref_new(cfg_t *cfg);
cfg_ref_t *context_cfg_ref_get(cfg_ref_t *r);
void context_cfg_ref_put(cfg_ref_t *r);

const cfg_t *context_cfg(const worker_t *w);
/* Route a statement with the worker's plan cache (refreshed when the config changes). */
int context_route(worker_t *w, const char *sql, const route_param_t *params, int n_params,
                  route_plan_t *out);
void context_route_drop(worker_t *w); /* the maps and plan cache of the old config */
/* Free the closed clients and servers once the current callback has returned. */
void context_reap_later(worker_t *w);

#endif
