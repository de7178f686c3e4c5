/*
 * fanout.c — one simple Query on several shards, its replies merged into
 * the answer one PostgreSQL holding all the rows would give.
 *
 * The plan's step says which statement on several shards this is (EACH,
 * GATHER, SPLIT_INSERT, SPLIT_COPY: see route_step_kind_t); the members
 * (one held link per shard of the step) run it at the same time. Their
 * replies are merged result by result: a query string of several
 * statements has one result per statement, and a result is over for a
 * member at its CommandComplete, EmptyQueryResponse or ErrorResponse.
 * A member that is done with a result waits (its socket is left unread
 * once its buffer is full) until every member is, and then the merged end
 * of the result goes to the client:
 *
 *   ROUTE_MERGE_SUM    rows of every member, row counts of the tags added (a split
 *                      INSERT's RETURNING rows held, to go out in VALUES order:
 *                      retorder.h)
 *   ROUTE_MERGE_ONE    copies on every shard: the rows and tag of one member
 *   ROUTE_MERGE_COUNT  one row of count() columns per member: added up
 *
 * The first error wins; what the members send after it is dropped, as a
 * server drops the rest of a query string after an error. COPY FROM STDIN
 * is split row by row by the key column (router/copy.h) into one COPY per
 * shard; the key column's position comes from the catalog of the first
 * member, asked right before the COPY.
 */
#include "proxy/fanout.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "proxy/commit.h"
#include "proxy/context.h"
#include "proxy/cursor.h"
#include "proxy/fanout_state.h"
#include "proxy/gather.h"
#include "proxy/log.h"
#include "proxy/params.h"
#include "proxy/pending.h"
#include "proxy/retorder.h"
#include "proxy/sbuf.h"
#include "proxy/server.h"
#include "proxy/session.h"
#include "proxy/tx.h"
#include "proxy/txwatch.h"
#include "proxy/wire.h"
#include "router/copy.h"
#include "router/gather_sql.h"
#include "router/merge.h"
#include "router/route.h"
#include "router/shardmap.h"

static void send_copy_fail(fanout_t *f, const char *why);
static void fanout_drain_member(client_t *c, fanout_t *f, member_t *m);
/* Send a statement to a member as the fan-out runs: a Query, or the extended batch
 * (parameters and result formats as f's phase needs them). */
static int fanout_send(client_t *c, fanout_t *f, member_t *m, const char *sql);

/* What gather.c may ask of the fan-out it merges for: see fanout_state.h. */
static const fanout_services_t fanout_services = {
    .drain_member = fanout_drain_member,
    .send = fanout_send,
};

static member_t *member_of(fanout_t *f, const server_t *s)
{
	for (int i = 0; i < f->n; i++)
		if (f->m[i].s == s)
			return &f->m[i];
	return NULL;
}

bool fanout_has(const fanout_t *f, const server_t *s)
{
	for (int i = 0; i < f->n; i++)
		if (f->m[i].s == s)
			return true;
	return false;
}

void fanout_free(client_t *c)
{
	fanout_t *f = c->fan;

	if (f == NULL)
		return;
	gather_free(f);
	for (int i = 0; i < f->n; i++)
		free(f->m[i].copy_buf);
	free(f->m);
	free(f->error);
	merge_counts_free(&f->counts);
	retorder_free(f->ret);
	free(f->copy_in);
	free(f->key_name);
	free(f->params);
	free(f->results);
	free(f->types);
	if (f->splitter != NULL)
		copy_splitter_free(f->splitter);
	if (f->copy)
		copy_opts_free(&f->opts);
	free(f);
	c->fan = NULL;
	c->phase = PH_IDLE;
}

/* ---- sending ---- */

/* Ask the first member for the table's columns, in order, right before its COPY. */
static int ask_columns(client_t *c, fanout_t *f)
{
	char *sql = copy_columns_sql(&f->opts);
	int rc;

	if (sql == NULL)
		return -1;
	f->key_index = -1;
	f->catalog_col = 0;
	rc = server_query(f->m[0].s, &c->worker->scratch, sql, 'K', PEND_SWALLOW);
	free(sql);
	return rc;
}

/*
 * A COPY FROM STDIN: rows of a sharded table are split by its key column,
 * rows of a reference table go to every shard. 0: set up; 1: not such a
 * COPY; -1 with err: a COPY of a sharded table the splitter cannot do.
 */
static int copy_setup(client_t *c, fanout_t *f, const char *sql, char *err, size_t errlen)
{
	const cfg_t *cfg = context_cfg(c->worker);
	const cfg_table_t *t;
	int rc;

	if (!copy_starts_statement(sql))
		return 1;
	rc = copy_parse_statement(sql, &f->opts, err, errlen);
	if (rc == 1)
		return 1;
	f->copy = rc == 0;
	if (f->merge != ROUTE_MERGE_SUM)
		return 0; /* copies: every shard gets every row */
	if (rc < 0)
		return -1;
	f->copy_split = true;
	t = cfg_find_table(cfg, f->opts.relname);
	if (t == NULL || t->key == NULL || t->map < 0) {
		snprintf(err, errlen, "COPY into \"%s\": not a sharded table of the config",
		         f->opts.relname);
		return -1;
	}
	f->key_name = strdup(t->key);
	f->map = &c->worker->route.maps[t->map];
	f->key_type = cfg->maps[t->map].key;
	return f->key_name != NULL ? 0 : -1;
}

/* Answer a statement that cannot run like a refused one. */
static int refuse(client_t *c, const char *sqlstate, const char *err, bool ready)
{
	char *str = malloc(strlen(err) + 16);

	if (str == NULL)
		return -1;
	sprintf(str, "%.5spgshard: %s", sqlstate, err);
	session_tx_fail(c);
	if (session_reply(c, 'E', str) < 0)
		return -1;
	if (!ready) {
		c->skip_until_sync = true;
		return 0;
	}
	return session_reply(c, 'Z', NULL);
}

