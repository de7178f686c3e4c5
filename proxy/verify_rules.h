/*
 * verify_rules.h — the decisions of the consistency checks (proxy/verify.c):
 * which ranges of the tree differ across shards, whether to split them or
 * fetch their rows, and what a row's copies on the shards say. Pure: plain
 * data in, plain data out, tested by proxy/tests/test_verify_rules.c.
 */
#ifndef PGSHARD_PROXY_VERIFY_RULES_H
#define PGSHARD_PROXY_VERIFY_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A level's differing ranges are split further only when there are at most this many. */
#define VERIFY_MAX_SPLIT 64
/* Default of --leaf-rows: differing ranges holding at most this many rows are fetched. */
#define VERIFY_LEAF_ROWS 10000

/* One range of one shard's level (verify_sql_level's row). */
typedef struct verify_range {
	int64_t range;
	int64_t count;
	const char *sum1, *sum2; /* numeric sums, compared as text */
} verify_range_t;

/*
 * The ranges that differ across n_shards shards, each shard's ranges sorted
 * by range: a range some shard lacks (no rows there), or whose count or sums
 * are not the same on all. Stores them in out (room for the sum of n[])
 * in order and returns how many; *rows is the sum, over them, of the largest
 * count any shard has: the rows fetching them all would bring per shard.
 */
int verify_ranges_diff(const verify_range_t *const *shards, const int *n, int n_shards,
                       int64_t *out, int64_t *rows);

typedef enum verify_next {
	VERIFY_NEXT_DONE,  /* nothing differs */
	VERIFY_NEXT_SPLIT, /* look at the differing ranges one level deeper */
	VERIFY_NEXT_FETCH, /* fetch their rows and compare them row by row */
} verify_next_t;

/*
 * What to do with a level's n differing ranges that hold `rows` rows: fetch
 * when they are few rows (at most leaf_rows), at the deepest level, or too
 * many ranges to split (then so much differs that one pass over the rows
 * costs less than more levels, each a pass over the table); split otherwise.
 */
verify_next_t verify_next(int level, int n, int64_t rows, int64_t leaf_rows);

/* One shard's copy of a row (a key) of a reference table. */
typedef struct verify_row {
	int shard;
	bool present;
	const char *hash; /* md5 of the row; "" for a table without a primary key */
	int64_t copies;   /* 1 with a primary key; without, how many equal rows */
} verify_row_t;

/*
 * What differs about one key across the shards, for people, into buf:
 * "missing on shard 1 (shards 0, 2 agree)", "extra on shard 2", "changed on
 * shard 0 (shards 1, 2 agree)", "2 copies on shard 1 (1 on shards 0, 2)",
 * or, when no version is held by more shards than any other, "shards
 * disagree: ...". false (and buf "") when every shard holds the same.
 */
bool verify_row_describe(const verify_row_t *rows, int n, char *buf, size_t size);

/*
 * s on one line for a report, into buf: backslash, control characters and
 * DEL escaped (\n, \t, \\, \xHH), cut to fit with "..." at the end.
 */
void verify_escape(const char *s, char *buf, size_t size);

#endif
