/*
 * gather_final.c — the gather planner's finalizing rewrite (aggregates,
 * GROUP BY, HAVING, DISTINCT): what each shard ships, partial aggregates
 * and how they combine, the final query over the shards' rows, and the
 * probes that make the shards refuse a user-defined aggregate. See
 * gather.c for the picture.
 */
#include "router/gather.h"

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/colname.h"
#include "router/gather_int.h"
#include "router/shardmap.h"
#include "router/tree.h"
#include "router/tree_int.h"

/* ---- finalizing ---- */

/*
 * The group column an expression reads: the same tree, or the same column
 * written with more or fewer qualifiers (name and t.name name one column
 * when both resolve, as PostgreSQL would have them).
 */
static int find_group(const gather_t *g, const PgQuery__Node *e)
{
	for (int i = 0; i < g->n_ship; i++) {
		const PgQuery__Node *x = g->ship[i].expr;

		if (g->ship[i].kind != SHIP_GROUP)
			continue;
		if (tree_equal(x, e))
			return i;
		if (x->node_case == NODE(COLUMN_REF) && e->node_case == NODE(COLUMN_REF) &&
		    tree_colref_suffix_equal(x->column_ref, e->column_ref))
			return i;
	}
	return -1;
}

/* The shard column for an expression: an existing one when the same, else a new one. */
static int ship_add(gather_t *g, ship_kind_t kind, const PgQuery__Node *e)
{
	PgQuery__Node *copy;

	if (kind != SHIP_PART)
		e = tree_strip_collate(e);
	if (e == NULL || tree_stopped(&g->t))
		return -1;
	for (int i = 0; i < g->n_ship; i++) {
		bool same_kind =
		    kind == SHIP_PART ? g->ship[i].kind == SHIP_PART : g->ship[i].kind != SHIP_PART;

		if (same_kind && tree_equal(g->ship[i].expr, e)) {
			if (kind == SHIP_GROUP)
				g->ship[i].kind = SHIP_GROUP;
			return i;
		}
	}
	if (g->n_ship == g->cap_ship) {
		int cap = g->cap_ship > 0 ? 2 * g->cap_ship : 16;
		ship_t *n = tree_alloc(&g->t, (size_t)cap * sizeof *n);

		if (n == NULL)
			return -1;
		if (g->n_ship > 0)
			memcpy(n, g->ship, (size_t)g->n_ship * sizeof *n);
		g->ship = n;
		g->cap_ship = cap;
	}
	copy = tree_copy(&g->t, e);
	if (copy == NULL)
		return -1;
	g->ship[g->n_ship].kind = kind;
	g->ship[g->n_ship].expr = copy;
	return g->n_ship++;
}

/* A DISTINCT aggregate's argument or ORDER BY item: its shipped column, COLLATE kept. */
static void darg_slot(gather_t *g, PgQuery__Node **slot)
{
	PgQuery__Node *e = *slot;
	int k;

	if (e == NULL || e->node_case == NODE(A_CONST))
		return;
	if (e->node_case == NODE(COLLATE_CLAUSE)) {
		k = ship_add(g, SHIP_DARG, e->collate_clause->arg);
		if (k >= 0)
			e->collate_clause->arg = gather_colref(g, k);
		return;
	}
	k = ship_add(g, SHIP_DARG, e);
	if (k >= 0)
		*slot = gather_colref(g, k);
}

/* A partial aggregate: the call itself (renamed), with its arguments and FILTER. */
static int ship_partial(gather_t *g, const PgQuery__Node *call, const char *rename)
{
	PgQuery__Node *p = tree_copy(&g->t, call);
	int k;

	if (p == NULL)
		return -1;
	if (rename != NULL) {
		PgQuery__FuncCall *f = p->func_call;

		f->funcname = tree_list(&g->t, 1);
		if (f->funcname == NULL || (f->funcname[0] = tree_string(&g->t, rename)) == NULL)
			return -1;
		f->n_funcname = 1;
	}
	p->func_call->location = -1;
	k = ship_add(g, SHIP_PART, p);
	return k;
}

/*
 * min(c) of the final query reads c in the aggregate argument's COLLATE,
 * when it had one: the held column itself has the default collation.
 */
static PgQuery__Node *keep_collate(gather_t *g, const PgQuery__FuncCall *f, PgQuery__Node *call)
{
	const PgQuery__Node *arg = f->n_args == 1 ? f->args[0] : NULL;
	PgQuery__Node *c;

	if (call == NULL || arg == NULL || arg->node_case != NODE(COLLATE_CLAUSE) ||
	    call->node_case != NODE(FUNC_CALL) || call->func_call->n_args != 1)
		return call;
	c = tree_copy(&g->t, arg);
	if (c == NULL)
		return NULL;
	c->collate_clause->arg = call->func_call->args[0];
	call->func_call->args[0] = c;
	return call;
}

