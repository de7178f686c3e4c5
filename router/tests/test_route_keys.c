/*
 * test_route_keys.c — statement routing (router/route.h) by the keys a
 * statement names, pinned: the routing context and the names it prints, the
 * default shard, reference tables, key predicates (=, IN, = ANY, AND, OR,
 * casts), parameters in text and binary, and range maps.
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

/* ---- the context and the names ---- */

static void test_kind_names_are_the_documented_words(void **state)
{
	(void)state;
	assert_string_equal(route_kind_name(ROUTE_DEFAULT), "default");
	assert_string_equal(route_kind_name(ROUTE_SHARDS), "shards");
	assert_string_equal(route_kind_name(ROUTE_ANY), "any");
	assert_string_equal(route_kind_name(ROUTE_ALL), "all");
	assert_string_equal(route_kind_name(ROUTE_REFUSE), "refuse");
}

static void test_ctx_builds_one_shard_map_per_config_map(void **state)
{
	(void)state;
	assert_non_null(ctx.maps);
	for (int i = 0; i < cfg->n_maps; i++)
		assert_ptr_equal(ctx.maps[i].cfg, &cfg->maps[i]);
	assert_int_equal(shard_set_count(&map_named("names")->all), 2);
	assert_false(shard_set_has(&map_named("names")->all, 0));
}

static void test_ctx_free_twice_is_harmless(void **state)
{
	route_ctx_t c;
	char err[256];

	(void)state;
	assert_int_equal(route_ctx_init(&c, cfg, err, sizeof err), 0);
	route_ctx_free(&c);
	assert_null(c.maps);
	route_ctx_free(&c);
}

/* ---- the default shard ---- */

static void test_statement_that_does_not_parse_goes_to_default_shard(void **state)
{
	route_plan_t p = route("SELEC * FROM users WHERE id = 1");

	(void)state;
	expect_one("SELEC", &p, ROUTE_DEFAULT, cfg->default_shard);
	expect_reason("SELEC", &p, "does not parse");
}

static void test_statements_without_tables_go_to_default_shard(void **state)
{
	route_plan_t p = route("SELECT 1");

	(void)state;
	expect_reason("SELECT 1", &p, "no sharded table");
	expect_default("SELECT 1");
	expect_default("SELECT version()");
	expect_default("SELECT now(), current_user");
	expect_default("");
	expect_default("  -- only a comment\n");
}

static void test_set_show_and_transaction_control_go_to_default_shard(void **state)
{
	(void)state;
	expect_default("SET search_path = app, public");
	expect_default("SET LOCAL statement_timeout = 0");
	expect_default("RESET ALL");
	expect_default("SHOW server_version");
	expect_default("SHOW ALL");
	expect_default("BEGIN");
	expect_default("START TRANSACTION ISOLATION LEVEL SERIALIZABLE");
	expect_default("COMMIT");
	expect_default("ROLLBACK");
	expect_default("SAVEPOINT a");
	expect_default("LISTEN events");
	expect_default("DISCARD ALL");
	expect_default("FETCH 10 FROM c");
}

static void test_catalog_queries_go_to_default_shard(void **state)
{
	(void)state;
	expect_default("SELECT * FROM pg_catalog.pg_class WHERE relname = 'users'");
	expect_default("SELECT * FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace");
	expect_default("SELECT column_name FROM information_schema.columns WHERE table_name = "
	               "'users'");
	expect_default("SELECT * FROM information_schema.tables");
	expect_default("SELECT * FROM pg_catalog.pg_tables WHERE tablename = 'orders'");
}

static void test_tables_not_in_config_go_to_default_shard(void **state)
{
	route_plan_t p = route("UPDATE settings SET v = 1 WHERE k = 'x'");

	(void)state;
	expect_default("SELECT * FROM settings");
	expect_default("SELECT * FROM app.settings s JOIN logs l ON l.id = s.id");
	expect_one("update", &p, ROUTE_DEFAULT, cfg->default_shard);
	assert_true(p.is_write);
}

/* ---- reference tables ---- */

static void test_reference_table_read_goes_to_one_shard(void **state)
{
	const char *sql = "SELECT * FROM countries WHERE code = 'fr'";
	route_plan_t p = route(sql);

	(void)state;
	expect_one(sql, &p, ROUTE_ANY, cfg->default_shard);
	assert_false(p.is_write);
	expect_reason(sql, &p, "reference table countries, read");
	/* a table not in the config lives on the default shard, which has the copy too */
	sql = "SELECT * FROM countries c JOIN local_stats s ON s.code = c.code";
	p = route(sql);
	expect_one(sql, &p, ROUTE_ANY, cfg->default_shard);
}

