/*
 * gather.h — how a SELECT on several shards runs, and how the proxy makes
 * the one answer of their answers (scatter-gather).
 *
 * route_statement says ROUTE_MERGE_GATHER for a SELECT on several shards
 * whose rows the proxy must do more with than concatenate: ORDER BY,
 * LIMIT/OFFSET, aggregates, GROUP BY, HAVING, DISTINCT. route_gather then
 * rewrites it into a gather plan, in one of two modes:
 *
 * Streaming (finalize == false): each shard runs shard_sql, which returns
 * its rows sorted by the keys (its ORDER BY is the statement's own), with
 * LIMIT n + m when the statement has LIMIT n OFFSET m. The proxy merges
 * the sorted streams (k-way, holding one row per shard), skips `offset`
 * rows, sends `limit` rows, and drops the `hidden` columns at the end of
 * each row: sort keys the select list does not hold, added by the rewrite.
 * Without keys the streams are concatenated.
 *
 *   SELECT name FROM users ORDER BY created DESC LIMIT 10 OFFSET 5
 *   shard: SELECT name, created AS pgshard_k0 FROM users ORDER BY created DESC LIMIT 15
 *   keys: hidden column 0, DESC NULLS FIRST; offset 5, limit 10, hidden 1
 *
 * A key is a select-list column when the ORDER BY item names one (by
 * position, by output name, or as the same expression) and no `*` comes
 * before that column; otherwise a hidden column. A negative LIMIT or
 * OFFSET stays in shard_sql as written, for PostgreSQL to refuse; the plan
 * then has offset 0 and limit -1. Text sorts in the database's collation
 * unless the key says COLLATE "C" (or "POSIX"); other collations are
 * refused. A column declared with a collation of its own is not seen here:
 * the proxy merges it in the database's.
 *
 * Finalizing (finalize == true): aggregates, GROUP BY, HAVING, DISTINCT.
 * Each shard runs shard_sql, which returns partial results: one row per
 * group (the group's expressions and each aggregate's partial state:
 * count -> count, sum -> sum, avg -> sum and count, min/max, bool_and/
 * bool_or, DISTINCT arguments as extra grouping columns). Its columns are
 * named c0, c1, ... The proxy holds every partial row (up to its memory
 * cap; then 54000), and runs the final query, the parts joined, on one
 * shard; that query's answer is the answer. The final query is the
 * statement itself with FROM replaced by the held rows, WHERE dropped
 * (the shards applied it), GROUP BY over the held group columns, each
 * aggregate replaced by the aggregate of its partials (count(*) ->
 * CAST(sum(c1) AS <type of c1>), avg(x) -> CAST(sum(c2) AS <avg type>) /
 * sum(c3)), and every output column named as
 * PostgreSQL would name the original. HAVING, expressions over aggregates
 * (round(avg(x), 2)), ORDER BY, DISTINCT and LIMIT/OFFSET are then
 * PostgreSQL's own work, with its types, scales and collation. LIMIT $n and
 * OFFSET $n are literals there (text values as '...', binary integers as
 * numbers). Other parameters there (HAVING sum(x) > $1, sum(x) * $2 in the
 * select list, ORDER BY over aggregates) stay parameters, numbered again
 * from $1 (final_params), and the proxy binds the client's values to them;
 * the shard query reads them too, in a HAVING that is always true, so that
 * the client's Bind fits it with the same types. DISTINCT without aggregates
 * ships the select list (SELECT DISTINCT on each shard), DISTINCT ON its
 * expressions and ORDER BY too (each shard keeps its first row of each).
 * A call of a function the router does not know as built-in also goes into
 * each shard's WHERE as `true OR f(...) IS NULL`, never evaluated, so that
 * PostgreSQL refuses it there if it is an aggregate.
 *
 *   SELECT grp, avg(price) FROM items GROUP BY grp HAVING count(*) > 1 ORDER BY 2 DESC
 *   shard: SELECT grp AS c0, sum(price) AS c1, count(price) AS c2, count(*) AS c3
 *          FROM items GROUP BY grp
 *   final: SELECT pgshard_p.c0 AS grp, sum(pgshard_p.c1)::<AVG c1> / sum(pgshard_p.c2)
 *          AS avg FROM <ROWS pgshard_p> GROUP BY pgshard_p.c0
 *          HAVING sum(pgshard_p.c3)::<TYPE c3> > 1 ORDER BY 2 DESC
 *
 * Pure, like route.h.
 */
#ifndef PGSHARD_ROUTER_GATHER_H
#define PGSHARD_ROUTER_GATHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "router/route.h"

/* Which collation orders a text sort key. */
typedef enum gather_coll {
	GATHER_COLL_DEFAULT, /* the database's (pg_database.datcollate) */
	GATHER_COLL_C,       /* COLLATE "C" or "POSIX": bytes */
} gather_coll_t;

