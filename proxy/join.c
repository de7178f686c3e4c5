/*
 * join.c — a SELECT joining sharded tables across shards (ROUTE_STEP_JOIN),
 * run in the steps router/join_plan.h plans, on the client's links (with
 * three tables or more, PROBE repeats for each table after the first, with
 * the keys of the side the plan says; join_t.step is the side being
 * fetched):
 *
 *   SUBQ   first, the subqueries the plan runs first, one after the other
 *          (subq.c): each answer kept as a typed parameter of what follows
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
 *          the same way. A side fetched whole (join_side_t.whole) runs as
 *          the driving side does, on every shard its filters leave.
 *   FINAL  the statement with the client's parameters, the subqueries'
 *          answers and the sides' rows (array literals of the tables' row
 *          types) on one
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
 * a reply is (what joining the client's transaction sent is not ours). The
 * state and the helpers the executor's files share: join_int.h, join_msg.c.
 */
#include "proxy/join.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/context.h"
#include "proxy/join_int.h"
#include "proxy/log.h"
#include "proxy/pending.h"
#include "proxy/sbuf.h"
#include "proxy/server.h"
#include "proxy/session.h"
#include "proxy/tx.h"
#include "proxy/wire.h"
#include "router/join_plan.h"

bool join_runs(const route_plan_t *p)
{
	return route_step_routed(p)->kind == ROUTE_STEP_JOIN;
}

/* ---- bookkeeping ---- */

