/*
 * figures.c — gathering every worker's figures (see figures.h).
 */
#include "proxy/figures.h"

#include <stdlib.h>
#include <string.h>

#include "proxy/adminbox.h"
#include "proxy/pool.h"

typedef struct figures_job {
	adminbox_job_t box; /* first: the mailboxes handle jobs by it */
	figures_fn done;
	uint64_t id;
	int what;
	int n_parts;
	figures_t parts[]; /* by worker index */
} figures_job_t;

static bool same_node(const figures_node_t *r, int shard, node_role_t role, const char *host,
                      int port)
{
	return r->shard == shard && r->role == role && r->port == port &&
	       strcmp(r->host, host) == 0;
}

/* The row of a node in f (added when missing), or NULL when memory ran out. */
static figures_node_t *node_row(figures_t *f, int shard, node_role_t role, const char *host,
                                int port)
{
	figures_node_t *a;

	for (int i = 0; i < f->n_nodes; i++)
		if (same_node(&f->nodes[i], shard, role, host, port))
			return &f->nodes[i];
	a = realloc(f->nodes, sizeof(*a) * (size_t)(f->n_nodes + 1));
	if (a == NULL)
		return NULL;
	f->nodes = a;
	a = &a[f->n_nodes];
	memset(a, 0, sizeof(*a));
	a->host = strdup(host);
	if (a->host == NULL)
		return NULL;
	a->shard = shard;
	a->role = role;
	a->port = port;
	f->n_nodes++;
	return a;
}

static void node_add(figures_node_t *into, const figures_node_t *from)
{
	stats_merge(&into->c, &from->c);
	into->cl_active += from->cl_active;
	into->cl_waiting += from->cl_waiting;
	into->sv_active += from->sv_active;
	into->sv_idle += from->sv_idle;
	into->sv_connecting += from->sv_connecting;
}

/* A live server's bytes are still in its sbuf (closed ones are in the pool's counters). */
static int add_servers(figures_node_t *r, const struct server_list *list)
{
	const server_t *s;
	int n = 0;

	TAILQ_FOREACH(s, list, link)
	{
		r->c.bytes_in += s->sb.n_in;
		r->c.bytes_out += s->sb.n_out;
		n++;
	}
	return n;
}

static void fill(worker_t *w, adminbox_job_t *j)
{
	figures_job_t *job = (figures_job_t *)j;
	figures_t *f = &job->parts[w->index];
	const client_t *c;
	const pool_t *p;

	TAILQ_FOREACH(c, &w->login_clients, link)
	f->clients[CL_LOGIN]++;
	TAILQ_FOREACH(c, &w->idle_clients, link)
	f->clients[CL_IDLE]++;
	TAILQ_FOREACH(p, &w->pools, link)
	{
		figures_node_t *r = node_row(f, p->shard, p->role, p->host, p->port);
		int active = pool_count_clients(&p->active_clients);
		int waiting = pool_count_clients(&p->waiting);

		f->clients[CL_ACTIVE] += active;
		f->clients[CL_WAITING] += waiting;
		if (r == NULL) {
			f->nomem = true;
			continue;
		}
		stats_merge(&r->c, &p->stats);
		r->cl_active += active;
		r->cl_waiting += waiting;
		r->sv_connecting += add_servers(r, &p->connecting);
		r->sv_idle += add_servers(r, &p->idle);
		r->sv_active += add_servers(r, &p->active);
	}
	if (w->hot != NULL)
		f->hot = *w->hot;
}

static int node_cmp(const void *a, const void *b)
{
	const figures_node_t *x = a, *y = b;
	int c;

	if (x->shard != y->shard)
		return x->shard < y->shard ? -1 : 1;
	if (x->role != y->role)
		return x->role < y->role ? -1 : 1;
	c = strcmp(x->host, y->host);
	if (c != 0)
		return c;
	return x->port < y->port ? -1 : x->port > y->port;
}

static void figures_free(figures_t *f)
{
	for (int i = 0; i < f->n_nodes; i++)
		free(f->nodes[i].host);
	free(f->nodes);
	f->nodes = NULL;
	f->n_nodes = 0;
}

static void deliver(worker_t *w, adminbox_job_t *j)
{
	figures_job_t *job = (figures_job_t *)j;
	figures_t *sum = malloc(sizeof(*sum));

	if (sum == NULL) {
		job->done(w, NULL, job->id, job->what);
		return;
	}
	memset(sum, 0, sizeof(*sum));
	hotkeys_init(&sum->hot, HOTKEYS_CAPACITY);
	for (int i = 0; i < job->n_parts; i++) {
		const figures_t *p = &job->parts[i];

		sum->nomem |= p->nomem;
		for (int s = 0; s <= CL_CLOSED; s++)
			sum->clients[s] += p->clients[s];
		for (int k = 0; k < p->n_nodes; k++) {
			const figures_node_t *r = &p->nodes[k];
			figures_node_t *into = node_row(sum, r->shard, r->role, r->host, r->port);

			if (into == NULL)
				sum->nomem = true;
			else
				node_add(into, r);
		}
		if (p->hot.sketch.capacity > 0)
			hotkeys_merge(&sum->hot, &p->hot);
	}
	if (sum->n_nodes > 1)
		qsort(sum->nodes, (size_t)sum->n_nodes, sizeof(sum->nodes[0]), node_cmp);
	hotkeys_sketch_sort(&sum->hot.sketch);
	job->done(w, sum, job->id, job->what);
	figures_free(sum);
	free(sum);
}

static void job_free(adminbox_job_t *j)
{
	figures_job_t *job = (figures_job_t *)j;

	for (int i = 0; i < job->n_parts; i++)
		figures_free(&job->parts[i]);
	free(job);
}

static const adminbox_ops_t figures_ops = {
    .fill = fill,
    .deliver = deliver,
    .free = job_free,
};

int figures_gather(int origin, figures_fn done, uint64_t id, int what)
{
	int n = adminbox_workers();
	figures_job_t *job = calloc(1, sizeof(*job) + sizeof(figures_t) * (size_t)n);

	if (job == NULL)
		return -1;
	job->box.ops = &figures_ops;
	job->done = done;
	job->id = id;
	job->what = what;
	job->n_parts = n;
	adminbox_ask_all(&job->box, origin);
	return 0;
}
