/*
 * route_insel.c — the statements of an INSERT ... SELECT into a sharded
 * table whose rows may belong to other shards than the ones its SELECT
 * reads (plan.insert_select, ROUTE_STEP_INSERT_SELECT; planned in
 * route_plan.c): route_insel_prepare, see route.h; the proxy runs them in
 * proxy/move.c.
 *
 * The SELECT runs as a subquery that also returns the key's value cast to
 * the map's key type, as text: PostgreSQL computes it, so a numeric 5.7 for
 * a bigint key is the 6 the INSERT would store, a char(n) for a text key
 * loses its padding as the assignment would. Each row is then inserted on
 * the shard of that key by the INSERT itself, its SELECT replaced by
 * VALUES of parameters typed as the SELECT's columns: PostgreSQL applies
 * the assignment casts, defaults, ON CONFLICT, triggers and constraints of
 * the original statement.
 */
#include "router/route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/classify.h"
#include "router/route_int.h"
#include "router/tree.h"

/* ---- the statements ---- */

/* How PostgreSQL reads the i-th value of the SELECT: as the column's type, or as its own. */
static int column_kind(const PgQuery__SelectStmt *sel, size_t i)
{
	const PgQuery__Node *v;

	if (sel->op != PG_QUERY__SET_OPERATION__SETOP_NONE &&
	    sel->op != PG_QUERY__SET_OPERATION__SET_OPERATION_UNDEFINED)
		return ROUTE_INSEL_TYPED; /* UNION and the like resolve unknowns to text */
	if (i >= sel->n_target_list ||
	    sel->target_list[i]->node_case != PG_QUERY__NODE__NODE_RES_TARGET)
		return ROUTE_INSEL_TYPED;
	v = sel->target_list[i]->res_target->val;
	if (v == NULL)
		return ROUTE_INSEL_TYPED;
	if (v->node_case == PG_QUERY__NODE__NODE_PARAM_REF)
		return v->param_ref->number > 0 ? v->param_ref->number : ROUTE_INSEL_TYPED;
	if (v->node_case == PG_QUERY__NODE__NODE_A_CONST &&
	    (v->a_const->isnull || v->a_const->val_case == PG_QUERY__A__CONST__VAL_SVAL))
		return ROUTE_INSEL_UNKNOWN;
	return ROUTE_INSEL_TYPED;
}

static const char *key_type_sql(cfg_key_type_t k)
{
	switch (k) {
	case CFG_KEY_BIGINT:
		return "pg_catalog.int8";
	case CFG_KEY_TEXT:
		return "pg_catalog.text";
	case CFG_KEY_UUID:
		return "pg_catalog.uuid";
	}
	return "pg_catalog.text";
}

/* The SELECT as a subquery, with every column and the key's text after them. */
static int make_select(route_insel_t *m, tree_t *t, PgQuery__SelectStmt *sel, int k,
                       cfg_key_type_t type, char *err, size_t errlen)
{
	char *inner = tree_deparse_select(t, sel, "the SELECT of the INSERT");
	size_t cap;
	sb_t s;

	if (inner == NULL)
		return route_error(err, errlen, "%s", t->nomem ? "out of memory" : t->err);
	cap = strlen(inner) + 200 + (size_t)(k + 1) * 16;
	m->select_sql = malloc(cap);
	if (m->select_sql == NULL) {
		free(inner);
		return route_error(err, errlen, "out of memory");
	}
	sb_init(&s, m->select_sql, cap);
	if (k < 0) /* no key: the rows' shards are the table's */
		sb_printf(&s, "SELECT pgshard_s.*, NULL::pg_catalog.text FROM (%s) AS pgshard_s",
		          inner);
	else
		sb_printf(
		    &s,
		    "SELECT pgshard_s.*, (pgshard_s.pgshard_%d)::%s::pg_catalog.text FROM (%s) "
		    "AS pgshard_s(",
		    k + 1, key_type_sql(type), inner);
	for (int i = 1; i <= k + 1; i++)
		sb_printf(&s, "%spgshard_%d%s", i > 1 ? ", " : "", i, i == k + 1 ? ")" : "");
	sb_finish(&s);
	free(inner);
	return s.cut ? route_error(err, errlen, "out of memory") : 0;
}

/* "VALUES ($first, ..., $first+n-1)" without the VALUES, appended to s. */
static void put_row(sb_t *s, int first, int n)
{
	sb_printf(s, "(");
	for (int i = 0; i < n; i++)
		sb_printf(s, "%s$%d", i > 0 ? ", " : "", first + i);
	sb_printf(s, ")");
}

