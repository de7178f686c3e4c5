/*
 * test_route_shapes.c — statement routing (router/route.h) through the
 * shapes of a query, pinned: subqueries in FROM and WHERE, CTEs, joins
 * (co-located or refused), UNION, data-modifying CTEs, UPDATE ... FROM and
 * DELETE ... USING, FOR UPDATE; and EXPLAIN, SQL PREPARE and cursors, MERGE,
 * LOCK, and plans that depend on their inputs only.
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

/* ---- query shapes ---- */

static void test_subqueries_in_from_and_where(void **state)
{
	(void)state;
	ROUTES_TO("SELECT * FROM (SELECT * FROM users WHERE id = 3) s", "users", 3);
	ROUTES_TO("SELECT count(*) FROM (SELECT id FROM users WHERE id IN (1, 2)) s", "users", 1,
	          2);
	ROUTES_TO("SELECT * FROM users WHERE id IN (SELECT user_id FROM orders WHERE user_id = 4)",
	          "users", 4);
	ROUTES_TO("SELECT * FROM countries WHERE code IN (SELECT cc FROM users WHERE id = 5)",
	          "users", 5);
	ROUTES_TO("SELECT * FROM users u WHERE u.id = 6 AND EXISTS (SELECT 1 FROM orders o WHERE "
	          "o.user_id = u.id)",
	          "users", 6);
	ROUTES_TO_ALL_OF("SELECT * FROM users WHERE id = 1 OR id IN (SELECT user_id FROM orders)",
	                 "users");
	/* <> ALL is true where the subquery has no row: it cannot narrow */
	ROUTES_TO_ALL_OF("SELECT * FROM users WHERE id <> ALL (SELECT user_id FROM orders WHERE "
	                 "user_id = 5)",
	                 "users");
	/* reference rows are everywhere: the subquery decides, wherever it sits */
	ROUTES_TO("SELECT * FROM countries WHERE NOT EXISTS (SELECT 1 FROM users WHERE id = 5)",
	          "users", 5);
}

static void test_select_list_subquery_without_from_goes_where_its_rows_are(void **state)
{
	(void)state;
	ROUTES_TO("SELECT (SELECT name FROM users WHERE id = 3)", "users", 3);
	ROUTES_TO("SELECT EXISTS (SELECT 1 FROM orders WHERE user_id = 4)", "users", 4);
	/* on every shard, each would return its own row: one PostgreSQL returns one; so the
	   subquery runs first (router/join_plan.h) and the statement on one shard */
	expect_join_step("SELECT EXISTS (SELECT 1 FROM orders WHERE total > 4)",
	                 "exists subquery over orders", "on one shard");
}

static void test_ctes_are_followed_and_shadow_tables(void **state)
{
	(void)state;
	ROUTES_TO("WITH x AS (SELECT * FROM users WHERE id = 7) SELECT * FROM x", "users", 7);
	ROUTES_TO("WITH a AS (SELECT * FROM orders WHERE user_id = 8), b AS (SELECT * FROM a) "
	          "SELECT * FROM b",
	          "users", 8);
	/* a CTE named like a table hides the table */
	expect_default("WITH users AS (SELECT 1 AS id) SELECT * FROM users WHERE id = 5");
	/* ...but not inside its own (non-recursive) definition */
	ROUTES_TO("WITH users AS (SELECT * FROM users WHERE id = 9) SELECT * FROM users", "users",
	          9);
	ROUTES_TO_ALL_OF("WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < "
	                 "5) SELECT * FROM t JOIN users ON users.id = t.n",
	                 "users");
}

static void test_co_located_joins_route_by_either_side(void **state)
{
	(void)state;
	ROUTES_TO("SELECT * FROM users u JOIN orders o ON o.user_id = u.id WHERE u.id = 42",
	          "users", 42);
	ROUTES_TO("SELECT * FROM users u JOIN orders o ON o.user_id = u.id WHERE o.user_id = 43",
	          "users", 43);
	ROUTES_TO("SELECT * FROM users JOIN widgets USING (id) WHERE id = 44", "users", 44);
	ROUTES_TO("SELECT * FROM users a JOIN users b ON b.id = a.id WHERE a.id = 47", "users", 47);
	ROUTES_TO("SELECT * FROM users u, orders o WHERE o.user_id = u.id AND o.user_id IN (1, 2)",
	          "users", 1, 2);
	ROUTES_TO("SELECT * FROM users u JOIN orders o ON o.user_id = u.id AND u.id = 45", "users",
	          45);
	ROUTES_TO("SELECT * FROM users u, LATERAL (SELECT * FROM orders o WHERE o.user_id = u.id) "
	          "x WHERE u.id = 46",
	          "users", 46);
}

