/*
 * extended.c — the extended protocol of a client session. A Parse is
 * remembered and answered by the proxy until a Bind, with the parameter
 * values, says which shard runs the statement; the statements before one
 * Sync stay on one shard; a portal on several shards is answered by the
 * proxy and run as a fan-out at its Execute; BEGIN, COMMIT and ROLLBACK
 * over Bind/Execute are the proxy's to answer when no shard needs them.
 */
#include "proxy/extended.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/commit.h"
#include "proxy/context.h"
#include "proxy/cursor.h"
#include "proxy/fanout.h"
#include "proxy/forward.h"
#include "proxy/hotkeys.h"
#include "proxy/inscols.h"
#include "proxy/join.h"
#include "proxy/move.h"
#include "proxy/pending.h"
#include "proxy/prepare.h"
#include "proxy/replica.h"
#include "proxy/server.h"
#include "proxy/session.h"
#include "proxy/tx.h"
#include "proxy/wire.h"
#include "router/route.h"
#include "router/shardmap.h"

/* ---- the extended protocol: a statement is routed at its Bind ---- */

/*
 * PostgreSQL rolls back a batch that fails: what it ran on its server
 * outside a transaction block is undone when the proxy fails it (a ROLLBACK
 * inside the batch's implicit transaction aborts it; its warning is
 * swallowed), and the client's Sync still ends the batch there.
 */
static int undo_batch(client_t *c, server_t *s)
{
	if (server_query(s, &c->worker->scratch, "ROLLBACK", 'Q', PEND_SWALLOW) < 0)
		return -1;
	s->unsynced = false;
	s->executed = false;
	return 0;
}

static int skip_batch(client_t *c, pbuf_t *in, size_t total, int rc)
{
	server_t *s = c->server;

	if (rc >= 0 && s != NULL && s->unsynced && s->executed && !s->batch_failed &&
	    !tx_open(&c->tx) && undo_batch(c, s) < 0)
		rc = -1;
	c->have_plan = false;
	c->skip_until_sync = true;
	pbuf_drain(in, total);
	return rc < 0 ? STEP_FAIL : STEP_NEXT;
}

/*
 * A Parse is not sent anywhere until a Bind says which shard runs it (its
 * parameters may decide): the proxy remembers it and answers ParseComplete.
 * Once a batch (the messages up to a Sync) has a server, the rest of the
 * batch goes there.
 */
int extended_on_parse(client_t *c, pbuf_t *in, size_t total)
{
	const uint8_t *msg = pbuf_pullup(in, (ev_ssize_t)total);
	wire_parse_msg_t m;
	ps_entry_t *e;

	if (msg == NULL || wire_parse_parse(msg + 5, total - 5, &m) < 0) {
		session_protocol_violation(c, "invalid Parse message");
		return STEP_FAIL;
	}
	/* an INSERT without a column list is prepared with one, wherever it goes */
	switch (inscols_parse(c, in, &total, &m)) {
	case INSCOLS_FAILED:
		return STEP_FAIL;
	case INSCOLS_REWRITTEN:
		return extended_on_parse(c, in, total);
	case INSCOLS_WAIT:
		return STEP_WAIT;
	case INSCOLS_TOO_MANY:
		return skip_batch(c, in, total,
		                  session_reply_error(c, "42601", "%s", c->plan.error));
	}
	/* in a batch, or a transaction, the current server parses it (and knows if it failed) */
	if (c->server != NULL && (c->server->unsynced || tx_open(&c->tx)))
		return forward_message(c, 'P', in, total);
	/*
	 * A statement on no sharded or reference table (a catalog query, or SQL
	 * the grammar rejects) runs on the default shard whatever its
	 * parameters: parsed there at once, its errors come where PostgreSQL's do.
	 */
	if (context_route(c->worker, m.query, NULL, 0, &c->plan) < 0)
		return STEP_FAIL;
	/* in a failed transaction only its end can be prepared, as in PostgreSQL */
	if (tx_failed(&c->tx) && !session_aborted_tx_allows(&c->plan))
		return skip_batch(c, in, total, session_reply_aborted(c));
	if (c->plan.kind == ROUTE_DEFAULT && c->plan.txn == ROUTE_TXN_NONE && !tx_open(&c->tx)) {
		int r = forward_use_shard(c, session_step_shard(c, &c->plan.steps[0]));

		if (r != 1)
			return r == 0 ? STEP_WAIT : STEP_FAIL;
		return forward_message(c, 'P', in, total);
	}
	if (!c->plan.calm)
		forward_apply_effects(c, m.query, strlen(m.query));
	if (m.name[0] == '\0') {
		if (forward_remember_unnamed(c, msg, total) < 0)
			return STEP_FAIL;
	} else {
		switch (forward_remember_named(c, &m, &e)) {
		case -1:
			return STEP_FAIL;
		case 1:
			return skip_batch(
			    c, in, total,
			    session_reply_error(
			        c, "42P05", "prepared statement \"%s\" already exists", m.name));
		}
	}
	pbuf_drain(in, total);
	return session_reply(c, '1', NULL) < 0 ? STEP_FAIL : STEP_NEXT;
}

/* The SQL and parameter types of a statement the client named ("" = unnamed). */
static int statement_of(client_t *c, const char *name, wire_parse_msg_t *out)
{
	ps_entry_t *e;

	if (name[0] == '\0') {
		if (c->unnamed_gen == 0)
			return -1;
		return wire_parse_parse(c->unnamed_parse + 5, c->unnamed_parse_len - 5, out);
	}
	e = ps_client_get(c, name);
	if (e == NULL)
		return -1;
	memset(out, 0, sizeof(*out));
	out->name = name;
	out->query = e->query;
	out->types = e->types;
	out->n_types = e->n_types;
	return 0;
}

