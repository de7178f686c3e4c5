/*
 * route_subq.c — subqueries, which each shard answers alone: whether every
 * subquery of a statement would get the same answer from one shard's rows
 * as from all of them, and the merge kind of a plan on several shards.
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

#include "router/route_int.h"
#include "router/tree.h"
#include "router/tree_int.h"

/* ---- subqueries, which each shard answers alone ---- */

/*
 * Each shard runs the whole statement on its own rows, so every subquery
 * in it is answered from that shard's rows only. That is right only when
 * the rows a subquery's answer depends on are all on the shard that uses
 * the answer; otherwise (WHERE n > (SELECT avg(n) FROM users)) each shard
 * gets its own, wrong, answer. A statement routed to one shard by its key
 * predicates (WHERE id = 3 AND n > (SELECT avg(n) FROM users)) is no
 * different: its subqueries see that shard's rows, where one PostgreSQL
 * would use every shard's. So in a statement on several shards, or on one
 * shard of a map with several, every query level below the top one that
 * reads a sharded table must be local in one of these ways, or the
 * statement is refused:
 *
 *  - correlated on the key: a top-level conjunct of its WHERE (or of an
 *    inner join's ON) equates the key of one of its own sharded tables with
 *    the key of a sharded table of an enclosing level, written qualified
 *    (o.user_id = u.id). The outer row is on this shard, so every row with
 *    its key is too (tables of one map are co-located, and the tables of
 *    one level are joined on their keys or refused): anything may then be
 *    done with them, aggregates and LIMIT included.
 *  - IN / = ANY / <> ALL comparing keys: the outer key against a select
 *    list of one key column (id IN (SELECT user_id FROM orders)). Whether
 *    a local key is in the set depends only on rows with that key, which
 *    are local, as long as the subquery does not combine rows: no LIMIT/
 *    OFFSET, no window functions, and aggregates only per group of a GROUP
 *    BY on the key (a group is then on one shard). Rows with a NULL key are
 *    assumed not to exist (NOT IN would see them on one shard only).
 *  - a derived table (FROM subquery, CTE, the SELECT of INSERT ... SELECT)
 *    whose rows do not combine rows of several shards, under the same
 *    rules, and with no DISTINCT and no set operation but UNION ALL.
 *  - on one shard only, pinned there: its own key predicates (a top-level
 *    conjunct of its WHERE or of an inner join's ON, read as the analysis
 *    reads the statement's: where_pred_part) leave its sharded tables no other
 *    shard than the statement's (SELECT avg(n) FROM users WHERE id = 3 in
 *    a statement on the shard of 3). All its rows are then there. A level
 *    with a derived table over sharded tables in its FROM is not pinned
 *    (its predicates do not narrow that table's rows), nor is a set
 *    operation as a whole (its arms may be, one by one).
 *
 * Anything else over a sharded table (an uncorrelated scalar or EXISTS
 * subquery, IN on other columns, a recursive CTE, an outer key reached
 * through a derived table, an unqualified outer reference whose table
 * PostgreSQL may resolve otherwise) is refused rather than guessed at.
 * Levels that read only reference tables, or no table, have the same rows
 * on every shard and are always right; a level is judged by its own FROM,
 * its own subqueries are judged on their own. A routing comment (shard=N,
 * key=VALUE) that puts a statement on one shard says the user wants that
 * shard's rows: its subqueries are not judged. Nor are they on a map with
 * one shard, which holds every row of its tables.
 *
 * The rules above trust that a level's sharded tables are joined on their
 * keys, which the analysis checks only for the levels it walks (not a
 * subquery inside an expression): each level is checked here again
 * (an_check_joined_on_keys). How a derived table is joined to the other items
 * of its level (a FROM subquery over orders joined to users on other
 * columns than the keys) is left to the analysis, which refuses that for
 * every plan, as it does for tables.
 */

/* One query level: the sharded tables it reads directly, and its names. */
typedef struct level {
	block_t b;
	PgQuery__Node *const *from; /* FROM / USING items */
	size_t n_from;
	const PgQuery__RangeVar *target; /* INSERT, UPDATE, DELETE, MERGE */
	const PgQuery__Node *source;     /* MERGE ... USING */
	const struct level *up;
} level_t;

typedef struct lwalk {
	const level_t *lv;
	const mscope_t *sc;
} lwalk_t;

static bool select_reads_sharded(walk_t *w, const PgQuery__SelectStmt *s, const mscope_t *sc,
                                 int depth);

