/*
 * route_plan.c — plans: from what passes 1 and 2 found, the plan of each
 * kind of statement (reads and writes, DDL, COPY, CREATE ... AS, views,
 * EXPLAIN), one plan for several statements in one query string, and the
 * plans of transaction control.
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

/* ---- plans ---- */

void plan_all_shards(const cfg_t *cfg, shard_set_t *set)
{
	shard_set_clear(set);
	for (int i = 0; i < cfg->n_shards && i < SHARD_MAX; i++)
		shard_set_add(set, i);
}

void plan_reason(route_plan_t *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->reason, sizeof p->reason, fmt, ap);
	va_end(ap);
}

void plan_refused(walk_t *w, route_plan_t *p)
{
	route_plan_refuse(p, "0A000", "%s", w->error);
	p->map = NULL;
}

void plan_default(walk_t *w, route_plan_t *p, const char *why)
{
	p->kind = ROUTE_DEFAULT;
	shard_set_clear(&p->shards);
	shard_set_add(&p->shards, w->cfg->default_shard);
	plan_reason(p, "%s -> default shard %d", why, w->cfg->default_shard);
}

static void plan_all(walk_t *w, route_plan_t *p, const char *what, const char *table)
{
	p->kind = ROUTE_ALL;
	plan_all_shards(w->cfg, &p->shards);
	plan_reason(p, "%s %s -> all %d shard%s", what, table, w->cfg->n_shards,
	            w->cfg->n_shards == 1 ? "" : "s");
}

static const char *first_table(const walk_t *w, bool reference)
{
	for (int k = 0; k < w->n_order; k++)
		if (tables_at(w, w->order[k])->reference == reference)
			return tables_at(w, w->order[k])->name;
	return w->n_order > 0 ? tables_at(w, w->order[0])->name : "?";
}

static void refuse_clash(walk_t *w)
{
	const cfg_table_t *a = tables_at(w, w->map_table), *b = tables_at(w, w->clash);

	walk_refuse(
	    w,
	    "tables %s (map %s) and %s (map %s) are not co-located: one statement can only "
	    "combine sharded tables of one map (and reference tables); query them separately",
	    a->name, w->cfg->maps[a->map].name, b->name, w->cfg->maps[b->map].name);
}

/* Statements that name no sharded table. */
static void plan_unsharded(walk_t *w, route_plan_t *p)
{
	const char *ref_written = NULL;

	for (int k = 0; k < w->n_order; k++)
		if (w->seen[w->order[k]] & SEEN_WRITE)
			ref_written = tables_at(w, w->order[k])->name;
	if (w->n_order == 0) {
		plan_default(w, p, "no sharded table");
		return;
	}
	if (ref_written != NULL && w->other_write[0] != '\0') {
		walk_refuse(
		    w,
		    "the statement writes reference table %s (a copy on every shard) and table "
		    "%s (not in the config, so only on the default shard); write them in "
		    "separate statements",
		    ref_written, w->other_write);
		return;
	}
	if (ref_written != NULL) {
		plan_all(w, p, "reference table", ref_written);
		p->table = ref_written;
		plan_reason(p, "reference table %s, write -> all %d shards", ref_written,
		            w->cfg->n_shards);
		return;
	}
	if (w->other_write[0] != '\0') {
		plan_default(w, p, "writes a table not in the config");
		return;
	}
	p->kind = ROUTE_ANY;
	p->table = first_table(w, true);
	shard_set_clear(&p->shards);
	shard_set_add(&p->shards, w->cfg->default_shard);
	plan_reason(p, "reference table %s, read -> shard %d", first_table(w, true),
	            w->cfg->default_shard);
}

static void plan_shards(walk_t *w, part_t part, route_plan_t *p)
{
	const shard_map_t *m = w->smap;
	const cfg_table_t *t = tables_at(w, w->map_table);
	shard_set_t set;
	sb_t s;

	p->kind = ROUTE_SHARDS;
	p->map = m->cfg->name;
	p->table = t->name;
	sb_init(&s, p->reason, sizeof p->reason);
	if (part.kind != PART_SET) {
		int n = shard_set_count(&m->all);

		p->shards = m->all;
		sb_printf(&s, "%s on %s -> all %d shard%s of map %s",
		          w->params_missing ? "key parameter not given" : "no key predicate",
		          t->name, n, n == 1 ? "" : "s", m->cfg->name);
		sb_finish(&s);
		return;
	}
	set = part.set;
	if (shard_set_count(&set) == 0) {
		/* contradicting predicates or a key no range holds: PostgreSQL returns no row */
		set = w->mentioned;
		if (shard_set_count(&set) == 0)
			shard_set_add(&set, shard_set_first(&m->all));
	}
	p->shards = set;
	if (w->n_keys == 1 && shard_set_count(&set) == 1)
		memcpy(p->key_value, w->key_text, sizeof p->key_value);
	sb_printf(&s, "%s -> ", part.desc[0] ? part.desc : "key predicates");
	sb_shards(&s, &set);
	sb_printf(&s, " (%s map %s)", walk_map_kind_name(m->cfg), m->cfg->name);
	if (shard_set_count(&part.set) == 0)
		sb_printf(&s, ", no shard can hold matching rows");
	if (w->ins_split)
		sb_printf(&s, ", rows split per shard");
	sb_finish(&s);
}

/* ---- INSERT ... SELECT whose rows go to the shards of their keys ---- */

/*
 * When the SELECT gives the key column the key of a co-located table, or a
 * constant of the shards it reads, each row stays where it is read and the
 * statement runs on those shards as it is (route_analysis.c). Otherwise
 * (plan.insert_select, ROUTE_STEP_INSERT_SELECT; its statements are
 * route_insel.c's) the SELECT is planned as the read it is, by this same
 * planner: on one shard, on several whose rows are concatenated, or on the
 * default shard (a reference table, a table not in the config); the proxy
 * inserts each of its rows on the shard of its key. A SELECT whose rows the
 * proxy would have to merge across shards (ORDER BY, LIMIT, aggregates,
 * DISTINCT: a gather plan) is refused for now.
 */

typedef struct param_scan {
	const walk_t *w;
	bool found;
} param_scan_t;