static bool is_txn_portal(const client_t *c, const char *portal)
{
	return c->txn_portal != NULL && strcmp(c->txn_portal, portal) == 0;
}

/* Route a Bind by its statement and parameter values. */
/*
 * The parameters of a Bind body as the router takes them, with the types of
 * the statement's Parse. *out is `small` (16 entries) or allocated (free it
 * when it is not small). 0, or -1 when the Bind is malformed or memory runs out.
 */
static int bind_values(const uint8_t *body, size_t len, const wire_bind_msg_t *m,
                       const uint8_t *types, int16_t n_types, route_param_t *small,
                       route_param_t **out, int *n)
{
	wire_bind_param_t wsmall[16], *wp = wsmall;
	route_param_t *params = small;

	*n = 0;
	if (wire_bind_params(body, len, m, wp, 16, n) < 0)
		return -1;
	if (*n > 16) {
		params = malloc(sizeof(*params) * (size_t)*n);
		wp = malloc(sizeof(*wp) * (size_t)*n);
		if (params == NULL || wp == NULL || wire_bind_params(body, len, m, wp, *n, n) < 0) {
			free(params);
			free(wp);
			return -1;
		}
	}
	for (int i = 0; i < *n; i++) {
		params[i].data = wp[i].data;
		params[i].len = wp[i].len;
		params[i].format = wp[i].format;
		params[i].type_oid = i < n_types ? (uint32_t)wire_be32(types + 4 * (size_t)i) : 0;
	}
	if (wp != wsmall)
		free(wp);
	*out = params;
	return 0;
}

static int plan_bind(client_t *c, const uint8_t *msg, size_t total, const wire_bind_msg_t *m,
                     const wire_parse_msg_t *st)
{
	route_param_t small[16], *params;
	int n, rc;

	if (bind_values(msg + 5, total - 5, m, st->types, st->n_types, small, &params, &n) < 0)
		return -1;
	rc = context_route(c->worker, st->query, params, n, &c->plan);
	if (params != small)
		free(params);
	if (rc == 0) {
		c->have_plan = true;
		c->txd_ready = false;
		session_check_key_bytes(c, &c->plan);
		hotkeys_note(c->worker->hot, &c->plan);
	}
	return rc;
}

/*
 * A statement on several shards over the extended protocol: the proxy
 * answers its Bind (BindComplete) and remembers the portal; its Describe
 * asks for the RowDescription; its Execute runs it on every shard as a
 * fan-out (fanout_execute), each member with its own Parse/Bind/Execute.
 */
struct fan_portal {
	char *name;
	uint8_t *bind; /* the client's Bind message, whole */
	size_t bind_len;
	char *sql;
	uint8_t *types;
	int16_t n_types;
	route_plan_t plan;
	bool describe;
	char cursor[64]; /* read in parts: the cursor of pgshard's own behind it (cursor.c) */
	struct fan_portal *next; /* parked (c->parked_portals) */
};

/*
 * The portal the client works with is c->fan_portal. A named one, or one
 * read in parts (its cursor declared), is parked while the client works
 * with another, as JDBC does with nested result sets, and taken back when
 * named again; they go at the Sync that ends their transaction.
 */
static void portal_free(struct fan_portal *fp)
{
	free(fp->name);
	free(fp->bind);
	free(fp->sql);
	free(fp->types);
	free(fp);
}

/* The current portal is done with. */
static void fan_portal_drop(client_t *c)
{
	if (c->fan_portal != NULL)
		portal_free(c->fan_portal);
	c->fan_portal = NULL;
}

/* The current portal makes room: parked when it is named or read in parts, else dropped. */
static void fan_portal_park(client_t *c)
{
	struct fan_portal *fp = c->fan_portal;

	if (fp != NULL && (fp->cursor[0] != '\0' || fp->name[0] != '\0')) {
		fp->next = c->parked_portals;
		c->parked_portals = fp;
		c->fan_portal = NULL;
	}
	fan_portal_drop(c);
}

/* The parked portal named so, taken out of the list (NULL: none). */
static struct fan_portal *unpark(client_t *c, const char *portal)
{
	for (struct fan_portal **at = &c->parked_portals; *at != NULL; at = &(*at)->next) {
		struct fan_portal *fp = *at;

		if (strcmp(fp->name, portal) == 0) {
			*at = fp->next;
			fp->next = NULL;
			return fp;
		}
	}
	return NULL;
}

/* Every portal goes (the session ends, or the Sync that ends their transaction). */
void extended_fan_portal_free(client_t *c)
{
	struct fan_portal *fp;

	fan_portal_drop(c);
	while ((fp = c->parked_portals) != NULL) {
		c->parked_portals = fp->next;
		portal_free(fp);
	}
}

/* Whether portal is one on several shards; it becomes the current one. */
static bool is_fan_portal(client_t *c, const char *portal)
{
	struct fan_portal *fp;

	if (c->fan_portal != NULL && strcmp(c->fan_portal->name, portal) == 0)
		return true;
	if ((fp = unpark(c, portal)) == NULL)
		return false;
	fan_portal_park(c);
	c->fan_portal = fp;
	return true;
}

static int keep_fan_portal(client_t *c, const uint8_t *msg, size_t total, const char *portal,
                           const wire_parse_msg_t *st)
{
	struct fan_portal *fp = calloc(1, sizeof(*fp)), *old = unpark(c, portal);

	if (old != NULL)
		portal_free(old); /* a Bind of its name replaces it */
	if (c->fan_portal != NULL && strcmp(c->fan_portal->name, portal) == 0)
		fan_portal_drop(c);
	else
		fan_portal_park(c);
	if (fp == NULL)
		return -1;
	c->fan_portal = fp;
	fp->name = strdup(portal);
	fp->bind = malloc(total);
	fp->sql = strdup(st->query);
	fp->types = malloc(4 * (size_t)st->n_types + 1);
	if (fp->name == NULL || fp->bind == NULL || fp->sql == NULL || fp->types == NULL) {
		fan_portal_drop(c);
		return -1;
	}
	memcpy(fp->bind, msg, total);
	fp->bind_len = total;
	memcpy(fp->types, st->types, 4 * (size_t)st->n_types);
	fp->n_types = st->n_types;
	fp->plan = c->plan;
	return 0;
}

