/*
 * move.c — statements whose rows are written on the shards their keys map
 * to, inside the client's transaction (an implicit one pgshard opens around
 * an autocommit statement, committed in two phases when it wrote on several
 * shards): an UPDATE of the shard key that moves rows between shards
 * (ROUTE_STEP_MOVE), and an INSERT ... SELECT whose rows go to the shards
 * of their keys (ROUTE_STEP_INSERT_SELECT). Both run a statement on the
 * shards that hold the rows, keep the rows that belong elsewhere as text,
 * then write each on its shard in one round trip per shard.
 *
 * The UPDATE:
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
 * The INSERT ... SELECT (its statements router/route_insel.c's):
 *
 *   SELECT  its SELECT runs on every shard the router planned it on, with
 *           the key's value as text after its columns. Each row is kept
 *           for the shard of that key: its columns as the DataRow has them
 *           (lengths and text), which are a Bind's parameter values as
 *           they are.
 *   INSERT  on each shard rows arrive, the INSERT with VALUES of as many
 *           rows as fit in one statement (INSEL_BATCH_ROWS), parameters
 *           typed as the SELECT's columns; one Sync: a round trip per shard.
 *
 * The answer is INSERT 0 n, n the rows the shards inserted (ON CONFLICT DO
 * NOTHING counts as PostgreSQL counts), after the commit. Rows of one shard
 * in one statement keep PostgreSQL's semantics for rows that conflict with
 * each other (DO UPDATE touching a row twice fails) as far as a batch goes.
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

/* Rows per INSERT of an INSERT ... SELECT (fewer when their parameters would pass 65535). */
#define INSEL_BATCH_ROWS 1000

/* The highest OID initdb assigns: a type above it may have another OID on another shard. */
#define LAST_BUILTIN_OID 16383

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

/* Rows as Bind parameter values: per column an int32 length (-1 NULL) and its bytes. */
typedef struct rowbuf {
	uint8_t *buf;
	size_t len, cap;
	int n;
} rowbuf_t;

typedef struct member {
	server_t *s; /* NULL once lost */
	int shard;
	int waiting;       /* the move's own ReadyForQuery still to come */
	rowlist_t leave;   /* rows to delete here: "tableoid\0ctid" */
	rowlist_t arrive;  /* rows to insert here: the row's text */
	rowbuf_t selected; /* an INSERT ... SELECT's rows to insert here */
	int deleted;       /* DELETE 1 answers */
} member_t;

struct move {
	member_t *m;
	int n;
	move_step_t step;
	route_move_t stmts;
	bool insert_select; /* an INSERT ... SELECT (insel), not an UPDATE (stmts) */
	route_insel_t insel;
	bool *unknown;    /* insel: per column, read as the column's type (parameter type 0) */
	uint32_t *types;  /* insel: per column, the parameter type of the INSERT */
	int64_t inserted; /* insel: rows the INSERTs reported */
	const shard_map_t *map; /* NULL: an INSERT ... SELECT into a table that is not sharded */
	cfg_key_type_t key_type;
	shard_set_t move_to; /* insel: the shards rows may go to (plan.move_to) */
	char **columns;      /* the table's insertable columns */
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

bool move_runs(const route_plan_t *p)
{
	route_step_kind_t k = route_step_routed(p)->kind;

	return k == ROUTE_STEP_MOVE || k == ROUTE_STEP_INSERT_SELECT;
}

const char *move_needs_tx(const route_plan_t *p)
{
	if (route_step_routed(p)->kind == ROUTE_STEP_INSERT_SELECT)
		return "an INSERT ... SELECT whose rows go to the shards of their keys runs only "
		       "in a transaction (two_phase_commit is off, or the session holds a server "
		       "connection of its own); run it between BEGIN and COMMIT";
	return "an UPDATE of the shard key that moves rows between shards runs only in a "
	       "transaction (two_phase_commit is off, or the session holds a server connection "
	       "of its own); run it between BEGIN and COMMIT";
}

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
		free(mv->m[i].selected.buf);
	}
	route_insel_free(&mv->insel);
	free(mv->unknown);
	free(mv->types);
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