/* A client's parameter ($n that is not one of the plan cache's literals) in m. */
static void scan_params(walk_t *w, const ProtobufCMessage *m, void *arg)
{
	param_scan_t *s = arg;

	if (m->descriptor == &pg_query__param_ref__descriptor) {
		int k = ((const PgQuery__ParamRef *)m)->number;
		const route_literals_t *l = s->w->lits;

		if (l == NULL || k < l->first || k >= l->first + l->n)
			s->found = true;
		return;
	}
	tables_each_child(w, m, NULL, NULL, scan_params, arg);
}

/* ON CONFLICT DO UPDATE may set the key only to the row's own (EXCLUDED.key, key). */
static bool conflict_keeps_key(const PgQuery__OnConflictClause *oc, const char *key)
{
	for (size_t i = 0; oc != NULL && i < oc->n_target_list; i++) {
		const PgQuery__ResTarget *rt;
		const PgQuery__ColumnRef *c;
		const char *last;

		if (oc->target_list[i]->node_case != PG_QUERY__NODE__NODE_RES_TARGET)
			continue;
		rt = oc->target_list[i]->res_target;
		if (!streq(rt->name, key))
			continue;
		if (rt->n_indirection > 0 || rt->val == NULL ||
		    rt->val->node_case != PG_QUERY__NODE__NODE_COLUMN_REF)
			return false;
		c = rt->val->column_ref;
		last = tree_last_string(c->fields, c->n_fields);
		if (!streq(last, key) || c->n_fields > 2 ||
		    (c->n_fields == 2 && !streq(tree_str_of(c->fields[0]), "excluded")))
			return false;
	}
	return true;
}

/* What keeps an INSERT ... SELECT from running as one (NULL: nothing). */
static const char *insel_unsupported(walk_t *w, const PgQuery__InsertStmt *ins, const char *key)
{
	param_scan_t ps = {w, false};

	if (ins->n_returning_list > 0)
		return "RETURNING is not supported there; select the inserted rows afterwards";
	for (size_t i = 0; ins->with_clause != NULL && i < ins->with_clause->n_ctes; i++) {
		const PgQuery__Node *c = ins->with_clause->ctes[i];

		if (c->node_case == PG_QUERY__NODE__NODE_COMMON_TABLE_EXPR &&
		    an_is_write_query(c->common_table_expr->ctequery))
			return "a WITH that writes is not supported there";
	}
	if (ins->with_clause != NULL && ins->select_stmt->select_stmt->with_clause != NULL)
		return "WITH both before the INSERT and in its SELECT is not supported there; "
		       "write one WITH";
	if (ins->on_conflict_clause != NULL)
		tables_each_child(w, &ins->on_conflict_clause->base, NULL, NULL, scan_params, &ps);
	if (ps.found)
		return "parameters ($n) outside its SELECT are not supported there";
	if (key != NULL && !conflict_keeps_key(ins->on_conflict_clause, key))
		return "ON CONFLICT DO UPDATE may set the key column only to EXCLUDED's key";
	return NULL;
}

/* The table an INSERT ... SELECT with a column list writes: its index (-1: not in the
 * config), or -2 when n is no such statement. */
static int insel_target(walk_t *w, const PgQuery__Node *n)
{
	const PgQuery__InsertStmt *ins;

	if (n == NULL || n->node_case != PG_QUERY__NODE__NODE_INSERT_STMT)
		return -2;
	ins = n->insert_stmt;
	if (ins->relation == NULL || ins->n_cols == 0 || ins->select_stmt == NULL ||
	    ins->select_stmt->node_case != PG_QUERY__NODE__NODE_SELECT_STMT)
		return -2;
	return tables_find(w->cfg, ins->relation->catalogname, ins->relation->schemaname,
	                   ins->relation->relname);
}

static bool insel_applies(walk_t *w, const PgQuery__Node *n)
{
	int i = insel_target(w, n);

	return i >= 0 && tables_is_sharded(tables_at(w, i));
}

/*
 * The plan of an INSERT ... SELECT whose rows the proxy inserts: into a
 * sharded table each on the shard of its key; into a reference table on
 * every shard; into a table not in the config on the default shard.
 */
static void insel_plan(walk_t *w, const PgQuery__Node *n, route_plan_t *p)
{
	const PgQuery__InsertStmt *ins = n->insert_stmt;
	int ti = insel_target(w, n);
	const cfg_table_t *t = ti >= 0 ? tables_at(w, ti) : NULL;
	const shard_map_t *target =
	    t != NULL && tables_is_sharded(t) ? &w->ctx->maps[t->map] : NULL;
	PgQuery__SelectStmt sel = *ins->select_stmt->select_stmt;
	PgQuery__Node node = *ins->select_stmt;
	const char *why = insel_unsupported(w, ins, target != NULL ? t->key : NULL);
	const char *name = t != NULL ? t->name : ins->relation->relname;
	route_plan_t sp;
	route_merge_t m;
	char reason[sizeof p->reason];
	sb_t s;

	if (why != NULL) {
		if (target != NULL)
			walk_refuse(w,
			            "INSERT ... SELECT into sharded table %s takes its key %s from "
			            "values of other shards, which pgshard inserts row by row; %s",
			            name, t->key, why);
		else
			walk_refuse(
			    w,
			    "INSERT ... SELECT into %s reads sharded tables, whose rows pgshard "
			    "inserts row by row; %s",
			    name, why);
		return;
	}
	/* the SELECT as a read of its own, with the INSERT's WITH */
	if (sel.with_clause == NULL)
		sel.with_clause = ins->with_clause;
	node.select_stmt = &sel;
	memset(&sp, 0, sizeof sp);
	sp.key_column = -1;
	plan_stmt(w, &node, &sp);
	if (walk_stopped(w))
		return;
	if (sp.kind == ROUTE_SHARDS && shard_set_count(&sp.shards) > 1) {
		if (mergekind_select(w, &node, false, &m) < 0)
			return;
		if (m != ROUTE_MERGE_SUM) {
			walk_refuse(
			    w,
			    "INSERT ... SELECT into %s: its SELECT reads several shards and "
			    "combines "
			    "their rows (ORDER BY, LIMIT/OFFSET, aggregates, GROUP BY, DISTINCT), "
			    "which pgshard does not do for an INSERT yet; select the rows without "
			    "combining them, or keep the SELECT on one shard with a condition on "
			    "its "
			    "shard key",
			    name);
			return;
		}
	}
	memset(p, 0, sizeof *p);
	p->key_column = -1;
	p->kind = ROUTE_SHARDS;
	p->is_write = true;
	p->insert_select = true;
	p->params_missing = sp.params_missing;
	p->key_encoded = sp.key_encoded;
	if (sp.kind == ROUTE_SHARDS)
		p->shards = sp.shards;
	else
		shard_set_add(&p->shards, shard_set_first(&sp.shards)); /* the default shard */
	sb_init(&s, reason, sizeof reason);
	if (target != NULL) {
		p->map = target->cfg->name;
		p->move_to = target->all;
		sb_printf(
		    &s, "INSERT ... SELECT into %s, each row to the shard of its %s (%s map %s); ",
		    name, t->key, walk_map_kind_name(target->cfg), target->cfg->name);
	} else if (t != NULL) {
		plan_all_shards(w->cfg, &p->move_to);
		sb_printf(&s,
		          "INSERT ... SELECT into reference table %s, each row to every shard; ",
		          name);
	} else {
		shard_set_add(&p->move_to, w->cfg->default_shard);
		sb_printf(&s,
		          "INSERT ... SELECT into %s (not in the config), its rows to the default "
		          "shard %d; ",
		          name, w->cfg->default_shard);
	}
	sb_printf(&s, "its SELECT: %s", sp.reason);
	sb_finish(&s);
	memcpy(p->reason, reason, sizeof reason);
}

