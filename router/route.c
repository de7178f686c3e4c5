/*
 * route.c — statement routing (see route.h).
 *
 * Each statement of a query string is planned in two passes over the tree
 * libpg_query builds for it.
 *
 * 1. tables_collect() walks the whole tree generically, through protobuf-c's
 *    descriptors, so that no node type can hide a table from it: every
 *    RangeVar is looked up in the config (CTE names shadow tables, as in
 *    PostgreSQL), and the tables that INSERT, UPDATE, DELETE, MERGE, COPY
 *    FROM and SELECT INTO write are marked. That alone decides most
 *    statements: no configured table -> the default shard; only reference
 *    tables -> one shard for reads, every shard for writes; sharded tables
 *    of two maps -> refused.
 *
 * 2. For a statement on sharded tables, a structured pass finds the shards
 *    that can hold the rows the statement needs. Every part of the query
 *    (a FROM item, a subquery, a CTE, a WHERE predicate) yields a part_t:
 *
 *      NONE   the part reads no sharded table; it does not care where it runs
 *      ALL    its rows may be on any shard of the map
 *      SET    its rows are only on these shards
 *
 *    Parts combine in two ways, and which one is used is the reasoning that
 *    keeps results right:
 *
 *    - AND (intersection) where a result row needs rows of both sides: the
 *      conjuncts of a WHERE, inner-joined FROM items, a subquery in a
 *      top-level conjunct. Tables of one map are co-located (equal keys live
 *      on one shard), so when they are joined on their keys a joined row
 *      exists only where both of its halves do, and a predicate on the key
 *      of any table of a query block constrains the whole block. Sharded
 *      tables of one level joined any other way are refused: their matching
 *      rows can be on different shards. A FROM subquery or CTE over sharded
 *      tables counts as a table whose keys are the key columns it selects
 *      unmodified (none when it combines rows of several keys).
 *    - OR (union) where a result row needs rows of either side: OR, UNION,
 *      and data-modifying CTEs, which must run wherever their own rows are
 *      whatever the rest of the statement reads.
 *
 *    Running on more shards than needed is always correct (the other shards
 *    contribute no rows), so anything not understood widens to ALL: the
 *    ON clause of an outer join and the nullable side's subqueries, NOT, a
 *    comparison with an expression, an unknown parameter. Narrowing is only
 *    ever done from a predicate that PostgreSQL will apply to the rows.
 *
 * Writes add checks: an INSERT must name its key column and give each row a
 * constant or parameter key (rows on several shards set split_insert for
 * the proxy, and route_split_insert writes each shard's INSERT), and an
 * UPDATE may only set the key to a value on the shard the rows already live
 * on.
 *
 * A plan on several shards then says how the proxy makes one answer of
 * theirs (merge): see route_mergekind.c. Each shard also answers the
 * statement's subqueries from its own rows alone, on one shard as on
 * several, so a subquery that needs rows of other shards is refused: see
 * route_subq.c.
 *
 * Before any of this, the text is measured (route_sql_depth_estimate): the
 * parser libpg_query brings has no stack depth check, and a statement that
 * would nest too deeply is refused unparsed. Parsing and planning are
 * separate steps (route_parse, route_analyze) so that router/plancache.c
 * can keep parsed statements and plan them again with new parameters, or
 * with the literals it masked out of the text as parameters.
 *
 * This file is the router's interface: contexts, parsing, planning and the
 * gather entry point. The work is in files of one concern each, whose
 * calls go one way (each uses only those listed after it):
 *
 *   route_split.c      splitting a multi-row INSERT by the shards of its rows
 *   route_hint.c       routing comments: /\* pgshard: shard=N, key=VALUE, all *\/
 *   route_subq.c       subqueries, which each shard answers alone
 *   route_mergekind.c  how the answers of several shards are merged
 *   route_plan.c       plans of each kind of statement, several in one string,
 *                      transaction control
 *   route_analysis.c   pass 2: the structured analysis of a query
 *   route_where.c      query blocks (the tables of one FROM) and predicates
 *   route_keys.c       key values: constants, parameters, casts, arrays
 *   route_tables.c     config tables against a statement's names; pass 1
 *   route_walk.c       the state of one routing call, parts, text helpers
 *   route_lex.c        the lexical pass: tokens, and the depth guard
 *   route_steps.c      a plan's steps (how the executor runs it), and refusals
 *
 * Their shared types and declarations are in route_int.h.
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

#include "router/gather_int.h"
#include "router/join_plan.h"
#include "router/route_int.h"
#include "router/tree.h"
#include "router/tree_int.h"

/* ---- the API ---- */

