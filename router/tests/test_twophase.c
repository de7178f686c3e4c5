/*
 * test_twophase.c — gids and the statements of two-phase commit
 * (router/twophase.h), pinned on strings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "router/twophase.h"

static void test_gid_names_instance_decider_and_number(void **state)
{
	char gid[TWOPHASE_GID_MAX];

	(void)state;
	twophase_gid(gid, 0x0123456789abcdefULL, 2, 0x1f);
	assert_string_equal(gid, "pgshard:0123456789abcdef:2:1f");
	assert_int_equal(twophase_gid_decider(gid), 2);
	twophase_gid(gid, UINT64_MAX, 999999, UINT64_MAX);
	assert_true(strlen(gid) < TWOPHASE_GID_MAX);
	assert_int_equal(twophase_gid_decider(gid), 999999);
}

static void test_other_gids_are_not_ours(void **state)
{
	static const char *const not_ours[] = {
	    "",
	    "pgshard:",
	    "pgshard:0123456789abcdef",
	    "pgshard:0123456789abcdef:2",
	    "pgshard:0123456789abcdef:2:",
	    "pgshard:0123456789ABCDEF:2:1",   /* upper case: never made */
	    "pgshard:0123456789abcde:2:1",    /* 15 digits */
	    "pgshard:0123456789abcdef::1",    /* no decider */
	    "pgshard:0123456789abcdef:2:1'x", /* a quote */
	    "pgshard:0123456789abcdef:1234567:1",
	    "citus_0_1_2_3",
	    "PGSHARD:0123456789abcdef:2:1",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(not_ours) / sizeof(not_ours[0]); i++)
		assert_int_equal(twophase_gid_decider(not_ours[i]), -1);
}

static void check_sql(char *sql, const char *want)
{
	assert_non_null(sql);
	assert_string_equal(sql, want);
	free(sql);
}

static void test_statements_for_a_gid(void **state)
{
	const char *gid = "pgshard:0123456789abcdef:0:7";

	(void)state;
	check_sql(twophase_prepare_sql(gid), "PREPARE TRANSACTION 'pgshard:0123456789abcdef:0:7'");
	check_sql(twophase_commit_sql(gid), "COMMIT PREPARED 'pgshard:0123456789abcdef:0:7'");
	check_sql(twophase_rollback_sql(gid), "ROLLBACK PREPARED 'pgshard:0123456789abcdef:0:7'");
	check_sql(twophase_record_sql(gid), "INSERT INTO pgshard.decisions (gid, committed) VALUES "
	                                    "('pgshard:0123456789abcdef:0:7', true)");
	check_sql(twophase_tombstone_sql(gid),
	          "INSERT INTO pgshard.decisions (gid, committed) VALUES "
	          "('pgshard:0123456789abcdef:0:7', false) ON CONFLICT (gid) DO NOTHING");
	check_sql(twophase_decision_sql(gid),
	          "SELECT committed FROM pgshard.decisions WHERE gid OPERATOR(pg_catalog.=) "
	          "'pgshard:0123456789abcdef:0:7'");
}

static void test_the_record_can_come_behind_the_table_setup(void **state)
{
	char *sql = twophase_setup_record_sql("pgshard:0123456789abcdef:0:7");

	(void)state;
	assert_non_null(sql);
	assert_true(strncmp(sql, twophase_setup_sql, strlen(twophase_setup_sql)) == 0);
	assert_string_equal(sql + strlen(twophase_setup_sql),
	                    "; INSERT INTO pgshard.decisions (gid, committed) VALUES "
	                    "('pgshard:0123456789abcdef:0:7', true)");
	free(sql);
	assert_null(twophase_setup_record_sql("x'"));
}

static void test_a_gid_that_is_not_ours_makes_no_statement(void **state)
{
	(void)state;
	assert_null(twophase_prepare_sql("x'; DROP TABLE t; --"));
	assert_null(twophase_commit_sql("pgshard:0123456789abcdef:0:7'"));
	assert_null(twophase_tombstone_sql(""));
}

