/*
 * route_split.c — splitting a multi-row INSERT whose rows go to several
 * shards into one INSERT per shard, holding that shard's rows
 * (route_split_insert, see route.h).
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

#include "router/classify.h"
#include "router/route_int.h"
#include "router/tree.h"
#include "router/tree_int.h"

/* ---- splitting a multi-row INSERT ---- */

static bool has_param(walk_t *w, const ProtobufCMessage *m);

static void param_child(walk_t *w, const ProtobufCMessage *m, void *arg)
{
	*(bool *)arg |= has_param(w, m);
}

static bool has_param(walk_t *w, const ProtobufCMessage *m)
{
	bool found = m->descriptor == &pg_query__param_ref__descriptor;

	if (!found)
		tables_each_child(w, m, NULL, NULL, param_child, &found);
	return found;
}

/* Each row's shard, by the plan's key column; -1 with a message in err. */
static int split_row_shards(const route_ctx_t *ctx, const route_plan_t *plan,
                            const PgQuery__SelectStmt *sel, const route_param_t *params,
                            int n_params, int *shards, char *err, size_t errlen)
{
	walk_t w;

	memset(&w, 0, sizeof w);
	w.ctx = ctx;
	w.cfg = ctx->cfg;
	w.params = params;
	w.n_params = n_params;
	for (int i = 0; i < ctx->cfg->n_maps; i++)
		if (streq(ctx->cfg->maps[i].name, plan->map))
			w.smap = &ctx->maps[i];
	if (w.smap == NULL || plan->key_column < 0)
		return route_error(err, errlen, "the INSERT has no key column to split by");
	for (size_t r = 0; r < sel->n_values_lists; r++) {
		const PgQuery__Node *row = sel->values_lists[r];
		keyval_t kv;

		shards[r] = -1;
		if (row != NULL && row->node_case == PG_QUERY__NODE__NODE_LIST &&
		    (size_t)plan->key_column < row->list->n_items &&
		    keys_value(&w, row->list->items[plan->key_column], 0, &kv) == KV_OK)
			shards[r] = shard_map_lookup(w.smap, &kv.key);
		if (shards[r] < 0)
			return route_error(err, errlen, "row %zu of the INSERT has no shard",
			                   r + 1);
	}
	return 0;
}

/*
 * Parameters of one shard's INSERT, numbered again from $1 in the order
 * they appear: slot[k] is the node of the k-th ParamRef met (to put its
 * number back), map[m] the caller's number of the shard's $m+1.
 */
typedef struct renumber {
	PgQuery__ParamRef **slot;
	int *was;
	int n, cap;
	int *map;
	int n_map;
	bool nomem;
} renumber_t;

static void renumber_child(walk_t *w, const ProtobufCMessage *m, void *arg);

static void renumber_walk(walk_t *w, const ProtobufCMessage *m, renumber_t *r)
{
	if (m->descriptor == &pg_query__param_ref__descriptor) {
		PgQuery__ParamRef *p = (PgQuery__ParamRef *)m;
		int m_new = -1;

		if (r->n == r->cap) {
			int cap = r->cap > 0 ? 2 * r->cap : 16;
			PgQuery__ParamRef **slot = realloc(r->slot, sizeof *slot * (size_t)cap);
			int *was = slot != NULL ? realloc(r->was, sizeof *was * (size_t)cap) : NULL;
			int *map = was != NULL ? realloc(r->map, sizeof *map * (size_t)cap) : NULL;

			if (slot != NULL)
				r->slot = slot;
			if (was != NULL)
				r->was = was;
			if (map == NULL) {
				r->nomem = true;
				return;
			}
			r->map = map;
			r->cap = cap;
		}
		for (int k = 0; k < r->n_map; k++)
			if (r->map[k] == p->number)
				m_new = k;
		if (m_new < 0) {
			m_new = r->n_map;
			r->map[r->n_map++] = p->number;
		}
		r->slot[r->n] = p;
		r->was[r->n++] = p->number;
		p->number = m_new + 1;
		return;
	}
	tables_each_child(w, m, NULL, NULL, renumber_child, r);
}

