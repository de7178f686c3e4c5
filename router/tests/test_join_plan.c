/*
 * test_join_plan.c — joins across shards planned as steps
 * (router/join_plan.c): which statements become a join step and which stay
 * refused, which side drives, which filters go down with each side, where
 * each side's statement runs, and the final statement over the fetched rows.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "router/join_plan.h"
#include "router/route.h"

static const char config[] = "[shard.0]\nprimary = host=10.0.0.1\n"
                             "[shard.1]\nprimary = host=10.0.0.2\n"
                             "[shard.2]\nprimary = host=10.0.0.3\n"
                             "[map.users]\nkind = hash\nkey = bigint\nshards = 0, 1, 2\n"
                             "[map.lines]\nkind = hash\nkey = bigint\nshards = 0, 1, 2\n"
                             "[map.names]\nkind = hash\nkey = text\nshards = 1, 2\n"
                             "[table.orders]\nkey = user_id\nmap = users\n"
                             "[table.users]\nkey = id\nmap = users\n"
                             "[table.order_lines]\nkey = order_id\nmap = lines\n"
                             "[table.accounts]\nkey = name\nmap = names\n"
                             "[table.countries]\nreference = yes\n";

static cfg_t *cfg;
static route_ctx_t ctx;

static int setup(void **state)
{
	char err[512];

	(void)state;
	if (cfg_load_string(config, "test.ini", &cfg, err, sizeof err) != 0 ||
	    route_ctx_init(&ctx, cfg, err, sizeof err) != 0) {
		fprintf(stderr, "setup: %s\n", err);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	route_ctx_free(&ctx);
	cfg_free(cfg);
	return 0;
}

static join_plan_t plan(const char *sql)
{
	join_plan_t p;
	char err[300];
	int rc = join_plan_make(&ctx, sql, NULL, 0, &p, err, sizeof err);

	if (rc != 1)
		fail_msg("\"%s\": not planned as a join: %s", sql, err);
	return p;
}

static void not_planned(const char *sql, const char *why)
{
	join_plan_t p;
	char err[300];
	route_plan_t rp;

	if (join_plan_make(&ctx, sql, NULL, 0, &p, err, sizeof err) != 0)
		fail_msg("\"%s\": planned as a join", sql);
	if (strstr(err, why) == NULL)
		fail_msg("\"%s\": expected \"%s\" in \"%s\"", sql, why, err);
	assert_int_equal(route_statement(&ctx, sql, NULL, 0, &rp), 0);
	assert_int_not_equal(route_step_routed(&rp)->kind, ROUTE_STEP_JOIN);
}

static void contains(const char *text, const char *part)
{
	if (text == NULL || strstr(text, part) == NULL)
		fail_msg("expected \"%s\" in \"%s\"", part, text ? text : "(null)");
}

static void lacks(const char *text, const char *part)
{
	if (text != NULL && strstr(text, part) != NULL)
		fail_msg("did not expect \"%s\" in \"%s\"", part, text);
}

/* The shard a key of map m is on, as a statement on t would route it. */
static int shard_of(const char *table, const char *key, const char *v)
{
	char sql[200];
	route_plan_t p;

	snprintf(sql, sizeof sql, "SELECT 1 FROM %s WHERE %s = %s", table, key, v);
	assert_int_equal(route_statement(&ctx, sql, NULL, 0, &p), 0);
	assert_int_equal(p.kind, ROUTE_SHARDS);
	assert_int_equal(shard_set_count(&p.shards), 1);
	return shard_set_first(&p.shards);
}

static void test_orders_join_lines_of_one_user_drives_from_one_orders_shard(void **state)
{
	const char *sql =
	    "SELECT o.id, l.qty FROM orders o JOIN order_lines l ON l.order_id = o.id "
	    "WHERE o.user_id = 7 ORDER BY o.id, l.qty";
	join_plan_t p = plan(sql);
	route_plan_t rp;

	(void)state;
	assert_int_equal(p.kind, JOIN_INNER);
	assert_string_equal(p.sides[0].table->name, "orders");
	assert_string_equal(p.sides[0].alias, "o");
	assert_string_equal(p.sides[0].column, "id");
	assert_int_equal(shard_set_count(&p.sides[0].shards), 1);
	assert_int_equal(shard_set_first(&p.sides[0].shards), shard_of("orders", "user_id", "7"));
	assert_int_equal(p.sides[0].n_pushed, 1);
	contains(p.sides[0].sql, "SELECT o.id, ROW(o.*) FROM orders o WHERE o.user_id = 7");
	assert_string_equal(p.sides[1].table->name, "order_lines");
	assert_true(p.sides[1].by_key);
	assert_int_equal(shard_set_count(&p.sides[1].shards), 3);
	contains(
	    p.sides[1].sql,
	    "SELECT ROW(l.*) FROM order_lines l WHERE l.order_id OPERATOR(pg_catalog.=) ANY($1)");
	contains(p.final_sql, "unnest($1::orders[]) o");
	contains(p.final_sql, "unnest($2::order_lines[]) l");
	contains(p.final_sql, "ON l.order_id = o.id WHERE o.user_id = 7 ORDER BY o.id, l.qty");
	join_plan_free(&p);

	assert_int_equal(route_statement(&ctx, sql, NULL, 0, &rp), 0);
	assert_int_equal(route_step_routed(&rp)->kind, ROUTE_STEP_JOIN);
	assert_true(rp.join);
	assert_false(rp.replica_ok);
	assert_int_equal(shard_set_count(&route_step_routed(&rp)->shards), 3);
	contains(rp.reason, "inner join of orders and order_lines across shards");
}

static void test_probe_shard_is_the_shard_of_the_key(void **state)
{
	join_plan_t p = plan("SELECT * FROM orders o JOIN order_lines l ON l.order_id = o.id");

	(void)state;
	for (int k = 1; k < 40; k++) {
		char v[16];

		snprintf(v, sizeof v, "%d", k);
		assert_int_equal(join_probe_shard(&ctx, &p.sides[1], v, strlen(v)),
		                 shard_of("order_lines", "order_id", v));
	}
	assert_int_equal(join_probe_shard(&ctx, &p.sides[1], "abc", 3), -1);
	join_plan_free(&p);
}

