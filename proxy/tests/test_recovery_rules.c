/*
 * test_recovery_rules.c — the decisions of two-phase-commit recovery
 * (proxy/recovery_rules.c): what the decider's answer means, what the end
 * of COMMIT/ROLLBACK PREPARED means, what is due, when a round may clean up.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "proxy/recovery_rules.h"

static void test_decider_record_committed_means_commit(void **state)
{
	assert_int_equal(recovery_verdict(NULL, 1, "t"), RECOVERY_COMMIT);
}

static void test_tombstone_means_rollback(void **state)
{
	assert_int_equal(recovery_verdict(NULL, 1, "f"), RECOVERY_ROLLBACK);
}

static void test_lock_timeout_means_the_deciders_transaction_is_open_so_wait(void **state)
{
	/* never a rollback: a live pgshard may be about to commit */
	assert_int_equal(recovery_verdict("55P03", 0, NULL), RECOVERY_WAIT);
}

static void test_any_other_answer_decides_nothing(void **state)
{
	assert_int_equal(recovery_verdict("42P01", 0, NULL), RECOVERY_UNKNOWN); /* no table */
	assert_int_equal(recovery_verdict("57014", 0, NULL), RECOVERY_UNKNOWN); /* cancelled */
	assert_int_equal(recovery_verdict("40001", 1, "t"), RECOVERY_UNKNOWN);
	/* after a tombstone there is always a row: none, or two, is not an answer */
	assert_int_equal(recovery_verdict(NULL, 0, NULL), RECOVERY_UNKNOWN);
	assert_int_equal(recovery_verdict(NULL, 2, "t"), RECOVERY_UNKNOWN);
	assert_int_equal(recovery_verdict(NULL, 1, NULL), RECOVERY_UNKNOWN);
	assert_int_equal(recovery_verdict(NULL, 1, "true"), RECOVERY_UNKNOWN);
	assert_int_equal(recovery_verdict(NULL, 1, ""), RECOVERY_UNKNOWN);
}

static void test_finish_no_such_prepared_transaction_is_fine(void **state)
{
	assert_int_equal(recovery_finish(NULL), RECOVERY_FINISHED);
	assert_int_equal(recovery_finish("42704"), RECOVERY_GONE);
	assert_int_equal(recovery_finish("55000"), RECOVERY_BUSY);
	assert_int_equal(recovery_finish("42501"), RECOVERY_FAILED); /* another user's */
	assert_int_equal(recovery_finish("0A000"), RECOVERY_FAILED); /* another database's */
}

static void test_prepared_transactions_younger_than_the_grace_are_left_alone(void **state)
{
	assert_false(recovery_due(9, 10000));
	assert_true(recovery_due(10, 10000));
	assert_true(recovery_due(3600, 10000));
	assert_true(recovery_due(0, 0));
	assert_false(recovery_due(0, 1));
	assert_false(recovery_due(-1, 0)); /* a server clock that went back: not yet */
	assert_true(recovery_due(3600, 3600000));
}

static void test_decider_must_be_a_shard_of_the_config(void **state)
{
	assert_int_equal(recovery_decider("pgshard:0123456789abcdef:0:1", 3), 0);
	assert_int_equal(recovery_decider("pgshard:0123456789abcdef:2:ff", 3), 2);
	assert_int_equal(recovery_decider("pgshard:0123456789abcdef:3:1", 3), -1);
	assert_int_equal(recovery_decider("pgshard:0123456789abcdef:999999:1", 3), -1);
	assert_int_equal(recovery_decider("pgshard:nothex0123456789:0:1", 3), -1);
	assert_int_equal(recovery_decider("pgshard:", 3), -1);
	assert_int_equal(recovery_decider("other:0123456789abcdef:0:1", 3), -1);
}

