/*
 * deadlock.c — distributed deadlock detection, on the control thread's loop.
 *
 * Transaction A holds a row on shard 0 and waits for one on shard 1 that B
 * holds, while B waits on shard 0 for A. Each PostgreSQL sees one wait that
 * is no cycle, so neither ends it: without pgshard both would wait forever.
 * Every deadlock_interval a round:
 *
 *   1. Reads the snapshot of every worker (txmap.h, published by txwatch.c
 *      on its janitor tick): which backend (shard, pid) belongs to which
 *      distributed transaction. With fewer than two of them nothing can be
 *      a distributed deadlock and no shard is asked.
 *   2. Asks each shard's primary, on a connection of its own logged in as
 *      its conninfo says, for its lock waits: (waiter pid, blocker pid),
 *      from pg_blocking_pids (router/deadlock_sql.h).
 *   3. Finds the deadlocks in the graph of those waits (waitgraph.h): two
 *      or more distributed transactions waiting for each other, with waits
 *      on two or more shards (one shard's own deadlocks are PostgreSQL's).
 *   4. A deadlock counts only when the previous round found the same
 *      transactions deadlocked: each shard answers at its own moment and
 *      the snapshot may be a second old, so one sighting may be a wait that
 *      was already over; two rounds apart, a stuck set of transactions is
 *      still stuck (a transaction is named by an id that is never reused,
 *      so a new transaction of the same client is a new one).
 *   5. Its youngest transaction (the one first seen distributed last) is the
 *      victim: its worker is told, through its box, where it waits; it
 *      cancels that statement and the client hears 40P01 (txwatch.c).
 *
 * A shard that does not answer in a round leaves its waits out: a deadlock
 * through it is not found that round, and must again be seen twice. Shards
 * whose conninfo leaves the user or the database to the client are skipped,
 * as recovery skips them: their backends are in databases the detector does
 * not know.
 *
 * State ownership: everything here belongs to the control thread.
 */
#include "proxy/deadlock.h"

#include <libpq-fe.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/context.h"
#include "proxy/log.h"
#include "proxy/nodes.h"
#include "proxy/pqconn.h"
#include "proxy/txmap.h"
#include "proxy/waitgraph.h"
#include "proxy/worker.h"
#include "router/deadlock_sql.h"

#define DEADLOCK_APPLICATION_NAME "pgshard deadlock detector"

/* One shard's primary, as the detector sees it. */
typedef struct dshard {
	int shard;
	const node_t *node; /* in dl.cfg->nodes */
	char name[300];     /* "shard 1 (127.0.0.1:5470)" */
	bool off;           /* its conninfo leaves the user or the database to the client */
	pqconn_t conn;
	char trouble[256]; /* the last problem logged about it */
} dshard_t;

static struct deadlock {
	struct event_base *base;
	cfg_ref_t *cfg;
	dshard_t *shards; /* by shard number */
	int n;
	struct event *tick;
	bool busy;   /* a round is under way */
	int pending; /* shards not done yet */
	txmap_t snap;
	waitgraph_edge_t *edges;
	int n_edges, cap_edges;
	bool edges_lost;         /* out of memory this round */
	waitgraph_result_t prev; /* the deadlocks of the last round, not acted on */
} dl;

