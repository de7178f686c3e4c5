/*
 * test_hotkeys.c — the heavy-hitters sketch (a skewed stream finds its hot
 * key within the error it reports, capacity is never exceeded, two
 * workers' sketches merge with the same guarantees) and the per-shard and
 * per-table counts of routed plans.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/hotkeys.h"

static uint64_t rng = 88172645463325252ull;

/* xorshift64: the same stream on every run */
static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static const hotkey_t *find(const hotkeys_sketch_t *s, const char *table, const char *key)
{
	for (int i = 0; i < s->n; i++)
		if (strcmp(s->items[i].table, table) == 0 && strcmp(s->items[i].key, key) == 0)
			return &s->items[i];
	return NULL;
}

/*
 * n statements: every third on key "7" of users, the rest spread over
 * `spread` other keys; true counts in truth[] (index = key number).
 */
static void skewed_stream(hotkeys_sketch_t *s, int n, int spread, uint64_t *truth)
{
	char key[32];

	for (int i = 0; i < n; i++) {
		int k = i % 3 == 0 ? 7 : 1000 + (int)(next_rand() % (uint64_t)spread);

		snprintf(key, sizeof key, "%d", k);
		hotkeys_sketch_add(s, "users", key, k % 3, 1);
		if (truth != NULL)
			truth[k]++;
	}
}

static void test_skewed_stream_finds_its_hot_key_within_the_error(void **state)
{
	static hotkeys_sketch_t s;
	static uint64_t truth[1000 + 5000];
	const hotkey_t *hot;

	(void)state;
	memset(truth, 0, sizeof truth);
	hotkeys_sketch_init(&s, 64);
	skewed_stream(&s, 30000, 5000, truth);
	hotkeys_sketch_sort(&s);
	hot = &s.items[0];
	assert_string_equal(hot->table, "users");
	assert_string_equal(hot->key, "7");
	assert_int_equal(hot->shard, 7 % 3);
	/* never below the truth, over it by at most the error it reports */
	assert_true(hot->count >= truth[7]);
	assert_true(hot->count - hot->error <= truth[7]);
	for (int i = 0; i < s.n; i++) {
		int k = atoi(s.items[i].key);

		assert_true(s.items[i].count >= truth[k]);
		assert_true(s.items[i].count - s.items[i].error <= truth[k]);
		/* Space-Saving's bound: an error is at most the stream over the capacity */
		assert_true(s.items[i].error <= 30000 / 64);
	}
}

static void test_capacity_is_never_exceeded(void **state)
{
	static hotkeys_sketch_t s;
	char key[32];
	uint64_t total = 0;

	(void)state;
	hotkeys_sketch_init(&s, 16);
	for (int i = 0; i < 10000; i++) {
		snprintf(key, sizeof key, "k%d", i);
		hotkeys_sketch_add(&s, "t", key, 0, 1);
		assert_true(s.n <= 16);
	}
	assert_int_equal(s.n, 16);
	/* Space-Saving keeps the stream's length in its counts */
	for (int i = 0; i < s.n; i++)
		total += s.items[i].count;
	assert_int_equal(total, 10000);
	/* capacities are clamped to the fixed array */
	hotkeys_sketch_init(&s, HOTKEYS_CAPACITY * 4);
	assert_int_equal(s.capacity, HOTKEYS_CAPACITY);
	hotkeys_sketch_init(&s, 0);
	assert_int_equal(s.capacity, 1);
}

/* The smallest count held, by a plain pass. */
static uint64_t min_count(const hotkeys_sketch_t *s)
{
	uint64_t m = s->items[0].count;

	for (int i = 1; i < s->n; i++)
		if (s->items[i].count < m)
			m = s->items[i].count;
	return m;
}

/* Each held entry is found again (adding 0 changes nothing) and none is held twice. */
static void assert_index_whole(hotkeys_sketch_t *s)
{
	int n = s->n;

	for (int i = 0; i < n; i++) {
		hotkey_t before = s->items[i];

		for (int k = i + 1; k < n; k++)
			assert_false(strcmp(s->items[k].table, before.table) == 0 &&
			             strcmp(s->items[k].key, before.key) == 0);
		hotkeys_sketch_add(s, before.table, before.key, before.shard, 0);
		assert_int_equal(s->n, n);
		assert_int_equal(s->items[i].count, before.count);
		assert_int_equal(s->items[i].error, before.error);
	}
}

