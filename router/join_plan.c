/*
 * join_plan.c — joins of two sharded tables across shards, planned as steps
 * (see join_plan.h for the steps and why they give PostgreSQL's answer).
 *
 * The statement is parsed again into a tree arena (router/tree.h) and read
 * for its shape; the three statements are then written from its own nodes:
 * the sides' statements from the join column and the conjuncts pushed down,
 * the final one from the whole tree with each table's RangeVar replaced by
 * unnest($n::table[]) under the same alias. Where each side's statement
 * runs is the router's own answer for it (route_statement), so a pushed
 * `o.user_id = 7` pins the driving side as it would pin a query of its own.
 */
#include "router/join_plan.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/join_int.h"
#include "router/route_int.h"
#include "router/tree.h"

const char *join_kind_name(join_kind_t k)
{
	switch (k) {
	case JOIN_INNER:
		return "inner";
	case JOIN_LEFT:
		return "left";
	case JOIN_RIGHT:
		return "right";
	case JOIN_SEMI:
		return "semi";
	case JOIN_FULL:
		return "full";
	case JOIN_OUTER:
		return "outer";
	case JOIN_ALONE:
		return "alone";
	case JOIN_WHOLE:
		return "whole";
	}
	return "?";
}

static int no(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Not a join planned here: why, in err; 0. */
static int no(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return 0;
}

/* What a subtree reads: column references by side, and what keeps it from going down. */
typedef struct scan {
	const char *alias[JOIN_MAX_SIDES];
	int refs[JOIN_MAX_SIDES];
	int unknown_refs; /* unqualified, or qualified by neither side */
	int bare_refs;    /* ... of them unqualified */
	int range_vars, other_from, params, funcs, sublinks;
	int max_param; /* the highest $n */
	const cfg_t *cfg;
	const PgQuery__RangeVar *sides[JOIN_MAX_SIDES]; /* the sharded tables' RangeVars */
	int other_tables; /* RangeVars of neither side nor a reference table */
} scan_t;

/* The side a qualifier names, or -1. */
static int side_of(const scan_t *s, const char *qual)
{
	for (int i = 0; i < JOIN_MAX_SIDES; i++)
		if (qual != NULL && s->alias[i] != NULL && strcmp(qual, s->alias[i]) == 0)
			return i;
	return -1;
}

/* `q.c`: its qualifier and column; false for any other column reference. */
static bool colref2(const PgQuery__Node *n, const char **qual, const char **col)
{
	const PgQuery__ColumnRef *c;

	if (n == NULL || n->node_case != NODE(COLUMN_REF))
		return false;
	c = n->column_ref;
	if (c->n_fields != 2)
		return false;
	*qual = tree_str_of(c->fields[0]);
	*col = tree_str_of(c->fields[1]);
	return *qual != NULL && *col != NULL;
}

static void scan_slot(tree_t *t, PgQuery__Node **slot, void *arg)
{
	scan_t *s = arg;
	const char *q, *c;

	switch ((*slot)->node_case) {
	case NODE(COLUMN_REF): {
		int side = colref2(*slot, &q, &c) ? side_of(s, q) : -1;

		if (side >= 0)
			s->refs[side]++;
		else
			s->unknown_refs++;
		if (side < 0 && (*slot)->column_ref->n_fields == 1)
			s->bare_refs++;
		return;
	}
	case NODE(RANGE_VAR): {
		const PgQuery__RangeVar *rv = (*slot)->range_var;
		int k;

		s->range_vars++;
		for (int i = 0; i < JOIN_MAX_SIDES; i++)
			if (rv == s->sides[i])
				return;
		k = tables_find(s->cfg, rv->catalogname, rv->schemaname, rv->relname);
		if (k < 0 || !s->cfg->tables[k].reference)
			s->other_tables++; /* reference tables are on the final statement's shard */
		break;
	}
	case NODE(RANGE_SUBSELECT):
	case NODE(RANGE_FUNCTION):
	case NODE(RANGE_TABLE_FUNC):
	case NODE(COMMON_TABLE_EXPR):
		s->other_from++;
		break;
	case NODE(PARAM_REF):
		s->params++;
		if ((*slot)->param_ref->number > s->max_param)
			s->max_param = (*slot)->param_ref->number;
		break;
	case NODE(FUNC_CALL):
	case NODE(SQLVALUE_FUNCTION): /* CURRENT_DATE: its value at the final statement counts */
		s->funcs++;
		break;
	case NODE(SUB_LINK):
		s->sublinks++;
		break;
	default:
		break;
	}
	tree_each_slot(t, tree_inner(*slot), scan_slot, arg);
}

static void scan_node(tree_t *t, scan_t *s, PgQuery__Node *n)
{
	memset(s->refs, 0, sizeof s->refs);
	s->unknown_refs = s->range_vars = s->other_from = s->params = s->funcs = s->sublinks = 0;
	s->bare_refs = 0;
	s->max_param = s->other_tables = 0;
	if (n != NULL)
		scan_slot(t, &n, s);
}

/* The conjuncts of an AND (or the one expression), appended to v. */
typedef struct conj {
	PgQuery__Node *v[64];
	bool on[64];   /* from a join's ON (else the WHERE) */
	int owner[64]; /* the side whose subquery's WHERE it is in; -1: the statement's own */
	int n;
	bool cut; /* more than fit: the rest stay with the final statement only */
} conj_t;

static void conj_add(conj_t *c, PgQuery__Node *n, bool on, int owner)
{
	if (n == NULL)
		return;
	if (n->node_case == NODE(BOOL_EXPR) &&
	    n->bool_expr->boolop == PG_QUERY__BOOL_EXPR_TYPE__AND_EXPR) {
		for (size_t i = 0; i < n->bool_expr->n_args; i++)
			conj_add(c, n->bool_expr->args[i], on, owner);
		return;
	}
	if (c->n == (int)(sizeof c->v / sizeof c->v[0])) {
		c->cut = true;
		return;
	}
	c->v[c->n] = n;
	c->on[c->n] = on;
	c->owner[c->n] = owner;
	c->n++;
}

/* `a.x = b.y` between two sides: which (s1, s2) and their columns, or false. */
typedef struct edge {
	int s[2];
	const char *col[2];
	bool directed; /* only s[0]'s keys may fetch s[1]'s rows (a subquery's side) */
	int conj;      /* the conjunct it is (the statement's own equalities) */
} edge_t;

static bool equi_conjunct(const scan_t *s, const PgQuery__Node *n, edge_t *out)
{
	const PgQuery__AExpr *e;
	const char *q1, *c1, *q2, *c2, *op;
	int s1, s2;

	if (n->node_case != NODE(A_EXPR))
		return false;
	e = n->a_expr;
	op = e->kind == PG_QUERY__A__EXPR__KIND__AEXPR_OP ? where_op_name(e) : NULL;
	if (op == NULL || strcmp(op, "=") != 0 || !colref2(e->lexpr, &q1, &c1) ||
	    !colref2(e->rexpr, &q2, &c2))
		return false;
	s1 = side_of(s, q1);
	s2 = side_of(s, q2);
	if (s1 < 0 || s2 < 0 || s1 == s2)
		return false;
	out->s[0] = s1;
	out->s[1] = s2;
	out->col[0] = c1;
	out->col[1] = c2;
	return true;
}

/*
 * The router's own answer for where a side's statement runs, with the
 * client's parameters its filters use (given only to the driving side's
 * statement, whose parameters are all the client's; the probe's $1 is
 * unknown until the keys come, so its others are left unknown too).
 */
static int side_shards(const route_ctx_t *ctx, join_side_t *side, const route_param_t *params,
                       int n_params)
{
	route_param_t given[JOIN_MAX_PARAMS];
	route_plan_t p;
	int n = 0;

	while (params != NULL && n < side->n_params && side->params[n] <= n_params) {
		given[n] = params[side->params[n] - 1];
		n++;
	}
	if (ctx->route(ctx, side->sql, n > 0 ? given : NULL, n, &p) < 0)
		return -1;
	if (p.kind == ROUTE_SHARDS && shard_set_count(&p.shards) > 0)
		side->shards = p.shards;
	else
		side->shards = ctx->maps[side->map].all;
	return 0;
}

/*
 * The client's parameters in a side's pushed conjuncts, numbered again from
 * offset + 1 in order of first appearance (side->params says whose each
 * is), for as long as its statement is written; then put back, since the
 * same nodes are the final statement's.
 */
#define JOIN_MAX_REFS 4096

typedef struct renum {
	PgQuery__ParamRef *refs[JOIN_MAX_REFS];
	int old[JOIN_MAX_REFS];
	int n_refs;
	join_side_t *side;
	int offset;
	bool over;
} renum_t;

static void renum_slot(tree_t *t, PgQuery__Node **slot, void *arg)
{
	renum_t *r = arg;

	if ((*slot)->node_case == NODE(PARAM_REF)) {
		PgQuery__ParamRef *p = (*slot)->param_ref;
		join_side_t *side = r->side;
		int k = 0;

		while (k < side->n_params && side->params[k] != p->number)
			k++;
		if (r->n_refs == JOIN_MAX_REFS || (k == side->n_params && k == JOIN_MAX_PARAMS)) {
			r->over = true;
			return;
		}
		if (k == side->n_params)
			side->params[side->n_params++] = p->number;
		r->refs[r->n_refs] = p;
		r->old[r->n_refs++] = p->number;
		p->number = r->offset + k + 1;
		return;
	}
	tree_each_slot(t, tree_inner(*slot), renum_slot, arg);
}

/*
 * A side's statement: `SELECT <targets> FROM <its RangeVar> [WHERE <where>]`,
 * with the side's pushed conjuncts ANDed to where, their parameters numbered
 * from offset + 1.
 */
static char *side_sql(tree_t *t, const char *targets, PgQuery__Node *rv, PgQuery__Node *where,
                      const conj_t *c, const bool *push, join_side_t *side, int offset)
{
	char text[512], *sql;
	PgQuery__ParseResult *tree;
	PgQuery__SelectStmt *s;
	renum_t *r = calloc(1, sizeof *r);

	if (r == NULL) {
		t->nomem = true;
		return NULL;
	}
	r->side = side;
	r->offset = offset;
	side->n_params = 0;

	snprintf(text, sizeof text, "SELECT %s FROM pgshard_join", targets);
	tree = tree_parse(t, text);
	if (tree == NULL || tree->n_stmts != 1 ||
	    tree->stmts[0]->stmt->node_case != NODE(SELECT_STMT)) {
		free(r);
		return NULL;
	}
	s = tree->stmts[0]->stmt->select_stmt;
	s->from_clause[0] = rv;
	for (int i = 0; i < c->n; i++) {
		PgQuery__Node *n = c->v[i];

		if (!push[i])
			continue;
		renum_slot(t, &n, r);
		where = tree_and(t, where, c->v[i]);
	}
	s->where_clause = where;
	if (r->over)
		tree_refuse(t,
		            "a join across shards is planned with at most %d parameters in a "
		            "side's filters",
		            JOIN_MAX_PARAMS);
	sql = tree_stopped(t) ? NULL : tree_deparse_select(t, s, "a join side's statement");
	for (int i = 0; i < r->n_refs; i++)
		r->refs[i]->number = r->old[i];
	free(r);
	return sql;
}

/*
 * A co-located pair's statement (join_group.c), with both tables' pushed
 * conjuncts, their parameters numbered from offset + 1 as side_sql does.
 */
static char *group_sql(tree_t *t, join_group_in_t *g, const conj_t *c, const bool *push0,
                       const bool *push1, join_side_t *side, int offset)
{
	PgQuery__SelectStmt *s;
	char *sql = NULL;
	renum_t *r = calloc(1, sizeof *r);

	if (r == NULL) {
		t->nomem = true;
		return NULL;
	}
	r->side = side;
	r->offset = offset;
	side->n_params = 0;
	for (int i = 0; i < c->n; i++) {
		PgQuery__Node *n = c->v[i];

		if (!push0[i] && !push1[i])
			continue;
		g->filters[push0[i] ? 0 : 1][g->n_filters[push0[i] ? 0 : 1]++] = n;
		renum_slot(t, &n, r);
	}
	if (r->over)
		tree_refuse(t,
		            "a join across shards is planned with at most %d parameters in a "
		            "side's filters",
		            JOIN_MAX_PARAMS);
	s = tree_stopped(t) ? NULL : join_group_stmt(t, g);
	if (s != NULL)
		sql = tree_deparse_select(t, s, "a co-located pair's statement");
	else if (!tree_stopped(t))
		tree_refuse(t, "cannot write a co-located pair's statement");
	for (int i = 0; i < r->n_refs; i++)
		r->refs[i]->number = r->old[i];
	free(r);
	return sql;
}

/*
 * Co-located pairs (see join_plan.h): two tables of the statement's FROM,
 * of one map, inner-joined by an equality of their shard keys; mate[k] is
 * k's partner (-1: none), on[k] the equality's conjunct.
 */
static void find_pairs(const join_side_t *side, const edge_t *edges, int n_edges, int n_from,
                       int *mate, int *on)
{
	for (int e = 0; e < n_edges; e++) {
		int a = edges[e].s[0], b = edges[e].s[1];

		if (edges[e].directed || a >= n_from || b >= n_from || mate[a] >= 0 ||
		    mate[b] >= 0 || side[a].map != side[b].map ||
		    strcmp(edges[e].col[0], side[a].table->key) != 0 ||
		    strcmp(edges[e].col[1], side[b].table->key) != 0)
			continue;
		mate[a] = b;
		mate[b] = a;
		on[a] = on[b] = edges[e].conj;
	}
}

/*
 * The FROM list: exactly two sharded tables (their slots), reference
 * tables, inner joins between them (their ONs), or a single outer join of
 * the two sharded tables alone.
 */
#define JOIN_MAX_QUALS 32

typedef struct from_walk {
	const cfg_t *cfg;
	PgQuery__Node **slot[JOIN_MAX_SIDES];
	int n_sharded, n_ref, n_joins;
	bool outer, full;
	PgQuery__JoinExpr *first; /* the first join met */
	PgQuery__Node *quals[JOIN_MAX_QUALS];
	int n_quals;
	const char *bad;
} from_walk_t;

static void from_item(from_walk_t *fw, PgQuery__Node **slot)
{
	PgQuery__Node *n = *slot;

	if (fw->bad != NULL || n == NULL)
		return;
	if (n->node_case == NODE(RANGE_VAR)) {
		const PgQuery__RangeVar *rv = n->range_var;
		int k = tables_find(fw->cfg, rv->catalogname, rv->schemaname, rv->relname);

		if (k >= 0 && tables_is_sharded(&fw->cfg->tables[k])) {
			if (fw->n_sharded == JOIN_MAX_SIDES)
				fw->bad =
				    "a join across shards is planned for at most 4 sharded tables";
			else
				fw->slot[fw->n_sharded++] = slot;
		} else if (k >= 0 && fw->cfg->tables[k].reference) {
			fw->n_ref++;
		} else {
			fw->bad =
			    "a join across shards is planned between sharded and reference "
			    "tables (a table that is not in the config is on the default shard "
			    "only)";
		}
		return;
	}
	if (n->node_case == NODE(JOIN_EXPR)) {
		PgQuery__JoinExpr *j = n->join_expr;

		if (j->is_natural || j->n_using_clause > 0 || j->alias != NULL) {
			fw->bad =
			    "a join across shards is planned with ON a.x = b.y (not NATURAL or "
			    "USING, nor an alias for the join)";
			return;
		}
		if (j->jointype == PG_QUERY__JOIN_TYPE__JOIN_LEFT ||
		    j->jointype == PG_QUERY__JOIN_TYPE__JOIN_RIGHT)
			fw->outer = true;
		else if (j->jointype == PG_QUERY__JOIN_TYPE__JOIN_FULL)
			fw->outer = fw->full = true;
		else if (j->jointype != PG_QUERY__JOIN_TYPE__JOIN_INNER) {
			fw->bad =
			    "only inner, left, right and full joins across shards are planned";
			return;
		}
		if (fw->n_joins++ == 0)
			fw->first = j;
		if (j->quals != NULL) {
			if (fw->n_quals == JOIN_MAX_QUALS) {
				fw->bad = "too many joins";
				return;
			}
			fw->quals[fw->n_quals++] = j->quals;
		}
		from_item(fw, &j->larg);
		from_item(fw, &j->rarg);
		return;
	}
	fw->bad = "a join across shards is planned between tables (not subqueries or functions in "
	          "FROM)";
}

/*
 * Subqueries over a sharded table: sides of the join too, when an equality
 * ties them to a side fetched before them, which is what makes their
 * answers exact with only the rows those keys fetch:
 *
 *   - a correlation `b.y = a.x` among the conjuncts of the subquery's WHERE:
 *     whatever the subquery is (EXISTS, NOT EXISTS, IN, NOT IN, a scalar
 *     or ARRAY subquery, with GROUP BY or LIMIT), it only ever reads b's rows
 *     whose y equals the outer row's x, and those are all fetched;
 *   - `a.x IN (SELECT b.y FROM b ...)` as a condition of the statement's
 *     WHERE, the subquery plain (no LIMIT, DISTINCT, GROUP BY, HAVING,
 *     windows): true exactly when a matching row is there, and false or NULL
 *     (the same to a WHERE condition) otherwise. Not NOT IN, nor an IN
 *     under OR or NOT: a NULL among b's values changes their answers.
 *
 * The subquery must read its sharded table alone in its FROM. A filter of
 * the subquery's own WHERE on b alone goes down with b; one on the outer
 * table stays (inside a NOT EXISTS it keeps the outer rows).
 */
typedef struct subside {
	PgQuery__SubLink *link;
	PgQuery__SelectStmt *q;
	PgQuery__Node **slot;
} subside_t;

typedef struct subwalk {
	const cfg_t *cfg;
	subside_t v[JOIN_MAX_SIDES];
	int n;
	const char *bad;
} subwalk_t;

static bool range_var_sharded(const cfg_t *cfg, const PgQuery__Node *n)
{
	const PgQuery__RangeVar *rv;
	int k;

	if (n == NULL || n->node_case != NODE(RANGE_VAR))
		return false;
	rv = n->range_var;
	k = tables_find(cfg, rv->catalogname, rv->schemaname, rv->relname);
	return k >= 0 && tables_is_sharded(&cfg->tables[k]);
}

static void sub_slot(tree_t *t, PgQuery__Node **slot, void *arg)
{
	subwalk_t *w = arg;

	if (w->bad != NULL)
		return;
	if ((*slot)->node_case == NODE(SUB_LINK) && (*slot)->sub_link->subselect != NULL &&
	    (*slot)->sub_link->subselect->node_case == NODE(SELECT_STMT)) {
		PgQuery__SelectStmt *q = (*slot)->sub_link->subselect->select_stmt;

		if (q->n_from_clause == 1 && range_var_sharded(w->cfg, q->from_clause[0])) {
			if (w->n == JOIN_MAX_SIDES) {
				w->bad =
				    "a join across shards is planned for at most 4 sharded tables";
				return;
			}
			w->v[w->n].link = (*slot)->sub_link;
			w->v[w->n].q = q;
			w->v[w->n].slot = &q->from_clause[0];
			w->n++;
		}
	}
	tree_each_slot(t, tree_inner(*slot), sub_slot, arg);
}

/* `a.x IN (SELECT b.y FROM b ...)`, plain, as the conjunct n itself. */
static bool in_conjunct(const PgQuery__Node *n, const subside_t *sub)
{
	const PgQuery__SubLink *l = sub->link;
	const PgQuery__SelectStmt *q = sub->q;

	if (n->node_case != NODE(SUB_LINK) || n->sub_link != l ||
	    l->sub_link_type != PG_QUERY__SUB_LINK_TYPE__ANY_SUBLINK)
		return false;
	if (l->n_oper_name > 1 ||
	    (l->n_oper_name == 1 && !streq(tree_str_of(l->oper_name[0]), "=")))
		return false;
	return q->op == PG_QUERY__SET_OPERATION__SETOP_NONE && q->with_clause == NULL &&
	       q->limit_count == NULL && q->limit_offset == NULL && q->n_distinct_clause == 0 &&
	       q->n_group_clause == 0 && q->having_clause == NULL && q->n_window_clause == 0 &&
	       q->n_target_list == 1 && q->target_list[0]->node_case == NODE(RES_TARGET);
}

/*
 * The IN's equality: the outer column (qualified by a FROM side, or bare
 * when that side is the statement's only table) and the subquery's column.
 */
static bool in_edge(const scan_t *sc, const subside_t *sub, int k, int n_from, bool bare_ok,
                    edge_t *e)
{
	const PgQuery__Node *v = sub->q->target_list[0]->res_target->val;
	const char *qual, *name;
	int j = -1;

	if (colref2(sub->link->testexpr, &qual, &name))
		j = side_of(sc, qual);
	else if (bare_ok && (name = tree_bare_name(sub->link->testexpr)) != NULL)
		j = 0;
	if (j < 0 || j >= n_from)
		return false;
	e->s[0] = j;
	e->col[0] = name;
	e->s[1] = k;
	if (colref2(v, &qual, &name) && side_of(sc, qual) == k)
		e->col[1] = name;
	else if ((name = tree_bare_name(v)) != NULL)
		e->col[1] = name;
	else
		return false;
	e->directed = true;
	return true;
}

/* The statement's shape: 1 a join planned here, 0 not (why in err). */
static int plan_tree(const route_ctx_t *ctx, tree_t *t, PgQuery__ParseResult *tree,
                     const route_param_t *params, int n_params, join_plan_t *out, char *err,
                     size_t errlen)
{
	PgQuery__SelectStmt *s;
	PgQuery__Node **slot[JOIN_MAX_SIDES];
	PgQuery__RangeVar *rv[JOIN_MAX_SIDES];
	join_side_t side[JOIN_MAX_SIDES];
	edge_t edges[16];
	scan_t sc;
	conj_t c;
	bool push[JOIN_MAX_SIDES][64], fetched[JOIN_MAX_SIDES];
	subwalk_t sw;
	char qa[140], qc[140], targets[900];
	int n = 0, n_from, n_ref = 0, n_edges = 0, d, order[JOIN_MAX_SIDES], n_order;
	int mate[JOIN_MAX_SIDES], mate_on[JOIN_MAX_SIDES], lead[JOIN_MAX_SIDES];
	bool whole = false; /* every side fetched whole (see join_side_t.whole) */
	bool nopush = false, bare0 = false;

	memset(side, 0, sizeof side);
	memset(&sc, 0, sizeof sc);
	memset(&c, 0, sizeof c);
	memset(push, 0, sizeof push);
	memset(fetched, 0, sizeof fetched);
	memset(&sw, 0, sizeof sw);
	for (int k = 0; k < JOIN_MAX_SIDES; k++)
		mate[k] = mate_on[k] = -1, lead[k] = k;
	if (tree->n_stmts != 1 || tree->stmts[0]->stmt == NULL ||
	    tree->stmts[0]->stmt->node_case != NODE(SELECT_STMT))
		return no(err, errlen, "not one SELECT");
	s = tree->stmts[0]->stmt->select_stmt;
	if (s->op != PG_QUERY__SET_OPERATION__SETOP_NONE || s->with_clause != NULL ||
	    s->into_clause != NULL || s->n_locking_clause > 0 || s->n_values_lists > 0)
		return no(err, errlen,
		          "a join across shards is planned only in a plain SELECT (no "
		          "WITH, set operation, INTO or FOR UPDATE/SHARE)");
	{
		from_walk_t fw;

		memset(&fw, 0, sizeof fw);
		fw.cfg = ctx->cfg;
		for (size_t i = 0; i < s->n_from_clause; i++)
			from_item(&fw, &s->from_clause[i]);
		if (fw.bad != NULL)
			return no(err, errlen, "%s", fw.bad);
		for (int i = 0; i < fw.n_sharded; i++)
			slot[i] = fw.slot[i];
		n = n_from = fw.n_sharded;
		/* and the sharded tables its subqueries read */
		sw.cfg = ctx->cfg;
		{
			PgQuery__Node *root = tree->stmts[0]->stmt;

			sub_slot(t, &root, &sw);
		}
		if (sw.bad != NULL)
			return no(err, errlen, "%s", sw.bad);
		if (n_from + sw.n > JOIN_MAX_SIDES)
			return no(err, errlen,
			          "a join across shards is planned for at most 4 sharded "
			          "tables");
		if (fw.outer && sw.n > 0)
			return no(err, errlen,
			          "an outer join across shards is planned without subqueries over "
			          "sharded tables");
		for (int i = 0; i < sw.n; i++)
			slot[n++] = sw.v[i].slot;
		out->kind = n_from == 1 ? JOIN_SEMI : JOIN_INNER;
		if (out->n_subs > 0 && sw.n == 0 && n_from <= 1) {
			/* subqueries run first, and at most one sharded table: fetched whole, with
			   the WHERE's filters on it alone when nothing else is in FROM (then its
			   bare column names are its own) and no outer join could keep its rows */
			out->kind = JOIN_ALONE;
			whole = true;
			nopush = fw.outer;
			bare0 =
			    n_from == 1 && s->n_from_clause == 1 && s->from_clause[0] == *slot[0];
		} else if (n_from == 0 || n < 2)
			return no(err, errlen,
			          "planned for two sharded tables or more, or one and an IN or "
			          "[NOT] EXISTS subquery over another tied to it by an equality");
		for (int i = 0; i < sw.n; i++)
			conj_add(&c, sw.v[i].q->where_clause, false, n_from + i);
		if (fw.outer && out->kind != JOIN_ALONE) {
			/* an outer join of two sharded tables alone, a JOIN b: the preserved side
			   drives; a FULL join, or outer joins among other joins or reference
			   tables: every sharded table fetched whole, no filter pushed down (which
			   rows an outer join keeps depends on all of them) */
			PgQuery__JoinExpr *j = fw.first;
			bool alone = fw.n_joins == 1 && fw.n_ref == 0 && n == 2 &&
			             s->n_from_clause == 1 && j->larg == *slot[0] &&
			             j->rarg == *slot[1];

			if (alone && !fw.full)
				out->kind = j->jointype == PG_QUERY__JOIN_TYPE__JOIN_LEFT
				                ? JOIN_LEFT
				                : JOIN_RIGHT;
			else {
				out->kind = alone ? JOIN_FULL : JOIN_OUTER;
				whole = nopush = true;
			}
		}
		for (int i = 0; i < fw.n_quals; i++)
			conj_add(&c, fw.quals[i], true, -1);
		n_ref = fw.n_ref;
	}
	for (int i = 0; i < n; i++) {
		int k;

		rv[i] = (*slot[i])->range_var;
		sc.sides[i] = rv[i];
		k = tables_find(ctx->cfg, rv[i]->catalogname, rv[i]->schemaname, rv[i]->relname);
		if (k < 0 || !tables_is_sharded(&ctx->cfg->tables[k]))
			return no(err, errlen,
			          "a join across shards is planned between sharded tables");
		if (!rv[i]->inh)
			return no(err, errlen, "ONLY is not planned in a join across shards");
		side[i].table = &ctx->cfg->tables[k];
		side[i].map = side[i].table->map;
		side[i].left = i == 0;
		side[i].written = i;
		side[i].sub = i >= n_from;
		side[i].src = -1;
		snprintf(side[i].alias, sizeof side[i].alias, "%s",
		         where_alias_of(rv[i]) != NULL ? where_alias_of(rv[i]) : rv[i]->relname);
		sc.alias[i] = side[i].alias;
		for (int k2 = 0; k2 < i; k2++)
			if (strcmp(side[k2].alias, side[i].alias) == 0)
				return no(err, errlen, "two tables are named %s", side[i].alias);
	}
	sc.cfg = ctx->cfg;
	scan_node(t, &sc, tree->stmts[0]->stmt);
	if (sc.other_tables > 0 || sc.other_from > 0)
		return no(err, errlen,
		          "a join across shards is planned when the statement reads no "
		          "other table than its sharded tables and reference tables, and no "
		          "subquery in FROM or CTE");
	if (out->n_subs == 0)
		out->n_params = sc.max_param; /* else the client's, before the subqueries' */
	conj_add(&c, s->where_clause, false, -1);

	/* the equalities between sides: the statement's own (between its FROM's tables),
	   a subquery's correlation (its table by the other's keys), an IN's */
	for (int i = 0; i < c.n && n_edges < (int)(sizeof edges / sizeof edges[0]); i++) {
		edge_t *e = &edges[n_edges];

		if (c.owner[i] < 0) {
			bool ok = out->kind == JOIN_INNER || out->kind == JOIN_SEMI || c.on[i];

			if (ok && equi_conjunct(&sc, c.v[i], e) && e->s[0] < n_from &&
			    e->s[1] < n_from) {
				e->directed = false;
				e->conj = i;
				n_edges++;
			}
			for (int k = 0; k < sw.n && n_edges < (int)(sizeof edges / sizeof edges[0]);
			     k++)
				if (in_conjunct(c.v[i], &sw.v[k]) &&
				    in_edge(&sc, &sw.v[k], n_from + k, n_from,
				            n_from == 1 && n_ref == 0, &edges[n_edges]))
					n_edges++;
		} else if (equi_conjunct(&sc, c.v[i], e) &&
		           (e->s[0] == c.owner[i] || e->s[1] == c.owner[i])) {
			/* probe the subquery's table by the other's keys */
			if (e->s[0] == c.owner[i]) {
				int t0 = e->s[0];
				const char *c0 = e->col[0];

				e->s[0] = e->s[1];
				e->col[0] = e->col[1];
				e->s[1] = t0;
				e->col[1] = c0;
			}
			e->directed = true;
			n_edges++;
		}
	}
	if (n_edges == 0 && !whole)
		return no(
		    err, errlen, "%s",
		    out->kind == JOIN_SEMI
		        ? "a subquery over a sharded table is run across shards when an "
		          "equality ties it to the outer query (b.y = a.x in its WHERE, or a.x "
		          "IN (SELECT b.y ...) as a condition of the WHERE)"
		    : out->kind == JOIN_INNER
		        ? "a join across shards is planned with a condition a.x = b.y "
		          "between its tables"
		        : "a join across shards is planned with a condition a.x = b.y "
		          "between its tables in its ON");

	/* the conjuncts each side may take down (see join_plan.h) */
	for (int i = 0; i < c.n; i++) {
		scan_t one = sc;

		if (nopush)
			break;
		scan_node(t, &one, c.v[i]);
		if (bare0 && c.owner[i] < 0) {
			one.refs[0] += one.bare_refs; /* FROM is that one table */
			one.unknown_refs -= one.bare_refs;
		}
		/* a subquery's answer ($n past the client's) goes down as any parameter: the
		   subqueries have answered before the sides' statements run */
		if (one.unknown_refs > 0 || one.sublinks > 0 || one.funcs > 0)
			continue;
		for (int k = 0; k < n; k++) {
			bool preserved =
			    out->kind == JOIN_INNER || (out->kind == JOIN_LEFT ? k == 0 : k == 1);
			bool down, alone = one.refs[k] > 0;

			for (int k2 = 0; k2 < n; k2++)
				if (k2 != k && one.refs[k2] > 0)
					alone = false;
			if (!alone)
				continue;
			/* an outer join keeps the preserved side's rows whatever its ON says,
			   and its WHERE may test the nullable side for NULL; a semi-join's
			   outer rows go down with the WHERE's filters, b's with the
			   subquery's (a filter of a inside a NOT EXISTS keeps a's rows) */
			if (c.owner[i] >= 0)
				down = c.owner[i] ==
				       k; /* a subquery's filter: of its own table only */
			else if (k >= n_from)
				down = false;
			else if (out->kind == JOIN_INNER || out->kind == JOIN_SEMI ||
			         out->kind == JOIN_ALONE)
				down = true;
			else
				down = preserved ? !c.on[i] : c.on[i];
			if (down) {
				push[k][i] = true;
				side[k].n_pushed++;
			}
		}
	}

	/* where each side's own filters leave it: which side drives */
	for (int k = 0; k < n; k++) {
		join_quote_ident(qa, sizeof qa, side[k].alias);
		snprintf(targets, sizeof targets, "ROW(%s.*)", qa);
		side[k].sql = side_sql(t, targets, *slot[k], NULL, &c, push[k], &side[k], 0);
		if (side[k].sql == NULL || side_shards(ctx, &side[k], params, n_params) < 0)
			goto stopped;
		free(side[k].sql);
		side[k].sql = NULL;
	}
	/* a co-located pair runs where both its tables' filters leave them: a row of one
	   without a partner on its shard is of no use */
	if (out->kind == JOIN_INNER && !whole)
		find_pairs(side, edges, n_edges, n_from, mate, mate_on);
	for (int k = 0; k < n; k++)
		if (mate[k] > k) {
			shard_set_t both = side[k].shards;

			shard_set_intersect(&both, &side[mate[k]].shards);
			if (shard_set_count(&both) > 0)
				side[k].shards = side[mate[k]].shards = both;
		}
	if (whole) {
		d = 0;
		snprintf(out->why, sizeof out->why,
		         out->kind == JOIN_ALONE
		             ? "the statement's one sharded table, fetched whole"
		             : "every table fetched whole (an outer join keeps "
		               "rows without a match)");
	} else if (out->kind == JOIN_SEMI) {
		d = 0;
		snprintf(out->why, sizeof out->why,
		         "the statement's table (its subqueries' tables come by its keys)");
	} else if (out->kind == JOIN_LEFT || out->kind == JOIN_RIGHT) {
		d = out->kind == JOIN_LEFT ? 0 : 1;
		snprintf(out->why, sizeof out->why,
		         "the %s side of a %s join (its rows are all kept)",
		         d == 0 ? "left" : "right", join_kind_name(out->kind));
	} else {
		int most = 0;

		d = 0;
		for (int k = 0; k < n_from; k++) {
			if (shard_set_count(&side[k].shards) < shard_set_count(&side[d].shards))
				d = k;
			if (shard_set_count(&side[k].shards) > most)
				most = shard_set_count(&side[k].shards);
		}
		if (shard_set_count(&side[d].shards) < most)
			snprintf(out->why, sizeof out->why,
			         "its filters hold it to %d shard%s (the others: up to %d)",
			         shard_set_count(&side[d].shards),
			         shard_set_count(&side[d].shards) == 1 ? "" : "s", most);
		else
			snprintf(out->why, sizeof out->why,
			         "the first table, as no side's filters hold it to fewer shards");
	}

	/* the order: each next side probed by the keys of one fetched before it, by its
	   shard key when it can be */
	order[0] = d;
	n_order = n > 0 ? 1 : 0;
	fetched[d] = true;
	for (; whole && n_order < n; n_order++) {
		order[n_order] = n_order;
		side[n_order].whole = true;
	}
	side[d].whole = whole;
	if (n_order < n && mate[d] >= 0) {
		lead[mate[d]] = d;
		fetched[mate[d]] = true;
		order[n_order++] = mate[d];
	}
	while (n_order < n) {
		int pick = -1, via = -1, best = -1;

		for (int e = 0; e < n_edges; e++)
			for (int w = 0; w < 2; w++) {
				int from = edges[e].s[w], to = edges[e].s[1 - w];
				int score =
				    strcmp(edges[e].col[1 - w], side[to].table->key) == 0 ? 2 : 1;

				if ((w == 1 && edges[e].directed) || !fetched[from] ||
				    fetched[to] || score <= best)
					continue;
				best = score;
				pick = to;
				via = e * 2 + w;
			}
		if (pick < 0)
			return no(err, errlen,
			          "a join across shards is planned when every table is joined to "
			          "another by a.x = b.y, and a subquery's table is tied to the "
			          "outer query by such an equality (or a.x IN (SELECT b.y ...))");
		{
			const edge_t *e = &edges[via / 2];
			int w = via % 2, from = e->s[w];
			join_side_t *f = &side[lead[from]]; /* whose statement returns the key */

			snprintf(side[pick].column, sizeof side[pick].column, "%s", e->col[1 - w]);
			side[pick].src = lead[from]; /* a side index for now; a position below */
			side[pick].src_key = f->n_keys;
			snprintf(f->keys[f->n_keys], sizeof f->keys[0], "%s", e->col[w]);
			f->key_of[f->n_keys] = from;
			f->deps[f->n_keys++] = pick;
		}
		fetched[pick] = true;
		order[n_order++] = pick;
		if (mate[pick] >= 0 && !fetched[mate[pick]]) {
			/* its partner comes with it */
			lead[mate[pick]] = pick;
			fetched[mate[pick]] = true;
			order[n_order++] = mate[pick];
		}
	}
	if (n > 0 && side[d].n_keys > 0)
		memcpy(side[d].column, side[d].keys[0], sizeof side[d].column);

	/* each side's statement: its keys and its rows */
	for (int o = 0; o < n; o++) {
		join_side_t *sd = &side[order[o]];
		size_t at = 0;

		if (lead[order[o]] != order[o]) {
			/* riding with its partner, fetched by the partner's statement */
			sd->rides = true;
			sd->by_key = side[lead[order[o]]].by_key;
			continue;
		}
		if (mate[order[o]] >= 0) {
			int a = order[o], b = mate[a];
			join_group_in_t *g = calloc(1, sizeof *g);

			if (g == NULL) {
				t->nomem = true;
				goto stopped;
			}
			g->rv[0] = *slot[a];
			g->rv[1] = *slot[b];
			g->alias[0] = side[a].alias;
			g->alias[1] = side[b].alias;
			g->on = c.v[mate_on[a]];
			for (int k = 0; k < sd->n_keys; k++) {
				g->keys[k] = sd->keys[k];
				g->key_of[k] = sd->key_of[k] == a ? 0 : 1;
			}
			g->n_keys = sd->n_keys;
			g->probe_col = o == 0 ? NULL : sd->column;
			sd->leads = true;
			sd->sql = group_sql(t, g, &c, push[a], push[b], sd, o == 0 ? 0 : 1);
			free(g);
			if (sd->sql == NULL)
				goto stopped;
			/* its shards: where both tables' filters leave them (above) */
			sd->by_key = o > 0 && strcmp(sd->column, sd->table->key) == 0;
			continue;
		}
		join_quote_ident(qa, sizeof qa, sd->alias);
		targets[0] = '\0';
		for (int k = 0; k < sd->n_keys && at < sizeof targets; k++) {
			join_quote_ident(qc, sizeof qc, sd->keys[k]);
			at +=
			    (size_t)snprintf(targets + at, sizeof targets - at, "%s.%s, ", qa, qc);
		}
		if (at < sizeof targets)
			snprintf(targets + at, sizeof targets - at, "ROW(%s.*)", qa);
		join_quote_ident(qc, sizeof qc, sd->column);
		sd->sql =
		    side_sql(t, targets, *slot[order[o]],
		             o == 0 || sd->whole
		                 ? NULL
		                 : tree_expr(t, "%s.%s OPERATOR(pg_catalog.=) ANY($1)", qa, qc),
		             &c, push[order[o]], sd, o == 0 || sd->whole ? 0 : 1);
		if (sd->sql == NULL || side_shards(ctx, sd, o == 0 || sd->whole ? params : NULL,
		                                   o == 0 || sd->whole ? n_params : 0) < 0)
			goto stopped;
		sd->by_key = o > 0 && !sd->whole && strcmp(sd->column, sd->table->key) == 0;
	}

	/* the final statement: the tables replaced by the rows fetched for them */
	for (int o = 0; o < n; o++) {
		PgQuery__Node *f = join_unnest_of(
		    t, rv[order[o]], out->n_params + out->n_subs + 1 + o, side[order[o]].alias);

		if (f == NULL)
			goto stopped;
		*slot[order[o]] = f;
	}
	out->final_sql = tree_deparse(tree, "the join's final statement", t->err, sizeof t->err);
	if (out->final_sql == NULL)
		goto stopped;

	/* the sides in the order they run, their links as positions in it */
	{
		int pos[JOIN_MAX_SIDES];

		for (int q = 0; q < n; q++)
			pos[order[q]] = q;
		for (int o = 0; o < n; o++) {
			out->sides[o] = side[order[o]];
			if (out->sides[o].src >= 0)
				out->sides[o].src = pos[out->sides[o].src];
			for (int k = 0; k < out->sides[o].n_keys; k++) {
				out->sides[o].deps[k] = pos[out->sides[o].deps[k]];
				out->sides[o].key_of[k] = pos[out->sides[o].key_of[k]];
			}
		}
	}
	out->n_sides = n;
	return 1;
stopped:
	for (int k = 0; k < n; k++)
		free(side[k].sql);
	out->n_sides = 0;
	join_plan_free(out);
	if (t->nomem || (!t->refused && strcmp(t->err, "out of memory") == 0))
		return -1;
	route_error(err, errlen, "%s", t->err[0] != '\0' ? t->err : "cannot write the join");
	return 0;
}

/*
 * A statement with CTEs or subqueries in FROM over sharded tables
 * (JOIN_WHOLE): every sharded table it reads, wherever (FROM, a CTE, a
 * subquery in FROM or in an expression), is fetched whole on the shards of
 * its map, and the statement runs over them on one shard, each table
 * replaced by unnest() of its rows. Whatever the CTEs and derived tables
 * do with those rows is then PostgreSQL's work on all of them. Not a
 * recursive WITH, a CTE that writes, FOR UPDATE/SHARE, ONLY, a CTE named as
 * a table of the config, or a table that is not in the config.
 */
typedef struct whole_walk {
	const cfg_t *cfg;
	const char *ctes[64];
	int n_ctes;
	PgQuery__Node **slot[JOIN_MAX_SIDES];
	PgQuery__SelectStmt *level[JOIN_MAX_SIDES]; /* the SELECT whose one FROM item it is */
	PgQuery__SelectStmt *cur;                   /* the SELECT being walked */
	int n, derived; /* sharded tables; CTEs and subqueries in FROM */
	int depth;      /* CTEs and subqueries in FROM the walk is in */
	int inside;     /* sharded tables read inside them */
	const char *bad;
} whole_walk_t;

static void whole_ctes(tree_t *t, PgQuery__Node **slot, void *arg)
{
	whole_walk_t *w = arg;
	PgQuery__Node *n = *slot;

	if (n->node_case == NODE(COMMON_TABLE_EXPR)) {
		const PgQuery__CommonTableExpr *cte = n->common_table_expr;

		w->derived++;
		if (cte->ctequery == NULL || cte->ctequery->node_case != NODE(SELECT_STMT))
			w->bad =
			    "a join across shards is planned with CTEs that only read (SELECT)";
		else if (tables_find(w->cfg, NULL, NULL, cte->ctename) >= 0)
			w->bad = "a CTE across shards must not be named as a table of the config";
		else if (w->n_ctes < (int)(sizeof w->ctes / sizeof w->ctes[0]))
			w->ctes[w->n_ctes++] = cte->ctename;
		else
			w->bad = "too many CTEs";
	} else if (n->node_case == NODE(RANGE_SUBSELECT)) {
		w->derived++;
	} else if (n->node_case == NODE(SELECT_STMT) && n->select_stmt->n_locking_clause > 0) {
		w->bad = "FOR UPDATE/SHARE is not run across shards";
	} else if (n->node_case == NODE(SELECT_STMT) && n->select_stmt->with_clause != NULL &&
	           n->select_stmt->with_clause->recursive) {
		w->bad = "a recursive WITH is not run across shards";
	}
	tree_each_slot(t, tree_inner(n), whole_ctes, arg);
}

static void whole_tables(tree_t *t, PgQuery__Node **slot, void *arg)
{
	whole_walk_t *w = arg;

	if ((*slot)->node_case == NODE(RANGE_VAR)) {
		const PgQuery__RangeVar *rv = (*slot)->range_var;
		int k = tables_find(w->cfg, rv->catalogname, rv->schemaname, rv->relname);
		bool cte = false;

		for (int i = 0; i < w->n_ctes && empty(rv->schemaname); i++)
			cte = cte || strcmp(w->ctes[i], rv->relname) == 0;
		if (cte)
			return;
		if (k >= 0 && tables_is_sharded(&w->cfg->tables[k])) {
			if (!rv->inh)
				w->bad = "ONLY is not planned in a join across shards";
			else if (w->n == JOIN_MAX_SIDES)
				w->bad =
				    "a join across shards is planned for at most 4 sharded tables";
			else {
				bool alone = w->cur != NULL && w->cur->n_from_clause == 1 &&
				             &w->cur->from_clause[0] == slot;

				w->level[w->n] = alone ? w->cur : NULL;
				w->slot[w->n++] = slot;
				w->inside += w->depth > 0;
			}
		} else if (k < 0 || !w->cfg->tables[k].reference) {
			w->bad =
			    "a join across shards is planned between sharded and reference "
			    "tables (a table that is not in the config is on the default shard "
			    "only)";
		}
		return;
	}
	if ((*slot)->node_case == NODE(COMMON_TABLE_EXPR) ||
	    (*slot)->node_case == NODE(RANGE_SUBSELECT)) {
		w->depth++;
		tree_each_slot(t, tree_inner(*slot), whole_tables, arg);
		w->depth--;
		return;
	}
	if ((*slot)->node_case == NODE(SELECT_STMT)) {
		PgQuery__SelectStmt *up = w->cur;

		w->cur = (*slot)->select_stmt;
		tree_each_slot(t, tree_inner(*slot), whole_tables, arg);
		w->cur = up;
		return;
	}
	tree_each_slot(t, tree_inner(*slot), whole_tables, arg);
}

static int plan_whole(const route_ctx_t *ctx, tree_t *t, PgQuery__ParseResult *tree,
                      const route_param_t *params, int n_params, join_plan_t *out, char *err,
                      size_t errlen)
{
	PgQuery__Node *root;
	whole_walk_t w;
	scan_t sc;
	char qa[140], targets[200];

	if (tree->n_stmts != 1 || tree->stmts[0]->stmt == NULL ||
	    tree->stmts[0]->stmt->node_case != NODE(SELECT_STMT))
		return no(err, errlen, "not one SELECT");
	root = tree->stmts[0]->stmt;
	if (root->select_stmt->into_clause != NULL)
		return no(err, errlen, "SELECT INTO is not run across shards");
	memset(&w, 0, sizeof w);
	w.cfg = ctx->cfg;
	whole_ctes(t, &root, &w);
	if (w.bad == NULL)
		whole_tables(t, &root, &w);
	if (w.bad != NULL)
		return no(err, errlen, "%s", w.bad);
	if (w.derived == 0 || w.inside == 0)
		return no(err, errlen, "no CTE or subquery in FROM over a sharded table");
	memset(&sc, 0, sizeof sc);
	sc.cfg = ctx->cfg;
	scan_node(t, &sc, root);
	out->n_params = sc.max_param;
	out->n_subs = 0;
	out->kind = JOIN_WHOLE;
	snprintf(out->why, sizeof out->why,
	         "every sharded table the statement reads fetched whole (its CTEs and subqueries "
	         "in FROM run over them)");
	for (int i = 0; i < w.n; i++) {
		const PgQuery__RangeVar *rv = (*w.slot[i])->range_var;
		join_side_t *sd = &out->sides[i];
		conj_t c;
		bool push[64] = {false};

		memset(&c, 0, sizeof c);
		sd->table = &ctx->cfg->tables[tables_find(ctx->cfg, rv->catalogname, rv->schemaname,
		                                          rv->relname)];
		sd->map = sd->table->map;
		sd->written = i;
		sd->left = i == 0;
		sd->src = -1;
		sd->whole = true;
		snprintf(sd->alias, sizeof sd->alias, "%s",
		         where_alias_of(rv) != NULL ? where_alias_of(rv) : rv->relname);
		/* the table alone in its SELECT's FROM: that SELECT's WHERE conjuncts on it alone,
		   qualified by its name there (no bare name: it may be an outer query's), with no
		   function, parameter or subquery, go down with it */
		if (w.level[i] != NULL)
			conj_add(&c, w.level[i]->where_clause, false, -1);
		for (int k = 0; k < c.n; k++) {
			scan_t one;

			memset(&one, 0, sizeof one);
			one.cfg = ctx->cfg;
			one.alias[0] = sd->alias;
			scan_node(t, &one, c.v[k]);
			push[k] = one.refs[0] > 0 && one.unknown_refs == 0 && one.funcs == 0 &&
			          one.sublinks == 0 && one.params == 0 && one.range_vars == 0;
			sd->n_pushed += push[k];
		}
		join_quote_ident(qa, sizeof qa, sd->alias);
		snprintf(targets, sizeof targets, "ROW(%s.*)", qa);
		sd->sql = side_sql(t, targets, *w.slot[i], NULL, &c, push, sd, 0);
		out->n_sides = i + 1;
		if (sd->sql == NULL || side_shards(ctx, sd, params, n_params) < 0)
			goto stopped;
	}
	for (int i = 0; i < w.n; i++) {
		PgQuery__Node *f = join_unnest_of(t, (*w.slot[i])->range_var, out->n_params + 1 + i,
		                                  out->sides[i].alias);

		if (f == NULL)
			goto stopped;
		*w.slot[i] = f;
	}
	out->final_sql = tree_deparse(tree, "the join's final statement", t->err, sizeof t->err);
	if (out->final_sql == NULL)
		goto stopped;
	return 1;
stopped:
	join_plan_free(out);
	out->n_sides = 0;
	if (t->nomem || (!t->refused && strcmp(t->err, "out of memory") == 0))
		return -1;
	route_error(err, errlen, "%s", t->err[0] != '\0' ? t->err : "cannot write the join");
	return 0;
}

/* One way of planning a parsed statement: > 0 planned, 0 not a join of that way (err may say
 * why), -1 out of memory. */
typedef int (*plan_way_t)(const route_ctx_t *ctx, tree_t *t, PgQuery__ParseResult *tree,
                          const route_param_t *params, int n_params, join_plan_t *out, char *err,
                          size_t errlen);

/* The statement with its uncorrelated subqueries over sharded tables taken out (subq_plan.c). */
static int plan_subqueries_first(const route_ctx_t *ctx, tree_t *t, PgQuery__ParseResult *tree,
                                 const route_param_t *params, int n_params, join_plan_t *out,
                                 char *err, size_t errlen)
{
	char why[300];
	int rc = join_subq_extract(ctx, t, tree, params, n_params, out, why, sizeof why);

	return rc > 0 ? plan_tree(ctx, t, tree, params, n_params, out, err, errlen) : rc;
}

/* CTEs and subqueries in FROM: every sharded table fetched whole. */
static int plan_whole_tables(const route_ctx_t *ctx, tree_t *t, PgQuery__ParseResult *tree,
                             const route_param_t *params, int n_params, join_plan_t *out, char *err,
                             size_t errlen)
{
	char why[300];
	int rc = plan_whole(ctx, t, tree, params, n_params, out, why, sizeof why);

	if (rc == 0 && strstr(why, "no CTE or subquery in FROM") == NULL)
		snprintf(err, errlen, "%s", why);
	return rc;
}

/*
 * Plan sql one way, on a parse of its own (each way rewrites the tree). out
 * is left empty unless planned. A text that does not parse says so in err
 * when `unparsed` is set, else quietly gives 0.
 */
static int plan_one_way(const route_ctx_t *ctx, const char *sql, const route_param_t *params,
                        int n_params, join_plan_t *out, plan_way_t way, const char *unparsed,
                        char *err, size_t errlen)
{
	PgQuery__ParseResult *tree;
	tree_t t;
	int rc;

	join_plan_free(out);
	memset(out, 0, sizeof *out);
	tree_init(&t);
	tree = tree_parse(&t, sql);
	if (tree == NULL)
		rc = t.nomem ? -1 : unparsed != NULL ? no(err, errlen, "%s", unparsed) : 0;
	else
		rc = way(ctx, &t, tree, params, n_params, out, err, errlen);
	tree_free(&t);
	if (rc <= 0) {
		join_plan_free(out);
		memset(out, 0, sizeof *out);
	}
	return rc;
}

/*
 * The statement as written first; when that is no join planned here, the
 * statement with its uncorrelated subqueries over sharded tables taken out
 * to run first (subq_plan.c), if it has any; then with every sharded table
 * fetched whole (CTEs and subqueries in FROM).
 */
int join_plan_make(const route_ctx_t *ctx, const char *sql, const route_param_t *params,
                   int n_params, join_plan_t *out, char *err, size_t errlen)
{
	int rc;

	memset(out, 0, sizeof *out);
	rc = plan_one_way(ctx, sql, params, n_params, out, plan_tree,
	                  "the statement does not parse", err, errlen);
	if (rc == 0)
		rc = plan_one_way(ctx, sql, params, n_params, out, plan_subqueries_first, NULL, err,
		                  errlen);
	if (rc == 0)
		rc = plan_one_way(ctx, sql, params, n_params, out, plan_whole_tables, NULL, err,
		                  errlen);
	return rc;
}

void join_plan_free(join_plan_t *p)
{
	for (int i = 0; i < p->n_sides; i++) {
		free(p->sides[i].sql);
		p->sides[i].sql = NULL;
	}
	free(p->final_sql);
	p->final_sql = NULL;
	for (int i = 0; i < p->n_subs; i++) {
		free(p->subs[i].rows_sql);
		free(p->subs[i].sql);
		p->subs[i].rows_sql = p->subs[i].sql = NULL;
	}
}

uint32_t join_array_type(uint32_t oid)
{
	static const uint32_t pairs[][2] = {
	    {16, 1000},   /* bool */
	    {17, 1001},   /* bytea */
	    {18, 1002},   /* "char" */
	    {19, 1003},   /* name */
	    {20, 1016},   /* int8 */
	    {21, 1005},   /* int2 */
	    {23, 1007},   /* int4 */
	    {25, 1009},   /* text */
	    {26, 1028},   /* oid */
	    {114, 199},   /* json */
	    {700, 1021},  /* float4 */
	    {701, 1022},  /* float8 */
	    {869, 1041},  /* inet */
	    {1042, 1014}, /* bpchar */
	    {1043, 1015}, /* varchar */
	    {1082, 1182}, /* date */
	    {1083, 1183}, /* time */
	    {1114, 1115}, /* timestamp */
	    {1184, 1185}, /* timestamptz */
	    {1186, 1187}, /* interval */
	    {1700, 1231}, /* numeric */
	    {2950, 2951}, /* uuid */
	    {3802, 3807}, /* jsonb */
	};

	for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++)
		if (pairs[i][0] == oid)
			return pairs[i][1];
	return 0;
}

int join_probe_shard(const route_ctx_t *ctx, const join_side_t *side, const char *text, size_t len)
{
	shard_key_t k;

	if (shard_key_from_text(ctx->cfg->maps[side->map].key, text, len, &k) < 0)
		return -1;
	return shard_map_lookup(&ctx->maps[side->map], &k);
}