static void test_inner_join_drives_from_the_side_its_filters_pin(void **state)
{
	join_plan_t p = plan("SELECT * FROM order_lines l, orders o WHERE l.order_id = o.id AND "
	                     "o.user_id = 3 AND l.qty > 1");

	(void)state;
	assert_string_equal(p.sides[0].table->name, "orders");
	assert_false(p.sides[0].left);
	contains(p.why, "1 shard");
	/* the probe side takes its own filter down too */
	assert_int_equal(p.sides[1].n_pushed, 1);
	contains(p.sides[1].sql, "l.qty > 1");
	contains(p.final_sql, "unnest($2::order_lines[]) l, pg_catalog.unnest($1::orders[]) o");
	join_plan_free(&p);

	/* neither side pinned: the left one */
	p = plan("SELECT * FROM order_lines l JOIN orders o ON l.order_id = o.id");
	assert_string_equal(p.sides[0].table->name, "order_lines");
	assert_false(p.sides[1].by_key); /* orders.id is not orders' key */
	assert_int_equal(shard_set_count(&p.sides[1].shards), 3);
	join_plan_free(&p);
}

static void test_left_join_drives_from_the_left_and_keeps_where_on_the_right(void **state)
{
	join_plan_t p = plan("SELECT * FROM orders o LEFT JOIN order_lines l ON l.order_id = o.id "
	                     "AND l.qty > 2 AND o.id > 5 WHERE l.sku IS NULL AND o.user_id = 4");

	(void)state;
	assert_int_equal(p.kind, JOIN_LEFT);
	assert_string_equal(p.sides[0].table->name, "orders");
	/* the left side: its WHERE conjunct only (its ON ones keep no row from the result) */
	assert_int_equal(p.sides[0].n_pushed, 1);
	contains(p.sides[0].sql, "o.user_id = 4");
	lacks(p.sides[0].sql, "o.id > 5");
	/* the nullable side: its ON conjunct only (WHERE tests its NULLs) */
	assert_int_equal(p.sides[1].n_pushed, 1);
	contains(p.sides[1].sql, "l.qty > 2");
	lacks(p.sides[1].sql, "IS NULL");
	join_plan_free(&p);

	/* a right join drives from the right even when the left is pinned */
	p = plan("SELECT * FROM orders o RIGHT JOIN order_lines l ON l.order_id = o.id AND "
	         "o.user_id = 4");
	assert_int_equal(p.kind, JOIN_RIGHT);
	assert_string_equal(p.sides[0].table->name, "order_lines");
	assert_int_equal(p.sides[0].n_pushed, 0);
	assert_int_equal(p.sides[1].n_pushed, 1);
	contains(p.final_sql, "RIGHT JOIN pg_catalog.unnest($1::order_lines[]) l");
	join_plan_free(&p);
}

static void test_filters_with_functions_or_unqualified_columns_stay_in_the_final(void **state)
{
	join_plan_t p = plan("SELECT * FROM orders o JOIN order_lines l ON l.order_id = o.id "
	                     "WHERE lower(o.note) = 'x' AND qty > 3 AND o.id IN (1, 2)");

	(void)state;
	assert_int_equal(p.sides[0].n_pushed, 1);
	contains(p.sides[0].sql, "o.id IN (1, 2)");
	lacks(p.sides[0].sql, "lower");
	assert_int_equal(p.sides[1].n_pushed, 0);
	contains(p.final_sql, "lower(o.note) = 'x' AND qty > 3");
	join_plan_free(&p);
}

static void test_text_keys_and_aliases_are_quoted(void **state)
{
	join_plan_t p = plan("SELECT * FROM users \"U\" JOIN accounts a ON a.name = \"U\".email");

	(void)state;
	/* accounts' map has two shards, users' three: accounts drives */
	assert_string_equal(p.sides[0].alias, "a");
	assert_int_equal(shard_set_count(&p.sides[0].shards), 2);
	contains(p.sides[0].sql, "SELECT a.name, ROW(a.*) FROM accounts a");
	assert_string_equal(p.sides[1].alias, "U");
	assert_false(p.sides[1].by_key); /* users.email is not users' key */
	contains(p.sides[1].sql, "SELECT ROW(\"U\".*) FROM users \"U\" WHERE \"U\".email "
	                         "OPERATOR(pg_catalog.=) ANY($1)");
	contains(p.final_sql, "unnest($2::users[]) \"U\"");
	join_plan_free(&p);
}

static void test_parameters_go_down_renumbered_and_pin_the_driving_side(void **state)
{
	const char *sql =
	    "SELECT o.id, l.qty FROM orders o JOIN order_lines l ON l.order_id = o.id "
	    "WHERE o.user_id = $2 AND l.qty > $1 ORDER BY o.id LIMIT $3";
	route_param_t params[3] = {
	    {(const uint8_t *)"1", 1, 0, 0},
	    {(const uint8_t *)"7", 1, 0, 0},
	    {(const uint8_t *)"5", 1, 0, 0},
	};
	join_plan_t p;
	char err[300];

	(void)state;
	assert_int_equal(join_plan_make(&ctx, sql, params, 3, &p, err, sizeof err), 1);
	assert_int_equal(p.n_params, 3);
	assert_string_equal(p.sides[0].table->name, "orders");
	contains(p.sides[0].sql, "WHERE o.user_id = $1");
	assert_int_equal(p.sides[0].n_params, 1);
	assert_int_equal(p.sides[0].params[0], 2);
	assert_int_equal(shard_set_count(&p.sides[0].shards), 1);
	assert_int_equal(shard_set_first(&p.sides[0].shards), shard_of("orders", "user_id", "7"));
	contains(p.sides[1].sql, "ANY($1) AND l.qty > $2");
	assert_int_equal(p.sides[1].n_params, 1);
	assert_int_equal(p.sides[1].params[0], 1);
	/* the final statement keeps the client's numbers, the rows after them */
	contains(p.final_sql, "unnest($4::orders[]) o");
	contains(p.final_sql, "unnest($5::order_lines[]) l");
	contains(p.final_sql, "WHERE o.user_id = $2 AND l.qty > $1 ORDER BY o.id LIMIT $3");
	join_plan_free(&p);

	/* without their values: the driving side may be on any shard */
	p = plan(sql);
	assert_int_equal(shard_set_count(&p.sides[0].shards), 3);
	join_plan_free(&p);
}