/* Where a Bind's result format codes start: after its parameter formats and values. */
static int bind_results_at(const uint8_t *body, size_t len, size_t tail, size_t *at)
{
	wire_reader_t r;
	int16_t nf, np, nr;
	const uint8_t *skip;

	wire_reader_init(&r, body + tail, len - tail);
	if (wire_get_i16(&r, &nf) < 0 || nf < 0 || wire_get_bytes(&r, 2 * (size_t)nf, &skip) < 0 ||
	    wire_get_i16(&r, &np) < 0 || np < 0)
		return -1;
	for (int i = 0; i < np; i++) {
		int32_t l;

		if (wire_get_i32(&r, &l) < 0 || (l > 0 && wire_get_bytes(&r, (size_t)l, &skip) < 0))
			return -1;
	}
	*at = tail + r.pos;
	if (wire_get_i16(&r, &nr) < 0 || nr < 0 || wire_remaining(&r) != 2 * (size_t)nr)
		return -1;
	return 0;
}

/* The client's Bind of the portal, taken apart for a fan-out. */
static int portal_bind(const struct fan_portal *fp, fanout_bind_t *b, route_param_t *small,
                       route_param_t **values, int *n)
{
	const uint8_t *body = fp->bind + 5;
	size_t len = fp->bind_len - 5, res;
	wire_bind_msg_t bm;

	if (wire_parse_bind(body, len, &bm) < 0 ||
	    bind_results_at(body, len, bm.tail_off, &res) < 0 ||
	    bind_values(body, len, &bm, fp->types, fp->n_types, small, values, n) < 0)
		return -1;
	memset(b, 0, sizeof *b);
	b->params = body + bm.tail_off;
	b->params_len = res - bm.tail_off;
	b->results = body + res;
	b->results_len = len - res;
	b->types = fp->types;
	b->n_types = fp->n_types;
	b->values = *values;
	b->n_values = *n;
	return 0;
}

/* The same for a statement pgshard runs in the portal's place without parameters (FETCH,
 * MOVE, CLOSE): the client's result formats only. */
static int portal_bind_results(const struct fan_portal *fp, fanout_bind_t *b)
{
	static const uint8_t no_params[] = {0, 0, 0, 0};
	const uint8_t *body = fp->bind + 5;
	size_t len = fp->bind_len - 5, res;
	wire_bind_msg_t bm;

	if (wire_parse_bind(body, len, &bm) < 0 ||
	    bind_results_at(body, len, bm.tail_off, &res) < 0)
		return -1;
	memset(b, 0, sizeof *b);
	b->params = no_params;
	b->params_len = sizeof no_params;
	b->results = body + res;
	b->results_len = len - res;
	b->types = fp->types;
	b->describe = fp->describe;
	return 0;
}

/*
 * The first Execute with a row limit of a SELECT on several shards: the
 * portal becomes a cursor of pgshard's own over those shards, declared now
 * with the client's parameters (WITH HOLD outside a transaction block: it
 * is closed at the client's Sync, when PostgreSQL drops the portal). The
 * Execute stays at the head of the client's input, and comes back once the
 * cursor is there. 3 declaring, 1 refused (error sent), 0 wait, -1 failed.
 */
static int declare_portal(client_t *c, struct fan_portal *fp)
{
	const route_step_t *step = route_step_routed(&fp->plan);
	fanout_opts_t o = {.portal_declare = true, .quiet = true};
	route_param_t small[16], *values = small;
	bool hold = !tx_open(&c->tx);
	route_plan_t plan;
	fanout_bind_t b;
	shard_set_t want;
	size_t len = strlen(fp->sql) + 128;
	char *sql = NULL;
	int n = 0, r, rc = -1;

	if (fp->plan.is_write ||
	    (step->kind != ROUTE_STEP_GATHER &&
	     (step->kind != ROUTE_STEP_EACH ||
	      (step->merge != ROUTE_MERGE_SUM && step->merge != ROUTE_MERGE_COUNT)))) {
		fan_portal_drop(c);
		return session_reply_error(
		           c, "0A000",
		           "pgshard: only a SELECT on several shards can be fetched in parts "
		           "(Execute with a row limit, a fetch size); fetch all the rows at once") <
		               0
		           ? -1
		           : 1;
	}
	snprintf(fp->cursor, sizeof fp->cursor, "pgshard_portal_%" PRIu64 "_%" PRIu32, c->id,
	         ++c->portal_seq);
	if (portal_bind(fp, &b, small, &values, &n) < 0 || (sql = malloc(len)) == NULL)
		goto out;
	snprintf(sql, len, "DECLARE %s SCROLL CURSOR%s FOR %s", fp->cursor,
	         hold ? " WITH HOLD" : "", fp->sql);
	if (context_route(c->worker, sql, values, n, &plan) < 0)
		goto out;
	session_check_key_bytes(c, &plan);
	if (route_step_routed(&plan)->kind != ROUTE_STEP_GATHER) {
		fp->cursor[0] = '\0';
		fan_portal_drop(c);
		rc = session_reply_error(
		         c, plan.sqlstate[0] ? plan.sqlstate : "0A000", "pgshard: %s",
		         plan.kind == ROUTE_REFUSE ? plan.error
		                                   : "this SELECT cannot be fetched in parts") < 0
		         ? -1
		         : 1;
		goto out;
	}
	want = route_step_routed(&plan)->shards;
	r = forward_gather_links(c, &want);
	if (r != 1) {
		fp->cursor[0] = '\0'; /* named again when it comes back */
		rc = r;
		goto out;
	}
	c->plan = plan;
	rc = fanout_run(c, sql, false, &b, &o) < 0 ? -1
	     : c->fan != NULL                      ? 3
	                                           : 1; /* refused at once: answered */
out:
	if (values != small)
		free(values);
	free(sql);
	return rc;
}

