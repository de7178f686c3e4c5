/*
 * metrics_text.c — writing the Prometheus text exposition (see
 * metrics_text.h).
 */
#include "proxy/metrics_text.h"

#include <string.h>

void metrics_text_label(FILE *out, const char *value)
{
	size_t n = strlen(value);
	bool cut_short;

	/* the format is UTF-8: other bytes go as a bytea's hex, its backslash escaped */
	if (hotkeys_utf8_prefix(value, n, &cut_short) != n) {
		fputs("\\\\x", out);
		for (size_t i = 0; i < n; i++)
			fprintf(out, "%02x", (unsigned)(uint8_t)value[i]);
		return;
	}
	for (const char *p = value; *p; p++) {
		if (*p == '\\')
			fputs("\\\\", out);
		else if (*p == '"')
			fputs("\\\"", out);
		else if (*p == '\n')
			fputs("\\n", out);
		else
			fputc(*p, out);
	}
}

static void header(FILE *out, const char *name, const char *type, const char *help)
{
	fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* {shard="0",role="primary",node="host:port" and the closing brace left to the caller */
static void node_labels(FILE *out, int shard, node_role_t role, const char *host, int port)
{
	fprintf(out, "{shard=\"%d\",role=\"%s\",node=\"", shard, nodes_role_name(role));
	metrics_text_label(out, host);
	fprintf(out, ":%d\"", port);
}

typedef uint64_t (*counter_fn)(const figures_node_t *r);

static uint64_t statements(const figures_node_t *r)
{
	return r->c.statements;
}

static uint64_t transactions(const figures_node_t *r)
{
	return r->c.transactions;
}

static uint64_t errors(const figures_node_t *r)
{
	return r->c.errors;
}

static uint64_t bytes_in(const figures_node_t *r)
{
	return r->c.bytes_in;
}

static uint64_t bytes_out(const figures_node_t *r)
{
	return r->c.bytes_out;
}

static void per_node(FILE *out, const figures_t *f, const char *name, const char *type,
                     const char *help, counter_fn value)
{
	header(out, name, type, help);
	for (int i = 0; i < f->n_nodes; i++) {
		const figures_node_t *r = &f->nodes[i];

		fputs(name, out);
		node_labels(out, r->shard, r->role, r->host, r->port);
		fprintf(out, "} %llu\n", (unsigned long long)value(r));
	}
}

/* Latency as a Prometheus histogram: bucket b's bound is 2^b microseconds. */
static void durations(FILE *out, const figures_t *f)
{
	const char *name = "pgshard_statement_duration_seconds";

	header(out, name, "histogram",
	       "Statement latency on a node, from its first message to ReadyForQuery.");
	for (int i = 0; i < f->n_nodes; i++) {
		const figures_node_t *r = &f->nodes[i];
		const stats_hist_t *h = &r->c.latency;
		uint64_t cumulative = 0;

		for (int b = 0; b < STATS_BUCKETS; b++) {
			cumulative += h->buckets[b];
			fprintf(out, "%s_bucket", name);
			node_labels(out, r->shard, r->role, r->host, r->port);
			if (b == STATS_BUCKETS - 1)
				fprintf(out, ",le=\"+Inf\"} %llu\n",
				        (unsigned long long)cumulative);
			else
				fprintf(out, ",le=\"%.6f\"} %llu\n",
				        (double)stats_bucket_bound(b) / 1e6,
				        (unsigned long long)cumulative);
		}
		fprintf(out, "%s_sum", name);
		node_labels(out, r->shard, r->role, r->host, r->port);
		fprintf(out, "} %.6f\n", (double)h->sum_us / 1e6);
		fprintf(out, "%s_count", name);
		node_labels(out, r->shard, r->role, r->host, r->port);
		fprintf(out, "} %llu\n", (unsigned long long)cumulative);
	}
}

static void pools(FILE *out, const figures_t *f)
{
	static const char *const client_states[] = {"login", "idle", "waiting", "active"};

	header(out, "pgshard_pool_server_connections", "gauge",
	       "Server connections of the pools of a node, by state.");
	for (int i = 0; i < f->n_nodes; i++) {
		const figures_node_t *r = &f->nodes[i];
		const struct {
			const char *state;
			int n;
		} by[] = {{"active", r->sv_active},
		          {"idle", r->sv_idle},
		          {"connecting", r->sv_connecting}};

		for (size_t k = 0; k < sizeof(by) / sizeof(by[0]); k++) {
			fputs("pgshard_pool_server_connections", out);
			node_labels(out, r->shard, r->role, r->host, r->port);
			fprintf(out, ",state=\"%s\"} %d\n", by[k].state, by[k].n);
		}
	}
	header(out, "pgshard_pool_clients", "gauge",
	       "Clients served by (active) or waiting for the pools of a node.");
	for (int i = 0; i < f->n_nodes; i++) {
		const figures_node_t *r = &f->nodes[i];

		fputs("pgshard_pool_clients", out);
		node_labels(out, r->shard, r->role, r->host, r->port);
		fprintf(out, ",state=\"active\"} %d\n", r->cl_active);
		fputs("pgshard_pool_clients", out);
		node_labels(out, r->shard, r->role, r->host, r->port);
		fprintf(out, ",state=\"waiting\"} %d\n", r->cl_waiting);
	}
	header(out, "pgshard_client_connections", "gauge", "Client connections, by state.");
	for (int s = CL_LOGIN; s <= CL_ACTIVE; s++)
		fprintf(out, "pgshard_client_connections{state=\"%s\"} %d\n", client_states[s],
		        f->clients[s]);
}

static void nodes(FILE *out, const metrics_node_t *n, int count)
{
	header(out, "pgshard_node_up", "gauge",
	       "1 when the node's last health check answered, 0 when it failed.");
	for (int i = 0; i < count; i++) {
		if (n[i].up < 0)
			continue;
		fputs("pgshard_node_up", out);
		node_labels(out, n[i].shard, n[i].role, n[i].host, n[i].port);
		fprintf(out, "} %d\n", n[i].up);
	}
	header(out, "pgshard_replica_lag_bytes", "gauge",
	       "WAL a replica's primary has that the replica has not replayed.");
	for (int i = 0; i < count; i++) {
		if (n[i].role != NODE_REPLICA || n[i].lag_bytes < 0)
			continue;
		fputs("pgshard_replica_lag_bytes", out);
		node_labels(out, n[i].shard, n[i].role, n[i].host, n[i].port);
		fprintf(out, "} %lld\n", (long long)n[i].lag_bytes);
	}
	header(out, "pgshard_replica_lag_seconds", "gauge",
	       "How long ago a replica's primary had WAL the replica lacks.");
	for (int i = 0; i < count; i++) {
		if (n[i].role != NODE_REPLICA || n[i].lag_ms < 0)
			continue;
		fputs("pgshard_replica_lag_seconds", out);
		node_labels(out, n[i].shard, n[i].role, n[i].host, n[i].port);
		fprintf(out, "} %.3f\n", (double)n[i].lag_ms / 1000.0);
	}
}

static void load(FILE *out, const figures_t *f)
{
	const hotkeys_t *h = &f->hot;

	header(out, "pgshard_shard_statements_total", "counter",
	       "Statements routed to a shard (transaction control not counted).");
	for (int s = 0; s < SHARD_MAX; s++)
		if (h->shard_statements[s] > 0)
			fprintf(out, "pgshard_shard_statements_total{shard=\"%d\"} %llu\n", s,
			        (unsigned long long)h->shard_statements[s]);
	header(out, "pgshard_table_statements_total", "counter",
	       "Statements routed to a shard that named a configured table.");
	for (int i = 0; i < h->n_tables; i++) {
		fputs("pgshard_table_statements_total{table=\"", out);
		metrics_text_label(out, h->tables[i].table);
		fprintf(out, "\",shard=\"%d\"} %llu\n", h->tables[i].shard,
		        (unsigned long long)h->tables[i].statements);
	}
	header(out, "pgshard_hot_key_statements", "gauge",
	       "Recent statements of the heaviest shard keys (a bounded sketch's estimate, never "
	       "below the true count; halved every minute).");
	for (int i = 0; i < h->sketch.n; i++) {
		const hotkey_t *k = &h->sketch.items[i];

		fputs("pgshard_hot_key_statements{table=\"", out);
		metrics_text_label(out, k->table);
		fputs("\",key=\"", out);
		metrics_text_label(out, k->key);
		fprintf(out, "\",shard=\"%d\"} %llu\n", k->shard, (unsigned long long)k->count);
	}
}

/* Two-phase-commit recovery, as SHOW RECOVERY shows it (SHOW TRANSACTIONS lists the gids). */
static void recovery(FILE *out, const recovery_stats_t *r)
{
	header(out, "pgshard_recovery_committed_total", "counter",
	       "Prepared transactions two-phase-commit recovery committed.");
	fprintf(out, "pgshard_recovery_committed_total %llu\n", (unsigned long long)r->committed);
	header(out, "pgshard_recovery_rolled_back_total", "counter",
	       "Prepared transactions two-phase-commit recovery rolled back.");
	fprintf(out, "pgshard_recovery_rolled_back_total %llu\n",
	        (unsigned long long)r->rolled_back);
	header(out, "pgshard_recovery_in_doubt", "gauge",
	       "Prepared transactions recovery left in doubt in its last round (one per shard "
	       "holding one).");
	fprintf(out, "pgshard_recovery_in_doubt %d\n", r->in_doubt);
	header(out, "pgshard_recovery_rounds_total", "counter", "Recovery rounds finished.");
	fprintf(out, "pgshard_recovery_rounds_total %llu\n", (unsigned long long)r->rounds);
}

void metrics_text_write(FILE *out, const figures_t *f, const metrics_node_t *n, int n_nodes,
                        const recovery_stats_t *rec)
{
	per_node(out, f, "pgshard_statements_total", "counter",
	         "Statements a node answered (ReadyForQuery).", statements);
	per_node(out, f, "pgshard_transactions_total", "counter",
	         "Transactions that ended on a node.", transactions);
	per_node(out, f, "pgshard_errors_total", "counter", "ErrorResponses a node sent.", errors);
	per_node(out, f, "pgshard_bytes_received_total", "counter", "Bytes received from a node.",
	         bytes_in);
	per_node(out, f, "pgshard_bytes_sent_total", "counter", "Bytes sent to a node.", bytes_out);
	durations(out, f);
	pools(out, f);
	nodes(out, n, n_nodes);
	load(out, f);
	if (rec != NULL)
		recovery(out, rec);
}
