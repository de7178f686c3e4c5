/*
 * test_route_writes.c — statement routing (router/route.h) of writes,
 * pinned: INSERT (one row, rows on one shard or several, parameters,
 * INSERT ... SELECT, ON CONFLICT), UPDATE of the key column, DDL, COPY, and
 * the statements a multi-row INSERT is split into.
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

/* ---- INSERT ---- */

static void test_insert_single_row_goes_to_its_shard(void **state)
{
	const char *sql = "INSERT INTO users (name, id) VALUES ('ann', 42) RETURNING id";
	route_plan_t p = route(sql);

	(void)state;
	expect_keys(sql, &p, "users", KEYS(42));
	assert_true(p.is_write);
	assert_false(p.split_insert);
	assert_int_equal(p.key_column, 1);
	expect_reason(sql, &p, "users.id = 42");
	ROUTES_TO("INSERT INTO orders (user_id, total) VALUES ('7'::bigint, 1.5)", "users", 7);
	ROUTES_TO("INSERT INTO public.users (id) VALUES (8)", "users", 8);
	ROUTES_TO("INSERT INTO sites (region_id) VALUES (1500)", "regions", 1500);
}

static void test_insert_rows_on_one_shard_is_not_split(void **state)
{
	int64_t b = key_beside("users", 10);
	char sql[128];
	route_plan_t p;

	(void)state;
	snprintf(sql, sizeof sql, "INSERT INTO users (id) VALUES (10), (%lld)", (long long)b);
	p = route(sql);
	expect_keys(sql, &p, "users", KEYS(10));
	assert_false(p.split_insert);
}

static void test_insert_rows_on_several_shards_is_split(void **state)
{
	int64_t b = key_elsewhere("users", 10);
	char sql[128];
	route_plan_t p;

	(void)state;
	snprintf(sql, sizeof sql, "INSERT INTO users (id, name) VALUES (10, 'a'), (%lld, 'b')",
	         (long long)b);
	p = route(sql);
	expect_keys(sql, &p, "users", KEYS(10, b));
	assert_true(p.split_insert);
	assert_true(p.is_write);
	assert_int_equal(p.key_column, 0);
	expect_reason(sql, &p, "split");
}

static void test_insert_with_parameters(void **state)
{
	int64_t b = key_elsewhere("users", 5);
	char bs[32];
	uint8_t b8[8];
	route_param_t prm[2];
	route_plan_t p;
	const char *sql = "INSERT INTO users (id, name) VALUES ($1, 'a'), ($2, 'b')";

	(void)state;
	snprintf(bs, sizeof bs, "%lld", (long long)b);
	put_be(b8, 5, 8);
	prm[0] = (route_param_t){.data = b8, .len = 8, .format = 1, .type_oid = SHARD_OID_INT8};
	prm[1] = text_param(bs);
	p = route_params(sql, prm, 2);
	expect_keys(sql, &p, "users", KEYS(5, b));
	assert_true(p.split_insert);
	/* at Parse, without values: every shard of the map, and the caller is told */
	p = route(sql);
	expect_map_all(sql, &p, "users");
	assert_true(p.params_missing);
	assert_false(p.split_insert);
}

static void test_insert_without_column_list_is_refused(void **state)
{
	(void)state;
	REFUSED("INSERT INTO users VALUES (1, 'a')", "explicit column list", "column id",
	        "INSERT INTO users (id, ...)");
	REFUSED("INSERT INTO orders DEFAULT VALUES", "column list", "user_id");
	REFUSED("INSERT INTO users SELECT * FROM users", "column list");
}

static void test_insert_without_the_key_column_is_refused(void **state)
{
	(void)state;
	REFUSED("INSERT INTO users (name) VALUES ('x')", "key column id", "users");
	REFUSED("INSERT INTO orders (id, total) VALUES (1, 2)", "key column user_id");
}

static void test_insert_key_must_be_a_constant_or_parameter(void **state)
{
	(void)state;
	REFUSED("INSERT INTO users (id) VALUES (DEFAULT)", "constant or a parameter", "DEFAULT");
	REFUSED("INSERT INTO users (id) VALUES (1), (1 + 1)", "constant or a parameter", "row 2",
	        "expression");
	REFUSED("INSERT INTO users (id) VALUES (nextval('users_id_seq'))",
	        "constant or a parameter");
	REFUSED("INSERT INTO users (id) VALUES (NULL)", "cannot be NULL");
	REFUSED("INSERT INTO users (id) VALUES ('abc')", "'abc'", "not a valid bigint key");
	/* a numeric literal with a non-zero fraction is no bigint key */
	REFUSED("INSERT INTO users (id) VALUES (5.5)", "not a valid bigint key");
}

/* INSERT ... VALUES without a column list: the proxy writes the list in from the catalog. */
static void test_insert_without_column_list_gets_one(void **state)
{
	char *cols[] = {"id", "Name", "n"};
	char *query, *table, *out, err[256];
	route_plan_t p;

	(void)state;
	p = route("INSERT INTO users VALUES (1, 'a')");
	assert_int_equal(p.kind, ROUTE_REFUSE);
	assert_true(p.needs_columns);
	p = route("INSERT INTO users SELECT * FROM users");
	assert_false(p.needs_columns); /* not VALUES: no list the proxy could write */
	assert_int_equal(route_insert_columns_query("INSERT INTO public.users VALUES (1)", &query,
	                                            &table, err, sizeof err),
	                 0);
	assert_string_equal(table, "\"public\".\"users\"");
	/* to_regclass: a missing table gives no rows, not an error in the client's transaction */
	assert_non_null(strstr(query, "pg_catalog.to_regclass('\"public\".\"users\"')"));
	assert_non_null(strstr(query, "ORDER BY attnum"));
	free(query);
	free(table);
	assert_int_equal(
	    route_insert_columns("INSERT INTO users VALUES (1, 'a'), (2, 'b') RETURNING "
	                         "id",
	                         cols, 3, &out, err, sizeof err),
	    0);
	assert_string_equal(
	    out, "INSERT INTO users (id, \"Name\") VALUES (1, 'a'), (2, 'b') RETURNING id");
	p = route(out);
	assert_false(p.needs_columns);
	assert_int_equal(p.kind, ROUTE_SHARDS);
	free(out);
	assert_int_equal(route_insert_columns("INSERT INTO users VALUES (1, 2, 3, 4)", cols, 3,
	                                      &out, err, sizeof err),
	                 -1);
	assert_non_null(strstr(err, "more expressions than target columns"));
	assert_int_equal(route_insert_columns("INSERT INTO users (id) VALUES (1)", cols, 3, &out,
	                                      err, sizeof err),
	                 -1);
}

/*
 * Over the extended protocol the Parse gets the column list before any
 * Bind: its parameters stay parameters, and the rewritten statement routes
 * by the key's parameter at each Bind, split per shard when its rows are.
 */
