/*
 * test_log.c — the statement text a log line shows (log.c): one line, cut
 * to a length, never inside a UTF-8 character, "..." when cut; and the
 * level a server's error is logged at.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/log.h"

static void test_client_errors_are_log_level(void **state)
{
	static const char *const codes[] = {"42601", "23505", "40001", "40P01", "22P02",
	                                    "25P02", "57014", "P0001", "0A000"};

	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		assert_int_equal(log_server_error_level("ERROR", codes[i], LOG_BY_CLIENT),
		                 LOG_INFO);
	assert_int_equal(log_server_error_level("ERROR", NULL, LOG_BY_CLIENT), LOG_INFO);
	assert_int_equal(log_server_error_level(NULL, "bad", LOG_BY_CLIENT), LOG_INFO);
}

static void test_server_trouble_is_a_warning_whoever_ran_it(void **state)
{
	static const char *const codes[] = {"08006", "53100", "53300", "57P01",
	                                    "58030", "XX000", "F0000"};

	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		assert_int_equal(log_server_error_level("ERROR", codes[i], LOG_BY_CLIENT),
		                 LOG_WARNING);
		assert_int_equal(log_server_error_level("ERROR", codes[i], LOG_BY_PROBE),
		                 LOG_WARNING);
	}
	assert_int_equal(log_server_error_level("FATAL", "28P01", LOG_BY_CLIENT), LOG_WARNING);
	assert_int_equal(log_server_error_level("PANIC", NULL, LOG_BY_PROBE), LOG_WARNING);
}

static void test_own_statements_warn_and_probes_are_debug(void **state)
{
	assert_int_equal(log_server_error_level("ERROR", "42P01", LOG_BY_PROXY), LOG_WARNING);
	assert_int_equal(log_server_error_level("ERROR", "42P01", LOG_BY_PROBE), LOG_DEBUG);
	assert_int_equal(log_server_error_level("ERROR", "42704", LOG_BY_PROBE), LOG_DEBUG);
	assert_int_equal(log_server_error_level("ERROR", "57014", LOG_BY_PROBE), LOG_DEBUG);
}

static void test_data_exception_messages_hide_the_quoted_value(void **state)
{
	char out[128];

	log_error_message(out, sizeof(out), "22P02",
	                  "invalid input syntax for type integer: \"secret-param\"");
	assert_string_equal(out, "invalid input syntax for type integer: \"...\"");
	log_error_message(out, sizeof(out), "22003",
	                  "value \"99999999999\" is out of range for type integer");
	assert_string_equal(out, "value \"...\" is out of range for type integer");
	log_error_message(out, sizeof(out), "22P02", "unterminated \"secret");
	assert_string_equal(out, "unterminated \"...\"");
	/* other classes keep their message: names, not values */
	log_error_message(out, sizeof(out), "42P01", "relation \"t\" does not exist");
	assert_string_equal(out, "relation \"t\" does not exist");
	log_error_message(out, sizeof(out), NULL, "x \"y\"");
	assert_string_equal(out, "x \"y\"");
	log_error_message(out, 8, "42P01", "relation \"t\" does not exist");
	assert_string_equal(out, "relatio");
}

static void test_short_statement_is_kept_whole_on_one_line(void **state)
{
	char out[64];

	log_statement_text(out, sizeof(out), "select *\n  from t\twhere id = 1;\n", 40);
	assert_string_equal(out, "select * from t where id = 1;");
}

static void test_long_statement_is_cut_with_dots(void **state)
{
	char out[16];

	log_statement_text(out, sizeof(out), "select 1234567890", 10);
	assert_string_equal(out, "select 123...");
}

static void test_statement_of_exactly_max_bytes_is_not_cut(void **state)
{
	char out[16];

	log_statement_text(out, sizeof(out), "select 123", 10);
	assert_string_equal(out, "select 123");
	log_statement_text(out, sizeof(out), "select 123   \n", 10);
	assert_string_equal(out, "select 123");
}

static void test_cut_never_splits_a_utf8_character(void **state)
{
	char out[16];

	/* "select 'é'": é is two bytes at offsets 8 and 9; a cut at 9 would split it */
	log_statement_text(out, sizeof(out), "select '\xc3\xa9'", 9);
	assert_string_equal(out, "select '...");
}

static void test_max_is_bounded_by_the_buffer(void **state)
{
	char out[8];

	log_statement_text(out, sizeof(out), "select 1 from somewhere", 1000);
	assert_string_equal(out, "sele...");
	log_statement_text(out, 3, "select", 1000);
	assert_string_equal(out, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_client_errors_are_log_level),
	    cmocka_unit_test(test_data_exception_messages_hide_the_quoted_value),
	    cmocka_unit_test(test_server_trouble_is_a_warning_whoever_ran_it),
	    cmocka_unit_test(test_own_statements_warn_and_probes_are_debug),
	    cmocka_unit_test(test_short_statement_is_kept_whole_on_one_line),
	    cmocka_unit_test(test_long_statement_is_cut_with_dots),
	    cmocka_unit_test(test_statement_of_exactly_max_bytes_is_not_cut),
	    cmocka_unit_test(test_cut_never_splits_a_utf8_character),
	    cmocka_unit_test(test_max_is_bounded_by_the_buffer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
