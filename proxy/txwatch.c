/*
 * txwatch.c — a worker's side of distributed deadlock detection.
 *
 * Once a second (the janitor) the worker lists its clients whose
 * transaction holds backends on two shards or more, or commits in two
 * phases, with those backends' pids on the shards' primaries, and swaps the
 * list into its box (txmap.h) for the control thread. A transaction gets
 * its id and its start time the first time it is listed; both go when it
 * ends (tx.c), so that a client's next transaction is a new one.
 *
 * The detector's verdict comes back through the same box: the victim's
 * transaction id and the backend where it waits. The worker checks that it
 * is still that transaction waiting on that backend (the verdict is a round
 * old), marks the transaction, and sends the backend a CancelRequest. The
 * statement ends with 57014; relay.c and fanout.c ask txwatch_deadlock_body
 * on its way and the client hears 40P01 instead, as from one PostgreSQL.
 * Nothing here runs per message: the mark is one pointer compared on an
 * error.
 */
#include "proxy/txwatch.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proxy/cancel.h"
#include "proxy/context.h"
#include "proxy/log.h"
#include "proxy/tx.h"
#include "proxy/txmap.h"
#include "proxy/wire.h"

#define TXWATCH_SQLSTATE_CANCELED "57014"
#define TXWATCH_SQLSTATE_DEADLOCK "40P01"

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool distributed(const client_t *c)
{
	return c->commit != NULL || (tx_open(&c->tx) && c->n_links >= 2);
}

/* Add c's transaction to snap when it is distributed. -1: out of memory. */
static int publish_client(worker_t *w, client_t *c, txmap_t *snap, int64_t now)
{
	txmap_link_t links[64], *l = links;
	txmap_tx_t tx;
	int n = 0, rc;

	if (c->closing || !distributed(c))
		return 0;
	if (c->links_cap > (int)(sizeof(links) / sizeof(links[0]))) {
		l = malloc((size_t)c->links_cap * sizeof(*l));
		if (l == NULL)
			return -1;
	}
	for (int i = 0; i < c->links_cap; i++) {
		const server_t *s = c->links[i];

		/* a replica holds no locks, and its pids are another server's */
		if (s != NULL && s->pool->role == NODE_PRIMARY && s->backend_pid != 0)
			l[n++] = (txmap_link_t){i, s->backend_pid};
	}
	rc = 0;
	if (n >= 2) { /* on primaries of two shards: it can wait across shards */
		if (c->tx.dist_id == 0) {
			c->tx.dist_id = ((uint64_t)w->index << 48) | ++w->next_dist_id;
			c->tx.dist_since_ms = now;
		}
		tx = (txmap_tx_t){.id = c->tx.dist_id,
		                  .client = c->id,
		                  .worker = w->index,
		                  .since_ms = c->tx.dist_since_ms};
		rc = txmap_add(snap, &tx, l, n);
	}
	if (l != links)
		free(l);
	return rc;
}

void txwatch_publish(worker_t *w)
{
	int64_t now = mono_ms();
	pool_t *p;
	client_t *c;
	int rc = 0;

	txmap_clear(&w->txsnap);
	if (context_cfg(w)->deadlock_interval_ms > 0) {
		TAILQ_FOREACH(p, &w->pools, link)
		{
			TAILQ_FOREACH(c, &p->active_clients, link)
			rc |= publish_client(w, c, &w->txsnap, now);
			TAILQ_FOREACH(c, &p->waiting, link)
			rc |= publish_client(w, c, &w->txsnap, now);
		}
	}
	if (rc < 0) {
		log_warn("deadlock detection: out of memory; worker %d publishes no transactions",
		         w->index);
		txmap_clear(&w->txsnap);
	}
	txmap_box_publish(&w->txbox, &w->txsnap);
}

static client_t *find_client(worker_t *w, const txmap_victim_t *v)
{
	pool_t *p;
	client_t *c;

	TAILQ_FOREACH(p, &w->pools, link)
	{
		TAILQ_FOREACH(c, &p->active_clients, link)
		if (c->id == v->client && c->tx.dist_id == v->tx)
			return c;
		TAILQ_FOREACH(c, &p->waiting, link)
		if (c->id == v->client && c->tx.dist_id == v->tx)
			return c;
	}
	return NULL;
}

static void end_victim(worker_t *w, const txmap_victim_t *v)
{
	client_t *c = find_client(w, v);
	server_t *s =
	    c != NULL && v->shard >= 0 && v->shard < c->links_cap ? c->links[v->shard] : NULL;

	if (c == NULL || c->closing) {
		log_debug("deadlock detection: transaction %llx ended before its verdict came",
		          (unsigned long long)v->tx);
		return;
	}
	if (s == NULL || s->backend_pid != v->pid || s->pending.count == 0) {
		log_msg(LOG_INFO, c->id, 0,
		        "deadlock detection: no statement of this transaction waits on shard %d "
		        "any more; not cancelled",
		        v->shard);
		return;
	}
	if (tx_mark_deadlock(&c->tx, v->detail) < 0)
		return; /* out of memory: the next rounds find the deadlock again */
	log_msg(LOG_WARNING, c->id, s->id,
	        "deadlock detected across shards: cancelling this transaction's statement on "
	        "shard %d (backend %d); %s",
	        v->shard, (int)v->pid, v->detail);
	cancel_server(w, s);
}

void txwatch_victims_cb(evutil_socket_t fd, short what, void *arg)
{
	worker_t *w = arg;
	txmap_victim_t v[8];
	int n;

	while ((n = txmap_box_take(&w->txbox, v, 8)) > 0)
		for (int i = 0; i < n; i++)
			end_victim(w, &v[i]);
}

bool txwatch_deadlock_body(client_t *c, const uint8_t *body, size_t len, wire_buf_t *b)
{
	const char *code;
	char *detail;

	if (c->tx.deadlock_detail == NULL)
		return false;
	code = wire_error_field(body, len, 'C');
	if (code == NULL || strcmp(code, TXWATCH_SQLSTATE_CANCELED) != 0)
		return false;
	detail = tx_take_deadlock(&c->tx);
	wire_put_u8(b, 'S');
	wire_put_cstring(b, "ERROR");
	wire_put_u8(b, 'V');
	wire_put_cstring(b, "ERROR");
	wire_put_u8(b, 'C');
	wire_put_cstring(b, TXWATCH_SQLSTATE_DEADLOCK);
	wire_put_u8(b, 'M');
	wire_put_cstring(b, "deadlock detected");
	wire_put_u8(b, 'D');
	wire_put_cstring(b, detail);
	wire_put_u8(b, 0);
	log_msg(LOG_INFO, c->id, 0, "deadlock detection: told the client 40P01");
	free(detail);
	return true;
}
