/*
 * test_verify_rules.c — the consistency checks' decisions: which ranges
 * differ, when to split or fetch, how a key's copies are described.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/verify_rules.h"
#include "router/verify_sql.h"

static void test_equal_ranges_do_not_differ(void **state)
{
	verify_range_t a[] = {{1, 10, "5", "6"}, {2, 3, "7", "8"}};
	verify_range_t b[] = {{1, 10, "5", "6"}, {2, 3, "7", "8"}};
	const verify_range_t *shards[] = {a, b};
	int n[] = {2, 2};
	int64_t out[4], rows = -1;

	assert_int_equal(verify_ranges_diff(shards, n, 2, out, &rows), 0);
	assert_int_equal(rows, 0);
}

static void test_ranges_differ_by_sum_count_or_absence(void **state)
{
	verify_range_t a[] = {
	    {-5, 10, "5", "6"}, {2, 3, "7", "8"}, {4, 1, "1", "1"}, {9, 2, "2", "2"}};
	verify_range_t b[] = {{-5, 10, "5", "7"}, {2, 4, "7", "8"}, {9, 2, "2", "2"}};
	verify_range_t c[] = {
	    {-5, 12, "5", "6"}, {2, 3, "7", "8"}, {7, 1, "3", "3"}, {9, 2, "2", "2"}};
	const verify_range_t *shards[] = {a, b, c};
	int n[] = {4, 3, 4};
	int64_t out[11], rows;

	assert_int_equal(verify_ranges_diff(shards, n, 3, out, &rows), 4);
	assert_int_equal(out[0], -5);
	assert_int_equal(out[1], 2);
	assert_int_equal(out[2], 4); /* shard 1 and 2 have no rows there */
	assert_int_equal(out[3], 7);
	assert_int_equal(rows, 12 + 4 + 1 + 1); /* the largest count of each */
}

static void test_a_shard_without_rows_differs_everywhere_the_others_have_some(void **state)
{
	verify_range_t a[] = {{1, 10, "5", "6"}, {3, 5, "7", "8"}};
	const verify_range_t *shards[] = {a, NULL};
	int n[] = {2, 0};
	int64_t out[2], rows;

	assert_int_equal(verify_ranges_diff(shards, n, 2, out, &rows), 2);
	assert_int_equal(rows, 15);
}

static void test_next_step_splits_only_while_it_pays(void **state)
{
	assert_int_equal(verify_next(1, 0, 0, 100), VERIFY_NEXT_DONE);
	/* few rows differ: fetch them */
	assert_int_equal(verify_next(1, 3, 100, 100), VERIFY_NEXT_FETCH);
	/* many rows in few ranges: split */
	assert_int_equal(verify_next(1, 3, 12000, 10000), VERIFY_NEXT_SPLIT);
	assert_int_equal(verify_next(VERIFY_LEVELS - 1, 3, 12000, 10000), VERIFY_NEXT_SPLIT);
	/* the deepest level cannot split */
	assert_int_equal(verify_next(VERIFY_LEVELS, 3, 12000, 10000), VERIFY_NEXT_FETCH);
	/* most ranges differ: one pass over their rows beats more levels */
	assert_int_equal(verify_next(1, VERIFY_MAX_SPLIT + 1, 1000000, 10000), VERIFY_NEXT_FETCH);
	assert_int_equal(verify_next(1, VERIFY_MAX_SPLIT, 1000000, 10000), VERIFY_NEXT_SPLIT);
}

static char desc[256];

static const char *describe(const verify_row_t *rows, int n)
{
	if (!verify_row_describe(rows, n, desc, sizeof(desc)))
		return NULL;
	return desc;
}

static void test_same_row_everywhere_is_no_difference(void **state)
{
	verify_row_t rows[] = {{0, true, "aa", 1}, {1, true, "aa", 1}, {2, true, "aa", 1}};

	assert_null(describe(rows, 3));
	assert_string_equal(desc, "");
}

