/*
 * nodes.h — the PostgreSQL servers behind pgshard, and what is known about
 * them.
 *
 * A node is one server: a shard's primary or one of its replicas. The node
 * table is built from a config (every shard's primary, then its `replica =`
 * lines in file order) and never changes; a reload builds a new one. Node
 * ids are positions in the table: shard 0's primary, its replicas, shard 1's
 * primary, ... so they move when a reload adds or removes a node, and
 * whatever outlives a config (pools) names a node by what it is (shard,
 * role, host, port), not by id.
 *
 * What is known about a node changes: whether it answers, when it was last
 * checked, why it is down, which address its host name resolves to. The
 * control thread (control.c) learns it and publishes it as a view: an
 * immutable array of node states for one table. Publishing never modifies a
 * view a reader may hold; it makes a new one and hands each worker a
 * reference through a mailbox (a single atomic pointer), so a worker reads
 * its view with plain loads and takes no lock, and a view is freed by
 * whoever drops its last reference (RCU by reference counts: readers
 * cannot be caught mid-read by a free, because each holds its own
 * reference).
 *
 * Pure: no sockets, no threads, no libevent; unit tested in
 * proxy/tests/test_nodes.c.
 */
#ifndef PGSHARD_NODES_H
#define PGSHARD_NODES_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config/config.h"

typedef enum node_role {
	NODE_PRIMARY,
	NODE_REPLICA,
} node_role_t;

typedef enum node_health {
	NODE_UNKNOWN, /* not checked yet */
	NODE_UP,      /* the last check logged in and got an answer */
	NODE_DOWN,    /* the last check failed (node_state_t.error says why) */
} node_health_t;

typedef struct node {
	int id; /* index in nodes_table_t.nodes */
	int shard;
	node_role_t role;
	int replica; /* replicas: 0, 1, ... in file order; the primary: -1 */
	char *conninfo;
	char *host;
	int port;
	char *dbname;   /* NULL: the client's database name */
	char *user;     /* NULL: the client's user name */
	char *password; /* from the conninfo; NULL: the users file entry of the user */

	/* how the control thread logs in to check the node (the data path uses the above) */
	char *check_user;     /* user, else the users file's first user; NULL: libpq's default */
	char *check_password; /* password, else check_user's users file entry; may be NULL */
	char *check_dbname;   /* dbname, else "postgres" */
} node_t;

typedef struct nodes_table {
	atomic_int refs;
	node_t *nodes;
	int n;
	int n_shards;
	int *first; /* by shard, n_shards + 1 entries: its primary's id; its replicas follow */
} nodes_table_t;

/* Build the table of cfg's nodes (one reference). NULL: out of memory. */
nodes_table_t *nodes_table_new(const cfg_t *cfg);
nodes_table_t *nodes_table_get(nodes_table_t *t);
void nodes_table_put(nodes_table_t *t);

/* Shard `shard`'s primary, or NULL for a shard the table does not have. */
const node_t *nodes_primary(const nodes_table_t *t, int shard);
int nodes_n_replicas(const nodes_table_t *t, int shard);
/* Its replica i (0-based, file order), or NULL. */
const node_t *nodes_replica(const nodes_table_t *t, int shard, int i);
/* The same server in the same place (shard, role, host, port): what a reload keeps. */
bool nodes_same(const node_t *a, const node_t *b);

/*
 * How the control thread logs in to a node with libpq: the parameters for
 * PQconnectStartParams(keys, vals, expand_dbname = 1), the node's conninfo
 * first and then what overrides it. The strings point into the node (and
 * the arguments): use them before the node's table is dropped.
 */
typedef enum nodes_login_as {
	NODES_LOGIN_CHECK,    /* as the health check: check_user, check_password, check_dbname */
	NODES_LOGIN_CONNINFO, /* as the conninfo's own user, in its own database */
} nodes_login_as_t;

#define NODES_LOGIN_MAX 8

typedef struct nodes_login {
	const char *keys[NODES_LOGIN_MAX]; /* NULL-terminated */
	const char *vals[NODES_LOGIN_MAX];
	bool withheld_password; /* the users file has only a hash of it, which libpq cannot use */
} nodes_login_t;

