/*
 * tree.c — libpg_query's protobuf trees in an arena: making nodes, deep
 * copies, walks that can replace what they visit, and the way from SQL
 * text to a tree and back (see tree.h).
 *
 * The walks go through protobuf-c's descriptors rather than a switch over
 * node types, so that no node type (there are some 250) can be missed by
 * them. Deep copies pack and unpack: protobuf-c has no copy of its own,
 * and packing is exact for every message type.
 */
#include "router/tree.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/tree_int.h"

#define CHUNK_SIZE 16384

struct tree_chunk {
	struct tree_chunk *next;
	size_t used, size;
	max_align_t data[];
};

/* ---- the arena and the outcome ---- */

void *tree_alloc(tree_t *t, size_t n)
{
	tree_chunk_t *c = t->chunks;
	void *p;

	n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
	if (c == NULL || c->size - c->used < n) {
		size_t size = n > CHUNK_SIZE ? n : CHUNK_SIZE;

		c = malloc(sizeof *c + size);
		if (c == NULL) {
			t->nomem = true;
			return NULL;
		}
		c->next = t->chunks;
		c->used = 0;
		c->size = size;
		t->chunks = c;
	}
	p = (char *)c->data + c->used;
	c->used += n;
	memset(p, 0, n);
	return p;
}

static void *pb_alloc(void *data, size_t size)
{
	return tree_alloc(data, size);
}

static void pb_free(void *data, void *p)
{
	(void)data;
	(void)p; /* the arena goes at once */
}

void tree_init(tree_t *t)
{
	memset(t, 0, sizeof *t);
	t->alloc.alloc = pb_alloc;
	t->alloc.free = pb_free;
	t->alloc.allocator_data = t;
}

void tree_free(tree_t *t)
{
	while (t->chunks != NULL) {
		tree_chunk_t *next = t->chunks->next;

		free(t->chunks);
		t->chunks = next;
	}
}

char *tree_strdup(tree_t *t, const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = tree_alloc(t, n);

	if (p != NULL)
		memcpy(p, s, n);
	return p;
}

void tree_refuse(tree_t *t, const char *fmt, ...)
{
	va_list ap;

	if (t->refused || t->nomem)
		return;
	t->refused = true;
	va_start(ap, fmt);
	vsnprintf(t->err, sizeof t->err, fmt, ap);
	va_end(ap);
}

bool tree_stopped(const tree_t *t)
{
	return t->refused || t->nomem;
}

/* ---- names ---- */

const char *tree_str_of(const PgQuery__Node *n)
{
	if (n == NULL || n->node_case != PG_QUERY__NODE__NODE_STRING || n->string == NULL)
		return NULL;
	return n->string->sval;
}

/* Built-in aggregates of PostgreSQL 15 (user-defined ones are not known by name). */
bool tree_is_aggregate_name(const char *name)
{
	static const char aggs[] =
	    " array_agg avg bit_and bit_or bit_xor bool_and bool_or count every json_agg"
	    " json_object_agg jsonb_agg jsonb_object_agg max min range_agg range_intersect_agg"
	    " string_agg sum xmlagg corr covar_pop covar_samp regr_avgx regr_avgy regr_count"
	    " regr_intercept regr_r2 regr_slope regr_sxx regr_sxy regr_syy stddev stddev_pop"
	    " stddev_samp variance var_pop var_samp mode percentile_cont percentile_disc rank"
	    " dense_rank percent_rank cume_dist ";
	char word[64];
	int n = snprintf(word, sizeof word, " %s ", name);

	return n > 0 && (size_t)n < sizeof word && strchr(name, ' ') == NULL &&
	       strstr(aggs, word) != NULL;
}

/* The function's own name when it is unqualified or in pg_catalog, else NULL. */
const char *tree_catalog_func_name(const PgQuery__FuncCall *f)
{
	if (f->n_funcname == 1)
		return tree_str_of(f->funcname[0]);
	if (f->n_funcname == 2 && tree_str_of(f->funcname[0]) != NULL &&
	    strcmp(tree_str_of(f->funcname[0]), "pg_catalog") == 0)
		return tree_str_of(f->funcname[1]);
	return NULL;
}

/* ---- comparing trees, and a masked statement with its original ---- */

