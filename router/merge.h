/*
 * merge.h — combining the answers of several shards into one.
 *
 * The proxy runs a statement on several shards and must answer as one
 * PostgreSQL would. This module holds the parts of that which are plain
 * data: CommandComplete tags whose row counts add up ("UPDATE 3" and
 * "UPDATE 4" make "UPDATE 7"), and the per-shard rows of count() columns
 * that add up column by column.
 *
 * Pure: strings and bytes in, strings and numbers out.
 */
#ifndef PGSHARD_ROUTER_MERGE_H
#define PGSHARD_ROUTER_MERGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct merge_tag {
	char prefix[64]; /* the tag without its count ("INSERT 0", "UPDATE"), or the whole tag */
	uint64_t count;
	bool counted; /* the tag ends in a row count */
	bool have;    /* a tag was seen */
} merge_tag_t;

/* Add one shard's tag. With `first_only` (copies of one table) the first tag is the
 * answer and later ones are ignored; otherwise counts add up. */
void merge_tag_add(merge_tag_t *m, const char *tag, bool first_only);
/* The merged tag ("UPDATE 7"), truncated to outlen. */
void merge_tag_format(const merge_tag_t *m, char *out, size_t outlen);

typedef struct merge_counts {
	int64_t *sums;
	int n; /* columns; -1 until the first row */
} merge_counts_t;

/* Add a DataRow body (int16 count, then int32 length + text bytes per column) of
 * count() values. -1 when the row is malformed, has another number of columns
 * than the first, holds a non-integer or NULL, or memory runs out. */
int merge_counts_add(merge_counts_t *m, const uint8_t *body, size_t len);
void merge_counts_free(merge_counts_t *m);

#endif
