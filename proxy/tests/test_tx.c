/*
 * test_tx.c — a client's transaction bookkeeping (proxy/tx.c): the one
 * decision about transaction control for both protocols, the prefix a
 * joining shard replays, participants and who wrote.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/tx.h"

static tx_decision_t decide(tx_t *t, route_txn_t txn, const char *sql, int n_links)
{
	tx_decision_t d;

	assert_int_equal(tx_control(t, txn, sql, "SAVEPOINT", n_links, &d), 0);
	return d;
}

static void test_begin_is_answered_and_opens_the_block(void **state)
{
	tx_t t;
	tx_decision_t d;

	(void)state;
	tx_init(&t);
	assert_false(tx_open(&t));
	assert_int_equal(tx_status(&t), 'I');
	d = decide(&t, ROUTE_TXN_BEGIN, "BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY", 0);
	assert_int_equal(d.action, TX_ANSWER);
	assert_string_equal(d.tag, "BEGIN");
	assert_true(tx_open(&t));
	assert_int_equal(tx_status(&t), 'T');
	/* a joining shard replays BEGIN as the client wrote it, options and all */
	assert_string_equal(t.prefix, "BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY");
	/* when it began, for its age in SHOW TRANSACTIONS; none once it is over */
	assert_true(t.began_ms > 0);
	assert_int_equal(tx_note_status(&t, 'I'), 0);
	assert_int_equal(t.began_ms, 0);
	tx_free(&t);
}

static void test_begin_inside_a_block_goes_to_a_shard_which_warns(void **state)
{
	tx_t t;

	(void)state;
	tx_init(&t);
	decide(&t, ROUTE_TXN_BEGIN, "BEGIN", 0);
	assert_int_equal(decide(&t, ROUTE_TXN_BEGIN, "BEGIN", 1).action, TX_ROUTE);
	assert_string_equal(t.prefix, "BEGIN");
	tx_free(&t);
}

static void test_end_of_a_block_that_touched_no_shard_is_answered(void **state)
{
	tx_t t;
	tx_decision_t d;

	(void)state;
	tx_init(&t);
	decide(&t, ROUTE_TXN_BEGIN, "BEGIN", 0);
	d = decide(&t, ROUTE_TXN_COMMIT, "COMMIT", 0);
	assert_int_equal(d.action, TX_ANSWER);
	assert_string_equal(d.tag, "COMMIT");
	assert_false(tx_open(&t));
	decide(&t, ROUTE_TXN_BEGIN, "BEGIN", 0);
	d = decide(&t, ROUTE_TXN_ROLLBACK, "ROLLBACK", 0);
	assert_int_equal(d.action, TX_ANSWER);
	assert_string_equal(d.tag, "ROLLBACK");
	assert_false(tx_open(&t));
	tx_free(&t);
}

static void test_commit_of_a_failed_block_is_a_rollback_like_postgres(void **state)
{
	tx_t t;
	tx_decision_t d;

	(void)state;
	tx_init(&t);
	decide(&t, ROUTE_TXN_BEGIN, "BEGIN", 0);
	tx_fail(&t);
	assert_int_equal(tx_status(&t), 'E');
	d = decide(&t, ROUTE_TXN_COMMIT, "COMMIT", 0);
	assert_int_equal(d.action, TX_ANSWER);
	assert_string_equal(d.tag, "ROLLBACK");
	decide(&t, ROUTE_TXN_BEGIN, "BEGIN", 0);
	tx_fail(&t);
	d = decide(&t, ROUTE_TXN_COMMIT, "COMMIT", 2);
	assert_int_equal(d.action, TX_ON_ALL);
	assert_string_equal(d.sql, "ROLLBACK");
	assert_true(d.as_rollback);
	d = decide(&t, ROUTE_TXN_COMMIT, "COMMIT", 1);
	assert_int_equal(d.action, TX_ON_ONE);
	assert_string_equal(d.sql, "ROLLBACK");
	tx_free(&t);
}

static void test_end_runs_on_the_one_participant_or_on_all(void **state)
{
	tx_t t;
	tx_decision_t d;

	(void)state;
	tx_init(&t);
	decide(&t, ROUTE_TXN_BEGIN, "BEGIN", 0);
	d = decide(&t, ROUTE_TXN_COMMIT, "COMMIT", 1);
	assert_int_equal(d.action, TX_ON_ONE);
	assert_string_equal(d.sql, "COMMIT");
	assert_false(d.as_rollback);
	assert_true(tx_open(&t)); /* over when the participant says so */
	d = decide(&t, ROUTE_TXN_ROLLBACK, "ROLLBACK", 3);
	assert_int_equal(d.action, TX_ON_ALL);
	assert_int_equal(tx_note_status(&t, 'I'), 0);
	assert_false(tx_open(&t));
	tx_free(&t);
}