/*
 * An Execute of a portal read in parts (declare_portal): its cursor's next
 * max_rows rows (0: all), ending with PortalSuspended when that many came.
 * 2 started, 3 declaring first, 1 refused, 0 wait, -1 failed.
 */
static int run_portal_in_parts(client_t *c, int32_t max_rows)
{
	struct fan_portal *fp = c->fan_portal;
	cursor_at_t *cur = fp->cursor[0] != '\0' ? cursor_find(c, fp->cursor) : NULL;
	fanout_opts_t o = {.portal = true, .portal_rows = max_rows};
	route_step_t each;
	fanout_bind_t b;
	shard_set_t want;
	int r, rc;

	if (cur == NULL && fp->cursor[0] != '\0') {
		/* its transaction ended, and the portal with it */
		rc = session_reply_error(c, "34000", "portal \"%s\" does not exist", fp->name);
		fan_portal_drop(c);
		return rc < 0 ? -1 : 1;
	}
	if (cur == NULL)
		return declare_portal(c, fp);
	cursor_fetch_shards(cur, &want);
	c->plan = fp->plan;
	each = route_step_each(&want, ROUTE_MERGE_ONE);
	route_plan_run_step(&c->plan, &each);
	r = forward_gather_links(c, &want);
	if (r != 1)
		return r;
	if (portal_bind_results(fp, &b) < 0) /* the rows come in the client's formats */
		return -1;
	o.cur = cur;
	o.count = max_rows > 0 ? max_rows : -1;
	rc = fanout_run(c, "FETCH", false, &b, &o) < 0 ? -1 : 2;
	fp->describe = false;
	return rc;
}

/*
 * FETCH, MOVE or CLOSE (ALL) of a cursor over several shards, bound as a
 * portal (cursor_route made its step): run at its Execute, the FETCH as
 * client.c runs one sent as a query. 2 started, 1 refused, 0 wait, -1 failed.
 */
static int run_on_cursor(client_t *c, struct fan_portal *fp)
{
	cursor_at_t *cur = cursor_find(c, fp->plan.cursor);
	fanout_opts_t o = {0};
	fanout_bind_t b;
	shard_set_t want = route_step_routed(&fp->plan)->shards;
	int r, rc = -1;

	if (fp->plan.cursor_op == ROUTE_CURSOR_USE && (cur == NULL || fp->plan.fetch_count == 0)) {
		r = cur == NULL ? session_reply_error(c, "34000", "cursor \"%s\" does not exist",
		                                      fp->plan.cursor)
		                : session_reply_error(c, "0A000", CURSOR_FORWARD_ONLY, cur->name);
		fan_portal_drop(c);
		return r < 0 ? -1 : 1;
	}
	r = forward_gather_links(c, &want);
	if (r != 1)
		return r;
	if (portal_bind_results(fp, &b) < 0)
		goto out;
	c->plan = fp->plan;
	if (fp->plan.cursor_op == ROUTE_CURSOR_USE) {
		o.cur = cur;
		o.count = fp->plan.fetch_count;
		o.move = fp->plan.fetch_move;
	}
	rc = fanout_run(c, fp->sql, false, &b, &o) < 0 ? -1 : 2;
	if (rc == 2)
		cursor_ran(c, &fp->plan);
out:
	fan_portal_drop(c);
	return rc;
}

/*
 * Run the remembered portal on its shards (its Execute, with max_rows), or
 * only describe it on one of them (a Describe the batch did not follow with
 * an Execute: the RowDescription of the statement as the client bound it
 * is the same on every shard). 2 started, 1 refused (error sent), 0 wait,
 * -1 failed.
 */
