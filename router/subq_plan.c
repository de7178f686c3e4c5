/*
 * subq_plan.c — uncorrelated subqueries over a sharded table, planned to
 * run before the statement (see join_sub_t in join_plan.h).
 *
 * Which subqueries: EXPR (scalar), ANY (IN, = ANY, op ANY), ALL and EXISTS
 * sublinks whose SELECT reads one sharded table alone in its FROM (no
 * ONLY), has no WITH, set operation, locking or VALUES, no subquery of its
 * own, and names no other table: every column reference
 * in it is bare or qualified by its table's name in it. Such a subquery
 * gives the same answer for every row of the statement, so it can be
 * answered once, first. A bare name that is in fact the outer query's
 * column makes the subquery fail on its own (42703): the proxy says so
 * (0A000) rather than answering something else. A scalar or ANY/ALL
 * subquery must have one select-list item that is not `*`; a row on the
 * left of IN (`(a, b) IN (...)`) stays as it is.
 *
 * Why a parameter gives the statement the subquery's own answer:
 *   - `(SELECT ...)` is its one value, NULL without rows, an error with
 *     more (the proxy raises PostgreSQL's 21000 itself);
 *   - `x op ANY (SELECT ...)` is true when x op v for one of the values,
 *     else NULL when one of those comparisons is NULL, else false: exactly
 *     `x op ANY ($n)` over the array of those values, NULLs kept, and the
 *     same for ALL; NOT IN is NOT of IN, so a NULL among the values makes
 *     it NULL, as PostgreSQL's own NOT IN;
 *   - `EXISTS (SELECT ...)` is whether there was a row.
 * The parameter is typed (Parse) as the answer's column is, or as the
 * array of it, so the comparison is the one the subquery's would be.
 *
 * A scalar subquery that is a select-list item without a name of its own
 * gets the name PostgreSQL would give its column (the subquery's item's
 * name), since $n alone would be ?column?.
 */
#include "router/join_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/route_int.h"
#include "router/tree_int.h"

const char *join_sub_kind_name(join_sub_kind_t k)
{
	switch (k) {
	case JOIN_SUB_SCALAR:
		return "scalar";
	case JOIN_SUB_ARRAY:
		return "array";
	case JOIN_SUB_EXISTS:
		return "exists";
	}
	return "?";
}

/* What a subquery (or one conjunct of its WHERE) reads. */
typedef struct sread {
	const char *alias; /* its table's name in it */
	int foreign;       /* column references qualified otherwise, or longer than t.c */
	int range_vars, other_from, sublinks, params, funcs;
	int max_param;
} sread_t;

static void sread_slot(tree_t *t, PgQuery__Node **slot, void *arg)
{
	sread_t *r = arg;

	switch ((*slot)->node_case) {
	case NODE(COLUMN_REF): {
		const PgQuery__ColumnRef *c = (*slot)->column_ref;

		if (c->n_fields == 2) {
			const char *q = tree_str_of(c->fields[0]);

			if (q == NULL || r->alias == NULL || strcmp(q, r->alias) != 0)
				r->foreign++;
		} else if (c->n_fields != 1) {
			r->foreign++;
		}
		return;
	}
	case NODE(RANGE_VAR):
		r->range_vars++;
		break;
	case NODE(RANGE_SUBSELECT):
	case NODE(RANGE_FUNCTION):
	case NODE(RANGE_TABLE_FUNC):
	case NODE(COMMON_TABLE_EXPR):
		r->other_from++;
		break;
	case NODE(SUB_LINK):
		r->sublinks++;
		break;
	case NODE(PARAM_REF):
		r->params++;
		if ((*slot)->param_ref->number > r->max_param)
			r->max_param = (*slot)->param_ref->number;
		break;
	case NODE(FUNC_CALL):
	case NODE(SQLVALUE_FUNCTION):
		r->funcs++;
		break;
	default:
		break;
	}
	tree_each_slot(t, tree_inner(*slot), sread_slot, arg);
}

static void sread_node(tree_t *t, sread_t *r, PgQuery__Node *n)
{
	const char *alias = r->alias;

	memset(r, 0, sizeof *r);
	r->alias = alias;
	if (n != NULL)
		sread_slot(t, &n, r);
}

/* The sharded table a FROM item is, or -1. */
static int sharded_table(const cfg_t *cfg, const PgQuery__Node *n)
{
	const PgQuery__RangeVar *rv;
	int k;

	if (n == NULL || n->node_case != NODE(RANGE_VAR))
		return -1;
	rv = n->range_var;
	k = tables_find(cfg, rv->catalogname, rv->schemaname, rv->relname);
	return k >= 0 && tables_is_sharded(&cfg->tables[k]) ? k : -1;
}

