/*
 * test_pbuf.c — the byte buffer: evbuffer's results for the calls the
 * proxy uses (pullup of more than held is NULL, copyout copies what there
 * is), its blocks (traded when all of a buffer moves into an empty one,
 * kept while small, given back when a large one empties), and a long run
 * of random calls on two buffers checked against a plain array.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/pbuf.h"

static void pullup_and_copyout_as_evbuffer(void **state)
{
	pbuf_t *b = pbuf_new();
	unsigned char out[8];

	(void)state;
	assert_null(pbuf_pullup(b, -1)); /* empty */
	assert_null(pbuf_pullup(b, 0));
	assert_int_equal(pbuf_copyout(b, out, sizeof out), 0);
	assert_int_equal(pbuf_add(b, "hello", 5), 0);
	assert_int_equal(pbuf_get_length(b), 5);
	assert_null(pbuf_pullup(b, 6)); /* more than held */
	assert_null(pbuf_pullup(b, 0));
	assert_memory_equal(pbuf_pullup(b, -1), "hello", 5);
	assert_memory_equal(pbuf_pullup(b, 5), "hello", 5);
	assert_int_equal(pbuf_copyout(b, out, sizeof out), 5); /* fewer than asked */
	assert_memory_equal(out, "hello", 5);
	assert_true(pbuf_copyout_at(b, 3, out, 2));
	assert_memory_equal(out, "lo", 2);
	assert_false(pbuf_copyout_at(b, 3, out, 3));
	assert_false(pbuf_copyout_at(b, 6, out, 0));
	assert_int_equal(pbuf_remove(b, out, 2), 2);
	assert_memory_equal(out, "he", 2);
	assert_memory_equal(pbuf_pullup(b, -1), "llo", 3);
	assert_int_equal(pbuf_drain(b, 100), 0); /* more than held: all */
	assert_int_equal(pbuf_get_length(b), 0);
	pbuf_free(b);
	pbuf_free(NULL);
}

/* A message taken from the front leaves room there: one of its size goes back in place. */
static void prepend_into_drained_room(void **state)
{
	pbuf_t *b = pbuf_new();
	const unsigned char *before;

	(void)state;
	assert_int_equal(pbuf_add(b, "Q....rest", 9), 0);
	before = pbuf_pullup(b, -1);
	pbuf_drain(b, 5);
	assert_int_equal(pbuf_prepend(b, "S1234", 5), 0);
	assert_ptr_equal(pbuf_pullup(b, -1), before);
	assert_memory_equal(pbuf_pullup(b, -1), "S1234rest", 9);
	/* a longer one than the room still goes in front */
	assert_int_equal(pbuf_prepend(b, "0123456789", 10), 0);
	assert_memory_equal(pbuf_pullup(b, -1), "0123456789S1234rest", 19);
	/* and into an empty buffer with no block yet */
	pbuf_release(b);
	assert_int_equal(pbuf_prepend(b, "xy", 2), 0);
	assert_memory_equal(pbuf_pullup(b, -1), "xy", 2);
	pbuf_free(b);
}

static void moving_all_into_empty_trades_blocks(void **state)
{
	pbuf_t *src = pbuf_new(), *dst = pbuf_new();
	const unsigned char *block;

	(void)state;
	assert_int_equal(pbuf_add(src, "reply", 5), 0);
	block = pbuf_pullup(src, -1);
	assert_int_equal(pbuf_remove_buffer(src, dst, 100), 5);
	assert_ptr_equal(pbuf_pullup(dst, -1), block); /* not copied */
	assert_int_equal(pbuf_get_length(src), 0);
	/* part of it: copied, the rest stays */
	assert_int_equal(pbuf_add(src, "abcdef", 6), 0);
	assert_int_equal(pbuf_remove_buffer(src, dst, 2), 2);
	assert_memory_equal(pbuf_pullup(dst, -1), "replyab", 7);
	assert_memory_equal(pbuf_pullup(src, -1), "cdef", 4);
	/* all of it, but dst is not empty: appended */
	assert_int_equal(pbuf_remove_buffer(src, dst, 4), 4);
	assert_memory_equal(pbuf_pullup(dst, -1), "replyabcdef", 11);
	assert_int_equal(pbuf_remove_buffer(src, dst, 4), 0);
	pbuf_free(src);
	pbuf_free(dst);
}