static int run_fan_portal(client_t *c, int32_t max_rows, bool describe_only)
{
	struct fan_portal *fp = c->fan_portal;
	route_param_t small[16], *values = small;
	fanout_bind_t b;
	shard_set_t want;
	int n = 0, r, rc = -1;

	if (fp->plan.cursor_op != ROUTE_CURSOR_NONE && fp->plan.cursor_op != ROUTE_CURSOR_DECLARE &&
	    !describe_only)
		return run_on_cursor(c, fp);
	if ((max_rows != 0 || fp->cursor[0] != '\0') && !describe_only && join_runs(&fp->plan)) {
		/* a portal in parts runs the statement as a cursor on each shard: not a join's */
		fan_portal_drop(c);
		return session_reply_error(c, "0A000",
		                           "pgshard: an Execute with a row limit of a join across "
		                           "shards is not supported yet; execute it without one "
		                           "(fetch all rows)") < 0
		           ? -1
		           : 1;
	}
	if (max_rows != 0 || fp->cursor[0] != '\0')
		return run_portal_in_parts(c, max_rows);
	if (describe_only) {
		/*
		 * One shard describes it, its answer taken as it is; a split stays
		 * a split (the fan-out refuses it over the extended protocol).
		 */
		route_step_t one = *route_step_routed(&fp->plan);
		int first = shard_set_first(&one.shards);

		shard_set_clear(&one.shards);
		shard_set_add(&one.shards, first);
		one.merge = ROUTE_MERGE_ONE;
		/* a join describes as its statement does on any shard: the tables are there */
		if (one.kind == ROUTE_STEP_GATHER || one.kind == ROUTE_STEP_MOVE ||
		    one.kind == ROUTE_STEP_INSERT_SELECT || one.kind == ROUTE_STEP_JOIN)
			one.kind = ROUTE_STEP_EACH;
		route_plan_run_step(&fp->plan, &one);
	}
	if (!describe_only && session_wants_implicit_tx(c, &fp->plan)) {
		if (tx_begin_implicit(&c->tx) < 0)
			return -1;
		session_note_writes(c, &fp->plan);
	}
	want = route_step_routed(&fp->plan)->shards;
	if (move_runs(&fp->plan)) {
		if (!tx_open(&c->tx)) {
			const char *why = move_needs_tx(&fp->plan);

			fan_portal_drop(c);
			return session_reply_error(c, "0A000", "pgshard: %s", why) < 0 ? -1 : 1;
		}
		shard_set_union(&want, &fp->plan.move_to);
	}
	r = forward_gather_links(c, &want);
	if (r != 1)
		return r;
	if (portal_bind(fp, &b, small, &values, &n) < 0)
		goto out;
	b.describe = fp->describe;
	b.describe_only = describe_only;
	c->plan = fp->plan;
	if (move_runs(&fp->plan))
		rc = move_execute(c, fp->sql, &b) < 0 ? -1 : 2;
	else if (join_runs(&fp->plan))
		rc = join_execute(c, fp->sql, &b) < 0 ? -1 : 2;
	else
		rc = fanout_execute(c, fp->sql, &b) < 0 ? -1 : 2;
out:
	if (values != small)
		free(values);
	if (describe_only && rc == 2)
		fp->describe = false; /* described; the portal stays for an Execute */
	else
		fan_portal_drop(c);
	return rc;
}

/*
 * What became of the batch so far (the messages since the last Sync) on the
 * current server, before a message goes elsewhere. PostgreSQL skips
 * everything up to the Sync once a batch failed, so the proxy must know:
 * a server sends an error at once, but other replies only at a Sync or
 * Flush, so it sends a Flush of its own and waits for the answers.
 */
enum { BATCH_NONE, BATCH_WAIT, BATCH_FAILED, BATCH_OK };

static int batch_outcome(client_t *c)
{
	server_t *s = c->server;
	static const uint8_t flush[] = {'H', 0, 0, 0, 4};

	if (s == NULL || !s->unsynced)
		return BATCH_NONE;
	if (s->batch_failed)
		return BATCH_FAILED;
	if (s->pending.count == 0)
		return BATCH_OK;
	if (!s->flushed) {
		if (server_send(s, flush, sizeof(flush)) < 0)
			return BATCH_WAIT;
		s->flushed = true; /* relay.c resumes the client when all is answered */
	}
	return BATCH_WAIT;
}

/*
 * The batch so far ran on another shard. If it only prepared and described
 * there, end it with a Sync of the proxy's own (its ReadyForQuery is
 * swallowed) and go on elsewhere. If it executed something there, the
 * batch goes on in order on each statement's shard (a JDBC batch whose
 * statements go to several shards) as one transaction: in the client's
 * transaction block, which the next shard joins; outside one, in a
 * transaction of pgshard's own that a BEGIN makes of the batch's implicit
 * one there (what ran before it is kept in it), committed at the client's
 * Sync on every shard (extended_end_batch_tx), in two phases when several
 * wrote. 0 go on, -1 refused, 1 wait for the batch's answers, 2 the batch
 * failed (the message is skipped, as PostgreSQL skips it).
 */
int extended_leave_batch(client_t *c, int shard)
{
	server_t *s = c->server;
	static const uint8_t sync[] = {'S', 0, 0, 0, 4};

	if (s == NULL || !s->unsynced || s->pool->shard == shard)
		return 0;
	switch (batch_outcome(c)) {
	case BATCH_WAIT:
		return 1;
	case BATCH_FAILED:
		return 2;
	default:
		break;
	}
	if (s->executed && tx_implicit(&c->tx)) {
		undo_batch(c,
		           s); /* refused (pgshard's own transaction): undone as PostgreSQL would */
		return -1;
	}
	if (s->executed && !tx_open(&c->tx)) {
		/* a BEGIN inside the implicit transaction makes a block of it, with what ran */
		if (server_query(s, &c->worker->scratch, "BEGIN", 'Q', PEND_SWALLOW) < 0)
			return -1;
		s->unsynced = false;
		s->executed = false;
		session_note_status(c, 'T'); /* the session's transaction, this link in it */
		if (c->ext_batch_wrote)
			tx_note_write(&c->tx, s->pool->shard);
		c->ext_batch_tx = true;
		return 0;
	}
	if (pending_push(&s->pending, 'S', PEND_SWALLOW, 0, NULL, NULL) < 0)
		return -1;
	s->unsynced = false;
	return server_send(s, sync, sizeof(sync));
}

/*
 * Whether the batch ends right after this Bind (total bytes at the head of
 * in): what follows, already received, is at most a Describe, its Execute
 * and the Sync. Only such a batch may read on a replica: a later statement
 * of a longer one could need the primary of the same shard while the
 * replica's server is held until the Sync.
 */
static bool bind_ends_batch(pbuf_t *in, size_t total)
{
	size_t len = pbuf_get_length(in), at = total;
	const uint8_t *buf;
	static const char order[] = "DES";
	int step = 0;

	if (len > total + 1024 || (buf = pbuf_pullup(in, (ev_ssize_t)len)) == NULL)
		return false;
	while (at + 5 <= len) {
		uint32_t n = (uint32_t)buf[at + 1] << 24 | (uint32_t)buf[at + 2] << 16 |
		             (uint32_t)buf[at + 3] << 8 | buf[at + 4];

		while (order[step] != '\0' && order[step] != (char)buf[at])
			step++;
		if (order[step] == '\0' || n < 4 || at + 1 + n > len)
			return false;
		if (buf[at] == 'S')
			return true;
		at += 1 + n;
		step++;
	}
	return false;
}

