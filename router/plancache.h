/*
 * plancache.h — route_statement without parsing the same text again.
 *
 * The proxy routes every statement it is sent, and most texts it has seen
 * before: a prepared statement is the same text at each Bind, and simple
 * queries often differ only in their literals (WHERE id = 7, WHERE id = 8).
 * A full libpg_query parse costs far more than the analysis after it, so
 * the cache keeps parsed statements (route_parsed_t) and analyses them
 * again with each call's parameters.
 *
 * Entries are keyed by the masked text: numbers and plain '...' strings
 * replaced by parameters numbered after the statement's own ($n+1, ...),
 * whose values are passed to the analysis as text parameters. So
 * WHERE id = 7 and WHERE id = 8 share one entry, and each still routes to
 * its own shard. A literal is masked only where a parameter can stand for
 * it (not in date '...', varchar(10), SET, COPY, DDL, ...), and the first
 * time a masked text is seen its tree is compared with the original's: it
 * must be the same tree with the literals' constants where the masked one
 * has their parameters, or the text is remembered as uncacheable and every
 * call with it is routed by route_statement. The plan is always the one
 * route_statement would make for the original text, reason and error
 * included.
 *
 * Pure and single-threaded: the proxy keeps one cache per worker thread,
 * and builds a new one when the config changes. Memory is bounded by the
 * capacity: at most `capacity` entries, together at most capacity times
 * ROUTE_CACHE_ENTRY_BYTES, none over ROUTE_CACHE_MAX_ENTRY_BYTES, and no
 * text over ROUTE_CACHE_MAX_TEXT is cached.
 *
 * Each entry also keeps its last plan with the literal values and
 * parameters that made it (under 4 kB of them), so that the same call
 * again costs a comparison, not an analysis; and, for a statement on
 * several shards, its gather plan (route_gather_cached).
 */
#ifndef PGSHARD_ROUTER_PLANCACHE_H
#define PGSHARD_ROUTER_PLANCACHE_H

#include <stdint.h>

#include "router/gather.h"
#include "router/route.h"

#define ROUTE_CACHE_MAX_TEXT        (16 * 1024)
#define ROUTE_CACHE_ENTRY_BYTES     (16 * 1024)
#define ROUTE_CACHE_MAX_ENTRY_BYTES (128 * 1024)

typedef struct route_cache route_cache_t;

/* An LRU cache of `capacity` entries (at least 1); NULL when memory runs out. */
route_cache_t *route_cache_new(const route_ctx_t *ctx, int capacity);
void route_cache_free(route_cache_t *c);

/*
 * Plans reused from a generic plan get their reason (for people, as
 * --route prints it; the proxy never reads it) only when asked: true by
 * default; the proxy turns it off, and such a plan's reason is then "".
 */
void route_cache_set_reasons(route_cache_t *c, bool on);

/* Same contract and same result as route_statement, cached. */
int route_statement_cached(route_cache_t *c, const char *sql, const route_param_t *params,
                           int n_params, route_plan_t *out);

/*
 * The gather plan of a statement on several shards (route_gather's
 * contract and answer, same parameters), made from the parse the cache
 * keeps for it: a statement is parsed once, by the cache, and its gather
 * plan is made once for each set of literal values and parameters and
 * kept with the entry, next to its plan. The proxy routes a statement with
 * route_statement_cached and, when the plan says ROUTE_MERGE_GATHER, asks
 * for its gather plan with the same text and parameters; a text that is
 * not kept (too long, uncacheable, or evicted in between) is parsed again,
 * once, as route_gather does. 0 with *out a shared plan (gather_plan_unref
 * it when done; it outlives the cache); -1 as route_gather.
 */
int route_gather_cached(route_cache_t *c, const char *sql, const route_param_t *params,
                        int n_params, gather_plan_t **out, char sqlstate[6], char *err,
                        size_t errlen);

/*
 * Every call counts once: a hit used a kept parse; a miss parsed and kept
 * it; uncacheable was routed by route_statement (too long, remembered as
 * uncacheable, or too big to keep). Of the hits, reused found the plan of
 * the same literal values and parameters kept, and did not analyse the
 * parse again. gathers_made counts gather plans made, gathers_reused those
 * that were kept from an earlier call.
 */
typedef struct route_cache_stats {
	uint64_t hits, misses, uncacheable;
	uint64_t reused;
	uint64_t generic; /* hits whose plan came from the entry's generic plan */
	uint64_t gathers_made, gathers_reused;
} route_cache_stats_t;

void route_cache_stats(const route_cache_t *c, route_cache_stats_t *out);

#endif
