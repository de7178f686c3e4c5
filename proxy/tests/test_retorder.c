/*
 * test_retorder.c — a split INSERT's RETURNING rows go out in the order of
 * its VALUES list when every shard returned a row per row it got, and
 * shard by shard otherwise.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/retorder.h"

/* What went out, as the rows' one-character texts joined: "abc". */
typedef struct seen {
	char text[64];
	size_t n;
} seen_t;

static void collect(void *arg, const uint8_t *msg, size_t len)
{
	seen_t *s = arg;

	assert_int_equal(len, 1);
	s->text[s->n++] = (char)msg[0];
}

static void hold(retorder_t *r, int member, char c)
{
	uint8_t b = (uint8_t)c;

	assert_int_equal(retorder_hold(r, member, &b, 1), 0);
}

/* VALUES rows 0..4 to shards 2, 0, 2, 1, 0: shard 0 got rows 1 and 4, shard 1 row 3, shard 2
 * rows 0 and 2. */
static size_t rows0[] = {1, 4}, rows1[] = {3}, rows2[] = {0, 2};
static route_split_t splits[] = {
    {.shard = 0, .rows = rows0, .n_rows = 2},
    {.shard = 1, .rows = rows1, .n_rows = 1},
    {.shard = 2, .rows = rows2, .n_rows = 2},
};

static void test_rows_arriving_shard_by_shard_go_out_in_values_order(void **state)
{
	int member_shard[] = {0, 1, 2};
	retorder_t *r;
	seen_t s = {{0}, 0};

	(void)state;
	assert_int_equal(retorder_new(splits, 3, member_shard, 3, &r), 0);
	assert_non_null(r);
	/* shard 2 answers first, then 0, then 1; rows named by their VALUES position */
	hold(r, 2, '0');
	hold(r, 0, '1');
	hold(r, 2, '2');
	hold(r, 1, '3');
	hold(r, 0, '4');
	assert_int_equal(retorder_held(r), 5);
	assert_true(retorder_emit(r, collect, &s));
	assert_string_equal(s.text, "01234");
	assert_int_equal(retorder_held(r), 0);
	retorder_free(r);
}

static void test_members_in_another_order_than_the_splits_map_by_shard(void **state)
{
	int member_shard[] = {2, 0, 1}; /* member 0 runs shard 2 */
	retorder_t *r;
	seen_t s = {{0}, 0};

	(void)state;
	assert_int_equal(retorder_new(splits, 3, member_shard, 3, &r), 0);
	hold(r, 0, '0');
	hold(r, 0, '2');
	hold(r, 1, '1');
	hold(r, 1, '4');
	hold(r, 2, '3');
	assert_true(retorder_emit(r, collect, &s));
	assert_string_equal(s.text, "01234");
	retorder_free(r);
}

static void test_a_shard_returning_fewer_rows_keeps_rows_shard_by_shard(void **state)
{
	int member_shard[] = {0, 1, 2};
	retorder_t *r;
	seen_t s = {{0}, 0};

	(void)state;
	assert_int_equal(retorder_new(splits, 3, member_shard, 3, &r), 0);
	/* ON CONFLICT DO NOTHING skipped row 4 on shard 0: positions cannot be known */
	hold(r, 2, '0');
	hold(r, 1, '3');
	hold(r, 0, '1');
	hold(r, 2, '2');
	assert_false(retorder_emit(r, collect, &s));
	assert_string_equal(s.text, "1302");
	retorder_free(r);
}

static void test_a_shard_returning_more_rows_keeps_rows_shard_by_shard(void **state)
{
	int member_shard[] = {0, 1, 2};
	retorder_t *r;
	seen_t s = {{0}, 0};

	(void)state;
	assert_int_equal(retorder_new(splits, 3, member_shard, 3, &r), 0);
	hold(r, 0, 'a');
	hold(r, 0, 'b');
	hold(r, 1, 'c');
	hold(r, 1, 'd');
	hold(r, 2, 'e');
	assert_false(retorder_emit(r, collect, &s));
	assert_string_equal(s.text, "abcde");
	retorder_free(r);
}