/* The INSERT with VALUES of one row of parameters, cut around that row. */
static int make_insert(route_insel_t *m, tree_t *t, route_parsed_t *p, PgQuery__InsertStmt *ins,
                       char *err, size_t errlen)
{
	size_t cap = 32 + (size_t)m->n_columns * 16;
	char *values = malloc(cap), *sql = NULL, *at;
	PgQuery__ParseResult *v;
	sb_t s;
	int rc = -1;

	if (values == NULL)
		return route_error(err, errlen, "out of memory");
	sb_init(&s, values, cap);
	sb_printf(&s, "VALUES ");
	put_row(&s, 1, m->n_columns);
	sb_finish(&s);
	v = tree_parse(t, values);
	if (v == NULL || v->n_stmts != 1 || v->stmts[0]->stmt == NULL) {
		route_error(err, errlen, "%s",
		            t->nomem ? "out of memory" : "cannot write the VALUES");
		goto out;
	}
	ins->select_stmt = v->stmts[0]->stmt;
	ins->with_clause = NULL; /* the SELECT's */
	sql = tree_deparse(p->tree, "the INSERT of the rows", err, errlen);
	if (sql == NULL)
		goto out;
	/* no other $n in it (insel_unsupported): the row is there once */
	at = strstr(sql, values);
	if (at == NULL || strstr(at + 1, values) != NULL) {
		route_error(err, errlen, "cannot find the rows in the INSERT written: %s", sql);
		goto out;
	}
	m->head = strndup(sql, (size_t)(at - sql));
	m->tail = strdup(at + strlen(values));
	rc = m->head != NULL && m->tail != NULL ? 0 : route_error(err, errlen, "out of memory");
out:
	free(values);
	free(sql);
	return rc;
}

int route_insel_prepare(const route_ctx_t *ctx, const char *sql, route_insel_t *out, char *err,
                        size_t errlen)
{
	PgQuery__InsertStmt *ins = NULL;
	PgQuery__SelectStmt *sel = NULL;
	PgQuery__Node *saved_sel;
	PgQuery__WithClause *saved_with, *sel_with;
	const cfg_table_t *table;
	route_parsed_t *p;
	bool indirect;
	tree_t t;
	int ti, k, rc = -1;

	memset(out, 0, sizeof *out);
	out->map = -1;
	if (errlen > 0)
		err[0] = '\0';
	p = route_parse(sql);
	if (p == NULL)
		return route_error(err, errlen, "out of memory");
	if (p->status == PARSED_TREE && p->tree->n_stmts == 1 && p->tree->stmts[0]->stmt != NULL &&
	    p->tree->stmts[0]->stmt->node_case == PG_QUERY__NODE__NODE_INSERT_STMT)
		ins = p->tree->stmts[0]->stmt->insert_stmt;
	if (ins != NULL && ins->relation != NULL && ins->n_cols > 0 && ins->select_stmt != NULL &&
	    ins->select_stmt->node_case == PG_QUERY__NODE__NODE_SELECT_STMT)
		sel = ins->select_stmt->select_stmt;
	ti = sel != NULL ? tables_find(ctx->cfg, ins->relation->catalogname,
	                               ins->relation->schemaname, ins->relation->relname)
	                 : -1;
	table = ti >= 0 ? &ctx->cfg->tables[ti] : NULL;
	if (sel == NULL ||
	    (table != NULL && !table->reference && (table->key == NULL || table->map < 0))) {
		route_parsed_free(p);
		return route_error(err, errlen, "not an INSERT ... SELECT with a column list");
	}
	k = -1; /* a table that is not sharded: no key */
	if (table != NULL && !table->reference) {
		k = an_column_pos(ins->cols, ins->n_cols, table->key, &indirect);
		if (k < 0 || indirect) {
			route_parsed_free(p);
			return route_error(err, errlen, "the INSERT does not name its key column");
		}
		out->map = table->map;
	}
	out->n_columns = (int)ins->n_cols;
	out->unknown = calloc(ins->n_cols, sizeof *out->unknown);
	if (out->unknown == NULL) {
		route_parsed_free(p);
		return route_error(err, errlen, "out of memory");
	}
	for (size_t i = 0; i < ins->n_cols; i++)
		out->unknown[i] = column_kind(sel, i);
	tree_init(&t);
	saved_sel = ins->select_stmt;
	saved_with = ins->with_clause;
	sel_with = sel->with_clause;
	if (sel->with_clause == NULL)
		sel->with_clause = ins->with_clause;
	rc = make_select(out, &t, sel, k, k >= 0 ? ctx->cfg->maps[table->map].key : CFG_KEY_TEXT,
	                 err, errlen);
	sel->with_clause = sel_with;
	if (rc == 0)
		rc = make_insert(out, &t, p, ins, err, errlen);
	ins->select_stmt = saved_sel; /* the arena goes before the tree */
	ins->with_clause = saved_with;
	tree_free(&t);
	route_parsed_free(p);
	if (rc < 0)
		route_insel_free(out);
	return rc;
}

char *route_insel_insert_sql(const route_insel_t *m, int rows)
{
	size_t cap =
	    strlen(m->head) + strlen(m->tail) + 16 + (size_t)rows * ((size_t)m->n_columns * 10 + 4);
	char *buf = malloc(cap);
	sb_t s;

	if (buf == NULL)
		return NULL;
	sb_init(&s, buf, cap);
	sb_printf(&s, "%sVALUES ", m->head);
	for (int r = 0; r < rows; r++) {
		if (r > 0)
			sb_printf(&s, ", ");
		put_row(&s, 1 + r * m->n_columns, m->n_columns);
	}
	sb_printf(&s, "%s", m->tail);
	sb_finish(&s);
	if (s.cut) {
		free(buf);
		return NULL;
	}
	return buf;
}

void route_insel_free(route_insel_t *m)
{
	free(m->select_sql);
	free(m->head);
	free(m->tail);
	free(m->unknown);
	memset(m, 0, sizeof *m);
	m->map = -1;
}
