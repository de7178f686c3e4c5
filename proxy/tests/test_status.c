/*
 * test_status.c — each kind of failure reaches the client with PostgreSQL's
 * SQLSTATE for it (proxy/status.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "proxy/status.h"

static void test_each_status_has_postgres_sqlstate(void **state)
{
	(void)state;
	assert_string_equal(px_status_sqlstate(PX_OK), "00000");
	assert_string_equal(px_status_sqlstate(PX_NOMEM), "53200");
	assert_string_equal(px_status_sqlstate(PX_PROTOCOL), "08P01");
	assert_string_equal(px_status_sqlstate(PX_SEND), "08006");
	assert_string_equal(px_status_sqlstate(PX_CONNECT), "08001");
	assert_string_equal(px_status_sqlstate(PX_LIMIT), "54000");
	assert_string_equal(px_status_sqlstate(PX_INTERNAL), "XX000");
	assert_string_equal(px_status_message(PX_NOMEM), "out of memory");
	assert_string_equal(px_status_message(PX_SEND), "could not pass the message to the server");
}

static void test_unknown_status_is_an_internal_error(void **state)
{
	(void)state;
	assert_string_equal(px_status_sqlstate((px_status_t)99), "XX000");
	assert_string_equal(px_status_message((px_status_t)-1), "internal error");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_each_status_has_postgres_sqlstate),
	    cmocka_unit_test(test_unknown_status_is_an_internal_error),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
