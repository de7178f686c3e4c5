/*
 * gather.c — the merges of scatter-gather (router/gather.h), on top of the
 * fan-out of fanout.c.
 *
 * Streaming: each member's rows arrive sorted (or in any order, without
 * keys). With keys, a member's first row is kept as its head and the
 * member is not read further; once every member has a head row or is
 * done, the smallest head row goes to the client (router/rowcmp.h's heap)
 * and its member is read for the next one. So the proxy holds one row per
 * shard, and a client that reads slowly slows the shards' reads. OFFSET
 * rows are skipped, LIMIT rows sent, then the rest is dropped unread as it
 * comes; hidden sort-key columns are cut from each row and from the
 * RowDescription.
 *
 * Finalizing: each member's rows are partial results (one per group). They
 * are held as router/gather_sql.h makes them (the text of a VALUES list),
 * up to merge_memory (then 54000). The final query over them, which
 * gather_sql.h writes with each column cast back to the shards' type (a
 * type that is not built in is named by the first member's catalog
 * first), runs on the first member; its answer is the client's, passed on
 * as any single-shard answer. The SQL text of every query sent here is
 * the router's.
 */
#include "proxy/gather.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/context.h"
#include "proxy/fanout_state.h"
#include "proxy/log.h"
#include "proxy/sbuf.h"
#include "proxy/server.h"
#include "proxy/wire.h"
#include "router/gather.h"
#include "router/gather_sql.h"
#include "router/plancache.h"
#include "router/route.h"
#include "router/rowcmp.h"

/* ---- the database's collation, per worker ---- */

struct worker_coll {
	char *database;
	char *name;          /* pg_database.datcollate */
	rowcmp_coll_t *coll; /* NULL: no such locale on this machine */
};

static worker_coll_t *coll_of(worker_t *w, const char *database)
{
	for (int i = 0; i < w->n_colls; i++)
		if (strcmp(w->colls[i].database, database) == 0)
			return &w->colls[i];
	return NULL;
}

void gather_colls_free(worker_t *w)
{
	for (int i = 0; i < w->n_colls; i++) {
		free(w->colls[i].database);
		free(w->colls[i].name);
		if (w->colls[i].coll != NULL)
			rowcmp_coll_free(w->colls[i].coll);
	}
	free(w->colls);
	w->colls = NULL;
	w->n_colls = 0;
}

bool gather_needs_collation(client_t *c, const fanout_t *f)
{
	if (f->gp == NULL || f->phase != GATHER_STREAM || coll_of(c->worker, c->database) != NULL)
		return false;
	for (int i = 0; i < f->gp->n_keys; i++)
		if (f->gp->keys[i].coll == GATHER_COLL_DEFAULT)
			return true;
	return false;
}

void gather_note_collation(client_t *c, const uint8_t *body, size_t len)
{
	worker_t *w = c->worker;
	wire_reader_t r;
	int16_t n;
	int32_t flen;
	const uint8_t *data;
	worker_coll_t *e, *grown;
	char err[256];

	wire_reader_init(&r, body, len);
	if (wire_get_i16(&r, &n) < 0 || n != 1 || wire_get_i32(&r, &flen) < 0 || flen < 0 ||
	    wire_get_bytes(&r, (size_t)flen, &data) < 0 || coll_of(w, c->database) != NULL)
		return;
	grown = realloc(w->colls, sizeof(*grown) * (size_t)(w->n_colls + 1));
	if (grown == NULL)
		return;
	w->colls = grown;
	e = &w->colls[w->n_colls];
	e->database = strdup(c->database);
	e->name = strndup((const char *)data, (size_t)flen);
	if (e->database == NULL || e->name == NULL) {
		free(e->database);
		free(e->name);
		return;
	}
	e->coll = rowcmp_coll_new(e->name, err, sizeof(err));
	if (e->coll == NULL)
		log_msg(LOG_WARNING, c->id, 0, "database %s: collation %s: %s", c->database,
		        e->name, err);
	w->n_colls++;
}

