/*
 * server.c — one connection to a PostgreSQL backend: connect, start up,
 * authenticate (trust, cleartext, md5, SCRAM-SHA-256), then either sit idle
 * in its pool or relay for the client it is linked to (client.c reads its
 * replies).
 */
#include "proxy/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "proxy/auth.h"
#include "proxy/context.h"
#include "proxy/log.h"
#include "proxy/nodes.h"
#include "proxy/params.h"
#include "proxy/pending.h"
#include "proxy/prepare.h"
#include "proxy/sbuf.h"
#include "proxy/tx.h"
#include "proxy/wire.h"

static void server_read_cb(void *arg);
static void server_event_cb(void *arg, sbuf_event_t what);

/* The server took what was queued for it: a client paused on backpressure may go on. */
static void server_write_cb(void *arg)
{
	server_t *s = arg;

	if (s->state == SV_ACTIVE && s->client != NULL &&
	    (s->client->wait_server_drain || s->client->fan != NULL))
		s->client->ops->resume(s->client);
}

void server_free(server_t *s)
{
	sbuf_close(&s->sb);
	params_free(&s->reported);
	ps_server_free(s);
	pending_clear(&s->pending);
	free(s->pending.items);
	free(s->scram);
	free(s->sync_error);
	free(s->unnamed_copy);
	free(s);
}

/* Out of its pool (already), onto the worker's closed list: freed after this callback. */
static void server_retire(server_t *s)
{
	worker_t *w = s->pool->worker;

	sbuf_shutdown(&s->sb);
	s->pool->stats.bytes_in += s->sb.n_in; /* a live server's bytes are in its sbuf */
	s->pool->stats.bytes_out += s->sb.n_out;
	s->state = SV_CLOSED;
	s->client = NULL;
	TAILQ_INSERT_TAIL(&w->closed_servers, s, link);
	context_reap_later(w);
}

/* Remove from the pool and close. The linked client, if any, must be told first. */
void server_close(server_t *s, const char *why)
{
	if (s->state == SV_CLOSED)
		return;
	log_msg(LOG_DEBUG, 0, s->id, "closing server connection: %s", why);
	s->events->gone(s, why, NULL, 0);
	server_retire(s);
}

int server_send(server_t *s, const void *data, size_t len)
{
	return sbuf_write(&s->sb, data, len);
}

void server_keep_sync_error(server_t *s, const uint8_t *body, size_t len)
{
	if (s->sync_error != NULL)
		return;
	s->sync_error = malloc(len);
	if (s->sync_error != NULL) {
		memcpy(s->sync_error, body, len);
		s->sync_error_len = len;
	}
}

void server_swallowed_ready(server_t *s, uint64_t params_hash, char status)
{
	pending_t *head = pending_head(&s->pending);

	server_note_ready(s, status); /* while it still shows what ended: a sync or not */
	if (head != NULL && head->msg == 'Q' && s->syncing_params) {
		/* a failed sync is the statement's error (its caller kept it), not the session's */
		s->syncing_params = false;
		s->params_hash = s->sync_error == NULL ? params_hash : 0;
		free(s->sync_error);
		s->sync_error = NULL;
	}
	pending_pop(&s->pending);
}

/*
 * Whether the statement whose ReadyForQuery s sends now is one the proxy
 * runs for itself and that shows the client no data: a settings sync, a
 * column lookup (inscols.c), the question for a primary's WAL position
 * (replica.c). The proxy's other statements (BEGIN replayed, two-phase
 * commit, a row moved) are the client's.
 */
static bool ends_own_statement(server_t *s)
{
	const pending_t *head = pending_head(&s->pending);

	return head != NULL && head->action == PEND_SWALLOW &&
	       ((s->syncing_params && head->msg == 'Q') || head->msg == 'k' || head->msg == 'w');
}

/*
 * A ReadyForQuery from s, whoever reads its replies: the one place where a
 * statement (and, with status idle, a transaction) ends on a shard, so the
 * one place they are counted (not the proxy's own: ends_own_statement).
 * Called before its pending entry is popped.
 */
void server_note_ready(server_t *s, char status)
{
	stats_counters_t *st = &s->pool->stats;
	pending_queue_t *q = &s->pending;
	bool own = ends_own_statement(s);

	s->tx_status = status;
	if (!own && s->client != NULL && s->client->ops->statement_ended != NULL)
		s->client->ops->statement_ended(s->client, s);
	if (!own) {
		st->statements++;
		if (status == 'I')
			st->transactions++;
	}
	if (q->started_us != 0) {
		uint64_t now = stats_now_us();

		if (!own)
			stats_hist_add(&st->latency, now - q->started_us);
		/* a statement sent behind this one (pipelined) starts now */
		q->started_us = q->count > 1 ? now : 0;
	}
}