static uint8_t *dup_bytes(const uint8_t *p, size_t len)
{
	uint8_t *d = malloc(len > 0 ? len : 1);

	if (d != NULL && len > 0)
		memcpy(d, p, len);
	return d;
}

/* The client's Bind, kept for the members' own (extended protocol). */
static int keep_bind(fanout_t *f, const fanout_bind_t *b)
{
	f->extended = true;
	f->describe = b->describe;
	f->describe_only = b->describe_only;
	f->params = dup_bytes(b->params, b->params_len);
	f->params_len = b->params_len;
	f->results = dup_bytes(b->results, b->results_len);
	f->results_len = b->results_len;
	f->types = dup_bytes(b->types, 4 * (size_t)b->n_types);
	f->n_types = b->n_types;
	return f->params != NULL && f->results != NULL && f->types != NULL ? 0 : -1;
}

/* Bind result format codes for the members: the client's, and text for hidden columns. */
static void put_results(wire_buf_t *b, const fanout_t *f, int hidden)
{
	int16_t n = f->results_len >= 2 ? wire_be16(f->results) : 0;

	if (n <= 1 || hidden == 0) {
		wire_put_bytes(b, f->results, f->results_len);
		return;
	}
	wire_put_i16(b, (int16_t)(n + hidden));
	wire_put_bytes(b, f->results + 2, f->results_len - 2);
	for (int i = 0; i < hidden; i++)
		wire_put_i16(b, 0);
}

static int fanout_send(client_t *c, fanout_t *f, member_t *m, const char *sql)
{
	wire_buf_t *b = &c->worker->scratch;
	bool final = f->phase == GATHER_FINAL, partial = f->phase == GATHER_PARTIALS;
	bool sorted = f->phase == GATHER_STREAM && f->gp->n_keys > 0;

	if (!f->extended)
		return server_query(m->s, b, sql, 'Q', PEND_FORWARD);
	wire_buf_reset(b);
	wire_begin(b, 'P');
	wire_put_cstring(b, "");
	wire_put_cstring(b, sql);
	if (final) { /* bound to the client's parameters it reads (gather.c) */
		gather_put_final_types(b, f);
	} else {
		wire_put_i16(b, f->n_types);
		wire_put_bytes(b, f->types, 4 * (size_t)f->n_types);
	}
	wire_end(b);
	wire_begin(b, 'B');
	wire_put_cstring(b, "");
	wire_put_cstring(b, "");
	if (!final)
		wire_put_bytes(b, f->params, f->params_len);
	else if (gather_put_final_values(b, f) < 0)
		return -1;
	if (partial)
		wire_put_i16(b, 0); /* partial results: text, held as SQL literals */
	else
		put_results(b, f, f->phase == GATHER_STREAM ? f->gp->hidden : 0);
	wire_end(b);
	if (wire_put_run_unnamed(b, f->describe || partial || sorted, !f->describe_only) < 0 ||
	    pending_push(&m->s->pending, 'Q', PEND_FORWARD, 0, NULL, NULL) < 0)
		return -1;
	m->s->unnamed_gen = 0; /* its unnamed statement is now this one */
	return server_send(m->s, b->data, b->len);
}

/*
 * A split INSERT over the extended protocol: the member's own INSERT, bound
 * to the client's parameters its rows use (sp->param_map), with their
 * types and formats; results as the client asked.
 */
static int send_split_bind(client_t *c, fanout_t *f, member_t *m, const route_split_t *sp,
                           const fanout_bind_t *bind)
{
	wire_buf_t *b = &c->worker->scratch;

	wire_buf_reset(b);
	wire_begin(b, 'P');
	wire_put_cstring(b, "");
	wire_put_cstring(b, sp->sql);
	wire_put_i16(b, (int16_t)sp->n_params);
	for (int k = 0; k < sp->n_params; k++) {
		int old = sp->param_map[k];

		wire_put_i32(b, old >= 1 && old <= bind->n_types
		                    ? wire_be32(bind->types + 4 * (size_t)(old - 1))
		                    : 0);
	}
	wire_end(b);
	wire_begin(b, 'B');
	wire_put_cstring(b, "");
	wire_put_cstring(b, "");
	wire_put_i16(b, (int16_t)sp->n_params);
	for (int k = 0; k < sp->n_params; k++) {
		int old = sp->param_map[k];

		wire_put_i16(b,
		             old >= 1 && old <= bind->n_values ? bind->values[old - 1].format : 0);
	}
	wire_put_i16(b, (int16_t)sp->n_params);
	for (int k = 0; k < sp->n_params; k++) {
		int old = sp->param_map[k];
		const route_param_t *v =
		    old >= 1 && old <= bind->n_values ? &bind->values[old - 1] : NULL;

		if (v == NULL || v->data == NULL || v->len < 0) {
			wire_put_i32(b, -1);
		} else {
			wire_put_i32(b, v->len);
			wire_put_bytes(b, v->data, (size_t)v->len);
		}
	}
	put_results(b, f, 0);
	wire_end(b);
	if (wire_put_run_unnamed(b, f->describe, true) < 0 ||
	    pending_push(&m->s->pending, 'Q', PEND_FORWARD, 0, NULL, NULL) < 0)
		return -1;
	m->s->unnamed_gen = 0; /* its unnamed statement is now this one */
	return server_send(m->s, b->data, b->len);
}

