/*
 * client.c — the client's message loop: the top of a session. It reads
 * each message the client sends and gives it to what runs it: the simple
 * protocol here (on_query), the extended protocol (extended.c), a statement
 * on several shards (fanout.c), or the one server the client holds
 * (forward.c); startup and authentication are login.c's. The layers below
 * report back up only through the client's ops (client_ops below): resume
 * the loop, a server has data, a server left, the session closes.
 */
#include "proxy/client.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "proxy/admin.h"
#include "proxy/commit.h"
#include "proxy/context.h"
#include "proxy/cursor.h"
#include "proxy/extended.h"
#include "proxy/fanout.h"
#include "proxy/forward.h"
#include "proxy/hotkeys.h"
#include "proxy/inscols.h"
#include "proxy/lifecycle.h"
#include "proxy/log.h"
#include "proxy/login.h"
#include "proxy/join.h"
#include "proxy/move.h"
#include "proxy/pending.h"
#include "proxy/relay.h"
#include "proxy/replica.h"
#include "proxy/routejob.h"
#include "proxy/sbuf.h"
#include "proxy/server.h"
#include "proxy/session.h"
#include "proxy/stmtlog.h"
#include "proxy/status.h"
#include "proxy/tx.h"
#include "proxy/wire.h"
#include "proxy/worker.h"
#include "router/route.h"
#include "router/shardmap.h"

static void client_read_cb(void *arg);
static void client_write_cb(void *arg);
static void client_event_cb(void *arg, sbuf_event_t what);
static void process_messages(client_t *c);
static void frontend_resume(client_t *c);

/* A linked server has data: the statement on several shards, or the relay, reads it. */
static void frontend_server_reply(client_t *c, server_t *s)
{
	if (c->commit != NULL && commit_has(c->commit, s))
		commit_reply(c, s);
	else if (c->move != NULL && move_has(c->move, s))
		move_reply(c, s);
	else if (c->join != NULL && join_has(c->join, s))
		join_reply(c, s);
	else if (c->fan != NULL && fanout_has(c->fan, s))
		fanout_reply(c, s);
	else
		relay_reply(c, s);
}

static void frontend_unlinked(client_t *c, server_t *s)
{
	if (c->fan != NULL)
		fanout_member_lost(c, s);
	if (c->commit != NULL)
		commit_member_lost(c, s);
	if (c->move != NULL)
		move_member_lost(c, s);
	if (c->join != NULL)
		join_member_lost(c, s);
}

/* A linked server's connection broke: a commit goes on without it; anything else fails. */
static void frontend_server_lost(client_t *c, server_t *s, const char *why)
{
	if (c->commit != NULL && commit_has(c->commit, s))
		commit_server_lost(c, s);
	else if (!replica_read_lost(c, s))
		session_server_lost(c, s, why);
}

/* The session closes: what runs for it now stops. */
static void frontend_closing(client_t *c)
{
	commit_free(c);
	move_free(c);
	join_free(c);
	fanout_free(c);
	routejob_forget(c);
	replica_client_free(c);
}

/* Its memory goes: what the extended protocol keeps for it too. */
static void frontend_freeing(client_t *c)
{
	stmtlog_free(c);
	extended_fan_portal_free(c);
	replica_client_free(c);
}

static void frontend_statement_ended(client_t *c, server_t *s)
{
	stmtlog_shard(c, s->pool->shard);
	if (!c->closing && c->login_step == LOGIN_DONE)
		replica_statement_ended(c, s); /* what the session saw there */
}

static const client_ops_t frontend_ops = {
    .resume = frontend_resume,
    .server_reply = frontend_server_reply,
    .unlinked = frontend_unlinked,
    .closing = frontend_closing,
    .freeing = frontend_freeing,
    .params_known = login_finish,
    .pool_wait = session_wait,
    .pool_unwait = session_unwait,
    .pool_linked = session_linked,
    .pool_released = session_unlinked,
    .pool_failed = login_connect_failed,
    .server_lost = frontend_server_lost,
    .statement_ended = frontend_statement_ended,
};

/* ---- life cycle ---- */

static void log_accepted(const client_t *c, int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char host[NI_MAXHOST] = "?", port[NI_MAXSERV] = "?";

	if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0)
		getnameinfo((struct sockaddr *)&ss, len, host, sizeof(host), port, sizeof(port),
		            NI_NUMERICHOST | NI_NUMERICSERV);
	log_msg(LOG_INFO, c->id, 0, "connection accepted from %s port %s", host, port);
}

