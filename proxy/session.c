/*
 * session.c — a client session as the layers below the message loop see
 * it: its state and the list that state puts it on, its links (at most one
 * server per shard), its output (errors, replies pgshard makes itself, in
 * order behind what a server still owes), linking a server (settings,
 * joining the transaction) and letting it go, its transaction as the
 * shards report it, and closing. Nothing here reads the client's messages:
 * what must go up to the message loop (client.c) goes through c->ops.
 */
#include "proxy/session.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proxy/cancel.h"
#include "proxy/colcache.h"
#include "proxy/context.h"
#include "proxy/cursor.h"
#include "proxy/log.h"
#include "proxy/params.h"
#include "proxy/pending.h"
#include "proxy/pool.h"
#include "proxy/prepare.h"
#include "proxy/sbuf.h"
#include "proxy/server.h"
#include "proxy/status.h"
#include "proxy/stmtlog.h"
#include "proxy/tx.h"
#include "proxy/wire.h"
#include "router/classify.h"
#include "router/copy.h"
#include "router/route.h"
#include "router/shardmap.h"

/* ---- state lists ---- */

static struct client_list *list_of(client_t *c, client_state_t st)
{
	switch (st) {
	case CL_LOGIN:
		return &c->worker->login_clients;
	case CL_IDLE:
		return &c->worker->idle_clients;
	case CL_WAITING:
		return &c->pool->waiting;
	case CL_ACTIVE:
		return &c->pool->active_clients;
	case CL_CLOSED:
		return &c->worker->closed_clients;
	}
	return NULL;
}

/* Into the list of state st (of pool p for CL_WAITING and CL_ACTIVE). */
/* c leaves or joins its pool's waiting list: the pool's counts follow (pool.c reads them). */
static void waiting_left(client_t *c)
{
	c->pool->n_waiting--;
	if (c->held_counted)
		c->pool->n_waiting_held--;
	c->held_counted = false;
}

static void waiting_joined(client_t *c)
{
	c->pool->n_waiting++;
	c->held_counted = c->n_links > 0;
	if (c->held_counted)
		c->pool->n_waiting_held++;
}

static void move_to(client_t *c, client_state_t st, pool_t *p)
{
	TAILQ_REMOVE(list_of(c, c->state), c, link);
	if (c->state == CL_WAITING)
		waiting_left(c);
	c->state = st;
	if (p != NULL)
		c->pool = p;
	TAILQ_INSERT_TAIL(list_of(c, st), c, link);
	if (st == CL_WAITING)
		waiting_joined(c);
}

void session_wait(client_t *c, pool_t *p)
{
	move_to(c, CL_WAITING, p);
}

server_t *session_any_link(const client_t *c)
{
	for (int i = 0; i < c->links_cap; i++)
		if (c->links[i] != NULL)
			return c->links[i];
	return NULL;
}

/* Logged in without a server (login.c knew the parameters): idle, and its messages go on. */
void session_logged_in(client_t *c)
{
	move_to(c, CL_IDLE, NULL);
	session_resume(c);
}

void session_unwait(client_t *c)
{
	server_t *s = session_any_link(c);

	move_to(c, s != NULL ? CL_ACTIVE : CL_IDLE, s != NULL ? s->pool : NULL);
}

/* ---- links: at most one server per shard ---- */

server_t *session_link(const client_t *c, int shard)
{
	return shard >= 0 && shard < c->links_cap ? c->links[shard] : NULL;
}

static int links_put(client_t *c, server_t *s)
{
	int shard = s->pool->shard;

	if (shard >= c->links_cap) {
		int cap = shard + 1 > 4 ? shard + 1 : 4;
		server_t **links = realloc(c->links, sizeof(*links) * (size_t)cap);

		if (links == NULL)
			return -1;
		memset(links + c->links_cap, 0, sizeof(*links) * (size_t)(cap - c->links_cap));
		c->links = links;
		c->links_cap = cap;
	}
	if (c->links[shard] == NULL)
		c->n_links++;
	c->links[shard] = s;
	return 0;
}