/*
 * What a step needs before its members run: a multi-row INSERT's rows
 * split per shard (*splits), or a gather plan. copy_setup has already set
 * up a COPY FROM STDIN: split by key for SPLIT_COPY, every row to every
 * shard for EACH (a reference table's copies). 0, or -1 with err (empty
 * when memory ran out).
 */
static int prepare_step(client_t *c, fanout_t *f, const route_step_t *step, const char *sql,
                        const fanout_bind_t *bind, route_split_t **splits, int *n_splits,
                        char *sqlstate, char *err, size_t errlen)
{
	if (f->cur != NULL)
		return 0; /* a cursor's fetch: cursor_fetch_setup made it */
	switch (step->kind) {
	case ROUTE_STEP_SPLIT_INSERT:
		if (bind != NULL) /* each shard its rows, and the parameters they use */
			return route_split_insert_params(&c->worker->route, sql, bind->values,
			                                 bind->n_values, splits, n_splits, err,
			                                 errlen);
		return route_split_insert(&c->worker->route, sql, splits, n_splits, err, errlen);
	case ROUTE_STEP_SPLIT_COPY:
		if (!f->copy_split) {
			snprintf(err, errlen,
			         "COPY FROM STDIN whose rows go to several shards: the statement "
			         "could not be read to split them");
			return -1;
		}
		return 0;
	case ROUTE_STEP_GATHER:
		return gather_setup(c, f, sql, bind != NULL ? bind->values : NULL,
		                    bind != NULL ? bind->n_values : 0, sqlstate, err, errlen);
	case ROUTE_STEP_EACH:
		if (c->plan.ids_split) /* DDL that makes sequences: each shard its own numbering */
			return route_split_ids(&c->worker->route, sql, &step->shards, splits,
			                       n_splits, err, errlen);
		/* count() columns over the extended protocol: added up by a gather plan */
		if (step->merge == ROUTE_MERGE_COUNT && bind != NULL)
			return gather_setup(c, f, sql, bind->values, bind->n_values, sqlstate, err,
			                    errlen);
		return 0;
	case ROUTE_STEP_MOVE: /* move.c's */
	case ROUTE_STEP_JOIN: /* join.c's */
	case ROUTE_STEP_INSERT_SELECT:
	case ROUTE_STEP_BATCH: /* client.c's */
	case ROUTE_STEP_REFUSE:
	case ROUTE_STEP_TXN:
	case ROUTE_STEP_ONE:
		break;
	}
	memcpy(sqlstate, "XX000", 6);
	snprintf(err, errlen, "a %s step does not run on several shards",
	         route_step_kind_name(step->kind));
	return -1;
}

/* A split INSERT with RETURNING: its rows are held, to go out in VALUES order. */
static int hold_returning(fanout_t *f, const route_split_t *splits, int n_splits)
{
	int shards[SHARD_MAX];

	for (int i = 0; i < f->n && i < SHARD_MAX; i++)
		shards[i] = f->m[i].shard;
	return retorder_new(splits, n_splits, shards, f->n < SHARD_MAX ? f->n : SHARD_MAX, &f->ret);
}

/* Start the statement on the shards of the plan's step (route_step_routed). */
static int start(client_t *c, const char *sql, bool ready, const fanout_bind_t *bind,
                 const fanout_opts_t *o)
{
	const route_step_t *step = route_step_routed(&c->plan);
	const cfg_t *cfg = context_cfg(c->worker);
	route_split_t *splits = NULL;
	int n_splits = 0, rc = 0, is_copy;
	fanout_t *f;
	char err[512], sqlstate[6] = "0A000";

	f = calloc(1, sizeof(*f));
	if (f == NULL)
		return -1;
	f->merge = step->merge != ROUTE_MERGE_NONE ? step->merge : ROUTE_MERGE_ONE;
	f->ready = ready;
	f->row_owner = -1;
	f->counts.n = -1;
	f->key_index = -1;
	err[0] = '\0';
	f->svc = &fanout_services;
	c->fan = f;
	c->phase = PH_SEVERAL;
	if (o != NULL) {
		f->quiet = o->quiet;
		f->portal = o->portal;
		f->portal_rows = o->portal_rows;
		f->portal_declare = o->portal_declare;
	}
	if ((bind != NULL && keep_bind(f, bind) < 0) ||
	    (o != NULL && o->cur != NULL && cursor_fetch_setup(f, o->cur, o->count, o->move) < 0)) {
		fanout_free(c);
		return -1;
	}
	is_copy = copy_setup(c, f, sql, err, sizeof(err));
	if (is_copy == 0 && bind != NULL) {
		snprintf(err, sizeof(err),
		         "COPY on several shards over the extended protocol is not supported; send "
		         "it as a simple query");
		is_copy = -1;
	}
	if (is_copy < 0 || prepare_step(c, f, step, sql, bind, &splits, &n_splits, sqlstate, err,
	                                sizeof(err)) < 0) {
		fanout_free(c);
		return err[0] != '\0' ? refuse(c, sqlstate, err, ready) : -1;
	}
	f->m = calloc((size_t)cfg->n_shards, sizeof(*f->m));
	if (f->m == NULL) {
		fanout_free(c);
		route_splits_free(splits, n_splits);
		return -1;
	}
	for (int i = 0; i < cfg->n_shards; i++) {
		server_t *s = session_link(c, i);
		bool want = n_splits > 0 ? false : shard_set_has(&step->shards, i);

		for (int k = 0; k < n_splits; k++)
			want |= splits[k].shard == i;
		if (!want || s == NULL)
			continue;
		f->m[f->n].s = s;
		f->m[f->n].shard = i;
		f->n++;
	}
	if (step->kind == ROUTE_STEP_SPLIT_INSERT && hold_returning(f, splits, n_splits) < 0)
		rc = -1;
	if (rc == 0 && f->copy_split && ask_columns(c, f) < 0)
		rc = -1;
	if (rc == 0 && gather_needs_collation(c, f))
		rc = server_query(f->m[0].s, &c->worker->scratch, gather_collation_sql, 'L',
		                  PEND_SWALLOW);
	if (rc == 0 && f->phase == GATHER_PARTIALS)
		rc = server_query(f->m[0].s, &c->worker->scratch, gather_float_digits_sql, 'F',
		                  PEND_SWALLOW);
	for (int i = 0; i < f->n && rc >= 0; i++) {
		const char *q = f->member_sql != NULL ? f->member_sql
		                : f->gp != NULL       ? f->gp->shard_sql
		                                      : sql;
		const route_split_t *sp = NULL;

		for (int k = 0; k < n_splits; k++)
			if (splits[k].shard == f->m[i].shard)
				sp = &splits[k];
		if (sp != NULL && bind != NULL && step->kind == ROUTE_STEP_SPLIT_INSERT)
			rc = send_split_bind(c, f, &f->m[i], sp, bind);
		else
			rc = fanout_send(c, f, &f->m[i], sp != NULL ? sp->sql : q);
	}
	route_splits_free(splits, n_splits);
	if (rc < 0) {
		fanout_free(c);
		return -1;
	}
	log_msg(LOG_DEBUG, c->id, 0, "statement on %d shards", f->n);
	return 0;
}