/* A text key with bytes above 0x7F routes by bytes that depend on the client's encoding. */
static void test_plans_say_when_a_text_key_is_not_ascii(void **state)
{
	route_param_t cafe = text_param("caf\xc3\xa9");
	const char *encoded[] = {
	    "SELECT * FROM accounts WHERE name = 'caf\xc3\xa9'",
	    "SELECT * FROM accounts WHERE name IN ('bob', 'caf\xc3\xa9')",
	    "SELECT * FROM accounts WHERE name = ANY('{bob,caf\xc3\xa9}')",
	    "INSERT INTO accounts (name) VALUES ('bob'), ('caf\xc3\xa9')",
	    "UPDATE accounts SET n = 1 WHERE name = 'caf\xc3\xa9'",
	};
	const char *plain[] = {
	    "SELECT * FROM accounts WHERE name = 'cafe'",
	    "SELECT * FROM accounts WHERE name = 'cafe' AND note = 'caf\xc3\xa9'",
	    "SELECT * FROM users WHERE id = 7 AND name = 'caf\xc3\xa9'",
	};

	(void)state;
	for (size_t i = 0; i < sizeof encoded / sizeof encoded[0]; i++) {
		route_plan_t p = route(encoded[i]);

		if (!p.key_encoded)
			fail_msg("not marked: %s", encoded[i]);
	}
	for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++) {
		route_plan_t p = route(plain[i]);

		if (p.key_encoded)
			fail_msg("marked: %s", plain[i]);
	}
	assert_true(route_params("SELECT * FROM accounts WHERE name = $1", &cafe, 1).key_encoded);
	assert_true(route("/* pgshard: key=caf\xc3\xa9 */ SELECT * FROM accounts").key_encoded);
}

static void test_reference_table_writes_go_to_every_shard(void **state)
{
	const char *sqls[] = {
	    "INSERT INTO countries (code, name) VALUES ('fr', 'France')",
	    "UPDATE countries SET name = 'France' WHERE code = 'fr'",
	    "DELETE FROM countries WHERE code = 'xx'",
	    "WITH x AS (DELETE FROM countries WHERE code = 'xx' RETURNING *) SELECT * FROM x",
	};

	(void)state;
	for (size_t i = 0; i < sizeof sqls / sizeof sqls[0]; i++) {
		route_plan_t p = route(sqls[i]);

		expect_every_shard(sqls[i], &p);
		assert_true(p.is_write);
		assert_false(p.is_ddl);
	}
}

/* (INSERT ... SELECT into a reference table: test_route_writes.c) */
static void test_reference_write_reading_sharded_rows_is_refused(void **state)
{
	(void)state;
	REFUSED("UPDATE countries c SET n = u.n FROM users u WHERE u.cc = c.code", "countries");
	REFUSED("DELETE FROM countries WHERE code NOT IN (SELECT cc FROM orders)", "countries");
}

static void test_sharded_join_with_reference_table_routes_by_key(void **state)
{
	(void)state;
	ROUTES_TO("SELECT * FROM users u JOIN countries c ON c.code = u.cc WHERE u.id = 42",
	          "users", 42);
	ROUTES_TO("SELECT * FROM countries c, users u WHERE u.cc = c.code AND u.id = 7", "users",
	          7);
	ROUTES_TO(
	    "UPDATE users SET cc = c.code FROM countries c WHERE c.name = 'x' AND users.id = 9",
	    "users", 9);
}

/* ---- key predicates ---- */

static void test_key_equal_to_constant_goes_to_its_shard(void **state)
{
	const char *sql = "SELECT * FROM users WHERE id = 42";
	route_plan_t p = route(sql);
	char want[128];

	(void)state;
	expect_keys(sql, &p, "users", KEYS(42));
	assert_false(p.is_write);
	assert_false(p.split_insert);
	snprintf(want, sizeof want, "users.id = 42 -> shard %d (hash map users)",
	         shard_of("users", 42));
	assert_string_equal(p.reason, want);
	ROUTES_TO("SELECT name FROM orders WHERE user_id = 7 AND total > 10", "users", 7);
	ROUTES_TO("DELETE FROM users WHERE id = -3", "users", -3);
	ROUTES_TO("SELECT * FROM users WHERE id = 9223372036854775807", "users", INT64_MAX);
}