void session_unlinked(client_t *c, server_t *s)
{
	int shard = s->pool->shard;

	if (session_link(c, shard) == s) {
		c->links[shard] = NULL;
		c->n_links--;
	}
	if (c->state == CL_WAITING && c->held_counted && c->n_links == 0) {
		/* it lost the last server it held while it waited */
		c->held_counted = false;
		c->pool->n_waiting_held--;
	}
	if (c->server == s)
		c->server = NULL;
	c->ops->unlinked(c, s);
	/*
	 * An active client is on the list of a pool it holds a server of, so
	 * that a walk over pools finds every client holding a server.
	 */
	if (c->state == CL_ACTIVE && c->n_links == 0)
		move_to(c, CL_IDLE, NULL);
	else if (c->state == CL_ACTIVE && c->pool == s->pool)
		move_to(c, CL_ACTIVE, session_any_link(c)->pool);
}

/* ---- output ---- */

void session_send_buf(client_t *c, wire_buf_t *b)
{
	if (!b->failed)
		sbuf_write(&c->sb, b->data, b->len);
}

static void send_error(client_t *c, const char *severity, const char *sqlstate, const char *msg)
{
	wire_buf_t *b = &c->worker->scratch;

	wire_buf_reset(b);
	wire_put_error(b, severity, sqlstate, msg);
	session_send_buf(c, b);
}

static void deferred_close_cb(evutil_socket_t fd, short what, void *arg)
{
	client_t *c = arg;
	sbuf_loop_t *loop = &c->worker->loop;

	session_close(c);
	sbuf_flush_all(loop);
}

/*
 * Stop reading, let the output drain, then close: from client_write_cb when
 * the output empties, or from the event loop right away when it already is.
 * Never synchronously, because the caller still holds the client.
 */
void session_close_after_flush(client_t *c)
{
	if (c->closing)
		return;
	c->closing = true;
	sbuf_pause(&c->sb);
	if (pbuf_get_length(c->sb.out) == 0) {
		c->close_ev = event_new(c->worker->base, -1, 0, deferred_close_cb, c);
		if (c->close_ev != NULL)
			event_active(c->close_ev, 0, 0);
	}
}

void session_fail(client_t *c, const char *severity, const char *sqlstate, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_msg(LOG_INFO, c->id, c->server ? c->server->id : 0, "%s %s: %s", severity, sqlstate,
	        msg);
	if (c->closing)
		return;
	send_error(c, severity, sqlstate, msg);
	session_close_after_flush(c);
}

/* A failure as a value: its SQLSTATE and message are status.c's. */
void session_fail_status(client_t *c, px_status_t st)
{
	c->status = st;
	session_fail(c, "FATAL", px_status_sqlstate(st), "pgshard: %s", px_status_message(st));
}

void session_fail_with_body(client_t *c, const uint8_t *body, size_t len)
{
	wire_buf_t *b = &c->worker->scratch;

	if (c->closing)
		return;
	wire_buf_reset(b);
	wire_begin(b, 'E');
	wire_put_bytes(b, body, len);
	wire_end(b);
	session_send_buf(c, b);
	session_close_after_flush(c);
}

void session_protocol_violation(client_t *c, const char *what)
{
	session_fail(c, "FATAL", "08P01", "pgshard: protocol violation: %s", what);
}

void session_drop_pending_sets(client_t *c)
{
	route_sets_free(c->pend_sets, c->n_pend_sets);
	c->pend_sets = NULL;
	c->n_pend_sets = 0;
}

static bool link_idle(const server_t *s)
{
	return s->pending.count == 0 && s->tx_status == 'I' && !s->unsynced && !s->syncing_params;
}

/*
 * Close the session: give back or close its servers, leave every list, close
 * the socket. The memory stays until the worker's reaper frees it
 * (session_free), so callers up the stack that hold c see c->closing and
 * CL_CLOSED instead of freed memory.
 */