int fanout_query(client_t *c, const char *sql, bool ready)
{
	return start(c, sql, ready, NULL, NULL);
}

int fanout_execute(client_t *c, const char *sql, const fanout_bind_t *bind)
{
	return start(c, sql, false, bind, NULL);
}

int fanout_run(client_t *c, const char *sql, bool ready, const fanout_bind_t *bind,
               const fanout_opts_t *o)
{
	return start(c, sql, ready, bind, o);
}

/* ---- merging ---- */

static void to_client(client_t *c, const uint8_t *msg, size_t len)
{
	sbuf_write(&c->sb, msg, len);
}

static void emit_counts(client_t *c, fanout_t *f)
{
	wire_buf_t *b = &c->worker->scratch;
	char num[32];

	wire_buf_reset(b);
	wire_begin(b, 'D');
	wire_put_i16(b, (int16_t)f->counts.n);
	for (int i = 0; i < f->counts.n; i++) {
		int len = snprintf(num, sizeof(num), "%" PRId64, f->counts.sums[i]);

		wire_put_i32(b, len);
		wire_put_bytes(b, num, (size_t)len);
	}
	if (wire_end(b) == 0)
		to_client(c, b->data, b->len);
}

static void emit_tag(client_t *c, fanout_t *f)
{
	static const uint8_t suspended[] = {'s', 0, 0, 0, 4};
	char tag[96];

	if (f->quiet)
		return;
	if (f->portal && f->portal_rows > 0 && f->sent == (uint64_t)f->portal_rows) {
		/* the Execute's row limit was reached: more may come at the next one */
		to_client(c, suspended, sizeof suspended);
		return;
	}
	if (f->merge == ROUTE_MERGE_COUNT && f->counts.sums != NULL) {
		emit_counts(c, f);
		snprintf(tag, sizeof(tag), "SELECT 1");
	} else if (f->phase == GATHER_STREAM) {
		gather_tag(f, tag, sizeof(tag));
	} else {
		merge_tag_format(&f->tag, tag, sizeof(tag));
	}
	if (tx_implicit(&c->tx)) {
		/* like PostgreSQL, the last statement's tag comes after its commit */
		if (f->held_tag[0] != '\0')
			session_emit(c, 'C', f->held_tag);
		snprintf(f->held_tag, sizeof(f->held_tag), "%s", tag);
		return;
	}
	session_emit(c, 'C', tag);
}

static void send_copy_fail(fanout_t *f, const char *why)
{
	wire_buf_t b;

	wire_buf_init(&b);
	wire_begin(&b, 'f');
	wire_put_cstring(&b, why);
	wire_end(&b);
	for (int i = 0; i < f->n; i++) {
		if (f->m[i].s != NULL && f->m[i].in_copy && !b.failed) {
			server_send(f->m[i].s, b.data, b.len);
			f->m[i].in_copy = false;
		}
	}
	wire_buf_free(&b);
	f->copy_done = true;
}

/* A parameter the server reported (ParameterStatus), NULL when it did not. */
static const char *reported(const server_t *s, const char *name)
{
	if (s == NULL)
		return NULL;
	for (int i = 0; i < s->reported.n; i++)
		if (strcmp(s->reported.items[i].name, name) == 0)
			return s->reported.items[i].stmt;
	return NULL;
}

/* A row a split INSERT returned: held for retorder_emit, up to merge_memory. */
static void hold_returned(client_t *c, fanout_t *f, member_t *m, const uint8_t *msg, size_t total)
{
	size_t cap = context_cfg(c->worker)->merge_memory;
	char err[300];

	if (f->error != NULL)
		return; /* the result ends in that error: its rows do not go out */
	if (retorder_hold(f->ret, (int)(m - f->m), msg, total) < 0) {
		retorder_drop(f->ret);
		fanout_own_error(f, "53200", "pgshard: out of memory");
	} else if (retorder_held(f->ret) > cap) {
		retorder_drop(f->ret);
		snprintf(err, sizeof(err),
		         "pgshard: the rows RETURNING gives for this INSERT on several shards, "
		         "held to answer them in VALUES order, exceed merge_memory (%zu bytes); "
		         "insert fewer rows at a time, or raise merge_memory",
		         cap);
		fanout_own_error(f, "54000", err);
	}
}

