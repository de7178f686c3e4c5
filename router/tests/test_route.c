/*
 * test_route.c — statement routing (router/route.h), pinned.
 *
 * Which shard a key lands on is router/shardmap.c's business (a data format
 * with its own known-vector tests), so these tests never hard-code it: the
 * expected shards are computed with shard_map_lookup on the same maps the
 * router uses. What is pinned here is which keys a statement is routed by,
 * and what is refused.
 *
 * The config: shards 0-2, default shard 1 (so that "the default shard" is
 * never confused with "shard 0"), a hash map on all three shards, a range
 * map, a range map with a gap, and a text-keyed hash map on shards 1 and 2
 * only (so that "all shards of the map" differs from "every shard").
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

/* ---- helpers ---- */

/*
 * What every plan must hold, whatever the statement: a SQLSTATE exactly on
 * refusals, and a merge exactly when several shards answer (a plan made
 * without the parameters it needs may leave it to the routing with them).
 */
static void check_plan_invariants(const char *sql, const route_plan_t *p)
{
	int n = shard_set_count(&p->shards);

	if (p->kind == ROUTE_REFUSE && strcmp(p->sqlstate, "0A000") != 0 &&
	    strcmp(p->sqlstate, "54001") != 0)
		fail_msg("\"%s\": refused with SQLSTATE \"%s\"", sql, p->sqlstate);
	if (p->kind != ROUTE_REFUSE && p->sqlstate[0] != '\0')
		fail_msg("\"%s\": not refused, but SQLSTATE \"%s\"", sql, p->sqlstate);
	if (n <= 1 && p->merge != ROUTE_MERGE_NONE)
		fail_msg("\"%s\": %d shard(s) with merge %d", sql, n, (int)p->merge);
	if (n > 1 && p->merge == ROUTE_MERGE_NONE && !p->params_missing)
		fail_msg("\"%s\": %d shards without a merge (reason: %s)", sql, n, p->reason);
	if (p->txn != ROUTE_TXN_NONE && !p->has_txn_control)
		fail_msg("\"%s\": txn %d without has_txn_control", sql, (int)p->txn);
}

static route_plan_t route_params(const char *sql, const route_param_t *params, int n)
{
	route_plan_t p;

	assert_int_equal(route_statement(&ctx, sql, params, n, &p), 0);
	check_plan_invariants(sql, &p);
	return p;
}

static route_plan_t route(const char *sql)
{
	return route_params(sql, NULL, 0);
}

static const shard_map_t *map_named(const char *name)
{
	for (int i = 0; i < cfg->n_maps; i++)
		if (strcmp(cfg->maps[i].name, name) == 0)
			return &ctx.maps[i];
	fail_msg("no map %s", name);
	return NULL;
}

/* Where the router's own maps put a bigint key: the expectation, never hard-coded. */
static int shard_of(const char *map, int64_t v)
{
	shard_key_t k;

	assert_int_equal(shard_key_from_int(v, &k), 0);
	return shard_map_lookup(map_named(map), &k);
}

static int shard_of_text(const char *map, const char *v)
{
	shard_key_t k;

	assert_int_equal(shard_key_from_text(map_named(map)->cfg->key, v, strlen(v), &k), 0);
	return shard_map_lookup(map_named(map), &k);
}

static void set_print(char *buf, size_t n, const shard_set_t *s)
{
	size_t len = 0;

	buf[0] = '\0';
	for (int i = 0; i < SHARD_MAX && len + 8 < n; i++)
		if (shard_set_has(s, i))
			len += (size_t)snprintf(buf + len, n - len, "%s%d", len ? "," : "", i);
}

static void expect_kind(const char *sql, const route_plan_t *p, route_kind_t kind)
{
	if (p->kind != kind)
		fail_msg("\"%s\": expected %s, got %s (reason: %s; error: %s)", sql,
		         route_kind_name(kind), route_kind_name(p->kind), p->reason, p->error);
}