static void test_index_and_groups_stay_right_through_evictions(void **state)
{
	static hotkeys_sketch_t s;
	static hotkeys_t h;
	char key[32];

	(void)state;
	hotkeys_sketch_init(&s, HOTKEYS_CAPACITY);
	for (int i = 0; i < 20000; i++) {
		int k = (int)(next_rand() % 3000);
		const hotkey_t *held;
		uint64_t min = s.n == s.capacity ? min_count(&s) : 0;

		snprintf(key, sizeof key, "%d", k % 7 == 0 ? k % 50 : k);
		held = find(&s, i % 2 ? "a" : "b", key);
		if (held == NULL && s.n == s.capacity) {
			/* a newcomer takes the place of a smallest count, which becomes its error
			 */
			hotkeys_sketch_add(&s, i % 2 ? "a" : "b", key, 0, 1);
			held = find(&s, i % 2 ? "a" : "b", key);
			assert_non_null(held);
			assert_int_equal(held->error, min);
			assert_int_equal(held->count, min + 1);
		} else {
			hotkeys_sketch_add(&s, i % 2 ? "a" : "b", key, 0, 1);
		}
		if (i % 2500 == 0)
			assert_index_whole(&s);
	}
	assert_index_whole(&s);
	/* sorting and aging move the entries: the index and the groups follow */
	hotkeys_sketch_sort(&s);
	assert_index_whole(&s);
	hotkeys_init(&h, HOTKEYS_CAPACITY);
	h.sketch = s;
	hotkeys_age(&h, 1);
	hotkeys_age(&h, 1 + (uint64_t)HOTKEYS_HALF_LIFE_S * 1000000u);
	assert_true(h.sketch.n > 0);
	assert_index_whole(&h.sketch);
	snprintf(key, sizeof key, "new");
	if (h.sketch.n == h.sketch.capacity) {
		uint64_t min = min_count(&h.sketch);

		hotkeys_sketch_add(&h.sketch, "a", key, 0, 1);
		assert_int_equal(find(&h.sketch, "a", key)->error, min);
	}
}

static void test_same_key_in_two_tables_is_two_entries(void **state)
{
	static hotkeys_sketch_t s;
	char long_key[200];

	(void)state;
	hotkeys_sketch_init(&s, 8);
	hotkeys_sketch_add(&s, "users", "1", 0, 3);
	hotkeys_sketch_add(&s, "orders", "1", 0, 2);
	memset(long_key, 'x', sizeof long_key - 1);
	long_key[sizeof long_key - 1] = '\0';
	/* a key cut to fit finds its own entry again */
	hotkeys_sketch_add(&s, "users", long_key, 1, 1);
	hotkeys_sketch_add(&s, "users", long_key, 1, 1);
	assert_int_equal(s.n, 3);
	assert_int_equal(find(&s, "users", "1")->count, 3);
	assert_int_equal(find(&s, "orders", "1")->count, 2);
	hotkeys_sketch_sort(&s);
	assert_int_equal(s.items[1].count, 2);
	assert_true(strlen(s.items[1].key) < HOTKEYS_TEXT);

	/* a name of two-byte letters is cut between letters */
	{
		char wide[2 * HOTKEYS_TEXT + 1];
		const hotkey_t *e;

		for (int i = 0; i < HOTKEYS_TEXT; i++)
			memcpy(wide + 2 * i, "\xc3\xa9", 2);
		wide[2 * HOTKEYS_TEXT] = '\0';
		hotkeys_sketch_add(&s, wide, "1", 0, 1);
		hotkeys_sketch_add(&s, wide, "1", 0, 1);
		e = NULL;
		for (int i = 0; i < s.n; i++)
			if ((uint8_t)s.items[i].table[0] == 0xc3)
				e = &s.items[i];
		assert_non_null(e);
		assert_int_equal(e->count, 2);
		assert_int_equal(strlen(e->table), HOTKEYS_TEXT - 2);
	}
}