/* The SELECT's columns: each one's parameter type for the INSERT. */
static void selected_columns(client_t *c, move_t *mv, const uint8_t *body, size_t len)
{
	int n = mv->insel.n_columns;
	wire_reader_t r;
	int16_t count;

	wire_reader_init(&r, body, len);
	if (wire_get_i16(&r, &count) < 0) {
		own_error(mv, "08P01", "pgshard: a shard described the SELECT's rows wrongly");
		return;
	}
	/* PostgreSQL's own checks of INSERT ... SELECT, which the SELECT alone passes */
	if (count - 1 > n) {
		own_error(mv, "42601", "INSERT has more expressions than target columns");
		return;
	}
	if (count - 1 < n) {
		own_error(mv, "42601", "INSERT has more target columns than expressions");
		return;
	}
	for (int i = 0; i < n; i++) {
		const char *name;
		const uint8_t *skip;
		int32_t oid;

		if (wire_get_cstring(&r, &name) < 0 || wire_get_bytes(&r, 6, &skip) < 0 ||
		    wire_get_i32(&r, &oid) < 0 || wire_get_bytes(&r, 8, &skip) < 0) {
			own_error(mv, "08P01",
			          "pgshard: a shard described the SELECT's rows wrongly");
			return;
		}
		/*
		 * A built-in type has one OID on every shard: PostgreSQL casts the
		 * value from it as it would have cast the SELECT's column. A string
		 * literal (the SELECT's "unknown") and a type of the database's own
		 * go as unknown: read with the input function of the column's type.
		 */
		mv->types[i] =
		    mv->unknown[i] || (uint32_t)oid > LAST_BUILTIN_OID ? 0 : (uint32_t)oid;
	}
	if (mv->describe && !mv->described)
		session_emit(c, 'n', NULL); /* an INSERT without RETURNING: NoData */
	mv->described = true;
}

static int rowbuf_add(rowbuf_t *b, const uint8_t *data, size_t len)
{
	if (b->cap - b->len < len) {
		size_t cap = b->cap > 0 ? b->cap : 4096;
		uint8_t *v;

		while (cap - b->len < len)
			cap *= 2;
		if ((v = realloc(b->buf, cap)) == NULL)
			return -1;
		b->buf = v;
		b->cap = cap;
	}
	memcpy(b->buf + b->len, data, len);
	b->len += len;
	b->n++;
	return 0;
}

static bool kept_too_much(move_t *mv, size_t len)
{
	mv->kept += len + 16;
	if (mv->kept <= MOVE_MAX_BYTES)
		return false;
	own_error(mv, "54000",
	          "pgshard: the rows this INSERT ... SELECT holds in the proxy take more than %zu "
	          "MB (the limit of rows moved between shards); insert them in smaller batches "
	          "(narrow its SELECT)",
	          MOVE_MAX_BYTES >> 20);
	return true;
}

/* A row for a table that is not sharded: for each shard the INSERT runs on (plan.move_to:
 * the default shard, or every shard of a reference table). */
static void kept_everywhere(move_t *mv, const uint8_t *body, size_t end)
{
	for (int i = 0; i < mv->n; i++) {
		if (!shard_set_has(&mv->move_to, mv->m[i].shard))
			continue;
		if (kept_too_much(mv, end - 2))
			return;
		if (rowbuf_add(&mv->m[i].selected, body + 2, end - 2) < 0) {
			own_error(mv, "53200", "pgshard: out of memory");
			return;
		}
	}
}

/* Whether m's INSERT counts in the tag: a reference table's copies count once (the first). */
static bool counts_inserts(const move_t *mv, const member_t *m)
{
	return mv->map != NULL || m->shard == shard_set_first(&mv->move_to);
}