static void test_insert_without_column_list_keeps_its_parameters(void **state)
{
	char *cols[] = {"id", "name", "n"};
	int64_t b = key_elsewhere("users", 5);
	char bs[32], *out, err[256];
	uint8_t bin[8];
	route_param_t prm[4];
	route_split_t *splits;
	route_plan_t p;
	int n;

	(void)state;
	p = route("INSERT INTO users VALUES ($1, $2)");
	assert_int_equal(p.kind, ROUTE_REFUSE);
	assert_true(p.needs_columns);
	assert_int_equal(route_insert_columns("INSERT INTO users VALUES ($1, $2::text) RETURNING *",
	                                      cols, 3, &out, err, sizeof err),
	                 0);
	assert_string_equal(out, "INSERT INTO users (id, name) VALUES ($1, $2::text) RETURNING *");
	prm[0] = text_param("5");
	prm[1] = text_param("a");
	p = route_params(out, prm, 2);
	expect_one(out, &p, ROUTE_SHARDS, shard_of("users", 5));
	put_be(bin, (uint64_t)b, 8); /* a binary int8 key */
	prm[0] = (route_param_t){.data = bin, .len = 8, .format = 1, .type_oid = 20};
	p = route_params(out, prm, 2);
	expect_one(out, &p, ROUTE_SHARDS, shard_of("users", b));
	free(out);

	/* several rows: split per shard with each one's own parameters */
	assert_int_equal(route_insert_columns("INSERT INTO users VALUES ($1, $2), ($3, $4)", cols,
	                                      3, &out, err, sizeof err),
	                 0);
	snprintf(bs, sizeof bs, "%lld", (long long)b);
	prm[0] = text_param("5");
	prm[1] = text_param("a");
	prm[2] = text_param(bs);
	prm[3] = text_param("b");
	assert_int_equal(route_split_insert_params(&ctx, out, prm, 4, &splits, &n, err, sizeof err),
	                 0);
	assert_int_equal(n, 2);
	for (int i = 0; i < n; i++)
		assert_string_equal(splits[i].sql, "INSERT INTO users (id, name) VALUES ($1, $2)");
	route_splits_free(splits, n);
	free(out);
}

/* With its parameters' values, each shard's INSERT binds only the parameters its rows use. */
static void test_split_insert_with_parameters(void **state)
{
	int64_t b = key_elsewhere("users", 5);
	char sql[256], bs[32], err[256];
	route_param_t prm[5];
	route_split_t *splits;
	int n, first, second;

	(void)state;
	snprintf(bs, sizeof bs, "%lld", (long long)b);
	prm[0] = text_param("5");
	prm[1] = text_param("a");
	prm[2] = text_param(bs);
	prm[3] = text_param("b");
	prm[4] = text_param("x");
	snprintf(
	    sql, sizeof sql,
	    "INSERT INTO users (id, name) VALUES ($1, $2), ($3, $4), ($1, $5) ON CONFLICT (id) "
	    "DO UPDATE SET name = $5 RETURNING id");
	assert_int_equal(route_split_insert_params(&ctx, sql, prm, 5, &splits, &n, err, sizeof err),
	                 0);
	assert_int_equal(n, 2);
	first = splits[0].shard == shard_of("users", 5) ? 0 : 1;
	second = 1 - first;
	assert_string_equal(splits[first].sql,
	                    "INSERT INTO users (id, name) VALUES ($1, $2), ($1, $3) "
	                    "ON CONFLICT (id) DO UPDATE SET name = $3 RETURNING id");
	assert_int_equal(splits[first].n_params, 3);
	assert_int_equal(splits[first].param_map[0], 1);
	assert_int_equal(splits[first].param_map[1], 2);
	assert_int_equal(splits[first].param_map[2], 5);
	assert_string_equal(splits[second].sql,
	                    "INSERT INTO users (id, name) VALUES ($1, $2) ON "
	                    "CONFLICT (id) DO UPDATE SET name = $3 RETURNING id");
	assert_int_equal(splits[second].n_params, 3);
	assert_int_equal(splits[second].param_map[0], 3);
	assert_int_equal(splits[second].param_map[1], 4);
	assert_int_equal(splits[second].param_map[2], 5);
	/* with RETURNING, where each shard's rows were in the VALUES list */
	assert_int_equal(splits[first].n_rows, 2);
	assert_int_equal(splits[first].rows[0], 0);
	assert_int_equal(splits[first].rows[1], 2);
	assert_int_equal(splits[second].n_rows, 1);
	assert_int_equal(splits[second].rows[0], 1);
	route_splits_free(splits, n);
}

/* Without RETURNING there are no rows to put in order: the splits do not say where theirs were. */
static void test_split_insert_without_returning_has_no_row_positions(void **state)
{
	int64_t b = key_elsewhere("users", 5);
	route_split_t *splits;
	char sql[256], err[256];
	int n;

	(void)state;
	snprintf(sql, sizeof sql, "INSERT INTO users (id, name) VALUES (5, 'a'), (%lld, 'b')",
	         (long long)b);
	assert_int_equal(route_split_insert(&ctx, sql, &splits, &n, err, sizeof err), 0);
	assert_int_equal(n, 2);
	for (int i = 0; i < n; i++) {
		assert_null(splits[i].rows);
		assert_int_equal(splits[i].n_rows, 0);
	}
	route_splits_free(splits, n);
}

/* A numeric literal that is an integer is that integer, as PostgreSQL compares and stores it. */
static void test_numeric_literals_with_zero_fraction_are_integer_keys(void **state)
{
	(void)state;
	ROUTES_TO("SELECT * FROM users WHERE id = 5.0", "users", 5);
	ROUTES_TO("SELECT * FROM users WHERE id = 50e-1", "users", 5);
	ROUTES_TO("SELECT * FROM users WHERE id = 0.5E+1", "users", 5);
	ROUTES_TO("SELECT * FROM users WHERE id = -7.000", "users", -7);
	ROUTES_TO("SELECT * FROM users WHERE id = -0.0", "users", 0);
	ROUTES_TO("SELECT * FROM users WHERE id = 9223372036854775807.0", "users",
	          9223372036854775807LL);
	ROUTES_TO("INSERT INTO users (id, name) VALUES (5.0, 'x')", "users", 5);
	ROUTES_TO("SELECT * FROM users WHERE id IN (5.0, 7)", "users", 5, 7);
	/* not an integer, or past bigint: any shard may hold it (none does) */
	ROUTES_TO_ALL_OF("SELECT * FROM users WHERE id = 5.5", "users");
	ROUTES_TO_ALL_OF("SELECT * FROM users WHERE id = 9223372036854775808.0", "users");
	ROUTES_TO_ALL_OF("SELECT * FROM users WHERE id = 1e30", "users");
}

static void test_insert_select_from_co_located_table(void **state)
{
	(void)state;
	ROUTES_TO_ALL_OF("INSERT INTO orders (user_id, total) SELECT id, 0 FROM users", "users");
	ROUTES_TO("INSERT INTO orders (user_id, total) SELECT u.id, 0 FROM users u WHERE u.id = 5",
	          "users", 5);
	ROUTES_TO("INSERT INTO orders (user_id, total) SELECT 6, 0", "users", 6);
	ROUTES_TO("INSERT INTO orders (user_id, cc) SELECT 7, code FROM countries", "users", 7);
}