/* The text PostgreSQL keeps for a constant, as route_keys.c reads it (keys_value). */
static bool const_is_literal(const PgQuery__AConst *c, const route_param_t *v, char kind)
{
	char buf[32];
	const char *text = NULL;

	if (c->isnull || v->data == NULL || v->len < 0)
		return false;
	switch (c->val_case) {
	case PG_QUERY__A__CONST__VAL_IVAL:
		if (kind != 'i')
			return false;
		snprintf(buf, sizeof buf, "%d", c->ival != NULL ? (int)c->ival->ival : 0);
		text = buf;
		break;
	case PG_QUERY__A__CONST__VAL_FVAL:
		if (kind != 'f')
			return false;
		text = c->fval != NULL ? c->fval->fval : NULL;
		break;
	case PG_QUERY__A__CONST__VAL_SVAL:
		if (kind != 's')
			return false;
		text = c->sval != NULL ? c->sval->sval : NULL;
		break;
	default:
		return false;
	}
	return text != NULL && strlen(text) == (size_t)v->len && memcmp(text, v->data, v->len) == 0;
}

static bool msg_match(const ProtobufCMessage *a, const ProtobufCMessage *b,
                      const route_literals_t *lits, int depth);

static bool value_match(const ProtobufCFieldDescriptor *f, const void *a, const void *b,
                        const route_literals_t *lits, int depth)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *ma = *(const ProtobufCMessage *const *)a;
		const ProtobufCMessage *mb = *(const ProtobufCMessage *const *)b;

		if (ma == NULL || mb == NULL)
			return ma == mb;
		return msg_match(ma, mb, lits, depth + 1);
	}
	case PROTOBUF_C_TYPE_STRING: {
		const char *sa = *(const char *const *)a, *sb = *(const char *const *)b;

		if (sa == NULL || sb == NULL)
			return sa == sb;
		return strcmp(sa, sb) == 0;
	}
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *ba = a, *bb = b;

		return ba->len == bb->len &&
		       (ba->len == 0 || memcmp(ba->data, bb->data, ba->len) == 0);
	}
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return memcmp(a, b, 8) == 0;
	case PROTOBUF_C_TYPE_BOOL:
		return memcmp(a, b, sizeof(protobuf_c_boolean)) == 0;
	default: /* 32-bit integers, enums, float */
		return memcmp(a, b, 4) == 0;
	}
}

static size_t field_size(const ProtobufCFieldDescriptor *f)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(void *);
	case PROTOBUF_C_TYPE_STRING:
		return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return 8;
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	default:
		return 4;
	}
}

/* Where the original has a literal and the masked tree that literal's parameter. */
static bool literal_match(const PgQuery__Node *a, const PgQuery__Node *b,
                          const route_literals_t *lits)
{
	int k;

	if (lits == NULL || b->node_case != PG_QUERY__NODE__NODE_PARAM_REF)
		return false;
	k = b->param_ref->number - lits->first;
	if (k < 0 || k >= lits->n)
		return false;
	return a->node_case == PG_QUERY__NODE__NODE_A_CONST &&
	       const_is_literal(a->a_const, &lits->values[k], lits->kinds[k]);
}