void session_close(client_t *c)
{
	worker_t *w = c->worker;
	server_t *s;

	if (c->state == CL_CLOSED)
		return;
	if (context_cfg(w)->log_disconnections)
		log_msg(LOG_INFO, c->id, c->server ? c->server->id : 0,
		        "disconnected: user=%s database=%s after %lld s", c->user ? c->user : "-",
		        c->database ? c->database : "-", (long long)(time(NULL) - c->accepted_at));
	c->closing = true;
	if (c->close_ev != NULL) {
		event_free(c->close_ev);
		c->close_ev = NULL;
	}
	c->ops->closing(c);
	if (c->state == CL_WAITING)
		pool_remove_waiting(c);
	while ((s = session_any_link(c)) != NULL) {
		/*
		 * A server in the middle of something, or holding session state
		 * of this client (WITH HOLD cursors too), cannot serve anyone else. A statement
		 * still running there is cancelled: PostgreSQL would not notice the closed
		 * connection until the statement writes to it.
		 */
		if (link_idle(s) && !c->pinned && !cursor_keeps_links(c)) {
			pool_release(s);
		} else {
			session_unlinked(c, s);
			if (s->pending.count > 0)
				cancel_server(w, s);
			server_close(s, "client went away during a transaction");
		}
	}
	TAILQ_REMOVE(list_of(c, c->state), c, link);
	if (c->state == CL_WAITING)
		waiting_left(c);
	c->state = CL_CLOSED;
	TAILQ_INSERT_TAIL(&w->closed_clients, c, link);
	w->n_clients--;
	cancel_unregister(c);
	sbuf_shutdown(&c->sb);
	context_reap_later(w);
}

void session_free(client_t *c)
{
	c->ops->freeing(c);
	sbuf_close(&c->sb);
	ps_client_free(c);
	params_free(&c->startup_params);
	params_free(&c->session_params);
	session_drop_pending_sets(c);
	free(c->links);
	tx_free(&c->tx);
	free(c->txn_portal);
	free(c->txn_sql);
	free(c->columns_tried);
	cursor_forget(c, NULL);
	session_batch_free(c);
	colfetch_free(c);
	free(c->unnamed_parse);
	free(c->user);
	free(c->database);
	free(c->stored_password);
	free(c->login_error);
	free(c->connect_error);
	if (c->scram != NULL)
		explicit_bzero(c->scram, sizeof(*c->scram));
	free(c->scram);
	free(c);
}

/* ---- linking ---- */

static void start_param_sync(client_t *c, server_t *s)
{
	char *sql = params_sync_sql(&c->startup_params, &c->session_params);
	wire_buf_t *b = &c->worker->scratch;

	if (sql == NULL || server_query(s, b, sql, 'Q', PEND_SWALLOW) < 0) {
		free(sql);
		session_fail_status(c, PX_NOMEM);
		return;
	}
	free(sql);
	s->syncing_params = true;
}

/* A shard joins the client's transaction: replay its BEGIN (and SAVEPOINTs) there first. */
static void join_transaction(client_t *c, server_t *s)
{
	if (tx_join(&c->tx, s->pool->shard) < 0 ||
	    server_query(s, &c->worker->scratch, c->tx.prefix, 'Q', PEND_SWALLOW) < 0)
		session_fail_status(c, PX_NOMEM);
}

/*
 * The client's transaction is open: the links it holds already (a pinned
 * session's: LISTEN, a temporary table, ...) join it now, so that what runs
 * on them is inside it. Those linked later join as they are linked.
 */
void session_join_held(client_t *c)
{
	if (!tx_open(&c->tx) || c->tx.prefix == NULL)
		return;
	for (int i = 0; i < c->links_cap && !c->closing; i++)
		if (c->links[i] != NULL && tx_participant(&c->tx, i) == NULL)
			join_transaction(c, c->links[i]);
}

void session_linked(client_t *c, server_t *s)
{
	s->client = c;
	if (links_put(c, s) < 0) {
		session_fail_status(c, PX_NOMEM);
		return;
	}
	c->server = s;
	move_to(c, CL_ACTIVE, s->pool);
	sbuf_resume(&c->sb);
	log_msg(LOG_DEBUG, c->id, s->id, "linked to shard %d", s->pool->shard);

	if (s->params_hash != c->params_hash) {
		start_param_sync(c, s);
		/* a login goes on in session_sync_done, once the values are known */
		if (c->login_step == LOGIN_PARAMS || c->closing)
			return;
	} else if (c->login_step == LOGIN_PARAMS) {
		c->ops->params_known(c);
		return;
	}
	if (tx_open(&c->tx) && c->tx.prefix != NULL)
		join_transaction(c, s);
	/*
	 * The message that made the client wait is already buffered: send it
	 * now, right behind the sync query if there is one; the server answers
	 * in order and the pending queue keeps the sync's replies away from
	 * the client.
	 */
	session_resume(c);
}