static const char combinable[] =
    "count, sum, min, max, avg, bool_and, bool_or, every, bit_and, bit_or, bit_xor, and any "
    "aggregate with DISTINCT";

/* What the final query computes for an aggregate call (the Node n). */
static PgQuery__Node *combine(gather_t *g, PgQuery__Node *n)
{
	const PgQuery__FuncCall *f = n->func_call;
	const char *name = tree_catalog_func_name(f);
	const char *shown = name != NULL ? name : "an aggregate";
	int k, c;

	if (f->agg_within_group) {
		tree_refuse(&g->t,
		            "the ordered-set aggregate %s() (WITHIN GROUP) across shards is not "
		            "supported",
		            shown);
		return NULL;
	}
	if (f->func_variadic) {
		tree_refuse(&g->t, "VARIADIC in %s() across shards is not supported", shown);
		return NULL;
	}
	if (f->agg_distinct) {
		PgQuery__Node *copy;

		if (f->agg_filter != NULL) {
			tree_refuse(
			    &g->t,
			    "%s(DISTINCT ...) FILTER (WHERE ...) across shards is not supported; "
			    "move the condition into the argument (CASE WHEN ... THEN x END)",
			    shown);
			return NULL;
		}
		for (size_t i = 0; i < f->n_args; i++)
			if (f->args[i]->node_case == NODE(ROW_EXPR)) {
				/* the shards' rows would reach the final query as text, which an
				 * anonymous record type cannot read back */
				tree_refuse(
				    &g->t,
				    "%s(DISTINCT (a, b, ...)) across shards is not supported; "
				    "give DISTINCT one value per row, e.g. %s(DISTINCT "
				    "format('%%s|%%s', a, b))",
				    shown, shown);
				return NULL;
			}
		/* each distinct argument reaches the final query, which aggregates them itself */
		copy = tree_copy(&g->t, n);
		if (copy == NULL)
			return NULL;
		for (size_t i = 0; i < copy->func_call->n_args; i++)
			darg_slot(g, &copy->func_call->args[i]);
		for (size_t i = 0; i < copy->func_call->n_agg_order; i++)
			if (copy->func_call->agg_order[i]->node_case == NODE(SORT_BY))
				darg_slot(g, &copy->func_call->agg_order[i]->sort_by->node);
		return copy;
	}
	if (f->n_agg_order > 0) {
		tree_refuse(&g->t,
		            "%s() with ORDER BY inside across shards is not supported (%s are)",
		            shown, combinable);
		return NULL;
	}
	if (name == NULL) {
		tree_refuse(&g->t, "the aggregate %s() across shards is not supported (%s are)",
		            tree_last_string(f->funcname, f->n_funcname)
		                ? tree_last_string(f->funcname, f->n_funcname)
		                : "?",
		            combinable);
		return NULL;
	}
	if ((strcmp(name, "count") == 0 && (f->agg_star ? f->n_args == 0 : f->n_args == 1)) ||
	    (strcmp(name, "sum") == 0 && f->n_args == 1 && !f->agg_star)) {
		/* counts and sums add up; the cast gives back the partial's own type */
		if ((k = ship_partial(g, n, NULL)) < 0)
			return NULL;
		if (g->zero_if_empty && name[1] == 'o')
			return tree_expr(
			    &g->t, "coalesce(CAST(sum(" ROWS_ALIAS ".c%d) AS " TYPE_MARK "%d), 0)",
			    k, k);
		return tree_expr(&g->t, "CAST(sum(" ROWS_ALIAS ".c%d) AS " TYPE_MARK "%d)", k, k);
	}
	if (f->n_args == 1 && !f->agg_star &&
	    (strcmp(name, "min") == 0 || strcmp(name, "max") == 0 ||
	     strcmp(name, "bool_and") == 0 || strcmp(name, "bool_or") == 0 ||
	     strcmp(name, "every") == 0 || strcmp(name, "bit_and") == 0 ||
	     strcmp(name, "bit_or") == 0 || strcmp(name, "bit_xor") == 0)) {
		/* the aggregate of the partials is the aggregate of the whole */
		const char *final = strcmp(name, "every") == 0 ? "bool_and" : name;

		if ((k = ship_partial(g, n, NULL)) < 0)
			return NULL;
		return keep_collate(g, f, tree_expr(&g->t, "%s(" ROWS_ALIAS ".c%d)", final, k));
	}
	if (strcmp(name, "avg") == 0 && f->n_args == 1 && !f->agg_star) {
		/* the sum of sums over the sum of counts, in the type avg() divides in */
		if ((k = ship_partial(g, n, "sum")) < 0 || (c = ship_partial(g, n, "count")) < 0)
			return NULL;
		/*
		 * The count's sum is numeric; numeric / numeric is avg()'s own
		 * numeric_div, and float8 or interval divide by it as by the
		 * float8 count avg() itself divides by.
		 */
		return tree_expr(&g->t,
		                 "CAST(sum(" ROWS_ALIAS ".c%d) AS " AVG_MARK "%d) / sum(" ROWS_ALIAS
		                 ".c%d)",
		                 k, k, c);
	}
	tree_refuse(&g->t, "the aggregate %s() across shards is not supported (%s are)", shown,
	            combinable);
	return NULL;
}

