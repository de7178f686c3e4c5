/*
 * forward.c — a client's messages on their way to the one server that runs
 * them: which shard's server (taken from its pool when the client holds
 * none), and each message as the server must get it. Prepared statements
 * are renamed to the names pgshard gives them on servers (prepare.c) and
 * re-prepared where a server lacks them; session effects (SET, LISTEN, ...)
 * are noted; every message that will be answered is noted in the server's
 * pending queue.
 */
#include "proxy/forward.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/context.h"
#include "proxy/log.h"
#include "proxy/pending.h"
#include "proxy/pool.h"
#include "proxy/prepare.h"
#include "proxy/sbuf.h"
#include "proxy/server.h"
#include "proxy/session.h"
#include "proxy/status.h"
#include "proxy/tx.h"
#include "proxy/wire.h"
#include "router/classify.h"
#include "router/shardmap.h"

/* ---- the client's messages ---- */

void forward_apply_effects(client_t *c, const char *sql, size_t len)
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
 * Whether what the server parses now sees the settings its params_hash
 * names, and nothing else: no sync running, no SET of the client pending,
 * and nothing run since the last Sync or in a transaction (a SET LOCAL,
 * which is not tracked, lasts until either ends).
 */
static bool settings_known(const client_t *c, const server_t *s)
{
	return !s->syncing_params && c->n_pend_sets == 0 && !tx_open(&c->tx) && !s->executed;
}

/*
 * Whether s's unnamed statement is the client's already: made by the same
 * Parse (another client's, say: pgbench's clients all send one text), and
 * parsed under the settings the client has now. Parse analysis reads
 * settings (DateStyle turns '01/02/2024' into a date then), so the Parse
 * must have gone with the settings the server has now (nothing changed
 * them since: a sync or a SET by a simple query would have dropped the
 * statement, a settled SET changes params_hash), and those are the
 * client's, with nothing of its own in effect.
 */
static bool unnamed_held(const client_t *c, const server_t *s)
{
	return s->unnamed_gen != 0 && s->unnamed_copy_gen == s->unnamed_gen &&
	       s->unnamed_copy_params != 0 && s->unnamed_copy_params == s->params_hash &&
	       s->params_hash == c->params_hash && settings_known(c, s) &&
	       s->unnamed_copy_len == c->unnamed_parse_len &&
	       memcmp(s->unnamed_copy, c->unnamed_parse, c->unnamed_parse_len) == 0;
}

/* Keep the Parse ensure_unnamed sends, and the settings it is parsed under when known. */
static void unnamed_keep(client_t *c, server_t *s)
{
	uint8_t *copy = s->unnamed_copy;

	s->unnamed_copy_gen = 0;
	if (s->unnamed_copy_cap < c->unnamed_parse_len) {
		copy = realloc(s->unnamed_copy, c->unnamed_parse_len);
		if (copy == NULL)
			return; /* no copy: the next client sends its Parse */
		s->unnamed_copy = copy;
		s->unnamed_copy_cap = c->unnamed_parse_len;
	}
	memcpy(copy, c->unnamed_parse, c->unnamed_parse_len);
	s->unnamed_copy_len = c->unnamed_parse_len;
	s->unnamed_copy_gen = s->unnamed_gen;
	s->unnamed_copy_params = settings_known(c, s) ? s->params_hash : 0;
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
	if (unnamed_held(c, s)) {
		/* the server parsed this very text under these settings: no Parse again */
		s->unnamed_gen = s->unnamed_copy_gen = c->unnamed_gen;
		return 0;
	}
	if (pending_push(&s->pending, 'P', PEND_SWALLOW, 0, NULL, NULL) < 0)
		return -1;
	s->unnamed_gen = c->unnamed_gen;
	unnamed_keep(c, s);
	return server_send(s, c->unnamed_parse, c->unnamed_parse_len);
}

