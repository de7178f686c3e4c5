/*
 * route_expect.h — what the test_route_*.c programs share: routing a
 * statement with the checks every plan must pass, and the expectations they
 * assert (a plan's kind, its shards, the keys it was routed by, a refusal and
 * its message, a reason).
 *
 * Which shard a key lands on is router/shardmap.c's business (a data format
 * with its own known-vector tests), so these tests never hard-code it: the
 * expected shards are computed with shard_map_lookup on the same maps the
 * router uses. What the programs pin is which keys a statement is routed by,
 * and what is refused.
 *
 * The config (route_config.h): shards 0-2, default shard 1 (so that "the
 * default shard" is never confused with "shard 0"), a hash map on all three
 * shards, a range map, a range map with a gap, and a text-keyed hash map on
 * shards 1 and 2 only (so that "all shards of the map" differs from "every
 * shard").
 *
 * The functions are static inline: each program uses only some of them.
 */
#ifndef PGSHARD_ROUTER_TESTS_ROUTE_EXPECT_H
#define PGSHARD_ROUTER_TESTS_ROUTE_EXPECT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/route.h"

#include "router/tests/route_config.h"

/*
 * What every plan must hold, whatever the statement: a SQLSTATE exactly on
 * refusals, a merge exactly when several shards answer (a plan made
 * without the parameters it needs may leave it to the routing with them;
 * a join across shards has none: its final statement is one shard's answer),
 * and steps: a refusal is its one REFUSE step, transaction control is TXN
 * then the step that runs it, anything else one step that runs it.
 */
static inline void check_plan_invariants(const char *sql, const route_plan_t *p)
{
	int n = shard_set_count(&p->shards);

	if (p->kind == ROUTE_REFUSE && strcmp(p->sqlstate, "0A000") != 0 &&
	    strcmp(p->sqlstate, "54001") != 0)
		fail_msg("\"%s\": refused with SQLSTATE \"%s\"", sql, p->sqlstate);
	if (p->kind != ROUTE_REFUSE && p->sqlstate[0] != '\0')
		fail_msg("\"%s\": not refused, but SQLSTATE \"%s\"", sql, p->sqlstate);
	if (n <= 1 && p->merge != ROUTE_MERGE_NONE)
		fail_msg("\"%s\": %d shard(s) with merge %d", sql, n, (int)p->merge);
	if (n > 1 && p->merge == ROUTE_MERGE_NONE && !p->params_missing && !p->join)
		fail_msg("\"%s\": %d shards without a merge (reason: %s)", sql, n, p->reason);
	if (p->txn != ROUTE_TXN_NONE && !p->has_txn_control)
		fail_msg("\"%s\": txn %d without has_txn_control", sql, (int)p->txn);
	if (p->n_steps < 1 || p->n_steps > ROUTE_MAX_STEPS)
		fail_msg("\"%s\": %d steps", sql, p->n_steps);
	if ((p->steps[0].kind == ROUTE_STEP_REFUSE) != (p->kind == ROUTE_REFUSE))
		fail_msg("\"%s\": kind %s with a first step %s", sql, route_kind_name(p->kind),
		         route_step_kind_name(p->steps[0].kind));
	if (p->kind != ROUTE_REFUSE &&
	    (p->steps[0].kind == ROUTE_STEP_TXN) != (p->txn != ROUTE_TXN_NONE))
		fail_msg("\"%s\": txn %d with a first step %s", sql, (int)p->txn,
		         route_step_kind_name(p->steps[0].kind));
	if (p->n_steps != (p->steps[0].kind == ROUTE_STEP_TXN ? 2 : 1))
		fail_msg("\"%s\": %d steps after a %s step", sql, p->n_steps,
		         route_step_kind_name(p->steps[0].kind));
}

static inline route_plan_t route_params(const char *sql, const route_param_t *params, int n)
{
	route_plan_t p;

	assert_int_equal(route_statement(&ctx, sql, params, n, &p), 0);
	check_plan_invariants(sql, &p);
	return p;
}

static inline route_plan_t route(const char *sql)
{
	return route_params(sql, NULL, 0);
}

static inline const shard_map_t *map_named(const char *name)
{
	for (int i = 0; i < cfg->n_maps; i++)
		if (strcmp(cfg->maps[i].name, name) == 0)
			return &ctx.maps[i];
	fail_msg("no map %s", name);
	return NULL;
}