static bool msg_match(const ProtobufCMessage *a, const ProtobufCMessage *b,
                      const route_literals_t *lits, int depth)
{
	const ProtobufCMessageDescriptor *d = a->descriptor;
	const char *pa = (const char *)a, *pb = (const char *)b;

	if (d != b->descriptor || depth > MAX_DEPTH + 8)
		return false;
	if (d == &pg_query__node__descriptor) {
		const PgQuery__Node *na = (const PgQuery__Node *)a, *nb = (const PgQuery__Node *)b;
		const ProtobufCFieldDescriptor *f;

		if (nb->node_case == PG_QUERY__NODE__NODE_PARAM_REF &&
		    na->node_case != PG_QUERY__NODE__NODE_PARAM_REF)
			return literal_match(na, nb, lits);
		/* straight to the member that is set, as each_child does */
		if (na->node_case != nb->node_case)
			return false;
		if (na->node_case == PG_QUERY__NODE__NODE__NOT_SET)
			return true;
		f = protobuf_c_message_descriptor_get_field(d, (unsigned)na->node_case);
		return f != NULL && value_match(f, pa + f->offset, pb + f->offset, lits, depth);
	}
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];

		/* where in the text a node is: masking moves everything after a literal */
		if (strcmp(f->name, "location") == 0 || strcmp(f->name, "stmt_location") == 0 ||
		    strcmp(f->name, "stmt_len") == 0)
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t na, nb, sz = field_size(f);
			const char *arr_a, *arr_b;

			memcpy(&na, pa + f->quantifier_offset, sizeof na);
			memcpy(&nb, pb + f->quantifier_offset, sizeof nb);
			if (na != nb)
				return false;
			memcpy(&arr_a, pa + f->offset, sizeof arr_a);
			memcpy(&arr_b, pb + f->offset, sizeof arr_b);
			for (size_t j = 0; j < na; j++)
				if (!value_match(f, arr_a + j * sz, arr_b + j * sz, lits, depth))
					return false;
			continue;
		}
		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			uint32_t ca, cb;

			memcpy(&ca, pa + f->quantifier_offset, sizeof ca);
			memcpy(&cb, pb + f->quantifier_offset, sizeof cb);
			if (ca != cb)
				return false;
			if (ca != f->id)
				continue;
		}
		if (!value_match(f, pa + f->offset, pb + f->offset, lits, depth))
			return false;
	}
	return true;
}

bool tree_msg_equal(const ProtobufCMessage *a, const ProtobufCMessage *b)
{
	return msg_match(a, b, NULL, 0);
}

bool tree_match_masked(const ProtobufCMessage *a, const ProtobufCMessage *b,
                       const route_literals_t *lits)
{
	return msg_match(a, b, lits, 0);
}

/* ---- reading nodes ---- */

ProtobufCMessage *tree_inner(const PgQuery__Node *n)
{
	const ProtobufCFieldDescriptor *f;
	ProtobufCMessage *m;

	if (n == NULL || n->node_case == NODE(_NOT_SET))
		return NULL;
	f = protobuf_c_message_descriptor_get_field(&pg_query__node__descriptor,
	                                            (unsigned)n->node_case);
	if (f == NULL || f->type != PROTOBUF_C_TYPE_MESSAGE)
		return NULL;
	memcpy(&m, (const char *)n + f->offset, sizeof m);
	return m;
}

bool tree_equal(const PgQuery__Node *a, const PgQuery__Node *b)
{
	return a != NULL && b != NULL && tree_msg_equal(&a->base, &b->base);
}

const char *tree_last_string(PgQuery__Node *const *items, size_t n)
{
	const char *s = NULL;

	for (size_t i = 0; i < n; i++)
		if (tree_str_of(items[i]) != NULL)
			s = tree_str_of(items[i]);
	return s;
}

const char *tree_bare_name(const PgQuery__Node *n)
{
	if (n == NULL || n->node_case != NODE(COLUMN_REF) || n->column_ref->n_fields != 1)
		return NULL;
	return tree_str_of(n->column_ref->fields[0]);
}

bool tree_int_const(const PgQuery__Node *n, int *v)
{
	if (n == NULL || n->node_case != NODE(A_CONST) || n->a_const->isnull ||
	    n->a_const->val_case != PG_QUERY__A__CONST__VAL_IVAL)
		return false;
	*v = n->a_const->ival != NULL ? n->a_const->ival->ival : 0;
	return true;
}

bool tree_is_star(const PgQuery__Node *val)
{
	if (val == NULL)
		return false;
	if (val->node_case == NODE(COLUMN_REF)) {
		const PgQuery__ColumnRef *c = val->column_ref;

		return c->n_fields > 0 && c->fields[c->n_fields - 1]->node_case == NODE(A_STAR);
	}
	if (val->node_case == NODE(A_INDIRECTION)) {
		const PgQuery__AIndirection *a = val->a_indirection;

		return a->n_indirection > 0 &&
		       a->indirection[a->n_indirection - 1]->node_case == NODE(A_STAR);
	}
	return false;
}

const PgQuery__Node *tree_strip_collate(const PgQuery__Node *e)
{
	while (e != NULL && e->node_case == NODE(COLLATE_CLAUSE))
		e = e->collate_clause->arg;
	return e;
}