void session_sync_done(client_t *c, server_t *s, const uint8_t *error_body, size_t len)
{
	s->syncing_params = false;
	if (error_body != NULL) {
		/* the server is fine, but its settings are now unknown */
		s->params_hash = 0;
		session_fail_with_body(c, error_body, len);
		return;
	}
	s->params_hash = c->params_hash;
	if (c->login_step == LOGIN_PARAMS)
		c->ops->params_known(c);
}

bool session_release_idle(client_t *c)
{
	server_t *s;

	if (c->n_links == 0 || c->pinned || c->closing || tx_open(&c->tx) || cursor_keeps_links(c))
		return false;
	for (int i = 0; i < c->links_cap; i++)
		if (c->links[i] != NULL && !link_idle(c->links[i]))
			return false;
	while ((s = session_any_link(c)) != NULL)
		pool_release(s); /* session_unlinked clears c->server */
	return true;
}

bool session_maybe_release(client_t *c)
{
	if (c->phase != PH_IDLE || !session_release_idle(c))
		return false;
	/* anything the client sent meanwhile needs a server again */
	session_resume(c);
	return true;
}

void session_server_lost(client_t *c, server_t *s, const char *why)
{
	session_unlinked(c, s);
	session_fail(c, "FATAL", "08006", "pgshard: server connection lost: %s", why);
}

int session_server_message(client_t *c, server_t *s, uint8_t *type, size_t *total,
                           const uint8_t **msg)
{
	pbuf_t *in = s->sb.in;
	uint8_t hdr[WIRE_HEADER_LEN];

	if (pbuf_copyout(in, hdr, sizeof(hdr)) < (ev_ssize_t)sizeof(hdr))
		return 0;
	switch (wire_frame(hdr, pbuf_get_length(in), context_cfg(c->worker)->max_message_size, type,
	                   total)) {
	case WIRE_FRAME_NEED_MORE:
		return 0;
	case WIRE_FRAME_OK:
		break;
	default:
		session_server_lost(c, s, "invalid message from server");
		server_close(s, "invalid message length");
		return -1;
	}
	*msg = pbuf_pullup(in, (ev_ssize_t)*total);
	if (*msg == NULL) {
		session_fail_status(c, PX_NOMEM);
		return -1;
	}
	return 1;
}

char session_tx_status(const client_t *c)
{
	return tx_status(&c->tx);
}

/*
 * A link reported its transaction status. A transaction the server opened
 * itself (a query string with BEGIN in it) makes the client's: other shards
 * it touches join with a plain BEGIN.
 */
void session_note_status(client_t *c, char status)
{
	if (status == 'I' && c->n_cursors > 0)
		cursor_tx_end(c);
	if (tx_note_status(&c->tx, status) < 0 || status == 'I')
		return;
	for (int i = 0; i < c->links_cap; i++)
		if (c->links[i] != NULL)
			tx_join(&c->tx, i);
}

void session_tx_fail(client_t *c)
{
	tx_fail(&c->tx);
}

/*
 * A reply the proxy makes itself ('1', '2', '3', 'n', 'E' with str =
 * SQLSTATE+message, 'C' with str = tag, 'Z'): written now when nothing is
 * outstanding, else queued behind what the current server owes.
 */
int session_reply(client_t *c, uint8_t reply, char *str)
{
	server_t *s = c->server;

	if (s != NULL && s->pending.count > 0) {
		static const uint8_t flush[] = {'H', 0, 0, 0, 4};

		if (pending_push(&s->pending, 0, PEND_SYNTHESIZE, reply, NULL, str) < 0) {
			free(str);
			return -1;
		}
		if (s->unsynced && !s->flushed) {
			/* a batch's answers wait in the server for a Sync or Flush the client may
			 * not send before it has this reply (a Query refused in the batch) */
			if (server_send(s, flush, sizeof flush) < 0)
				return -1;
			s->flushed = true;
		}
		session_flush_synthesized(c, s);
		return 0;
	}
	session_emit(c, reply, str);
	free(str);
	return 0;
}

/* SQLSTATE followed by the message: the `str` of an error reply the proxy makes. */
char *session_error_str(const char *sqlstate, const char *fmt, va_list ap)
{
	char msg[1024], *str;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	str = malloc(strlen(msg) + 6);
	if (str == NULL)
		return NULL;
	memcpy(str, sqlstate, 5);
	strcpy(str + 5, msg);
	return str;
}