static void test_constant_on_the_left_of_the_key(void **state)
{
	(void)state;
	ROUTES_TO("SELECT * FROM users WHERE 42 = id", "users", 42);
	ROUTES_TO("SELECT * FROM users WHERE '43' = users.id", "users", 43);
}

static void test_aliases_and_qualified_names_resolve_to_their_table(void **state)
{
	(void)state;
	ROUTES_TO("SELECT * FROM users u WHERE u.id = 5", "users", 5);
	ROUTES_TO("SELECT * FROM users AS x WHERE x.id = 5", "users", 5);
	ROUTES_TO("SELECT * FROM users WHERE users.id = 5", "users", 5);
	ROUTES_TO("SELECT * FROM public.users WHERE public.users.id = 5", "users", 5);
	ROUTES_TO("SELECT * FROM orders o WHERE o.user_id = 6", "users", 6);
	/* o.id is not orders' key, and another alias's column is not this table's */
	ROUTES_TO_ALL_OF("SELECT * FROM orders o WHERE o.id = 6", "users");
	ROUTES_TO_ALL_OF("SELECT * FROM users u, local_t t WHERE t.id = 6", "users");
	/* a name hidden by an alias is not the table (PostgreSQL rejects it) */
	ROUTES_TO_ALL_OF("SELECT * FROM users u WHERE users.id = 5", "users");
}

static void test_schema_qualified_tables_match_config_names(void **state)
{
	(void)state;
	/* public.users finds [table.users]; widgets finds [table.public.widgets] */
	ROUTES_TO("SELECT * FROM public.users WHERE id = 11", "users", 11);
	ROUTES_TO("SELECT * FROM widgets WHERE id = 12", "users", 12);
	ROUTES_TO("SELECT * FROM public.widgets w WHERE w.id = 13", "users", 13);
	ROUTES_TO("SELECT * FROM \"users\" WHERE \"id\" = 14", "users", 14);
	/* quoted mixed case is another table */
	expect_default("SELECT * FROM \"Users\" WHERE id = 14");
}

static void test_string_literal_and_casts_around_constants(void **state)
{
	(void)state;
	ROUTES_TO("SELECT * FROM users WHERE id = '42'", "users", 42);
	ROUTES_TO("SELECT * FROM users WHERE id = '42'::int8", "users", 42);
	ROUTES_TO("SELECT * FROM users WHERE id = '42'::bigint", "users", 42);
	ROUTES_TO("SELECT * FROM users WHERE id = 42::int4", "users", 42);
	ROUTES_TO("SELECT * FROM users WHERE id = CAST('42' AS bigint)", "users", 42);
	ROUTES_TO("SELECT * FROM users WHERE id = CAST(CAST('42' AS text) AS int8)", "users", 42);
	ROUTES_TO("SELECT * FROM users WHERE id = 99999999999", "users", 99999999999LL);
}

static void test_casts_that_can_change_the_value_do_not_constrain(void **state)
{
	(void)state;
	/* '42.7'::numeric::int8 is 43; a router guess would be wrong */
	ROUTES_TO_ALL_OF("SELECT * FROM users WHERE id = '42.7'::numeric::int8", "users");
	ROUTES_TO_ALL_OF("SELECT * FROM accounts WHERE name = 'abcdef'::varchar(2)", "names");
	ROUTES_TO_ALL_OF("SELECT * FROM users WHERE id = 42.7::int8", "users");
	/* bigint = 42.0 is bigint = 42 (compared as numeric): no guess */
	ROUTES_TO("SELECT * FROM users WHERE id = 42.0", "users", 42);
	ROUTES_TO_ALL_OF("SELECT * FROM users WHERE id::text = '42'", "users");
}

static void test_key_in_list_goes_to_the_shards_of_its_values(void **state)
{
	const char *sql = "SELECT * FROM orders WHERE user_id IN (1, 2, 3)";
	route_plan_t p = route(sql);

	(void)state;
	expect_keys(sql, &p, "users", KEYS(1, 2, 3));
	expect_reason(sql, &p, "orders.user_id IN (1, 2, 3) -> shard");
	ROUTES_TO("SELECT * FROM users WHERE id IN ('4', 5::int8, 6)", "users", 4, 5, 6);
	/* NULL in the list matches nothing */
	ROUTES_TO("SELECT * FROM users WHERE id IN (7, NULL)", "users", 7);
	ROUTES_TO_ALL_OF("SELECT * FROM users WHERE id NOT IN (1, 2)", "users");
	ROUTES_TO_ALL_OF("SELECT * FROM users WHERE id IN (1, id + 1)", "users");
}