static void returned_out(void *arg, const uint8_t *msg, size_t len)
{
	to_client(arg, msg, len);
}

/* Every member is done with the current result: its merged end goes to the client. */
static void end_result(client_t *c, fanout_t *f)
{
	bool copy_in = false;

	for (int i = 0; i < f->n; i++)
		copy_in |= f->m[i].in_copy;
	if (f->error != NULL) {
		wire_buf_t *b = &c->worker->scratch;

		if (copy_in)
			send_copy_fail(f, "pgshard: the COPY failed on another shard");
		wire_buf_reset(b);
		wire_begin(b, 'E');
		/* a deadlock victim's cancel is told as 40P01 (txwatch.c) */
		if (!txwatch_deadlock_body(c, f->error, f->error_len, b))
			wire_put_bytes(b, f->error, f->error_len);
		if (wire_end(b) == 0)
			to_client(c, b->data, b->len);
		free(f->error);
		f->error = NULL;
		f->failed = true;
		session_tx_fail(c);
	} else if (copy_in && !f->copy_open) {
		if (f->copy_split && f->key_index < 0) {
			char msg[300];

			snprintf(msg, sizeof(msg),
			         "pgshard: COPY: table \"%s\" has no column \"%s\" (its shard key)",
			         f->opts.relname, f->key_name);
			fanout_own_error(f, "0A000", msg);
			end_result(c, f);
			return;
		}
		if (f->copy_split) {
			size_t max = context_cfg(c->worker)->max_message_size;
			char err[256], msg[300];

			if (copy_check_encoding(&f->opts, reported(f->m[0].s, "client_encoding"),
			                        err, sizeof(err)) < 0) {
				snprintf(msg, sizeof(msg), "pgshard: %s", err);
				fanout_own_error(f, "0A000", msg);
				end_result(c, f);
				return;
			}
			f->key_bytes_ok =
			    copy_encodings_agree(reported(f->m[0].s, "client_encoding"),
			                         reported(f->m[0].s, "server_encoding"));
			f->splitter = copy_splitter_new(&f->opts, f->key_index, max);
			if (f->splitter == NULL ||
			    (f->opts.n_columns == 0 &&
			     copy_splitter_set_key_name(f->splitter, f->key_name) < 0)) {
				fanout_own_error(f, "53200", "pgshard: out of memory");
				end_result(c, f);
				return;
			}
		}
		to_client(c, f->copy_in, f->copy_in_len);
		f->copy_open = true;
		/* the members stay in COPY: their next result is its CommandComplete */
	} else if (f->empty) {
		session_emit(c, 'I', NULL);
	} else if (f->tag.have) {
		if (f->ret != NULL && !retorder_emit(f->ret, returned_out, c))
			log_msg(LOG_DEBUG, c->id, 0,
			        "a shard returned another number of rows than it inserted: "
			        "RETURNING rows go out shard by shard");
		if (f->copy_out) {
			static const uint8_t done[] = {'c', 0, 0, 0, 4};

			to_client(c, done, sizeof(done));
		}
		emit_tag(c, f);
	}
	for (int i = 0; i < f->n; i++) {
		f->m[i].result_end = false;
		if (f->m[i].s != NULL && !f->m[i].s->wait_client_drain)
			sbuf_resume(&f->m[i].s->sb);
	}
	f->row_owner = -1;
	f->empty = f->copy_out = false;
	memset(&f->tag, 0, sizeof(f->tag));
	merge_counts_free(&f->counts);
}

/* A reply to the proxy's own messages (a settings sync, a transaction's BEGIN, the catalog). */
static void swallowed(client_t *c, fanout_t *f, member_t *m, pending_t *head, uint8_t type,
                      const uint8_t *msg, size_t total)
{
	server_t *s = m->s;

	switch (type) {
	case 'Z':
		server_swallowed_ready(s, c->params_hash, (char)msg[5]);
		break;
	case 'E':
		server_note_error(s, msg + 5, total - 5, LOG_BY_PROXY);
		if (s->syncing_params)
			server_keep_sync_error(s, msg + 5, total - 5);
		fanout_keep_error(f, msg + 5, total - 5);
		break;
	case 'D':
		if (head->msg == 'L')
			gather_note_collation(c, msg + 5, total - 5);
		if (head->msg == 'F')
			gather_note_float_digits(f, msg + 5, total - 5);
		if (head->msg == 'K' && f->key_name != NULL) {
			wire_reader_t r;
			int16_t n;
			int32_t len;
			const uint8_t *name, *oid;
			char tmp[16];
			int col;

			wire_reader_init(&r, msg + 5, total - 5);
			if (wire_get_i16(&r, &n) < 0 || n != 2 || wire_get_i32(&r, &len) < 0 ||
			    len < 0 || wire_get_bytes(&r, (size_t)len, &name) < 0)
				break;
			col = f->catalog_col++;
			if (len != (int32_t)strlen(f->key_name) ||
			    memcmp(name, f->key_name, (size_t)len) != 0)
				break;
			/* its position among the COPY's columns, or else the table's */
			f->key_index = f->opts.n_columns == 0 ? col : -1;
			for (int i = 0; i < f->opts.n_columns; i++)
				if (strcmp(f->opts.columns[i], f->key_name) == 0)
					f->key_index = i;
			if (wire_get_i32(&r, &len) == 0 && len > 0 && len < (int32_t)sizeof(tmp) &&
			    wire_get_bytes(&r, (size_t)len, &oid) == 0) {
				memcpy(tmp, oid, (size_t)len);
				tmp[len] = '\0';
				f->key_oid = (uint32_t)strtoul(tmp, NULL, 10);
			}
		}
		break;
	case 'S':
		server_note_parameter(s, msg + 5, total - 5);
		break;
	default:
		break;
	}
}

