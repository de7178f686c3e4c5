/*
 * route_keys.c — turning the values a statement compares a shard key with
 * (constants, parameters, the plan cache's masked literals, casts, arrays
 * in text and binary form) into shard keys and shards, and describing them
 * in the reasons a plan gives.
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

/* ---- key values: constants, parameters, casts, arrays ---- */

/*
 * The type a cast names, when casting a key value to it cannot turn one
 * key into another (integers, text, varchar without a length, uuid); 0 for
 * any other cast, whose result the router does not try to predict
 * ('42.7'::int8 is 43, 'abcd'::varchar(2) is 'ab').
 */
static uint32_t cast_oid(const PgQuery__TypeName *tn, bool *array)
{
	static const struct {
		const char *name;
		uint32_t oid;
	} casts[] = {
	    {"int8", SHARD_OID_INT8}, {"int4", SHARD_OID_INT4},       {"int2", SHARD_OID_INT2},
	    {"text", SHARD_OID_TEXT}, {"varchar", SHARD_OID_VARCHAR}, {"uuid", SHARD_OID_UUID},
	};
	const char *name;

	if (tn == NULL || tn->setof || tn->pct_type || tn->n_typmods > 0 || tn->n_names == 0 ||
	    tn->n_names > 2)
		return 0;
	if (tn->n_names == 2 && !streq(tree_str_of(tn->names[0]), "pg_catalog"))
		return 0;
	name = tree_str_of(tn->names[tn->n_names - 1]);
	*array = tn->n_array_bounds > 0;
	for (size_t i = 0; i < sizeof casts / sizeof casts[0]; i++)
		if (streq(name, casts[i].name))
			return casts[i].oid;
	return 0;
}

const route_param_t *route_input(const route_literals_t *l, const route_param_t *params,
                                 int n_params, int number, char *kind)
{
	*kind = 0;
	if (l != NULL && number >= l->first && number - l->first < l->n) {
		*kind = l->kinds[number - l->first];
		return &l->values[number - l->first];
	}
	if (params != NULL && number >= 1 && number <= n_params)
		return &params[number - 1];
	return NULL;
}

/* Parameter `number`: the caller's, a masked literal's, or NULL when not given. */
static const route_param_t *input_at(const walk_t *w, int number)
{
	char kind;

	return route_input(w->lits, w->params, w->n_params, number, &kind);
}

/*
 * input_at for the plan: every read that decides something goes through
 * here (descriptions for people read input_at), and a second input makes
 * the plan not generic.
 */
static const route_param_t *param_at(walk_t *w, int number)
{
	if (w->gen_input != 0 && w->gen_input != number)
		w->gen_bad = true;
	w->gen_input = number;
	return input_at(w, number);
}

/* The kind of literal a parameter stands for ('i', 'f', 's'), or 0 for a real parameter. */
static char literal_kind(const walk_t *w, int number)
{
	char kind;

	route_input(w->lits, w->params, w->n_params, number, &kind);
	return kind;
}

/*
 * A numeric literal (5.0, 50e-1, 5.00E+0) that is an integer, as the
 * integer's text in out ("5"): PostgreSQL compares a bigint key with it as
 * with that integer, and stores it so in a bigint column. false when it has
 * a non-zero fraction, or does not fit.
 */
static bool numeric_integral(const char *text, char *out, size_t len)
{
	char digits[24];
	size_t n = 0, frac = 0;
	long exp = 0;
	bool neg = false, seen_dot = false;
	const char *p = text;

	if (*p == '-' || *p == '+')
		neg = *p++ == '-';
	for (; (*p >= '0' && *p <= '9') || (*p == '.' && !seen_dot); p++) {
		if (*p == '.') {
			seen_dot = true;
			continue;
		}
		if (n == 0 && *p == '0' && !seen_dot)
			continue; /* leading zeros */
		if (n + 1 >= sizeof digits)
			return false;
		digits[n++] = *p;
		frac += seen_dot;
	}
	if (*p == 'e' || *p == 'E') {
		char *end;

		exp = strtol(p + 1, &end, 10);
		if (end == p + 1 || *end != '\0' || exp > 40 || exp < -40)
			return false;
	} else if (*p != '\0') {
		return false;
	}
	exp -= (long)frac; /* value = digits * 10^exp */
	while (exp < 0 && n > 0 && digits[n - 1] == '0') {
		n--;
		exp++;
	}
	if (n == 0) {
		snprintf(out, len, "0");
		return true;
	}
	if (exp < 0 || n + (size_t)exp > 19 || len < 21)
		return false;
	while (exp-- > 0)
		digits[n++] = '0';
	digits[n] = '\0';
	out[0] = '-';
	memcpy(out + neg, digits, n + 1);
	return true;
}

