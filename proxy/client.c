/*
 * client.c — one client session: startup and authentication, then every
 * message the client sends, on its way to the server it is linked to.
 *
 * The session asks for a server when the client sends something that needs
 * one, and gives it back when the server reports it is idle with nothing
 * left to answer (relay.c decides that). Messages that name prepared
 * statements are rewritten to the server-side names (prepare.c), and SETs
 * are noted so that the next server connection can be given the same
 * settings (params.c).
 */
#include "proxy/client_int.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "proxy/log.h"

static void client_read_cb(void *arg);
static void client_write_cb(void *arg);
static void client_event_cb(void *arg, sbuf_event_t what);
static void process_messages(client_t *c);

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
static void move_to(client_t *c, client_state_t st, pool_t *p)
{
	TAILQ_REMOVE(list_of(c, c->state), c, link);
	c->state = st;
	if (p != NULL)
		c->pool = p;
	TAILQ_INSERT_TAIL(list_of(c, st), c, link);
}

void client_wait(client_t *c, pool_t *p)
{
	move_to(c, CL_WAITING, p);
}

server_t *client_any_link(const client_t *c)
{
	for (int i = 0; i < c->links_cap; i++)
		if (c->links[i] != NULL)
			return c->links[i];
	return NULL;
}

/* Logged in without a server (login.c knew the parameters): idle, and its messages go on. */
void client_logged_in(client_t *c)
{
	move_to(c, CL_IDLE, NULL);
	client_resume(c);
}

void client_unwait(client_t *c)
{
	server_t *s = client_any_link(c);

	move_to(c, s != NULL ? CL_ACTIVE : CL_IDLE, s != NULL ? s->pool : NULL);
}

/* ---- links: at most one server per shard ---- */

server_t *client_link(const client_t *c, int shard)
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

void client_unlinked(client_t *c, server_t *s)
{
	int shard = s->pool->shard;

	if (client_link(c, shard) == s) {
		c->links[shard] = NULL;
		c->n_links--;
	}
	if (c->server == s)
		c->server = NULL;
	if (c->fan != NULL)
		fanout_member_lost(c, s);
	if (c->n_links == 0 && c->state == CL_ACTIVE)
		move_to(c, CL_IDLE, NULL);
	cancel_update(c);
}

/* ---- output ---- */

void client_send_buf(client_t *c, wire_buf_t *b)
{
	if (!b->failed)
		sbuf_write(&c->sb, b->data, b->len);
}

static void send_error(client_t *c, const char *severity, const char *sqlstate, const char *msg)
{
	wire_buf_t *b = &c->worker->scratch;

	wire_buf_reset(b);
	wire_put_error(b, severity, sqlstate, msg);
	client_send_buf(c, b);
}

static void deferred_close_cb(evutil_socket_t fd, short what, void *arg)
{
	client_t *c = arg;
	sbuf_loop_t *loop = &c->worker->loop;

	client_close(c);
	sbuf_flush_all(loop);
}

/*
 * Stop reading, let the output drain, then close: from client_write_cb when
 * the output empties, or from the event loop right away when it already is.
 * Never synchronously, because the caller still holds the client.
 */
void client_close_after_flush(client_t *c)
{
	if (c->closing)
		return;
	c->closing = true;
	sbuf_pause(&c->sb);
	if (evbuffer_get_length(c->sb.out) == 0) {
		c->close_ev = event_new(c->worker->base, -1, 0, deferred_close_cb, c);
		if (c->close_ev != NULL)
			event_active(c->close_ev, 0, 0);
	}
}

void client_fail(client_t *c, const char *severity, const char *sqlstate, const char *fmt, ...)
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
	client_close_after_flush(c);
}

void client_fail_with_body(client_t *c, const uint8_t *body, size_t len)
{
	wire_buf_t *b = &c->worker->scratch;

	if (c->closing)
		return;
	wire_buf_reset(b);
	wire_begin(b, 'E');
	wire_put_bytes(b, body, len);
	wire_end(b);
	client_send_buf(c, b);
	client_close_after_flush(c);
}

void client_protocol_violation(client_t *c, const char *what)
{
	client_fail(c, "FATAL", "08P01", "pgshard: protocol violation: %s", what);
}

/* ---- life cycle ---- */

void client_accept(worker_t *w, int fd)
{
	const cfg_t *cfg = worker_cfg(w);
	client_t *c;
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		evutil_closesocket(fd);
		return;
	}
	c->sb.fd = -1;
	c->id = ++w->next_id;
	c->worker = w;
	c->state = CL_LOGIN;
	c->login_step = LOGIN_STARTUP;
	c->accepted_at = time(NULL);
	TAILQ_INSERT_TAIL(&w->login_clients, c, link);
	w->n_clients++;
	if (sbuf_accept(&c->sb, &w->loop, fd, client_read_cb, client_write_cb, client_event_cb, c) <
	    0) {
		TAILQ_REMOVE(&w->login_clients, c, link);
		w->n_clients--;
		free(c);
		return;
	}

	/* refused once its startup packet is in, like PostgreSQL: SSL and cancel go first */
	if (w->n_clients > (cfg->max_clients + g_n_workers - 1) / g_n_workers)
		c->too_many = true;
}

