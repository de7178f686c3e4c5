/*
 * plancache_expect.h — what test_plancache.c and test_plancache_reuse.c
 * share: a statement routed through the cache and by route_statement and
 * the two plans compared, the cache's counters, literals changed in a text.
 * The config is route_config.h's.
 *
 * The functions are static inline: each program uses only some of them.
 */
#ifndef PGSHARD_ROUTER_TESTS_PLANCACHE_EXPECT_H
#define PGSHARD_ROUTER_TESTS_PLANCACHE_EXPECT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/plancache.h"
#include "router/route.h"

#include "router/tests/route_config.h"

static inline void expect_same_plan(const char *sql, const route_plan_t *a, const route_plan_t *b)
{
	const char *what = NULL;

	if (a->kind != b->kind)
		what = "kind";
	else if (memcmp(&a->shards, &b->shards, sizeof a->shards) != 0)
		what = "shards";
	else if (a->is_write != b->is_write || a->is_ddl != b->is_ddl ||
	         a->split_insert != b->split_insert || a->params_missing != b->params_missing)
		what = "flags";
	else if (a->map != b->map)
		what = "map";
	else if (a->key_column != b->key_column)
		what = "key_column";
	else if (a->merge != b->merge)
		what = "merge";
	else if (a->txn != b->txn || a->has_txn_control != b->has_txn_control)
		what = "txn";
	else if (strcmp(a->sqlstate, b->sqlstate) != 0)
		what = "sqlstate";
	else if (strcmp(a->error, b->error) != 0)
		what = "error";
	else if (strcmp(a->reason, b->reason) != 0)
		what = "reason";
	if (what != NULL)
		fail_msg(
		    "\"%s\": the cached plan differs in its %s:\n  route_statement: %s %s | %s\n"
		    "  cached:          %s %s | %s",
		    sql, what, route_kind_name(a->kind), a->reason, a->error,
		    route_kind_name(b->kind), b->reason, b->error);
}

/* Route sql both ways, compare, and return the cached plan. */
static inline route_plan_t both(route_cache_t *c, const char *sql, const route_param_t *params,
                                int n)
{
	route_plan_t a, b;

	assert_int_equal(route_statement(&ctx, sql, params, n, &a), 0);
	assert_int_equal(route_statement_cached(c, sql, params, n, &b), 0);
	expect_same_plan(sql, &a, &b);
	return b;
}

static inline route_cache_stats_t stats(const route_cache_t *c)
{
	route_cache_stats_t s;

	route_cache_stats(c, &s);
	return s;
}

#define EXPECT_STATS(c, h, m, u)                                                                   \
	do {                                                                                       \
		route_cache_stats_t s_ = stats(c);                                                 \
		if (s_.hits != (h) || s_.misses != (m) || s_.uncacheable != (u))                   \
			fail_msg("stats: %llu hits, %llu misses, %llu uncacheable; expected %d, "  \
			         "%d, %d",                                                         \
			         (unsigned long long)s_.hits, (unsigned long long)s_.misses,       \
			         (unsigned long long)s_.uncacheable, (h), (m), (u));               \
	} while (0)

/*
 * sql with its literals changed: each integer n becomes n * 7 + k + 1, and
 * k + 1 letters are added to each plain string; $n and comments stay.
 */
static inline char *variant(const char *sql, int k)
{
	size_t len = strlen(sql), pos = 0, copied = 0, o = 0;
	char *out = malloc(len * 4 + 64);
	route_token_t t;

	assert_non_null(out);
	for (;;) {
		pos = route_next_token(sql, len, pos, &t);
		if (t.kind == ROUTE_TOK_END)
			break;
		if ((t.kind == ROUTE_TOK_NUMBER && t.integer && t.len < 9) ||
		    (t.kind == ROUTE_TOK_STRING && !t.unterminated)) {
			memcpy(out + o, sql + copied, t.start - copied);
			o += t.start - copied;
			if (t.kind == ROUTE_TOK_NUMBER) {
				long v = strtol(sql + t.start, NULL, 10);

				o += (size_t)sprintf(out + o, "%ld", v * 7 + k + 1);
				copied = t.start + t.len;
			} else {
				memcpy(out + o, sql + t.start, t.len - 1);
				o += t.len - 1;
				for (int i = 0; i <= k; i++)
					out[o++] = (char)('a' + i);
				copied = t.start + t.len - 1; /* the closing quote */
			}
		}
	}
	memcpy(out + o, sql + copied, len - copied);
	out[o + len - copied] = '\0';
	return out;
}

static inline route_param_t text_param(const char *s)
{
	route_param_t p = {.data = (const uint8_t *)s, .len = (int32_t)strlen(s), .format = 0};

	return p;
}

#endif