/*
 * A table's hash is kept by the address of its name and checked by text: a
 * buffer that names another table next is that other table, and the first
 * name from elsewhere finds its entry again.
 */
static void test_a_name_at_an_address_used_again_is_its_own_table(void **state)
{
	static hotkeys_sketch_t s;
	char name[32];

	(void)state;
	hotkeys_sketch_init(&s, 8);
	strcpy(name, "users");
	hotkeys_sketch_add(&s, name, "1", 0, 1);
	strcpy(name, "orders");
	hotkeys_sketch_add(&s, name, "1", 0, 1);
	hotkeys_sketch_add(&s, name, "1", 0, 1);
	hotkeys_sketch_add(&s, "users", "1", 0, 1);
	hotkeys_sketch_add(&s, "orders", "1", 0, 1);
	assert_int_equal(s.n, 2);
	assert_int_equal(find(&s, "users", "1")->count, 2);
	assert_int_equal(find(&s, "orders", "1")->count, 3);
	/* a name too long to keep is not kept, and still found by its text */
	{
		char long_name[2 * HOTKEYS_TEXT];

		memset(long_name, 't', sizeof long_name - 1);
		long_name[sizeof long_name - 1] = '\0';
		hotkeys_sketch_add(&s, long_name, "2", 0, 1);
		long_name[0] = 'u';
		hotkeys_sketch_add(&s, long_name, "2", 0, 1);
		assert_int_equal(s.n, 4);
	}
}

static void test_two_workers_sketches_merge(void **state)
{
	static hotkeys_sketch_t a, b;
	static uint64_t truth[1000 + 3000];
	const hotkey_t *hot;

	(void)state;
	memset(truth, 0, sizeof truth);
	hotkeys_sketch_init(&a, 32);
	hotkeys_sketch_init(&b, 32);
	skewed_stream(&a, 9000, 3000, truth);
	skewed_stream(&b, 6000, 3000, truth);
	hotkeys_sketch_merge(&a, &b);
	assert_true(a.n <= 32);
	hot = &a.items[0]; /* merging sorts */
	assert_string_equal(hot->key, "7");
	assert_true(hot->count >= truth[7]);
	assert_true(hot->count - hot->error <= truth[7]);
	for (int i = 0; i < a.n; i++) {
		int k = atoi(a.items[i].key);

		assert_true(a.items[i].count >= truth[k]);
		assert_true(a.items[i].count - a.items[i].error <= truth[k]);
	}

	/*
	 * a key that one sketch evicted may have had up to its smallest count
	 * there: A (10 in `a`, evicted by E) and 5 in `b` is 15 statements
	 */
	hotkeys_sketch_init(&a, 4);
	hotkeys_sketch_init(&b, 4);
	hotkeys_sketch_add(&a, "t", "A", 0, 10);
	hotkeys_sketch_add(&a, "t", "B", 0, 10);
	hotkeys_sketch_add(&a, "t", "C", 0, 10);
	hotkeys_sketch_add(&a, "t", "D", 0, 10);
	hotkeys_sketch_add(&a, "t", "E", 0, 2);
	assert_null(find(&a, "t", "A"));
	hotkeys_sketch_add(&b, "t", "A", 0, 5);
	hotkeys_sketch_merge(&a, &b);
	hot = find(&a, "t", "A");
	assert_non_null(hot);
	assert_true(hot->count >= 15);
	assert_true(hot->count - hot->error <= 15);
	assert_string_equal(a.items[0].key, "A");

	/* sketches that are not full merge exactly */
	hotkeys_sketch_init(&a, 8);
	hotkeys_sketch_init(&b, 8);
	hotkeys_sketch_add(&a, "users", "1", 0, 5);
	hotkeys_sketch_add(&a, "users", "2", 1, 1);
	hotkeys_sketch_add(&b, "users", "1", 0, 4);
	hotkeys_sketch_add(&b, "users", "3", 2, 2);
	hotkeys_sketch_merge(&a, &b);
	assert_int_equal(a.n, 3);
	assert_int_equal(find(&a, "users", "1")->count, 9);
	assert_int_equal(find(&a, "users", "1")->error, 0);
	assert_int_equal(find(&a, "users", "3")->count, 2);
	assert_int_equal(find(&a, "users", "2")->error, 0);
}

