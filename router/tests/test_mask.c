/*
 * test_mask.c — masking (router/mask.h), pinned where it takes a shortcut.
 *
 * A text of a known shape is masked without lexing (mask_text's shapes).
 * The promise is that this changes nothing: every field the plan cache
 * reads (the key, its hash, the literals' values, kinds and first number)
 * is what lexing the text alone makes. So each test masks texts twice: in
 * one mask_t that keeps its shapes from text to text, and in a fresh one,
 * and compares. The texts are made to meet shapes: the same words around
 * literals of every kind and spelling, including those a shape must refuse
 * (a literal of another kind, an integer past int4, a string with a quote
 * inside, a literal glued to what follows).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/mask.h"

/* What lexing alone makes of sql, compared field by field with shaped's. */
static void assert_same_as_lexing(mask_t *shaped, const char *sql)
{
	mask_t fresh;
	size_t len = strlen(sql);

	memset(&fresh, 0, sizeof fresh);
	assert_int_equal(mask_text(shaped, sql, len), 0);
	assert_int_equal(mask_text(&fresh, sql, len), 0);
	if (shaped->key_len != fresh.key_len || memcmp(shaped->key, fresh.key, fresh.key_len) != 0)
		fail_msg("key of \"%s\": \"%.*s\" shaped, \"%.*s\" lexed", sql,
		         (int)shaped->text_len, shaped->key, (int)fresh.text_len, fresh.key);
	assert_int_equal(shaped->text_len, fresh.text_len);
	assert_true(shaped->hash == fresh.hash);
	assert_int_equal(shaped->n, fresh.n);
	if (fresh.n > 0)
		assert_int_equal(shaped->first, fresh.first);
	for (int i = 0; i < fresh.n; i++) {
		if (shaped->params[i].len != fresh.params[i].len ||
		    memcmp(shaped->params[i].data, fresh.params[i].data,
		           (size_t)fresh.params[i].len) != 0)
			fail_msg("literal %d of \"%s\": \"%.*s\" shaped, \"%.*s\" lexed", i, sql,
			         (int)shaped->params[i].len, (const char *)shaped->params[i].data,
			         (int)fresh.params[i].len, (const char *)fresh.params[i].data);
		assert_int_equal(shaped->kinds[i], fresh.kinds[i]);
		assert_int_equal(shaped->params[i].format, 0);
	}
	mask_free(&fresh);
}

/* Literal spellings: each of these can stand where any other did. */
static const char *const literals[] = {
    "5",       "0",         "007",  "2147483647",  "2147483648", "99999999999",
    "-5",      "- 5",       "-0",   "-2147483647", "1.5",        "1e3",
    "1.",      ".5",        "5abc", "5.x",         "''",         "'x'",
    "'it''s'", "'a\\'",     "'é'",  "'a'\n'b'",    "E'x'",       "'-5'",
    "'5'",     "'unclosed", "$1",   "5::int",      "5 ",         "--5\n5",
    "/*5*/5",  "'a'--c\n",  "x",    "-",           "- -5",       "5..6",
};

/* Texts with @ where a literal goes. */
static const char *const shapes[] = {
    "SELECT abalance FROM pgbench_accounts WHERE aid = @;",
    "UPDATE pgbench_accounts SET abalance = abalance + @ WHERE aid = @;",
    ("INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (@, @, @, @, "
     "CURRENT_TIMESTAMP);"),
    "select * from t where a = @ and b = @",
    "select @",
    "select @, @",
    "select x - @ from t",
    "select (@) - @",
    "select f(@,@) from t where name = @ or id in (@, @, @)",
    "select @ from t limit @ offset @",
    "select varchar(@), @",
    "select * from t where a = @; select * from t where b = @",
    "select * from t where a = $1 and b = @",
    "select '@'",
    "with x as (select @) select * from x where y = @",
    "set search_path = @",
    "select @@",
    "select -@",
    "select @-@",
    "select a+@",
    "SELECT @ -- comment\n",
};

/* shape with each @ replaced by literals[pick[i]]. */
static void fill(char *out, size_t cap, const char *shape, const int *pick)
{
	size_t k = 0;
	int i = 0;

	for (const char *p = shape; *p != '\0'; p++) {
		const char *piece = *p == '@' ? literals[pick[i++]] : NULL;
		size_t n = piece != NULL ? strlen(piece) : 1;

		assert_true(k + n < cap);
		memcpy(out + k, piece != NULL ? piece : p, n);
		k += n;
	}
	out[k] = '\0';
}

