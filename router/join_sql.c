/*
 * join_sql.c — SQL text the join and subquery planners both write (see
 * join_int.h).
 */
#include "router/join_int.h"

#include <stdio.h>

#include "router/route_int.h"

void join_quote_ident(char *out, size_t cap, const char *s)
{
	size_t o = 0;

	if (cap < 3) {
		if (cap > 0)
			out[0] = '\0';
		return;
	}
	out[o++] = '"';
	for (; *s != '\0' && o + 3 < cap; s++) {
		if (*s == '"')
			out[o++] = '"';
		out[o++] = *s;
	}
	out[o++] = '"';
	out[o] = '\0';
}

PgQuery__Node *join_unnest_of(tree_t *t, const PgQuery__RangeVar *rv, int n, const char *alias)
{
	char text[900], sch[140], rel[140], al[140];
	PgQuery__ParseResult *tree;
	PgQuery__Node *rf;

	join_quote_ident(rel, sizeof rel, rv->relname);
	join_quote_ident(al, sizeof al, alias);
	if (!empty(rv->schemaname)) {
		join_quote_ident(sch, sizeof sch, rv->schemaname);
		snprintf(text, sizeof text, "SELECT FROM pg_catalog.unnest($%d::%s.%s[]) AS %s", n,
		         sch, rel, al);
	} else {
		snprintf(text, sizeof text, "SELECT FROM pg_catalog.unnest($%d::%s[]) AS %s", n,
		         rel, al);
	}
	tree = tree_parse(t, text);
	if (tree == NULL || tree->n_stmts != 1 ||
	    tree->stmts[0]->stmt->node_case != NODE(SELECT_STMT) ||
	    tree->stmts[0]->stmt->select_stmt->n_from_clause != 1)
		return NULL;
	rf = tree->stmts[0]->stmt->select_stmt->from_clause[0];
	if (rv->alias != NULL && rf->node_case == NODE(RANGE_FUNCTION))
		rf->range_function->alias = rv->alias; /* with its column names, if any */
	return rf;
}
