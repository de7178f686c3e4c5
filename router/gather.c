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

#include "router/colname.h"
#include "router/gather_int.h"
#include "router/shardmap.h"
#include "router/tree.h"
#include "router/tree_int.h"

#define RESERVED      "pgshard_"
#define ROWS_REL      "pgshard_rows"
#define ROWS_ALIAS    "pgshard_p"
#define TYPE_MARK     "pgshard_type_"
#define AVG_MARK      "pgshard_avg_"
#define HIDDEN_PREFIX "pgshard_k"
#define MAX_PARAM     65535

/* ---- the state of one planning call ---- */

/* What a shard returns, column by column (finalizing). */
typedef enum ship_kind {
	SHIP_GROUP, /* a group expression: the shards' and the final query's GROUP BY */
	SHIP_DARG,  /* a DISTINCT aggregate's argument: the shards' GROUP BY only */
	SHIP_PART,  /* a partial aggregate */
} ship_kind_t;

typedef struct ship {
	ship_kind_t kind;
	PgQuery__Node *expr;
} ship_t;

typedef struct gather {
	tree_t t; /* the arena, and whether refused (t.err says why) or out of memory */

	const route_param_t *params;
	int n_params;
	bool check; /* gather_check: nothing is written, a missing LIMIT value is fine */

	PgQuery__SelectStmt *s;
	const char **names; /* each target's output name (NULL for `*`) */

	/* finalizing */
	ship_t *ship;
	int n_ship, cap_ship;
	bool distinct_mode; /* no aggregates: DISTINCT or DISTINCT ON */
	bool zero_if_empty; /* no GROUP BY but DISTINCT aggregates: a shard may return no row */
	PgQuery__Node **sh_distinct, **sh_sort; /* the shard's DISTINCT ON and ORDER BY */
	PgQuery__Node *probes;  /* calls that must not be aggregates: see probe_unknown */
	const char *in_unknown; /* fin_expr: inside a call of this function not known */
} gather_t;

static void gather_init(gather_t *g)
{
	memset(g, 0, sizeof *g);
	tree_init(&g->t);
}

/* ---- nodes ---- */

/* pgshard_p.c<k>: held column k in the final query */
static PgQuery__Node *mk_colref(gather_t *g, int k)
{
	PgQuery__ColumnRef *c = tree_alloc(&g->t, sizeof *c);
	char name[24];

	if (c == NULL)
		return NULL;
	pg_query__column_ref__init(c);
	if ((c->fields = tree_list(&g->t, 2)) == NULL)
		return NULL;
	snprintf(name, sizeof name, "c%d", k);
	c->fields[0] = tree_string(&g->t, ROWS_ALIAS);
	c->fields[1] = tree_string(&g->t, name);
	c->n_fields = 2;
	c->location = -1;
	if (c->fields[0] == NULL || c->fields[1] == NULL)
		return NULL;
	return tree_node(&g->t, NODE(COLUMN_REF), c);
}

/* ---- parameter values ---- */

enum {
	EV_OK,
	EV_NULL,    /* NULL: no limit, no offset */
	EV_BAD,     /* not an integer constant or parameter */
	EV_MISSING, /* a parameter without a value */
};

static const route_param_t *param_of(const gather_t *g, int number)
{
	if (g->params == NULL || number < 1 || number > g->n_params)
		return NULL;
	return &g->params[number - 1];
}

static int text_int(const char *s, size_t len, int64_t *v)
{
	shard_key_t k;

	if (shard_key_from_text(CFG_KEY_BIGINT, s, len, &k) != 0)
		return EV_BAD;
	*v = k.i;
	return EV_OK;
}

static int param_int(const gather_t *g, int number, int64_t *v, int *missing)
{
	const route_param_t *p = param_of(g, number);
	shard_key_t k;

	if (p == NULL) {
		*missing = number;
		return EV_MISSING;
	}
	if (p->data == NULL || p->len < 0)
		return EV_NULL;
	if (p->format == 0)
		return text_int((const char *)p->data, (size_t)p->len, v);
	if (shard_key_from_binary(CFG_KEY_BIGINT, p->type_oid, p->data, (size_t)p->len, &k) != 0)
		return EV_BAD;
	*v = k.i;
	return EV_OK;
}

/* The integer type a cast names (int2, int4, int8), by its range; 0 for any other. */
static int64_t int_cast_max(const PgQuery__TypeName *t)
{
	const char *name;

	if (t == NULL || t->n_names == 0 || t->n_typmods > 0 || t->n_array_bounds > 0)
		return 0;
	if (t->n_names == 2 &&
	    strcmp(tree_str_of(t->names[0]) ? tree_str_of(t->names[0]) : "", "pg_catalog") != 0)
		return 0;
	name = tree_str_of(t->names[t->n_names - 1]);
	if (name == NULL)
		return 0;
	if (strcmp(name, "int8") == 0 || strcmp(name, "bigint") == 0)
		return INT64_MAX;
	if (strcmp(name, "int4") == 0 || strcmp(name, "integer") == 0)
		return INT32_MAX;
	if (strcmp(name, "int2") == 0 || strcmp(name, "smallint") == 0)
		return INT16_MAX;
	return 0;
}

/* The value of a LIMIT or OFFSET: a constant or a parameter, maybe cast to an integer. */
static int eval_count(const gather_t *g, const PgQuery__Node *n, int64_t *v, int *missing)
{
	switch (n->node_case) {
	case NODE(A_CONST): {
		const PgQuery__AConst *c = n->a_const;

		if (c->isnull)
			return EV_NULL;
		if (c->val_case == PG_QUERY__A__CONST__VAL_IVAL) {
			*v = c->ival != NULL ? c->ival->ival : 0;
			return EV_OK;
		}
		if (c->val_case == PG_QUERY__A__CONST__VAL_FVAL && c->fval != NULL &&
		    c->fval->fval != NULL)
			return text_int(c->fval->fval, strlen(c->fval->fval), v);
		if (c->val_case == PG_QUERY__A__CONST__VAL_SVAL && c->sval != NULL &&
		    c->sval->sval != NULL)
			return text_int(c->sval->sval, strlen(c->sval->sval), v);
		return EV_BAD;
	}
	case NODE(PARAM_REF):
		return param_int(g, n->param_ref->number, v, missing);
	case NODE(TYPE_CAST): {
		int64_t max = int_cast_max(n->type_cast->type_name);
		int rc;

		if (max == 0 || n->type_cast->arg == NULL)
			return EV_BAD;
		rc = eval_count(g, n->type_cast->arg, v, missing);
		if (rc == EV_OK && (*v > max || *v < -max - 1))
			return EV_BAD;
		return rc;
	}
	default:
		return EV_BAD;
	}
}

/* ---- what no gather plan takes ---- */

