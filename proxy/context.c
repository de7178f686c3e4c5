/*
 * context.c — what every layer of a worker asks of it: the config in force
 * (shared by the workers, freed by its last holder), the routing of a
 * statement with the worker's plan cache, and a reaper pass after the
 * current callback. worker.c, the top of a worker (its thread, listener,
 * janitor and reaper), calls into the sessions; this file calls nothing
 * above it, so that the layers can ask for these without a circle.
 */
#include "proxy/context.h"

#include "proxy/colcache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "proxy/log.h"
#include "proxy/nodes.h"
#include "router/plancache.h"
#include "router/route.h"

cfg_ref_t *context_cfg_ref_new(cfg_t *cfg)
{
	cfg_ref_t *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	r->nodes = nodes_table_new(cfg);
	if (r->nodes == NULL) {
		free(r);
		return NULL;
	}
	r->cfg = cfg;
	atomic_init(&r->refs, 1);
	return r;
}

cfg_ref_t *context_cfg_ref_get(cfg_ref_t *r)
{
	atomic_fetch_add(&r->refs, 1);
	return r;
}

void context_cfg_ref_put(cfg_ref_t *r)
{
	if (r != NULL && atomic_fetch_sub(&r->refs, 1) == 1) {
		nodes_table_put(r->nodes);
		cfg_free(r->cfg);
		free(r);
	}
}

const cfg_t *context_cfg(const worker_t *w)
{
	return w->cfg->cfg;
}

void context_route_drop(worker_t *w)
{
	if (w->plans != NULL)
		route_cache_free(w->plans);
	w->plans = NULL;
	if (w->have_route)
		route_ctx_free(&w->route);
	w->have_route = false;
	if (w->route_cfg != NULL)
		context_cfg_ref_put(w->route_cfg);
	w->route_cfg = NULL;
}

/* The maps and the plan cache belong to one config: rebuilt after a reload. */
static int route_refresh(worker_t *w)
{
	char err[256];

	if (w->route_cfg == w->cfg && w->plans != NULL)
		return 0;
	context_route_drop(w);
	if (route_ctx_init(&w->route, w->cfg->cfg, err, sizeof(err)) < 0) {
		log_error("worker %d: cannot build the shard maps: %s", w->index, err);
		return -1;
	}
	w->have_route = true;
	w->plans = route_cache_new(&w->route, 1024);
	if (w->plans != NULL)
		route_cache_set_reasons(w->plans, false); /* no one reads them here */
	if (w->plans == NULL) {
		context_route_drop(w);
		return -1;
	}
	w->route_cfg = context_cfg_ref_get(w->cfg);
	return 0;
}

int context_route(worker_t *w, const char *sql, const route_param_t *params, int n_params,
                  route_plan_t *out)
{
	size_t len = strlen(sql), max = context_cfg(w)->max_route_size;

	if (len > max) {
		/* parsing it would take too much memory and time: refused unread */
		memset(out, 0, sizeof(*out));
		route_plan_refuse(out, "54000",
		                  "statement of %zu bytes is over max_route_size (%zu bytes), the "
		                  "longest pgshard parses to route; split it, load rows with COPY, "
		                  "or raise max_route_size",
		                  len, max);
		return 0;
	}
	if (route_refresh(w) < 0 ||
	    route_statement_cached(w->plans, sql, params, n_params, out) < 0)
		return -1;
	if (out->is_ddl)
		colcache_ddl(); /* tables' column order may change */
	return 0;
}

void context_reap_later(worker_t *w)
{
	if (w->reap_ev != NULL)
		event_active(w->reap_ev, 0, 0);
}
