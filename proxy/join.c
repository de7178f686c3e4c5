/*
 * join.c — a SELECT joining sharded tables across shards (ROUTE_STEP_JOIN),
 * run in the steps router/join_plan.h plans, on the client's links (with
 * three or four tables, PROBE repeats for each table after the first, with
 * the keys of the side the plan says; join_t.step is the side being
 * fetched):
 *
 *   DRIVE  the driving side's statement on the shards its filters leave,
 *          with the client's parameters its filters use: each row gives its
 *          join key (text) and the row itself (its row type's text); its
 *          RowDescription gives the key's type. The row is kept as an element
 *          of an array literal; the key goes into the probe batches of the
 *          shard that owns it (of every probe shard when the join column is
 *          not the probe table's key, or the key's type or text does not
 *          say its shard). NULL keys match nothing and are not looked up.
 *   PROBE  on each probe shard with keys: one Parse of the probe statement,
 *          a Bind and Execute per batch of JOIN_BATCH_KEYS keys ($1, an
 *          array literal of the key's type), one Sync. Its rows are kept
 *          the same way.
 *   FINAL  the statement with the client's parameters and both sides' rows
 *          ($n+1, $n+2: array literals of the tables' row types) on one
 *          shard (a driving one), with the client's result formats; its
 *          answer is the client's, passed on as it comes.
 *
 * Each side may hold max_join_rows rows, and the rows and keys held
 * merge_memory bytes (54000 naming the setting); a shard's error, or a
 * cancel (the client's CancelRequest reaches whichever member has a
 * statement outstanding, cancel.c), ends the join with that error. The
 * proxy holds the rows as text only until the final statement is sent.
 *
 * Replies are read here, message by message; the pending queue says whose
 * a reply is (what joining the client's transaction sent is not ours).
 */
#include "proxy/join.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/context.h"
#include "proxy/log.h"
#include "proxy/pending.h"
#include "proxy/sbuf.h"
#include "proxy/server.h"
#include "proxy/session.h"
#include "proxy/tx.h"
#include "proxy/wire.h"
#include "router/join_plan.h"

/* The pending-queue marks of the join's own statements on a member. */
enum {
	PEND_DRIVE = 'j',
	PEND_PROBE = 'p',
	PEND_FINAL = 'f',
	PEND_FLOATS = 'g',   /* SHOW extra_float_digits */
	PEND_SUB_ROWS = 'r', /* a subquery's table rows */
	PEND_SUB_RUN = 'q',  /* the subquery over them */
};

/* A growing array literal: "{" then quoted elements separated by commas. */
typedef struct lit {
	char *p;
	size_t len, cap;
	uint64_t n;
} lit_t;

/* One statement's parameters. */
typedef struct stmt_params {
	route_param_t *v; /* cap of them */
	int cap;
	int n;
} stmt_params_t;

typedef struct member {
	server_t *s; /* NULL once lost */
	int shard;
	int waiting;                    /* the join's own ReadyForQuery still to come */
	lit_t *batches[JOIN_MAX_SIDES]; /* per probed side: its keys for this shard,
	                                   JOIN_BATCH_KEYS each */
	int n_batches[JOIN_MAX_SIDES];
} member_t;

/* The subquery being run first (join_plan_t.subs[sub]) and the answers of those before it. */
typedef struct subrun {
	int sub;    /* the one running; n_subs: all answered */
	int phase;  /* 0 nothing sent yet, 1 its table's rows asked, 2 the subquery itself asked */
	lit_t rows; /* its table's rows */
	uint64_t n; /* its answer's rows so far */
	uint32_t type;                  /* its answer's column type (RowDescription) */
	lit_t values;                   /* an ANY/ALL subquery's values */
	char *scalar;                   /* a scalar subquery's value (NULL: none yet, or NULL) */
	int32_t scalar_len;             /* -1: NULL */
	route_param_t v[JOIN_MAX_SUBS]; /* the answers, typed, as the final statement's params */
	char *text[JOIN_MAX_SUBS];      /* their text */
} subrun_t;

struct join {
	join_plan_t plan;
	member_t *m;
	int n;
	subrun_t sr;                /* the subqueries that run first */
	int step;                   /* the side being fetched (-1: none yet); n_sides: the final
	                               statement */
	lit_t rows[JOIN_MAX_SIDES]; /* each side's rows */
	uint64_t max_rows;
	size_t max_bytes;                   /* merge_memory: the text both sides' rows may take */
	uint32_t key_types[JOIN_MAX_SIDES]; /* per probed side: the type of the column its keys
	                                       come from, from that side's RowDescription */
	size_t key_bytes;                   /* the probe batches' text, all members */
	int float_digits; /* the session's extra_float_digits, as the first member says */
	bool extended;    /* the client's Bind/Execute: no ReadyForQuery, Sync gets it */
	bool describe;    /* ... and it asked for the RowDescription */
	uint8_t *results; /* the client's result format codes (int16 count, codes) */
	size_t results_len;
	route_param_t *client; /* the client's parameters (copies) */
	int n_client;
	uint8_t *client_data;
	stmt_params_t sp;  /* one statement's parameters, as they are put together */
	bool short_params; /* the client's Bind gave fewer parameters than the statement has */
	uint8_t *error;    /* the first ErrorResponse body: the answer */
	size_t error_len;
	char sqlstate[6]; /* or pgshard's own error */
	char message[300];
};

bool join_runs(const route_plan_t *p)
{
	return route_step_routed(p)->kind == ROUTE_STEP_JOIN;
}

/* ---- bookkeeping ---- */

static void lit_free(lit_t *l)
{
	free(l->p);
	memset(l, 0, sizeof *l);
}

