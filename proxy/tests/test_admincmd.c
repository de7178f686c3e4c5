/*
 * test_admincmd.c — the admin console's commands as psql users type them:
 * any case, any blanks, a trailing semicolon or not.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/admincmd.h"

static admin_cmd_kind_t kind_of(const char *sql)
{
	admin_cmd_t cmd;

	admincmd_parse(sql, &cmd);
	return cmd.kind;
}

static void test_show_commands_in_any_case_with_or_without_semicolon(void **state)
{
	assert_int_equal(kind_of("SHOW SHARDS"), ADMIN_SHOW_SHARDS);
	assert_int_equal(kind_of("show shards;"), ADMIN_SHOW_SHARDS);
	assert_int_equal(kind_of("  Show\n\tPools ; "), ADMIN_SHOW_POOLS);
	assert_int_equal(kind_of("SHOW CLIENTS"), ADMIN_SHOW_CLIENTS);
	assert_int_equal(kind_of("SHOW servers"), ADMIN_SHOW_SERVERS);
	assert_int_equal(kind_of("SHOW STATS;"), ADMIN_SHOW_STATS);
	assert_int_equal(kind_of("show transactions"), ADMIN_SHOW_TRANSACTIONS);
	assert_int_equal(kind_of("SHOW RECOVERY"), ADMIN_SHOW_RECOVERY);
	assert_int_equal(kind_of("SHOW CONFIG"), ADMIN_SHOW_CONFIG);
	assert_int_equal(kind_of("SHOW VERSION"), ADMIN_SHOW_VERSION);
	assert_int_equal(kind_of("show state;"), ADMIN_SHOW_STATE);
	assert_int_equal(kind_of("SHOW STATE now"), ADMIN_SHOW_UNKNOWN);
	assert_int_equal(kind_of("SHOW TABLES;"), ADMIN_SHOW_TABLES);
	assert_int_equal(kind_of("show load"), ADMIN_SHOW_LOAD);
	assert_int_equal(kind_of("show hot keys"), ADMIN_SHOW_HOT_KEYS);
	assert_int_equal(kind_of("SHOW  Hot\n Keys ;"), ADMIN_SHOW_HOT_KEYS);
	/* one word of two, or more words, is not it */
	assert_int_equal(kind_of("SHOW HOT"), ADMIN_SHOW_UNKNOWN);
	assert_int_equal(kind_of("SHOW HOT KEYS NOW"), ADMIN_SHOW_UNKNOWN);
	assert_int_equal(kind_of("SHOW KEYS"), ADMIN_SHOW_UNKNOWN);
}

static void test_verbs_stand_alone(void **state)
{
	assert_int_equal(kind_of("RELOAD"), ADMIN_RELOAD);
	assert_int_equal(kind_of("reload;"), ADMIN_RELOAD);
	assert_int_equal(kind_of("PAUSE"), ADMIN_PAUSE);
	assert_int_equal(kind_of("resume ;"), ADMIN_RESUME);
	assert_int_equal(kind_of("SHUTDOWN"), ADMIN_SHUTDOWN);
	assert_int_equal(kind_of("RELOAD now"), ADMIN_UNKNOWN);
	assert_int_equal(kind_of("PAUSE app"), ADMIN_UNKNOWN); /* no per-database PAUSE */
}

static void test_empty_query_is_empty_not_unknown(void **state)
{
	assert_int_equal(kind_of(""), ADMIN_EMPTY);
	assert_int_equal(kind_of("  ;  "), ADMIN_EMPTY);
}

static void test_unknown_commands_name_the_word(void **state)
{
	admin_cmd_t cmd;

	admincmd_parse("SELECT 1", &cmd);
	assert_int_equal(cmd.kind, ADMIN_UNKNOWN);
	assert_int_equal(cmd.word_len, 6);
	assert_memory_equal(cmd.word, "SELECT", 6);

	admincmd_parse("show warm keys", &cmd);
	assert_int_equal(cmd.kind, ADMIN_SHOW_UNKNOWN);
	assert_int_equal(cmd.word_len, 4);
	assert_memory_equal(cmd.word, "warm", 4);

	admincmd_parse("SHOW POOLS extra", &cmd);
	assert_int_equal(cmd.kind, ADMIN_SHOW_UNKNOWN);
	admincmd_parse("SHOW", &cmd);
	assert_int_equal(cmd.kind, ADMIN_SHOW_UNKNOWN);
	admincmd_parse("SHOW ROUTE", &cmd);
	assert_int_equal(cmd.kind, ADMIN_SHOW_UNKNOWN);
	admincmd_parse("SHOWSHARDS", &cmd);
	assert_int_equal(cmd.kind, ADMIN_UNKNOWN);
	admincmd_parse("(SHOW SHARDS)", &cmd);
	assert_int_equal(cmd.kind, ADMIN_UNKNOWN);
	assert_int_equal(cmd.word_len, strlen("(SHOW SHARDS)"));
}

static void test_show_route_keeps_the_statement_as_written(void **state)
{
	admin_cmd_t cmd;

	admincmd_parse("show route SELECT * FROM users WHERE id = 'a;b' ;", &cmd);
	assert_int_equal(cmd.kind, ADMIN_SHOW_ROUTE);
	assert_int_equal(cmd.arg_len, strlen("SELECT * FROM users WHERE id = 'a;b'"));
	assert_memory_equal(cmd.arg, "SELECT * FROM users WHERE id = 'a;b'", cmd.arg_len);

	admincmd_parse("SHOW ROUTE\n  insert into t values (1)", &cmd);
	assert_int_equal(cmd.kind, ADMIN_SHOW_ROUTE);
	assert_int_equal(cmd.arg_len, strlen("insert into t values (1)"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_show_commands_in_any_case_with_or_without_semicolon),
	    cmocka_unit_test(test_verbs_stand_alone),
	    cmocka_unit_test(test_empty_query_is_empty_not_unknown),
	    cmocka_unit_test(test_unknown_commands_name_the_word),
	    cmocka_unit_test(test_show_route_keeps_the_statement_as_written),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