static route_plan_t one_shard_plan(const char *table, const char *key, int shard)
{
	route_plan_t p;

	memset(&p, 0, sizeof p);
	p.kind = ROUTE_SHARDS;
	p.table = table;
	snprintf(p.key_value, sizeof p.key_value, "%s", key);
	shard_set_add(&p.shards, shard);
	route_plan_set_steps(&p);
	return p;
}

static void test_plans_count_per_shard_table_and_key(void **state)
{
	static hotkeys_t h, other;
	route_plan_t p;

	(void)state;
	hotkeys_init(&h, 16);
	p = one_shard_plan("users", "42", 1);
	hotkeys_note(&h, &p);
	hotkeys_note(&h, &p);
	/* on every shard: each counts it, no key */
	memset(&p, 0, sizeof p);
	p.kind = ROUTE_ALL;
	p.table = "users";
	shard_set_add(&p.shards, 0);
	shard_set_add(&p.shards, 1);
	shard_set_add(&p.shards, 2);
	p.merge = ROUTE_MERGE_ONE;
	route_plan_set_steps(&p);
	hotkeys_note(&h, &p);
	/* transaction control and refusals are not statements on a shard */
	memset(&p, 0, sizeof p);
	p.kind = ROUTE_DEFAULT;
	p.txn = ROUTE_TXN_BEGIN;
	shard_set_add(&p.shards, 0);
	route_plan_set_steps(&p);
	hotkeys_note(&h, &p);
	memset(&p, 0, sizeof p);
	route_plan_refuse(&p, "0A000", "no");
	hotkeys_note(&h, &p);

	assert_int_equal(h.shard_statements[0], 1);
	assert_int_equal(h.shard_statements[1], 3);
	assert_int_equal(h.shard_statements[2], 1);
	assert_int_equal(h.n_tables, 3);
	assert_int_equal(h.sketch.n, 1);
	assert_string_equal(h.sketch.items[0].key, "42");
	assert_int_equal(h.sketch.items[0].count, 2);
	assert_int_equal(h.sketch.items[0].shard, 1);

	/* a second worker's counts add up */
	hotkeys_init(&other, 16);
	p = one_shard_plan("users", "42", 1);
	hotkeys_note(&other, &p);
	p = one_shard_plan("orders", "9", 2);
	hotkeys_note(&other, &p);
	hotkeys_merge(&h, &other);
	assert_int_equal(h.shard_statements[1], 4);
	assert_int_equal(h.shard_statements[2], 2);
	assert_int_equal(h.n_tables, 4);
	for (int i = 0; i < h.n_tables; i++)
		if (strcmp(h.tables[i].table, "users") == 0 && h.tables[i].shard == 1)
			assert_int_equal(h.tables[i].statements, 4);
	assert_int_equal(find(&h.sketch, "users", "42")->count, 3);
	assert_int_equal(find(&h.sketch, "orders", "9")->count, 1);
}

/* Per-table counts go by the name, whatever string holds it, and by the shard. */
static void test_table_counts_go_by_name_not_by_string(void **state)
{
	static hotkeys_t h;
	char name[HOTKEYS_TEXT];
	route_plan_t p;
	uint64_t users = 0, orders = 0, total = 0;

	(void)state;
	hotkeys_init(&h, 16);
	/* one buffer: "users", then (a reload reusing the memory) "orders" */
	strcpy(name, "users");
	p = one_shard_plan(name, "1", 0);
	hotkeys_note(&h, &p);
	hotkeys_note(&h, &p);
	strcpy(name, "orders");
	hotkeys_note(&h, &p);
	/* another string spelling "users": the same table */
	p = one_shard_plan("users", "2", 0);
	hotkeys_note(&h, &p);
	/* the same string on another shard: another pair */
	p = one_shard_plan("users", "3", 1);
	hotkeys_note(&h, &p);
	for (int i = 0; i < h.n_tables; i++) {
		if (strcmp(h.tables[i].table, "users") == 0 && h.tables[i].shard == 0)
			users = h.tables[i].statements;
		if (strcmp(h.tables[i].table, "orders") == 0 && h.tables[i].shard == 0)
			orders = h.tables[i].statements;
		total += h.tables[i].statements;
	}
	assert_int_equal(h.n_tables, 3);
	assert_int_equal(users, 3);
	assert_int_equal(orders, 1);
	assert_int_equal(total, 5);
}