static void test_key_any_array_literal_and_constructor(void **state)
{
	(void)state;
	ROUTES_TO("SELECT * FROM users WHERE id = ANY('{1,2}')", "users", 1, 2);
	ROUTES_TO("SELECT * FROM users WHERE id = ANY('{1, 2, 30}'::bigint[])", "users", 1, 2, 30);
	ROUTES_TO("SELECT * FROM users WHERE id = ANY('{{1,2},{3,4}}'::int8[])", "users", 1, 2, 3,
	          4);
	ROUTES_TO("SELECT * FROM users WHERE id = ANY('{\"5\", NULL}')", "users", 5);
	ROUTES_TO("SELECT * FROM users WHERE id = ANY(ARRAY[1, 2])", "users", 1, 2);
	ROUTES_TO("SELECT * FROM users WHERE id = ANY(ARRAY['8', 9]::bigint[])", "users", 8, 9);
	ROUTES_TO_ALL_OF("SELECT * FROM users WHERE id = ANY('{1,x}')", "users");
	ROUTES_TO_ALL_OF("SELECT * FROM users WHERE id <> ALL('{1,2}')", "users");
	ROUTES_TO_ALL_OF("SELECT * FROM users WHERE id = ANY(some_column)", "users");
}

static void test_text_key_any_array_uses_unescaped_elements(void **state)
{
	const char *sql = "SELECT * FROM accounts WHERE name = ANY('{\"a b\",c\\,d}')";
	route_plan_t p = route(sql);
	shard_set_t want;

	(void)state;
	shard_set_clear(&want);
	shard_set_add(&want, shard_of_text("names", "a b"));
	shard_set_add(&want, shard_of_text("names", "c,d"));
	expect_set(sql, &p, ROUTE_SHARDS, &want);
}

static void test_key_any_text_array_parameter(void **state)
{
	const char *sql = "SELECT * FROM users WHERE id = ANY($1)";
	route_param_t prm = text_param("{1,2,3}");
	route_plan_t p = route_params(sql, &prm, 1);

	(void)state;
	expect_keys(sql, &p, "users", KEYS(1, 2, 3));
	prm = text_param("{}");
	p = route_params(sql, &prm, 1);
	/* no element: no row; still never zero shards */
	expect_kind(sql, &p, ROUTE_SHARDS);
	assert_true(shard_set_count(&p.shards) >= 1);
}

static void test_key_any_binary_array_parameter(void **state)
{
	const char *sql = "SELECT * FROM users WHERE id = ANY($1::bigint[])";
	uint8_t buf[20 + 3 * 12];
	size_t n = 0;
	const int64_t vals[] = {21, 22, 23};
	route_param_t prm;
	route_plan_t p;

	(void)state;
	put_be(buf + n, 1, 4); /* ndim */
	n += 4;
	put_be(buf + n, 0, 4); /* flags */
	n += 4;
	put_be(buf + n, SHARD_OID_INT8, 4);
	n += 4;
	put_be(buf + n, 3, 4); /* dim */
	n += 4;
	put_be(buf + n, 1, 4); /* lower bound */
	n += 4;
	for (int i = 0; i < 3; i++) {
		put_be(buf + n, 8, 4);
		n += 4;
		put_be(buf + n, (uint64_t)vals[i], 8);
		n += 8;
	}
	prm = (route_param_t){.data = buf, .len = (int32_t)n, .format = 1, .type_oid = 1016};
	p = route_params(sql, &prm, 1);
	expect_keys(sql, &p, "users", KEYS(21, 22, 23));
	/* a truncated array is not understood: all shards, not a crash */
	prm.len = (int32_t)n - 3;
	p = route_params(sql, &prm, 1);
	expect_map_all(sql, &p, "users");
}

static void test_and_intersects_and_ignores_conjuncts_without_key(void **state)
{
	int64_t b = key_elsewhere("users", 1);
	char sql[256];

	(void)state;
	ROUTES_TO("SELECT * FROM users WHERE id IN (1, 2, 3) AND id IN (3, 4)", "users", 3);
	ROUTES_TO("SELECT * FROM users WHERE name = 'x' AND id = 5 AND age > 3", "users", 5);
	snprintf(sql, sizeof sql, "SELECT * FROM users WHERE (id = 1 OR id = %lld) AND id = 1",
	         (long long)b);
	ROUTES_TO(sql, "users", 1);
}

