/*
 * test_metrics_text.c — the Prometheus text of given figures: every sample
 * belongs to a metric with # HELP and # TYPE, label values are escaped,
 * histogram buckets are cumulative and end with +Inf = _count, and the
 * hot keys, tables and nodes come out as given.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/metrics_text.h"

static char *render(const figures_t *f, const metrics_node_t *n, int count,
                    const recovery_stats_t *rec)
{
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);

	assert_non_null(out);
	metrics_text_write(out, f, n, count, rec);
	assert_int_equal(fclose(out), 0);
	return text;
}

static char *escaped(const char *value)
{
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);

	metrics_text_label(out, value);
	fclose(out);
	return text;
}

static void test_label_values_are_escaped(void **state)
{
	char *s = escaped("a\"b\\c\nd");

	(void)state;
	assert_string_equal(s, "a\\\"b\\\\c\\nd");
	free(s);
	/* UTF-8 as it is; other bytes (Latin-1 here) as a bytea's hex, the backslash escaped */
	s = escaped("caf\xc3\xa9");
	assert_string_equal(s, "caf\xc3\xa9");
	free(s);
	s = escaped("caf\xe9\"");
	assert_string_equal(s, "\\\\x636166e922");
	free(s);
}

/* A figures_t with one primary that ran three statements and one hot key. */
static figures_t *sample_figures(void)
{
	static figures_node_t node;
	static figures_t f;

	memset(&f, 0, sizeof f);
	memset(&node, 0, sizeof node);
	node.shard = 1;
	node.role = NODE_PRIMARY;
	node.host = "127.0.0.1";
	node.port = 5701;
	node.c.statements = 3;
	node.c.errors = 1;
	stats_hist_add(&node.c.latency, 1);
	stats_hist_add(&node.c.latency, 100);
	stats_hist_add(&node.c.latency, 5000);
	node.sv_idle = 2;
	f.nodes = &node;
	f.n_nodes = 1;
	f.clients[CL_IDLE] = 4;
	hotkeys_init(&f.hot, 8);
	hotkeys_sketch_add(&f.hot.sketch, "users", "say \"hi\"", 1, 7);
	f.hot.shard_statements[1] = 9;
	snprintf(f.hot.tables[0].table, sizeof f.hot.tables[0].table, "users");
	f.hot.tables[0].shard = 1;
	f.hot.tables[0].statements = 9;
	f.hot.n_tables = 1;
	return &f;
}

/* The name of a sample or TYPE line's metric, up to '{' or ' '. */
static void name_of(const char *line, char *name, size_t size)
{
	size_t n = strcspn(line, "{ ");

	assert_true(n < size);
	memcpy(name, line, n);
	name[n] = '\0';
}