/* SELECT, INSERT, UPDATE, DELETE, MERGE. */
static void plan_dml(walk_t *w, const PgQuery__Node *n, route_plan_t *p)
{
	const char *ref_written = NULL;
	part_t part;

	tables_collect(w, &n->base, NULL);
	p->is_write = p->is_write || w->writes;
	if (walk_stopped(w))
		return;
	if (w->clash >= 0) {
		/* an INSERT ... SELECT reading another map's table: its rows go by their keys */
		if (insel_applies(w, n))
			insel_plan(w, n, p);
		else
			refuse_clash(w);
		return;
	}
	if (w->map < 0) {
		plan_unsharded(w, p);
		return;
	}
	for (int k = 0; k < w->n_order; k++)
		if ((w->seen[w->order[k]] & SEEN_WRITE) && tables_at(w, w->order[k])->reference)
			ref_written = tables_at(w, w->order[k])->name;
	if ((ref_written != NULL || w->other_write[0] != '\0') && insel_target(w, n) >= -1) {
		/* INSERT ... SELECT: the proxy inserts the rows it reads (every copy, the default
		 * shard) */
		insel_plan(w, n, p);
		return;
	}
	if (ref_written != NULL) {
		walk_refuse(
		    w,
		    "a write to reference table %s cannot read sharded table %s: each shard would "
		    "write different rows into its copy; read the values first, then write them",
		    ref_written, tables_at(w, w->map_table)->name);
		return;
	}
	if (w->other_write[0] != '\0') {
		walk_refuse(
		    w,
		    "table %s is not in the config (it lives on the default shard only), but "
		    "the statement that writes it reads sharded table %s; add [table.%s] to the "
		    "config or read the rows first",
		    w->other_write, tables_at(w, w->map_table)->name, w->other_write);
		return;
	}
	w->smap = &w->ctx->maps[w->map];
	part = an_query(w, n, NULL, true, NULL);
	if (walk_stopped(w))
		return;
	if (w->ins_select) {
		insel_plan(w, n, p);
		return;
	}
	plan_shards(w, part, p);
	if (w->ins_split)
		p->split_insert = true;
	if (p->kind == ROUTE_SHARDS && p->key_value[0] == '\0' && w->n_ins_keys > 0 &&
	    w->key_column >= 0) {
		memcpy(p->insert_keys, w->ins_keys, sizeof p->insert_keys);
		p->n_insert_keys = w->n_ins_keys;
	}
	p->key_move = w->key_move && p->kind == ROUTE_SHARDS;
	if (p->key_move)
		p->move_to = w->move_to;
	p->key_column = w->key_column;
}

/* CREATE TABLE AS, SELECT INTO, CREATE MATERIALIZED VIEW. */
static void plan_create_as(walk_t *w, const PgQuery__Node *query, const PgQuery__IntoClause *into,
                           route_plan_t *p)
{
	const PgQuery__RangeVar *rv = into ? into->rel : NULL;
	int target = rv ? tables_find(w->cfg, rv->catalogname, rv->schemaname, rv->relname) : -1;

	p->is_ddl = true;
	p->is_write = true;
	if (query != NULL)
		tables_collect(w, &query->base, NULL);
	if (walk_stopped(w))
		return;
	if (target >= 0) {
		const cfg_table_t *t = tables_at(w, target);

		tables_note(w, target, true);
		if (into->skip_data || (t->reference && w->map < 0)) {
			plan_all(w, p, "CREATE TABLE AS", t->name);
			return;
		}
		walk_refuse(
		    w,
		    "CREATE TABLE %s AS cannot fill a %s table on every shard; create it with "
		    "CREATE TABLE, then fill it with INSERT ... SELECT",
		    t->name, t->reference ? "reference" : "sharded");
		return;
	}
	if (w->map >= 0) {
		walk_refuse(
		    w,
		    "CREATE TABLE AS / SELECT INTO reads sharded table %s, but the new table is "
		    "not in the config and would hold only the default shard's rows; add it to "
		    "the config, create it with CREATE TABLE and fill it with INSERT ... SELECT",
		    tables_at(w, w->map_table)->name);
		return;
	}
	plan_default(w, p, "creates a table not in the config");
}