/* A CTE reference, resolved with only the CTEs before it visible (no self-reference loops). */
static const PgQuery__CommonTableExpr *cte_ref(const PgQuery__RangeVar *rv, const mscope_t *sc,
                                               mscope_t *inner)
{
	const PgQuery__CommonTableExpr *cte;
	const mscope_t *where;
	size_t idx;

	if (!empty(rv->schemaname))
		return NULL;
	cte = mergekind_scope_find(sc, rv->relname, &where, &idx);
	if (cte != NULL) {
		inner->with = where->with;
		inner->n_visible = idx;
		inner->up = where->up;
	}
	return cte;
}

/* Whether the rows of a FROM item come from a sharded table. */
static bool item_reads_sharded(walk_t *w, const PgQuery__Node *n, const mscope_t *sc, int depth)
{
	if (n == NULL)
		return false;
	if (depth > MAX_DEPTH)
		return true;
	switch (n->node_case) {
	case PG_QUERY__NODE__NODE_RANGE_VAR: {
		const PgQuery__RangeVar *rv = n->range_var;
		mscope_t inner;
		const PgQuery__CommonTableExpr *cte = cte_ref(rv, sc, &inner);
		const PgQuery__Node *q;
		int i;

		if (cte != NULL) {
			q = cte->ctequery;
			if (q == NULL)
				return false;
			if (q->node_case == PG_QUERY__NODE__NODE_SELECT_STMT)
				return select_reads_sharded(w, q->select_stmt, &inner, depth + 1);
			return an_is_write_query(q); /* RETURNING of a write: conservatively yes */
		}
		i = tables_find(w->cfg, rv->catalogname, rv->schemaname, rv->relname);
		return i >= 0 && tables_is_sharded(tables_at(w, i));
	}
	case PG_QUERY__NODE__NODE_JOIN_EXPR:
		return item_reads_sharded(w, n->join_expr->larg, sc, depth + 1) ||
		       item_reads_sharded(w, n->join_expr->rarg, sc, depth + 1);
	case PG_QUERY__NODE__NODE_RANGE_SUBSELECT: {
		const PgQuery__Node *q = n->range_subselect->subquery;

		return q != NULL && q->node_case == PG_QUERY__NODE__NODE_SELECT_STMT &&
		       select_reads_sharded(w, q->select_stmt, sc, depth + 1);
	}
	default:
		return false;
	}
}

/* Whether a SELECT's own FROM (not its expressions' subqueries) reads a sharded table. */
static bool select_reads_sharded(walk_t *w, const PgQuery__SelectStmt *s, const mscope_t *sc,
                                 int depth)
{
	mscope_t own;

	if (s == NULL)
		return false;
	if (depth > MAX_DEPTH)
		return true;
	if (s->with_clause != NULL) {
		own.with = s->with_clause;
		own.n_visible = s->with_clause->n_ctes;
		own.up = sc;
		sc = &own;
	}
	if (s->op != PG_QUERY__SET_OPERATION__SETOP_NONE &&
	    s->op != PG_QUERY__SET_OPERATION__SET_OPERATION_UNDEFINED)
		return select_reads_sharded(w, s->larg, sc, depth + 1) ||
		       select_reads_sharded(w, s->rarg, sc, depth + 1);
	for (size_t i = 0; i < s->n_from_clause; i++)
		if (item_reads_sharded(w, s->from_clause[i], sc, depth + 1))
			return true;
	return false;
}

static void level_add_item(walk_t *w, level_t *lv, const PgQuery__Node *n, const mscope_t *sc,
                           int depth)
{
	mscope_t inner;

	if (n == NULL || depth > MAX_DEPTH)
		return;
	if (n->node_case == PG_QUERY__NODE__NODE_JOIN_EXPR) {
		const PgQuery__JoinExpr *j = n->join_expr;
		int l0 = lv->b.n_rels, l1;

		level_add_item(w, lv, j->larg, sc, depth + 1);
		l1 = lv->b.n_rels;
		level_add_item(w, lv, j->rarg, sc, depth + 1);
		/* what is joined to what, for an_check_joined_on_keys */
		an_join_using(&lv->b, j, l0, l1);
		if (j->quals != NULL)
			where_nodes_push(w, &lv->b.joins, j->quals);
	} else if (n->node_case == PG_QUERY__NODE__NODE_RANGE_VAR &&
	           cte_ref(n->range_var, sc, &inner) == NULL) {
		const PgQuery__RangeVar *rv = n->range_var;
		int i = tables_find(w->cfg, rv->catalogname, rv->schemaname, rv->relname);

		if (i >= 0 && tables_is_sharded(tables_at(w, i)))
			where_block_add_rel(w, &lv->b, tables_at(w, i), rv);
	}
}