static bool get_varint(const uint8_t *d, size_t len, size_t *pos, uint64_t *out)
{
	*out = 0;
	for (int shift = 0; shift < 64 && *pos < len; shift += 7) {
		uint8_t b = d[(*pos)++];

		*out |= (uint64_t)(b & 0x7f) << shift;
		if ((b & 0x80) == 0)
			return true;
	}
	return false;
}

/*
 * Whether the serialized tree nests messages deeper than `limit`, found
 * without recursion by following the wire format with the descriptors
 * (a length-delimited field is entered only when the schema says it is a
 * message). Malformed input counts as too deep: unpack would fail anyway.
 */
static bool proto_too_deep(const uint8_t *d, size_t len, int limit)
{
	struct frame {
		const ProtobufCMessageDescriptor *desc;
		size_t end;
	} * stack;
	size_t pos = 0;
	int depth = 1;
	bool deep = true;

	stack = malloc(sizeof *stack * (size_t)(limit + 1));
	if (stack == NULL)
		return true;
	stack[0].desc = &pg_query__parse_result__descriptor;
	stack[0].end = len;
	while (depth > 0) {
		const ProtobufCFieldDescriptor *f;
		uint64_t tag, v;

		if (pos == stack[depth - 1].end) {
			depth--;
			continue;
		}
		if (!get_varint(d, stack[depth - 1].end, &pos, &tag))
			goto out;
		switch (tag & 7) {
		case 0:
			if (!get_varint(d, stack[depth - 1].end, &pos, &v))
				goto out;
			break;
		case 1:
		case 5:
			v = (tag & 7) == 1 ? 8 : 4;
			if (stack[depth - 1].end - pos < v)
				goto out;
			pos += v;
			break;
		case 2:
			if (!get_varint(d, stack[depth - 1].end, &pos, &v) ||
			    v > stack[depth - 1].end - pos)
				goto out;
			f = protobuf_c_message_descriptor_get_field(stack[depth - 1].desc,
			                                            (unsigned)(tag >> 3));
			if (f == NULL || f->type != PROTOBUF_C_TYPE_MESSAGE) {
				pos += v;
				break;
			}
			if (depth >= limit)
				goto out;
			stack[depth].desc = f->descriptor;
			stack[depth].end = pos + v;
			depth++;
			break;
		default:
			goto out;
		}
	}
	deep = false;
out:
	free(stack);
	return deep;
}