static void renumber_child(walk_t *w, const ProtobufCMessage *m, void *arg)
{
	renumber_walk(w, m, arg);
}

/* The numbers back as the client wrote them, for the next shard's INSERT. */
static void renumber_undo(renumber_t *r)
{
	for (int k = 0; k < r->n; k++)
		r->slot[k]->number = r->was[k];
	free(r->slot);
	free(r->was);
	memset(r, 0, sizeof *r); /* map: the caller took it first */
}

int route_split_insert(const route_ctx_t *ctx, const char *sql, route_split_t **out, int *n_out,
                       char *err, size_t errlen)
{
	return route_split_insert_params(ctx, sql, NULL, 0, out, n_out, err, errlen);
}

int route_split_insert_params(const route_ctx_t *ctx, const char *sql, const route_param_t *params,
                              int n_params, route_split_t **out, int *n_out, char *err,
                              size_t errlen)
{
	PgQuery__SelectStmt *sel = NULL;
	PgQuery__Node **all = NULL, **mine = NULL;
	route_parsed_t *p;
	route_split_t *splits = NULL;
	route_plan_t plan;
	size_t n_rows = 0;
	int *shards = NULL, n = 0, rc = -1;
	bool has_params = false, returning;
	walk_t w;

	*out = NULL;
	*n_out = 0;
	if (errlen > 0)
		err[0] = '\0';
	p = route_parse(sql);
	if (p == NULL)
		return route_error(err, errlen, "out of memory");
	if (p->status == PARSED_TREE && p->tree->n_stmts == 1 && p->tree->stmts[0]->stmt != NULL &&
	    p->tree->stmts[0]->stmt->node_case == PG_QUERY__NODE__NODE_INSERT_STMT) {
		PgQuery__Node *s = p->tree->stmts[0]->stmt->insert_stmt->select_stmt;

		if (s != NULL && s->node_case == PG_QUERY__NODE__NODE_SELECT_STMT &&
		    s->select_stmt->n_values_lists > 1)
			sel = s->select_stmt;
	}
	if (sel == NULL) {
		route_error(err, errlen, "only a multi-row INSERT ... VALUES can be split by rows");
		goto out;
	}
	memset(&w, 0, sizeof w);
	w.ctx = ctx;
	w.cfg = ctx->cfg;
	has_params = has_param(&w, &p->tree->stmts[0]->stmt->base);
	if (has_params && params == NULL) {
		route_error(err, errlen,
		            "a multi-row INSERT with parameters whose rows go to several shards "
		            "cannot be split without their values");
		goto out;
	}
	if (route_analyze(ctx, p, params, n_params, NULL, &plan) < 0) {
		route_error(err, errlen, "out of memory");
		goto out;
	}
	if (plan.kind == ROUTE_REFUSE) {
		route_error(err, errlen, "%s", plan.error);
		goto out;
	}
	if (!plan.split_insert) {
		route_error(err, errlen, "the rows of this INSERT do not go to several shards");
		goto out;
	}
	returning = p->tree->stmts[0]->stmt->insert_stmt->n_returning_list > 0;
	n_rows = sel->n_values_lists;
	shards = malloc(sizeof *shards * n_rows);
	mine = malloc(sizeof *mine * n_rows);
	splits = calloc((size_t)shard_set_count(&plan.shards), sizeof *splits);
	if (shards == NULL || mine == NULL || splits == NULL) {
		route_error(err, errlen, "out of memory");
		goto out;
	}
	if (split_row_shards(ctx, &plan, sel, params, n_params, shards, err, errlen) < 0)
		goto out;
	/* the tree is this call's own: lend it each shard's rows in turn */
	all = sel->values_lists;
	for (int s = 0; s < SHARD_MAX; s++) {
		renumber_t r;
		size_t k = 0;

		for (size_t row = 0; row < n_rows; row++)
			if (shards[row] == s)
				mine[k++] = all[row];
		if (k == 0)
			continue;
		if (n == shard_set_count(&plan.shards)) {
			route_error(err, errlen, "the rows of the INSERT go to unplanned shards");
			goto out;
		}
		if (returning) { /* where each of its rows was, for the RETURNING rows' order */
			splits[n].rows = malloc(sizeof *splits[n].rows * k);
			if (splits[n].rows == NULL) {
				route_error(err, errlen, "out of memory");
				goto out;
			}
			splits[n].n_rows = 0;
			for (size_t row = 0; row < n_rows; row++)
				if (shards[row] == s)
					splits[n].rows[splits[n].n_rows++] = row;
		}
		sel->values_lists = mine;
		sel->n_values_lists = k;
		memset(&r, 0, sizeof r);
		if (has_params)
			renumber_walk(&w, &p->tree->stmts[0]->stmt->base, &r);
		if (!r.nomem)
			splits[n].sql =
			    tree_deparse(p->tree, "the INSERT of one shard", err, errlen);
		else
			route_error(err, errlen, "out of memory");
		splits[n].param_map = r.map;
		splits[n].n_params = r.n_map;
		renumber_undo(&r);
		sel->values_lists = all;
		sel->n_values_lists = n_rows;
		if (splits[n].sql == NULL) {
			free(splits[n].param_map);
			free(splits[n].rows);
			splits[n].param_map = NULL;
			splits[n].rows = NULL;
			goto out;
		}
		splits[n++].shard = s;
	}
	*out = splits;
	*n_out = n;
	splits = NULL;
	rc = 0;
out:
	if (all != NULL) {
		sel->values_lists = all;
		sel->n_values_lists = n_rows;
	}
	route_splits_free(splits, n);
	free(shards);
	free(mine);
	route_parsed_free(p);
	return rc;
}