/* A bigint key from a numeric literal's text: its integer when it is one. */
static int numeric_key(cfg_key_type_t type, const char *text, keyval_t *kv)
{
	if (type == CFG_KEY_BIGINT && numeric_integral(text, kv->buf, sizeof kv->buf))
		text = kv->buf;
	return shard_key_from_text(type, text, strlen(text), &kv->key) == 0 ? KV_OK : KV_INVALID;
}

/* The key of type `type` parameter p stands for (kind: its literal's, 0 for a parameter). */
static int input_key(cfg_key_type_t type, const route_param_t *p, char kind, uint32_t oid,
                     keyval_t *kv)
{
	int rc;

	if (p->data == NULL || p->len < 0)
		return KV_NULL;
	if (type == CFG_KEY_BIGINT && kind == 'f' && p->format == 0 && p->len < 64) {
		char text[64];

		memcpy(text, p->data, (size_t)p->len);
		text[p->len] = '\0';
		return numeric_key(type, text, kv);
	}
	if (p->format == 0)
		rc = shard_key_from_text(type, (const char *)p->data, (size_t)p->len, &kv->key);
	else
		rc = shard_key_from_binary(type, p->type_oid != 0 ? p->type_oid : oid, p->data,
		                           (size_t)p->len, &kv->key);
	return rc == 0 ? KV_OK : KV_INVALID;
}

static int param_value(walk_t *w, int number, uint32_t oid, keyval_t *kv)
{
	const route_param_t *p = param_at(w, number);
	int map = (int)(w->smap - w->ctx->maps), rc;

	if (p == NULL) {
		w->params_missing = true;
		return KV_UNKNOWN;
	}
	rc = input_key(w->smap->cfg->key, p, literal_kind(w, number), oid, kv);
	/* generic only when the input is one key of one map, read one way */
	if (rc != KV_OK || (w->gen_map >= 0 && (w->gen_map != map || w->gen_oid != oid)))
		w->gen_bad = true;
	w->gen_map = map;
	w->gen_oid = oid;
	return rc;
}

void route_input_desc(const route_param_t *p, char kind, int number, char *out, size_t len)
{
	if (kind == 0 || p == NULL || p->data == NULL || p->len < 0)
		snprintf(out, len, "$%d", number);
	else if (kind == 's')
		snprintf(out, len, "'%.*s%s'", p->len > 40 ? 40 : (int)p->len,
		         (const char *)p->data, p->len > 40 ? "..." : "");
	else
		snprintf(out, len, "%.*s", (int)p->len, (const char *)p->data);
}

bool route_generic_plan(const route_ctx_t *ctx, const route_plan_t *base,
                        const route_param_t *value, char kind, route_plan_t *out)
{
	const route_generic_t *g = &base->generic;
	const shard_map_t *m;
	keyval_t kv;
	int shard;

	if (g->input <= 0 || g->map < 0 || g->map >= ctx->cfg->n_maps)
		return false;
	m = &ctx->maps[g->map];
	if (input_key(m->cfg->key, value, kind, g->oid, &kv) != KV_OK ||
	    (shard = shard_map_lookup(m, &kv.key)) < 0)
		return false;
	route_plan_copy(out, base);
	shard_set_clear(&out->shards);
	shard_set_add(&out->shards, shard);
	if (out->key_value[0] != '\0')
		shard_key_text(&kv.key, out->key_value, sizeof out->key_value);
	out->key_encoded = shard_key_encoded(&kv.key);
	route_plan_set_steps(out);
	return true;
}