bool tree_colref_suffix_equal(const PgQuery__ColumnRef *a, const PgQuery__ColumnRef *b)
{
	size_t n = a->n_fields < b->n_fields ? a->n_fields : b->n_fields;

	if (n == 0)
		return false;
	for (size_t i = 1; i <= n; i++) {
		const char *x = tree_str_of(a->fields[a->n_fields - i]);
		const char *y = tree_str_of(b->fields[b->n_fields - i]);

		if (x == NULL || y == NULL || strcmp(x, y) != 0)
			return false;
	}
	return true;
}

void tree_colref_text(const PgQuery__ColumnRef *c, char *out, size_t len)
{
	size_t used = 0;

	out[0] = '\0';
	for (size_t i = 0; i < c->n_fields && used + 1 < len; i++) {
		const char *s = tree_str_of(c->fields[i]);
		int n = snprintf(out + used, len - used, "%s%s", i > 0 ? "." : "", s ? s : "*");

		if (n < 0)
			break;
		used += (size_t)n < len - used ? (size_t)n : len - used - 1;
	}
}

/* ---- making nodes ---- */

PgQuery__Node *tree_node(tree_t *t, PgQuery__Node__NodeCase c, void *inner)
{
	const ProtobufCFieldDescriptor *f =
	    protobuf_c_message_descriptor_get_field(&pg_query__node__descriptor, (unsigned)c);
	PgQuery__Node *n;

	if (inner == NULL || f == NULL || (n = tree_alloc(t, sizeof *n)) == NULL)
		return NULL;
	pg_query__node__init(n);
	n->node_case = c;
	memcpy((char *)n + f->offset, &inner, sizeof inner);
	return n;
}

PgQuery__Node *tree_string(tree_t *t, const char *s)
{
	PgQuery__String *str = tree_alloc(t, sizeof *str);

	if (str == NULL)
		return NULL;
	pg_query__string__init(str);
	str->sval = tree_strdup(t, s);
	return str->sval != NULL ? tree_node(t, NODE(STRING), str) : NULL;
}

PgQuery__Node **tree_list(tree_t *t, size_t n)
{
	return tree_alloc(t, (n > 0 ? n : 1) * sizeof(PgQuery__Node *));
}

PgQuery__Node *tree_res_target(tree_t *t, const char *name, PgQuery__Node *val)
{
	PgQuery__ResTarget *r = tree_alloc(t, sizeof *r);

	if (r == NULL || val == NULL)
		return NULL;
	pg_query__res_target__init(r);
	r->name = name != NULL ? tree_strdup(t, name) : NULL;
	r->val = val;
	r->location = -1;
	return tree_node(t, NODE(RES_TARGET), r);
}

PgQuery__Node *tree_int(tree_t *t, int64_t v)
{
	PgQuery__AConst *c = tree_alloc(t, sizeof *c);

	if (c == NULL)
		return NULL;
	pg_query__a__const__init(c);
	c->location = -1;
	if (v >= INT32_MIN && v <= INT32_MAX) {
		c->ival = tree_alloc(t, sizeof *c->ival);
		if (c->ival == NULL)
			return NULL;
		pg_query__integer__init(c->ival);
		c->ival->ival = (int32_t)v;
		c->val_case = PG_QUERY__A__CONST__VAL_IVAL;
	} else {
		char buf[32];

		snprintf(buf, sizeof buf, "%lld", (long long)v);
		c->fval = tree_alloc(t, sizeof *c->fval);
		if (c->fval == NULL)
			return NULL;
		pg_query__float__init(c->fval);
		c->fval->fval = tree_strdup(t, buf);
		c->val_case = PG_QUERY__A__CONST__VAL_FVAL;
	}
	return tree_node(t, NODE(A_CONST), c);
}

PgQuery__Node *tree_text_const(tree_t *t, const char *s, size_t len, bool null)
{
	PgQuery__AConst *c = tree_alloc(t, sizeof *c);
	char *text;

	if (c == NULL)
		return NULL;
	pg_query__a__const__init(c);
	c->location = -1;
	if (null) {
		c->isnull = true;
		return tree_node(t, NODE(A_CONST), c);
	}
	c->sval = tree_alloc(t, sizeof *c->sval);
	text = tree_alloc(t, len + 1);
	if (c->sval == NULL || text == NULL)
		return NULL;
	pg_query__string__init(c->sval);
	memcpy(text, s, len);
	c->sval->sval = text;
	c->val_case = PG_QUERY__A__CONST__VAL_SVAL;
	return tree_node(t, NODE(A_CONST), c);
}