/* ---- the session's float output ---- */

/*
 * Partial results travel as text. With extra_float_digits 1 (the default)
 * or more, a float's text reads back as the same float; below 1 it is
 * rounded, and sums, averages and groups of floats would be combined from
 * rounded values: refused then (gather_finalize).
 */
void gather_note_float_digits(fanout_t *f, const uint8_t *body, size_t len)
{
	rowcmp_field_t v;
	char num[16];

	if (rowcmp_fields(body, len, &v, 1) != 1 || v.len <= 0 || v.len >= (int32_t)sizeof(num))
		return;
	memcpy(num, v.data, (size_t)v.len);
	num[v.len] = '\0';
	f->float_digits = atoi(num);
}

static bool floats_rounded(fanout_t *f)
{
	char msg[400];

	if (f->float_digits >= 1)
		return false;
	for (int i = 0; i < f->ncols; i++)
		if (f->col_types[i] == 700 || f->col_types[i] == 701) {
			snprintf(
			    msg, sizeof(msg),
			    "pgshard: extra_float_digits is %d in this session, so the shards "
			    "would send float values of their partial results rounded, and "
			    "combining them could give another answer than one PostgreSQL; SET "
			    "extra_float_digits = 1 (the default) or more for this statement",
			    f->float_digits);
			fanout_own_error(f, "0A000", msg);
			return true;
		}
	return false;
}

/* ---- setting up ---- */

int gather_setup(client_t *c, fanout_t *f, const char *sql, const route_param_t *params,
                 int n_params, char sqlstate[6], char *err, size_t errlen)
{
	gather_plan_t *gp;

	if (c->worker->plans == NULL) {
		memcpy(sqlstate, "XX000", 6);
		snprintf(err, errlen, "the shard maps could not be built");
		return -1;
	}
	/* the plan cache has this statement's parse (context_route just routed it): not parsed
	 * again
	 */
	if (route_gather_cached(c->worker->plans, sql, params, n_params, &gp, sqlstate, err,
	                        errlen) < 0)
		return -1;
	f->gp = gp;
	f->phase = gp->finalize ? GATHER_PARTIALS : GATHER_STREAM;
	f->skip = gp->finalize ? 0 : gp->offset;
	f->left = gp->finalize ? -1 : gp->limit;
	f->enough = f->left == 0;
	f->float_digits = 1; /* until the first member says */
	return 0;
}

void gather_free(fanout_t *f)
{
	for (int i = 0; i < f->n; i++) {
		free(f->m[i].row);
		free(f->m[i].fields);
	}
	if (f->heap != NULL)
		rowheap_free(f->heap);
	free(f->keys);
	free(f->col_types);
	free(f->col_formats);
	gather_rows_free(&f->held);
	for (int i = 0; f->type_names != NULL && i < f->ncols; i++)
		free(f->type_names[i]);
	free(f->type_names);
	gather_plan_unref(f->gp); /* shared with the plan cache */
	f->gp = NULL;
	free(f->member_sql);
	f->member_sql = NULL;
}

/* ---- RowDescription ---- */

/*
 * The column types and formats of the shards' rows, from the first
 * RowDescription; then again from the first member's, whose type OIDs are
 * the ones its catalog and the final query know (the OID of a user-defined
 * type differs from shard to shard; built-in ones do not).
 */