static const char *alias_of(const PgQuery__RangeVar *rv)
{
	return where_alias_of(rv) != NULL ? where_alias_of(rv) : rv->relname;
}

/* Whether the sublink is a subquery planned to run first (see the top of the file). */
static bool runs_first(tree_t *t, const cfg_t *cfg, PgQuery__SubLink *l)
{
	PgQuery__SelectStmt *q;
	PgQuery__Node *root;
	sread_t r;

	switch (l->sub_link_type) {
	case PG_QUERY__SUB_LINK_TYPE__EXPR_SUBLINK:
	case PG_QUERY__SUB_LINK_TYPE__ANY_SUBLINK:
	case PG_QUERY__SUB_LINK_TYPE__ALL_SUBLINK:
	case PG_QUERY__SUB_LINK_TYPE__EXISTS_SUBLINK:
		break;
	default:
		return false;
	}
	if (l->subselect == NULL || l->subselect->node_case != NODE(SELECT_STMT))
		return false;
	q = l->subselect->select_stmt;
	if (q->op != PG_QUERY__SET_OPERATION__SETOP_NONE || q->with_clause != NULL ||
	    q->into_clause != NULL || q->n_locking_clause > 0 || q->n_values_lists > 0 ||
	    q->n_from_clause != 1 || sharded_table(cfg, q->from_clause[0]) < 0 ||
	    !q->from_clause[0]->range_var->inh)
		return false;
	if (l->sub_link_type != PG_QUERY__SUB_LINK_TYPE__EXISTS_SUBLINK &&
	    (q->n_target_list != 1 || q->target_list[0]->node_case != NODE(RES_TARGET) ||
	     tree_is_star(q->target_list[0]->res_target->val)))
		return false;
	if (l->testexpr != NULL && l->testexpr->node_case == NODE(ROW_EXPR))
		return false;
	r.alias = alias_of(q->from_clause[0]->range_var);
	root = l->subselect;
	sread_node(t, &r, root);
	return r.range_vars == 1 && r.other_from == 0 && r.sublinks == 0 && r.foreign == 0;
}

/*
 * The name PostgreSQL gives a select-list item without AS (its parser's
 * FigureColname), for the kinds of items a scalar subquery's select list
 * mostly has; NULL for ?column? and for what this does not know (then the
 * answer's column is ?column? where PostgreSQL may say otherwise, e.g.
 * current_date).
 */
static const char *figure_name(const PgQuery__Node *n)
{
	if (n == NULL)
		return NULL;
	switch (n->node_case) {
	case NODE(COLUMN_REF): {
		const PgQuery__ColumnRef *c = n->column_ref;

		return c->n_fields > 0 ? tree_str_of(c->fields[c->n_fields - 1]) : NULL;
	}
	case NODE(FUNC_CALL):
		return tree_last_string(n->func_call->funcname, n->func_call->n_funcname);
	case NODE(TYPE_CAST): {
		/* the argument's name, else the type's as written (int -> int4) */
		const char *name = figure_name(n->type_cast->arg);
		const PgQuery__TypeName *tn = n->type_cast->type_name;

		if (name == NULL && tn != NULL)
			name = tree_last_string(tn->names, tn->n_names);
		return name;
	}
	case NODE(A_INDIRECTION): {
		const PgQuery__AIndirection *ind = n->a_indirection;

		for (size_t i = ind->n_indirection; i > 0; i--)
			if (tree_str_of(ind->indirection[i - 1]) != NULL)
				return tree_str_of(ind->indirection[i - 1]);
		return figure_name(ind->arg);
	}
	case NODE(A_EXPR):
		return n->a_expr->kind == PG_QUERY__A__EXPR__KIND__AEXPR_NULLIF ? "nullif" : NULL;
	case NODE(CASE_EXPR):
		return "case";
	case NODE(COALESCE_EXPR):
		return "coalesce";
	case NODE(MIN_MAX_EXPR):
		return n->min_max_expr->op == PG_QUERY__MIN_MAX_OP__IS_GREATEST ? "greatest"
		                                                                : "least";
	case NODE(A_ARRAY_EXPR):
		return "array";
	case NODE(ROW_EXPR):
		return "row";
	default:
		return NULL; /* PostgreSQL's ?column?, as $n's */
	}
}