int route_ctx_init(route_ctx_t *ctx, const cfg_t *cfg, char *err, size_t errlen)
{
	char e[256];

	ctx->cfg = cfg;
	ctx->maps = NULL;
	ctx->route = route_statement;
	if (cfg->n_maps == 0)
		return 0;
	ctx->maps = calloc((size_t)cfg->n_maps, sizeof *ctx->maps);
	if (ctx->maps == NULL) {
		if (errlen > 0)
			snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (int i = 0; i < cfg->n_maps; i++) {
		e[0] = '\0';
		if (shard_map_build(&ctx->maps[i], &cfg->maps[i], e, sizeof e) != 0) {
			if (errlen > 0)
				snprintf(err, errlen, "[map.%s]: %s", cfg->maps[i].name, e);
			for (int k = 0; k < i; k++)
				shard_map_free(&ctx->maps[k]);
			free(ctx->maps);
			ctx->maps = NULL;
			return -1;
		}
	}
	return 0;
}

void route_ctx_free(route_ctx_t *ctx)
{
	if (ctx->maps != NULL && ctx->cfg != NULL)
		for (int i = 0; i < ctx->cfg->n_maps; i++)
			shard_map_free(&ctx->maps[i]);
	free(ctx->maps);
	ctx->maps = NULL;
}

/* ---- parsed statements ---- */

/* protobuf-c's allocator, counting what a tree takes (with malloc's own overhead, roughly). */
static void *count_alloc(void *data, size_t size)
{
	*(size_t *)data += size + 16;
	return malloc(size);
}

static void count_free(void *data, void *p)
{
	free(p);
}

route_parsed_t *route_parse(const char *sql)
{
	PgQueryProtobufParseResult res;
	ProtobufCAllocator alloc;
	route_parsed_t *p = calloc(1, sizeof *p);

	if (p == NULL)
		return NULL;
	p->bytes = sizeof *p;
	hint_parse(sql, &p->o);
	p->estimate = route_sql_depth_estimate(sql, strlen(sql));
	if (p->estimate > ROUTE_MAX_SQL_DEPTH) {
		p->status = PARSED_TOO_DEEP_TEXT;
		return p;
	}
	route_parse_counted();
	res = pg_query_parse_protobuf(sql);
	if (res.error != NULL) {
		p->status = PARSED_SYNTAX_ERROR;
	} else if (proto_too_deep((const uint8_t *)res.parse_tree.data, res.parse_tree.len,
	                          MAX_DEPTH)) {
		p->status = PARSED_TOO_DEEP_TREE;
	} else {
		alloc.alloc = count_alloc;
		alloc.free = count_free;
		alloc.allocator_data = &p->bytes;
		p->status = PARSED_TREE;
		p->tree = pg_query__parse_result__unpack(&alloc, res.parse_tree.len,
		                                         (const uint8_t *)res.parse_tree.data);
		if (p->tree == NULL) {
			free(p);
			p = NULL;
		}
	}
	pg_query_free_protobuf_parse_result(res);
	return p;
}

void route_parsed_free(route_parsed_t *p)
{
	if (p == NULL)
		return;
	if (p->tree != NULL)
		pg_query__parse_result__free_unpacked(p->tree, NULL);
	free(p->join);
	free(p);
}

size_t route_parsed_size(const route_parsed_t *p)
{
	return p->bytes;
}

/* The comment decides where a statement goes that the router did not analyse. */
static void override_unanalysed(walk_t *w, const override_t *o, route_plan_t *out)
{
	if (o->kind == OVERRIDE_SHARD || o->kind == OVERRIDE_ALL || o->kind == OVERRIDE_BAD)
		hint_apply(w, o, out);
}

/*
 * A SELECT the analysis refused because two sharded tables are joined on
 * other columns than their keys, or belong to different maps, or a
 * subquery needs other shards' rows: when
 * router/join_plan.c plans it as an application-level join, it runs as one
 * (ROUTE_STEP_JOIN) on links to every shard of either map; the executor
 * plans its steps again from the text. Else the refusal stands, with what
 * the join planner wanted added. -1 only when memory runs out.
 */
/*
 * What join_across found for a parse of one statement. The join planner
 * plans the statement's own text (its literals masked or not) without the
 * call's parameters, so its answer is the same at every call with that
 * parse: a parse the plan cache keeps plans its join once, not at every
 * statement (planning deparses the statement and each side's SQL).
 */
/* Room for why the join planner refused a statement. */
#define JOIN_WHY_LEN 300

struct join_memo {
	int rc;                 /* join_plan_make's: 1 a join, 0 refused */
	char err[JOIN_WHY_LEN]; /* rc 0: why */
	route_plan_t plan;      /* rc 1: out as join_across left it */
};

/* Keep what join_across found for parsed (when it can be kept). */
static void join_memo_keep(const route_parsed_t *parsed, int rc, const char *err,
                           const route_plan_t *out)
{
	struct join_memo *m;

	if (parsed == NULL || parsed->join != NULL || (m = malloc(sizeof *m)) == NULL)
		return;
	m->rc = rc;
	snprintf(m->err, sizeof m->err, "%s", err);
	if (rc == 1)
		route_plan_copy(&m->plan, out);
	((route_parsed_t *)parsed)->join = m; /* the parse's own cache, not its content */
}

/* The refusal stands: say what a join across shards would need. */
static void join_refused(route_plan_t *out, const char *err)
{
	char why[sizeof out->error + JOIN_WHY_LEN + 64];

	snprintf(why, sizeof why, "%s (not run as a join across shards: %s)", out->error, err);
	route_plan_refuse(out, "0A000", "%s", why);
}

/*
 * A refused SELECT that the join planner can run across shards becomes a
 * join (out->join). parsed: tree's parse when tree is all of it (its answer
 * is kept there), NULL for one statement of several.
 */
static int join_across(const route_ctx_t *ctx, const route_parsed_t *parsed,
                       const PgQuery__ParseResult *tree, route_plan_t *out)
{
	join_plan_t jp;
	char err[JOIN_WHY_LEN], *sql;
	int rc;

	if (strcmp(out->sqlstate, "0A000") != 0 && out->sqlstate[0] != '\0')
		return 0;
	if (strstr(out->error, "joined") == NULL && strstr(out->error, "not co-located") == NULL &&
	    strstr(out->error, "subquery") == NULL &&
	    strstr(out->error, "do not come from a sharded table") == NULL)
		return 0;
	if (tree->n_stmts != 1 || tree->stmts[0]->stmt == NULL ||
	    tree->stmts[0]->stmt->node_case != PG_QUERY__NODE__NODE_SELECT_STMT)
		return 0; /* writes, EXPLAIN, DECLARE: refused as they were */
	if (parsed != NULL && parsed->join != NULL) {
		if (parsed->join->rc == 0)
			join_refused(out, parsed->join->err);
		else
			route_plan_copy(out, &parsed->join->plan);
		return 0;
	}
	sql = tree_deparse(tree, "the statement", err, sizeof err);
	if (sql == NULL)
		return strcmp(err, "out of memory") == 0 ? -1 : 0;
	rc = join_plan_make(ctx, sql, NULL, 0, &jp, err, sizeof err);
	free(sql);
	if (rc < 0)
		return rc;
	if (rc == 0) {
		join_memo_keep(parsed, 0, err, NULL);
		join_refused(out, err);
		return 0;
	}
	memset(out, 0, sizeof *out);
	out->key_column = -1;
	out->kind = ROUTE_SHARDS;
	out->join = true;
	out->replica_ok = false;
	shard_set_clear(&out->shards);
	for (int i = 0; i < jp.n_sides; i++)
		shard_set_union(&out->shards, &ctx->maps[jp.sides[i].map].all);
	for (int i = 0; i < jp.n_subs; i++)
		shard_set_union(&out->shards, &ctx->maps[jp.subs[i].map].all);
	/* nothing that depends on the values (which side drives may): a cached plan gives the
	   same reason */
	{
		const char *names[JOIN_MAX_SIDES];
		sb_t r;

		for (int i = 0; i < jp.n_sides; i++)
			names[jp.sides[i].written] = jp.sides[i].table->name;
		sb_init(&r, out->reason, sizeof out->reason);
		for (int i = 0; i < jp.n_subs; i++)
			sb_printf(&r, "%s%s subquery over %s", i == 0 ? "first the " : ", the ",
			          join_sub_kind_name(jp.subs[i].kind), jp.subs[i].table->name);
		if (jp.n_subs > 0)
			sb_printf(&r, " (run first, %s as a parameter); then ",
			          jp.n_subs == 1 ? "its answer" : "their answers");
		if (jp.n_sides == 0)
			sb_printf(&r, "the statement on one shard");
		else if (jp.kind == JOIN_ALONE)
			sb_printf(&r,
			          "the statement over the rows of %s, fetched whole, on one shard",
			          names[0]);
		else
			sb_printf(&r, "%s join of ", join_kind_name(jp.kind));
		for (int i = 0; i < jp.n_sides && jp.kind != JOIN_ALONE; i++)
			sb_printf(&r, "%s%s",
			          i == 0                ? ""
			          : i + 1 == jp.n_sides ? " and "
			                                : ", ",
			          names[i]);
		if (jp.kind == JOIN_FULL || jp.kind == JOIN_OUTER || jp.kind == JOIN_WHOLE)
			sb_printf(&r, " across shards: every table's rows fetched whole, then the "
			              "statement over them on one shard");
		else if (jp.kind != JOIN_ALONE && jp.n_sides > 0)
			sb_printf(
			    &r,
			    " across shards: one table's rows, then each other's by the join "
			    "keys of one fetched before it, then the statement over them on one "
			    "shard");
		sb_finish(&r);
	}
	join_plan_free(&jp);
	join_memo_keep(parsed, 1, "", out);
	return 0;
}

/*
 * One statement of the string, parsed, no routing comment, nothing the
 * executor does beyond sending it to its one shard.
 */
static bool sent_as_is(const route_parsed_t *parsed, const route_plan_t *out)
{
	return parsed->status == PARSED_TREE && parsed->tree->n_stmts == 1 &&
	       parsed->o.kind == OVERRIDE_NONE && !out->params_missing && !out->split_insert &&
	       !out->key_move && !out->insert_select && !out->batch && !out->ids_split &&
	       !out->needs_columns && !out->copy_from_stdin &&
	       out->cursor_op == ROUTE_CURSOR_NONE && out->txn == ROUTE_TXN_NONE &&
	       out->n_steps == 1 && out->steps[0].kind == ROUTE_STEP_ONE;
}

/*
 * out is generic (route_generic_t) when one input was read, only as one
 * key of one map, by equality, and that key alone picked out's one shard,
 * and it is sent as it is; any_input when no input was read at all by a
 * plan for the default shard sent as it is.
 */
static void set_generic(const walk_t *w, const route_parsed_t *parsed, route_plan_t *out)
{
	memset(&out->generic, 0, sizeof out->generic);
	if (w->gen_bad || !sent_as_is(parsed, out))
		return;
	out->generic.any_input = w->gen_input == 0 && out->kind == ROUTE_DEFAULT;
	if (w->gen_input <= 0 || w->gen_map < 0 || out->kind != ROUTE_SHARDS ||
	    shard_set_count(&out->shards) != 1)
		return;
	out->generic.input = w->gen_input;
	out->generic.oid = w->gen_oid;
	out->generic.map = w->gen_map;
}

int route_analyze(const route_ctx_t *ctx, const route_parsed_t *parsed, const route_param_t *params,
                  int n_params, const route_literals_t *lits, route_plan_t *out)
{
	const PgQuery__ParseResult *tree = parsed->tree;
	route_plan_t *plans = NULL;
	walk_t w;
	int rc = -1;

	memset(out, 0, sizeof *out);
	out->key_column = -1;
	memset(&w, 0, sizeof w);
	w.ctx = ctx;
	w.cfg = ctx->cfg;
	w.params = params;
	w.n_params = params != NULL ? n_params : 0;
	w.lits = lits;
	w.any_map = -1;
	w.gen_map = -1;
	if (ctx->cfg->n_tables > 0) {
		w.seen = calloc((size_t)ctx->cfg->n_tables, 1);
		w.order = calloc((size_t)ctx->cfg->n_tables, sizeof *w.order);
		if (w.seen == NULL || w.order == NULL)
			goto done;
	}
	walk_reset(&w);

	switch (parsed->status) {
	case PARSED_TOO_DEEP_TEXT:
		route_plan_refuse(out, "54001",
		                  "statement is nested too deeply to analyze (estimated depth %d, "
		                  "limit %d)",
		                  parsed->estimate, ROUTE_MAX_SQL_DEPTH);
		override_unanalysed(&w, &parsed->o, out);
		break;
	case PARSED_TOO_DEEP_TREE:
		route_plan_refuse(out, "54001",
		                  "the statement is nested too deeply for pgshard's router (more "
		                  "than %d levels)",
		                  MAX_DEPTH);
		override_unanalysed(&w, &parsed->o, out);
		break;
	case PARSED_SYNTAX_ERROR:
		plan_default(&w, out, "does not parse (the shard reports the syntax error)");
		override_unanalysed(&w, &parsed->o, out);
		break;
	case PARSED_TREE:
		if (tree->n_stmts == 0) {
			plan_default(&w, out, "empty query");
			hint_apply(&w, &parsed->o, out);
			break;
		}
		plans = calloc(tree->n_stmts, sizeof *plans);
		if (plans == NULL)
			goto done;
		for (size_t i = 0; i < tree->n_stmts && !w.nomem; i++)
			plan_stmt(&w, tree->stmts[i]->stmt, &plans[i]);
		if (w.nomem)
			goto done;
		if (tree->n_stmts == 1) {
			*out = plans[0];
			if (out->kind == ROUTE_REFUSE && parsed->o.kind == OVERRIDE_NONE &&
			    join_across(ctx, parsed, tree, out) < 0)
				goto done;
		} else {
			/* a join across shards among other statements: run statement by
			   statement (plan_combine) */
			for (size_t i = 0; i < tree->n_stmts; i++) {
				PgQuery__ParseResult one = *tree;

				one.n_stmts = 1;
				one.stmts = &tree->stmts[i];
				if (plans[i].kind == ROUTE_REFUSE &&
				    parsed->o.kind == OVERRIDE_NONE &&
				    join_across(ctx, NULL, &one, &plans[i]) < 0)
					goto done;
			}
			walk_reset(&w);
			plan_combine(&w, tree->stmts, tree->n_stmts, plans, out);
		}
		hint_apply(&w, &parsed->o, out);
		if (out->kind == ROUTE_ALL && parsed->o.kind == OVERRIDE_ALL &&
		    hint_all_writes(tree))
			out->is_write = true;
		break;
	}
	plan_txn(tree, out);
	out->replica_ok = parsed->status == PARSED_TREE && !out->is_write &&
	                  out->cursor_op == ROUTE_CURSOR_NONE && out->kind != ROUTE_REFUSE &&
	                  out->kind != ROUTE_ALL && !out->join &&
	                  route_replica_safe(ctx->cfg, tree);
	if (out->kind != ROUTE_REFUSE && !out->batch && !out->join) {
		/* a batch's statements merge on their own; a join's final statement is one shard's
		 */
		subq_plan_merge(&w, tree,
		                parsed->o.kind == OVERRIDE_SHARD || parsed->o.kind == OVERRIDE_KEY,
		                out);
		/* a subquery the shards cannot answer alone: perhaps a semi-join across them */
		if (out->kind == ROUTE_REFUSE && parsed->status == PARSED_TREE &&
		    tree->n_stmts == 1 && parsed->o.kind == OVERRIDE_NONE &&
		    join_across(ctx, parsed, tree, out) < 0)
			goto done;
	}
	if (w.nomem)
		goto done;
	if (out->kind != ROUTE_REFUSE)
		out->sqlstate[0] = '\0';
	else if (out->sqlstate[0] == '\0')
		memcpy(out->sqlstate, "0A000", 6);
	route_plan_set_steps(out);
	set_generic(&w, parsed, out);
	rc = 0;
done:
	free(plans);
	free(w.seen);
	free(w.order);
	return rc;
}

int route_statement(const route_ctx_t *ctx, const char *sql, const route_param_t *params,
                    int n_params, route_plan_t *out)
{
	route_parsed_t *p = route_parse(sql);
	int rc;

	if (p == NULL) {
		memset(out, 0, sizeof *out);
		out->key_column = -1;
		return -1;
	}
	rc = route_analyze(ctx, p, params, n_params, NULL, out);
	route_parsed_free(p);
	return rc;
}

int route_gather_parsed(const route_ctx_t *ctx, const route_parsed_t *p,
                        const route_param_t *params, int n_params, const route_literals_t *lits,
                        const route_plan_t *plan, gather_plan_t *out, char sqlstate[6], char *err,
                        size_t errlen)
{
	route_plan_t rp;

	memset(out, 0, sizeof *out);
	out->limit = -1;
	sqlstate[0] = '\0';
	if (errlen > 0)
		err[0] = '\0';
	/* route_analyze refuses what this would: the same check, and the same words */
	if (plan == NULL) {
		if (route_analyze(ctx, p, params, n_params, lits, &rp) < 0) {
			memcpy(sqlstate, "53200", 6);
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		plan = &rp;
	}
	if (plan->kind == ROUTE_REFUSE) {
		memcpy(sqlstate, plan->sqlstate[0] != '\0' ? plan->sqlstate : "0A000", 6);
		snprintf(err, errlen, "%s", plan->error);
		return -1;
	}
	if (p->status != PARSED_TREE) {
		memcpy(sqlstate, "0A000", 6);
		snprintf(err, errlen, "only a SELECT has a gather plan");
		return -1;
	}
	return gather_plan_make(p->tree, params, n_params, lits, out, sqlstate, err, errlen);
}

int route_gather(const route_ctx_t *ctx, const char *sql, const route_param_t *params, int n_params,
                 gather_plan_t *out, char sqlstate[6], char *err, size_t errlen)
{
	route_parsed_t *p = route_parse(sql);
	int rc;

	if (p == NULL) {
		memset(out, 0, sizeof *out);
		out->limit = -1;
		memcpy(sqlstate, "53200", 6);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	rc = route_gather_parsed(ctx, p, params, n_params, NULL, NULL, out, sqlstate, err, errlen);
	route_parsed_free(p);
	return rc;
}

bool route_parsed_match(const route_parsed_t *a, const route_parsed_t *b,
                        const route_literals_t *lits)
{
	if (a->status != b->status || memcmp(&a->o, &b->o, sizeof a->o) != 0)
		return false;
	switch (a->status) {
	case PARSED_TREE:
		return tree_match_masked(&a->tree->base, &b->tree->base, lits);
	case PARSED_TOO_DEEP_TEXT:
		return a->estimate == b->estimate;
	default:
		return true;
	}
}
