/*
 * route_mergekind.c — how the proxy makes one answer of the answers of
 * several shards: concatenating rows, adding up counts, or a gather plan,
 * and the statements none of them would answer right (see below).
 */
#include "router/route.h"

#include <ctype.h>
#include <limits.h>
#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "router/gather_int.h"
#include "router/route_int.h"
#include "router/tree.h"
#include "router/tree_int.h"

/* ---- merging the answers of several shards ---- */

/*
 * A plan on several shards is only right if the proxy can make, from the
 * shards' answers, the one answer PostgreSQL would give. The proxy can
 * concatenate rows and add up the counts of the tags (SUM), take one
 * shard's answer when every shard holds a copy (ONE), add up one row of
 * counts (COUNT), or run a gather plan (GATHER, router/gather.c).
 *
 * Concatenating a SELECT's rows is right only when each row it returns
 * comes from exactly one shard, and appears once. So its rows must come
 * from a sharded table of its FROM (on the side of an outer join that keeps
 * its rows): rows of reference tables, of VALUES, or of a SELECT without
 * FROM are on every shard, and every shard would return them. And nothing
 * may combine rows of several shards: aggregates, GROUP BY, HAVING,
 * DISTINCT, window functions, ORDER BY, LIMIT/OFFSET, UNION without ALL,
 * INTERSECT, EXCEPT. At the statement's own level (not in a UNION ALL arm,
 * not in COPY (query) TO), ORDER BY, LIMIT/OFFSET, aggregates, GROUP BY,
 * HAVING and DISTINCT are the gather plan's to merge, when gather_check
 * says route_gather can plan them; the rows must still come from a
 * sharded table. Only the top level of the query is judged here; its
 * subqueries, which each shard also answers alone, are judged by
 * subqueries_local (route_subq.c).
 */

/* What stops concatenation of a SELECT's rows. */
typedef struct shape {
	bool top;         /* in: the statement's own SELECT, where a gather plan may merge */
	const char *what; /* "ORDER BY", ...: NULL when concatenation (or gather) is right */
	bool rows;        /* its rows do not come from a sharded table in FROM */
	bool count;       /* one row of count(*) / count(expr) columns: COUNT's to add up */
	bool gather;      /* ORDER BY, LIMIT, aggregates, ... at the top: a gather plan's */
	char agg[96];
} shape_t;

static void rows_shape(walk_t *w, const PgQuery__SelectStmt *s, const mscope_t *up, bool need_rows,
                       int depth, shape_t *sh);

/* count(*) or count(expr), and nothing around it that the proxy could not add up. */
static bool is_plain_count(const PgQuery__Node *n)
{
	const PgQuery__FuncCall *f;

	if (n == NULL || n->node_case != PG_QUERY__NODE__NODE_RES_TARGET ||
	    n->res_target->val == NULL ||
	    n->res_target->val->node_case != PG_QUERY__NODE__NODE_FUNC_CALL)
		return false;
	f = n->res_target->val->func_call;
	return streq(tree_catalog_func_name(f), "count") && !f->agg_distinct &&
	       f->agg_filter == NULL && f->over == NULL && f->n_agg_order == 0 &&
	       !f->agg_within_group && !f->func_variadic &&
	       (f->agg_star ? f->n_args == 0 : f->n_args == 1);
}

const PgQuery__CommonTableExpr *mergekind_scope_find(const mscope_t *sc, const char *name,
                                                     const mscope_t **where, size_t *index)
{
	for (; sc != NULL; sc = sc->up)
		for (size_t i = 0; i < sc->n_visible; i++) {
			const PgQuery__Node *c = sc->with->ctes[i];

			if (c != NULL && c->node_case == PG_QUERY__NODE__NODE_COMMON_TABLE_EXPR &&
			    streq(c->common_table_expr->ctename, name)) {
				*where = sc;
				*index = i;
				return c->common_table_expr;
			}
		}
	return NULL;
}

/* Whether each row of a subquery or CTE is on one shard only. */
static bool query_partitioned(walk_t *w, const PgQuery__Node *q, const mscope_t *sc, int depth)
{
	const PgQuery__RangeVar *target = NULL;
	shape_t sh;
	int i;

	if (q == NULL)
		return false;
	switch (q->node_case) {
	case PG_QUERY__NODE__NODE_SELECT_STMT:
		memset(&sh, 0, sizeof sh);
		rows_shape(w, q->select_stmt, sc, true, depth + 1, &sh);
		return sh.what == NULL && !sh.count;
	case PG_QUERY__NODE__NODE_INSERT_STMT:
		target = q->insert_stmt->relation;
		break;
	case PG_QUERY__NODE__NODE_UPDATE_STMT:
		target = q->update_stmt->relation;
		break;
	case PG_QUERY__NODE__NODE_DELETE_STMT:
		target = q->delete_stmt->relation;
		break;
	default:
		return false;
	}
	/* RETURNING of a write to a sharded table: each shard returns its own rows */
	i = target ? tables_find(w->cfg, target->catalogname, target->schemaname, target->relname)
	           : -1;
	return i >= 0 && tables_is_sharded(tables_at(w, i));
}