/* A message that leaves the batch's shard: refused (rc -1), waits, or is skipped. */
int extended_left_batch(client_t *c, pbuf_t *in, size_t total, int rc, const char *why)
{
	if (rc == 1)
		return STEP_WAIT;
	if (rc == 2) {
		c->have_plan = false;
		pbuf_drain(in, total);
		return STEP_NEXT;
	}
	return skip_batch(c, in, total, session_reply_error(c, "0A000", "%s", why));
}

int extended_on_bind(client_t *c, pbuf_t *in, size_t total)
{
	const uint8_t *msg = pbuf_pullup(in, (ev_ssize_t)total);
	wire_bind_msg_t m;
	wire_parse_msg_t st;
	route_plan_t *p = &c->plan;
	int shard, r;

	if (msg == NULL || wire_parse_bind(msg + 5, total - 5, &m) < 0) {
		session_protocol_violation(c, "invalid Bind message");
		return STEP_FAIL;
	}
	if (is_txn_portal(c, m.portal)) {
		/* a new portal of that name replaces the one the proxy answered for */
		free(c->txn_portal);
		c->txn_portal = NULL;
	}
	if (statement_of(c, m.stmt, &st) < 0)
		return skip_batch(c, in, total, session_reply_no_statement(c, m.stmt));
	if (!c->have_plan && plan_bind(c, msg, total, &m, &st) < 0) {
		session_protocol_violation(c, "invalid Bind message");
		return STEP_FAIL;
	}
	if (p->steps[0].kind == ROUTE_STEP_REFUSE)
		return skip_batch(c, in, total,
		                  session_reply_error(c, p->sqlstate, "pgshard: %s", p->error));
	if (!c->txd_ready) {
		if (tx_control(&c->tx, p->txn, st.query, p->txn_tag, c->n_links, &c->txd) < 0)
			return STEP_FAIL;
		c->txd_ready = true;
	}
	switch (c->txd.action) {
	case TX_REJECTED:
		return skip_batch(c, in, total, session_reply_aborted(c));
	case TX_ANSWER:
		/* the proxy's to answer: BindComplete now, the tag at the Execute */
		free(c->txn_portal);
		c->txn_portal = strdup(m.portal);
		if (c->txn_portal == NULL)
			return STEP_FAIL;
		snprintf(c->txn_tag, sizeof(c->txn_tag), "%s", c->txd.tag);
		if (p->txn == ROUTE_TXN_BEGIN)
			session_join_held(c);
		c->have_plan = false;
		pbuf_drain(in, total);
		return session_reply(c, '2', NULL) < 0 ? STEP_FAIL : STEP_NEXT;
	case TX_ON_ONE:
		if (!c->txd.as_rollback)
			break; /* the Bind goes to the one participant */
		               /* COMMIT of a failed transaction runs as ROLLBACK, as a query */
		               /* fall through */
	case TX_ON_ALL:
		/* runs on every shard of the transaction at its Execute, as a simple query */
		r = extended_leave_batch(c, -1);
		if (r != 0)
			return extended_left_batch(
			    c, in, total, r,
			    "pgshard: send a Sync before ending a transaction "
			    "that spans several shards");
		if (c->server != NULL && c->server->pending.count > 0)
			return STEP_WAIT;
		free(c->txn_portal);
		free(c->txn_sql);
		c->txn_portal = strdup(m.portal);
		c->txn_sql = strdup(c->txd.as_rollback ? "ROLLBACK" : st.query);
		c->txn_two_phase = c->txd.two_phase && context_cfg(c->worker)->two_phase_commit;
		if (c->txn_portal == NULL || c->txn_sql == NULL)
			return STEP_FAIL;
		c->have_plan = false;
		pbuf_drain(in, total);
		return session_reply(c, '2', NULL) < 0 ? STEP_FAIL : STEP_NEXT;
	case TX_ROUTE:
		break;
	}
	session_note_writes(c, p);
	c->ext_batch_wrote |= p->is_write;

	switch (p->steps[0].kind) {
	case ROUTE_STEP_TXN:
		/* left to routing: to the client's one link when it has one */
		shard = c->n_links == 1 ? session_any_link(c)->pool->shard
		                        : session_step_shard(c, route_step_routed(p));
		break;
	case ROUTE_STEP_ONE:
		shard = session_step_shard(c, &p->steps[0]);
		if (p->cursor_op != ROUTE_CURSOR_NONE) {
			/* where its cursor is; on several shards (-2), at the Execute */
			shard = cursor_route(c, p, shard);
			if (shard == -1)
				return STEP_FAIL;
		}
		break;
	case ROUTE_STEP_BATCH:
		/* several statements in one Parse: the shard refuses them (42601) */
		shard = context_cfg(c->worker)->default_shard;
		break;
	default:
		shard = -1; /* EACH, GATHER and the splits run on several shards */
		break;
	}
	if (shard < 0) {
		/* several shards: the proxy answers the Bind and runs it at the Execute */
		r = extended_leave_batch(c, -1);
		if (r != 0)
			return extended_left_batch(c, in, total, r, BATCH_ONE_SHARD);
		session_note_writes(c, p); /* in the transaction leaving may have opened */
		if (c->server != NULL && c->server->pending.count > 0)
			return STEP_WAIT;
		if (keep_fan_portal(c, msg, total, m.portal, &st) < 0)
			return STEP_FAIL;
		c->have_plan = false;
		pbuf_drain(in, total);
		return session_reply(c, '2', NULL) < 0 ? STEP_FAIL : STEP_NEXT;
	}
	r = extended_leave_batch(c, shard);
	if (r != 0)
		return extended_left_batch(c, in, total, r, BATCH_ONE_SHARD);
	session_note_writes(c, p); /* in the transaction leaving may have opened */
	/* a replica's server may be current: one its pool handed over while the Bind waited */
	r = forward_use_node(c, shard,
	                     p->steps[0].kind == ROUTE_STEP_ONE &&
	                             p->cursor_op == ROUTE_CURSOR_NONE &&
	                             (c->server == NULL || c->server->pool->role == NODE_REPLICA) &&
	                             bind_ends_batch(in, total)
	                         ? replica_for_read(c, p, shard)
	                         : NULL);
	if (r != 1)
		return r == 0 ? STEP_WAIT : STEP_FAIL;
	cursor_ran(c, p);
	return forward_message(c, 'B', in, total);
}

