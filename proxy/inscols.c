/*
 * inscols.c — an INSERT ... VALUES into a sharded table without a column
 * list gets one (see inscols.h).
 *
 * PostgreSQL gives the values of such an INSERT to the table's first
 * columns in order, so the INSERT with those columns named is the same
 * statement, and the router can find its key among them. Every shard has
 * the table, so the default shard's catalog says its columns; they are
 * asked once per worker and database (colcache.c) and the INSERT waits for
 * the answer at the head of the client's input, as any message waits for
 * a server. Over the extended protocol the Parse is rewritten, not the
 * Bind: what the client prepared is then the INSERT with its column list
 * everywhere (remembered, prepared on each shard a Bind picks, split per
 * shard with its parameters), and a named statement bound many times is
 * rewritten once.
 */
#include "proxy/inscols.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/colcache.h"
#include "proxy/context.h"
#include "proxy/forward.h"
#include "proxy/pending.h"
#include "proxy/server.h"
#include "proxy/session.h"
#include "proxy/status.h"
#include "proxy/tx.h"
#include "router/route.h"

/* Ask the default shard's catalog for the table's columns: 0 asked or waiting, -1 not. */
static int ask_catalog(client_t *c, const char *query, const char *table)
{
	int r;

	/*
	 * Not in the middle of an extended batch: a Query there would end the
	 * batch's implicit transaction, and the batch's server answers nothing
	 * before the client's Sync. Only the cache serves such an INSERT.
	 */
	if (c->server != NULL && c->server->unsynced)
		return -1;
	r = forward_use_shard(c, context_cfg(c->worker)->default_shard);
	if (r != 1)
		return r == 0 ? 0 : -1;
	free(c->columns_tried);
	c->columns_tried = strdup(table);
	if (c->columns_tried == NULL || colfetch_start(c, table) < 0 ||
	    server_query(c->server, &c->worker->scratch, query, 'k', PEND_SWALLOW) < 0) {
		session_fail_status(c, PX_NOMEM);
		return -1;
	}
	return 0; /* its ReadyForQuery resumes the client (relay.c, colfetch_done) */
}

int inscols_write(client_t *c, const char *sql, route_plan_t *p, char **out)
{
	char *query = NULL, *table = NULL, err[256];
	char *const *cols;
	int n, rc = -1;

	*out = NULL;
	if (c->colfetch != NULL)
		return 0; /* asked already: its answer resumes the client */
	if (route_insert_columns_query(sql, &query, &table, err, sizeof err) < 0)
		return -1;
	if (colcache_get(c->worker, c->database, table, &cols, &n)) {
		if (route_insert_columns(sql, cols, n, out, err, sizeof err) == 0) {
			rc = 1;
		} else if (strstr(err, "more expressions") != NULL) {
			/* PostgreSQL's own answer */
			snprintf(p->sqlstate, sizeof p->sqlstate, "42601");
			snprintf(p->error, sizeof p->error, "%s", err);
		}
		free(c->columns_tried);
		c->columns_tried = NULL;
	} else if (c->columns_tried != NULL && strcmp(c->columns_tried, table) == 0) {
		free(c->columns_tried); /* asked, and the catalog did not say */
		c->columns_tried = NULL;
	} else {
		rc = ask_catalog(c, query, table);
	}
	free(query);
	free(table);
	return rc;
}

/* The head message becomes m's Parse of sql, with m's name and parameter types. */
static int swap_parse(client_t *c, pbuf_t *in, size_t *total, const wire_parse_msg_t *m,
                      const char *sql)
{
	wire_buf_t *b = &c->worker->scratch;

	wire_buf_reset(b);
	wire_begin(b, 'P');
	wire_put_cstring(b, m->name);
	wire_put_cstring(b, sql);
	wire_put_i16(b, m->n_types);
	wire_put_bytes(b, m->types, 4 * (size_t)m->n_types);
	if (wire_end(b) < 0)
		return -1;
	pbuf_drain(in, *total); /* m points into it: not used after this */
	if (pbuf_prepend(in, b->data, b->len) < 0)
		return -1;
	*total = b->len;
	return 0;
}

int inscols_parse(client_t *c, pbuf_t *in, size_t *total, const wire_parse_msg_t *m)
{
	route_plan_t *p = &c->plan;
	char *out;
	int r;

	/* a cheap look first: most Parses are not INSERTs, and in a transaction none is routed */
	if (!route_may_be_insert(m->query, strlen(m->query)) || tx_failed(&c->tx))
		return INSCOLS_NONE;
	if (context_route(c->worker, m->query, NULL, 0, p) < 0)
		return INSCOLS_FAILED;
	if (p->steps[0].kind != ROUTE_STEP_REFUSE || !p->needs_columns)
		return INSCOLS_NONE;
	r = inscols_write(c, m->query, p, &out);
	if (r == 0)
		return c->closing ? INSCOLS_FAILED : INSCOLS_WAIT;
	if (r < 0) {
		if (c->closing)
			return INSCOLS_FAILED;
		return strcmp(p->sqlstate, "42601") == 0 ? INSCOLS_TOO_MANY : INSCOLS_NONE;
	}
	r = swap_parse(c, in, total, m, out);
	free(out);
	return r < 0 ? INSCOLS_FAILED : INSCOLS_REWRITTEN;
}