/* Whether each row a FROM item yields is on one shard only. */
static bool item_partitioned(walk_t *w, const PgQuery__Node *n, const mscope_t *sc, int depth)
{
	if (n == NULL || depth > MAX_DEPTH)
		return false;
	switch (n->node_case) {
	case PG_QUERY__NODE__NODE_RANGE_VAR: {
		const PgQuery__RangeVar *rv = n->range_var;
		const PgQuery__CommonTableExpr *cte;
		const mscope_t *where;
		size_t idx;
		int i;

		cte = empty(rv->schemaname) ? mergekind_scope_find(sc, rv->relname, &where, &idx)
		                            : NULL;
		if (cte != NULL) {
			mscope_t inner = {where->with, idx, where->up};

			/* a recursive CTE's rows grow from each shard's own: not judged */
			return !where->with->recursive &&
			       query_partitioned(w, cte->ctequery, &inner, depth + 1);
		}
		i = tables_find(w->cfg, rv->catalogname, rv->schemaname, rv->relname);
		return i >= 0 && tables_is_sharded(tables_at(w, i));
	}
	case PG_QUERY__NODE__NODE_JOIN_EXPR: {
		const PgQuery__JoinExpr *j = n->join_expr;
		bool l = item_partitioned(w, j->larg, sc, depth + 1);
		bool r = item_partitioned(w, j->rarg, sc, depth + 1);

		/* an outer join keeps the rows of its preserved side(s) */
		switch (j->jointype) {
		case PG_QUERY__JOIN_TYPE__JOIN_INNER:
			return l || r;
		case PG_QUERY__JOIN_TYPE__JOIN_LEFT:
			return l;
		case PG_QUERY__JOIN_TYPE__JOIN_RIGHT:
			return r;
		case PG_QUERY__JOIN_TYPE__JOIN_FULL:
			return l && r;
		default:
			return false;
		}
	}
	case PG_QUERY__NODE__NODE_RANGE_SUBSELECT:
		return query_partitioned(w, n->range_subselect->subquery, sc, depth + 1);
	default:
		return false; /* functions, VALUES, ... */
	}
}

/*
 * How the rows of SELECT s stand to concatenation (see above). need_rows:
 * the statement reads sharded tables, so its rows must come from one.
 */
static void rows_shape(walk_t *w, const PgQuery__SelectStmt *s, const mscope_t *up, bool need_rows,
                       int depth, shape_t *sh)
{
	mscope_t own = {s->with_clause, s->with_clause != NULL ? s->with_clause->n_ctes : 0, up};
	const mscope_t *sc = s->with_clause != NULL ? &own : up;
	aggscan_t a = {NULL, false};
	bool top = depth == 0 && sh->top; /* a UNION ALL arm is one level down */

	if (depth > MAX_DEPTH) {
		sh->what = "a query nested this deeply";
		return;
	}
	if (s->op != PG_QUERY__SET_OPERATION__SETOP_NONE &&
	    s->op != PG_QUERY__SET_OPERATION__SET_OPERATION_UNDEFINED) {
		if (s->n_sort_clause > 0)
			sh->what = "ORDER BY";
		else if (s->limit_count != NULL || s->limit_offset != NULL)
			sh->what = "LIMIT/OFFSET";
		else if (s->op == PG_QUERY__SET_OPERATION__SETOP_INTERSECT)
			sh->what = "INTERSECT";
		else if (s->op == PG_QUERY__SET_OPERATION__SETOP_EXCEPT)
			sh->what = "EXCEPT";
		else if (!s->all)
			sh->what = "UNION (without ALL)";
		if (sh->what != NULL)
			return;
		/* UNION ALL: the concatenation of concatenations */
		for (int i = 0; i < 2 && sh->what == NULL; i++) {
			const PgQuery__SelectStmt *arm = i == 0 ? s->larg : s->rarg;

			if (arm == NULL) {
				sh->what = "UNION ALL";
				return;
			}
			rows_shape(w, arm, sc, need_rows, depth + 1, sh);
			if (sh->count) {
				sh->count = false;
				sh->what = "count() in UNION ALL";
			}
		}
		return;
	}
	if (s->n_group_clause > 0 || s->having_clause != NULL) {
		if (!top) {
			sh->what = s->n_group_clause > 0 ? "GROUP BY" : "HAVING";
			return;
		}
		sh->gather = true;
	}
	for (size_t i = 0; i < s->n_target_list; i++)
		an_scan_aggs(w, &s->target_list[i]->base, &a);
	for (size_t i = 0; i < s->n_sort_clause; i++)
		an_scan_aggs(w, &s->sort_clause[i]->base, &a);
	if (s->having_clause != NULL)
		an_scan_aggs(w, &s->having_clause->base, &a);
	if (a.window || s->n_window_clause > 0) {
		sh->what = "window functions";
		return;
	}
	if (a.agg != NULL) {
		bool counts = s->n_target_list > 0;

		for (size_t i = 0; i < s->n_target_list; i++)
			counts &= is_plain_count(s->target_list[i]);
		if (!counts && !top) {
			snprintf(sh->agg, sizeof sh->agg, "aggregate function %.40s()", a.agg);
			sh->what = sh->agg;
			return;
		}
		if (counts)
			sh->count = true;
		else
			sh->gather = true;
	}
	/* a function the router does not know may be a user-defined aggregate */
	if (top && !sh->count && !sh->gather && gather_calls_unknown(s))
		sh->gather = true;
	if (s->n_distinct_clause > 0)
		sh->what = "DISTINCT";
	else if (s->n_sort_clause > 0)
		sh->what = "ORDER BY";
	else if (s->limit_count != NULL || s->limit_offset != NULL)
		sh->what = "LIMIT/OFFSET";
	if (sh->what != NULL && top) {
		sh->what = NULL;
		sh->gather = true;
	}
	if (sh->what == NULL && need_rows) {
		bool from = false;

		for (size_t i = 0; i < s->n_from_clause && !from; i++)
			from = item_partitioned(w, s->from_clause[i], sc, depth + 1);
		if (!from) {
			sh->what = "rows that every shard would return";
			sh->rows = true;
		}
	}
	if (sh->what != NULL || sh->gather)
		sh->count = false;
	if (sh->what != NULL)
		sh->gather = false;
}