/*
 * Scalar functions of PostgreSQL's own that a grouped select list often
 * calls (and set-returning ones, which a WHERE would not take): no probe.
 */
static bool known_scalar(const PgQuery__FuncCall *f)
{
	static const char names[] =
	    " abs age array_append array_cat array_length array_lower array_position "
	    "array_remove array_to_json array_to_string array_upper ascii btrim cardinality cbrt "
	    "ceil ceiling char_length character_length chr concat concat_ws date date_part "
	    "date_trunc decode degrees div encode exp extract factorial floor format gcd "
	    "generate_series generate_subscripts initcap isfinite json_array_elements "
	    "json_array_length json_build_array json_build_object json_each json_each_text "
	    "json_extract_path json_extract_path_text json_object_keys json_typeof "
	    "jsonb_array_elements jsonb_array_length jsonb_build_array jsonb_build_object "
	    "jsonb_each jsonb_each_text jsonb_extract_path jsonb_extract_path_text "
	    "jsonb_object_keys jsonb_typeof justify_days justify_hours justify_interval lcm left "
	    "length ln log log10 lower lpad ltrim make_date make_interval make_time "
	    "make_timestamp make_timestamptz md5 mod now octet_length overlay pi position power "
	    "quote_ident quote_literal quote_nullable radians random regexp_match "
	    "regexp_matches regexp_replace regexp_split_to_array regexp_split_to_table repeat "
	    "replace reverse right round row_to_json rpad rtrim scale sign sqrt split_part "
	    "starts_with string_to_array string_to_table strpos substr substring timezone "
	    "to_char to_date to_json to_jsonb to_number to_timestamp translate trim trim_scale "
	    "trunc unnest upper width_bucket ";
	const char *name = tree_catalog_func_name(f);
	char word[72];
	int n;

	if (name == NULL)
		return false;
	if (f->n_funcname == 2)
		return true; /* pg_catalog.x, and not an aggregate: a function of PostgreSQL's own
		              */
	n = snprintf(word, sizeof word, " %s ", name);
	return n > 0 && (size_t)n < sizeof word && strstr(names, word) != NULL;
}

/*
 * A call of a function the router does not know stays in the final query,
 * where an aggregate would aggregate the held rows instead of the shard's:
 * wrong. So each shard's WHERE also holds `true OR f(...) IS NULL`, which
 * PostgreSQL refuses at once when f is an aggregate ("aggregate functions
 * are not allowed in WHERE") and folds to true, without calling f, when it
 * is not. A call with an aggregate in its arguments cannot be one.
 */
static void probe_unknown(gather_t *g, const PgQuery__Node *call)
{
	aggs_scan_t a = {false, false, false};
	PgQuery__Node *copy, *probe;

	for (size_t i = 0; i < call->func_call->n_args; i++)
		gather_aggs_slot(&g->t, &call->func_call->args[i], &a);
	if (a.agg || tree_stopped(&g->t))
		return;
	copy = tree_copy(&g->t, call);
	probe = tree_expr(&g->t, "(true OR 1 IS NULL)");
	if (copy == NULL || probe == NULL || probe->node_case != NODE(BOOL_EXPR) ||
	    probe->bool_expr->n_args != 2 ||
	    probe->bool_expr->args[1]->node_case != NODE(NULL_TEST)) {
		g->t.nomem = !g->t.refused;
		return;
	}
	probe->bool_expr->args[1]->null_test->arg = copy;
	g->probes = tree_and(&g->t, g->probes, probe);
}

/* A function call of the select list that may be a user-defined aggregate. */
static bool unknown_call(const PgQuery__Node *n)
{
	return n->node_case == NODE(FUNC_CALL) && n->func_call->over == NULL &&
	       !gather_is_aggregate(n->func_call) && !known_scalar(n->func_call);
}