static void test_decider_asked_in_its_fixed_database_else_the_prepared_ones(void **state)
{
	(void)state;
	/* every conninfo names the database: the decider's, whatever the holder's */
	assert_string_equal(recovery_decider_db("app", "app", "app"), "app");
	assert_string_equal(recovery_decider_db("app", "appd", "app"), "appd");
	/* a database left to the client: it is the same on the decider as on the holder */
	assert_string_equal(recovery_decider_db(NULL, NULL, "app2"), "app2");
	/* the decider fixes it, the holder does not */
	assert_string_equal(recovery_decider_db(NULL, "app", "app2"), "app");
	/* the holder fixes it and the decider does not: which client database is unknown */
	assert_null(recovery_decider_db("app", NULL, "app"));
	/* prepared in another database than the holder's fixed one: not made under this config */
	assert_null(recovery_decider_db("app", "app", "app2"));
	assert_null(recovery_decider_db("app", NULL, "app2"));
}

static void test_clients_databases_are_cleaned_one_per_round_in_turn(void **state)
{
	const char *names[] = {"postgres", "app2", "app", "zeta"};

	(void)state;
	assert_string_equal(recovery_next_clean_db(names, 4, NULL), "app");
	assert_string_equal(recovery_next_clean_db(names, 4, "app"), "app2");
	assert_string_equal(recovery_next_clean_db(names, 4, "app2"), "postgres");
	assert_string_equal(recovery_next_clean_db(names, 4, "postgres"), "zeta");
	assert_string_equal(recovery_next_clean_db(names, 4, "zeta"), "app");
	/* the last one was dropped meanwhile: the next after its name */
	assert_string_equal(recovery_next_clean_db(names, 4, "b"), "postgres");
	assert_null(recovery_next_clean_db(names, 0, "app"));
}

static void test_cleanup_only_when_every_primary_was_listed(void **state)
{
	assert_true(recovery_may_clean(3, 3, 100));
	/* a shard that could not be listed may hold a gid whose record would be deleted */
	assert_false(recovery_may_clean(3, 2, 100));
	assert_false(recovery_may_clean(3, 0, 100));
	assert_false(recovery_may_clean(0, 0, 100));
}

static void test_cleanup_not_after_a_round_longer_than_half_the_minimum_age(void **state)
{
	assert_true(recovery_may_clean(2, 2, RECOVERY_CLEAN_MAX_ROUND_MS));
	assert_false(recovery_may_clean(2, 2, RECOVERY_CLEAN_MAX_ROUND_MS + 1));
	assert_false(recovery_may_clean(2, 2, -1));
	assert_true(RECOVERY_CLEAN_MAX_ROUND_MS < RECOVERY_CLEANUP_MIN_AGE_S * 1000);
}

static void test_options_keep_the_conninfos_and_add_lock_timeout_last(void **state)
{
	char *o = recovery_options(NULL, 2000);

	assert_string_equal(o, "-c lock_timeout=2000");
	free(o);
	o = recovery_options("", 2000);
	assert_string_equal(o, "-c lock_timeout=2000");
	free(o);
	o = recovery_options("-c search_path=app -c lock_timeout=0", 1500);
	assert_string_equal(o, "-c search_path=app -c lock_timeout=0 -c lock_timeout=1500");
	free(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_decider_record_committed_means_commit),
	    cmocka_unit_test(test_tombstone_means_rollback),
	    cmocka_unit_test(test_lock_timeout_means_the_deciders_transaction_is_open_so_wait),
	    cmocka_unit_test(test_any_other_answer_decides_nothing),
	    cmocka_unit_test(test_finish_no_such_prepared_transaction_is_fine),
	    cmocka_unit_test(test_prepared_transactions_younger_than_the_grace_are_left_alone),
	    cmocka_unit_test(test_decider_must_be_a_shard_of_the_config),
	    cmocka_unit_test(test_decider_asked_in_its_fixed_database_else_the_prepared_ones),
	    cmocka_unit_test(test_clients_databases_are_cleaned_one_per_round_in_turn),
	    cmocka_unit_test(test_cleanup_only_when_every_primary_was_listed),
	    cmocka_unit_test(test_cleanup_not_after_a_round_longer_than_half_the_minimum_age),
	    cmocka_unit_test(test_options_keep_the_conninfos_and_add_lock_timeout_last),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