/* A string of the statement that could be taken for one of the rewrite's placeholders. */
typedef struct names_scan {
	bool literals; /* constants too (their text is in the final query) */
	const char *found;
} names_scan_t;

static void scan_reserved(gather_t *g, const ProtobufCMessage *m, names_scan_t *ns)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	const char *base = (const char *)m;

	if (d == &pg_query__a__const__descriptor && !ns->literals)
		return;
	for (unsigned i = 0; i < d->n_fields && ns->found == NULL; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		size_t n = 1;
		const char *p = base + f->offset;

		if (f->type != PROTOBUF_C_TYPE_MESSAGE && f->type != PROTOBUF_C_TYPE_STRING)
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			memcpy(&n, base + f->quantifier_offset, sizeof n);
			memcpy(&p, base + f->offset, sizeof p);
		} else if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			uint32_t c;

			memcpy(&c, base + f->quantifier_offset, sizeof c);
			if (c != f->id)
				continue;
		}
		for (size_t j = 0; j < n && p != NULL && ns->found == NULL; j++) {
			const void *v;

			memcpy(&v, p + j * sizeof(void *), sizeof v);
			if (v == NULL)
				continue;
			if (f->type == PROTOBUF_C_TYPE_STRING) {
				if (strstr(v, RESERVED) != NULL)
					ns->found = v;
			} else {
				scan_reserved(g, v, ns);
			}
		}
	}
}

static bool is_aggregate(const PgQuery__FuncCall *f)
{
	const char *name = tree_catalog_func_name(f);

	return f->over == NULL &&
	       (f->agg_star || f->agg_distinct || f->n_agg_order > 0 || f->agg_filter != NULL ||
	        f->agg_within_group || (name != NULL && tree_is_aggregate_name(name)));
}

typedef struct aggs_scan {
	bool agg, distinct_agg, window;
} aggs_scan_t;

static void aggs_slot(tree_t *t, PgQuery__Node **slot, void *arg)
{
	aggs_scan_t *a = arg;
	const PgQuery__Node *n = *slot;

	if (n->node_case == NODE(SUB_LINK))
		return; /* a level of its own */
	if (n->node_case == NODE(FUNC_CALL)) {
		if (n->func_call->over != NULL)
			a->window = true;
		else if (is_aggregate(n->func_call)) {
			a->agg = true;
			a->distinct_agg |= n->func_call->agg_distinct;
			return; /* nested aggregates are PostgreSQL's error */
		}
	}
	tree_each_slot(t, tree_inner(n), aggs_slot, arg);
}

static void scan_select_aggs(gather_t *g, PgQuery__SelectStmt *s, aggs_scan_t *a)
{
	for (size_t i = 0; i < s->n_target_list; i++)
		aggs_slot(&g->t, &s->target_list[i], a);
	if (s->having_clause != NULL)
		aggs_slot(&g->t, &s->having_clause, a);
	for (size_t i = 0; i < s->n_sort_clause; i++)
		aggs_slot(&g->t, &s->sort_clause[i], a);
	for (size_t i = 0; i < s->n_distinct_clause; i++)
		if (s->distinct_clause[i]->node_case != NODE(_NOT_SET))
			aggs_slot(&g->t, &s->distinct_clause[i], a);
}

/* Constructs that neither mode can merge. */
static void refuse_common(gather_t *g, const PgQuery__SelectStmt *s, const aggs_scan_t *a)
{
	if (s->op != PG_QUERY__SET_OPERATION__SETOP_NONE)
		tree_refuse(&g->t,
		            "ORDER BY, LIMIT/OFFSET or DISTINCT over a set operation (UNION, "
		            "INTERSECT, EXCEPT) across shards is not supported");
	else if (s->n_values_lists > 0)
		tree_refuse(&g->t, "VALUES across shards is not supported");
	else if (s->into_clause != NULL)
		tree_refuse(
		    &g->t,
		    "SELECT INTO with ORDER BY, LIMIT/OFFSET, aggregates, GROUP BY or DISTINCT "
		    "across shards is not supported; use INSERT INTO ... SELECT");
	else if (s->n_locking_clause > 0)
		tree_refuse(
		    &g->t,
		    "FOR UPDATE/SHARE with ORDER BY, LIMIT/OFFSET, aggregates, GROUP BY or "
		    "DISTINCT across shards is not supported (each shard would lock rows the "
		    "answer does not hold)");
	else if (a->window || s->n_window_clause > 0)
		tree_refuse(&g->t, "window functions across shards are not supported");
	else if (s->limit_option == PG_QUERY__LIMIT_OPTION__LIMIT_OPTION_WITH_TIES)
		tree_refuse(&g->t,
		            "FETCH FIRST ... WITH TIES across shards is not supported; use LIMIT");
}

/* ---- streaming ---- */

typedef struct coll_scan {
	const char *nested; /* a COLLATE below the top of a sort key */
} coll_scan_t;

static bool coll_is(const PgQuery__CollateClause *c, const char *name)
{
	const char *last = c->n_collname > 0 ? tree_str_of(c->collname[c->n_collname - 1]) : NULL;
	const char *schema = c->n_collname == 2 ? tree_str_of(c->collname[0]) : NULL;

	if (last == NULL || c->n_collname > 2 ||
	    (c->n_collname == 2 && (schema == NULL || strcmp(schema, "pg_catalog") != 0)))
		return false;
	return strcmp(last, name) == 0;
}

static const char *coll_name(const PgQuery__CollateClause *c)
{
	const char *last = c->n_collname > 0 ? tree_str_of(c->collname[c->n_collname - 1]) : NULL;

	return last != NULL ? last : "?";
}

/* GATHER_COLL_C or DEFAULT, or -1 (refused) for a collation the proxy cannot compare in. */
static int key_coll(gather_t *g, const PgQuery__CollateClause *c)
{
	if (coll_is(c, "C") || coll_is(c, "POSIX") || coll_is(c, "ucs_basic"))
		return GATHER_COLL_C;
	if (coll_is(c, "default"))
		return GATHER_COLL_DEFAULT;
	tree_refuse(
	    &g->t,
	    "ORDER BY ... COLLATE \"%s\" across shards is not supported (the proxy merges in "
	    "\"C\", \"POSIX\" or the database's default collation)",
	    coll_name(c));
	return -1;
}

/* A key's collation: its own COLLATE at the top; any other COLLATE inside is refused. */
static int expr_coll(gather_t *g, const PgQuery__Node *e)
{
	const PgQuery__Node *inner;

	if (e != NULL && e->node_case == NODE(COLLATE_CLAUSE))
		return key_coll(g, e->collate_clause);
	inner = tree_find(&g->t, e, NODE(COLLATE_CLAUSE), false);
	if (inner != NULL && !coll_is(inner->collate_clause, "default")) {
		tree_refuse(
		    &g->t,
		    "ORDER BY on an expression with COLLATE \"%s\" inside it across shards is not "
		    "supported; put the COLLATE on the whole sort key",
		    coll_name(inner->collate_clause));
		return -1;
	}
	return GATHER_COLL_DEFAULT;
}

