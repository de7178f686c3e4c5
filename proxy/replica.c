/*
 * replica.c — which node serves a session's read, what the session has
 * seen, and its pgshard.* session commands (replica.h; the rules of
 * freshness are causal.h's).
 */
#include "proxy/replica.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/causal.h"
#include "proxy/context.h"
#include "proxy/log.h"
#include "proxy/pending.h"
#include "proxy/pool.h"
#include "proxy/server.h"
#include "proxy/session.h"
#include "proxy/stats.h"
#include "proxy/tx.h"
#include "proxy/wire.h"

/* How long SHOW pgshard.causal_token waits for the checks to bound a session's positions. */
#define TOKEN_WAIT_RETRY_MS 10

static bool has_replicas(const nodes_table_t *t)
{
	return t->n > t->n_shards;
}

static int session_mode(const client_t *c)
{
	return c->replica_reads >= 0 ? c->replica_reads : context_cfg(c->worker)->replica_reads;
}

/* c's positions, one per shard of the worker's config; NULL: out of memory. */
static causal_t *positions(client_t *c)
{
	const nodes_table_t *t = c->worker->cfg->nodes;

	if (c->causal == NULL || c->n_causal < t->n_shards) {
		causal_t *k = realloc(c->causal, sizeof(*k) * (size_t)t->n_shards);

		if (k == NULL)
			return NULL;
		for (int i = c->n_causal; i < t->n_shards; i++)
			causal_init(&k[i]);
		c->causal = k;
		c->n_causal = t->n_shards;
	}
	if (c->causal_nodes != t) {
		/* a reload: node ids may name other nodes now */
		for (int i = 0; i < c->n_causal; i++)
			causal_forget_node(&c->causal[i]);
		c->causal_nodes = t;
	}
	return c->causal;
}

static causal_pos_t pos_of(const worker_t *w, const node_t *n)
{
	const node_state_t *st = n != NULL ? nodes_view_state(w->nodes, n) : NULL;
	causal_pos_t p = {0, 0};

	if (st != NULL && st->health == NODE_UP) {
		p.lsn = st->lsn;
		p.at_us = st->lsn_at_us;
	}
	return p;
}

/* Bound what the checks published since can bound. */
static void settle(client_t *c, causal_t *k, int shard)
{
	const nodes_table_t *t = c->worker->cfg->nodes;
	const node_t *rep = k->rep_node >= 0 && k->rep_node < t->n ? &t->nodes[k->rep_node] : NULL;

	causal_settle(k, pos_of(c->worker, nodes_primary(t, shard)), pos_of(c->worker, rep));
}

void replica_connect_failed(client_t *c, const pool_t *p)
{
	worker_t *w = c->worker;
	int id = p->node_id;

	if (id >= w->n_replica_failed) {
		uint64_t *a = realloc(w->replica_failed_at, sizeof(*a) * (size_t)(id + 1));

		if (a != NULL) {
			memset(a + w->n_replica_failed, 0,
			       sizeof(*a) * (size_t)(id + 1 - w->n_replica_failed));
			w->replica_failed_at = a;
			w->n_replica_failed = id + 1;
		}
	}
	if (id < w->n_replica_failed)
		w->replica_failed_at[id] = stats_now_us();
}

/* A connection to node id failed after the latest check of it was sent. */
static bool failed_since_check(const worker_t *w, int id, const node_state_t *st)
{
	return id < w->n_replica_failed && w->replica_failed_at[id] != 0 &&
	       w->replica_failed_at[id] >= st->lsn_at_us;
}

/* A replica that may serve reads at all: up, in recovery, not too far behind. */
static bool replica_fit(const cfg_t *cfg, const node_state_t *st)
{
	return st != NULL && st->health == NODE_UP && st->in_recovery == 1 && st->lsn != 0 &&
	       st->lag_bytes >= 0 && (size_t)st->lag_bytes <= cfg->max_replica_lag &&
	       st->lag_ms >= 0 && st->lag_ms <= cfg->max_replica_lag_time_ms;
}

