/*
 * gather_int.h — what the gather planner gives the rest of the router: the
 * check that route_statement runs before it plans ROUTE_MERGE_GATHER, and
 * the planning itself, which route_gather runs once route_statement agrees.
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
 * The gather plan of sql, a SELECT that route_statement has already found
 * to run on several shards with ROUTE_MERGE_GATHER (route_gather, see
 * gather.h, checks that first). 0, or -1 with a SQLSTATE and a message.
 */
int gather_plan_make(const char *sql, const route_param_t *params, int n_params, gather_plan_t *out,
                     char sqlstate[6], char *err, size_t errlen);

#endif