static bool sort_dir(gather_t *g, const PgQuery__SortBy *sb, gather_key_t *k)
{
	switch (sb->sortby_dir) {
	case PG_QUERY__SORT_BY_DIR__SORTBY_DESC:
		k->desc = true;
		break;
	case PG_QUERY__SORT_BY_DIR__SORTBY_USING: {
		const char *op =
		    sb->n_use_op > 0 ? tree_str_of(sb->use_op[sb->n_use_op - 1]) : NULL;
		const char *schema = sb->n_use_op == 2 ? tree_str_of(sb->use_op[0]) : NULL;

		if (op == NULL || sb->n_use_op > 2 ||
		    (sb->n_use_op == 2 && (schema == NULL || strcmp(schema, "pg_catalog") != 0)) ||
		    (strcmp(op, "<") != 0 && strcmp(op, ">") != 0)) {
			tree_refuse(
			    &g->t,
			    "ORDER BY ... USING %s across shards is not supported; use ASC or DESC",
			    op != NULL ? op : "?");
			return false;
		}
		k->desc = op[0] == '>';
		break;
	}
	default:
		k->desc = false;
		break;
	}
	/* PostgreSQL's default: NULLs sort as larger than any value */
	if (sb->sortby_nulls == PG_QUERY__SORT_BY_NULLS__SORTBY_NULLS_FIRST)
		k->nulls_first = true;
	else if (sb->sortby_nulls == PG_QUERY__SORT_BY_NULLS__SORTBY_NULLS_LAST)
		k->nulls_first = false;
	else
		k->nulls_first = k->desc;
	return true;
}

/* The select-list entry an ORDER BY item names, as PostgreSQL resolves it; -1 for none. */
static int sort_target(gather_t *g, const PgQuery__SelectStmt *s, size_t n_orig,
                       const PgQuery__Node *e)
{
	const char *name = tree_bare_name(e);

	if (name != NULL)
		for (size_t i = 0; i < n_orig; i++)
			if (g->names[i] != NULL && strcmp(g->names[i], name) == 0)
				return (int)i;
	for (size_t i = 0; i < n_orig; i++)
		if (tree_equal(s->target_list[i]->res_target->val, e))
			return (int)i;
	return -1;
}

static int plan_streaming(gather_t *g, gather_plan_t *out)
{
	PgQuery__SelectStmt *s = g->s;
	size_t n_orig = s->n_target_list;
	gather_key_t *keys = NULL;
	int hidden = 0, missing = 0, rc_c = EV_NULL, rc_o = EV_NULL;
	int64_t count = -1, offset = 0;
	bool star = false, *after_star;

	after_star = tree_alloc(&g->t, (n_orig + 1) * sizeof *after_star);
	if (s->n_sort_clause > 0)
		keys = calloc(s->n_sort_clause, sizeof *keys);
	if (after_star == NULL || (s->n_sort_clause > 0 && keys == NULL)) {
		g->t.nomem = true;
		free(keys);
		return -1;
	}
	for (size_t i = 0; i < n_orig; i++) {
		after_star[i] = star;
		star |= tree_is_star(s->target_list[i]->res_target->val);
	}
	for (size_t i = 0; i < s->n_sort_clause && !tree_stopped(&g->t); i++) {
		const PgQuery__SortBy *sb = s->sort_clause[i]->sort_by;
		gather_key_t *k = &keys[i];
		const PgQuery__Node *e = sb->node, *key_expr;
		int t = -1, pos, coll = GATHER_COLL_DEFAULT;
		bool collate = e != NULL && e->node_case == NODE(COLLATE_CLAUSE);

		if (!sort_dir(g, sb, k))
			break;
		if (collate) {
			/* `alias COLLATE x` is an expression: its name is an input column's */
			coll = key_coll(g, e->collate_clause);
			e = e->collate_clause->arg;
			for (size_t j = 0; j < n_orig && t < 0; j++)
				if (tree_equal(s->target_list[j]->res_target->val, e))
					t = (int)j;
		} else if (tree_int_const(e, &pos)) {
			/* a position counts output columns, `*` expanded: the client's own */
			if (pos < 1 || (!star && (size_t)pos > n_orig)) {
				tree_refuse(&g->t, "ORDER BY position %d is not in the select list",
				            pos);
				break;
			}
			if (pos >= 1 && (size_t)pos <= n_orig && !after_star[pos - 1] &&
			    !tree_is_star(s->target_list[pos - 1]->res_target->val))
				coll = expr_coll(g, s->target_list[pos - 1]->res_target->val);
			k->column = pos - 1;
			k->coll = coll < 0 ? GATHER_COLL_DEFAULT : (gather_coll_t)coll;
			continue;
		} else {
			t = sort_target(g, s, n_orig, e);
		}
		key_expr = t >= 0 ? s->target_list[t]->res_target->val : e;
		if (!collate)
			coll = expr_coll(g, key_expr);
		if (coll < 0)
			break;
		k->coll = (gather_coll_t)coll;
		if (t >= 0 && !after_star[t]) {
			k->column = t;
			continue;
		}
		/* a hidden column: what the shard sorts by, for the proxy to compare */
		{
			char name[32];
			PgQuery__Node *copy = tree_copy(&g->t, key_expr);

			if (copy != NULL && copy->node_case == NODE(COLLATE_CLAUSE))
				copy = copy->collate_clause->arg;
			snprintf(name, sizeof name, HIDDEN_PREFIX "%d", hidden);
			if (copy == NULL || !tree_append_target(&g->t, s, name, copy)) {
				g->t.nomem = true;
				break;
			}
			k->hidden = true;
			k->column = hidden++;
		}
	}
	if (s->limit_count != NULL)
		rc_c = eval_count(g, s->limit_count, &count, &missing);
	if (s->limit_offset != NULL)
		rc_o = eval_count(g, s->limit_offset, &offset, &missing);
	if (!tree_stopped(&g->t) && (rc_c == EV_BAD || rc_o == EV_BAD))
		tree_refuse(&g->t,
		            "LIMIT/OFFSET across shards must be an integer constant or parameter");
	if (!tree_stopped(&g->t) && (rc_c == EV_MISSING || rc_o == EV_MISSING) && !g->check)
		tree_refuse(&g->t, "LIMIT/OFFSET across shards needs the value of parameter $%d",
		            missing);
	if (tree_stopped(&g->t) || g->check) {
		free(keys);
		return tree_stopped(&g->t) ? -1 : 0;
	}
	if (rc_c != EV_OK)
		count = -1;
	if (rc_o != EV_OK)
		offset = 0;
	if ((rc_c == EV_OK && count < 0) || offset < 0) {
		/* PostgreSQL's own error, from each shard: keep them as written */
		count = -1;
		offset = 0;
	} else {
		s->limit_offset = NULL;
		s->limit_count = NULL;
		if (count >= 0 && count <= INT64_MAX - offset) {
			s->limit_count = tree_int(&g->t, count + offset);
			s->limit_option = PG_QUERY__LIMIT_OPTION__LIMIT_OPTION_COUNT;
		} else {
			s->limit_option = PG_QUERY__LIMIT_OPTION__LIMIT_OPTION_DEFAULT;
		}
	}
	out->keys = keys;
	out->n_keys = (int)s->n_sort_clause;
	out->hidden = hidden;
	out->offset = offset;
	out->limit = count;
	return tree_stopped(&g->t) ? -1 : 0;
}

