/*
 * retorder.h — the rows a split multi-row INSERT ... RETURNING returns,
 * answered in the order of its VALUES list, as one PostgreSQL answers them.
 *
 * A multi-row INSERT whose rows go to several shards runs as one INSERT per
 * shard (route_split_insert), and the shards answer at their own pace.
 * Applications match the returned rows to their input rows by position
 * (psycopg2's execute_values(..., fetch=True), node-postgres, SQLAlchemy's
 * insertmanyvalues), so the fan-out holds every returned row until all
 * shards are done and then walks the VALUES list: the k-th row of the
 * list that went to a shard is that shard's k-th returned row. That holds
 * only while each shard returns one row per row it was given; when one
 * returns another number (ON CONFLICT DO NOTHING skipped a row, ON
 * CONFLICT DO UPDATE ... WHERE, a trigger that drops rows) the positions
 * cannot be known, and the rows go out shard by shard, in the order each
 * shard returned them, as before. Pure: bytes in, bytes out.
 */
#ifndef PGSHARD_PROXY_RETORDER_H
#define PGSHARD_PROXY_RETORDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "router/route.h"

typedef struct retorder retorder_t;

/*
 * The order of splits' rows for members that run on member_shard[0..n_members):
 * 0 with *out set, or with *out NULL when there is nothing to reorder (no
 * RETURNING: the splits have no row positions; or a split's shard has no
 * member); -1 when memory runs out.
 */
int retorder_new(const route_split_t *splits, int n_splits, const int *member_shard, int n_members,
                 retorder_t **out);
void retorder_free(retorder_t *r);

/* Hold a whole message (a DataRow) member sent. 0, or -1 when memory runs out. */
int retorder_hold(retorder_t *r, int member, const uint8_t *msg, size_t len);
/* The bytes held so far (for the merge_memory cap). */
size_t retorder_held(const retorder_t *r);
/* Drop what is held (an error ends the result). */
void retorder_drop(retorder_t *r);

typedef void (*retorder_out_fn)(void *arg, const uint8_t *msg, size_t len);

/*
 * Every member is done: give out every held row, in VALUES order when each
 * member returned as many rows as it was given (true), else member by
 * member in the order they returned them (false). Held rows are dropped.
 */
bool retorder_emit(retorder_t *r, retorder_out_fn out, void *arg);

#endif
