/*
 * route_analysis.c — pass 2 of routing: the structured analysis of a
 * statement on sharded tables. Each query level, FROM item, CTE and
 * predicate yields a part, combined by AND or OR as route.c explains; a
 * derived table counts as a table when it selects its key columns
 * unmodified (keyout_t). INSERT, UPDATE, DELETE and MERGE add the checks
 * writes need.
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

/* ---- pass 2: the structured analysis ---- */

enum {
	KS_BAD,
	KS_COLOCATED, /* INSERT ... SELECT takes the key from a co-located table's key */
	KS_VALUE,     /* ... from a constant or parameter */
	KS_UNKNOWN,   /* ... from a parameter that was not given */
};

/* INSERT ... SELECT: where the selected value for the key column comes from. */
typedef struct keysrc {
	int pos; /* position in the select list */
	int kind;
	int shard;
} keysrc_t;

static part_t an_select(walk_t *w, const PgQuery__SelectStmt *s, scope_t *sc, keysrc_t *ks,
                        keyout_t *ko);

static void keyout_init(keyout_t *ko)
{
	memset(ko, 0, sizeof *ko);
	ko->corr = -1;
}

static void keyout_add(keyout_t *ko, const char *name, int pos)
{
	if (name != NULL && ko->n < KEYOUT_MAX) {
		ko->names[ko->n] = name;
		ko->pos[ko->n] = pos;
		ko->n++;
	}
}

/* `AS s(a, b, ...)` renames the first columns: keys past a `*` are no longer known. */
static void keyout_rename(keyout_t *ko, const PgQuery__Alias *alias)
{
	keyout_t in = *ko;

	if (alias == NULL || alias->n_colnames == 0)
		return;
	ko->n = 0;
	for (int k = 0; k < in.n; k++) {
		if (in.pos[k] < 0)
			continue;
		if ((size_t)in.pos[k] < alias->n_colnames)
			keyout_add(ko, tree_str_of(alias->colnames[in.pos[k]]), in.pos[k]);
		else
			keyout_add(ko, in.names[k], in.pos[k]);
	}
}

/* Whether a rel is what the qualifier q names (an alias hides the table's own name). */
static bool rel_named(const rel_t *r, const char *q)
{
	if (r->rv == NULL)
		return streq(r->name, q);
	return where_alias_of(r->rv) != NULL ? streq(where_alias_of(r->rv), q)
	                                     : streq(r->rv->relname, q);
}

/* The key columns a select list (or RETURNING list) passes on unmodified from block b. */
static void targets_keyout(const block_t *b, PgQuery__Node *const *targets, size_t n, keyout_t *ko)
{
	bool star = false;

	for (size_t i = 0; i < n; i++) {
		const PgQuery__ResTarget *rt;
		const PgQuery__ColumnRef *c;

		if (targets[i] == NULL || targets[i]->node_case != PG_QUERY__NODE__NODE_RES_TARGET)
			continue;
		rt = targets[i]->res_target;
		if (tree_is_star(rt->val)) {
			const char *q;

			c = rt->val->column_ref;
			q = c->n_fields >= 2 ? tree_str_of(c->fields[c->n_fields - 2]) : NULL;
			for (int r = 0; r < b->n_rels; r++)
				if (c->n_fields == 1 || rel_named(&b->rels[r], q))
					for (int k = 0; k < where_rel_n_keys(&b->rels[r]); k++)
						keyout_add(ko, where_rel_key(&b->rels[r], k), -1);
			star = true;
			continue;
		}
		if (where_key_rel(b, rt->val) < 0)
			continue;
		c = rt->val->column_ref;
		keyout_add(ko,
		           !empty(rt->name) ? rt->name : tree_str_of(c->fields[c->n_fields - 1]),
		           star ? -1 : (int)i);
	}
}

/* DISTINCT keeps each row's key; DISTINCT ON picks among keys unless it is on one. */
static bool distinct_by_key(const PgQuery__SelectStmt *s, const block_t *b)
{
	if (s->n_distinct_clause == 0 ||
	    (s->n_distinct_clause == 1 &&
	     s->distinct_clause[0]->node_case == PG_QUERY__NODE__NODE__NOT_SET))
		return true;
	for (size_t i = 0; i < s->n_distinct_clause; i++)
		if (where_key_rel(b, s->distinct_clause[i]) >= 0)
			return true;
	return false;
}

/*
 * The key columns of one SELECT level (no set operation) whose block is b.
 * Its rows keep the shard their key says only if it combines no rows of
 * several keys: no window functions, LIMIT/OFFSET or DISTINCT ON other
 * columns, and aggregates only per group of a GROUP BY on the key.
 */
static void select_keyout(walk_t *w, const PgQuery__SelectStmt *s, const block_t *b, keyout_t *ko)
{
	char buf[96];
	const char *why;

	if (b->n_rels == 0)
		return;
	ko->table = b->rels[0].table;
	why = an_level_combines(w, s, b, true, buf, sizeof buf);
	if (why == NULL && !distinct_by_key(s, b))
		why = "DISTINCT ON other columns than the shard key";
	if (why != NULL)
		snprintf(ko->why, sizeof ko->why, "has %s", why);
	else
		targets_keyout(b, s->target_list, s->n_target_list, ko);
}

/* UNION, INTERSECT, EXCEPT: a column is a key where it is one in both arms. */
static void setop_keyout(const keyout_t *l, const keyout_t *r, keyout_t *ko)
{
	ko->table = l->table != NULL ? l->table : r->table;
	memcpy(ko->why, l->why[0] != '\0' ? l->why : r->why, sizeof ko->why);
	for (int i = 0; i < l->n; i++)
		for (int k = 0; k < r->n && l->pos[i] >= 0; k++)
			if (r->pos[k] == l->pos[i]) {
				keyout_add(ko, l->names[i], l->pos[i]);
				break;
			}
}

/* INSERT, UPDATE, DELETE ... RETURNING: the key columns of the target it returns. */
static void returning_keyout(walk_t *w, const PgQuery__RangeVar *rel, PgQuery__Node *const *targets,
                             size_t n, keyout_t *ko)
{
	int i = rel ? tables_find(w->cfg, rel->catalogname, rel->schemaname, rel->relname) : -1;
	block_t b;

	if (i < 0 || !tables_is_sharded(tables_at(w, i)))
		return;
	where_block_init(&b);
	where_block_add_rel(w, &b, tables_at(w, i), rel);
	ko->table = tables_at(w, i);
	if (b.n_rels == 1)
		targets_keyout(&b, targets, n, ko);
	where_block_free(&b);
}

/*
 * A LATERAL subquery whose block is b, correlated by a top-level conjunct of
 * its WHERE (or of an inner join's ON) that equates one of its keys with the
 * key of a table of the enclosing block up, named qualified: its rows then
 * live with that table's. The index of that table in up, or -1.
 */