static void test_probe_keys_are_typed_as_the_driving_column(void **state)
{
	(void)state;
	assert_int_equal(join_array_type(23), 1007);   /* int4 -> int4[] */
	assert_int_equal(join_array_type(20), 1016);   /* int8 -> int8[] */
	assert_int_equal(join_array_type(1700), 1231); /* numeric -> numeric[] */
	assert_int_equal(join_array_type(25), 1009);   /* text -> text[] */
	assert_int_equal(join_array_type(16385), 0);   /* not built in: the probe column's type */
}

static void test_reference_tables_stay_in_the_final_statement(void **state)
{
	join_plan_t p =
	    plan("SELECT o.id, c.name FROM orders o JOIN order_lines l ON l.order_id = o.id "
	         "JOIN countries c ON c.code = o.country WHERE o.user_id = 7 AND "
	         "c.region = 'EU' AND l.sku IN (SELECT sku FROM countries)");

	(void)state;
	assert_int_equal(p.kind, JOIN_INNER);
	assert_string_equal(p.sides[0].table->name, "orders");
	assert_int_equal(shard_set_count(&p.sides[0].shards), 1);
	/* a conjunct naming the reference table stays with the final statement */
	assert_int_equal(p.sides[0].n_pushed, 1);
	lacks(p.sides[0].sql, "region");
	lacks(p.sides[1].sql, "countries");
	contains(p.final_sql, "JOIN countries c ON c.code = o.country");
	contains(p.final_sql, "l.sku IN (SELECT sku FROM countries)");
	join_plan_free(&p);
}

static void test_in_and_exists_subqueries_are_semi_joins(void **state)
{
	join_plan_t p = plan("SELECT o.id FROM orders o WHERE o.user_id = 7 AND o.id IN "
	                     "(SELECT l.order_id FROM order_lines l WHERE l.qty > 2)");

	(void)state;
	assert_int_equal(p.kind, JOIN_SEMI);
	assert_string_equal(p.sides[0].table->name, "orders");
	assert_int_equal(shard_set_count(&p.sides[0].shards), 1);
	contains(p.sides[0].sql, "SELECT o.id, ROW(o.*) FROM orders o WHERE o.user_id = 7");
	assert_true(p.sides[1].by_key);
	contains(p.sides[1].sql, "ANY($1) AND l.qty > 2");
	contains(p.final_sql, "IN (SELECT l.order_id FROM pg_catalog.unnest($2::order_lines[]) l");
	join_plan_free(&p);

	/* NOT EXISTS: a filter on the outer table inside it stays there */
	p = plan("SELECT * FROM order_lines l WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE "
	         "o.id = l.order_id AND o.user_id = 3 AND l.qty > 1)");
	assert_string_equal(p.sides[0].table->name, "order_lines");
	assert_int_equal(p.sides[0].n_pushed, 0);
	assert_string_equal(p.sides[1].column, "id");
	assert_false(p.sides[1].by_key);
	assert_int_equal(p.sides[1].n_pushed, 1);
	contains(p.sides[1].sql, "o.user_id = 3");
	join_plan_free(&p);

	/* unqualified: the outer column is the outer table's when it is alone in FROM */
	p = plan("SELECT * FROM orders WHERE id IN (SELECT order_id FROM order_lines)");
	assert_string_equal(p.sides[0].column, "id");
	assert_string_equal(p.sides[1].column, "order_id");
	join_plan_free(&p);

	/* NOT IN, an IN under OR or over a LIMIT, an aggregate, no correlation: not tied by
	   an equality that keeps the fetched rows enough, but uncorrelated: they run first
	   (test_uncorrelated_subqueries_run_first_and_pass_their_answers) */
	{
		static const char *const first[] = {
		    "SELECT * FROM orders o WHERE o.id NOT IN (SELECT l.order_id FROM order_lines "
		    "l)",
		    "SELECT * FROM orders o WHERE o.user_id = 1 OR o.id IN (SELECT l.order_id FROM "
		    "order_lines l)",
		    "SELECT * FROM orders o WHERE o.id IN (SELECT l.order_id FROM order_lines l "
		    "ORDER BY l.qty LIMIT 3)",
		    "SELECT * FROM orders o WHERE o.id IN (SELECT max(l.order_id) FROM order_lines "
		    "l)",
		    "SELECT * FROM orders o WHERE EXISTS (SELECT 1 FROM order_lines l WHERE l.qty "
		    "> "
		    "3)",
		};

		for (size_t i = 0; i < sizeof first / sizeof first[0]; i++) {
			p = plan(first[i]);
			assert_int_equal(p.n_subs, 1);
			assert_int_equal(p.kind, JOIN_ALONE);
			assert_int_equal(p.n_sides, 1);
			assert_true(p.sides[0].whole);
			join_plan_free(&p);
		}
	}
	/* correlated otherwise than by an equality: neither */
	not_planned(
	    "SELECT * FROM orders o WHERE EXISTS (SELECT 1 FROM order_lines l WHERE l.qty > "
	    "o.total)",
	    "an equality ties it to the outer query");

	/* a correlation makes any subquery exact: NOT IN, a scalar aggregate, LIMIT */
	p = plan("SELECT o.id, (SELECT max(l.qty) FROM order_lines l WHERE l.order_id = o.id) "
	         "FROM orders o WHERE o.note NOT IN (SELECT l2.sku FROM order_lines l2 WHERE "
	         "l2.order_id = o.id AND l2.qty > 1)");
	assert_int_equal(p.n_sides, 3);
	assert_true(p.sides[1].sub && p.sides[2].sub);
	assert_int_equal(p.sides[1].src, 0);
	assert_int_equal(p.sides[2].src, 0);
	contains(p.final_sql, "unnest($2::order_lines[])");
	contains(p.final_sql, "unnest($3::order_lines[])");
	join_plan_free(&p);
}