/* An error the proxy answers in order; in a transaction it fails the transaction. */
int session_reply_error(client_t *c, const char *sqlstate, const char *fmt, ...)
{
	char *str;
	va_list ap;

	va_start(ap, fmt);
	str = session_error_str(sqlstate, fmt, ap);
	va_end(ap);
	if (str == NULL)
		return -1;
	tx_fail(&c->tx);
	return session_reply(c, 'E', str);
}

/* PostgreSQL's answer to a statement in a failed transaction block. */
int session_reply_aborted(client_t *c)
{
	return session_reply_error(c, "25P02",
	                           "current transaction is aborted, commands ignored until end of "
	                           "transaction block");
}

/* PostgreSQL's answer to a Bind or Describe of a statement the client has not prepared. */
int session_reply_no_statement(client_t *c, const char *name)
{
	if (name[0] == '\0')
		return session_reply_error(c, "26000", "unnamed prepared statement does not exist");
	return session_reply_error(c, "26000", "prepared statement \"%s\" does not exist", name);
}

int session_reply_tag(client_t *c, const char *tag)
{
	char *str = strdup(tag);

	return str != NULL ? session_reply(c, 'C', str) : -1;
}

/*
 * The shard a ONE step runs on; -1 for any other step. A step that leaves
 * the choice to the executor (shard -1) goes to the default shard when it
 * names no shard, and otherwise reads its copy (a reference table's) where
 * the client already is.
 */
int session_step_shard(const client_t *c, const route_step_t *step)
{
	const cfg_t *cfg = context_cfg(c->worker);

	if (step->kind != ROUTE_STEP_ONE)
		return -1;
	if (step->shard >= 0)
		return step->shard;
	if (shard_set_count(&step->shards) == 0)
		return cfg->default_shard;
	for (int i = 0; i < cfg->n_shards; i++)
		if (shard_set_has(&step->shards, i) && session_link(c, i) != NULL)
			return i;
	if (shard_set_has(&step->shards, cfg->default_shard))
		return cfg->default_shard;
	return shard_set_first(&step->shards);
}

int session_end_sql_statement(client_t *c, pbuf_t *in, size_t total)
{
	c->have_plan = false;
	pbuf_drain(in, total);
	return session_reply(c, 'Z', NULL) < 0 ? STEP_FAIL : STEP_NEXT;
}

/* Inside a transaction, the shards a statement that may write runs on have written. */
void session_note_writes(client_t *c, const route_plan_t *p)
{
	const route_step_t *step = route_step_routed(p);
	int one;

	if (!tx_open(&c->tx) || !p->is_write)
		return;
	one = session_step_shard(c, step);
	if (one >= 0) {
		tx_note_write(&c->tx, one);
		return;
	}
	for (int i = 0; i < context_cfg(c->worker)->n_shards; i++)
		if (shard_set_has(&step->shards, i))
			tx_note_write(&c->tx, i);
}

/*
 * An autocommit statement that writes on several shards, DDL included, runs
 * in a transaction pgshard opens for it (tx_t.implicit) and commits in two
 * phases, so that it is all or nothing. Not what PostgreSQL refuses inside a
 * transaction block or refuses to prepare (route_plan_t.no_tx_block: CREATE
 * INDEX CONCURRENTLY, VACUUM, temporary tables, ...), not a string with
 * transaction control of its own, and only when the client holds no server
 * yet (each joins the transaction as it is linked).
 */
bool session_wants_implicit_tx(const client_t *c, const route_plan_t *p)
{
	return !tx_open(&c->tx) && c->n_links == 0 && context_cfg(c->worker)->two_phase_commit &&
	       route_plan_commit(p) == ROUTE_COMMIT_TWO_PHASE;
}

/* ---- batches ---- */

struct batch {
	int left;     /* statements not done yet */
	int next;     /* index of the next statement's message in lens */
	int consumed; /* statements taken from the input: one at a time runs */
	bool wrap;    /* ran in a transaction of its own: an end marker (lens[n]) follows */
	size_t *lens; /* each statement's Query message, as put in the input */
	int n;
};

void session_batch_free(client_t *c)
{
	if (c->batch == NULL)
		return;
	free(c->batch->lens);
	free(c->batch);
	c->batch = NULL;
}

