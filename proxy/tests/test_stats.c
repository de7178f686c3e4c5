/*
 * test_stats.c — the latency histogram's buckets and the quantiles read
 * from them, and counters adding up across pools and workers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/stats.h"

static void test_bucket_b_holds_latencies_above_half_its_bound_up_to_its_bound(void **state)
{
	assert_int_equal(stats_bucket(0), 0);
	assert_int_equal(stats_bucket(1), 0);
	assert_int_equal(stats_bucket(2), 1);
	assert_int_equal(stats_bucket(3), 2);
	assert_int_equal(stats_bucket(4), 2);
	assert_int_equal(stats_bucket(5), 3);
	assert_int_equal(stats_bucket(1024), 10);
	assert_int_equal(stats_bucket(1025), 11);
	for (int b = 1; b < STATS_BUCKETS - 1; b++) {
		assert_int_equal(stats_bucket(stats_bucket_bound(b)), b);
		assert_int_equal(stats_bucket(stats_bucket_bound(b) + 1), b + 1);
	}
	/* everything over the last bound lands in the last bucket */
	assert_int_equal(stats_bucket(UINT64_MAX), STATS_BUCKETS - 1);
	assert_int_equal(stats_bucket((uint64_t)1 << 40), STATS_BUCKETS - 1);
	assert_true(stats_bucket_bound(STATS_BUCKETS - 1) == UINT64_MAX);
}

static void test_empty_histogram_has_zero_quantiles_and_average(void **state)
{
	stats_hist_t h;

	memset(&h, 0, sizeof h);
	assert_int_equal(stats_hist_quantile(&h, 0.99), 0);
	assert_int_equal(stats_hist_avg(&h), 0);
}

static void test_p99_of_one_slow_statement_in_a_hundred_is_in_the_fast_bucket(void **state)
{
	stats_hist_t h;

	memset(&h, 0, sizeof h);
	for (int i = 0; i < 99; i++)
		stats_hist_add(&h, 100); /* bucket (64, 128] */
	stats_hist_add(&h, 50000);
	assert_int_equal(h.count, 100);
	assert_int_equal(h.sum_us, 99 * 100 + 50000);
	assert_int_equal(stats_hist_avg(&h), (99 * 100 + 50000) / 100);
	/* the 99th of 100 is the last of the fast bucket: its upper bound */
	assert_int_equal(stats_hist_quantile(&h, 0.99), 128);
	/* the 100th is the slow one, in (32768, 65536] */
	assert_true(stats_hist_quantile(&h, 1.0) > 32768);
	assert_true(stats_hist_quantile(&h, 1.0) <= 65536);
}

static void test_p99_is_interpolated_within_its_bucket(void **state)
{
	stats_hist_t h;
	uint64_t p99, p50;

	memset(&h, 0, sizeof h);
	/* 1000 statements spread over (512, 1024] */
	for (int i = 0; i < 1000; i++)
		stats_hist_add(&h, 513 + (uint64_t)i * 511 / 999);
	p99 = stats_hist_quantile(&h, 0.99);
	p50 = stats_hist_quantile(&h, 0.5);
	assert_true(p99 >= 1000 && p99 <= 1024);
	assert_true(p50 >= 760 && p50 <= 780);
}

static void test_quantile_never_is_below_the_bucket_it_falls_in(void **state)
{
	stats_hist_t h;

	memset(&h, 0, sizeof h);
	for (int i = 0; i < 10; i++)
		stats_hist_add(&h, 3); /* (2, 4] */
	for (int i = 0; i < 990; i++)
		stats_hist_add(&h, 9000); /* (8192, 16384] */
	assert_true(stats_hist_quantile(&h, 0.99) > 8192);
	assert_true(stats_hist_quantile(&h, 0.99) <= 16384);
	assert_true(stats_hist_quantile(&h, 0.005) > 2);
	assert_true(stats_hist_quantile(&h, 0.005) <= 4);
}

static void test_counters_of_several_pools_add_up(void **state)
{
	stats_counters_t a, b, sum;

	memset(&a, 0, sizeof a);
	memset(&b, 0, sizeof b);
	memset(&sum, 0, sizeof sum);
	a.statements = 10;
	a.transactions = 4;
	a.errors = 1;
	a.bytes_in = 1000;
	a.bytes_out = 200;
	stats_hist_add(&a.latency, 10);
	b.statements = 5;
	b.transactions = 5;
	b.bytes_in = 1;
	b.bytes_out = 2;
	stats_hist_add(&b.latency, 10);
	stats_hist_add(&b.latency, 1000000);
	stats_merge(&sum, &a);
	stats_merge(&sum, &b);
	assert_int_equal(sum.statements, 15);
	assert_int_equal(sum.transactions, 9);
	assert_int_equal(sum.errors, 1);
	assert_int_equal(sum.bytes_in, 1001);
	assert_int_equal(sum.bytes_out, 202);
	assert_int_equal(sum.latency.count, 3);
	assert_int_equal(sum.latency.sum_us, 1000020);
	assert_int_equal(sum.latency.buckets[stats_bucket(10)], 2);
	assert_int_equal(sum.latency.buckets[stats_bucket(1000000)], 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bucket_b_holds_latencies_above_half_its_bound_up_to_its_bound),
	    cmocka_unit_test(test_empty_histogram_has_zero_quantiles_and_average),
	    cmocka_unit_test(test_p99_of_one_slow_statement_in_a_hundred_is_in_the_fast_bucket),
	    cmocka_unit_test(test_p99_is_interpolated_within_its_bucket),
	    cmocka_unit_test(test_quantile_never_is_below_the_bucket_it_falls_in),
	    cmocka_unit_test(test_counters_of_several_pools_add_up),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
