/*
 * waitgraph.h — the wait-for graph of distributed transactions, its cycles
 * and their victims (waitgraph.c). Pure: unit-tested in
 * proxy/tests/test_waitgraph.c.
 *
 * Each shard's primary says which backend waits for a lock held (or asked
 * for earlier) by which others: edges (shard, waiter pid, blocker pid).
 * With a snapshot of the distributed transactions (txmap.h), a backend is
 * either one of theirs or a local one of that shard (a transaction on one
 * shard, or not pgshard's). The graph's nodes are the distributed
 * transactions and those local backends; a wait of a backend on a blocker
 * on the same shard is an edge between their nodes.
 *
 * A deadlock is a strongly connected component of two or more nodes: every
 * node of it waits, through the others, for itself. Only components with
 * two or more distributed transactions whose waits span two or more shards
 * are pgshard's to break: one shard's own deadlocks are PostgreSQL's, which
 * sees them whole and ends them itself within its deadlock_timeout.
 */
#ifndef PGSHARD_PROXY_WAITGRAPH_H
#define PGSHARD_PROXY_WAITGRAPH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/txmap.h"

typedef struct waitgraph_edge {
	int shard;
	int32_t waiter, blocker;
} waitgraph_edge_t;

typedef struct waitgraph_cycle {
	uint64_t *txs; /* ids of its distributed transactions, ascending */
	int n_txs;
	int victim;          /* the youngest of them: its index in the snapshot */
	txmap_link_t *waits; /* the victim's backends that wait inside the cycle */
	int n_waits;
	int *shards; /* the shards of its waits, ascending */
	int n_shards;
} waitgraph_cycle_t;

typedef struct waitgraph_result {
	waitgraph_cycle_t *cycles;
	int n;
} waitgraph_result_t;

/*
 * The deadlocks among snap's transactions (snap indexed by txmap_index).
 * 0, or -1 when out of memory (out is then empty).
 */
int waitgraph_find(const txmap_t *snap, const waitgraph_edge_t *edges, int n_edges,
                   waitgraph_result_t *out);
void waitgraph_result_free(waitgraph_result_t *r);
/* The same transactions deadlocked in the earlier round `prev`. */
bool waitgraph_seen(const waitgraph_result_t *prev, const waitgraph_cycle_t *c);
/* Take c out of r (it was acted on: it must be seen twice again to count again). */
void waitgraph_drop(waitgraph_result_t *r, int i);
/* The DETAIL of the victim's 40P01, in buf. */
void waitgraph_detail(const waitgraph_cycle_t *c, char *buf, size_t size);

#endif