static void test_multi_row_insert_counts_each_distinct_key_once(void **state)
{
	static hotkeys_t h;
	route_plan_t p;

	(void)state;
	hotkeys_init(&h, 16);
	/* INSERT INTO users VALUES (7), (8), (7): split over shards 0 and 2 */
	memset(&p, 0, sizeof p);
	p.kind = ROUTE_SHARDS;
	p.table = "users";
	p.split_insert = true;
	shard_set_add(&p.shards, 0);
	shard_set_add(&p.shards, 2);
	p.merge = ROUTE_MERGE_SUM;
	snprintf(p.insert_keys[0].text, sizeof p.insert_keys[0].text, "7");
	p.insert_keys[0].shard = 0;
	snprintf(p.insert_keys[1].text, sizeof p.insert_keys[1].text, "8");
	p.insert_keys[1].shard = 2;
	p.n_insert_keys = 2;
	route_plan_set_steps(&p);
	hotkeys_note(&h, &p);
	/* INSERT INTO users VALUES (7), (7): one shard, one key, no key_value */
	memset(&p, 0, sizeof p);
	p.kind = ROUTE_SHARDS;
	p.table = "users";
	shard_set_add(&p.shards, 0);
	snprintf(p.insert_keys[0].text, sizeof p.insert_keys[0].text, "7");
	p.n_insert_keys = 1;
	route_plan_set_steps(&p);
	hotkeys_note(&h, &p);

	assert_int_equal(h.shard_statements[0], 2);
	assert_int_equal(h.shard_statements[2], 1);
	assert_int_equal(h.sketch.n, 2);
	assert_int_equal(find(&h.sketch, "users", "7")->count, 2);
	assert_int_equal(find(&h.sketch, "users", "7")->shard, 0);
	assert_int_equal(find(&h.sketch, "users", "8")->count, 1);
	assert_int_equal(find(&h.sketch, "users", "8")->shard, 2);
}

static void test_utf8_prefix_stops_at_bad_bytes_and_knows_a_cut_character(void **state)
{
	bool cut;

	(void)state;
	assert_int_equal(hotkeys_utf8_prefix("caf\xc3\xa9", 5, &cut), 5);
	assert_false(cut);
	assert_int_equal(hotkeys_utf8_prefix("caf\xe9s", 5, &cut), 3); /* Latin-1 */
	assert_false(cut);
	/* at the end, a Latin-1 byte looks like a character cut off: copy_text asks whether
	 * the text went on */
	assert_int_equal(hotkeys_utf8_prefix("caf\xe9", 4, &cut), 3);
	assert_true(cut);
	assert_int_equal(hotkeys_utf8_prefix("a\xc0\xaf", 3, &cut), 1);         /* overlong '/' */
	assert_int_equal(hotkeys_utf8_prefix("a\xed\xa0\x80", 4, &cut), 1);     /* a surrogate */
	assert_int_equal(hotkeys_utf8_prefix("a\xf4\x90\x80\x80", 5, &cut), 1); /* > U+10FFFF */
	assert_int_equal(hotkeys_utf8_prefix("\xf0\x9f\x98\x80", 4, &cut), 4);  /* U+1F600 */
	assert_int_equal(hotkeys_utf8_prefix("ab\xe2\x82", 4, &cut), 2);        /* U+20AC cut off */
	assert_true(cut);
}

static void test_keys_not_in_utf8_are_kept_in_hex(void **state)
{
	hotkeys_sketch_t s;
	char long_key[100];

	(void)state;
	hotkeys_sketch_init(&s, 8);
	hotkeys_sketch_add(&s, "users", "caf\xe9", 0, 1);
	hotkeys_sketch_add(&s, "users", "caf\xc3\xa9", 0, 1);
	assert_non_null(find(&s, "users", "\\x636166e9"));
	assert_non_null(find(&s, "users", "caf\xc3\xa9"));
	/* a long UTF-8 key is cut before a character, and stays text */
	memset(long_key, 0, sizeof long_key);
	for (int i = 0; i < 40; i++)
		memcpy(long_key + 2 * i, "\xc3\xa9", 2);
	hotkeys_sketch_add(&s, "users", long_key, 1, 1);
	assert_int_equal(s.n, 3);
	assert_int_equal(strlen(s.items[2].key), 62);
	assert_int_equal(memcmp(s.items[2].key, long_key, 62), 0);
}