/* An INSERT ... SELECT whose rows go to their keys' shards: its SELECT's shards, to move_to. */
static void expect_insert_select(const char *sql, const char *map, const char *from)
{
	route_plan_t p = route(sql);
	char want[64], got[64];

	check_plan_invariants(sql, &p);
	if (p.kind == ROUTE_REFUSE)
		fail_msg("\"%s\": refused: %s", sql, p.error);
	assert_true(p.insert_select);
	assert_false(p.key_move);
	assert_true(p.is_write);
	assert_int_equal(p.n_steps, 1);
	assert_int_equal(p.steps[0].kind, ROUTE_STEP_INSERT_SELECT);
	assert_int_equal(route_plan_commit(&p), ROUTE_COMMIT_TWO_PHASE);
	set_print(got, sizeof got, &p.steps[0].shards);
	if (strcmp(from, got) != 0)
		fail_msg("\"%s\": its SELECT runs on %s, want %s", sql, got, from);
	set_print(want, sizeof want, &map_named(map)->all);
	set_print(got, sizeof got, &p.move_to);
	if (strcmp(want, got) != 0)
		fail_msg("\"%s\": rows go to %s, want %s", sql, got, want);
}

static void test_insert_select_of_other_shards_rows_goes_row_by_row(void **state)
{
	char one[16], sql[160];
	int64_t b = key_elsewhere("users", 5);

	(void)state;
	snprintf(one, sizeof one, "%d", shard_of("users", 5));
	/* a reference table: read on the default shard */
	expect_insert_select("INSERT INTO orders (user_id) SELECT code FROM countries", "users",
	                     "1");
	expect_insert_select("INSERT INTO orders (user_id) SELECT id + 1 FROM users", "users",
	                     "0,1,2");
	expect_insert_select("INSERT INTO orders (user_id, n) SELECT id + 1, n FROM users WHERE "
	                     "id = 5",
	                     "users", one);
	/* a constant key of another shard than the one read */
	snprintf(sql, sizeof sql,
	         "INSERT INTO orders (user_id) SELECT %lld FROM users WHERE id = 5", (long long)b);
	expect_insert_select(sql, "users", one);
	expect_insert_select("INSERT INTO orders (user_id) SELECT 5 FROM users", "users", "0,1,2");
	expect_insert_select("INSERT INTO orders (user_id) SELECT * FROM users", "users", "0,1,2");
	/* another map's table, a table not in the config (the default shard) */
	expect_insert_select("INSERT INTO users (id) SELECT region_id FROM sites WHERE region_id "
	                     "= 1500",
	                     "users", "1");
	expect_insert_select("INSERT INTO accounts (name) SELECT name FROM local_t", "names", "1");
	expect_insert_select("WITH x AS (SELECT id FROM users) INSERT INTO orders (user_id) "
	                     "SELECT id + 1 FROM x",
	                     "users", "0,1,2");
	expect_insert_select("INSERT INTO orders (user_id, n) SELECT id + 1, 'x' FROM users ON "
	                     "CONFLICT (user_id) DO UPDATE SET n = excluded.n",
	                     "users", "0,1,2");
	/* a SELECT pgshard concatenates: UNION ALL, a co-located join */
	expect_insert_select("INSERT INTO orders (user_id) SELECT id + 1 FROM users UNION ALL "
	                     "SELECT user_id + 2 FROM orders",
	                     "users", "0,1,2");
	/* a key parameter not given yet: every shard until it is */
	expect_insert_select("INSERT INTO orders (user_id) SELECT $1::int8 + id FROM users WHERE "
	                     "id = $2",
	                     "users", "0,1,2");
	/* what stays where it is read runs there, as before */
	ROUTES_TO("INSERT INTO orders (user_id, n) SELECT id, n FROM users WHERE id = 5", "users",
	          5);
	ROUTES_TO("INSERT INTO orders (user_id) SELECT 5 FROM users WHERE id = 5", "users", 5);
	ROUTES_TO_ALL_OF("INSERT INTO orders (user_id, n) SELECT id, n FROM users", "users");
	/* UPDATE or DELETE of such tables reading sharded rows stays refused */
	REFUSED("UPDATE local_t SET id = u.id FROM users u WHERE u.n = local_t.n", "local_t",
	        "not in the config");
}

/* Into a table that is not sharded: the rows the proxy reads go to the default shard (a
 * table not in the config) or to every shard (a reference table). */
static void test_insert_select_into_tables_that_are_not_sharded(void **state)
{
	const char *const sql[] = {
	    "INSERT INTO local_t (id) SELECT id FROM users",
	    "INSERT INTO countries (code) SELECT country FROM users WHERE id = 1",
	};
	route_insel_t m;
	char err[256];

	(void)state;
	for (int i = 0; i < 2; i++) {
		route_plan_t p = route(sql[i]);
		char got[64];

		check_plan_invariants(sql[i], &p);
		if (p.kind == ROUTE_REFUSE)
			fail_msg("\"%s\": refused: %s", sql[i], p.error);
		assert_true(p.insert_select);
		assert_int_equal(p.steps[0].kind, ROUTE_STEP_INSERT_SELECT);
		assert_null(p.map);
		set_print(got, sizeof got, &p.move_to);
		assert_string_equal(got, i == 0 ? "1" : "0,1,2");
		assert_int_equal(route_insel_prepare(&ctx, sql[i], &m, err, sizeof err), 0);
		assert_int_equal(m.map, -1);
		assert_int_equal(m.n_columns, 1);
		assert_non_null(strstr(m.select_sql, ", NULL::pg_catalog.text FROM ("));
		route_insel_free(&m);
	}
}

static void test_insert_select_that_cannot_go_row_by_row_is_refused(void **state)
{
	(void)state;
	/* rows the proxy would have to merge across shards */
	REFUSED("INSERT INTO orders (user_id) SELECT count(*) FROM users", "combines their rows");
	REFUSED("INSERT INTO orders (user_id) SELECT id + 1 FROM users ORDER BY id LIMIT 3",
	        "combines their rows");
	REFUSED("INSERT INTO orders (user_id) SELECT DISTINCT n::int8 FROM users",
	        "combines their rows");
	REFUSED("INSERT INTO orders (user_id) SELECT id + 1 FROM users RETURNING *", "RETURNING");
	REFUSED("WITH d AS (DELETE FROM users RETURNING id) INSERT INTO orders (user_id) SELECT id "
	        "+ 1 FROM d",
	        "WITH that writes");
	REFUSED("INSERT INTO orders (user_id, n) SELECT id + 1, n FROM users ON CONFLICT (user_id) "
	        "DO UPDATE SET n = $1",
	        "parameters");
	REFUSED("INSERT INTO orders (user_id) SELECT id + 1 FROM users ON CONFLICT (user_id) DO "
	        "UPDATE SET user_id = 7",
	        "ON CONFLICT", "user_id");
	REFUSED("EXPLAIN INSERT INTO orders (user_id) SELECT id + 1 FROM users", "EXPLAIN");
	/* with other statements: each as a query of its own, or refused when it cannot */
	expect_batch("INSERT INTO orders (user_id) SELECT id + 1 FROM users; SELECT 1");
	REFUSED("WITH x AS (INSERT INTO orders (user_id) SELECT id + 1 FROM users RETURNING 1) "
	        "SELECT * FROM x",
	        "INSERT ... SELECT", "user_id");
	/* the SELECT's own refusal */
	REFUSED("INSERT INTO orders (user_id) SELECT u.id + 1 FROM users u JOIN orders o ON u.n = "
	        "o.n",
	        "joined");
	/* no column list: pgshard cannot know where the key is */
	REFUSED("INSERT INTO orders SELECT id + 1 FROM users", "column list");
}