static void test_three_tables_run_step_by_step(void **state)
{
	/* (orders and accounts are of different maps: see the co-located pairs' test) */
	join_plan_t p =
	    plan("SELECT o.id, l.sku, a.name FROM orders o JOIN order_lines l ON "
	         "l.order_id = o.id JOIN accounts a ON a.name = o.note WHERE o.user_id = 7");

	(void)state;
	assert_int_equal(p.n_sides, 3);
	assert_string_equal(p.sides[0].table->name, "orders");
	assert_int_equal(shard_set_count(&p.sides[0].shards), 1);
	assert_int_equal(p.sides[0].n_keys, 2);
	contains(p.sides[0].sql, "ROW(o.*) FROM orders o WHERE o.user_id = 7");
	/* each probed by its shard key, with the driving side's keys */
	for (int i = 1; i < 3; i++) {
		const join_side_t *sd = &p.sides[i];

		assert_int_equal(sd->src, 0);
		assert_true(sd->by_key);
		assert_false(sd->leads || sd->rides);
		assert_string_equal(p.sides[0].keys[sd->src_key],
		                    strcmp(sd->table->name, "accounts") == 0 ? "note" : "id");
		contains(sd->sql, strcmp(sd->table->name, "accounts") == 0
		                      ? "a.name OPERATOR(pg_catalog.=) ANY($1)"
		                      : "l.order_id OPERATOR(pg_catalog.=) ANY($1)");
	}
	assert_string_not_equal(p.sides[1].table->name, p.sides[2].table->name);
	contains(p.final_sql, "unnest($1::orders[]) o JOIN pg_catalog.unnest(");
	contains(p.final_sql, "ON a.name = o.note");
	join_plan_free(&p);

	/* a chain: each table by the keys of the one before it */
	p = plan("SELECT * FROM order_lines l JOIN orders o ON o.id = l.order_id JOIN accounts a "
	         "ON a.name = o.note WHERE l.order_id = 5");
	assert_string_equal(p.sides[0].table->name, "order_lines");
	assert_string_equal(p.sides[1].table->name, "orders");
	assert_false(p.sides[1].by_key);
	assert_string_equal(p.sides[2].table->name, "accounts");
	assert_int_equal(p.sides[2].src, 1);
	assert_string_equal(p.sides[1].keys[p.sides[2].src_key], "note");
	contains(p.sides[1].sql, "SELECT o.note, ROW(o.*) FROM orders o WHERE o.id");
	join_plan_free(&p);
}

/*
 * orders (key user_id) and users (key id) are of one map: joined by
 * o.user_id = u.id inside a larger join, they are one step, one statement
 * per shard, each table's rows once (join_group.c).
 */
static void test_co_located_pair_inside_a_join_is_one_step(void **state)
{
	join_plan_t p =
	    plan("SELECT o.id, l.sku, u.name FROM orders o JOIN order_lines l ON "
	         "l.order_id = o.id JOIN users u ON u.id = o.user_id WHERE o.user_id = 7 AND "
	         "u.name <> 'x'");

	(void)state;
	assert_int_equal(p.n_sides, 3);
	/* the pair drives, on the one shard of user 7 (users' own filter leaves all three) */
	assert_string_equal(p.sides[0].table->name, "orders");
	assert_true(p.sides[0].leads);
	assert_string_equal(p.sides[1].table->name, "users");
	assert_true(p.sides[1].rides);
	assert_null(p.sides[1].sql);
	assert_int_equal(shard_set_count(&p.sides[0].shards), 1);
	assert_int_equal(shard_set_first(&p.sides[0].shards), shard_of("users", "id", "7"));
	assert_int_equal(p.sides[0].n_pushed + p.sides[1].n_pushed, 2);
	assert_string_equal(
	    p.sides[0].sql,
	    "SELECT o.id, ROW(o.*), NULL FROM orders o WHERE o.user_id = 7 AND EXISTS (SELECT 1 "
	    "FROM users u WHERE u.id = o.user_id AND u.name <> 'x') UNION ALL SELECT NULL, NULL, "
	    "ROW(u.*) FROM users u WHERE u.name <> 'x' AND EXISTS (SELECT 1 FROM orders o WHERE "
	    "u.id = o.user_id AND o.user_id = 7)");
	/* the lines by the pair's keys, by their shard key */
	assert_string_equal(p.sides[2].table->name, "order_lines");
	assert_int_equal(p.sides[2].src, 0);
	assert_int_equal(p.sides[0].key_of[p.sides[2].src_key], 0);
	assert_true(p.sides[2].by_key);
	/* the final statement: each table its own rows, joined by the statement's ON */
	contains(p.final_sql, "unnest($1::orders[]) o");
	contains(p.final_sql, "unnest($2::users[]) u ON u.id = o.user_id");
	contains(p.final_sql, "unnest($3::order_lines[]) l");
	join_plan_free(&p);

	/* a side probed by the keys of the table riding with the one that leads */
	p = plan("SELECT * FROM users u JOIN orders o ON o.user_id = u.id JOIN order_lines l ON "
	         "l.order_id = o.id WHERE u.id = 3");
	assert_true(p.sides[0].leads && p.sides[1].rides);
	assert_string_equal(p.sides[0].table->name, "users");
	assert_int_equal(p.sides[2].src, 0);
	assert_int_equal(p.sides[0].key_of[p.sides[2].src_key], 1);
	assert_string_equal(p.sides[0].keys[p.sides[2].src_key], "id");
	contains(p.sides[0].sql, "SELECT NULL, ROW(u.*), NULL FROM users u WHERE u.id = 3 AND");
	contains(p.sides[0].sql,
	         "UNION ALL SELECT o.id, NULL, ROW(o.*) FROM orders o WHERE EXISTS");
	join_plan_free(&p);
}