static void test_savepoints_join_the_prefix_in_order(void **state)
{
	tx_t t;
	tx_decision_t d;

	(void)state;
	tx_init(&t);
	decide(&t, ROUTE_TXN_BEGIN, "BEGIN", 0);
	d = decide(&t, ROUTE_TXN_SAVEPOINT, "SAVEPOINT a", 0);
	assert_int_equal(d.action, TX_ANSWER);
	assert_string_equal(d.tag, "SAVEPOINT");
	d = decide(&t, ROUTE_TXN_SAVEPOINT, "SAVEPOINT b", 1);
	assert_int_equal(d.action, TX_ON_ONE);
	d = decide(&t, ROUTE_TXN_SAVEPOINT, "ROLLBACK TO a", 2);
	assert_int_equal(d.action, TX_ON_ALL);
	assert_string_equal(t.prefix, "BEGIN;\nSAVEPOINT a;\nSAVEPOINT b;\nROLLBACK TO a");
	tx_free(&t);
}

static void test_outside_a_block_transaction_control_is_routed(void **state)
{
	tx_t t;

	(void)state;
	tx_init(&t);
	assert_int_equal(decide(&t, ROUTE_TXN_COMMIT, "COMMIT", 0).action, TX_ROUTE);
	assert_int_equal(decide(&t, ROUTE_TXN_ROLLBACK, "ROLLBACK", 0).action, TX_ROUTE);
	assert_int_equal(decide(&t, ROUTE_TXN_SAVEPOINT, "SAVEPOINT a", 0).action, TX_ROUTE);
	assert_int_equal(decide(&t, ROUTE_TXN_NONE, "SELECT 1", 0).action, TX_ROUTE);
	assert_null(t.prefix);
	tx_free(&t);
}

static void test_failed_block_rejects_all_but_its_end_and_savepoints(void **state)
{
	tx_t t;

	(void)state;
	tx_init(&t);
	decide(&t, ROUTE_TXN_BEGIN, "BEGIN", 0);
	tx_fail(&t);
	assert_int_equal(decide(&t, ROUTE_TXN_NONE, "SELECT 1", 1).action, TX_REJECTED);
	assert_int_equal(decide(&t, ROUTE_TXN_SAVEPOINT, "ROLLBACK TO a", 1).action, TX_ON_ONE);
	/* the savepoint rolled back on the server: the block is usable again */
	assert_int_equal(tx_note_status(&t, 'T'), 0);
	assert_false(tx_failed(&t));
	assert_int_equal(decide(&t, ROUTE_TXN_NONE, "SELECT 1", 1).action, TX_ROUTE);
	tx_free(&t);
}

static void test_fail_outside_a_block_changes_nothing(void **state)
{
	tx_t t;

	(void)state;
	tx_init(&t);
	tx_fail(&t);
	assert_int_equal(tx_status(&t), 'I');
	tx_free(&t);
}

static void test_a_block_the_server_opened_is_the_clients(void **state)
{
	tx_t t;

	(void)state;
	tx_init(&t);
	/* a query string "BEGIN; UPDATE ..." ran on a shard: its ReadyForQuery says T */
	assert_int_equal(tx_note_status(&t, 'T'), 0);
	assert_true(tx_open(&t));
	assert_string_equal(t.prefix, "BEGIN");
	assert_int_equal(tx_note_status(&t, 'E'), 0);
	assert_int_equal(tx_status(&t), 'E');
	assert_int_equal(tx_note_status(&t, 'I'), 0);
	assert_int_equal(tx_status(&t), 'I');
	assert_null(t.prefix);
	tx_free(&t);
}