static void test_or_unions_unless_a_branch_is_unconstrained(void **state)
{
	(void)state;
	ROUTES_TO("SELECT * FROM users WHERE id = 1 OR id = 2", "users", 1, 2);
	ROUTES_TO("SELECT * FROM users WHERE id = 1 OR (id IN (2, 3) AND name = 'x')", "users", 1,
	          2, 3);
	ROUTES_TO_ALL_OF("SELECT * FROM users WHERE id = 1 OR name = 'x'", "users");
	ROUTES_TO("SELECT * FROM users WHERE (id = 1 OR name = 'x') AND id = 2", "users", 2);
}

static void test_not_and_other_operators_do_not_constrain(void **state)
{
	(void)state;
	ROUTES_TO_ALL_OF("SELECT * FROM users WHERE NOT (id = 1)", "users");
	ROUTES_TO_ALL_OF("SELECT * FROM users WHERE id <> 1", "users");
	ROUTES_TO_ALL_OF("SELECT * FROM users WHERE id IS DISTINCT FROM 1", "users");
	ROUTES_TO_ALL_OF("SELECT * FROM users WHERE id = other_id", "users");
	ROUTES_TO_ALL_OF("SELECT * FROM users WHERE id OPERATOR(myschema.=) 1", "users");
}

static void test_contradicting_keys_route_to_their_union_not_to_no_shard(void **state)
{
	int64_t b = key_elsewhere("users", 1);
	char sql[128];
	route_plan_t p;

	(void)state;
	snprintf(sql, sizeof sql, "SELECT * FROM users WHERE id = 1 AND id = %lld", (long long)b);
	p = route(sql);
	expect_keys(sql, &p, "users", KEYS(1, b));
}

static void test_key_compared_with_null_or_invalid_value_is_unconstrained(void **state)
{
	(void)state;
	ROUTES_TO_ALL_OF("SELECT * FROM users WHERE id = NULL", "users");
	ROUTES_TO_ALL_OF("SELECT * FROM users WHERE id IS NULL", "users");
	ROUTES_TO_ALL_OF("SELECT * FROM users WHERE id = 'abc'", "users");
	ROUTES_TO_ALL_OF("SELECT * FROM users WHERE id = true", "users");
	ROUTES_TO_ALL_OF("SELECT * FROM users WHERE id = 99999999999999999999", "users");
}

static void test_no_key_predicate_goes_to_all_shards_of_the_map(void **state)
{
	const char *sql = "SELECT * FROM users";
	route_plan_t p = route(sql);

	(void)state;
	expect_map_all(sql, &p, "users");
	assert_string_equal(p.reason, "no key predicate on users -> all 3 shards of map users");
	sql = "SELECT count(*) FROM accounts";
	p = route(sql);
	expect_map_all(sql, &p, "names");
	assert_false(shard_set_has(&p.shards, 0));
}

/* ---- parameters ---- */

static void test_text_parameter_routes_like_the_literal(void **state)
{
	const char *sql = "SELECT * FROM users WHERE id = $1";
	route_param_t prm = text_param("42");
	route_plan_t p = route_params(sql, &prm, 1);

	(void)state;
	expect_keys(sql, &p, "users", KEYS(42));
	assert_false(p.params_missing);
	sql = "SELECT * FROM users WHERE id = $1::bigint";
	p = route_params(sql, &prm, 1);
	expect_keys(sql, &p, "users", KEYS(42));
	sql = "SELECT * FROM users WHERE name = $1 AND id = $2";
	{
		route_param_t two[2] = {text_param("bob"), text_param("77")};

		p = route_params(sql, two, 2);
		expect_keys(sql, &p, "users", KEYS(77));
	}
}