/* The key a node stands for. `oid`: the type a surrounding cast names. */
static int value_of(walk_t *w, const PgQuery__Node *n, uint32_t oid, keyval_t *kv);

int keys_value(walk_t *w, const PgQuery__Node *n, uint32_t oid, keyval_t *kv)
{
	int rc = value_of(w, n, oid, kv);

	if (rc == KV_OK && shard_key_encoded(&kv->key))
		w->key_encoded = true;
	return rc;
}

static int value_of(walk_t *w, const PgQuery__Node *n, uint32_t oid, keyval_t *kv)
{
	cfg_key_type_t type = w->smap->cfg->key;

	if (n == NULL)
		return KV_EXPR;
	switch (n->node_case) {
	case PG_QUERY__NODE__NODE_A_CONST: {
		const PgQuery__AConst *c = n->a_const;
		const char *text = NULL;

		if (c->isnull)
			return KV_NULL;
		switch (c->val_case) {
		case PG_QUERY__A__CONST__VAL_IVAL:
			snprintf(kv->buf, sizeof kv->buf, "%d",
			         c->ival != NULL ? (int)c->ival->ival : 0);
			text = kv->buf;
			break;
		case PG_QUERY__A__CONST__VAL_FVAL:
			if (c->fval == NULL || c->fval->fval == NULL)
				return KV_INVALID;
			return numeric_key(type, c->fval->fval, kv);
		case PG_QUERY__A__CONST__VAL_SVAL:
			text = c->sval != NULL ? c->sval->sval : NULL;
			break;
		default:
			return KV_INVALID;
		}
		if (text == NULL)
			return KV_INVALID;
		return shard_key_from_text(type, text, strlen(text), &kv->key) == 0 ? KV_OK
		                                                                    : KV_INVALID;
	}
	case PG_QUERY__NODE__NODE_PARAM_REF:
		return param_value(w, n->param_ref->number, oid, kv);
	case PG_QUERY__NODE__NODE_TYPE_CAST: {
		bool array = false;
		uint32_t o = cast_oid(n->type_cast->type_name, &array);

		if (o == 0 || array)
			return KV_EXPR;
		return keys_value(w, n->type_cast->arg, o, kv);
	}
	default:
		return KV_EXPR;
	}
}

/*
 * How a value reads in a reason: 42, 'abc', $1, ARRAY[1, 2]. A literal the
 * plan cache masked reads as the literal, as it would unmasked.
 */
void keys_value_desc(const walk_t *w, sb_t *s, const PgQuery__Node *n)
{
	if (n == NULL) {
		sb_printf(s, "?");
		return;
	}
	switch (n->node_case) {
	case PG_QUERY__NODE__NODE_A_CONST: {
		const PgQuery__AConst *c = n->a_const;

		if (c->isnull)
			sb_printf(s, "NULL");
		else if (c->val_case == PG_QUERY__A__CONST__VAL_IVAL)
			sb_printf(s, "%d", c->ival != NULL ? (int)c->ival->ival : 0);
		else if (c->val_case == PG_QUERY__A__CONST__VAL_FVAL && c->fval != NULL)
			sb_printf(s, "%s", c->fval->fval);
		else if (c->val_case == PG_QUERY__A__CONST__VAL_SVAL && c->sval != NULL)
			sb_printf(s, "'%.40s%s'", c->sval->sval,
			          strlen(c->sval->sval) > 40 ? "..." : "");
		else
			sb_printf(s, "(constant)");
		return;
	}
	case PG_QUERY__NODE__NODE_PARAM_REF: {
		int number = n->param_ref->number;
		const route_param_t *p = input_at(w, number);
		char kind = literal_kind(w, number), d[64];

		if ((kind == 'i' || kind == 'f') && p != NULL && p->data != NULL && p->len >= 0) {
			/* a masked number: its whole text, cut by s as the constant's would be */
			sb_printf(s, "%.*s", (int)p->len, (const char *)p->data);
			return;
		}
		route_input_desc(p, kind, number, d, sizeof d);
		sb_printf(s, "%s", d);
		return;
	}
	case PG_QUERY__NODE__NODE_TYPE_CAST:
		keys_value_desc(w, s, n->type_cast->arg);
		return;
	case PG_QUERY__NODE__NODE_A_ARRAY_EXPR:
		sb_printf(s, "ARRAY[");
		for (size_t i = 0; i < n->a_array_expr->n_elements; i++) {
			if (i > 0)
				sb_printf(s, ", ");
			keys_value_desc(w, s, n->a_array_expr->elements[i]);
		}
		sb_printf(s, "]");
		return;
	default:
		sb_printf(s, "(expression)");
		return;
	}
}