/* The client's unnamed statement is now this Parse (the whole message, to send on). */
int forward_remember_unnamed(client_t *c, const uint8_t *msg, size_t total)
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
int forward_remember_named(client_t *c, const wire_parse_msg_t *m, ps_entry_t **e)
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
    __attribute__((format(printf, 4, 5)));

static int synth_error(client_t *c, server_t *s, const char *sqlstate, const char *fmt, ...)
{
	char *str;
	va_list ap;

	va_start(ap, fmt);
	str = session_error_str(sqlstate, fmt, ap);
	va_end(ap);
	if (str == NULL)
		return -1;
	c->skip_until_sync = true;
	if (pending_push(&s->pending, 0, PEND_SYNTHESIZE, 'E', NULL, str) < 0) {
		free(str);
		return -1;
	}
	session_flush_synthesized(c, s);
	return 0;
}

static int handle_parse(client_t *c, server_t *s, const uint8_t *msg, size_t total)
{
	wire_parse_msg_t m;
	ps_entry_t *e;
	char *name;

	if (wire_parse_parse(msg + 5, total - 5, &m) < 0) {
		session_protocol_violation(c, "invalid Parse message");
		return -1;
	}
	forward_apply_effects(c, m.query, strlen(m.query));
	s->unsynced = true;

	if (m.name[0] == '\0') {
		if (forward_remember_unnamed(c, msg, total) < 0)
			return -1;
		s->unnamed_gen = c->unnamed_gen;
		if (pending_push(&s->pending, 'P', PEND_FORWARD, 0, NULL, NULL) < 0)
			return -1;
		return server_send(s, msg, total);
	}

	switch (forward_remember_named(c, &m, &e)) {
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
		session_flush_synthesized(c, s);
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
		session_protocol_violation(c, "invalid Bind message");
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
		session_protocol_violation(c, type == 'D' ? "invalid Describe message"
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
		session_flush_synthesized(c, s);
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

/* One complete message from the client, linked to server s. 0, or -1 if the session ended. */
static int handle_message(client_t *c, server_t *s, uint8_t type, pbuf_t *in, size_t total,
                          bool calm)
{
	const uint8_t *msg;
	int rc = 0;

	if (c->skip_until_sync && type != 'S') {
		pbuf_drain(in, total);
		return 0;
	}
	if (s->batch_failed &&
	    (type == 'P' || type == 'B' || type == 'D' || type == 'C' || type == 'E')) {
		/* the server skips it up to the Sync, answering nothing: it is not sent, so that
		 * nothing waits for its answer (the failure's skip_to_sync has already run) */
		pbuf_drain(in, total);
		return 0;
	}

	switch (type) {
	case 'Q': {
		const char *sql;

		msg = pbuf_pullup(in, (ev_ssize_t)total);
		if (msg == NULL || wire_parse_query(msg + 5, total - 5, &sql) < 0) {
			session_protocol_violation(c, "invalid Query message");
			return -1;
		}
		if (!calm)
			forward_apply_effects(c, sql, total - 6);
		s->unnamed_gen = 0; /* a simple query drops the unnamed statement */
		if (pending_push(&s->pending, 'Q', PEND_FORWARD, 0, NULL, NULL) < 0)
			rc = -1;
		else
			rc = (sbuf_move(&s->sb, in, total) ? 0 : -1);
		return rc;
	}
	case 'P':
	case 'B':
	case 'D':
	case 'C':
		msg = pbuf_pullup(in, (ev_ssize_t)total);
		if (msg == NULL)
			return -1;
		if (type == 'P')
			rc = handle_parse(c, s, msg, total);
		else if (type == 'B')
			rc = handle_bind(c, s, msg, total);
		else
			rc = handle_describe_close(c, s, type, msg, total);
		if (!c->closing)
			pbuf_drain(in, total);
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
	return (sbuf_move(&s->sb, in, total) ? 0 : -1);
}

/*
 * Get a server of `shard` (of node, a replica; NULL: its primary) into
 * c->links: 1 now, 0 later (the client is resumed), -1 failed.
 */
static int acquire(client_t *c, int shard, const node_t *node)
{
	pool_t *p;

	if (session_link(c, shard) != NULL)
		return 1;
	if (node != NULL) {
		p = pool_get_node(c->worker, node, c->database, c->user);
	} else if (c->primary_pool != NULL && c->primary_pool_shard == shard &&
	           c->primary_pool_gen == c->worker->pools_gen) {
		p = c->primary_pool; /* pools live as long as their worker */
	} else {
		p = pool_get(c->worker, shard, c->database, c->user);
		c->primary_pool = p;
		c->primary_pool_shard = shard;
		c->primary_pool_gen = c->worker->pools_gen;
	}
	if (p == NULL) {
		session_fail_status(c, PX_NOMEM);
		return -1;
	}
	if (pool_acquire(p, c) == 1)
		return c->closing ? -1 : 1;
	return c->closing ? -1 : 0;
}

int forward_use_shard(client_t *c, int shard)
{
	return forward_use_node(c, shard, NULL);
}

/* Whether s, a server of the shard, may run what was meant for node (NULL: the primary). */
static bool serves(const server_t *s, const node_t *node)
{
	return s->pool->role == NODE_PRIMARY ||
	       (node != NULL && s->pool->role == node->role && s->pool->node_id == node->id);
}

int forward_use_node(client_t *c, int shard, const node_t *node)
{
	server_t *cur = c->server, *s;
	int r;

	if (cur != NULL && cur->pool->shard == shard && serves(cur, node))
		return 1;
	if (cur != NULL && (cur->pending.count > 0 || cur->syncing_params || cur->unsynced))
		return 0; /* it answers first; its ReadyForQuery resumes the client */
	s = session_link(c, shard);
	if (s != NULL && !serves(s, node)) {
		/*
		 * A replica's link: its read ends first, and its ReadyForQuery
		 * releases it. One that has ended and is still held (nothing else
		 * would release it) goes back to its pool now.
		 */
		if (!session_release_idle(c))
			return 0;
		if (c->closing)
			return -1;
		s = NULL;
	}
	c->server = NULL;
	if (s != NULL) {
		c->server = s;
		return 1;
	}
	r = acquire(c, shard, node);
	if (r == 1)
		c->server = session_link(c, shard);
	return r;
}

/* Pass the head message to the current server, unchanged or as prepare.c rewrites it. */
int forward_message(client_t *c, uint8_t type, pbuf_t *in, size_t total)
{
	server_t *s = c->server;
	bool calm;

	if (pbuf_get_length(s->sb.out) > PROXY_HIGH_WATERMARK) {
		/* backpressure: read no more from the client until the server drains */
		c->wait_server_drain = true;
		sbuf_pause(&c->sb);
		return STEP_WAIT;
	}
	/* the plan, when there is one, is the head message's: the plan cache may know it calm */
	calm = type == 'Q' && c->have_plan && c->plan.calm;
	c->have_plan = false;
	if (handle_message(c, s, type, in, total, calm) < 0) {
		if (!c->closing)
			session_fail_status(c, PX_SEND);
		return STEP_FAIL;
	}
	return STEP_NEXT;
}

/*
 * Hold a link to every shard in `want` for a fan-out: 1 when all are held
 * (and none is current), 0 to wait (for the current server to answer, or
 * for a pool), -1 on failure. The links gathered so far stay held.
 */
int forward_gather_links(client_t *c, const shard_set_t *want)
{
	const cfg_t *cfg = context_cfg(c->worker);

	if (c->server != NULL && (c->server->pending.count > 0 || c->server->syncing_params))
		return 0;
	c->phase = PH_GATHERING;
	for (int i = 0; i < cfg->n_shards; i++) {
		int r;

		if (!shard_set_has(want, i))
			continue;
		r = acquire(c, i, NULL);
		if (r != 1)
			return r;
	}
	c->phase = PH_IDLE;
	c->server = NULL;
	return 1;
}