/*
 * Fill l for logging in to n as `as` says, with application_name and, when
 * not NULL, options (which replace the conninfo's own: pass them merged).
 * false: NODES_LOGIN_CONNINFO of a conninfo that leaves the user or the
 * database to the client.
 */
bool nodes_login(nodes_login_t *l, const node_t *n, nodes_login_as_t as,
                 const char *application_name, const char *options);
/*
 * As NODES_LOGIN_CONNINFO, but in database dbname (the conninfo's own
 * overridden): for work that must run in a database the conninfo does not
 * name. false: a conninfo that leaves the user to the client. dbname must
 * outlive l.
 */
bool nodes_login_in(nodes_login_t *l, const node_t *n, const char *dbname,
                    const char *application_name, const char *options);

const char *nodes_role_name(node_role_t r);
const char *nodes_health_name(node_health_t h);

/* What the control thread last learned about a node. */
typedef struct node_state {
	node_health_t health;
	int in_recovery;       /* pg_is_in_recovery() at the last check: 1, 0; -1 unknown */
	int64_t checked_at_ms; /* when the last check ended (ms since the epoch); 0: never */
	int64_t changed_at_ms; /* when health last changed; 0: never */
	char error[256];       /* why it is down; empty when it is not */
	/*
	 * WAL positions, for reads on replicas (replica.h). The primary's is
	 * pg_current_wal_insert_lsn(), a replica's pg_last_wal_replay_lsn(),
	 * as of a query sent at lsn_at_us (CLOCK_MONOTONIC, µs): whatever the
	 * primary had committed before then is at or below its lsn. 0: not
	 * known.
	 */
	uint64_t lsn;
	uint64_t lsn_at_us;
	int64_t lag_bytes; /* replicas: WAL its primary has that it has not replayed; -1 unknown */
	int64_t lag_ms;    /* replicas: how long ago its primary had WAL it lacks; -1 unknown */
	socklen_t addrlen; /* 0: the host name is not resolved (yet) */
	struct sockaddr_storage addr; /* host and port, resolved off the worker loops */
} node_state_t;

/* An immutable snapshot of every node's state, for one table. */
typedef struct nodes_view {
	atomic_int refs;
	uint64_t version;     /* grows with each view the control thread publishes */
	nodes_table_t *table; /* holds a reference */
	node_state_t *states; /* by node id */
} nodes_view_t;

/*
 * A new, still private view of table t (takes its own reference to t):
 * each node's state is carried over from `from` when `from` has the same
 * node (nodes_same), and its address when it has the same host and port;
 * the rest are unknown and unresolved. `from` may be NULL or of another
 * table (a reload). NULL: out of memory.
 */
nodes_view_t *nodes_view_new(nodes_table_t *t, const nodes_view_t *from);
nodes_view_t *nodes_view_get(nodes_view_t *v);
void nodes_view_put(nodes_view_t *v);

/*
 * n's state in v, whatever table n comes from (the worker's config and the
 * control thread's latest view may be a reload apart): the same id when v
 * is of n's table, else the node of v's table that is the same; NULL when v
 * does not know n.
 */
const node_state_t *nodes_view_state(const nodes_view_t *v, const node_t *n);
/* The published address of host:port, whichever node has it. false: none yet. */
bool nodes_view_addr(const nodes_view_t *v, const char *host, int port,
                     struct sockaddr_storage *addr, socklen_t *addrlen);

/*
 * A mailbox for views: one slot, written by the publisher, emptied by the
 * reader. Posting replaces a view the reader has not taken yet (it is
 * stale); neither side blocks or takes a lock.
 */
typedef struct nodes_box {
	_Atomic(nodes_view_t *) next;
} nodes_box_t;

/* Post v (the box takes a reference of its own). */
void nodes_box_post(nodes_box_t *b, nodes_view_t *v);
/* The view posted since the last take (the caller owns its reference), or NULL. */
nodes_view_t *nodes_box_take(nodes_box_t *b);
/* Drop what the box still holds (at shutdown). */
void nodes_box_clear(nodes_box_t *b);

#endif
