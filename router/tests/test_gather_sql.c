/*
 * test_gather_sql.c — the SQL text that runs a gather plan
 * (router/gather_sql.h), pinned on strings: held rows as literals, the
 * final query, the catalog queries the proxy injects.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/gather.h"
#include "router/gather_sql.h"
#include "router/route.h"

#include "router/tests/route_config.h"

/* ---- helpers ---- */

static rowcmp_field_t val(const char *s)
{
	rowcmp_field_t f = {(const uint8_t *)s, s != NULL ? (int32_t)strlen(s) : -1};

	return f;
}

static char *rows_text(const char *const *values, int n)
{
	gather_rows_t r;
	rowcmp_field_t f[8];
	char *out;

	memset(&r, 0, sizeof r);
	for (int i = 0; i < n; i++)
		f[i] = val(values[i]);
	assert_int_equal(gather_rows_add(&r, f, n), 0);
	out = strdup(r.p);
	gather_rows_free(&r);
	return out;
}

/* A finalizing plan made of these parts, for the builder alone. */
static gather_plan_t parts_plan(const gather_part_t *parts, int n)
{
	gather_plan_t p;

	memset(&p, 0, sizeof p);
	p.finalize = true;
	p.limit = -1;
	p.parts = (gather_part_t *)parts;
	p.n_parts = n;
	return p;
}

static char * final(const gather_plan_t *p, const uint32_t *types, const char *const *names, int n,
                    const gather_rows_t *rows)
{
	char *sql, sqlstate[6], err[300];

	if (gather_final_sql(p, types, names, n, rows, &sql, sqlstate, err, sizeof err) != 0)
		fail_msg("final query refused (%s): %s", sqlstate, err);
	return sql;
}

/* ---- held rows ---- */

static void test_values_are_dollar_quoted_with_quotes_and_backslashes_as_they_are(void **state)
{
	const char *v[] = {"it's", "a\\b", "\"q\"", ""};
	char *t = rows_text(v, 4);

	(void)state;
	assert_string_equal(t, "($pgs$it's$pgs$, $pgs$a\\b$pgs$, $pgs$\"q\"$pgs$, $pgs$$pgs$)");
	free(t);
}

static void test_a_value_holding_the_tag_gets_a_longer_one(void **state)
{
	const char *v[] = {"x$pgs$y", "$pgs$$pgs1$", "$pgs"};
	char *t = rows_text(v, 3);

	(void)state;
	assert_string_equal(t, "($pgs1$x$pgs$y$pgs1$, $pgs2$$pgs$$pgs1$$pgs2$, $pgs$$pgs$pgs$)");
	free(t);
}

static void test_null_is_null_and_rows_are_comma_separated(void **state)
{
	gather_rows_t r;
	rowcmp_field_t a[2] = {val("1"), val(NULL)}, b[2] = {val(NULL), val("2")};

	(void)state;
	memset(&r, 0, sizeof r);
	assert_int_equal(gather_rows_add(&r, a, 2), 0);
	assert_int_equal(gather_rows_add(&r, b, 2), 0);
	assert_int_equal(r.n, 2);
	assert_string_equal(r.p, "($pgs$1$pgs$, NULL),(NULL, $pgs$2$pgs$)");
	assert_int_equal(r.len, strlen(r.p));
	gather_rows_free(&r);
	assert_null(r.p);
	assert_int_equal(r.n, 0);
}

/* ---- the final query ---- */

static void test_final_query_casts_held_columns_to_the_shards_types(void **state)
{
	static const gather_part_t parts[] = {
	    {GATHER_PART_TEXT, "SELECT sum(pgshard_p.c1)::", 0},
	    {GATHER_PART_TYPE, NULL, 1},
	    {GATHER_PART_TEXT, " AS n FROM ", 0},
	    {GATHER_PART_ROWS, "pgshard_p", 0},
	    {GATHER_PART_TEXT, " GROUP BY pgshard_p.c0", 0},
	};
	gather_plan_t p = parts_plan(parts, 5);
	uint32_t types[] = {25, 20};
	gather_rows_t r;
	rowcmp_field_t a[2] = {val("x'y"), val("3")}, b[2] = {val(NULL), val("4")};
	char *sql;

	(void)state;
	memset(&r, 0, sizeof r);
	assert_int_equal(gather_rows_add(&r, a, 2), 0);
	assert_int_equal(gather_rows_add(&r, b, 2), 0);
	sql = final(&p, types, NULL, 2, &r);
	assert_string_equal(
	    sql, "SELECT sum(pgshard_p.c1)::pg_catalog.int8 AS n FROM (SELECT "
	         "v.c0::pg_catalog.text AS c0, v.c1::pg_catalog.int8 AS c1 FROM (VALUES "
	         "($pgs$x'y$pgs$, $pgs$3$pgs$),(NULL, $pgs$4$pgs$)) AS v(c0, c1)) AS pgshard_p "
	         "GROUP BY pgshard_p.c0");
	free(sql);
	gather_rows_free(&r);
}