static int lateral_corr(const PgQuery__SelectStmt *s, const block_t *b, const block_t *up,
                        const PgQuery__Node *n)
{
	const PgQuery__AExpr *e;

	if (n == NULL)
		return -1;
	if (n->node_case == PG_QUERY__NODE__NODE_BOOL_EXPR &&
	    n->bool_expr->boolop == PG_QUERY__BOOL_EXPR_TYPE__AND_EXPR) {
		for (size_t i = 0; i < n->bool_expr->n_args; i++) {
			int r = lateral_corr(s, b, up, n->bool_expr->args[i]);

			if (r >= 0)
				return r;
		}
		return -1;
	}
	if (n->node_case != PG_QUERY__NODE__NODE_A_EXPR)
		return -1;
	e = n->a_expr;
	if (e->kind != PG_QUERY__A__EXPR__KIND__AEXPR_OP || !streq(where_op_name(e), "="))
		return -1;
	for (int side = 0; side < 2; side++) {
		const PgQuery__Node *in = side ? e->rexpr : e->lexpr,
		                    *out = side ? e->lexpr : e->rexpr;
		const PgQuery__ColumnRef *c;
		const char *q;
		bool own = false;

		if (where_key_rel(b, in) < 0 || out == NULL ||
		    out->node_case != PG_QUERY__NODE__NODE_COLUMN_REF)
			continue;
		c = out->column_ref;
		q = c->n_fields >= 2 ? tree_str_of(c->fields[c->n_fields - 2]) : NULL;
		for (size_t i = 0; i < s->n_from_clause && q != NULL && !own; i++)
			own = where_item_named(s->from_clause[i], q, 0);
		if (q != NULL && !own && where_key_rel(up, out) >= 0)
			return where_key_rel(up, out);
	}
	return -1;
}

static part_t cte_part(walk_t *w, scope_t *node)
{
	if (node->done)
		return node->part;
	if (node->busy || node->cte == NULL)
		return part_make(PART_NONE); /* a recursive reference adds no table */
	node->busy = true;
	keyout_init(&node->keys);
	node->part = an_query(w, node->cte->ctequery, node->inner, false, &node->keys);
	if (node->recursive) {
		/* its rows grow from rows of other keys */
		node->keys.n = 0;
		snprintf(node->keys.why, sizeof node->keys.why, "is a recursive CTE");
	}
	node->busy = false;
	node->done = true;
	return node->part;
}

bool an_is_write_query(const PgQuery__Node *n)
{
	return n != NULL && (n->node_case == PG_QUERY__NODE__NODE_INSERT_STMT ||
	                     n->node_case == PG_QUERY__NODE__NODE_UPDATE_STMT ||
	                     n->node_case == PG_QUERY__NODE__NODE_DELETE_STMT ||
	                     n->node_case == PG_QUERY__NODE__NODE_MERGE_STMT);
}

/* Data-modifying CTEs run whether or not they are referenced: union them in. */
static part_t with_writes(walk_t *w, const PgQuery__WithClause *with, scope_t *nodes)
{
	part_t p = part_make(PART_NONE);

	if (nodes == NULL)
		return p;
	for (size_t i = 0; i < with->n_ctes; i++)
		if (nodes[i].cte != NULL && an_is_write_query(nodes[i].cte->ctequery))
			p = part_or(p, cte_part(w, &nodes[i]));
	return p;
}

static bool in_string_list(PgQuery__Node *const *items, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (streq(tree_str_of(items[i]), s))
			return true;
	return false;
}

/*
 * USING (key), NATURAL: the keys of both sides of join j are equal. The
 * rels of its left side are l0 .. l1 - 1 of b, those of its right side
 * l1 and after.
 */
void an_join_using(block_t *b, const PgQuery__JoinExpr *j, int l0, int l1)
{
	for (int x = l0; x < l1 && (j->is_natural || j->n_using_clause > 0); x++)
		for (int y = l1; y < b->n_rels; y++)
			for (int k = 0; k < where_rel_n_keys(&b->rels[x]); k++) {
				const char *key = where_rel_key(&b->rels[x], k);

				if (where_rel_has_key(&b->rels[y], key) &&
				    (j->is_natural ||
				     in_string_list(j->using_clause, j->n_using_clause, key)))
					where_rel_join(b, x, y);
			}
}

static void an_from_item(walk_t *w, const PgQuery__Node *n, scope_t *sc, block_t *b, bool nullable)
{
	if (n == NULL || walk_stopped(w))
		return;
	switch (n->node_case) {
	case PG_QUERY__NODE__NODE_RANGE_VAR: {
		const PgQuery__RangeVar *rv = n->range_var;
		scope_t *cte = empty(rv->schemaname) ? tables_find_cte(sc, rv->relname) : NULL;
		int i;

		if (cte != NULL) {
			part_t p = cte_part(w, cte);
			keyout_t ko = cte->keys;

			b->items = part_and(b->items, nullable ? part_weaken(p) : p);
			if (p.kind != PART_NONE && cte->done) {
				keyout_rename(&ko, rv->alias);
				where_block_add_derived(
				    w, b, where_alias_of(rv) ? where_alias_of(rv) : rv->relname,
				    "CTE", &ko, &p);
			}
			return;
		}
		i = tables_find(w->cfg, rv->catalogname, rv->schemaname, rv->relname);
		if (i >= 0 && tables_is_sharded(tables_at(w, i)))
			where_block_add_rel(w, b, tables_at(w, i), rv);
		return;
	}
	case PG_QUERY__NODE__NODE_JOIN_EXPR: {
		const PgQuery__JoinExpr *j = n->join_expr;
		bool inner = j->jointype == PG_QUERY__JOIN_TYPE__JOIN_INNER;
		int l0, l1;
		bool lnull = nullable || j->jointype == PG_QUERY__JOIN_TYPE__JOIN_RIGHT ||
		             j->jointype == PG_QUERY__JOIN_TYPE__JOIN_FULL;
		bool rnull = nullable || j->jointype == PG_QUERY__JOIN_TYPE__JOIN_LEFT ||
		             j->jointype == PG_QUERY__JOIN_TYPE__JOIN_FULL;

		if (!inner && j->jointype != PG_QUERY__JOIN_TYPE__JOIN_LEFT &&
		    j->jointype != PG_QUERY__JOIN_TYPE__JOIN_RIGHT &&
		    j->jointype != PG_QUERY__JOIN_TYPE__JOIN_FULL)
			lnull = rnull = true; /* semi/anti joins do not come from the grammar */
		l0 = b->n_rels;
		an_from_item(w, j->larg, sc, b, lnull);
		l1 = b->n_rels;
		an_from_item(w, j->rarg, sc, b, rnull);
		an_join_using(b, j, l0, l1);
		if (j->quals != NULL) {
			where_nodes_push(w, &b->joins, j->quals);
			/* an outer join's ON keeps the rows it does not match: no filter */
			if (inner && !nullable)
				where_nodes_push(w, &b->quals, j->quals);
		}
		return;
	}
	case PG_QUERY__NODE__NODE_RANGE_SUBSELECT: {
		const PgQuery__RangeSubselect *rs = n->range_subselect;
		const PgQuery__Alias *alias = rs->alias;
		keyout_t ko;
		part_t p;

		keyout_init(&ko);
		w->lateral_up = rs->lateral ? b : NULL;
		p = an_query(w, rs->subquery, sc, false, &ko);
		w->lateral_up = NULL;
		b->items = part_and(b->items, nullable ? part_weaken(p) : p);
		if (p.kind != PART_NONE) {
			int i = b->n_rels;

			keyout_rename(&ko, alias);
			where_block_add_derived(w, b, alias != NULL ? alias->aliasname : NULL,
			                        "subquery", &ko, &p);
			if (ko.corr >= 0 && ko.corr < i && b->n_rels > i)
				where_rel_join(b, ko.corr, i);
		}
		return;
	}
	default:
		return; /* functions, VALUES in FROM, ...: no table of their own */
	}
}