static void expect_set(const char *sql, const route_plan_t *p, route_kind_t kind,
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
static void expect_keys(const char *sql, const route_plan_t *p, const char *map,
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

static void expect_map_all(const char *sql, const route_plan_t *p, const char *map)
{
	expect_set(sql, p, ROUTE_SHARDS, &map_named(map)->all);
}

#define ROUTES_TO_ALL_OF(sql, map)                                                                 \
	do {                                                                                       \
		route_plan_t p_ = route(sql);                                                      \
		expect_map_all((sql), &p_, (map));                                                 \
	} while (0)

static void expect_one(const char *sql, const route_plan_t *p, route_kind_t kind, int shard)
{
	shard_set_t want;

	shard_set_clear(&want);
	shard_set_add(&want, shard);
	expect_set(sql, p, kind, &want);
}

static void expect_every_shard(const char *sql, const route_plan_t *p)
{
	shard_set_t want;

	shard_set_clear(&want);
	for (int i = 0; i < cfg->n_shards; i++)
		shard_set_add(&want, i);
	expect_set(sql, p, ROUTE_ALL, &want);
}

static void expect_default(const char *sql)
{
	route_plan_t p = route(sql);

	expect_one(sql, &p, ROUTE_DEFAULT, cfg->default_shard);
}

/* Refused, with every needle in the error message. */
static void expect_refused_with(const char *sql, const route_plan_t *p, const char *const *needles)
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

static void expect_reason(const char *sql, const route_plan_t *p, const char *needle)
{
	if (strstr(p->reason, needle) == NULL)
		fail_msg("\"%s\": reason \"%s\" does not contain \"%s\"", sql, p->reason, needle);
}

/* A bigint key of `map` on another shard than a's. */
static int64_t key_elsewhere(const char *map, int64_t a)
{
	for (int64_t b = a + 1; b < a + 100000; b++)
		if (shard_of(map, b) != shard_of(map, a))
			return b;
	fail_msg("no key on another shard than %lld", (long long)a);
	return -1;
}

/* Another bigint key of `map` on the same shard as a's. */
static int64_t key_beside(const char *map, int64_t a)
{
	for (int64_t b = a + 1; b < a + 100000; b++)
		if (shard_of(map, b) == shard_of(map, a))
			return b;
	fail_msg("no other key on the shard of %lld", (long long)a);
	return -1;
}

static route_param_t text_param(const char *s)
{
	route_param_t p = {.data = (const uint8_t *)s, .len = (int32_t)strlen(s), .format = 0};

	return p;
}

static void put_be(uint8_t *out, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		out[i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
}

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

static void test_reference_write_reading_sharded_rows_is_refused(void **state)
{
	(void)state;
	REFUSED("INSERT INTO countries (code) SELECT country FROM users WHERE id = 1",
	        "reference table countries", "users");
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
	ROUTES_TO_ALL_OF("SELECT * FROM users WHERE id = 42.0", "users");
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
	/* on every shard, each would return its own row: one PostgreSQL returns one */
	REFUSED("SELECT EXISTS (SELECT 1 FROM orders WHERE total > 4)", "every shard would return",
	        "once per shard", "orders.user_id");
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
	REFUSED("SELECT * FROM users u JOIN orders o ON o.note = u.name WHERE u.id = 5",
	        "without equal keys");
	REFUSED("SELECT * FROM users u JOIN orders o USING (id)", "without equal keys");
	REFUSED("SELECT * FROM users a JOIN users b ON a.manager_id = b.id", "users and users");
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
	REFUSED("SELECT * FROM users u JOIN sites s ON s.region_id = u.region WHERE u.id = 1",
	        "users (map users)", "sites (map regions)", "not co-located");
	REFUSED("SELECT * FROM users WHERE id IN (SELECT owner FROM sites)", "not co-located");
	REFUSED("SELECT id FROM users UNION SELECT region_id FROM sites", "not co-located");
	REFUSED("WITH s AS (SELECT * FROM accounts) SELECT * FROM users, s", "not co-located");
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

static void test_insert_select_not_from_co_located_key_is_refused(void **state)
{
	(void)state;
	REFUSED("INSERT INTO orders (user_id) SELECT code FROM countries", "INSERT ... SELECT",
	        "user_id");
	REFUSED("INSERT INTO orders (user_id) SELECT id + 1 FROM users", "INSERT ... SELECT");
	REFUSED("INSERT INTO orders (user_id) SELECT 5 FROM users", "INSERT ... SELECT");
	REFUSED("INSERT INTO orders (user_id) SELECT * FROM users", "INSERT ... SELECT");
	REFUSED("INSERT INTO users (id) SELECT region_id FROM sites", "not co-located");
	REFUSED("INSERT INTO local_t (id) SELECT id FROM users", "local_t", "not in the config");
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

static void test_update_of_the_key_column_is_refused(void **state)
{
	int64_t b = key_elsewhere("users", 5);
	char sql[128];

	(void)state;
	snprintf(sql, sizeof sql, "UPDATE users SET id = %lld WHERE id = 5", (long long)b);
	REFUSED(sql, "UPDATE of the key column id", "another shard");
	REFUSED("UPDATE users SET id = id + 1 WHERE id = 5", "key column id");
	REFUSED("UPDATE users SET id = 5", "key column id");
	REFUSED("UPDATE orders SET user_id = (SELECT 1) WHERE user_id = 5", "key column user_id");
	REFUSED("WITH x AS (UPDATE users SET id = 6 WHERE id = 5 RETURNING *) SELECT * FROM x",
	        "key column id");
}

static void test_update_of_the_key_to_a_parameter_is_decided_by_its_value(void **state)
{
	const char *sql = "UPDATE users SET id = $1 WHERE id = $2";
	char moved[32];
	route_param_t prm[2] = {text_param("5"), text_param("5")};
	route_plan_t p = route_params(sql, prm, 2);

	(void)state;
	expect_keys(sql, &p, "users", KEYS(5));
	snprintf(moved, sizeof moved, "%lld", (long long)key_elsewhere("users", 5));
	prm[0] = text_param(moved);
	p = route_params(sql, prm, 2);
	expect_refused_with(sql, &p, (const char *const[]){"key column id", NULL});
	/* at Parse, before the values are known: not refused yet */
	p = route(sql);
	expect_map_all(sql, &p, "users");
	assert_true(p.params_missing);
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

static void test_ddl_on_other_tables_goes_to_default_shard(void **state)
{
	const char *sqls[] = {
	    "CREATE TABLE audit (id bigint, user_id bigint REFERENCES users (id))",
	    "DROP TABLE audit",
	    "CREATE INDEX ON audit (id)",
	    "ALTER TABLE audit ADD FOREIGN KEY (user_id) REFERENCES users (id)",
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

/* ---- several statements ---- */

static void test_statements_routed_alike_go_together(void **state)
{
	int64_t b = key_beside("users", 1);
	char sql[256];
	route_plan_t p;

	(void)state;
	snprintf(sql, sizeof sql,
	         "SELECT * FROM users WHERE id = 1; SELECT * FROM orders WHERE "
	         "user_id = %lld;",
	         (long long)b);
	p = route(sql);
	expect_keys(sql, &p, "users", KEYS(1));
	ROUTES_TO("BEGIN; UPDATE users SET n = 1 WHERE id = 9; COMMIT;", "users", 9);
	ROUTES_TO("SET LOCAL statement_timeout = 100; SELECT * FROM users WHERE id = 3", "users",
	          3);
	expect_default("SELECT 1; SHOW server_version; BEGIN");
}

static void test_statements_routed_differently_are_refused(void **state)
{
	int64_t b = key_elsewhere("users", 1);
	char sql[256];

	(void)state;
	snprintf(sql, sizeof sql,
	         "SELECT * FROM users WHERE id = 1; SELECT * FROM users WHERE id = "
	         "%lld",
	         (long long)b);
	REFUSED(sql, "send these statements separately");
	REFUSED("SELECT * FROM users; SELECT * FROM accounts", "separately");
	REFUSED("SELECT * FROM users WHERE id = 1; SELECT * FROM sites WHERE region_id = 1; "
	        "SELECT * FROM sites WHERE region_id = 2500",
	        "separately");
}

static void test_split_insert_and_commit_of_multi_shard_write_must_be_sent_alone(void **state)
{
	int64_t b = key_elsewhere("users", 1);
	char sql[256];

	(void)state;
	snprintf(sql, sizeof sql, "BEGIN; INSERT INTO users (id) VALUES (1), (%lld)", (long long)b);
	REFUSED(sql, "multi-row INSERT");
	REFUSED("BEGIN; UPDATE users SET n = 0; COMMIT", "COMMIT");
	REFUSED("INSERT INTO countries (code) VALUES ('x'); COMMIT", "COMMIT");
}

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

static void test_sql_prepare_and_cursors_over_sharded_tables_are_refused(void **state)
{
	(void)state;
	REFUSED("PREPARE p AS SELECT * FROM users WHERE id = $1", "PREPARE", "Parse/Bind");
	expect_default("PREPARE q AS SELECT 1");
	expect_default("EXECUTE q");
	REFUSED("DECLARE c CURSOR FOR SELECT * FROM users", "cursor");
	expect_default("DECLARE c CURSOR FOR SELECT * FROM pg_class");
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

static void test_absurdly_deep_statement_is_refused_not_crashed(void **state)
{
	size_t n = 5000, len = 64 + 2 * n;
	char *sql = malloc(len);
	size_t k;

	(void)state;
	assert_non_null(sql);
	k = (size_t)snprintf(sql, len, "SELECT * FROM users WHERE id = 1 AND x = ");
	for (size_t i = 0; i < n; i++) {
		sql[k++] = '1';
		sql[k++] = '+';
	}
	sql[k++] = '1';
	sql[k] = '\0';
	{
		route_plan_t p = route(sql);

		expect_kind("deep", &p, ROUTE_REFUSE);
		expect_reason("deep", &p, "nested too deeply");
		assert_string_equal(p.sqlstate, "54001");
	}
	free(sql);
}

/* ---- the depth guard ---- */

static int estimate(const char *sql)
{
	return route_sql_depth_estimate(sql, strlen(sql));
}

/* head, `open` n times, center, `close` n times */
static char *repeat_sql(const char *head, const char *open, const char *center, const char *close,
                        size_t n)
{
	size_t hl = strlen(head), ol = strlen(open), cl = strlen(center), xl = strlen(close);
	size_t k = hl;
	char *sql = malloc(hl + n * (ol + xl) + cl + 1);

	assert_non_null(sql);
	memcpy(sql, head, hl);
	for (size_t i = 0; i < n; i++, k += ol)
		memcpy(sql + k, open, ol);
	memcpy(sql + k, center, cl);
	k += cl;
	for (size_t i = 0; i < n; i++, k += xl)
		memcpy(sql + k, close, xl);
	sql[k] = '\0';
	return sql;
}

/* The tokens of sql, as "kind:text" joined by spaces (kinds: route_token_kind_t's order). */
static void tokens(const char *sql, char *out, size_t n)
{
	static const char kinds[] = "ewqsxnpoc.";
	size_t len = strlen(sql), pos = 0, k = 0;
	route_token_t t;

	out[0] = '\0';
	for (;;) {
		pos = route_next_token(sql, len, pos, &t);
		if (t.kind == ROUTE_TOK_END)
			break;
		k += (size_t)snprintf(out + k, n - k, "%s%c%s:%.*s", k ? " " : "", kinds[t.kind],
		                      t.unterminated ? "!" : "", (int)t.len, sql + t.start);
	}
}

#define TOKENS(sql, want)                                                                          \
	do {                                                                                       \
		char got_[512];                                                                    \
                                                                                                   \
		tokens((sql), got_, sizeof got_);                                                  \
		if (strcmp(got_, (want)) != 0)                                                     \
			fail_msg("\"%s\": tokens \"%s\", expected \"%s\"", (sql), got_, (want));   \
	} while (0)

static void test_tokens_are_cut_as_postgresql_cuts_them(void **state)
{
	(void)state;
	TOKENS("SELECT a1, $2 FROM \"T\"\"x\"", "w:SELECT w:a1 .:, p:$2 w:FROM q:\"T\"\"x\"");
	TOKENS("1 1.5 .5 5. 1e-3 1e 1..2", "n:1 n:1.5 n:.5 n:5. n:1e-3 n:1 w:e n:1 .:.. n:2");
	/* trailing + and - leave an operator unless it has one of ~!@#%^&|`? */
	TOKENS("a=-5 b@-5 c<>+-1 d*/*x*/e", "w:a o:= o:- n:5 w:b o:@- n:5 w:c o:<> o:+ o:- n:1 w:d "
	                                    "o:* w:e");
	TOKENS("x::int[] -- note\n;", "w:x c::: w:int .:[ .:] .:;");
	TOKENS("'it''s' E'\\'' U&'a' B'01' $$x$$ $t$a$$b$t$",
	       "s:'it''s' x:E'\\'' x:U&'a' x:B'01' x:$$x$$ x:$t$a$$b$t$");
	/* a string continues after a newline, in its own escape rules */
	TOKENS("'a'\n'b' 'c' 'd'", "s:'a'\n'b' s:'c' s:'d'");
	TOKENS("E'a'\n'\\'' + 1 '", "x:E'a'\n'\\'' o:+ n:1 s!:'");
	TOKENS("/* a /* b */ c */ x /* open", "w:x");
	TOKENS("\"open", "q!:\"open");
}

static void test_depth_estimate_counts_levels_and_operator_chains(void **state)
{
	(void)state;
	assert_int_equal(estimate(""), 0);
	assert_int_equal(estimate("SELECT 1"), 0);
	assert_int_equal(estimate("SELECT 1+1+1"), 2);
	assert_int_equal(estimate("SELECT (1)"), 1);
	assert_int_equal(estimate("SELECT ((1+1)+1)*2"), 5);
	assert_int_equal(estimate("SELECT x::int::text"), 2);
	assert_int_equal(estimate("SELECT a[1][2]"), 1);
	/* =-5 is = and a unary minus, as PostgreSQL cuts it; @- is one operator */
	assert_int_equal(estimate("SELECT a=-5"), 2);
	assert_int_equal(estimate("SELECT a@-5"), 1);
	/* 1e-5 is a number, not a subtraction */
	assert_int_equal(estimate("SELECT 1e-5"), 0);
	/* AND and OR are flattened by PostgreSQL; commas separate */
	assert_int_equal(estimate("SELECT a FROM t WHERE a = 1 AND b = 2 OR c = 3"), 1);
	assert_int_equal(estimate("SELECT f(1, 2, 3), g(4)"), 1);
	assert_int_equal(estimate("INSERT INTO t (id, v) VALUES (1, 'a'), (2, 'b'), (3, 'c')"), 1);
	/* CASE opens a level; its WHEN branches are a list */
	assert_int_equal(
	    estimate("SELECT CASE WHEN a = 1 THEN 'x' WHEN a = 2 THEN 'y' ELSE 'z' END + 1"), 3);
	/* statements of a string are measured apart */
	assert_int_equal(estimate("SELECT 1+1+1; SELECT 2"), 2);
	/* closers without openers close nothing */
	assert_int_equal(estimate("SELECT 1) + 1] + 1"), 2);
}

static void test_depth_estimate_skips_strings_comments_and_quoted_names(void **state)
{
	(void)state;
	assert_int_equal(estimate("SELECT '((((+++', 'it''s (('"), 0);
	assert_int_equal(estimate("SELECT $$((+++$$, $a$ (( $$ )) $a$, $1"), 0);
	assert_int_equal(estimate("SELECT \"a+b((\" FROM \"t\"\"((\""), 0);
	assert_int_equal(estimate("SELECT E'\\'((++', e'\\\\', U&'((+' , B'01', X'1f'"), 0);
	assert_int_equal(estimate("SELECT /* (( /* nested (( */ ++ */ 1 -- ((+++\n"), 0);
	/* 'a'<newline>'b' is one literal; E'' escapes continue into the next piece */
	assert_int_equal(estimate("SELECT 'a'\n'(+('"), 0);
	assert_int_equal(estimate("SELECT E'x'\n'\\'' +1+1 '"), 2);
	/* unterminated: what follows the quote is not code */
	assert_int_equal(estimate("SELECT 1 + 'oops ((((+"), 1);
	assert_int_equal(estimate("SELECT 1 + /* oops ((((+"), 1);
}

/* Every left-deep chain the grammar builds without a parenthesis is counted. */
static void test_depth_estimate_counts_chains_of_keywords(void **state)
{
	static const struct {
		const char *head, *open, *center, *close;
	} chains[] = {
	    {"SELECT 1", "+1", "", ""},
	    {"SELECT 'a'", " || 'a'", "", ""},
	    {"SELECT x", "::int", "", ""},
	    {"SELECT 'a'", " COLLATE \"C\"", "", ""},
	    {"SELECT now()", " AT TIME ZONE 'UTC'", "", ""},
	    {"SELECT 1", " IS NULL", "", ""},
	    {"SELECT 1", " IN (1)", "", ""},
	    {"SELECT 1", " OPERATOR(pg_catalog.+) 1", "", ""},
	    {"SELECT ", "NOT ", "true", ""},
	    {"SELECT * FROM t", " JOIN t ON true", "", ""},
	    {"SELECT 1", " UNION SELECT 1", "", ""},
	    {"SELECT ", "(", "1", ")"},
	    {"SELECT ", "(SELECT ", "1", ")"},
	    {"SELECT ", "ARRAY[", "1", "]"},
	    {"SELECT ", "CASE WHEN ", "true", " THEN 1 END"},
	};
	size_t n = ROUTE_MAX_SQL_DEPTH + 100;

	(void)state;
	for (size_t i = 0; i < sizeof chains / sizeof chains[0]; i++) {
		char *sql = repeat_sql(chains[i].head, chains[i].open, chains[i].center,
		                       chains[i].close, n);

		if (estimate(sql) <= ROUTE_MAX_SQL_DEPTH)
			fail_msg("\"%s...\" %zu times: estimate %d", chains[i].open, n,
			         estimate(sql));
		free(sql);
	}
}

/* Wide statements are not deep: long lists must pass the guard. */
static void test_depth_estimate_of_wide_lists_stays_small(void **state)
{
	char *sql;

	(void)state;
	sql = repeat_sql("SELECT * FROM t WHERE a = 1", " AND a = 1", "", "", 20000);
	assert_true(estimate(sql) <= 2);
	free(sql);
	sql = repeat_sql("SELECT * FROM t WHERE a IN (1", ", 1", ")", "", 20000);
	assert_true(estimate(sql) <= 3);
	free(sql);
	sql = repeat_sql("SELECT CASE a", " WHEN 1 THEN 'x'", " END", "", 20000);
	assert_true(estimate(sql) <= 2);
	free(sql);
	sql = repeat_sql("SELECT ", "f(x) = 1, ", "1", "", 20000);
	assert_true(estimate(sql) <= 2);
	free(sql);
}

/*
 * Without the guard, libpg_query itself overflows the stack on this one
 * (about 23,500 levels on 8 MB): the test would crash, not fail.
 */
static void test_deep_operator_chain_is_refused_before_parsing(void **state)
{
	size_t n = 150000; /* 300 kB */
	char *sql = repeat_sql("SELECT 1", "+1", "", "", n);
	char want[256];
	route_plan_t p;

	(void)state;
	assert_true(strlen(sql) > 300000);
	p = route(sql);
	expect_kind("300 kB of +1", &p, ROUTE_REFUSE);
	assert_string_equal(p.sqlstate, "54001");
	snprintf(want, sizeof want,
	         "statement is nested too deeply to analyze (estimated depth %zu, limit %d)", n,
	         ROUTE_MAX_SQL_DEPTH);
	assert_string_equal(p.error, want);
	assert_int_equal(shard_set_count(&p.shards), 0);
	free(sql);
	/* just over the limit, too */
	sql = repeat_sql("SELECT * FROM users WHERE id = 1 AND x = 1", "*1", "", "",
	                 ROUTE_MAX_SQL_DEPTH);
	p = route(sql);
	expect_kind("limit + 1", &p, ROUTE_REFUSE);
	assert_string_equal(p.sqlstate, "54001");
	free(sql);
	/* a routing comment still decides, as for a statement that does not parse */
	sql = repeat_sql("/* pgshard: shard=2 */ SELECT 1", "+1", "", "", n);
	p = route(sql);
	expect_one("override", &p, ROUTE_SHARDS, 2);
	assert_string_equal(p.sqlstate, "");
	free(sql);
}

/* A tree deeper than the router walks, from a text the estimate lets through. */
static void test_deep_tree_under_the_text_limit_is_refused_with_54001(void **state)
{
	char *sql = repeat_sql("SELECT ", "(SELECT ", "1", ")", 1500);
	route_plan_t p;

	(void)state;
	assert_true(estimate(sql) <= ROUTE_MAX_SQL_DEPTH);
	p = route(sql);
	expect_kind("nested subqueries", &p, ROUTE_REFUSE);
	assert_string_equal(p.sqlstate, "54001");
	expect_reason("nested subqueries", &p, "nested too deeply for pgshard's router");
	free(sql);
}

/* 5 MB of rows: wide, not deep; the guard must let it through. */
static void test_wide_multi_row_insert_is_not_refused_by_the_guard(void **state)
{
	size_t rows = 300000, cap = rows * 24 + 64, k;
	char *sql = malloc(cap);
	route_plan_t p;

	(void)state;
	assert_non_null(sql);
	k = (size_t)snprintf(sql, cap, "INSERT INTO users (id, v) VALUES ");
	for (size_t i = 0; i < rows; i++)
		k += (size_t)snprintf(sql + k, cap - k, "%s(%zu,'row %06zu')", i ? "," : "", i + 1,
		                      i);
	assert_true(k > 5 * 1000 * 1000);
	assert_true(estimate(sql) <= 2);
	p = route(sql);
	expect_map_all("5 MB INSERT", &p, "users");
	assert_true(p.split_insert);
	assert_int_equal(p.merge, ROUTE_MERGE_SUM);
	assert_string_equal(p.sqlstate, "");
	free(sql);
}

/* ---- transaction control ---- */

static void test_transaction_control_statements_are_named(void **state)
{
	static const struct {
		const char *sql;
		route_txn_t txn;
		const char *tag; /* PostgreSQL's CommandComplete tag for it */
	} cases[] = {
	    {"BEGIN", ROUTE_TXN_BEGIN, "BEGIN"},
	    {"begin work", ROUTE_TXN_BEGIN, "BEGIN"},
	    {"BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", ROUTE_TXN_BEGIN, "BEGIN"},
	    {"START TRANSACTION ISOLATION LEVEL SERIALIZABLE", ROUTE_TXN_BEGIN,
	     "START TRANSACTION"},
	    {"COMMIT", ROUTE_TXN_COMMIT, "COMMIT"},
	    {"END", ROUTE_TXN_COMMIT, "COMMIT"},
	    {"COMMIT TRANSACTION;", ROUTE_TXN_COMMIT, "COMMIT"},
	    {"ROLLBACK", ROUTE_TXN_ROLLBACK, "ROLLBACK"},
	    {"ABORT", ROUTE_TXN_ROLLBACK, "ROLLBACK"},
	    {"SAVEPOINT a", ROUTE_TXN_SAVEPOINT, "SAVEPOINT"},
	    {"  savepoint \"Rollback\"", ROUTE_TXN_SAVEPOINT, "SAVEPOINT"},
	    {"RELEASE SAVEPOINT a", ROUTE_TXN_SAVEPOINT, "RELEASE"},
	    {"RELEASE a", ROUTE_TXN_SAVEPOINT, "RELEASE"},
	    {"-- why\nrelease savepoint a", ROUTE_TXN_SAVEPOINT, "RELEASE"},
	    {"ROLLBACK TO SAVEPOINT a", ROUTE_TXN_SAVEPOINT, "ROLLBACK"},
	    {"ROLLBACK TO a", ROUTE_TXN_SAVEPOINT, "ROLLBACK"},
	    {"ROLLBACK WORK TO SAVEPOINT release", ROUTE_TXN_SAVEPOINT, "ROLLBACK"},
	    {"COMMIT AND CHAIN", ROUTE_TXN_OTHER, "COMMIT"},
	    {"ROLLBACK AND CHAIN", ROUTE_TXN_OTHER, "ROLLBACK"},
	    {"COMMIT AND NO CHAIN", ROUTE_TXN_COMMIT, "COMMIT"},
	    {"PREPARE TRANSACTION 'g1'", ROUTE_TXN_OTHER, "PREPARE TRANSACTION"},
	    {"COMMIT PREPARED 'g1'", ROUTE_TXN_OTHER, "COMMIT PREPARED"},
	    {"ROLLBACK PREPARED 'g1'", ROUTE_TXN_OTHER, "ROLLBACK PREPARED"},
	    {"/* pgshard: shard=2 */ BEGIN", ROUTE_TXN_BEGIN, "BEGIN"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		route_plan_t p = route(cases[i].sql);

		if (p.txn != cases[i].txn || !p.has_txn_control)
			fail_msg("\"%s\": txn %d (has %d), expected %d", cases[i].sql, (int)p.txn,
			         p.has_txn_control, (int)cases[i].txn);
		if (strcmp(p.txn_tag, cases[i].tag) != 0)
			fail_msg("\"%s\": tag \"%s\", expected \"%s\"", cases[i].sql, p.txn_tag,
			         cases[i].tag);
	}
}

static void test_transaction_control_among_other_statements_is_only_flagged(void **state)
{
	static const char *const mixed[] = {
	    "BEGIN; SELECT 1",
	    "SELECT * FROM users WHERE id = 1; COMMIT",
	    "BEGIN; COMMIT",
	};
	static const char *const none[] = {
	    "SELECT 1",
	    "SET LOCAL statement_timeout = 0",
	    "SELEC 1; BEGIN", /* does not parse: nobody can tell */
	    "PREPARE q AS SELECT 1",
	};
	route_plan_t p;

	(void)state;
	for (size_t i = 0; i < sizeof mixed / sizeof mixed[0]; i++) {
		p = route(mixed[i]);
		if (p.txn != ROUTE_TXN_NONE || !p.has_txn_control || p.txn_tag[0] != '\0')
			fail_msg("\"%s\": txn %d, has %d, tag \"%s\"", mixed[i], (int)p.txn,
			         p.has_txn_control, p.txn_tag);
	}
	for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
		p = route(none[i]);
		if (p.txn != ROUTE_TXN_NONE || p.has_txn_control || p.txn_tag[0] != '\0')
			fail_msg("\"%s\": txn %d, has %d, tag \"%s\"", none[i], (int)p.txn,
			         p.has_txn_control, p.txn_tag);
	}
}

/* ---- merging the shards' answers ---- */

#define MERGES(sql, m)                                                                             \
	do {                                                                                       \
		route_plan_t p_ = route(sql);                                                      \
		if (p_.kind == ROUTE_REFUSE || p_.merge != (m))                                    \
			fail_msg("\"%s\": merge %d, expected %d (%s)", (sql), (int)p_.merge,       \
			         (int)(m), p_.reason);                                             \
	} while (0)

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
	    "SELECT u.name, avg(o.total) FROM users u JOIN orders o ON o.user_id = u.id GROUP BY "
	    "u.name ORDER BY 2 DESC LIMIT 5",
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
	    {"SELECT * FROM countries WHERE code IN (SELECT cc FROM users)",
	     "every shard would return"},
	    {"SELECT * FROM countries c LEFT JOIN users u ON u.cc = c.code", "every shard"},
	    {"SELECT count(*) FROM countries c LEFT JOIN users u ON u.cc = c.code ORDER BY 1",
	     "every shard"},
	    {"SELECT (SELECT count(*) FROM orders)", "every shard would return"},
	    {"SELECT * FROM (SELECT count(*) FROM orders) s", "every shard would return"},
	    {"WITH c AS (SELECT user_id FROM orders LIMIT 5) SELECT * FROM c", "every shard"},
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
	    {"SELECT user_id, count(*) FROM orders GROUP BY user_id HAVING count(*) > $1",
	     "parameter $1"},
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
	/* the message says which key would make it a one-shard query */
	REFUSED("SELECT *, rank() OVER (ORDER BY total) FROM orders",
	        "window functions across shards is not supported; add a "
	        "condition on orders.user_id, or /* pgshard: shard=N */");
	REFUSED("SELECT stddev(total) FROM orders",
	        "the aggregate stddev() across shards is not supported (count, sum, min, max, avg, "
	        "bool_and, bool_or, every, bit_and, bit_or, bit_xor, and any aggregate with "
	        "DISTINCT are); add a condition on orders.user_id, or /* pgshard: shard=N */");
	/* a gather plan's subqueries are judged as any statement's on several shards */
	REFUSED("SELECT sum(n) FROM users WHERE n > (SELECT avg(n) FROM users)",
	        "a subquery with aggregate function avg() over users");
	/* the proxy runs one gather plan at a time */
	REFUSED("SELECT * FROM users; SELECT * FROM users ORDER BY id", "send it alone");
	REFUSED("SET LOCAL work_mem = '1MB'; SELECT sum(n) FROM users", "send it alone");
}

/*
 * Each shard answers a subquery from its own rows: across shards, a subquery
 * whose answer needs rows of other shards would be wrong on every shard.
 */
static void test_multi_shard_subquery_that_needs_other_shards_rows_is_refused(void **state)
{
	static const struct {
		const char *sql, *what;
	} cases[] = {
	    /* scalar subqueries, not tied to the outer row by the key */
	    {"SELECT * FROM users WHERE n > (SELECT avg(n) FROM users)",
	     "a subquery with aggregate function avg() over users across shards"},
	    {"SELECT id, (SELECT count(*) FROM orders) FROM users",
	     "a subquery with aggregate function count() over orders"},
	    {"SELECT * FROM users WHERE id = (SELECT max(user_id) FROM orders)",
	     "aggregate function max()"},
	    {"SELECT count(*) FROM users WHERE n > (SELECT avg(total) FROM orders)",
	     "aggregate function avg()"},
	    {"SELECT id, (SELECT note FROM orders o WHERE o.total = users.n) FROM users",
	     "a scalar subquery not correlated on the shard key"},
	    {"SELECT id, ARRAY(SELECT note FROM orders) FROM users",
	     "a scalar subquery not correlated on the shard key"},
	    {"SELECT * FROM users WHERE n > (SELECT n FROM users WHERE id = 5)",
	     "a scalar subquery not correlated on the shard key"},
	    {"UPDATE users u SET (n, name) = (SELECT count(*), max(note) FROM orders o)",
	     "aggregate function count()"},
	    /* an unqualified outer column may be the subquery's own: not trusted */
	    {"SELECT * FROM orders WHERE EXISTS (SELECT 1 FROM users WHERE id = user_id)",
	     "an EXISTS subquery not correlated on the shard key"},
	    /* writes */
	    {"UPDATE users SET n = 0 WHERE n < (SELECT avg(n) FROM users)",
	     "aggregate function avg()"},
	    {"DELETE FROM users WHERE id IN (SELECT user_id FROM orders ORDER BY total LIMIT 10)",
	     "a subquery with LIMIT/OFFSET over orders"},
	    {"INSERT INTO orders (user_id, total) SELECT id, 0 FROM users LIMIT 5", "LIMIT/OFFSET"},
	    {"INSERT INTO orders (user_id, total) SELECT user_id, sum(total) FROM orders GROUP BY "
	     "total",
	     "GROUP BY on other columns than the shard key"},
	    {"MERGE INTO users u USING (SELECT user_id, max(total) AS m FROM orders GROUP BY note) "
	     "s ON u.id = s.user_id WHEN MATCHED THEN UPDATE SET n = s.m",
	     "GROUP BY"},
	    /* IN / EXISTS not on the keys */
	    {"SELECT * FROM users WHERE name IN (SELECT item FROM orders)",
	     "an IN/ANY/ALL subquery that does not compare shard keys"},
	    {"SELECT * FROM users WHERE id IN (SELECT total FROM orders)",
	     "does not compare shard keys"},
	    {"SELECT * FROM users WHERE n = ANY (SELECT user_id FROM orders)",
	     "does not compare shard keys"},
	    {"SELECT * FROM users WHERE id > ALL (SELECT user_id FROM orders)",
	     "does not compare shard keys"},
	    {"SELECT * FROM users u WHERE EXISTS (SELECT 1 FROM orders o WHERE o.total = u.n)",
	     "an EXISTS subquery not correlated on the shard key"},
	    {"SELECT * FROM users WHERE EXISTS (SELECT 1 FROM orders WHERE total > 5)",
	     "an EXISTS subquery not correlated"},
	    {"SELECT * FROM users WHERE id IN (SELECT user_id FROM orders GROUP BY user_id, "
	     "total HAVING count(*) > 1 LIMIT 3)",
	     "LIMIT/OFFSET"},
	    {"SELECT * FROM users WHERE id IN (SELECT max(user_id) FROM orders)",
	     "aggregate function max()"},
	    {"SELECT * FROM users WHERE id IN (SELECT user_id FROM orders GROUP BY total)",
	     "GROUP BY on other columns"},
	    {"SELECT * FROM users WHERE id IN (SELECT user_id FROM orders WHERE total > (SELECT "
	     "avg(total) FROM orders))",
	     "aggregate function avg()"},
	    /* derived tables that combine rows */
	    {"SELECT * FROM users u JOIN (SELECT user_id, count(*) FROM orders GROUP BY total) s "
	     "ON s.user_id = u.id",
	     "GROUP BY"},
	    {"SELECT * FROM users u JOIN (SELECT DISTINCT user_id FROM orders) s ON s.user_id = "
	     "u.id",
	     "a subquery with DISTINCT"},
	    {"SELECT * FROM users u JOIN (SELECT user_id FROM orders ORDER BY total LIMIT 3) s ON "
	     "s.user_id = u.id",
	     "LIMIT/OFFSET"},
	    {"SELECT * FROM users u JOIN (SELECT user_id FROM orders UNION SELECT id FROM users) s "
	     "ON s.user_id = u.id",
	     "a subquery with UNION"},
	    {"WITH t AS (SELECT max(total) AS m FROM orders) SELECT * FROM users u, t WHERE u.n = "
	     "t.m",
	     "aggregate function max()"},
	    {"SELECT * FROM users u, LATERAL (SELECT row_number() OVER () FROM orders o WHERE "
	     "o.total = u.n) s",
	     "window functions"},
	    {"WITH RECURSIVE t AS (SELECT id FROM users WHERE id = 1 UNION ALL SELECT u.id FROM "
	     "users u JOIN t ON u.n = t.id) SELECT * FROM users u JOIN t ON t.id = u.id",
	     "a recursive CTE"},
	    /* a subquery inside a local one is judged on its own */
	    {"SELECT u.id, (SELECT count(*) FROM orders o WHERE o.user_id = u.id AND o.total > "
	     "(SELECT avg(total) FROM orders)) FROM users u",
	     "aggregate function avg()"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		route_plan_t p = route(cases[i].sql);

		expect_refused_with(cases[i].sql, &p,
		                    (const char *const[]){cases[i].what, "not supported yet",
		                                          "/* pgshard: shard=N */", NULL});
	}
	/* the message says why, and what would work */
	REFUSED(
	    "SELECT * FROM users WHERE n > (SELECT avg(n) FROM users)",
	    "a subquery with aggregate function avg() over users across shards is not supported "
	    "yet (each shard would answer it from its own rows only); correlate it with the "
	    "outer row on the shard key (WHERE users.id = <outer table>.<its key>), add a "
	    "condition on users.id, or /* pgshard: shard=N */");
	/* several shards, not all: still wrong on each */
	REFUSED("SELECT * FROM users WHERE id IN (1, 2, 3, 4) AND n > (SELECT avg(n) FROM users)",
	        "aggregate function avg()");
	REFUSED("/* pgshard: all */ SELECT * FROM users WHERE n > (SELECT avg(n) FROM users)",
	        "aggregate function avg()");
}

/* A subquery tied to the outer row by the key finds all the rows it needs on that row's shard. */
static void test_multi_shard_subquery_co_located_on_the_key_is_allowed(void **state)
{
	(void)state;
	MERGES("SELECT u.id, (SELECT count(*) FROM orders o WHERE o.user_id = u.id) FROM users u",
	       ROUTE_MERGE_SUM);
	MERGES("SELECT u.id, (SELECT max(total) FROM orders o WHERE u.id = o.user_id AND o.total > "
	       "0) FROM users u",
	       ROUTE_MERGE_SUM);
	MERGES("SELECT u.id, ARRAY(SELECT o.total FROM orders o WHERE o.user_id = u.id ORDER BY "
	       "o.total LIMIT 3) FROM users u",
	       ROUTE_MERGE_SUM);
	MERGES("SELECT * FROM users u WHERE u.n > (SELECT avg(total) FROM orders o JOIN users u2 "
	       "ON u2.id = o.user_id WHERE o.user_id = u.id)",
	       ROUTE_MERGE_SUM);
	MERGES("SELECT * FROM users WHERE id IN (SELECT user_id FROM orders WHERE total > 5)",
	       ROUTE_MERGE_SUM);
	MERGES("SELECT count(*) FROM users u WHERE u.id IN (SELECT o.user_id FROM orders o)",
	       ROUTE_MERGE_COUNT);
	MERGES("SELECT * FROM users WHERE id = ANY (SELECT DISTINCT user_id FROM orders)",
	       ROUTE_MERGE_SUM);
	MERGES("SELECT * FROM users WHERE id NOT IN (SELECT user_id FROM orders)", ROUTE_MERGE_SUM);
	MERGES("SELECT * FROM users WHERE id <> ALL (SELECT user_id FROM orders)", ROUTE_MERGE_SUM);
	MERGES("SELECT * FROM users WHERE id IN (SELECT user_id FROM orders GROUP BY user_id "
	       "HAVING count(*) > 2)",
	       ROUTE_MERGE_SUM);
	MERGES("SELECT * FROM users WHERE id IN (SELECT user_id FROM orders UNION SELECT id FROM "
	       "widgets)",
	       ROUTE_MERGE_SUM);
	MERGES("SELECT * FROM users u WHERE EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.id)",
	       ROUTE_MERGE_SUM);
	MERGES("SELECT * FROM users u WHERE NOT EXISTS (SELECT 1 FROM orders o JOIN widgets x ON "
	       "x.id = o.user_id WHERE o.user_id = u.id LIMIT 1)",
	       ROUTE_MERGE_SUM);
	MERGES("SELECT * FROM users u WHERE EXISTS (SELECT 1 FROM orders o JOIN countries c ON "
	       "c.code = o.cc WHERE o.user_id = u.id)",
	       ROUTE_MERGE_SUM);
	/* two levels up */
	MERGES("SELECT * FROM users u WHERE u.cc IN (SELECT code FROM countries c WHERE EXISTS "
	       "(SELECT 1 FROM orders o WHERE o.user_id = u.id AND o.cc = c.code))",
	       ROUTE_MERGE_SUM);
	/* derived tables whose rows each come from one shard */
	MERGES("SELECT * FROM users u, LATERAL (SELECT sum(total) FROM orders o WHERE o.user_id = "
	       "u.id) s",
	       ROUTE_MERGE_SUM);
	MERGES("SELECT * FROM users u JOIN (SELECT user_id, count(*) FROM orders GROUP BY user_id) "
	       "s ON s.user_id = u.id",
	       ROUTE_MERGE_SUM);
	MERGES("SELECT * FROM users u JOIN (SELECT * FROM orders ORDER BY total) s ON s.user_id = "
	       "u.id",
	       ROUTE_MERGE_SUM);
	MERGES(
	    "WITH o AS (SELECT user_id FROM orders UNION ALL SELECT id FROM users) SELECT * FROM "
	    "o",
	    ROUTE_MERGE_SUM);
	/* writes */
	MERGES("UPDATE users u SET n = (SELECT count(*) FROM orders o WHERE o.user_id = u.id)",
	       ROUTE_MERGE_SUM);
	MERGES("UPDATE users u SET (n, name) = (SELECT count(*), max(note) FROM orders o WHERE "
	       "o.user_id = u.id)",
	       ROUTE_MERGE_SUM);
	MERGES("DELETE FROM users WHERE id IN (SELECT user_id FROM orders WHERE total = 0)",
	       ROUTE_MERGE_SUM);
	MERGES(
	    "INSERT INTO orders (user_id, total) SELECT user_id, sum(total) FROM orders GROUP BY "
	    "user_id",
	    ROUTE_MERGE_SUM);
	MERGES("MERGE INTO users u USING (SELECT user_id, max(total) AS m FROM orders GROUP BY "
	       "user_id) s ON u.id = s.user_id WHEN MATCHED THEN UPDATE SET n = s.m",
	       ROUTE_MERGE_SUM);
}

/* Rows of reference tables, or of no table, are the same on every shard. */
static void test_multi_shard_subquery_over_reference_tables_is_allowed(void **state)
{
	(void)state;
	MERGES("SELECT * FROM users WHERE cc IN (SELECT code FROM countries WHERE name > 'm')",
	       ROUTE_MERGE_SUM);
	MERGES("SELECT id, (SELECT count(*) FROM countries) FROM users", ROUTE_MERGE_SUM);
	MERGES("SELECT count(*) FROM users WHERE n > (SELECT max(n) FROM countries LIMIT 1)",
	       ROUTE_MERGE_COUNT);
	MERGES("SELECT * FROM users WHERE n > (SELECT 1) AND EXISTS (SELECT 1 FROM "
	       "generate_series(1, 3))",
	       ROUTE_MERGE_SUM);
	MERGES("SELECT * FROM users u JOIN (SELECT DISTINCT code FROM countries LIMIT 5) c ON "
	       "c.code = u.cc",
	       ROUTE_MERGE_SUM);
	MERGES("WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 3) "
	       "SELECT * FROM users, t",
	       ROUTE_MERGE_SUM);
	MERGES("UPDATE users SET n = (SELECT max(n) FROM countries)", ROUTE_MERGE_SUM);
}

/*
 * A FROM subquery or CTE over a sharded table is joined like the table: each
 * shard holds the rows that join with its own only when the join is on the
 * key the subquery selects unmodified. Joined any other way, pairs whose
 * halves are on different shards would be missing: refused, like tables.
 */
static void test_derived_table_joined_without_its_key_is_refused(void **state)
{
	static const char *const cases[] = {
	    "SELECT * FROM users u JOIN (SELECT * FROM orders) s ON s.note = u.name",
	    "WITH s AS (SELECT * FROM orders) SELECT * FROM users u JOIN s ON s.note = u.name",
	    "SELECT * FROM users u LEFT JOIN (SELECT * FROM orders) s ON s.note = u.name",
	    "SELECT * FROM users u RIGHT JOIN (SELECT * FROM orders) s ON s.note = u.name",
	    "SELECT * FROM users u FULL JOIN (SELECT * FROM orders) s ON s.note = u.name",
	    "SELECT * FROM users u, (SELECT * FROM orders) s WHERE s.note = u.name",
	    "SELECT * FROM users u CROSS JOIN (SELECT * FROM orders) s",
	    "WITH s AS (SELECT * FROM orders) SELECT * FROM users u, s WHERE s.total = u.n",
	    /* the key is selected, but not compared */
	    "SELECT * FROM users u JOIN (SELECT user_id, note FROM orders) s ON s.note = u.name",
	    /* selected modified: no longer the key */
	    "SELECT * FROM users u JOIN (SELECT user_id + 0 AS user_id FROM orders) s ON "
	    "s.user_id = u.id",
	    /* USING a column that is not the subquery's key */
	    "SELECT * FROM users u JOIN (SELECT * FROM orders) s USING (id)",
	    /* two derived tables, nested ones, a self-join of a CTE */
	    "SELECT * FROM (SELECT * FROM users) a JOIN (SELECT * FROM orders) b ON a.name = "
	    "b.note",
	    "SELECT * FROM users u JOIN (SELECT * FROM (SELECT * FROM orders) x) s ON s.note = "
	    "u.name",
	    "WITH s AS (SELECT * FROM orders) SELECT * FROM s a JOIN s b ON a.note = b.note",
	    "SELECT * FROM users u WHERE u.id IN (SELECT s.user_id FROM (SELECT * FROM orders) s "
	    "JOIN widgets x ON x.id = s.total)",
	    /* a LATERAL subquery not correlated on the key */
	    "SELECT * FROM users u, LATERAL (SELECT * FROM orders o WHERE o.note = u.name) s",
	    /* a write's RETURNING, joined on another column */
	    "WITH d AS (DELETE FROM orders WHERE total = 0 RETURNING user_id) SELECT * FROM users "
	    "u "
	    "JOIN d ON d.user_id = u.n",
	    /* even where a condition would send it to one shard: other rows are elsewhere */
	    "SELECT * FROM users u JOIN (SELECT * FROM orders) s ON s.note = u.name WHERE u.id = 5",
	    "SELECT * FROM users u JOIN (SELECT * FROM orders WHERE user_id = 5) s ON s.note = "
	    "u.name WHERE u.id = 5",
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		route_plan_t p = route(cases[i]);

		expect_refused_with(cases[i], &p,
		                    (const char *const[]){"joined without equal keys",
		                                          "or query them separately", NULL});
	}
	/* the message names both sides and the join that would work */
	REFUSED("SELECT * FROM users u JOIN (SELECT * FROM orders) s ON s.note = u.name",
	        "table users and subquery s over orders are joined without equal keys, so matching "
	        "rows may be on different shards; join them on u.id = s.user_id, with subquery s "
	        "selecting orders.user_id unmodified (and grouping by it if it aggregates), or "
	        "query them separately");
	REFUSED("WITH s AS (SELECT * FROM orders) SELECT * FROM users u JOIN s ON s.note = u.name",
	        "table users and CTE s over orders", "join them on u.id = s.user_id");
	/* a subquery that combines rows of several keys has no key to be joined on */
	REFUSED("SELECT * FROM users u, (SELECT count(*) AS c FROM orders) s",
	        "subquery s over orders has aggregate function count()", "not supported yet",
	        "/* pgshard: shard=N */");
	REFUSED("SELECT * FROM users u, (SELECT count(*) AS c FROM orders) s WHERE u.id = 5",
	        "subquery s over orders has aggregate function count()");
	REFUSED("SELECT * FROM users u JOIN (SELECT user_id FROM orders ORDER BY total LIMIT 3) s "
	        "ON s.user_id = u.id WHERE u.id = 5",
	        "has LIMIT/OFFSET", "join on u.id = s.user_id");
	REFUSED("SELECT * FROM users u JOIN (SELECT user_id, max(total) AS m FROM orders GROUP BY "
	        "note) s ON s.user_id = u.id",
	        "has GROUP BY on other columns than the shard key");
	/* the comment that takes the decision still does */
	{
		const char *sql =
		    "/* pgshard: shard=1 */ SELECT * FROM users u JOIN (SELECT * FROM "
		    "orders) s ON s.note = u.name";
		route_plan_t p = route(sql);

		expect_one(sql, &p, ROUTE_SHARDS, 1);
	}
}

/* Joined on the key it selects unmodified, a derived table is co-located with the table. */
static void test_derived_table_joined_on_its_key_is_allowed(void **state)
{
	(void)state;
	MERGES("SELECT * FROM users u JOIN (SELECT * FROM orders) s ON s.user_id = u.id",
	       ROUTE_MERGE_SUM);
	MERGES("WITH s AS (SELECT * FROM orders) SELECT * FROM users u JOIN s ON s.user_id = u.id",
	       ROUTE_MERGE_SUM);
	MERGES("SELECT * FROM users u JOIN (SELECT user_id, count(*) FROM orders GROUP BY user_id) "
	       "s ON u.id = s.user_id",
	       ROUTE_MERGE_SUM);
	MERGES("WITH s AS (SELECT user_id, sum(total) AS t FROM orders GROUP BY user_id) SELECT * "
	       "FROM users u LEFT JOIN s ON s.user_id = u.id",
	       ROUTE_MERGE_SUM);
	MERGES("SELECT * FROM users u, (SELECT * FROM orders) s WHERE s.user_id = u.id AND s.note "
	       "= u.name",
	       ROUTE_MERGE_SUM);
	MERGES("SELECT * FROM users u FULL JOIN (SELECT o.user_id AS uid, o.note FROM orders o) s "
	       "ON s.uid = u.id",
	       ROUTE_MERGE_SUM);
	MERGES("SELECT * FROM users u JOIN (SELECT user_id AS id FROM orders) s USING (id)",
	       ROUTE_MERGE_SUM);
	MERGES(
	    "SELECT * FROM users u JOIN (SELECT user_id, note FROM orders) s(k, t) ON s.k = u.id",
	    ROUTE_MERGE_SUM);
	MERGES("SELECT * FROM users u JOIN (SELECT x.* FROM (SELECT * FROM orders) x) s ON "
	       "s.user_id = u.id",
	       ROUTE_MERGE_SUM);
	MERGES("SELECT * FROM users u JOIN (SELECT user_id FROM orders UNION ALL SELECT id FROM "
	       "widgets) s ON s.user_id = u.id",
	       ROUTE_MERGE_SUM);
	MERGES("WITH s AS (SELECT * FROM orders) SELECT * FROM s a JOIN s b ON a.user_id = "
	       "b.user_id",
	       ROUTE_MERGE_SUM);
	MERGES("WITH d AS (DELETE FROM orders WHERE total = 0 RETURNING user_id) SELECT * FROM "
	       "users u JOIN d ON d.user_id = u.id",
	       ROUTE_MERGE_SUM);
	MERGES("SELECT * FROM users u, LATERAL (SELECT * FROM orders o WHERE o.user_id = u.id) s",
	       ROUTE_MERGE_SUM);
	/* over reference tables only: every shard has all its rows */
	MERGES("SELECT * FROM users u JOIN (SELECT * FROM countries) c ON c.code = u.cc",
	       ROUTE_MERGE_SUM);
	MERGES("WITH c AS (SELECT * FROM countries) SELECT * FROM users u JOIN c ON c.code = u.cc",
	       ROUTE_MERGE_SUM);
	/* a key condition on either side routes it to one shard */
	ROUTES_TO("SELECT * FROM users u JOIN (SELECT * FROM orders) s ON s.user_id = u.id WHERE "
	          "u.id = 5",
	          "users", 5);
	ROUTES_TO("WITH s AS (SELECT * FROM orders) SELECT * FROM users u JOIN s ON s.user_id = "
	          "u.id WHERE u.id = 6",
	          "users", 6);
	ROUTES_TO("SELECT * FROM users u JOIN (SELECT * FROM orders WHERE user_id = 7) s ON "
	          "s.user_id = u.id",
	          "users", 7);
	ROUTES_TO("SELECT * FROM (SELECT * FROM orders) s WHERE s.user_id = 8", "users", 8);
	/* INSERT ... SELECT of a derived table's key: rows stay on their shard */
	MERGES("INSERT INTO orders (user_id, note) SELECT s.user_id, s.note FROM (SELECT * FROM "
	       "orders) s",
	       ROUTE_MERGE_SUM);
}

/*
 * A statement on one shard runs whole there, subqueries included: a subquery
 * that reads rows of other shards would be answered from that shard's rows
 * only, where one PostgreSQL would use them all.
 */
static void test_one_shard_subquery_that_needs_other_shards_rows_is_refused(void **state)
{
	static const struct {
		const char *sql, *what;
	} cases[] = {
	    {"SELECT * FROM users WHERE id = 3 AND n > (SELECT avg(n) FROM users)",
	     "a subquery with aggregate function avg() over users"},
	    {"SELECT id, (SELECT count(*) FROM orders) FROM users WHERE id = 4",
	     "a subquery with aggregate function count() over orders"},
	    {"UPDATE users SET n = 0 WHERE id = 5 AND n < (SELECT avg(n) FROM users)",
	     "a subquery with aggregate function avg() over users"},
	    {"DELETE FROM users WHERE id = 6 AND id IN (SELECT user_id FROM orders ORDER BY total "
	     "LIMIT 10)",
	     "a subquery with LIMIT/OFFSET over orders"},
	    {"SELECT * FROM users WHERE id = 7 AND name IN (SELECT item FROM orders)",
	     "an IN/ANY/ALL subquery that does not compare shard keys"},
	    {"SELECT * FROM users WHERE id = 8 AND EXISTS (SELECT 1 FROM orders WHERE total > 5)",
	     "an EXISTS subquery not correlated on the shard key"},
	    {"SELECT * FROM users WHERE id = 9 AND n > (SELECT n FROM users WHERE name = 'x')",
	     "a scalar subquery not correlated on the shard key"},
	    {"SELECT * FROM users WHERE id = 10 AND id IN (SELECT user_id FROM orders GROUP BY "
	     "user_id, note HAVING count(*) > 1 LIMIT 3)",
	     "LIMIT/OFFSET"},
	    /* an outer join's ON keeps the rows it does not match: no narrowing */
	    {"SELECT * FROM users WHERE id = 12 AND n > (SELECT count(*) FROM orders o LEFT JOIN "
	     "users u ON u.id = o.user_id AND u.id = 12)",
	     "aggregate function count()"},
	    /* EXPLAIN ANALYZE runs the UPDATE, with one shard's average */
	    {"EXPLAIN ANALYZE UPDATE users SET n = 0 WHERE id = 5 AND n < (SELECT avg(n) FROM "
	     "users)",
	     "a subquery with aggregate function avg() over users"},
	    {"EXPLAIN (ANALYZE true, COSTS off) SELECT * FROM users WHERE id = 3 AND n > (SELECT "
	     "avg(n) FROM users)",
	     "a subquery with aggregate function avg() over users"},
	};
	char sql[256], want[512];
	int64_t b = key_elsewhere("users", 3);

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		route_plan_t p = route(cases[i].sql);

		expect_refused_with(
		    cases[i].sql, &p,
		    (const char *const[]){
		        cases[i].what, "not supported yet in a statement on one shard",
		        "inside it that keeps it on shard",
		        "/* pgshard: shard=N */ to use only that shard's rows", NULL});
	}
	/* the message says why, and what would work */
	snprintf(
	    want, sizeof want,
	    "a subquery with aggregate function avg() over users is not supported yet in a "
	    "statement on one shard (it runs on shard %d alone, which would answer it from its "
	    "own rows only); correlate it with the outer row on the shard key (WHERE users.id "
	    "= <outer table>.<its key>), add a condition on users.id inside it that keeps it on "
	    "shard %d, or /* pgshard: shard=N */ to use only that shard's rows",
	    shard_of("users", 3), shard_of("users", 3));
	REFUSED("SELECT * FROM users WHERE id = 3 AND n > (SELECT avg(n) FROM users)", want);
	/* its own key condition, for a key on another shard */
	snprintf(sql, sizeof sql,
	         "SELECT * FROM users WHERE id = 3 AND n > (SELECT count(*) FROM orders WHERE "
	         "user_id = %lld)",
	         (long long)b);
	REFUSED(sql, "aggregate function count() over orders");
	snprintf(sql, sizeof sql,
	         "SELECT * FROM users WHERE id = 3 AND n > (SELECT count(*) FROM orders WHERE "
	         "user_id IN (3, %lld))",
	         (long long)b);
	REFUSED(sql, "aggregate function count() over orders");
	REFUSED("WITH t AS (SELECT max(total) AS m FROM orders) SELECT * FROM users WHERE id = 11 "
	        "AND n > (SELECT m FROM t)",
	        "not supported yet in a statement on one shard");
	/* a derived table inside the subquery is not narrowed by the subquery's condition */
	REFUSED("SELECT * FROM users WHERE id = 3 AND n > (SELECT count(*) FROM (SELECT * FROM "
	        "orders) s WHERE s.user_id = 3)",
	        "over sharded tables is not supported yet in a statement on one shard",
	        "read its sharded tables in its own FROM");
	REFUSED(
	    "WITH RECURSIVE t AS (SELECT id FROM users WHERE id = 1 UNION ALL SELECT u.id FROM "
	    "users u JOIN t ON u.id = t.id + 1) SELECT * FROM users u WHERE u.id = 1 AND u.n IN "
	    "(SELECT id FROM t)",
	    "not supported yet in a statement on one shard");
	REFUSED("SELECT * FROM users WHERE id = 3 AND id IN (SELECT user_id FROM orders UNION "
	        "SELECT id FROM users LIMIT 2)",
	        "a subquery with LIMIT/OFFSET over sharded tables is not supported yet in a "
	        "statement on one shard",
	        "; run it with /* pgshard: shard=N */ to use only that shard's rows");
}

/* What a shard can answer alone is still right on one shard. */
static void test_one_shard_subquery_local_to_its_shard_is_allowed(void **state)
{
	char sql[256];
	int64_t b = key_beside("users", 3);

	(void)state;
	/* correlated on the key: the outer row's shard holds every row with its key */
	ROUTES_TO("SELECT u.id, (SELECT count(*) FROM orders o WHERE o.user_id = u.id) FROM users "
	          "u WHERE u.id = 3",
	          "users", 3);
	ROUTES_TO("SELECT * FROM users u WHERE u.id = 4 AND EXISTS (SELECT 1 FROM orders o WHERE "
	          "o.user_id = u.id ORDER BY o.total LIMIT 1)",
	          "users", 4);
	ROUTES_TO("UPDATE users u SET n = (SELECT sum(total) FROM orders o WHERE o.user_id = u.id) "
	          "WHERE u.id = 5",
	          "users", 5);
	/* IN over keys, without combining rows */
	ROUTES_TO("SELECT * FROM users WHERE id = 6 AND id IN (SELECT user_id FROM orders WHERE "
	          "total > 5)",
	          "users", 6);
	ROUTES_TO("DELETE FROM users WHERE id = 7 AND id NOT IN (SELECT user_id FROM orders)",
	          "users", 7);
	/* reference tables only */
	ROUTES_TO("SELECT id, (SELECT count(*) FROM countries) FROM users WHERE id = 8", "users",
	          8);
	ROUTES_TO("SELECT * FROM users WHERE id = 9 AND cc IN (SELECT code FROM countries ORDER BY "
	          "name LIMIT 3)",
	          "users", 9);
	/* its own key condition keeps it on the statement's shard */
	ROUTES_TO(
	    "SELECT * FROM users WHERE id = 3 AND n > (SELECT avg(n) FROM users WHERE id = 3)",
	    "users", 3);
	ROUTES_TO("SELECT * FROM users WHERE id = 3 AND n > (SELECT count(*) FROM orders WHERE "
	          "user_id = 3)",
	          "users", 3);
	ROUTES_TO("SELECT * FROM users WHERE id = 3 AND n > (SELECT count(*) FROM orders o JOIN "
	          "users u ON u.id = o.user_id AND u.id = 3)",
	          "users", 3);
	snprintf(sql, sizeof sql,
	         "SELECT * FROM users WHERE id = 3 AND n > (SELECT count(*) FROM orders WHERE "
	         "user_id IN (3, %lld))",
	         (long long)b);
	ROUTES_TO(sql, "users", 3);
	ROUTES_TO("SELECT * FROM (SELECT * FROM orders WHERE user_id = 3 ORDER BY total LIMIT 5) s",
	          "users", 3);
	ROUTES_TO("SELECT * FROM countries WHERE code IN (SELECT cc FROM users WHERE id = 5)",
	          "users", 5);
	ROUTES_TO("SELECT (SELECT max(total) FROM orders WHERE user_id = 4)", "users", 4);
	/* the user says where it runs, and takes that shard's rows */
	MERGES("/* pgshard: shard=1 */ SELECT * FROM users WHERE n > (SELECT avg(n) FROM users)",
	       ROUTE_MERGE_NONE);
	ROUTES_TO("/* pgshard: key=3 */ SELECT * FROM users WHERE n > (SELECT avg(n) FROM users)",
	          "users", 3);
	ROUTES_TO("/* pgshard: key=3 */ SELECT * FROM users WHERE id = 3 AND n > (SELECT avg(n) "
	          "FROM users)",
	          "users", 3);
}

/*
 * A subquery's sharded tables must be joined on their keys, as the
 * statement's own: its answer is wrong on every shard otherwise, correlated
 * or not, on one shard or several.
 */
static void test_subquery_joining_tables_without_their_keys_is_refused(void **state)
{
	(void)state;
	REFUSED("SELECT * FROM users u WHERE u.n > (SELECT count(*) FROM users a JOIN orders b ON "
	        "a.n = b.total WHERE a.id = u.id)",
	        "tables users and orders are joined without equal keys",
	        "join them on a.id = b.user_id");
	REFUSED(
	    "SELECT * FROM users WHERE id = 3 AND n > (SELECT count(*) FROM users a JOIN orders "
	    "b ON a.n = b.total WHERE a.id = 3)",
	    "tables users and orders are joined without equal keys");
	REFUSED(
	    "SELECT u.id, (SELECT count(*) FROM users a, orders b WHERE a.id = u.id) FROM users "
	    "u WHERE u.id = 3",
	    "tables users and orders are joined without equal keys");
	/* on their keys, or USING them, they are co-located */
	ROUTES_TO("SELECT * FROM users WHERE id = 3 AND n > (SELECT count(*) FROM users a JOIN "
	          "widgets x USING (id) WHERE a.id = 3)",
	          "users", 3);
	MERGES("SELECT * FROM users u WHERE u.n > (SELECT count(*) FROM users a JOIN orders b ON "
	       "a.id = b.user_id WHERE a.id = u.id)",
	       ROUTE_MERGE_SUM);
}

/* Known only with the parameter: refused then if it leaves several shards, not at Parse. */
static void test_subquery_refusal_waits_for_the_parameters(void **state)
{
	const char *sql = "SELECT * FROM users WHERE id = $1 AND n > (SELECT avg(n) FROM users)";
	const char *own = "SELECT * FROM users WHERE id = 7 AND n > (SELECT avg(n) FROM users "
	                  "WHERE id = $1)";
	char beside[32], elsewhere[32];
	route_param_t prm = text_param("7");
	route_plan_t p = route(sql);

	(void)state;
	assert_int_not_equal(p.kind, ROUTE_REFUSE);
	assert_true(p.params_missing);
	/* with the value, it runs on one shard: the subquery would see that shard's rows only */
	p = route_params(sql, &prm, 1);
	expect_refused_with(sql, &p,
	                    (const char *const[]){"aggregate function avg() over users",
	                                          "in a statement on one shard", NULL});
	/* the subquery's own key parameter decides whether it stays on the statement's shard */
	p = route(own);
	expect_keys(own, &p, "users", KEYS(7));
	assert_true(p.params_missing);
	snprintf(beside, sizeof beside, "%lld", (long long)key_beside("users", 7));
	prm = text_param(beside);
	p = route_params(own, &prm, 1);
	expect_keys(own, &p, "users", KEYS(7));
	assert_int_equal(p.merge, ROUTE_MERGE_NONE);
	snprintf(elsewhere, sizeof elsewhere, "%lld", (long long)key_elsewhere("users", 7));
	prm = text_param(elsewhere);
	p = route_params(own, &prm, 1);
	expect_refused_with(own, &p,
	                    (const char *const[]){"aggregate function avg() over users", NULL});
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
	MERGES("MERGE INTO users u USING orders o ON u.id = o.user_id WHEN MATCHED THEN UPDATE SET "
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
	MERGES("WITH x AS (DELETE FROM countries WHERE code = 'xx' RETURNING *) SELECT * FROM x",
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
	REFUSED("UPDATE users SET n = 0; SELECT count(*) FROM users",
	        "statement 1 concatenates rows, statement 2 adds up counts", "separately");
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
	                         "shards cannot be split; send one row per statement");
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
	    cmocka_unit_test(test_kind_names_are_the_documented_words),
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
	    cmocka_unit_test(test_insert_single_row_goes_to_its_shard),
	    cmocka_unit_test(test_insert_rows_on_one_shard_is_not_split),
	    cmocka_unit_test(test_insert_rows_on_several_shards_is_split),
	    cmocka_unit_test(test_insert_with_parameters),
	    cmocka_unit_test(test_insert_without_column_list_is_refused),
	    cmocka_unit_test(test_insert_without_the_key_column_is_refused),
	    cmocka_unit_test(test_insert_key_must_be_a_constant_or_parameter),
	    cmocka_unit_test(test_insert_select_from_co_located_table),
	    cmocka_unit_test(test_insert_select_not_from_co_located_key_is_refused),
	    cmocka_unit_test(test_insert_on_conflict),
	    cmocka_unit_test(test_update_of_the_key_column_is_refused),
	    cmocka_unit_test(test_update_of_the_key_to_a_value_on_the_same_shard_is_allowed),
	    cmocka_unit_test(test_update_of_the_key_to_a_parameter_is_decided_by_its_value),
	    cmocka_unit_test(test_ddl_on_sharded_and_reference_tables_goes_to_every_shard),
	    cmocka_unit_test(test_ddl_on_other_tables_goes_to_default_shard),
	    cmocka_unit_test(test_create_table_as_and_views),
	    cmocka_unit_test(test_copy_from_stdin_is_split_over_the_map),
	    cmocka_unit_test(test_copy_to_routes_like_the_query),
	    cmocka_unit_test(test_copy_of_reference_and_other_tables),
	    cmocka_unit_test(test_statements_routed_alike_go_together),
	    cmocka_unit_test(test_statements_routed_differently_are_refused),
	    cmocka_unit_test(test_split_insert_and_commit_of_multi_shard_write_must_be_sent_alone),
	    cmocka_unit_test(test_override_shard_forces_the_shard),
	    cmocka_unit_test(test_override_never_puts_rows_where_their_key_does_not_belong),
	    cmocka_unit_test(test_override_shard_that_does_not_exist_is_refused),
	    cmocka_unit_test(test_override_key_routes_as_key_equals_value),
	    cmocka_unit_test(test_override_all_goes_to_every_shard),
	    cmocka_unit_test(test_explain_routes_like_its_statement),
	    cmocka_unit_test(test_sql_prepare_and_cursors_over_sharded_tables_are_refused),
	    cmocka_unit_test(test_merge_with_co_located_source),
	    cmocka_unit_test(test_lock_of_a_sharded_table_goes_to_every_shard),
	    cmocka_unit_test(test_absurdly_deep_statement_is_refused_not_crashed),
	    cmocka_unit_test(test_plans_are_a_function_of_their_inputs),
	    cmocka_unit_test(test_tokens_are_cut_as_postgresql_cuts_them),
	    cmocka_unit_test(test_depth_estimate_counts_levels_and_operator_chains),
	    cmocka_unit_test(test_depth_estimate_skips_strings_comments_and_quoted_names),
	    cmocka_unit_test(test_depth_estimate_counts_chains_of_keywords),
	    cmocka_unit_test(test_depth_estimate_of_wide_lists_stays_small),
	    cmocka_unit_test(test_deep_operator_chain_is_refused_before_parsing),
	    cmocka_unit_test(test_deep_tree_under_the_text_limit_is_refused_with_54001),
	    cmocka_unit_test(test_wide_multi_row_insert_is_not_refused_by_the_guard),
	    cmocka_unit_test(test_transaction_control_statements_are_named),
	    cmocka_unit_test(test_transaction_control_among_other_statements_is_only_flagged),
	    cmocka_unit_test(test_one_shard_has_nothing_to_merge),
	    cmocka_unit_test(test_multi_shard_rows_that_concatenate_are_summed),
	    cmocka_unit_test(test_multi_shard_counts_are_added_up),
	    cmocka_unit_test(test_multi_shard_select_with_order_limit_or_aggregates_gathers),
	    cmocka_unit_test(test_multi_shard_select_that_cannot_be_merged_is_refused),
	    cmocka_unit_test(test_multi_shard_subquery_that_needs_other_shards_rows_is_refused),
	    cmocka_unit_test(test_multi_shard_subquery_co_located_on_the_key_is_allowed),
	    cmocka_unit_test(test_multi_shard_subquery_over_reference_tables_is_allowed),
	    cmocka_unit_test(test_derived_table_joined_without_its_key_is_refused),
	    cmocka_unit_test(test_derived_table_joined_on_its_key_is_allowed),
	    cmocka_unit_test(test_one_shard_subquery_that_needs_other_shards_rows_is_refused),
	    cmocka_unit_test(test_one_shard_subquery_local_to_its_shard_is_allowed),
	    cmocka_unit_test(test_subquery_joining_tables_without_their_keys_is_refused),
	    cmocka_unit_test(test_subquery_refusal_waits_for_the_parameters),
	    cmocka_unit_test(test_multi_shard_writes_add_up_their_counts),
	    cmocka_unit_test(test_ddl_and_reference_table_writes_take_one_copy),
	    cmocka_unit_test(test_statements_of_one_string_must_merge_alike),
	    cmocka_unit_test(test_plan_without_its_parameters_is_not_refused_for_merging),
	    cmocka_unit_test(test_split_insert_makes_one_statement_per_shard),
	    cmocka_unit_test(test_split_insert_refuses_what_it_cannot_split),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