/* Probe each such call of a streaming SELECT's select list; subqueries are their shard's own. */
void gather_probe_slot(tree_t *t, PgQuery__Node **slot, void *g)
{
	PgQuery__Node *n = *slot;

	if (n == NULL || tree_stopped(t) || n->node_case == NODE(SUB_LINK))
		return;
	if (unknown_call(n))
		probe_unknown(g, n);
	tree_each_slot(t, tree_inner(n), gather_probe_slot, g);
}

typedef struct unknown_scan {
	bool found;
} unknown_scan_t;

static void unknown_slot(tree_t *t, PgQuery__Node **slot, void *arg)
{
	unknown_scan_t *u = arg;
	PgQuery__Node *n = *slot;

	if (n == NULL || u->found || n->node_case == NODE(SUB_LINK))
		return;
	if (unknown_call(n)) {
		u->found = true;
		return;
	}
	tree_each_slot(t, tree_inner(n), unknown_slot, u);
}

bool gather_calls_unknown(const PgQuery__SelectStmt *s)
{
	unknown_scan_t u = {false};
	tree_t t;

	tree_init(&t);
	for (size_t i = 0; i < s->n_target_list && !u.found; i++)
		if (s->target_list[i]->node_case == NODE(RES_TARGET))
			unknown_slot(&t, &s->target_list[i]->res_target->val, &u);
	tree_free(&t);
	return u.found;
}

static void fin_slot(tree_t *t, PgQuery__Node **slot, void *g);

/*
 * Rewrite an expression of the final query: group expressions read their
 * shipped column, aggregates combine their partials, and nothing else may
 * read the shards' rows.
 */
static void fin_expr(gather_t *g, PgQuery__Node **slot)
{
	PgQuery__Node *n = *slot;
	int k;

	if (n == NULL || tree_stopped(&g->t))
		return;
	if (n->node_case != NODE(COLLATE_CLAUSE) && (k = find_group(g, n)) >= 0) {
		*slot = gather_colref(g, k);
		if (*slot == NULL)
			g->t.nomem = true;
		return;
	}
	switch (n->node_case) {
	case NODE(FUNC_CALL):
		if (n->func_call->over != NULL) {
			tree_refuse(&g->t, "window functions across shards are not supported");
			return;
		}
		if (gather_is_aggregate(n->func_call)) {
			PgQuery__Node *c = combine(g, n);

			if (c != NULL)
				*slot = c;
			else if (!g->t.refused)
				g->t.nomem = true;
			return;
		}
		if (!known_scalar(n->func_call)) {
			const char *up = g->in_unknown;

			probe_unknown(g, n);
			g->in_unknown =
			    tree_last_string(n->func_call->funcname, n->func_call->n_funcname);
			tree_each_slot(&g->t, tree_inner(n), fin_slot, g);
			g->in_unknown = up;
			return;
		}
		break;
	case NODE(COLUMN_REF): {
		char col[128];

		if (tree_is_star(n)) {
			tree_refuse(&g->t,
			            "* with aggregates, GROUP BY or DISTINCT across shards is not "
			            "supported; name the columns");
			return;
		}
		tree_colref_text(n->column_ref, col, sizeof col);
		tree_refuse(
		    &g->t,
		    "column %s must appear in the GROUP BY clause or be used in an aggregate "
		    "function when the query runs on several shards%s%.60s%s",
		    col, g->in_unknown ? " (pgshard knows only built-in aggregates, not " : "",
		    g->in_unknown ? g->in_unknown : "", g->in_unknown ? "())" : "");
		return;
	}
	case NODE(PARAM_REF):
		/* the final query reads it, bound to the client's value (see final_params) */
		if (g->distinct_mode) /* every item is a shipped column there: not reached */
			tree_refuse(
			    &g->t,
			    "parameter $%d outside the select list, WHERE, ORDER BY and "
			    "DISTINCT ON of a SELECT DISTINCT across shards is not supported; "
			    "write its value",
			    n->param_ref->number);
		return;
	case NODE(SUB_LINK):
		tree_refuse(&g->t,
		            "a subquery in the select list, HAVING or ORDER BY of a query with "
		            "aggregates, GROUP BY or DISTINCT across shards is not supported");
		return;
	case NODE(GROUPING_FUNC):
		tree_refuse(&g->t, "GROUPING() across shards is not supported");
		return;
	default:
		break;
	}
	tree_each_slot(&g->t, tree_inner(n), fin_slot, g);
}

static void fin_slot(tree_t *t, PgQuery__Node **slot, void *g)
{
	(void)t;
	fin_expr(g, slot);
}