static void test_binary_int2_int4_int8_parameters_route_like_the_literal(void **state)
{
	const char *sql = "SELECT * FROM users WHERE id = $1";
	uint8_t b2[2], b4[4], b8[8];
	route_param_t prm;
	route_plan_t p;

	(void)state;
	put_be(b2, 300, 2);
	put_be(b4, 300, 4);
	put_be(b8, 300, 8);
	prm = (route_param_t){.data = b2, .len = 2, .format = 1, .type_oid = SHARD_OID_INT2};
	p = route_params(sql, &prm, 1);
	expect_keys(sql, &p, "users", KEYS(300));
	prm = (route_param_t){.data = b4, .len = 4, .format = 1, .type_oid = SHARD_OID_INT4};
	p = route_params(sql, &prm, 1);
	expect_keys(sql, &p, "users", KEYS(300));
	prm = (route_param_t){.data = b8, .len = 8, .format = 1, .type_oid = SHARD_OID_INT8};
	p = route_params(sql, &prm, 1);
	expect_keys(sql, &p, "users", KEYS(300));
	/* negative values keep their sign */
	put_be(b4, (uint32_t)-300, 4);
	prm = (route_param_t){.data = b4, .len = 4, .format = 1, .type_oid = SHARD_OID_INT4};
	p = route_params(sql, &prm, 1);
	expect_keys(sql, &p, "users", KEYS(-300));
}

static void test_binary_parameter_without_oid_takes_the_cast_type(void **state)
{
	const char *sql = "SELECT * FROM users WHERE id = $1::int4";
	uint8_t b4[4];
	route_param_t prm;
	route_plan_t p;

	(void)state;
	put_be(b4, 4242, 4);
	prm = (route_param_t){.data = b4, .len = 4, .format = 1, .type_oid = 0};
	p = route_params(sql, &prm, 1);
	expect_keys(sql, &p, "users", KEYS(4242));
}

static void test_text_key_parameters_text_and_binary(void **state)
{
	const char *sql = "SELECT * FROM accounts WHERE name = $1";
	route_param_t prm = text_param("alice");
	route_plan_t p = route_params(sql, &prm, 1);
	shard_set_t want;

	(void)state;
	shard_set_clear(&want);
	shard_set_add(&want, shard_of_text("names", "alice"));
	expect_set(sql, &p, ROUTE_SHARDS, &want);
	prm.format = 1;
	prm.type_oid = SHARD_OID_TEXT;
	p = route_params(sql, &prm, 1);
	expect_set(sql, &p, ROUTE_SHARDS, &want);
	p = route("SELECT * FROM accounts WHERE name = 'alice'");
	expect_set("literal", &p, ROUTE_SHARDS, &want);
}

static void test_null_or_missing_parameter_is_unconstrained(void **state)
{
	const char *sql = "SELECT * FROM users WHERE id = $1";
	route_param_t prm = {.data = NULL, .len = -1, .format = 0};
	route_plan_t p = route_params(sql, &prm, 1);

	(void)state;
	expect_map_all(sql, &p, "users");
	assert_false(p.params_missing);
	/* Parse without Bind: no parameters at all */
	p = route(sql);
	expect_map_all(sql, &p, "users");
	assert_true(p.params_missing);
	/* $2 beyond what was given */
	prm = text_param("1");
	p = route_params("SELECT * FROM users WHERE id = $2", &prm, 1);
	expect_map_all(sql, &p, "users");
	assert_true(p.params_missing);
}

/* ---- range maps ---- */

static void test_range_predicates_narrow_range_maps(void **state)
{
	(void)state;
	ROUTES_TO("SELECT * FROM sites WHERE region_id = 1500", "regions", 1500);
	ROUTES_TO("SELECT * FROM sites WHERE region_id < 1000", "regions", 0);
	ROUTES_TO("SELECT * FROM sites WHERE region_id <= 1000", "regions", 0, 1000);
	ROUTES_TO("SELECT * FROM sites WHERE region_id >= 2000", "regions", 2000);
	ROUTES_TO("SELECT * FROM sites WHERE region_id > 1500 AND region_id < 1600", "regions",
	          1500);
	ROUTES_TO("SELECT * FROM sites WHERE 2500 < region_id", "regions", 2500);
	ROUTES_TO("SELECT * FROM sites WHERE region_id BETWEEN 500 AND 1500", "regions", 500, 1500);
	ROUTES_TO("SELECT * FROM sites WHERE region_id BETWEEN SYMMETRIC 2500 AND 1500", "regions",
	          1500, 2500);
	ROUTES_TO_ALL_OF("SELECT * FROM sites WHERE region_id NOT BETWEEN 1 AND 2", "regions");
}

