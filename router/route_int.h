/*
 * route_int.h — what route.c and gather.c share inside the router: tree
 * helpers over libpg_query's protobuf structures that route.c provides, and
 * the gather planner's check that route_statement runs before it plans
 * ROUTE_MERGE_GATHER. The arena-based helpers that build, copy and walk
 * trees are tree.h's.
 *
 * Not part of the router's interface: only the router's own .c files include it.
 */
#ifndef PGSHARD_ROUTER_ROUTE_INT_H
#define PGSHARD_ROUTER_ROUTE_INT_H

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>
#include <stdbool.h>
#include <stddef.h>

#include "router/route.h"

/* The String node's text, or NULL for any other node. */
const char *route_str_of(const PgQuery__Node *n);

/* The function's own name when it is unqualified or in pg_catalog, else NULL. */
const char *route_catalog_func_name(const PgQuery__FuncCall *f);

/* Whether name is one of PostgreSQL 15's built-in aggregates. */
bool route_is_aggregate_name(const char *name);

/* Whether two trees are the same, locations aside. */
bool route_tree_equal(const ProtobufCMessage *a, const ProtobufCMessage *b);

/*
 * The SQL text of tree, from pg_query_deparse_protobuf; NULL with a message
 * in err ("cannot write <what>: ...", or "out of memory").
 */
char *route_deparse(const PgQuery__ParseResult *tree, const char *what, char *err, size_t errlen);

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

#endif
