/*
 * route.h — statement + parameters + config in, plan out.
 *
 * The router parses a statement with PostgreSQL's own grammar (libpg_query),
 * finds the tables it names, and decides where it must run:
 *
 *   ROUTE_DEFAULT   no sharded or reference table: the default shard
 *                   (catalog queries, SELECT version(), SHOW, SET, ...)
 *   ROUTE_SHARDS    a sharded table: the shards that can hold matching rows
 *                   (one for key = value; several for IN, OR, ranges; all
 *                   shards of the map when the statement names no usable key)
 *   ROUTE_ANY       only reference tables, read: any one shard
 *   ROUTE_ALL       DDL on sharded or reference tables, writes to reference
 *                   tables: every shard
 *   ROUTE_REFUSE    cannot be run correctly: SQLSTATE 0A000 and a message that
 *                   says what to change (tables on different maps joined, or
 *                   joined on other columns than their keys, an UPDATE of the
 *                   key column that may move the row, an INSERT without the
 *                   key column, ...)
 *
 * A leading comment decides for statements the router cannot (or should
 * not) decide itself; it applies to the whole query string:
 *
 *   /\* pgshard: shard=N *\/     ROUTE_SHARDS {N}; refused when there is no shard N
 *   /\* pgshard: key=VALUE *\/   as if `key = VALUE` on the map of the statement's
 *                              sharded tables ('quoted' values allowed)
 *   /\* pgshard: all *\/         ROUTE_ALL: every shard (DROP INDEX, CREATE FUNCTION, ...)
 *
 * Any other text after "pgshard:" is refused, so that a typo does not route
 * silently by the statement instead.
 *
 * Pure: no sockets, no globals; cmocka tests run it on plain strings.
 */
#ifndef PGSHARD_ROUTER_ROUTE_H
#define PGSHARD_ROUTER_ROUTE_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "router/shardmap.h"

typedef enum route_kind {
	ROUTE_DEFAULT,
	ROUTE_SHARDS,
	ROUTE_ANY,
	ROUTE_ALL,
	ROUTE_REFUSE,
} route_kind_t;

/* One Bind parameter as the client sent it. */
typedef struct route_param {
	const uint8_t *data; /* NULL for SQL NULL */
	int32_t len;
	int16_t format;    /* 0 text, 1 binary */
	uint32_t type_oid; /* from Parse, 0 when unspecified */
} route_param_t;

typedef struct route_plan {
	route_kind_t kind;
	shard_set_t shards; /* ROUTE_SHARDS, ROUTE_ALL: where; ROUTE_ANY/DEFAULT: the one shard */
	bool is_write;      /* INSERT/UPDATE/DELETE/COPY FROM/DDL */
	bool is_ddl;
	bool split_insert;   /* a multi-row INSERT whose rows go to different shards */
	const char *map;     /* ROUTE_SHARDS: the name of the map that decided */
	int key_column;      /* INSERT ... VALUES, COPY FROM: position of the key column in the
	                        column list; -1 otherwise, and when a COPY names no columns (the
	                        table's own column order then decides) */
	bool params_missing; /* a parameter the route depends on was not given: the plan
	                        assumed any value (all shards of the map); route again with it */
	char reason[512]; /* why, for people: "orders.user_id = 42 -> shard 1 (hash map users)" */
	char error[512];  /* ROUTE_REFUSE: the message after "pgshard: " */
} route_plan_t;

/* The config with its maps built, shared by every routing call. */
typedef struct route_ctx {
	const cfg_t *cfg;
	shard_map_t *maps; /* parallel to cfg->maps */
} route_ctx_t;

/* 0, or -1 with a message in err. */
int route_ctx_init(route_ctx_t *ctx, const cfg_t *cfg, char *err, size_t errlen);
void route_ctx_free(route_ctx_t *ctx);

/*
 * Plan one statement (a query string may hold several; each must route the
 * same way, or the whole string is refused). params may be NULL when
 * n_params is 0; a parameter the statement uses but that is not given (a
 * Parse without Bind, or --route) counts as an unknown value.
 * Returns 0 with *out filled, -1 on out-of-memory.
 */
int route_statement(const route_ctx_t *ctx, const char *sql, const route_param_t *params,
                    int n_params, route_plan_t *out);

const char *route_kind_name(route_kind_t k);

#endif