int extended_on_describe_close(client_t *c, uint8_t type, pbuf_t *in, size_t total)
{
	const uint8_t *msg = pbuf_pullup(in, (ev_ssize_t)total);
	wire_target_msg_t m;
	wire_parse_msg_t st;
	const route_step_t *step;
	int shard, r;

	if (msg == NULL || wire_parse_target(msg + 5, total - 5, &m) < 0) {
		session_protocol_violation(c, type == 'D' ? "invalid Describe message"
		                                          : "invalid Close message");
		return STEP_FAIL;
	}
	if (m.kind == 'P' && is_fan_portal(c, m.name)) {
		/* its RowDescription comes with the rows, at its Execute */
		pbuf_drain(in, total);
		if (type == 'D') {
			c->fan_portal->describe = true;
			return STEP_NEXT;
		}
		fan_portal_drop(c);
		return session_reply(c, '3', NULL) < 0 ? STEP_FAIL : STEP_NEXT;
	}
	if (c->server != NULL && c->server->unsynced &&
	    !(m.kind == 'P' && is_txn_portal(c, m.name)))
		return forward_message(c, type, in, total);
	if (type == 'C') {
		if (m.kind == 'S' && m.name[0] == '\0')
			c->unnamed_gen = 0;
		else if (m.kind == 'S')
			ps_client_del(c, m.name); /* stays prepared on servers for others */
		else if (is_txn_portal(c, m.name)) {
			free(c->txn_portal);
			c->txn_portal = NULL;
		} else if (c->server != NULL) {
			return forward_message(c, type, in, total);
		}
		pbuf_drain(in, total);
		return session_reply(c, '3', NULL) < 0 ? STEP_FAIL : STEP_NEXT;
	}
	if (m.kind == 'P') {
		if (is_txn_portal(c, m.name)) {
			pbuf_drain(in, total);
			return session_reply(c, 'n', NULL) < 0 ? STEP_FAIL : STEP_NEXT;
		}
		if (c->server != NULL)
			return forward_message(c, type, in, total);
		return skip_batch(
		    c, in, total,
		    session_reply_error(c, "34000", "portal \"%s\" does not exist", m.name));
	}
	/* a statement describes alike on every shard: where the client is, or where it would run */
	if (statement_of(c, m.name, &st) < 0)
		return skip_batch(c, in, total, session_reply_no_statement(c, m.name));
	if (c->server != NULL) {
		shard = c->server->pool->shard;
	} else if (c->n_links > 0) {
		shard = session_any_link(c)->pool->shard;
	} else {
		if (!c->have_plan) {
			if (context_route(c->worker, st.query, NULL, 0, &c->plan) < 0)
				return STEP_FAIL;
			c->have_plan = true;
		}
		/* the shard of a ONE step, else the first of the step's shards, else the default */
		step = route_step_routed(&c->plan);
		shard = session_step_shard(c, step);
		if (shard < 0)
			shard = shard_set_first(&step->shards) < 0
			            ? context_cfg(c->worker)->default_shard
			            : shard_set_first(&step->shards);
	}
	r = forward_use_shard(c, shard);
	if (r != 1)
		return r == 0 ? STEP_WAIT : STEP_FAIL;
	return forward_message(c, type, in, total);
}

/*
 * A Sync outside a transaction block ends the client's portals: the cursors
 * behind those it read in parts are closed on their shards, and the Sync's
 * ReadyForQuery comes after. -2 when there are none (the Sync goes on).
 */
static int close_portals(client_t *c, pbuf_t *in, size_t total)
{
	fanout_opts_t o = {.quiet = true};
	route_step_t each;
	shard_set_t on;
	char *sql = NULL;
	int r = cursor_close_portals(c, &on, &sql);

	if (r <= 0)
		return r < 0 ? STEP_FAIL : -2;
	/* the portals end with their transaction */
	extended_fan_portal_free(c);
	each = route_step_each(&on, ROUTE_MERGE_ONE);
	route_plan_run_step(&c->plan, &each);
	c->have_plan = false;
	r = forward_gather_links(c, &on); /* held: the cursors kept them */
	if (r == 1) {
		c->skip_until_sync = false;
		r = fanout_run(c, sql, true, NULL, &o) < 0 ? -1 : 1;
	}
	free(sql);
	if (r != 1)
		return r == 0 ? STEP_WAIT : STEP_FAIL;
	pbuf_drain(in, total);
	return STEP_NEXT;
}

/*
 * The client's Sync ends a batch that ran in a transaction of pgshard's own
 * (extended_leave_batch): the current shard's part is ended with a Sync of
 * the proxy's own, then the transaction commits on every shard it touched,
 * in two phases when several wrote, or rolls back when the batch failed
 * (its error went out); the ReadyForQuery comes after.
 */