/* Every shape with every literal in each place, the others kept: the same as lexing. */
static void test_every_literal_in_every_place(void **state)
{
	const int n_lits = (int)(sizeof literals / sizeof *literals);
	mask_t shaped;

	(void)state;
	memset(&shaped, 0, sizeof shaped);
	for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
		int places = 0, pick[8];
		char sql[512];

		for (const char *p = shapes[s]; *p != '\0'; p++)
			places += *p == '@';
		for (int base = 0; base < 3; base++)
			for (int place = 0; place < places; place++)
				for (int l = 0; l < n_lits; l++) {
					for (int i = 0; i < places; i++)
						pick[i] = (base * 7 + i) % 3 == 0 ? 0
						          : base == 1             ? 17
						                                  : 1;
					pick[place] = l;
					fill(sql, sizeof sql, shapes[s], pick);
					assert_same_as_lexing(&shaped, sql);
				}
	}
	/* most texts had a shape seen before: the shortcut was taken, and checked */
	assert_true(shaped.shape_hits > 1000);
	mask_free(&shaped);
}

/* Random literals in random shapes, interleaved, so that shapes are evicted and made again. */
static void test_random_texts(void **state)
{
	/* integers, negative ones, plain strings: the literals a shape takes, 3 of each */
	static const int of_kind[3][3] = {{0, 2, 3}, {6, 8, 9}, {16, 17, 20}};
	const int n_lits = (int)(sizeof literals / sizeof *literals);
	unsigned seed = 12345;
	mask_t shaped;

	(void)state;
	memset(&shaped, 0, sizeof shaped);
	for (int round = 0; round < 20000; round++) {
		int pick[8];
		char sql[512];
		size_t s;

		seed = seed * 1103515245u + 12345u;
		s = (seed >> 8) % (sizeof shapes / sizeof *shapes);
		for (int i = 0; i < 8; i++) {
			seed = seed * 1103515245u + 12345u;
			/* mostly a literal of the kind this place has in this shape */
			pick[i] = (seed >> 9) % 4 == 0
			              ? (int)((seed >> 12) % (unsigned)n_lits)
			              : of_kind[(s + (size_t)i) % 3][(seed >> 12) % 3];
		}
		fill(sql, sizeof sql, shapes[s], pick);
		assert_same_as_lexing(&shaped, sql);
	}
	assert_true(shaped.shape_hits > 5000);
	mask_free(&shaped);
}

/* The same words with a literal of another kind are another key: the shape is not used. */
static void test_a_literal_of_another_kind_is_lexed(void **state)
{
	mask_t m;
	uint64_t int_hash;

	(void)state;
	memset(&m, 0, sizeof m);
	assert_int_equal(mask_text(&m, "select * from t where a = 5", 27), 0);
	int_hash = m.hash;
	assert_int_equal(mask_text(&m, "select * from t where a = 6", 27), 0);
	assert_int_equal(m.shape_hits, 1);
	assert_true(m.hash == int_hash);
	assert_string_equal(m.key, "select * from t where a = $1");
	assert_int_equal(m.params[0].len, 1);
	assert_memory_equal(m.params[0].data, "6", 1);
	/* a string, a float, an integer past int4: other keys, lexed */
	assert_int_equal(mask_text(&m, "select * from t where a = 'x'", 29), 0);
	assert_int_equal(m.shape_hits, 1);
	assert_true(m.hash != int_hash);
	assert_int_equal(mask_text(&m, "select * from t where a = 1.5", 29), 0);
	assert_int_equal(mask_text(&m, "select * from t where a = 2147483648", 36), 0);
	assert_int_equal(m.shape_hits, 1);
	assert_int_equal(m.kinds[0], 'f');
	mask_free(&m);
}

/*
 * The set of a text is read eight bytes at a time up to its first literal:
 * wherever that falls in a word, and whatever the literals' lengths, a text
 * of a shape seen before finds the shape (no lexing).
 */
static void test_shape_found_wherever_the_first_literal_falls(void **state)
{
	static const char *const heads[] = {
	    "select ",
	    "select  ",
	    "select   ",
	    "select    ",
	    "select     ",
	    "select      ",
	    "select       ",
	    "select        ",
	    "select         ",
	    "select * from t where a = ",
	    "select abalance from pgbench_accounts where aid = ",
	};
	static const char *const values[] = {"5", "12345", "2147483647", "0"};

	(void)state;
	for (size_t h = 0; h < sizeof heads / sizeof *heads; h++) {
		mask_t m;

		memset(&m, 0, sizeof m);
		for (size_t v = 0; v < sizeof values / sizeof *values; v++) {
			char sql[128];
			int n = snprintf(sql, sizeof sql, "%s%s and 1 = 1", heads[h], values[v]);

			assert_int_equal(mask_text(&m, sql, (size_t)n), 0);
			assert_int_equal(m.shape_hits, v);
			assert_int_equal(m.params[0].len, strlen(values[v]));
		}
		mask_free(&m);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_literal_in_every_place),
	    cmocka_unit_test(test_random_texts),
	    cmocka_unit_test(test_a_literal_of_another_kind_is_lexed),
	    cmocka_unit_test(test_shape_found_wherever_the_first_literal_falls),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