static void plan_view(walk_t *w, const PgQuery__ViewStmt *v, route_plan_t *p)
{
	const PgQuery__RangeVar *rv = v->view;
	int target = rv ? tables_find(w->cfg, rv->catalogname, rv->schemaname, rv->relname) : -1;

	p->is_ddl = true;
	p->is_write = true;
	if (target >= 0) {
		tables_note(w, target, true);
		plan_all(w, p, "DDL on", tables_at(w, target)->name);
		return;
	}
	if (v->query != NULL)
		tables_collect(w, &v->query->base, NULL);
	if (walk_stopped(w))
		return;
	if (w->map >= 0) {
		walk_refuse(
		    w,
		    "view %s reads sharded table %s but is not in the config, so it would exist "
		    "on the default shard only; add [table.%s] with the key and map of %s to "
		    "the config and create it again (pgshard then creates it on every shard)",
		    rv ? rv->relname : "?", tables_at(w, w->map_table)->name,
		    rv ? rv->relname : "?", tables_at(w, w->map_table)->name);
		return;
	}
	plan_default(w, p, "DDL on a view not in the config");
}

static void plan_copy(walk_t *w, const PgQuery__CopyStmt *c, route_plan_t *p)
{
	bool file = !empty(c->filename) || c->is_program;
	const cfg_table_t *t;
	int i;

	if (c->query != NULL) {
		plan_dml(w, c->query, p);
		if (!walk_stopped(w) && file && p->kind != ROUTE_DEFAULT && p->kind != ROUTE_ANY)
			walk_refuse(w,
			            "COPY (query) TO a server file or program would write one file "
			            "on each shard's server; use COPY (query) TO STDOUT");
		return;
	}
	p->is_write = c->is_from;
	p->copy_from_stdin = c->is_from && !file;
	i = c->relation ? tables_find(w->cfg, c->relation->catalogname, c->relation->schemaname,
	                              c->relation->relname)
	                : -1;
	if (i < 0) {
		plan_default(w, p, "COPY of a table not in the config");
		return;
	}
	t = tables_at(w, i);
	tables_note(w, i, c->is_from);
	if (file && (c->is_from || tables_is_sharded(t))) {
		walk_refuse(
		    w,
		    "COPY %s %s a server file or program would run on every shard's server; use "
		    "COPY %s %s through pgshard",
		    t->name, c->is_from ? "FROM" : "TO", c->is_from ? "FROM" : "TO",
		    c->is_from ? "STDIN" : "STDOUT");
		return;
	}
	if (t->reference) {
		if (c->is_from) {
			plan_all(w, p, "reference table", t->name);
			plan_reason(p, "COPY FROM STDIN into reference table %s -> all %d shards",
			            t->name, w->cfg->n_shards);
			return;
		}
		p->kind = ROUTE_ANY;
		shard_set_clear(&p->shards);
		shard_set_add(&p->shards, w->cfg->default_shard);
		plan_reason(p, "reference table %s, COPY TO -> shard %d", t->name,
		            w->cfg->default_shard);
		return;
	}
	w->smap = &w->ctx->maps[t->map];
	p->kind = ROUTE_SHARDS;
	p->map = w->smap->cfg->name;
	p->shards = w->smap->all;
	if (c->is_from) {
		bool indirect;
		int k = an_column_pos(c->attlist, c->n_attlist, t->key, &indirect);

		if (c->n_attlist > 0 && k < 0) {
			walk_refuse(
			    w,
			    "COPY into sharded table %s must include the key column %s: pgshard "
			    "splits the rows by it",
			    t->name, t->key);
			return;
		}
		p->split_insert = true;
		p->key_column = k;
		plan_reason(
		    p, "COPY FROM STDIN into %s: rows split by %s over the %d shards of map %s",
		    t->name, t->key, shard_set_count(&p->shards), w->smap->cfg->name);
		return;
	}
	plan_reason(p, "COPY %s TO STDOUT -> all %d shards of map %s", t->name,
	            shard_set_count(&p->shards), w->smap->cfg->name);
}

bool plan_explain_analyzes(const PgQuery__ExplainStmt *e)
{
	for (size_t i = 0; i < e->n_options; i++) {
		const PgQuery__Node *o = e->options[i];
		const PgQuery__DefElem *d;

		if (o->node_case != PG_QUERY__NODE__NODE_DEF_ELEM)
			continue;
		d = o->def_elem;
		if (!streq(d->defname, "analyze"))
			continue;
		if (d->arg == NULL)
			return true;
		if (tree_str_of(d->arg) != NULL)
			return strcasecmp(tree_str_of(d->arg), "false") != 0 &&
			       strcasecmp(tree_str_of(d->arg), "off") != 0;
		if (d->arg->node_case == PG_QUERY__NODE__NODE_BOOLEAN)
			return d->arg->boolean->boolval;
		if (d->arg->node_case == PG_QUERY__NODE__NODE_INTEGER)
			return d->arg->integer->ival != 0;
		return true;
	}
	return false;
}

static void prefix_reason(route_plan_t *p, const char *prefix)
{
	char tmp[sizeof p->reason];

	snprintf(tmp, sizeof tmp, "%s%s", prefix, p->reason);
	memcpy(p->reason, tmp, sizeof tmp);
}