static void test_sharded_tables_joined_not_on_their_keys_are_refused(void **state)
{
	(void)state;
	REFUSED("SELECT * FROM users u, orders o WHERE u.id = 5", "users and orders",
	        "without equal keys", "u.id = o.user_id");
	/* an equi-join on other columns runs as a join across shards (test_join_plan.c) */
	expect_join_step("SELECT * FROM users u JOIN orders o ON o.note = u.name WHERE u.id = 5",
	                 "users", "orders");
	REFUSED("SELECT * FROM users u JOIN orders o USING (id)", "without equal keys");
	expect_join_step("SELECT * FROM users a JOIN users b ON a.manager_id = b.id", "users",
	                 "users");
	REFUSED("SELECT * FROM users u LEFT JOIN orders o ON o.user_id = u.id OR o.x = 1",
	        "without equal keys");
	REFUSED("UPDATE orders SET total = 0 FROM users WHERE users.id = 3", "without equal keys");
	ROUTES_TO_ALL_OF("SELECT * FROM users u LEFT JOIN orders o ON o.user_id = u.id", "users");
	ROUTES_TO_ALL_OF("SELECT * FROM users u FULL JOIN orders o ON u.id = o.user_id AND o.x = 1",
	                 "users");
}

static void test_join_condition_alone_does_not_constrain(void **state)
{
	(void)state;
	ROUTES_TO_ALL_OF("SELECT * FROM users u JOIN orders o ON o.user_id = u.id", "users");
	ROUTES_TO_ALL_OF("SELECT * FROM users u, orders o WHERE u.id = o.user_id", "users");
}

static void test_outer_join_on_clause_does_not_narrow(void **state)
{
	(void)state;
	ROUTES_TO_ALL_OF("SELECT * FROM users u LEFT JOIN orders o ON o.user_id = u.id AND "
	                 "o.user_id = 5",
	                 "users");
	ROUTES_TO_ALL_OF("SELECT * FROM users u LEFT JOIN (SELECT * FROM orders WHERE user_id = 5) "
	                 "o ON o.user_id = u.id",
	                 "users");
	/* a WHERE on either side still filters the joined rows */
	ROUTES_TO("SELECT * FROM users u LEFT JOIN orders o ON o.user_id = u.id WHERE u.id = 5",
	          "users", 5);
}

static void test_tables_of_different_maps_are_refused(void **state)
{
	(void)state;
	/* an equi-join runs as a join across shards (test_join_plan.c); other shapes stay
	   refused */
	expect_join_step(
	    "SELECT * FROM users u JOIN sites s ON s.region_id = u.region WHERE u.id = 1", "users",
	    "sites");
	REFUSED("SELECT * FROM users u JOIN sites s ON s.region_id > u.region WHERE u.id = 1",
	        "users (map users)", "sites (map regions)", "not co-located");
	expect_join_step("SELECT * FROM users WHERE id IN (SELECT owner FROM sites)", "users",
	                 "sites"); /* a semi-join across shards */
	REFUSED("SELECT id FROM users UNION SELECT region_id FROM sites", "not co-located");
	WHOLE_BUT_EXPLAIN_REFUSED("WITH s AS (SELECT * FROM accounts) SELECT * FROM users, s",
	                          "not co-located");
}

static void test_union_goes_to_the_union_of_its_branches(void **state)
{
	(void)state;
	ROUTES_TO("SELECT id FROM users WHERE id = 1 UNION ALL SELECT user_id FROM orders WHERE "
	          "user_id = 2",
	          "users", 1, 2);
	/* UNION removes duplicates across shards, which concatenation cannot */
	REFUSED("SELECT id FROM users WHERE id = 1 UNION SELECT user_id FROM orders",
	        "UNION (without ALL) across shards is not supported; add a condition on users.id");
}

static void test_data_modifying_cte_runs_where_its_rows_are(void **state)
{
	int64_t b = key_elsewhere("users", 1);
	char sql[256];
	route_plan_t p;

	(void)state;
	snprintf(sql, sizeof sql,
	         "WITH d AS (DELETE FROM orders WHERE user_id = 1 RETURNING *) SELECT * FROM users "
	         "WHERE id = %lld",
	         (long long)b);
	p = route(sql);
	expect_keys(sql, &p, "users", KEYS(1, b));
	assert_true(p.is_write);
}