/* One row of the SELECT: kept for the shard of its key. */
static void selected_row(move_t *mv, const uint8_t *body, size_t len)
{
	int n = mv->insel.n_columns;
	const uint8_t *key = (const uint8_t *)"";
	wire_reader_t r;
	shard_key_t k;
	member_t *dst;
	int32_t klen;
	size_t end;
	int to;

	if (skip_fields(body, len, 'D', n, &end) < 0) {
		own_error(mv, "08P01", "pgshard: a shard sent an unreadable row");
		return;
	}
	wire_reader_init(&r, body + end, len - end);
	if (wire_get_i32(&r, &klen) < 0 ||
	    (klen > 0 && wire_get_bytes(&r, (size_t)klen, &key) < 0)) {
		own_error(mv, "08P01", "pgshard: a shard sent an unreadable row");
		return;
	}
	if (mv->map == NULL) {
		/* into a table that is not sharded: the default shard's, or every copy */
		kept_everywhere(mv, body, end);
		return;
	}
	if (klen < 0) {
		own_error(
		    mv, "0A000",
		    "pgshard: a row of the INSERT ... SELECT has a NULL shard key; a row needs "
		    "a key to have a shard");
		return;
	}
	if (shard_key_from_text(mv->key_type, (const char *)key, (size_t)klen, &k) < 0 ||
	    (to = shard_map_lookup(mv->map, &k)) < 0) {
		own_error(mv, "22023",
		          "pgshard: the shard key value \"%.*s\" of a row of the INSERT ... SELECT "
		          "has no shard",
		          klen > 100 ? 100 : (int)klen, (const char *)key);
		return;
	}
	dst = member_at(mv, to);
	if (dst == NULL || dst->s == NULL) {
		own_error(mv, "XX000",
		          "pgshard: a row goes to shard %d, which the INSERT was not planned on",
		          to);
		return;
	}
	if (kept_too_much(mv, end - 2))
		return;
	if (rowbuf_add(&dst->selected, body + 2, end - 2) < 0)
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
		server_note_error(m->s, body, len, LOG_BY_CLIENT);
		keep_error(mv, body, len);
		break;
	case 'T':
		if (mark != PEND_UPDATE)
			break;
		if (mv->insert_select) {
			if (!failed(mv))
				selected_columns(c, mv, body, len);
			break;
		}
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
		else if (mark == PEND_UPDATE && !failed(mv) && mv->insert_select)
			selected_row(mv, body, len);
		else if (mark == PEND_UPDATE && !failed(mv))
			updated_row(c, mv, m, body, len);
		break;
	case 'C':
		if (mark == PEND_UPDATE && !mv->insert_select)
			mv->updated += tag_count(body, len) > 0 ? tag_count(body, len) : 0;
		else if (mark == PEND_INSERT && mv->insert_select && counts_inserts(mv, m))
			mv->inserted += tag_count(body, len) > 0 ? tag_count(body, len) : 0;
		else if (mark == PEND_DELETE && tag_count(body, len) == 1)
			m->deleted++;
		break;
	case 'N':
		if (mark == PEND_UPDATE || (mark == PEND_INSERT && mv->insert_select))
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

		if (pbuf_get_length(c->sb.out) > PROXY_HIGH_WATERMARK) {
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
		pbuf_drain(s->sb.in, total);
	}
}

/* ---- the steps ---- */

