/*
 * route_tables.c — the config's tables against the names a statement
 * uses (schemas, CTEs that shadow tables), and pass 1 of routing:
 * tables_collect walks the whole tree through protobuf-c's descriptors, so
 * that no node type can hide a table from it, and notes every table the
 * statement names, and which of them it writes. See route.c.
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

/* ---- tables: config names against the names a statement uses ---- */

static bool is_system_schema(const char *s)
{
	return strcmp(s, "pg_catalog") == 0 || strcmp(s, "information_schema") == 0 ||
	       strncmp(s, "pg_temp", 7) == 0 || strncmp(s, "pg_toast", 8) == 0;
}

static int table_index(const cfg_t *cfg, const char *name)
{
	for (int i = 0; i < cfg->n_tables; i++)
		if (strcmp(cfg->tables[i].name, name) == 0)
			return i;
	return -1;
}

/*
 * The config table a (catalog, schema, relation) name means, or -1. The
 * parser has already folded unquoted names to lower case, as the config
 * loader does. A qualified name matches the config's qualified or bare
 * name (public.users finds [table.users]); a bare name also finds
 * [table.public.users]. System schemas are never configured tables.
 */
int tables_find(const cfg_t *cfg, const char *catalog, const char *schema, const char *rel)
{
	char name[3 * NAME_MAX_LEN];
	int i, n;

	if (empty(rel))
		return -1;
	if (!empty(schema)) {
		if (is_system_schema(schema))
			return -1;
		if (!empty(catalog)) {
			n = snprintf(name, sizeof name, "%s.%s.%s", catalog, schema, rel);
			if (n > 0 && (size_t)n < sizeof name && (i = table_index(cfg, name)) >= 0)
				return i;
		}
		n = snprintf(name, sizeof name, "%s.%s", schema, rel);
		if (n > 0 && (size_t)n < sizeof name && (i = table_index(cfg, name)) >= 0)
			return i;
	}
	if ((i = table_index(cfg, rel)) >= 0)
		return i;
	if (empty(schema)) {
		n = snprintf(name, sizeof name, "public.%s", rel);
		if (n > 0 && (size_t)n < sizeof name && (i = table_index(cfg, name)) >= 0)
			return i;
	}
	return -1;
}

/* A name given as a list of String nodes (DROP TABLE, COMMENT ON ...). */
int tables_find_list(const cfg_t *cfg, const PgQuery__Node *const *items, size_t n)
{
	const char *part[3] = {NULL, NULL, NULL};

	if (n < 1 || n > 3)
		return -1;
	for (size_t i = 0; i < n; i++) {
		part[3 - n + i] = tree_str_of(items[i]);
		if (part[3 - n + i] == NULL)
			return -1;
	}
	return tables_find(cfg, part[0], part[1], part[2]);
}

bool tables_is_sharded(const cfg_table_t *t)
{
	return !t->reference && t->map >= 0;
}

const cfg_table_t *tables_at(const walk_t *w, int i)
{
	return &w->cfg->tables[i];
}

void tables_note(walk_t *w, int i, bool write)
{
	const cfg_table_t *t = tables_at(w, i);

	if (w->seen[i] == 0)
		w->order[w->n_order++] = i;
	w->seen[i] |= write ? SEEN_WRITE : SEEN_READ;
	if (!tables_is_sharded(t))
		return;
	if (w->map < 0) {
		w->map = t->map;
		w->map_table = i;
	} else if (t->map != w->map && w->clash < 0) {
		w->clash = i;
	}
	if (w->any_map < 0)
		w->any_map = t->map;
	else if (w->any_map != t->map)
		w->maps_differ = true;
}

scope_t *tables_find_cte(scope_t *sc, const char *name)
{
	for (; sc != NULL; sc = sc->up)
		if (streq(sc->name, name))
			return sc;
	return NULL;
}