/* The level of a SELECT, INSERT, UPDATE, DELETE or MERGE (m). */
static void level_init(walk_t *w, level_t *lv, const ProtobufCMessage *m, const level_t *up,
                       const mscope_t *sc)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;

	memset(lv, 0, sizeof *lv);
	where_block_init(&lv->b);
	lv->up = up;
	if (d == &pg_query__select_stmt__descriptor) {
		lv->from = ((const PgQuery__SelectStmt *)m)->from_clause;
		lv->n_from = ((const PgQuery__SelectStmt *)m)->n_from_clause;
	} else if (d == &pg_query__insert_stmt__descriptor) {
		lv->target = ((const PgQuery__InsertStmt *)m)->relation;
	} else if (d == &pg_query__update_stmt__descriptor) {
		lv->target = ((const PgQuery__UpdateStmt *)m)->relation;
		lv->from = ((const PgQuery__UpdateStmt *)m)->from_clause;
		lv->n_from = ((const PgQuery__UpdateStmt *)m)->n_from_clause;
	} else if (d == &pg_query__delete_stmt__descriptor) {
		lv->target = ((const PgQuery__DeleteStmt *)m)->relation;
		lv->from = ((const PgQuery__DeleteStmt *)m)->using_clause;
		lv->n_from = ((const PgQuery__DeleteStmt *)m)->n_using_clause;
	} else if (d == &pg_query__merge_stmt__descriptor) {
		lv->target = ((const PgQuery__MergeStmt *)m)->relation;
		lv->source = ((const PgQuery__MergeStmt *)m)->source_relation;
	}
	if (lv->target != NULL) {
		int i = tables_find(w->cfg, lv->target->catalogname, lv->target->schemaname,
		                    lv->target->relname);

		if (i >= 0 && tables_is_sharded(tables_at(w, i)))
			where_block_add_rel(w, &lv->b, tables_at(w, i), lv->target);
	}
	for (size_t i = 0; i < lv->n_from; i++)
		level_add_item(w, lv, lv->from[i], sc, 0);
	level_add_item(w, lv, lv->source, sc, 0);
}

static bool level_names(const level_t *lv, const char *q)
{
	if (lv->target != NULL && (lv->target->alias != NULL ? where_alias_is(lv->target->alias, q)
	                                                     : streq(lv->target->relname, q)))
		return true;
	for (size_t i = 0; i < lv->n_from; i++)
		if (where_item_named(lv->from[i], q, 0))
			return true;
	return where_item_named(lv->source, q, 0);
}

/*
 * The level, from lv outwards, whose sharded table's key column n names,
 * as PostgreSQL resolves it: a qualified name at the nearest level with a
 * range of that name, an unqualified one only at lv itself. NULL if none.
 */
static const level_t *key_level(const level_t *lv, const PgQuery__Node *n)
{
	const PgQuery__ColumnRef *c;
	const char *q;

	if (n == NULL || n->node_case != PG_QUERY__NODE__NODE_COLUMN_REF)
		return NULL;
	c = n->column_ref;
	if (c->n_fields < 2)
		return lv != NULL && where_key_rel(&lv->b, n) >= 0 ? lv : NULL;
	q = tree_str_of(c->fields[c->n_fields - 2]);
	if (q == NULL)
		return NULL;
	for (; lv != NULL; lv = lv->up)
		if (level_names(lv, q))
			return where_key_rel(&lv->b, n) >= 0 ? lv : NULL;
	return NULL;
}

/* An enclosing level's key, named qualified (an unqualified name may be q's own column). */
static bool outer_key(const level_t *q, const PgQuery__Node *n)
{
	const PgQuery__ColumnRef *c;

	if (n == NULL || n->node_case != PG_QUERY__NODE__NODE_COLUMN_REF)
		return false;
	c = n->column_ref;
	if (c->n_fields < 2 || tree_str_of(c->fields[c->n_fields - 2]) == NULL ||
	    level_names(q, tree_str_of(c->fields[c->n_fields - 2])))
		return false;
	return key_level(q->up, n) != NULL;
}

/* A conjunct of n equates a key of q's tables with an enclosing level's key. */
static bool conj_correlated(const level_t *q, const PgQuery__Node *n, int depth)
{
	const PgQuery__AExpr *e;

	if (n == NULL || depth > MAX_DEPTH)
		return false;
	if (n->node_case == PG_QUERY__NODE__NODE_BOOL_EXPR &&
	    n->bool_expr->boolop == PG_QUERY__BOOL_EXPR_TYPE__AND_EXPR) {
		for (size_t i = 0; i < n->bool_expr->n_args; i++)
			if (conj_correlated(q, n->bool_expr->args[i], depth + 1))
				return true;
		return false;
	}
	if (n->node_case != PG_QUERY__NODE__NODE_A_EXPR)
		return false;
	e = n->a_expr;
	if (e->kind != PG_QUERY__A__EXPR__KIND__AEXPR_OP || !streq(where_op_name(e), "="))
		return false;
	return (where_key_rel(&q->b, e->lexpr) >= 0 && outer_key(q, e->rexpr)) ||
	       (where_key_rel(&q->b, e->rexpr) >= 0 && outer_key(q, e->lexpr));
}

