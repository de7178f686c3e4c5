/*
 * join_int.h — what the join planner (join_plan.c) and the subquery
 * planner (subq_plan.c) both write: identifiers and the unnest() that
 * stands for a table's fetched rows (join_sql.c). Not part of the
 * router's interface.
 */
#ifndef PGSHARD_ROUTER_JOIN_INT_H
#define PGSHARD_ROUTER_JOIN_INT_H

#include <stddef.h>

#include "router/join_plan.h"
#include "router/tree.h"

/* "name" with " doubled: an identifier as the statements here write it. */
void join_quote_ident(char *out, size_t cap, const char *s);

/* unnest($n::rel[]) AS alias, in place of a table's RangeVar (its alias's column names kept). */
PgQuery__Node *join_unnest_of(tree_t *t, const PgQuery__RangeVar *rv, int n, const char *alias);

/*
 * A co-located pair fetched by one statement (join_group.c): tables 0 and 1,
 * their RangeVars and aliases, the equality of their shard keys (a node of
 * the statement), the keys the statement returns (key_of: whose column),
 * each table's filters pushed down (nodes of the statement, numbered as the
 * caller has them), and table 0's probe column when the pair is probed.
 */
typedef struct join_group_in {
	PgQuery__Node *rv[2];
	const char *alias[2];
	PgQuery__Node *on;
	const char *keys[JOIN_MAX_SIDES];
	int key_of[JOIN_MAX_SIDES];
	int n_keys;
	PgQuery__Node *filters[2][64];
	int n_filters[2];
	const char *probe_col; /* NULL: the pair drives */
} join_group_in_t;

/* SELECT <table 0's rows> ... UNION ALL SELECT <table 1's rows> ... (see join_plan.h). */
PgQuery__SelectStmt *join_group_stmt(tree_t *t, const join_group_in_t *g);

/*
 * Plan the uncorrelated subqueries of the statement (subq_plan.c): each
 * one found is taken out of the tree, replaced by its parameter, and
 * described in out->subs (params: the client's, NULL when not known); out->n_params is set to the
 * client's parameters (the highest $n of the statement as written). 0 with none found (why in err),
 * the count found, -1 when memory runs out.
 */
int join_subq_extract(const route_ctx_t *ctx, tree_t *t, PgQuery__ParseResult *tree,
                      const route_param_t *params, int n_params, join_plan_t *out, char *err,
                      size_t errlen);

#endif
