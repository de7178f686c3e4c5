/*
 * test_pending.c — the pending queue keeps replies in the order the messages
 * were sent, through growth and wrap-around, and owns the strings it holds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/pending.h"

static void test_empty_queue_has_no_head_and_pop_is_harmless(void **state)
{
	pending_queue_t q = {0};

	(void)state;
	assert_null(pending_head(&q));
	pending_pop(&q);
	assert_int_equal(q.count, 0);
	free(q.items);
}

static void test_entries_come_out_in_the_order_they_went_in(void **state)
{
	pending_queue_t q = {0};
	const uint8_t msgs[] = {'P', 'B', 'D', 'E', 'S'};

	(void)state;
	for (size_t i = 0; i < sizeof(msgs); i++)
		assert_int_equal(pending_push(&q, msgs[i], PEND_FORWARD, 0, NULL, NULL), 0);
	for (size_t i = 0; i < sizeof(msgs); i++) {
		assert_non_null(pending_head(&q));
		assert_int_equal(pending_head(&q)->msg, msgs[i]);
		pending_pop(&q);
	}
	assert_null(pending_head(&q));
	free(q.items);
}

/* Interleave pushes and pops so the ring wraps, then grow it while wrapped. */
static void test_order_survives_wrap_around_and_growth(void **state)
{
	pending_queue_t q = {0};
	int next_in = 0, next_out = 0;

	(void)state;
	for (int round = 0; round < 50; round++) {
		for (int k = 0; k < 7; k++) {
			assert_int_equal(
			    pending_push(&q, (uint8_t)(next_in % 251), PEND_FORWARD, 0, NULL, NULL),
			    0);
			next_in++;
		}
		for (int k = 0; k < 5; k++) {
			assert_int_equal(pending_head(&q)->msg, (uint8_t)(next_out % 251));
			pending_pop(&q);
			next_out++;
		}
	}
	assert_int_equal((int)q.count, next_in - next_out);
	assert_true(q.cap >= q.count);
	while (q.count > 0) {
		assert_int_equal(pending_head(&q)->msg, (uint8_t)(next_out % 251));
		pending_pop(&q);
		next_out++;
	}
	assert_int_equal(next_in, next_out);
	free(q.items);
}

static void test_fields_are_kept_and_strings_freed_on_pop_and_clear(void **state)
{
	pending_queue_t q = {0};
	ps_entry_t entry;

	(void)state;
	assert_int_equal(pending_push(&q, 'P', PEND_SYNTHESIZE, '1', &entry, strdup("q1")), 0);
	assert_int_equal(pending_push(&q, 0, PEND_SYNTHESIZE, 'E', NULL, strdup("26000gone")), 0);
	assert_int_equal(pending_push(&q, 'S', PEND_SWALLOW, 0, NULL, NULL), 0);
	assert_int_equal(pending_head(&q)->action, PEND_SYNTHESIZE);
	assert_int_equal(pending_head(&q)->reply, '1');
	assert_ptr_equal(pending_head(&q)->ps, &entry);
	assert_string_equal(pending_head(&q)->str, "q1");
	pending_pop(&q); /* frees "q1"; LeakSanitizer checks it */
	assert_string_equal(pending_head(&q)->str, "26000gone");
	pending_clear(&q); /* frees the rest */
	assert_int_equal(q.count, 0);
	assert_null(pending_head(&q));
	free(q.items);
}

static void test_a_statement_is_timed_from_the_first_message_the_server_answers(void **state)
{
	pending_queue_t q = {0};

	/* a reply pgshard makes itself does not start the clock */
	assert_int_equal(pending_push(&q, 'P', PEND_SYNTHESIZE, '1', NULL, NULL), 0);
	assert_true(q.started_us == 0);
	assert_int_equal(pending_push(&q, 'B', PEND_FORWARD, 0, NULL, NULL), 0);
	uint64_t started = q.started_us;
	assert_true(started != 0);
	/* later messages of the same statement keep its start */
	assert_int_equal(pending_push(&q, 'S', PEND_FORWARD, 0, NULL, NULL), 0);
	assert_true(q.started_us == started);
	pending_clear(&q);
	assert_true(q.started_us == 0);
	free(q.items);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_empty_queue_has_no_head_and_pop_is_harmless),
	    cmocka_unit_test(test_entries_come_out_in_the_order_they_went_in),
	    cmocka_unit_test(test_order_survives_wrap_around_and_growth),
	    cmocka_unit_test(test_fields_are_kept_and_strings_freed_on_pop_and_clear),
	    cmocka_unit_test(test_a_statement_is_timed_from_the_first_message_the_server_answers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