static int active_servers(client_t *c, const node_t *n)
{
	pool_t *p = pool_get_node(c->worker, n, c->database, c->user);

	return p != NULL ? pool_count_servers(&p->active) + pool_count_clients(&p->waiting)
	                 : 1 << 30;
}

const node_t *replica_for_read(client_t *c, const route_plan_t *p, int shard)
{
	const cfg_t *cfg = context_cfg(c->worker);
	const nodes_table_t *t = c->worker->cfg->nodes;
	const node_t *fit[16];
	int n_fit = 0, mode = session_mode(c), pick;
	const server_t *held;
	causal_t *k;

	if (mode == CFG_REPLICA_READS_OFF || !p->replica_ok || tx_open(&c->tx) || c->pinned ||
	    shard < 0 || shard >= t->n_shards || nodes_n_replicas(t, shard) == 0 ||
	    (k = positions(c)) == NULL)
		return NULL;
	k = &k[shard];
	settle(c, k, shard);
	held = session_link(c, shard);
	if (held != NULL) {
		/*
		 * A server the session holds there: the primary's, or a replica's
		 * its pool handed over while the session waited for this very
		 * statement. That replica serves it if it still may.
		 */
		const node_t *n;

		if (held->pool->role != NODE_REPLICA || held->pool->node_id >= t->n)
			return NULL;
		n = &t->nodes[held->pool->node_id];
		return replica_fit(cfg, nodes_view_state(c->worker->nodes, n)) &&
		               causal_allows(k, n->id, pos_of(c->worker, n))
		           ? n
		           : NULL;
	}
	for (int i = 0; i < nodes_n_replicas(t, shard) && n_fit < 16; i++) {
		const node_t *n = nodes_replica(t, shard, i);

		const node_state_t *st = nodes_view_state(c->worker->nodes, n);

		if (replica_fit(cfg, st) && !failed_since_check(c->worker, n->id, st) &&
		    causal_allows(k, n->id, pos_of(c->worker, n))) {
			if (n->id == k->rep_node)
				return n; /* where it read before: the same state or newer */
			fit[n_fit++] = n;
		}
	}
	if (mode == CFG_REPLICA_READS_WITH_PRIMARY) {
		/*
		 * The primary is a choice too. A session stays where it read last,
		 * like one on a replica: choosing afresh each time would drift every
		 * busy session to the primary, whose reads keep replicas from the
		 * session until a check bounds them.
		 */
		if (k->on_primary)
			return NULL;
		if (n_fit < 16)
			fit[n_fit++] = NULL;
	}
	if (n_fit == 0)
		return NULL;
	if (cfg->replica_policy == CFG_REPLICA_LEAST_CONNECTIONS) {
		int best = 1 << 30;

		pick = 0;
		for (int i = 0; i < n_fit; i++) {
			int busy =
			    active_servers(c, fit[i] != NULL ? fit[i] : nodes_primary(t, shard));

			if (busy < best) {
				best = busy;
				pick = i;
			}
		}
	} else {
		pick = (int)(c->worker->replica_rr++ % (uint64_t)n_fit);
	}
	return fit[pick];
}

void replica_statement_ended(client_t *c, server_t *s)
{
	const nodes_table_t *t = c->worker->cfg->nodes;
	causal_t *k;
	int shard = s->pool->shard;

	if (!has_replicas(t) || shard >= t->n_shards || (k = positions(c)) == NULL)
		return;
	if (s->pool->role == NODE_REPLICA) {
		c->worker->replica_reads_served++;
		causal_ran(&k[shard], s->pool->node_id, stats_now_us());
	} else {
		causal_ran(&k[shard], -1, stats_now_us());
	}
}

int replica_keep_read(client_t *c, pbuf_t *in, size_t total)
{
	replica_drop_read(c);
	if (total > c->read_again_cap) {
		uint8_t *b = realloc(c->read_again, total);

		if (b == NULL)
			return -1;
		c->read_again = b;
		c->read_again_cap = total;
	}
	if (pbuf_copyout(in, c->read_again, total) != (ev_ssize_t)total)
		return -1;
	c->read_again_len = total;
	return 0;
}

