/*
 * test_waitgraph.c — the wait-for graph of distributed transactions
 * (proxy/waitgraph.c): building it from each shard's lock waits and the
 * snapshot, finding deadlocks, choosing the victim, seeing one twice.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "proxy/waitgraph.h"

/* Transaction id holds backend p0 on shard s0 and p1 on shard s1. */
static void add(txmap_t *m, uint64_t id, int64_t since, int s0, int32_t p0, int s1, int32_t p1)
{
	txmap_tx_t tx = {.id = id, .client = id, .since_ms = since};
	txmap_link_t links[2] = {{s0, p0}, {s1, p1}};

	assert_int_equal(txmap_add(m, &tx, links, 2), 0);
}

/* A on shards 0 (pid 100) and 1 (pid 200), B on 0 (101) and 1 (201). */
static void two(txmap_t *m, int64_t since_a, int64_t since_b)
{
	txmap_init(m);
	add(m, 1, since_a, 0, 100, 1, 200);
	add(m, 2, since_b, 0, 101, 1, 201);
	assert_int_equal(txmap_index(m), 0);
}

static void test_two_transactions_waiting_on_each_other_across_shards_deadlock(void **state)
{
	txmap_t m;
	waitgraph_result_t r;
	/* A waits on shard 1 for B; B waits on shard 0 for A */
	waitgraph_edge_t e[] = {{1, 200, 201}, {0, 101, 100}};

	two(&m, 10, 20);
	assert_int_equal(waitgraph_find(&m, e, 2, &r), 0);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.cycles[0].n_txs, 2);
	assert_true(r.cycles[0].txs[0] == 1 && r.cycles[0].txs[1] == 2);
	assert_int_equal(r.cycles[0].n_shards, 2);
	assert_int_equal(r.cycles[0].shards[0], 0);
	assert_int_equal(r.cycles[0].shards[1], 1);
	/* B began last: it is the victim, cancelled where it waits (shard 0, pid 101) */
	assert_int_equal(r.cycles[0].victim, 1);
	assert_int_equal(r.cycles[0].n_waits, 1);
	assert_int_equal(r.cycles[0].waits[0].shard, 0);
	assert_int_equal(r.cycles[0].waits[0].pid, 101);
	waitgraph_result_free(&r);
	txmap_free(&m);
}

static void test_the_victim_is_the_one_that_began_last_whatever_its_id(void **state)
{
	txmap_t m;
	waitgraph_result_t r;
	waitgraph_edge_t e[] = {{1, 200, 201}, {0, 101, 100}};

	two(&m, 30, 20); /* A (id 1) began last */
	assert_int_equal(waitgraph_find(&m, e, 2, &r), 0);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.cycles[0].victim, 0);
	assert_int_equal(r.cycles[0].waits[0].shard, 1);
	assert_int_equal(r.cycles[0].waits[0].pid, 200);
	waitgraph_result_free(&r);
	txmap_free(&m);
	two(&m, 20, 20); /* same millisecond: the higher id */
	assert_int_equal(waitgraph_find(&m, e, 2, &r), 0);
	assert_int_equal(r.cycles[0].victim, 1);
	waitgraph_result_free(&r);
	txmap_free(&m);
}

static void test_a_wait_that_is_no_cycle_is_no_deadlock(void **state)
{
	txmap_t m;
	waitgraph_result_t r;
	/* B waits for A on shard 0; A waits for nobody */
	waitgraph_edge_t e[] = {{0, 101, 100}};

	two(&m, 10, 20);
	assert_int_equal(waitgraph_find(&m, e, 1, &r), 0);
	assert_int_equal(r.n, 0);
	waitgraph_result_free(&r);
	assert_int_equal(waitgraph_find(&m, NULL, 0, &r), 0);
	assert_int_equal(r.n, 0);
	waitgraph_result_free(&r);
	txmap_free(&m);
}

static void test_a_deadlock_inside_one_shard_is_left_to_postgresql(void **state)
{
	txmap_t m;
	waitgraph_result_t r;
	/* both distributed, but they wait for each other on shard 0 only */
	waitgraph_edge_t e[] = {{0, 100, 101}, {0, 101, 100}};

	two(&m, 10, 20);
	assert_int_equal(waitgraph_find(&m, e, 2, &r), 0);
	assert_int_equal(r.n, 0);
	waitgraph_result_free(&r);
	txmap_free(&m);
}

static void test_backends_pgshard_does_not_know_never_make_a_deadlock_of_their_own(void **state)
{
	txmap_t m;
	waitgraph_result_t r;
	/* two local transactions deadlocked on shard 0 (PostgreSQL's), one on shard 1 */
	waitgraph_edge_t e[] = {{0, 900, 901}, {0, 901, 900}, {1, 900, 100}};

	two(&m, 10, 20);
	assert_int_equal(waitgraph_find(&m, e, 3, &r), 0);
	assert_int_equal(r.n, 0);
	waitgraph_result_free(&r);
	txmap_free(&m);
}

