/*
 * waitgraph.c — deadlocks among distributed transactions, found as the
 * strongly connected components of the wait-for graph (Tarjan's algorithm),
 * and the victim of each (see waitgraph.h).
 *
 * Why components and not single cycles: a component is what every cycle
 * inside it lives in, it is found in one pass whatever the number of
 * cycles, and the same transactions stuck in the same way give the same
 * component in the next round, which is how the detector knows a deadlock
 * is not a passing wait. Ending its youngest transaction breaks at least one
 * cycle; what is left, if still stuck, is found again (and must again be
 * seen twice).
 */
#include "proxy/waitgraph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct graph {
	const txmap_t *snap;
	const waitgraph_edge_t *edges;
	int n_edges;
	txmap_key_t *locals; /* backends not in the snapshot, sorted; node = n_txs + index */
	int n_locals;
	int n_nodes;
	int *from, *to; /* per edge: its nodes */
	int *adj_start; /* CSR: the edges leaving node v are adj[adj_start[v] .. adj_start[v+1]) */
	int *adj;
	/* Tarjan */
	int *index, *low, *comp, *stack;
	bool *on_stack;
	int next_index, sp, n_comps;
} graph_t;

static int node_of(const graph_t *g, int shard, int32_t pid)
{
	txmap_key_t key = {shard, pid, 0};
	const txmap_key_t *hit;
	int tx = txmap_find(g->snap, shard, pid);

	if (tx >= 0)
		return tx;
	hit = bsearch(&key, g->locals, (size_t)g->n_locals, sizeof(key), txmap_key_cmp);
	return hit != NULL ? g->snap->n_txs + (int)(hit - g->locals) : -1;
}

static int locals_make(graph_t *g)
{
	int n = 0;

	g->locals = malloc((size_t)(2 * g->n_edges + 1) * sizeof(*g->locals));
	if (g->locals == NULL)
		return -1;
	for (int i = 0; i < g->n_edges; i++) {
		const waitgraph_edge_t *e = &g->edges[i];

		if (txmap_find(g->snap, e->shard, e->waiter) < 0)
			g->locals[n++] = (txmap_key_t){e->shard, e->waiter, 0};
		if (txmap_find(g->snap, e->shard, e->blocker) < 0)
			g->locals[n++] = (txmap_key_t){e->shard, e->blocker, 0};
	}
	qsort(g->locals, (size_t)n, sizeof(*g->locals), txmap_key_cmp);
	g->n_locals = 0;
	for (int i = 0; i < n; i++)
		if (g->n_locals == 0 ||
		    txmap_key_cmp(&g->locals[g->n_locals - 1], &g->locals[i]) != 0)
			g->locals[g->n_locals++] = g->locals[i];
	g->n_nodes = g->snap->n_txs + g->n_locals;
	return 0;
}

static int adjacency_make(graph_t *g)
{
	int n = g->n_nodes, m = g->n_edges;
	int *fill;

	g->from = malloc((size_t)(m + 1) * sizeof(int));
	g->to = malloc((size_t)(m + 1) * sizeof(int));
	g->adj = malloc((size_t)(m + 1) * sizeof(int));
	g->adj_start = calloc((size_t)n + 2, sizeof(int));
	fill = calloc((size_t)n + 1, sizeof(int));
	if (g->from == NULL || g->to == NULL || g->adj == NULL || g->adj_start == NULL ||
	    fill == NULL) {
		free(fill);
		return -1;
	}
	for (int i = 0; i < m; i++) {
		g->from[i] = node_of(g, g->edges[i].shard, g->edges[i].waiter);
		g->to[i] = node_of(g, g->edges[i].shard, g->edges[i].blocker);
		g->adj_start[g->from[i] + 1]++;
	}
	for (int v = 0; v < n; v++)
		g->adj_start[v + 1] += g->adj_start[v];
	for (int i = 0; i < m; i++) {
		int v = g->from[i];

		g->adj[g->adj_start[v] + fill[v]++] = g->to[i];
	}
	free(fill);
	return 0;
}

static void strongconnect(graph_t *g, int v)
{
	g->index[v] = g->low[v] = g->next_index++;
	g->stack[g->sp++] = v;
	g->on_stack[v] = true;
	for (int k = g->adj_start[v]; k < g->adj_start[v + 1]; k++) {
		int w = g->adj[k];

		if (g->index[w] < 0) {
			strongconnect(g, w);
			if (g->low[w] < g->low[v])
				g->low[v] = g->low[w];
		} else if (g->on_stack[w] && g->index[w] < g->low[v]) {
			g->low[v] = g->index[w];
		}
	}
	if (g->low[v] == g->index[v]) {
		int w;

		do {
			w = g->stack[--g->sp];
			g->on_stack[w] = false;
			g->comp[w] = g->n_comps;
		} while (w != v);
		g->n_comps++;
	}
}

static int components(graph_t *g)
{
	size_t n = (size_t)g->n_nodes + 1;

	g->index = malloc(n * sizeof(int));
	g->low = malloc(n * sizeof(int));
	g->comp = malloc(n * sizeof(int));
	g->stack = malloc(n * sizeof(int));
	g->on_stack = calloc(n, sizeof(bool));
	if (g->index == NULL || g->low == NULL || g->comp == NULL || g->stack == NULL ||
	    g->on_stack == NULL)
		return -1;
	for (int v = 0; v < g->n_nodes; v++)
		g->index[v] = -1;
	for (int v = 0; v < g->n_nodes; v++)
		if (g->index[v] < 0)
			strongconnect(g, v);
	return 0;
}