static int note_rowdesc(fanout_t *f, const member_t *m, const uint8_t *body, size_t len)
{
	wire_reader_t r;
	int16_t n;

	if (f->col_types != NULL && m != &f->m[0])
		return 0;
	wire_reader_init(&r, body, len);
	if (wire_get_i16(&r, &n) < 0 || n < 0 || (f->col_types != NULL && n != f->ncols))
		return -1;
	if (f->col_types == NULL) {
		f->col_types = calloc((size_t)n + 1, sizeof(*f->col_types));
		f->col_formats = calloc((size_t)n + 1, sizeof(*f->col_formats));
		if (f->col_types == NULL || f->col_formats == NULL)
			return -1;
		for (int i = 0; i < f->n; i++) {
			f->m[i].fields = calloc((size_t)n + 1, sizeof(*f->m[i].fields));
			if (f->m[i].fields == NULL)
				return -1;
		}
	}
	for (int i = 0; i < n; i++) {
		const char *name;
		int32_t table, type, typmod;
		int16_t attnum, typlen, format;

		if (wire_get_cstring(&r, &name) < 0 || wire_get_i32(&r, &table) < 0 ||
		    wire_get_i16(&r, &attnum) < 0 || wire_get_i32(&r, &type) < 0 ||
		    wire_get_i16(&r, &typlen) < 0 || wire_get_i32(&r, &typmod) < 0 ||
		    wire_get_i16(&r, &format) < 0)
			return -1;
		f->col_types[i] = (uint32_t)type;
		f->col_formats[i] = format;
	}
	f->ncols = n;
	return 0;
}

/* How many bytes the first `keep` fields take after a DataRow's or RowDescription's count. */
static int visible_len(const uint8_t *body, size_t len, int keep, bool rowdesc, size_t *out)
{
	size_t p = 2;

	for (int i = 0; i < keep; i++) {
		if (rowdesc) {
			const uint8_t *nul = memchr(body + p, '\0', p < len ? len - p : 0);

			if (nul == NULL)
				return -1;
			p = (size_t)(nul - body) + 1 + 18;
		} else {
			int32_t flen;

			if (p + 4 > len)
				return -1;
			flen = wire_be32(body + p);
			p += 4 + (flen > 0 ? (size_t)flen : 0);
		}
		if (p > len)
			return -1;
	}
	*out = p - 2;
	return 0;
}

/* A message with its hidden columns cut off, to the client. */
static int send_visible(client_t *c, fanout_t *f, const uint8_t *msg, size_t total)
{
	int keep = f->ncols - f->gp->hidden;
	bool rowdesc = msg[0] == 'T';
	uint8_t hdr[7];
	size_t body;

	if (f->gp->hidden == 0) {
		sbuf_write(&c->sb, msg, total);
		return 0;
	}
	if (keep < 0 || visible_len(msg + 5, total - 5, keep, rowdesc, &body) < 0)
		return -1;
	hdr[0] = msg[0];
	hdr[1] = (uint8_t)((body + 6) >> 24);
	hdr[2] = (uint8_t)((body + 6) >> 16);
	hdr[3] = (uint8_t)((body + 6) >> 8);
	hdr[4] = (uint8_t)(body + 6);
	hdr[5] = (uint8_t)(keep >> 8);
	hdr[6] = (uint8_t)keep;
	sbuf_write(&c->sb, hdr, sizeof(hdr));
	sbuf_write(&c->sb, msg + 7, body);
	return 0;
}

/* One merged row of member m: skipped (OFFSET), sent (counted by a MOVE), or dropped (past
 * LIMIT, or a cursor's fetch has its rows). */
static void emit_row(client_t *c, fanout_t *f, member_t *m, const uint8_t *msg, size_t total)
{
	if (f->enough)
		return;
	m->used++;
	if (f->skip > 0) {
		f->skip--;
		return;
	}
	if (!f->fetch_move && send_visible(c, f, msg, total) < 0) {
		fanout_own_error(f, "08P01", "pgshard: a shard sent a malformed row");
		return;
	}
	f->sent++;
	if (f->left > 0 && --f->left == 0)
		f->enough = true;
}

/* ---- partial results ---- */