/* ... or an inner join's ON does (an outer join's ON filters nothing). */
static bool join_correlated(const level_t *q, const PgQuery__Node *n, int depth)
{
	const PgQuery__JoinExpr *j;

	if (n == NULL || depth > MAX_DEPTH || n->node_case != PG_QUERY__NODE__NODE_JOIN_EXPR)
		return false;
	j = n->join_expr;
	if (j->jointype != PG_QUERY__JOIN_TYPE__JOIN_INNER)
		return false;
	return conj_correlated(q, j->quals, 0) || join_correlated(q, j->larg, depth + 1) ||
	       join_correlated(q, j->rarg, depth + 1);
}

static bool level_correlated(const level_t *q, const PgQuery__SelectStmt *s)
{
	if (q->up == NULL || q->b.n_rels == 0)
		return false;
	if (conj_correlated(q, s->where_clause, 0))
		return true;
	for (size_t i = 0; i < s->n_from_clause; i++)
		if (join_correlated(q, s->from_clause[i], 0))
			return true;
	return false;
}

static const char *set_op_name(const PgQuery__SelectStmt *s)
{
	switch (s->op) {
	case PG_QUERY__SET_OPERATION__SETOP_INTERSECT:
		return "INTERSECT";
	case PG_QUERY__SET_OPERATION__SETOP_EXCEPT:
		return "EXCEPT";
	default:
		return s->all ? "UNION ALL" : "UNION";
	}
}

/* The hint names the key of the outermost level's table: a condition there pins the statement. */
static void refuse_subquery(walk_t *w, const char *what, const level_t *q, const level_t *up,
                            bool correlate)
{
	const cfg_table_t *t = q != NULL && q->b.n_rels > 0 ? q->b.rels[0].table : NULL;
	const cfg_table_t *top = tables_at(w, w->map_table);
	char tie[160] = "";

	for (; up != NULL; up = up->up)
		if (up->b.n_rels > 0)
			top = up->b.rels[0].table;
	if (correlate && t != NULL)
		snprintf(tie, sizeof tie,
		         "correlate it with the outer row on the shard key (WHERE %s.%s = "
		         "<outer table>.<its key>), ",
		         t->name, t->key);
	if (w->one_shard >= 0) {
		char own[160] = "";

		/* its own key predicates can keep it there (level_pinned) */
		if (t != NULL)
			snprintf(own, sizeof own,
			         "add a condition on %s.%s inside it that keeps it on shard %d, ",
			         t->name, t->key, w->one_shard);
		else if (q != NULL)
			snprintf(own, sizeof own,
			         "read its sharded tables in its own FROM (not through a subquery "
			         "or CTE) with a condition on their key that keeps them on shard "
			         "%d, ",
			         w->one_shard);
		walk_refuse(
		    w,
		    "%s over %s is not supported yet in a statement on one shard (it runs on "
		    "shard %d alone, which would answer it from its own rows only); "
		    "%s%s%s/* pgshard: shard=N */ to use only that shard's rows",
		    what, t != NULL ? t->name : "sharded tables", w->one_shard, tie, own,
		    tie[0] != '\0' || own[0] != '\0' ? "or " : "run it with ");
		return;
	}
	walk_refuse(
	    w,
	    "%s over %s across shards is not supported yet (each shard would answer it from "
	    "its own rows only); %sadd a condition on %s.%s, or /* pgshard: shard=N */",
	    what, t != NULL ? t->name : "sharded tables", tie, top->name, top->key);
}

static bool sublink_is_key_in(const PgQuery__SubLink *l)
{
	const char *op = l->n_oper_name > 0 ? tree_str_of(l->oper_name[l->n_oper_name - 1]) : NULL;

	if (l->sub_link_type == PG_QUERY__SUB_LINK_TYPE__ANY_SUBLINK)
		return l->n_oper_name == 0 || streq(op, "=");
	return l->sub_link_type == PG_QUERY__SUB_LINK_TYPE__ALL_SUBLINK && streq(op, "<>");
}

