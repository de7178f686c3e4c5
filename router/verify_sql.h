/*
 * verify_sql.h — the SQL of the read-only consistency checks (run by
 * proxy/verify.c on each shard's primary). Pure: strings in, strings out.
 *
 * Reference tables are compared by ranges of a hash of the row's key, not by
 * ranges of the key itself, so that the ranges mean the same on every shard
 * whatever the key's type, collation or distribution, and whatever rows a
 * shard lacks or has too many:
 *
 *   key text  (t.pk)::text, ROW(t.a, t.b)::text for a composite key, and
 *             the whole row t::text for a table without a primary key
 *   key hash  hashtextextended(key text, 0) >> 32: a signed 32-bit number
 *   range     at level L (1..4) the key hash shifted right by 32 - 8*L bits:
 *             level 1 has 256 ranges, and each range of level L splits into
 *             256 of level L + 1 (the Merkle tree's fan-out)
 *   summary   per range: count(*) and the sums of hashtextextended(t::text,
 *             0) and (..., 1) over its rows: 128 bits, order-free, so that
 *             a level is one pass with a hash aggregate and no sort
 *   row       at the leaves: key hash, key text and md5(t::text)
 *
 * hashtextextended is the hash of PostgreSQL's hash partitioning, six times
 * cheaper than md5 here; its values are the same on every server of one
 * byte order (shards of mixed byte order would see every range differ).
 *
 * Row texts depend on the session's output settings (DateStyle, TimeZone,
 * extra_float_digits, ...): verify_sql_session pins them.
 */
#ifndef PGSHARD_ROUTER_VERIFY_SQL_H
#define PGSHARD_ROUTER_VERIFY_SQL_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"

/* The deepest level: 4 x 8 bits use up the 32-bit key hash. */
#define VERIFY_LEVELS 4
/* Ranges a range of the level above splits into. */
#define VERIFY_FANOUT 256
/* Rows a FETCH asks for. */
#define VERIFY_FETCH_ROWS 10000

/* Settings that make every shard print the same row the same way. */
extern const char verify_sql_session[];
/* One snapshot per shard for a table's whole check. */
extern const char verify_sql_begin[];
extern const char verify_sql_end[];
/* The next rows of the cursor the cursor statements below declare. */
extern const char verify_sql_fetch[];
extern const char verify_sql_close[];

/* Every later statement sees only pg_catalog's functions and operators (names are qualified). */
extern const char verify_sql_pin_path[];

/*
 * The catalog query for a table named as in the config (cfg_table_t.name):
 * one row, or none when the shard has no such table, of (the relation,
 * schema-qualified and quoted; its primary key's columns as "t.col, ..."
 * quoted, NULL without one; their number). A new heap string, NULL when
 * memory runs out.
 */
char *verify_sql_table(const char *cfg_name);

/* The key text of a row of alias t: see above. pk as verify_sql_table gave it, n_pk its count. */
char *verify_sql_key_expr(const char *pk, int n_pk);

/*
 * Level `level` (1..VERIFY_LEVELS) of the tree over relation rel: rows
 * (range, count, sum1, sum2) ordered by range, for the rows whose range of
 * level - 1 is one of parents (all rows at level 1, where n_parents is 0).
 */
char *verify_sql_level(const char *rel, const char *key_expr, int level, const int64_t *parents,
                       int n_parents);

/*
 * A cursor over the rows of the given ranges of `level`: (key hash, key
 * text, row md5, how many) ordered by key hash then key text bytewise, so
 * that the proxy can merge the shards' streams. Without a primary key a row
 * is its own key: rows are grouped and "how many" counts the copies.
 */
char *verify_sql_rows_cursor(const char *rel, const char *key_expr, bool has_pk, int level,
                             const int64_t *ranges, int n_ranges);

/*
 * A cursor over the shard keys (as text, of the map's key type) of table
 * rel's rows on `shard` that must be checked by the map: every row for a
 * hash map, only the rows outside the shard's own ranges for a range map
 * (the check pushed to the shard: bigint compared as integers, text with
 * COLLATE "C", which is bytewise, uuid as PostgreSQL's uuid, which is too).
 * key is the key column's name as the config writes it.
 */
char *verify_sql_placement_cursor(const char *rel, const char *key, const cfg_map_t *map,
                                  int shard);

/* The rows of rel: one count. */
char *verify_sql_count(const char *rel);

#endif