void client_drop_pending_sets(client_t *c)
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
 * (client_free), so callers up the stack that hold c see c->closing and
 * CL_CLOSED instead of freed memory.
 */
void client_close(client_t *c)
{
	worker_t *w = c->worker;
	server_t *s;

	if (c->state == CL_CLOSED)
		return;
	log_msg(LOG_DEBUG, c->id, c->server ? c->server->id : 0, "client closed");
	c->closing = true;
	if (c->close_ev != NULL) {
		event_free(c->close_ev);
		c->close_ev = NULL;
	}
	fanout_free(c);
	routejob_forget(c);
	if (c->state == CL_WAITING)
		pool_remove_waiting(c);
	while ((s = client_any_link(c)) != NULL) {
		/*
		 * A server in the middle of something, or holding session state
		 * of this client, cannot serve anyone else. A statement still
		 * running there is cancelled: PostgreSQL would not notice the
		 * closed connection until the statement writes to it.
		 */
		if (link_idle(s) && !c->pinned) {
			pool_release(s);
		} else {
			client_unlinked(c, s);
			if (s->pending.count > 0)
				cancel_server(w, s);
			server_close(s, "client went away during a transaction");
		}
	}
	TAILQ_REMOVE(list_of(c, c->state), c, link);
	c->state = CL_CLOSED;
	TAILQ_INSERT_TAIL(&w->closed_clients, c, link);
	w->n_clients--;
	cancel_unregister(c);
	sbuf_shutdown(&c->sb);
	worker_reap_later(w);
}

void client_free(client_t *c)
{
	sbuf_close(&c->sb);
	ps_client_free(c);
	params_free(&c->startup_params);
	params_free(&c->session_params);
	client_drop_pending_sets(c);
	free(c->links);
	tx_free(&c->tx);
	free(c->txn_portal);
	client_fan_portal_free(c);
	free(c->txn_sql);
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
		client_fail(c, "FATAL", "53200", "pgshard: out of memory");
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
		client_fail(c, "FATAL", "53200", "pgshard: out of memory");
}