static void test_range_predicates_do_not_constrain_hash_maps(void **state)
{
	(void)state;
	ROUTES_TO_ALL_OF("SELECT * FROM users WHERE id < 10", "users");
	ROUTES_TO_ALL_OF("SELECT * FROM users WHERE id BETWEEN 1 AND 2", "users");
	ROUTES_TO("SELECT * FROM users WHERE id > 10 AND id = 11", "users", 11);
}

static void test_key_in_no_range_never_routes_to_zero_shards(void **state)
{
	const char *sql = "SELECT * FROM slots WHERE slot = 150";
	route_plan_t p = route(sql);

	(void)state;
	expect_kind(sql, &p, ROUTE_SHARDS);
	assert_int_equal(shard_set_count(&p.shards), 1);
	expect_reason(sql, &p, "no shard can hold matching rows");
	REFUSED("INSERT INTO slots (slot) VALUES (150)", "no range of map gapped", "150");
}

/* ---- the table and the one key a plan reports (hot keys) ---- */

static void test_plan_names_its_table_and_its_one_key(void **state)
{
	route_plan_t p;
	route_param_t param = text_param("42");
	int64_t other = key_elsewhere("users", 42);
	char sql[128];

	(void)state;
	p = route("SELECT * FROM users WHERE id = 42");
	assert_string_equal(p.table, "users");
	assert_string_equal(p.key_value, "42");
	/* every spelling of a key reads the same */
	p = route("SELECT * FROM users WHERE id = '42'::int8");
	assert_string_equal(p.key_value, "42");
	p = route_params("UPDATE users SET n = 1 WHERE id = $1", &param, 1);
	assert_string_equal(p.table, "users");
	assert_string_equal(p.key_value, "42");
	p = route("INSERT INTO orders (user_id, x) VALUES (42, 1)");
	assert_string_equal(p.table, "orders");
	assert_string_equal(p.key_value, "42");
	p = route("SELECT * FROM accounts WHERE name = 'alice'");
	assert_string_equal(p.table, "accounts");
	assert_string_equal(p.key_value, "alice");
	/* several keys, or none: no one key */
	snprintf(sql, sizeof sql, "SELECT * FROM users WHERE id IN (42, %lld)", (long long)other);
	p = route(sql);
	assert_string_equal(p.table, "users");
	assert_string_equal(p.key_value, "");
	p = route("SELECT * FROM users");
	assert_string_equal(p.table, "users");
	assert_string_equal(p.key_value, "");
	/* reference tables name themselves; no table at all names nothing */
	p = route("SELECT * FROM countries");
	assert_string_equal(p.table, "countries");
	assert_string_equal(p.key_value, "");
	p = route("SELECT 1");
	assert_null(p.table);
	assert_string_equal(p.key_value, "");
}

static void test_multi_row_insert_reports_its_distinct_keys_and_their_shards(void **state)
{
	route_plan_t p;
	int64_t other = key_elsewhere("users", 42), beside = key_beside("users", 42);
	char sql[160];

	(void)state;
	snprintf(sql, sizeof sql, "INSERT INTO users (id, n) VALUES (42, 1), (%lld, 2), (42, 3)",
	         (long long)other);
	p = route(sql);
	assert_true(p.split_insert);
	assert_string_equal(p.key_value, "");
	assert_int_equal(p.n_insert_keys, 2);
	assert_string_equal(p.insert_keys[0].text, "42");
	assert_int_equal(p.insert_keys[0].shard, shard_of("users", 42));
	assert_int_equal(atoll(p.insert_keys[1].text), other);
	assert_int_equal(p.insert_keys[1].shard, shard_of("users", other));
	/* several rows on one shard: not split, their keys all the same */
	snprintf(sql, sizeof sql, "INSERT INTO users (id, n) VALUES (42, 1), (%lld, 2)",
	         (long long)beside);
	p = route(sql);
	assert_false(p.split_insert);
	assert_int_equal(p.n_insert_keys, 2);
	/* at most ROUTE_INSERT_KEYS of them */
	p = route(
	    "INSERT INTO users (id) VALUES (1), (2), (3), (4), (5), (6), (7), (8), (9), (10)");
	assert_int_equal(p.n_insert_keys, ROUTE_INSERT_KEYS);
	/* one row: its key is the plan's one key */
	p = route("INSERT INTO users (id, n) VALUES (42, 1)");
	assert_string_equal(p.key_value, "42");
	assert_int_equal(p.n_insert_keys, 0);
	/* a SELECT's keys are not an INSERT's */
	snprintf(sql, sizeof sql, "SELECT * FROM users WHERE id IN (42, %lld)", (long long)other);
	p = route(sql);
	assert_int_equal(p.n_insert_keys, 0);
}

