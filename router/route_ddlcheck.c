/*
 * route_ddlcheck.c — constraints that cannot hold across shards, refused
 * when they are made (DESIGN.md: never accepted and silently broken).
 *
 * Each shard enforces a constraint on its own rows only. So on a sharded
 * table:
 *
 *   - a PRIMARY KEY, UNIQUE constraint or unique index holds across shards
 *     only when it includes the shard key (rows that could collide then
 *     live on one shard); an EXCLUDE constraint likewise needs the key
 *     compared with =;
 *   - a FOREIGN KEY holds when it points to a reference table (a copy on
 *     every shard), or to a table of the same map through its key (the
 *     referenced row lives on the referencing row's shard);
 *   - ON CONFLICT (columns) infers a unique index on those columns: without
 *     the key there is none that holds across shards.
 *
 * A reference table or a table outside the config must not point at a
 * sharded table (its rows are on one shard each, the references on
 * others). Everything else is PostgreSQL's to check.
 */
#include "router/route.h"

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>
#include <stdio.h>
#include <string.h>

#include "router/route_int.h"
#include "router/tree.h"

/* The config table a RangeVar names, or NULL. */
static const cfg_table_t *table_of(walk_t *w, const PgQuery__RangeVar *rv)
{
	int i = rv != NULL ? tables_find(w->cfg, rv->catalogname, rv->schemaname, rv->relname) : -1;

	return i >= 0 ? &w->cfg->tables[i] : NULL;
}

/* The position of name in a list of String nodes, or -1. */
static int name_at(PgQuery__Node *const *names, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (streq(tree_str_of(names[i]), name))
			return (int)i;
	return -1;
}

static const char *kind_name(PgQuery__ConstrType t)
{
	return t == PG_QUERY__CONSTR_TYPE__CONSTR_PRIMARY ? "PRIMARY KEY" : "UNIQUE constraint";
}

static void check_unique(walk_t *w, const cfg_table_t *t, PgQuery__ConstrType type,
                         PgQuery__Node *const *keys, size_t n_keys, const char *column)
{
	const char *other = column;

	if (column != NULL ? streq(column, t->key) : name_at(keys, n_keys, t->key) >= 0)
		return;
	if (other == NULL && n_keys > 0)
		other = tree_str_of(keys[0]);
	walk_refuse(w,
	            "a %s on sharded table %s that does not include its shard key %s cannot be "
	            "enforced across shards (each shard checks only its own rows); include %s "
	            "in it, e.g. %s (%s, %s)",
	            kind_name(type), t->name, t->key, t->key,
	            type == PG_QUERY__CONSTR_TYPE__CONSTR_PRIMARY ? "PRIMARY KEY" : "UNIQUE",
	            t->key, other != NULL ? other : "...");
}

static void check_exclusion(walk_t *w, const cfg_table_t *t, const PgQuery__Constraint *c)
{
	for (size_t i = 0; i < c->n_exclusions; i++) {
		const PgQuery__Node *pair = c->exclusions[i];
		const PgQuery__IndexElem *e;
		const PgQuery__List *ops;

		if (pair == NULL || pair->node_case != NODE(LIST) || pair->list->n_items != 2 ||
		    pair->list->items[0]->node_case != NODE(INDEX_ELEM) ||
		    pair->list->items[1]->node_case != NODE(LIST))
			continue;
		e = pair->list->items[0]->index_elem;
		ops = pair->list->items[1]->list;
		if (streq(e->name, t->key) &&
		    streq(tree_last_string(ops->items, ops->n_items), "="))
			return;
	}
	walk_refuse(w,
	            "an EXCLUDE constraint on sharded table %s that does not compare its shard key "
	            "%s with = cannot be enforced across shards; add (%s WITH =) to it",
	            t->name, t->key, t->key);
}

/*
 * A foreign key of table `from` (NULL: not in the config; fk_attrs its
 * columns, or `column` for a column constraint) to the table pk names.
 */