static int lit_reserve(lit_t *l, size_t more)
{
	if (l->len + more + 2 > l->cap) {
		size_t cap = l->cap > 0 ? l->cap : 256;
		char *p;

		while (cap < l->len + more + 2)
			cap *= 2;
		if ((p = realloc(l->p, cap)) == NULL)
			return -1;
		l->p = p;
		l->cap = cap;
	}
	return 0;
}

/*
 * One element: double-quoted, with " and \ escaped by a backslash, so that
 * any text (a row's "(1,\"a b\",)", a key with commas or braces) reads back
 * as itself.
 */
static int lit_add(lit_t *l, const uint8_t *v, size_t len)
{
	if (lit_reserve(l, 2 * len + 4) < 0)
		return -1;
	l->p[l->len++] = l->n == 0 ? '{' : ',';
	l->p[l->len++] = '"';
	for (size_t i = 0; i < len; i++) {
		if (v[i] == '"' || v[i] == '\\')
			l->p[l->len++] = '\\';
		l->p[l->len++] = (char)v[i];
	}
	l->p[l->len++] = '"';
	l->n++;
	return 0;
}

/* A NULL element (unquoted). */
static int lit_add_null(lit_t *l)
{
	if (lit_reserve(l, 6) < 0)
		return -1;
	l->p[l->len++] = l->n == 0 ? '{' : ',';
	memcpy(l->p + l->len, "NULL", 4);
	l->len += 4;
	l->n++;
	return 0;
}

/* The literal's text ("{}" with no elements), closed and NUL-terminated in place: once. */
static const char *lit_text(lit_t *l)
{
	if (lit_reserve(l, 2) < 0)
		return NULL;
	if (l->n == 0)
		l->p[l->len++] = '{';
	l->p[l->len++] = '}';
	l->p[l->len] = '\0';
	return l->p;
}

void join_free(client_t *c)
{
	join_t *j = c->join;

	if (j == NULL)
		return;
	for (int i = 0; i < j->n; i++) {
		for (int k = 0; k < JOIN_MAX_SIDES; k++) {
			for (int b = 0; b < j->m[i].n_batches[k]; b++)
				lit_free(&j->m[i].batches[k][b]);
			free(j->m[i].batches[k]);
		}
	}
	free(j->m);
	for (int k = 0; k < JOIN_MAX_SIDES; k++)
		lit_free(&j->rows[k]);
	lit_free(&j->sr.rows);
	lit_free(&j->sr.values);
	free(j->sr.scalar);
	for (int k = 0; k < JOIN_MAX_SUBS; k++)
		free(j->sr.text[k]);
	join_plan_free(&j->plan);
	free(j->results);
	free(j->client);
	free(j->client_data);
	free(j->sp.v);
	free(j->error);
	free(j);
	c->join = NULL;
	c->phase = PH_IDLE;
}

static member_t *member_of(join_t *j, const server_t *s)
{
	for (int i = 0; s != NULL && i < j->n; i++)
		if (j->m[i].s == s)
			return &j->m[i];
	return NULL;
}

bool join_has(const join_t *j, const server_t *s)
{
	for (int i = 0; s != NULL && i < j->n; i++)
		if (j->m[i].s == s)
			return true;
	return false;
}

