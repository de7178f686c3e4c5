/*
 * test_route_hint.c — routing comments (router/route.h), pinned:
 * "pgshard: shard=N" forces the shard but never puts rows where their key
 * does not belong, "pgshard: key=V" routes as key = V, "pgshard: all" goes
 * to every shard.
 *
 * The helpers, the config, and why no test hard-codes a shard: route_expect.h.
 */
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
#include "router/tests/route_expect.h"

/* ---- overrides ---- */

static void test_override_shard_forces_the_shard(void **state)
{
	const char *sql = "/* pgshard: shard=2 */ SELECT * FROM users u JOIN sites s ON true";
	route_plan_t p = route(sql);

	(void)state;
	expect_one(sql, &p, ROUTE_SHARDS, 2);
	expect_reason(sql, &p, "pgshard: shard=2");
	sql = "-- note\n/* something else */ /* pgshard: shard=1 */ SELECT 1";
	p = route(sql);
	expect_one(sql, &p, ROUTE_SHARDS, 1);
	sql = "/* pgshard: shard=2 */ SELEC oops";
	p = route(sql);
	expect_one(sql, &p, ROUTE_SHARDS, 2);
}

/* A comment picks where a statement runs, never where a row whose key is known lives. */
static void test_override_never_puts_rows_where_their_key_does_not_belong(void **state)
{
	int64_t a = 1, beside = key_beside("users", 1), other = key_elsewhere("users", 1);
	int home = shard_of("users", a), away = shard_of("users", other);
	char sql[256], arg[32];
	route_plan_t p;
	route_param_t prm;

	(void)state;
	snprintf(sql, sizeof sql,
	         "  /*pgshard:shard = %d*/ INSERT INTO users (id) VALUES (%lld), (%lld)", home,
	         (long long)a, (long long)beside);
	p = route(sql);
	expect_one(sql, &p, ROUTE_SHARDS, home);
	assert_false(p.split_insert);
	assert_true(p.is_write);
	snprintf(sql, sizeof sql, "/* pgshard: shard=%d */ INSERT INTO users (id) VALUES (%lld)",
	         away, (long long)a);
	REFUSED(sql, "would put rows where their shard key does not belong", "remove the comment");
	snprintf(sql, sizeof sql,
	         "/* pgshard: shard=%d */ INSERT INTO users (id) VALUES (%lld), (%lld)", home,
	         (long long)a, (long long)other);
	REFUSED(sql, "does not belong");
	snprintf(sql, sizeof sql, "/* pgshard: key=%lld */ INSERT INTO users (id) VALUES (%lld)",
	         (long long)other, (long long)a);
	REFUSED(sql, "does not belong");
	REFUSED("/* pgshard: all */ INSERT INTO users (id) VALUES (1)", "does not belong");
	REFUSED("/* pgshard: shard=1 */ COPY users FROM STDIN", "does not belong");
	/* a parameter's value is checked when the Bind gives it */
	snprintf(sql, sizeof sql, "/* pgshard: shard=%d */ INSERT INTO users (id) VALUES ($1)",
	         away);
	snprintf(arg, sizeof arg, "%lld", (long long)a);
	prm = text_param(arg);
	p = route_params(sql, &prm, 1);
	assert_int_equal(p.kind, ROUTE_REFUSE);
	/* a row whose key the router cannot read may still be steered */
	p = route("/* pgshard: shard=1 */ INSERT INTO users VALUES (1)");
	expect_one("INSERT INTO users VALUES (1)", &p, ROUTE_SHARDS, 1);
	/* a read runs wherever the comment says */
	snprintf(sql, sizeof sql, "/* pgshard: shard=%d */ SELECT * FROM users WHERE id = %lld",
	         away, (long long)a);
	p = route(sql);
	expect_one(sql, &p, ROUTE_SHARDS, away);
}

static void test_override_shard_that_does_not_exist_is_refused(void **state)
{
	(void)state;
	REFUSED("/* pgshard: shard=3 */ SELECT 1", "shard=3", "0 to 2");
	REFUSED("/* pgshard: shard=x */ SELECT 1", "expected shard=N, key=VALUE or all");
	REFUSED("/* pgshard: shrad=1 */ SELECT 1", "expected shard=N");
}

static void test_override_key_routes_as_key_equals_value(void **state)
{
	const char *sql = "/* pgshard: key=77 */ SELECT * FROM users WHERE name = 'x'";
	route_plan_t p = route(sql);
	shard_set_t want;

	(void)state;
	expect_keys(sql, &p, "users", KEYS(77));
	sql = "/* pgshard: key=1500 */ SELECT f(region_id) FROM sites";
	p = route(sql);
	expect_keys(sql, &p, "regions", KEYS(1500));
	sql = "/* pgshard: key='it''s' */ SELECT * FROM accounts";
	p = route(sql);
	shard_set_clear(&want);
	shard_set_add(&want, shard_of_text("names", "it's"));
	expect_set(sql, &p, ROUTE_SHARDS, &want);
	REFUSED("/* pgshard: key=abc */ SELECT * FROM users", "not a valid bigint key");
	REFUSED("/* pgshard: key=1 */ SELECT 1", "sharded tables");
	REFUSED("/* pgshard: key=150 */ SELECT * FROM slots", "no range");
}

static void test_override_all_goes_to_every_shard(void **state)
{
	const char *sql = "/* pgshard: all */ DROP INDEX users_name_idx";
	route_plan_t p = route(sql);

	(void)state;
	expect_every_shard(sql, &p);
	assert_true(p.is_ddl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_override_shard_forces_the_shard),
	    cmocka_unit_test(test_override_never_puts_rows_where_their_key_does_not_belong),
	    cmocka_unit_test(test_override_shard_that_does_not_exist_is_refused),
	    cmocka_unit_test(test_override_key_routes_as_key_equals_value),
	    cmocka_unit_test(test_override_all_goes_to_every_shard),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