typedef struct xwalk {
	const cfg_t *cfg;
	join_plan_t *out;
	PgQuery__SubLink *links[JOIN_MAX_SUBS];
} xwalk_t;

static void extract_slot(tree_t *t, PgQuery__Node **slot, void *arg)
{
	xwalk_t *w = arg;

	if ((*slot)->node_case == NODE(SUB_LINK) && w->out->n_subs < JOIN_MAX_SUBS &&
	    runs_first(t, w->cfg, (*slot)->sub_link)) {
		PgQuery__SubLink *l = (*slot)->sub_link;
		join_sub_t *sub = &w->out->subs[w->out->n_subs];
		int k = w->out->n_params + 1 + w->out->n_subs;
		PgQuery__Node *rep;

		switch (l->sub_link_type) {
		case PG_QUERY__SUB_LINK_TYPE__ANY_SUBLINK:
		case PG_QUERY__SUB_LINK_TYPE__ALL_SUBLINK:
			sub->kind = JOIN_SUB_ARRAY;
			rep = tree_expr(t, "NULL = %s($%d)",
			                l->sub_link_type == PG_QUERY__SUB_LINK_TYPE__ANY_SUBLINK
			                    ? "ANY"
			                    : "ALL",
			                k);
			if (rep == NULL || rep->node_case != NODE(A_EXPR))
				return;
			rep->a_expr->lexpr = l->testexpr;
			if (l->n_oper_name > 0) {
				rep->a_expr->name = l->oper_name;
				rep->a_expr->n_name = l->n_oper_name;
			}
			break;
		case PG_QUERY__SUB_LINK_TYPE__EXISTS_SUBLINK:
			sub->kind = JOIN_SUB_EXISTS;
			rep = tree_expr(t, "$%d", k);
			break;
		default:
			sub->kind = JOIN_SUB_SCALAR;
			rep = tree_expr(t, "$%d", k);
			break;
		}
		if (rep == NULL)
			return;
		sub->param = k;
		w->links[w->out->n_subs++] = l;
		*slot = rep;
		return;
	}
	tree_each_slot(t, tree_inner(*slot), extract_slot, arg);
}

/* A scalar subquery as a select-list item of its own: named as PostgreSQL names it. */
static void name_scalar_items(tree_t *t, const cfg_t *cfg, PgQuery__SelectStmt *s)
{
	for (size_t i = 0; s != NULL && i < s->n_target_list; i++) {
		PgQuery__Node *n = s->target_list[i];
		PgQuery__ResTarget *rt;
		PgQuery__SelectStmt *q;
		const char *name;

		if (n->node_case != NODE(RES_TARGET))
			continue;
		rt = n->res_target;
		if (!empty(rt->name) || rt->val == NULL || rt->val->node_case != NODE(SUB_LINK) ||
		    rt->val->sub_link->sub_link_type != PG_QUERY__SUB_LINK_TYPE__EXPR_SUBLINK ||
		    !runs_first(t, cfg, rt->val->sub_link))
			continue;
		q = rt->val->sub_link->subselect->select_stmt;
		name = q->target_list[0]->res_target->name;
		if (empty(name))
			name = figure_name(q->target_list[0]->res_target->val);
		if (!empty(name))
			rt->name = tree_strdup(t, name);
	}
}

static void max_param_slot(tree_t *t, PgQuery__Node **slot, void *arg)
{
	int *max = arg;

	if ((*slot)->node_case == NODE(PARAM_REF) && (*slot)->param_ref->number > *max)
		*max = (*slot)->param_ref->number;
	tree_each_slot(t, tree_inner(*slot), max_param_slot, arg);
}

/*
 * The client's parameters in a subquery: every ParamRef with its number as
 * the client wrote it, so that each statement written from the subquery
 * numbers them again from $1 (the client's number of each in a list) and
 * the next one starts from the numbers as written.
 */
#define SUB_MAX_REFS 1024

typedef struct prefs {
	PgQuery__ParamRef *ref[SUB_MAX_REFS];
	int old[SUB_MAX_REFS];
	int n;
	bool over;
} prefs_t;

static void prefs_slot(tree_t *t, PgQuery__Node **slot, void *arg)
{
	prefs_t *p = arg;

	if ((*slot)->node_case == NODE(PARAM_REF)) {
		if (p->n == SUB_MAX_REFS) {
			p->over = true;
			return;
		}
		p->ref[p->n] = (*slot)->param_ref;
		p->old[p->n++] = (*slot)->param_ref->number;
		return;
	}
	tree_each_slot(t, tree_inner(*slot), prefs_slot, arg);
}

