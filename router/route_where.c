/*
 * route_where.c — query blocks and predicates: the tables of one FROM (and
 * the derived tables that stand for tables), which of them are joined on
 * their keys, and the part (set of shards) a WHERE predicate on a key
 * narrows the block to.
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

/* ---- query blocks: the tables of one FROM and the predicates on them ---- */

void where_nodes_push(walk_t *w, nodes_t *l, const PgQuery__Node *n)
{
	if (l->n == l->cap) {
		int cap = l->cap ? l->cap * 2 : 4;
		const PgQuery__Node **v = realloc(l->v, sizeof *v * (size_t)cap);

		if (v == NULL) {
			w->nomem = true;
			return;
		}
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = n;
}

void where_block_init(block_t *b)
{
	memset(b, 0, sizeof *b);
	b->items = part_make(PART_NONE);
}

void where_block_free(block_t *b)
{
	free(b->rels);
	free(b->quals.v);
	free(b->joins.v);
}

void where_block_add_rel(walk_t *w, block_t *b, const cfg_table_t *t, const PgQuery__RangeVar *rv)
{
	if (b->n_rels == b->cap_rels) {
		int cap = b->cap_rels ? b->cap_rels * 2 : 4;
		rel_t *r = realloc(b->rels, sizeof *r * (size_t)cap);

		if (r == NULL) {
			w->nomem = true;
			return;
		}
		b->rels = r;
		b->cap_rels = cap;
	}
	memset(&b->rels[b->n_rels], 0, sizeof b->rels[b->n_rels]);
	b->rels[b->n_rels].table = t;
	b->rels[b->n_rels].rv = rv;
	b->rels[b->n_rels].group = b->n_rels;
	b->n_rels++;
}

void where_block_add_derived(walk_t *w, block_t *b, const char *name, const char *what,
                             const keyout_t *ko, const part_t *own)
{
	const cfg_table_t *t = ko->table != NULL ? ko->table : tables_at(w, w->map_table);
	int i = b->n_rels;

	where_block_add_rel(w, b, t, NULL);
	if (b->n_rels == i)
		return; /* out of memory */
	b->rels[i].name = name != NULL ? name : "(unnamed)";
	b->rels[i].what = what;
	b->rels[i].keys = *ko;
	b->rels[i].own = *own;
}

/* The names of a rel's key columns: a table's one, a derived table's any number. */
int where_rel_n_keys(const rel_t *r)
{
	return r->rv != NULL ? 1 : r->keys.n;
}

const char *where_rel_key(const rel_t *r, int k)
{
	return r->rv != NULL ? r->table->key : r->keys.names[k];
}

bool where_rel_has_key(const rel_t *r, const char *col)
{
	for (int k = 0; k < where_rel_n_keys(r); k++)
		if (streq(where_rel_key(r, k), col))
			return true;
	return false;
}

void where_rel_join(block_t *b, int x, int y)
{
	int gx = b->rels[x].group, gy = b->rels[y].group;

	for (int i = 0; i < b->n_rels && gx != gy; i++)
		if (b->rels[i].group == gy)
			b->rels[i].group = gx;
}

const char *where_alias_of(const PgQuery__RangeVar *rv)
{
	if (rv->alias != NULL && !empty(rv->alias->aliasname))
		return rv->alias->aliasname;
	return NULL;
}

/*
 * Which sharded table (or derived table) of the block a column reference
 * names as its key column (its index in b->rels), or -1. An alias hides the table's own
 * name, as in PostgreSQL. An unqualified name is the key of the table
 * whose key it is: had another table of the block a column of that name,
 * PostgreSQL would reject the reference as ambiguous.
 */
int where_key_rel(const block_t *b, const PgQuery__Node *n)
{
	const PgQuery__ColumnRef *c;
	const char *col, *qual, *schema;
	size_t nf;

	if (n == NULL || n->node_case != PG_QUERY__NODE__NODE_COLUMN_REF)
		return -1;
	c = n->column_ref;
	nf = c->n_fields;
	if (nf < 1 || nf > 4)
		return -1;
	for (size_t i = 0; i < nf; i++)
		if (tree_str_of(c->fields[i]) == NULL)
			return -1;
	col = tree_str_of(c->fields[nf - 1]);
	qual = nf >= 2 ? tree_str_of(c->fields[nf - 2]) : NULL;
	schema = nf >= 3 ? tree_str_of(c->fields[nf - 3]) : NULL;
	for (int i = 0; i < b->n_rels; i++) {
		const rel_t *r = &b->rels[i];
		const char *alias;

		if (!where_rel_has_key(r, col))
			continue;
		if (nf == 1)
			return i;
		if (r->rv == NULL) {
			if (nf == 2 && streq(r->name, qual))
				return i;
			continue;
		}
		alias = where_alias_of(r->rv);
		if (alias != NULL) {
			if (nf == 2 && streq(alias, qual))
				return i;
			continue;
		}
		if (!streq(r->rv->relname, qual))
			continue;
		if (nf == 2 || empty(r->rv->schemaname) || streq(r->rv->schemaname, schema))
			return i;
	}
	return -1;
}

static void key_desc(sb_t *s, const rel_t *r)
{
	sb_printf(s, "%s.%s", r->table->name, r->table->key);
}

/* ---- predicates ---- */

part_t where_set_part(walk_t *w, const shard_set_t *set, const char *desc)
{
	part_t p = part_make(PART_SET);

	p.set = *set;
	shard_set_union(&w->mentioned, set);
	snprintf(p.desc, sizeof p.desc, "%s", desc);
	return p;
}

static part_t eq_part(walk_t *w, const rel_t *r, const PgQuery__Node *val)
{
	char d[DESC_MAX];
	shard_set_t set;
	keyval_t kv;
	sb_t s;

	if (keys_value(w, val, 0, &kv) != KV_OK)
		return part_make(PART_ALL);
	shard_set_clear(&set);
	keys_add_shard(w, &set, &kv.key);
	sb_init(&s, d, sizeof d);
	key_desc(&s, r);
	sb_printf(&s, " = ");
	keys_value_desc(w, &s, val);
	sb_finish(&s);
	return where_set_part(w, &set, d);
}

/* key < v, key <= v, key > v, key >= v: range maps only; a hash says nothing. */
static part_t range_part(walk_t *w, const rel_t *r, const char *op, const PgQuery__Node *val)
{
	char d[DESC_MAX];
	shard_set_t set;
	keyval_t kv;
	sb_t s;

	if (w->smap->cfg->kind != CFG_MAP_RANGE || keys_value(w, val, 0, &kv) != KV_OK)
		return part_make(PART_ALL);
	w->gen_bad = true; /* a range of keys: another value may span other shards */
	shard_set_clear(&set);
	if (op[0] == '<')
		shard_map_lookup_range(w->smap, NULL, false, &kv.key, op[1] == '=', &set);
	else
		shard_map_lookup_range(w->smap, &kv.key, op[1] == '=', NULL, false, &set);
	sb_init(&s, d, sizeof d);
	key_desc(&s, r);
	sb_printf(&s, " %s ", op);
	keys_value_desc(w, &s, val);
	sb_finish(&s);
	return where_set_part(w, &set, d);
}

static part_t between_part(walk_t *w, const rel_t *r, const PgQuery__Node *list, bool symmetric)
{
	const PgQuery__Node *lo, *hi;
	char d[DESC_MAX];
	shard_set_t set;
	keyval_t klo, khi;
	sb_t s;

	if (w->smap->cfg->kind != CFG_MAP_RANGE || list == NULL ||
	    list->node_case != PG_QUERY__NODE__NODE_LIST || list->list->n_items != 2)
		return part_make(PART_ALL);
	lo = list->list->items[0];
	hi = list->list->items[1];
	if (keys_value(w, lo, 0, &klo) != KV_OK || keys_value(w, hi, 0, &khi) != KV_OK)
		return part_make(PART_ALL);
	w->gen_bad = true;
	shard_set_clear(&set);
	if (symmetric && shard_key_compare(&klo.key, &khi.key) > 0)
		shard_map_lookup_range(w->smap, &khi.key, true, &klo.key, true, &set);
	else
		shard_map_lookup_range(w->smap, &klo.key, true, &khi.key, true, &set);
	sb_init(&s, d, sizeof d);
	key_desc(&s, r);
	sb_printf(&s, " BETWEEN%s ", symmetric ? " SYMMETRIC" : "");
	keys_value_desc(w, &s, lo);
	sb_printf(&s, " AND ");
	keys_value_desc(w, &s, hi);
	sb_finish(&s);
	return where_set_part(w, &set, d);
}

static part_t in_part(walk_t *w, const rel_t *r, const PgQuery__Node *list)
{
	char d[DESC_MAX];
	shard_set_t set;
	sb_t s;

	if (list == NULL || list->node_case != PG_QUERY__NODE__NODE_LIST)
		return part_make(PART_ALL);
	shard_set_clear(&set);
	sb_init(&s, d, sizeof d);
	key_desc(&s, r);
	sb_printf(&s, " IN (");
	for (size_t i = 0; i < list->list->n_items; i++) {
		keyval_t kv;
		int st = keys_value(w, list->list->items[i], 0, &kv);

		if (st == KV_NULL)
			continue; /* x IN (NULL) is never true */
		if (st != KV_OK)
			return part_make(PART_ALL);
		keys_add_shard(w, &set, &kv.key);
		if (i > 0)
			sb_printf(&s, ", ");
		keys_value_desc(w, &s, list->list->items[i]);
	}
	sb_printf(&s, ")");
	sb_finish(&s);
	return where_set_part(w, &set, d);
}

static part_t any_part(walk_t *w, const rel_t *r, const PgQuery__Node *arr)
{
	char d[DESC_MAX];
	shard_set_t set;
	sb_t s;

	shard_set_clear(&set);
	if (!keys_array_shards(w, arr, 0, &set))
		return part_make(PART_ALL);
	sb_init(&s, d, sizeof d);
	key_desc(&s, r);
	sb_printf(&s, " = ANY(");
	keys_value_desc(w, &s, arr);
	sb_printf(&s, ")");
	sb_finish(&s);
	return where_set_part(w, &set, d);
}

/* The operator of an A_Expr: "=", "<", ... (pg_catalog's or unqualified only). */
const char *where_op_name(const PgQuery__AExpr *e)
{
	if (e->n_name == 1)
		return tree_str_of(e->name[0]);
	if (e->n_name == 2 && streq(tree_str_of(e->name[0]), "pg_catalog"))
		return tree_str_of(e->name[1]);
	return NULL;
}

static const char *op_mirror(const char *op)
{
	if (strcmp(op, "<") == 0)
		return ">";
	if (strcmp(op, "<=") == 0)
		return ">=";
	if (strcmp(op, ">") == 0)
		return "<";
	if (strcmp(op, ">=") == 0)
		return "<=";
	return op;
}

static part_t aexpr_part(walk_t *w, const block_t *b, const PgQuery__AExpr *e)
{
	const char *op = where_op_name(e);
	int r;

	if (op == NULL)
		return part_make(PART_ALL);
	switch (e->kind) {
	case PG_QUERY__A__EXPR__KIND__AEXPR_OP: {
		const PgQuery__Node *val = e->rexpr;
		bool flip = false;

		if (strcmp(op, "=") != 0 && strcmp(op, "<") != 0 && strcmp(op, "<=") != 0 &&
		    strcmp(op, ">") != 0 && strcmp(op, ">=") != 0)
			return part_make(PART_ALL);
		r = where_key_rel(b, e->lexpr);
		if (r < 0) {
			r = where_key_rel(b, e->rexpr);
			val = e->lexpr;
			flip = true;
		}
		if (r < 0)
			return part_make(PART_ALL);
		if (strcmp(op, "=") == 0)
			return eq_part(w, &b->rels[r], val);
		return range_part(w, &b->rels[r], flip ? op_mirror(op) : op, val);
	}
	case PG_QUERY__A__EXPR__KIND__AEXPR_OP_ANY:
		r = where_key_rel(b, e->lexpr);
		if (r < 0 || strcmp(op, "=") != 0)
			return part_make(PART_ALL);
		return any_part(w, &b->rels[r], e->rexpr);
	case PG_QUERY__A__EXPR__KIND__AEXPR_IN:
		r = where_key_rel(b, e->lexpr);
		if (r < 0 || strcmp(op, "=") != 0) /* NOT IN is "<>" */
			return part_make(PART_ALL);
		return in_part(w, &b->rels[r], e->rexpr);
	case PG_QUERY__A__EXPR__KIND__AEXPR_BETWEEN:
	case PG_QUERY__A__EXPR__KIND__AEXPR_BETWEEN_SYM:
		r = where_key_rel(b, e->lexpr);
		if (r < 0)
			return part_make(PART_ALL);
		return between_part(w, &b->rels[r], e->rexpr,
		                    e->kind == PG_QUERY__A__EXPR__KIND__AEXPR_BETWEEN_SYM);
	default:
		return part_make(PART_ALL);
	}
}

/* What one boolean expression says about the block's keys. */
part_t where_pred_part(walk_t *w, const block_t *b, const PgQuery__Node *n)
{
	part_t p;

	if (n == NULL)
		return part_make(PART_ALL);
	switch (n->node_case) {
	case PG_QUERY__NODE__NODE_BOOL_EXPR: {
		const PgQuery__BoolExpr *e = n->bool_expr;

		if (e->n_args == 0 || e->boolop == PG_QUERY__BOOL_EXPR_TYPE__NOT_EXPR)
			return part_make(PART_ALL);
		p = where_pred_part(w, b, e->args[0]);
		for (size_t i = 1; i < e->n_args; i++) {
			part_t q = where_pred_part(w, b, e->args[i]);

			if (e->boolop == PG_QUERY__BOOL_EXPR_TYPE__AND_EXPR)
				p = part_and(p, q);
			else
				p = part_or(p, q);
		}
		return p;
	}
	case PG_QUERY__NODE__NODE_A_EXPR:
		return aexpr_part(w, b, n->a_expr);
	default:
		return part_make(PART_ALL);
	}
}

bool where_alias_is(const PgQuery__Alias *a, const char *q)
{
	return a != NULL && streq(a->aliasname, q);
}

/* Whether a FROM item is, or holds, a range named q (as a qualifier would name it). */
bool where_item_named(const PgQuery__Node *n, const char *q, int depth)
{
	if (n == NULL || depth > MAX_DEPTH)
		return false;
	switch (n->node_case) {
	case PG_QUERY__NODE__NODE_RANGE_VAR:
		return n->range_var->alias != NULL ? where_alias_is(n->range_var->alias, q)
		                                   : streq(n->range_var->relname, q);
	case PG_QUERY__NODE__NODE_JOIN_EXPR:
		return where_alias_is(n->join_expr->alias, q) ||
		       where_item_named(n->join_expr->larg, q, depth + 1) ||
		       where_item_named(n->join_expr->rarg, q, depth + 1);
	case PG_QUERY__NODE__NODE_RANGE_SUBSELECT:
		return where_alias_is(n->range_subselect->alias, q);
	case PG_QUERY__NODE__NODE_RANGE_FUNCTION:
		return where_alias_is(n->range_function->alias, q);
	case PG_QUERY__NODE__NODE_RANGE_TABLE_SAMPLE:
		return where_item_named(n->range_table_sample->relation, q, depth + 1);
	default:
		return true; /* unknown: it may hold the name, so the name is not known elsewhere */
	}
}