/* Where the router's own maps put a bigint key: tests compute the shard they expect
 * with it rather than writing shard numbers down. */
static inline int shard_of(const char *map, int64_t v)
{
	shard_key_t k;

	assert_int_equal(shard_key_from_int(v, &k), 0);
	return shard_map_lookup(map_named(map), &k);
}

static inline int shard_of_text(const char *map, const char *v)
{
	shard_key_t k;

	assert_int_equal(shard_key_from_text(map_named(map)->cfg->key, v, strlen(v), &k), 0);
	return shard_map_lookup(map_named(map), &k);
}

static inline void set_print(char *buf, size_t n, const shard_set_t *s)
{
	size_t len = 0;

	buf[0] = '\0';
	for (int i = 0; i < SHARD_MAX && len + 8 < n; i++)
		if (shard_set_has(s, i))
			len += (size_t)snprintf(buf + len, n - len, "%s%d", len ? "," : "", i);
}

static inline void expect_kind(const char *sql, const route_plan_t *p, route_kind_t kind)
{
	if (p->kind != kind)
		fail_msg("\"%s\": expected %s, got %s (reason: %s; error: %s)", sql,
		         route_kind_name(kind), route_kind_name(p->kind), p->reason, p->error);
}

static inline void expect_set(const char *sql, const route_plan_t *p, route_kind_t kind,
                              const shard_set_t *want)
{
	char a[128], b[128];

	expect_kind(sql, p, kind);
	if (memcmp(&p->shards, want, sizeof *want) != 0) {
		set_print(a, sizeof a, want);
		set_print(b, sizeof b, &p->shards);
		fail_msg("\"%s\": expected shards {%s}, got {%s} (reason: %s)", sql, a, b,
		         p->reason);
	}
}

/* ROUTE_SHARDS on exactly the shards of these keys of `map`. */
static inline void expect_keys(const char *sql, const route_plan_t *p, const char *map,
                               const int64_t *keys, size_t n)
{
	shard_set_t want;

	shard_set_clear(&want);
	for (size_t i = 0; i < n; i++)
		shard_set_add(&want, shard_of(map, keys[i]));
	expect_set(sql, p, ROUTE_SHARDS, &want);
	if (p->map == NULL || strcmp(p->map, map) != 0)
		fail_msg("\"%s\": expected map %s, got %s", sql, map, p->map ? p->map : "(none)");
}

#define KEYS(...)                                                                                  \
	(const int64_t[]){__VA_ARGS__}, sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t)

/* Route sql and expect the shards of the given keys. */
#define ROUTES_TO(sql, map, ...)                                                                   \
	do {                                                                                       \
		route_plan_t p_ = route(sql);                                                      \
		expect_keys((sql), &p_, (map), KEYS(__VA_ARGS__));                                 \
	} while (0)

static inline void expect_map_all(const char *sql, const route_plan_t *p, const char *map)
{
	expect_set(sql, p, ROUTE_SHARDS, &map_named(map)->all);
}

#define ROUTES_TO_ALL_OF(sql, map)                                                                 \
	do {                                                                                       \
		route_plan_t p_ = route(sql);                                                      \
		expect_map_all((sql), &p_, (map));                                                 \
	} while (0)

static inline void expect_one(const char *sql, const route_plan_t *p, route_kind_t kind, int shard)
{
	shard_set_t want;

	shard_set_clear(&want);
	shard_set_add(&want, shard);
	expect_set(sql, p, kind, &want);
}

static inline void expect_every_shard(const char *sql, const route_plan_t *p)
{
	shard_set_t want;

	shard_set_clear(&want);
	for (int i = 0; i < cfg->n_shards; i++)
		shard_set_add(&want, i);
	expect_set(sql, p, ROUTE_ALL, &want);
}

static inline void expect_default(const char *sql)
{
	route_plan_t p = route(sql);

	expect_one(sql, &p, ROUTE_DEFAULT, cfg->default_shard);
}

/* Refused, with every needle in the error message. */
static inline void expect_refused_with(const char *sql, const route_plan_t *p,
                                       const char *const *needles)
{
	expect_kind(sql, p, ROUTE_REFUSE);
	assert_int_equal(shard_set_count(&p->shards), 0);
	assert_string_equal(p->sqlstate, "0A000");
	assert_int_equal(p->merge, ROUTE_MERGE_NONE);
	for (int i = 0; needles[i] != NULL; i++)
		if (strstr(p->error, needles[i]) == NULL)
			fail_msg("\"%s\": error \"%s\" does not contain \"%s\"", sql, p->error,
			         needles[i]);
}

