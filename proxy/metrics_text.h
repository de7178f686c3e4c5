/*
 * metrics_text.h — the Prometheus text exposition of pgshard's figures
 * (metrics_text.c): what GET /metrics answers (metrics.c).
 *
 * Names follow Prometheus' conventions: pgshard_ prefix, _total for
 * counters, units in the name (_seconds, _bytes), labels shard, role and
 * node (host:port) for what a node did, state for gauges split by state.
 * Every metric has its # HELP and # TYPE lines; label values are escaped
 * (backslash, double quote, newline).
 *
 * Pure: figures and node states in, text out; tested in
 * proxy/tests/test_metrics_text.c.
 */
#ifndef PGSHARD_PROXY_METRICS_TEXT_H
#define PGSHARD_PROXY_METRICS_TEXT_H

#include <stdint.h>
#include <stdio.h>

#include "proxy/figures.h"
#include "proxy/nodes.h"
#include "proxy/recovery.h"

/* A configured node as the control thread last saw it. */
typedef struct metrics_node {
	int shard;
	node_role_t role;
	const char *host;
	int port;
	int up;            /* 1 up, 0 down, -1 not checked yet (no sample) */
	int64_t lag_bytes; /* replicas; -1 unknown (no sample) */
	int64_t lag_ms;    /* replicas; -1 unknown (no sample) */
} metrics_node_t;

/* The exposition of f, the nodes and recovery's counts (rec, NULL: none), written to out. */
void metrics_text_write(FILE *out, const figures_t *f, const metrics_node_t *nodes, int n_nodes,
                        const recovery_stats_t *rec);

/* A label value escaped for the text format, written to out. */
void metrics_text_label(FILE *out, const char *value);

#endif