/* The buffers stay for the session's next read. */
void replica_drop_read(client_t *c)
{
	c->read_again_len = 0;
	if (c->read_desc != NULL)
		pbuf_drain(c->read_desc, pbuf_get_length(c->read_desc));
}

/*
 * Whether the NoticeResponse at the head of in is a server's last word
 * (class 57, operator intervention: an immediate shutdown, another
 * process's crash).
 */
static bool notice_of_going_away(pbuf_t *in, size_t total)
{
	const uint8_t *m = pbuf_pullup(in, (ev_ssize_t)total);
	const char *code =
	    m != NULL ? wire_error_field(m + WIRE_HEADER_LEN, total - WIRE_HEADER_LEN, 'C') : NULL;

	return code != NULL && strncmp(code, "57", 2) == 0;
}

int replica_reply_message(client_t *c, uint8_t type, pbuf_t *in, size_t total)
{
	switch (type) {
	case 'N':
		if (!notice_of_going_away(in, total))
			return 0;
		pbuf_drain(in, total); /* its read goes again: nothing to tell */
		return 1;
	case 'S':
	case 'A':
		return 0;
	case 'T':
		if (c->read_desc == NULL && (c->read_desc = pbuf_new()) == NULL)
			return -1;
		if (pbuf_get_length(c->read_desc) == 0) {
			/* sent before the statement runs: the client gets it with what follows */
			if (pbuf_remove_buffer(in, c->read_desc, total) != (int)total)
				return -1;
			return 1;
		}
		break;
	default:
		break;
	}
	if (c->read_desc != NULL && pbuf_get_length(c->read_desc) > 0 &&
	    !sbuf_move(&c->sb, c->read_desc, pbuf_get_length(c->read_desc)))
		return -1;
	replica_drop_read(c);
	return 0;
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
	client_t *c = arg;

	(void)fd;
	(void)what;
	c->ops->resume(c);
}

/*
 * Whether the read is all a replica server owes: its Query and perhaps the
 * settings sync before it, nothing pipelined behind.
 */
static bool only_the_read(const pending_queue_t *q)
{
	int reads = 0;

	for (uint32_t i = 0; i < q->count; i++) {
		const pending_t *e = pending_nth(q, i);

		if (e->msg != 'Q')
			return false;
		if (e->action != PEND_SWALLOW)
			reads++;
	}
	return reads == 1;
}

bool replica_read_lost(client_t *c, server_t *s)
{
	struct timeval now = {0, 0};

	if (c->read_again_len == 0 || c->server != s || s->pool->role != NODE_REPLICA ||
	    !only_the_read(&s->pending) || c->closing) {
		replica_drop_read(c);
		return false;
	}
	if ((c->token_ev == NULL &&
	     (c->token_ev = evtimer_new(c->worker->base, resume_cb, c)) == NULL) ||
	    pbuf_prepend(c->sb.in, c->read_again, c->read_again_len) < 0) {
		replica_drop_read(c);
		return false;
	}
	log_msg(LOG_WARNING, c->id, s->id,
	        "replica %s:%d lost during a read that had not answered: the read goes again",
	        s->pool->host, s->pool->port);
	replica_drop_read(c);
	replica_connect_failed(c, s->pool);
	session_unlinked(c, s);
	/* on the next turn of the loop, once s is closed */
	evtimer_add(c->token_ev, &now);
	return true;
}

int replica_ask_position(client_t *c, server_t *s, char status)
{
	const nodes_table_t *t = c->worker->cfg->nodes;
	int shard = s->pool->shard;
	causal_t *k;

	if (status != 'I' || s->pool->role != NODE_PRIMARY || c->closing || c->pinned ||
	    c->phase != PH_IDLE || session_mode(c) != CFG_REPLICA_READS_ON ||
	    shard >= t->n_shards || nodes_n_replicas(t, shard) == 0 || (k = positions(c)) == NULL)
		return 0;
	if (server_query(s, &c->worker->scratch, "SELECT pg_catalog.pg_current_wal_insert_lsn()",
	                 'w', PEND_SWALLOW) < 0)
		return -1;
	k[shard].asked_at_us = stats_now_us();
	return 1;
}