static void test_co_located_pair_probed_by_its_shard_key_goes_to_the_owning_shards(void **state)
{
	join_plan_t p =
	    plan("SELECT * FROM order_lines l JOIN orders o ON o.user_id = l.qty JOIN users u ON "
	         "u.id = o.user_id WHERE l.sku = 'x'");

	(void)state;
	assert_string_equal(p.sides[0].table->name, "order_lines");
	assert_string_equal(p.sides[1].table->name, "orders");
	assert_true(p.sides[1].leads);
	assert_true(p.sides[1].by_key);
	assert_string_equal(p.sides[1].column, "user_id");
	assert_true(p.sides[2].rides);
	/* the keys pick the shards of the pair as of users or orders alone */
	for (int k = 1; k < 40; k++) {
		char v[16];

		snprintf(v, sizeof v, "%d", k);
		assert_int_equal(join_probe_shard(&ctx, &p.sides[1], v, strlen(v)),
		                 shard_of("users", "id", v));
	}
	/* both branches hold to the keys: the orders by theirs, the users by their partner's */
	assert_string_equal(
	    p.sides[1].sql,
	    "SELECT ROW(o.*), NULL FROM orders o WHERE o.user_id OPERATOR(pg_catalog.=) ANY($1) "
	    "AND EXISTS (SELECT 1 FROM users u WHERE u.id = o.user_id) UNION ALL SELECT NULL, "
	    "ROW(u.*) FROM users u WHERE EXISTS (SELECT 1 FROM orders o WHERE u.id = o.user_id AND "
	    "o.user_id OPERATOR(pg_catalog.=) ANY($1))");
	join_plan_free(&p);

	/* probed by another column: on every shard its filters leave, still one statement */
	p = plan("SELECT * FROM order_lines l JOIN orders o ON o.id = l.order_id JOIN users u ON "
	         "u.id = o.user_id WHERE l.sku = 'x'");
	assert_true(p.sides[1].leads && p.sides[2].rides);
	assert_false(p.sides[1].by_key);
	assert_int_equal(shard_set_count(&p.sides[1].shards), 3);
	join_plan_free(&p);
}

static void test_co_located_pair_parameters_go_down_numbered_once(void **state)
{
	const char *sql = "SELECT * FROM order_lines l JOIN orders o ON o.id = l.order_id JOIN "
	                  "users u ON u.id = o.user_id WHERE l.sku = $1 AND u.name = $3 AND o.note "
	                  "= $2";
	route_param_t params[3] = {
	    {(const uint8_t *)"x", 1, 0, 0},
	    {(const uint8_t *)"n", 1, 0, 0},
	    {(const uint8_t *)"a", 1, 0, 0},
	};
	join_plan_t p;
	char err[300];

	(void)state;
	assert_int_equal(join_plan_make(&ctx, sql, params, 3, &p, err, sizeof err), 1);
	assert_true(p.sides[1].leads);
	/* after the probe's keys ($1), in the order the statement has them: u.name's (the
	   client's $3) as $2, o.note's (the client's $2) as $3, the same in both branches */
	assert_int_equal(p.sides[1].n_params, 2);
	assert_int_equal(p.sides[1].params[0], 3);
	assert_int_equal(p.sides[1].params[1], 2);
	contains(p.sides[1].sql, "o.note = $3 AND EXISTS (SELECT 1 FROM users u WHERE u.id = "
	                         "o.user_id AND u.name = $2)");
	contains(p.sides[1].sql, "WHERE u.name = $2 AND EXISTS (SELECT 1 FROM orders o WHERE u.id "
	                         "= o.user_id AND o.id OPERATOR(pg_catalog.=) ANY($1) AND o.note "
	                         "= $3)");
	/* the final statement keeps the client's numbers */
	contains(p.final_sql, "WHERE l.sku = $1 AND u.name = $3 AND o.note = $2");
	join_plan_free(&p);
}

static void test_tables_not_co_located_stay_a_step_each(void **state)
{
	join_plan_t p;

	(void)state;
	/* one map, but not joined by their shard keys */
	p = plan("SELECT * FROM order_lines l JOIN orders o ON o.id = l.order_id JOIN users u ON "
	         "u.name = o.note");
	for (int i = 0; i < p.n_sides; i++)
		assert_false(p.sides[i].leads || p.sides[i].rides);
	assert_int_not_equal(p.sides[2].src, -1);
	assert_non_null(p.sides[2].sql);
	join_plan_free(&p);

	/* an outer join among the others: every table fetched whole, a step each */
	p = plan("SELECT * FROM order_lines l JOIN orders o ON o.id = l.order_id LEFT JOIN users u "
	         "ON u.id = o.user_id");
	assert_int_equal(p.kind, JOIN_OUTER);
	for (int i = 0; i < p.n_sides; i++) {
		assert_false(p.sides[i].leads || p.sides[i].rides);
		assert_true(p.sides[i].whole);
	}
	join_plan_free(&p);
}

static void test_other_shapes_stay_refused(void **state)
{
	(void)state;
	not_planned("SELECT * FROM orders o JOIN order_lines l ON l.order_id = o.id "
	            "JOIN users u ON u.n > l.qty",
	            "every table is joined");
	not_planned("SELECT * FROM orders o JOIN order_lines l ON l.order_id = o.id "
	            "JOIN not_configured x ON x.id = o.id",
	            "default shard");
	not_planned("SELECT * FROM orders o JOIN order_lines l ON l.order_id > o.id", "a.x = b.y");
	not_planned("SELECT * FROM orders o JOIN order_lines l ON l.order_id = o.id "
	            "WHERE o.id IN (SELECT l2.order_id FROM order_lines l2 JOIN users u ON u.id = "
	            "l2.qty)",
	            "no other table");
	not_planned("SELECT * FROM orders o JOIN order_lines l USING (id)", "USING");
	not_planned("SELECT * FROM orders o JOIN order_lines l ON l.order_id = o.id FOR UPDATE",
	            "FOR UPDATE");
	not_planned(
	    "WITH x AS (SELECT 1) SELECT * FROM orders o JOIN order_lines l ON l.order_id = o.id",
	    "WITH");
}

static void test_refusal_says_what_a_join_across_shards_needs(void **state)
{
	route_plan_t p;

	(void)state;
	assert_int_equal(route_statement(&ctx,
	                                 "SELECT * FROM orders o JOIN order_lines l ON "
	                                 "l.order_id > o.id",
	                                 NULL, 0, &p),
	                 0);
	assert_int_equal(p.kind, ROUTE_REFUSE);
	assert_string_equal(p.sqlstate, "0A000");
	contains(p.error, "not co-located");
	contains(p.error, "(not run as a join across shards: a join across shards is planned with "
	                  "a condition a.x = b.y");
}