/* Split a WHERE into its top-level conjuncts. */
static void block_conjuncts(walk_t *w, const block_t *b, const PgQuery__Node *n, scope_t *sc,
                            part_t *cons, part_t *subs)
{
	if (n == NULL || walk_stopped(w))
		return;
	if (n->node_case == PG_QUERY__NODE__NODE_BOOL_EXPR &&
	    n->bool_expr->boolop == PG_QUERY__BOOL_EXPR_TYPE__AND_EXPR) {
		for (size_t i = 0; i < n->bool_expr->n_args; i++)
			block_conjuncts(w, b, n->bool_expr->args[i], sc, cons, subs);
		return;
	}
	if (n->node_case == PG_QUERY__NODE__NODE_SUB_LINK) {
		part_t inner = an_query(w, n->sub_link->subselect, sc, false, NULL);

		/*
		 * key IN (SELECT ...), EXISTS (...): true only where a row of the
		 * subquery is. x <> ALL (SELECT ...) is true where there is none.
		 */
		if (n->sub_link->sub_link_type == PG_QUERY__SUB_LINK_TYPE__ALL_SUBLINK)
			inner = part_weaken(inner);
		*subs = part_and(*subs, inner);
		return;
	}
	*cons = part_and(*cons, where_pred_part(w, b, n));
}

/* Join the groups of the tables that an `a.key = b.key` conjunct equates. */
static void join_keys(block_t *b, const PgQuery__Node *n)
{
	const PgQuery__AExpr *e;
	int x, y;

	if (n == NULL)
		return;
	if (n->node_case == PG_QUERY__NODE__NODE_BOOL_EXPR &&
	    n->bool_expr->boolop == PG_QUERY__BOOL_EXPR_TYPE__AND_EXPR) {
		for (size_t i = 0; i < n->bool_expr->n_args; i++)
			join_keys(b, n->bool_expr->args[i]);
		return;
	}
	if (n->node_case != PG_QUERY__NODE__NODE_A_EXPR)
		return;
	e = n->a_expr;
	if (e->kind != PG_QUERY__A__EXPR__KIND__AEXPR_OP || !streq(where_op_name(e), "="))
		return;
	x = where_key_rel(b, e->lexpr);
	y = where_key_rel(b, e->rexpr);
	if (x >= 0 && y >= 0)
		where_rel_join(b, x, y);
}

/* A rel for people: "table users", "subquery s over orders". */
static void rel_words(const rel_t *r, char *out, size_t len)
{
	if (r->rv != NULL)
		snprintf(out, len, "table %s", r->table->name);
	else
		snprintf(out, len, "%s %s over %s", r->what, r->name, r->table->name);
}

/* How a join on a rel's key names it: u.id, s.user_id. */
static void rel_keyref(const rel_t *r, char *out, size_t len)
{
	if (r->rv != NULL)
		snprintf(out, len, "%s.%s",
		         where_alias_of(r->rv) ? where_alias_of(r->rv) : r->table->name,
		         r->table->key);
	else
		snprintf(out, len, "%s.%s", r->name,
		         r->keys.n > 0 ? r->keys.names[0] : r->table->key);
}

/*
 * Sharded tables of one query level must be joined on their keys: only
 * then does each shard hold all the rows that join with its own (that is
 * what co-location buys). Any other join of them needs rows from several
 * shards at once, which one statement on each shard cannot see. A derived
 * table over sharded tables (FROM subquery, CTE) is one of them: its rows
 * are co-located with a table's only through a key column it selects
 * unmodified (see keyout_t), or a LATERAL correlation on the key. A
 * statement that routes to one shard is not enough (a join on other columns
 * would still need rows of the other shards), unless each side is held to
 * that one shard by its own key conditions (pinned_together).
 */
/*
 * The one shard rel i of the block is held to by the statement's own
 * conditions (the WHERE and the inner joins' ON, ANDed; a derived table's
 * own query too), -1 when none, -2 when a parameter that would say is not
 * given yet.
 */
static int rel_pinned(walk_t *w, const block_t *b, int i, const PgQuery__Node *where)
{
	block_t one = *b;
	bool missing = w->params_missing;
	part_t p;
	int s;

	one.rels = &b->rels[i];
	one.n_rels = 1;
	p = where_pred_part(w, &one, where);
	for (int k = 0; k < b->quals.n; k++)
		p = part_and(p, where_pred_part(w, &one, b->quals.v[k]));
	if (b->rels[i].rv == NULL && b->rels[i].own.kind == PART_SET)
		p = part_and(p, b->rels[i].own);
	if (p.kind == PART_SET && shard_set_count(&p.set) == 1)
		return shard_set_first(&p.set);
	s = w->params_missing && !missing ? -2 : -1;
	w->params_missing = missing || s == -2;
	return s;
}

/*
 * Two rels joined on other columns than their keys, when each is held to
 * the same one shard by its own key conditions (u.tenant_id = 3 AND
 * o.tenant_id = 3): every row either can join is on that shard. Also true,
 * for now, when a parameter not given yet may say so: the plan is made
 * again with it.
 */
static bool pinned_together(walk_t *w, const block_t *b, int x, int y, const PgQuery__Node *where)
{
	int sx = rel_pinned(w, b, x, where), sy;

	if (sx == -1)
		return false;
	sy = rel_pinned(w, b, y, where);
	return sy == -2 || sx == -2 || (sy >= 0 && sy == sx);
}

