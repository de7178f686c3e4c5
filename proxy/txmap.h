/*
 * txmap.h — which server backend belongs to which distributed transaction
 * (txmap.c): the snapshot each worker publishes for the deadlock detector
 * (deadlock.c), and the mailbox between a worker and the control thread.
 * Pure: no sockets, no libevent (unit-tested in proxy/tests/test_txmap.c).
 *
 * A distributed transaction is a client's transaction that holds links on
 * two or more shards (or commits in two phases). The snapshot lists, for
 * each, an id, when pgshard first saw it distributed, and its links as
 * (shard, backend pid): the key under which PostgreSQL's pg_blocking_pids
 * names it. A worker publishes a new snapshot on its janitor tick; the
 * control thread reads every worker's once per detection round. The box's
 * mutex is taken by those two and by the hand-over of a victim, never per
 * client message.
 */
#ifndef PGSHARD_PROXY_TXMAP_H
#define PGSHARD_PROXY_TXMAP_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* One backend of a transaction: its shard and its pid on that shard's primary. */
typedef struct txmap_link {
	int shard;
	int32_t pid;
} txmap_link_t;

typedef struct txmap_tx {
	uint64_t id;      /* unique in the process: worker index << 48 | serial */
	uint64_t client;  /* the client's id (log lines name it) */
	int worker;       /* the worker that owns the client */
	int64_t since_ms; /* monotonic: when it was first seen on two shards */
	int first, n;     /* its links: links[first .. first + n) */
} txmap_tx_t;

/* A backend -> transaction index entry, sorted by (shard, pid). */
typedef struct txmap_key {
	int shard;
	int32_t pid;
	int tx; /* index into txs */
} txmap_key_t;

/* Orders keys by shard, then pid (qsort/bsearch). */
int txmap_key_cmp(const void *a, const void *b);

typedef struct txmap {
	txmap_tx_t *txs;
	int n_txs, cap_txs;
	txmap_link_t *links;
	int n_links, cap_links;
	txmap_key_t *index; /* made by txmap_index; NULL until then */
	int n_index;
} txmap_t;

void txmap_init(txmap_t *m);
void txmap_free(txmap_t *m);
void txmap_clear(txmap_t *m); /* empty, keeping its memory */

/* Add a transaction and its links. 0, or -1 when out of memory. */
int txmap_add(txmap_t *m, const txmap_tx_t *tx, const txmap_link_t *links, int n_links);
/* Append every transaction of src to dst. 0, or -1. */
int txmap_append(txmap_t *dst, const txmap_t *src);
/* Sort the (shard, pid) index, for txmap_find. 0, or -1. */
int txmap_index(txmap_t *m);
/* The index of the transaction whose backend on `shard` is `pid`, or -1 (after txmap_index). */
int txmap_find(const txmap_t *m, int shard, int32_t pid);
const txmap_link_t *txmap_links(const txmap_t *m, int tx);

/* ---- the mailbox of one worker ---- */

#define TXMAP_INBOX_MAX  64
#define TXMAP_DETAIL_MAX 256

/* The detector's verdict: cancel the statement of transaction `tx` waiting on (shard, pid). */
typedef struct txmap_victim {
	uint64_t tx, client;
	int shard;
	int32_t pid;
	char detail[TXMAP_DETAIL_MAX]; /* the DETAIL of the client's 40P01 */
} txmap_victim_t;

typedef struct txmap_box {
	pthread_mutex_t lock;
	txmap_t snap; /* the worker's latest snapshot */
	txmap_victim_t inbox[TXMAP_INBOX_MAX];
	int n_inbox;
} txmap_box_t;

void txmap_box_init(txmap_box_t *b);
void txmap_box_destroy(txmap_box_t *b);
/* The worker: snap becomes the box's snapshot; snap gets the old one's memory, emptied. */
void txmap_box_publish(txmap_box_t *b, txmap_t *snap);
/* The control thread: append the box's snapshot to into. 0, or -1. */
int txmap_box_read(txmap_box_t *b, txmap_t *into);
/* The control thread: hand over a victim. false: the inbox is full (it is dropped). */
bool txmap_box_post(txmap_box_t *b, const txmap_victim_t *v);
/* The worker: take up to max victims. How many. */
int txmap_box_take(txmap_box_t *b, txmap_victim_t *out, int max);

#endif
