/*
 * test_merge.c — tags and count() rows of several shards make one answer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "router/merge.h"

static void tag_of(const char *const *tags, int n, bool first_only, char *out, size_t outlen)
{
	merge_tag_t m;

	memset(&m, 0, sizeof(m));
	for (int i = 0; i < n; i++)
		merge_tag_add(&m, tags[i], first_only);
	merge_tag_format(&m, out, outlen);
}

static void test_counts_of_writes_add_up(void **state)
{
	static const char *const updates[] = {"UPDATE 3", "UPDATE 0", "UPDATE 4"};
	static const char *const inserts[] = {"INSERT 0 40", "INSERT 0 60"};
	static const char *const deletes[] = {"DELETE 1", "DELETE 9"};
	static const char *const copies[] = {"COPY 100000", "COPY 99999", "COPY 100001"};
	static const char *const selects[] = {"SELECT 0", "SELECT 7"};
	static const char *const merges[] = {"MERGE 2", "MERGE 5"};
	char out[96];

	(void)state;
	tag_of(updates, 3, false, out, sizeof(out));
	assert_string_equal(out, "UPDATE 7");
	tag_of(inserts, 2, false, out, sizeof(out));
	assert_string_equal(out, "INSERT 0 100");
	tag_of(deletes, 2, false, out, sizeof(out));
	assert_string_equal(out, "DELETE 10");
	tag_of(copies, 3, false, out, sizeof(out));
	assert_string_equal(out, "COPY 300000");
	tag_of(selects, 2, false, out, sizeof(out));
	assert_string_equal(out, "SELECT 7");
	tag_of(merges, 2, false, out, sizeof(out));
	assert_string_equal(out, "MERGE 7");
}

static void test_copies_answer_once(void **state)
{
	static const char *const inserts[] = {"INSERT 0 2", "INSERT 0 2", "INSERT 0 2"};
	static const char *const ddl[] = {"CREATE TABLE", "CREATE TABLE"};
	char out[96];

	(void)state;
	tag_of(inserts, 3, true, out, sizeof(out));
	assert_string_equal(out, "INSERT 0 2");
	tag_of(ddl, 2, true, out, sizeof(out));
	assert_string_equal(out, "CREATE TABLE");
	/* tags without a count are the same everywhere: kept as they are */
	tag_of(ddl, 2, false, out, sizeof(out));
	assert_string_equal(out, "CREATE TABLE");
}

static void test_tags_without_a_number_are_not_summed(void **state)
{
	static const char *const odd[] = {"SELECT x", "SELECT y"};
	char out[96];

	(void)state;
	tag_of(odd, 2, false, out, sizeof(out));
	assert_string_equal(out, "SELECT x");
}

/* A DataRow body: int16 count, then int32 length + bytes per column. */
static size_t row(uint8_t *buf, const char *const *vals, int n)
{
	size_t pos = 2;

	buf[0] = (uint8_t)(n >> 8);
	buf[1] = (uint8_t)n;
	for (int i = 0; i < n; i++) {
		size_t len = strlen(vals[i]);

		buf[pos] = 0;
		buf[pos + 1] = 0;
		buf[pos + 2] = (uint8_t)(len >> 8);
		buf[pos + 3] = (uint8_t)len;
		memcpy(buf + pos + 4, vals[i], len);
		pos += 4 + len;
	}
	return pos;
}

static void test_count_rows_add_column_by_column(void **state)
{
	static const char *const a[] = {"100000", "0"};
	static const char *const b[] = {"99999", "5"};
	static const char *const c[] = {"1", "9223372036854775000"};
	merge_counts_t m = {NULL, -1};
	uint8_t buf[128];

	(void)state;
	assert_int_equal(merge_counts_add(&m, buf, row(buf, a, 2)), 0);
	assert_int_equal(merge_counts_add(&m, buf, row(buf, b, 2)), 0);
	assert_int_equal(merge_counts_add(&m, buf, row(buf, c, 2)), 0);
	assert_int_equal(m.n, 2);
	assert_int_equal(m.sums[0], 200000);
	assert_true(m.sums[1] == INT64_C(9223372036854775005));
	merge_counts_free(&m);
}

static void test_count_rows_that_are_not_counts_are_refused(void **state)
{
	static const char *const one[] = {"1"};
	static const char *const two[] = {"1", "2"};
	static const char *const text[] = {"12abc"};
	merge_counts_t m = {NULL, -1};
	uint8_t buf[128];
	size_t len;

	(void)state;
	assert_int_equal(merge_counts_add(&m, buf, row(buf, one, 1)), 0);
	/* another number of columns */
	assert_int_equal(merge_counts_add(&m, buf, row(buf, two, 2)), -1);
	/* not an integer */
	assert_int_equal(merge_counts_add(&m, buf, row(buf, text, 1)), -1);
	/* NULL */
	buf[0] = 0, buf[1] = 1, buf[2] = buf[3] = buf[4] = buf[5] = 0xff;
	assert_int_equal(merge_counts_add(&m, buf, 6), -1);
	/* cut short, and trailing bytes */
	len = row(buf, one, 1);
	assert_int_equal(merge_counts_add(&m, buf, len - 1), -1);
	assert_int_equal(merge_counts_add(&m, buf, len + 1), -1);
	assert_int_equal(m.sums[0], 1);
	merge_counts_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_counts_of_writes_add_up),
	    cmocka_unit_test(test_copies_answer_once),
	    cmocka_unit_test(test_tags_without_a_number_are_not_summed),
	    cmocka_unit_test(test_count_rows_add_column_by_column),
	    cmocka_unit_test(test_count_rows_that_are_not_counts_are_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