/* Read one member's replies as far as the merge allows. */
static void fanout_drain_member(client_t *c, fanout_t *f, member_t *m)
{
	server_t *s = m->s;
	size_t max = context_cfg(c->worker)->max_message_size;

	while (s != NULL && !m->ready && !c->closing && c->fan == f) {
		pbuf_t *in = s->sb.in;
		uint8_t hdr[WIRE_HEADER_LEN], type;
		size_t total;
		const uint8_t *msg;
		pending_t *head = pending_head(&s->pending);
		bool fwd = false;

		if (m->has_row) {
			/* a sorted merge's head row: it waits for its turn (gather.c) */
			if (pbuf_get_length(in) > PROXY_HIGH_WATERMARK)
				sbuf_pause(&s->sb);
			return;
		}
		if (m->result_end && !f->failed && (head == NULL || head->action != PEND_SWALLOW)) {
			if (pbuf_get_length(in) > PROXY_HIGH_WATERMARK)
				sbuf_pause(&s->sb); /* the others are behind */
			return;
		}
		if (pbuf_get_length(c->sb.out) > PROXY_HIGH_WATERMARK) {
			s->wait_client_drain = true;
			sbuf_pause(&s->sb);
			return;
		}
		if (pbuf_copyout(in, hdr, WIRE_HEADER_LEN) < WIRE_HEADER_LEN)
			return;
		switch (wire_frame(hdr, pbuf_get_length(in), max, &type, &total)) {
		case WIRE_FRAME_NEED_MORE:
			return;
		case WIRE_FRAME_OK:
			break;
		default:
			session_server_lost(c, s, "invalid message from server");
			server_close(s, "invalid message length");
			return;
		}
		msg = pbuf_pullup(in, (ev_ssize_t)total);
		if (msg == NULL)
			return;
		if (head != NULL && head->action == PEND_SWALLOW) {
			swallowed(c, f, m, head, type, msg, total);
			pbuf_drain(in, total);
			continue;
		}
		if (f->phase != GATHER_NONE) {
			int g = gather_message(c, f, m, type, msg, total);

			if (g > 0) {
				pbuf_drain(in, total);
				if (g == 1)
					continue;
				/* its head row waits for its turn; read no further for now */
				if (pbuf_get_length(in) > PROXY_HIGH_WATERMARK)
					sbuf_pause(&s->sb);
				return;
			}
		}
		switch (type) {
		case 'n':
			/* a Describe's NoData: like a RowDescription, once */
			if (!f->failed && f->row_owner < 0 && !f->quiet) {
				f->row_owner = (int)(m - f->m);
				fwd = true;
			}
			break;
		case 'T':
		case 'H':
			if (!f->failed && f->row_owner < 0) {
				f->row_owner = (int)(m - f->m);
				fwd = true;
			}
			f->copy_out |= type == 'H';
			break;
		case 'D':
		case 'd':
			if (f->failed)
				break;
			if (f->ret != NULL && type == 'D')
				hold_returned(c, f, m, msg, total);
			else if (f->merge != ROUTE_MERGE_COUNT)
				fwd =
				    f->merge == ROUTE_MERGE_SUM || f->row_owner == (int)(m - f->m);
			else if (merge_counts_add(&f->counts, msg + 5, total - 5) < 0)
				fanout_own_error(
				    f, "XX000",
				    "pgshard: a shard answered count() with something that is "
				    "not a count");
			break;
		case 'c':
			break; /* one CopyDone goes out with the merged end */
		case 'C': {
			const char *tag = (const char *)msg + 5;

			if (total > 5 && msg[total - 1] == '\0')
				merge_tag_add(&f->tag, tag, f->merge == ROUTE_MERGE_ONE);
			m->result_end = true;
			m->in_copy = false;
			break;
		}
		case 'I':
			f->empty = true;
			m->result_end = true;
			break;
		case 'E':
			if (gather_probe_refused(f, msg + 5, total - 5)) {
				server_note_error(s, msg + 5, total - 5, LOG_BY_PROBE);
			} else {
				server_note_error(s, msg + 5, total - 5, LOG_BY_CLIENT);
				fanout_keep_error(f, msg + 5, total - 5);
			}
			m->result_end = true;
			m->in_copy = false;
			break;
		case 'G':
			m->in_copy = true;
			m->result_end = true;
			if (f->copy_in == NULL) {
				f->copy_in = malloc(total);
				if (f->copy_in != NULL) {
					memcpy(f->copy_in, msg, total);
					f->copy_in_len = total;
				}
			}
			break;
		case 'N':
			/* copies say the same thing: one is enough */
			fwd = !f->failed && (f->merge == ROUTE_MERGE_SUM || m == f->m);
			break;
		case 'S':
			server_note_parameter(s, msg + 5, total - 5);
			fwd = m == f->m;
			break;
		case 'A':
			fwd = true;
			break;
		case 'Z':
			m->ready = true;
			m->status = (char)msg[5];
			server_note_ready(s, m->status);
			s->unsynced = false;
			if (head != NULL)
				pending_pop(&s->pending);
			break;
		default:
			break;
		}
		if (fwd)
			sbuf_move(&c->sb, in, total);
		else
			pbuf_drain(in, total);
	}
}

static char merged_status(const fanout_t *f)
{
	char st = 'I';

	for (int i = 0; i < f->n; i++) {
		if (f->m[i].status == 'E')
			return 'E';
		if (f->m[i].status == 'T')
			st = 'T';
	}
	return st;
}