static void hold_row(client_t *c, fanout_t *f, member_t *m, const uint8_t *body, size_t len)
{
	size_t cap = context_cfg(c->worker)->merge_memory;
	gather_rows_t *h = &f->held;

	if (f->col_types == NULL || m->fields == NULL ||
	    rowcmp_fields(body, len, m->fields, f->ncols) != f->ncols) {
		fanout_own_error(f, "08P01", "pgshard: a shard sent a malformed row");
		return;
	}
	if (gather_rows_add(h, m->fields, f->ncols) < 0) {
		fanout_own_error(f, "53200", "pgshard: out of memory");
		return;
	}
	if (h->len > cap) {
		char msg[300];

		snprintf(msg, sizeof(msg),
		         "pgshard: the partial results of this statement on several shards exceed "
		         "merge_memory (%zu bytes) after %" PRIu64
		         " rows; add a condition on the shard key, or raise merge_memory",
		         cap, h->n);
		fanout_own_error(f, "54000", msg);
		gather_rows_free(h);
	}
}

/* Ask the first member the names of the held columns' types that are not built in. */
static int ask_types(client_t *c, fanout_t *f)
{
	char *sql = gather_types_sql(f->col_types, f->ncols);
	int rc;

	f->type_names = calloc((size_t)f->ncols, sizeof(*f->type_names));
	if (sql == NULL || f->type_names == NULL) {
		free(sql);
		fanout_own_error(f, "53200", "pgshard: out of memory");
		return -1;
	}
	f->phase = GATHER_TYPES;
	f->m[0].ready = false;
	f->m[0].result_end = false;
	rc = server_query(f->m[0].s, &c->worker->scratch, sql, 'Q', PEND_FORWARD);
	free(sql);
	if (rc < 0) {
		f->m[0].ready = true;
		fanout_own_error(f, "08006", "pgshard: could not ask a shard for type names");
	}
	return rc;
}

/* One row of ask_types' answer: (oid, name). */
static void note_type(fanout_t *f, const uint8_t *body, size_t len)
{
	rowcmp_field_t v[2];
	char oid[24];
	uint32_t o;

	if (rowcmp_fields(body, len, v, 2) != 2 || v[0].len <= 0 ||
	    v[0].len >= (int32_t)sizeof(oid) || v[1].len <= 0)
		return;
	memcpy(oid, v[0].data, (size_t)v[0].len);
	oid[v[0].len] = '\0';
	o = (uint32_t)strtoul(oid, NULL, 10);
	for (int i = 0; i < f->ncols; i++)
		if (f->col_types[i] == o && f->type_names[i] == NULL)
			f->type_names[i] = strndup((const char *)v[1].data, (size_t)v[1].len);
}

/* ---- the final query's parameters ---- */

/*
 * The client's parameter `number` (from 1) as its Bind sent it (f->params:
 * the format codes, then the values): its format, and its value (len -1
 * for NULL). 0, or -1 when the Bind has no such parameter.
 */
static int bound_param(const fanout_t *f, int number, int16_t *format, int32_t *len,
                       const uint8_t **data)
{
	wire_reader_t r;
	int16_t n_formats, n_values, fmt = 0;

	wire_reader_init(&r, f->params, f->params_len);
	if (wire_get_i16(&r, &n_formats) < 0 || n_formats < 0)
		return -1;
	for (int i = 0; i < n_formats; i++) {
		int16_t v;

		if (wire_get_i16(&r, &v) < 0)
			return -1;
		if (i == 0 || i == number - 1)
			fmt = v; /* one code is every parameter's */
	}
	if (n_formats > 1 && number > n_formats)
		return -1;
	if (wire_get_i16(&r, &n_values) < 0 || number < 1 || number > n_values)
		return -1;
	for (int i = 1; i <= number; i++) {
		if (wire_get_i32(&r, len) < 0)
			return -1;
		*data = NULL;
		if (*len >= 0 && wire_get_bytes(&r, (size_t)*len, data) < 0)
			return -1;
	}
	*format = fmt;
	return 0;
}

void gather_put_final_types(wire_buf_t *b, const fanout_t *f)
{
	const gather_plan_t *gp = f->gp;

	wire_put_i16(b, (int16_t)gp->n_final_params);
	for (int k = 0; k < gp->n_final_params; k++) {
		int old = gp->final_params[k];

		wire_put_i32(b, old >= 1 && old <= f->n_types
		                    ? (int32_t)wire_be32(f->types + 4 * (size_t)(old - 1))
		                    : 0);
	}
}

