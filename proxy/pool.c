/*
 * pool.c — server connection pools, one per (node, database, user) and
 * worker.
 *
 * A node is a shard's primary or one of its replicas (nodes.h). A pool
 * names its node by what it is, (shard, role, host, port), so that it
 * outlives a reload that renumbers the nodes but keeps this one.
 *
 * A client that needs a server takes the most recently used idle one (warm
 * caches, and the others can time out), or waits in FIFO order while a new
 * connection is opened if the pool is below its size. A server that comes
 * free goes straight to the first waiting client. A pool never opens more
 * connections than clients are waiting for.
 */
#include "proxy/pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "proxy/context.h"
#include "proxy/nodes.h"
#include "proxy/server.h"

static const server_events_t pool_events = {
    .ready = pool_server_ready,
    .gone = pool_server_gone,
};

static bool same(const char *a, const char *b)
{
	return strcmp(a, b) == 0;
}

static int pool_max_servers(const worker_t *w)
{
	const cfg_t *cfg = context_cfg(w);
	int n = cfg->pool_size / (cfg->workers > 0 ? cfg->workers : 1);

	return n > 0 ? n : 1;
}

/*
 * The node for (shard, role) in the worker's config: the primary, or the
 * first replica not known to be down (reads choose theirs: replica.c).
 */
static const node_t *pick_node(const worker_t *w, int shard, node_role_t role)
{
	const nodes_table_t *t = w->cfg->nodes;

	if (role == NODE_PRIMARY)
		return nodes_primary(t, shard);
	for (int i = 0; i < nodes_n_replicas(t, shard); i++) {
		const node_t *n = nodes_replica(t, shard, i);
		const node_state_t *st = nodes_view_state(w->nodes, n);

		if (st == NULL || st->health != NODE_DOWN)
			return n;
	}
	return NULL;
}

pool_t *pool_get(worker_t *w, int shard, const char *dbname, const char *user)
{
	return pool_get_role(w, shard, NODE_PRIMARY, dbname, user);
}

pool_t *pool_get_role(worker_t *w, int shard, node_role_t role, const char *dbname,
                      const char *user)
{
	return pool_get_node(w, pick_node(w, shard, role), dbname, user);
}

pool_t *pool_get_node(worker_t *w, const node_t *node, const char *dbname, const char *user)
{
	const cfg_t *cfg = context_cfg(w);
	const cfg_user_t *u;
	const char *db, *usr, *pw = NULL;
	int shard;
	node_role_t role;
	pool_t *p;

	if (node == NULL)
		return NULL;
	shard = node->shard;
	role = node->role;
	db = node->dbname ? node->dbname : dbname;
	usr = node->user ? node->user : user;
	if (node->password != NULL) {
		pw = node->password;
	} else if ((u = cfg_find_user(cfg, usr)) != NULL) {
		pw = u->password;
	}

	TAILQ_FOREACH(p, &w->pools, link)
	{
		if (p->shard == shard && p->role == role && p->port == node->port &&
		    same(p->host, node->host) && same(p->dbname, db) && same(p->user, usr)) {
			p->node_id = node->id;
			/* a reload may have changed the size or the password */
			p->max_servers = pool_max_servers(w);
			if (pw != NULL && (p->password == NULL || !same(p->password, pw))) {
				char *dup = strdup(pw);

				if (dup != NULL) {
					free(p->password);
					p->password = dup;
				}
			}
			return p;
		}
	}

	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	p->worker = w;
	p->shard = shard;
	p->role = role;
	p->node_id = node->id;
	p->port = node->port;
	p->host = strdup(node->host);
	p->dbname = strdup(db);
	p->user = strdup(usr);
	p->password = pw ? strdup(pw) : NULL;
	p->max_servers = pool_max_servers(w);
	TAILQ_INIT(&p->connecting);
	TAILQ_INIT(&p->idle);
	TAILQ_INIT(&p->active);
	TAILQ_INIT(&p->waiting);
	TAILQ_INIT(&p->active_clients);
	if (p->host == NULL || p->dbname == NULL || p->user == NULL || (pw && !p->password)) {
		free(p->host);
		free(p->dbname);
		free(p->user);
		free(p->password);
		free(p);
		return NULL;
	}
	TAILQ_INSERT_TAIL(&w->pools, p, link);
	return p;
}

int pool_count_servers(const struct server_list *l)
{
	const server_t *s;
	int n = 0;

	TAILQ_FOREACH(s, l, link)
	n++;
	return n;
}

int pool_count_clients(const struct client_list *l)
{
	const client_t *c;
	int n = 0;

	TAILQ_FOREACH(c, l, link)
	n++;
	return n;
}

static void pool_link(pool_t *p, client_t *c, server_t *s)
{
	TAILQ_REMOVE(&p->idle, s, link);
	s->state = SV_ACTIVE;
	TAILQ_INSERT_TAIL(&p->active, s, link);
	s->client = c;
	c->ops->pool_linked(c, s);
}

/*
 * The waiting client a server that comes free goes to: first one that
 * already holds servers of other shards (inside a transaction: clients of
 * other pools may be waiting for what it holds, and a connection opened over
 * the pool size was opened for it), then the others, each in FIFO order.
 */
static client_t *next_waiting(const pool_t *p)
{
	client_t *c;

	if (p->n_waiting_held == 0)
		return TAILQ_FIRST(&p->waiting); /* no need to look through thousands */
	TAILQ_FOREACH(c, &p->waiting, link)
	if (c->n_links > 0)
		return c;
	return TAILQ_FIRST(&p->waiting);
}