PgQuery__Node *tree_and(tree_t *t, PgQuery__Node *a, PgQuery__Node *b)
{
	PgQuery__BoolExpr *e;

	if (a == NULL)
		return b;
	e = tree_alloc(t, sizeof *e);
	if (e == NULL)
		return NULL;
	pg_query__bool_expr__init(e);
	e->boolop = PG_QUERY__BOOL_EXPR_TYPE__AND_EXPR;
	e->location = -1;
	if (a->node_case == NODE(BOOL_EXPR) &&
	    a->bool_expr->boolop == PG_QUERY__BOOL_EXPR_TYPE__AND_EXPR) {
		/* one AND of them all, as PostgreSQL's parser would make it */
		if ((e->args = tree_list(t, a->bool_expr->n_args + 1)) == NULL)
			return NULL;
		memcpy(e->args, a->bool_expr->args, a->bool_expr->n_args * sizeof *e->args);
		e->n_args = a->bool_expr->n_args;
	} else {
		if ((e->args = tree_list(t, 2)) == NULL)
			return NULL;
		e->args[e->n_args++] = a;
	}
	e->args[e->n_args++] = b;
	return tree_node(t, NODE(BOOL_EXPR), e);
}

bool tree_append_target(tree_t *t, PgQuery__SelectStmt *s, const char *name, PgQuery__Node *expr)
{
	PgQuery__Node **list = tree_list(t, s->n_target_list + 1);
	PgQuery__Node *r = tree_res_target(t, name, expr);

	if (list == NULL || r == NULL)
		return false;
	if (s->n_target_list > 0)
		memcpy(list, s->target_list, s->n_target_list * sizeof *list);
	list[s->n_target_list] = r;
	s->target_list = list;
	s->n_target_list++;
	return true;
}

PgQuery__Node *tree_copy(tree_t *t, const PgQuery__Node *n)
{
	PgQuery__Node *c;
	uint8_t *buf;
	size_t len;

	if (n == NULL || tree_stopped(t))
		return NULL;
	len = pg_query__node__get_packed_size(n);
	buf = malloc(len > 0 ? len : 1);
	if (buf == NULL) {
		t->nomem = true;
		return NULL;
	}
	pg_query__node__pack(n, buf);
	c = pg_query__node__unpack(&t->alloc, len, buf);
	free(buf);
	if (c == NULL)
		t->nomem = true;
	return c;
}

PgQuery__Node *tree_expr(tree_t *t, const char *fmt, ...)
{
	char sql[512] = "SELECT ";
	PgQuery__ParseResult *tree;
	const PgQuery__Node *st;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sql + 7, sizeof sql - 7, fmt, ap);
	va_end(ap);
	if (tree_stopped(t) || (tree = tree_parse(t, sql)) == NULL)
		return NULL;
	st = tree->n_stmts == 1 ? tree->stmts[0]->stmt : NULL;
	if (st == NULL || st->node_case != NODE(SELECT_STMT) || st->select_stmt->n_target_list != 1)
		return NULL;
	return st->select_stmt->target_list[0]->res_target->val;
}

/* ---- walking ---- */