static void check_foreign(walk_t *w, const char *from_name, const cfg_table_t *from,
                          const PgQuery__Constraint *c, const char *column)
{
	const cfg_table_t *to = table_of(w, c->pktable);
	const char *to_name = c->pktable != NULL ? c->pktable->relname : "?";
	int k;

	if (from == NULL || from->reference) {
		if (to != NULL && tables_is_sharded(to))
			walk_refuse(w,
			            "a FOREIGN KEY from %s%s to sharded table %s cannot hold: %s's "
			            "rows are spread over the shards, while %s is %s; drop the "
			            "foreign key, or shard %s with %s's map",
			            from != NULL ? "reference table " : "", from_name, to->name,
			            to->name, from_name,
			            from != NULL ? "copied to every shard"
			                         : "on the default shard only",
			            from_name, to->name);
		return;
	}
	if (!tables_is_sharded(from))
		return;
	if (to != NULL && to->reference)
		return;
	if (to == NULL) {
		walk_refuse(
		    w,
		    "a FOREIGN KEY from sharded table %s to %s, which is not in the config (it "
		    "lives on the default shard only), cannot hold on the other shards; make "
		    "%s a reference table ([table.%s] reference = yes) or shard it with %s's "
		    "map",
		    from->name, to_name, to_name, to_name, from->name);
		return;
	}
	k = column != NULL ? (streq(column, from->key) ? 0 : -1)
	                   : name_at(c->fk_attrs, c->n_fk_attrs, from->key);
	if (to->map == from->map && k >= 0 && (size_t)k < c->n_pk_attrs &&
	    streq(tree_str_of(c->pk_attrs[k]), to->key))
		return;
	/* REFERENCES t without columns: its primary key; a key column of the same name in the
	 * foreign key (FOREIGN KEY (tenant_id, user_id) REFERENCES users) pairs the keys */
	if (to->map == from->map && c->n_pk_attrs == 0 && k >= 0 && streq(from->key, to->key))
		return;
	if (to->map == from->map && c->n_pk_attrs == 0)
		walk_refuse(
		    w,
		    "a FOREIGN KEY from sharded table %s to %s must name the referenced "
		    "columns, so that pgshard can check it pairs %s with %s's shard key %s: "
		    "REFERENCES %s (%s, ...)",
		    from->name, to->name, from->key, to->name, to->key, to->name, to->key);
	else
		walk_refuse(
		    w,
		    "a FOREIGN KEY from sharded table %s to sharded table %s holds across "
		    "shards only when it pairs %s's shard key %s with %s's shard key %s (and "
		    "both tables are on one map): the referenced row must live on the "
		    "referencing row's shard; add them to the key, e.g. FOREIGN KEY (%s, ...) "
		    "REFERENCES %s (%s, ...), or make %s a reference table",
		    from->name, to->name, from->name, from->key, to->name, to->key, from->key,
		    to->name, to->key, to->name);
}

/* One constraint of table `name` (t: its config entry or NULL); column: a column constraint's. */
static void check_constraint(walk_t *w, const char *name, const cfg_table_t *t,
                             const PgQuery__Constraint *c, const char *column)
{
	bool sharded = t != NULL && tables_is_sharded(t);

	switch (c->contype) {
	case PG_QUERY__CONSTR_TYPE__CONSTR_PRIMARY:
	case PG_QUERY__CONSTR_TYPE__CONSTR_UNIQUE:
		/* USING INDEX: the index was checked when it was made */
		if (sharded && (c->indexname == NULL || c->indexname[0] == '\0'))
			check_unique(w, t, c->contype, c->keys, c->n_keys, column);
		break;
	case PG_QUERY__CONSTR_TYPE__CONSTR_EXCLUSION:
		if (sharded)
			check_exclusion(w, t, c);
		break;
	case PG_QUERY__CONSTR_TYPE__CONSTR_FOREIGN:
		check_foreign(w, name, t, c, column);
		break;
	default:
		break;
	}
}