int gather_put_final_values(wire_buf_t *b, const fanout_t *f)
{
	const gather_plan_t *gp = f->gp;
	int16_t format;
	int32_t len;
	const uint8_t *data;

	wire_put_i16(b, (int16_t)gp->n_final_params);
	for (int k = 0; k < gp->n_final_params; k++) {
		if (bound_param(f, gp->final_params[k], &format, &len, &data) < 0)
			return -1;
		wire_put_i16(b, format);
	}
	wire_put_i16(b, (int16_t)gp->n_final_params);
	for (int k = 0; k < gp->n_final_params; k++) {
		if (bound_param(f, gp->final_params[k], &format, &len, &data) < 0)
			return -1;
		wire_put_i32(b, len < 0 ? -1 : len);
		if (len > 0)
			wire_put_bytes(b, data, (size_t)len);
	}
	return 0;
}

int gather_finalize(client_t *c, fanout_t *f)
{
	char *sql, sqlstate[6], err[300], msg[320];
	uint64_t held;
	int rc;

	if (f->phase != GATHER_PARTIALS && f->phase != GATHER_TYPES)
		return 0;
	for (int i = 0; i < f->n; i++)
		if (f->m[i].s == NULL)
			return 0;
	if (f->error != NULL || f->failed)
		return 0;
	if (f->col_types == NULL) {
		fanout_own_error(f, "08P01", "pgshard: a shard returned no columns");
		return 0;
	}
	if (floats_rounded(f))
		return 0;
	if (f->phase == GATHER_PARTIALS &&
	    gather_unnamed_type(f->col_types, (const char *const *)f->type_names, f->ncols) >= 0)
		return ask_types(c, f) < 0 ? 0 : 1;
	if (gather_final_sql(f->gp, f->col_types, (const char *const *)f->type_names, f->ncols,
	                     &f->held, &sql, sqlstate, err, sizeof(err)) < 0) {
		snprintf(msg, sizeof(msg), "pgshard: %s", err);
		fanout_own_error(f, sqlstate, msg);
		return 0;
	}
	held = f->held.n;
	gather_rows_free(&f->held);
	f->phase = GATHER_FINAL;
	f->merge = ROUTE_MERGE_SUM;
	f->row_owner = -1;
	memset(&f->tag, 0, sizeof(f->tag));
	f->m[0].ready = false;
	f->m[0].result_end = false;
	log_msg(LOG_DEBUG, c->id, 0, "final query over %" PRIu64 " partial rows, %zu bytes", held,
	        strlen(sql));
	rc = f->svc->send(c, f, &f->m[0], sql);
	free(sql);
	if (rc < 0) {
		f->m[0].ready = true;
		fanout_own_error(f, "08006", "pgshard: could not send the final query to a shard");
		return 0;
	}
	return 1;
}

/* ---- the sorted merge ---- */