static void own_error(join_t *j, const char *sqlstate, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void own_error(join_t *j, const char *sqlstate, const char *fmt, ...)
{
	va_list ap;

	if (j->error != NULL || j->sqlstate[0] != '\0')
		return;
	memcpy(j->sqlstate, sqlstate, 6);
	va_start(ap, fmt);
	vsnprintf(j->message, sizeof j->message, fmt, ap);
	va_end(ap);
}

static void keep_error(join_t *j, const uint8_t *body, size_t len)
{
	if (j->error != NULL || j->sqlstate[0] != '\0')
		return;
	j->error = malloc(len > 0 ? len : 1);
	if (j->error == NULL) {
		own_error(j, "53200", "pgshard: out of memory");
		return;
	}
	memcpy(j->error, body, len);
	j->error_len = len;
}

static bool failed(const join_t *j)
{
	return j->error != NULL || j->sqlstate[0] != '\0';
}

/* ---- the rows ---- */

/* The n-th field of a DataRow body: its bytes and length (-1 NULL). 0, or -1. */
static int field_at(const uint8_t *body, size_t len, int n, const uint8_t **v, int32_t *vlen)
{
	wire_reader_t r;
	int16_t count;

	wire_reader_init(&r, body, len);
	if (wire_get_i16(&r, &count) < 0 || n >= count)
		return -1;
	for (int i = 0; i <= n; i++) {
		if (wire_get_i32(&r, vlen) < 0)
			return -1;
		*v = NULL;
		if (*vlen > 0 && wire_get_bytes(&r, (size_t)*vlen, v) < 0)
			return -1;
	}
	return 0;
}

static int batch_add(join_t *j, member_t *m, int side, const uint8_t *key, size_t len)
{
	int n = m->n_batches[side];

	j->key_bytes += 2 * len + 4;
	if (n == 0 || m->batches[side][n - 1].n >= JOIN_BATCH_KEYS) {
		lit_t *b = realloc(m->batches[side], sizeof *b * (size_t)(n + 1));

		if (b == NULL)
			return -1;
		m->batches[side] = b;
		memset(&b[n], 0, sizeof *b);
		m->n_batches[side] = ++n;
	}
	return lit_add(&m->batches[side][n - 1], key, len);
}

/*
 * Whether a key of this type, as text, finds the shard of the probe rows it
 * equals: its equality must be the bytes' (or the number's) equality. Not
 * so for char(n) (trailing blanks do not count) or a type of the user's
 * (citext): those keys go to every probe shard.
 */
static bool key_routable(uint32_t type)
{
	switch (type) {
	case 20:   /* int8 */
	case 21:   /* int2 */
	case 23:   /* int4 */
	case 1700: /* numeric */
	case 25:   /* text */
	case 1043: /* varchar */
	case 19:   /* name */
	case 2950: /* uuid */
		return true;
	default:
		return false;
	}
}

/* A key for probed side p: into the batches of its shards that may hold its matches. */
static int route_key(client_t *c, join_t *j, int p, const uint8_t *key, int32_t len)
{
	const join_side_t *ps = &j->plan.sides[p];
	int shard = -1;

	if (len < 0)
		return 0; /* NULL matches nothing */
	if (ps->by_key && key_routable(j->key_types[p]))
		shard = join_probe_shard(&c->worker->route, ps, (const char *)key, (size_t)len);
	for (int i = 0; i < j->n; i++) {
		member_t *m = &j->m[i];

		if (!shard_set_has(&ps->shards, m->shard) || (shard >= 0 && m->shard != shard))
			continue;
		if (batch_add(j, m, p, key ? key : (const uint8_t *)"", (size_t)len) < 0)
			return -1;
	}
	return 0;
}

static size_t held_bytes(const join_t *j)
{
	size_t n = j->key_bytes + j->sr.rows.len + j->sr.values.len;

	for (int k = 0; k < j->plan.n_sides; k++)
		n += j->rows[k].len;
	return n;
}

/* A row of the side being fetched: its keys for the sides it feeds, then the row. */
static void side_row(client_t *c, join_t *j, const uint8_t *body, size_t len)
{
	const join_side_t *side = &j->plan.sides[j->step];
	lit_t *rows = &j->rows[j->step];
	const uint8_t *row = NULL;
	int32_t row_len = -1;

	if (field_at(body, len, side->n_keys, &row, &row_len) < 0 || row_len < 0) {
		own_error(j, "08P01", "pgshard: a shard sent a join side's row wrongly");
		return;
	}
	if (rows->n >= j->max_rows) {
		own_error(j, "54000",
		          "pgshard: the join would hold more than max_join_rows = %" PRIu64
		          " rows of %s; filter that side further, or raise max_join_rows",
		          j->max_rows, side->table->name);
		return;
	}
	if (held_bytes(j) + 2 * (size_t)row_len > j->max_bytes) {
		own_error(
		    j, "54000",
		    "pgshard: the join would hold more than merge_memory = %zu bytes of rows; "
		    "filter its sides further, or raise merge_memory",
		    j->max_bytes);
		return;
	}
	if (lit_add(rows, row ? row : (const uint8_t *)"", (size_t)row_len) < 0) {
		own_error(j, "53200", "pgshard: out of memory");
		return;
	}
	for (int k = 0; k < side->n_keys; k++) {
		const uint8_t *key = NULL;
		int32_t key_len = -1;

		if (field_at(body, len, k, &key, &key_len) < 0) {
			own_error(j, "08P01", "pgshard: a shard sent a join side's row wrongly");
			return;
		}
		if (route_key(c, j, side->deps[k], key, key_len) < 0) {
			own_error(j, "53200", "pgshard: out of memory");
			return;
		}
	}
}

/* Whether memory for len more bytes of rows is left under merge_memory (else 54000). */
static bool room_for(join_t *j, size_t len)
{
	if (held_bytes(j) + 2 * len <= j->max_bytes)
		return true;
	own_error(j, "54000",
	          "pgshard: the join would hold more than merge_memory = %zu bytes of rows; "
	          "filter its sides further, or raise merge_memory",
	          j->max_bytes);
	return false;
}

/* A row of the table of the subquery running first. */
static void sub_row(join_t *j, const uint8_t *body, size_t len)
{
	const join_sub_t *sb = &j->plan.subs[j->sr.sub];
	const uint8_t *row = NULL;
	int32_t row_len = -1;

	if (field_at(body, len, 0, &row, &row_len) < 0 || row_len < 0) {
		own_error(j, "08P01", "pgshard: a shard sent a subquery's row wrongly");
		return;
	}
	if (j->sr.rows.n >= j->max_rows) {
		own_error(j, "54000",
		          "pgshard: a subquery run first would hold more than max_join_rows = "
		          "%" PRIu64 " rows of %s; filter it further, or raise max_join_rows",
		          j->max_rows, sb->table->name);
		return;
	}
	if (!room_for(j, (size_t)row_len))
		return;
	if (lit_add(&j->sr.rows, row ? row : (const uint8_t *)"", (size_t)row_len) < 0)
		own_error(j, "53200", "pgshard: out of memory");
}

/* A row of the answer of the subquery running first. */
static void sub_answer_row(join_t *j, const uint8_t *body, size_t len)
{
	const join_sub_t *sb = &j->plan.subs[j->sr.sub];
	subrun_t *sr = &j->sr;
	const uint8_t *v = NULL;
	int32_t vlen = -1;

	sr->n++;
	if (sb->kind == JOIN_SUB_EXISTS)
		return; /* a row is all it asks */
	if (field_at(body, len, 0, &v, &vlen) < 0) {
		own_error(j, "08P01", "pgshard: a shard sent a subquery's answer wrongly");
		return;
	}
	if (sb->kind == JOIN_SUB_SCALAR) {
		if (sr->n > 1) {
			/* PostgreSQL's own error for it */
			own_error(j, "21000",
			          "more than one row returned by a subquery used as an expression");
			return;
		}
		sr->scalar_len = vlen;
		if (vlen >= 0) {
			if ((sr->scalar = malloc((size_t)vlen + 1)) == NULL) {
				own_error(j, "53200", "pgshard: out of memory");
				return;
			}
			if (vlen > 0)
				memcpy(sr->scalar, v, (size_t)vlen);
			sr->scalar[vlen] = '\0';
		}
		return;
	}
	if (sr->n > j->max_rows) {
		own_error(j, "54000",
		          "pgshard: the answer of a subquery run first (over %s) would hold more "
		          "than max_join_rows = %" PRIu64
		          " values; filter it further, or raise max_join_rows",
		          sb->table->name, j->max_rows);
		return;
	}
	if (!room_for(j, vlen > 0 ? (size_t)vlen : 4))
		return;
	if ((vlen < 0 ? lit_add_null(&sr->values)
	              : lit_add(&sr->values, v ? v : (const uint8_t *)"", (size_t)vlen)) < 0)
		own_error(j, "53200", "pgshard: out of memory");
}

/*
 * The subquery's answer, once its statement is answered: the final
 * statement's parameter, typed as its column (or the array of it, or bool).
 * 0, or -1 when memory runs out.
 */
static int sub_answer(join_t *j)
{
	subrun_t *sr = &j->sr;
	const join_sub_t *sb = &j->plan.subs[sr->sub];
	route_param_t *v = &sr->v[sr->sub];
	char *text = NULL;

	memset(v, 0, sizeof *v);
	switch (sb->kind) {
	case JOIN_SUB_EXISTS:
		v->type_oid = 16; /* bool */
		if ((text = strdup(sr->n > 0 ? "t" : "f")) == NULL)
			return -1;
		break;
	case JOIN_SUB_SCALAR:
		v->type_oid = sr->type;
		text = sr->scalar; /* NULL without a row, or for NULL */
		sr->scalar = NULL;
		break;
	case JOIN_SUB_ARRAY: {
		const char *lt;

		v->type_oid = join_array_type(sr->type);
		if (v->type_oid == 0) {
			own_error(j, "0A000",
			          "pgshard: a subquery run first (over %s) answers values of type "
			          "%u, which pgshard does not pass as an array yet; cast its "
			          "select-list item to a built-in type",
			          sb->table->name, sr->type);
			return 0;
		}
		if ((lt = lit_text(&sr->values)) == NULL || (text = strdup(lt)) == NULL)
			return -1;
		break;
	}
	}
	sr->text[sr->sub] = text;
	v->data = (const uint8_t *)text;
	v->len = text != NULL ? (int32_t)strlen(text) : -1;
	lit_free(&sr->rows);
	lit_free(&sr->values);
	sr->n = 0;
	sr->type = 0;
	return 0;
}

/* ---- sending ---- */

/* params_of failed: 1 when the client gave fewer parameters, -1 when memory ran out. */
static int params_short(const join_t *j)
{
	return j->short_params ? 1 : -1;
}

/* A text value of ours as a parameter. */
static route_param_t text_param(const char *v)
{
	route_param_t p = {(const uint8_t *)v, (int32_t)strlen(v), 0, 0};

	return p;
}

/*
 * A statement's parameters: the client's whose numbers are in map (n of
 * them), as the client sent them (format and declared type), or the answer
 * of a subquery run first for a number past the client's (typed as that
 * answer), then `first` of ours (text, type unspecified). 0, or -1 when the client gave fewer
 * or memory ran out (j->short_params says which).
 */
static int params_of(join_t *j, stmt_params_t *sp, const route_param_t *first, int n_first,
                     const int *map, int n)
{
	sp->n = 0;
	if (n + n_first + 1 > sp->cap) {
		route_param_t *v = realloc(sp->v, sizeof *v * (size_t)(n + n_first + 1));

		if (v == NULL)
			return -1;
		sp->v = v;
		sp->cap = n + n_first + 1;
	}
	for (int k = 0; k < n; k++) {
		int sub =
		    map[k] - j->plan.n_params - 1; /* past the client's: a subquery's answer */

		if (sub >= 0 && sub < j->sr.sub) {
			sp->v[sp->n++] = j->sr.v[sub];
			continue;
		}
		if (map[k] < 1 || map[k] > j->n_client || sub >= 0) {
			j->short_params = true;
			return -1;
		}
		sp->v[sp->n++] = j->client[map[k] - 1];
	}
	for (int k = 0; k < n_first; k++)
		sp->v[sp->n++] = first[k];
	return 0;
}

static void put_parse(wire_buf_t *b, const char *sql, const stmt_params_t *sp)
{
	wire_begin(b, 'P');
	wire_put_cstring(b, "");
	wire_put_cstring(b, sql);
	wire_put_i16(b, (int16_t)sp->n);
	for (int k = 0; k < sp->n; k++)
		wire_put_i32(b, (int32_t)sp->v[k].type_oid);
	wire_end(b);
}

/* A Bind of the unnamed statement; results NULL: every column in text. */
static void put_bind(wire_buf_t *b, const stmt_params_t *sp, const uint8_t *results,
                     size_t results_len)
{
	wire_begin(b, 'B');
	wire_put_cstring(b, "");
	wire_put_cstring(b, "");
	wire_put_i16(b, (int16_t)sp->n);
	for (int k = 0; k < sp->n; k++)
		wire_put_i16(b, sp->v[k].format);
	wire_put_i16(b, (int16_t)sp->n);
	for (int k = 0; k < sp->n; k++) {
		wire_put_i32(b, sp->v[k].data != NULL ? sp->v[k].len : -1);
		if (sp->v[k].data != NULL && sp->v[k].len > 0)
			wire_put_bytes(b, sp->v[k].data, (size_t)sp->v[k].len);
	}
	if (results != NULL)
		wire_put_bytes(b, results, results_len);
	else
		wire_put_i16(b, 0);
	wire_end(b);
}

static int send_run(client_t *c, member_t *m, wire_buf_t *b, uint8_t mark, bool describe)
{
	if (wire_put_run_unnamed(b, describe, true) < 0 ||
	    pending_push(&m->s->pending, mark, PEND_SWALLOW, 0, NULL, NULL) < 0)
		return -1;
	m->s->unnamed_gen = 0; /* its unnamed statement is now this one */
	m->waiting++;
	return server_send(m->s, b->data, b->len);
}

/*
 * The statement of the driving side, or of a side fetched whole, with the
 * client's parameters its filters use.
 */
static int send_side(client_t *c, join_t *j, member_t *m, int p)
{
	wire_buf_t *b = &c->worker->scratch;
	stmt_params_t *sp = &j->sp;
	const join_side_t *d = &j->plan.sides[p];

	if (params_of(j, sp, NULL, 0, d->params, d->n_params) < 0)
		return params_short(j);
	wire_buf_reset(b);
	put_parse(b, d->sql, sp);
	put_bind(b, sp, NULL, 0);
	/* its RowDescription: the types of the keys it gives */
	return send_run(c, m, b, p == 0 ? PEND_DRIVE : PEND_PROBE, p == 0 || d->n_keys > 0);
}

/* The statement of the subquery running first on m: its table's rows, or itself over them,
 * with the client's parameters it uses. */
static int send_sub(client_t *c, join_t *j, member_t *m, bool run)
{
	wire_buf_t *b = &c->worker->scratch;
	stmt_params_t *sp = &j->sp;
	const join_sub_t *sb = &j->plan.subs[j->sr.sub];
	route_param_t rows = text_param("{}");
	bool over_rows = run && !sb->direct; /* ... its table's rows after its parameters */

	if (over_rows) {
		const char *text = lit_text(&j->sr.rows);

		if (text == NULL)
			return -1;
		rows = text_param(text);
	}
	if (params_of(j, sp, &rows, over_rows ? 1 : 0, run ? sb->params : sb->rows_params,
	              run ? sb->n_params : sb->n_rows_params) < 0)
		return params_short(j);
	wire_buf_reset(b);
	put_parse(b, run ? sb->sql : sb->rows_sql, sp);
	put_bind(b, sp, NULL, 0);
	log_msg(LOG_DEBUG, c->id, 0, "join: subquery over %s, %s on shard %d", sb->table->name,
	        run ? "itself" : "its rows", m->shard);
	return send_run(c, m, b, run ? PEND_SUB_RUN : PEND_SUB_ROWS, run);
}

/* Side p's probe statement once, a Bind and Execute per batch of m's keys for it, one Sync. */
static int send_probe(client_t *c, join_t *j, member_t *m, int p)
{
	wire_buf_t *b = &c->worker->scratch;
	stmt_params_t *sp = &j->sp;
	const join_side_t *ps = &j->plan.sides[p];
	route_param_t keys = text_param("{}");

	keys.type_oid = join_array_type(j->key_types[p]);

	if (params_of(j, sp, &keys, 1, ps->params, ps->n_params) < 0)
		return params_short(j);
	/* the probe's $1 is the keys: ours first */
	memmove(&sp->v[1], &sp->v[0], sizeof sp->v[0] * (size_t)(sp->n - 1));
	wire_buf_reset(b);
	sp->v[0] = keys;
	put_parse(b, ps->sql, sp);
	for (int i = 0; i < m->n_batches[p]; i++) {
		const char *text = lit_text(&m->batches[p][i]);

		if (text == NULL)
			return -1;
		sp->v[0].data = (const uint8_t *)text;
		sp->v[0].len = (int32_t)strlen(text);
		put_bind(b, sp, NULL, 0);
		if (i + 1 < m->n_batches[p]) {
			wire_begin(b, 'E');
			wire_put_cstring(b, "");
			wire_put_i32(b, 0);
			wire_end(b);
		}
	}
	log_msg(LOG_DEBUG, c->id, 0, "join: probe %s on shard %d, %d batch%s", ps->table->name,
	        m->shard, m->n_batches[p], m->n_batches[p] == 1 ? "" : "es");
	/* described when its keys feed a side after it: their type */
	return send_run(c, m, b, PEND_PROBE, ps->n_keys > 0);
}

/* The statement over the sides' rows, on m, with the client's parameters and result formats. */
static int send_final(client_t *c, join_t *j, member_t *m)
{
	wire_buf_t *b = &c->worker->scratch;
	stmt_params_t *sp = &j->sp;
	route_param_t rows[JOIN_MAX_SUBS + JOIN_MAX_SIDES]; /* the subqueries' answers, the rows */
	int *all = malloc(sizeof *all * (size_t)(j->plan.n_params + 1)), rc;
	int n_subs = j->plan.n_subs;

	if (all == NULL)
		return -1;
	for (int k = 0; k < n_subs; k++)
		rows[k] = j->sr.v[k];
	for (int k = 0; k < j->plan.n_sides; k++) {
		const char *text = lit_text(&j->rows[k]);

		if (text == NULL) {
			free(all);
			return -1;
		}
		rows[n_subs + k] = text_param(text);
	}
	for (int k = 0; k < j->plan.n_params; k++)
		all[k] = k + 1;
	rc = params_of(j, sp, rows, n_subs + j->plan.n_sides, all, j->plan.n_params);
	free(all);
	if (rc < 0)
		return params_short(j);
	wire_buf_reset(b);
	put_parse(b, j->plan.final_sql, sp);
	put_bind(b, sp, j->results, j->results_len);
	log_msg(LOG_DEBUG, c->id, 0, "join: final statement on shard %d over %" PRIu64 " rows",
	        m->shard, j->rows[0].n);
	return send_run(c, m, b, PEND_FINAL, !j->extended || j->describe);
}

/* ---- reading replies ---- */

/* What joining the transaction sent (its prefix, the session's settings). */
static void joined_reply(client_t *c, join_t *j, server_t *s, uint8_t type, const uint8_t *msg,
                         size_t total)
{
	switch (type) {
	case 'Z':
		server_swallowed_ready(s, c->params_hash, (char)msg[5]);
		break;
	case 'E':
		if (s->syncing_params)
			server_keep_sync_error(s, msg + 5, total - 5);
		keep_error(j, msg + 5, total - 5);
		break;
	case 'S':
		server_note_parameter(s, msg + 5, total - 5);
		break;
	default:
		break;
	}
}

/*
 * The RowDescription of the side being fetched: the types of its key
 * columns (its first fields), each the type of the keys of the side it
 * feeds. Each field: name, table OID, column, type OID, size, modifier,
 * format.
 */
static void note_key_types(join_t *j, const uint8_t *body, size_t len)
{
	const join_side_t *side = &j->plan.sides[j->step];
	size_t at = 2;

	if (len < 2 || wire_be16(body) < side->n_keys)
		return;
	for (int k = 0; k < side->n_keys; k++) {
		const uint8_t *end = at < len ? memchr(body + at, '\0', len - at) : NULL;

		if (end == NULL || (size_t)(end - body) + 1 + 18 > len)
			return;
		j->key_types[side->deps[k]] = (uint32_t)wire_be32(end + 1 + 6);
		at = (size_t)(end - body) + 1 + 18;
	}
}

/* The type of the first column of a RowDescription, 0 when it has none. */
static uint32_t first_type(const uint8_t *body, size_t len)
{
	const uint8_t *end = len > 2 ? memchr(body + 2, '\0', len - 2) : NULL;

	if (len < 2 || wire_be16(body) < 1 || end == NULL || (size_t)(end - body) + 1 + 18 > len)
		return 0;
	return (uint32_t)wire_be32(end + 1 + 6);
}

/*
 * A subquery run first failed for a column it does not have: a bare name
 * in it may be the outer query's column, which it cannot see on its own.
 * Said so (0A000) rather than answered with an error PostgreSQL would not
 * give.
 */
static void sub_error(join_t *j, const uint8_t *body, size_t len)
{
	const char *code = NULL, *text = NULL;

	for (size_t at = 0; at < len && body[at] != '\0';) {
		const uint8_t *end = memchr(body + at + 1, '\0', len - at - 1);

		if (end == NULL)
			return;
		if (body[at] == 'C')
			code = (const char *)body + at + 1;
		else if (body[at] == 'M')
			text = (const char *)body + at + 1;
		at = (size_t)(end - body) + 1;
	}
	if (code != NULL && strcmp(code, "42703") == 0)
		own_error(j, "0A000",
		          "pgshard: a subquery over %s run first across shards failed on its own "
		          "(%s); if it reads a column of the outer query, qualify that column with "
		          "its table's name",
		          j->plan.subs[j->sr.sub].table->name, text != NULL ? text : "42703");
}

/* One of the join's own replies. */
static void own_reply(client_t *c, join_t *j, member_t *m, uint8_t mark, uint8_t type,
                      const uint8_t *msg, size_t total)
{
	const uint8_t *body = msg + 5;
	size_t len = total - 5;

	switch (type) {
	case 'E':
		server_note_error(m->s, body, len,
		                  LOG_BY_CLIENT); /* the join runs for the client */
		if (mark == PEND_SUB_ROWS || mark == PEND_SUB_RUN)
			sub_error(j, body, len);
		keep_error(j, body, len);
		break;
	case 'D':
		if (mark == PEND_FLOATS) {
			const uint8_t *v = NULL;
			int32_t vlen = -1;
			char num[16];

			if (field_at(body, len, 0, &v, &vlen) == 0 && vlen > 0 &&
			    vlen < (int32_t)sizeof num) {
				memcpy(num, v, (size_t)vlen);
				num[vlen] = '\0';
				j->float_digits = atoi(num);
			}
		} else if (mark == PEND_FINAL && !failed(j))
			sbuf_write(&c->sb, msg, total);
		else if (mark == PEND_SUB_ROWS && !failed(j))
			sub_row(j, body, len);
		else if (mark == PEND_SUB_RUN && !failed(j))
			sub_answer_row(j, body, len);
		else if (mark != PEND_FINAL && !failed(j))
			side_row(c, j, body, len);
		break;
	case 'T':
		if (mark == PEND_SUB_RUN)
			j->sr.type = first_type(body, len);
		if ((mark == PEND_DRIVE || mark == PEND_PROBE) && j->step < j->plan.n_sides)
			note_key_types(j, body, len);
		if (mark == PEND_FINAL && !failed(j))
			sbuf_write(&c->sb, msg, total);
		break;
	case 'C':
	case 'n':
	case 'N':
		if (mark == PEND_FINAL && !failed(j))
			sbuf_write(&c->sb, msg, total);
		break;
	case 'S':
		server_note_parameter(m->s, body, len);
		break;
	case 'Z':
		server_note_ready(m->s, (char)body[0]);
		pending_pop(&m->s->pending);
		m->waiting--;
		break;
	default:
		break;
	}
}

static void advance(client_t *c, join_t *j);
static int start_final(client_t *c, join_t *j);

static void read_member(client_t *c, join_t *j, member_t *m)
{
	server_t *s = m->s;

	while (s != NULL && (m->waiting > 0 || s->pending.count > 0) && c->join == j &&
	       !c->closing) {
		pending_t *head = pending_head(&s->pending);
		const uint8_t *msg;
		size_t total;
		uint8_t type;

		if (evbuffer_get_length(c->sb.out) > PROXY_HIGH_WATERMARK) {
			/* the client reads the final rows slower than they come */
			s->wait_client_drain = true;
			sbuf_pause(&s->sb);
			return;
		}
		if (session_server_message(c, s, &type, &total, &msg) != 1)
			return;
		if (head == NULL) {
			session_fail_status(c, PX_INTERNAL);
			return;
		}
		if (head->msg == PEND_DRIVE || head->msg == PEND_PROBE || head->msg == PEND_FINAL ||
		    head->msg == PEND_FLOATS || head->msg == PEND_SUB_ROWS ||
		    head->msg == PEND_SUB_RUN)
			own_reply(c, j, m, head->msg, type, msg, total);
		else
			joined_reply(c, j, s, type, msg, total);
		evbuffer_drain(s->sb.in, total);
	}
}

/* ---- the steps ---- */

static void finish(client_t *c, join_t *j)
{
	bool ok = !failed(j), ready = !j->extended;

	if (j->error != NULL) {
		wire_buf_t *b = &c->worker->scratch;

		wire_buf_reset(b);
		wire_begin(b, 'E');
		wire_put_bytes(b, j->error, j->error_len);
		wire_end(b);
		session_send_buf(c, b);
	} else if (!ok) {
		char str[sizeof j->message + 8];

		snprintf(str, sizeof str, "%.5s%s", j->sqlstate, j->message);
		session_emit(c, 'E', str);
	}
	log_msg(LOG_DEBUG, c->id, 0, "join of %d tables, %d subqueries first: %s", j->plan.n_sides,
	        j->plan.n_subs, ok ? "done" : "failed");
	join_free(c);
	if (!ok)
		session_tx_fail(c);
	if (ready)
		session_emit(c, 'Z', NULL);
	else if (!ok)
		c->skip_until_sync = true;
	if (!session_maybe_release(c))
		session_resume(c);
}

static bool all_answered(const join_t *j)
{
	for (int i = 0; i < j->n; i++)
		if (j->m[i].s != NULL && (j->m[i].waiting > 0 || j->m[i].s->pending.count > 0))
			return false;
	return true;
}

/*
 * The statements of side j->step: the driving side's, or a whole side's,
 * on every shard its filters leave; a probed side's on the shards with keys
 * for it.
 */
static int start_side(client_t *c, join_t *j)
{
	const join_side_t *sd = &j->plan.sides[j->step];
	bool keys = j->step > 0 && !sd->whole;
	int rc;

	for (int i = 0; i < j->n; i++) {
		member_t *m = &j->m[i];

		if (keys ? m->n_batches[j->step] == 0 : !shard_set_has(&sd->shards, m->shard))
			continue;
		if (m->s == NULL) {
			own_error(j, "08006", "pgshard: lost the connection to shard %d", m->shard);
			return 0;
		}
		rc = keys ? send_probe(c, j, m, j->step) : send_side(c, j, m, j->step);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/*
 * The next statements of the subqueries that run first: the rows of the
 * next one's table, then the subquery over them on one shard, then its
 * answer kept. 0, or -1 when memory runs out.
 */
static int sub_stage(client_t *c, join_t *j)
{
	subrun_t *sr = &j->sr;
	const join_sub_t *sb = &j->plan.subs[sr->sub];
	member_t *run = NULL;
	int rc;

	if (sr->phase == 0) {
		/* its table's rows; or, run as it is (direct), the subquery itself on each of its
		   shards, their answers put together */
		sr->phase = sb->direct ? 2 : 1;
		sr->scalar_len = -1;
		for (int i = 0; i < j->n; i++) {
			member_t *m = &j->m[i];

			if (!shard_set_has(&sb->shards, m->shard))
				continue;
			if (m->s == NULL) {
				own_error(j, "08006", "pgshard: lost the connection to shard %d",
				          m->shard);
				return 0;
			}
			if ((rc = send_sub(c, j, m, sb->direct)) != 0)
				return rc;
		}
		return 0;
	}
	if (sr->phase == 1) {
		sr->phase = 2;
		for (int i = 0; i < j->n && run == NULL; i++)
			if (j->m[i].s != NULL && shard_set_has(&sb->shards, j->m[i].shard))
				run = &j->m[i];
		for (int i = 0; i < j->n && run == NULL; i++)
			if (j->m[i].s != NULL)
				run = &j->m[i];
		if (run == NULL) {
			own_error(j, "08006", "pgshard: no shard left to run a subquery on");
			return 0;
		}
		return send_sub(c, j, run, true);
	}
	rc = sub_answer(j);
	sr->sub++;
	sr->phase = 0;
	return rc;
}

/* What comes next once everything sent is answered. 0, 1 (fewer parameters), -1. */
static int next_stage(client_t *c, join_t *j)
{
	if (j->sr.sub < j->plan.n_subs)
		return sub_stage(c, j);
	j->step++;
	return j->step == j->plan.n_sides ? start_final(c, j) : start_side(c, j);
}

/* The final statement, on a shard the driving side ran on (else any). */
static int start_final(client_t *c, join_t *j)
{
	member_t *m = NULL;

	for (int i = 0; i < j->n && m == NULL; i++)
		if (j->m[i].s != NULL && shard_set_has(&j->plan.sides[0].shards, j->m[i].shard))
			m = &j->m[i];
	for (int i = 0; i < j->n && m == NULL; i++)
		if (j->m[i].s != NULL)
			m = &j->m[i];
	if (m == NULL) {
		own_error(j, "08006", "pgshard: no shard left to run the join's final statement");
		return 0;
	}
	return send_final(c, j, m);
}

/* Once a step is answered everywhere: the next side's probes, or the final statement. */
static void advance(client_t *c, join_t *j)
{
	int rc = 0;

	/*
	 * Rows travel as text. With extra_float_digits 1 (the default) or more a
	 * float's text reads back as the same float; below, the final statement
	 * would work on rounded values.
	 */
	if (all_answered(j) && j->float_digits < 1)
		own_error(j, "0A000",
		          "pgshard: extra_float_digits is %d in this session, so the rows a join "
		          "across shards passes between shards would have their float values "
		          "rounded; SET extra_float_digits = 1 (the default) or more for this "
		          "statement",
		          j->float_digits);
	while (rc == 0 && all_answered(j) && !failed(j) && j->step < j->plan.n_sides)
		rc = next_stage(c, j);
	if (rc < 0) {
		session_fail_status(c, PX_NOMEM);
		return;
	}
	if (rc > 0)
		own_error(j, "08P01",
		          "pgshard: the Bind gave fewer parameters than the statement has");
	if (!all_answered(j))
		return;
	finish(c, j);
}

/* The client's parameters, copied: the probe and final statements are sent later. */
static int keep_params(join_t *j, const fanout_bind_t *bind)
{
	size_t bytes = 0, at = 0;

	if (bind == NULL || bind->n_values <= 0)
		return 0;
	for (int k = 0; k < bind->n_values; k++)
		if (bind->values[k].data != NULL && bind->values[k].len > 0)
			bytes += (size_t)bind->values[k].len;
	j->client = calloc((size_t)bind->n_values, sizeof *j->client);
	j->client_data = malloc(bytes > 0 ? bytes : 1);
	if (j->client == NULL || j->client_data == NULL)
		return -1;
	for (int k = 0; k < bind->n_values; k++) {
		const route_param_t *v = &bind->values[k];

		j->client[k] = *v;
		if (v->data != NULL && v->len > 0) {
			memcpy(j->client_data + at, v->data, (size_t)v->len);
			j->client[k].data = j->client_data + at;
			at += (size_t)v->len;
		} else if (v->data != NULL) {
			j->client[k].data = j->client_data; /* empty, not NULL */
		}
	}
	j->n_client = bind->n_values;
	return 0;
}

static int start(client_t *c, const char *sql, const fanout_bind_t *bind)
{
	const cfg_t *cfg = context_cfg(c->worker);
	const route_step_t *step = route_step_routed(&c->plan);
	join_t *j = calloc(1, sizeof *j);
	char err[300];
	int rc;

	if (j == NULL)
		return -1;
	j->m = calloc((size_t)cfg->n_shards, sizeof *j->m);
	if (j->m == NULL) {
		free(j);
		return -1;
	}
	j->max_rows = (uint64_t)cfg->max_join_rows;
	j->max_bytes = cfg->merge_memory;
	j->float_digits = 1; /* until the first member says */
	j->extended = bind != NULL;
	j->describe = bind != NULL && bind->describe;
	if (bind != NULL && bind->results != NULL && bind->results_len > 0) {
		if ((j->results = malloc(bind->results_len)) == NULL) {
			free(j->m);
			free(j);
			return -1;
		}
		memcpy(j->results, bind->results, bind->results_len);
		j->results_len = bind->results_len;
	}
	c->join = j;
	c->phase = PH_SEVERAL;
	if (keep_params(j, bind) < 0) {
		join_free(c);
		return -1;
	}
	rc = join_plan_make(&c->worker->route, sql, j->client, j->n_client, &j->plan, err,
	                    sizeof err);
	if (rc < 0) {
		join_free(c);
		return -1;
	}
	if (rc == 0) {
		own_error(j, "0A000", "pgshard: %s", err);
		finish(c, j);
		return 0;
	}
	for (int i = 0; i < cfg->n_shards; i++) {
		server_t *s = session_link(c, i);

		if (s == NULL || !shard_set_has(&step->shards, i))
			continue;
		j->m[j->n].s = s;
		j->m[j->n].shard = i;
		j->n++;
	}
	j->step = -1;
	{
		/* the session's extra_float_digits, asked along with the first statement, on a
		   shard that runs it */
		const shard_set_t *first =
		    j->plan.n_subs > 0 ? &j->plan.subs[0].shards : &j->plan.sides[0].shards;
		member_t *m = NULL;

		for (int i = 0; i < j->n && m == NULL; i++)
			if (shard_set_has(first, j->m[i].shard))
				m = &j->m[i];
		if (m == NULL && j->n > 0)
			m = &j->m[0];
		if (m != NULL) {
			if (server_query(m->s, &c->worker->scratch, "SHOW extra_float_digits",
			                 PEND_FLOATS, PEND_SWALLOW) < 0) {
				join_free(c);
				return -1;
			}
			m->waiting++;
		}
	}
	rc = next_stage(c, j);
	if (rc < 0) {
		join_free(c);
		return -1;
	}
	if (rc > 0)
		own_error(j, "08P01",
		          "pgshard: the Bind gave fewer parameters than the statement has");
	log_msg(LOG_DEBUG, c->id, 0, "join: %d subqueries first, %d tables", j->plan.n_subs,
	        j->plan.n_sides);
	advance(c, j); /* nothing to wait for when no shard could run it */
	return 0;
}

int join_start(client_t *c, const char *sql)
{
	return start(c, sql, NULL);
}

int join_execute(client_t *c, const char *sql, const fanout_bind_t *bind)
{
	return start(c, sql, bind);
}

void join_reply(client_t *c, server_t *s)
{
	join_t *j = c->join;
	member_t *m = member_of(j, s);

	if (m == NULL)
		return;
	read_member(c, j, m);
	if (c->join == j && !c->closing)
		advance(c, j);
}

void join_resume_members(client_t *c)
{
	join_t *j = c->join;

	for (int i = 0; j != NULL && i < j->n && c->join == j; i++) {
		server_t *s = j->m[i].s;

		if (s != NULL && s->wait_client_drain) {
			s->wait_client_drain = false;
			sbuf_resume(&s->sb);
			read_member(c, j, &j->m[i]);
		}
	}
	if (c->join == j && j != NULL && !c->closing)
		advance(c, j);
}

void join_member_lost(client_t *c, server_t *s)
{
	member_t *m = member_of(c->join, s);

	if (m != NULL) {
		m->s = NULL;
		m->waiting = 0;
		own_error(c->join, "08006",
		          "pgshard: lost the connection to shard %d during a join", m->shard);
	}
}