static void test_insert_select_statements(void **state)
{
	route_insel_t m;
	char err[256], *ins;

	(void)state;
	assert_int_equal(route_insel_prepare(&ctx,
	                                     "INSERT INTO orders (n, user_id, note) SELECT n, id "
	                                     "+ 1, 'x' FROM users WHERE id = $1 ON CONFLICT DO "
	                                     "NOTHING",
	                                     &m, err, sizeof err),
	                 0);
	assert_string_equal(m.select_sql,
	                    "SELECT pgshard_s.*, (pgshard_s.pgshard_2)::pg_catalog.int8::pg_"
	                    "catalog.text FROM (SELECT n, id + 1, 'x' FROM users WHERE id = $1) AS "
	                    "pgshard_s(pgshard_1, pgshard_2)");
	assert_int_equal(m.n_columns, 3);
	assert_int_equal(m.unknown[0], ROUTE_INSEL_TYPED);
	assert_int_equal(m.unknown[1], ROUTE_INSEL_TYPED);
	assert_int_equal(m.unknown[2], ROUTE_INSEL_UNKNOWN); /* read as the column's type */
	assert_int_equal(m.map, map_named("users") - ctx.maps);
	ins = route_insel_insert_sql(&m, 2);
	assert_string_equal(ins, "INSERT INTO orders (n, user_id, note) VALUES ($1, $2, $3), ($4, "
	                         "$5, $6) ON CONFLICT DO NOTHING");
	free(ins);
	route_insel_free(&m);
	/* the INSERT's WITH goes with its SELECT; a text key; a parameter as a column */
	assert_int_equal(route_insel_prepare(&ctx,
	                                     "WITH s AS (SELECT name FROM local_t) INSERT INTO "
	                                     "accounts AS a (name, v) OVERRIDING USER VALUE "
	                                     "SELECT name, $1 FROM s",
	                                     &m, err, sizeof err),
	                 0);
	assert_string_equal(m.select_sql,
	                    "SELECT pgshard_s.*, (pgshard_s.pgshard_1)::pg_catalog.text::pg_catalog"
	                    ".text FROM (WITH s AS (SELECT name FROM local_t) SELECT name, $1 FROM "
	                    "s) AS pgshard_s(pgshard_1)");
	assert_int_equal(m.unknown[1], 1);
	ins = route_insel_insert_sql(&m, 1);
	assert_string_equal(ins, "INSERT INTO accounts AS a (name, v) OVERRIDING USER VALUE VALUES "
	                         "($1, $2)");
	free(ins);
	route_insel_free(&m);
	assert_int_equal(route_insel_prepare(&ctx, "UPDATE users SET id = 1", &m, err, sizeof err),
	                 -1);
}

static void test_insert_on_conflict(void **state)
{
	int64_t b = key_elsewhere("users", 1);
	char sql[256];

	(void)state;
	ROUTES_TO("INSERT INTO users (id, n) VALUES (1, 'x') ON CONFLICT DO NOTHING", "users", 1);
	ROUTES_TO("INSERT INTO users (id, n) VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET n = "
	          "excluded.n, id = excluded.id",
	          "users", 1);
	snprintf(sql, sizeof sql,
	         "INSERT INTO users (id) VALUES (1) ON CONFLICT (id) DO UPDATE SET id = %lld",
	         (long long)b);
	REFUSED(sql, "ON CONFLICT", "another shard");
}

/* ---- UPDATE of the key ---- */

/* An UPDATE that may move rows runs as a MOVE step on its rows' shards, to move_to. */
static void expect_move(const char *sql, const route_plan_t *p, const char *map, int64_t from,
                        const shard_set_t *to)
{
	char want[64], got[64];

	expect_keys(sql, p, map, KEYS(from));
	assert_true(p->key_move);
	assert_int_equal(route_step_routed(p)->kind, ROUTE_STEP_MOVE);
	assert_int_equal(route_plan_commit(p), ROUTE_COMMIT_TWO_PHASE);
	set_print(want, sizeof want, to);
	set_print(got, sizeof got, &p->move_to);
	if (strcmp(want, got) != 0)
		fail_msg("\"%s\": rows move to %s, want %s", sql, got, want);
}

static void test_update_of_the_key_column_moves_rows(void **state)
{
	int64_t b = key_elsewhere("users", 5);
	shard_set_t one, all = map_named("users")->all;
	char sql[128];
	route_plan_t p;

	(void)state;
	shard_set_clear(&one);
	shard_set_add(&one, shard_of("users", b));
	snprintf(sql, sizeof sql, "UPDATE users SET id = %lld WHERE id = 5", (long long)b);
	p = route(sql);
	expect_move(sql, &p, "users", 5, &one);
	p = route("UPDATE users SET id = id + 1 WHERE id = 5");
	expect_move("UPDATE users SET id = id + 1 WHERE id = 5", &p, "users", 5, &all);
	p = route("UPDATE orders SET user_id = (SELECT 1) WHERE user_id = 5");
	expect_move("UPDATE orders SET user_id = (SELECT 1) WHERE user_id = 5", &p, "users", 5,
	            &all);
	p = route("UPDATE users SET id = 5");
	assert_true(p.key_move);
	assert_int_equal(shard_set_count(&p.shards), shard_set_count(&all));
	/* what cannot run as a move is still refused */
	REFUSED("WITH x AS (UPDATE users SET id = 6 WHERE id = 5 RETURNING *) SELECT * FROM x",
	        "key column id");
	REFUSED("WITH x AS (SELECT 1) UPDATE users SET id = id + 1 WHERE id = 5", "key column id");
	expect_batch(
	    "UPDATE users SET id = id + 1 WHERE id = 5; UPDATE users SET name = 'x' WHERE id = 5");
	REFUSED("MERGE INTO users u USING (SELECT 1 AS id) s ON u.id = s.id WHEN MATCHED THEN "
	        "UPDATE SET id = 9",
	        "key column id");
	REFUSED("EXPLAIN ANALYZE UPDATE users SET id = id + 1 WHERE id = 5", "EXPLAIN ANALYZE");
	p = route("EXPLAIN UPDATE users SET id = id + 1 WHERE id = 5");
	assert_false(p.key_move);
	expect_keys("EXPLAIN UPDATE", &p, "users", KEYS(5));
}

static void test_update_of_the_key_to_a_parameter_is_decided_by_its_value(void **state)
{
	const char *sql = "UPDATE users SET id = $1 WHERE id = $2";
	char moved[32];
	route_param_t prm[2] = {text_param("5"), text_param("5")};
	route_plan_t p = route_params(sql, prm, 2);
	shard_set_t to;

	(void)state;
	expect_keys(sql, &p, "users", KEYS(5));
	assert_false(p.key_move);
	snprintf(moved, sizeof moved, "%lld", (long long)key_elsewhere("users", 5));
	prm[0] = text_param(moved);
	p = route_params(sql, prm, 2);
	shard_set_clear(&to);
	shard_set_add(&to, shard_of("users", key_elsewhere("users", 5)));
	expect_move(sql, &p, "users", 5, &to);
	/* at Parse, before the values are known: not a move yet */
	p = route(sql);
	expect_map_all(sql, &p, "users");
	assert_true(p.params_missing);
}

