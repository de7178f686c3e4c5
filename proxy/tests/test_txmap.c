/*
 * test_txmap.c — snapshots of distributed transactions (proxy/txmap.c):
 * adding, merging workers' snapshots, finding a backend's transaction, and
 * the mailbox between a worker and the control thread.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "proxy/txmap.h"

static void add(txmap_t *m, uint64_t id, int64_t since, int s0, int32_t p0, int s1, int32_t p1)
{
	txmap_tx_t tx = {
	    .id = id, .client = id + 100, .worker = (int)(id >> 48), .since_ms = since};
	txmap_link_t links[2] = {{s0, p0}, {s1, p1}};

	assert_int_equal(txmap_add(m, &tx, links, 2), 0);
}

static void test_find_names_the_transaction_of_a_backend_on_its_shard(void **state)
{
	txmap_t m;

	txmap_init(&m);
	add(&m, 1, 10, 0, 500, 1, 700);
	add(&m, 2, 20, 0, 501, 2, 700);
	assert_int_equal(txmap_index(&m), 0);
	assert_int_equal(txmap_find(&m, 0, 500), 0);
	assert_int_equal(txmap_find(&m, 1, 700), 0);
	assert_int_equal(txmap_find(&m, 2, 700), 1); /* same pid, other shard: other server */
	assert_int_equal(txmap_find(&m, 0, 501), 1);
	assert_int_equal(txmap_find(&m, 1, 501), -1);
	assert_int_equal(txmap_find(&m, 0, 999), -1);
	assert_int_equal(txmap_links(&m, 1)[1].shard, 2);
	txmap_free(&m);
}

static void test_find_before_index_finds_nothing(void **state)
{
	txmap_t m;

	txmap_init(&m);
	add(&m, 1, 10, 0, 500, 1, 700);
	assert_int_equal(txmap_find(&m, 0, 500), -1);
	txmap_free(&m);
}

static void test_append_merges_snapshots_of_several_workers(void **state)
{
	txmap_t a, b, all;

	txmap_init(&a);
	txmap_init(&b);
	txmap_init(&all);
	add(&a, 1, 10, 0, 500, 1, 700);
	add(&b, (1ULL << 48) | 1, 11, 0, 600, 1, 800);
	assert_int_equal(txmap_append(&all, &a), 0);
	assert_int_equal(txmap_append(&all, &b), 0);
	assert_int_equal(all.n_txs, 2);
	assert_int_equal(txmap_index(&all), 0);
	assert_int_equal(txmap_find(&all, 1, 800), 1);
	assert_int_equal(all.txs[1].worker, 1);
	assert_int_equal(all.txs[1].first, 2);
	txmap_free(&a);
	txmap_free(&b);
	txmap_free(&all);
}

static void test_box_publish_replaces_the_snapshot_and_read_copies_it(void **state)
{
	txmap_box_t box;
	txmap_t snap, got;

	txmap_box_init(&box);
	txmap_init(&snap);
	txmap_init(&got);
	add(&snap, 1, 10, 0, 500, 1, 700);
	txmap_box_publish(&box, &snap);
	assert_int_equal(snap.n_txs, 0); /* the old (empty) one came back, emptied */
	add(&snap, 2, 20, 0, 501, 1, 701);
	add(&snap, 3, 30, 0, 502, 1, 702);
	txmap_box_publish(&box, &snap);
	assert_int_equal(snap.n_txs, 0);
	assert_int_equal(txmap_box_read(&box, &got), 0);
	assert_int_equal(got.n_txs, 2);
	assert_true(got.txs[0].id == 2);
	assert_int_equal(txmap_box_read(&box, &got), 0); /* reading leaves it there */
	assert_int_equal(got.n_txs, 4);
	txmap_free(&snap);
	txmap_free(&got);
	txmap_box_destroy(&box);
}

static void test_box_hands_over_victims_in_order_and_is_bounded(void **state)
{
	txmap_box_t box;
	txmap_victim_t v, out[TXMAP_INBOX_MAX];

	txmap_box_init(&box);
	memset(&v, 0, sizeof(v));
	for (int i = 0; i < TXMAP_INBOX_MAX; i++) {
		v.tx = (uint64_t)i;
		assert_true(txmap_box_post(&box, &v));
	}
	assert_false(txmap_box_post(&box, &v));
	assert_int_equal(txmap_box_take(&box, out, 2), 2);
	assert_true(out[0].tx == 0 && out[1].tx == 1);
	assert_int_equal(txmap_box_take(&box, out, TXMAP_INBOX_MAX), TXMAP_INBOX_MAX - 2);
	assert_true(out[0].tx == 2);
	assert_int_equal(txmap_box_take(&box, out, TXMAP_INBOX_MAX), 0);
	txmap_box_destroy(&box);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_find_names_the_transaction_of_a_backend_on_its_shard),
	    cmocka_unit_test(test_find_before_index_finds_nothing),
	    cmocka_unit_test(test_append_merges_snapshots_of_several_workers),
	    cmocka_unit_test(test_box_publish_replaces_the_snapshot_and_read_copies_it),
	    cmocka_unit_test(test_box_hands_over_victims_in_order_and_is_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
