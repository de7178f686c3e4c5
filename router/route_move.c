/*
 * route_move.c — the statements that move rows for an UPDATE of the shard
 * key (route_move_prepare, see route.h; the proxy runs them in
 * proxy/move.c).
 *
 * The UPDATE itself runs where its rows are, unchanged but for four hidden
 * columns after its RETURNING list: so PostgreSQL computes the new rows
 * with all of UPDATE's semantics (assignment casts, DEFAULT, subqueries,
 * triggers, constraints), and the proxy learns, per row, where it now
 * belongs (its key as text) and how to find it again (tableoid and ctid,
 * valid in the transaction that updated it). A row that belongs elsewhere
 * is deleted by tableoid and ctid and inserted on its shard from its text
 * form (ROW(t.*)), read back with the table's own row type, so that every
 * column goes through its type's output and input functions unchanged.
 */
#include "router/route.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/classify.h"
#include "router/route_int.h"
#include "router/tree.h"

/* name as a quoted identifier, appended to out (cut when memory runs out). */
static void put_ident(sb_t *out, const char *name)
{
	char *q = route_quote_relation(NULL, name);

	if (q == NULL)
		out->cut = true;
	else
		sb_printf(out, "%s", q);
	free(q);
}

/* The built text, or NULL when it did not fit (or memory ran out). */
static char *dup_sb(sb_t *s)
{
	return s->cut ? NULL : strdup(s->buf);
}

/* The UPDATE's RETURNING list with the hidden columns after it, in t's arena. */
static PgQuery__Node **hidden_returning(tree_t *t, const PgQuery__UpdateStmt *u, const char *key)
{
	const char *ref =
	    u->relation->alias != NULL ? u->relation->alias->aliasname : u->relation->relname;
	char qref[2 * NAME_MAX_LEN + 3], qkey[2 * NAME_MAX_LEN + 3];
	PgQuery__Node **list = tree_list(t, u->n_returning_list + ROUTE_MOVE_HIDDEN);
	PgQuery__Node *hidden[ROUTE_MOVE_HIDDEN];
	sb_t s;

	if (list == NULL)
		return NULL;
	sb_init(&s, qref, sizeof qref);
	put_ident(&s, ref);
	sb_finish(&s);
	sb_init(&s, qkey, sizeof qkey);
	put_ident(&s, key);
	sb_finish(&s);
	/* all text: the same bytes in a text or binary result (a Bind may ask either) */
	hidden[0] = tree_expr(t, "(%s.tableoid)::pg_catalog.text", qref);
	hidden[1] = tree_expr(t, "(%s.ctid)::pg_catalog.text", qref);
	hidden[2] = tree_expr(t, "(%s.%s)::pg_catalog.text", qref, qkey);
	hidden[3] = tree_expr(t, "(ROW(%s.*))::pg_catalog.text", qref);
	if (u->n_returning_list > 0)
		memcpy(list, u->returning_list, u->n_returning_list * sizeof *list);
	for (int i = 0; i < ROUTE_MOVE_HIDDEN; i++) {
		list[u->n_returning_list + (size_t)i] = tree_res_target(t, NULL, hidden[i]);
		if (list[u->n_returning_list + (size_t)i] == NULL)
			return NULL;
	}
	return list;
}

static int make_statements(route_move_t *m, const PgQuery__RangeVar *rel, char *err, size_t errlen)
{
	char buf[4 * NAME_MAX_LEN + 600];
	sb_t s;

	m->relation = route_quote_relation(rel->schemaname, rel->relname);
	if (m->relation == NULL)
		return route_error(err, errlen, "out of memory");
	sb_init(&s, buf, sizeof buf);
	sb_printf(&s,
	          "DELETE FROM %s WHERE tableoid OPERATOR(pg_catalog.=) $1::pg_catalog.oid AND "
	          "ctid OPERATOR(pg_catalog.=) $2::pg_catalog.tid",
	          m->relation);
	if ((m->delete_sql = dup_sb(&s)) == NULL ||
	    (m->columns_sql = route_columns_sql(m->relation, false, true, true)) == NULL)
		return route_error(err, errlen, "out of memory");
	return 0;
}