/* ORDER BY 2, ORDER BY name-of-an-output-column: the final query's output column too. */
static bool names_output(const gather_t *g, const PgQuery__Node *e)
{
	const char *name = tree_bare_name(e);
	int pos;

	if (tree_int_const(e, &pos))
		return true;
	if (name == NULL)
		return false;
	for (size_t i = 0; i < g->s->n_target_list; i++)
		if (g->names[i] != NULL && strcmp(g->names[i], name) == 0)
			return true;
	return false;
}

/* The expression an ORDER BY / DISTINCT ON / GROUP BY item stands for in the shard's terms. */
static const PgQuery__Node *item_expr(const gather_t *g, const PgQuery__Node *e)
{
	const char *name = tree_bare_name(e);
	int pos;

	if (tree_int_const(e, &pos)) {
		if (pos < 1 || (size_t)pos > g->s->n_target_list)
			return NULL;
		return g->s->target_list[pos - 1]->res_target->val;
	}
	if (name != NULL)
		for (size_t i = 0; i < g->s->n_target_list; i++)
			if (g->names[i] != NULL && strcmp(g->names[i], name) == 0)
				return g->s->target_list[i]->res_target->val;
	return e;
}

/*
 * A parameter the final query reads (in the select list, HAVING, ORDER BY
 * or DISTINCT ON, over aggregates) is bound there to the client's value,
 * and its type, when the client's Parse left it unspecified, is what the
 * final query's context infers: the same as the statement's, since each
 * aggregate there is cast back to the type it has in the statement. The
 * shards are bound every parameter too (the client's Bind as it is), so
 * each must be read there as well, with that same type, or PostgreSQL
 * refuses it ("could not determine data type") or reads the value as
 * another type: the expression that holds it goes into the shard's HAVING
 * (the shard groups by the same groups) as `(e) IS NULL OR true`, a HAVING
 * item as `(e) OR true` (coerced to boolean, as HAVING coerces it), which
 * the planner folds to true without evaluating e. A select-list item that
 * is only a parameter is text there, as PostgreSQL types an unknown output
 * column.
 */
static void keep_param_types(gather_t *g, const PgQuery__Node *e, bool having)
{
	PgQuery__Node *keep, *copy;

	if (e == NULL || tree_stopped(&g->t) || tree_find(&g->t, e, NODE(PARAM_REF), false) == NULL)
		return;
	if (!having && e->node_case == NODE(PARAM_REF)) {
		keep = tree_expr(&g->t, "($%d::text IS NULL OR true)", e->param_ref->number);
	} else {
		keep = tree_expr(&g->t, having ? "(NULL OR true)" : "(NULL IS NULL OR true)");
		copy = tree_copy(&g->t, e);
		if (keep == NULL || copy == NULL || keep->node_case != NODE(BOOL_EXPR) ||
		    keep->bool_expr->n_args != 2) {
			g->t.nomem = !g->t.refused;
			return;
		}
		if (having)
			keep->bool_expr->args[0] = copy;
		else if (keep->bool_expr->args[0]->node_case == NODE(NULL_TEST))
			keep->bool_expr->args[0]->null_test->arg = copy;
	}
	if (keep == NULL || (g->sh_having = tree_and(&g->t, g->sh_having, keep)) == NULL)
		g->t.nomem = !g->t.refused;
}

/* An item of the final query rewritten; a parameter it still reads, kept typed on the shards. */
static void fin_item(gather_t *g, PgQuery__Node **slot, bool having)
{
	PgQuery__Node *orig = NULL;

	if (tree_find(&g->t, *slot, NODE(PARAM_REF), false) != NULL &&
	    (orig = tree_copy(&g->t, *slot)) == NULL) {
		g->t.nomem = true;
		return;
	}
	fin_expr(g, slot);
	if (orig != NULL && !tree_stopped(&g->t) &&
	    tree_find(&g->t, *slot, NODE(PARAM_REF), false) != NULL)
		keep_param_types(g, orig, having);
}

/* The final query's parameters numbered again from $1, in order (final_params). */
static void final_param_slot(tree_t *t, PgQuery__Node **slot, void *arg)
{
	gather_t *g = arg;
	PgQuery__Node *n = *slot;
	int k = 0;

	if (n->node_case != NODE(PARAM_REF)) {
		tree_each_slot(t, tree_inner(n), final_param_slot, arg);
		return;
	}
	while (k < g->n_final_params && g->final_params[k] != n->param_ref->number)
		k++;
	if (k == g->n_final_params) {
		if (g->n_final_params == g->cap_final_params) {
			int cap = g->cap_final_params > 0 ? 2 * g->cap_final_params : 8;
			int *grown = tree_alloc(t, sizeof *grown * (size_t)cap);

			if (grown == NULL) {
				t->nomem = true;
				return;
			}
			if (g->n_final_params > 0)
				memcpy(grown, g->final_params,
				       sizeof *grown * (size_t)g->n_final_params);
			g->final_params = grown;
			g->cap_final_params = cap;
		}
		g->final_params[g->n_final_params++] = n->param_ref->number;
	}
	n->param_ref->number = k + 1;
}