static void test_participants_and_writers_are_counted_per_shard(void **state)
{
	tx_t t;

	(void)state;
	tx_init(&t);
	decide(&t, ROUTE_TXN_BEGIN, "BEGIN", 0);
	assert_int_equal(tx_join(&t, 2), 0);
	assert_int_equal(tx_join(&t, 2), 0);
	assert_int_equal(tx_join(&t, 0), 0);
	assert_int_equal(t.n_parts, 2);
	assert_int_equal(tx_writers(&t), 0);
	tx_note_write(&t, 2);
	tx_note_write(&t, 2);
	assert_int_equal(tx_writers(&t), 1);
	assert_true(tx_wrote(&t, 2));
	assert_false(tx_wrote(&t, 0));
	/* a write on a shard that had not joined makes it a participant */
	tx_note_write(&t, 5);
	assert_int_equal(t.n_parts, 3);
	assert_int_equal(tx_writers(&t), 2);
	assert_non_null(tx_participant(&t, 5));
	assert_null(tx_participant(&t, 4));
	for (int s = 10; s < 40; s++)
		assert_int_equal(tx_join(&t, s), 0);
	assert_int_equal(t.n_parts, 33);
	/* the end forgets them */
	assert_int_equal(tx_note_status(&t, 'I'), 0);
	assert_int_equal(t.n_parts, 0);
	assert_int_equal(tx_writers(&t), 0);
	assert_false(tx_wrote(&t, 2));
	tx_free(&t);
}

static void test_commit_after_writes_on_two_shards_is_two_phase(void **state)
{
	tx_t t;
	tx_decision_t d;

	(void)state;
	tx_init(&t);
	decide(&t, ROUTE_TXN_BEGIN, "BEGIN", 0);
	assert_int_equal(tx_decider(&t), -1);
	assert_int_equal(tx_join(&t, 0), 0);
	tx_note_write(&t, 2);
	assert_int_equal(tx_decider(&t), 2);
	/* one writer, one reader: a plain COMMIT everywhere */
	d = decide(&t, ROUTE_TXN_COMMIT, "COMMIT", 2);
	assert_int_equal(d.action, TX_ON_ALL);
	assert_false(d.two_phase);
	/* a second writer: two phases, decided by the lowest writer */
	tx_note_write(&t, 1);
	assert_int_equal(tx_decider(&t), 1);
	d = decide(&t, ROUTE_TXN_COMMIT, "COMMIT", 3);
	assert_int_equal(d.action, TX_ON_ALL);
	assert_string_equal(d.sql, "COMMIT");
	assert_true(d.two_phase);
	/* a ROLLBACK, or a COMMIT of a failed transaction, never is */
	d = decide(&t, ROUTE_TXN_ROLLBACK, "ROLLBACK", 3);
	assert_false(d.two_phase);
	tx_fail(&t);
	d = decide(&t, ROUTE_TXN_COMMIT, "COMMIT", 3);
	assert_true(d.as_rollback);
	assert_false(d.two_phase);
	tx_free(&t);
}

static void test_a_deadlock_victims_mark_and_id_go_when_the_transaction_ends(void **state)
{
	tx_t t;
	char *d;

	(void)state;
	tx_init(&t);
	decide(&t, ROUTE_TXN_BEGIN, "BEGIN", 0);
	t.dist_id = 7;
	t.dist_since_ms = 1000;
	assert_int_equal(tx_mark_deadlock(&t, "across shards 0 and 1"), 0);
	/* the error fails the transaction: still a victim until its 40P01 is told */
	tx_fail(&t);
	assert_int_equal(t.dist_id, 7);
	d = tx_take_deadlock(&t);
	assert_string_equal(d, "across shards 0 and 1");
	free(d);
	assert_null(tx_take_deadlock(&t)); /* told once */
	assert_int_equal(tx_mark_deadlock(&t, "again"), 0);
	assert_int_equal(tx_note_status(&t, 'I'), 0); /* ROLLBACK ended it */
	assert_null(t.deadlock_detail);
	assert_int_equal(t.dist_id, 0);
	assert_int_equal(t.dist_since_ms, 0);
	tx_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_a_deadlock_victims_mark_and_id_go_when_the_transaction_ends),
	    cmocka_unit_test(test_begin_is_answered_and_opens_the_block),
	    cmocka_unit_test(test_begin_inside_a_block_goes_to_a_shard_which_warns),
	    cmocka_unit_test(test_end_of_a_block_that_touched_no_shard_is_answered),
	    cmocka_unit_test(test_commit_of_a_failed_block_is_a_rollback_like_postgres),
	    cmocka_unit_test(test_end_runs_on_the_one_participant_or_on_all),
	    cmocka_unit_test(test_savepoints_join_the_prefix_in_order),
	    cmocka_unit_test(test_outside_a_block_transaction_control_is_routed),
	    cmocka_unit_test(test_failed_block_rejects_all_but_its_end_and_savepoints),
	    cmocka_unit_test(test_fail_outside_a_block_changes_nothing),
	    cmocka_unit_test(test_a_block_the_server_opened_is_the_clients),
	    cmocka_unit_test(test_participants_and_writers_are_counted_per_shard),
	    cmocka_unit_test(test_commit_after_writes_on_two_shards_is_two_phase),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