void an_check_joined_on_keys(walk_t *w, block_t *b, const PgQuery__Node *where)
{
	if (b->n_rels < 2 || shard_set_count(&w->smap->all) <= 1)
		return;
	join_keys(b, where);
	for (int i = 0; i < b->joins.n; i++)
		join_keys(b, b->joins.v[i]);
	for (int i = 1; i < b->n_rels; i++) {
		const rel_t *r0 = &b->rels[0], *r = &b->rels[i];
		const rel_t *d = r0->rv == NULL ? r0 : r;
		const cfg_table_t *t0 = r0->table, *t = r->table;
		char k0[2 * NAME_MAX_LEN], k[2 * NAME_MAX_LEN];
		char w0[3 * NAME_MAX_LEN], wi[3 * NAME_MAX_LEN];

		if (r->group == r0->group || pinned_together(w, b, 0, i, where))
			continue;
		if (r0->rv != NULL && r->rv != NULL) {
			walk_refuse(
			    w,
			    "tables %s and %s are joined without equal keys, so matching rows may "
			    "be on different shards; join them on %s.%s = %s.%s (or query them "
			    "separately)",
			    t0->name, t->name,
			    where_alias_of(r0->rv) ? where_alias_of(r0->rv) : t0->name, t0->key,
			    where_alias_of(r->rv) ? where_alias_of(r->rv) : t->name, t->key);
			return;
		}
		/* a derived table: its rows are where the key it selects says */
		if (r->rv == NULL && (r->keys.why[0] != '\0' || r0->rv != NULL))
			d = r;
		rel_words(r0, w0, sizeof w0);
		rel_words(r, wi, sizeof wi);
		rel_keyref(r0, k0, sizeof k0);
		rel_keyref(r, k, sizeof k);
		if (d->keys.why[0] != '\0')
			walk_refuse(
			    w,
			    "%s %s, so its rows are not each on the shard of their key, and it "
			    "is joined to %s: that is not supported yet (each shard would join "
			    "only its own rows); keep %s.%s in it unmodified, with aggregates "
			    "only grouped by it and no LIMIT/OFFSET, window functions or "
			    "recursion, and join on %s = %s, or /* pgshard: shard=N */",
			    d == r ? wi : w0, d->keys.why, d == r ? w0 : wi, d->table->name,
			    d->table->key, k0, k);
		else
			walk_refuse(
			    w,
			    "%s and %s are joined without equal keys, so matching rows may be on "
			    "different shards; join them on %s = %s, with %s %s selecting %s.%s "
			    "unmodified (and grouping by it if it aggregates), or query them "
			    "separately",
			    w0, wi, k0, k, d->what, d->name, d->table->name, d->table->key);
		return;
	}
}

static part_t an_block(walk_t *w, block_t *b, const PgQuery__Node *where, scope_t *sc)
{
	part_t cons = part_make(PART_ALL), subs = part_make(PART_NONE), direct;

	an_check_joined_on_keys(w, b, where);

	block_conjuncts(w, b, where, sc, &cons, &subs);
	for (int i = 0; i < b->quals.n; i++)
		block_conjuncts(w, b, b->quals.v[i], sc, &cons, &subs);
	if (b->n_rels == 0)
		direct = part_make(PART_NONE);
	else
		direct = cons.kind == PART_SET ? cons : part_make(PART_ALL);
	return part_and(part_and(direct, b->items), subs);
}

/*
 * Every subquery in an expression, ANDed: for a query level that reads no
 * sharded table itself, each subquery's value is right on a shard that holds
 * all of the subquery's rows.
 */
static void expr_sublinks(walk_t *w, const ProtobufCMessage *m, scope_t *sc, part_t *acc);

typedef struct sublinks_arg {
	scope_t *sc;
	part_t *acc;
} sublinks_arg_t;

static void sublinks_child(walk_t *w, const ProtobufCMessage *child, void *arg)
{
	sublinks_arg_t *a = arg;

	expr_sublinks(w, child, a->sc, a->acc);
}

static void expr_sublinks(walk_t *w, const ProtobufCMessage *m, scope_t *sc, part_t *acc)
{
	sublinks_arg_t a = {sc, acc};

	if (walk_stopped(w))
		return;
	if (m->descriptor == &pg_query__sub_link__descriptor) {
		const PgQuery__SubLink *l = (const PgQuery__SubLink *)m;

		*acc = part_and(*acc, an_query(w, l->subselect, sc, false, NULL));
		return;
	}
	tables_each_child(w, m, NULL, NULL, sublinks_child, &a);
}

/* INSERT ... SELECT: what the select list gives the key column. */
static void select_keysrc(walk_t *w, const PgQuery__SelectStmt *s, const block_t *b, keysrc_t *ks)
{
	const PgQuery__Node *val;
	keyval_t kv;

	ks->kind = KS_BAD;
	if (ks->pos < 0 || (size_t)ks->pos >= s->n_target_list)
		return;
	for (int i = 0; i <= ks->pos; i++) {
		const PgQuery__Node *t = s->target_list[i];

		if (t == NULL || t->node_case != PG_QUERY__NODE__NODE_RES_TARGET)
			return;
		val = t->res_target->val;
		/* SELECT * : the key's position is the table's column order, unknown here */
		if (val != NULL && val->node_case == PG_QUERY__NODE__NODE_COLUMN_REF &&
		    val->column_ref->n_fields > 0 &&
		    val->column_ref->fields[val->column_ref->n_fields - 1]->node_case ==
		        PG_QUERY__NODE__NODE_A_STAR)
			return;
	}
	val = s->target_list[ks->pos]->res_target->val;
	if (where_key_rel(b, val) >= 0) {
		ks->kind = KS_COLOCATED;
		return;
	}
	switch (keys_value(w, val, 0, &kv)) {
	case KV_OK:
		ks->shard = shard_map_lookup(w->smap, &kv.key);
		if (ks->shard >= 0)
			ks->kind = KS_VALUE;
		break;
	case KV_UNKNOWN:
		ks->kind = KS_UNKNOWN;
		break;
	default:
		break;
	}
}

