/*
 * stmtlog.c — slow statements in the log (see stmtlog.h).
 *
 * What counts is what the client waits: from the message that starts a
 * statement (a Query, or the first message of an extended-protocol batch)
 * to the ReadyForQuery that answers it, waiting for a server included. A
 * query string of several statements, or a batch up to its Sync, is one
 * entry. Nothing is kept when the setting is off (-1); when it is on, a
 * client keeps one small record, reused statement after statement.
 */
#include "proxy/stmtlog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/context.h"
#include "proxy/log.h"
#include "proxy/prepare.h"
#include "proxy/stats.h"
#include "proxy/wire.h"
#include "router/shardmap.h"

struct stmtlog {
	bool active;
	uint64_t started_us;
	shard_set_t shards;
	char text[STMTLOG_TEXT_MAX + 4]; /* "..." when cut */
};

/* The SQL a statement's first message runs (never its parameter values). */
static void statement_text(client_t *c, uint8_t type, const uint8_t *msg, size_t total, char *out,
                           size_t size)
{
	const uint8_t *body = msg + WIRE_HEADER_LEN;
	size_t len = total - WIRE_HEADER_LEN;
	const char *sql = NULL;

	switch (type) {
	case 'Q':
		if (wire_parse_query(body, len, &sql) < 0)
			sql = NULL;
		break;
	case 'P': {
		wire_parse_msg_t m;

		if (wire_parse_parse(body, len, &m) == 0)
			sql = m.query;
		break;
	}
	case 'B': {
		wire_bind_msg_t m;
		ps_entry_t *e;

		if (wire_parse_bind(body, len, &m) < 0)
			break;
		e = ps_client_get(c, m.stmt);
		if (e != NULL) {
			sql = e->query;
		} else {
			snprintf(out, size, "(prepared statement \"%s\")", m.stmt);
			return;
		}
		break;
	}
	default:
		break;
	}
	if (sql == NULL) {
		snprintf(out, size, "(protocol message '%c')", type);
		return;
	}
	log_statement_text(out, size, sql, STMTLOG_TEXT_MAX);
}

void stmtlog_begin(client_t *c, uint8_t type, pbuf_t *in, size_t total)
{
	struct stmtlog *l = c->stmtlog;
	const uint8_t *msg;

	if ((l != NULL && l->active) || c->admin)
		return; /* the console answers without ReadyForQuery going through session.c */
	if (context_cfg(c->worker)->log_min_duration_statement_ms < 0)
		return;
	if (l == NULL) {
		l = c->stmtlog = calloc(1, sizeof(*l));
		if (l == NULL)
			return; /* not logged: nothing else depends on it */
	}
	msg = pbuf_pullup(in, (ev_ssize_t)total);
	if (msg == NULL)
		return;
	l->active = true;
	l->started_us = stats_now_us();
	shard_set_clear(&l->shards);
	statement_text(c, type, msg, total, l->text, sizeof(l->text));
}

void stmtlog_shard(client_t *c, int shard)
{
	if (c->stmtlog != NULL && c->stmtlog->active)
		shard_set_add(&c->stmtlog->shards, shard);
}

void stmtlog_end(client_t *c)
{
	struct stmtlog *l = c->stmtlog;
	int min_ms = context_cfg(c->worker)->log_min_duration_statement_ms;
	uint64_t us;
	char shards[256];
	size_t used = 0;

	if (l == NULL || !l->active)
		return;
	l->active = false;
	us = stats_now_us() - l->started_us;
	if (min_ms < 0 || us < (uint64_t)min_ms * 1000)
		return;
	shards[0] = '\0';
	for (int i = 0; i < SHARD_MAX && used + 16 < sizeof(shards); i++) {
		if (shard_set_has(&l->shards, i))
			used += (size_t)snprintf(shards + used, sizeof(shards) - used, "%s%d",
			                         used ? "," : "", i);
	}
	log_msg(LOG_INFO, c->id, c->server != NULL ? c->server->id : 0,
	        "duration: %llu.%03llu ms shards: %s statement: %s",
	        (unsigned long long)(us / 1000), (unsigned long long)(us % 1000),
	        used ? shards : "none", l->text);
}

void stmtlog_free(client_t *c)
{
	free(c->stmtlog);
	c->stmtlog = NULL;
}