/* ---- finalizing ---- */

/*
 * The group column an expression reads: the same tree, or the same column
 * written with more or fewer qualifiers (name and t.name name one column
 * when both resolve, as PostgreSQL would have them).
 */
static int find_group(const gather_t *g, const PgQuery__Node *e)
{
	for (int i = 0; i < g->n_ship; i++) {
		const PgQuery__Node *x = g->ship[i].expr;

		if (g->ship[i].kind != SHIP_GROUP)
			continue;
		if (tree_equal(x, e))
			return i;
		if (x->node_case == NODE(COLUMN_REF) && e->node_case == NODE(COLUMN_REF) &&
		    tree_colref_suffix_equal(x->column_ref, e->column_ref))
			return i;
	}
	return -1;
}

/* The shard column for an expression: an existing one when the same, else a new one. */
static int ship_add(gather_t *g, ship_kind_t kind, const PgQuery__Node *e)
{
	PgQuery__Node *copy;

	if (kind != SHIP_PART)
		e = tree_strip_collate(e);
	if (e == NULL || tree_stopped(&g->t))
		return -1;
	for (int i = 0; i < g->n_ship; i++) {
		bool same_kind =
		    kind == SHIP_PART ? g->ship[i].kind == SHIP_PART : g->ship[i].kind != SHIP_PART;

		if (same_kind && tree_equal(g->ship[i].expr, e)) {
			if (kind == SHIP_GROUP)
				g->ship[i].kind = SHIP_GROUP;
			return i;
		}
	}
	if (g->n_ship == g->cap_ship) {
		int cap = g->cap_ship > 0 ? 2 * g->cap_ship : 16;
		ship_t *n = tree_alloc(&g->t, (size_t)cap * sizeof *n);

		if (n == NULL)
			return -1;
		if (g->n_ship > 0)
			memcpy(n, g->ship, (size_t)g->n_ship * sizeof *n);
		g->ship = n;
		g->cap_ship = cap;
	}
	copy = tree_copy(&g->t, e);
	if (copy == NULL)
		return -1;
	g->ship[g->n_ship].kind = kind;
	g->ship[g->n_ship].expr = copy;
	return g->n_ship++;
}

/* A DISTINCT aggregate's argument or ORDER BY item: its shipped column, COLLATE kept. */
static void darg_slot(gather_t *g, PgQuery__Node **slot)
{
	PgQuery__Node *e = *slot;
	int k;

	if (e == NULL || e->node_case == NODE(A_CONST))
		return;
	if (e->node_case == NODE(COLLATE_CLAUSE)) {
		k = ship_add(g, SHIP_DARG, e->collate_clause->arg);
		if (k >= 0)
			e->collate_clause->arg = mk_colref(g, k);
		return;
	}
	k = ship_add(g, SHIP_DARG, e);
	if (k >= 0)
		*slot = mk_colref(g, k);
}

/* A partial aggregate: the call itself (renamed), with its arguments and FILTER. */
static int ship_partial(gather_t *g, const PgQuery__Node *call, const char *rename)
{
	PgQuery__Node *p = tree_copy(&g->t, call);
	int k;

	if (p == NULL)
		return -1;
	if (rename != NULL) {
		PgQuery__FuncCall *f = p->func_call;

		f->funcname = tree_list(&g->t, 1);
		if (f->funcname == NULL || (f->funcname[0] = tree_string(&g->t, rename)) == NULL)
			return -1;
		f->n_funcname = 1;
	}
	p->func_call->location = -1;
	k = ship_add(g, SHIP_PART, p);
	return k;
}

/*
 * min(c) of the final query reads c in the aggregate argument's COLLATE,
 * when it had one: the held column itself has the default collation.
 */
static PgQuery__Node *keep_collate(gather_t *g, const PgQuery__FuncCall *f, PgQuery__Node *call)
{
	const PgQuery__Node *arg = f->n_args == 1 ? f->args[0] : NULL;
	PgQuery__Node *c;

	if (call == NULL || arg == NULL || arg->node_case != NODE(COLLATE_CLAUSE) ||
	    call->node_case != NODE(FUNC_CALL) || call->func_call->n_args != 1)
		return call;
	c = tree_copy(&g->t, arg);
	if (c == NULL)
		return NULL;
	c->collate_clause->arg = call->func_call->args[0];
	call->func_call->args[0] = c;
	return call;
}

static const char combinable[] =
    "count, sum, min, max, avg, bool_and, bool_or, every, bit_and, bit_or, bit_xor, and any "
    "aggregate with DISTINCT";