void tables_note_rangevar(walk_t *w, const PgQuery__RangeVar *rv, scope_t *sc, bool write)
{
	int i;

	/* the target of a write is always a table; a read may name a CTE */
	if (!write && empty(rv->schemaname) && tables_find_cte(sc, rv->relname) != NULL)
		return;
	/* CREATE TEMP TABLE: a session's own table, whatever its name */
	i = rv->relpersistence != NULL && rv->relpersistence[0] == 't'
	        ? -1
	        : tables_find(w->cfg, rv->catalogname, rv->schemaname, rv->relname);
	if (i >= 0) {
		tables_note(w, i, write);
		return;
	}
	if (write && w->other_write[0] == '\0')
		snprintf(w->other_write, sizeof w->other_write, "%s%s%s",
		         empty(rv->schemaname) ? "" : rv->schemaname,
		         empty(rv->schemaname) ? "" : ".", rv->relname ? rv->relname : "?");
}

/*
 * Open a WITH clause: one scope node per CTE, chained so that CTE i sees
 * CTEs 0..i-1 (all of them under WITH RECURSIVE) and the body sees all.
 * Returns the body's scope; *nodes is to be freed by the caller.
 */
scope_t *tables_with_open(walk_t *w, const PgQuery__WithClause *with, scope_t *sc, scope_t **nodes)
{
	scope_t *s;
	size_t n;

	*nodes = NULL;
	if (with == NULL || with->n_ctes == 0)
		return sc;
	n = with->n_ctes;
	s = calloc(n, sizeof *s);
	if (s == NULL) {
		w->nomem = true;
		return sc;
	}
	for (size_t i = 0; i < n; i++) {
		const PgQuery__Node *c = with->ctes[i];

		if (c != NULL && c->node_case == PG_QUERY__NODE__NODE_COMMON_TABLE_EXPR) {
			s[i].cte = c->common_table_expr;
			s[i].name = s[i].cte->ctename;
		}
		s[i].up = i > 0 ? &s[i - 1] : sc;
		s[i].recursive = with->recursive;
	}
	for (size_t i = 0; i < n; i++)
		s[i].inner = with->recursive ? &s[n - 1] : s[i].up;
	*nodes = s;
	return &s[n - 1];
}

/* ---- pass 1: every table the statement names ---- */

/*
 * Call fn on every message-typed field of m that is set (of a oneof, only
 * the member that is set), in field order, except skip1 and skip2; stop
 * once the walk has stopped (refused or out of memory).
 */
void tables_each_child(walk_t *w, const ProtobufCMessage *m, const void *skip1, const void *skip2,
                       child_fn fn, void *arg)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	const char *base = (const char *)m;

	/*
	 * A Node is a oneof of some 250 message fields: go straight to the one
	 * that is set (a oneof case is its field's number) instead of asking
	 * each. Most messages of a tree are Nodes.
	 */
	if (d == &pg_query__node__descriptor) {
		const ProtobufCMessage *sub = tree_inner((const PgQuery__Node *)m);

		if (sub != NULL && !walk_stopped(w) && (const void *)sub != skip1 &&
		    (const void *)sub != skip2)
			fn(w, sub, arg);
		return;
	}
	for (unsigned i = 0; i < d->n_fields && !walk_stopped(w); i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const ProtobufCMessage *sub;

		if (f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			const ProtobufCMessage *const *arr;
			size_t n;

			memcpy(&n, base + f->quantifier_offset, sizeof n);
			memcpy(&arr, base + f->offset, sizeof arr);
			for (size_t j = 0; j < n && arr != NULL && !walk_stopped(w); j++)
				if (arr[j] != NULL)
					fn(w, arr[j], arg);
			continue;
		}
		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			uint32_t c;

			memcpy(&c, base + f->quantifier_offset, sizeof c);
			if (c != f->id)
				continue;
		}
		memcpy(&sub, base + f->offset, sizeof sub);
		if (sub != NULL && (const void *)sub != skip1 && (const void *)sub != skip2)
			fn(w, sub, arg);
	}
}