static void test_cleanup_keeps_what_is_still_prepared(void **state)
{
	const char *prepared[] = {"pgshard:0123456789abcdef:0:7", "pgshard:0123456789abcdef:1:8"};
	const char *bad[] = {"pgshard:0123456789abcdef:0:7", "x'"};

	(void)state;
	check_sql(twophase_cleanup_sql(NULL, 0, 60),
	          "DELETE FROM pgshard.decisions WHERE decided_at OPERATOR(pg_catalog.<) "
	          "(pg_catalog.now() OPERATOR(pg_catalog.-) pg_catalog.make_interval(secs => 60))");
	check_sql(
	    twophase_cleanup_sql(prepared, 2, 600),
	    "DELETE FROM pgshard.decisions WHERE decided_at OPERATOR(pg_catalog.<) "
	    "(pg_catalog.now() OPERATOR(pg_catalog.-) pg_catalog.make_interval(secs => 600)) "
	    "AND gid OPERATOR(pg_catalog.<>) ALL "
	    "(ARRAY['pgshard:0123456789abcdef:0:7','pgshard:0123456789abcdef:1:8']::pg_catalog."
	    "text[])");
	assert_null(twophase_cleanup_sql(bad, 2, 60));
}

static void test_the_question_to_the_decider_is_tombstone_then_decision(void **state)
{
	(void)state;
	check_sql(twophase_ask_sql("pgshard:0123456789abcdef:0:7", false),
	          "INSERT INTO pgshard.decisions (gid, committed) VALUES "
	          "('pgshard:0123456789abcdef:0:7', false) ON CONFLICT (gid) DO NOTHING; "
	          "SELECT committed FROM pgshard.decisions WHERE gid OPERATOR(pg_catalog.=) "
	          "'pgshard:0123456789abcdef:0:7'");
	check_sql(
	    twophase_ask_sql("pgshard:0123456789abcdef:0:7", true),
	    "CREATE SCHEMA IF NOT EXISTS pgshard; "
	    "CREATE TABLE IF NOT EXISTS pgshard.decisions ("
	    "gid pg_catalog.text PRIMARY KEY, "
	    "committed pg_catalog.bool NOT NULL, "
	    "decided_at pg_catalog.timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp()); "
	    "INSERT INTO pgshard.decisions (gid, committed) VALUES "
	    "('pgshard:0123456789abcdef:0:7', false) ON CONFLICT (gid) DO NOTHING; "
	    "SELECT committed FROM pgshard.decisions WHERE gid OPERATOR(pg_catalog.=) "
	    "'pgshard:0123456789abcdef:0:7'");
	assert_null(twophase_ask_sql("x'; DROP TABLE t; --", true));
}

static void test_listing_covers_every_database(void **state)
{
	(void)state;
	/* COMMIT PREPARED must run in the transaction's database: the listing says which */
	assert_null(strstr(twophase_list_prepared_sql, "current_database"));
	assert_non_null(
	    strstr(twophase_list_prepared_sql, "prepared)::pg_catalog.int8, database "));
}

static void test_catalog_queries_name_their_schema(void **state)
{
	(void)state;
	assert_non_null(strstr(twophase_list_prepared_sql, "pg_catalog.pg_prepared_xacts"));
	assert_non_null(strstr(twophase_list_prepared_sql, "'pgshard:'"));
	assert_non_null(strstr(twophase_max_prepared_sql, "pg_catalog.current_setting"));
	assert_non_null(strstr(twophase_setup_sql, "IF NOT EXISTS pgshard.decisions"));
	/* when the record was written, not when the decider's transaction began */
	assert_non_null(strstr(twophase_setup_sql, "DEFAULT pg_catalog.clock_timestamp()"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_gid_names_instance_decider_and_number),
	    cmocka_unit_test(test_other_gids_are_not_ours),
	    cmocka_unit_test(test_statements_for_a_gid),
	    cmocka_unit_test(test_the_record_can_come_behind_the_table_setup),
	    cmocka_unit_test(test_a_gid_that_is_not_ours_makes_no_statement),
	    cmocka_unit_test(test_cleanup_keeps_what_is_still_prepared),
	    cmocka_unit_test(test_the_question_to_the_decider_is_tombstone_then_decision),
	    cmocka_unit_test(test_listing_covers_every_database),
	    cmocka_unit_test(test_catalog_queries_name_their_schema),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