/* What the final query computes for an aggregate call (the Node n). */
static PgQuery__Node *combine(gather_t *g, PgQuery__Node *n)
{
	const PgQuery__FuncCall *f = n->func_call;
	const char *name = tree_catalog_func_name(f);
	const char *shown = name != NULL ? name : "an aggregate";
	int k, c;

	if (f->agg_within_group) {
		tree_refuse(&g->t,
		            "the ordered-set aggregate %s() (WITHIN GROUP) across shards is not "
		            "supported",
		            shown);
		return NULL;
	}
	if (f->func_variadic) {
		tree_refuse(&g->t, "VARIADIC in %s() across shards is not supported", shown);
		return NULL;
	}
	if (f->agg_distinct) {
		PgQuery__Node *copy;

		if (f->agg_filter != NULL) {
			tree_refuse(
			    &g->t,
			    "%s(DISTINCT ...) FILTER (WHERE ...) across shards is not supported; "
			    "move the condition into the argument (CASE WHEN ... THEN x END)",
			    shown);
			return NULL;
		}
		/* each distinct argument reaches the final query, which aggregates them itself */
		copy = tree_copy(&g->t, n);
		if (copy == NULL)
			return NULL;
		for (size_t i = 0; i < copy->func_call->n_args; i++)
			darg_slot(g, &copy->func_call->args[i]);
		for (size_t i = 0; i < copy->func_call->n_agg_order; i++)
			if (copy->func_call->agg_order[i]->node_case == NODE(SORT_BY))
				darg_slot(g, &copy->func_call->agg_order[i]->sort_by->node);
		return copy;
	}
	if (f->n_agg_order > 0) {
		tree_refuse(&g->t,
		            "%s() with ORDER BY inside across shards is not supported (%s are)",
		            shown, combinable);
		return NULL;
	}
	if (name == NULL) {
		tree_refuse(&g->t, "the aggregate %s() across shards is not supported (%s are)",
		            tree_last_string(f->funcname, f->n_funcname)
		                ? tree_last_string(f->funcname, f->n_funcname)
		                : "?",
		            combinable);
		return NULL;
	}
	if ((strcmp(name, "count") == 0 && (f->agg_star ? f->n_args == 0 : f->n_args == 1)) ||
	    (strcmp(name, "sum") == 0 && f->n_args == 1 && !f->agg_star)) {
		/* counts and sums add up; the cast gives back the partial's own type */
		if ((k = ship_partial(g, n, NULL)) < 0)
			return NULL;
		if (g->zero_if_empty && name[1] == 'o')
			return tree_expr(
			    &g->t, "coalesce(CAST(sum(" ROWS_ALIAS ".c%d) AS " TYPE_MARK "%d), 0)",
			    k, k);
		return tree_expr(&g->t, "CAST(sum(" ROWS_ALIAS ".c%d) AS " TYPE_MARK "%d)", k, k);
	}
	if (f->n_args == 1 && !f->agg_star &&
	    (strcmp(name, "min") == 0 || strcmp(name, "max") == 0 ||
	     strcmp(name, "bool_and") == 0 || strcmp(name, "bool_or") == 0 ||
	     strcmp(name, "every") == 0 || strcmp(name, "bit_and") == 0 ||
	     strcmp(name, "bit_or") == 0 || strcmp(name, "bit_xor") == 0)) {
		/* the aggregate of the partials is the aggregate of the whole */
		const char *final = strcmp(name, "every") == 0 ? "bool_and" : name;

		if ((k = ship_partial(g, n, NULL)) < 0)
			return NULL;
		return keep_collate(g, f, tree_expr(&g->t, "%s(" ROWS_ALIAS ".c%d)", final, k));
	}
	if (strcmp(name, "avg") == 0 && f->n_args == 1 && !f->agg_star) {
		/* the sum of sums over the sum of counts, in the type avg() divides in */
		if ((k = ship_partial(g, n, "sum")) < 0 || (c = ship_partial(g, n, "count")) < 0)
			return NULL;
		/*
		 * The count's sum is numeric; numeric / numeric is avg()'s own
		 * numeric_div, and float8 or interval divide by it as by the
		 * float8 count avg() itself divides by.
		 */
		return tree_expr(&g->t,
		                 "CAST(sum(" ROWS_ALIAS ".c%d) AS " AVG_MARK "%d) / sum(" ROWS_ALIAS
		                 ".c%d)",
		                 k, k, c);
	}
	tree_refuse(&g->t, "the aggregate %s() across shards is not supported (%s are)", shown,
	            combinable);
	return NULL;
}

/*
 * Scalar functions of PostgreSQL's own that a grouped select list often
 * calls (and set-returning ones, which a WHERE would not take): no probe.
 */
static bool known_scalar(const PgQuery__FuncCall *f)
{
	static const char names[] =
	    " abs age array_append array_cat array_length array_lower array_position "
	    "array_remove array_to_json array_to_string array_upper ascii btrim cardinality cbrt "
	    "ceil ceiling char_length character_length chr concat concat_ws date date_part "
	    "date_trunc decode degrees div encode exp extract factorial floor format gcd "
	    "generate_series generate_subscripts initcap isfinite json_array_elements "
	    "json_array_length json_build_array json_build_object json_each json_each_text "
	    "json_extract_path json_extract_path_text json_object_keys json_typeof "
	    "jsonb_array_elements jsonb_array_length jsonb_build_array jsonb_build_object "
	    "jsonb_each jsonb_each_text jsonb_extract_path jsonb_extract_path_text "
	    "jsonb_object_keys jsonb_typeof justify_days justify_hours justify_interval lcm left "
	    "length ln log log10 lower lpad ltrim make_date make_interval make_time "
	    "make_timestamp make_timestamptz md5 mod now octet_length overlay pi position power "
	    "quote_ident quote_literal quote_nullable radians random regexp_match "
	    "regexp_matches regexp_replace regexp_split_to_array regexp_split_to_table repeat "
	    "replace reverse right round row_to_json rpad rtrim scale sign sqrt split_part "
	    "starts_with string_to_array string_to_table strpos substr substring timezone "
	    "to_char to_date to_json to_jsonb to_number to_timestamp translate trim trim_scale "
	    "trunc unnest upper width_bucket ";
	const char *name = tree_catalog_func_name(f);
	char word[72];
	int n;

	if (name == NULL)
		return false;
	if (f->n_funcname == 2)
		return true; /* pg_catalog.x, and not an aggregate: a function of PostgreSQL's own
		              */
	n = snprintf(word, sizeof word, " %s ", name);
	return n > 0 && (size_t)n < sizeof word && strstr(names, word) != NULL;
}

/*
 * A call of a function the router does not know stays in the final query,
 * where an aggregate would aggregate the held rows instead of the shard's:
 * wrong. So each shard's WHERE also holds `true OR f(...) IS NULL`, which
 * PostgreSQL refuses at once when f is an aggregate ("aggregate functions
 * are not allowed in WHERE") and folds to true, without calling f, when it
 * is not. A call with an aggregate in its arguments cannot be one.
 */
static void probe_unknown(gather_t *g, const PgQuery__Node *call)
{
	aggs_scan_t a = {false, false, false};
	PgQuery__Node *copy, *probe;

	for (size_t i = 0; i < call->func_call->n_args; i++)
		aggs_slot(&g->t, &call->func_call->args[i], &a);
	if (a.agg || tree_stopped(&g->t))
		return;
	copy = tree_copy(&g->t, call);
	probe = tree_expr(&g->t, "(true OR 1 IS NULL)");
	if (copy == NULL || probe == NULL || probe->node_case != NODE(BOOL_EXPR) ||
	    probe->bool_expr->n_args != 2 ||
	    probe->bool_expr->args[1]->node_case != NODE(NULL_TEST)) {
		g->t.nomem = !g->t.refused;
		return;
	}
	probe->bool_expr->args[1]->null_test->arg = copy;
	g->probes = tree_and(&g->t, g->probes, probe);
}

/* A function call of the select list that may be a user-defined aggregate. */
static bool unknown_call(const PgQuery__Node *n)
{
	return n->node_case == NODE(FUNC_CALL) && n->func_call->over == NULL &&
	       !is_aggregate(n->func_call) && !known_scalar(n->func_call);
}