/* An ErrorResponse from s (its body): counted, and logged with its SQLSTATE. */
void server_note_error(server_t *s, const uint8_t *body, size_t len, log_origin_t origin)
{
	static const char *const whose[] = {
	    [LOG_BY_CLIENT] = "",
	    [LOG_BY_PROXY] = "pgshard's own statement failed: ",
	    [LOG_BY_PROBE] = "pgshard's probe: ",
	};
	const char *code = wire_error_field(body, len, 'C');
	const char *msg = wire_error_field(body, len, 'M');
	const char *sev = wire_error_field(body, len, 'V');
	log_level_t level = log_server_error_level(sev, code, origin);
	char shown[512];

	s->pool->stats.errors++;
	if (level > g_log_level)
		return;
	log_error_message(shown, sizeof(shown), code, msg != NULL ? msg : "");
	log_msg(level, s->client != NULL ? s->client->id : 0, s->id, "shard %d: %s%s %s: %s",
	        s->pool->shard, whose[origin], sev != NULL ? sev : "ERROR",
	        code != NULL ? code : "?????", shown);
}

int server_query(server_t *s, wire_buf_t *b, const char *sql, uint8_t pend_msg,
                 pending_action_t action)
{
	wire_buf_reset(b);
	wire_begin(b, 'Q');
	wire_put_cstring(b, sql);
	if (wire_end(b) < 0 || pending_push(&s->pending, pend_msg, action, 0, NULL, NULL) < 0)
		return -1;
	s->unnamed_gen = 0; /* a simple query drops the unnamed statement */
	return server_send(s, b->data, b->len);
}

/*
 * Where p's node is. The control thread resolves host names and publishes
 * the addresses (control.c), so a worker loop never waits for a name
 * server. Only when nothing is published for this host yet (a node that a
 * reload has just added, or whose name did not resolve at start-up) is it
 * resolved here, on the loop, as the lesser evil than refusing the client.
 */
