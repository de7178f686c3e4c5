/*
 * nodes.c — the node table built from a config, views of the nodes' state,
 * and the mailbox that hands views from the control thread to the workers.
 * See nodes.h for why views are immutable and reference counted.
 */
#include "proxy/nodes.h"

#include <stdlib.h>
#include <string.h>

static char *dup_or_null(const char *s, bool *oom)
{
	char *d;

	if (s == NULL)
		return NULL;
	d = strdup(s);
	if (d == NULL)
		*oom = true;
	return d;
}

static void node_free(node_t *n)
{
	free(n->conninfo);
	free(n->host);
	free(n->dbname);
	free(n->user);
	free(n->password);
	free(n->check_user);
	free(n->check_password);
	free(n->check_dbname);
}

/*
 * The health check logs in as the data path would for a client whose user
 * and database the conninfo fixes. A conninfo that leaves them to the client
 * has no such user: the check uses the users file's first user (its
 * password is there) and the database every cluster has.
 */
static void node_fill(node_t *n, const cfg_t *cfg, const cfg_node_t *c, bool *oom)
{
	const char *cu = c->user, *cp = c->password;

	n->conninfo = dup_or_null(c->conninfo, oom);
	n->host = dup_or_null(c->host, oom);
	n->port = c->port;
	n->dbname = dup_or_null(c->dbname, oom);
	n->user = dup_or_null(c->user, oom);
	n->password = dup_or_null(c->password, oom);

	if (cu == NULL && cfg->n_users > 0)
		cu = cfg->users[0].name;
	if (cp == NULL && cu != NULL) {
		const cfg_user_t *u = cfg_find_user(cfg, cu);

		cp = u ? u->password : NULL;
	}
	n->check_user = dup_or_null(cu, oom);
	n->check_password = dup_or_null(cp, oom);
	n->check_dbname = dup_or_null(c->dbname ? c->dbname : "postgres", oom);
}

nodes_table_t *nodes_table_new(const cfg_t *cfg)
{
	nodes_table_t *t = calloc(1, sizeof(*t));
	bool oom = false;
	int n = 0, id = 0;

	if (t == NULL)
		return NULL;
	atomic_init(&t->refs, 1);
	for (int s = 0; s < cfg->n_shards; s++)
		n += 1 + cfg->shards[s].n_replicas;
	t->nodes = calloc((size_t)(n > 0 ? n : 1), sizeof(*t->nodes));
	t->first = calloc((size_t)cfg->n_shards + 1, sizeof(*t->first));
	if (t->nodes == NULL || t->first == NULL) {
		free(t->nodes);
		free(t->first);
		free(t);
		return NULL;
	}
	t->n = n;
	t->n_shards = cfg->n_shards;
	for (int s = 0; s < cfg->n_shards; s++) {
		const cfg_shard_t *sh = &cfg->shards[s];

		t->first[s] = id;
		for (int r = -1; r < sh->n_replicas; r++, id++) {
			node_t *nd = &t->nodes[id];

			nd->id = id;
			nd->shard = s;
			nd->role = r < 0 ? NODE_PRIMARY : NODE_REPLICA;
			nd->replica = r;
			node_fill(nd, cfg, r < 0 ? &sh->primary : &sh->replicas[r], &oom);
		}
	}
	t->first[cfg->n_shards] = id;
	if (oom) {
		nodes_table_put(t);
		return NULL;
	}
	return t;
}

nodes_table_t *nodes_table_get(nodes_table_t *t)
{
	atomic_fetch_add(&t->refs, 1);
	return t;
}

void nodes_table_put(nodes_table_t *t)
{
	if (t == NULL || atomic_fetch_sub(&t->refs, 1) != 1)
		return;
	for (int i = 0; i < t->n; i++)
		node_free(&t->nodes[i]);
	free(t->nodes);
	free(t->first);
	free(t);
}

const node_t *nodes_primary(const nodes_table_t *t, int shard)
{
	if (shard < 0 || shard >= t->n_shards)
		return NULL;
	return &t->nodes[t->first[shard]];
}

int nodes_n_replicas(const nodes_table_t *t, int shard)
{
	if (shard < 0 || shard >= t->n_shards)
		return 0;
	return t->first[shard + 1] - t->first[shard] - 1;
}

const node_t *nodes_replica(const nodes_table_t *t, int shard, int i)
{
	if (i < 0 || i >= nodes_n_replicas(t, shard))
		return NULL;
	return &t->nodes[t->first[shard] + 1 + i];
}