/* LIMIT $1 in the final query: the value, as a literal (a text value stays text). */
static void limit_slot(tree_t *t, PgQuery__Node **slot, void *arg)
{
	gather_t *g = arg;
	PgQuery__Node *n = *slot;
	const route_param_t *p;
	int64_t v;
	shard_key_t key;

	if (n->node_case != NODE(PARAM_REF)) {
		tree_each_slot(t, tree_inner(n), limit_slot, arg);
		return;
	}
	p = gather_param_of(g, n->param_ref->number);
	if (p == NULL) {
		if (!g->check)
			tree_refuse(t,
			            "LIMIT/OFFSET across shards needs the value of parameter $%d",
			            n->param_ref->number);
		return;
	}
	if (p->data == NULL || p->len < 0) {
		*slot = tree_text_const(t, NULL, 0, true);
	} else if (p->format == 0) {
		*slot = tree_text_const(t, (const char *)p->data, (size_t)p->len, false);
	} else if (shard_key_from_binary(CFG_KEY_BIGINT, p->type_oid, p->data, (size_t)p->len,
	                                 &key) == 0) {
		v = key.i;
		*slot = tree_int(t, v);
	} else {
		tree_refuse(
		    t,
		    "LIMIT/OFFSET across shards must be an integer (binary parameter $%d is "
		    "not one)",
		    n->param_ref->number);
		return;
	}
	if (*slot == NULL)
		t->nomem = true;
}

static PgQuery__Node *mk_rows_item(gather_t *g)
{
	PgQuery__RangeVar *rv = tree_alloc(&g->t, sizeof *rv);
	PgQuery__Alias *a = tree_alloc(&g->t, sizeof *a);

	if (rv == NULL || a == NULL)
		return NULL;
	pg_query__range_var__init(rv);
	pg_query__alias__init(a);
	a->aliasname = tree_strdup(&g->t, ROWS_ALIAS);
	rv->relname = tree_strdup(&g->t, ROWS_REL);
	rv->relpersistence = tree_strdup(&g->t, "p");
	rv->inh = true;
	rv->alias = a;
	rv->location = -1;
	return tree_node(&g->t, NODE(RANGE_VAR), rv);
}

/* Each GROUP BY item's expression, shipped as a group column. */
static void ship_groups(gather_t *g)
{
	const PgQuery__SelectStmt *s = g->s;

	for (size_t i = 0; i < s->n_group_clause && !tree_stopped(&g->t); i++) {
		const PgQuery__Node *e = s->group_clause[i];
		const char *name = tree_bare_name(e);
		int pos;

		if (e->node_case == NODE(GROUPING_SET)) {
			tree_refuse(
			    &g->t,
			    "GROUPING SETS, ROLLUP and CUBE across shards are not supported");
			return;
		}
		if (tree_int_const(e, &pos)) {
			if (pos < 1 || (size_t)pos > s->n_target_list ||
			    tree_is_star(s->target_list[pos - 1]->res_target->val)) {
				tree_refuse(&g->t, "GROUP BY position %d is not in the select list",
				            pos);
				return;
			}
			e = s->target_list[pos - 1]->res_target->val;
		} else if (name != NULL) {
			/*
			 * PostgreSQL takes a bare GROUP BY name for an input column when
			 * the FROM has one, else for the output column; which one, only
			 * the catalog knows.
			 */
			for (size_t t = 0; t < s->n_target_list; t++) {
				const PgQuery__Node *v = s->target_list[t]->res_target->val;
				const char *tn = g->names[t];

				if (tn == NULL || strcmp(tn, name) != 0)
					continue;
				if (v->node_case == NODE(COLUMN_REF) &&
				    strcmp(tree_last_string(v->column_ref->fields,
				                            v->column_ref->n_fields)
				               ? tree_last_string(v->column_ref->fields,
				                                  v->column_ref->n_fields)
				               : "",
				           name) == 0)
					continue;
				tree_refuse(
				    &g->t,
				    "GROUP BY %s names an output column across shards, which is "
				    "not "
				    "supported; write its position (GROUP BY %zu) or its "
				    "expression",
				    name, t + 1);
				return;
			}
		}
		if (tree_find(&g->t, e, NODE(SUB_LINK), false) != NULL) {
			tree_refuse(&g->t, "a subquery in GROUP BY across shards is not supported");
			return;
		}
		ship_add(g, SHIP_GROUP, e);
	}
}

