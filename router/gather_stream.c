/*
 * gather_stream.c — the gather planner's streaming rewrite (the shards
 * sort by the statement's ORDER BY and the proxy merges the sorted
 * streams), and what the finalizing rewrite shares with it: the state of
 * one planning call, nodes, parameter values, and what no gather plan
 * takes. See gather.c for the picture.
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

#define HIDDEN_PREFIX "pgshard_k"

/* ---- the state of one planning call ---- */

void gather_init(gather_t *g)
{
	memset(g, 0, sizeof *g);
	tree_init(&g->t);
}

/* ---- nodes ---- */

/* pgshard_p.c<k>: held column k in the final query */
PgQuery__Node *gather_colref(gather_t *g, int k)
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

const route_param_t *gather_param_of(const gather_t *g, int number)
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
	const route_param_t *p = gather_param_of(g, number);
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

void gather_scan_reserved(gather_t *g, const ProtobufCMessage *m, names_scan_t *ns)
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
				gather_scan_reserved(g, v, ns);
			}
		}
	}
}

bool gather_is_aggregate(const PgQuery__FuncCall *f)
{
	const char *name = tree_catalog_func_name(f);

	return f->over == NULL &&
	       (f->agg_star || f->agg_distinct || f->n_agg_order > 0 || f->agg_filter != NULL ||
	        f->agg_within_group || (name != NULL && tree_is_aggregate_name(name)));
}

void gather_aggs_slot(tree_t *t, PgQuery__Node **slot, void *arg)
{
	aggs_scan_t *a = arg;
	const PgQuery__Node *n = *slot;

	if (n->node_case == NODE(SUB_LINK))
		return; /* a level of its own */
	if (n->node_case == NODE(FUNC_CALL)) {
		if (n->func_call->over != NULL)
			a->window = true;
		else if (gather_is_aggregate(n->func_call)) {
			a->agg = true;
			a->distinct_agg |= n->func_call->agg_distinct;
			return; /* nested aggregates are PostgreSQL's error */
		}
	}
	tree_each_slot(t, tree_inner(n), gather_aggs_slot, arg);
}

void gather_scan_select_aggs(gather_t *g, PgQuery__SelectStmt *s, aggs_scan_t *a)
{
	for (size_t i = 0; i < s->n_target_list; i++)
		gather_aggs_slot(&g->t, &s->target_list[i], a);
	if (s->having_clause != NULL)
		gather_aggs_slot(&g->t, &s->having_clause, a);
	for (size_t i = 0; i < s->n_sort_clause; i++)
		gather_aggs_slot(&g->t, &s->sort_clause[i], a);
	for (size_t i = 0; i < s->n_distinct_clause; i++)
		if (s->distinct_clause[i]->node_case != NODE(_NOT_SET))
			gather_aggs_slot(&g->t, &s->distinct_clause[i], a);
}

/* Constructs that neither mode can merge. */
void gather_refuse_common(gather_t *g, const PgQuery__SelectStmt *s, const aggs_scan_t *a)
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

int gather_plan_streaming(gather_t *g, gather_plan_t *out)
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
