/*
 * gather.c — the gather planner: how a SELECT on several shards runs, and
 * what the proxy does with the shards' rows (see gather.h).
 *
 * The statement is parsed with libpg_query into a protobuf tree held in an
 * arena (every node, the parser's and ours, lives there until the plan is
 * written), rewritten in place, and written back to SQL with
 * pg_query_deparse_protobuf. Two rewrites:
 *
 * Streaming (no aggregates, GROUP BY, HAVING or DISTINCT): the shards sort
 * by the statement's own ORDER BY, and the proxy merges the sorted streams.
 * It compares the values of the sort keys, so each key must be a column of
 * the shard's row: the select-list column it names (by position, output
 * name, or the same expression), or a hidden column appended for it. A key
 * is matched to a select-list column only when no `*` comes before that
 * column, since the width of `*` is not known here. LIMIT n OFFSET m
 * becomes LIMIT n + m on each shard: the first n + m rows of the merge are
 * among the first n + m of some shard.
 *
 * Finalizing (aggregates, GROUP BY, HAVING, DISTINCT): each shard groups
 * its own rows by the statement's groups and computes partial aggregates;
 * the proxy runs a final query over the partial rows of all shards, on one
 * shard. The final query is the statement itself, rewritten so that every
 * group expression reads its shipped column and every aggregate combines
 * its partials; everything else in it (expressions over aggregates,
 * HAVING, ORDER BY, DISTINCT, LIMIT) stays PostgreSQL's own work, which is
 * why the answer has PostgreSQL's types, scales, names and order. An
 * aggregate only combines that way when it is decomposable: count and sum
 * add up, min/max/bool_and/bool_or/bit_* of partials are those of the
 * whole, avg is the sum of sums over the sum of counts. An aggregate with
 * DISTINCT combines another way: its arguments become grouping columns of
 * the shards, so that each distinct value reaches the final query, which
 * applies the aggregate itself.
 *
 * The final query is handed to the proxy as parts: the held rows, and the
 * type names of held columns (known only from the shards' RowDescription),
 * are placeholders in the deparsed text. The placeholders are identifiers
 * starting with "pgshard_", which the statement itself may not use.
 *
 * This file writes the plan and is the planner's interface. The streaming
 * rewrite, with what both rewrites use (the planning call's state, nodes,
 * parameter values, what no gather plan takes), is gather_stream.c; the
 * finalizing rewrite is gather_final.c, which uses gather_stream.c. Their
 * shared declarations are in gather_int.h.
 *
 * What is not the gather plan's own is elsewhere: the arena and the tree
 * helpers (making, copying, walking, deparsing) in tree.c, and the names
 * PostgreSQL gives output columns in colname.c.
 */
#include "router/gather.h"

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/classify.h"
#include "router/colname.h"
#include "router/gather_int.h"
#include "router/shardmap.h"
#include "router/tree.h"
#include "router/tree_int.h"

/* ---- parameters the shard query no longer reads ---- */

typedef struct params_seen {
	uint8_t *bits;
} params_seen_t;

static void param_slot(tree_t *t, PgQuery__Node **slot, void *arg)
{
	params_seen_t *ps = arg;
	const PgQuery__Node *n = *slot;

	if (n->node_case == NODE(PARAM_REF)) {
		int k = n->param_ref->number;

		if (k >= 1 && k <= MAX_PARAM)
			ps->bits[k / 8] |= (uint8_t)(1u << (k % 8));
		return;
	}
	tree_each_slot(t, tree_inner(n), param_slot, arg);
}

static uint8_t *params_of(gather_t *g, PgQuery__SelectStmt *s)
{
	params_seen_t ps = {tree_alloc(&g->t, MAX_PARAM / 8 + 1)};

	if (ps.bits != NULL)
		tree_each_slot(&g->t, &s->base, param_slot, &ps);
	return ps.bits;
}

/*
 * The client binds its parameters to the shard query as it bound them to
 * the statement, and PostgreSQL refuses a parameter whose type it cannot
 * infer: a LIMIT/OFFSET parameter the rewrite took out (the proxy has its
 * value) stays in the shard's WHERE, read as LIMIT reads it, to no effect.
 */
static bool keep_params(gather_t *g, const uint8_t *before, PgQuery__SelectStmt *sh)
{
	const uint8_t *after = params_of(g, sh);

	if (before == NULL || after == NULL)
		return false;
	for (int k = 1; k <= MAX_PARAM; k++) {
		PgQuery__Node *keep;

		if (!(before[k / 8] & (1u << (k % 8))) || (after[k / 8] & (1u << (k % 8))))
			continue;
		keep = tree_expr(&g->t, "($%d::bigint IS NULL OR true)", k);
		if (keep == NULL ||
		    (sh->where_clause = tree_and(&g->t, sh->where_clause, keep)) == NULL)
			return false;
	}
	return true;
}