void route_splits_free(route_split_t *s, int n)
{
	if (s == NULL)
		return;
	for (int i = 0; i < n; i++) {
		free(s[i].sql);
		free(s[i].param_map);
		free(s[i].rows);
	}
	free(s);
}

/* ---- the statements of a query string ---- */

int route_batch_statements(const char *sql, char ***out, int *n_out, bool *own_begin, char *err,
                           size_t errlen)
{
	route_parsed_t *p = route_parse(sql);
	size_t len = strlen(sql);
	char **v = NULL;
	int n = 0;

	*out = NULL;
	*n_out = 0;
	*own_begin = false;
	if (p == NULL || p->status != PARSED_TREE || p->tree->n_stmts < 2) {
		route_parsed_free(p);
		return route_error(err, errlen, "not a string of several statements");
	}
	v = calloc(p->tree->n_stmts, sizeof *v);
	for (size_t i = 0; v != NULL && i < p->tree->n_stmts; i++) {
		const PgQuery__RawStmt *r = p->tree->stmts[i];
		size_t at = r->stmt_location >= 0 ? (size_t)r->stmt_location : 0;
		size_t l = r->stmt_len > 0 ? (size_t)r->stmt_len : len - (at < len ? at : len);

		if (at > len || l > len - at || (v[n] = strndup(sql + at, l)) == NULL) {
			for (int k = 0; k < n; k++)
				free(v[k]);
			free(v);
			v = NULL;
			break;
		}
		n++;
	}
	if (v != NULL && p->tree->stmts[0]->stmt != NULL &&
	    p->tree->stmts[0]->stmt->node_case == PG_QUERY__NODE__NODE_TRANSACTION_STMT) {
		PgQuery__TransactionStmtKind k = p->tree->stmts[0]->stmt->transaction_stmt->kind;

		*own_begin = k == PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_BEGIN ||
		             k == PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_START;
	}
	route_parsed_free(p);
	if (v == NULL)
		return route_error(err, errlen, "out of memory");
	*out = v;
	*n_out = n;
	return 0;
}

/* ---- an INSERT without a column list ---- */