void client_accept(worker_t *w, int fd)
{
	const cfg_t *cfg = context_cfg(w);
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
	c->ops = &frontend_ops;
	c->state = CL_LOGIN;
	c->login_step = LOGIN_STARTUP;
	c->accepted_at = time(NULL);
	c->replica_reads = -1;
	TAILQ_INSERT_TAIL(&w->login_clients, c, link);
	w->n_clients++;
	if (sbuf_accept(&c->sb, &w->loop, fd, client_read_cb, client_write_cb, client_event_cb, c) <
	    0) {
		TAILQ_REMOVE(&w->login_clients, c, link);
		w->n_clients--;
		free(c);
		return;
	}

	if (cfg->log_connections)
		log_accepted(c, fd);
	/* refused once its startup packet is in, like PostgreSQL: SSL and cancel go first */
	if (w->n_clients > (cfg->max_clients + g_n_workers - 1) / g_n_workers)
		c->too_many = true;
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

/* ---- routing: which link a message goes to ---- */

/* Replace the head Query by another query string (ROLLBACK for a failed COMMIT). */
static int swap_query(client_t *c, pbuf_t *in, size_t *total, const char *sql)
{
	wire_buf_t *b = &c->worker->scratch;

	wire_buf_reset(b);
	wire_begin(b, 'Q');
	wire_put_cstring(b, sql);
	if (wire_end(b) < 0)
		return -1;
	pbuf_drain(in, *total);
	if (pbuf_prepend(in, b->data, b->len) < 0)
		return -1;
	*total = b->len;
	return 0;
}

/*
 * Every shard of the step runs the Query (a fan-out); for transaction
 * control, every link, each with one copy of the answer.
 */
static int run_on_several(client_t *c, const char *sql, pbuf_t *in, size_t total, bool on_links)
{
	shard_set_t want;
	int r;

	if (c->server != NULL && (c->server->pending.count > 0 || c->server->syncing_params))
		return STEP_WAIT;
	if (on_links) {
		route_step_t each;

		shard_set_clear(&want);
		for (int i = 0; i < c->links_cap; i++)
			if (c->links[i] != NULL)
				shard_set_add(&want, i);
		each = route_step_each(&want, ROUTE_MERGE_ONE);
		route_plan_run_step(&c->plan, &each);
	}
	want = route_step_routed(&c->plan)->shards;
	r = forward_gather_links(c, &want);
	if (r != 1)
		return r == 0 ? STEP_WAIT : STEP_FAIL;
	if (fanout_query(c, sql, true) < 0) {
		session_fail_status(c, PX_NOMEM);
		return STEP_FAIL;
	}
	c->have_plan = false;
	pbuf_drain(in, total);
	return STEP_NEXT;
}

/*
 * An UPDATE of the shard key that may move rows, an INSERT ... SELECT whose
 * rows go to the shards of their keys (move.c): on links to the shards its
 * rows are read on and to those they can go to, always inside a
 * transaction (an implicit one for an autocommit statement).
 */
static int run_move(client_t *c, const char *sql, pbuf_t *in, size_t total)
{
	shard_set_t want = route_step_routed(&c->plan)->shards;
	int r;

	if (!tx_open(&c->tx)) {
		if (session_reply_error(c, "0A000", "pgshard: %s", move_needs_tx(&c->plan)) < 0)
			return STEP_FAIL;
		return session_end_sql_statement(c, in, total);
	}
	if (c->server != NULL && (c->server->pending.count > 0 || c->server->syncing_params))
		return STEP_WAIT;
	shard_set_union(&want, &c->plan.move_to);
	r = forward_gather_links(c, &want);
	if (r != 1)
		return r == 0 ? STEP_WAIT : STEP_FAIL;
	if (move_start(c, sql) < 0) {
		session_fail_status(c, PX_NOMEM);
		return STEP_FAIL;
	}
	c->have_plan = false;
	pbuf_drain(in, total);
	return STEP_NEXT;
}

/*
 * A join across shards (join.c): on links to every shard of either table's
 * map, in the client's transaction if it is in one; a read, so autocommit
 * needs none of pgshard's own.
 */
static int run_join(client_t *c, const char *sql, pbuf_t *in, size_t total)
{
	shard_set_t want = route_step_routed(&c->plan)->shards;
	int r;

	if (c->server != NULL && (c->server->pending.count > 0 || c->server->syncing_params))
		return STEP_WAIT;
	r = forward_gather_links(c, &want);
	if (r != 1)
		return r == 0 ? STEP_WAIT : STEP_FAIL;
	if (join_start(c, sql) < 0) {
		session_fail_status(c, PX_NOMEM);
		return STEP_FAIL;
	}
	c->have_plan = false;
	pbuf_drain(in, total);
	return STEP_NEXT;
}

/*
 * A query string whose statements route differently: each statement goes
 * into the input as a Query of its own, in order, and runs as any other;
 * their ReadyForQuery messages are the batch's (session_batch_step_done),
 * which answers once. As PostgreSQL runs such a string in one transaction,
 * so does pgshard, unless the string opens its own (BEGIN first) or the
 * client is in one: then an end marker follows the statements and commits
 * it (two phases when it wrote on several shards), or rolls it back after
 * an error.
 */
static const char batch_end[] = "/* pgshard: end of batch */";

static int run_batch(client_t *c, const char *sql, pbuf_t *in, size_t total)
{
	wire_buf_t *b = &c->worker->scratch;
	char **stmts = NULL, err[256];
	bool own_begin, wrap;
	size_t *lens = NULL;
	int n = 0, rc = STEP_FAIL;

	if (route_batch_statements(sql, &stmts, &n, &own_begin, err, sizeof err) < 0) {
		if (session_reply_error(c, "XX000", "pgshard: %s", err) < 0)
			return STEP_FAIL;
		return session_end_sql_statement(c, in, total);
	}
	wrap = !tx_open(&c->tx) && !own_begin;
	lens = malloc(sizeof *lens * (size_t)n);
	wire_buf_reset(b);
	for (int i = 0; lens != NULL && i < n; i++) {
		size_t at = b->len;

		wire_begin(b, 'Q');
		wire_put_cstring(b, stmts[i]);
		wire_end(b);
		lens[i] = b->len - at;
	}
	if (wrap) {
		wire_begin(b, 'Q');
		wire_put_cstring(b, batch_end);
		wire_end(b);
	}
	if (lens != NULL && !b->failed && session_batch_start(c, lens, n, wrap) == 0) {
		pbuf_drain(in, total);
		if (pbuf_prepend(in, b->data, b->len) == 0) {
			if (wrap) {
				tx_decision_t d;

				/* a transaction of its own, as one BEGIN the client does not see */
				if (tx_control(&c->tx, ROUTE_TXN_BEGIN, "BEGIN", "BEGIN",
				               c->n_links, &d) == 0)
					session_join_held(c);
			}
			c->have_plan = false;
			rc = STEP_NEXT;
		}
	}
	if (rc != STEP_NEXT)
		session_fail_status(c, PX_NOMEM);
	for (int i = 0; i < n; i++)
		free(stmts[i]);
	free(stmts);
	free(lens);
	return rc;
}

/* The end of a batch run in its own transaction: it commits, or rolls back after an error. */
static int end_batch(client_t *c, pbuf_t *in, size_t total)
{
	if (c->server != NULL && (c->server->pending.count > 0 || c->server->syncing_params))
		return STEP_WAIT;
	session_batch_free(c);
	c->have_plan = false;
	pbuf_drain(in, total);
	if (commit_start(c, tx_failed(&c->tx) ? COMMIT_ROLLBACK : COMMIT_IMPLICIT, true, NULL) <
	    0) {
		session_fail_status(c, PX_NOMEM);
		return STEP_FAIL;
	}
	return STEP_NEXT;
}

/* A COMMIT of a transaction that wrote on several shards: in two phases (commit.c). */
static int commit_on_links(client_t *c, pbuf_t *in, size_t total)
{
	if (c->server != NULL && (c->server->pending.count > 0 || c->server->syncing_params))
		return STEP_WAIT;
	if (commit_start(c, COMMIT_EXPLICIT, true, NULL) < 0) {
		session_fail_status(c, PX_NOMEM);
		return STEP_FAIL;
	}
	c->have_plan = false;
	pbuf_drain(in, total);
	return STEP_NEXT;
}

/*
 * FETCH, MOVE or CLOSE of a cursor over several shards, or CLOSE ALL of
 * cursors on several: on the shards of the step cursor_route made.
 */
static int run_on_cursor(client_t *c, const char *sql, pbuf_t *in, size_t total)
{
	route_plan_t *p = &c->plan;
	cursor_at_t *cur = cursor_find(c, p->cursor);
	shard_set_t want = route_step_routed(p)->shards;
	int r;

	if (p->cursor_op == ROUTE_CURSOR_USE && p->fetch_count == 0) {
		if (session_reply_error(c, "0A000", CURSOR_FORWARD_ONLY, p->cursor) < 0)
			return STEP_FAIL;
		return session_end_sql_statement(c, in, total);
	}
	if (c->server != NULL && (c->server->pending.count > 0 || c->server->syncing_params))
		return STEP_WAIT;
	r = forward_gather_links(c, &want);
	if (r != 1)
		return r == 0 ? STEP_WAIT : STEP_FAIL;
	if (p->cursor_op == ROUTE_CURSOR_USE && cur != NULL) {
		fanout_opts_t o = {.cur = cur, .count = p->fetch_count, .move = p->fetch_move};

		r = fanout_run(c, sql, true, NULL, &o);
	} else
		r = fanout_query(c, sql, true);
	if (r < 0) {
		session_fail_status(c, PX_NOMEM);
		return STEP_FAIL;
	}
	cursor_ran(c, p);
	c->have_plan = false;
	pbuf_drain(in, total);
	return STEP_NEXT;
}

/*
 * An INSERT ... VALUES into a sharded table without a column list: the
 * Query becomes the INSERT with its column list (inscols.c), which routes
 * by the key as any other. 1 rewritten, 0 wait (the catalog is asked, or a
 * server awaited), -1 refuse it as planned.
 */
static int with_columns(client_t *c, pbuf_t *in, size_t *total, const char *sql)
{
	char *out;
	int r = inscols_write(c, sql, &c->plan, &out);

	if (r == 1) {
		r = swap_query(c, in, total, out) == 0 ? 1 : -1;
		if (r == 1)
			c->have_plan = false; /* routed again, with its column list */
		free(out);
	}
	return r;
}

static int on_query(client_t *c, pbuf_t *in, size_t total)
{
	const uint8_t *msg = pbuf_pullup(in, (ev_ssize_t)total);
	const char *sql;
	route_plan_t *p = &c->plan;
	const route_step_t *step;
	int shard, r;

	if (msg == NULL || wire_parse_query(msg + 5, total - 5, &sql) < 0) {
		session_protocol_violation(c, "invalid Query message");
		return STEP_FAIL;
	}
	if (session_batch_done_all(c) && strcmp(sql, batch_end) == 0)
		return end_batch(c, in, total);
	if (!c->have_plan) {
		if (c->route_job != NULL)
			return STEP_WAIT;
		const char *word = sql;

		while (*word == ' ' || *word == '\t' || *word == '\n' || *word == '\r')
			word++;
		if ((*word | 0x20) == 's' || (*word | 0x20) == 'r') {
			r = replica_command(c, sql, in, total);
			if (r != -2)
				return r;
		}
		if (total > ROUTEJOB_MIN_LEN &&
		    total - 6 <= context_cfg(c->worker)->max_route_size &&
		    routejob_start(c, sql, total - 6) == 0)
			return STEP_WAIT; /* routejob_done_cb resumes the client */
		if (context_route(c->worker, sql, NULL, 0, p) < 0) {
			session_fail_status(c, PX_NOMEM);
			return STEP_FAIL;
		}
		session_check_key_bytes(c, p);
		hotkeys_note(c->worker->hot, p);
		c->have_plan = true;
		c->txd_ready = false;
	}
	if (p->steps[0].kind == ROUTE_STEP_REFUSE && p->needs_columns) {
		r = with_columns(c, in, &total, sql);
		if (r == 1)
			return on_query(c, in, total); /* routed again, with its column list */
		if (r == 0)
			return c->closing ? STEP_FAIL : STEP_WAIT;
	}
	if (p->steps[0].kind == ROUTE_STEP_REFUSE) {
		if (session_reply_error(c, p->sqlstate,
		                        strcmp(p->sqlstate, "42601") == 0 ? "%s" : "pgshard: %s",
		                        p->error) < 0)
			return STEP_FAIL;
		return session_end_sql_statement(c, in, total);
	}
	/* where it runs unless transaction control (a TXN step) answers it first */
	step = route_step_routed(p);
	/*
	 * A Query inside an extended batch: where the batch's server can run
	 * it, it goes there (the server skips it if the batch failed, as
	 * PostgreSQL does); elsewhere, the batch must be over first.
	 */
	if (c->server != NULL && c->server->unsynced &&
	    session_step_shard(c, step) != c->server->pool->shard) {
		r = extended_leave_batch(c, -1);
		if (r != 0)
			return extended_left_batch(c, in, total, r, BATCH_ONE_SHARD);
	}

	if (!c->txd_ready) {
		if (tx_control(&c->tx, p->txn, sql, p->txn_tag, c->n_links, &c->txd) < 0)
			return STEP_FAIL;
		c->txd_ready = true;
	}
	switch (c->txd.action) {
	case TX_REJECTED:
		if (session_reply_aborted(c) < 0)
			return STEP_FAIL;
		return session_end_sql_statement(c, in, total);
	case TX_ANSWER:
		if (session_reply_tag(c, c->txd.tag) < 0)
			return STEP_FAIL;
		if (p->txn == ROUTE_TXN_BEGIN)
			session_join_held(c);
		return session_end_sql_statement(c, in, total);
	case TX_ON_ALL:
	case TX_ON_ONE:
		if (c->txd.as_rollback && strcasecmp(sql, "ROLLBACK") != 0) {
			/* COMMIT of a failed transaction rolls back everywhere */
			if (swap_query(c, in, &total, "ROLLBACK") < 0)
				return STEP_FAIL;
			sql = "ROLLBACK";
		}
		if (c->txd.two_phase && context_cfg(c->worker)->two_phase_commit)
			return commit_on_links(c, in, total);
		if (c->txd.action == TX_ON_ALL)
			return run_on_several(c, sql, in, total, true);
		return forward_use_shard(c, session_any_link(c)->pool->shard) == 1
		           ? forward_message(c, 'Q', in, total)
		           : STEP_WAIT;
	case TX_ROUTE:
		break;
	}

	if (step->kind != ROUTE_STEP_ONE && session_wants_implicit_tx(c, p) &&
	    tx_begin_implicit(&c->tx) < 0)
		return STEP_FAIL;
	session_note_writes(c, p);
	switch (step->kind) {
	case ROUTE_STEP_ONE:
		shard = session_step_shard(c, step);
		if (p->cursor_op != ROUTE_CURSOR_NONE) {
			shard = cursor_route(c, p, shard);
			if (shard == -2)
				return run_on_cursor(c, sql, in, total);
			if (shard < 0) {
				session_fail_status(c, PX_NOMEM);
				return STEP_FAIL;
			}
		}
		r = forward_use_node(
		    c, shard,
		    p->cursor_op == ROUTE_CURSOR_NONE ? replica_for_read(c, p, shard) : NULL);
		if (r != 1)
			return r == 0 ? STEP_WAIT : STEP_FAIL;
		cursor_ran(c, p);
		if (c->server->pool->role == NODE_REPLICA && replica_keep_read(c, in, total) < 0) {
			session_fail_status(c, PX_NOMEM);
			return STEP_FAIL;
		}
		return forward_message(c, 'Q', in, total);
	case ROUTE_STEP_EACH:
		if (p->cursor_op != ROUTE_CURSOR_NONE && p->cursor_op != ROUTE_CURSOR_DECLARE)
			return run_on_cursor(c, sql, in, total); /* cursor_route made it */
		                                                 /* fall through */
	case ROUTE_STEP_SPLIT_INSERT:
	case ROUTE_STEP_SPLIT_COPY:
	case ROUTE_STEP_GATHER:
		return run_on_several(c, sql, in, total, false);
	case ROUTE_STEP_MOVE:
	case ROUTE_STEP_INSERT_SELECT:
		return run_move(c, sql, in, total);
	case ROUTE_STEP_BATCH:
		return run_batch(c, sql, in, total);
	case ROUTE_STEP_JOIN:
		return run_join(c, sql, in, total);
	case ROUTE_STEP_REFUSE:
	case ROUTE_STEP_TXN:
		break;
	}
	session_fail_status(c, PX_INTERNAL); /* route_step_routed gives neither */
	return STEP_FAIL;
}

/*
 * The message at the head waited for a server of a shard that cannot be
 * reached: it fails with 08001 (a Query or FunctionCall with its
 * ReadyForQuery; an extended-protocol message as an error that skips to the
 * Sync), and the session goes on.
 */
static int fail_unreachable(client_t *c, uint8_t type, pbuf_t *in, size_t total)
{
	char *why = c->connect_error;
	int rc;

	c->connect_error = NULL;
	c->have_plan = false;
	c->phase = PH_IDLE; /* the links a fan-out had gathered are not needed now */
	rc = session_reply_error(c, "08001", "%s", why);
	free(why);
	if (rc < 0)
		return STEP_FAIL;
	if (type == 'Q' || type == 'F' || type == 'S') {
		c->skip_until_sync = false;
		rc = session_end_sql_statement(c, in, total);
	} else {
		c->skip_until_sync = true;
		pbuf_drain(in, total);
		rc = STEP_NEXT;
	}
	session_maybe_release(c);
	return rc;
}

/*
 * Flush and Sync have no body. PostgreSQL answers one that has a body with
 * 08P01 "invalid message format"; after such a Flush it skips everything up
 * to the next Sync, while such a Sync still ends the batch. The proxy
 * answers the same way itself rather than pass the message on: a Flush
 * expects no reply, so a server skipping to a Sync would swallow, unseen,
 * the next statement of whichever client it serves next. A Sync goes on as
 * a Sync without the body.
 */
static int flush_sync_with_body(client_t *c, uint8_t type, pbuf_t *in, size_t *total)
{
	static const uint8_t sync[WIRE_HEADER_LEN] = {'S', 0, 0, 0, 4};

	if (session_reply_error(c, "08P01", "invalid message format") < 0)
		return STEP_FAIL;
	pbuf_drain(in, *total);
	if (type == 'H') {
		c->skip_until_sync = true;
		return STEP_NEXT;
	}
	if (pbuf_prepend(in, sync, sizeof(sync)) < 0)
		return STEP_FAIL;
	*total = sizeof(sync);
	return STEP_NEXT;
}

static int route_message(client_t *c, uint8_t type, pbuf_t *in, size_t total)
{
	if (c->admin)
		return admin_message(c, type, in, total);
	if (c->commit != NULL || c->move != NULL || c->join != NULL)
		return STEP_WAIT; /* the commit (the move, the join) answers first */
	if (c->fan != NULL) {
		fanout_copy_t copy = fanout_copy_state(c->fan);

		if (copy == FANOUT_COPY_STARTING)
			return STEP_WAIT; /* rows sent right behind the COPY wait for it to open */
		if (type == 'd' || type == 'c' || type == 'f') {
			const uint8_t *msg = pbuf_pullup(in, (ev_ssize_t)total);
			int rc = msg != NULL ? fanout_copy_message(c, type, msg, total) : -1;

			pbuf_drain(in, total);
			return rc < 0 ? STEP_FAIL : STEP_NEXT;
		}
		if (copy == FANOUT_COPY_OPEN) {
			pbuf_drain(in, total);
			fanout_copy_unexpected(c, type);
			return c->closing ? STEP_FAIL : STEP_NEXT;
		}
		return STEP_WAIT; /* the fan-out answers first */
	}
	if (c->skip_until_sync && type != 'S') {
		pbuf_drain(in, total);
		return STEP_NEXT;
	}
	if ((type == 'H' || type == 'S') && total != WIRE_HEADER_LEN) {
		int rc = flush_sync_with_body(c, type, in, &total);

		if (rc != STEP_NEXT || type == 'H')
			return rc;
	}
	if (c->connect_error != NULL)
		return fail_unreachable(c, type, in, total);
	switch (type) {
	case 'Q': {
		/* a batch's statements run one at a time (session_batch_step_done) */
		struct batch *batch = c->batch;
		int rc;

		if (batch != NULL && session_batch_busy(c))
			return STEP_WAIT;
		rc = on_query(c, in, total);
		if (rc == STEP_NEXT && batch != NULL && c->batch == batch)
			session_batch_consumed(c);
		return rc;
	}
	case 'P':
		return extended_on_parse(c, in, total);
	case 'B':
		return extended_on_bind(c, in, total);
	case 'D':
	case 'C':
		return extended_on_describe_close(c, type, in, total);
	default:
		return extended_on_other(c, type, in, total);
	}
}

/* Whether s will send something for the client: an answer it relays or one it stands for. */
static bool owes_client(const server_t *s)
{
	const pending_queue_t *q = &s->pending;

	for (uint32_t i = 0; i < q->count; i++)
		if (pending_nth(q, i)->action != PEND_SWALLOW)
			return true;
	return false;
}

static void process_messages(client_t *c)
{
	pbuf_t *in = c->sb.in;
	size_t max = context_cfg(c->worker)->max_message_size;

	c->in_process = true;
	if (c->state == CL_WAITING && pbuf_get_length(in) > PROXY_HIGH_WATERMARK)
		sbuf_pause(&c->sb); /* enough queued while waiting; session_linked reads on */
	while (!c->closing && c->login_step == LOGIN_DONE && c->state != CL_WAITING) {
		uint8_t hdr[WIRE_HEADER_LEN], type;
		size_t total, avail = pbuf_get_length(in);
		int rc;

		if (!pbuf_copyout_at(in, 0, hdr, sizeof(hdr)))
			break;
		switch (wire_frame(hdr, avail, max, &type, &total)) {
		case WIRE_FRAME_TOO_LONG:
			c->in_process = false;
			session_fail(c, "FATAL", "08P01",
			             "pgshard: message of type '%c' declares length %u, over "
			             "max_message_size (%zu)",
			             type >= 32 && type < 127 ? type : '?',
			             (unsigned)wire_be32(hdr + 1), max);
			return;
		case WIRE_FRAME_BAD_LENGTH:
			c->in_process = false;
			session_protocol_violation(c, "invalid message length");
			return;
		case WIRE_FRAME_NEED_MORE:
			if (!known_frontend_type(hdr[0])) {
				c->in_process = false;
				session_fail(c, "FATAL", "08P01",
				             "pgshard: invalid frontend message type %d", hdr[0]);
				return;
			}
			goto out;
		case WIRE_FRAME_OK:
			break;
		}
		if (!known_frontend_type(type)) {
			c->in_process = false;
			session_fail(c, "FATAL", "08P01",
			             "pgshard: invalid frontend message type %d", type);
			return;
		}
		if (type == 'X') {
			c->in_process = false;
			session_close(c);
			return;
		}
		if (lifecycle_stops(c))
			break; /* held until RESUME, or closing: pgshard shuts down */
		stmtlog_begin(c, type, in, total);
		rc = route_message(c, type, in, total);
		if (rc == STEP_WAIT)
			break;
		if (rc == STEP_FAIL) {
			/* the one place a failed step reaches the client, with its status */
			c->in_process = false;
			if (!c->closing)
				session_fail_status(c, c->status != PX_OK ? c->status : PX_NOMEM);
			return;
		}
	}
out:
	c->in_process = false;
	/*
	 * What the proxy answered goes with the server's answer, when one is
	 * sure to come: the server owes it, or the client waits for a server
	 * (whose answer, or the wait's error, follows). Otherwise it goes now.
	 */
	if ((c->server != NULL && owes_client(c->server)) || c->state == CL_WAITING)
		sbuf_defer(&c->sb);
	else if (pbuf_get_length(c->sb.out) > 0)
		sbuf_touch(&c->sb);
}

static void frontend_resume(client_t *c)
{
	if (c->in_process || c->closing)
		return;
	if (c->wait_server_drain && c->server != NULL &&
	    pbuf_get_length(c->server->sb.out) <= PROXY_HIGH_WATERMARK) {
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
		login_read(c);
	else
		process_messages(c);
}

static void client_write_cb(void *arg)
{
	client_t *c = arg;

	/* called when the output has been written out */
	if (c->closing) {
		session_close(c);
		return;
	}
	/* the client caught up: read its server (or servers) again */
	if (c->fan != NULL) {
		fanout_resume_members(c);
		return;
	}
	if (c->move != NULL) {
		move_resume_members(c);
		return;
	}
	if (c->join != NULL) {
		join_resume_members(c);
		return;
	}
	if (c->server != NULL && c->server->wait_client_drain) {
		c->server->wait_client_drain = false;
		sbuf_resume(&c->server->sb);
		session_server_reply(c, c->server);
	}
}

static void client_event_cb(void *arg, sbuf_event_t what)
{
	session_close(arg);
}
