/*
 * join_msg.c — the join executor's helpers (join_int.h): rows and keys kept
 * as array literals, the join's error, the memory it holds, and its
 * statements' Parse, Bind and Execute on a member.
 */
#include "proxy/join_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/pending.h"
#include "proxy/server.h"
#include "proxy/wire.h"

void join_lit_free(lit_t *l)
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
int join_lit_add(lit_t *l, const uint8_t *v, size_t len)
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
int join_lit_add_null(lit_t *l)
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
const char *join_lit_text(lit_t *l)
{
	if (lit_reserve(l, 2) < 0)
		return NULL;
	if (l->n == 0)
		l->p[l->len++] = '{';
	l->p[l->len++] = '}';
	l->p[l->len] = '\0';
	return l->p;
}

void join_own_error(join_t *j, const char *sqlstate, const char *fmt, ...)
{
	va_list ap;

	if (j->error != NULL || j->sqlstate[0] != '\0')
		return;
	memcpy(j->sqlstate, sqlstate, 6);
	va_start(ap, fmt);
	vsnprintf(j->message, sizeof j->message, fmt, ap);
	va_end(ap);
}

void join_keep_error(join_t *j, const uint8_t *body, size_t len)
{
	if (j->error != NULL || j->sqlstate[0] != '\0')
		return;
	j->error = malloc(len > 0 ? len : 1);
	if (j->error == NULL) {
		join_own_error(j, "53200", "pgshard: out of memory");
		return;
	}
	memcpy(j->error, body, len);
	j->error_len = len;
}

bool join_failed(const join_t *j)
{
	return j->error != NULL || j->sqlstate[0] != '\0';
}

/* The n-th field of a DataRow body: its bytes and length (-1 NULL). 0, or -1. */
int join_field_at(const uint8_t *body, size_t len, int n, const uint8_t **v, int32_t *vlen)
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

size_t join_held_bytes(const join_t *j)
{
	size_t n = j->key_bytes + j->sr.rows.len + j->sr.values.len;

	for (int k = 0; k < j->plan.n_sides; k++)
		n += j->rows[k].len;
	return n;
}

/* Whether memory for len more bytes of rows is left under merge_memory (else 54000). */
bool join_room_for(join_t *j, size_t len)
{
	if (join_held_bytes(j) + 2 * len <= j->max_bytes)
		return true;
	join_own_error(j, "54000",
	               "pgshard: the join would hold more than merge_memory = %zu bytes of rows; "
	               "filter its sides further, or raise merge_memory",
	               j->max_bytes);
	return false;
}

/* params_of failed: 1 when the client gave fewer parameters, -1 when memory ran out. */
int join_params_short(const join_t *j)
{
	return j->short_params ? 1 : -1;
}

/* A text value of ours as a parameter. */
route_param_t join_text_param(const char *v)
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
int join_params_of(join_t *j, stmt_params_t *sp, const route_param_t *first, int n_first,
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

void join_put_parse(wire_buf_t *b, const char *sql, const stmt_params_t *sp)
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
void join_put_bind(wire_buf_t *b, const stmt_params_t *sp, const uint8_t *results,
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

int join_send_run(client_t *c, member_t *m, wire_buf_t *b, uint8_t mark, bool describe)
{
	if (wire_put_run_unnamed(b, describe, true) < 0 ||
	    pending_push(&m->s->pending, mark, PEND_SWALLOW, 0, NULL, NULL) < 0)
		return -1;
	m->s->unnamed_gen = 0; /* its unnamed statement is now this one */
	m->waiting++;
	return server_send(m->s, b->data, b->len);
}
