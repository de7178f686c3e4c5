/*
 * figures.h — every worker's figures, gathered (figures.c): the counters of
 * its pools per node (stats.h), its pools' and clients' counts, and where
 * its statements went (hotkeys.h), added up over the workers. The admin
 * console's SHOW STATS, SHOW HOT KEYS and SHOW TABLES and the metrics
 * endpoint (metrics.c) read the same figures this one way.
 *
 * A gathering is a job posted to every worker's mailbox (adminbox.h): each
 * worker fills in its part on its own thread, and the worker that asked gets
 * the sum when the last part is in.
 */
#ifndef PGSHARD_PROXY_FIGURES_H
#define PGSHARD_PROXY_FIGURES_H

#include "proxy/hotkeys.h"
#include "proxy/proxy.h"
#include "proxy/stats.h"

/* One node's figures over every worker's pools of it (all databases and users). */
typedef struct figures_node {
	int shard;
	node_role_t role;
	char *host;
	int port;
	stats_counters_t c;
	int cl_active, cl_waiting;             /* clients served by, or waiting for, its pools */
	int sv_active, sv_idle, sv_connecting; /* its server connections */
} figures_node_t;

typedef struct figures {
	figures_node_t *nodes; /* by shard, role, host, port */
	int n_nodes;
	int clients[CL_CLOSED + 1]; /* client connections by state */
	hotkeys_t hot;              /* its sketch sorted, largest count first */
	bool nomem;                 /* some figures are missing: memory ran out */
} figures_t;

/* On the worker that asked: every part is in. f lives until it returns; NULL: out of memory. */
typedef void (*figures_fn)(worker_t *w, const figures_t *f, uint64_t id, int what);

/*
 * Gather every worker's figures; done(w, figures, id, what) runs on worker
 * `origin` (id and what are the caller's, passed through). 0, or -1 when
 * memory ran out (done is then never called).
 */
int figures_gather(int origin, figures_fn done, uint64_t id, int what);

#endif
