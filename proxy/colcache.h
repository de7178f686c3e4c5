/*
 * colcache.h — the column order of tables, per database, as the catalog of
 * a shard gives it (colcache.c): for an INSERT ... VALUES into a sharded
 * table without a column list, which pgshard routes once it has written
 * the list in (router route_insert_columns).
 *
 * Each worker keeps its own cache; DDL routed by any worker makes every
 * cache stale (a column added, dropped or reordered changes the order), so
 * the next INSERT asks the catalog again. DDL made directly on the shards
 * is not seen: the order is read again after pgshard's next DDL or restart.
 */
#ifndef PGSHARD_PROXY_COLCACHE_H
#define PGSHARD_PROXY_COLCACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "proxy/proxy.h"

typedef struct colcache colcache_t;

void colcache_free(colcache_t *cc);
/* The columns of `table` (as the INSERT names it) in database db, or false. */
bool colcache_get(worker_t *w, const char *db, const char *table, char *const **cols, int *n);
/* DDL went through pgshard: every worker's cache is stale. */
void colcache_ddl(void);

/*
 * Fetching a table's columns: the caller runs the catalog query on the
 * client's current server as a swallowed statement (pending mark 'k'); its
 * rows come to colfetch_row, its end to colfetch_done, which fills the
 * worker's cache unless the query failed. 0, or -1 when memory runs out.
 */
int colfetch_start(client_t *c, const char *table);
void colfetch_row(client_t *c, const uint8_t *body, size_t len);
void colfetch_failed(client_t *c);
void colfetch_done(client_t *c);
void colfetch_free(client_t *c);

#endif