void join_free(client_t *c)
{
	join_t *j = c->join;

	if (j == NULL)
		return;
	for (int i = 0; i < j->n; i++) {
		for (int k = 0; k < JOIN_MAX_SIDES; k++) {
			for (int b = 0; b < j->m[i].n_batches[k]; b++)
				join_lit_free(&j->m[i].batches[k][b]);
			free(j->m[i].batches[k]);
			join_keyset_free(&j->m[i].seen[k]);
		}
	}
	free(j->m);
	for (int k = 0; k < JOIN_MAX_SIDES; k++)
		join_lit_free(&j->rows[k]);
	join_lit_free(&j->sr.rows);
	join_lit_free(&j->sr.values);
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

/* ---- the rows ---- */

/*
 * A key for probed side `side` on m: into its last batch, or a new one once
 * that is full when its keys are split in batches (each key once: see
 * join_keys.c); else all in one.
 */
static int batch_add(join_t *j, member_t *m, int side, const uint8_t *key, size_t len)
{
	int n = m->n_batches[side];
	bool batched = !j->plan.sides[side].leads && join_keys_batched(j->key_types[side]);

	if (batched) {
		int rc = join_keyset_add(&m->seen[side], key, len);

		if (rc <= 0)
			return rc; /* there already (0), or no memory (-1) */
		j->key_bytes += len + 32;
	}
	j->key_bytes += 2 * len + 4;
	if (n == 0 || (batched && m->batches[side][n - 1].n >= JOIN_BATCH_KEYS)) {
		lit_t *b = realloc(m->batches[side], sizeof *b * (size_t)(n + 1));

		if (b == NULL)
			return -1;
		m->batches[side] = b;
		memset(&b[n], 0, sizeof *b);
		m->n_batches[side] = ++n;
	}
	return join_lit_add(&m->batches[side][n - 1], key, len);
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

/*
 * A row of the side being fetched: its keys for the sides it feeds, then the
 * row. A co-located pair's statement gives a row of either table: the
 * other's is NULL (join_group.c).
 */
static void side_row(client_t *c, join_t *j, const uint8_t *body, size_t len)
{
	const join_side_t *side = &j->plan.sides[j->step];
	int whose = j->step;
	lit_t *rows;
	const uint8_t *row = NULL;
	int32_t row_len = -1;

	if (join_field_at(body, len, side->n_keys, &row, &row_len) < 0) {
		join_own_error(j, "08P01", "pgshard: a shard sent a join side's row wrongly");
		return;
	}
	if (side->leads && row_len < 0) {
		whose = j->step + 1; /* its partner's row */
		if (join_field_at(body, len, side->n_keys + 1, &row, &row_len) < 0)
			row_len = -1;
	}
	if (row_len < 0) {
		join_own_error(j, "08P01", "pgshard: a shard sent a join side's row wrongly");
		return;
	}
	rows = &j->rows[whose];
	if (rows->n >= j->max_rows) {
		join_own_error(j, "54000",
		               "pgshard: the join would hold more than max_join_rows = %" PRIu64
		               " rows of %s; filter that side further, or raise max_join_rows",
		               j->max_rows, j->plan.sides[whose].table->name);
		return;
	}
	if (join_held_bytes(j) + 2 * (size_t)row_len > j->max_bytes) {
		join_own_error(
		    j, "54000",
		    "pgshard: the join would hold more than merge_memory = %zu bytes of rows; "
		    "filter its sides further, or raise merge_memory",
		    j->max_bytes);
		return;
	}
	if (join_lit_add(rows, row ? row : (const uint8_t *)"", (size_t)row_len) < 0) {
		join_own_error(j, "53200", "pgshard: out of memory");
		return;
	}
	for (int k = 0; k < side->n_keys; k++) {
		const uint8_t *key = NULL;
		int32_t key_len = -1;

		if (join_field_at(body, len, k, &key, &key_len) < 0) {
			join_own_error(j, "08P01",
			               "pgshard: a shard sent a join side's row wrongly");
			return;
		}
		if (route_key(c, j, side->deps[k], key, key_len) < 0) {
			join_own_error(j, "53200", "pgshard: out of memory");
			return;
		}
	}
}

/* ---- sending ---- */

/*
 * The statement of the driving side, or of a side fetched whole, with the
 * client's parameters its filters use.
 */
static int send_side(client_t *c, join_t *j, member_t *m, int p)
{
	wire_buf_t *b = &c->worker->scratch;
	stmt_params_t *sp = &j->sp;
	const join_side_t *d = &j->plan.sides[p];

	if (join_params_of(j, sp, NULL, 0, d->params, d->n_params) < 0)
		return join_params_short(j);
	wire_buf_reset(b);
	join_put_parse(b, d->sql, sp);
	join_put_bind(b, sp, NULL, 0);
	/* its RowDescription: the types of the keys it gives */
	return join_send_run(c, m, b, p == 0 ? PEND_DRIVE : PEND_PROBE, p == 0 || d->n_keys > 0);
}

/* Side p's probe statement once, a Bind and Execute per batch of m's keys for it, one Sync. */
static int send_probe(client_t *c, join_t *j, member_t *m, int p)
{
	wire_buf_t *b = &c->worker->scratch;
	stmt_params_t *sp = &j->sp;
	const join_side_t *ps = &j->plan.sides[p];
	route_param_t keys = join_text_param("{}");

	keys.type_oid = join_array_type(j->key_types[p]);

	if (join_params_of(j, sp, &keys, 1, ps->params, ps->n_params) < 0)
		return join_params_short(j);
	/* the probe's $1 is the keys: ours first */
	memmove(&sp->v[1], &sp->v[0], sizeof sp->v[0] * (size_t)(sp->n - 1));
	wire_buf_reset(b);
	sp->v[0] = keys;
	join_put_parse(b, ps->sql, sp);
	for (int i = 0; i < m->n_batches[p]; i++) {
		const char *text = join_lit_text(&m->batches[p][i]);

		if (text == NULL)
			return -1;
		sp->v[0].data = (const uint8_t *)text;
		sp->v[0].len = (int32_t)strlen(text);
		join_put_bind(b, sp, NULL, 0);
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
	return join_send_run(c, m, b, PEND_PROBE, ps->n_keys > 0);
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
		const char *text = join_lit_text(&j->rows[k]);

		if (text == NULL) {
			free(all);
			return -1;
		}
		rows[n_subs + k] = join_text_param(text);
	}
	for (int k = 0; k < j->plan.n_params; k++)
		all[k] = k + 1;
	rc = join_params_of(j, sp, rows, n_subs + j->plan.n_sides, all, j->plan.n_params);
	free(all);
	if (rc < 0)
		return join_params_short(j);
	wire_buf_reset(b);
	join_put_parse(b, j->plan.final_sql, sp);
	join_put_bind(b, sp, j->results, j->results_len);
	log_msg(LOG_DEBUG, c->id, 0, "join: final statement on shard %d over %" PRIu64 " rows",
	        m->shard, j->rows[0].n);
	return join_send_run(c, m, b, PEND_FINAL, !j->extended || j->describe);
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
		join_keep_error(j, msg + 5, total - 5);
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
			subq_error(j, body, len);
		join_keep_error(j, body, len);
		break;
	case 'D':
		if (mark == PEND_FLOATS) {
			const uint8_t *v = NULL;
			int32_t vlen = -1;
			char num[16];

			if (join_field_at(body, len, 0, &v, &vlen) == 0 && vlen > 0 &&
			    vlen < (int32_t)sizeof num) {
				memcpy(num, v, (size_t)vlen);
				num[vlen] = '\0';
				j->float_digits = atoi(num);
			}
		} else if (mark == PEND_FINAL && !join_failed(j))
			sbuf_write(&c->sb, msg, total);
		else if (mark == PEND_SUB_ROWS && !join_failed(j))
			subq_row(j, body, len);
		else if (mark == PEND_SUB_RUN && !join_failed(j))
			subq_answer_row(j, body, len);
		else if (mark != PEND_FINAL && !join_failed(j))
			side_row(c, j, body, len);
		break;
	case 'T':
		if (mark == PEND_SUB_RUN)
			j->sr.type = subq_first_type(body, len);
		if ((mark == PEND_DRIVE || mark == PEND_PROBE) && j->step < j->plan.n_sides)
			note_key_types(j, body, len);
		if (mark == PEND_FINAL && !join_failed(j))
			sbuf_write(&c->sb, msg, total);
		break;
	case 'C':
	case 'n':
	case 'N':
		if (mark == PEND_FINAL && !join_failed(j))
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

		if (pbuf_get_length(c->sb.out) > PROXY_HIGH_WATERMARK) {
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
		pbuf_drain(s->sb.in, total);
	}
}

/* ---- the steps ---- */

static void finish(client_t *c, join_t *j)
{
	bool ok = !join_failed(j), ready = !j->extended;

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
			join_own_error(j, "08006", "pgshard: lost the connection to shard %d",
			               m->shard);
			return 0;
		}
		rc = keys ? send_probe(c, j, m, j->step) : send_side(c, j, m, j->step);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* What comes next once everything sent is answered. 0, 1 (fewer parameters), -1. */
static int next_stage(client_t *c, join_t *j)
{
	if (j->sr.sub < j->plan.n_subs)
		return subq_stage(c, j);
	j->step++;
	while (j->step < j->plan.n_sides && j->plan.sides[j->step].rides)
		j->step++; /* fetched with the side before it */
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
		join_own_error(j, "08006",
		               "pgshard: no shard left to run the join's final statement");
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
		join_own_error(
		    j, "0A000",
		    "pgshard: extra_float_digits is %d in this session, so the rows a join "
		    "across shards passes between shards would have their float values "
		    "rounded; SET extra_float_digits = 1 (the default) or more for this "
		    "statement",
		    j->float_digits);
	while (rc == 0 && all_answered(j) && !join_failed(j) && j->step < j->plan.n_sides)
		rc = next_stage(c, j);
	if (rc < 0) {
		session_fail_status(c, PX_NOMEM);
		return;
	}
	if (rc > 0)
		join_own_error(j, "08P01",
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
		join_own_error(j, "0A000", "pgshard: %s", err);
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
		join_own_error(j, "08P01",
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
		join_own_error(c->join, "08006",
		               "pgshard: lost the connection to shard %d during a join", m->shard);
	}
}
