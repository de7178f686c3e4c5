/*
 * test_verify_sql.c — the SQL of the consistency checks: names quoted,
 * ranges of the right level, range maps pushed down per shard.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "router/verify_sql.h"

static void assert_contains(const char *s, const char *part)
{
	if (strstr(s, part) == NULL)
		fail_msg("%s\n  does not contain\n%s", s, part);
}

static void test_table_query_quotes_the_config_name(void **state)
{
	char *sql = verify_sql_table("sales.Order's");

	assert_non_null(sql);
	assert_contains(sql, "pg_catalog.to_regclass('\"sales\".\"Order''s\"')");
	free(sql);
	sql = verify_sql_table("db.sales.items");
	assert_contains(sql, "to_regclass('\"sales\".\"items\"')");
	free(sql);
	sql = verify_sql_table("plain");
	assert_contains(sql, "to_regclass('\"plain\"')");
	free(sql);
}

static void test_key_expr_single_composite_and_no_key(void **state)
{
	char *e = verify_sql_key_expr("t.id", 1);

	assert_string_equal(e, "(t.id)::text");
	free(e);
	e = verify_sql_key_expr("t.a, t.\"B\"", 2);
	assert_string_equal(e, "ROW(t.a, t.\"B\")::text");
	free(e);
	e = verify_sql_key_expr(NULL, 0);
	assert_string_equal(e, "t::text");
	free(e);
}

static void test_level_one_groups_every_row_in_256_ranges(void **state)
{
	char *sql = verify_sql_level("public.r", "(t.id)::text", 1, NULL, 0);

	assert_string_equal(sql,
	                    "SELECT hk >> 24 AS range, count(*), sum(hashtextextended(r, 0)), "
	                    "sum(hashtextextended(r, 1)) FROM (SELECT "
	                    "hashtextextended((t.id)::text COLLATE \"C\", 0) >> 32 AS hk, "
	                    "(t.id)::text AS k, t::text COLLATE \"C\" AS r FROM public.r AS t) "
	                    "AS s GROUP BY 1 ORDER BY 1");
	free(sql);
}

static void test_deeper_level_keeps_only_the_parent_ranges(void **state)
{
	int64_t parents[] = {-128, 5, 127};
	char *sql = verify_sql_level("public.r", "(t.id)::text", 3, parents, 3);

	assert_contains(sql, "SELECT hk >> 8 AS range");
	assert_contains(sql, " WHERE (hk >> 16) = ANY ('{-128,5,127}'::bigint[]) GROUP BY 1");
	free(sql);
	assert_null(verify_sql_level("public.r", "k", 0, NULL, 0));
	assert_null(verify_sql_level("public.r", "k", VERIFY_LEVELS + 1, NULL, 0));
}

static void test_rows_cursor_orders_by_hash_then_key_bytes(void **state)
{
	int64_t ranges[] = {7};
	char *sql = verify_sql_rows_cursor("public.r", "(t.id)::text", true, 2, ranges, 1);

	assert_contains(sql, "DECLARE pgshard_verify NO SCROLL CURSOR FOR SELECT hk, k, md5(r), 1 "
	                     "FROM ");
	assert_contains(sql,
	                " WHERE (hk >> 16) = ANY ('{7}'::bigint[]) ORDER BY hk, k COLLATE \"C\"");
	free(sql);
}

static void test_rows_cursor_without_key_counts_copies(void **state)
{
	int64_t ranges[] = {1, 2};
	char *sql = verify_sql_rows_cursor("public.r", "t::text", false, 1, ranges, 2);

	assert_contains(sql, "SELECT hk, k, '', count(*) FROM ");
	assert_contains(sql, "GROUP BY hk, k ORDER BY hk, k COLLATE \"C\"");
	free(sql);
}

static void test_placement_of_hash_map_streams_every_key(void **state)
{
	cfg_map_t map = {.name = "users", .kind = CFG_MAP_HASH, .key = CFG_KEY_BIGINT};
	char *sql = verify_sql_placement_cursor("public.items", "user\"id", &map, 1);

	assert_string_equal(
	    sql, "DECLARE pgshard_verify NO SCROLL CURSOR FOR SELECT k FROM (SELECT "
	         "(t.\"user\"\"id\")::pg_catalog.int8 AS k FROM public.items AS t) AS s");
	free(sql);
}

static void test_placement_of_range_map_is_pushed_down(void **state)
{
	cfg_range_t ranges[] = {
	    {.lo = NULL, .hi = "1000", .shard = 0},
	    {.lo = "1000", .hi = "2000", .shard = 1},
	    {.lo = "2000", .hi = NULL, .shard = 0},
	};
	cfg_map_t map = {.name = "ev",
	                 .kind = CFG_MAP_RANGE,
	                 .key = CFG_KEY_BIGINT,
	                 .ranges = ranges,
	                 .n_ranges = 3};
	char *sql = verify_sql_placement_cursor("public.ev", "id", &map, 0);

	assert_contains(sql, "(t.\"id\")::pg_catalog.int8 AS k");
	assert_contains(sql, " WHERE k IS NULL OR NOT (false OR (true AND k OPERATOR(pg_catalog.<) "
	                     "'1000'::pg_catalog.int8) OR (true AND k OPERATOR(pg_catalog.>=) "
	                     "'2000'::pg_catalog.int8))");
	free(sql);
	/* a shard with no range: every row of it is misplaced */
	sql = verify_sql_placement_cursor("public.ev", "id", &map, 2);
	assert_contains(sql, " WHERE k IS NULL OR NOT (false)");
	free(sql);
}

static void test_placement_of_text_range_map_compares_bytes(void **state)
{
	cfg_range_t ranges[] = {{.lo = "m", .hi = "it's", .shard = 1}};
	cfg_map_t map = {.name = "names",
	                 .kind = CFG_MAP_RANGE,
	                 .key = CFG_KEY_TEXT,
	                 .ranges = ranges,
	                 .n_ranges = 1};
	char *sql = verify_sql_placement_cursor("public.n", "name", &map, 1);

	assert_contains(sql, "(t.\"name\")::pg_catalog.text AS k");
	assert_contains(sql, "k COLLATE \"C\" OPERATOR(pg_catalog.>=) 'm' COLLATE \"C\" AND k "
	                     "COLLATE \"C\" OPERATOR(pg_catalog.<) 'it''s' COLLATE \"C\"");
	free(sql);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_table_query_quotes_the_config_name),
	    cmocka_unit_test(test_key_expr_single_composite_and_no_key),
	    cmocka_unit_test(test_level_one_groups_every_row_in_256_ranges),
	    cmocka_unit_test(test_deeper_level_keeps_only_the_parent_ranges),
	    cmocka_unit_test(test_rows_cursor_orders_by_hash_then_key_bytes),
	    cmocka_unit_test(test_rows_cursor_without_key_counts_copies),
	    cmocka_unit_test(test_placement_of_hash_map_streams_every_key),
	    cmocka_unit_test(test_placement_of_range_map_is_pushed_down),
	    cmocka_unit_test(test_placement_of_text_range_map_compares_bytes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