static void test_a_join_among_other_statements_runs_statement_by_statement(void **state)
{
	route_plan_t p;

	(void)state;
	assert_int_equal(route_statement(&ctx,
	                                 "SELECT 1; SELECT * FROM orders o JOIN order_lines l ON "
	                                 "l.order_id = o.id",
	                                 NULL, 0, &p),
	                 0);
	assert_true(p.batch);
	assert_int_equal(route_step_routed(&p)->kind, ROUTE_STEP_BATCH);
}

static void test_co_located_joins_are_not_join_steps(void **state)
{
	route_plan_t p;

	(void)state;
	assert_int_equal(route_statement(&ctx,
	                                 "SELECT * FROM users u JOIN orders o ON o.user_id = u.id "
	                                 "WHERE u.id = 5",
	                                 NULL, 0, &p),
	                 0);
	assert_int_equal(route_step_routed(&p)->kind, ROUTE_STEP_ONE);
	assert_false(p.join);
	assert_int_equal(route_statement(&ctx,
	                                 "SELECT * FROM users u JOIN countries c ON c.id = u.id",
	                                 NULL, 0, &p),
	                 0);
	assert_int_equal(route_step_routed(&p)->kind, ROUTE_STEP_EACH);
}

static void test_uncorrelated_subqueries_run_first_and_pass_their_answers(void **state)
{
	join_plan_t p;
	route_plan_t rp;

	(void)state;
	/* a scalar subquery: its table's rows with its own filters, then itself over them; its
	   answer is $1, the one sharded table of the statement fetched whole as $2 */
	p = plan("SELECT o.id FROM orders o WHERE o.total > (SELECT avg(l.qty) FROM order_lines l "
	         "WHERE l.qty > 2 AND now() > l.at)");
	assert_int_equal(p.n_subs, 1);
	assert_int_equal(p.subs[0].kind, JOIN_SUB_SCALAR);
	assert_int_equal(p.subs[0].param, 1);
	assert_ptr_equal(p.subs[0].table, &cfg->tables[2]);
	assert_string_equal(p.subs[0].rows_sql,
	                    "SELECT ROW(l.*) FROM order_lines l WHERE l.qty > 2");
	assert_int_equal(p.subs[0].n_pushed, 1); /* not the one calling now() */
	assert_string_equal(p.subs[0].sql, "SELECT avg(l.qty) FROM pg_catalog.unnest($1::"
	                                   "order_lines[]) l WHERE l.qty > 2 AND now() > l.at");
	assert_int_equal(shard_set_count(&p.subs[0].shards), 3);
	assert_int_equal(p.kind, JOIN_ALONE);
	assert_int_equal(p.n_sides, 1);
	assert_true(p.sides[0].whole);
	assert_string_equal(p.final_sql, "SELECT o.id FROM pg_catalog.unnest($2::orders[]) o WHERE "
	                                 "o.total > $1");
	/* the filter with the answer goes down with the table: the answer is known by then */
	assert_string_equal(p.sides[0].sql, "SELECT ROW(o.*) FROM orders o WHERE o.total > $1");
	assert_int_equal(p.sides[0].n_params, 1);
	assert_int_equal(p.sides[0].params[0], 1);
	join_plan_free(&p);

	/* NOT IN, ANY and ALL: an array; EXISTS: a bool; no sharded table left: no side */
	p = plan("SELECT c.id FROM countries c WHERE c.id NOT IN (SELECT l.qty FROM order_lines l) "
	         "AND c.id > ANY (SELECT o.total FROM orders o) AND EXISTS (SELECT 1 FROM users)");
	assert_int_equal(p.n_subs, 3);
	assert_int_equal(p.subs[0].kind, JOIN_SUB_ARRAY);
	assert_int_equal(p.subs[1].kind, JOIN_SUB_ARRAY);
	assert_int_equal(p.subs[2].kind, JOIN_SUB_EXISTS);
	assert_int_equal(p.n_sides, 0);
	assert_string_equal(p.final_sql,
	                    "SELECT c.id FROM countries c WHERE NOT c.id = ANY($1) AND "
	                    "c.id > ANY($2) AND $3");
	join_plan_free(&p);

	/* a scalar subquery as a select-list item is named as PostgreSQL names its column */
	p = plan("SELECT (SELECT max(l.qty) FROM order_lines l), (SELECT count(*) AS n FROM "
	         "orders) FROM countries");
	assert_string_equal(p.final_sql, "SELECT $1 AS max, $2 AS n FROM countries");
	join_plan_free(&p);

	/* the client's parameters: each statement numbers its own from $1; the statement's
	   filters on its one table go down with it (bare names are that table's). Without
	   their values (as route_statement plans), the subquery's rows come from every shard
	   and it runs over them; with them, its own plan runs it on the one shard of
	   order_id = 9, as it is (direct) */
	{
		static const char sql[] = "SELECT * FROM orders WHERE user_id = $1 AND total > "
		                          "(SELECT avg(l.qty) FROM order_lines l WHERE "
		                          "l.order_id = $2 AND l.qty < $1)";
		route_param_t prm[2] = {{(const uint8_t *)"7", 1, 0, 0},
		                        {(const uint8_t *)"9", 1, 0, 0}};
		char err[300];

		assert_int_equal(join_plan_make(&ctx, sql, NULL, 0, &p, err, sizeof err), 1);
		assert_int_equal(p.n_params, 2);
		assert_int_equal(p.subs[0].param, 3);
		assert_false(p.subs[0].direct);
		assert_string_equal(p.subs[0].rows_sql, "SELECT ROW(l.*) FROM order_lines l WHERE "
		                                        "l.order_id = $1 AND l.qty < $2");
		assert_int_equal(p.subs[0].n_rows_params, 2);
		assert_int_equal(p.subs[0].rows_params[0], 2);
		assert_int_equal(p.subs[0].rows_params[1], 1);
		assert_int_equal(shard_set_count(&p.subs[0].shards), 3);
		assert_string_equal(p.subs[0].sql,
		                    "SELECT avg(l.qty) FROM pg_catalog.unnest($3::"
		                    "order_lines[]) l WHERE l.order_id = $1 AND l.qty < $2");
		assert_int_equal(p.subs[0].params[0], 2);
		assert_int_equal(p.subs[0].params[1], 1);
		join_plan_free(&p);

		assert_int_equal(join_plan_make(&ctx, sql, prm, 2, &p, err, sizeof err), 1);
		assert_true(p.subs[0].direct);
		assert_null(p.subs[0].rows_sql);
		assert_string_equal(p.subs[0].sql, "SELECT avg(l.qty) FROM order_lines l WHERE "
		                                   "l.order_id = $1 AND l.qty < $2");
		assert_int_equal(p.subs[0].n_params, 2);
		assert_int_equal(p.subs[0].params[0], 2);
		assert_int_equal(p.subs[0].params[1], 1);
		assert_int_equal(shard_set_count(&p.subs[0].shards), 1); /* order_id = 9 */
		assert_int_equal(shard_set_first(&p.subs[0].shards),
		                 shard_of("order_lines", "order_id", "9"));
		/* and the subquery's answer, $3, goes down with the filter that uses it */
		assert_int_equal(p.sides[0].n_pushed, 2);
		assert_int_equal(shard_set_count(&p.sides[0].shards), 1); /* user_id = 7 */
		assert_string_equal(
		    p.sides[0].sql,
		    "SELECT ROW(orders.*) FROM orders WHERE user_id = $1 AND total > $2");
		assert_int_equal(p.sides[0].n_params, 2);
		assert_int_equal(p.sides[0].params[0], 1);
		assert_int_equal(p.sides[0].params[1], 3);
		contains(p.final_sql,
		         "unnest($4::orders[]) orders WHERE user_id = $1 AND total > $3");
		join_plan_free(&p);
	}

	/* plain rows of several shards, only put together: run as it is there */
	p = plan("SELECT o.id FROM orders o WHERE o.note NOT IN (SELECT l.sku FROM order_lines l "
	         "WHERE l.qty > 2)");
	assert_true(p.subs[0].direct);
	assert_string_equal(p.subs[0].sql, "SELECT l.sku FROM order_lines l WHERE l.qty > 2");
	assert_int_equal(shard_set_count(&p.subs[0].shards), 3);
	join_plan_free(&p);

	/* with a join across shards: first the subquery, then the join as before */
	p = plan(
	    "SELECT o.id FROM orders o JOIN order_lines l ON l.order_id = o.id WHERE o.user_id "
	    "= 3 AND l.qty > (SELECT avg(u.n) FROM users u)");
	assert_int_equal(p.n_subs, 1);
	assert_int_equal(p.kind, JOIN_INNER);
	assert_int_equal(p.n_sides, 2);
	assert_false(p.sides[1].whole);
	contains(p.final_sql, "unnest($2::orders[]) o JOIN pg_catalog.unnest($3::order_lines[]) l");
	contains(p.final_sql, "l.qty > $1");
	join_plan_free(&p);

	/* route_statement: a join step on the shards of both maps */
	assert_int_equal(
	    route_statement(&ctx,
	                    "SELECT * FROM accounts WHERE name NOT IN (SELECT note FROM "
	                    "orders WHERE total > 5)",
	                    NULL, 0, &rp),
	    0);
	assert_int_equal(route_step_routed(&rp)->kind, ROUTE_STEP_JOIN);
	assert_int_equal(shard_set_count(&rp.shards), 3);
	contains(rp.reason, "first the array subquery over orders");
}