static void test_no_rows_is_a_typed_empty_relation(void **state)
{
	static const gather_part_t parts[] = {
	    {GATHER_PART_TEXT, "SELECT count(*) FROM ", 0},
	    {GATHER_PART_ROWS, "pgshard_p", 0},
	};
	gather_plan_t p = parts_plan(parts, 2);
	uint32_t types[] = {1700, 1184};
	gather_rows_t r;
	char *sql;

	(void)state;
	memset(&r, 0, sizeof r);
	sql = final(&p, types, NULL, 2, &r);
	assert_string_equal(sql, "SELECT count(*) FROM (SELECT NULL::pg_catalog.numeric AS c0, "
	                         "NULL::pg_catalog.timestamptz AS c1 WHERE false) AS pgshard_p");
	free(sql);
	sql = final(&p, types, NULL, 2, NULL);
	assert_non_null(strstr(sql, "WHERE false"));
	free(sql);
}

static void test_avg_divides_in_postgres_avg_type(void **state)
{
	static const gather_part_t parts[] = {
	    {GATHER_PART_AVG, NULL, 0}, {GATHER_PART_TEXT, " ", 0}, {GATHER_PART_AVG, NULL, 1},
	    {GATHER_PART_TEXT, " ", 0}, {GATHER_PART_AVG, NULL, 2}, {GATHER_PART_TEXT, " ", 0},
	    {GATHER_PART_AVG, NULL, 3}, {GATHER_PART_TEXT, " ", 0}, {GATHER_PART_AVG, NULL, 4},
	};
	gather_plan_t p = parts_plan(parts, 9);
	uint32_t types[] = {20, 1700, 700, 701, 1186};
	char *sql;

	(void)state;
	sql = final(&p, types, NULL, 5, NULL);
	assert_string_equal(sql, "pg_catalog.numeric pg_catalog.numeric pg_catalog.float8 "
	                         "pg_catalog.float8 pg_catalog.interval");
	free(sql);
}

static void test_user_defined_types_are_named_as_the_catalog_names_them(void **state)
{
	static const gather_part_t parts[] = {
	    {GATHER_PART_TYPE, NULL, 0},
	    {GATHER_PART_TEXT, " ", 0},
	    {GATHER_PART_ROWS, "pgshard_p", 0},
	};
	gather_plan_t p = parts_plan(parts, 3);
	uint32_t types[] = {16385, 23};
	const char *names[] = {"app.\"My Type\"", NULL};
	gather_rows_t r;
	rowcmp_field_t a[2] = {val("(1,2)"), val("5")};
	char *sql, sqlstate[6], err[300];

	(void)state;
	memset(&r, 0, sizeof r);
	assert_int_equal(gather_rows_add(&r, a, 2), 0);
	assert_int_equal(gather_unnamed_type(types, NULL, 2), 0);
	assert_int_equal(gather_unnamed_type(types, names, 2), -1);
	sql = final(&p, types, names, 2, &r);
	assert_string_equal(sql, "app.\"My Type\" (SELECT v.c0::app.\"My Type\" AS c0, "
	                         "v.c1::pg_catalog.int4 AS c1 FROM (VALUES ($pgs$(1,2)$pgs$, "
	                         "$pgs$5$pgs$)) AS v(c0, c1)) AS pgshard_p");
	free(sql);
	/* not named: refused, never guessed */
	assert_int_equal(gather_final_sql(&p, types, NULL, 2, &r, &sql, sqlstate, err, sizeof err),
	                 -1);
	assert_null(sql);
	assert_string_equal(sqlstate, "0A000");
	assert_non_null(strstr(err, "type oid 16385 (column 1)"));
	gather_rows_free(&r);
}