/*
 * The part inner joins' ON give a level's tables (b), into *p; false when a
 * FROM item other than a table reads sharded tables. filter: the joins
 * above n are inner (an outer join's ON, and what is below it, filters
 * nothing for the rows it keeps).
 */
static bool from_pin(walk_t *w, const block_t *b, const PgQuery__Node *n, const mscope_t *sc,
                     bool filter, part_t *p, int depth)
{
	mscope_t inner;

	if (n == NULL)
		return true;
	if (depth > MAX_DEPTH)
		return false;
	switch (n->node_case) {
	case PG_QUERY__NODE__NODE_JOIN_EXPR: {
		const PgQuery__JoinExpr *j = n->join_expr;

		filter = filter && j->jointype == PG_QUERY__JOIN_TYPE__JOIN_INNER;
		if (filter && j->quals != NULL)
			*p = part_and(*p, where_pred_part(w, b, j->quals));
		return from_pin(w, b, j->larg, sc, filter, p, depth + 1) &&
		       from_pin(w, b, j->rarg, sc, filter, p, depth + 1);
	}
	case PG_QUERY__NODE__NODE_RANGE_VAR:
		if (cte_ref(n->range_var, sc, &inner) == NULL)
			return true; /* a table: in b when it is sharded */
		return !item_reads_sharded(w, n, sc, depth + 1);
	case PG_QUERY__NODE__NODE_RANGE_TABLE_SAMPLE:
		return false; /* a table b does not hold */
	default:
		return !item_reads_sharded(w, n, sc, depth + 1);
	}
}

/*
 * In a statement on one shard: whether the SELECT level q (its query s)
 * reads only rows of that shard, by key predicates of its own WHERE or
 * inner joins' ON, on its sharded tables (joined on their keys: see
 * an_check_joined_on_keys). A derived table in its FROM that reads sharded
 * tables is not narrowed by them: such a level is not pinned.
 */
static bool level_pinned(walk_t *w, const level_t *q, const PgQuery__SelectStmt *s,
                         const mscope_t *sc)
{
	part_t p;
	int n;

	if (w->one_shard < 0 || q->b.n_rels == 0)
		return false;
	p = where_pred_part(w, &q->b, s->where_clause);
	for (size_t i = 0; i < s->n_from_clause; i++)
		if (!from_pin(w, &q->b, s->from_clause[i], sc, true, &p, 0))
			return false;
	n = shard_set_count(&p.set);
	/* no shard at all: contradicting predicates, no row anywhere */
	return p.kind == PART_SET && (n == 0 || (n == 1 && shard_set_has(&p.set, w->one_shard)));
}

/* judge_subquery for one query level (no set operation); not inlined, for the stack. */
static __attribute__((noinline)) void judge_level(walk_t *w, const PgQuery__SelectStmt *s,
                                                  const PgQuery__SubLink *l, const level_t *up,
                                                  const mscope_t *sc)
{
	level_t q;
	char buf[96], what[160];
	const char *why;

	level_init(w, &q, &s->base, up, sc);
	/* the analysis checks the levels it walks, which are not all subqueries */
	if (!w->nomem)
		an_check_joined_on_keys(w, &q.b, s->where_clause);
	if (!walk_stopped(w) && !level_correlated(&q, s) && !level_pinned(w, &q, s, sc)) {
		bool key_in = l != NULL && sublink_is_key_in(l) && key_level(up, l->testexpr) &&
		              s->n_target_list == 1 &&
		              s->target_list[0]->node_case == PG_QUERY__NODE__NODE_RES_TARGET &&
		              where_key_rel(&q.b, s->target_list[0]->res_target->val) >= 0;

		why = an_level_combines(w, s, &q.b, l != NULL, buf, sizeof buf);
		if (why != NULL) {
			snprintf(what, sizeof what, "a subquery with %s", why);
			refuse_subquery(w, what, &q, up, l != NULL);
		} else if (l != NULL && !key_in) {
			if (l->sub_link_type == PG_QUERY__SUB_LINK_TYPE__ANY_SUBLINK ||
			    l->sub_link_type == PG_QUERY__SUB_LINK_TYPE__ALL_SUBLINK)
				refuse_subquery(
				    w,
				    "an IN/ANY/ALL subquery that does not compare shard "
				    "keys (outer key IN (SELECT key ...))",
				    &q, up, true);
			else
				refuse_subquery(
				    w,
				    l->sub_link_type == PG_QUERY__SUB_LINK_TYPE__EXISTS_SUBLINK
				        ? "an EXISTS subquery not correlated on the shard key"
				        : "a scalar subquery not correlated on the shard key",
				    &q, up, true);
		}
	}
	where_block_free(&q.b);
}