static void large_block_given_back_small_kept(void **state)
{
	pbuf_t *b = pbuf_new();
	size_t big = 4 * PBUF_KEEP;
	unsigned char *bytes = calloc(1, big);

	(void)state;
	assert_non_null(bytes);
	assert_int_equal(pbuf_add(b, "tiny", 4), 0);
	pbuf_drain(b, 4);
	assert_non_null(b->data); /* small: kept for the next message */
	assert_true(b->cap <= PBUF_KEEP);
	assert_int_equal(pbuf_add(b, bytes, big), 0);
	assert_true(b->cap >= big);
	pbuf_drain(b, big - 1);
	assert_non_null(b->data); /* not empty yet */
	pbuf_drain(b, 1);
	assert_null(b->data);
	assert_int_equal(b->cap, 0);
	free(bytes);
	pbuf_free(b);
}

/* ---- random calls against a plain array ---- */

typedef struct model {
	unsigned char bytes[1 << 20];
	size_t len;
} model_t;

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* A length: mostly message-sized, sometimes a large read. */
static size_t some_len(void)
{
	uint64_t r = next_rand();

	switch (r % 8) {
	case 0:
		return 0;
	case 1:
		return (size_t)(r >> 8) % (3 * PBUF_KEEP);
	default:
		return (size_t)(r >> 8) % 300;
	}
}

static void fill(unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)next_rand();
}

static void check(pbuf_t *b, const model_t *m)
{
	assert_int_equal(pbuf_get_length(b), m->len);
	if (m->len > 0)
		assert_memory_equal(pbuf_pullup(b, -1), m->bytes, m->len);
	else
		assert_null(pbuf_pullup(b, -1));
	assert_true(b->off + b->len <= b->cap);
}

static void random_calls_match_an_array(void **state)
{
	static model_t ms[2];
	static unsigned char tmp[3 * PBUF_KEEP];
	pbuf_t *bs[2] = {pbuf_new(), pbuf_new()};

	(void)state;
	for (int step = 0; step < 200000; step++) {
		int k = (int)(next_rand() % 2);
		pbuf_t *b = bs[k];
		model_t *m = &ms[k], *o = &ms[1 - k];
		size_t n = some_len();

		switch (next_rand() % 7) {
		case 0:
		case 1:
			if (m->len + n > sizeof m->bytes)
				break;
			fill(tmp, n);
			assert_int_equal(pbuf_add(b, tmp, n), 0);
			memcpy(m->bytes + m->len, tmp, n);
			m->len += n;
			break;
		case 2:
			if (m->len + n > sizeof m->bytes)
				break;
			fill(tmp, n);
			assert_int_equal(pbuf_prepend(b, tmp, n), 0);
			memmove(m->bytes + n, m->bytes, m->len);
			memcpy(m->bytes, tmp, n);
			m->len += n;
			break;
		case 3:
			pbuf_drain(b, n);
			n = n < m->len ? n : m->len;
			memmove(m->bytes, m->bytes + n, m->len - n);
			m->len -= n;
			break;
		case 4: {
			int got = pbuf_remove(b, tmp, n);

			assert_int_equal(got, n < m->len ? n : m->len);
			assert_memory_equal(tmp, m->bytes, (size_t)got);
			memmove(m->bytes, m->bytes + got, m->len - (size_t)got);
			m->len -= (size_t)got;
			break;
		}
		case 5: {
			size_t at = n % (m->len + 1), want = some_len() % 64;
			bool ok = pbuf_copyout_at(b, at, tmp, want);

			assert_int_equal(ok, at + want <= m->len);
			if (ok)
				assert_memory_equal(tmp, m->bytes + at, want);
			break;
		}
		default: {
			/* to the other buffer, all of it now and then */
			size_t want = next_rand() % 3 == 0 ? m->len : n;
			int moved;

			if (o->len + want > sizeof o->bytes)
				break;
			moved = pbuf_remove_buffer(b, bs[1 - k], want);
			assert_int_equal(moved, want < m->len ? want : m->len);
			memcpy(o->bytes + o->len, m->bytes, (size_t)moved);
			o->len += (size_t)moved;
			memmove(m->bytes, m->bytes + moved, m->len - (size_t)moved);
			m->len -= (size_t)moved;
			check(bs[1 - k], o);
			break;
		}
		}
		check(b, m);
	}
	pbuf_free(bs[0]);
	pbuf_free(bs[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(pullup_and_copyout_as_evbuffer),
	    cmocka_unit_test(prepend_into_drained_room),
	    cmocka_unit_test(moving_all_into_empty_trades_blocks),
	    cmocka_unit_test(large_block_given_back_small_kept),
	    cmocka_unit_test(random_calls_match_an_array),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