/* Number the ParamRefs under n (all of them: NULL) again from $1, in list (n_list). */
static bool renumber(tree_t *t, prefs_t *p, PgQuery__Node *n, int *list, int *n_list)
{
	prefs_t under;

	memset(&under, 0, sizeof under);
	if (n != NULL)
		prefs_slot(t, &n, &under);
	for (int i = 0; i < (n != NULL ? under.n : p->n); i++) {
		PgQuery__ParamRef *r = n != NULL ? under.ref[i] : p->ref[i];
		int k = 0;

		while (k < *n_list && list[k] != r->number)
			k++;
		if (k == *n_list) {
			if (k == JOIN_SUB_PARAMS)
				return false;
			list[(*n_list)++] = r->number;
		}
		r->number = k + 1;
	}
	return true;
}

static void renumber_undo(prefs_t *p)
{
	for (int i = 0; i < p->n; i++)
		p->ref[i]->number = p->old[i];
}

/*
 * A subquery whose own plan (the router's) runs it on one shard, or on
 * several whose rows are only put together (no aggregate, DISTINCT, ORDER
 * BY or LIMIT across them: ROUTE_MERGE_SUM), runs as it is there
 * (join_sub_t.direct): its answer is those rows, all of them. 1 so, 0 not,
 * -1 out of memory.
 */
static int run_alone(const route_ctx_t *ctx, tree_t *t, PgQuery__SelectStmt *q, join_sub_t *sub,
                     const route_param_t *params, int n_params)
{
	route_param_t given[JOIN_SUB_PARAMS];
	route_plan_t p;
	const route_step_t *st;
	char *sql = tree_deparse_select(t, q, "a subquery run first");
	int n_given = 0;

	if (sql == NULL)
		return t->nomem ? -1 : 0;
	while (params != NULL && n_given < sub->n_params && sub->params[n_given] <= n_params) {
		given[n_given] = params[sub->params[n_given] - 1];
		n_given++;
	}
	if (ctx->route(ctx, sql, n_given > 0 ? given : NULL, n_given, &p) < 0) {
		free(sql);
		return -1;
	}
	st = route_step_routed(&p);
	if (p.kind != ROUTE_SHARDS || p.params_missing || p.join || p.n_steps != 1 ||
	    shard_set_count(&p.shards) == 0 ||
	    !(st->kind == ROUTE_STEP_ONE ||
	      (st->kind == ROUTE_STEP_EACH && st->merge == ROUTE_MERGE_SUM))) {
		free(sql);
		return 0;
	}
	sub->direct = true;
	sub->sql = sql;
	sub->shards = p.shards;
	free(sub->rows_sql);
	sub->rows_sql = NULL;
	sub->n_rows_params = 0;
	sub->n_pushed = 0;
	return 1;
}