static void test_routing_comment_key_is_the_plans_one_key(void **state)
{
	route_plan_t p;

	(void)state;
	p = route("/* pgshard: key=42 */ SELECT * FROM users WHERE n > 3");
	assert_int_equal(p.kind, ROUTE_SHARDS);
	assert_string_equal(p.key_value, "42");
	assert_true(shard_set_has(&p.shards, shard_of("users", 42)));
	/* shard=N names no key: a key in the statement may live elsewhere */
	p = route("/* pgshard: shard=1 */ SELECT * FROM users WHERE id = 42");
	assert_string_equal(p.key_value, "");
	p = route("/* pgshard: all */ SELECT * FROM users WHERE id = 42");
	assert_string_equal(p.key_value, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_kind_names_are_the_documented_words),
	    cmocka_unit_test(test_plan_names_its_table_and_its_one_key),
	    cmocka_unit_test(test_multi_row_insert_reports_its_distinct_keys_and_their_shards),
	    cmocka_unit_test(test_routing_comment_key_is_the_plans_one_key),
	    cmocka_unit_test(test_ctx_builds_one_shard_map_per_config_map),
	    cmocka_unit_test(test_ctx_free_twice_is_harmless),
	    cmocka_unit_test(test_statement_that_does_not_parse_goes_to_default_shard),
	    cmocka_unit_test(test_statements_without_tables_go_to_default_shard),
	    cmocka_unit_test(test_set_show_and_transaction_control_go_to_default_shard),
	    cmocka_unit_test(test_catalog_queries_go_to_default_shard),
	    cmocka_unit_test(test_tables_not_in_config_go_to_default_shard),
	    cmocka_unit_test(test_reference_table_read_goes_to_one_shard),
	    cmocka_unit_test(test_reference_table_writes_go_to_every_shard),
	    cmocka_unit_test(test_reference_write_reading_sharded_rows_is_refused),
	    cmocka_unit_test(test_sharded_join_with_reference_table_routes_by_key),
	    cmocka_unit_test(test_key_equal_to_constant_goes_to_its_shard),
	    cmocka_unit_test(test_constant_on_the_left_of_the_key),
	    cmocka_unit_test(test_aliases_and_qualified_names_resolve_to_their_table),
	    cmocka_unit_test(test_schema_qualified_tables_match_config_names),
	    cmocka_unit_test(test_string_literal_and_casts_around_constants),
	    cmocka_unit_test(test_casts_that_can_change_the_value_do_not_constrain),
	    cmocka_unit_test(test_key_in_list_goes_to_the_shards_of_its_values),
	    cmocka_unit_test(test_key_any_array_literal_and_constructor),
	    cmocka_unit_test(test_text_key_any_array_uses_unescaped_elements),
	    cmocka_unit_test(test_key_any_text_array_parameter),
	    cmocka_unit_test(test_key_any_binary_array_parameter),
	    cmocka_unit_test(test_and_intersects_and_ignores_conjuncts_without_key),
	    cmocka_unit_test(test_or_unions_unless_a_branch_is_unconstrained),
	    cmocka_unit_test(test_not_and_other_operators_do_not_constrain),
	    cmocka_unit_test(test_contradicting_keys_route_to_their_union_not_to_no_shard),
	    cmocka_unit_test(test_key_compared_with_null_or_invalid_value_is_unconstrained),
	    cmocka_unit_test(test_no_key_predicate_goes_to_all_shards_of_the_map),
	    cmocka_unit_test(test_text_parameter_routes_like_the_literal),
	    cmocka_unit_test(test_binary_int2_int4_int8_parameters_route_like_the_literal),
	    cmocka_unit_test(test_binary_parameter_without_oid_takes_the_cast_type),
	    cmocka_unit_test(test_text_key_parameters_text_and_binary),
	    cmocka_unit_test(test_null_or_missing_parameter_is_unconstrained),
	    cmocka_unit_test(test_range_predicates_narrow_range_maps),
	    cmocka_unit_test(test_range_predicates_do_not_constrain_hash_maps),
	    cmocka_unit_test(test_key_in_no_range_never_routes_to_zero_shards),
	    cmocka_unit_test(test_plans_say_when_a_text_key_is_not_ascii),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
