/*
 * test_route_merge.c — how a plan says the shards' answers are merged
 * (router/route.h), pinned: nothing to merge on one shard, rows
 * concatenated, counts added up, a gather for ORDER BY, LIMIT and
 * aggregates, a refusal for what cannot be merged; writes, DDL and
 * reference table writes, the statements of one string, and a plan made
 * without its parameters.
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

/* ---- merging the shards' answers ---- */

static void test_one_shard_has_nothing_to_merge(void **state)
{
	(void)state;
	MERGES("SELECT * FROM users WHERE id = 1 ORDER BY name LIMIT 3", ROUTE_MERGE_NONE);
	MERGES("SELECT count(DISTINCT name) FROM users WHERE id = 1", ROUTE_MERGE_NONE);
	MERGES("SELECT * FROM countries ORDER BY code", ROUTE_MERGE_NONE);
	MERGES("SELECT 1 UNION SELECT 2", ROUTE_MERGE_NONE);
	MERGES("UPDATE users SET n = 1 WHERE id = 3", ROUTE_MERGE_NONE);
	MERGES("/* pgshard: shard=1 */ SELECT * FROM users ORDER BY id", ROUTE_MERGE_NONE);
}

static void test_multi_shard_rows_that_concatenate_are_summed(void **state)
{
	(void)state;
	MERGES("SELECT * FROM users", ROUTE_MERGE_SUM);
	MERGES("SELECT id, name FROM users WHERE id IN (1, 2, 3, 4, 5, 6)", ROUTE_MERGE_SUM);
	MERGES("SELECT * FROM users u JOIN orders o ON o.user_id = u.id", ROUTE_MERGE_SUM);
	MERGES("SELECT * FROM users u LEFT JOIN orders o ON o.user_id = u.id", ROUTE_MERGE_SUM);
	MERGES("SELECT * FROM orders o RIGHT JOIN users u ON o.user_id = u.id", ROUTE_MERGE_SUM);
	MERGES("SELECT * FROM users u FULL JOIN orders o ON o.user_id = u.id", ROUTE_MERGE_SUM);
	MERGES("SELECT * FROM users u JOIN countries c ON c.code = u.cc", ROUTE_MERGE_SUM);
	MERGES("SELECT * FROM (SELECT id FROM users WHERE name = 'x') s", ROUTE_MERGE_SUM);
	MERGES("WITH x AS (SELECT * FROM users) SELECT * FROM x", ROUTE_MERGE_SUM);
	MERGES("SELECT id FROM users UNION ALL SELECT user_id FROM orders", ROUTE_MERGE_SUM);
	MERGES("SELECT * FROM users WHERE id IN (SELECT user_id FROM orders)", ROUTE_MERGE_SUM);
	MERGES("SELECT * FROM users FOR UPDATE", ROUTE_MERGE_SUM);
	MERGES("WITH d AS (DELETE FROM orders RETURNING *) SELECT * FROM d", ROUTE_MERGE_SUM);
	MERGES("SELECT upper(name), id + 1 FROM users", ROUTE_MERGE_SUM);
	MERGES("COPY users TO STDOUT", ROUTE_MERGE_SUM);
	MERGES("COPY (SELECT * FROM orders) TO STDOUT", ROUTE_MERGE_SUM);
	MERGES("EXPLAIN SELECT * FROM users ORDER BY id", ROUTE_MERGE_SUM);
}

static void test_multi_shard_counts_are_added_up(void **state)
{
	(void)state;
	MERGES("SELECT count(*) FROM users", ROUTE_MERGE_COUNT);
	MERGES("SELECT count(*) AS n, count(name) FROM users u JOIN orders o ON o.user_id = u.id",
	       ROUTE_MERGE_COUNT);
	MERGES("SELECT pg_catalog.count(*) FROM accounts WHERE name > 'm'", ROUTE_MERGE_COUNT);
	MERGES("SELECT count(*) FROM (SELECT id FROM users WHERE name = 'x') s", ROUTE_MERGE_COUNT);
}