/*
 * Judge the query s below level up: a derived table (l NULL) or the
 * subquery of l. Refuses in w what is not local (see above).
 */
static void judge_subquery(walk_t *w, const PgQuery__SelectStmt *s, const PgQuery__SubLink *l,
                           const level_t *up, const mscope_t *sc, int depth)
{
	mscope_t own;
	const char *why = NULL;

	if (s == NULL || walk_stopped(w) || depth > MAX_DEPTH || !select_reads_sharded(w, s, sc, 0))
		return;
	if (s->with_clause != NULL) {
		own.with = s->with_clause;
		own.n_visible = s->with_clause->n_ctes;
		own.up = sc;
		sc = &own;
	}
	if (s->op != PG_QUERY__SET_OPERATION__SETOP_NONE &&
	    s->op != PG_QUERY__SET_OPERATION__SET_OPERATION_UNDEFINED) {
		/* the arms of a subquery's set operation are tested as it is; a derived
		 * table's rows concatenate only through UNION ALL */
		if (s->limit_count != NULL || s->limit_offset != NULL)
			why = "LIMIT/OFFSET";
		else if (l == NULL && !(s->op == PG_QUERY__SET_OPERATION__SETOP_UNION && s->all))
			why = set_op_name(s);
		if (why != NULL) {
			char what[64];

			snprintf(what, sizeof what, "a subquery with %s", why);
			refuse_subquery(w, what, NULL, up, false);
			return;
		}
		judge_subquery(w, s->larg, l, up, sc, depth + 1);
		judge_subquery(w, s->rarg, l, up, sc, depth + 1);
		return;
	}
	judge_level(w, s, l, up, sc);
}

static void local_walk(walk_t *w, const ProtobufCMessage *m, void *arg);

/* WITH: each CTE is a derived table; a recursive one over sharded tables grows across shards. */
static void local_with(walk_t *w, const PgQuery__WithClause *wc, const lwalk_t *a)
{
	const mscope_t *outer = a->sc != NULL && a->sc->with == wc ? a->sc->up : a->sc;

	for (size_t i = 0; i < wc->n_ctes && !walk_stopped(w); i++) {
		const PgQuery__Node *c = wc->ctes[i];
		const PgQuery__Node *q;
		mscope_t cs = {wc, wc->recursive ? wc->n_ctes : i, outer};
		lwalk_t in = {a->lv, &cs};

		if (c == NULL || c->node_case != PG_QUERY__NODE__NODE_COMMON_TABLE_EXPR)
			continue;
		q = c->common_table_expr->ctequery;
		if (q == NULL)
			continue;
		if (q->node_case == PG_QUERY__NODE__NODE_SELECT_STMT) {
			if (wc->recursive && select_reads_sharded(w, q->select_stmt, &cs, 0))
				refuse_subquery(w, "a recursive CTE", NULL, a->lv, false);
			else
				judge_subquery(w, q->select_stmt, NULL, a->lv, &cs, 0);
		}
		local_walk(w, &q->base, &in);
	}
}

/* A SELECT, INSERT, UPDATE, DELETE or MERGE: a level of its own; not inlined, for the stack. */
static __attribute__((noinline)) void local_stmt(walk_t *w, const ProtobufCMessage *m,
                                                 const lwalk_t *a)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	const PgQuery__WithClause *with;
	lwalk_t in = *a;
	mscope_t own;
	level_t lv;

	if (d == &pg_query__select_stmt__descriptor)
		with = ((const PgQuery__SelectStmt *)m)->with_clause;
	else if (d == &pg_query__insert_stmt__descriptor)
		with = ((const PgQuery__InsertStmt *)m)->with_clause;
	else if (d == &pg_query__update_stmt__descriptor)
		with = ((const PgQuery__UpdateStmt *)m)->with_clause;
	else if (d == &pg_query__delete_stmt__descriptor)
		with = ((const PgQuery__DeleteStmt *)m)->with_clause;
	else
		with = ((const PgQuery__MergeStmt *)m)->with_clause;
	if (with != NULL) {
		own.with = with;
		own.n_visible = with->n_ctes;
		own.up = a->sc;
		in.sc = &own;
	}
	level_init(w, &lv, m, a->lv, in.sc);
	in.lv = &lv;
	if (d == &pg_query__insert_stmt__descriptor) {
		const PgQuery__Node *q = ((const PgQuery__InsertStmt *)m)->select_stmt;

		/* INSERT ... SELECT: the rows to insert are a derived table */
		if (q != NULL && q->node_case == PG_QUERY__NODE__NODE_SELECT_STMT)
			judge_subquery(w, q->select_stmt, NULL, a->lv, in.sc, 0);
	}
	tables_each_child(w, m, NULL, NULL, local_walk, &in);
	where_block_free(&lv.b);
}