/* DDL: every shard when it names a configured table. */
static void plan_ddl(walk_t *w, const PgQuery__Node *n, route_plan_t *p)
{
	PgQuery__Node *const *objs = NULL;
	size_t n_objs = 0;
	bool drop_last = false;
	ids_kind_t ids;

	p->is_ddl = true;
	p->is_write = true;
	ddl_check_constraints(w, n);
	if (walk_stopped(w))
		return;
	ids = ids_kind(w, n);
	if (walk_stopped(w))
		return;
	p->ids_split = ids == IDS_SPLIT;
	if (ids != IDS_NONE && (n->node_case == PG_QUERY__NODE__NODE_CREATE_SEQ_STMT ||
	                        n->node_case == PG_QUERY__NODE__NODE_ALTER_SEQ_STMT ||
	                        n->node_case == PG_QUERY__NODE__NODE_DROP_STMT)) {
		/* sequences live on every shard, so that nextval() works where it is routed */
		plan_all(w, p, "sequence", "");
		plan_reason(p, "sequence DDL -> all %d shards%s", w->cfg->n_shards,
		            p->ids_split ? ", each numbered for its shard" : "");
		return;
	}
	switch (n->node_case) {
	case PG_QUERY__NODE__NODE_CREATE_STMT:
		/* what it creates (and a partition's parent), not what it references */
		if (n->create_stmt->relation != NULL)
			tables_note_rangevar(w, n->create_stmt->relation, NULL, true);
		for (size_t i = 0; i < n->create_stmt->n_inh_relations; i++)
			if (n->create_stmt->inh_relations[i]->node_case ==
			    PG_QUERY__NODE__NODE_RANGE_VAR)
				tables_note_rangevar(w, n->create_stmt->inh_relations[i]->range_var,
				                     NULL, true);
		break;
	case PG_QUERY__NODE__NODE_ALTER_TABLE_STMT:
		if (n->alter_table_stmt->relation != NULL)
			tables_note_rangevar(w, n->alter_table_stmt->relation, NULL, true);
		break;
	case PG_QUERY__NODE__NODE_INDEX_STMT:
		if (n->index_stmt->relation != NULL)
			tables_note_rangevar(w, n->index_stmt->relation, NULL, true);
		break;
	case PG_QUERY__NODE__NODE_DROP_STMT:
		switch (n->drop_stmt->remove_type) {
		case PG_QUERY__OBJECT_TYPE__OBJECT_TABLE:
		case PG_QUERY__OBJECT_TYPE__OBJECT_VIEW:
		case PG_QUERY__OBJECT_TYPE__OBJECT_MATVIEW:
		case PG_QUERY__OBJECT_TYPE__OBJECT_FOREIGN_TABLE:
			break;
		case PG_QUERY__OBJECT_TYPE__OBJECT_TRIGGER:
		case PG_QUERY__OBJECT_TYPE__OBJECT_RULE:
		case PG_QUERY__OBJECT_TYPE__OBJECT_POLICY:
			drop_last = true; /* table name, then the object's own name */
			break;
		default:
			n_objs = 0;
			goto decide;
		}
		objs = n->drop_stmt->objects;
		n_objs = n->drop_stmt->n_objects;
		break;
	case PG_QUERY__NODE__NODE_COMMENT_STMT:
	case PG_QUERY__NODE__NODE_SEC_LABEL_STMT: {
		PgQuery__ObjectType type = n->node_case == PG_QUERY__NODE__NODE_COMMENT_STMT
		                               ? n->comment_stmt->objtype
		                               : n->sec_label_stmt->objtype;
		PgQuery__Node *obj = n->node_case == PG_QUERY__NODE__NODE_COMMENT_STMT
		                         ? n->comment_stmt->object
		                         : n->sec_label_stmt->object;

		if (type == PG_QUERY__OBJECT_TYPE__OBJECT_COLUMN ||
		    type == PG_QUERY__OBJECT_TYPE__OBJECT_TRIGGER ||
		    type == PG_QUERY__OBJECT_TYPE__OBJECT_RULE ||
		    type == PG_QUERY__OBJECT_TYPE__OBJECT_POLICY ||
		    type == PG_QUERY__OBJECT_TYPE__OBJECT_TABCONSTRAINT)
			drop_last = true;
		else if (type != PG_QUERY__OBJECT_TYPE__OBJECT_TABLE &&
		         type != PG_QUERY__OBJECT_TYPE__OBJECT_VIEW &&
		         type != PG_QUERY__OBJECT_TYPE__OBJECT_MATVIEW &&
		         type != PG_QUERY__OBJECT_TYPE__OBJECT_FOREIGN_TABLE)
			goto decide;
		if (obj != NULL) {
			objs = n->node_case == PG_QUERY__NODE__NODE_COMMENT_STMT
			           ? &n->comment_stmt->object
			           : &n->sec_label_stmt->object;
			n_objs = 1;
		}
		break;
	}
	case PG_QUERY__NODE__NODE_GRANT_STMT:
		if (n->grant_stmt->targtype ==
		        PG_QUERY__GRANT_TARGET_TYPE__ACL_TARGET_ALL_IN_SCHEMA &&
		    n->grant_stmt->objtype == PG_QUERY__OBJECT_TYPE__OBJECT_TABLE) {
			/* every shard has tables in the schema */
			plan_all(w, p, "GRANT ... ON ALL TABLES IN SCHEMA", "");
			plan_reason(p, "GRANT on all tables in a schema -> all %d shards",
			            w->cfg->n_shards);
			return;
		}
		tables_collect(w, &n->base, NULL);
		break;
	default:
		tables_collect(w, &n->base, NULL);
		break;
	}
	for (size_t i = 0; i < n_objs; i++) {
		const PgQuery__Node *o = objs[i];
		size_t len;
		int t;

		if (o == NULL || o->node_case != PG_QUERY__NODE__NODE_LIST)
			continue;
		len = o->list->n_items;
		if (drop_last) {
			if (len < 2)
				continue;
			len--;
		}
		t = tables_find_list(w->cfg, (const PgQuery__Node *const *)o->list->items, len);
		if (t >= 0)
			tables_note(w, t, true);
	}
decide:
	if (walk_stopped(w))
		return;
	if (w->n_order > 0) {
		plan_all(w, p, "DDL on", tables_at(w, w->order[0])->name);
		return;
	}
	plan_default(w, p, "DDL on no configured table");
}