static void graph_free(graph_t *g)
{
	free(g->locals);
	free(g->from);
	free(g->to);
	free(g->adj);
	free(g->adj_start);
	free(g->index);
	free(g->low);
	free(g->comp);
	free(g->stack);
	free(g->on_stack);
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int int_cmp(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return x < y ? -1 : x > y;
}

/* The youngest: begun last, and of two begun in the same millisecond the higher id. */
static bool younger(const txmap_tx_t *a, const txmap_tx_t *b)
{
	return a->since_ms != b->since_ms ? a->since_ms > b->since_ms : a->id > b->id;
}

static void cycle_free(waitgraph_cycle_t *c)
{
	free(c->txs);
	free(c->waits);
	free(c->shards);
	memset(c, 0, sizeof(*c));
}

/* Component k as a cycle in *c: 1, 0 when it is not pgshard's deadlock, -1 out of memory. */
static int cycle_make(const graph_t *g, int k, waitgraph_cycle_t *c)
{
	const txmap_t *snap = g->snap;
	int n_shards = 0;

	memset(c, 0, sizeof(*c));
	c->victim = -1;
	c->txs = malloc((size_t)(snap->n_txs + 1) * sizeof(*c->txs));
	c->shards = malloc((size_t)(g->n_edges + 1) * sizeof(*c->shards));
	c->waits = malloc((size_t)(g->n_edges + 1) * sizeof(*c->waits));
	if (c->txs == NULL || c->shards == NULL || c->waits == NULL) {
		cycle_free(c);
		return -1;
	}
	for (int v = 0; v < snap->n_txs; v++) {
		if (g->comp[v] != k)
			continue;
		c->txs[c->n_txs++] = snap->txs[v].id;
		if (c->victim < 0 || younger(&snap->txs[v], &snap->txs[c->victim]))
			c->victim = v;
	}
	for (int i = 0; i < g->n_edges; i++)
		if (g->comp[g->from[i]] == k && g->comp[g->to[i]] == k)
			c->shards[n_shards++] = g->edges[i].shard;
	qsort(c->shards, (size_t)n_shards, sizeof(int), int_cmp);
	for (int i = 0; i < n_shards; i++)
		if (c->n_shards == 0 || c->shards[c->n_shards - 1] != c->shards[i])
			c->shards[c->n_shards++] = c->shards[i];
	if (c->n_txs < 2 || c->n_shards < 2) {
		cycle_free(c);
		return 0;
	}
	qsort(c->txs, (size_t)c->n_txs, sizeof(uint64_t), u64_cmp);
	for (int i = 0; i < g->n_edges; i++) {
		const waitgraph_edge_t *e = &g->edges[i];
		bool dup = false;

		if (g->from[i] != c->victim || g->comp[g->to[i]] != k)
			continue;
		for (int j = 0; j < c->n_waits; j++)
			dup |= c->waits[j].shard == e->shard && c->waits[j].pid == e->waiter;
		if (!dup)
			c->waits[c->n_waits++] = (txmap_link_t){e->shard, e->waiter};
	}
	return 1;
}

int waitgraph_find(const txmap_t *snap, const waitgraph_edge_t *edges, int n_edges,
                   waitgraph_result_t *out)
{
	graph_t g;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	memset(&g, 0, sizeof(g));
	g.snap = snap;
	g.edges = edges;
	g.n_edges = n_edges;
	if (locals_make(&g) < 0 || adjacency_make(&g) < 0 || components(&g) < 0)
		goto done;
	out->cycles = calloc((size_t)g.n_comps + 1, sizeof(*out->cycles));
	if (out->cycles == NULL)
		goto done;
	for (int k = 0; k < g.n_comps; k++) {
		int r = cycle_make(&g, k, &out->cycles[out->n]);

		if (r < 0) {
			waitgraph_result_free(out);
			goto done;
		}
		out->n += r;
	}
	rc = 0;
done:
	graph_free(&g);
	return rc;
}

void waitgraph_result_free(waitgraph_result_t *r)
{
	for (int i = 0; i < r->n; i++)
		cycle_free(&r->cycles[i]);
	free(r->cycles);
	memset(r, 0, sizeof(*r));
}

bool waitgraph_seen(const waitgraph_result_t *prev, const waitgraph_cycle_t *c)
{
	for (int i = 0; i < prev->n; i++) {
		const waitgraph_cycle_t *p = &prev->cycles[i];

		if (p->n_txs == c->n_txs &&
		    memcmp(p->txs, c->txs, (size_t)c->n_txs * sizeof(uint64_t)) == 0)
			return true;
	}
	return false;
}

void waitgraph_drop(waitgraph_result_t *r, int i)
{
	cycle_free(&r->cycles[i]);
	memmove(&r->cycles[i], &r->cycles[i + 1], (size_t)(r->n - i - 1) * sizeof(*r->cycles));
	r->n--;
}

void waitgraph_detail(const waitgraph_cycle_t *c, char *buf, size_t size)
{
	size_t len;
	int n;

	n = snprintf(buf, size,
	             "pgshard detected it across shards: %d transactions wait for each other on "
	             "shards ",
	             c->n_txs);
	len = n < 0 ? 0 : (size_t)n;
	for (int i = 0; i < c->n_shards && len < size; i++) {
		n = snprintf(buf + len, size - len, "%s%d",
		             i == 0                 ? ""
		             : i == c->n_shards - 1 ? " and "
		                                    : ", ",
		             c->shards[i]);
		len += n < 0 ? 0 : (size_t)n;
	}
	if (len < size)
		snprintf(buf + len, size - len,
		         "; this one, which began last, was ended so that the others can go on.");
}