int route_move_prepare(const route_ctx_t *ctx, const char *sql, route_move_t *out, char *err,
                       size_t errlen)
{
	PgQuery__UpdateStmt *u = NULL;
	PgQuery__Node **saved;
	const cfg_table_t *table;
	route_parsed_t *p;
	size_t n_saved;
	tree_t t;
	int ti, rc = -1;

	memset(out, 0, sizeof *out);
	out->map = -1;
	if (errlen > 0)
		err[0] = '\0';
	p = route_parse(sql);
	if (p == NULL)
		return route_error(err, errlen, "out of memory");
	if (p->status == PARSED_TREE && p->tree->n_stmts == 1 && p->tree->stmts[0]->stmt != NULL &&
	    p->tree->stmts[0]->stmt->node_case == PG_QUERY__NODE__NODE_UPDATE_STMT)
		u = p->tree->stmts[0]->stmt->update_stmt;
	if (u == NULL || u->relation == NULL) {
		route_parsed_free(p);
		return route_error(err, errlen, "only an UPDATE can move rows");
	}
	ti = tables_find(ctx->cfg, u->relation->catalogname, u->relation->schemaname,
	                 u->relation->relname);
	table = ti >= 0 ? &ctx->cfg->tables[ti] : NULL;
	if (table == NULL || table->reference || table->key == NULL || table->map < 0) {
		route_parsed_free(p);
		return route_error(err, errlen, "the UPDATE's table is not a sharded table");
	}
	out->map = table->map;
	tree_init(&t);
	saved = u->returning_list;
	n_saved = u->n_returning_list;
	u->returning_list = hidden_returning(&t, u, table->key);
	if (u->returning_list != NULL) {
		u->n_returning_list = n_saved + ROUTE_MOVE_HIDDEN;
		out->update_sql = tree_deparse(p->tree, "the UPDATE that moves rows", err, errlen);
	} else {
		route_error(err, errlen, "out of memory");
	}
	u->returning_list = saved;
	u->n_returning_list = n_saved;
	tree_free(&t);
	if (out->update_sql != NULL)
		rc = make_statements(out, u->relation, err, errlen);
	route_parsed_free(p);
	if (rc < 0)
		route_move_free(out);
	return rc;
}

char *route_move_insert_sql(const route_move_t *m, char *const *columns, int n)
{
	size_t cap = 3 * strlen(m->relation) + 200;
	char *buf, *sql;
	sb_t s, list;

	for (int i = 0; i < n; i++)
		cap += 2 * (2 * strlen(columns[i]) + 4);
	if ((buf = malloc(cap)) == NULL)
		return NULL;
	if (n == 0) {
		snprintf(buf, cap, "INSERT INTO %s DEFAULT VALUES", m->relation);
		return buf;
	}
	/* the column list, written once and used twice */
	sql = malloc(cap);
	if (sql == NULL) {
		free(buf);
		return NULL;
	}
	sb_init(&list, sql, cap);
	for (int i = 0; i < n; i++) {
		if (i > 0)
			sb_printf(&list, ", ");
		put_ident(&list, columns[i]);
	}
	sb_init(&s, buf, cap);
	sb_printf(&s,
	          "INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM (SELECT ($1::%s).*) "
	          "AS pgshard_row",
	          m->relation, sql, sql, m->relation);
	free(sql);
	if (s.cut || list.cut) {
		free(buf);
		return NULL;
	}
	return buf;
}

void route_move_free(route_move_t *m)
{
	free(m->update_sql);
	free(m->columns_sql);
	free(m->delete_sql);
	free(m->relation);
	memset(m, 0, sizeof *m);
	m->map = -1;
}