/* The statement ran in pgshard's own transaction: it commits (or rolls back) now. */
static void end_implicit_tx(client_t *c, fanout_t *f)
{
	char tag[sizeof(f->held_tag)];
	bool ready = f->ready, failed = f->failed || tx_failed(&c->tx);

	memcpy(tag, f->held_tag, sizeof(tag));
	fanout_free(c);
	if (commit_start(c, failed ? COMMIT_ROLLBACK : COMMIT_IMPLICIT, ready, tag) < 0)
		session_fail_status(c, PX_NOMEM);
}

static void finish(client_t *c, fanout_t *f)
{
	bool lost = false;

	if (gather_finalize(c, f) == 1)
		return; /* the final query runs now */
	for (int i = 0; i < f->n; i++)
		lost |= f->m[i].s == NULL;
	if (f->gp != NULL && f->gp->cursor != NULL && f->cur == NULL && f->error == NULL &&
	    !f->failed && !lost &&
	    (f->phase == GATHER_FINAL && !f->portal_declare
	         ? cursor_note(c, f->gp->cursor, f->m[0].shard, f->gp->cursor_hold)
	         : cursor_note_several(c, f)) < 0)
		fanout_own_error(f, "53200", "pgshard: out of memory");
	if (f->error != NULL || f->tag.have || f->empty)
		end_result(c, f);
	if (cursor_fetch_end(c, f) == 1)
		return; /* a cursor's fetch: the rows not sent are given back first */
	if (!lost)
		session_note_status(c, merged_status(f));
	if (tx_implicit(&c->tx) && !lost && !c->closing) {
		end_implicit_tx(c, f);
		return;
	}
	if (f->ready)
		session_emit(c, 'Z', NULL);
	else if (f->failed)
		c->skip_until_sync = true;
	fanout_free(c);
	if (!session_maybe_release(c))
		session_resume(c);
}

/* Go on while members can: results end together, and the statement ends at the last ReadyForQuery.
 */
static void progress(client_t *c)
{
	for (;;) {
		fanout_t *f = c->fan;
		bool all_ready = true, barrier = true, any_end = false;

		if (f == NULL || c->closing)
			return;
		gather_pump(c, f);
		if (c->fan != f || c->closing)
			return;
		for (int i = 0; i < f->n; i++) {
			member_t *m = &f->m[i];

			all_ready &= m->ready;
			if (!m->ready && !m->result_end)
				barrier = false;
			any_end |= m->result_end;
		}
		if (all_ready) {
			finish(c, f);
			return;
		}
		if (!barrier || !any_end || f->failed)
			return;
		end_result(c, f);
		for (int i = 0; i < f->n && c->fan == f; i++)
			fanout_drain_member(c, f, &f->m[i]);
	}
}

void fanout_reply(client_t *c, server_t *s)
{
	fanout_t *f = c->fan;
	member_t *m = member_of(f, s);

	if (m == NULL)
		return;
	fanout_drain_member(c, f, m);
	progress(c);
	/* the copy just opened: what the client sent behind its COPY goes in now */
	if (c->fan == f && fanout_copy_state(f) == FANOUT_COPY_OPEN && !c->closing &&
	    pbuf_get_length(c->sb.in) > 0)
		session_resume(c);
}

fanout_copy_t fanout_copy_state(const fanout_t *f)
{
	if (!f->copy)
		return FANOUT_NOT_COPY;
	if (f->copy_done)
		return FANOUT_COPY_DONE;
	return f->copy_open ? FANOUT_COPY_OPEN : FANOUT_COPY_STARTING;
}

/*
 * A message other than CopyData, CopyDone or CopyFail while the client
 * copies in: PostgreSQL ignores Flush and Sync there (libraries send them
 * without noticing that the statement was a COPY); anything else is a
 * protocol violation that ends the connection, and the COPY with it. So
 * does the fan-out: the members' COPY is failed before the client closes.
 */
void fanout_copy_unexpected(client_t *c, uint8_t type)
{
	fanout_t *f = c->fan;
	char msg[100];

	if (type == 'H' || type == 'S')
		return;
	snprintf(msg, sizeof(msg), "unexpected message type 0x%02X during COPY from stdin", type);
	send_copy_fail(f, msg);
	session_fail(c, "FATAL", "08P01", "pgshard: %s", msg);
}

void fanout_resume_members(client_t *c)
{
	fanout_t *f = c->fan;

	for (int i = 0; f != NULL && i < f->n && c->fan == f; i++) {
		server_t *s = f->m[i].s;

		if (s != NULL && s->wait_client_drain) {
			s->wait_client_drain = false;
			sbuf_resume(&s->sb);
			fanout_drain_member(c, f, &f->m[i]);
		}
	}
	progress(c);
}

void fanout_member_lost(client_t *c, server_t *s)
{
	member_t *m = member_of(c->fan, s);

	if (m != NULL) {
		m->s = NULL;
		m->ready = true;
	}
}

/* ---- COPY FROM STDIN ---- */

typedef struct copy_ctx {
	client_t *c;
	fanout_t *f;
	char sqlstate[6]; /* of err */
	char err[256];    /* why piece_cb stopped the splitter */
} copy_ctx_t;

static int buf_add(member_t *m, const uint8_t *data, size_t len)
{
	if (m->copy_len + len > m->copy_cap) {
		size_t cap = m->copy_cap ? m->copy_cap : 65536;
		uint8_t *p;

		while (cap < m->copy_len + len)
			cap *= 2;
		p = realloc(m->copy_buf, cap);
		if (p == NULL)
			return -1;
		m->copy_buf = p;
		m->copy_cap = cap;
	}
	memcpy(m->copy_buf + m->copy_len, data, len);
	m->copy_len += len;
	return 0;
}