static part_t an_select(walk_t *w, const PgQuery__SelectStmt *s, scope_t *sc, keysrc_t *ks,
                        keyout_t *ko)
{
	const block_t *lateral_up = w->lateral_up;
	scope_t *nodes, *body;
	part_t p, writes;

	w->lateral_up = NULL; /* for this level only, not the subqueries in it */
	if (s == NULL || walk_stopped(w))
		return part_make(PART_NONE);
	if (++w->depth > MAX_DEPTH) {
		walk_refuse(
		    w,
		    "the statement is nested too deeply for pgshard's router (more than %d levels)",
		    MAX_DEPTH);
		w->depth--;
		return part_make(PART_ALL);
	}
	body = tables_with_open(w, s->with_clause, sc, &nodes);
	writes = with_writes(w, s->with_clause, nodes);
	if (s->op != PG_QUERY__SET_OPERATION__SETOP_NONE &&
	    s->op != PG_QUERY__SET_OPERATION__SET_OPERATION_UNDEFINED) {
		keysrc_t kl, kr;
		keyout_t ol, orr;

		if (ks != NULL) {
			kl = *ks;
			kr = *ks;
		}
		keyout_init(&ol);
		keyout_init(&orr);
		/* UNION, INTERSECT, EXCEPT: either side's rows may matter */
		p = part_or(an_select(w, s->larg, body, ks ? &kl : NULL, ko ? &ol : NULL),
		            an_select(w, s->rarg, body, ks ? &kr : NULL, ko ? &orr : NULL));
		if (ks != NULL)
			ks->kind = kl.kind == KS_COLOCATED && kr.kind == KS_COLOCATED ? KS_COLOCATED
			                                                              : KS_BAD;
		/* a LIMIT of the whole picks among the rows of all shards */
		if (ko != NULL && (s->limit_count != NULL || s->limit_offset != NULL))
			snprintf(ko->why, sizeof ko->why, "has LIMIT/OFFSET");
		else if (ko != NULL)
			setop_keyout(&ol, &orr, ko);
	} else if (s->n_values_lists > 0) {
		p = part_make(PART_NONE);
		if (ks != NULL)
			ks->kind = KS_BAD;
	} else {
		part_t subs = part_make(PART_NONE);
		block_t b;

		where_block_init(&b);
		for (size_t i = 0; i < s->n_from_clause; i++)
			an_from_item(w, s->from_clause[i], body, &b, false);
		p = an_block(w, &b, s->where_clause, body);
		/*
		 * SELECT (SELECT ... FROM users WHERE id = 1), SELECT ... FROM
		 * countries WHERE NOT EXISTS (...): no sharded table of this level
		 * joins the subqueries' rows, so the level is answered where they are.
		 */
		if (p.kind == PART_NONE && b.n_rels == 0 && b.items.kind == PART_NONE) {
			for (size_t i = 0; i < s->n_target_list; i++)
				expr_sublinks(w, &s->target_list[i]->base, body, &subs);
			if (s->where_clause != NULL)
				expr_sublinks(w, &s->where_clause->base, body, &subs);
			if (s->having_clause != NULL)
				expr_sublinks(w, &s->having_clause->base, body, &subs);
			p = subs;
		}
		if (ks != NULL)
			select_keysrc(w, s, &b, ks);
		if (ko != NULL) {
			select_keyout(w, s, &b, ko);
			/*
			 * Every row of this level is on one shard (its own key
			 * conditions say so): a LIMIT, aggregate or window over
			 * them is what one PostgreSQL computes, and a key column
			 * it selects unmodified still names that shard (an ORM's
			 * eager load of one tenant's first rows, joined on the key).
			 */
			if (ko->why[0] != '\0' && p.kind == PART_SET &&
			    shard_set_count(&p.set) == 1) {
				ko->why[0] = '\0';
				targets_keyout(&b, s->target_list, s->n_target_list, ko);
			}
			if (lateral_up != NULL) {
				ko->corr = lateral_corr(s, &b, lateral_up, s->where_clause);
				for (int i = 0; i < b.quals.n && ko->corr < 0; i++)
					ko->corr = lateral_corr(s, &b, lateral_up, b.quals.v[i]);
			}
		}
		where_block_free(&b);
	}
	p = part_or(p, writes);
	free(nodes);
	w->depth--;
	return p;
}

enum {
	STAYS_NO,
	STAYS_YES,
	STAYS_UNKNOWN, /* a parameter that was not given: decided when it is */
};

/*
 * SET key = val keeps every row on its shard when val is the key itself, or
 * a value whose shard is the one shard all the rows can be on.
 */
static int key_stays(walk_t *w, const block_t *b, int target, const PgQuery__Node *val,
                     const part_t *rows)
{
	const shard_set_t *where = rows->kind == PART_SET ? &rows->set : &w->smap->all;
	keyval_t kv;
	int s;

	if (val != NULL && val->node_case == PG_QUERY__NODE__NODE_MULTI_ASSIGN_REF) {
		const PgQuery__MultiAssignRef *m = val->multi_assign_ref;

		if (m->source == NULL || m->source->node_case != PG_QUERY__NODE__NODE_ROW_EXPR ||
		    m->colno < 1 || (size_t)m->colno > m->source->row_expr->n_args)
			return STAYS_NO;
		val = m->source->row_expr->args[m->colno - 1];
	}
	if (val != NULL && val->node_case == PG_QUERY__NODE__NODE_COLUMN_REF)
		return where_key_rel(b, val) == target ? STAYS_YES : STAYS_NO;
	switch (keys_value(w, val, 0, &kv)) {
	case KV_OK:
		s = shard_map_lookup(w->smap, &kv.key);
		return s >= 0 && shard_set_count(where) == 1 && shard_set_has(where, s) ? STAYS_YES
		                                                                        : STAYS_NO;
	case KV_UNKNOWN:
		return STAYS_UNKNOWN;
	default:
		return STAYS_NO;
	}
}

/*
 * SET key = ... that could move rows to another shard: a top-level UPDATE
 * (movable) runs as a move (w->key_move, proxy/move.c); anything else
 * (MERGE ... UPDATE, an UPDATE in a WITH) is refused.
 */
static void check_key_sets(walk_t *w, const block_t *b, int target, PgQuery__Node *const *targets,
                           size_t n, const part_t *rows, const char *what, bool movable)
{
	const cfg_table_t *t = b->rels[target].table;

	for (size_t i = 0; i < n && !walk_stopped(w); i++) {
		const PgQuery__ResTarget *rt;

		if (targets[i] == NULL || targets[i]->node_case != PG_QUERY__NODE__NODE_RES_TARGET)
			continue;
		rt = targets[i]->res_target;
		if (!streq(rt->name, t->key))
			continue;
		if (rt->n_indirection == 0 && key_stays(w, b, target, rt->val, rows) != STAYS_NO)
			continue;
		if (movable && rt->n_indirection == 0) {
			keyval_t kv;
			int to = keys_value(w, rt->val, 0, &kv) == KV_OK
			             ? shard_map_lookup(w->smap, &kv.key)
			             : -1;

			/* where the rows can go: the value's shard, or any of the map */
			w->key_move = true;
			if (to >= 0)
				shard_set_add(&w->move_to, to);
			else
				shard_set_union(&w->move_to, &w->smap->all);
			continue;
		}
		walk_refuse(
		    w,
		    "%s of the key column %s of %s could move rows to another shard; pgshard "
		    "does not move rows between shards: DELETE the rows and INSERT them with "
		    "the new key (in one transaction), or set the key only to a value on the "
		    "same shard with WHERE %s = that value",
		    what, t->key, t->name, t->key);
	}
}

/*
 * The relations an UPDATE or DELETE works on: its target (first, when it is
 * sharded) and those of its FROM / USING list. Returns the target's config
 * table index, or -1.
 */
static int target_block(walk_t *w, const PgQuery__RangeVar *rel, PgQuery__Node **from,
                        size_t n_from, scope_t *body, block_t *b)
{
	int i = rel ? tables_find(w->cfg, rel->catalogname, rel->schemaname, rel->relname) : -1;

	where_block_init(b);
	if (i >= 0 && tables_is_sharded(tables_at(w, i)))
		where_block_add_rel(w, b, tables_at(w, i), rel);
	for (size_t k = 0; k < n_from; k++)
		an_from_item(w, from[k], body, b, false);
	return i;
}