/* A name kept as it is and one cut to the same text are one entry, however each was hashed. */
static void test_kept_and_cut_names_of_the_same_text_are_one_entry(void **state)
{
	hotkeys_sketch_t s;
	char whole[HOTKEYS_TEXT], longer[HOTKEYS_TEXT + 1];

	(void)state;
	hotkeys_sketch_init(&s, 8);
	memset(whole, 'k', sizeof whole - 1); /* the longest kept as it is */
	whole[sizeof whole - 1] = '\0';
	memset(longer, 'k', sizeof longer - 1); /* one more: cut to `whole` */
	longer[sizeof longer - 1] = '\0';
	hotkeys_sketch_add(&s, "users", whole, 0, 1);
	hotkeys_sketch_add(&s, "users", longer, 0, 1);
	hotkeys_sketch_add(&s, "users", whole, 0, 1);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.items[0].key, whole);
	assert_int_equal(s.items[0].count, 3);
}

static void test_aging_halves_the_sketch_and_recent_shard_load(void **state)
{
	static hotkeys_t h;
	route_plan_t p = one_shard_plan("users", "42", 1);
	uint64_t t0 = 1000000, period = (uint64_t)HOTKEYS_HALF_LIFE_S * 1000000u;

	(void)state;
	hotkeys_init(&h, 2);
	for (int i = 0; i < 7; i++)
		hotkeys_note(&h, &p);
	hotkeys_sketch_add(&h.sketch, "users", "1", 0, 1);
	hotkeys_sketch_add(&h.sketch, "users", "2", 0, 3); /* evicts "1": count 4, error 1 */
	hotkeys_age(&h, t0);                               /* starts the clock */
	hotkeys_age(&h, t0 + period - 1);                  /* not yet */
	assert_int_equal(find(&h.sketch, "users", "42")->count, 7);
	hotkeys_age(&h, t0 + period);
	assert_int_equal(find(&h.sketch, "users", "42")->count, 3);
	assert_int_equal(find(&h.sketch, "users", "2")->count, 2);
	assert_int_equal(find(&h.sketch, "users", "2")->error, 1); /* rounded up */
	assert_int_equal(h.shard_recent[1], 3);
	assert_int_equal(h.shard_statements[1], 7); /* the totals stay */
	/* a key that halves to nothing leaves */
	hotkeys_age(&h, t0 + 2 * period);
	hotkeys_age(&h, t0 + 3 * period);
	assert_int_equal(h.sketch.n, 0);
	assert_int_equal(h.shard_recent[1], 0);
	assert_int_equal(h.shard_statements[1], 7);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_skewed_stream_finds_its_hot_key_within_the_error),
	    cmocka_unit_test(test_capacity_is_never_exceeded),
	    cmocka_unit_test(test_index_and_groups_stay_right_through_evictions),
	    cmocka_unit_test(test_same_key_in_two_tables_is_two_entries),
	    cmocka_unit_test(test_two_workers_sketches_merge),
	    cmocka_unit_test(test_plans_count_per_shard_table_and_key),
	    cmocka_unit_test(test_table_counts_go_by_name_not_by_string),
	    cmocka_unit_test(test_aging_halves_the_sketch_and_recent_shard_load),
	    cmocka_unit_test(test_multi_row_insert_counts_each_distinct_key_once),
	    cmocka_unit_test(test_utf8_prefix_stops_at_bad_bytes_and_knows_a_cut_character),
	    cmocka_unit_test(test_keys_not_in_utf8_are_kept_in_hex),
	    cmocka_unit_test(test_a_name_at_an_address_used_again_is_its_own_table),
	    cmocka_unit_test(test_kept_and_cut_names_of_the_same_text_are_one_entry),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