static void check_column(walk_t *w, const char *name, const cfg_table_t *t,
                         const PgQuery__ColumnDef *col)
{
	for (size_t i = 0; i < col->n_constraints && !walk_stopped(w); i++)
		if (col->constraints[i]->node_case == NODE(CONSTRAINT))
			check_constraint(w, name, t, col->constraints[i]->constraint, col->colname);
}

static void check_element(walk_t *w, const char *name, const cfg_table_t *t, const PgQuery__Node *e)
{
	if (e == NULL)
		return;
	if (e->node_case == NODE(COLUMN_DEF))
		check_column(w, name, t, e->column_def);
	else if (e->node_case == NODE(CONSTRAINT))
		check_constraint(w, name, t, e->constraint, NULL);
}

static void check_index(walk_t *w, const PgQuery__IndexStmt *ix)
{
	const cfg_table_t *t = table_of(w, ix->relation);

	if (!ix->unique || t == NULL || !tables_is_sharded(t))
		return;
	for (size_t i = 0; i < ix->n_index_params; i++) {
		const PgQuery__Node *p = ix->index_params[i];

		if (p->node_case == NODE(INDEX_ELEM) && streq(p->index_elem->name, t->key))
			return;
	}
	walk_refuse(w,
	            "a UNIQUE index on sharded table %s that does not include its shard key %s "
	            "cannot be enforced across shards (each shard checks only its own rows); "
	            "include %s in it",
	            t->name, t->key, t->key);
}

void ddl_check_constraints(walk_t *w, const PgQuery__Node *n)
{
	const PgQuery__RangeVar *rv;
	const cfg_table_t *t;

	switch (n->node_case) {
	case PG_QUERY__NODE__NODE_CREATE_STMT:
		rv = n->create_stmt->relation;
		if (rv == NULL)
			return;
		t = table_of(w, rv);
		for (size_t i = 0; i < n->create_stmt->n_table_elts && !walk_stopped(w); i++)
			check_element(w, rv->relname, t, n->create_stmt->table_elts[i]);
		return;
	case PG_QUERY__NODE__NODE_ALTER_TABLE_STMT:
		rv = n->alter_table_stmt->relation;
		if (rv == NULL)
			return;
		t = table_of(w, rv);
		for (size_t i = 0; i < n->alter_table_stmt->n_cmds && !walk_stopped(w); i++) {
			const PgQuery__Node *cmd = n->alter_table_stmt->cmds[i];

			if (cmd->node_case != NODE(ALTER_TABLE_CMD))
				continue;
			if (cmd->alter_table_cmd->subtype ==
			        PG_QUERY__ALTER_TABLE_TYPE__AT_AddConstraint ||
			    cmd->alter_table_cmd->subtype ==
			        PG_QUERY__ALTER_TABLE_TYPE__AT_AddColumn)
				check_element(w, rv->relname, t, cmd->alter_table_cmd->def);
		}
		return;
	case PG_QUERY__NODE__NODE_INDEX_STMT:
		check_index(w, n->index_stmt);
		return;
	default:
		return;
	}
}

void ddl_check_conflict_target(walk_t *w, const PgQuery__InsertStmt *ins, const cfg_table_t *t)
{
	const PgQuery__InferClause *inf =
	    ins->on_conflict_clause != NULL ? ins->on_conflict_clause->infer : NULL;

	if (inf == NULL || inf->n_index_elems == 0 || t == NULL || !tables_is_sharded(t))
		return;
	for (size_t i = 0; i < inf->n_index_elems; i++) {
		const PgQuery__Node *e = inf->index_elems[i];

		if (e->node_case == NODE(INDEX_ELEM) && streq(e->index_elem->name, t->key))
			return;
	}
	walk_refuse(w,
	            "ON CONFLICT on columns of sharded table %s without its shard key %s: no "
	            "unique index on them holds across shards, so a conflicting row on another "
	            "shard would not be found; add %s to the ON CONFLICT columns (and to the "
	            "unique index)",
	            t->name, t->key, t->key);
}