static void test_update_from_and_delete_using_route_by_key(void **state)
{
	const char *sql = "UPDATE orders o SET total = 0 FROM users u WHERE u.id = o.user_id AND "
	                  "u.id = 3";
	route_plan_t p = route(sql);

	(void)state;
	expect_keys(sql, &p, "users", KEYS(3));
	assert_true(p.is_write);
	ROUTES_TO("DELETE FROM orders USING users WHERE users.id = orders.user_id AND users.id = 4",
	          "users", 4);
	ROUTES_TO("UPDATE users SET name = 'x' WHERE id = 5 RETURNING *", "users", 5);
	ROUTES_TO_ALL_OF("DELETE FROM orders WHERE total = 0", "users");
}

static void test_select_for_update_routes_by_key(void **state)
{
	const char *sql = "SELECT * FROM users u WHERE u.id = 4 FOR UPDATE";
	route_plan_t p = route(sql);

	(void)state;
	expect_keys(sql, &p, "users", KEYS(4));
	assert_false(p.is_ddl);
}

/* ---- the rest ---- */

static void test_explain_routes_like_its_statement(void **state)
{
	const char *sql = "EXPLAIN SELECT * FROM users WHERE id = 3";
	route_plan_t p = route(sql);

	(void)state;
	expect_keys(sql, &p, "users", KEYS(3));
	sql = "EXPLAIN UPDATE users SET n = 1 WHERE id = 3";
	p = route(sql);
	expect_keys(sql, &p, "users", KEYS(3));
	assert_false(p.is_write);
	sql = "EXPLAIN (ANALYZE, BUFFERS) UPDATE users SET n = 1 WHERE id = 3";
	p = route(sql);
	assert_true(p.is_write);
	expect_default("EXPLAIN SELECT 1");
}

static void test_sql_prepare_over_sharded_tables_is_refused(void **state)
{
	(void)state;
	REFUSED("PREPARE p AS SELECT * FROM users WHERE id = $1", "PREPARE", "Parse/Bind");
	expect_default("PREPARE q AS SELECT 1");
	expect_default("EXECUTE q");
	expect_default("DECLARE c CURSOR FOR SELECT * FROM pg_class");
}

/* A cursor over several shards is a gather, whatever its query's merge would be. */
static void test_cursors_over_several_shards_gather(void **state)
{
	const char *const sql[] = {
	    "DECLARE c CURSOR FOR SELECT * FROM users",
	    "DECLARE c CURSOR FOR SELECT * FROM users ORDER BY id",
	    "DECLARE c CURSOR FOR SELECT count(*) FROM users",
	    "DECLARE c CURSOR WITH HOLD FOR SELECT id, count(*) FROM orders GROUP BY id",
	};
	route_plan_t p;

	(void)state;
	for (size_t i = 0; i < sizeof sql / sizeof *sql; i++) {
		p = route(sql[i]);
		assert_int_equal(shard_set_count(&p.shards), 3);
		assert_int_equal(p.merge, ROUTE_MERGE_GATHER);
		assert_int_equal(route_step_routed(&p)->kind, ROUTE_STEP_GATHER);
		assert_int_equal(p.cursor_op, ROUTE_CURSOR_DECLARE);
		assert_string_equal(p.cursor, "c");
	}
}

/* A cursor on one shard: DECLARE says which, FETCH/MOVE/CLOSE name the cursor for the executor. */
static void test_cursors_on_one_shard(void **state)
{
	route_plan_t p;

	(void)state;
	p = route("DECLARE c CURSOR WITH HOLD FOR SELECT * FROM users WHERE id = 5");
	expect_keys("DECLARE", &p, "users", KEYS(5));
	assert_int_equal(p.cursor_op, ROUTE_CURSOR_DECLARE);
	assert_string_equal(p.cursor, "c");
	assert_true(p.cursor_hold);
	p = route("DECLARE \"Big\" NO SCROLL CURSOR FOR SELECT * FROM orders WHERE user_id = 5");
	assert_int_equal(p.cursor_op, ROUTE_CURSOR_DECLARE);
	assert_string_equal(p.cursor, "Big");
	assert_false(p.cursor_hold);
	p = route("FETCH FORWARD 2000 FROM \"Big\"");
	assert_int_equal(p.cursor_op, ROUTE_CURSOR_USE);
	assert_string_equal(p.cursor, "Big");
	assert_int_equal(p.fetch_count, 2000);
	assert_false(p.fetch_move);
	p = route("MOVE 3 IN c");
	assert_int_equal(p.cursor_op, ROUTE_CURSOR_USE);
	assert_int_equal(p.fetch_count, 3);
	assert_true(p.fetch_move);
	/* the forward fetches a cursor over several shards takes; 0 for the others */
	assert_int_equal(route("FETCH NEXT FROM c").fetch_count, 1);
	assert_int_equal(route("FETCH c").fetch_count, 1);
	assert_int_equal(route("FETCH ALL FROM c").fetch_count, -1);
	assert_int_equal(route("FETCH FORWARD ALL FROM c").fetch_count, -1);
	assert_int_equal(route("FETCH PRIOR FROM c").fetch_count, 0);
	assert_int_equal(route("FETCH BACKWARD 2 FROM c").fetch_count, 0);
	assert_int_equal(route("FETCH -2 FROM c").fetch_count, 0);
	assert_int_equal(route("FETCH FORWARD 0 FROM c").fetch_count, 0);
	assert_int_equal(route("FETCH ABSOLUTE 3 FROM c").fetch_count, 0);
	assert_int_equal(route("FETCH RELATIVE 1 FROM c").fetch_count, 0);
	assert_int_equal(route("FETCH LAST FROM c").fetch_count, 0);
	p = route("CLOSE c");
	assert_int_equal(p.cursor_op, ROUTE_CURSOR_CLOSE);
	p = route("CLOSE ALL");
	assert_int_equal(p.cursor_op, ROUTE_CURSOR_CLOSE_ALL);
	p = route("DECLARE c CURSOR FOR SELECT * FROM countries");
	assert_int_equal(p.cursor_op, ROUTE_CURSOR_DECLARE);
	expect_batch("DECLARE c CURSOR FOR SELECT * FROM users WHERE id = 5; FETCH 1 FROM c");
}

