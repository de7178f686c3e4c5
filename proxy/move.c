/*
 * move.c — an UPDATE of the shard key that moves rows between shards
 * (ROUTE_STEP_MOVE), inside the client's transaction (an implicit one
 * pgshard opens around an autocommit UPDATE, committed in two phases when
 * it wrote on several shards).
 *
 *   UPDATE  the UPDATE runs on every shard its rows can be on, with the
 *           hidden columns of route_move_prepare after its RETURNING list;
 *           the client gets its RETURNING rows as they come. A row whose
 *           new key belongs to another shard is remembered: where it is
 *           (tableoid, ctid) and what it is (its row as text). The first
 *           shard also reports the table's insertable columns.
 *   MOVE    on each shard rows leave, a DELETE per row by tableoid and
 *           ctid; on each shard rows arrive, an INSERT per row of its text
 *           read back as the table's row type. One Parse and a Bind and
 *           Execute per row, one Sync: a round trip per shard.
 *
 * The answer is the UPDATE's: its rows, then UPDATE n (n rows updated,
 * moved or not), after the commit of an implicit transaction. Any error
 * (a shard's, or a row whose new key is NULL) fails the statement, and the
 * transaction with it: nothing is half moved once it ends.
 *
 * Replies are read here, message by message; the pending queue says whose
 * a reply is (what joining the transaction sent is swallowed as such).
 */
#include "proxy/move.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/commit.h"
#include "proxy/context.h"
#include "proxy/fanout.h"
#include "proxy/log.h"
#include "proxy/pending.h"
#include "proxy/sbuf.h"
#include "proxy/server.h"
#include "proxy/session.h"
#include "proxy/tx.h"
#include "proxy/wire.h"
#include "router/route.h"
#include "router/shardmap.h"

/* What the rows to move may take in memory before the statement is refused. */
#define MOVE_MAX_BYTES ((size_t)256 * 1024 * 1024)

/* The pending-queue marks of the move's own statements on a member. */
enum {
	PEND_COLUMNS = 'k',
	PEND_UPDATE = 'u',
	PEND_DELETE = 'x',
	PEND_INSERT = 'i',
};

typedef enum move_step {
	MOVE_UPDATE,
	MOVE_ROWS,
} move_step_t;

/* Strings kept for one statement per row: each entry is its parameters, NUL-separated. */
typedef struct rowlist {
	char **v;
	int n, cap;
} rowlist_t;

typedef struct member {
	server_t *s; /* NULL once lost */
	int shard;
	int waiting;      /* the move's own ReadyForQuery still to come */
	rowlist_t leave;  /* rows to delete here: "tableoid\0ctid" */
	rowlist_t arrive; /* rows to insert here: the row's text */
	int deleted;      /* DELETE 1 answers */
} member_t;

struct move {
	member_t *m;
	int n;
	move_step_t step;
	route_move_t stmts;
	const shard_map_t *map;
	cfg_key_type_t key_type;
	char **columns; /* the table's insertable columns */
	int n_columns, cap_columns;
	bool extended;   /* the client's Bind/Execute: no ReadyForQuery, Sync gets it */
	bool describe;   /* ... and it asked for the RowDescription (Describe) */
	bool described;  /* the client has its RowDescription */
	int client_cols; /* columns of the client's RETURNING list */
	int64_t updated; /* rows the UPDATE reported */
	size_t kept;     /* bytes of rows to move */
	uint8_t *error;  /* the first ErrorResponse body: the answer */
	size_t error_len;
	char sqlstate[6]; /* or pgshard's own error */
	char message[300];
};

const char move_needs_tx[] =
    "an UPDATE of the shard key that moves rows between shards runs only in a transaction "
    "(two_phase_commit is off, or the session holds a server connection of its own); run it "
    "between BEGIN and COMMIT";

/* ---- bookkeeping ---- */

static void rowlist_free(rowlist_t *l)
{
	for (int i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof *l);
}