/*
 * An UPDATE that may move rows runs as a move when it is the statement
 * itself (not in a WITH of another), has no WITH of its own (its
 * data-modifying CTEs would run again) and no WHERE CURRENT OF (a cursor
 * lives on one shard's connection).
 */
static bool update_movable(const PgQuery__UpdateStmt *u, bool top)
{
	return top && u->with_clause == NULL &&
	       (u->where_clause == NULL ||
	        u->where_clause->node_case != PG_QUERY__NODE__NODE_CURRENT_OF_EXPR);
}

static part_t an_update(walk_t *w, const PgQuery__UpdateStmt *u, scope_t *sc, bool top)
{
	scope_t *nodes, *body;
	part_t p, writes;
	block_t b;
	int i;

	body = tables_with_open(w, u->with_clause, sc, &nodes);
	writes = with_writes(w, u->with_clause, nodes);
	i = target_block(w, u->relation, u->from_clause, u->n_from_clause, body, &b);
	p = an_block(w, &b, u->where_clause, body);
	if (!walk_stopped(w) && i >= 0 && b.n_rels > 0 && b.rels[0].rv == u->relation)
		check_key_sets(w, &b, 0, u->target_list, u->n_target_list, &p, "UPDATE",
		               update_movable(u, top));
	where_block_free(&b);
	free(nodes);
	return part_or(p, writes);
}

static part_t an_delete(walk_t *w, const PgQuery__DeleteStmt *d, scope_t *sc)
{
	scope_t *nodes, *body;
	part_t p, writes;
	block_t b;

	body = tables_with_open(w, d->with_clause, sc, &nodes);
	writes = with_writes(w, d->with_clause, nodes);
	target_block(w, d->relation, d->using_clause, d->n_using_clause, body, &b);
	p = an_block(w, &b, d->where_clause, body);
	where_block_free(&b);
	free(nodes);
	return part_or(p, writes);
}

/*
 * Position of column `key` in a column list (INSERT's ResTargets, COPY's
 * Strings), -1 if absent.
 */
int an_column_pos(PgQuery__Node *const *cols, size_t n, const char *key, bool *indirect)
{
	*indirect = false;
	for (size_t i = 0; i < n; i++) {
		if (cols[i] == NULL)
			continue;
		if (streq(tree_str_of(cols[i]), key))
			return (int)i;
		if (cols[i]->node_case != PG_QUERY__NODE__NODE_RES_TARGET)
			continue;
		if (streq(cols[i]->res_target->name, key)) {
			*indirect = cols[i]->res_target->n_indirection > 0;
			return (int)i;
		}
	}
	return -1;
}

/* The shard one row's key value goes to; -1 (refused) when it cannot be routed. */
static int row_shard(walk_t *w, const cfg_table_t *t, const PgQuery__Node *val, size_t row,
                     bool *unknown)
{
	char v[64];
	keyval_t kv;
	sb_t s;
	int st, shard;

	*unknown = false;
	st = keys_value(w, val, 0, &kv);
	switch (st) {
	case KV_OK:
		shard = shard_map_lookup(w->smap, &kv.key);
		keys_note(w, &kv.key);
		if (shard >= 0) {
			keys_note_row(w, &kv.key, shard);
			return shard;
		}
		sb_init(&s, v, sizeof v);
		keys_value_desc(w, &s, val);
		sb_finish(&s);
		walk_refuse(
		    w, "no range of map %s holds the key value %s of row %zu of the INSERT into %s",
		    w->smap->cfg->name, v, row, t->name);
		return -1;
	case KV_NULL:
		walk_refuse(
		    w,
		    "the key column %s of sharded table %s cannot be NULL (row %zu of the INSERT)",
		    t->key, t->name, row);
		return -1;
	case KV_UNKNOWN:
		*unknown = true;
		return -1;
	case KV_INVALID:
		sb_init(&s, v, sizeof v);
		keys_value_desc(w, &s, val);
		sb_finish(&s);
		walk_refuse(
		    w, "the key value %s of row %zu of the INSERT into %s is not a valid %s key", v,
		    row, t->name, shard_key_type_name(w->smap->cfg->key));
		return -1;
	default:
		walk_refuse(
		    w,
		    "the value of key column %s must be a constant or a parameter (row %zu of "
		    "the INSERT into %s has %s): pgshard routes each row by its key",
		    t->key, row, t->name,
		    val != NULL && val->node_case == PG_QUERY__NODE__NODE_SET_TO_DEFAULT
		        ? "DEFAULT"
		        : "an expression");
		return -1;
	}
}

static void refuse_no_key_column(walk_t *w, const cfg_table_t *t, const char *stmt)
{
	walk_refuse(
	    w,
	    "%s into sharded table %s must give the key column %s: pgshard routes each row by "
	    "it (a default would be computed on whichever shard runs the %s)",
	    stmt, t->name, t->key, stmt);
}

static void refuse_no_column_list(walk_t *w, const cfg_table_t *t, const char *stmt)
{
	walk_refuse(
	    w,
	    "%s into sharded table %s needs an explicit column list: pgshard does not know the "
	    "table's column order, so it cannot find the key column %s (write %s %s (%s, ...))",
	    stmt, t->name, t->key, strcmp(stmt, "INSERT") == 0 ? "INSERT INTO" : "INSERT",
	    strcmp(stmt, "INSERT") == 0 ? t->name : "", t->key);
}

/* ON CONFLICT DO UPDATE SET key = ...: only EXCLUDED.key, the key itself, or the same shard. */
static void check_on_conflict(walk_t *w, const PgQuery__InsertStmt *ins, const block_t *b,
                              const part_t *rows)
{
	const PgQuery__OnConflictClause *oc = ins->on_conflict_clause;
	const cfg_table_t *t = b->rels[0].table;

	if (oc == NULL || oc->action != PG_QUERY__ON_CONFLICT_ACTION__ONCONFLICT_UPDATE)
		return;
	for (size_t i = 0; i < oc->n_target_list && !walk_stopped(w); i++) {
		const PgQuery__ResTarget *rt;
		const PgQuery__Node *v;

		if (oc->target_list[i]->node_case != PG_QUERY__NODE__NODE_RES_TARGET)
			continue;
		rt = oc->target_list[i]->res_target;
		if (!streq(rt->name, t->key))
			continue;
		v = rt->val;
		if (rt->n_indirection == 0 && v != NULL &&
		    v->node_case == PG_QUERY__NODE__NODE_COLUMN_REF &&
		    v->column_ref->n_fields == 2 &&
		    streq(tree_str_of(v->column_ref->fields[0]), "excluded") &&
		    streq(tree_str_of(v->column_ref->fields[1]), t->key))
			continue;
		if (rt->n_indirection == 0 && key_stays(w, b, 0, v, rows) != STAYS_NO)
			continue;
		walk_refuse(
		    w,
		    "ON CONFLICT DO UPDATE SET %s = ... could move the row to another shard; "
		    "set the key column only to EXCLUDED.%s",
		    t->key, t->key);
	}
}