/* ORDER BY, LIMIT, aggregates, GROUP BY, HAVING, DISTINCT at the top: a gather plan merges them. */
static void test_multi_shard_select_with_order_limit_or_aggregates_gathers(void **state)
{
	static const char *const cases[] = {
	    "SELECT * FROM orders ORDER BY total",
	    "SELECT * FROM orders LIMIT 10",
	    "SELECT * FROM orders OFFSET 10",
	    "SELECT * FROM orders FETCH FIRST 3 ROWS ONLY",
	    "SELECT user_id, count(*) FROM orders GROUP BY user_id",
	    "SELECT 1 FROM orders HAVING true",
	    "SELECT DISTINCT total FROM orders",
	    "SELECT DISTINCT ON (user_id) user_id, total FROM orders ORDER BY user_id, total DESC",
	    "SELECT sum(total) FROM orders",
	    "SELECT count(*), max(total) FROM orders",
	    "SELECT coalesce(max(total), 0) FROM orders",
	    "SELECT count(DISTINCT total) FROM orders",
	    "SELECT count(*) FILTER (WHERE total > 1) FROM orders",
	    "SELECT count(*) + 1 FROM orders",
	    "SELECT count(*) FROM orders ORDER BY 1",
	    "SELECT count(*) FROM orders LIMIT 1",
	    "SELECT string_agg(DISTINCT note, ',' ORDER BY note) FROM orders",
	    ("SELECT u.name, avg(o.total) FROM users u JOIN orders o ON o.user_id = u.id GROUP BY "
	     "u.name ORDER BY 2 DESC LIMIT 5"),
	    "WITH x AS (SELECT * FROM orders WHERE total > 0) SELECT note FROM x ORDER BY note",
	    "SELECT * FROM users WHERE id IN (SELECT user_id FROM orders) ORDER BY id LIMIT 3",
	    "/* pgshard: all */ SELECT * FROM users ORDER BY id",
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		MERGES(cases[i], ROUTE_MERGE_GATHER);
}

static void test_multi_shard_select_that_cannot_be_merged_is_refused(void **state)
{
	static const struct {
		const char *sql, *what;
	} cases[] = {
	    /* window functions see other shards' rows */
	    {"SELECT *, row_number() OVER () FROM orders", "window functions across shards"},
	    {"SELECT user_id, sum(total) OVER (PARTITION BY note) FROM orders ORDER BY 1",
	     "window functions"},
	    /* set operations, and what combines their rows */
	    {"SELECT user_id FROM orders UNION SELECT id FROM users", "UNION (without ALL)"},
	    {"SELECT user_id FROM orders INTERSECT SELECT id FROM users", "INTERSECT"},
	    {"SELECT user_id FROM orders EXCEPT SELECT id FROM users", "EXCEPT"},
	    {"SELECT user_id FROM orders UNION ALL SELECT id FROM users ORDER BY 1", "ORDER BY"},
	    {"SELECT user_id FROM orders UNION ALL SELECT id FROM users LIMIT 3", "LIMIT/OFFSET"},
	    {"(SELECT id FROM users ORDER BY id LIMIT 1) UNION ALL SELECT user_id FROM orders",
	     "ORDER BY"},
	    {"SELECT count(*) FROM orders UNION ALL SELECT count(*) FROM users",
	     "count() in UNION ALL"},
	    /* rows every shard has */
	    {"SELECT id FROM users UNION ALL SELECT 1", "every shard would return"},
	    {"SELECT * FROM countries c LEFT JOIN users u ON u.cc = c.code", "every shard"},
	    {"SELECT count(*) FROM countries c LEFT JOIN users u ON u.cc = c.code ORDER BY 1",
	     "every shard"},
	    /* COPY (query) TO streams each shard's rows as they come */
	    {"COPY (SELECT count(*) FROM orders) TO STDOUT", "count() in COPY"},
	    {"COPY (SELECT * FROM orders ORDER BY total) TO STDOUT", "ORDER BY"},
	    {"COPY (SELECT sum(total) FROM orders) TO STDOUT", "aggregate function sum()"},
	    /* what the gather plan cannot merge */
	    {"SELECT string_agg(note, ',' ORDER BY note) FROM orders",
	     "string_agg() with ORDER BY inside across shards is not supported"},
	    {"SELECT stddev(total) FROM orders",
	     "the aggregate stddev() across shards is not supported (count, sum"},
	    {"SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY total) FROM orders",
	     "ordered-set aggregate percentile_cont()"},
	    {"SELECT count(DISTINCT note) FILTER (WHERE total > 0) FROM orders",
	     "count(DISTINCT ...) FILTER (WHERE ...) across shards is not supported"},
	    {"SELECT DISTINCT ON (user_id) * FROM orders", "name the columns"},
	    {"SELECT user_id, note, count(*) FROM orders GROUP BY user_id",
	     "column note must appear in the GROUP BY clause or be used in an aggregate "
	     "function when the query runs on several shards"},
	    {"SELECT user_id, count(*) FROM orders GROUP BY ROLLUP (user_id)", "ROLLUP"},
	    {"SELECT * FROM orders ORDER BY total FETCH FIRST 3 ROWS WITH TIES", "WITH TIES"},
	    {"SELECT * FROM orders ORDER BY total FOR UPDATE", "FOR UPDATE/SHARE"},
	    {"SELECT * FROM orders ORDER BY note COLLATE \"de_DE\"", "COLLATE \"de_DE\""},
	    {"SELECT * FROM orders ORDER BY total USING ~<~", "USING ~<~"},
	    {"SELECT * FROM orders LIMIT 2 + 3", "LIMIT/OFFSET across shards must be an integer"},
	    {"SELECT note AS pgshard_k0 FROM orders ORDER BY total", "\"pgshard_"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		route_plan_t p = route(cases[i].sql);

		expect_refused_with(
		    cases[i].sql, &p,
		    (const char *const[]){cases[i].what, "/* pgshard: shard=N */", NULL});
		assert_string_equal(p.sqlstate, "0A000");
	}
	/* a derived table or CTE over a sharded table whose rows the shards cannot combine: a
	   join across shards, every table fetched whole (router/join_plan.h) */
	WHOLE_BUT_EXPLAIN_REFUSED("SELECT * FROM (SELECT count(*) FROM orders) s",
	                          "aggregate function count() over orders");
	WHOLE_BUT_EXPLAIN_REFUSED("WITH c AS (SELECT user_id FROM orders LIMIT 5) SELECT * FROM c",
	                          "a subquery with LIMIT/OFFSET over orders");
	/* rows every shard has, filtered by a subquery over a sharded table: the subquery
	   runs first (router/join_plan.h), the statement then on one shard */
	expect_join_step("SELECT * FROM countries WHERE code IN (SELECT cc FROM users)",
	                 "array subquery over users", "on one shard");
	expect_join_step("SELECT (SELECT count(*) FROM orders)", "scalar subquery over orders",
	                 "on one shard");
	/* the message says which key would make it a one-shard query */
	REFUSED("SELECT *, rank() OVER (ORDER BY total) FROM orders",
	        "window functions across shards is not supported; add a "
	        "condition on orders.user_id, or /* pgshard: shard=N */");
	REFUSED("SELECT stddev(total) FROM orders",
	        "the aggregate stddev() across shards is not supported (count, sum, min, max, avg, "
	        "bool_and, bool_or, every, bit_and, bit_or, bit_xor, and any aggregate with "
	        "DISTINCT are); add a condition on orders.user_id, or /* pgshard: shard=N */");
	/* a gather plan's subqueries are judged as any statement's on several shards: this one
	   runs first (router/join_plan.h) */
	expect_join_step("SELECT sum(n) FROM users WHERE n > (SELECT avg(n) FROM users)",
	                 "scalar subquery over users", "fetched whole");
	/* the proxy runs one gather plan at a time */
	REFUSED("SELECT * FROM users; SELECT * FROM users ORDER BY id", "send it alone");
	REFUSED("SET LOCAL work_mem = '1MB'; SELECT sum(n) FROM users", "send it alone");
}

static void test_multi_shard_writes_add_up_their_counts(void **state)
{
	int64_t b = key_elsewhere("users", 1);
	char sql[128];

	(void)state;
	MERGES("UPDATE users SET n = 0", ROUTE_MERGE_SUM);
	MERGES("UPDATE users SET n = 0 WHERE id IN (1, 2, 3, 4) RETURNING *", ROUTE_MERGE_SUM);
	MERGES("DELETE FROM orders WHERE total = 0 RETURNING user_id", ROUTE_MERGE_SUM);
	MERGES("INSERT INTO orders (user_id, total) SELECT id, 0 FROM users", ROUTE_MERGE_SUM);
	MERGES("MERGE INTO users u USING orders o ON u.id = o.user_id WHEN MATCHED THEN "
	       "UPDATE SET "
	       "n = 1",
	       ROUTE_MERGE_SUM);
	MERGES("COPY users FROM STDIN", ROUTE_MERGE_SUM);
	snprintf(sql, sizeof sql, "INSERT INTO users (id) VALUES (1), (%lld) RETURNING id",
	         (long long)b);
	MERGES(sql, ROUTE_MERGE_SUM);
}

static void test_ddl_and_reference_table_writes_take_one_copy(void **state)
{
	(void)state;
	MERGES("CREATE INDEX ON users (name)", ROUTE_MERGE_ONE);
	MERGES("ALTER TABLE orders ADD COLUMN x int", ROUTE_MERGE_ONE);
	MERGES("TRUNCATE users", ROUTE_MERGE_ONE);
	MERGES("INSERT INTO countries (code) VALUES ('fr') RETURNING *", ROUTE_MERGE_ONE);
	MERGES("UPDATE countries SET name = 'x'", ROUTE_MERGE_ONE);
	MERGES("WITH x AS (DELETE FROM countries WHERE code = 'xx' RETURNING *) SELECT * "
	       "FROM x",
	       ROUTE_MERGE_ONE);
	MERGES("COPY countries FROM STDIN", ROUTE_MERGE_ONE);
	MERGES("LOCK TABLE users IN SHARE MODE", ROUTE_MERGE_ONE);
	MERGES("CREATE TABLE orders AS SELECT * FROM users WITH NO DATA", ROUTE_MERGE_ONE);
	MERGES("/* pgshard: all */ DROP INDEX users_name_idx", ROUTE_MERGE_ONE);
	MERGES("/* pgshard: all */ SELEC oops", ROUTE_MERGE_ONE);
	MERGES("/* pgshard: all */ SELECT * FROM countries", ROUTE_MERGE_ONE);
	/* on every shard by request, reading no configured table: each shard's rows */
	MERGES("/* pgshard: all */ SELECT * FROM pg_stat_activity", ROUTE_MERGE_SUM);
	MERGES("/* pgshard: all */ SELECT * FROM users", ROUTE_MERGE_SUM);
	MERGES("/* pgshard: all */ SELECT * FROM users ORDER BY id", ROUTE_MERGE_GATHER);
}

static void test_statements_of_one_string_must_merge_alike(void **state)
{
	(void)state;
	MERGES("SELECT * FROM users; SELECT * FROM orders", ROUTE_MERGE_SUM);
	MERGES("SET LOCAL work_mem = '1MB'; SELECT count(*) FROM users", ROUTE_MERGE_COUNT);
	expect_batch("UPDATE users SET n = 0; SELECT count(*) FROM users"); /* a write on several */
	REFUSED("SELECT * FROM users; SELECT * FROM users ORDER BY id", "ORDER BY",
	        "send it alone");
}

/* At Parse, before the values are known, the plan is not final: nothing is refused yet. */
static void test_plan_without_its_parameters_is_not_refused_for_merging(void **state)
{
	const char *sql = "SELECT *, row_number() OVER () FROM users WHERE id = $1";
	route_param_t prm = text_param("7");
	route_plan_t p = route(sql);

	(void)state;
	expect_map_all(sql, &p, "users");
	assert_true(p.params_missing);
	assert_int_equal(p.merge, ROUTE_MERGE_NONE);
	p = route_params(sql, &prm, 1);
	expect_keys(sql, &p, "users", KEYS(7));
	assert_int_equal(p.merge, ROUTE_MERGE_NONE);
	prm = (route_param_t){.data = NULL, .len = -1};
	p = route_params(sql, &prm, 1); /* NULL: every shard, and now it is final */
	expect_refused_with(sql, &p, (const char *const[]){"window functions", NULL});
	/* a gather plan is no reason to hold back: it stands whatever the key's value */
	sql = "SELECT * FROM users WHERE id = $1 ORDER BY name";
	p = route(sql);
	assert_true(p.params_missing);
	assert_int_equal(p.merge, ROUTE_MERGE_GATHER);
	/* a LIMIT value only the gather plan needs does not hold the plan back */
	p = route("SELECT * FROM users ORDER BY name LIMIT $1");
	assert_false(p.params_missing);
	assert_int_equal(p.merge, ROUTE_MERGE_GATHER);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_one_shard_has_nothing_to_merge),
	    cmocka_unit_test(test_multi_shard_rows_that_concatenate_are_summed),
	    cmocka_unit_test(test_multi_shard_counts_are_added_up),
	    cmocka_unit_test(test_multi_shard_select_with_order_limit_or_aggregates_gathers),
	    cmocka_unit_test(test_multi_shard_select_that_cannot_be_merged_is_refused),
	    cmocka_unit_test(test_multi_shard_writes_add_up_their_counts),
	    cmocka_unit_test(test_ddl_and_reference_table_writes_take_one_copy),
	    cmocka_unit_test(test_statements_of_one_string_must_merge_alike),
	    cmocka_unit_test(test_plan_without_its_parameters_is_not_refused_for_merging),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