/* Probe each such call of a streaming SELECT's select list; subqueries are their shard's own. */
static void probe_slot(tree_t *t, PgQuery__Node **slot, void *g)
{
	PgQuery__Node *n = *slot;

	if (n == NULL || tree_stopped(t) || n->node_case == NODE(SUB_LINK))
		return;
	if (unknown_call(n))
		probe_unknown(g, n);
	tree_each_slot(t, tree_inner(n), probe_slot, g);
}

typedef struct unknown_scan {
	bool found;
} unknown_scan_t;

static void unknown_slot(tree_t *t, PgQuery__Node **slot, void *arg)
{
	unknown_scan_t *u = arg;
	PgQuery__Node *n = *slot;

	if (n == NULL || u->found || n->node_case == NODE(SUB_LINK))
		return;
	if (unknown_call(n)) {
		u->found = true;
		return;
	}
	tree_each_slot(t, tree_inner(n), unknown_slot, u);
}

bool gather_calls_unknown(const PgQuery__SelectStmt *s)
{
	unknown_scan_t u = {false};
	tree_t t;

	tree_init(&t);
	for (size_t i = 0; i < s->n_target_list && !u.found; i++)
		if (s->target_list[i]->node_case == NODE(RES_TARGET))
			unknown_slot(&t, &s->target_list[i]->res_target->val, &u);
	tree_free(&t);
	return u.found;
}

static void fin_slot(tree_t *t, PgQuery__Node **slot, void *g);

/*
 * Rewrite an expression of the final query: group expressions read their
 * shipped column, aggregates combine their partials, and nothing else may
 * read the shards' rows.
 */
static void fin_expr(gather_t *g, PgQuery__Node **slot)
{
	PgQuery__Node *n = *slot;
	int k;

	if (n == NULL || tree_stopped(&g->t))
		return;
	if (n->node_case != NODE(COLLATE_CLAUSE) && (k = find_group(g, n)) >= 0) {
		*slot = mk_colref(g, k);
		if (*slot == NULL)
			g->t.nomem = true;
		return;
	}
	switch (n->node_case) {
	case NODE(FUNC_CALL):
		if (n->func_call->over != NULL) {
			tree_refuse(&g->t, "window functions across shards are not supported");
			return;
		}
		if (is_aggregate(n->func_call)) {
			PgQuery__Node *c = combine(g, n);

			if (c != NULL)
				*slot = c;
			else if (!g->t.refused)
				g->t.nomem = true;
			return;
		}
		if (!known_scalar(n->func_call)) {
			const char *up = g->in_unknown;

			probe_unknown(g, n);
			g->in_unknown =
			    tree_last_string(n->func_call->funcname, n->func_call->n_funcname);
			tree_each_slot(&g->t, tree_inner(n), fin_slot, g);
			g->in_unknown = up;
			return;
		}
		break;
	case NODE(COLUMN_REF): {
		char col[128];

		if (tree_is_star(n)) {
			tree_refuse(&g->t,
			            "* with aggregates, GROUP BY or DISTINCT across shards is not "
			            "supported; name the columns");
			return;
		}
		tree_colref_text(n->column_ref, col, sizeof col);
		tree_refuse(
		    &g->t,
		    "column %s must appear in the GROUP BY clause or be used in an aggregate "
		    "function when the query runs on several shards%s%.60s%s",
		    col, g->in_unknown ? " (pgshard knows only built-in aggregates, not " : "",
		    g->in_unknown ? g->in_unknown : "", g->in_unknown ? "())" : "");
		return;
	}
	case NODE(PARAM_REF):
		tree_refuse(&g->t,
		            "parameter $%d outside WHERE, GROUP BY and aggregate arguments across "
		            "shards is "
		            "not supported; write its value",
		            n->param_ref->number);
		return;
	case NODE(SUB_LINK):
		tree_refuse(&g->t,
		            "a subquery in the select list, HAVING or ORDER BY of a query with "
		            "aggregates, GROUP BY or DISTINCT across shards is not supported");
		return;
	case NODE(GROUPING_FUNC):
		tree_refuse(&g->t, "GROUPING() across shards is not supported");
		return;
	default:
		break;
	}
	tree_each_slot(&g->t, tree_inner(n), fin_slot, g);
}

static void fin_slot(tree_t *t, PgQuery__Node **slot, void *g)
{
	(void)t;
	fin_expr(g, slot);
}

/* ORDER BY 2, ORDER BY name-of-an-output-column: the final query's output column too. */
static bool names_output(const gather_t *g, const PgQuery__Node *e)
{
	const char *name = tree_bare_name(e);
	int pos;

	if (tree_int_const(e, &pos))
		return true;
	if (name == NULL)
		return false;
	for (size_t i = 0; i < g->s->n_target_list; i++)
		if (g->names[i] != NULL && strcmp(g->names[i], name) == 0)
			return true;
	return false;
}

/* The expression an ORDER BY / DISTINCT ON / GROUP BY item stands for in the shard's terms. */
static const PgQuery__Node *item_expr(const gather_t *g, const PgQuery__Node *e)
{
	const char *name = tree_bare_name(e);
	int pos;

	if (tree_int_const(e, &pos)) {
		if (pos < 1 || (size_t)pos > g->s->n_target_list)
			return NULL;
		return g->s->target_list[pos - 1]->res_target->val;
	}
	if (name != NULL)
		for (size_t i = 0; i < g->s->n_target_list; i++)
			if (g->names[i] != NULL && strcmp(g->names[i], name) == 0)
				return g->s->target_list[i]->res_target->val;
	return e;
}

/* LIMIT $1 in the final query: the value, as a literal (a text value stays text). */
static void limit_slot(tree_t *t, PgQuery__Node **slot, void *arg)
{
	gather_t *g = arg;
	PgQuery__Node *n = *slot;
	const route_param_t *p;
	int64_t v;
	shard_key_t key;

	if (n->node_case != NODE(PARAM_REF)) {
		tree_each_slot(t, tree_inner(n), limit_slot, arg);
		return;
	}
	p = param_of(g, n->param_ref->number);
	if (p == NULL) {
		if (!g->check)
			tree_refuse(t,
			            "LIMIT/OFFSET across shards needs the value of parameter $%d",
			            n->param_ref->number);
		return;
	}
	if (p->data == NULL || p->len < 0) {
		*slot = tree_text_const(t, NULL, 0, true);
	} else if (p->format == 0) {
		*slot = tree_text_const(t, (const char *)p->data, (size_t)p->len, false);
	} else if (shard_key_from_binary(CFG_KEY_BIGINT, p->type_oid, p->data, (size_t)p->len,
	                                 &key) == 0) {
		v = key.i;
		*slot = tree_int(t, v);
	} else {
		tree_refuse(
		    t,
		    "LIMIT/OFFSET across shards must be an integer (binary parameter $%d is "
		    "not one)",
		    n->param_ref->number);
		return;
	}
	if (*slot == NULL)
		t->nomem = true;
}