static void test_missing_extra_and_changed_rows(void **state)
{
	verify_row_t missing[] = {{0, true, "aa", 1}, {1, false, "", 0}, {2, true, "aa", 1}};
	verify_row_t extra[] = {{0, false, "", 0}, {1, false, "", 0}, {2, true, "aa", 1}};
	verify_row_t changed[] = {{0, true, "bb", 1}, {1, true, "aa", 1}, {2, true, "aa", 1}};
	verify_row_t two[] = {{0, true, "aa", 1},
	                      {1, true, "aa", 1},
	                      {2, false, "", 0},
	                      {3, true, "cc", 1},
	                      {4, true, "aa", 1}};

	assert_string_equal(describe(missing, 3), "missing on shard 1 (shards 0, 2 agree)");
	assert_string_equal(describe(extra, 3), "extra on shard 2 (shards 0, 1 lack it)");
	assert_string_equal(describe(changed, 3), "changed on shard 0 (shards 1, 2 agree)");
	assert_string_equal(describe(two, 5),
	                    "missing on shard 2; changed on shard 3 (shards 0, 1, 4 agree)");
}

static void test_no_majority_says_the_shards_disagree(void **state)
{
	verify_row_t pair[] = {{0, true, "aa", 1}, {3, false, "", 0}};
	verify_row_t three[] = {{0, true, "aa", 1}, {1, true, "bb", 1}, {2, false, "", 0}};

	assert_string_equal(describe(pair, 2), "shards disagree: version A on shard 0; absent on "
	                                       "shard 3");
	assert_string_equal(describe(three, 3), "shards disagree: version A on shard 0; version B "
	                                        "on shard 1; absent on shard 2");
}

static void test_rows_without_key_differ_by_copies(void **state)
{
	verify_row_t copies[] = {{0, true, "", 1}, {1, true, "", 2}, {2, true, "", 1}};
	verify_row_t missing[] = {{0, true, "", 2}, {1, false, "", 0}, {2, true, "", 2}};

	assert_string_equal(describe(copies, 3), "2 copies on shard 1 (1 on shards 0, 2)");
	assert_string_equal(describe(missing, 3), "missing on shard 1 (2 on shards 0, 2)");
}

static void test_description_is_cut_to_fit(void **state)
{
	verify_row_t changed[] = {{0, true, "bb", 1}, {1, true, "aa", 1}, {2, true, "aa", 1}};
	char small[12];

	assert_true(verify_row_describe(changed, 3, small, sizeof(small)));
	assert_string_equal(small, "changed on ");
}

static void test_escape_keeps_one_line(void **state)
{
	char buf[32];

	verify_escape("plain key", buf, sizeof(buf));
	assert_string_equal(buf, "plain key");
	verify_escape("a\nb\tc\\d\x01", buf, sizeof(buf));
	assert_string_equal(buf, "a\\nb\\tc\\\\d\\x01");
	verify_escape("0123456789", buf, 11);
	assert_string_equal(buf, "0123456789");
	verify_escape("0123456789a", buf, 11);
	assert_string_equal(buf, "0123456...");
	verify_escape("\n\n\n\n\n", buf, 8);
	assert_string_equal(buf, "\\n\\n...");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_equal_ranges_do_not_differ),
	    cmocka_unit_test(test_ranges_differ_by_sum_count_or_absence),
	    cmocka_unit_test(test_a_shard_without_rows_differs_everywhere_the_others_have_some),
	    cmocka_unit_test(test_next_step_splits_only_while_it_pays),
	    cmocka_unit_test(test_same_row_everywhere_is_no_difference),
	    cmocka_unit_test(test_missing_extra_and_changed_rows),
	    cmocka_unit_test(test_no_majority_says_the_shards_disagree),
	    cmocka_unit_test(test_rows_without_key_differ_by_copies),
	    cmocka_unit_test(test_description_is_cut_to_fit),
	    cmocka_unit_test(test_escape_keeps_one_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