/* The shard query of a finalizing plan. */
static PgQuery__SelectStmt *shard_select(gather_t *g, PgQuery__WithClause *with,
                                         PgQuery__Node **from, size_t n_from, PgQuery__Node *where)
{
	const PgQuery__SelectStmt *s = g->s;
	PgQuery__SelectStmt *sh = tree_alloc(&g->t, sizeof *sh);
	size_t n_group = 0;

	if (sh == NULL)
		return NULL;
	pg_query__select_stmt__init(sh);
	if ((sh->target_list = tree_list(&g->t, (size_t)g->n_ship)) == NULL ||
	    (sh->group_clause = tree_list(&g->t, (size_t)g->n_ship)) == NULL)
		return NULL;
	sh->op = PG_QUERY__SET_OPERATION__SETOP_NONE;
	sh->limit_option = PG_QUERY__LIMIT_OPTION__LIMIT_OPTION_DEFAULT;
	sh->with_clause = with;
	sh->from_clause = from;
	sh->n_from_clause = n_from;
	sh->where_clause = where;
	for (int i = 0; i < g->n_ship; i++) {
		char name[24];

		snprintf(name, sizeof name, "c%d", i);
		if ((sh->target_list[i] = tree_res_target(&g->t, name, g->ship[i].expr)) == NULL)
			return NULL;
		if (!g->distinct_mode && g->ship[i].kind != SHIP_PART &&
		    (sh->group_clause[n_group++] = tree_int(&g->t, i + 1)) == NULL)
			return NULL;
	}
	sh->n_target_list = (size_t)g->n_ship;
	sh->n_group_clause = n_group;
	sh->having_clause = g->sh_having;
	if (!g->distinct_mode)
		return sh;
	/* DISTINCT: each shard's distinct rows; DISTINCT ON: each shard's first of each */
	sh->n_group_clause = 0;
	sh->distinct_clause = g->sh_distinct;
	sh->n_distinct_clause = s->n_distinct_clause;
	if (g->sh_sort != NULL) {
		sh->sort_clause = g->sh_sort;
		sh->n_sort_clause = s->n_sort_clause;
	}
	return sh;
}

/*
 * DISTINCT and DISTINCT ON of the shard query, in terms of its FROM (a
 * position or an output name stands for its select-list expression), taken
 * before the final query's rewrite changes the select list.
 */
static bool shard_distinct(gather_t *g, bool plain)
{
	const PgQuery__SelectStmt *s = g->s;

	g->sh_distinct = tree_list(&g->t, s->n_distinct_clause);
	if (g->sh_distinct == NULL)
		return false;
	for (size_t i = 0; i < s->n_distinct_clause; i++) {
		const PgQuery__Node *e = s->distinct_clause[i];

		g->sh_distinct[i] = plain ? tree_copy(&g->t, e) : tree_copy(&g->t, item_expr(g, e));
		if (g->sh_distinct[i] == NULL)
			return false;
	}
	if (plain)
		return true; /* the final query orders the distinct rows */
	g->sh_sort = tree_list(&g->t, s->n_sort_clause);
	if (g->sh_sort == NULL)
		return false;
	for (size_t i = 0; i < s->n_sort_clause; i++) {
		PgQuery__Node *sb = tree_copy(&g->t, s->sort_clause[i]);
		PgQuery__Node *e;

		if (sb == NULL)
			return false;
		e = sb->sort_by->node;
		if (e != NULL && e->node_case != NODE(COLLATE_CLAUSE) &&
		    (sb->sort_by->node = tree_copy(&g->t, item_expr(g, e))) == NULL)
			return false;
		g->sh_sort[i] = sb;
	}
	return true;
}