static bool is_ddl_node(PgQuery__Node__NodeCase c)
{
	switch (c) {
	case PG_QUERY__NODE__NODE_CREATE_STMT:
	case PG_QUERY__NODE__NODE_CREATE_SEQ_STMT:
	case PG_QUERY__NODE__NODE_ALTER_SEQ_STMT:
	case PG_QUERY__NODE__NODE_CREATE_FOREIGN_TABLE_STMT:
	case PG_QUERY__NODE__NODE_ALTER_TABLE_STMT:
	case PG_QUERY__NODE__NODE_ALTER_TABLE_MOVE_ALL_STMT:
	case PG_QUERY__NODE__NODE_DROP_STMT:
	case PG_QUERY__NODE__NODE_INDEX_STMT:
	case PG_QUERY__NODE__NODE_TRUNCATE_STMT:
	case PG_QUERY__NODE__NODE_VACUUM_STMT:
	case PG_QUERY__NODE__NODE_COMMENT_STMT:
	case PG_QUERY__NODE__NODE_SEC_LABEL_STMT:
	case PG_QUERY__NODE__NODE_GRANT_STMT:
	case PG_QUERY__NODE__NODE_RENAME_STMT:
	case PG_QUERY__NODE__NODE_ALTER_OBJECT_SCHEMA_STMT:
	case PG_QUERY__NODE__NODE_ALTER_OWNER_STMT:
	case PG_QUERY__NODE__NODE_CREATE_TRIG_STMT:
	case PG_QUERY__NODE__NODE_RULE_STMT:
	case PG_QUERY__NODE__NODE_CREATE_POLICY_STMT:
	case PG_QUERY__NODE__NODE_ALTER_POLICY_STMT:
	case PG_QUERY__NODE__NODE_CREATE_STATS_STMT:
	case PG_QUERY__NODE__NODE_ALTER_STATS_STMT:
	case PG_QUERY__NODE__NODE_CLUSTER_STMT:
	case PG_QUERY__NODE__NODE_REINDEX_STMT:
	case PG_QUERY__NODE__NODE_REFRESH_MAT_VIEW_STMT:
		return true;
	default:
		return false;
	}
}

void plan_stmt(walk_t *w, const PgQuery__Node *n, route_plan_t *p)
{
	memset(p, 0, sizeof *p);
	p->key_column = -1;
	walk_reset(w);
	if (n == NULL) {
		plan_default(w, p, "empty statement");
		return;
	}
	switch (n->node_case) {
	case PG_QUERY__NODE__NODE_SELECT_STMT:
		if (n->select_stmt->into_clause != NULL)
			plan_create_as(w, n, n->select_stmt->into_clause, p);
		else
			plan_dml(w, n, p);
		break;
	case PG_QUERY__NODE__NODE_INSERT_STMT:
	case PG_QUERY__NODE__NODE_UPDATE_STMT:
	case PG_QUERY__NODE__NODE_DELETE_STMT:
	case PG_QUERY__NODE__NODE_MERGE_STMT:
		p->is_write = true;
		plan_dml(w, n, p);
		break;
	case PG_QUERY__NODE__NODE_COPY_STMT:
		plan_copy(w, n->copy_stmt, p);
		break;
	case PG_QUERY__NODE__NODE_CREATE_TABLE_AS_STMT:
		plan_create_as(w, n->create_table_as_stmt->query, n->create_table_as_stmt->into, p);
		break;
	case PG_QUERY__NODE__NODE_VIEW_STMT:
		plan_view(w, n->view_stmt, p);
		break;
	case PG_QUERY__NODE__NODE_EXPLAIN_STMT: {
		bool analyze = plan_explain_analyzes(n->explain_stmt);

		plan_stmt(w, n->explain_stmt->query, p);
		if (w->refused)
			break;
		if (p->split_insert) {
			walk_refuse(w,
			            "EXPLAIN of an INSERT whose rows go to several shards is not "
			            "supported; explain an INSERT of one shard's rows");
			break;
		}
		if (p->insert_select) {
			walk_refuse(w,
			            "EXPLAIN of an INSERT ... SELECT whose rows go to the shards "
			            "of their keys is not supported; EXPLAIN its SELECT");
			break;
		}
		if (p->key_move && analyze) {
			walk_refuse(
			    w, "EXPLAIN ANALYZE of an UPDATE that moves rows between shards is "
			       "not supported; EXPLAIN without ANALYZE shows its plan on each "
			       "shard");
			break;
		}
		p->key_move = false; /* the plan of the UPDATE itself, where its rows are */
		p->is_write = analyze && p->is_write;
		p->is_ddl = false;
		prefix_reason(p, "EXPLAIN: ");
		break;
	}
	case PG_QUERY__NODE__NODE_PREPARE_STMT:
		plan_stmt(w, n->prepare_stmt->query, p);
		if (w->refused)
			break;
		if (p->kind != ROUTE_DEFAULT && p->kind != ROUTE_ANY) {
			walk_refuse(
			    w, "SQL PREPARE of a statement on sharded or reference tables is not "
			       "supported: each execution must be routed by its parameters; use "
			       "the protocol's prepared statements (Parse/Bind), as drivers do");
			break;
		}
		p->kind = ROUTE_DEFAULT;
		p->is_write = false;
		prefix_reason(p, "PREPARE: ");
		break;
	case PG_QUERY__NODE__NODE_DECLARE_CURSOR_STMT:
		plan_stmt(w, n->declare_cursor_stmt->query, p);
		if (w->refused)
			break;
		p->cursor_op = ROUTE_CURSOR_DECLARE;
		p->cursor_hold =
		    (n->declare_cursor_stmt->options & 0x0020) != 0; /* CURSOR_OPT_HOLD */
		snprintf(p->cursor, sizeof p->cursor, "%s",
		         n->declare_cursor_stmt->portalname ? n->declare_cursor_stmt->portalname
		                                            : "");
		prefix_reason(p, "DECLARE: ");
		break;
	case PG_QUERY__NODE__NODE_FETCH_STMT:
		plan_default(w, p, "FETCH/MOVE: where its cursor was declared, else");
		p->cursor_op = ROUTE_CURSOR_USE;
		p->fetch_move = n->fetch_stmt->ismove;
		/* FETCH n, NEXT, FORWARD n, ALL, FORWARD ALL: the only fetches a cursor over
		   several shards takes (FETCH_ALL is LONG_MAX) */
		if (n->fetch_stmt->direction == PG_QUERY__FETCH_DIRECTION__FETCH_FORWARD &&
		    n->fetch_stmt->how_many > 0)
			p->fetch_count =
			    n->fetch_stmt->how_many == INT64_MAX ? -1 : n->fetch_stmt->how_many;
		snprintf(p->cursor, sizeof p->cursor, "%s",
		         n->fetch_stmt->portalname ? n->fetch_stmt->portalname : "");
		break;
	case PG_QUERY__NODE__NODE_CLOSE_PORTAL_STMT:
		plan_default(w, p, "CLOSE: where its cursor was declared, else");
		p->cursor_op = !empty(n->close_portal_stmt->portalname) ? ROUTE_CURSOR_CLOSE
		                                                        : ROUTE_CURSOR_CLOSE_ALL;
		snprintf(p->cursor, sizeof p->cursor, "%s",
		         n->close_portal_stmt->portalname ? n->close_portal_stmt->portalname : "");
		break;
	default:
		if (is_ddl_node(n->node_case)) {
			plan_ddl(w, n, p);
			break;
		}
		/* LOCK and whatever else names tables: where those tables are */
		tables_collect(w, &n->base, NULL);
		if (walk_stopped(w))
			break;
		if (w->n_order > 0)
			plan_all(w, p, "statement on", tables_at(w, w->order[0])->name);
		else
			plan_default(w, p, "no sharded table");
		break;
	}
	if (w->refused)
		plan_refused(w, p);
	p->needs_columns = w->refused && w->needs_columns;
	p->params_missing = w->params_missing;
	p->key_encoded = p->key_encoded || w->key_encoded;
	if (!p->no_tx_block) {
		/* EXPLAIN and PREPARE planned their statement above, which may have set it */
		p->no_tx_why = txblock_why_not(n);
		p->no_tx_block = p->no_tx_why != NULL;
	}
}