static void test_move_statements(void **state)
{
	route_move_t m;
	char err[256], *ins;
	char *cols[] = {"id", "Name", "a\"b"};

	(void)state;
	assert_int_equal(route_move_prepare(&ctx, "UPDATE users SET id = id + 1 WHERE id = 5", &m,
	                                    err, sizeof err),
	                 0);
	assert_string_equal(m.update_sql,
	                    "UPDATE users SET id = id + 1 WHERE id = 5 RETURNING "
	                    "users.tableoid::pg_catalog.text, users.ctid::pg_catalog.text, "
	                    "users.id::pg_catalog.text, ROW(users.*)::pg_catalog.text");
	assert_string_equal(m.relation, "\"users\"");
	assert_non_null(strstr(m.delete_sql, "DELETE FROM \"users\" WHERE tableoid"));
	assert_non_null(strstr(m.columns_sql, "'\"users\"'::pg_catalog.regclass"));
	assert_int_equal(m.map, map_named("users") - ctx.maps);
	ins = route_move_insert_sql(&m, cols, 3);
	assert_string_equal(ins, "INSERT INTO \"users\" (\"id\", \"Name\", \"a\"\"b\") OVERRIDING "
	                         "SYSTEM VALUE SELECT \"id\", \"Name\", \"a\"\"b\" FROM (SELECT "
	                         "($1::\"users\").*) AS pgshard_row");
	free(ins);
	route_move_free(&m);
	/* an alias, a schema and the client's own RETURNING list, kept first */
	assert_int_equal(route_move_prepare(&ctx,
	                                    "UPDATE public.orders AS o SET user_id = 7 WHERE "
	                                    "user_id = 5 RETURNING o.*, 1 AS one",
	                                    &m, err, sizeof err),
	                 0);
	assert_non_null(strstr(m.update_sql,
	                       "RETURNING o.*, 1 AS one, o.tableoid::pg_catalog.text, "
	                       "o.ctid::pg_catalog.text, o.user_id::pg_catalog.text, "
	                       "ROW(o.*)::pg_catalog.text"));
	assert_string_equal(m.relation, "\"public\".\"orders\"");
	route_move_free(&m);
	assert_int_equal(route_move_prepare(&ctx, "DELETE FROM users", &m, err, sizeof err), -1);
	assert_non_null(strstr(err, "only an UPDATE"));
	assert_int_equal(
	    route_move_prepare(&ctx, "UPDATE countries SET code = 'x'", &m, err, sizeof err), -1);
}

static void test_update_of_the_key_to_a_value_on_the_same_shard_is_allowed(void **state)
{
	int64_t b = key_beside("users", 5);
	char sql[128];
	route_plan_t p;

	(void)state;
	ROUTES_TO("UPDATE users SET id = 5, name = 'x' WHERE id = 5", "users", 5);
	ROUTES_TO("UPDATE users SET (id, name) = (5, 'x') WHERE id = 5", "users", 5);
	ROUTES_TO("UPDATE users u SET id = u.id WHERE u.id IN (1, 2)", "users", 1, 2);
	snprintf(sql, sizeof sql, "UPDATE users SET id = %lld WHERE id = 5", (long long)b);
	p = route(sql);
	expect_keys(sql, &p, "users", KEYS(5));
	assert_true(p.is_write);
}

/* ---- DDL ---- */

static void test_ddl_on_sharded_and_reference_tables_goes_to_every_shard(void **state)
{
	const char *sqls[] = {
	    "CREATE TABLE users (id bigint PRIMARY KEY, name text)",
	    "CREATE TABLE IF NOT EXISTS public.orders (user_id bigint, total numeric)",
	    "ALTER TABLE users ADD COLUMN age int",
	    "ALTER TABLE public.orders RENAME COLUMN total TO amount",
	    "DROP TABLE orders",
	    "DROP TABLE IF EXISTS local_t, users CASCADE",
	    "CREATE INDEX users_name_idx ON users (name)",
	    "CREATE UNIQUE INDEX CONCURRENTLY ON orders (user_id, id)",
	    "TRUNCATE users, orders",
	    "VACUUM ANALYZE users",
	    "ANALYZE countries",
	    "COMMENT ON TABLE users IS 'people'",
	    "COMMENT ON COLUMN public.users.name IS 'full name'",
	    "GRANT SELECT ON users TO reporting",
	    "REVOKE ALL ON countries FROM PUBLIC",
	    "CREATE TABLE countries (code text PRIMARY KEY)",
	    "DROP TRIGGER t ON users",
	    "CREATE TRIGGER t BEFORE INSERT ON orders FOR EACH ROW EXECUTE FUNCTION f()",
	    "GRANT SELECT ON ALL TABLES IN SCHEMA public TO reporting",
	};

	(void)state;
	for (size_t i = 0; i < sizeof sqls / sizeof sqls[0]; i++) {
		route_plan_t p = route(sqls[i]);

		expect_every_shard(sqls[i], &p);
		if (!p.is_ddl || !p.is_write)
			fail_msg("\"%s\": expected is_ddl and is_write", sqls[i]);
	}
}