static int piece_cb(void *arg, const copy_piece_t *piece)
{
	copy_ctx_t *x = arg;
	fanout_t *f = x->f;
	shard_key_t key;
	int shard, rc;

	if (piece->kind == COPY_PIECE_ALL) {
		for (int i = 0; i < f->n; i++)
			if (buf_add(&f->m[i], piece->data, piece->len) < 0)
				return -1;
		return 0;
	}
	snprintf(x->sqlstate, sizeof(x->sqlstate), "22P04");
	if (piece->key == NULL) {
		snprintf(x->sqlstate, sizeof(x->sqlstate), "23502");
		snprintf(x->err, sizeof(x->err),
		         "pgshard: COPY %s, line %" PRIu64 ": the shard key \"%s\" is null",
		         f->opts.relname, piece->row_number, f->key_name);
		return -1;
	}
	if (piece->key_binary)
		rc = shard_key_from_binary(f->key_type, f->key_oid, piece->key, piece->key_len,
		                           &key);
	else
		rc = shard_key_from_text(f->key_type, (const char *)piece->key, piece->key_len,
		                         &key);
	if (rc < 0) {
		snprintf(x->err, sizeof(x->err),
		         "pgshard: COPY %s, line %" PRIu64
		         ": cannot read the shard key \"%s\" as %s",
		         f->opts.relname, piece->row_number, f->key_name,
		         shard_key_type_name(f->key_type));
		return -1;
	}
	if (!f->key_bytes_ok && shard_key_encoded(&key)) {
		snprintf(x->sqlstate, sizeof(x->sqlstate), "0A000");
		snprintf(x->err, sizeof(x->err),
		         "pgshard: COPY %s, line %" PRIu64
		         ": the shard key \"%s\" has non-ASCII characters, routed by the bytes the "
		         "database stores, and client_encoding %s is not the database's %s; SET "
		         "client_encoding TO '%s'",
		         f->opts.relname, piece->row_number, f->key_name,
		         reported(f->m[0].s, "client_encoding"),
		         reported(f->m[0].s, "server_encoding"),
		         reported(f->m[0].s, "server_encoding"));
		return -1;
	}
	shard = shard_map_lookup(f->map, &key);
	for (int i = 0; i < f->n; i++)
		if (f->m[i].shard == shard)
			return buf_add(&f->m[i], piece->data, piece->len);
	snprintf(x->err, sizeof(x->err), "pgshard: COPY %s, line %" PRIu64 ": no link to shard %d",
	         f->opts.relname, piece->row_number, shard);
	return -1;
}

/* Send what each member got as one CopyData. */
static int flush_rows(fanout_t *f)
{
	for (int i = 0; i < f->n; i++) {
		member_t *m = &f->m[i];
		uint8_t hdr[5];

		if (m->copy_len == 0 || m->s == NULL)
			continue;
		hdr[0] = 'd';
		hdr[1] = (uint8_t)((m->copy_len + 4) >> 24);
		hdr[2] = (uint8_t)((m->copy_len + 4) >> 16);
		hdr[3] = (uint8_t)((m->copy_len + 4) >> 8);
		hdr[4] = (uint8_t)(m->copy_len + 4);
		if (server_send(m->s, hdr, sizeof(hdr)) < 0 ||
		    server_send(m->s, m->copy_buf, m->copy_len) < 0)
			return -1;
		m->copy_len = 0;
	}
	return 0;
}

static void copy_failed(client_t *c, fanout_t *f, const char *sqlstate, const char *msg)
{
	fanout_own_error(f, sqlstate, msg);
	send_copy_fail(f, msg);
	for (int i = 0; i < f->n; i++)
		f->m[i].copy_len = 0;
}

/* The splitter's error, or the routing error that stopped it (a row's key). */
static void copy_error(client_t *c, fanout_t *f, const copy_ctx_t *x, const char *sqlstate,
                       const char *err)
{
	char msg[300];

	if (x->err[0] != '\0') {
		copy_failed(c, f, x->sqlstate, x->err);
		return;
	}
	snprintf(msg, sizeof(msg), "pgshard: COPY %s: %s", f->opts.relname,
	         err[0] ? err : "failed");
	copy_failed(c, f, sqlstate, msg);
}

static void send_all(fanout_t *f, const uint8_t *msg, size_t total)
{
	for (int i = 0; i < f->n; i++)
		if (f->m[i].s != NULL && f->m[i].in_copy)
			server_send(f->m[i].s, msg, total);
}

int fanout_copy_message(client_t *c, uint8_t type, const uint8_t *msg, size_t total)
{
	fanout_t *f = c->fan;
	copy_ctx_t x = {c, f, "", ""};
	char sqlstate[6] = "22P04", err[256] = "";

	if (!f->copy_open || f->copy_done)
		return 0; /* outside COPY, or after it failed: ignored, as a server does */
	switch (type) {
	case 'd':
		if (!f->copy_split) {
			send_all(f, msg, total);
			return 0;
		}
		if (copy_feed(f->splitter, msg + 5, total - 5, piece_cb, &x, sqlstate, err,
		              sizeof(err)) < 0 ||
		    flush_rows(f) < 0) {
			copy_error(c, f, &x, sqlstate, err);
			progress(c);
		}
		return 0;
	case 'c':
		if (f->copy_split &&
		    (copy_finish(f->splitter, piece_cb, &x, sqlstate, err, sizeof(err)) < 0 ||
		     flush_rows(f) < 0)) {
			copy_error(c, f, &x, sqlstate, err);
			progress(c);
			return 0;
		}
		send_all(f, msg, total);
		f->copy_done = true;
		return 0;
	case 'f':
		send_all(f, msg, total);
		f->copy_done = true;
		return 0;
	}
	return 0;
}