void tree_each_slot(tree_t *t, ProtobufCMessage *m, tree_slot_fn fn, void *arg)
{
	const ProtobufCMessageDescriptor *d;
	char *base = (char *)m;

	if (m == NULL)
		return;
	d = m->descriptor;
	for (unsigned i = 0; i < d->n_fields && !tree_stopped(t); i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		bool is_node = f->descriptor == &pg_query__node__descriptor;

		if (f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			ProtobufCMessage **arr;
			size_t n;

			memcpy(&n, base + f->quantifier_offset, sizeof n);
			memcpy(&arr, base + f->offset, sizeof arr);
			for (size_t j = 0; j < n && arr != NULL && !tree_stopped(t); j++) {
				if (arr[j] == NULL)
					continue;
				if (is_node)
					fn(t, (PgQuery__Node **)&arr[j], arg);
				else
					tree_each_slot(t, arr[j], fn, arg);
			}
			continue;
		}
		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			uint32_t c;

			memcpy(&c, base + f->quantifier_offset, sizeof c);
			if (c != f->id)
				continue;
		}
		{
			ProtobufCMessage *sub;

			memcpy(&sub, base + f->offset, sizeof sub);
			if (sub == NULL)
				continue;
			if (is_node)
				fn(t, (PgQuery__Node **)(void *)(base + f->offset), arg);
			else
				tree_each_slot(t, sub, fn, arg);
		}
	}
}

typedef struct find {
	PgQuery__Node__NodeCase c;
	bool into_sublinks;
	const PgQuery__Node *found;
} find_t;

static void find_slot(tree_t *t, PgQuery__Node **slot, void *arg)
{
	find_t *f = arg;

	if (f->found != NULL)
		return;
	if ((*slot)->node_case == f->c) {
		f->found = *slot;
		return;
	}
	if ((*slot)->node_case == NODE(SUB_LINK) && !f->into_sublinks)
		return;
	tree_each_slot(t, tree_inner(*slot), find_slot, arg);
}

const PgQuery__Node *tree_find(tree_t *t, const PgQuery__Node *n, PgQuery__Node__NodeCase c,
                               bool into_sublinks)
{
	find_t f = {c, into_sublinks, NULL};
	PgQuery__Node *root = (PgQuery__Node *)n;

	if (n != NULL)
		find_slot(t, &root, &f);
	return f.found;
}

/* ---- SQL text in and out ---- */

PgQuery__ParseResult *tree_parse(tree_t *t, const char *sql)
{
	PgQueryProtobufParseResult r = pg_query_parse_protobuf(sql);
	PgQuery__ParseResult *tree = NULL;

	if (r.error == NULL) {
		tree = pg_query__parse_result__unpack(&t->alloc, r.parse_tree.len,
		                                      (const uint8_t *)r.parse_tree.data);
		if (tree == NULL)
			t->nomem = true;
	} else {
		tree_refuse(t, "pgshard cannot parse its own rewrite (%s): %s", r.error->message,
		            sql);
	}
	pg_query_free_protobuf_parse_result(r);
	return tree;
}

static void deparse_error(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void deparse_error(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
}

char *tree_deparse(const PgQuery__ParseResult *tree, const char *what, char *err, size_t errlen)
{
	PgQueryProtobuf pb;
	PgQueryDeparseResult d;
	char *sql = NULL;

	pb.len = pg_query__parse_result__get_packed_size(tree);
	pb.data = malloc(pb.len > 0 ? pb.len : 1);
	if (pb.data == NULL) {
		deparse_error(err, errlen, "out of memory");
		return NULL;
	}
	pg_query__parse_result__pack(tree, (uint8_t *)pb.data);
	d = pg_query_deparse_protobuf(pb);
	if (d.error != NULL)
		deparse_error(err, errlen, "cannot write %s: %s", what, d.error->message);
	else if ((sql = strdup(d.query)) == NULL)
		deparse_error(err, errlen, "out of memory");
	pg_query_free_deparse_result(d);
	free(pb.data);
	return sql;
}

char *tree_deparse_select(tree_t *t, PgQuery__SelectStmt *s, const char *what)
{
	PgQuery__ParseResult tree;
	PgQuery__RawStmt raw, *stmts[1];
	PgQuery__Node node;
	char *sql;

	pg_query__parse_result__init(&tree);
	pg_query__raw_stmt__init(&raw);
	pg_query__node__init(&node);
	node.node_case = NODE(SELECT_STMT);
	node.select_stmt = s;
	raw.stmt = &node;
	stmts[0] = &raw;
	tree.version = PG_VERSION_NUM;
	tree.n_stmts = 1;
	tree.stmts = stmts;
	sql = tree_deparse(&tree, what, t->err, sizeof t->err);
	if (sql == NULL) {
		if (strcmp(t->err, "out of memory") == 0)
			t->nomem = true;
		else
			t->refused = true;
	}
	return sql;
}