static void test_every_sample_has_its_type_and_help(void **state)
{
	metrics_node_t nodes[] = {
	    {1, NODE_PRIMARY, "127.0.0.1", 5701, 1, -1, -1},
	    {1, NODE_REPLICA, "127.0.0.1", 5711, 0, 4096, 1500},
	    {2, NODE_PRIMARY, "127.0.0.1", 5702, -1, -1, -1},
	};
	recovery_stats_t rec = {.committed = 1, .in_doubt = 2, .rounds = 3};
	char *text = render(sample_figures(), nodes, 3, &rec), *save = NULL;
	char typed[64][96];
	int n_typed = 0, samples = 0;

	(void)state;
	for (char *line = strtok_r(text, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		char name[96], base[96];
		bool found = false;

		if (strncmp(line, "# HELP ", 7) == 0)
			continue;
		if (strncmp(line, "# TYPE ", 7) == 0) {
			name_of(line + 7, typed[n_typed++], sizeof typed[0]);
			continue;
		}
		samples++;
		name_of(line, name, sizeof name);
		snprintf(base, sizeof base, "%s", name);
		/* a histogram's samples are its name with _bucket, _sum, _count */
		for (const char *suffix = "_bucket"; suffix != NULL;
		     suffix = strcmp(suffix, "_bucket") == 0 ? "_sum"
		              : strcmp(suffix, "_sum") == 0  ? "_count"
		                                             : NULL) {
			size_t bl = strlen(base), sl = strlen(suffix);

			if (bl > sl && strcmp(base + bl - sl, suffix) == 0 &&
			    strncmp(base, "pgshard_statement_duration_seconds", bl - sl) == 0)
				base[bl - sl] = '\0';
		}
		for (int i = 0; i < n_typed; i++)
			found |= strcmp(typed[i], base) == 0;
		assert_true(found);
		/* name{labels} value, or name value (recovery's counts have no labels) */
		if (strchr(line, '{') != NULL) {
			assert_non_null(strchr(line, '}'));
			assert_true(strchr(line, '}')[1] == ' ');
		} else {
			assert_true(line[strlen(name)] == ' ');
		}
	}
	assert_true(samples > 40);
	free(text);
}

static void test_histogram_is_cumulative_and_counts_match(void **state)
{
	char *text = render(sample_figures(), NULL, 0, NULL);

	(void)state;
	/* 1 us in le=0.000001; 100 us in le=0.000128; 5000 us in le=0.008192 */
	assert_non_null(strstr(text, ",le=\"0.000001\"} 1\n"));
	assert_non_null(strstr(text, ",le=\"0.000064\"} 1\n"));
	assert_non_null(strstr(text, ",le=\"0.000128\"} 2\n"));
	assert_non_null(strstr(text, ",le=\"0.008192\"} 3\n"));
	assert_non_null(strstr(text, ",le=\"+Inf\"} 3\n"));
	assert_non_null(strstr(text, "pgshard_statement_duration_seconds_count{shard=\"1\","
	                             "role=\"primary\",node=\"127.0.0.1:5701\"} 3\n"));
	assert_non_null(strstr(text, "pgshard_statement_duration_seconds_sum{shard=\"1\","
	                             "role=\"primary\",node=\"127.0.0.1:5701\"} 0.005101\n"));
	free(text);
}

static void test_counters_gauges_and_hot_keys_as_given(void **state)
{
	metrics_node_t nodes[] = {
	    {1, NODE_REPLICA, "127.0.0.1", 5711, 0, 4096, 1500},
	    {2, NODE_PRIMARY, "127.0.0.1", 5702, -1, -1, -1},
	};
	recovery_stats_t rec = {.committed = 3, .rolled_back = 2, .in_doubt = 1, .rounds = 40};
	char *text = render(sample_figures(), nodes, 2, &rec);

	(void)state;
	assert_non_null(strstr(text, "# TYPE pgshard_statements_total counter\n"));
	assert_non_null(strstr(text, "# TYPE pgshard_recovery_in_doubt gauge\n"
	                             "pgshard_recovery_in_doubt 1\n"));
	assert_non_null(strstr(text, "pgshard_recovery_committed_total 3\n"));
	assert_non_null(strstr(text, "pgshard_recovery_rolled_back_total 2\n"));
	assert_non_null(strstr(text, "pgshard_recovery_rounds_total 40\n"));
	assert_non_null(strstr(text, "pgshard_statements_total{shard=\"1\",role=\"primary\","
	                             "node=\"127.0.0.1:5701\"} 3\n"));
	assert_non_null(strstr(text, "pgshard_errors_total{shard=\"1\",role=\"primary\","
	                             "node=\"127.0.0.1:5701\"} 1\n"));
	assert_non_null(strstr(text, "pgshard_pool_server_connections{shard=\"1\",role=\"primary\","
	                             "node=\"127.0.0.1:5701\",state=\"idle\"} 2\n"));
	assert_non_null(strstr(text, "pgshard_client_connections{state=\"idle\"} 4\n"));
	assert_non_null(strstr(text, "pgshard_node_up{shard=\"1\",role=\"replica\","
	                             "node=\"127.0.0.1:5711\"} 0\n"));
	/* a node not checked yet has no up sample */
	assert_null(strstr(text, "pgshard_node_up{shard=\"2\""));
	assert_non_null(strstr(text, "pgshard_replica_lag_bytes{shard=\"1\",role=\"replica\","
	                             "node=\"127.0.0.1:5711\"} 4096\n"));
	assert_non_null(strstr(text, "pgshard_replica_lag_seconds{shard=\"1\",role=\"replica\","
	                             "node=\"127.0.0.1:5711\"} 1.500\n"));
	assert_non_null(strstr(text, "pgshard_shard_statements_total{shard=\"1\"} 9\n"));
	assert_non_null(
	    strstr(text, "pgshard_table_statements_total{table=\"users\",shard=\"1\"} 9\n"));
	assert_non_null(strstr(text, "pgshard_hot_key_statements{table=\"users\","
	                             "key=\"say \\\"hi\\\"\",shard=\"1\"} 7\n"));
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_label_values_are_escaped),
	    cmocka_unit_test(test_every_sample_has_its_type_and_help),
	    cmocka_unit_test(test_histogram_is_cumulative_and_counts_match),
	    cmocka_unit_test(test_counters_gauges_and_hot_keys_as_given),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