static void test_constraints_that_cannot_hold_across_shards_are_refused(void **state)
{
	const char *ok[] = {
	    "CREATE TABLE users (id bigint PRIMARY KEY, n text)",
	    "CREATE TABLE orders (id bigserial, user_id bigint, PRIMARY KEY (user_id, id))",
	    "CREATE TABLE orders (id bigint, user_id bigint REFERENCES users (id))",
	    "CREATE TABLE orders (id bigint, user_id bigint, FOREIGN KEY (user_id, id) REFERENCES "
	    "users (id, n))",
	    "CREATE TABLE orders (id bigint, user_id bigint, c text REFERENCES countries (code))",
	    "CREATE TABLE countries (code text PRIMARY KEY, n text UNIQUE)",
	    "CREATE UNIQUE INDEX ON orders (id, user_id)",
	    "CREATE INDEX ON orders (id)",
	    "ALTER TABLE orders ADD CONSTRAINT o_pk PRIMARY KEY (user_id, id)",
	    "ALTER TABLE orders ADD PRIMARY KEY USING INDEX orders_idx",
	    "ALTER TABLE orders ADD COLUMN c text REFERENCES countries (code)",
	    "CREATE TABLE orders (id bigint, user_id bigint, EXCLUDE USING gist (user_id WITH =, "
	    "id WITH <>))",
	    "INSERT INTO users (id, n) VALUES (1, 'a') ON CONFLICT (id) DO NOTHING",
	    "INSERT INTO users (id, n) VALUES (1, 'a') ON CONFLICT DO NOTHING",
	    "INSERT INTO users (id, n) VALUES (1, 'a') ON CONFLICT ON CONSTRAINT users_pkey DO "
	    "NOTHING",
	    "INSERT INTO countries (code, n) VALUES ('fr', 'x') ON CONFLICT (n) DO NOTHING",
	};

	(void)state;
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		route_plan_t p = route(ok[i]);

		if (p.kind == ROUTE_REFUSE)
			fail_msg("\"%s\": refused: %s", ok[i], p.error);
	}
	REFUSED("CREATE TABLE orders (id bigserial PRIMARY KEY, user_id bigint)",
	        "PRIMARY KEY on sharded table orders", "include user_id",
	        "PRIMARY KEY (user_id, id)");
	REFUSED("CREATE TABLE orders (id bigint, user_id bigint, email text UNIQUE)",
	        "UNIQUE constraint", "UNIQUE (user_id, email)");
	REFUSED("CREATE TABLE orders (id bigint, user_id bigint, UNIQUE (id))",
	        "UNIQUE constraint");
	REFUSED("CREATE UNIQUE INDEX ON orders (id)", "UNIQUE index", "user_id");
	REFUSED("CREATE UNIQUE INDEX ON orders ((id + user_id))", "UNIQUE index");
	REFUSED("ALTER TABLE orders ADD CONSTRAINT o_u UNIQUE (id)", "UNIQUE constraint");
	REFUSED("ALTER TABLE orders ADD COLUMN email text UNIQUE", "UNIQUE constraint");
	REFUSED("CREATE TABLE orders (id bigint, user_id bigint, EXCLUDE USING gist (id WITH =))",
	        "EXCLUDE", "(user_id WITH =)");
	/* foreign keys: only through the key to the same map, or to a reference table */
	REFUSED(
	    "CREATE TABLE orders (id bigint, user_id bigint, other bigint REFERENCES users (id))",
	    "FOREIGN KEY from sharded table orders", "pairs orders's shard key user_id");
	REFUSED("CREATE TABLE orders (id bigint, user_id bigint REFERENCES users)",
	        "must name the referenced columns");
	{
		route_plan_t p =
		    route("CREATE TABLE orders (id bigint, user_id bigint, FOREIGN KEY "
		          "(user_id, id) REFERENCES orders)");

		/* the same key column in both: the keys pair */
		assert_int_equal(p.kind, ROUTE_ALL);
	}
	REFUSED("CREATE TABLE orders (id bigint, user_id bigint REFERENCES sites (region_id))",
	        "both tables are on one map");
	REFUSED("CREATE TABLE orders (id bigint, user_id bigint REFERENCES audit (id))",
	        "not in the config");
	REFUSED("CREATE TABLE countries (code text, u bigint REFERENCES users (id))",
	        "from reference table countries to sharded table users");
	REFUSED("CREATE TABLE audit (id bigint, user_id bigint REFERENCES users (id))",
	        "from audit to sharded table users", "default shard only");
	REFUSED("ALTER TABLE audit ADD FOREIGN KEY (user_id) REFERENCES users (id)",
	        "from audit to sharded table users");
	/* ON CONFLICT needs a unique index that holds: one with the key */
	REFUSED("INSERT INTO orders (id, user_id) VALUES (1, 5) ON CONFLICT (id) DO NOTHING",
	        "ON CONFLICT on columns of sharded table orders without its shard key user_id");
	REFUSED("INSERT INTO orders (id, user_id) VALUES (1, 5) ON CONFLICT (id) DO UPDATE SET "
	        "id = 2",
	        "ON CONFLICT");
}

/* The statement route_split_ids writes for shard k of {0, 1, 2}. */
static char *ids_sql(const char *sql, int k)
{
	shard_set_t all;
	route_split_t *splits;
	char err[256], *out;
	int n;

	shard_set_clear(&all);
	for (int i = 0; i < 3; i++)
		shard_set_add(&all, i);
	if (route_split_ids(&ctx, sql, &all, &splits, &n, err, sizeof err) != 0)
		fail_msg("\"%s\": %s", sql, err);
	assert_int_equal(n, 3);
	assert_int_equal(splits[k].shard, k);
	out = strdup(splits[k].sql);
	route_splits_free(splits, n);
	return out;
}

static void expect_ids_sql(const char *sql, int k, const char *want)
{
	char *got = ids_sql(sql, k);

	if (strcmp(got, want) != 0)
		fail_msg("\"%s\" on shard %d:\n  got  %s\n  want %s", sql, k, got, want);
	free(got);
}

static void test_ids_are_unique_across_shards(void **state)
{
	route_plan_t p;

	(void)state;
	p = route("CREATE TABLE orders (id bigserial, user_id bigint, PRIMARY KEY (user_id, id))");
	assert_true(p.ids_split);
	assert_int_equal(route_step_routed(&p)->kind, ROUTE_STEP_EACH);
	expect_ids_sql("CREATE TABLE orders (id bigserial, user_id bigint)", 0,
	               "CREATE TABLE orders (id bigint GENERATED BY DEFAULT AS IDENTITY (START 1 "
	               "INCREMENT 256 ), user_id bigint)");
	expect_ids_sql("CREATE TABLE orders (id serial PRIMARY KEY, user_id bigint)", 2,
	               "CREATE TABLE orders (id int PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY "
	               "(START 3 INCREMENT 256 ), user_id bigint)");
	/* the user's own numbering, spread: start + k * increment, step increment * 256 */
	expect_ids_sql(
	    "CREATE TABLE orders (id int GENERATED ALWAYS AS IDENTITY (START WITH 100 "
	    "INCREMENT BY 10 CACHE 5), user_id bigint)",
	    1,
	    "CREATE TABLE orders (id int GENERATED ALWAYS AS IDENTITY (CACHE 5 START 110 "
	    "INCREMENT 2560 ), user_id bigint)");
	expect_ids_sql("CREATE SEQUENCE s INCREMENT BY -1", 2,
	               "CREATE SEQUENCE s START -3 INCREMENT -256");
	expect_ids_sql("ALTER TABLE orders ADD COLUMN n bigserial", 1,
	               "ALTER TABLE orders ADD COLUMN n bigint GENERATED BY DEFAULT AS IDENTITY "
	               "(START 2 INCREMENT 256 )");
	expect_ids_sql("ALTER TABLE orders ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY", 1,
	               "ALTER TABLE orders ALTER id ADD GENERATED ALWAYS AS IDENTITY (START 2 "
	               "INCREMENT 256 )");
	/* sequences live on every shard; what would break the interleaving is refused */
	p = route("CREATE SEQUENCE s");
	assert_true(p.ids_split);
	assert_int_equal(p.kind, ROUTE_ALL);
	p = route("DROP SEQUENCE s");
	assert_false(p.ids_split);
	assert_int_equal(p.kind, ROUTE_ALL);
	p = route("ALTER SEQUENCE s OWNED BY orders.id");
	assert_int_equal(p.kind, ROUTE_ALL);
	p = route("CREATE TEMP SEQUENCE s");
	assert_false(p.ids_split);
	p = route("CREATE TABLE audit (id bigserial)"); /* not sharded: the default shard's own */
	assert_false(p.ids_split);
	REFUSED("ALTER SEQUENCE s RESTART WITH 5", "ALTER SEQUENCE RESTART");
	REFUSED("ALTER SEQUENCE s INCREMENT BY 5", "ALTER SEQUENCE INCREMENT");
	REFUSED("CREATE SEQUENCE s CYCLE", "CYCLE");
	REFUSED("ALTER TABLE orders ALTER COLUMN id RESTART", "RESTART");
	expect_batch(
	    "CREATE TABLE orders (id bigserial, user_id bigint); CREATE INDEX ON orders (id)");
}