/* Its statements: its table's rows with the filters of its own, and itself over them. */
static int plan_sub(const route_ctx_t *ctx, tree_t *t, PgQuery__SubLink *l, join_sub_t *sub,
                    const route_param_t *params, int n_params)
{
	PgQuery__SelectStmt *q = l->subselect->select_stmt, *s;
	PgQuery__RangeVar *rv = q->from_clause[0]->range_var;
	PgQuery__ParseResult *tree;
	PgQuery__Node *where = NULL, *conj[64], *f;
	char qa[140], text[300];
	int k = sharded_table(ctx->cfg, q->from_clause[0]), n = 0;
	route_plan_t p;
	route_param_t given[JOIN_SUB_PARAMS];
	int n_given = 0;
	prefs_t *refs = calloc(1, sizeof *refs);
	sread_t r;
	bool ok = true;

	if (refs == NULL) {
		t->nomem = true;
		return -1;
	}
	prefs_slot(t, &l->subselect, refs);

	sub->table = &ctx->cfg->tables[k];
	sub->map = sub->table->map;
	snprintf(sub->alias, sizeof sub->alias, "%s", alias_of(rv));

	/* the conjuncts of its WHERE that read its table alone, with no function call or
	   subquery: its rows are fetched with them (and the parameters they use) */
	if (q->where_clause != NULL && q->where_clause->node_case == NODE(BOOL_EXPR) &&
	    q->where_clause->bool_expr->boolop == PG_QUERY__BOOL_EXPR_TYPE__AND_EXPR) {
		for (size_t i = 0; i < q->where_clause->bool_expr->n_args && n < 64; i++)
			conj[n++] = q->where_clause->bool_expr->args[i];
	} else if (q->where_clause != NULL) {
		conj[n++] = q->where_clause;
	}
	r.alias = sub->alias;
	for (int i = 0; i < n; i++) {
		sread_node(t, &r, conj[i]);
		if (r.foreign > 0 || r.range_vars > 0 || r.other_from > 0 || r.sublinks > 0 ||
		    r.funcs > 0)
			continue;
		where = tree_and(t, where, conj[i]);
		ok = ok && renumber(t, refs, conj[i], sub->rows_params, &sub->n_rows_params);
		sub->n_pushed++;
	}
	join_quote_ident(qa, sizeof qa, sub->alias);
	snprintf(text, sizeof text, "SELECT ROW(%s.*) FROM pgshard_sub", qa);
	tree = tree_parse(t, text);
	if (!ok || refs->over || tree == NULL || tree->n_stmts != 1 ||
	    tree->stmts[0]->stmt->node_case != NODE(SELECT_STMT)) {
		free(refs);
		tree_refuse(t, "a subquery run first is planned with at most %d parameters",
		            JOIN_SUB_PARAMS);
		return tree_stopped(t) && !t->refused ? -1 : 0;
	}
	s = tree->stmts[0]->stmt->select_stmt;
	s->from_clause[0] = q->from_clause[0];
	s->where_clause = where;
	sub->rows_sql = tree_deparse_select(t, s, "a subquery's rows");
	renumber_undo(refs);
	if (sub->rows_sql == NULL) {
		free(refs);
		return tree_stopped(t) && !t->refused ? -1 : 0;
	}
	/* where: the router's answer for it, with the client's values when known */
	while (params != NULL && n_given < sub->n_rows_params &&
	       sub->rows_params[n_given] <= n_params) {
		given[n_given] = params[sub->rows_params[n_given] - 1];
		n_given++;
	}
	if (ctx->route(ctx, sub->rows_sql, n_given > 0 ? given : NULL, n_given, &p) < 0) {
		free(refs);
		return -1;
	}
	if (p.kind == ROUTE_SHARDS && shard_set_count(&p.shards) > 0)
		sub->shards = p.shards;
	else
		sub->shards = ctx->maps[sub->map].all;

	/* the subquery itself, its parameters numbered from $1 */
	ok = renumber(t, refs, NULL, sub->params, &sub->n_params);
	free(refs);
	if (!ok)
		return tree_stopped(t) ? -1 : 0;
	switch (run_alone(ctx, t, q, sub, params, n_params)) {
	case -1:
		return -1;
	case 1:
		return 1;
	default:
		break;
	}
	/* ... or over its table's rows, given after its parameters */
	f = join_unnest_of(t, rv, sub->n_params + 1, sub->alias);
	if (f == NULL)
		return tree_stopped(t) ? -1 : 0;
	q->from_clause[0] = f;
	sub->sql = tree_deparse_select(t, q, "a subquery run first");
	return sub->sql != NULL ? 1 : -1;
}

int join_subq_extract(const route_ctx_t *ctx, tree_t *t, PgQuery__ParseResult *tree,
                      const route_param_t *params, int n_params, join_plan_t *out, char *err,
                      size_t errlen)
{
	PgQuery__Node *root;
	xwalk_t w;
	int max = 0;

	if (tree->n_stmts != 1 || tree->stmts[0]->stmt == NULL ||
	    tree->stmts[0]->stmt->node_case != NODE(SELECT_STMT)) {
		snprintf(err, errlen, "not one SELECT");
		return 0;
	}
	root = tree->stmts[0]->stmt;
	max_param_slot(t, &root, &max);
	out->n_params = max;
	out->n_subs = 0;
	memset(&w, 0, sizeof w);
	w.cfg = ctx->cfg;
	w.out = out;
	name_scalar_items(t, ctx->cfg, root->select_stmt);
	extract_slot(t, &root, &w);
	if (t->nomem)
		return -1;
	if (out->n_subs == 0) {
		snprintf(err, errlen, "no subquery over a sharded table that can run first");
		return 0;
	}
	for (int i = 0; i < out->n_subs; i++) {
		int rc = plan_sub(ctx, t, w.links[i], &out->subs[i], params, n_params);

		if (rc <= 0) {
			snprintf(err, errlen, "%s",
			         t->err[0] != '\0' ? t->err : "cannot write a subquery run first");
			return t->nomem || (rc < 0 && !t->refused) ? -1 : 0;
		}
	}
	return out->n_subs;
}