static int make_keys(client_t *c, fanout_t *f)
{
	const gather_plan_t *gp = f->gp;
	worker_coll_t *wc = coll_of(c->worker, c->database);
	char msg[400];

	f->keys = calloc((size_t)gp->n_keys, sizeof(*f->keys));
	if (f->keys == NULL) {
		fanout_own_error(f, "53200", "pgshard: out of memory");
		return -1;
	}
	for (int i = 0; i < gp->n_keys; i++) {
		const gather_key_t *g = &gp->keys[i];
		rowcmp_key_t *k = &f->keys[i];
		int col = g->hidden ? f->ncols - gp->hidden + g->column : g->column;

		if (col < 0 || col >= f->ncols) {
			fanout_own_error(f, "XX000",
			                 "pgshard: a sort key is not among the shards' columns");
			return -1;
		}
		k->column = col;
		k->type_oid = f->col_types[col];
		k->format = f->col_formats[col];
		k->desc = g->desc;
		k->nulls_first = g->nulls_first;
		if (!rowcmp_supported(k->type_oid, k->format)) {
			const char *name = gather_type_name(k->type_oid);

			snprintf(
			    msg, sizeof(msg),
			    "pgshard: ORDER BY a value of type %s across shards is not supported; "
			    "order by numeric, text, boolean, date/time or uuid values, or add a "
			    "condition on the shard key",
			    name != NULL ? name : "(user-defined)");
			fanout_own_error(f, "0A000", msg);
			return -1;
		}
		if (g->coll == GATHER_COLL_DEFAULT && wc != NULL && wc->coll == NULL &&
		    (k->type_oid == 25 || k->type_oid == 1042 || k->type_oid == 1043)) {
			snprintf(msg, sizeof(msg),
			         "pgshard: the database's collation \"%s\" is not available on the "
			         "proxy's machine, so text cannot be ordered across shards as the "
			         "database orders it; install that locale, or ORDER BY ... COLLATE "
			         "\"C\"",
			         wc->name);
			fanout_own_error(f, "0A000", msg);
			return -1;
		}
		k->coll = g->coll == GATHER_COLL_DEFAULT && wc != NULL ? wc->coll : NULL;
	}
	f->heap = rowheap_new(f->n, f->keys, gp->n_keys);
	if (f->heap == NULL) {
		fanout_own_error(f, "53200", "pgshard: out of memory");
		return -1;
	}
	for (int i = 0; i < f->n; i++) {
		member_t *m = &f->m[i];

		if (m->has_row)
			rowheap_set(f->heap, i, m->fields, f->ncols);
		else
			rowheap_done(f->heap, i);
	}
	return 0;
}

/* The member's head row was taken (or dropped): read it again. */
static void next_turn(client_t *c, fanout_t *f, member_t *m)
{
	m->has_row = false;
	if (m->s != NULL && m->s->sb.paused && !m->s->wait_client_drain)
		sbuf_resume(&m->s->sb);
	f->svc->drain_member(c, f, m);
}

void gather_pump(client_t *c, fanout_t *f)
{
	char err[256];

	if (f->phase != GATHER_STREAM || f->gp->n_keys == 0)
		return;
	while (c->fan == f && !c->closing) {
		member_t *m;
		int i;

		if (f->error != NULL || f->failed || f->enough) {
			/* nothing more goes out: let every member run to its end */
			for (i = 0; i < f->n && c->fan == f; i++)
				if (f->m[i].has_row)
					next_turn(c, f, &f->m[i]);
			return;
		}
		if (pbuf_get_length(c->sb.out) > PROXY_HIGH_WATERMARK)
			return; /* the client's write callback brings us back */
		if (f->heap == NULL) {
			bool any = false;

			for (i = 0; i < f->n; i++) {
				m = &f->m[i];
				if (!m->has_row && !m->result_end && !m->ready)
					return; /* still waiting for its first row */
				any |= m->has_row;
			}
			if (!any)
				return;
			if (make_keys(c, f) < 0)
				continue;
		}
		if (rowheap_waiting(f->heap) > 0)
			return;
		i = rowheap_next(f->heap, err, sizeof(err));
		if (i == -1)
			return;
		if (i < 0) {
			char msg[300];

			snprintf(msg, sizeof(msg), "pgshard: cannot order the shards' rows: %s",
			         err);
			fanout_own_error(f, "0A000", msg);
			continue;
		}
		m = &f->m[i];
		emit_row(c, f, m, m->row, m->row_len);
		next_turn(c, f, m);
	}
}

/* Keep a member's row as its head row. */
static int keep_head(fanout_t *f, member_t *m, const uint8_t *msg, size_t total)
{
	if (total > m->row_cap) {
		size_t cap = m->row_cap ? m->row_cap : 256;
		uint8_t *p;

		while (cap < total)
			cap *= 2;
		p = realloc(m->row, cap);
		if (p == NULL)
			return -1;
		m->row = p;
		m->row_cap = cap;
	}
	memcpy(m->row, msg, total);
	m->row_len = total;
	if (m->fields == NULL ||
	    rowcmp_fields(m->row + 5, total - 5, m->fields, f->ncols) != f->ncols)
		return -2;
	m->has_row = true;
	if (f->heap != NULL)
		rowheap_set(f->heap, (int)(m - f->m), m->fields, f->ncols);
	return 0;
}