void client_linked(client_t *c, server_t *s)
{
	s->client = c;
	if (links_put(c, s) < 0) {
		client_fail(c, "FATAL", "53200", "pgshard: out of memory");
		return;
	}
	c->server = s;
	move_to(c, CL_ACTIVE, s->pool);
	cancel_update(c);
	sbuf_resume(&c->sb);
	log_msg(LOG_DEBUG, c->id, s->id, "linked to shard %d", s->pool->shard);

	if (s->params_hash != c->params_hash) {
		start_param_sync(c, s);
		/* a login goes on in client_sync_done, once the values are known */
		if (c->login_step == LOGIN_PARAMS || c->closing)
			return;
	} else if (c->login_step == LOGIN_PARAMS) {
		client_finish_login(c);
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
	client_resume(c);
}

void client_sync_done(client_t *c, server_t *s, const uint8_t *error_body, size_t len)
{
	s->syncing_params = false;
	if (error_body != NULL) {
		/* the server is fine, but its settings are now unknown */
		s->params_hash = 0;
		client_fail_with_body(c, error_body, len);
		return;
	}
	s->params_hash = c->params_hash;
	if (c->login_step == LOGIN_PARAMS)
		client_finish_login(c);
}

bool client_maybe_release(client_t *c)
{
	server_t *s;

	if (c->n_links == 0 || c->pinned || c->closing || c->fan != NULL || c->gathering ||
	    tx_open(&c->tx))
		return false;
	for (int i = 0; i < c->links_cap; i++)
		if (c->links[i] != NULL && !link_idle(c->links[i]))
			return false;
	while ((s = client_any_link(c)) != NULL)
		pool_release(s);
	/* anything the client sent meanwhile needs a server again */
	client_resume(c);
	return true;
}

void client_server_lost(client_t *c, server_t *s, const char *why)
{
	client_unlinked(c, s);
	client_fail(c, "FATAL", "08006", "pgshard: server connection lost: %s", why);
}

char client_tx_status(const client_t *c)
{
	return tx_status(&c->tx);
}

/*
 * A link reported its transaction status. A transaction the server opened
 * itself (a query string with BEGIN in it) makes the client's: other shards
 * it touches join with a plain BEGIN.
 */
void client_note_status(client_t *c, char status)
{
	if (tx_note_status(&c->tx, status) < 0 || status == 'I')
		return;
	for (int i = 0; i < c->links_cap; i++)
		if (c->links[i] != NULL)
			tx_join(&c->tx, i);
}

void client_tx_fail(client_t *c)
{
	tx_fail(&c->tx);
}

/*
 * A reply the proxy makes itself ('1', '2', '3', 'n', 'E' with str =
 * SQLSTATE+message, 'C' with str = tag, 'Z'): written now when nothing is
 * outstanding, else queued behind what the current server owes.
 */
int client_reply(client_t *c, uint8_t reply, char *str)
{
	server_t *s = c->server;

	if (s != NULL && s->pending.count > 0) {
		if (pending_push(&s->pending, 0, PEND_SYNTHESIZE, reply, NULL, str) < 0) {
			free(str);
			return -1;
		}
		relay_flush_synthesized(c, s);
		return 0;
	}
	relay_emit(c, reply, str);
	free(str);
	return 0;
}

/* ---- the client's messages ---- */

void client_apply_effects(client_t *c, const char *sql, size_t len)
{
	route_effects_t e;

	if (route_scan_effects(sql, len, &e) < 0)
		return;
	if (e.pin && !c->pinned) {
		c->pinned = true;
		c->pin_why = e.pin_why;
		log_msg(LOG_DEBUG, c->id, c->server ? c->server->id : 0,
		        "session pinned to its server connection by %s", e.pin_why);
	}
	if (e.n_sets > 0) {
		route_set_t *sets =
		    realloc(c->pend_sets, sizeof(*sets) * (size_t)(c->n_pend_sets + e.n_sets));

		if (sets == NULL) {
			route_effects_free(&e);
			return;
		}
		c->pend_sets = sets;
		memcpy(sets + c->n_pend_sets, e.sets, sizeof(*sets) * (size_t)e.n_sets);
		c->n_pend_sets += e.n_sets;
		free(e.sets); /* the strings now belong to pend_sets */
		if (c->server)
			c->server->sets_doomed = false;
	}
}

/* Make sure the server has this statement, injecting a Parse whose reply is swallowed. */
static int ensure_prepared(client_t *c, server_t *s, ps_entry_t *e)
{
	wire_buf_t *b = &c->worker->scratch;

	if (ps_server_has(s, e))
		return 0;
	wire_buf_reset(b);
	ps_put_parse(b, e);
	if (b->failed || ps_server_add(s, e) < 0 ||
	    pending_push(&s->pending, 'P', PEND_SWALLOW, 0, e, NULL) < 0)
		return -1;
	return server_send(s, b->data, b->len);
}

/*
 * Make the server's unnamed statement the client's own: re-send the client's
 * last unnamed Parse, or, when the client has none, close whatever another
 * client left there, so that the server answers 26000 as PostgreSQL would
 * instead of running someone else's SQL.
 */
static int ensure_unnamed(client_t *c, server_t *s)
{
	if (s->unnamed_gen == c->unnamed_gen)
		return 0;
	if (c->unnamed_gen == 0) {
		static const uint8_t close_unnamed[] = {'C', 0, 0, 0, 6, 'S', 0};

		if (pending_push(&s->pending, 'C', PEND_SWALLOW, 0, NULL, NULL) < 0)
			return -1;
		s->unnamed_gen = 0;
		return server_send(s, close_unnamed, sizeof(close_unnamed));
	}
	if (pending_push(&s->pending, 'P', PEND_SWALLOW, 0, NULL, NULL) < 0)
		return -1;
	s->unnamed_gen = c->unnamed_gen;
	return server_send(s, c->unnamed_parse, c->unnamed_parse_len);
}

/* SQLSTATE followed by the message: the `str` of an error reply the proxy makes. */
static char *error_str(const char *sqlstate, const char *fmt, va_list ap)
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

static int synth_error(client_t *c, server_t *s, const char *sqlstate, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The client's unnamed statement is now this Parse (the whole message, to send on). */
int client_remember_unnamed(client_t *c, const uint8_t *msg, size_t total)
{
	uint8_t *copy = realloc(c->unnamed_parse, total);

	if (copy == NULL)
		return -1;
	memcpy(copy, msg, total);
	c->unnamed_parse = copy;
	c->unnamed_parse_len = total;
	c->unnamed_gen = ++c->worker->next_unnamed_gen;
	return 0;
}

/* Give the client's name to the interned statement: 0 (*e set), 1 the name is taken, -1. */
int client_remember_named(client_t *c, const wire_parse_msg_t *m, ps_entry_t **e)
{
	if (ps_client_get(c, m->name) != NULL)
		return 1;
	*e = ps_intern(c->worker, m);
	if (*e == NULL)
		return -1;
	if (ps_client_put(c, m->name, *e) < 0) {
		ps_unref(c->worker, *e);
		return -1;
	}
	return 0;
}

/* Answer with an error in order, and ignore the client until its Sync, as a server would. */
static int synth_error(client_t *c, server_t *s, const char *sqlstate, const char *fmt, ...)
{
	char *str;
	va_list ap;

	va_start(ap, fmt);
	str = error_str(sqlstate, fmt, ap);
	va_end(ap);
	if (str == NULL)
		return -1;
	c->skip_until_sync = true;
	if (pending_push(&s->pending, 0, PEND_SYNTHESIZE, 'E', NULL, str) < 0) {
		free(str);
		return -1;
	}
	relay_flush_synthesized(c, s);
	return 0;
}

static int handle_parse(client_t *c, server_t *s, const uint8_t *msg, size_t total)
{
	wire_parse_msg_t m;
	ps_entry_t *e;
	char *name;

	if (wire_parse_parse(msg + 5, total - 5, &m) < 0) {
		client_protocol_violation(c, "invalid Parse message");
		return -1;
	}
	client_apply_effects(c, m.query, strlen(m.query));
	s->unsynced = true;

	if (m.name[0] == '\0') {
		if (client_remember_unnamed(c, msg, total) < 0)
			return -1;
		s->unnamed_gen = c->unnamed_gen;
		if (pending_push(&s->pending, 'P', PEND_FORWARD, 0, NULL, NULL) < 0)
			return -1;
		return server_send(s, msg, total);
	}

	switch (client_remember_named(c, &m, &e)) {
	case -1:
		return -1;
	case 1:
		return synth_error(c, s, "42P05", "prepared statement \"%s\" already exists",
		                   m.name);
	}
	if (ps_server_has(s, e)) {
		/* already prepared here: the proxy answers ParseComplete itself, in order */
		if (pending_push(&s->pending, 'P', PEND_SYNTHESIZE, '1', NULL, NULL) < 0)
			return -1;
		relay_flush_synthesized(c, s);
		return 0;
	}
	name = strdup(m.name);
	if (name == NULL || ps_server_add(s, e) < 0 ||
	    pending_push(&s->pending, 'P', PEND_FORWARD, 0, e, name) < 0) {
		free(name);
		return -1;
	}
	{
		wire_buf_t *b = &c->worker->scratch;

		wire_buf_reset(b);
		ps_put_parse(b, e);
		if (b->failed)
			return -1;
		return server_send(s, b->data, b->len);
	}
}

static int handle_bind(client_t *c, server_t *s, const uint8_t *msg, size_t total)
{
	wire_bind_msg_t m;
	ps_entry_t *e;
	wire_buf_t *b = &c->worker->scratch;

	if (wire_parse_bind(msg + 5, total - 5, &m) < 0) {
		client_protocol_violation(c, "invalid Bind message");
		return -1;
	}
	s->unsynced = true;
	if (m.stmt[0] == '\0') {
		if (ensure_unnamed(c, s) < 0 ||
		    pending_push(&s->pending, 'B', PEND_FORWARD, 0, NULL, NULL) < 0)
			return -1;
		return server_send(s, msg, total);
	}
	e = ps_client_get(c, m.stmt);
	if (e == NULL)
		return synth_error(c, s, "26000", "prepared statement \"%s\" does not exist",
		                   m.stmt);
	if (ensure_prepared(c, s, e) < 0)
		return -1;
	wire_buf_reset(b);
	wire_begin(b, 'B');
	wire_put_cstring(b, m.portal);
	wire_put_cstring(b, e->server_name);
	wire_put_bytes(b, msg + 5 + m.tail_off, total - 5 - m.tail_off);
	if (wire_end(b) < 0 || pending_push(&s->pending, 'B', PEND_FORWARD, 0, NULL, NULL) < 0)
		return -1;
	return server_send(s, b->data, b->len);
}

static int handle_describe_close(client_t *c, server_t *s, uint8_t type, const uint8_t *msg,
                                 size_t total)
{
	wire_target_msg_t m;
	ps_entry_t *e;
	wire_buf_t *b = &c->worker->scratch;

	if (wire_parse_target(msg + 5, total - 5, &m) < 0) {
		client_protocol_violation(c, type == 'D' ? "invalid Describe message"
		                                         : "invalid Close message");
		return -1;
	}
	s->unsynced = true;
	if (m.kind == 'P' || m.name[0] == '\0') {
		if (m.kind == 'S' && type == 'D' && ensure_unnamed(c, s) < 0)
			return -1;
		if (m.kind == 'S' && type == 'C') {
			c->unnamed_gen = 0;
			s->unnamed_gen = 0;
		}
		if (pending_push(&s->pending, type, PEND_FORWARD, 0, NULL, NULL) < 0)
			return -1;
		return server_send(s, msg, total);
	}
	if (type == 'C') {
		/* the statement stays prepared on servers for whoever else uses it */
		ps_client_del(c, m.name);
		if (pending_push(&s->pending, 'C', PEND_SYNTHESIZE, '3', NULL, NULL) < 0)
			return -1;
		relay_flush_synthesized(c, s);
		return 0;
	}
	e = ps_client_get(c, m.name);
	if (e == NULL)
		return synth_error(c, s, "26000", "prepared statement \"%s\" does not exist",
		                   m.name);
	if (ensure_prepared(c, s, e) < 0)
		return -1;
	wire_buf_reset(b);
	wire_begin(b, 'D');
	wire_put_u8(b, 'S');
	wire_put_cstring(b, e->server_name);
	if (wire_end(b) < 0 || pending_push(&s->pending, 'D', PEND_FORWARD, 0, NULL, NULL) < 0)
		return -1;
	return server_send(s, b->data, b->len);
}

static bool known_frontend_type(uint8_t t)
{
	switch (t) {
	case 'Q':
	case 'P':
	case 'B':
	case 'D':
	case 'E':
	case 'C':
	case 'S':
	case 'H':
	case 'F':
	case 'd':
	case 'c':
	case 'f':
	case 'X':
		return true;
	default:
		return false;
	}
}

/* One complete message from the client, linked to server s. 0, or -1 if the session ended. */
static int handle_message(client_t *c, server_t *s, uint8_t type, struct evbuffer *in, size_t total)
{
	struct evbuffer *out = s->sb.out;
	const uint8_t *msg;
	int rc = 0;

	if (c->skip_until_sync && type != 'S') {
		evbuffer_drain(in, total);
		return 0;
	}

	switch (type) {
	case 'Q': {
		const char *sql;

		msg = evbuffer_pullup(in, (ev_ssize_t)total);
		if (msg == NULL || wire_parse_query(msg + 5, total - 5, &sql) < 0) {
			client_protocol_violation(c, "invalid Query message");
			return -1;
		}
		client_apply_effects(c, sql, total - 6);
		s->unnamed_gen = 0; /* a simple query drops the unnamed statement */
		if (pending_push(&s->pending, 'Q', PEND_FORWARD, 0, NULL, NULL) < 0)
			rc = -1;
		else
			rc = evbuffer_remove_buffer(in, out, total) == (int)total ? 0 : -1;
		return rc;
	}
	case 'P':
	case 'B':
	case 'D':
	case 'C':
		msg = evbuffer_pullup(in, (ev_ssize_t)total);
		if (msg == NULL)
			return -1;
		if (type == 'P')
			rc = handle_parse(c, s, msg, total);
		else if (type == 'B')
			rc = handle_bind(c, s, msg, total);
		else
			rc = handle_describe_close(c, s, type, msg, total);
		if (!c->closing)
			evbuffer_drain(in, total);
		return c->closing ? -1 : rc;
	case 'E':
		s->unsynced = true;
		s->executed = true;
		rc = pending_push(&s->pending, 'E', PEND_FORWARD, 0, NULL, NULL);
		break;
	case 'S':
		c->skip_until_sync = false;
		s->unsynced = false;
		s->executed = false;
		s->batch_failed = false;
		s->flushed = false;
		rc = pending_push(&s->pending, 'S', PEND_FORWARD, 0, NULL, NULL);
		break;
	case 'F':
		rc = pending_push(&s->pending, 'F', PEND_FORWARD, 0, NULL, NULL);
		break;
	default: /* 'H' Flush, 'd' 'c' 'f' COPY: no reply of their own */
		break;
	}
	if (rc < 0)
		return -1;
	return evbuffer_remove_buffer(in, out, total) == (int)total ? 0 : -1;
}

/* ---- routing: which link a message goes to ---- */

/* An error the proxy answers in order; in a transaction it fails the transaction. */
int client_reply_error(client_t *c, const char *sqlstate, const char *fmt, ...)
{
	char *str;
	va_list ap;

	va_start(ap, fmt);
	str = error_str(sqlstate, fmt, ap);
	va_end(ap);
	if (str == NULL)
		return -1;
	tx_fail(&c->tx);
	return client_reply(c, 'E', str);
}

/* PostgreSQL's answer to a statement in a failed transaction block. */
int client_reply_aborted(client_t *c)
{
	return client_reply_error(c, "25P02",
	                          "current transaction is aborted, commands ignored until end of "
	                          "transaction block");
}

/* PostgreSQL's answer to a Bind or Describe of a statement the client has not prepared. */
int client_reply_no_statement(client_t *c, const char *name)
{
	if (name[0] == '\0')
		return client_reply_error(c, "26000", "unnamed prepared statement does not exist");
	return client_reply_error(c, "26000", "prepared statement \"%s\" does not exist", name);
}

int client_reply_tag(client_t *c, const char *tag)
{
	char *str = strdup(tag);

	return str != NULL ? client_reply(c, 'C', str) : -1;
}

/* The one shard a plan for one shard runs on; -1 when it needs several. */
int client_single_shard(const client_t *c, const route_plan_t *p)
{
	const cfg_t *cfg = worker_cfg(c->worker);
	int first = shard_set_first(&p->shards);

	switch (p->kind) {
	case ROUTE_DEFAULT:
		return first >= 0 ? first : cfg->default_shard;
	case ROUTE_ANY:
		/* a copy on every shard: read it where the client already is */
		for (int i = 0; i < cfg->n_shards; i++)
			if (shard_set_has(&p->shards, i) && client_link(c, i) != NULL)
				return i;
		if (shard_set_has(&p->shards, cfg->default_shard))
			return cfg->default_shard;
		return first;
	default:
		return shard_set_count(&p->shards) == 1 ? first : -1;
	}
}

/* Get a server of `shard` into c->links: 1 now, 0 later (the client is resumed), -1 failed. */
static int acquire(client_t *c, int shard)
{
	pool_t *p;

	if (client_link(c, shard) != NULL)
		return 1;
	p = pool_get(c->worker, shard, c->database, c->user);
	if (p == NULL) {
		client_fail(c, "FATAL", "53200", "pgshard: out of memory");
		return -1;
	}
	if (pool_acquire(p, c) == 1)
		return c->closing ? -1 : 1;
	return c->closing ? -1 : 0;
}

/* Make c->server the link to `shard`. The link it leaves stays held (parked) when the
 * transaction or a pin needs it; an idle one in autocommit was released already. */
int client_use_shard(client_t *c, int shard)
{
	server_t *cur = c->server, *s;
	int r;

	if (cur != NULL && cur->pool->shard == shard)
		return 1;
	if (cur != NULL && (cur->pending.count > 0 || cur->syncing_params || cur->unsynced))
		return 0; /* it answers first; its ReadyForQuery resumes the client */
	c->server = NULL;
	s = client_link(c, shard);
	if (s != NULL) {
		c->server = s;
		cancel_update(c);
		return 1;
	}
	r = acquire(c, shard);
	if (r == 1)
		c->server = client_link(c, shard);
	return r;
}

/* Pass the head message to the current server, unchanged or as prepare.c rewrites it. */
int client_forward(client_t *c, uint8_t type, struct evbuffer *in, size_t total)
{
	server_t *s = c->server;

	if (evbuffer_get_length(s->sb.out) > PROXY_HIGH_WATERMARK) {
		/* backpressure: read no more from the client until the server drains */
		c->wait_server_drain = true;
		sbuf_pause(&c->sb);
		return STEP_WAIT;
	}
	c->have_plan = false;
	if (handle_message(c, s, type, in, total) < 0) {
		if (!c->closing)
			client_fail(c, "FATAL", "53200",
			            "pgshard: could not pass message to server");
		return STEP_FAIL;
	}
	return STEP_NEXT;
}

/* Replace the head Query by another query string (ROLLBACK for a failed COMMIT). */
static int swap_query(client_t *c, struct evbuffer *in, size_t *total, const char *sql)
{
	wire_buf_t *b = &c->worker->scratch;

	wire_buf_reset(b);
	wire_begin(b, 'Q');
	wire_put_cstring(b, sql);
	if (wire_end(b) < 0)
		return -1;
	evbuffer_drain(in, *total);
	if (evbuffer_prepend(in, b->data, b->len) < 0)
		return -1;
	*total = b->len;
	return 0;
}

/*
 * Hold a link to every shard in `want` for a fan-out: 1 when all are held
 * (and none is current), 0 to wait (for the current server to answer, or
 * for a pool), -1 on failure. The links gathered so far stay held.
 */
int client_gather_links(client_t *c, const shard_set_t *want)
{
	const cfg_t *cfg = worker_cfg(c->worker);

	if (c->server != NULL && (c->server->pending.count > 0 || c->server->syncing_params))
		return 0;
	c->gathering = true;
	for (int i = 0; i < cfg->n_shards; i++) {
		int r;

		if (!shard_set_has(want, i))
			continue;
		r = acquire(c, i);
		if (r != 1)
			return r;
	}
	c->gathering = false;
	c->server = NULL;
	return 1;
}

/* Every shard of the plan (or every link, for transaction control) runs the Query. */
static int run_on_several(client_t *c, const char *sql, struct evbuffer *in, size_t total,
                          bool on_links)
{
	shard_set_t want = c->plan.shards;
	int r;

	if (c->server != NULL && (c->server->pending.count > 0 || c->server->syncing_params))
		return STEP_WAIT;
	if (on_links) {
		shard_set_clear(&want);
		for (int i = 0; i < c->links_cap; i++)
			if (c->links[i] != NULL)
				shard_set_add(&want, i);
		c->plan.shards = want;
	}
	r = client_gather_links(c, &want);
	if (r != 1)
		return r == 0 ? STEP_WAIT : STEP_FAIL;
	if (fanout_query(c, sql, true) < 0) {
		client_fail(c, "FATAL", "53200", "pgshard: out of memory");
		return STEP_FAIL;
	}
	c->have_plan = false;
	evbuffer_drain(in, total);
	return STEP_NEXT;
}

int client_end_sql_statement(client_t *c, struct evbuffer *in, size_t total)
{
	c->have_plan = false;
	evbuffer_drain(in, total);
	return client_reply(c, 'Z', NULL) < 0 ? STEP_FAIL : STEP_NEXT;
}

/* The tag of a savepoint statement the proxy answers itself. */
const char *client_savepoint_tag(const char *sql)
{
	sql += route_skip_blank(sql, strlen(sql), 0);
	if (strncasecmp(sql, "RELEASE", 7) == 0)
		return "RELEASE";
	if (strncasecmp(sql, "SAVEPOINT", 9) == 0)
		return "SAVEPOINT";
	return "ROLLBACK";
}

/* Inside a transaction, the shards a statement that may write runs on have written. */
void client_note_writes(client_t *c, const route_plan_t *p)
{
	int one;

	if (!tx_open(&c->tx) || !p->is_write)
		return;
	one = client_single_shard(c, p);
	if (one >= 0) {
		tx_note_write(&c->tx, one);
		return;
	}
	for (int i = 0; i < worker_cfg(c->worker)->n_shards; i++)
		if (shard_set_has(&p->shards, i))
			tx_note_write(&c->tx, i);
}

bool client_aborted_tx_allows(const route_plan_t *p)
{
	return p->txn == ROUTE_TXN_COMMIT || p->txn == ROUTE_TXN_ROLLBACK ||
	       p->txn == ROUTE_TXN_SAVEPOINT;
}

static int on_query(client_t *c, struct evbuffer *in, size_t total)
{
	const uint8_t *msg = evbuffer_pullup(in, (ev_ssize_t)total);
	const char *sql;
	route_plan_t *p = &c->plan;
	int shard, r;

	if (msg == NULL || wire_parse_query(msg + 5, total - 5, &sql) < 0) {
		client_protocol_violation(c, "invalid Query message");
		return STEP_FAIL;
	}
	if (!c->have_plan) {
		if (c->route_job != NULL)
			return STEP_WAIT;
		if (total > ROUTEJOB_MIN_LEN &&
		    total - 6 <= worker_cfg(c->worker)->max_route_size &&
		    routejob_start(c, sql, total - 6) == 0)
			return STEP_WAIT; /* routejob_done_cb resumes the client */
		if (worker_route(c->worker, sql, NULL, 0, p) < 0) {
			client_fail(c, "FATAL", "53200", "pgshard: out of memory");
			return STEP_FAIL;
		}
		c->have_plan = true;
		c->txd_ready = false;
	}
	if (p->kind == ROUTE_REFUSE) {
		if (client_reply_error(c, p->sqlstate, "pgshard: %s", p->error) < 0)
			return STEP_FAIL;
		return client_end_sql_statement(c, in, total);
	}
	/*
	 * A Query inside an extended batch: where the batch's server can run
	 * it, it goes there (the server skips it if the batch failed, as
	 * PostgreSQL does); elsewhere, the batch must be over first.
	 */
	if (c->server != NULL && c->server->unsynced &&
	    client_single_shard(c, p) != c->server->pool->shard) {
		r = client_leave_batch(c, -1);
		if (r != 0)
			return client_left_batch(
			    c, in, total, r,
			    "pgshard: the statements before one Sync must run on one "
			    "shard; send a Sync before a query for another shard");
	}

	if (!c->txd_ready) {
		if (tx_control(&c->tx, p->txn, sql, client_savepoint_tag(sql), c->n_links,
		               &c->txd) < 0)
			return STEP_FAIL;
		c->txd_ready = true;
	}
	switch (c->txd.action) {
	case TX_REJECTED:
		if (client_reply_aborted(c) < 0)
			return STEP_FAIL;
		return client_end_sql_statement(c, in, total);
	case TX_ANSWER:
		if (client_reply_tag(c, c->txd.tag) < 0)
			return STEP_FAIL;
		return client_end_sql_statement(c, in, total);
	case TX_ON_ALL:
	case TX_ON_ONE:
		if (c->txd.as_rollback && strcasecmp(sql, "ROLLBACK") != 0) {
			/* COMMIT of a failed transaction rolls back everywhere */
			if (swap_query(c, in, &total, "ROLLBACK") < 0)
				return STEP_FAIL;
			sql = "ROLLBACK";
		}
		if (c->txd.action == TX_ON_ALL)
			return run_on_several(c, sql, in, total, true);
		return client_use_shard(c, client_any_link(c)->pool->shard) == 1
		           ? client_forward(c, 'Q', in, total)
		           : STEP_WAIT;
	case TX_ROUTE:
		break;
	}

	client_note_writes(c, p);
	shard = client_single_shard(c, p);
	if (shard < 0)
		return run_on_several(c, sql, in, total, false);
	r = client_use_shard(c, shard);
	if (r != 1)
		return r == 0 ? STEP_WAIT : STEP_FAIL;
	return client_forward(c, 'Q', in, total);
}

/*
 * The message at the head waited for a server of a shard that cannot be
 * reached: it fails with 08001 (a Query or FunctionCall with its
 * ReadyForQuery; an extended-protocol message as an error that skips to the
 * Sync), and the session goes on.
 */
static int fail_unreachable(client_t *c, uint8_t type, struct evbuffer *in, size_t total)
{
	char *why = c->connect_error;
	int rc;

	c->connect_error = NULL;
	c->have_plan = false;
	c->gathering = false; /* the links a fan-out had gathered are not needed now */
	rc = client_reply_error(c, "08001", "%s", why);
	free(why);
	if (rc < 0)
		return STEP_FAIL;
	if (type == 'Q' || type == 'F' || type == 'S') {
		c->skip_until_sync = false;
		rc = client_end_sql_statement(c, in, total);
	} else {
		c->skip_until_sync = true;
		evbuffer_drain(in, total);
		rc = STEP_NEXT;
	}
	client_maybe_release(c);
	return rc;
}

static int route_message(client_t *c, uint8_t type, struct evbuffer *in, size_t total)
{
	if (c->fan != NULL) {
		fanout_copy_t copy = fanout_copy_state(c->fan);

		if (copy == FANOUT_COPY_STARTING)
			return STEP_WAIT; /* rows sent right behind the COPY wait for it to open */
		if (type == 'd' || type == 'c' || type == 'f') {
			const uint8_t *msg = evbuffer_pullup(in, (ev_ssize_t)total);
			int rc = msg != NULL ? fanout_copy_message(c, type, msg, total) : -1;

			evbuffer_drain(in, total);
			return rc < 0 ? STEP_FAIL : STEP_NEXT;
		}
		if (copy == FANOUT_COPY_OPEN) {
			evbuffer_drain(in, total);
			fanout_copy_unexpected(c, type);
			return c->closing ? STEP_FAIL : STEP_NEXT;
		}
		return STEP_WAIT; /* the fan-out answers first */
	}
	if (c->skip_until_sync && type != 'S') {
		evbuffer_drain(in, total);
		return STEP_NEXT;
	}
	if (c->connect_error != NULL)
		return fail_unreachable(c, type, in, total);
	switch (type) {
	case 'Q':
		return on_query(c, in, total);
	case 'P':
		return client_on_parse(c, in, total);
	case 'B':
		return client_on_bind(c, in, total);
	case 'D':
	case 'C':
		return client_on_describe_close(c, type, in, total);
	default:
		return client_on_other(c, type, in, total);
	}
}

static void process_messages(client_t *c)
{
	struct evbuffer *in = c->sb.in;
	size_t max = worker_cfg(c->worker)->max_message_size;

	c->in_process = true;
	if (c->state == CL_WAITING && evbuffer_get_length(in) > PROXY_HIGH_WATERMARK)
		sbuf_pause(&c->sb); /* enough queued while waiting; client_linked reads on */
	while (!c->closing && c->login_step == LOGIN_DONE && c->state != CL_WAITING) {
		uint8_t hdr[WIRE_HEADER_LEN], type;
		size_t total, avail = evbuffer_get_length(in);
		int rc;

		if (evbuffer_copyout(in, hdr, sizeof(hdr)) < (ev_ssize_t)sizeof(hdr))
			break;
		switch (wire_frame(hdr, avail, max, &type, &total)) {
		case WIRE_FRAME_TOO_LONG:
			c->in_process = false;
			client_fail(c, "FATAL", "08P01",
			            "pgshard: message of type '%c' declares length %u, over "
			            "max_message_size (%zu)",
			            type >= 32 && type < 127 ? type : '?',
			            (unsigned)wire_be32(hdr + 1), max);
			return;
		case WIRE_FRAME_BAD_LENGTH:
			c->in_process = false;
			client_protocol_violation(c, "invalid message length");
			return;
		case WIRE_FRAME_NEED_MORE:
			if (!known_frontend_type(hdr[0])) {
				c->in_process = false;
				client_fail(c, "FATAL", "08P01",
				            "pgshard: invalid frontend message type %d", hdr[0]);
				return;
			}
			goto out;
		case WIRE_FRAME_OK:
			break;
		}
		if (!known_frontend_type(type)) {
			c->in_process = false;
			client_fail(c, "FATAL", "08P01",
			            "pgshard: invalid frontend message type %d", type);
			return;
		}
		if (type == 'X') {
			c->in_process = false;
			client_close(c);
			return;
		}
		rc = route_message(c, type, in, total);
		if (rc == STEP_WAIT)
			break;
		if (rc == STEP_FAIL) {
			c->in_process = false;
			if (!c->closing)
				client_fail(c, "FATAL", "53200", "pgshard: out of memory");
			return;
		}
	}
out:
	c->in_process = false;
}

void client_resume(client_t *c)
{
	if (c->in_process || c->closing)
		return;
	if (c->wait_server_drain && c->server != NULL &&
	    evbuffer_get_length(c->server->sb.out) <= PROXY_HIGH_WATERMARK) {
		c->wait_server_drain = false;
	}
	if (!c->wait_server_drain && c->state != CL_WAITING)
		sbuf_resume(&c->sb);
	process_messages(c);
}

/* ---- callbacks ---- */

static void client_read_cb(void *arg)
{
	client_t *c = arg;

	if (c->state == CL_LOGIN)
		client_login_read(c);
	else
		process_messages(c);
}

static void client_write_cb(void *arg)
{
	client_t *c = arg;

	/* called when the output has been written out */
	if (c->closing) {
		client_close(c);
		return;
	}
	/* the client caught up: read its server (or servers) again */
	if (c->fan != NULL) {
		fanout_resume_members(c);
		return;
	}
	if (c->server != NULL && c->server->wait_client_drain) {
		c->server->wait_client_drain = false;
		sbuf_resume(&c->server->sb);
		client_server_reply(c, c->server);
	}
}

static void client_event_cb(void *arg, sbuf_event_t what)
{
	client_close(arg);
}