void keys_add_shard(walk_t *w, shard_set_t *set, const shard_key_t *k)
{
	int s = shard_map_lookup(w->smap, k);

	if (shard_key_encoded(k))
		w->key_encoded = true;
	if (s >= 0)
		shard_set_add(set, s);
	keys_note(w, k);
}

void keys_note_row(walk_t *w, const shard_key_t *k, int shard)
{
	char text[ROUTE_KEY_TEXT];

	if (w->n_ins_keys == ROUTE_INSERT_KEYS)
		return;
	shard_key_text(k, text, sizeof text);
	for (int i = 0; i < w->n_ins_keys; i++)
		if (strcmp(w->ins_keys[i].text, text) == 0)
			return;
	memcpy(w->ins_keys[w->n_ins_keys].text, text, sizeof text);
	w->ins_keys[w->n_ins_keys++].shard = shard;
}

void keys_note(walk_t *w, const shard_key_t *k)
{
	/* the one key of a statement is its hot-key candidate (route_plan_t.key_value) */
	if (w->n_keys++ == 0)
		shard_key_text(k, w->key_text, sizeof w->key_text);
}

/*
 * The elements of an array in PostgreSQL's text form ({1,2,"x y",NULL},
 * nested braces flattened, as = ANY flattens them), each added to *set.
 * false when the text is not understood or an element is not a key.
 */
static bool text_array_shards(walk_t *w, const char *s, size_t len, shard_set_t *set)
{
	cfg_key_type_t type = w->smap->cfg->key;
	char *tmp;
	size_t i = 0;
	int depth = 0;
	bool ok = false;

	while (i < len && isspace((unsigned char)s[i]))
		i++;
	if (i >= len || s[i] != '{')
		return false; /* also dimension decorations like [1:2]={...} */
	tmp = malloc(len + 1);
	if (tmp == NULL) {
		w->nomem = true;
		return false;
	}
	while (i < len) {
		char c = s[i];
		size_t n = 0;
		bool quoted = false, escaped = false;
		shard_key_t k;

		if (isspace((unsigned char)c) || c == ',') {
			i++;
			continue;
		}
		if (c == '{') {
			depth++;
			i++;
			continue;
		}
		if (c == '}') {
			if (--depth < 0)
				goto out;
			i++;
			if (depth == 0) {
				while (i < len && isspace((unsigned char)s[i]))
					i++;
				ok = i == len;
				goto out;
			}
			continue;
		}
		if (depth == 0)
			goto out;
		if (c == '"') {
			quoted = true;
			for (i++; i < len && s[i] != '"'; i++) {
				if (s[i] == '\\' && i + 1 < len)
					i++;
				tmp[n++] = s[i];
			}
			if (i >= len)
				goto out;
			i++;
		} else {
			size_t keep =
			    0; /* length up to the last character that is not trailing space */

			for (; i < len && s[i] != ',' && s[i] != '}' && s[i] != '{'; i++) {
				if (s[i] == '\\' && i + 1 < len) {
					i++;
					escaped = true;
					tmp[n++] = s[i];
					keep = n;
					continue;
				}
				tmp[n++] = s[i];
				if (!isspace((unsigned char)s[i]))
					keep = n;
			}
			n = keep;
		}
		if (!quoted && !escaped && n == 4 && strncasecmp(tmp, "null", 4) == 0)
			continue; /* a NULL element matches nothing */
		if (shard_key_from_text(type, tmp, n, &k) != 0)
			goto out;
		keys_add_shard(w, set, &k);
	}
out:
	free(tmp);
	return ok;
}