void replica_position_row(client_t *c, server_t *s, const uint8_t *body, size_t len)
{
	char text[64];
	const char *end;
	uint64_t lsn;
	int32_t n;
	causal_t *k = positions(c);
	int shard = s->pool->shard;

	/* one column: int16 count, int32 length, the text */
	if (k == NULL || shard >= c->n_causal || len < 6 || wire_be16(body) != 1)
		return;
	n = (int32_t)wire_be32(body + 2);
	if (n <= 0 || (size_t)n >= sizeof text || (size_t)n > len - 6)
		return;
	memcpy(text, body + 6, (size_t)n);
	text[n] = '\0';
	if (causal_lsn_parse(text, &lsn, &end) && *end == '\0')
		causal_bound(&k[shard], lsn, k[shard].asked_at_us);
}

void replica_client_free(client_t *c)
{
	free(c->read_again);
	c->read_again = NULL;
	c->read_again_len = c->read_again_cap = 0;
	if (c->read_desc != NULL) {
		pbuf_free(c->read_desc);
		c->read_desc = NULL;
	}
	free(c->causal);
	c->causal = NULL;
	c->n_causal = 0;
	if (c->token_ev != NULL) {
		event_free(c->token_ev);
		c->token_ev = NULL;
	}
}

/* ---- session commands ---- */

static int parse_mode(const char *v)
{
	if (strcasecmp(v, "off") == 0 || strcasecmp(v, "false") == 0)
		return CFG_REPLICA_READS_OFF;
	if (strcasecmp(v, "on") == 0 || strcasecmp(v, "true") == 0)
		return CFG_REPLICA_READS_ON;
	if (strcasecmp(v, "with_primary") == 0)
		return CFG_REPLICA_READS_WITH_PRIMARY;
	return -1;
}

static const char *mode_name(int m)
{
	return m == CFG_REPLICA_READS_ON             ? "on"
	       : m == CFG_REPLICA_READS_WITH_PRIMARY ? "with_primary"
	                                             : "off";
}

/* Raise c's positions to a token's. false: not a token. */
static bool take_token(client_t *c, const char *token)
{
	causal_t *k = positions(c);

	return k != NULL && causal_token_read(k, c->n_causal, token);
}

bool replica_startup_param(client_t *c, const char *name, const char *value, const char **error)
{
	*error = NULL;
	if (strcmp(name, "pgshard.causal_token") == 0) {
		if (!take_token(c, value))
			*error =
			    "invalid value for parameter \"pgshard.causal_token\" (expected what "
			    "SHOW pgshard.causal_token gave)";
		return true;
	}
	if (strcmp(name, "pgshard.replica_reads") == 0) {
		int m = parse_mode(value);

		if (m < 0)
			*error =
			    "invalid value for parameter \"pgshard.replica_reads\" (expected off, "
			    "on or with_primary)";
		else
			c->replica_reads = m;
		return true;
	}
	return false;
}

/*
 * The session's token, once every shard's positions are bounded: 1 with
 * it in buf, 0 not yet (c is resumed shortly), -1 out of memory.
 */
static int write_token(client_t *c, char *buf, size_t len)
{
	causal_t *k = positions(c);
	struct timeval tv = {0, TOKEN_WAIT_RETRY_MS * 1000};
	bool settled = true;

	if (k == NULL)
		return -1;
	for (int i = 0; i < c->n_causal; i++) {
		settle(c, &k[i], i);
		settled &= causal_settled(&k[i]);
	}
	if (settled) {
		c->token_wait_us = 0;
		return causal_token_write(k, c->n_causal, buf, len) ? 1 : -1;
	}
	if (c->token_wait_us == 0)
		c->token_wait_us = stats_now_us();
	if (c->token_ev == NULL &&
	    (c->token_ev = evtimer_new(c->worker->base, resume_cb, c)) == NULL)
		return -1;
	evtimer_add(c->token_ev, &tv);
	return 0;
}

