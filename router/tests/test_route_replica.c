/*
 * test_route_replica.c — which statements the router lets a replica run
 * (route_plan_t.replica_ok, router/route_replica.c): plain reads yes; writes,
 * locks, data-modifying WITH, SELECT INTO, cursors, transaction control,
 * several statements and calls of functions that write or need a primary
 * (built-in, or named in writing_functions) no.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "router/route.h"

#include "router/tests/route_config.h"

static void expect_replica(const char *sql, bool ok)
{
	route_plan_t p;

	assert_int_equal(route_statement(&ctx, sql, NULL, 0, &p), 0);
	if (p.replica_ok != ok)
		fail_msg("%s: replica_ok is %d, expected %d (%s)", sql, p.replica_ok, ok, p.reason);
}

static void test_reads_may_run_on_a_replica(void **state)
{
	(void)state;
	expect_replica("SELECT * FROM users WHERE id = 7", true);
	expect_replica("SELECT name FROM users WHERE id = $1", true);
	expect_replica("SELECT count(*) FROM orders", true);
	expect_replica("SELECT * FROM countries", true);
	expect_replica("SELECT 1", true);
	expect_replica("SELECT pg_is_in_recovery()", true);
	expect_replica("WITH o AS (SELECT * FROM orders WHERE user_id = 3) SELECT * FROM o", true);
	expect_replica("SELECT * FROM users u WHERE id = 7 AND EXISTS (SELECT 1 FROM orders o "
	               "WHERE o.user_id = u.id)",
	               true);
	expect_replica("SELECT now(), random(), upper(name) FROM users WHERE id = 1", true);
}

static void test_writes_and_locks_stay_on_the_primary(void **state)
{
	(void)state;
	expect_replica("INSERT INTO users (id) VALUES (1)", false);
	expect_replica("UPDATE users SET name = 'x' WHERE id = 1", false);
	expect_replica("DELETE FROM users WHERE id = 1", false);
	expect_replica("SELECT * FROM users WHERE id = 1 FOR UPDATE", false);
	expect_replica("SELECT * FROM users WHERE id = 1 FOR SHARE", false);
	expect_replica("SELECT * FROM (SELECT * FROM users WHERE id = 1 FOR UPDATE) s", false);
	expect_replica(
	    "WITH d AS (DELETE FROM orders WHERE user_id = 1 RETURNING *) SELECT * FROM d", false);
	expect_replica("SELECT * INTO t2 FROM users WHERE id = 1", false);
	expect_replica("CREATE TABLE t3 (a int)", false);
	expect_replica("BEGIN", false);
	expect_replica("SELECT 1; SELECT 2", false);
	expect_replica("DECLARE c CURSOR FOR SELECT * FROM users WHERE id = 1", false);
	expect_replica("SET work_mem = '1MB'", false);
	expect_replica("SHOW work_mem", false);
	expect_replica("EXPLAIN SELECT * FROM users WHERE id = 1", false);
}

static void test_functions_that_write_or_need_a_primary_stay_there(void **state)
{
	(void)state;
	expect_replica("SELECT nextval('users_id_seq')", false);
	expect_replica("SELECT currval('users_id_seq')", false);
	expect_replica("SELECT pg_catalog.setval('s', 1)", false);
	expect_replica("SELECT pg_advisory_lock(1)", false);
	expect_replica("SELECT pg_try_advisory_xact_lock(1, 2)", false);
	expect_replica("SELECT txid_current()", false);
	expect_replica("SELECT pg_current_wal_lsn()", false);
	expect_replica("SELECT lo_create(0)", false);
	expect_replica("SELECT pg_notify('c', 'x')", false);
	expect_replica("SELECT set_config('work_mem', '1MB', false)", false);
	expect_replica("SELECT * FROM users WHERE id = (SELECT nextval('s'))", false);
	/* writing_functions = audit_bump in the config, matched without case or schema */
	expect_replica("SELECT audit_bump(id) FROM users WHERE id = 1", false);
	expect_replica("SELECT app.AUDIT_BUMP(1)", false);
	expect_replica("SELECT audit_bumped(1)", true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reads_may_run_on_a_replica),
	    cmocka_unit_test(test_writes_and_locks_stay_on_the_primary),
	    cmocka_unit_test(test_functions_that_write_or_need_a_primary_stay_there),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