static void finish(client_t *c, move_t *mv)
{
	bool implicit = tx_implicit(&c->tx), ok = !failed(mv), ready = !mv->extended;
	char tag[48];

	if (mv->insert_select)
		snprintf(tag, sizeof tag, "INSERT 0 %" PRId64, mv->inserted);
	else
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
	log_msg(LOG_DEBUG, c->id, 0, "%s: %" PRId64 " rows, %s",
	        mv->insert_select ? "INSERT ... SELECT" : "UPDATE of the shard key",
	        mv->insert_select ? mv->inserted : mv->updated, ok ? "done" : "failed");
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

/* The byte length of the first `rows` rows of n columns at p (kept by selected_row). */
static size_t rows_len(const uint8_t *p, int rows, int n)
{
	size_t at = 0;

	for (int i = 0; i < rows * n; i++) {
		int32_t flen = (int32_t)wire_be32(p + at);

		at += 4 + (flen > 0 ? (size_t)flen : 0);
	}
	return at;
}

/* An INSERT ... SELECT's rows for m: INSERTs of up to INSEL_BATCH_ROWS rows each, one Sync. */
static int send_selected(client_t *c, move_t *mv, member_t *m)
{
	wire_buf_t *b = &c->worker->scratch;
	int n = mv->insel.n_columns, per = 65535 / n, parsed = 0, left = m->selected.n;
	const uint8_t *at = m->selected.buf;

	if (per > INSEL_BATCH_ROWS)
		per = INSEL_BATCH_ROWS;
	while (left > 0) {
		int rows = left < per ? left : per;
		size_t bytes = rows_len(at, rows, n);

		wire_buf_reset(b);
		if (rows != parsed) {
			char *sql = route_insel_insert_sql(&mv->insel, rows);

			if (sql == NULL)
				return -1;
			wire_begin(b, 'P');
			wire_put_cstring(b, "");
			wire_put_cstring(b, sql);
			wire_put_i16(b, (int16_t)(rows * n));
			for (int i = 0; i < rows * n; i++)
				wire_put_i32(b, (int32_t)mv->types[i % n]);
			wire_end(b);
			free(sql);
			parsed = rows;
		}
		wire_begin(b, 'B');
		wire_put_cstring(b, "");
		wire_put_cstring(b, "");
		wire_put_i16(b, 0); /* every parameter in text */
		wire_put_i16(b, (int16_t)(rows * n));
		wire_put_bytes(b, at, bytes);
		wire_put_i16(b, 0);
		wire_end(b);
		wire_begin(b, 'E');
		wire_put_cstring(b, "");
		wire_put_i32(b, 0);
		if (wire_end(b) < 0 || server_send(m->s, b->data, b->len) < 0)
			return -1;
		at += bytes;
		left -= rows;
	}
	wire_buf_reset(b);
	wire_begin(b, 'S');
	if (wire_end(b) < 0 ||
	    pending_push(&m->s->pending, PEND_INSERT, PEND_SWALLOW, 0, NULL, NULL) < 0)
		return -1;
	m->s->unnamed_gen = 0; /* its unnamed statement is now this one */
	m->waiting++;
	return server_send(m->s, b->data, b->len);
}

/* The UPDATE (the SELECT) is over everywhere: the rows that belong elsewhere move. */
static int start_rows(client_t *c, move_t *mv)
{
	char *insert = NULL;
	int rc = 0;

	mv->step = MOVE_ROWS;
	for (int i = 0; mv->insert_select && i < mv->n && rc == 0; i++) {
		member_t *m = &mv->m[i];

		if (m->s == NULL || m->selected.n == 0)
			continue;
		tx_note_write(&c->tx, m->shard);
		rc = send_selected(c, mv, m);
	}
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
 * The UPDATE (the SELECT) over the extended protocol: Parse with the
 * client's parameter types, Bind with its parameters and result formats
 * (the hidden columns are text, the same bytes in either format; the
 * SELECT's rows are all text), Describe to learn the columns, Execute, Sync.
 */
static int send_update_bind(client_t *c, move_t *mv, member_t *m, const fanout_bind_t *bind)
{
	wire_buf_t *b = &c->worker->scratch;
	int16_t n_res = bind->results_len >= 2 ? wire_be16(bind->results) : 0;

	wire_buf_reset(b);
	wire_begin(b, 'P');
	wire_put_cstring(b, "");
	wire_put_cstring(b, mv->insert_select ? mv->insel.select_sql : mv->stmts.update_sql);
	wire_put_i16(b, bind->n_types);
	wire_put_bytes(b, bind->types, 4 * (size_t)bind->n_types);
	wire_end(b);
	wire_begin(b, 'B');
	wire_put_cstring(b, "");
	wire_put_cstring(b, "");
	wire_put_bytes(b, bind->params, bind->params_len);
	if (mv->insert_select) {
		wire_put_i16(b, 0);
	} else if (n_res <= 1) {
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

/* The client's type of parameter $k (0: unspecified). */
static uint32_t param_type(const fanout_bind_t *bind, int k)
{
	if (bind == NULL || k < 1 || k > bind->n_types)
		return 0;
	return (uint32_t)wire_be32(bind->types + 4 * (size_t)(k - 1));
}

enum { INSEL_NOT_SHARDED = -2 };

/* The statements of the UPDATE or the INSERT ... SELECT: its table's map (INSEL_NOT_SHARDED
 * for a table that is not sharded), or -1 with err. */
static int prepare(client_t *c, move_t *mv, const char *sql, const fanout_bind_t *bind, char *err,
                   size_t errlen)
{
	int n;

	if (!mv->insert_select)
		return route_move_prepare(&c->worker->route, sql, &mv->stmts, err, errlen) < 0
		           ? -1
		           : mv->stmts.map;
	if (route_insel_prepare(&c->worker->route, sql, &mv->insel, err, errlen) < 0)
		return -1;
	mv->move_to = c->plan.move_to;
	n = mv->insel.n_columns;
	mv->unknown = calloc((size_t)n, sizeof *mv->unknown);
	mv->types = calloc((size_t)n, sizeof *mv->types);
	if (mv->unknown == NULL || mv->types == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (int i = 0; i < n; i++) {
		int k = mv->insel.unknown[i];

		/* a parameter the client left untyped is as unknown as a string literal */
		mv->unknown[i] = k == ROUTE_INSEL_UNKNOWN || (k > 0 && param_type(bind, k) == 0);
	}
	return mv->insel.map >= 0 ? mv->insel.map : INSEL_NOT_SHARDED;
}

static int start(client_t *c, const char *sql, const fanout_bind_t *bind)
{
	const cfg_t *cfg = context_cfg(c->worker);
	const route_plan_t *p = &c->plan;
	const route_step_t *step = route_step_routed(p);
	move_t *mv = calloc(1, sizeof *mv);
	char err[512];
	member_t *first = NULL;
	int rc = 0, map;

	if (mv == NULL)
		return -1;
	mv->m = calloc((size_t)cfg->n_shards, sizeof *mv->m);
	if (mv->m == NULL) {
		free(mv);
		return -1;
	}
	mv->extended = bind != NULL;
	mv->describe = bind != NULL && bind->describe;
	mv->insert_select = step->kind == ROUTE_STEP_INSERT_SELECT;
	c->move = mv;
	c->phase = PH_SEVERAL;
	map = prepare(c, mv, sql, bind, err, sizeof err);
	if (map < 0 && map != INSEL_NOT_SHARDED) {
		own_error(mv, strcmp(err, "out of memory") == 0 ? "53200" : "XX000", "pgshard: %s",
		          err);
		finish(c, mv);
		return 0;
	}
	if (map != INSEL_NOT_SHARDED) {
		mv->map = &c->worker->route.maps[map];
		mv->key_type = cfg->maps[map].key;
	}
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
		if (first == NULL && !mv->insert_select) {
			first = m;
			rc = send_query(c, m, mv->stmts.columns_sql, PEND_COLUMNS);
		}
		if (rc == 0 && bind != NULL)
			rc = send_update_bind(c, mv, m, bind);
		else if (rc == 0)
			rc = send_query(
			    c, m, mv->insert_select ? mv->insel.select_sql : mv->stmts.update_sql,
			    PEND_UPDATE);
	}
	if (rc < 0) {
		move_free(c);
		return -1;
	}
	log_msg(LOG_DEBUG, c->id, 0, "%s on %d shards",
	        mv->insert_select ? "INSERT ... SELECT" : "UPDATE of the shard key", mv->n);
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