static part_t an_insert(walk_t *w, const PgQuery__InsertStmt *ins, scope_t *sc, bool top)
{
	const PgQuery__SelectStmt *sel = NULL;
	const cfg_table_t *t;
	scope_t *nodes, *body;
	part_t p, writes;
	block_t b;
	bool indirect;
	int i, k;

	i = ins->relation ? tables_find(w->cfg, ins->relation->catalogname,
	                                ins->relation->schemaname, ins->relation->relname)
	                  : -1;
	if (i < 0 || !tables_is_sharded(tables_at(w, i)))
		return part_make(PART_NONE); /* unreachable: such writes are decided before */
	t = tables_at(w, i);
	if (ins->n_cols == 0) {
		refuse_no_column_list(w, t, "INSERT");
		/* the proxy can write the column list in, from the catalog (route_insert_columns)
		 */
		w->needs_columns =
		    top && ins->select_stmt != NULL &&
		    ins->select_stmt->node_case == PG_QUERY__NODE__NODE_SELECT_STMT &&
		    ins->select_stmt->select_stmt->n_values_lists > 0;
		return part_make(PART_ALL);
	}
	k = an_column_pos(ins->cols, ins->n_cols, t->key, &indirect);
	if (k < 0) {
		refuse_no_key_column(w, t, "INSERT");
		return part_make(PART_ALL);
	}
	if (indirect) {
		walk_refuse(
		    w, "INSERT into %s assigns to a part of the key column %s; give the whole key",
		    t->name, t->key);
		return part_make(PART_ALL);
	}
	if (ins->select_stmt != NULL &&
	    ins->select_stmt->node_case == PG_QUERY__NODE__NODE_SELECT_STMT)
		sel = ins->select_stmt->select_stmt;
	if (sel == NULL) {
		refuse_no_key_column(w, t, "INSERT");
		return part_make(PART_ALL);
	}

	body = tables_with_open(w, ins->with_clause, sc, &nodes);
	writes = with_writes(w, ins->with_clause, nodes);
	where_block_init(&b);
	where_block_add_rel(w, &b, t, ins->relation);

	if (sel->n_values_lists > 0 && sel->n_from_clause == 0 && sel->with_clause == NULL) {
		/* INSERT ... VALUES: each row by its own key */
		shard_set_t set;
		bool unknown_any = false;
		char d[DESC_MAX];
		sb_t s;

		shard_set_clear(&set);
		for (size_t r = 0; r < sel->n_values_lists && !walk_stopped(w); r++) {
			const PgQuery__Node *row = sel->values_lists[r];
			bool unknown;
			int shard;

			if (row == NULL || row->node_case != PG_QUERY__NODE__NODE_LIST ||
			    (size_t)k >= row->list->n_items) {
				walk_refuse(
				    w,
				    "row %zu of the INSERT into %s has no value for the key "
				    "column %s",
				    r + 1, t->name, t->key);
				break;
			}
			shard = row_shard(w, t, row->list->items[k], r + 1, &unknown);
			if (shard >= 0)
				shard_set_add(&set, shard);
			unknown_any |= unknown;
		}
		sb_init(&s, d, sizeof d);
		if (walk_stopped(w)) {
			/* refused: no reason to write */
		} else if (sel->n_values_lists == 1) {
			sb_printf(&s, "%s.%s = ", t->name, t->key);
			keys_value_desc(w, &s,
			                sel->values_lists[0]->list->n_items > (size_t)k
			                    ? sel->values_lists[0]->list->items[k]
			                    : NULL);
		} else {
			sb_printf(&s, "%zu rows by %s.%s", sel->n_values_lists, t->name, t->key);
		}
		sb_finish(&s);
		p = unknown_any ? part_make(PART_ALL) : where_set_part(w, &set, d);
		if (p.kind == PART_SET && shard_set_count(&p.set) > 1) {
			if (!top || ins->with_clause != NULL)
				walk_refuse(
				    w,
				    "the rows of this INSERT into %s go to several shards, "
				    "which pgshard can only split for a plain INSERT ... VALUES "
				    "(without WITH, not inside another statement); send one "
				    "INSERT per shard",
				    t->name);
			else if (sel->limit_count != NULL || sel->limit_offset != NULL)
				/* each shard would apply the LIMIT to its own rows only */
				walk_refuse(
				    w,
				    "the rows of this INSERT into %s go to several shards, but "
				    "LIMIT/OFFSET picks among all of them; send only the rows "
				    "to insert",
				    t->name);
			else
				w->ins_split = true;
		}
		if (top)
			w->key_column = k;
	} else {
		/* INSERT ... SELECT: rows are inserted on the shard they are read on */
		keysrc_t ks = {.pos = k, .kind = KS_BAD, .shard = -1};

		p = an_select(w, sel, body, &ks, NULL);
		if (!walk_stopped(w) && ks.kind == KS_VALUE) {
			shard_set_t one;

			shard_set_clear(&one);
			shard_set_add(&one, ks.shard);
			if (p.kind == PART_NONE)
				p = where_set_part(w, &one, "INSERT ... SELECT of a constant key");
			else if (p.kind != PART_SET || shard_set_count(&p.set) != 1 ||
			         !shard_set_has(&p.set, ks.shard))
				ks.kind = KS_BAD;
		}
		if (ks.kind == KS_UNKNOWN)
			p = part_make(PART_ALL); /* decided again when the parameter is given */
		if (!walk_stopped(w) && ks.kind == KS_BAD && top)
			w->ins_select = true; /* each row to its key's shard (route_insel.c) */
		else if (!walk_stopped(w) && ks.kind == KS_BAD)
			walk_refuse(
			    w,
			    "INSERT ... SELECT into sharded table %s must select its key column "
			    "%s from the key of a table on the same map (or a constant on the "
			    "shards the SELECT reads): otherwise rows would be inserted on the "
			    "wrong shard",
			    t->name, t->key);
	}
	if (!walk_stopped(w))
		check_on_conflict(w, ins, &b, &p);
	if (!walk_stopped(w) && b.n_rels > 0 && b.rels[0].rv == ins->relation)
		ddl_check_conflict_target(w, ins, b.rels[0].table);
	where_block_free(&b);
	free(nodes);
	return part_or(p, writes);
}