/* One row, one text column: a SHOW's answer (its ReadyForQuery follows). */
static int reply_show(client_t *c, const char *column, const char *value)
{
	wire_buf_t *b = &c->worker->scratch;

	wire_buf_reset(b);
	wire_begin(b, 'T');
	wire_put_i16(b, 1);
	wire_put_cstring(b, column);
	wire_put_i32(b, 0);
	wire_put_i16(b, 0);
	wire_put_i32(b, 25); /* text */
	wire_put_i16(b, -1);
	wire_put_i32(b, -1);
	wire_put_i16(b, 0);
	wire_end(b);
	wire_begin(b, 'D');
	wire_put_i16(b, 1);
	wire_put_i32(b, (int32_t)strlen(value));
	wire_put_bytes(b, value, strlen(value));
	wire_end(b);
	wire_begin(b, 'C');
	wire_put_cstring(b, "SHOW");
	wire_end(b);
	if (b->failed)
		return -1;
	sbuf_write(&c->sb, b->data, b->len);
	return 0;
}

static int answer(client_t *c, pbuf_t *in, size_t total, int rc)
{
	if (rc < 0)
		return STEP_FAIL;
	return session_end_sql_statement(c, in, total);
}

int replica_command(client_t *c, const char *sql, pbuf_t *in, size_t total)
{
	char name[64], value[CAUSAL_TOKEN_MAX];
	causal_verb_t verb = causal_parse_command(sql, name, sizeof name, value, sizeof value);
	bool token;

	if (verb == CAUSAL_NOT_OURS)
		return -2;
	if (c->server != NULL && c->server->pending.count > 0)
		return STEP_WAIT; /* answered in order, after what the server still owes */
	if (verb == CAUSAL_BAD)
		return answer(c, in, total,
		              session_reply_error(c, "42601",
		                                  "pgshard: cannot read this pgshard.* command: "
		                                  "expected SET pgshard.NAME = 'value', RESET "
		                                  "pgshard.NAME or SHOW pgshard.NAME alone"));
	token = strcmp(name, "causal_token") == 0;
	if (!token && strcmp(name, "replica_reads") != 0)
		return answer(c, in, total,
		              session_reply_error(c, "42704",
		                                  "unrecognized configuration parameter "
		                                  "\"pgshard.%s\" (pgshard has causal_token and "
		                                  "replica_reads)",
		                                  name));
	switch (verb) {
	case CAUSAL_SHOW:
		if (token) {
			int r = write_token(c, value, sizeof value);

			if (r == 0 &&
			    stats_now_us() - c->token_wait_us <
			        (uint64_t)context_cfg(c->worker)->server_connect_timeout_ms * 1000)
				return STEP_WAIT;
			c->token_wait_us = 0;
			if (r == 0)
				return answer(
				    c, in, total,
				    session_reply_error(c, "55000",
				                        "pgshard: the WAL position of a shard's "
				                        "primary is not known (is it down?); "
				                        "no causal token can be given"));
			return answer(c, in, total,
			              r < 0 ? -1 : reply_show(c, "causal_token", value));
		}
		return answer(c, in, total,
		              reply_show(c, "replica_reads", mode_name(session_mode(c))));
	case CAUSAL_RESET:
		if (!token)
			c->replica_reads = -1;
		/* a token given cannot be taken back: positions only grow */
		return answer(c, in, total, session_reply_tag(c, "RESET"));
	case CAUSAL_SET:
		if (token && !take_token(c, value))
			return answer(
			    c, in, total,
			    session_reply_error(c, "22023",
			                        "invalid value for parameter "
			                        "\"pgshard.causal_token\": \"%.100s\" (expected "
			                        "what SHOW pgshard.causal_token gave)",
			                        value));
		if (!token) {
			int m = parse_mode(value);

			if (m < 0)
				return answer(
				    c, in, total,
				    session_reply_error(c, "22023",
				                        "invalid value for parameter "
				                        "\"pgshard.replica_reads\": \"%.40s\" "
				                        "(expected off, on or with_primary)",
				                        value));
			c->replica_reads = m;
		}
		return answer(c, in, total, session_reply_tag(c, "SET"));
	default:
		return STEP_FAIL;
	}
}