#define REFUSED(sql, ...)                                                                          \
	do {                                                                                       \
		route_plan_t p_ = route(sql);                                                      \
		expect_refused_with((sql), &p_, (const char *const[]){__VA_ARGS__, NULL});         \
	} while (0)

/*
 * A join across shards (router/join_plan.h): one JOIN step on every shard
 * of both tables' maps, the reason naming both tables.
 */
static inline void expect_join_step(const char *sql, const char *a, const char *b)
{
	route_plan_t p = route(sql);

	if (!p.join || p.n_steps != 1 || p.steps[0].kind != ROUTE_STEP_JOIN)
		fail_msg("\"%s\": expected a join step, got %s (%s)", sql,
		         route_step_kind_name(p.steps[0].kind), p.reason);
	if (strstr(p.reason, a) == NULL || strstr(p.reason, b) == NULL)
		fail_msg("\"%s\": reason \"%s\" does not name %s and %s", sql, p.reason, a, b);
}

/*
 * A SELECT the analysis refuses (its message in needles) that runs as a join
 * across shards with every sharded table fetched whole (router/join_plan.h:
 * CTEs and subqueries in FROM); EXPLAIN ANALYZE of it, which cannot run so, keeps the
 * analysis's refusal and message.
 */
static inline void expect_whole_and_explain_refused(const char *sql, const char *const *needles)
{
	route_plan_t p = route(sql);
	char explain[1024];

	if (!p.join || p.n_steps != 1 || p.steps[0].kind != ROUTE_STEP_JOIN ||
	    strstr(p.reason, "fetched whole") == NULL)
		fail_msg("\"%s\": expected a join with tables fetched whole, got %s (%s)", sql,
		         route_step_kind_name(p.steps[0].kind), p.reason);
	snprintf(explain, sizeof explain, "EXPLAIN ANALYZE %s", sql);
	p = route(explain);
	expect_refused_with(explain, &p, needles);
}

#define WHOLE_BUT_EXPLAIN_REFUSED(sql, ...)                                                        \
	expect_whole_and_explain_refused((sql), (const char *const[]){__VA_ARGS__, NULL})

/* A string that runs statement by statement (plan.batch, one BATCH step). */
static inline void expect_batch(const char *sql)
{
	route_plan_t p = route(sql);

	if (!p.batch || p.n_steps != 1 || p.steps[0].kind != ROUTE_STEP_BATCH ||
	    route_plan_commit(&p) != ROUTE_COMMIT_NONE)
		fail_msg("\"%s\": expected a batch, got %s (reason: %s; error: %s)", sql,
		         route_kind_name(p.kind), p.reason, p.error);
}

static inline void expect_reason(const char *sql, const route_plan_t *p, const char *needle)
{
	if (strstr(p->reason, needle) == NULL)
		fail_msg("\"%s\": reason \"%s\" does not contain \"%s\"", sql, p->reason, needle);
}

/* A bigint key of `map` on another shard than a's. */
static inline int64_t key_elsewhere(const char *map, int64_t a)
{
	for (int64_t b = a + 1; b < a + 100000; b++)
		if (shard_of(map, b) != shard_of(map, a))
			return b;
	fail_msg("no key on another shard than %lld", (long long)a);
	return -1;
}

/* Another bigint key of `map` on the same shard as a's. */
static inline int64_t key_beside(const char *map, int64_t a)
{
	for (int64_t b = a + 1; b < a + 100000; b++)
		if (shard_of(map, b) == shard_of(map, a))
			return b;
	fail_msg("no other key on the shard of %lld", (long long)a);
	return -1;
}

static inline route_param_t text_param(const char *s)
{
	route_param_t p = {.data = (const uint8_t *)s, .len = (int32_t)strlen(s), .format = 0};

	return p;
}

static inline void put_be(uint8_t *out, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		out[i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
}

/* Route sql and expect its answers merged as m (never a refusal). */
#define MERGES(sql, m)                                                                             \
	do {                                                                                       \
		route_plan_t p_ = route(sql);                                                      \
		if (p_.kind == ROUTE_REFUSE || p_.merge != (m))                                    \
			fail_msg("\"%s\": merge %d, expected %d (%s)", (sql), (int)p_.merge,       \
			         (int)(m), p_.reason);                                             \
	} while (0)

#endif