static PgQuery__Node *mk_rows_item(gather_t *g)
{
	PgQuery__RangeVar *rv = tree_alloc(&g->t, sizeof *rv);
	PgQuery__Alias *a = tree_alloc(&g->t, sizeof *a);

	if (rv == NULL || a == NULL)
		return NULL;
	pg_query__range_var__init(rv);
	pg_query__alias__init(a);
	a->aliasname = tree_strdup(&g->t, ROWS_ALIAS);
	rv->relname = tree_strdup(&g->t, ROWS_REL);
	rv->relpersistence = tree_strdup(&g->t, "p");
	rv->inh = true;
	rv->alias = a;
	rv->location = -1;
	return tree_node(&g->t, NODE(RANGE_VAR), rv);
}

/* Each GROUP BY item's expression, shipped as a group column. */
static void ship_groups(gather_t *g)
{
	const PgQuery__SelectStmt *s = g->s;

	for (size_t i = 0; i < s->n_group_clause && !tree_stopped(&g->t); i++) {
		const PgQuery__Node *e = s->group_clause[i];
		const char *name = tree_bare_name(e);
		int pos;

		if (e->node_case == NODE(GROUPING_SET)) {
			tree_refuse(
			    &g->t,
			    "GROUPING SETS, ROLLUP and CUBE across shards are not supported");
			return;
		}
		if (tree_int_const(e, &pos)) {
			if (pos < 1 || (size_t)pos > s->n_target_list ||
			    tree_is_star(s->target_list[pos - 1]->res_target->val)) {
				tree_refuse(&g->t, "GROUP BY position %d is not in the select list",
				            pos);
				return;
			}
			e = s->target_list[pos - 1]->res_target->val;
		} else if (name != NULL) {
			/*
			 * PostgreSQL takes a bare GROUP BY name for an input column when
			 * the FROM has one, else for the output column; which one, only
			 * the catalog knows.
			 */
			for (size_t t = 0; t < s->n_target_list; t++) {
				const PgQuery__Node *v = s->target_list[t]->res_target->val;
				const char *tn = g->names[t];

				if (tn == NULL || strcmp(tn, name) != 0)
					continue;
				if (v->node_case == NODE(COLUMN_REF) &&
				    strcmp(tree_last_string(v->column_ref->fields,
				                            v->column_ref->n_fields)
				               ? tree_last_string(v->column_ref->fields,
				                                  v->column_ref->n_fields)
				               : "",
				           name) == 0)
					continue;
				tree_refuse(
				    &g->t,
				    "GROUP BY %s names an output column across shards, which is "
				    "not "
				    "supported; write its position (GROUP BY %zu) or its "
				    "expression",
				    name, t + 1);
				return;
			}
		}
		if (tree_find(&g->t, e, NODE(SUB_LINK), false) != NULL) {
			tree_refuse(&g->t, "a subquery in GROUP BY across shards is not supported");
			return;
		}
		ship_add(g, SHIP_GROUP, e);
	}
}

/* The shard query of a finalizing plan. */
static PgQuery__SelectStmt *shard_select(gather_t *g, PgQuery__WithClause *with,
                                         PgQuery__Node **from, size_t n_from, PgQuery__Node *where)
{
	const PgQuery__SelectStmt *s = g->s;
	PgQuery__SelectStmt *sh = tree_alloc(&g->t, sizeof *sh);
	size_t n_group = 0;

	if (sh == NULL)
		return NULL;
	pg_query__select_stmt__init(sh);
	if ((sh->target_list = tree_list(&g->t, (size_t)g->n_ship)) == NULL ||
	    (sh->group_clause = tree_list(&g->t, (size_t)g->n_ship)) == NULL)
		return NULL;
	sh->op = PG_QUERY__SET_OPERATION__SETOP_NONE;
	sh->limit_option = PG_QUERY__LIMIT_OPTION__LIMIT_OPTION_DEFAULT;
	sh->with_clause = with;
	sh->from_clause = from;
	sh->n_from_clause = n_from;
	sh->where_clause = where;
	for (int i = 0; i < g->n_ship; i++) {
		char name[24];

		snprintf(name, sizeof name, "c%d", i);
		if ((sh->target_list[i] = tree_res_target(&g->t, name, g->ship[i].expr)) == NULL)
			return NULL;
		if (!g->distinct_mode && g->ship[i].kind != SHIP_PART &&
		    (sh->group_clause[n_group++] = tree_int(&g->t, i + 1)) == NULL)
			return NULL;
	}
	sh->n_target_list = (size_t)g->n_ship;
	sh->n_group_clause = n_group;
	if (!g->distinct_mode)
		return sh;
	/* DISTINCT: each shard's distinct rows; DISTINCT ON: each shard's first of each */
	sh->n_group_clause = 0;
	sh->distinct_clause = g->sh_distinct;
	sh->n_distinct_clause = s->n_distinct_clause;
	if (g->sh_sort != NULL) {
		sh->sort_clause = g->sh_sort;
		sh->n_sort_clause = s->n_sort_clause;
	}
	return sh;
}

/*
 * DISTINCT and DISTINCT ON of the shard query, in terms of its FROM (a
 * position or an output name stands for its select-list expression), taken
 * before the final query's rewrite changes the select list.
 */
static bool shard_distinct(gather_t *g, bool plain)
{
	const PgQuery__SelectStmt *s = g->s;

	g->sh_distinct = tree_list(&g->t, s->n_distinct_clause);
	if (g->sh_distinct == NULL)
		return false;
	for (size_t i = 0; i < s->n_distinct_clause; i++) {
		const PgQuery__Node *e = s->distinct_clause[i];

		g->sh_distinct[i] = plain ? tree_copy(&g->t, e) : tree_copy(&g->t, item_expr(g, e));
		if (g->sh_distinct[i] == NULL)
			return false;
	}
	if (plain)
		return true; /* the final query orders the distinct rows */
	g->sh_sort = tree_list(&g->t, s->n_sort_clause);
	if (g->sh_sort == NULL)
		return false;
	for (size_t i = 0; i < s->n_sort_clause; i++) {
		PgQuery__Node *sb = tree_copy(&g->t, s->sort_clause[i]);
		PgQuery__Node *e;

		if (sb == NULL)
			return false;
		e = sb->sort_by->node;
		if (e != NULL && e->node_case != NODE(COLLATE_CLAUSE) &&
		    (sb->sort_by->node = tree_copy(&g->t, item_expr(g, e))) == NULL)
			return false;
		g->sh_sort[i] = sb;
	}
	return true;
}