static bool same_str(const char *a, const char *b)
{
	return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

bool nodes_same(const node_t *a, const node_t *b)
{
	return a->shard == b->shard && a->role == b->role && a->port == b->port &&
	       same_str(a->host, b->host);
}

static void login_fill(nodes_login_t *l, const node_t *n, const char *user, const char *dbname,
                       const char *application_name, const char *options)
{
	const char *password = n->check_password;
	int k = 0;

	l->keys[k] = "dbname", l->vals[k++] = n->conninfo;
	if (user != NULL)
		l->keys[k] = "user", l->vals[k++] = user;
	l->withheld_password = password != NULL && (strncmp(password, "md5", 3) == 0 ||
	                                            strncmp(password, "SCRAM-SHA-256$", 14) == 0);
	if (password != NULL && !l->withheld_password)
		l->keys[k] = "password", l->vals[k++] = password;
	l->keys[k] = "dbname", l->vals[k++] = dbname; /* a second dbname is a plain name */
	l->keys[k] = "application_name", l->vals[k++] = application_name;
	if (options != NULL)
		l->keys[k] = "options", l->vals[k++] = options;
	l->keys[k] = NULL, l->vals[k] = NULL;
}

bool nodes_login(nodes_login_t *l, const node_t *n, nodes_login_as_t as,
                 const char *application_name, const char *options)
{
	if (as == NODES_LOGIN_CONNINFO) {
		if (n->dbname == NULL)
			return false;
		return nodes_login_in(l, n, n->dbname, application_name, options);
	}
	login_fill(l, n, n->check_user, n->check_dbname, application_name, options);
	return true;
}

bool nodes_login_in(nodes_login_t *l, const node_t *n, const char *dbname,
                    const char *application_name, const char *options)
{
	if (n->user == NULL || dbname == NULL)
		return false;
	/* check_password is then the conninfo's password, else the users file's for user */
	login_fill(l, n, n->user, dbname, application_name, options);
	return true;
}

const char *nodes_role_name(node_role_t r)
{
	return r == NODE_PRIMARY ? "primary" : "replica";
}

const char *nodes_health_name(node_health_t h)
{
	switch (h) {
	case NODE_UP:
		return "up";
	case NODE_DOWN:
		return "down";
	default:
		return "unknown";
	}
}

static void state_unknown(node_state_t *st)
{
	memset(st, 0, sizeof(*st));
	st->health = NODE_UNKNOWN;
	st->in_recovery = -1;
	st->lag_bytes = -1;
	st->lag_ms = -1;
}

nodes_view_t *nodes_view_new(nodes_table_t *t, const nodes_view_t *from)
{
	nodes_view_t *v = calloc(1, sizeof(*v));

	if (v == NULL)
		return NULL;
	v->states = calloc((size_t)(t->n > 0 ? t->n : 1), sizeof(*v->states));
	if (v->states == NULL) {
		free(v);
		return NULL;
	}
	atomic_init(&v->refs, 1);
	v->table = nodes_table_get(t);
	v->version = from != NULL ? from->version + 1 : 1;
	for (int i = 0; i < t->n; i++) {
		const node_t *n = &t->nodes[i];
		const node_state_t *old = from ? nodes_view_state(from, n) : NULL;

		state_unknown(&v->states[i]);
		if (old != NULL) {
			v->states[i] = *old;
		} else if (from != NULL) {
			/* another node on the same server (a replica that became a primary) */
			nodes_view_addr(from, n->host, n->port, &v->states[i].addr,
			                &v->states[i].addrlen);
		}
	}
	return v;
}

nodes_view_t *nodes_view_get(nodes_view_t *v)
{
	atomic_fetch_add(&v->refs, 1);
	return v;
}

void nodes_view_put(nodes_view_t *v)
{
	if (v == NULL || atomic_fetch_sub(&v->refs, 1) != 1)
		return;
	nodes_table_put(v->table);
	free(v->states);
	free(v);
}

const node_state_t *nodes_view_state(const nodes_view_t *v, const node_t *n)
{
	const nodes_table_t *t = v->table;

	if (n->id >= 0 && n->id < t->n &&
	    (&t->nodes[n->id] == n || nodes_same(&t->nodes[n->id], n)))
		return &v->states[n->id];
	for (int i = 0; i < t->n; i++) {
		if (nodes_same(&t->nodes[i], n))
			return &v->states[i];
	}
	return NULL;
}

bool nodes_view_addr(const nodes_view_t *v, const char *host, int port,
                     struct sockaddr_storage *addr, socklen_t *addrlen)
{
	const nodes_table_t *t = v->table;

	for (int i = 0; i < t->n; i++) {
		const node_state_t *st = &v->states[i];

		if (st->addrlen > 0 && t->nodes[i].port == port &&
		    same_str(t->nodes[i].host, host)) {
			memcpy(addr, &st->addr, st->addrlen);
			*addrlen = st->addrlen;
			return true;
		}
	}
	return false;
}

void nodes_box_post(nodes_box_t *b, nodes_view_t *v)
{
	nodes_view_t *stale = atomic_exchange(&b->next, nodes_view_get(v));

	nodes_view_put(stale);
}

nodes_view_t *nodes_box_take(nodes_box_t *b)
{
	return atomic_exchange(&b->next, NULL);
}

void nodes_box_clear(nodes_box_t *b)
{
	nodes_view_put(nodes_box_take(b));
}