static void report(dshard_t *sh, log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Log a problem of a shard once, until it changes: a shard down is not news each round. */
static void report(dshard_t *sh, log_level_t level, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (strcmp(msg, sh->trouble) == 0)
		return;
	snprintf(sh->trouble, sizeof(sh->trouble), "%s", msg);
	log_msg(level, 0, 0, "deadlock detection: %s", msg);
}

static int query_timeout(void)
{
	return dl.cfg->cfg->server_connect_timeout_ms;
}

/* ---- the end of a round: find, confirm, act ---- */

/* Tell the victim's worker where it waits. */
static void end_victim(const waitgraph_cycle_t *c)
{
	const txmap_tx_t *tx = &dl.snap.txs[c->victim];
	txmap_victim_t v;
	worker_t *w;

	if (tx->worker < 0 || tx->worker >= g_n_workers)
		return;
	w = &g_workers[tx->worker];
	memset(&v, 0, sizeof(v));
	v.tx = tx->id;
	v.client = tx->client;
	waitgraph_detail(c, v.detail, sizeof(v.detail));
	log_warn("deadlock detection: %d transactions wait for each other across shards; "
	         "ending the one that began last (client %llu)",
	         c->n_txs, (unsigned long long)tx->client);
	for (int i = 0; i < c->n_waits; i++) {
		v.shard = c->waits[i].shard;
		v.pid = c->waits[i].pid;
		if (!txmap_box_post(&w->txbox, &v))
			log_warn("deadlock detection: worker %d has too many verdicts waiting; one "
			         "dropped (found again next rounds)",
			         tx->worker);
	}
	waker_activate(&w->waker, w->txwatch_ev);
}

static void round_end(void)
{
	waitgraph_result_t cur;

	dl.busy = false;
	if (dl.edges_lost || waitgraph_find(&dl.snap, dl.edges, dl.n_edges, &cur) < 0) {
		log_warn("deadlock detection: out of memory; this round found nothing");
		waitgraph_result_free(&dl.prev);
		return;
	}
	for (int i = 0; i < cur.n; i++) {
		if (!waitgraph_seen(&dl.prev, &cur.cycles[i])) {
			log_debug("deadlock detection: %d transactions wait for each other across "
			          "shards; ended if they still do next round",
			          cur.cycles[i].n_txs);
			continue;
		}
		end_victim(&cur.cycles[i]);
		waitgraph_drop(&cur, i--); /* acted on: it must be seen twice again */
	}
	waitgraph_result_free(&dl.prev);
	dl.prev = cur;
}

static void shard_done(void)
{
	if (--dl.pending == 0)
		round_end();
}

static int edge_add(int shard, int32_t waiter, int32_t blocker)
{
	if (dl.n_edges == dl.cap_edges) {
		int cap = dl.cap_edges ? dl.cap_edges * 2 : 64;
		waitgraph_edge_t *e = realloc(dl.edges, (size_t)cap * sizeof(*e));

		if (e == NULL)
			return -1;
		dl.edges = e;
		dl.cap_edges = cap;
	}
	dl.edges[dl.n_edges++] = (waitgraph_edge_t){shard, waiter, blocker};
	return 0;
}

static void on_waits(void *arg, const pqconn_reply_t *r)
{
	dshard_t *sh = arg;
	const PGresult *res = r->n_results == 1 ? r->results[0] : NULL;
	char error[256];

	pqconn_error(r, error, sizeof(error));
	if (!r->ok || res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK ||
	    PQnfields(res) != 2) {
		report(sh, LOG_WARNING, "cannot list the lock waits of %s: %s", sh->name,
		       !r->ok     ? r->error
		       : error[0] ? error
		                  : "unexpected answer");
		shard_done();
		return;
	}
	for (int i = 0; i < PQntuples(res); i++)
		if (edge_add(sh->shard, (int32_t)atoi(PQgetvalue(res, i, 0)),
		             (int32_t)atoi(PQgetvalue(res, i, 1))) < 0)
			dl.edges_lost = true;
	if (sh->trouble[0] != '\0') {
		log_info("deadlock detection: %s answers again", sh->name);
		sh->trouble[0] = '\0';
	}
	shard_done();
}

static void on_connected(void *arg, const pqconn_reply_t *r)
{
	dshard_t *sh = arg;
	nodes_login_t l;

	if (r->ok) {
		pqconn_query(&sh->conn, deadlock_waits_sql, query_timeout(), on_waits, sh);
		return;
	}
	nodes_login(&l, sh->node, NODES_LOGIN_CONNINFO, DEADLOCK_APPLICATION_NAME, NULL);
	if (r->needs_password && l.withheld_password)
		report(sh, LOG_WARNING,
		       "cannot log in to %s as %s: the users file holds only a hash of its "
		       "password, which libpq cannot log in with (give the plain password there "
		       "or as password= in the conninfo)",
		       sh->name, sh->node->user);
	else
		report(sh, LOG_WARNING, "cannot connect to %s: %s", sh->name, r->error);
	shard_done();
}

static void shard_ask(dshard_t *sh)
{
	nodes_login_t l;

	if (pqconn_ready(&sh->conn)) {
		pqconn_query(&sh->conn, deadlock_waits_sql, query_timeout(), on_waits, sh);
		return;
	}
	nodes_login(&l, sh->node, NODES_LOGIN_CONNINFO, DEADLOCK_APPLICATION_NAME, NULL);
	pqconn_connect(&sh->conn, l.keys, l.vals, dl.cfg->cfg->server_connect_timeout_ms,
	               on_connected, sh);
}

static void round_begin(void)
{
	txmap_clear(&dl.snap);
	for (int i = 0; i < g_n_workers; i++)
		if (txmap_box_read(&g_workers[i].txbox, &dl.snap) < 0) {
			log_warn("deadlock detection: out of memory reading the workers' "
			         "transactions");
			return;
		}
	if (dl.snap.n_txs < 2 || txmap_index(&dl.snap) < 0) {
		waitgraph_result_free(&dl.prev); /* nothing waits across shards now */
		return;
	}
	dl.busy = true;
	dl.n_edges = 0;
	dl.edges_lost = false;
	dl.pending = 1; /* held until every shard has started, so that none ends the round early */
	for (int i = 0; i < dl.n; i++) {
		if (!dl.shards[i].off) {
			dl.pending++;
			shard_ask(&dl.shards[i]);
		}
	}
	shard_done();
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	/* a round still under way when the next is due goes on (its deadlines end it) */
	if (!dl.busy)
		round_begin();
}

/* ---- the shards of a config ---- */

static void shards_free(void)
{
	for (int i = 0; i < dl.n; i++)
		pqconn_free(&dl.shards[i].conn);
	free(dl.shards);
	dl.shards = NULL;
	dl.n = 0;
	dl.busy = false;
	waitgraph_result_free(&dl.prev);
}

static int shards_build(void)
{
	const nodes_table_t *t = dl.cfg->nodes;

	dl.shards = calloc((size_t)(t->n_shards > 0 ? t->n_shards : 1), sizeof(*dl.shards));
	if (dl.shards == NULL)
		return -1;
	dl.n = t->n_shards;
	for (int i = 0; i < dl.n; i++) {
		dshard_t *sh = &dl.shards[i];

		sh->shard = i;
		sh->node = nodes_primary(t, i);
		snprintf(sh->name, sizeof(sh->name), "shard %d (%s:%d)", i, sh->node->host,
		         sh->node->port);
		if (pqconn_init(&sh->conn, dl.base) < 0)
			return -1;
		sh->off = sh->node->user == NULL || sh->node->dbname == NULL;
		if (sh->off && dl.cfg->cfg->deadlock_interval_ms > 0)
			log_warn(
			    "deadlock detection is off for %s: its conninfo leaves the user or "
			    "the database to the client; give dbname= and user= in [shard.%d] "
			    "primary",
			    sh->name, i);
	}
	return 0;
}

static void tick_schedule(void)
{
	int ms = dl.cfg->cfg->deadlock_interval_ms;
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	event_del(dl.tick);
	if (ms > 0)
		event_add(dl.tick, &tv);
}

int deadlock_start(struct event_base *base, cfg_ref_t *cfg)
{
	dl.base = base;
	dl.cfg = context_cfg_ref_get(cfg);
	txmap_init(&dl.snap);
	dl.tick = event_new(base, -1, EV_PERSIST, tick_cb, NULL);
	if (dl.tick == NULL || shards_build() < 0) {
		log_error("deadlock detection: out of memory; it does not run");
		return -1;
	}
	tick_schedule();
	return 0;
}

void deadlock_set_config(cfg_ref_t *cfg)
{
	if (dl.tick == NULL)
		return;
	shards_free(); /* a round under way is dropped: it changed nothing yet */
	context_cfg_ref_put(dl.cfg);
	dl.cfg = context_cfg_ref_get(cfg);
	if (shards_build() < 0) {
		log_error("deadlock detection: out of memory; it stops");
		shards_free();
		event_del(dl.tick);
		return;
	}
	tick_schedule();
}

void deadlock_stop(void)
{
	shards_free();
	if (dl.tick != NULL)
		event_free(dl.tick);
	dl.tick = NULL;
	txmap_free(&dl.snap);
	free(dl.edges);
	dl.edges = NULL;
	dl.n_edges = dl.cap_edges = 0;
	context_cfg_ref_put(dl.cfg);
	dl.cfg = NULL;
	dl.base = NULL;
}