static void merge_hint(walk_t *w, char *hint, size_t len);

static void refuse_merge(walk_t *w, const shape_t *sh)
{
	char hint[160];

	merge_hint(w, hint, sizeof hint);
	if (sh->rows)
		walk_refuse(
		    w,
		    "this SELECT's rows do not come from a sharded table in its FROM, so every "
		    "shard would return them, once per shard; %s",
		    hint);
	else
		walk_refuse(w, "%s across shards is not supported; %s", sh->what, hint);
}

static void merge_hint(walk_t *w, char *hint, size_t len)
{
	if (w->map >= 0)
		snprintf(hint, len, "add a condition on %s.%s, or /* pgshard: shard=N */",
		         tables_at(w, w->map_table)->name, tables_at(w, w->map_table)->key);
	else
		snprintf(hint, len, "run it on one shard with /* pgshard: shard=N */");
}

/*
 * A SELECT whose rows the proxy merges with a gather plan: refused here
 * when route_gather would refuse it, so that the plan and the gather agree.
 */
static int gather_merge(walk_t *w, const PgQuery__Node *n, route_merge_t *m)
{
	char err[400], hint[160];
	int rc = gather_check(n, w->params, w->n_params, w->lits, err, sizeof err);

	w->gen_bad = true; /* it may read any input */

	if (rc == GATHER_CHECK_NOMEM) {
		w->nomem = true;
		return -1;
	}
	if (rc == GATHER_CHECK_REFUSED) {
		merge_hint(w, hint, sizeof hint);
		walk_refuse(w, "%s; %s", err, hint);
		return -1;
	}
	*m = ROUTE_MERGE_GATHER;
	return 0;
}

/* A SELECT (n, or the query of COPY (n) TO) on several shards. */
int mergekind_select(walk_t *w, const PgQuery__Node *n, bool copy, route_merge_t *m)
{
	shape_t sh;

	walk_reset(w);
	tables_collect(w, &n->base, NULL);
	if (walk_stopped(w))
		return -1;
	if (w->map < 0 && w->n_order > 0) {
		*m = ROUTE_MERGE_ONE; /* reference tables only: copies */
		return 0;
	}
	memset(&sh, 0, sizeof sh);
	sh.top = !copy;
	rows_shape(w, n->select_stmt, NULL, w->map >= 0, 0, &sh);
	if (sh.what == NULL && sh.count && copy)
		sh.what = "count() in COPY (query) TO STDOUT";
	if (sh.what != NULL) {
		refuse_merge(w, &sh);
		return -1;
	}
	if (sh.gather)
		return gather_merge(w, n, m);
	*m = sh.count ? ROUTE_MERGE_COUNT : ROUTE_MERGE_SUM;
	return 0;
}

int mergekind_cursor(walk_t *w, const PgQuery__Node *n, route_merge_t *m)
{
	if (n == NULL || n->node_case != PG_QUERY__NODE__NODE_SELECT_STMT) {
		*m = ROUTE_MERGE_ONE;
		return 0;
	}
	if (mergekind_select(w, n, false, m) < 0)
		return -1;
	/* rows fetched in parts are merged by a gather plan, even concatenated or counted */
	return *m == ROUTE_MERGE_ONE || *m == ROUTE_MERGE_GATHER ? 0 : gather_merge(w, n, m);
}
