/*
 * gather_int.h — what the gather planner gives the rest of the router: the
 * check that route_statement runs before it plans ROUTE_MERGE_GATHER, and
 * the planning itself, which route_gather runs once route_statement agrees;
 * and what the planner's own files share (the state of one planning call,
 * and each file's functions that the files above it use).
 *
 * Not part of the router's interface: only the router's own .c files include it.
 */
#ifndef PGSHARD_ROUTER_GATHER_INT_H
#define PGSHARD_ROUTER_GATHER_INT_H

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>
#include <stdbool.h>
#include <stddef.h>

#include "router/gather.h"
#include "router/route.h"
#include "router/tree.h"

/* gather.c's answers to gather_check */
enum {
	GATHER_CHECK_OK = 0,
	GATHER_CHECK_REFUSED = -1, /* err says why */
	GATHER_CHECK_NOMEM = -2,
};

/*
 * Whether route_gather can plan the top-level SELECT stmt (a SELECT node of
 * a tree route.c parsed), with the parameters route_analyze has: the plan
 * cache's literals (lits, may be NULL) count as the constants they stand
 * for. A LIMIT/OFFSET parameter that is not given does not refuse it here:
 * the proxy plans the gather with the values. The message in err names
 * what is not supported; the caller adds what would work.
 */
int gather_check(const PgQuery__Node *stmt, const route_param_t *params, int n_params,
                 const route_literals_t *lits, char *err, size_t errlen);

/*
 * Whether the select list of s (not its subqueries) calls a function the
 * router does not know as PostgreSQL's own: were it a user-defined
 * aggregate, each shard would answer one row and concatenating them would
 * be wrong, so such a SELECT on several shards goes through a gather plan,
 * which makes the shards refuse an aggregate there (see probe_unknown).
 */
bool gather_calls_unknown(const PgQuery__SelectStmt *s);

/*
 * The gather plan of the statement of tree (a parse route.c made, which
 * is not changed: the planner rewrites a copy), a SELECT that
 * route_analyze has already found to run on several shards with
 * ROUTE_MERGE_GATHER (route_gather_parsed, see route.h, checks that
 * first); lits (may be NULL) are the plan cache's literals, put back as
 * the constants they stand for. 0, or -1 with a SQLSTATE and a message.
 */
int gather_plan_make(const PgQuery__ParseResult *tree, const route_param_t *params, int n_params,
                     const route_literals_t *lits, gather_plan_t *out, char sqlstate[6], char *err,
                     size_t errlen);

/* ---- what the planner's files share (gather_stream.c, gather_final.c, gather.c) ---- */

#define RESERVED   "pgshard_"
#define ROWS_REL   "pgshard_rows"
#define ROWS_ALIAS "pgshard_p"
#define TYPE_MARK  "pgshard_type_"
#define AVG_MARK   "pgshard_avg_"
#define MAX_PARAM  65535

/* What a shard returns, column by column (finalizing). */
typedef enum ship_kind {
	SHIP_GROUP, /* a group expression: the shards' and the final query's GROUP BY */
	SHIP_DARG,  /* a DISTINCT aggregate's argument: the shards' GROUP BY only */
	SHIP_PART,  /* a partial aggregate */
} ship_kind_t;

typedef struct ship {
	ship_kind_t kind;
	PgQuery__Node *expr;
} ship_t;

typedef struct gather {
	tree_t t; /* the arena, and whether refused (t.err says why) or out of memory */

	const route_param_t *params;
	int n_params;
	bool check; /* gather_check: nothing is written, a missing LIMIT value is fine */

	PgQuery__SelectStmt *s;
	const char **names; /* each target's output name (NULL for `*`) */

	/* finalizing */
	ship_t *ship;
	int n_ship, cap_ship;
	bool distinct_mode; /* no aggregates: DISTINCT or DISTINCT ON */
	bool zero_if_empty; /* no GROUP BY but DISTINCT aggregates: a shard may return no row */
	PgQuery__Node **sh_distinct, **sh_sort; /* the shard's DISTINCT ON and ORDER BY */
	PgQuery__Node *probes;    /* calls that must not be aggregates: see probe_unknown */
	PgQuery__Node *sh_having; /* the shard's HAVING: the final query's parameters, typed
	                             there as PostgreSQL types them (see keep_param_types) */
	int *final_params;        /* the final query's $k+1 is the client's final_params[k] */
	int n_final_params, cap_final_params;
	const char *in_unknown; /* fin_expr: inside a call of this function not known */
} gather_t;

/* A string of the statement that could be taken for one of the rewrite's placeholders. */
typedef struct names_scan {
	bool literals; /* constants too (their text is in the final query) */
	const char *found;
} names_scan_t;

typedef struct aggs_scan {
	bool agg, distinct_agg, window;
} aggs_scan_t;

/* ---- gather_stream.c ---- */

void gather_aggs_slot(tree_t *t, PgQuery__Node **slot, void *arg);
void gather_init(gather_t *g);
bool gather_is_aggregate(const PgQuery__FuncCall *f);
PgQuery__Node *gather_colref(gather_t *g, int k);
const route_param_t *gather_param_of(const gather_t *g, int number);
int gather_plan_streaming(gather_t *g, gather_plan_t *out);
void gather_refuse_common(gather_t *g, const PgQuery__SelectStmt *s, const aggs_scan_t *a);
void gather_scan_reserved(gather_t *g, const ProtobufCMessage *m, names_scan_t *ns);
void gather_scan_select_aggs(gather_t *g, PgQuery__SelectStmt *s, aggs_scan_t *a);

/* ---- gather_final.c ---- */

int gather_plan_finalizing(gather_t *g, const aggs_scan_t *a, PgQuery__SelectStmt **shard);
void gather_probe_slot(tree_t *t, PgQuery__Node **slot, void *g);

#endif