/* Open connections for waiting clients, up to the pool size. */
static void pool_grow(pool_t *p)
{
	int waiting = p->n_waiting;
	int connecting = p->n_connecting;

	while (connecting < waiting && p->n_servers < p->max_servers) {
		if (server_connect(p, &pool_events) == NULL)
			break;
		connecting++;
	}
}

int pool_acquire(pool_t *p, client_t *c)
{
	server_t *s = TAILQ_LAST(&p->idle, server_list);

	if (s != NULL && TAILQ_EMPTY(&p->waiting)) {
		pool_link(p, c, s);
		return 1;
	}
	c->ops->pool_wait(c, p);
	pool_grow(p);
	/*
	 * A client inside a transaction that already holds servers of other
	 * shards must not wait for one that a client waiting for *its* servers
	 * holds: with every pool full, two such transactions would wait for
	 * each other forever. It gets a connection over the pool size instead.
	 */
	if (c->n_links > 0 && p->n_servers >= p->max_servers && p->n_connecting < p->n_waiting)
		server_connect(p, &pool_events);
	return 0;
}

void pool_server_ready(server_t *s)
{
	pool_t *p = s->pool;
	client_t *c;

	switch (s->state) {
	case SV_CONNECT:
		TAILQ_REMOVE(&p->connecting, s, link);
		p->n_connecting--;
		break;
	case SV_ACTIVE:
		TAILQ_REMOVE(&p->active, s, link);
		break;
	case SV_IDLE:
		TAILQ_REMOVE(&p->idle, s, link);
		break;
	case SV_CLOSED:
		return;
	}
	s->state = SV_IDLE;
	s->client = NULL;
	s->idle_since = time(NULL);
	TAILQ_INSERT_TAIL(&p->idle, s, link);
	/*
	 * What it said while its client held it parked was not read: read it
	 * now, before it serves anyone else (an error there closes it).
	 */
	if (pbuf_get_length(s->sb.in) > 0 && !server_read_idle(s))
		return;

	c = next_waiting(p);
	if (c != NULL)
		pool_link(p, c, s);
}

/*
 * Linking s to a waiting client may run that client's messages, which may
 * release s again, or close it: s is not looked at after pool_server_ready.
 */
void pool_release(server_t *s)
{
	pool_t *p = s->pool;
	client_t *c = next_waiting(p);

	s->client->ops->pool_released(s->client, s);
	/*
	 * A connection opened over the pool size (see pool_acquire) does not
	 * stay, unless a client holding servers of other shards waits for it.
	 */
	if (p->n_servers > p->max_servers && (c == NULL || c->n_links == 0)) {
		server_close(s, "over the pool size");
		return;
	}
	pool_server_ready(s);
}

void pool_server_gone(server_t *s, const char *why, const uint8_t *error_body, size_t error_len)
{
	pool_t *p = s->pool;
	bool was_connecting = s->state == SV_CONNECT;

	switch (s->state) {
	case SV_CONNECT:
		TAILQ_REMOVE(&p->connecting, s, link);
		p->n_connecting--;
		break;
	case SV_ACTIVE:
		TAILQ_REMOVE(&p->active, s, link);
		break;
	case SV_IDLE:
		TAILQ_REMOVE(&p->idle, s, link);
		break;
	case SV_CLOSED:
		return;
	}
	p->n_servers--;

	if (!was_connecting)
		return;

	free(p->last_connect_error);
	p->last_connect_error = why ? strdup(why) : NULL;

	/*
	 * A failed connection attempt fails the clients waiting for it, with the
	 * server's own error when it sent one (wrong password, no such
	 * database), rather than leaving them to wait for a server that will
	 * not come. If other connections are still on their way, the clients
	 * they will serve keep waiting.
	 */
	{
		int connecting = pool_count_servers(&p->connecting);
		int waiting = pool_count_clients(&p->waiting);
		int to_fail = waiting - connecting - pool_count_servers(&p->idle);

		while (to_fail-- > 0) {
			client_t *c = TAILQ_LAST(&p->waiting, client_list);

			if (c == NULL)
				break;
			pool_remove_waiting(c);
			c->ops->pool_failed(c, p, why, error_body, error_len);
		}
	}
}

void pool_remove_waiting(client_t *c)
{
	c->ops->pool_unwait(c);
}

void pool_close_idle(worker_t *w, time_t older_than)
{
	pool_t *p;

	TAILQ_FOREACH(p, &w->pools, link)
	{
		server_t *s, *next;

		for (s = TAILQ_FIRST(&p->idle); s != NULL; s = next) {
			next = TAILQ_NEXT(s, link);
			if (s->idle_since < older_than)
				server_close(s, "idle timeout");
		}
	}
}

void pool_close_all(worker_t *w)
{
	pool_t *p;

	TAILQ_FOREACH(p, &w->pools, link)
	{
		server_t *s;

		while ((s = TAILQ_FIRST(&p->active)) != NULL)
			server_close(s, "shutdown");
		while ((s = TAILQ_FIRST(&p->idle)) != NULL)
			server_close(s, "shutdown");
		while ((s = TAILQ_FIRST(&p->connecting)) != NULL)
			server_close(s, "shutdown");
	}
}

/* After pool_close_all, once the closed servers are freed. */
void pool_free_all(worker_t *w)
{
	pool_t *p;

	while ((p = TAILQ_FIRST(&w->pools)) != NULL) {
		TAILQ_REMOVE(&w->pools, p, link);
		free(p->host);
		free(p->dbname);
		free(p->user);
		free(p->password);
		free(p->last_connect_error);
		free(p);
	}
}