static void collect_child(walk_t *w, const ProtobufCMessage *child, void *sc)
{
	tables_collect(w, child, sc);
}

/* Walk every message-typed field of m (set oneof members only). */
static void collect_fields(walk_t *w, const ProtobufCMessage *m, scope_t *sc, const void *skip1,
                           const void *skip2)
{
	tables_each_child(w, m, skip1, skip2, collect_child, sc);
}

/* SELECT, INSERT, UPDATE, DELETE, MERGE: WITH scoping and the write target. */
static void collect_query(walk_t *w, const ProtobufCMessage *m, scope_t *sc)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	const PgQuery__WithClause *with = NULL;
	const PgQuery__RangeVar *target = NULL;
	scope_t *nodes, *body;

	if (d == &pg_query__select_stmt__descriptor) {
		with = ((const PgQuery__SelectStmt *)m)->with_clause;
	} else if (d == &pg_query__insert_stmt__descriptor) {
		with = ((const PgQuery__InsertStmt *)m)->with_clause;
		target = ((const PgQuery__InsertStmt *)m)->relation;
	} else if (d == &pg_query__update_stmt__descriptor) {
		with = ((const PgQuery__UpdateStmt *)m)->with_clause;
		target = ((const PgQuery__UpdateStmt *)m)->relation;
	} else if (d == &pg_query__delete_stmt__descriptor) {
		with = ((const PgQuery__DeleteStmt *)m)->with_clause;
		target = ((const PgQuery__DeleteStmt *)m)->relation;
	} else {
		with = ((const PgQuery__MergeStmt *)m)->with_clause;
		target = ((const PgQuery__MergeStmt *)m)->relation;
	}
	if (d != &pg_query__select_stmt__descriptor)
		w->writes = true;
	if (target != NULL)
		tables_note_rangevar(w, target, NULL, true);
	body = tables_with_open(w, with, sc, &nodes);
	if (nodes != NULL) {
		for (size_t i = 0; i < with->n_ctes; i++)
			if (nodes[i].cte != NULL && nodes[i].cte->ctequery != NULL)
				tables_collect(w, &nodes[i].cte->ctequery->base, nodes[i].inner);
	}
	collect_fields(w, m, body, with, target);
	free(nodes);
}

void tables_collect(walk_t *w, const ProtobufCMessage *m, scope_t *sc)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;

	if (walk_stopped(w))
		return;
	if (++w->depth > MAX_DEPTH) {
		walk_refuse(
		    w,
		    "the statement is nested too deeply for pgshard's router (more than %d levels)",
		    MAX_DEPTH);
		w->depth--;
		return;
	}
	if (d == &pg_query__range_var__descriptor) {
		tables_note_rangevar(w, (const PgQuery__RangeVar *)m, sc, false);
	} else if (d == &pg_query__into_clause__descriptor) {
		const PgQuery__IntoClause *into = (const PgQuery__IntoClause *)m;

		w->writes = true;
		if (into->rel != NULL)
			tables_note_rangevar(w, into->rel, NULL, true);
		collect_fields(w, m, sc, into->rel, NULL);
	} else if (d == &pg_query__copy_stmt__descriptor) {
		const PgQuery__CopyStmt *c = (const PgQuery__CopyStmt *)m;

		if (c->is_from)
			w->writes = true;
		if (c->relation != NULL)
			tables_note_rangevar(w, c->relation, NULL, c->is_from);
		collect_fields(w, m, sc, c->relation, NULL);
	} else if (d == &pg_query__select_stmt__descriptor ||
	           d == &pg_query__insert_stmt__descriptor ||
	           d == &pg_query__update_stmt__descriptor ||
	           d == &pg_query__delete_stmt__descriptor ||
	           d == &pg_query__merge_stmt__descriptor) {
		collect_query(w, m, sc);
	} else {
		collect_fields(w, m, sc, NULL, NULL);
	}
	w->depth--;
}