typedef struct gather_key {
	bool hidden;      /* column counts from the first hidden column, else from the first */
	int column;       /* 0-based */
	bool desc;        /* DESC */
	bool nulls_first; /* as written, or PostgreSQL's default (LAST for ASC, FIRST for DESC) */
	gather_coll_t coll;
} gather_key_t;

typedef enum gather_part_kind {
	GATHER_PART_TEXT, /* text: SQL as is */
	GATHER_PART_ROWS, /* the held rows as a relation named `text`, with columns c0, c1, ...:
	                     (VALUES ('..'::type, ...), ...) AS text(c0, c1, ...) */
	GATHER_PART_TYPE, /* the name of held column `column`'s type (int8, numeric, ...) */
	GATHER_PART_AVG,  /* the type avg() divides in for held sum column `column`: numeric
	                     when it is int8 or numeric, float8 for float4/float8, interval
	                     for interval (the final query divides it by the numeric sum of
	                     the counts) */
} gather_part_kind_t;

typedef struct gather_part {
	gather_part_kind_t kind;
	char *text;
	int column;
} gather_part_t;

typedef struct gather_plan {
	char *shard_sql; /* what each shard runs */
	bool probed;     /* its WHERE makes the shards refuse a call of an aggregate the router
	                    does not know (user-defined): PostgreSQL's 42803 "aggregate
	                    functions are not allowed in WHERE" means that */

	/* streaming */
	int hidden;         /* columns at the end of each shard row the client does not get */
	gather_key_t *keys; /* the order of each shard's rows; none: concatenate */
	int n_keys;
	int64_t offset; /* rows to skip after merging */
	int64_t limit;  /* rows to send after those; -1: all */

	/* finalizing (offset 0, limit -1, no keys: the final query does it all) */
	bool finalize;
	gather_part_t *parts; /* the final query, in order; the proxy writes TEXT as is */
	int n_parts;
	int *final_params; /* the final query's parameters: its $k+1 is the client's parameter
	                      final_params[k], bound with the client's value, format and Parse
	                      type (0 leaves it to the final query's context, which types it as
	                      the statement does); NULL when it reads none */
	int n_final_params;

	/* DECLARE name CURSOR FOR the SELECT: streaming, shard_sql declares a SCROLL cursor of
	   that name on each shard (the proxy fetches from them and gives back with MOVE BACKWARD
	   what it did not send); finalizing, the final query declares the client's cursor */
	char *cursor; /* its name as PostgreSQL folded it; NULL: not a DECLARE */
	bool cursor_hold;

	int refs; /* a plan the plan cache shares (route_gather_cached): references to it,
	             see gather_plan_unref; 0 for a plan filled in the caller's own struct */
} gather_plan_t;

/*
 * The gather plan of a statement route_statement planned as
 * ROUTE_MERGE_GATHER (parsed once: route_parse, then route_gather_parsed), with the same parameters
 * (LIMIT $1 and OFFSET $2 take their values from them: text, or binary int2/int4/int8). Parameters
 * elsewhere stay $n in shard_sql, to be bound on each shard as the client
 * bound them; shard_sql reads every parameter the statement reads, so that
 * the client's Bind fits it (a LIMIT/OFFSET parameter in a no-op WHERE
 * conjunct, `($1::bigint IS NULL OR true)`, typed as LIMIT would type it).
 *
 * It routes the statement first, and refuses what route_statement refuses,
 * with the same message: route_statement plans ROUTE_MERGE_GATHER only for
 * what this plans. Returns 0 with *out filled, or -1 with *out empty, a
 * message in err and its SQLSTATE in sqlstate: "0A000" for a construct the
 * merge cannot do correctly (the message says what would work), "53200"
 * when memory runs out (or route_statement's own SQLSTATE). A LIMIT/OFFSET
 * parameter without a value is refused (0A000).
 */
int route_gather(const route_ctx_t *ctx, const char *sql, const route_param_t *params, int n_params,
                 gather_plan_t *out, char sqlstate[6], char *err, size_t errlen);

/*
 * route_gather on a statement already parsed (route_parse), which is
 * neither parsed again nor changed: the plan cache's way to plan a gather
 * from the parse it keeps. lits: as route_analyze takes them (may be
 * NULL). plan: route_analyze's plan of p with the same parameters and
 * literals, when the caller has it (NULL: analysed here), for the same
 * refusals as route_gather's.
 */
int route_gather_parsed(const route_ctx_t *ctx, const route_parsed_t *p,
                        const route_param_t *params, int n_params, const route_literals_t *lits,
                        const route_plan_t *plan, gather_plan_t *out, char sqlstate[6], char *err,
                        size_t errlen);

/* Frees what a plan holds and empties it; twice is harmless. */
void gather_plan_free(gather_plan_t *p);

/* A shared plan (malloc'd, refs counted): one more reference, and dropping one (the last
 * frees it). Not thread-safe: a plan stays with the worker thread whose cache made it. */
gather_plan_t *gather_plan_ref(gather_plan_t *p);
void gather_plan_unref(gather_plan_t *p);

#endif