/* ---- writing the plan ---- */

static bool add_part(gather_plan_t *p, gather_part_kind_t kind, const char *text, size_t len,
                     int column)
{
	gather_part_t *parts = realloc(p->parts, (size_t)(p->n_parts + 1) * sizeof *parts);

	if (parts == NULL)
		return false;
	p->parts = parts;
	parts[p->n_parts].kind = kind;
	parts[p->n_parts].column = column;
	parts[p->n_parts].text = NULL;
	if (text != NULL) {
		parts[p->n_parts].text = malloc(len + 1);
		if (parts[p->n_parts].text == NULL)
			return false;
		memcpy(parts[p->n_parts].text, text, len);
		parts[p->n_parts].text[len] = '\0';
	}
	p->n_parts++;
	return true;
}

/* Cut the final query's text at its placeholders. */
static bool split_parts(const char *sql, gather_plan_t *p)
{
	static const char rows[] = ROWS_REL " " ROWS_ALIAS;
	const char *text = sql, *at = sql;

	while ((at = strstr(at, RESERVED)) != NULL) {
		gather_part_kind_t kind;
		const char *mark, *end;
		int column = 0;

		if (strncmp(at, rows, sizeof rows - 1) == 0) {
			kind = GATHER_PART_ROWS;
			end = at + sizeof rows - 1;
		} else if (strncmp(at, TYPE_MARK, sizeof TYPE_MARK - 1) == 0 ||
		           strncmp(at, AVG_MARK, sizeof AVG_MARK - 1) == 0) {
			kind = at[8] == 't' ? GATHER_PART_TYPE : GATHER_PART_AVG;
			mark = at +
			       (kind == GATHER_PART_TYPE ? sizeof TYPE_MARK : sizeof AVG_MARK) - 1;
			for (end = mark; *end >= '0' && *end <= '9'; end++)
				column = column * 10 + (*end - '0');
		} else {
			at += sizeof RESERVED - 1;
			continue;
		}
		if ((at > text && !add_part(p, GATHER_PART_TEXT, text, (size_t)(at - text), 0)) ||
		    !add_part(p, kind, kind == GATHER_PART_ROWS ? ROWS_ALIAS : NULL,
		              kind == GATHER_PART_ROWS ? sizeof ROWS_ALIAS - 1 : 0, column))
			return false;
		text = at = end;
	}
	return *text == '\0' || add_part(p, GATHER_PART_TEXT, text, strlen(text), 0);
}

/*
 * Plan the SELECT g->s (the arena's own, rewritten in place). out NULL:
 * only check that it can be planned.
 */
static int plan(gather_t *g, gather_plan_t *out)
{
	PgQuery__SelectStmt *s = g->s, *shard = NULL;
	aggs_scan_t a = {false, false, false};
	names_scan_t ns = {false, NULL};
	uint8_t *before = NULL;
	bool finalize;
	char *sql;

	gather_scan_select_aggs(g, s, &a);
	gather_refuse_common(g, s, &a);
	if (tree_stopped(&g->t))
		return -1;
	finalize =
	    a.agg || s->n_group_clause > 0 || s->having_clause != NULL || s->n_distinct_clause > 0;
	ns.literals = finalize;
	gather_scan_reserved(g, &s->base, &ns);
	if (ns.found != NULL) {
		tree_refuse(&g->t,
		            "names and constants starting with \"" RESERVED
		            "\" are pgshard's own in a "
		            "query across shards (found \"%.60s\")",
		            ns.found);
		return -1;
	}
	g->names = tree_alloc(&g->t, (s->n_target_list + 1) * sizeof *g->names);
	if (g->names == NULL)
		return -1;
	for (size_t i = 0; i < s->n_target_list; i++) {
		if (s->target_list[i]->node_case != NODE(RES_TARGET)) {
			tree_refuse(&g->t, "a select-list entry pgshard does not know");
			return -1;
		}
		g->names[i] = colname_of_target(s->target_list[i]->res_target);
	}
	if (!g->check && (before = params_of(g, s)) == NULL)
		return -1;
	if (!finalize) {
		for (size_t i = 0; i < s->n_target_list; i++)
			gather_probe_slot(&g->t, &s->target_list[i]->res_target->val, g);
		if (g->probes != NULL &&
		    (s->where_clause = tree_and(&g->t, s->where_clause, g->probes)) == NULL) {
			g->t.nomem = !g->t.refused;
			return -1;
		}
		if (gather_plan_streaming(g, out) < 0)
			return -1;
		shard = s;
	} else if (gather_plan_finalizing(g, &a, &shard) < 0) {
		return -1;
	}
	if (g->check)
		return 0;
	if (!keep_params(g, before, shard)) {
		g->t.nomem = !g->t.refused;
		return -1;
	}
	out->finalize = finalize;
	out->probed = g->probes != NULL;
	out->shard_sql = tree_deparse_select(&g->t, shard, "the gather plan");
	if (out->shard_sql == NULL)
		return -1;
	if (!finalize)
		return 0;
	out->limit = -1;
	if (g->n_final_params > 0) {
		out->final_params = malloc(sizeof *out->final_params * (size_t)g->n_final_params);
		if (out->final_params == NULL) {
			g->t.nomem = true;
			return -1;
		}
		memcpy(out->final_params, g->final_params,
		       sizeof *out->final_params * (size_t)g->n_final_params);
		out->n_final_params = g->n_final_params;
	}
	sql = tree_deparse_select(&g->t, s, "the gather plan");
	if (sql == NULL)
		return -1;
	if (!split_parts(sql, out)) {
		free(sql);
		g->t.nomem = true;
		return -1;
	}
	free(sql);
	return 0;
}