static void test_a_cycle_through_a_local_transaction_counts(void **state)
{
	txmap_t m;
	waitgraph_result_t r;
	/* A waits on shard 0 for local 900, 900 waits on shard 0 for B, B waits on 1 for A */
	waitgraph_edge_t e[] = {{0, 100, 900}, {0, 900, 101}, {1, 201, 200}};

	two(&m, 10, 20);
	assert_int_equal(waitgraph_find(&m, e, 3, &r), 0);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.cycles[0].n_txs, 2);
	assert_int_equal(r.cycles[0].victim, 1);
	assert_int_equal(r.cycles[0].waits[0].shard, 1);
	assert_int_equal(r.cycles[0].waits[0].pid, 201);
	waitgraph_result_free(&r);
	txmap_free(&m);
}

static void test_three_transactions_in_a_ring_and_a_bystander(void **state)
{
	txmap_t m;
	waitgraph_result_t r;
	/* A -> B on 1, B -> C on 2, C -> A on 0; D waits for A on 0 but nobody for D */
	waitgraph_edge_t e[] = {
	    {1, 200, 201}, {2, 301, 302}, {0, 102, 100}, {0, 103, 100}, {0, 103, 102}};

	txmap_init(&m);
	add(&m, 1, 10, 0, 100, 1, 200);
	add(&m, 2, 40, 1, 201, 2, 301);
	add(&m, 3, 30, 2, 302, 0, 102);
	add(&m, 4, 50, 0, 103, 1, 203);
	assert_int_equal(txmap_index(&m), 0);
	assert_int_equal(waitgraph_find(&m, e, 5, &r), 0);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.cycles[0].n_txs, 3);
	assert_int_equal(r.cycles[0].n_shards, 3);
	assert_int_equal(r.cycles[0].victim, 1); /* D is younger, but not in the cycle */
	waitgraph_result_free(&r);
	txmap_free(&m);
}

static void test_a_deadlock_counts_when_the_same_transactions_are_seen_again(void **state)
{
	txmap_t m;
	waitgraph_result_t first, second, other;
	waitgraph_edge_t e[] = {{1, 200, 201}, {0, 101, 100}};

	two(&m, 10, 20);
	assert_int_equal(waitgraph_find(&m, e, 2, &first), 0);
	assert_int_equal(waitgraph_find(&m, e, 2, &second), 0);
	assert_true(waitgraph_seen(&first, &second.cycles[0]));
	txmap_free(&m);
	/* the same clients in new transactions (new ids) are a new deadlock */
	txmap_init(&m);
	add(&m, 5, 10, 0, 100, 1, 200);
	add(&m, 6, 20, 0, 101, 1, 201);
	assert_int_equal(txmap_index(&m), 0);
	assert_int_equal(waitgraph_find(&m, e, 2, &other), 0);
	assert_false(waitgraph_seen(&first, &other.cycles[0]));
	waitgraph_drop(&first, 0);
	assert_int_equal(first.n, 0);
	assert_false(waitgraph_seen(&first, &second.cycles[0]));
	waitgraph_result_free(&first);
	waitgraph_result_free(&second);
	waitgraph_result_free(&other);
	txmap_free(&m);
}

static void test_detail_names_the_shards(void **state)
{
	uint64_t txs[] = {1, 2};
	int shards[] = {0, 1, 4};
	waitgraph_cycle_t c = {.txs = txs, .n_txs = 2, .shards = shards, .n_shards = 3};
	char buf[256];

	waitgraph_detail(&c, buf, sizeof(buf));
	assert_non_null(strstr(buf, "pgshard detected it across shards"));
	assert_non_null(strstr(buf, "on shards 0, 1 and 4;"));
	waitgraph_detail(&c, buf, 20); /* cut short, never past the end */
	assert_int_equal(strlen(buf), 19);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_two_transactions_waiting_on_each_other_across_shards_deadlock),
	    cmocka_unit_test(test_the_victim_is_the_one_that_began_last_whatever_its_id),
	    cmocka_unit_test(test_a_wait_that_is_no_cycle_is_no_deadlock),
	    cmocka_unit_test(test_a_deadlock_inside_one_shard_is_left_to_postgresql),
	    cmocka_unit_test(
	        test_backends_pgshard_does_not_know_never_make_a_deadlock_of_their_own),
	    cmocka_unit_test(test_a_cycle_through_a_local_transaction_counts),
	    cmocka_unit_test(test_three_transactions_in_a_ring_and_a_bystander),
	    cmocka_unit_test(test_a_deadlock_counts_when_the_same_transactions_are_seen_again),
	    cmocka_unit_test(test_detail_names_the_shards),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