static int plan_finalizing(gather_t *g, const aggs_scan_t *a, PgQuery__SelectStmt **shard)
{
	PgQuery__SelectStmt *s = g->s;
	PgQuery__WithClause *with = s->with_clause;
	PgQuery__Node **from = s->from_clause, *where = s->where_clause;
	size_t n_from = s->n_from_clause;
	bool plain_distinct =
	    s->n_distinct_clause == 1 && s->distinct_clause[0]->node_case == NODE(_NOT_SET);
	int n_group = 0;
	PgQuery__Node **group;

	g->distinct_mode = !a->agg && s->n_group_clause == 0 && s->having_clause == NULL;
	g->zero_if_empty = s->n_group_clause == 0 && a->distinct_agg;
	for (size_t i = 0; i < s->n_target_list; i++)
		if (tree_is_star(s->target_list[i]->res_target->val)) {
			tree_refuse(&g->t,
			            "* with aggregates, GROUP BY or DISTINCT across shards is not "
			            "supported; name the columns");
			return -1;
		}
	if (g->distinct_mode) {
		/* the rows themselves are the groups */
		for (size_t i = 0; i < s->n_target_list; i++)
			ship_add(g, SHIP_GROUP, s->target_list[i]->res_target->val);
		for (size_t i = 0;
		     i < s->n_distinct_clause + s->n_sort_clause && !tree_stopped(&g->t); i++) {
			const PgQuery__Node *e, *x;

			if (i < s->n_distinct_clause) {
				if (plain_distinct)
					continue;
				e = s->distinct_clause[i];
			} else {
				e = s->sort_clause[i - s->n_distinct_clause]->sort_by->node;
			}
			if ((x = item_expr(g, e)) == NULL) {
				tree_refuse(&g->t, "%s position is not in the select list",
				            i < s->n_distinct_clause ? "DISTINCT ON" : "ORDER BY");
				return -1;
			}
			if (tree_find(&g->t, x, NODE(SUB_LINK), false) != NULL) {
				tree_refuse(
				    &g->t,
				    "a subquery in DISTINCT ON or ORDER BY across shards is not "
				    "supported");
				return -1;
			}
			ship_add(g, SHIP_GROUP, x);
		}
		if (!tree_stopped(&g->t) && !shard_distinct(g, plain_distinct))
			goto nomem;
	} else {
		ship_groups(g);
	}
	if (tree_stopped(&g->t))
		return -1;
	for (int i = 0; i < g->n_ship; i++)
		if (g->ship[i].kind == SHIP_GROUP)
			n_group++;

	/* the final query: the statement over the held rows */
	for (size_t i = 0; i < s->n_target_list && !tree_stopped(&g->t); i++) {
		PgQuery__ResTarget *r = s->target_list[i]->res_target;

		if (r->n_indirection > 0) {
			tree_refuse(&g->t, "a select-list entry with indirection is not supported");
			return -1;
		}
		r->name = (char *)g->names[i];
		fin_expr(g, &r->val);
	}
	if (s->having_clause != NULL)
		fin_expr(g, &s->having_clause);
	for (size_t i = 0; i < s->n_sort_clause && !tree_stopped(&g->t); i++) {
		PgQuery__SortBy *sb = s->sort_clause[i]->sort_by;

		if (!names_output(g, sb->node))
			fin_expr(g, &sb->node);
	}
	for (size_t i = 0; i < s->n_distinct_clause && !plain_distinct && !tree_stopped(&g->t); i++)
		if (!names_output(g, s->distinct_clause[i]))
			fin_expr(g, &s->distinct_clause[i]);
	if (s->limit_count != NULL && !tree_stopped(&g->t))
		limit_slot(&g->t, &s->limit_count, g);
	if (s->limit_offset != NULL && !tree_stopped(&g->t))
		limit_slot(&g->t, &s->limit_offset, g);
	if (tree_stopped(&g->t))
		return -1;
	if (g->n_ship == 0 && ship_add(g, SHIP_PART, tree_expr(&g->t, "count(*)")) < 0) {
		g->t.nomem = !g->t.refused;
		return -1;
	}

	group = tree_list(&g->t, (size_t)n_group);
	s->from_clause = tree_list(&g->t, 1);
	if (group == NULL || s->from_clause == NULL ||
	    (s->from_clause[0] = mk_rows_item(g)) == NULL)
		goto nomem;
	n_group = 0;
	for (int i = 0; i < g->n_ship && !g->distinct_mode; i++)
		if (g->ship[i].kind == SHIP_GROUP && (group[n_group++] = mk_colref(g, i)) == NULL)
			goto nomem;
	s->n_from_clause = 1;
	s->where_clause = NULL;
	s->with_clause = NULL;
	s->group_clause = group;
	s->n_group_clause = (size_t)n_group;
	s->group_distinct = false;

	if (g->probes != NULL && (where = tree_and(&g->t, where, g->probes)) == NULL)
		goto nomem;
	*shard = shard_select(g, with, from, n_from, where);
	if (*shard == NULL)
		goto nomem;
	return 0;
nomem:
	g->t.nomem = !g->t.refused;
	return -1;
}

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

	scan_select_aggs(g, s, &a);
	refuse_common(g, s, &a);
	if (tree_stopped(&g->t))
		return -1;
	finalize =
	    a.agg || s->n_group_clause > 0 || s->having_clause != NULL || s->n_distinct_clause > 0;
	ns.literals = finalize;
	scan_reserved(g, &s->base, &ns);
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
			probe_slot(&g->t, &s->target_list[i]->res_target->val, g);
		if (g->probes != NULL &&
		    (s->where_clause = tree_and(&g->t, s->where_clause, g->probes)) == NULL) {
			g->t.nomem = !g->t.refused;
			return -1;
		}
		if (plan_streaming(g, out) < 0)
			return -1;
		shard = s;
	} else if (plan_finalizing(g, &a, &shard) < 0) {
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

int gather_plan_make(const char *sql, const route_param_t *params, int n_params, gather_plan_t *out,
                     char sqlstate[6], char *err, size_t errlen)
{
	PgQuery__ParseResult *tree;
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
	tree = tree_parse(&g.t, sql);
	if (tree != NULL && tree->n_stmts != 1)
		tree_refuse(
		    &g.t, "a SELECT on several shards whose rows the proxy merges cannot share its "
		          "query string with other statements; send it alone");
	else if (tree != NULL && (tree->stmts[0]->stmt == NULL ||
	                          tree->stmts[0]->stmt->node_case != NODE(SELECT_STMT)))
		tree_refuse(&g.t, "only a SELECT has a gather plan");
	else if (tree != NULL)
		g.s = tree->stmts[0]->stmt->select_stmt;
	if (g.s != NULL && plan(&g, out) == 0)
		rc = 0;
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

void gather_plan_free(gather_plan_t *p)
{
	if (p == NULL)
		return;
	free(p->shard_sql);
	free(p->keys);
	for (int i = 0; i < p->n_parts; i++)
		free(p->parts[i].text);
	free(p->parts);
	p->shard_sql = NULL;
	p->keys = NULL;
	p->parts = NULL;
	p->n_keys = p->n_parts = 0;
}