/*
 * DECLARE name CURSOR FOR the planned SELECT. Streaming, each shard
 * declares a cursor of that name over its shard query, SCROLL whatever the
 * client asked, so that rows a FETCH read from a shard but did not send can
 * be given back (MOVE BACKWARD; the proxy refuses backward fetches of its
 * own). Finalizing, the final query declares the client's cursor as the
 * client wrote it, on the shard that runs it.
 */
enum {
	CURSOR_OPT_BINARY = 0x0001,
	CURSOR_OPT_SCROLL = 0x0002,
	CURSOR_OPT_NO_SCROLL = 0x0004,
	CURSOR_OPT_INSENSITIVE = 0x0008,
	CURSOR_OPT_HOLD = 0x0020,
};

static int declare_cursor(gather_t *g, const PgQuery__DeclareCursorStmt *d, gather_plan_t *out)
{
	int o = d->options;
	const char *binary = o & CURSOR_OPT_BINARY ? "BINARY " : "";
	const char *hold = o & CURSOR_OPT_HOLD ? " WITH HOLD" : "";
	const char *scroll = "SCROLL ", *query = out->shard_sql;
	char *name = route_quote_relation(NULL, d->portalname != NULL ? d->portalname : "");
	char *text = NULL;
	gather_part_t decl;
	size_t len;

	out->cursor = strdup(d->portalname != NULL ? d->portalname : "");
	out->cursor_hold = (o & CURSOR_OPT_HOLD) != 0;
	if (name == NULL || out->cursor == NULL)
		goto nomem;
	if (out->finalize) {
		scroll = o & CURSOR_OPT_SCROLL      ? "SCROLL "
		         : o & CURSOR_OPT_NO_SCROLL ? "NO SCROLL "
		                                    : "";
		query = "";
	}
	len = strlen(name) + strlen(query) + 80;
	if ((text = malloc(len)) == NULL)
		goto nomem;
	len = (size_t)snprintf(text, len, "DECLARE %s %s%s%sCURSOR%s FOR %s", name, binary,
	                       out->finalize && (o & CURSOR_OPT_INSENSITIVE) ? "INSENSITIVE " : "",
	                       scroll, hold, query);
	if (!out->finalize) {
		free(out->shard_sql);
		out->shard_sql = text;
	} else {
		if (!add_part(out, GATHER_PART_TEXT, text, len, 0))
			goto nomem;
		/* the declaration goes first */
		decl = out->parts[out->n_parts - 1];
		memmove(out->parts + 1, out->parts,
		        sizeof *out->parts * (size_t)(out->n_parts - 1));
		out->parts[0] = decl;
		free(text);
	}
	free(name);
	return 0;
nomem:
	free(name);
	free(text);
	g->t.nomem = true;
	return -1;
}

/* ---- the interface ---- */

static void lit_slot(tree_t *t, PgQuery__Node **slot, void *arg)
{
	const route_literals_t *l = arg;
	PgQuery__Node *n = *slot;
	int k;

	if (n->node_case != NODE(PARAM_REF)) {
		tree_each_slot(t, tree_inner(n), lit_slot, arg);
		return;
	}
	k = n->param_ref->number - l->first;
	if (k < 0 || k >= l->n)
		return;
	/* the constant the plan cache took out of the text */
	if (l->kinds[k] == 'i') {
		char buf[16];
		size_t len = (size_t)l->values[k].len < sizeof buf - 1 ? (size_t)l->values[k].len
		                                                       : sizeof buf - 1;

		memcpy(buf, l->values[k].data, len);
		buf[len] = '\0';
		*slot = tree_int(t, strtol(buf, NULL, 10));
	} else if (l->kinds[k] == 'f') {
		PgQuery__Node *c = tree_text_const(t, (const char *)l->values[k].data,
		                                   (size_t)l->values[k].len, false);

		if (c != NULL) {
			PgQuery__String *s = c->a_const->sval;
			PgQuery__Float *f = tree_alloc(t, sizeof *f);

			if (f == NULL)
				return;
			pg_query__float__init(f);
			f->fval = s->sval;
			c->a_const->fval = f;
			c->a_const->val_case = PG_QUERY__A__CONST__VAL_FVAL;
		}
		*slot = c;
	} else {
		*slot = tree_text_const(t, (const char *)l->values[k].data,
		                        (size_t)l->values[k].len, false);
	}
	if (*slot == NULL)
		t->nomem = true;
}