/* ---- several statements in one string ---- */

/* Statements that run wherever the others of their string run. */
static bool is_neutral(const PgQuery__Node *n)
{
	return n != NULL && (n->node_case == PG_QUERY__NODE__NODE_TRANSACTION_STMT ||
	                     n->node_case == PG_QUERY__NODE__NODE_VARIABLE_SET_STMT);
}

static bool ends_transaction(const PgQuery__Node *n)
{
	return n != NULL && n->node_case == PG_QUERY__NODE__NODE_TRANSACTION_STMT &&
	       (n->transaction_stmt->kind == PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_COMMIT ||
	        n->transaction_stmt->kind == PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_PREPARE);
}

static int kind_rank(route_kind_t k)
{
	switch (k) {
	case ROUTE_DEFAULT:
		return 0;
	case ROUTE_ANY:
		return 1;
	case ROUTE_SHARDS:
		return 2;
	case ROUTE_ALL:
		return 3;
	default:
		return 4;
	}
}

/*
 * A string whose statements cannot run as one statement on the same shards
 * (they route differently, or one must be sent alone: a split INSERT, a
 * move, DDL that makes ids, a cursor, a join across shards; COMMIT with
 * writes on several shards).
 */
static bool needs_batch(PgQuery__RawStmt *const *stmts, size_t n, const route_plan_t *plans)
{
	const route_plan_t *first = NULL;

	for (size_t i = 0; i < n; i++) {
		const route_plan_t *p = &plans[i];

		if (is_neutral(stmts[i]->stmt))
			continue;
		if (p->split_insert || p->key_move || p->insert_select || p->ids_split || p->join ||
		    (p->cursor_op != ROUTE_CURSOR_NONE && p->kind != ROUTE_DEFAULT) ||
		    (p->is_write && shard_set_count(&p->shards) > 1))
			return true;
		if (first != NULL && memcmp(&p->shards, &first->shards, sizeof p->shards) != 0)
			return true;
		if (first == NULL)
			first = p;
	}
	return false;
}

/*
 * Whether a string can run statement by statement as PostgreSQL runs it:
 * no COPY (its data would come in the middle), no parameters, and no
 * transaction control but a BEGIN first and a COMMIT last.
 */
static bool batchable(PgQuery__RawStmt *const *stmts, size_t n, const route_plan_t *plans)
{
	for (size_t i = 0; i < n; i++) {
		const PgQuery__Node *s = stmts[i]->stmt;

		if (s == NULL || plans[i].params_missing || plans[i].copy_from_stdin ||
		    s->node_case == PG_QUERY__NODE__NODE_COPY_STMT)
			return false;
		if (s->node_case != PG_QUERY__NODE__NODE_TRANSACTION_STMT)
			continue;
		switch (s->transaction_stmt->kind) {
		case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_BEGIN:
		case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_START:
			if (i != 0)
				return false;
			break;
		case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_COMMIT:
			if (i != n - 1 || i == 0 || s->transaction_stmt->chain ||
			    stmts[0]->stmt->node_case != PG_QUERY__NODE__NODE_TRANSACTION_STMT)
				return false;
			break;
		default:
			return false;
		}
	}
	return n > 1;
}