int gather_plan_finalizing(gather_t *g, const aggs_scan_t *a, PgQuery__SelectStmt **shard)
{
	PgQuery__SelectStmt *s = g->s;
	PgQuery__WithClause *with = s->with_clause;
	PgQuery__Node **from = s->from_clause, *where = s->where_clause;
	size_t n_from = s->n_from_clause;
	bool plain_distinct =
	    s->n_distinct_clause == 1 && s->distinct_clause[0]->node_case == NODE(_NOT_SET);
	int n_group = 0;
	PgQuery__Node **group;

	g->distinct_mode = !a->agg && s->n_group_clause == 0 && s->having_clause == NULL;
	g->zero_if_empty = s->n_group_clause == 0 && a->distinct_agg;
	for (size_t i = 0; i < s->n_target_list; i++)
		if (tree_is_star(s->target_list[i]->res_target->val)) {
			tree_refuse(&g->t,
			            "* with aggregates, GROUP BY or DISTINCT across shards is not "
			            "supported; name the columns");
			return -1;
		}
	if (g->distinct_mode) {
		/* the rows themselves are the groups */
		for (size_t i = 0; i < s->n_target_list; i++)
			ship_add(g, SHIP_GROUP, s->target_list[i]->res_target->val);
		for (size_t i = 0;
		     i < s->n_distinct_clause + s->n_sort_clause && !tree_stopped(&g->t); i++) {
			const PgQuery__Node *e, *x;

			if (i < s->n_distinct_clause) {
				if (plain_distinct)
					continue;
				e = s->distinct_clause[i];
			} else {
				e = s->sort_clause[i - s->n_distinct_clause]->sort_by->node;
			}
			if ((x = item_expr(g, e)) == NULL) {
				tree_refuse(&g->t, "%s position is not in the select list",
				            i < s->n_distinct_clause ? "DISTINCT ON" : "ORDER BY");
				return -1;
			}
			if (tree_find(&g->t, x, NODE(SUB_LINK), false) != NULL) {
				tree_refuse(
				    &g->t,
				    "a subquery in DISTINCT ON or ORDER BY across shards is not "
				    "supported");
				return -1;
			}
			ship_add(g, SHIP_GROUP, x);
		}
		if (!tree_stopped(&g->t) && !shard_distinct(g, plain_distinct))
			goto nomem;
	} else {
		ship_groups(g);
	}
	if (tree_stopped(&g->t))
		return -1;
	for (int i = 0; i < g->n_ship; i++)
		if (g->ship[i].kind == SHIP_GROUP)
			n_group++;

	/* the final query: the statement over the held rows */
	for (size_t i = 0; i < s->n_target_list && !tree_stopped(&g->t); i++) {
		PgQuery__ResTarget *r = s->target_list[i]->res_target;

		if (r->n_indirection > 0) {
			tree_refuse(&g->t, "a select-list entry with indirection is not supported");
			return -1;
		}
		r->name = (char *)g->names[i];
		fin_item(g, &r->val, false);
	}
	if (s->having_clause != NULL)
		fin_item(g, &s->having_clause, true);
	for (size_t i = 0; i < s->n_sort_clause && !tree_stopped(&g->t); i++) {
		PgQuery__SortBy *sb = s->sort_clause[i]->sort_by;

		if (!names_output(g, sb->node))
			fin_item(g, &sb->node, false);
	}
	for (size_t i = 0; i < s->n_distinct_clause && !plain_distinct && !tree_stopped(&g->t); i++)
		if (!names_output(g, s->distinct_clause[i]))
			fin_item(g, &s->distinct_clause[i], false);
	if (s->limit_count != NULL && !tree_stopped(&g->t))
		limit_slot(&g->t, &s->limit_count, g);
	if (s->limit_offset != NULL && !tree_stopped(&g->t))
		limit_slot(&g->t, &s->limit_offset, g);
	if (tree_stopped(&g->t))
		return -1;
	if (g->n_ship == 0 && ship_add(g, SHIP_PART, tree_expr(&g->t, "count(*)")) < 0) {
		g->t.nomem = !g->t.refused;
		return -1;
	}

	group = tree_list(&g->t, (size_t)n_group);
	s->from_clause = tree_list(&g->t, 1);
	if (group == NULL || s->from_clause == NULL ||
	    (s->from_clause[0] = mk_rows_item(g)) == NULL)
		goto nomem;
	n_group = 0;
	for (int i = 0; i < g->n_ship && !g->distinct_mode; i++)
		if (g->ship[i].kind == SHIP_GROUP &&
		    (group[n_group++] = gather_colref(g, i)) == NULL)
			goto nomem;
	s->n_from_clause = 1;
	s->where_clause = NULL;
	s->with_clause = NULL;
	s->group_clause = group;
	s->n_group_clause = (size_t)n_group;
	s->group_distinct = false;
	tree_each_slot(&g->t, &s->base, final_param_slot, g);
	if (tree_stopped(&g->t))
		goto nomem;

	if (g->probes != NULL && (where = tree_and(&g->t, where, g->probes)) == NULL)
		goto nomem;
	*shard = shard_select(g, with, from, n_from, where);
	if (*shard == NULL)
		goto nomem;
	return 0;
nomem:
	g->t.nomem = !g->t.refused;
	return -1;
}