static void test_subqueries_that_cannot_run_first_stay_refused(void **state)
{
	(void)state;
	/* correlated by a qualified name of the outer query */
	not_planned("SELECT * FROM orders o WHERE o.total > (SELECT avg(l.qty) FROM order_lines l "
	            "WHERE l.sku = o.note OR l.qty > o.total)",
	            "equality");
	/* a row on the left of IN, two tables, a subquery inside, * as a scalar */
	not_planned(
	    "SELECT * FROM orders o WHERE (o.id, o.total) IN (SELECT l.order_id, l.qty FROM "
	    "order_lines l)",
	    "");
	not_planned("SELECT * FROM orders o WHERE o.total > (SELECT avg(l.qty) FROM order_lines l "
	            "JOIN users u ON u.id = l.qty)",
	            "");
	not_planned("SELECT * FROM orders o WHERE o.total > (SELECT max(l.qty) FROM order_lines l "
	            "WHERE l.qty IN (SELECT u.n FROM users u))",
	            "");
	not_planned("SELECT * FROM orders o WHERE o.total = (SELECT * FROM order_lines l)", "");
	/* a write is never a join */
	{
		route_plan_t rp;

		assert_int_equal(
		    route_statement(&ctx,
		                    "DELETE FROM orders WHERE total > (SELECT avg(qty) "
		                    "FROM order_lines)",
		                    NULL, 0, &rp),
		    0);
		assert_int_equal(rp.kind, ROUTE_REFUSE);
	}
}

static void test_full_and_mixed_outer_joins_fetch_every_table_whole(void **state)
{
	join_plan_t p;

	(void)state;
	p = plan(
	    "SELECT * FROM orders o FULL JOIN order_lines l ON l.order_id = o.id AND l.qty > 1 "
	    "WHERE o.user_id = 3");
	assert_int_equal(p.kind, JOIN_FULL);
	assert_int_equal(p.n_sides, 2);
	for (int i = 0; i < 2; i++) {
		assert_true(p.sides[i].whole);
		assert_int_equal(p.sides[i].n_pushed, 0); /* a FULL join keeps unmatched rows */
		assert_int_equal(p.sides[i].n_keys, 0);
		assert_int_equal(shard_set_count(&p.sides[i].shards), 3);
	}
	assert_string_equal(p.sides[0].sql, "SELECT ROW(o.*) FROM orders o");
	assert_string_equal(p.sides[1].sql, "SELECT ROW(l.*) FROM order_lines l");
	assert_string_equal(p.final_sql,
	                    "SELECT * FROM pg_catalog.unnest($1::orders[]) o FULL JOIN "
	                    "pg_catalog.unnest($2::order_lines[]) l ON l.order_id = o.id AND "
	                    "l.qty > 1 WHERE o.user_id = 3");
	join_plan_free(&p);

	p = plan("SELECT * FROM orders o LEFT JOIN order_lines l ON l.order_id = o.id "
	         "JOIN countries c ON c.id = o.id WHERE o.user_id = 3");
	assert_int_equal(p.kind, JOIN_OUTER);
	assert_true(p.sides[0].whole && p.sides[1].whole);
	assert_int_equal(p.sides[0].n_pushed + p.sides[1].n_pushed, 0);
	contains(p.final_sql, "JOIN countries c ON c.id = o.id");
	join_plan_free(&p);

	/* two sharded tables alone, LEFT: still driven by the left side, the right by keys */
	p = plan("SELECT * FROM orders o LEFT JOIN order_lines l ON l.order_id = o.id");
	assert_int_equal(p.kind, JOIN_LEFT);
	assert_false(p.sides[1].whole);
	join_plan_free(&p);
}