static int node_addr(worker_t *w, const pool_t *p, struct sockaddr_storage *ss, socklen_t *len)
{
	struct addrinfo hints, *res = NULL;
	char portstr[16];

	if (nodes_view_addr(w->nodes, p->host, p->port, ss, len))
		return 0;
	log_debug("no address published for %s:%d yet: resolving it on the worker", p->host,
	          p->port);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(portstr, sizeof(portstr), "%d", p->port);
	if (getaddrinfo(p->host, portstr, &hints, &res) != 0 || res == NULL)
		return -1;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = (socklen_t)res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

server_t *server_connect(pool_t *p, const server_events_t *events)
{
	worker_t *w = p->worker;
	const cfg_t *cfg = context_cfg(w);
	struct sockaddr_storage ss;
	socklen_t sslen = 0;
	struct timeval tv;
	wire_buf_t *b = &w->scratch;
	server_t *s;

	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->id = ++w->next_id;
	s->pool = p;
	s->events = events;
	s->state = SV_CONNECT;
	s->tx_status = 'I';
	s->sb.fd = -1;
	TAILQ_INSERT_TAIL(&p->connecting, s, link);
	p->n_connecting++;
	p->n_servers++;

	if (node_addr(w, p, &ss, &sslen) == 0) {
		memcpy(&s->addr, &ss, sslen);
		s->addrlen = sslen;
	}
	if (s->addrlen == 0 ||
	    sbuf_connect(&s->sb, &w->loop, (struct sockaddr *)&ss, sslen, server_read_cb,
	                 server_write_cb, server_event_cb, s) < 0) {
		char why[256];

		snprintf(why, sizeof(why), "cannot connect: %s", strerror(errno));
		s->events->gone(s, why, NULL, 0);
		server_retire(s);
		return NULL;
	}
	tv.tv_sec = cfg->server_connect_timeout_ms / 1000;
	tv.tv_usec = (cfg->server_connect_timeout_ms % 1000) * 1000;
	sbuf_set_timeout(&s->sb, &tv);

	wire_buf_reset(b);
	wire_begin(b, 0);
	wire_put_i32(b, WIRE_PROTOCOL_3_0);
	wire_put_cstring(b, "user");
	wire_put_cstring(b, p->user);
	wire_put_cstring(b, "database");
	wire_put_cstring(b, p->dbname);
	wire_put_u8(b, 0);
	if (wire_end(b) < 0 || sbuf_write(&s->sb, b->data, b->len) < 0) {
		s->events->gone(s, "out of memory", NULL, 0);
		server_retire(s);
		return NULL;
	}
	log_msg(LOG_DEBUG, 0, s->id, "connecting to %s:%d", p->host, p->port);
	return s;
}

/* Login failed: tell waiting clients (with the server's error if it sent one), free. */
static void login_failed(server_t *s, const char *why, const uint8_t *body, size_t len)
{
	log_msg(LOG_WARNING, 0, s->id, "login to %s:%d failed: %s", s->pool->host, s->pool->port,
	        why);
	s->events->gone(s, why, body, len);
	server_retire(s);
}

static int send_password_message(server_t *s, const void *data, size_t len)
{
	wire_buf_t *b = &s->pool->worker->scratch;

	wire_buf_reset(b);
	wire_begin(b, 'p');
	wire_put_bytes(b, data, len);
	if (wire_end(b) < 0)
		return -1;
	return sbuf_write(&s->sb, b->data, b->len);
}

/* Answer an Authentication request. Returns 0, or -1 with *why set. */
static int handle_auth(server_t *s, const uint8_t *body, size_t len, const char **why)
{
	pool_t *p = s->pool;
	int32_t code;
	const uint8_t *data;
	size_t dlen;
	char out[512];

	if (wire_parse_auth(body, len, &code, &data, &dlen) < 0) {
		*why = "malformed authentication request";
		return -1;
	}
	switch (code) {
	case 0: /* AuthenticationOk */
		if (s->scram != NULL && s->scram->state != 3) {
			*why = "server did not prove it knows the SCRAM password";
			return -1;
		}
		return 0;
	case 3: /* cleartext */
		if (p->password == NULL) {
			*why = "server asks for a password and none is configured";
			return -1;
		}
		return send_password_message(s, p->password, strlen(p->password) + 1);
	case 5: /* md5 */
		if (p->password == NULL || dlen != 4) {
			*why = p->password ? "malformed md5 request"
			                   : "server asks for a password and none is configured";
			return -1;
		}
		auth_md5_response(p->user, p->password, data, out);
		return send_password_message(s, out, strlen(out) + 1);
	case 10: { /* SASL: a list of mechanisms */
		wire_buf_t *b = &p->worker->scratch;
		bool offered = false;
		size_t i = 0;

		while (i < dlen && data[i] != 0) {
			const char *mech = (const char *)data + i;
			size_t n = strnlen(mech, dlen - i);

			if (strncmp(mech, AUTH_SCRAM_MECH, n) == 0 && n == strlen(AUTH_SCRAM_MECH))
				offered = true;
			i += n + 1;
		}
		if (!offered || p->password == NULL || strncmp(p->password, "md5", 3) == 0 ||
		    strncmp(p->password, "SCRAM-SHA-256$", 14) == 0) {
			*why = !offered ? "server offers no SASL mechanism pgshard supports"
			                : "SCRAM needs the plain-text password of the backend user";
			return -1;
		}
		s->scram = calloc(1, sizeof(*s->scram));
		if (s->scram == NULL || auth_scram_client_first(s->scram, out, sizeof(out)) < 0) {
			*why = "out of memory";
			return -1;
		}
		wire_buf_reset(b);
		wire_begin(b, 'p');
		wire_put_cstring(b, AUTH_SCRAM_MECH);
		wire_put_i32(b, (int32_t)strlen(out));
		wire_put_bytes(b, out, strlen(out));
		if (wire_end(b) < 0)
			return -1;
		return sbuf_write(&s->sb, b->data, b->len);
	}
	case 11: /* SASLContinue */
		if (s->scram == NULL ||
		    auth_scram_client_final(s->scram, p->password, (const char *)data, dlen, out,
		                            sizeof(out)) < 0) {
			*why = "bad SCRAM server-first-message";
			return -1;
		}
		return send_password_message(s, out, strlen(out));
	case 12: /* SASLFinal */
		if (s->scram == NULL ||
		    auth_scram_client_verify(s->scram, (const char *)data, dlen) < 0) {
			*why = "SCRAM server signature does not match";
			return -1;
		}
		return 0;
	default:
		*why = "server asks for an authentication method pgshard does not support";
		return -1;
	}
}

/* ParameterStatus: remember the value, as the "stmt" of a param_list entry. */
void server_note_parameter(server_t *s, const uint8_t *body, size_t len)
{
	wire_reader_t r;
	const char *name, *value;

	wire_reader_init(&r, body, len);
	if (wire_get_cstring(&r, &name) == 0 && wire_get_cstring(&r, &value) == 0)
		params_set(&s->reported, name, value);
}

/* Login phase: everything up to the first ReadyForQuery. */
static void server_login_read(server_t *s)
{
	pbuf_t *in = s->sb.in;
	size_t max = context_cfg(s->pool->worker)->max_message_size;

	for (;;) {
		uint8_t hdr[WIRE_HEADER_LEN], type;
		size_t total, avail = pbuf_get_length(in);
		const uint8_t *msg;
		const char *why = NULL;

		if (pbuf_copyout(in, hdr, sizeof(hdr)) < (ev_ssize_t)sizeof(hdr))
			return;
		switch (wire_frame(hdr, avail, max, &type, &total)) {
		case WIRE_FRAME_NEED_MORE:
			return;
		case WIRE_FRAME_OK:
			break;
		default:
			login_failed(s, "invalid message length from server", NULL, 0);
			return;
		}
		msg = pbuf_pullup(in, (ev_ssize_t)total);
		if (msg == NULL) {
			login_failed(s, "out of memory", NULL, 0);
			return;
		}
		switch (type) {
		case 'R':
			if (handle_auth(s, msg + 5, total - 5, &why) < 0) {
				login_failed(s, why ? why : "cannot send to server", NULL, 0);
				return;
			}
			break;
		case 'E': {
			const char *m = wire_error_field(msg + 5, total - 5, 'M');
			char whybuf[256];

			snprintf(whybuf, sizeof(whybuf), "%s", m ? m : "error during startup");
			/* copy: the evbuffer goes away with the server */
			uint8_t *copy = malloc(total - 5);

			if (copy != NULL)
				memcpy(copy, msg + 5, total - 5);
			login_failed(s, whybuf, copy, copy ? total - 5 : 0);
			free(copy);
			return;
		}
		case 'S':
			server_note_parameter(s, msg + 5, total - 5);
			break;
		case 'K':
			if (total - 5 == 8) {
				s->backend_pid = wire_be32(msg + 5);
				s->backend_key = wire_be32(msg + 9);
			}
			break;
		case 'Z':
			pbuf_drain(in, total);
			free(s->scram);
			s->scram = NULL;
			sbuf_set_timeout(&s->sb, NULL);
			log_msg(LOG_DEBUG, 0, s->id, "server connection ready (backend pid %d)",
			        s->backend_pid);
			s->events->ready(s);
			return;
		default: /* NoticeResponse, NegotiateProtocolVersion: nothing to do */
			break;
		}
		pbuf_drain(in, total);
	}
}

/*
 * An idle server says nothing unasked but a ParameterStatus, a notice or a
 * notification (nobody listens to the last two now). Anything else means it
 * is out of step with the proxy (an error for a message that expected no
 * answer, a reply nobody waits for): it cannot serve anyone, and is closed.
 */
bool server_read_idle(server_t *s)
{
	pbuf_t *in = s->sb.in;
	uint8_t hdr[WIRE_HEADER_LEN], type;
	size_t total;

	while (pbuf_copyout(in, hdr, sizeof(hdr)) == (ev_ssize_t)sizeof(hdr)) {
		switch (wire_frame(hdr, pbuf_get_length(in), SIZE_MAX / 2, &type, &total)) {
		case WIRE_FRAME_OK:
			break;
		case WIRE_FRAME_NEED_MORE:
			return true;
		default:
			server_close(s, "invalid message length");
			return false;
		}
		if (type == 'S') {
			const uint8_t *msg = pbuf_pullup(in, (ev_ssize_t)total);

			if (msg != NULL)
				server_note_parameter(s, msg + 5, total - 5);
		} else if (type != 'N' && type != 'A') {
			server_close(s, type == 'E' ? "error from idle server"
			                            : "unexpected message from idle server");
			return false;
		}
		pbuf_drain(in, total);
	}
	return true;
}

static void server_read_cb(void *arg)
{
	server_t *s = arg;

	switch (s->state) {
	case SV_CONNECT:
		server_login_read(s);
		break;
	case SV_IDLE:
		server_read_idle(s);
		break;
	case SV_ACTIVE:
		s->client->ops->server_reply(s->client, s);
		break;
	case SV_CLOSED:
		break;
	}
}

static void server_event_cb(void *arg, sbuf_event_t what)
{
	server_t *s = arg;
	const char *why;

	switch (what) {
	case SBUF_CONNECTED: {
		int one = 1;

		setsockopt(s->sb.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		return;
	}
	case SBUF_TIMEOUT:
		why = "timeout";
		break;
	case SBUF_EOF:
		why = "server closed the connection";
		break;
	default:
		why = strerror(s->sb.error);
		break;
	}

	switch (s->state) {
	case SV_CONNECT:
		login_failed(s, why, NULL, 0);
		break;
	case SV_ACTIVE:
		log_msg(LOG_WARNING, s->client->id, s->id, "server connection lost: %s", why);
		s->client->ops->server_lost(s->client, s, why);
		server_close(s, why);
		break;
	case SV_IDLE:
		server_close(s, why);
		break;
	case SV_CLOSED:
		break;
	}
}