static void test_ddl_on_other_tables_goes_to_default_shard(void **state)
{
	const char *sqls[] = {
	    "CREATE TABLE audit (id bigint, user_id bigint)",
	    "DROP TABLE audit",
	    "CREATE INDEX ON audit (id)",
	    "ALTER TABLE audit ADD FOREIGN KEY (user_id) REFERENCES audit_users (id)",
	    "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
	    "DROP INDEX users_name_idx",
	    "CREATE TEMP TABLE users (id bigint)",
	};

	(void)state;
	for (size_t i = 0; i < sizeof sqls / sizeof sqls[0]; i++) {
		route_plan_t p = route(sqls[i]);

		expect_one(sqls[i], &p, ROUTE_DEFAULT, cfg->default_shard);
	}
}

static void test_create_table_as_and_views(void **state)
{
	const char *sql = "CREATE TABLE c2 AS SELECT * FROM countries";
	route_plan_t p = route(sql);

	(void)state;
	expect_one(sql, &p, ROUTE_DEFAULT, cfg->default_shard);
	assert_true(p.is_ddl);
	REFUSED("CREATE TABLE u2 AS SELECT * FROM users", "users", "CREATE TABLE");
	REFUSED("SELECT * INTO u2 FROM users WHERE id = 1", "users");
	REFUSED("CREATE TABLE orders AS SELECT * FROM users", "orders");
	REFUSED("CREATE VIEW v AS SELECT * FROM users", "view v", "[table.v]");
	sql = "CREATE TABLE orders AS SELECT * FROM users WITH NO DATA";
	p = route(sql);
	expect_every_shard(sql, &p);
	sql = "CREATE VIEW widgets AS SELECT * FROM users";
	p = route(sql);
	expect_every_shard(sql, &p);
}

/* ---- COPY ---- */

static void test_copy_from_stdin_is_split_over_the_map(void **state)
{
	const char *sql = "COPY users FROM STDIN";
	route_plan_t p = route(sql);

	(void)state;
	expect_map_all(sql, &p, "users");
	assert_true(p.split_insert);
	assert_true(p.is_write);
	assert_int_equal(p.key_column, -1);
	sql = "COPY orders (total, user_id) FROM STDIN WITH (FORMAT csv)";
	p = route(sql);
	expect_map_all(sql, &p, "users");
	assert_true(p.split_insert);
	assert_int_equal(p.key_column, 1);
	REFUSED("COPY orders (total) FROM STDIN", "key column user_id");
	REFUSED("COPY users FROM '/tmp/users.csv'", "STDIN");
	REFUSED("COPY users FROM PROGRAM 'cat x'", "STDIN");
}

static void test_copy_to_routes_like_the_query(void **state)
{
	const char *sql = "COPY users TO STDOUT";
	route_plan_t p = route(sql);

	(void)state;
	expect_map_all(sql, &p, "users");
	assert_false(p.split_insert);
	assert_false(p.is_write);
	ROUTES_TO("COPY (SELECT * FROM orders WHERE user_id = 3) TO STDOUT WITH (FORMAT binary)",
	          "users", 3);
	REFUSED("COPY users TO '/tmp/out'", "STDOUT");
}

static void test_copy_of_reference_and_other_tables(void **state)
{
	const char *sql = "COPY countries FROM STDIN";
	route_plan_t p = route(sql);

	(void)state;
	expect_every_shard(sql, &p);
	sql = "COPY countries TO STDOUT";
	p = route(sql);
	expect_one(sql, &p, ROUTE_ANY, cfg->default_shard);
	expect_default("COPY local_t FROM STDIN");
}

/* ---- splitting a multi-row INSERT ---- */

/*
 * How each row of an INSERT ... VALUES reads once parsed: "i:-3|s:it's|null|
 * cast(s:7)|f:1.5|call" (the values PostgreSQL will insert, not their spelling).
 */
static void node_text(char *out, size_t n, const PgQuery__Node *v)
{
	const PgQuery__AConst *c;

	if (v->node_case == PG_QUERY__NODE__NODE_TYPE_CAST) {
		char inner[200];

		node_text(inner, sizeof inner, v->type_cast->arg);
		snprintf(out, n, "cast(%s)", inner);
		return;
	}
	if (v->node_case != PG_QUERY__NODE__NODE_A_CONST) {
		snprintf(out, n, v->node_case == PG_QUERY__NODE__NODE_FUNC_CALL ? "call" : "?");
		return;
	}
	c = v->a_const;
	if (c->isnull)
		snprintf(out, n, "null");
	else if (c->val_case == PG_QUERY__A__CONST__VAL_IVAL)
		snprintf(out, n, "i:%d", c->ival != NULL ? (int)c->ival->ival : 0);
	else if (c->val_case == PG_QUERY__A__CONST__VAL_FVAL)
		snprintf(out, n, "f:%s", c->fval->fval);
	else if (c->val_case == PG_QUERY__A__CONST__VAL_SVAL)
		snprintf(out, n, "s:%s", c->sval->sval);
	else
		snprintf(out, n, "?");
}

/* The rows of an INSERT, one string each, in order; returns how many. */
static size_t insert_rows(const char *sql, char rows[][512], size_t max)
{
	PgQueryProtobufParseResult r = pg_query_parse_protobuf(sql);
	PgQuery__ParseResult *tree;
	const PgQuery__SelectStmt *sel;
	size_t n;

	if (r.error != NULL)
		fail_msg("\"%s\" does not parse: %s", sql, r.error->message);
	tree = pg_query__parse_result__unpack(NULL, r.parse_tree.len,
	                                      (const uint8_t *)r.parse_tree.data);
	assert_non_null(tree);
	assert_int_equal(tree->n_stmts, 1);
	assert_int_equal(tree->stmts[0]->stmt->node_case, PG_QUERY__NODE__NODE_INSERT_STMT);
	sel = tree->stmts[0]->stmt->insert_stmt->select_stmt->select_stmt;
	n = sel->n_values_lists;
	assert_true(n <= max);
	for (size_t i = 0; i < n; i++) {
		const PgQuery__List *l = sel->values_lists[i]->list;
		size_t k = 0;

		rows[i][0] = '\0';
		for (size_t j = 0; j < l->n_items; j++) {
			char item[256];

			node_text(item, sizeof item, l->items[j]);
			k += (size_t)snprintf(rows[i] + k, 512 - k, "%s%s", j ? "|" : "", item);
		}
	}
	pg_query__parse_result__free_unpacked(tree, NULL);
	pg_query_free_protobuf_parse_result(r);
	return n;
}