static void test_ctes_and_subqueries_in_from_fetch_their_tables_whole(void **state)
{
	join_plan_t p;

	(void)state;
	/* a CTE over another map joined to a table: both fetched whole, the CTE's own filter on
	   its one table (qualified) goes down with it, the statement runs over both */
	p = plan("WITH x AS (SELECT l.order_id, sum(l.qty) AS q FROM order_lines l WHERE l.qty > 1 "
	         "GROUP BY l.order_id) SELECT o.id, x.q FROM orders o JOIN x ON x.order_id = o.id "
	         "WHERE o.user_id = 3");
	assert_int_equal(p.kind, JOIN_WHOLE);
	assert_int_equal(p.n_sides, 2);
	assert_true(p.sides[0].whole && p.sides[1].whole);
	assert_string_equal(p.sides[1].table->name, "order_lines");
	assert_string_equal(p.sides[1].sql, "SELECT ROW(l.*) FROM order_lines l WHERE l.qty > 1");
	assert_int_equal(p.sides[1].n_pushed, 1);
	/* o is joined in its SELECT's FROM: its WHERE stays with the statement */
	assert_string_equal(p.sides[0].sql, "SELECT ROW(o.*) FROM orders o");
	assert_int_equal(p.sides[0].n_pushed, 0);
	contains(p.final_sql, "WITH x AS (SELECT l.order_id, sum(l.qty) AS q FROM "
	                      "pg_catalog.unnest($2::order_lines[]) l WHERE l.qty > 1");
	contains(p.final_sql, "FROM pg_catalog.unnest($1::orders[]) o JOIN x");
	join_plan_free(&p);

	/* a subquery in FROM alone: a bare name may be an outer query's, so not pushed */
	p = plan("SELECT s.n FROM (SELECT count(*) AS n FROM orders WHERE total > 5) s");
	assert_int_equal(p.kind, JOIN_WHOLE);
	assert_int_equal(p.n_sides, 1);
	assert_int_equal(p.sides[0].n_pushed, 0);
	assert_string_equal(p.final_sql,
	                    "SELECT s.n FROM (SELECT count(*) AS n FROM "
	                    "pg_catalog.unnest($1::orders[]) orders WHERE total > 5) s");
	join_plan_free(&p);

	/* stay refused: recursive, writing or locking CTEs, a CTE named as a table, a table
	   that is not in the config, and a CTE that reads no sharded table */
	not_planned(
	    "WITH RECURSIVE t AS (SELECT id FROM orders UNION ALL SELECT o.id FROM orders o "
	    "JOIN t ON o.id = t.id + 1) SELECT * FROM t JOIN order_lines l ON l.order_id = "
	    "t.id",
	    "");
	not_planned(
	    "WITH d AS (DELETE FROM orders RETURNING id) SELECT * FROM d JOIN order_lines l "
	    "ON l.order_id = d.id",
	    "");
	not_planned(
	    "WITH d AS (SELECT * FROM orders FOR UPDATE) SELECT * FROM d JOIN order_lines l "
	    "ON l.order_id = d.id",
	    "");
	not_planned("WITH users AS (SELECT * FROM orders) SELECT * FROM users u JOIN order_lines l "
	            "ON l.order_id = u.id",
	            "");
	not_planned("SELECT * FROM (SELECT * FROM orders) s JOIN not_configured x ON x.id = s.id",
	            "default shard");
	not_planned(
	    "WITH x AS (SELECT 1) SELECT * FROM orders o JOIN order_lines l ON l.order_id = o.id",
	    "WITH");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_orders_join_lines_of_one_user_drives_from_one_orders_shard),
	    cmocka_unit_test(test_probe_shard_is_the_shard_of_the_key),
	    cmocka_unit_test(test_inner_join_drives_from_the_side_its_filters_pin),
	    cmocka_unit_test(test_left_join_drives_from_the_left_and_keeps_where_on_the_right),
	    cmocka_unit_test(test_filters_with_functions_or_unqualified_columns_stay_in_the_final),
	    cmocka_unit_test(test_text_keys_and_aliases_are_quoted),
	    cmocka_unit_test(test_parameters_go_down_renumbered_and_pin_the_driving_side),
	    cmocka_unit_test(test_probe_keys_are_typed_as_the_driving_column),
	    cmocka_unit_test(test_reference_tables_stay_in_the_final_statement),
	    cmocka_unit_test(test_in_and_exists_subqueries_are_semi_joins),
	    cmocka_unit_test(test_three_tables_run_step_by_step),
	    cmocka_unit_test(test_co_located_pair_inside_a_join_is_one_step),
	    cmocka_unit_test(
	        test_co_located_pair_probed_by_its_shard_key_goes_to_the_owning_shards),
	    cmocka_unit_test(test_co_located_pair_parameters_go_down_numbered_once),
	    cmocka_unit_test(test_tables_not_co_located_stay_a_step_each),
	    cmocka_unit_test(test_other_shapes_stay_refused),
	    cmocka_unit_test(test_refusal_says_what_a_join_across_shards_needs),
	    cmocka_unit_test(test_a_join_among_other_statements_runs_statement_by_statement),
	    cmocka_unit_test(test_co_located_joins_are_not_join_steps),
	    cmocka_unit_test(test_uncorrelated_subqueries_run_first_and_pass_their_answers),
	    cmocka_unit_test(test_subqueries_that_cannot_run_first_stay_refused),
	    cmocka_unit_test(test_full_and_mixed_outer_joins_fetch_every_table_whole),
	    cmocka_unit_test(test_ctes_and_subqueries_in_from_fetch_their_tables_whole),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