/* Find every subquery of a statement and judge it where it stands. */
static void local_walk(walk_t *w, const ProtobufCMessage *m, void *arg)
{
	const lwalk_t *a = arg;
	const ProtobufCMessageDescriptor *d = m->descriptor;

	if (walk_stopped(w))
		return;
	if (d == &pg_query__sub_link__descriptor) {
		const PgQuery__SubLink *l = (const PgQuery__SubLink *)m;

		if (l->subselect != NULL &&
		    l->subselect->node_case == PG_QUERY__NODE__NODE_SELECT_STMT)
			judge_subquery(w, l->subselect->select_stmt, l, a->lv, a->sc, 0);
	} else if (d == &pg_query__range_subselect__descriptor) {
		const PgQuery__Node *q = ((const PgQuery__RangeSubselect *)m)->subquery;

		if (q != NULL && q->node_case == PG_QUERY__NODE__NODE_SELECT_STMT)
			judge_subquery(w, q->select_stmt, NULL, a->lv, a->sc, 0);
	} else if (d == &pg_query__with_clause__descriptor) {
		local_with(w, (const PgQuery__WithClause *)m, a);
		return;
	} else if (d == &pg_query__select_stmt__descriptor ||
	           d == &pg_query__insert_stmt__descriptor ||
	           d == &pg_query__update_stmt__descriptor ||
	           d == &pg_query__delete_stmt__descriptor ||
	           d == &pg_query__merge_stmt__descriptor) {
		local_stmt(w, m, a);
		return;
	}
	tables_each_child(w, m, NULL, NULL, local_walk, arg);
}

/*
 * A statement on several shards (merge SUM, COUNT or GATHER; one_shard -1),
 * or on one shard of a map (one_shard): refuse it (in w, -1) when one of
 * its subqueries would be answered wrongly by a shard alone.
 */
static int subqueries_local(walk_t *w, const PgQuery__Node *n, int one_shard)
{
	lwalk_t root = {NULL, NULL};

	/* EXPLAIN ANALYZE runs its statement (a write writes): judged like it; a plan is not */
	if (n != NULL && n->node_case == PG_QUERY__NODE__NODE_EXPLAIN_STMT)
		n = plan_explain_analyzes(n->explain_stmt) ? n->explain_stmt->query : NULL;
	if (n == NULL)
		return 0;
	walk_reset(w);
	w->one_shard = one_shard;
	tables_collect(w, &n->base, NULL);
	if (walk_stopped(w))
		return -1;
	if (w->map < 0)
		return 0;
	w->smap = &w->ctx->maps[w->map];
	/* a map on one shard keeps every row of its tables there */
	if (one_shard >= 0 && shard_set_count(&w->smap->all) <= 1)
		return 0;
	local_walk(w, &n->base, &root);
	return walk_stopped(w) ? -1 : 0;
}

/*
 * How the shards' answers to one statement combine: 1 when it has none to
 * combine (SET, transaction control: they go wherever the others go), 0
 * with *m, or -1 when they cannot be combined (refused, in w).
 */
static int stmt_merge(walk_t *w, const PgQuery__Node *n, route_merge_t *m)
{
	const PgQuery__RangeVar *rel = NULL;
	int i;

	if (n == NULL)
		return 1;
	switch (n->node_case) {
	case PG_QUERY__NODE__NODE_TRANSACTION_STMT:
	case PG_QUERY__NODE__NODE_VARIABLE_SET_STMT:
		return 1;
	case PG_QUERY__NODE__NODE_SELECT_STMT:
		if (n->select_stmt->into_clause != NULL) {
			*m = ROUTE_MERGE_ONE;
			return 0;
		}
		return mergekind_select(w, n, false, m);
	case PG_QUERY__NODE__NODE_INSERT_STMT:
		rel = n->insert_stmt->relation;
		break;
	case PG_QUERY__NODE__NODE_UPDATE_STMT:
		rel = n->update_stmt->relation;
		break;
	case PG_QUERY__NODE__NODE_DELETE_STMT:
		rel = n->delete_stmt->relation;
		break;
	case PG_QUERY__NODE__NODE_MERGE_STMT:
		rel = n->merge_stmt->relation;
		break;
	case PG_QUERY__NODE__NODE_COPY_STMT: {
		const PgQuery__CopyStmt *c = n->copy_stmt;

		if (c->query != NULL && c->query->node_case == PG_QUERY__NODE__NODE_SELECT_STMT)
			return mergekind_select(w, c->query, true, m);
		rel = c->relation;
		break;
	}
	case PG_QUERY__NODE__NODE_EXPLAIN_STMT:
		*m = ROUTE_MERGE_SUM; /* each shard's plan */
		return 0;
	case PG_QUERY__NODE__NODE_DECLARE_CURSOR_STMT:
		return mergekind_cursor(w, n->declare_cursor_stmt->query, m);
	default:
		*m = ROUTE_MERGE_ONE; /* DDL and the like: the same on every shard */
		return 0;
	}
	/* writes: a reference table's copies answer alike; anything else adds up */
	i = rel ? tables_find(w->cfg, rel->catalogname, rel->schemaname, rel->relname) : -1;
	*m = i >= 0 && tables_at(w, i)->reference ? ROUTE_MERGE_ONE : ROUTE_MERGE_SUM;
	return 0;
}