static part_t an_merge(walk_t *w, const PgQuery__MergeStmt *m, scope_t *sc)
{
	scope_t *nodes, *body;
	part_t p, writes;
	block_t b;
	bool inserts = false;
	int i;

	body = tables_with_open(w, m->with_clause, sc, &nodes);
	writes = with_writes(w, m->with_clause, nodes);
	where_block_init(&b);
	i = m->relation ? tables_find(w->cfg, m->relation->catalogname, m->relation->schemaname,
	                              m->relation->relname)
	                : -1;
	if (i >= 0 && tables_is_sharded(tables_at(w, i)))
		where_block_add_rel(w, &b, tables_at(w, i), m->relation);
	an_from_item(w, m->source_relation, body, &b, false);
	for (size_t k = 0; k < m->n_merge_when_clauses; k++) {
		const PgQuery__Node *c = m->merge_when_clauses[k];

		if (c->node_case == PG_QUERY__NODE__NODE_MERGE_WHEN_CLAUSE &&
		    !c->merge_when_clause->matched &&
		    c->merge_when_clause->command_type == PG_QUERY__CMD_TYPE__CMD_INSERT)
			inserts = true;
	}
	/*
	 * WHEN NOT MATCHED acts on the source rows the ON condition rejects, so
	 * the ON condition narrows nothing then.
	 */
	if (m->join_condition != NULL)
		where_nodes_push(w, &b.joins, m->join_condition);
	p = an_block(w, &b, inserts ? NULL : m->join_condition, body);
	for (size_t k = 0; k < m->n_merge_when_clauses && !walk_stopped(w) && b.n_rels > 0 &&
	                   b.rels[0].rv == m->relation;
	     k++) {
		const PgQuery__MergeWhenClause *c;
		const cfg_table_t *t = b.rels[0].table;
		bool indirect;
		int pos, r;

		if (m->merge_when_clauses[k]->node_case != PG_QUERY__NODE__NODE_MERGE_WHEN_CLAUSE)
			continue;
		c = m->merge_when_clauses[k]->merge_when_clause;
		if (c->matched && c->command_type == PG_QUERY__CMD_TYPE__CMD_UPDATE) {
			check_key_sets(w, &b, 0, c->target_list, c->n_target_list, &p,
			               "MERGE ... UPDATE", false);
			continue;
		}
		if (c->matched || c->command_type != PG_QUERY__CMD_TYPE__CMD_INSERT)
			continue;
		if (c->n_target_list == 0) {
			refuse_no_column_list(w, t, "MERGE ... INSERT");
			break;
		}
		pos = an_column_pos(c->target_list, c->n_target_list, t->key, &indirect);
		if (pos < 0 || indirect || (size_t)pos >= c->n_values) {
			refuse_no_key_column(w, t, "MERGE ... INSERT");
			break;
		}
		r = where_key_rel(&b, c->values[pos]);
		if (r > 0)
			continue; /* the source's own co-located key */
		if (r < 0 && key_stays(w, &b, 0, c->values[pos], &p) != STAYS_NO)
			continue;
		walk_refuse(
		    w,
		    "MERGE ... INSERT into sharded table %s must take the key column %s from "
		    "the key of a source table on the same map (or a constant when the MERGE "
		    "runs on that key's shard only)",
		    t->name, t->key);
	}
	where_block_free(&b);
	free(nodes);
	return part_or(p, writes);
}

/* ko, when not NULL: the key columns of the query's rows, as a derived table (see keyout_t). */
part_t an_query(walk_t *w, const PgQuery__Node *n, scope_t *sc, bool top, keyout_t *ko)
{
	const PgQuery__RangeVar *rel;
	PgQuery__Node *const *ret;
	size_t n_ret;
	part_t p;

	if (n == NULL || walk_stopped(w))
		return part_make(PART_NONE);
	switch (n->node_case) {
	case PG_QUERY__NODE__NODE_SELECT_STMT:
		return an_select(w, n->select_stmt, sc, NULL, ko);
	case PG_QUERY__NODE__NODE_INSERT_STMT:
		p = an_insert(w, n->insert_stmt, sc, top);
		rel = n->insert_stmt->relation;
		ret = n->insert_stmt->returning_list;
		n_ret = n->insert_stmt->n_returning_list;
		break;
	case PG_QUERY__NODE__NODE_UPDATE_STMT:
		p = an_update(w, n->update_stmt, sc, top);
		rel = n->update_stmt->relation;
		ret = n->update_stmt->returning_list;
		n_ret = n->update_stmt->n_returning_list;
		break;
	case PG_QUERY__NODE__NODE_DELETE_STMT:
		p = an_delete(w, n->delete_stmt, sc);
		rel = n->delete_stmt->relation;
		ret = n->delete_stmt->returning_list;
		n_ret = n->delete_stmt->n_returning_list;
		break;
	case PG_QUERY__NODE__NODE_MERGE_STMT:
		return an_merge(w, n->merge_stmt, sc);
	default:
		return part_make(PART_NONE);
	}
	if (ko != NULL)
		returning_keyout(w, rel, ret, n_ret, ko);
	return p;
}

/* Aggregate and window calls of one query level (a subquery is a level of its own). */
void an_scan_aggs(walk_t *w, const ProtobufCMessage *m, void *arg)
{
	aggscan_t *a = arg;

	if (m->descriptor == &pg_query__sub_link__descriptor)
		return;
	if (m->descriptor == &pg_query__func_call__descriptor) {
		const PgQuery__FuncCall *f = (const PgQuery__FuncCall *)m;
		const char *name = tree_catalog_func_name(f);

		if (f->over != NULL)
			a->window = true;
		else if (a->agg == NULL && (f->agg_star || f->agg_distinct || f->n_agg_order > 0 ||
		                            f->agg_filter != NULL || f->agg_within_group ||
		                            (name != NULL && tree_is_aggregate_name(name))))
			a->agg = name != NULL ? name : "an aggregate";
	}
	tables_each_child(w, m, NULL, NULL, an_scan_aggs, arg);
}

/*
 * What in a level of one SELECT combines rows of several shards, or NULL.
 * as_set: the rows are only tested for membership (IN), so DISTINCT does
 * not matter.
 */
const char *an_level_combines(walk_t *w, const PgQuery__SelectStmt *s, const block_t *b,
                              bool as_set, char *buf, size_t len)
{
	aggscan_t a = {NULL, false};
	bool by_key = false;

	for (size_t i = 0; i < s->n_target_list; i++)
		an_scan_aggs(w, &s->target_list[i]->base, &a);
	for (size_t i = 0; i < s->n_sort_clause; i++)
		an_scan_aggs(w, &s->sort_clause[i]->base, &a);
	if (s->having_clause != NULL)
		an_scan_aggs(w, &s->having_clause->base, &a);
	if (a.window || s->n_window_clause > 0)
		return "window functions";
	if (s->limit_count != NULL || s->limit_offset != NULL)
		return "LIMIT/OFFSET";
	/* a plain GROUP BY item is in every grouping set: each group is on one shard */
	for (size_t i = 0; i < s->n_group_clause && !by_key; i++)
		by_key = where_key_rel(b, s->group_clause[i]) >= 0;
	if (!by_key && s->n_group_clause > 0)
		return "GROUP BY on other columns than the shard key";
	if (!by_key && s->having_clause != NULL)
		return "HAVING";
	if (!by_key && a.agg != NULL) {
		snprintf(buf, len, "aggregate function %.40s()", a.agg);
		return buf;
	}
	if (!as_set && s->n_distinct_clause > 0)
		return "DISTINCT";
	return NULL;
}