static void test_without_returning_nothing_is_held(void **state)
{
	route_split_t plain[] = {{.shard = 0}, {.shard = 1}};
	int member_shard[] = {0, 1};
	retorder_t *r = (retorder_t *)1;

	(void)state;
	assert_int_equal(retorder_new(plain, 2, member_shard, 2, &r), 0);
	assert_null(r);
}

static void test_a_split_whose_shard_has_no_member_is_not_reordered(void **state)
{
	int member_shard[] = {0, 1}; /* no link to shard 2 */
	retorder_t *r = (retorder_t *)1;

	(void)state;
	assert_int_equal(retorder_new(splits, 3, member_shard, 2, &r), 0);
	assert_null(r);
}

static void test_dropped_rows_are_gone_and_holding_starts_again(void **state)
{
	int member_shard[] = {0, 1, 2};
	retorder_t *r;
	seen_t s = {{0}, 0};

	(void)state;
	assert_int_equal(retorder_new(splits, 3, member_shard, 3, &r), 0);
	hold(r, 2, 'x');
	retorder_drop(r);
	assert_int_equal(retorder_held(r), 0);
	assert_false(retorder_emit(r, collect, &s));
	assert_int_equal(s.n, 0);
	retorder_free(r);
}

/* Every byte, as it went out. */
typedef struct bytes {
	uint8_t buf[8000];
	size_t len;
} bytes_t;

static void append(void *arg, const uint8_t *msg, size_t len)
{
	bytes_t *b = arg;

	assert_true(b->len + len <= sizeof b->buf);
	memcpy(b->buf + b->len, msg, len);
	b->len += len;
}

static void test_many_rows_of_different_sizes_keep_their_bytes(void **state)
{
	enum { N = 1000 };
	static size_t rows[2][N];
	static bytes_t got, want;
	size_t n[2] = {0, 0};
	route_split_t sp[2];
	int member_shard[] = {1, 0};
	retorder_t *r;

	(void)state;
	for (size_t i = 0; i < N; i++) {
		int s = (i * 7 % 3) == 0;

		rows[s][n[s]++] = i;
	}
	sp[0] = (route_split_t){.shard = 0, .rows = rows[0], .n_rows = n[0]};
	sp[1] = (route_split_t){.shard = 1, .rows = rows[1], .n_rows = n[1]};
	assert_int_equal(retorder_new(sp, 2, member_shard, 2, &r), 0);
	/* shard 1 (member 0) answers all its rows first; row i is i % 5 + 1 bytes of i */
	for (int s = 1; s >= 0; s--)
		for (size_t k = 0; k < n[s]; k++) {
			uint8_t row[8];
			size_t i = rows[s][k], len = i % 5 + 1;

			memset(row, (int)(i & 0xff), len);
			assert_int_equal(retorder_hold(r, s == 1 ? 0 : 1, row, len), 0);
		}
	for (size_t i = 0; i < N; i++) {
		memset(want.buf + want.len, (int)(i & 0xff), i % 5 + 1);
		want.len += i % 5 + 1;
	}
	assert_int_equal(retorder_held(r), want.len);
	assert_true(retorder_emit(r, append, &got));
	assert_int_equal(got.len, want.len);
	assert_memory_equal(got.buf, want.buf, want.len);
	retorder_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rows_arriving_shard_by_shard_go_out_in_values_order),
	    cmocka_unit_test(test_members_in_another_order_than_the_splits_map_by_shard),
	    cmocka_unit_test(test_a_shard_returning_fewer_rows_keeps_rows_shard_by_shard),
	    cmocka_unit_test(test_a_shard_returning_more_rows_keeps_rows_shard_by_shard),
	    cmocka_unit_test(test_without_returning_nothing_is_held),
	    cmocka_unit_test(test_a_split_whose_shard_has_no_member_is_not_reordered),
	    cmocka_unit_test(test_dropped_rows_are_gone_and_holding_starts_again),
	    cmocka_unit_test(test_many_rows_of_different_sizes_keep_their_bytes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