static const char *merge_words(route_merge_t m)
{
	switch (m) {
	case ROUTE_MERGE_SUM:
		return "concatenates rows";
	case ROUTE_MERGE_ONE:
		return "takes one copy";
	case ROUTE_MERGE_COUNT:
		return "adds up counts";
	case ROUTE_MERGE_GATHER:
		return "merges rows with a gather plan";
	default:
		return "runs on one shard";
	}
}

/*
 * A plan on one shard of a map, unless a routing comment chose it: refuse
 * it (in w) when a subquery needs rows of other shards.
 */
static void one_shard_subqueries(walk_t *w, const PgQuery__ParseResult *tree, bool by_comment,
                                 const route_plan_t *out)
{
	if (out->kind != ROUTE_SHARDS || shard_set_count(&out->shards) != 1 || tree == NULL ||
	    by_comment)
		return;
	for (size_t i = 0; i < tree->n_stmts && !w->nomem; i++)
		if (subqueries_local(w, tree->stmts[i]->stmt, shard_set_first(&out->shards)) < 0)
			break;
}

/*
 * out->merge for the final plan; refuses it when the answers cannot be
 * combined yet, or when a subquery would be answered wrongly where it runs.
 * by_comment: a routing comment chose the shards, whatever the subqueries.
 */
void subq_plan_merge(walk_t *w, const PgQuery__ParseResult *tree, bool by_comment,
                     route_plan_t *out)
{
	route_merge_t first = ROUTE_MERGE_NONE, m = ROUTE_MERGE_NONE;
	size_t first_at = 0;
	bool any = false;

	out->merge = ROUTE_MERGE_NONE;
	walk_reset(w);
	one_shard_subqueries(w, tree, by_comment, out);
	if ((out->kind != ROUTE_SHARDS && out->kind != ROUTE_ALL) ||
	    shard_set_count(&out->shards) <= 1)
		goto done;
	if (tree == NULL) {
		/* a comment sent it everywhere unparsed: the shards answer alike (an error) */
		out->merge = ROUTE_MERGE_ONE;
		return;
	}
	for (size_t i = 0; i < tree->n_stmts && !w->nomem; i++) {
		int rc;

		walk_reset(w);
		rc = stmt_merge(w, tree->stmts[i]->stmt, &m);
		if (rc == 1)
			continue;
		if (rc < 0)
			break;
		if ((m == ROUTE_MERGE_SUM || m == ROUTE_MERGE_COUNT || m == ROUTE_MERGE_GATHER) &&
		    subqueries_local(w, tree->stmts[i]->stmt, -1) < 0)
			break;
		/* the proxy runs a gather plan for one statement, not for a string of them */
		if (m == ROUTE_MERGE_GATHER && tree->n_stmts > 1) {
			walk_refuse(
			    w,
			    "a SELECT on several shards whose rows the proxy merges (ORDER BY, "
			    "LIMIT, aggregates, GROUP BY, DISTINCT) cannot share its query string "
			    "with other statements; send it alone");
			break;
		}
		if (any && m != first) {
			walk_refuse(
			    w,
			    "the statements of this query string combine the shards' answers "
			    "differently (statement %zu %s, statement %zu %s); send them "
			    "separately",
			    first_at + 1, merge_words(first), i + 1, merge_words(m));
			break;
		}
		if (!any) {
			first = m;
			first_at = i;
			any = true;
		}
	}
	if (!w->refused)
		out->merge = any ? first : ROUTE_MERGE_ONE;
done:
	/* a subquery's key parameter may decide too */
	out->params_missing = out->params_missing || w->params_missing;
	out->key_encoded = out->key_encoded || w->key_encoded;
	/* a plan for unknown parameters is judged again when they are known */
	if (w->refused && !out->params_missing)
		plan_refused(w, out);
}