int gather_message(client_t *c, fanout_t *f, member_t *m, uint8_t type, const uint8_t *msg,
                   size_t total)
{
	if (f->phase == GATHER_TYPES) {
		if (type == 'D' && f->error == NULL)
			note_type(f, msg + 5, total - 5);
		else if (type == 'C')
			m->result_end = true;
		return type == 'T' || type == 'D' || type == 'C';
	}
	if (f->phase == GATHER_REWIND) /* MOVE BACKWARD's answers: only its error matters */
		return type != 'E' && type != 'Z';
	if (f->phase != GATHER_STREAM && f->phase != GATHER_PARTIALS)
		return 0;
	switch (type) {
	case 'T':
		if (note_rowdesc(f, m, msg + 5, total - 5) < 0) {
			fanout_own_error(f, "08P01",
			                 "pgshard: a shard sent a malformed RowDescription");
			return 1;
		}
		if (f->phase == GATHER_STREAM && !f->failed && f->row_owner < 0) {
			f->row_owner = (int)(m - f->m);
			if ((!f->extended || f->describe) && !f->fetch_move &&
			    send_visible(c, f, msg, total) < 0)
				fanout_own_error(
				    f, "08P01", "pgshard: a shard sent a malformed RowDescription");
		}
		return 1;
	case 'D':
		if (f->failed || f->error != NULL)
			return 1;
		if (f->phase == GATHER_PARTIALS) {
			hold_row(c, f, m, msg + 5, total - 5);
			return 1;
		}
		m->got++;
		if (f->gp->n_keys == 0) {
			emit_row(c, f, m, msg, total);
			return 1;
		}
		if (f->enough)
			return 1;
		switch (keep_head(f, m, msg, total)) {
		case 0:
			return 2;
		case -1:
			fanout_own_error(f, "53200", "pgshard: out of memory");
			return 1;
		default:
			fanout_own_error(f, "08P01", "pgshard: a shard sent a malformed row");
			return 1;
		}
	case 'C':
		m->result_end = true;
		if (f->phase == GATHER_STREAM) {
			f->tag.have = true;
			if (f->heap != NULL)
				rowheap_done(f->heap, (int)(m - f->m));
		}
		return 1;
	default:
		return 0;
	}
}

bool gather_probe_refused(fanout_t *f, const uint8_t *body, size_t len)
{
	bool agg = false;

	if (f->gp == NULL || !f->gp->probed || f->phase == GATHER_FINAL)
		return false;
	/* ErrorResponse fields: a type byte and a string each, then a zero byte */
	for (size_t p = 0; p < len && body[p] != '\0';) {
		const uint8_t *end = memchr(body + p + 1, '\0', len - p - 1);

		if (end == NULL)
			return false;
		if (body[p] == 'C' && strcmp((const char *)body + p + 1, "42803") == 0)
			agg = true;
		p = (size_t)(end - body) + 1;
	}
	if (agg)
		fanout_own_error(
		    f, "0A000",
		    "pgshard: this SELECT calls an aggregate pgshard does not know "
		    "(user-defined) across shards, which it cannot combine (count, sum, "
		    "min, max, avg, bool_and, bool_or and bit_* are); add a condition on "
		    "the shard key, or /* pgshard: shard=N */");
	return agg;
}

void gather_tag(const fanout_t *f, char *out, size_t outlen)
{
	if (f->gp->cursor != NULL && f->cur == NULL)
		snprintf(out, outlen, "DECLARE CURSOR");
	else
		snprintf(out, outlen, "%s %" PRIu64,
		         f->cur == NULL || f->portal ? "SELECT"
		         : f->fetch_move             ? "MOVE"
		                                     : "FETCH",
		         f->sent);
}