void plan_combine(walk_t *w, PgQuery__RawStmt *const *stmts, size_t n, route_plan_t *plans,
                  route_plan_t *out)
{
	const route_plan_t *first = NULL;
	bool split = false, commits = false, is_write = false, is_ddl = false, missing = false,
	     copy_in = false, moves = false, makes_ids = false, inserts_select = false;
	const char *no_tx_why = NULL;
	sb_t s;

	for (size_t i = 0; i < n; i++) {
		if (plans[i].kind == ROUTE_REFUSE) {
			*out = plans[i];
			return;
		}
	}
	if (needs_batch(stmts, n, plans) && batchable(stmts, n, plans)) {
		/* each statement runs as a query of its own (ROUTE_STEP_BATCH) */
		memset(out, 0, sizeof *out);
		out->key_column = -1;
		out->batch = true;
		out->kind = ROUTE_ALL;
		out->merge = ROUTE_MERGE_ONE; /* not used: each statement merges its own answers */
		plan_all_shards(w->cfg, &out->shards);
		for (size_t i = 0; i < n; i++) {
			out->is_write |= plans[i].is_write;
			out->is_ddl |= plans[i].is_ddl;
			out->params_missing |= plans[i].params_missing;
		}
		plan_reason(out,
		            "%zu statements that route differently: each runs on its own shards, "
		            "in one transaction",
		            n);
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (plans[i].join) {
			route_plan_refuse(
			    out, "0A000",
			    "a join across shards runs alone in its query string, or in "
			    "one pgshard runs statement by statement (no COPY, "
			    "parameters, or transaction control but BEGIN first and "
			    "COMMIT last); send it as a query of its own");
			return;
		}
	memset(out, 0, sizeof *out);
	out->key_column = -1;
	for (size_t i = 0; i < n; i++) {
		const route_plan_t *p = &plans[i];

		missing |= p->params_missing;
		commits |= ends_transaction(stmts[i]->stmt);
		if (no_tx_why == NULL && p->no_tx_block)
			no_tx_why = p->no_tx_why;
		if (is_neutral(stmts[i]->stmt))
			continue;
		split |= p->split_insert;
		moves |= p->key_move;
		inserts_select |= p->insert_select;
		makes_ids |= p->ids_split;
		copy_in |= p->copy_from_stdin;
		is_write |= p->is_write;
		is_ddl |= p->is_ddl;
		if (first == NULL) {
			first = p;
			*out = *p;
			continue;
		}
		if (memcmp(&p->shards, &first->shards, sizeof p->shards) != 0) {
			char tmp[sizeof out->error];

			sb_init(&s, tmp, sizeof tmp);
			sb_printf(&s,
			          "the statements of this query string route differently "
			          "(statement %zu -> ",
			          (size_t)(first - plans) + 1);
			sb_shards(&s, &first->shards);
			sb_printf(&s, ", statement %zu -> ", i + 1);
			sb_shards(&s, &p->shards);
			sb_printf(&s, "); send these statements separately");
			sb_finish(&s);
			walk_refuse(w, "%s", tmp);
			break;
		}
		if (kind_rank(p->kind) > kind_rank(out->kind))
			out->kind = p->kind;
		if (out->map == NULL)
			out->map = p->map;
	}
	if (!w->refused && first == NULL) {
		*out = plans[0];
		out->params_missing = missing;
		out->no_tx_block = no_tx_why != NULL;
		out->no_tx_why = no_tx_why;
		plan_default(w, out, "no sharded table");
		return;
	}
	out->is_write = is_write;
	out->is_ddl = is_ddl;
	out->copy_from_stdin = copy_in;
	out->params_missing = missing;
	out->no_tx_block = no_tx_why != NULL;
	out->no_tx_why = no_tx_why;
	if (!w->refused && split && n > 1)
		walk_refuse(
		    w, "a multi-row INSERT or COPY whose rows go to several shards must be sent "
		       "as a query of its own, not with other statements");
	for (size_t i = 0; i < n && !w->refused && n > 1; i++)
		if (plans[i].cursor_op != ROUTE_CURSOR_NONE && !plans[i].params_missing &&
		    plans[i].kind != ROUTE_DEFAULT)
			walk_refuse(w, "DECLARE of a cursor over sharded tables must be sent as a "
			               "query of its own, not with other statements");
	if (!w->refused && makes_ids && n > 1)
		walk_refuse(
		    w, "a statement that makes sequences (serial or identity columns of a sharded "
		       "table, CREATE SEQUENCE) must be sent as a query of its own, not with "
		       "other statements: pgshard writes it for each shard with that shard's "
		       "numbering");
	if (!w->refused && moves && n > 1)
		walk_refuse(w,
		            "an UPDATE of the key column that may move rows to other shards must "
		            "be sent as a query of its own, not with other statements");
	if (!w->refused && inserts_select && n > 1)
		walk_refuse(w,
		            "an INSERT ... SELECT whose rows go to the shards of their keys must "
		            "be sent as a query of its own, not with other statements");
	if (!w->refused && commits && out->is_write && shard_set_count(&out->shards) > 1)
		walk_refuse(w,
		            "COMMIT in the same query string as writes on several shards cannot be "
		            "made atomic; send COMMIT as a statement of its own");
	if (w->refused) {
		plan_refused(w, out);
		return;
	}
	if (n > 1) {
		char tmp[sizeof out->reason];

		sb_init(&s, tmp, sizeof tmp);
		sb_printf(&s, "%zu statements: %s", n, first->reason);
		sb_finish(&s);
		memcpy(out->reason, tmp, sizeof tmp);
	}
}

/* ---- transaction control ---- */

static route_txn_t txn_of(const PgQuery__TransactionStmt *t)
{
	switch (t->kind) {
	case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_BEGIN:
	case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_START:
		return ROUTE_TXN_BEGIN;
	case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_COMMIT:
		return t->chain ? ROUTE_TXN_OTHER : ROUTE_TXN_COMMIT;
	case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_ROLLBACK:
		return t->chain ? ROUTE_TXN_OTHER : ROUTE_TXN_ROLLBACK;
	case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_SAVEPOINT:
	case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_RELEASE:
	case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_ROLLBACK_TO:
		return ROUTE_TXN_SAVEPOINT;
	default:
		return ROUTE_TXN_OTHER; /* PREPARE TRANSACTION, COMMIT/ROLLBACK PREPARED */
	}
}

/* PostgreSQL's command tag for a transaction-control statement (CreateCommandTag). */
static const char *txn_tag_of(const PgQuery__TransactionStmt *t)
{
	switch (t->kind) {
	case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_BEGIN:
		return "BEGIN";
	case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_START:
		return "START TRANSACTION";
	case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_COMMIT:
		return "COMMIT";
	case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_ROLLBACK:
	case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_ROLLBACK_TO:
		return "ROLLBACK";
	case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_SAVEPOINT:
		return "SAVEPOINT";
	case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_RELEASE:
		return "RELEASE";
	case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_PREPARE:
		return "PREPARE TRANSACTION";
	case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_COMMIT_PREPARED:
		return "COMMIT PREPARED";
	case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_ROLLBACK_PREPARED:
		return "ROLLBACK PREPARED";
	default:
		return "";
	}
}

void plan_txn(const PgQuery__ParseResult *tree, route_plan_t *out)
{
	out->txn = ROUTE_TXN_NONE;
	out->txn_tag[0] = '\0';
	out->has_txn_control = false;
	if (tree == NULL)
		return;
	for (size_t i = 0; i < tree->n_stmts; i++) {
		const PgQuery__Node *n = tree->stmts[i]->stmt;

		if (n == NULL || n->node_case != PG_QUERY__NODE__NODE_TRANSACTION_STMT)
			continue;
		out->has_txn_control = true;
		if (tree->n_stmts == 1) {
			out->txn = txn_of(n->transaction_stmt);
			snprintf(out->txn_tag, sizeof out->txn_tag, "%s",
			         txn_tag_of(n->transaction_stmt));
		}
	}
}