/* The single INSERT ... VALUES of sql without a column list, in p's tree, or NULL. */
static PgQuery__InsertStmt *bare_insert(route_parsed_t *p)
{
	PgQuery__InsertStmt *ins;

	if (p->status != PARSED_TREE || p->tree->n_stmts != 1 || p->tree->stmts[0]->stmt == NULL ||
	    p->tree->stmts[0]->stmt->node_case != PG_QUERY__NODE__NODE_INSERT_STMT)
		return NULL;
	ins = p->tree->stmts[0]->stmt->insert_stmt;
	if (ins->relation == NULL || ins->n_cols > 0 || ins->select_stmt == NULL ||
	    ins->select_stmt->node_case != PG_QUERY__NODE__NODE_SELECT_STMT ||
	    ins->select_stmt->select_stmt->n_values_lists == 0)
		return NULL;
	return ins;
}

int route_insert_columns_query(const char *sql, char **query, char **table, char *err,
                               size_t errlen)
{
	route_parsed_t *p = route_parse(sql);
	PgQuery__InsertStmt *ins = p != NULL ? bare_insert(p) : NULL;
	int rc = -1;

	*query = *table = NULL;
	if (ins == NULL) {
		route_error(err, errlen, "not an INSERT ... VALUES without a column list");
		goto out;
	}
	*table = route_quote_relation(ins->relation->schemaname, ins->relation->relname);
	*query = *table != NULL ? route_columns_sql(*table, false, false, false) : NULL;
	if (*query == NULL) {
		free(*table);
		*table = NULL;
		route_error(err, errlen, "out of memory");
		goto out;
	}
	rc = 0;
out:
	route_parsed_free(p);
	return rc;
}

int route_insert_columns(const char *sql, char *const *columns, int n_columns, char **out,
                         char *err, size_t errlen)
{
	route_parsed_t *p = route_parse(sql);
	PgQuery__InsertStmt *ins = p != NULL ? bare_insert(p) : NULL;
	size_t width;
	tree_t t;
	int rc = -1;

	*out = NULL;
	if (ins == NULL) {
		route_parsed_free(p);
		return route_error(err, errlen, "not an INSERT ... VALUES without a column list");
	}
	/* the longest row: PostgreSQL answers rows of different lengths itself */
	width = 0;
	for (size_t r = 0; r < ins->select_stmt->select_stmt->n_values_lists; r++) {
		const PgQuery__Node *row = ins->select_stmt->select_stmt->values_lists[r];

		if (row->node_case == PG_QUERY__NODE__NODE_LIST && row->list->n_items > width)
			width = row->list->n_items;
	}
	if (width > (size_t)n_columns || width == 0) {
		route_parsed_free(p);
		return route_error(err, errlen, "INSERT has more expressions than target columns");
	}
	tree_init(&t);
	ins->cols = tree_list(&t, width);
	for (size_t i = 0; ins->cols != NULL && i < width; i++)
		ins->cols[i] = tree_res_target(&t, columns[i], tree_string(&t, "unused"));
	if (ins->cols != NULL && !tree_stopped(&t)) {
		/* a column of the list: a ResTarget with a name and no value */
		for (size_t i = 0; i < width; i++)
			ins->cols[i]->res_target->val = NULL;
		ins->n_cols = width;
		*out = tree_deparse(p->tree, "the INSERT with its columns", err, errlen);
		rc = *out != NULL ? 0 : -1;
		ins->n_cols = 0; /* the arena goes before the tree */
		ins->cols = NULL;
	} else {
		route_error(err, errlen, "out of memory");
	}
	tree_free(&t);
	route_parsed_free(p);
	return rc;
}

const char *route_kind_name(route_kind_t k)
{
	switch (k) {
	case ROUTE_DEFAULT:
		return "default";
	case ROUTE_SHARDS:
		return "shards";
	case ROUTE_ANY:
		return "any";
	case ROUTE_ALL:
		return "all";
	case ROUTE_REFUSE:
		return "refuse";
	}
	return "unknown";
}