static void test_a_part_past_the_shards_columns_is_an_internal_error(void **state)
{
	static const gather_part_t parts[] = {{GATHER_PART_TYPE, NULL, 3}};
	gather_plan_t p = parts_plan(parts, 1);
	uint32_t types[] = {20};
	char *sql, sqlstate[6], err[300];

	(void)state;
	assert_int_equal(
	    gather_final_sql(&p, types, NULL, 1, NULL, &sql, sqlstate, err, sizeof err), -1);
	assert_string_equal(sqlstate, "XX000");
}

/* The planner's parts and the builder together, as the proxy runs them. */
static void test_planned_final_query_over_held_rows(void **state)
{
	gather_plan_t p;
	char sqlstate[6], err[300], *sql;
	uint32_t types[] = {25, 1700, 20, 20};
	gather_rows_t r;
	rowcmp_field_t a[4] = {val("a"), val("10"), val("2"), val("2")};

	(void)state;
	assert_int_equal(route_gather(&ctx,
	                              "SELECT grp, avg(price) FROM items GROUP BY grp "
	                              "HAVING count(*) > 1 ORDER BY 2 DESC",
	                              NULL, 0, &p, sqlstate, err, sizeof err),
	                 0);
	memset(&r, 0, sizeof r);
	assert_int_equal(gather_rows_add(&r, a, 4), 0);
	sql = final(&p, types, NULL, 4, &r);
	assert_string_equal(
	    sql, "SELECT pgshard_p.c0 AS grp, sum(pgshard_p.c1)::pg_catalog.numeric / "
	         "sum(pgshard_p.c2) AS avg FROM (SELECT v.c0::pg_catalog.text AS c0, "
	         "v.c1::pg_catalog.numeric AS c1, v.c2::pg_catalog.int8 AS c2, "
	         "v.c3::pg_catalog.int8 AS c3 FROM (VALUES ($pgs$a$pgs$, $pgs$10$pgs$, "
	         "$pgs$2$pgs$, $pgs$2$pgs$)) AS v(c0, c1, c2, c3)) AS pgshard_p GROUP BY "
	         "pgshard_p.c0 HAVING sum(pgshard_p.c3)::pg_catalog.int8 > 1 ORDER BY 2 "
	         "DESC");
	free(sql);
	gather_rows_free(&r);
	gather_plan_free(&p);
}

/* ---- catalog queries ---- */

static void test_catalog_queries_name_every_object_with_its_schema(void **state)
{
	uint32_t types[] = {20, 16385, 25, 16390};
	char *sql = gather_types_sql(types, 4);

	(void)state;
	assert_string_equal(sql, "SELECT t.oid::pg_catalog.int8, pg_catalog.format_type(t.oid, "
	                         "NULL) FROM pg_catalog.pg_type t WHERE t.oid "
	                         "OPERATOR(pg_catalog.=) ANY ('{16385,16390}'::pg_catalog.oid[])");
	free(sql);
	assert_string_equal(gather_collation_sql,
	                    "SELECT datcollate FROM pg_catalog.pg_database WHERE datname "
	                    "OPERATOR(pg_catalog.=) pg_catalog.current_database()");
	assert_string_equal(gather_float_digits_sql, "SHOW extra_float_digits");
}

static void test_built_in_type_names(void **state)
{
	(void)state;
	assert_string_equal(gather_type_name(20), "int8");
	assert_string_equal(gather_type_name(18), "\"char\"");
	assert_string_equal(gather_type_name(1009), "text[]");
	assert_null(gather_type_name(16385));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_values_are_dollar_quoted_with_quotes_and_backslashes_as_they_are),
	    cmocka_unit_test(test_a_value_holding_the_tag_gets_a_longer_one),
	    cmocka_unit_test(test_null_is_null_and_rows_are_comma_separated),
	    cmocka_unit_test(test_final_query_casts_held_columns_to_the_shards_types),
	    cmocka_unit_test(test_no_rows_is_a_typed_empty_relation),
	    cmocka_unit_test(test_avg_divides_in_postgres_avg_type),
	    cmocka_unit_test(test_user_defined_types_are_named_as_the_catalog_names_them),
	    cmocka_unit_test(test_a_part_past_the_shards_columns_is_an_internal_error),
	    cmocka_unit_test(test_planned_final_query_over_held_rows),
	    cmocka_unit_test(test_catalog_queries_name_every_object_with_its_schema),
	    cmocka_unit_test(test_built_in_type_names),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