static void test_merge_with_co_located_source(void **state)
{
	const char *sql =
	    "MERGE INTO users u USING orders o ON u.id = o.user_id WHEN MATCHED THEN "
	    "UPDATE SET n = 1 WHEN NOT MATCHED THEN INSERT (id, n) VALUES (o.user_id, "
	    "0)";
	route_plan_t p = route(sql);

	(void)state;
	expect_map_all(sql, &p, "users");
	assert_true(p.is_write);
	REFUSED(
	    "MERGE INTO users u USING countries c ON u.cc = c.code WHEN NOT MATCHED THEN INSERT "
	    "(id) VALUES (7)",
	    "MERGE ... INSERT");
	REFUSED(
	    "MERGE INTO users u USING orders o ON u.id = o.user_id WHEN MATCHED THEN UPDATE SET "
	    "id = 5",
	    "key column id");
}

static void test_lock_of_a_sharded_table_goes_to_every_shard(void **state)
{
	const char *sql = "LOCK TABLE users IN SHARE MODE";
	route_plan_t p = route(sql);

	(void)state;
	expect_every_shard(sql, &p);
	assert_false(p.is_ddl);
}

static void test_plans_are_a_function_of_their_inputs(void **state)
{
	const char *sql = "SELECT * FROM users u JOIN orders o ON o.user_id = u.id WHERE u.id IN "
	                  "($1, 3)";
	route_param_t prm = text_param("4");
	route_plan_t a = route_params(sql, &prm, 1), b = route_params(sql, &prm, 1);

	(void)state;
	assert_int_equal(a.kind, b.kind);
	assert_memory_equal(&a.shards, &b.shards, sizeof a.shards);
	assert_string_equal(a.reason, b.reason);
	expect_keys(sql, &a, "users", KEYS(3, 4));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_subqueries_in_from_and_where),
	    cmocka_unit_test(test_select_list_subquery_without_from_goes_where_its_rows_are),
	    cmocka_unit_test(test_ctes_are_followed_and_shadow_tables),
	    cmocka_unit_test(test_co_located_joins_route_by_either_side),
	    cmocka_unit_test(test_sharded_tables_joined_not_on_their_keys_are_refused),
	    cmocka_unit_test(test_join_condition_alone_does_not_constrain),
	    cmocka_unit_test(test_outer_join_on_clause_does_not_narrow),
	    cmocka_unit_test(test_tables_of_different_maps_are_refused),
	    cmocka_unit_test(test_union_goes_to_the_union_of_its_branches),
	    cmocka_unit_test(test_data_modifying_cte_runs_where_its_rows_are),
	    cmocka_unit_test(test_update_from_and_delete_using_route_by_key),
	    cmocka_unit_test(test_select_for_update_routes_by_key),
	    cmocka_unit_test(test_explain_routes_like_its_statement),
	    cmocka_unit_test(test_sql_prepare_over_sharded_tables_is_refused),
	    cmocka_unit_test(test_cursors_over_several_shards_gather),
	    cmocka_unit_test(test_cursors_on_one_shard),
	    cmocka_unit_test(test_merge_with_co_located_source),
	    cmocka_unit_test(test_lock_of_a_sharded_table_goes_to_every_shard),
	    cmocka_unit_test(test_plans_are_a_function_of_their_inputs),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