int gather_check(const PgQuery__Node *stmt, const route_param_t *params, int n_params,
                 const route_literals_t *lits, char *err, size_t errlen)
{
	gather_t g;
	PgQuery__Node *copy;
	int rc;

	gather_init(&g);
	g.check = true;
	g.params = params;
	g.n_params = params != NULL ? n_params : 0;
	if (errlen > 0)
		err[0] = '\0';
	copy = tree_copy(&g.t, stmt);
	if (copy != NULL && lits != NULL && lits->n > 0)
		lit_slot(&g.t, &copy, (void *)lits);
	if (copy != NULL && copy->node_case == NODE(SELECT_STMT)) {
		g.s = copy->select_stmt;
		plan(&g, NULL);
	} else if (copy != NULL) {
		tree_refuse(&g.t, "only a SELECT has a gather plan");
	}
	rc = g.t.nomem ? GATHER_CHECK_NOMEM : g.t.refused ? GATHER_CHECK_REFUSED : GATHER_CHECK_OK;
	if (rc == GATHER_CHECK_REFUSED && errlen > 0)
		snprintf(err, errlen, "%s", g.t.err);
	tree_free(&g.t);
	return rc;
}

int gather_plan_make(const PgQuery__ParseResult *tree, const route_param_t *params, int n_params,
                     const route_literals_t *lits, gather_plan_t *out, char sqlstate[6], char *err,
                     size_t errlen)
{
	const PgQuery__DeclareCursorStmt *dc = NULL;
	const PgQuery__Node *stmt = NULL;
	PgQuery__Node *copy = NULL;
	gather_t g;
	int rc = -1;

	memset(out, 0, sizeof *out);
	out->limit = -1;
	sqlstate[0] = '\0';
	if (errlen > 0)
		err[0] = '\0';
	gather_init(&g);
	g.params = params;
	g.n_params = params != NULL ? n_params : 0;
	if (tree->n_stmts == 1 && (stmt = tree->stmts[0]->stmt) != NULL &&
	    stmt->node_case == NODE(DECLARE_CURSOR_STMT)) {
		dc = stmt->declare_cursor_stmt;
		stmt = dc->query;
	}
	if (tree->n_stmts != 1)
		tree_refuse(
		    &g.t, "a SELECT on several shards whose rows the proxy merges cannot share its "
		          "query string with other statements; send it alone");
	else if (stmt == NULL || stmt->node_case != NODE(SELECT_STMT))
		tree_refuse(&g.t, "only a SELECT has a gather plan");
	else
		copy = tree_copy(&g.t, stmt); /* rewritten in place */
	if (copy != NULL && lits != NULL && lits->n > 0)
		lit_slot(&g.t, &copy, (void *)lits);
	if (copy != NULL && !tree_stopped(&g.t)) {
		g.s = copy->select_stmt;
		if (plan(&g, out) == 0 && (dc == NULL || declare_cursor(&g, dc, out) == 0))
			rc = 0;
	}
	if (rc < 0) {
		gather_plan_free(out);
		memset(out, 0, sizeof *out);
		out->limit = -1;
		memcpy(sqlstate, g.t.nomem ? "53200" : "0A000", 6);
		snprintf(err, errlen, "%s", g.t.nomem ? "out of memory" : g.t.err);
	}
	tree_free(&g.t);
	return rc;
}

gather_plan_t *gather_plan_ref(gather_plan_t *p)
{
	p->refs++;
	return p;
}

void gather_plan_unref(gather_plan_t *p)
{
	if (p != NULL && --p->refs <= 0) {
		gather_plan_free(p);
		free(p);
	}
}

void gather_plan_free(gather_plan_t *p)
{
	if (p == NULL)
		return;
	free(p->shard_sql);
	free(p->keys);
	for (int i = 0; i < p->n_parts; i++)
		free(p->parts[i].text);
	free(p->parts);
	free(p->cursor);
	free(p->final_params);
	p->final_params = NULL;
	p->n_final_params = 0;
	p->cursor = NULL;
	p->shard_sql = NULL;
	p->keys = NULL;
	p->parts = NULL;
	p->n_keys = p->n_parts = 0;
}