static int end_batch_tx(client_t *c, pbuf_t *in, size_t total)
{
	static const uint8_t sync[] = {'S', 0, 0, 0, 4};
	server_t *s = c->server;
	bool failed;

	if (s != NULL && s->unsynced) {
		if (pending_push(&s->pending, 'S', PEND_SWALLOW, 0, NULL, NULL) < 0 ||
		    server_send(s, sync, sizeof sync) < 0)
			return STEP_FAIL;
		s->unsynced = false;
		s->batch_failed = false;
	}
	for (int i = 0; i < c->links_cap; i++)
		if (c->links[i] != NULL && c->links[i]->pending.count > 0)
			return STEP_WAIT; /* relay.c resumes the client at their ReadyForQuery */
	/* a statement failed on a shard: its transaction there says so */
	failed = tx_failed(&c->tx);
	for (int i = 0; i < c->links_cap; i++)
		failed |= c->links[i] != NULL && c->links[i]->tx_status == 'E';
	c->ext_batch_tx = c->ext_batch_wrote = false;
	c->skip_until_sync = false;
	c->have_plan = false;
	if (commit_start(c, failed ? COMMIT_ROLLBACK : COMMIT_IMPLICIT, true, NULL) < 0) {
		session_fail_status(c, PX_NOMEM);
		return STEP_FAIL;
	}
	pbuf_drain(in, total);
	return STEP_NEXT;
}

/* Execute, Flush, FunctionCall, Sync and COPY messages. */
int extended_on_other(client_t *c, uint8_t type, pbuf_t *in, size_t total)
{
	if (type == 'S' && c->ext_batch_tx && !tx_open(&c->tx))
		c->ext_batch_tx = false; /* the batch ended it itself (COMMIT, ROLLBACK) */
	if (type == 'S' && c->ext_batch_tx)
		return end_batch_tx(c, in, total);
	if (type == 'S')
		c->ext_batch_wrote = false;
	if (type == 'E' && (c->txn_portal != NULL || c->fan_portal != NULL ||
	                    c->parked_portals != NULL || c->server == NULL)) {
		const uint8_t *msg = pbuf_pullup(in, (ev_ssize_t)total);
		wire_reader_t r;
		const char *portal;
		int32_t max_rows;

		wire_reader_init(&r, msg + 5, total - 5);
		if (msg == NULL || wire_get_cstring(&r, &portal) < 0 ||
		    wire_get_i32(&r, &max_rows) < 0) {
			session_protocol_violation(c, "invalid Execute message");
			return STEP_FAIL;
		}
		if (is_fan_portal(c, portal)) {
			int rc = run_fan_portal(c, max_rows, false);

			if (rc == 0)
				return STEP_WAIT;
			if (rc < 0)
				return STEP_FAIL;
			if (rc == 1)
				return skip_batch(c, in, total, 0);
			if (rc == 3)
				return STEP_WAIT; /* its cursor is declared first: the fan-out
				                     resumes */
			pbuf_drain(in, total);
			return STEP_NEXT;
		}
		if (!is_txn_portal(c, portal) && c->server != NULL)
			return forward_message(c, type, in, total);
		if (!is_txn_portal(c, portal))
			return skip_batch(c, in, total,
			                  session_reply_error(
			                      c, "34000", "portal \"%s\" does not exist", portal));
		if (c->txn_sql != NULL) {
			char *sql = c->txn_sql;
			shard_set_t links;
			route_step_t each;
			int rc;

			c->txn_sql = NULL;
			free(c->txn_portal);
			c->txn_portal = NULL;
			/* every shard of the transaction, each with one copy of the answer */
			shard_set_clear(&links);
			for (int i = 0; i < c->links_cap; i++)
				if (c->links[i] != NULL)
					shard_set_add(&links, i);
			each = route_step_each(&links, ROUTE_MERGE_ONE);
			route_plan_run_step(&c->plan, &each);
			rc = c->txn_two_phase ? commit_start(c, COMMIT_EXPLICIT, false, NULL)
			                      : fanout_query(c, sql, false);
			free(sql);
			pbuf_drain(in, total);
			return rc < 0 ? STEP_FAIL : STEP_NEXT;
		}
		/* tx_control already began or ended the transaction at the Bind */
		if (session_reply_tag(c, c->txn_tag) < 0)
			return STEP_FAIL;
		free(c->txn_portal);
		c->txn_portal = NULL;
		pbuf_drain(in, total);
		return STEP_NEXT;
	}
	if (c->server != NULL)
		return forward_message(c, type, in, total);
	switch (type) {
	case 'S':
		if (c->fan_portal != NULL && c->fan_portal->describe && !c->skip_until_sync) {
			/* a Describe without Execute: answer it before this Sync */
			int rc = run_fan_portal(c, 0, true);

			if (rc < 0)
				return STEP_FAIL;
			/* the fan-out (or the pool) resumes the client; a refusal already answered
			 */
			if (rc == 0 || c->fan != NULL)
				return STEP_WAIT;
			return STEP_NEXT; /* the Sync is still at the head: now it ends the batch */
		}
		if (!tx_open(&c->tx)) {
			int rc = close_portals(c, in, total);

			if (rc != -2)
				return rc;
			extended_fan_portal_free(c); /* they end with the implicit transaction */
		}
		c->skip_until_sync = false;
		return session_end_sql_statement(c, in, total);
	case 'F': {
		int r = forward_use_shard(c, context_cfg(c->worker)->default_shard);

		if (r != 1)
			return r == 0 ? STEP_WAIT : STEP_FAIL;
		return forward_message(c, type, in, total);
	}
	default:
		/* Flush with nothing outstanding; COPY messages outside COPY are ignored */
		pbuf_drain(in, total);
		return STEP_NEXT;
	}
}
