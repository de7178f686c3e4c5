/*
 * verify.h — read-only consistency checks of the data on the shards
 * (`pgshard -c FILE --check-reference|--check-placement [TABLE ...]`).
 *
 * Reference tables: each copy is compared across the shards' primaries by
 * a Merkle-style tree of hashed key ranges (router/verify_sql.h), drilling
 * only into the ranges that differ, and the differing rows are named.
 * Sharded tables: every row's shard key is checked against the table's map;
 * rows stored on a shard the map does not assign them to are named.
 *
 * Memory is bounded whatever the tables' size: one level of range
 * summaries (at most VERIFY_MAX_SPLIT x VERIFY_FANOUT ranges per shard) and
 * one FETCH of VERIFY_FETCH_ROWS rows per shard are held at a time.
 *
 * Blocking libpq, one connection per shard primary, each table checked
 * inside one read-only REPEATABLE READ transaction per shard. Meant for
 * the command line; an admin console command can call it with its own FILE.
 */
#ifndef PGSHARD_PROXY_VERIFY_H
#define PGSHARD_PROXY_VERIFY_H

#include <stdint.h>
#include <stdio.h>

#include "config/config.h"

typedef enum verify_kind {
	VERIFY_REFERENCE, /* reference tables: the same rows on every shard */
	VERIFY_PLACEMENT, /* sharded tables: each row on the shard its key maps to */
} verify_kind_t;

typedef struct verify_opts {
	verify_kind_t kind;
	char *const *tables; /* as named in the config; none: every table of the kind */
	int n_tables;
	const char *dbname; /* NULL: each shard conninfo's own */
	int64_t leaf_rows;  /* differing ranges with at most this many rows are fetched */
	FILE *out;          /* the report: one line per differing or misplaced row */
	FILE *err;          /* why a check could not run */
} verify_opts_t;

/* The exit status: 0 nothing differs, 1 differences were found, 2 a check could not run. */
#define VERIFY_CLEAN     0
#define VERIFY_DIFFERENT 1
#define VERIFY_ERROR     2

int verify_run(const cfg_t *cfg, const verify_opts_t *opts);

#endif