static int rowlist_add(rowlist_t *l, char *entry)
{
	if (entry == NULL)
		return -1;
	if (l->n == l->cap) {
		int cap = l->cap > 0 ? 2 * l->cap : 16;
		char **v = realloc(l->v, sizeof *v * (size_t)cap);

		if (v == NULL) {
			free(entry);
			return -1;
		}
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = entry;
	return 0;
}

void move_free(client_t *c)
{
	move_t *mv = c->move;

	if (mv == NULL)
		return;
	for (int i = 0; i < mv->n; i++) {
		rowlist_free(&mv->m[i].leave);
		rowlist_free(&mv->m[i].arrive);
	}
	for (int i = 0; i < mv->n_columns; i++)
		free(mv->columns[i]);
	free(mv->columns);
	free(mv->m);
	free(mv->error);
	route_move_free(&mv->stmts);
	free(mv);
	c->move = NULL;
	c->phase = PH_IDLE;
}

static member_t *member_of(move_t *mv, const server_t *s)
{
	for (int i = 0; s != NULL && i < mv->n; i++)
		if (mv->m[i].s == s)
			return &mv->m[i];
	return NULL;
}

static member_t *member_at(move_t *mv, int shard)
{
	for (int i = 0; i < mv->n; i++)
		if (mv->m[i].shard == shard)
			return &mv->m[i];
	return NULL;
}

bool move_has(const move_t *mv, const server_t *s)
{
	for (int i = 0; s != NULL && i < mv->n; i++)
		if (mv->m[i].s == s)
			return true;
	return false;
}

static void own_error(move_t *mv, const char *sqlstate, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void own_error(move_t *mv, const char *sqlstate, const char *fmt, ...)
{
	va_list ap;

	if (mv->error != NULL || mv->sqlstate[0] != '\0')
		return;
	memcpy(mv->sqlstate, sqlstate, 6);
	va_start(ap, fmt);
	vsnprintf(mv->message, sizeof mv->message, fmt, ap);
	va_end(ap);
}

static void keep_error(move_t *mv, const uint8_t *body, size_t len)
{
	if (mv->error != NULL || mv->sqlstate[0] != '\0')
		return;
	mv->error = malloc(len > 0 ? len : 1);
	if (mv->error == NULL) {
		own_error(mv, "53200", "pgshard: out of memory");
		return;
	}
	memcpy(mv->error, body, len);
	mv->error_len = len;
}

static bool failed(const move_t *mv)
{
	return mv->error != NULL || mv->sqlstate[0] != '\0';
}

/* ---- sending ---- */

/* One Parse of sql, a Bind and Execute per entry of rows (n_params text values each), Sync. */
static int send_rows(client_t *c, member_t *m, const char *sql, const rowlist_t *rows, int n_params,
                     uint8_t mark)
{
	wire_buf_t *b = &c->worker->scratch;

	wire_buf_reset(b);
	wire_begin(b, 'P');
	wire_put_cstring(b, "");
	wire_put_cstring(b, sql);
	wire_put_i16(b, 0);
	wire_end(b);
	for (int r = 0; r < rows->n; r++) {
		const char *v = rows->v[r];

		wire_begin(b, 'B');
		wire_put_cstring(b, "");
		wire_put_cstring(b, "");
		wire_put_i16(b, 0); /* every parameter in text */
		wire_put_i16(b, (int16_t)n_params);
		for (int k = 0; k < n_params; k++) {
			size_t len = strlen(v);

			wire_put_i32(b, (int32_t)len);
			wire_put_bytes(b, v, len);
			v += len + 1;
		}
		wire_put_i16(b, 0);
		wire_end(b);
		if (r + 1 < rows->n) {
			wire_begin(b, 'E');
			wire_put_cstring(b, "");
			wire_put_i32(b, 0);
			wire_end(b);
		}
	}
	if (wire_put_run_unnamed(b, false, rows->n > 0) < 0 ||
	    pending_push(&m->s->pending, mark, PEND_SWALLOW, 0, NULL, NULL) < 0)
		return -1;
	m->s->unnamed_gen = 0; /* its unnamed statement is now this one */
	m->waiting++;
	return server_send(m->s, b->data, b->len);
}

static int send_query(client_t *c, member_t *m, const char *sql, uint8_t mark)
{
	if (server_query(m->s, &c->worker->scratch, sql, mark, PEND_SWALLOW) < 0)
		return -1;
	m->waiting++;
	return 0;
}

/* ---- the UPDATE's rows ---- */

/* The byte offset, in a RowDescription or DataRow body, just past its first n fields. */
static int skip_fields(const uint8_t *body, size_t len, uint8_t type, int n, size_t *at)
{
	wire_reader_t r;
	int16_t count;

	wire_reader_init(&r, body, len);
	if (wire_get_i16(&r, &count) < 0 || count < n)
		return -1;
	for (int i = 0; i < n; i++) {
		const char *name;
		const uint8_t *skip;
		int32_t flen;

		if (type == 'T') {
			if (wire_get_cstring(&r, &name) < 0 || wire_get_bytes(&r, 18, &skip) < 0)
				return -1;
		} else if (wire_get_i32(&r, &flen) < 0 ||
		           (flen > 0 && wire_get_bytes(&r, (size_t)flen, &skip) < 0)) {
			return -1;
		}
	}
	*at = len - wire_remaining(&r);
	return 0;
}

/* The first n fields of a RowDescription or DataRow, to the client. */
static void emit_fields(client_t *c, uint8_t type, const uint8_t *body, size_t len, int n)
{
	wire_buf_t *b = &c->worker->scratch;
	size_t end;

	if (skip_fields(body, len, type, n, &end) < 0)
		return;
	wire_buf_reset(b);
	wire_begin(b, type);
	wire_put_i16(b, (int16_t)n);
	wire_put_bytes(b, body + 2, end - 2);
	if (wire_end(b) == 0)
		sbuf_write(&c->sb, b->data, b->len);
}

static char *dup_field(const uint8_t *p, int32_t len)
{
	char *s = malloc((size_t)len + 1);

	if (s != NULL) {
		memcpy(s, p, (size_t)len);
		s[len] = '\0';
	}
	return s;
}

/* One updated row: its RETURNING columns out, and remembered if it moves. */
static void updated_row(client_t *c, move_t *mv, member_t *src, const uint8_t *body, size_t len)
{
	const uint8_t *f[ROUTE_MOVE_HIDDEN];
	int32_t flen[ROUTE_MOVE_HIDDEN];
	wire_reader_t r;
	size_t at;
	shard_key_t key;
	member_t *dst;
	char *leave, *arrive;
	int to;

	if (mv->client_cols > 0)
		emit_fields(c, 'D', body, len, mv->client_cols);
	if (skip_fields(body, len, 'D', mv->client_cols, &at) < 0) {
		own_error(mv, "08P01", "pgshard: a shard sent an unreadable row");
		return;
	}
	wire_reader_init(&r, body + at, len - at);
	for (int i = 0; i < ROUTE_MOVE_HIDDEN; i++) {
		f[i] = (const uint8_t *)"";
		if (wire_get_i32(&r, &flen[i]) < 0 ||
		    (flen[i] > 0 && wire_get_bytes(&r, (size_t)flen[i], &f[i]) < 0) ||
		    (flen[i] < 0 && i != 2)) { /* only the key can be NULL */
			own_error(mv, "08P01", "pgshard: a shard sent an unreadable row");
			return;
		}
	}
	if (flen[2] < 0) {
		own_error(mv, "0A000",
		          "pgshard: the UPDATE sets the shard key to NULL; a row needs a key "
		          "to have a shard");
		return;
	}
	if (shard_key_from_text(mv->key_type, (const char *)f[2], (size_t)flen[2], &key) < 0 ||
	    (to = shard_map_lookup(mv->map, &key)) < 0) {
		own_error(mv, "22023", "pgshard: the new shard key value \"%.*s\" has no shard",
		          flen[2] > 100 ? 100 : (int)flen[2], (const char *)f[2]);
		return;
	}
	if (to == src->shard)
		return;
	dst = member_at(mv, to);
	if (dst == NULL || dst->s == NULL) {
		own_error(mv, "XX000",
		          "pgshard: a row moves to shard %d, which the UPDATE was not planned on",
		          to);
		return;
	}
	mv->kept += (size_t)flen[0] + (size_t)flen[1] + (size_t)flen[3] + 64;
	if (mv->kept > MOVE_MAX_BYTES) {
		own_error(mv, "54000",
		          "pgshard: the rows this UPDATE moves between shards take more than %zu "
		          "MB; move them in smaller batches (narrow the WHERE clause)",
		          MOVE_MAX_BYTES >> 20);
		return;
	}
	leave = malloc((size_t)flen[0] + (size_t)flen[1] + 2);
	if (leave != NULL) {
		memcpy(leave, f[0], (size_t)flen[0]);
		leave[flen[0]] = '\0';
		memcpy(leave + flen[0] + 1, f[1], (size_t)flen[1]);
		leave[flen[0] + 1 + flen[1]] = '\0';
	}
	arrive = dup_field(f[3], flen[3]);
	if (rowlist_add(&src->leave, leave) < 0 || rowlist_add(&dst->arrive, arrive) < 0)
		own_error(mv, "53200", "pgshard: out of memory");
}

/* ---- reading replies ---- */

/* What joining the transaction sent (its prefix, the session's settings). */
static void joined_reply(client_t *c, move_t *mv, server_t *s, uint8_t type, const uint8_t *msg,
                         size_t total)
{
	switch (type) {
	case 'Z':
		server_swallowed_ready(s, c->params_hash, (char)msg[5]);
		break;
	case 'E':
		if (s->syncing_params)
			server_keep_sync_error(s, msg + 5, total - 5);
		keep_error(mv, msg + 5, total - 5);
		break;
	case 'S':
		server_note_parameter(s, msg + 5, total - 5);
		break;
	default:
		break;
	}
}

static int add_column(move_t *mv, const uint8_t *body, size_t len)
{
	wire_reader_t r;
	int16_t n;
	int32_t flen;
	const uint8_t *name;

	wire_reader_init(&r, body, len);
	if (wire_get_i16(&r, &n) < 0 || n != 1 || wire_get_i32(&r, &flen) < 0 || flen < 0 ||
	    wire_get_bytes(&r, (size_t)flen, &name) < 0)
		return -1;
	if (mv->n_columns == mv->cap_columns) {
		int cap = mv->cap_columns > 0 ? 2 * mv->cap_columns : 16;
		char **v = realloc(mv->columns, sizeof *v * (size_t)cap);

		if (v == NULL)
			return -1;
		mv->columns = v;
		mv->cap_columns = cap;
	}
	if ((mv->columns[mv->n_columns] = dup_field(name, flen)) == NULL)
		return -1;
	mv->n_columns++;
	return 0;
}

/* "UPDATE 12", "DELETE 1": the count. */
static int64_t tag_count(const uint8_t *body, size_t len)
{
	const char *sp;

	if (len == 0 || body[len - 1] != '\0' || (sp = strrchr((const char *)body, ' ')) == NULL)
		return -1;
	return strtoll(sp + 1, NULL, 10);
}

/* One of the move's own replies. */
static void own_reply(client_t *c, move_t *mv, member_t *m, uint8_t mark, uint8_t type,
                      const uint8_t *msg, size_t total)
{
	const uint8_t *body = msg + 5;
	size_t len = total - 5;

	switch (type) {
	case 'E':
		keep_error(mv, body, len);
		break;
	case 'T':
		if (mark != PEND_UPDATE)
			break;
		if (len < 2 || wire_be16(body) < ROUTE_MOVE_HIDDEN) {
			own_error(mv, "08P01",
			          "pgshard: a shard described the UPDATE's rows wrongly");
			break;
		}
		mv->client_cols = wire_be16(body) - ROUTE_MOVE_HIDDEN;
		if (!mv->described && !failed(mv) && (mv->describe || !mv->extended)) {
			if (mv->client_cols > 0)
				emit_fields(c, 'T', body, len, mv->client_cols);
			else if (mv->extended)
				session_emit(c, 'n',
				             NULL); /* an UPDATE without RETURNING: NoData */
		}
		mv->described = true;
		break;
	case 'D':
		if (mark == PEND_COLUMNS && add_column(mv, body, len) < 0)
			own_error(mv, "08P01",
			          "pgshard: a shard listed the table's columns wrongly");
		else if (mark == PEND_UPDATE && !failed(mv))
			updated_row(c, mv, m, body, len);
		break;
	case 'C':
		if (mark == PEND_UPDATE)
			mv->updated += tag_count(body, len) > 0 ? tag_count(body, len) : 0;
		else if (mark == PEND_DELETE && tag_count(body, len) == 1)
			m->deleted++;
		break;
	case 'N':
		if (mark == PEND_UPDATE)
			sbuf_write(&c->sb, msg, total);
		break;
	case 'S':
		server_note_parameter(m->s, body, len);
		break;
	case 'Z':
		m->s->tx_status = (char)body[0];
		pending_pop(&m->s->pending);
		m->waiting--;
		break;
	default:
		break;
	}
}

static void advance(client_t *c, move_t *mv);

static void read_member(client_t *c, move_t *mv, member_t *m)
{
	server_t *s = m->s;

	while (s != NULL && (m->waiting > 0 || s->pending.count > 0) && c->move == mv &&
	       !c->closing) {
		pending_t *head = pending_head(&s->pending);
		const uint8_t *msg;
		size_t total;
		uint8_t type;

		if (evbuffer_get_length(c->sb.out) > PROXY_HIGH_WATERMARK) {
			/* the client reads the RETURNING rows slower than they come */
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
		if (head->msg == PEND_COLUMNS || head->msg == PEND_UPDATE ||
		    head->msg == PEND_DELETE || head->msg == PEND_INSERT)
			own_reply(c, mv, m, head->msg, type, msg, total);
		else
			joined_reply(c, mv, s, type, msg, total);
		evbuffer_drain(s->sb.in, total);
	}
}

/* ---- the steps ---- */

static void finish(client_t *c, move_t *mv)
{
	bool implicit = tx_implicit(&c->tx), ok = !failed(mv), ready = !mv->extended;
	char tag[48];

	snprintf(tag, sizeof tag, "UPDATE %" PRId64, mv->updated);
	if (mv->error != NULL) {
		wire_buf_t *b = &c->worker->scratch;

		wire_buf_reset(b);
		wire_begin(b, 'E');
		wire_put_bytes(b, mv->error, mv->error_len);
		wire_end(b);
		session_send_buf(c, b);
	} else if (!ok) {
		char str[sizeof mv->message + 8];

		snprintf(str, sizeof str, "%.5s%s", mv->sqlstate, mv->message);
		session_emit(c, 'E', str);
	}
	log_msg(LOG_DEBUG, c->id, 0, "UPDATE of the shard key: %" PRId64 " rows, %s", mv->updated,
	        ok ? "done" : "failed");
	move_free(c);
	if (!ok)
		session_tx_fail(c);
	if (implicit) {
		/* like PostgreSQL, the statement's tag comes after its commit */
		if (commit_start(c, ok ? COMMIT_IMPLICIT : COMMIT_ROLLBACK, ready,
		                 ok ? tag : NULL) < 0)
			session_fail_status(c, PX_NOMEM);
		else if (!ok && !ready)
			c->skip_until_sync = true;
		return;
	}
	if (ok)
		session_emit(c, 'C', tag);
	if (ready)
		session_emit(c, 'Z', NULL);
	else if (!ok)
		c->skip_until_sync = true;
	if (!session_maybe_release(c))
		session_resume(c);
}

/* The UPDATE is over everywhere: the rows that belong elsewhere move. */
static int start_rows(client_t *c, move_t *mv)
{
	char *insert = NULL;
	int rc = 0;

	mv->step = MOVE_ROWS;
	for (int i = 0; i < mv->n && rc == 0; i++) {
		member_t *m = &mv->m[i];

		if (m->s == NULL)
			continue;
		if (m->leave.n > 0) {
			tx_note_write(&c->tx, m->shard);
			rc = send_rows(c, m, mv->stmts.delete_sql, &m->leave, 2, PEND_DELETE);
		}
		if (rc == 0 && m->arrive.n > 0) {
			if (insert == NULL && (insert = route_move_insert_sql(
			                           &mv->stmts, mv->columns, mv->n_columns)) == NULL)
				return -1;
			tx_note_write(&c->tx, m->shard);
			rc = send_rows(c, m, insert, &m->arrive, 1, PEND_INSERT);
		}
	}
	free(insert);
	return rc;
}

/*
 * Every member answered the move's own statements and what joining the
 * transaction sent: a member that only receives rows has nothing of the
 * move's own before the rows come (or never, when the statement failed
 * first), and the commit that follows must find nothing else owed.
 */
static bool all_answered(const move_t *mv)
{
	for (int i = 0; i < mv->n; i++)
		if (mv->m[i].s != NULL && (mv->m[i].waiting > 0 || mv->m[i].s->pending.count > 0))
			return false;
	return true;
}

static void advance(client_t *c, move_t *mv)
{
	if (!all_answered(mv))
		return;
	if (mv->step == MOVE_UPDATE && !failed(mv)) {
		if (start_rows(c, mv) < 0) {
			session_fail_status(c, PX_NOMEM);
			return;
		}
		if (!all_answered(mv))
			return;
	}
	for (int i = 0; i < mv->n && !failed(mv); i++)
		if (mv->m[i].deleted != mv->m[i].leave.n)
			own_error(mv, "40001",
			          "pgshard: a row of the UPDATE was gone from shard %d before it "
			          "could move; retry the transaction",
			          mv->m[i].shard);
	finish(c, mv);
}

/*
 * The UPDATE over the extended protocol: Parse with the client's parameter
 * types, Bind with its parameters and result formats (the hidden columns
 * are text, the same bytes in either format), Describe to learn the
 * columns, Execute, Sync.
 */
static int send_update_bind(client_t *c, move_t *mv, member_t *m, const fanout_bind_t *bind)
{
	wire_buf_t *b = &c->worker->scratch;
	int16_t n_res = bind->results_len >= 2 ? wire_be16(bind->results) : 0;

	wire_buf_reset(b);
	wire_begin(b, 'P');
	wire_put_cstring(b, "");
	wire_put_cstring(b, mv->stmts.update_sql);
	wire_put_i16(b, bind->n_types);
	wire_put_bytes(b, bind->types, 4 * (size_t)bind->n_types);
	wire_end(b);
	wire_begin(b, 'B');
	wire_put_cstring(b, "");
	wire_put_cstring(b, "");
	wire_put_bytes(b, bind->params, bind->params_len);
	if (n_res <= 1) {
		wire_put_bytes(b, bind->results, bind->results_len);
	} else {
		wire_put_i16(b, (int16_t)(n_res + ROUTE_MOVE_HIDDEN));
		wire_put_bytes(b, bind->results + 2, bind->results_len - 2);
		for (int i = 0; i < ROUTE_MOVE_HIDDEN; i++)
			wire_put_i16(b, 0);
	}
	wire_end(b);
	if (wire_put_run_unnamed(b, true, true) < 0 ||
	    pending_push(&m->s->pending, PEND_UPDATE, PEND_SWALLOW, 0, NULL, NULL) < 0)
		return -1;
	m->s->unnamed_gen = 0; /* its unnamed statement is now this one */
	m->waiting++;
	return server_send(m->s, b->data, b->len);
}

static int start(client_t *c, const char *sql, const fanout_bind_t *bind)
{
	const cfg_t *cfg = context_cfg(c->worker);
	const route_plan_t *p = &c->plan;
	const route_step_t *step = route_step_routed(p);
	move_t *mv = calloc(1, sizeof *mv);
	char err[512];
	member_t *first = NULL;
	int rc = 0;

	if (mv == NULL)
		return -1;
	mv->m = calloc((size_t)cfg->n_shards, sizeof *mv->m);
	if (mv->m == NULL) {
		free(mv);
		return -1;
	}
	mv->extended = bind != NULL;
	mv->describe = bind != NULL && bind->describe;
	c->move = mv;
	c->phase = PH_SEVERAL;
	if (route_move_prepare(&c->worker->route, sql, &mv->stmts, err, sizeof err) < 0) {
		own_error(mv, strcmp(err, "out of memory") == 0 ? "53200" : "XX000", "pgshard: %s",
		          err);
		finish(c, mv);
		return 0;
	}
	mv->map = &c->worker->route.maps[mv->stmts.map];
	mv->key_type = cfg->maps[mv->stmts.map].key;
	for (int i = 0; i < cfg->n_shards; i++) {
		server_t *s = session_link(c, i);

		if (s == NULL ||
		    !(shard_set_has(&step->shards, i) || shard_set_has(&p->move_to, i)))
			continue;
		mv->m[mv->n].s = s;
		mv->m[mv->n].shard = i;
		mv->n++;
	}
	for (int i = 0; i < mv->n && rc == 0; i++) {
		member_t *m = &mv->m[i];

		if (!shard_set_has(&step->shards, m->shard))
			continue;
		if (first == NULL) {
			first = m;
			rc = send_query(c, m, mv->stmts.columns_sql, PEND_COLUMNS);
		}
		if (rc == 0)
			rc = bind != NULL ? send_update_bind(c, mv, m, bind)
			                  : send_query(c, m, mv->stmts.update_sql, PEND_UPDATE);
	}
	if (rc < 0) {
		move_free(c);
		return -1;
	}
	log_msg(LOG_DEBUG, c->id, 0, "UPDATE of the shard key on %d shards", mv->n);
	advance(c, mv); /* nothing to wait for when no shard could run it */
	return 0;
}

int move_start(client_t *c, const char *sql)
{
	return start(c, sql, NULL);
}

int move_execute(client_t *c, const char *sql, const fanout_bind_t *bind)
{
	return start(c, sql, bind);
}

void move_reply(client_t *c, server_t *s)
{
	move_t *mv = c->move;
	member_t *m = member_of(mv, s);

	if (m == NULL)
		return;
	read_member(c, mv, m);
	if (c->move == mv && !c->closing)
		advance(c, mv);
}

void move_resume_members(client_t *c)
{
	move_t *mv = c->move;

	for (int i = 0; mv != NULL && i < mv->n && c->move == mv; i++) {
		server_t *s = mv->m[i].s;

		if (s != NULL && s->wait_client_drain) {
			s->wait_client_drain = false;
			sbuf_resume(&s->sb);
			read_member(c, mv, &mv->m[i]);
		}
	}
	if (c->move == mv && mv != NULL && !c->closing)
		advance(c, mv);
}

void move_member_lost(client_t *c, server_t *s)
{
	member_t *m = member_of(c->move, s);

	if (m != NULL) {
		m->s = NULL;
		m->waiting = 0;
	}
}