static bool get_be32(const uint8_t *d, size_t len, size_t *pos, int32_t *out)
{
	uint32_t v;

	if (len - *pos < 4)
		return false;
	v = (uint32_t)d[*pos] << 24 | (uint32_t)d[*pos + 1] << 16 | (uint32_t)d[*pos + 2] << 8 |
	    (uint32_t)d[*pos + 3];
	*pos += 4;
	memcpy(out, &v, sizeof v);
	return true;
}

/* An array parameter in binary format (array_send): header, dimensions, elements. */
static bool binary_array_shards(walk_t *w, const uint8_t *d, size_t len, shard_set_t *set)
{
	cfg_key_type_t type = w->smap->cfg->key;
	int32_t ndim, flags, elemtype, dim, lbound, elen;
	size_t pos = 0;
	int64_t total = 1;

	if (!get_be32(d, len, &pos, &ndim) || !get_be32(d, len, &pos, &flags) ||
	    !get_be32(d, len, &pos, &elemtype))
		return false;
	if (ndim == 0)
		return true;
	if (ndim < 0 || ndim > 6)
		return false;
	for (int32_t i = 0; i < ndim; i++) {
		if (!get_be32(d, len, &pos, &dim) || !get_be32(d, len, &pos, &lbound) || dim < 0)
			return false;
		total *= dim;
		if (total > (int64_t)len)
			return false; /* every element takes at least four bytes */
	}
	for (int64_t i = 0; i < total; i++) {
		shard_key_t k;

		if (!get_be32(d, len, &pos, &elen))
			return false;
		if (elen == -1)
			continue;
		if (elen < 0 || (size_t)elen > len - pos)
			return false;
		if (shard_key_from_binary(type, (uint32_t)elemtype, d + pos, (size_t)elen, &k) != 0)
			return false;
		keys_add_shard(w, set, &k);
		pos += (size_t)elen;
	}
	return pos == len;
}

/* The shards of every element of the array in key = ANY(array). */
bool keys_array_shards(walk_t *w, const PgQuery__Node *n, uint32_t oid, shard_set_t *set)
{
	if (n == NULL)
		return false;
	switch (n->node_case) {
	case PG_QUERY__NODE__NODE_A_ARRAY_EXPR:
		for (size_t i = 0; i < n->a_array_expr->n_elements; i++) {
			const PgQuery__Node *e = n->a_array_expr->elements[i];
			keyval_t kv;
			int st;

			if (e != NULL && e->node_case == PG_QUERY__NODE__NODE_A_ARRAY_EXPR) {
				if (!keys_array_shards(w, e, oid, set))
					return false;
				continue;
			}
			st = keys_value(w, e, oid, &kv);
			if (st == KV_NULL)
				continue;
			if (st != KV_OK)
				return false;
			keys_add_shard(w, set, &kv.key);
		}
		return true;
	case PG_QUERY__NODE__NODE_TYPE_CAST: {
		bool array = false;
		uint32_t o = cast_oid(n->type_cast->type_name, &array);

		if (o == 0 || !array)
			return false;
		return keys_array_shards(w, n->type_cast->arg, o, set);
	}
	case PG_QUERY__NODE__NODE_A_CONST: {
		const PgQuery__AConst *c = n->a_const;

		if (c->isnull || c->val_case != PG_QUERY__A__CONST__VAL_SVAL || c->sval == NULL)
			return false;
		return text_array_shards(w, c->sval->sval, strlen(c->sval->sval), set);
	}
	case PG_QUERY__NODE__NODE_PARAM_REF: {
		const route_param_t *p = param_at(w, n->param_ref->number);

		w->gen_bad = true; /* several keys in one input */
		if (p == NULL) {
			w->params_missing = true;
			return false;
		}
		if (p->data == NULL || p->len < 0)
			return false;
		if (p->format == 0)
			return text_array_shards(w, (const char *)p->data, (size_t)p->len, set);
		return binary_array_shards(w, p->data, (size_t)p->len, set);
	}
	default:
		return false;
	}
}