int session_batch_start(client_t *c, const size_t *lens, int n, bool wrap)
{
	struct batch *b = calloc(1, sizeof *b);

	if (b == NULL || (b->lens = malloc(sizeof *b->lens * (size_t)(n + 1))) == NULL) {
		free(b);
		return -1;
	}
	memcpy(b->lens, lens, sizeof *b->lens * (size_t)n);
	b->n = n;
	b->left = n;
	b->wrap = wrap;
	session_batch_free(c);
	c->batch = b;
	return 0;
}

bool session_batch_done_all(const client_t *c)
{
	return c->batch != NULL && c->batch->left == 0;
}

bool session_batch_busy(const client_t *c)
{
	return c->batch != NULL && c->batch->consumed > c->batch->next;
}

void session_batch_consumed(client_t *c)
{
	if (c->batch != NULL && c->batch->left > 0)
		c->batch->consumed++;
}

bool session_batch_step_done(client_t *c)
{
	struct batch *b = c->batch;

	if (b == NULL || b->left == 0)
		return false;
	b->left--;
	b->next++;
	if (b->left > 0 && tx_failed(&c->tx)) {
		/* PostgreSQL skips the rest of the string after an error */
		while (b->left > 0) {
			pbuf_drain(c->sb.in, b->lens[b->next++]);
			b->consumed++;
			b->left--;
		}
	}
	if (b->left > 0 || b->wrap)
		return true; /* the next statement, or the end marker, answers */
	session_batch_free(c);
	return false;
}

void session_told_parameter(client_t *c, const char *name, const char *value)
{
	if (strcmp(name, "client_encoding") == 0)
		snprintf(c->client_encoding, sizeof c->client_encoding, "%s", value);
	else if (strcmp(name, "server_encoding") == 0)
		snprintf(c->server_encoding, sizeof c->server_encoding, "%s", value);
}

void session_check_key_bytes(const client_t *c, route_plan_t *p)
{
	if (!p->key_encoded || p->kind == ROUTE_REFUSE ||
	    copy_encodings_agree(c->client_encoding, c->server_encoding))
		return;
	route_plan_refuse(p, "0A000",
	                  "a text shard key with non-ASCII characters is routed by the bytes the "
	                  "database stores, and client_encoding %s is not the database's %s; SET "
	                  "client_encoding TO '%s'",
	                  c->client_encoding, c->server_encoding, c->server_encoding);
}

bool session_aborted_tx_allows(const route_plan_t *p)
{
	return p->txn == ROUTE_TXN_COMMIT || p->txn == ROUTE_TXN_ROLLBACK ||
	       p->txn == ROUTE_TXN_SAVEPOINT;
}

/* ---- replies made by the proxy ---- */

void session_emit(client_t *c, uint8_t reply, const char *str)
{
	wire_buf_t *b = &c->worker->scratch;

	wire_buf_reset(b);
	switch (reply) {
	case 'E': {
		char sqlstate[6];

		memcpy(sqlstate, str, 5);
		sqlstate[5] = '\0';
		log_msg(LOG_INFO, c->id, c->server ? c->server->id : 0, "ERROR %s: %s", sqlstate,
		        str + 5);
		wire_put_error(b, "ERROR", sqlstate, str + 5);
		break;
	}
	case 'C':
		wire_begin(b, 'C');
		wire_put_cstring(b, str);
		wire_end(b);
		break;
	case 'Z':
		if (c->batch != NULL && session_batch_step_done(c))
			return; /* the batch goes on */
		wire_put_ready(b, session_tx_status(c));
		stmtlog_end(c);
		break;
	default: {
		/* ParseComplete and the like: a type and a length, no body */
		const uint8_t empty[5] = {reply, 0, 0, 0, 4};

		sbuf_write(&c->sb, empty, sizeof empty);
		return;
	}
	}
	if (!b->failed)
		sbuf_write(&c->sb, b->data, b->len);
}

void session_flush_synthesized(client_t *c, server_t *s)
{
	pending_t *p;

	while ((p = pending_head(&s->pending)) != NULL && p->action == PEND_SYNTHESIZE) {
		session_emit(c, p->reply, p->str);
		pending_pop(&s->pending);
	}
}

/* The message loop (client.c) goes on with the client's messages. */
void session_resume(client_t *c)
{
	c->ops->resume(c);
}

/* A server linked to c has data: the message loop says who reads it. */
void session_server_reply(client_t *c, server_t *s)
{
	c->ops->server_reply(c, s);
}