static void test_split_insert_makes_one_statement_per_shard(void **state)
{
	const char *sql =
	    "INSERT INTO users (id, name, note) VALUES (1, 'it''s', NULL), (2, E'tab\\there', "
	    "'x'::text), (3, 'caf\xc3\xa9', now()), ('4'::int8, $$dollar$$, 1.5), (-5, "
	    "'back\\slash', "
	    "-2), (6, E'quote\\'s', 'a\n'\n'b'), (7, '', 99999999999), (8, 'x', DEFAULT) ON "
	    "CONFLICT (id) DO UPDATE SET name = excluded.name RETURNING id, name";
	char orig[16][512], got[16][512];
	bool seen[16] = {false};
	route_split_t *splits;
	route_plan_t plan = route(sql);
	int n;
	char err[256];
	size_t n_orig = insert_rows(sql, orig, 16), n_got = 0;

	(void)state;
	assert_true(plan.split_insert);
	assert_int_equal(route_split_insert(&ctx, sql, &splits, &n, err, sizeof err), 0);
	assert_int_equal(n, shard_set_count(&plan.shards));
	for (int i = 0; i < n; i++) {
		route_plan_t q = route(splits[i].sql);
		size_t rows, last = 0;

		/* ascending shards, each statement on its own shard, nothing to split again */
		if (i > 0)
			assert_true(splits[i].shard > splits[i - 1].shard);
		expect_one(splits[i].sql, &q, ROUTE_SHARDS, splits[i].shard);
		assert_false(q.split_insert);
		assert_non_null(strstr(splits[i].sql, "INSERT INTO users (id, name, note) VALUES"));
		assert_non_null(strstr(splits[i].sql, "ON CONFLICT (id) DO UPDATE SET name = "
		                                      "excluded.name RETURNING id, name"));
		/* every row once, with its values, in the original order within the shard */
		rows = insert_rows(splits[i].sql, got, 16);
		for (size_t r = 0; r < rows; r++) {
			size_t k = 0;

			while (k < n_orig && (seen[k] || strcmp(orig[k], got[r]) != 0))
				k++;
			if (k == n_orig)
				fail_msg("row \"%s\" of shard %d is not an original row", got[r],
				         splits[i].shard);
			assert_true(r == 0 || k > last);
			/* RETURNING: the split says where each of its rows was */
			assert_int_equal(splits[i].n_rows, rows);
			assert_int_equal(splits[i].rows[r], k);
			seen[k] = true;
			last = k;
		}
		n_got += rows;
	}
	assert_int_equal(n_got, n_orig);
	/* the values PostgreSQL inserts, not only their spelling */
	assert_string_equal(orig[0], "i:1|s:it's|null");
	assert_string_equal(orig[1], "i:2|s:tab\there|cast(s:x)");
	assert_string_equal(orig[4], "i:-5|s:back\\slash|i:-2");
	assert_string_equal(orig[5], "i:6|s:quote's|s:a\nb");
	route_splits_free(splits, n);
}

static void test_split_insert_refuses_what_it_cannot_split(void **state)
{
	int64_t b = key_elsewhere("users", 1);
	route_split_t *splits = (route_split_t *)&b;
	char sql[256], err[256];
	int n = 7;

	(void)state;
	snprintf(sql, sizeof sql, "INSERT INTO users (id, name) VALUES ($1, 'a'), (%lld, $2)",
	         (long long)b);
	assert_int_equal(route_split_insert(&ctx, sql, &splits, &n, err, sizeof err), -1);
	assert_string_equal(err, "a multi-row INSERT with parameters whose rows go to several "
	                         "shards cannot be split without their values");
	assert_null(splits);
	assert_int_equal(n, 0);
	assert_int_equal(route_split_insert(&ctx, "INSERT INTO users (id) VALUES (1)", &splits, &n,
	                                    err, sizeof err),
	                 -1);
	assert_int_equal(
	    route_split_insert(&ctx, "COPY users FROM STDIN", &splits, &n, err, sizeof err), -1);
	assert_int_equal(
	    route_split_insert(&ctx, "SELECT * FROM users", &splits, &n, err, sizeof err), -1);
	snprintf(sql, sizeof sql, "INSERT INTO users (id) VALUES (1), (%lld) ORDER BY 1 LIMIT 1",
	         (long long)b);
	assert_int_equal(route_split_insert(&ctx, sql, &splits, &n, err, sizeof err), -1);
	REFUSED(sql, "LIMIT/OFFSET picks among all of them");
	snprintf(sql, sizeof sql,
	         "/* pgshard: shard=0 */ INSERT INTO users (id) VALUES (1), (%lld)", (long long)b);
	assert_int_equal(route_split_insert(&ctx, sql, &splits, &n, err, sizeof err), -1);
	assert_null(splits);
	route_splits_free(NULL, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_insert_single_row_goes_to_its_shard),
	    cmocka_unit_test(test_insert_rows_on_one_shard_is_not_split),
	    cmocka_unit_test(test_insert_rows_on_several_shards_is_split),
	    cmocka_unit_test(test_insert_with_parameters),
	    cmocka_unit_test(test_insert_without_column_list_is_refused),
	    cmocka_unit_test(test_insert_without_the_key_column_is_refused),
	    cmocka_unit_test(test_insert_key_must_be_a_constant_or_parameter),
	    cmocka_unit_test(test_insert_select_from_co_located_table),
	    cmocka_unit_test(test_insert_select_of_other_shards_rows_goes_row_by_row),
	    cmocka_unit_test(test_insert_select_into_tables_that_are_not_sharded),
	    cmocka_unit_test(test_insert_select_that_cannot_go_row_by_row_is_refused),
	    cmocka_unit_test(test_insert_select_statements),
	    cmocka_unit_test(test_insert_on_conflict),
	    cmocka_unit_test(test_update_of_the_key_column_moves_rows),
	    cmocka_unit_test(test_move_statements),
	    cmocka_unit_test(test_insert_without_column_list_keeps_its_parameters),
	    cmocka_unit_test(test_split_insert_with_parameters),
	    cmocka_unit_test(test_split_insert_without_returning_has_no_row_positions),
	    cmocka_unit_test(test_insert_without_column_list_gets_one),
	    cmocka_unit_test(test_numeric_literals_with_zero_fraction_are_integer_keys),
	    cmocka_unit_test(test_constraints_that_cannot_hold_across_shards_are_refused),
	    cmocka_unit_test(test_ids_are_unique_across_shards),
	    cmocka_unit_test(test_update_of_the_key_to_a_value_on_the_same_shard_is_allowed),
	    cmocka_unit_test(test_update_of_the_key_to_a_parameter_is_decided_by_its_value),
	    cmocka_unit_test(test_ddl_on_sharded_and_reference_tables_goes_to_every_shard),
	    cmocka_unit_test(test_ddl_on_other_tables_goes_to_default_shard),
	    cmocka_unit_test(test_create_table_as_and_views),
	    cmocka_unit_test(test_copy_from_stdin_is_split_over_the_map),
	    cmocka_unit_test(test_copy_to_routes_like_the_query),
	    cmocka_unit_test(test_copy_of_reference_and_other_tables),
	    cmocka_unit_test(test_split_insert_makes_one_statement_per_shard),
	    cmocka_unit_test(test_split_insert_refuses_what_it_cannot_split),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
