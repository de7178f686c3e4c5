/*
 * join_group.c — the one statement that fetches a co-located pair of a
 * join across shards (see join_plan.h): two sharded tables of one map joined
 * by an equality of their shard keys.
 *
 * Why not `SELECT ROW(a.*), ROW(b.*) FROM a JOIN b ON ...`: that returns a's
 * row once per partner, and the final statement, which joins the tables'
 * rows again with the statement's own ON, would then count each pair as
 * often as a's row came. Deduplicating the rows in the proxy would merge
 * two equal rows of a table without a key, which one PostgreSQL keeps
 * apart. So each table's rows come by a branch of their own, those with a
 * partner on the same shard (EXISTS over the other table, under its
 * filters), one row each however many partners it has; a UNION ALL makes
 * it one statement per shard. The pair's equality is complete on each shard
 * (equal keys are on one shard), so no row the final statement can use is
 * left out.
 */
#include "router/join_int.h"

#include <stdio.h>
#include <string.h>

/* The select list of branch `which`: the keys of its table, NULL for the other's; the rows. */
static void branch_targets(char *out, size_t cap, const join_group_in_t *g, int which)
{
	char qa[140], qc[140];
	size_t at = 0;

	out[0] = '\0';
	for (int k = 0; k < g->n_keys && at < cap; k++) {
		if (g->key_of[k] == which) {
			join_quote_ident(qa, sizeof qa, g->alias[which]);
			join_quote_ident(qc, sizeof qc, g->keys[k]);
			at += (size_t)snprintf(out + at, cap - at, "%s.%s, ", qa, qc);
		} else {
			at += (size_t)snprintf(out + at, cap - at, "NULL, ");
		}
	}
	join_quote_ident(qa, sizeof qa, g->alias[which]);
	if (at < cap)
		snprintf(out + at, cap - at, which == 0 ? "ROW(%s.*), NULL" : "NULL, ROW(%s.*)",
		         qa);
}

/* a's filters (and the probe, when a is probed), ANDed to w. */
static PgQuery__Node *filters_of(tree_t *t, const join_group_in_t *g, int which, PgQuery__Node *w)
{
	if (which == 0 && g->probe_col != NULL) {
		char qa[140], qc[140];

		join_quote_ident(qa, sizeof qa, g->alias[0]);
		join_quote_ident(qc, sizeof qc, g->probe_col);
		w = tree_and(t, w, tree_expr(t, "%s.%s OPERATOR(pg_catalog.=) ANY($1)", qa, qc));
	}
	for (int i = 0; i < g->n_filters[which]; i++)
		w = tree_and(t, w, g->filters[which][i]);
	return w;
}

PgQuery__SelectStmt *join_group_stmt(tree_t *t, const join_group_in_t *g)
{
	char ta[1000], tb[1000], text[2200];
	PgQuery__ParseResult *tree;
	PgQuery__SelectStmt *s, *br[2];

	branch_targets(ta, sizeof ta, g, 0);
	branch_targets(tb, sizeof tb, g, 1);
	snprintf(text, sizeof text,
	         "SELECT %s FROM pgshard_join WHERE EXISTS (SELECT 1 FROM pgshard_join) UNION ALL "
	         "SELECT %s FROM pgshard_join WHERE EXISTS (SELECT 1 FROM pgshard_join)",
	         ta, tb);
	tree = tree_parse(t, text);
	if (tree == NULL || tree->n_stmts != 1 ||
	    tree->stmts[0]->stmt->node_case != NODE(SELECT_STMT))
		return NULL;
	s = tree->stmts[0]->stmt->select_stmt;
	if (s->op != PG_QUERY__SET_OPERATION__SETOP_UNION || s->larg == NULL || s->rarg == NULL)
		return NULL;
	br[0] = s->larg;
	br[1] = s->rarg;
	for (int w = 0; w < 2; w++) {
		PgQuery__Node *exists = br[w]->where_clause;
		PgQuery__SelectStmt *in;

		if (exists == NULL || exists->node_case != NODE(SUB_LINK) ||
		    exists->sub_link->subselect == NULL ||
		    exists->sub_link->subselect->node_case != NODE(SELECT_STMT))
			return NULL;
		in = exists->sub_link->subselect->select_stmt;
		/* the branch: its table's rows under its own filters, with a partner */
		br[w]->from_clause[0] = g->rv[w];
		br[w]->where_clause = tree_and(t, filters_of(t, g, w, NULL), exists);
		/* the partner: the other table's, by the pair's equality, under its filters */
		in->from_clause[0] = g->rv[1 - w];
		in->where_clause = filters_of(t, g, 1 - w, g->on);
	}
	return tree_stopped(t) ? NULL : s;
}
