/*
 * test_route_steps.c — a plan's steps (router/route_steps.c), pinned from
 * real SQL: each kind of step, the shard a ONE step names or leaves to the
 * executor, the merge of an EACH step, the TXN step in front of transaction
 * control, refusals, and that the plan cache and a routing with the
 * parameters give the steps route_statement gives.
 *
 * The helpers, the config, and why no test hard-codes a shard: route_expect.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/plancache.h"
#include "router/route.h"

#include "router/tests/route_config.h"
#include "router/tests/route_expect.h"

static shard_set_t set_of(int a, int b)
{
	shard_set_t s;

	shard_set_clear(&s);
	if (a >= 0)
		shard_set_add(&s, a);
	if (b >= 0)
		shard_set_add(&s, b);
	return s;
}

static shard_set_t every_shard(void)
{
	shard_set_t s;

	shard_set_clear(&s);
	for (int i = 0; i < cfg->n_shards; i++)
		shard_set_add(&s, i);
	return s;
}

static void expect_step(const char *sql, const route_step_t *st, route_step_kind_t kind,
                        const shard_set_t *shards, route_merge_t merge)
{
	char a[128], b[128];

	if (st->kind != kind)
		fail_msg("\"%s\": expected a %s step, got %s", sql, route_step_kind_name(kind),
		         route_step_kind_name(st->kind));
	if (memcmp(&st->shards, shards, sizeof *shards) != 0) {
		set_print(a, sizeof a, shards);
		set_print(b, sizeof b, &st->shards);
		fail_msg("\"%s\": expected step shards {%s}, got {%s}", sql, a, b);
	}
	if (st->merge != merge)
		fail_msg("\"%s\": expected step merge %d, got %d", sql, (int)merge, (int)st->merge);
}

/* One step, of this kind, on these shards. */
static route_plan_t one_step(const char *sql, route_step_kind_t kind, const shard_set_t *shards,
                             route_merge_t merge)
{
	route_plan_t p = route(sql);

	assert_int_equal(p.n_steps, 1);
	expect_step(sql, &p.steps[0], kind, shards, merge);
	assert_ptr_equal(route_step_routed(&p), &p.steps[0]);
	return p;
}

/* ---- ONE ---- */

static void test_key_equals_is_one_step_on_the_key_shard(void **state)
{
	const char *sql = "SELECT * FROM users WHERE id = 42";
	int s = shard_of("users", 42);
	shard_set_t want = set_of(s, -1);
	route_plan_t p;

	(void)state;
	p = one_step(sql, ROUTE_STEP_ONE, &want, ROUTE_MERGE_NONE);
	assert_int_equal(p.steps[0].shard, s);
}

static void test_statement_on_no_configured_table_is_one_on_the_default_shard(void **state)
{
	shard_set_t want = set_of(cfg->default_shard, -1);
	route_plan_t p;

	(void)state;
	p = one_step("SELECT version()", ROUTE_STEP_ONE, &want, ROUTE_MERGE_NONE);
	assert_int_equal(p.steps[0].shard, cfg->default_shard);
}

static void test_reference_read_is_one_whose_shard_the_executor_picks(void **state)
{
	shard_set_t want = set_of(cfg->default_shard, -1);
	route_plan_t p;

	(void)state;
	p = one_step("SELECT * FROM countries", ROUTE_STEP_ONE, &want, ROUTE_MERGE_NONE);
	assert_int_equal(p.steps[0].shard, -1);
}

static void test_routing_comment_shard_is_one_on_that_shard(void **state)
{
	shard_set_t want = set_of(2, -1);
	route_plan_t p;

	(void)state;
	p = one_step("/* pgshard: shard=2 */ SELECT * FROM users", ROUTE_STEP_ONE, &want,
	             ROUTE_MERGE_NONE);
	assert_int_equal(p.steps[0].shard, 2);
}

/* ---- EACH and GATHER ---- */

static void test_in_over_two_shards_is_each_adding_up(void **state)
{
	int64_t b = key_elsewhere("users", 1);
	shard_set_t want = set_of(shard_of("users", 1), shard_of("users", b));
	char sql[128];

	(void)state;
	snprintf(sql, sizeof sql, "SELECT * FROM users WHERE id IN (1, %lld)", (long long)b);
	one_step(sql, ROUTE_STEP_EACH, &want, ROUTE_MERGE_SUM);
	snprintf(sql, sizeof sql, "UPDATE users SET n = 0 WHERE id IN (1, %lld)", (long long)b);
	one_step(sql, ROUTE_STEP_EACH, &want, ROUTE_MERGE_SUM);
}

static void test_ddl_is_each_taking_one_copy_on_every_shard(void **state)
{
	shard_set_t all = every_shard();

	(void)state;
	one_step("CREATE INDEX ON users (n)", ROUTE_STEP_EACH, &all, ROUTE_MERGE_ONE);
	one_step("INSERT INTO countries VALUES (1, 'x')", ROUTE_STEP_EACH, &all, ROUTE_MERGE_ONE);
	one_step("/* pgshard: all */ DROP INDEX i", ROUTE_STEP_EACH, &all, ROUTE_MERGE_ONE);
}

static void test_count_over_shards_is_each_adding_counts(void **state)
{
	(void)state;
	one_step("SELECT count(*) FROM users", ROUTE_STEP_EACH, &map_named("users")->all,
	         ROUTE_MERGE_COUNT);
}

static void test_order_by_limit_over_shards_is_gather(void **state)
{
	(void)state;
	one_step("SELECT * FROM users ORDER BY id LIMIT 10", ROUTE_STEP_GATHER,
	         &map_named("users")->all, ROUTE_MERGE_GATHER);
	one_step("SELECT n, sum(id) FROM users GROUP BY n", ROUTE_STEP_GATHER,
	         &map_named("users")->all, ROUTE_MERGE_GATHER);
}

/* ---- splits ---- */

static void test_multi_row_insert_over_shards_is_split_insert(void **state)
{
	int64_t b = key_elsewhere("users", 1), c = key_beside("users", 1);
	shard_set_t want = set_of(shard_of("users", 1), shard_of("users", b));
	shard_set_t one = set_of(shard_of("users", 1), -1);
	char sql[128];
	route_plan_t p;

	(void)state;
	snprintf(sql, sizeof sql, "INSERT INTO users (id) VALUES (1), (%lld)", (long long)b);
	p = one_step(sql, ROUTE_STEP_SPLIT_INSERT, &want, ROUTE_MERGE_SUM);
	assert_false(p.copy_from_stdin);
	/* rows of one shard are not split */
	snprintf(sql, sizeof sql, "INSERT INTO users (id) VALUES (1), (%lld)", (long long)c);
	one_step(sql, ROUTE_STEP_ONE, &one, ROUTE_MERGE_NONE);
}

static void test_copy_from_stdin_into_sharded_table_is_split_copy(void **state)
{
	shard_set_t all = every_shard();
	route_plan_t p;

	(void)state;
	p = one_step("COPY users (id, n) FROM STDIN", ROUTE_STEP_SPLIT_COPY,
	             &map_named("users")->all, ROUTE_MERGE_SUM);
	assert_true(p.copy_from_stdin);
	/* a reference table's copies each take every row: not split */
	p = one_step("COPY countries FROM STDIN", ROUTE_STEP_EACH, &all, ROUTE_MERGE_ONE);
	assert_true(p.copy_from_stdin);
	/* out of a sharded table: the rows of every shard */
	p = one_step("COPY users TO STDOUT", ROUTE_STEP_EACH, &map_named("users")->all,
	             ROUTE_MERGE_SUM);
	assert_false(p.copy_from_stdin);
}

/* ---- TXN ---- */

static void test_transaction_control_is_txn_then_where_it_runs(void **state)
{
	static const char *const sqls[] = {"BEGIN", "COMMIT", "ROLLBACK TO SAVEPOINT a",
	                                   "PREPARE TRANSACTION 'x'"};
	shard_set_t def = set_of(cfg->default_shard, -1), all = every_shard();
	route_plan_t p;

	(void)state;
	for (size_t i = 0; i < sizeof sqls / sizeof *sqls; i++) {
		p = route(sqls[i]);
		assert_int_equal(p.n_steps, 2);
		expect_step(sqls[i], &p.steps[0], ROUTE_STEP_TXN, &(shard_set_t){{0}},
		            ROUTE_MERGE_NONE);
		expect_step(sqls[i], &p.steps[1], ROUTE_STEP_ONE, &def, ROUTE_MERGE_NONE);
		assert_ptr_equal(route_step_routed(&p), &p.steps[1]);
	}
	p = route("/* pgshard: all */ COMMIT PREPARED 'x'");
	assert_int_equal(p.steps[0].kind, ROUTE_STEP_TXN);
	expect_step("COMMIT PREPARED", route_step_routed(&p), ROUTE_STEP_EACH, &all,
	            ROUTE_MERGE_ONE);
	/* among other statements it is not transaction control of its own */
	p = route("BEGIN; SELECT 1");
	assert_int_equal(p.n_steps, 1);
	assert_int_equal(p.steps[0].kind, ROUTE_STEP_ONE);
}

/* ---- REFUSE ---- */

static void test_refusals_are_one_refuse_step_with_their_sqlstate(void **state)
{
	size_t depth = 3 * ROUTE_MAX_SQL_DEPTH, len = 0;
	char *deep = malloc(2 * depth + 16);
	route_plan_t p;

	(void)state;
	p = route("WITH x AS (UPDATE users SET id = 7 WHERE id = 3 RETURNING 1) SELECT * FROM x");
	assert_int_equal(p.n_steps, 1);
	assert_int_equal(p.steps[0].kind, ROUTE_STEP_REFUSE);
	assert_string_equal(p.sqlstate, "0A000");
	p = route("/* pgshard: shard=9 */ BEGIN");
	assert_int_equal(p.n_steps, 1);
	assert_int_equal(p.steps[0].kind, ROUTE_STEP_REFUSE);
	assert_string_equal(p.sqlstate, "0A000");
	assert_non_null(strstr(p.reason, "refused: /* pgshard: shard=9 */"));

	assert_non_null(deep);
	len += (size_t)sprintf(deep, "SELECT ");
	for (size_t i = 0; i < depth; i++)
		deep[len++] = '(';
	deep[len++] = '1';
	for (size_t i = 0; i < depth; i++)
		deep[len++] = ')';
	deep[len] = '\0';
	p = route(deep);
	free(deep);
	assert_int_equal(p.steps[0].kind, ROUTE_STEP_REFUSE);
	assert_string_equal(p.sqlstate, "54001");
}

static void test_route_plan_refuse_makes_a_whole_refusal(void **state)
{
	route_plan_t p = route("SELECT * FROM users WHERE id IN (1, 2, 3, 4, 5, 6)");

	(void)state;
	route_plan_refuse(&p, "54000", "statement of %d bytes is too long", 70000);
	assert_int_equal(p.kind, ROUTE_REFUSE);
	assert_int_equal(shard_set_count(&p.shards), 0);
	assert_int_equal(p.merge, ROUTE_MERGE_NONE);
	assert_string_equal(p.sqlstate, "54000");
	assert_string_equal(p.error, "statement of 70000 bytes is too long");
	assert_string_equal(p.reason, "refused: statement of 70000 bytes is too long");
	assert_int_equal(p.n_steps, 1);
	assert_int_equal(p.steps[0].kind, ROUTE_STEP_REFUSE);
}

static void test_run_step_replaces_the_steps(void **state)
{
	route_plan_t p = route("COMMIT");
	shard_set_t links = set_of(0, 2);
	route_step_t each = route_step_each(&links, ROUTE_MERGE_ONE);

	(void)state;
	route_plan_run_step(&p, &each);
	assert_int_equal(p.n_steps, 1);
	expect_step("COMMIT", route_step_routed(&p), ROUTE_STEP_EACH, &links, ROUTE_MERGE_ONE);
	assert_memory_equal(&p.shards, &links, sizeof links);
	assert_int_equal(p.merge, ROUTE_MERGE_ONE);
	assert_false(p.split_insert);
}

/* ---- the plan cache, and parameters ---- */

/* A copy holds every field: all bytes but the unused room of the texts and of insert_keys. */
static void test_route_plan_copy_copies_every_field(void **state)
{
	route_plan_t *in = malloc(sizeof *in), *out = malloc(sizeof *out);
	size_t keys_end = offsetof(route_plan_t, insert_keys) + 2 * sizeof in->insert_keys[0];

	(void)state;
	assert_non_null(in);
	assert_non_null(out);
	for (size_t i = 0; i < sizeof *in; i++)
		((uint8_t *)in)[i] = (uint8_t)(i * 7 + 1);
	in->n_insert_keys = 2;
	strcpy(in->reason, "orders.user_id = 42 -> shard 1");
	strcpy(in->error, "");
	memset(out, 0, sizeof *out);
	route_plan_copy(out, in);
	assert_memory_equal(out, in, keys_end);
	assert_memory_equal(&out->n_insert_keys, &in->n_insert_keys,
	                    offsetof(route_plan_t, reason) - offsetof(route_plan_t, n_insert_keys));
	assert_string_equal(out->reason, in->reason);
	assert_string_equal(out->error, "");
	assert_memory_equal(out->sqlstate, in->sqlstate,
	                    sizeof *in - offsetof(route_plan_t, sqlstate));
	/* the room after the texts is not written */
	assert_int_equal(out->reason[strlen(in->reason) + 1], 0);
	free(in);
	free(out);
}

static void test_plan_cache_hit_keeps_the_steps(void **state)
{
	static const char *const sqls[] = {
	    "SELECT * FROM users WHERE id = 5",
	    "SELECT * FROM users WHERE id = 6",
	    "SELECT * FROM users ORDER BY id",
	    "SELECT count(*) FROM orders",
	    "COPY users FROM STDIN",
	    "BEGIN",
	    "UPDATE users SET id = 7 WHERE id = 3",
	    "SELECT * FROM countries",
	};
	route_cache_t *c = route_cache_new(&ctx, 64);
	route_cache_stats_t st;

	(void)state;
	assert_non_null(c);
	for (int round = 0; round < 2; round++) {
		for (size_t i = 0; i < sizeof sqls / sizeof *sqls; i++) {
			route_plan_t want = route(sqls[i]), got;

			assert_int_equal(route_statement_cached(c, sqls[i], NULL, 0, &got), 0);
			assert_int_equal(got.n_steps, want.n_steps);
			for (int k = 0; k < want.n_steps; k++) {
				expect_step(sqls[i], &got.steps[k], want.steps[k].kind,
				            &want.steps[k].shards, want.steps[k].merge);
				assert_int_equal(got.steps[k].shard, want.steps[k].shard);
			}
		}
	}
	route_cache_stats(c, &st);
	assert_true(st.hits >= sizeof sqls / sizeof *sqls);
	route_cache_free(c);
}

static void test_missing_parameter_then_routed_with_it(void **state)
{
	const char *sql = "SELECT * FROM users WHERE id = $1",
	           *subq = "SELECT * FROM users WHERE id = $1 AND n IN (SELECT n FROM orders)";
	route_param_t v = text_param("42");
	shard_set_t want = set_of(shard_of("users", 42), -1);
	route_plan_t p;

	(void)state;
	/* any value: every shard of the map */
	p = route(sql);
	assert_true(p.params_missing);
	expect_step(sql, &p.steps[0], ROUTE_STEP_EACH, &map_named("users")->all, ROUTE_MERGE_SUM);
	p = route_params(sql, &v, 1);
	assert_false(p.params_missing);
	assert_int_equal(p.n_steps, 1);
	expect_step(sql, &p.steps[0], ROUTE_STEP_ONE, &want, ROUTE_MERGE_NONE);
	assert_int_equal(p.steps[0].shard, shard_of("users", 42));

	/* judged when the value is known: no merge until then, and then a semi-join across
	   shards (test_join_plan.c) */
	p = route(subq);
	assert_true(p.params_missing);
	expect_step(subq, &p.steps[0], ROUTE_STEP_EACH, &map_named("users")->all, ROUTE_MERGE_NONE);
	p = route_params(subq, &v, 1);
	assert_int_equal(p.n_steps, 1);
	assert_int_equal(p.steps[0].kind, ROUTE_STEP_JOIN);
}

/* ---- how a statement in autocommit commits ---- */

static void test_writes_on_several_shards_commit_in_two_phases(void **state)
{
	int64_t b = key_elsewhere("users", 1);
	char sql[200];
	route_plan_t p;

	(void)state;
	p = route("SELECT * FROM users WHERE id IN (1, 2, 3)");
	assert_int_equal(route_plan_commit(&p), ROUTE_COMMIT_NONE);
	p = route("UPDATE users SET name = 'x' WHERE id = 1");
	assert_int_equal(route_plan_commit(&p), ROUTE_COMMIT_ONE);
	snprintf(sql, sizeof(sql), "UPDATE users SET name = 'x' WHERE id IN (1, %lld)",
	         (long long)b);
	p = route(sql);
	assert_int_equal(route_plan_commit(&p), ROUTE_COMMIT_TWO_PHASE);
	snprintf(sql, sizeof(sql), "INSERT INTO users (id, name) VALUES (1, 'a'), (%lld, 'b')",
	         (long long)b);
	p = route(sql);
	assert_int_equal(route_plan_commit(&p), ROUTE_COMMIT_TWO_PHASE);
	p = route("DELETE FROM users");
	assert_int_equal(route_plan_commit(&p), ROUTE_COMMIT_TWO_PHASE);
	p = route("CREATE INDEX ON users (name)");
	assert_int_equal(route_plan_commit(&p), ROUTE_COMMIT_TWO_PHASE);
	p = route("BEGIN");
	assert_int_equal(route_plan_commit(&p), ROUTE_COMMIT_NONE);
	p = route("UPDATE users SET id = id + 1 WHERE id = 1"); /* a move: it may write on two */
	assert_int_equal(route_plan_commit(&p), ROUTE_COMMIT_TWO_PHASE);
	p = route("MERGE INTO users u USING (SELECT 1 AS id) s ON u.id = s.id WHEN MATCHED THEN "
	          "UPDATE SET id = 9");
	assert_int_equal(route_plan_commit(&p), ROUTE_COMMIT_NONE); /* refused */
}

static void expect_commit(const char *sql, route_commit_t want)
{
	route_plan_t p = route(sql);

	if (route_plan_commit(&p) != want)
		fail_msg("\"%s\": expected commit %d, got %d (%s)", sql, (int)want,
		         (int)route_plan_commit(&p), p.reason);
}

/* DDL on every shard is wrapped and prepared like any write on several shards. */
static void test_ddl_on_several_shards_commits_in_two_phases(void **state)
{
	(void)state;
	expect_commit("CREATE TABLE users (id bigint primary key, n text)", ROUTE_COMMIT_TWO_PHASE);
	expect_commit("ALTER TABLE users ADD COLUMN note text", ROUTE_COMMIT_TWO_PHASE);
	expect_commit("DROP TABLE users", ROUTE_COMMIT_TWO_PHASE);
	expect_commit("DROP TABLE IF EXISTS users, orders", ROUTE_COMMIT_TWO_PHASE);
	expect_commit("CREATE INDEX users_n ON users (n)", ROUTE_COMMIT_TWO_PHASE);
	expect_commit("CREATE UNIQUE INDEX ON users (id)", ROUTE_COMMIT_TWO_PHASE);
	expect_commit("TRUNCATE users", ROUTE_COMMIT_TWO_PHASE);
	expect_commit("ANALYZE users", ROUTE_COMMIT_TWO_PHASE);
	expect_commit("COMMENT ON TABLE users IS 'x'", ROUTE_COMMIT_TWO_PHASE);
	expect_commit("/* pgshard: all */ DROP INDEX users_n", ROUTE_COMMIT_TWO_PHASE);
	/* on one shard it is that shard's own commit, as before */
	expect_commit("/* pgshard: shard=0 */ CREATE INDEX ON users (n)", ROUTE_COMMIT_ONE);
	/* what /\* pgshard: all *\/ sends to every shard writes there, but for SHOW and SET */
	expect_commit(
	    "/* pgshard: all */ CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
	    ROUTE_COMMIT_TWO_PHASE);
	expect_commit("/* pgshard: all */ CREATE SCHEMA app", ROUTE_COMMIT_TWO_PHASE);
	expect_commit("/* pgshard: all */ DO $$ BEGIN PERFORM 1; END $$", ROUTE_COMMIT_TWO_PHASE);
	expect_commit("/* pgshard: all */ SELECT setval('s', 5)", ROUTE_COMMIT_TWO_PHASE);
	expect_commit("/* pgshard: all */ SHOW work_mem", ROUTE_COMMIT_NONE);
	expect_commit("/* pgshard: all */ SET work_mem = '8MB'", ROUTE_COMMIT_NONE);
	expect_commit("/* pgshard: all */ CREATE DATABASE other", ROUTE_COMMIT_EACH);
}

/*
 * What PostgreSQL refuses inside a transaction block, or refuses to
 * PREPARE, runs unwrapped on every shard, whatever shards it routes to.
 */
static void test_ddl_that_cannot_be_in_a_transaction_block_commits_each(void **state)
{
	static const char *const each[] = {
	    "CREATE INDEX CONCURRENTLY ON users (n)",
	    "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS users_n ON users (id, n)",
	    "/* pgshard: all */ DROP INDEX CONCURRENTLY users_n",
	    "/* pgshard: all */ DROP INDEX CONCURRENTLY IF EXISTS users_n",
	    "VACUUM users",
	    "VACUUM (ANALYZE) users",
	    "VACUUM FULL orders",
	    "/* pgshard: all */ VACUUM",
	    "REINDEX TABLE CONCURRENTLY users",
	    "REINDEX (CONCURRENTLY) TABLE users",
	    "REINDEX TABLE users", /* users may be partitioned: not known from the text */
	    "/* pgshard: all */ REINDEX INDEX CONCURRENTLY users_n",
	    "CLUSTER users USING users_pkey",
	    "ALTER TABLE users DETACH PARTITION users_2024 CONCURRENTLY",
	    "ALTER TABLE users DETACH PARTITION users_2024 FINALIZE",
	    /* temporary objects: PREPARE TRANSACTION refuses the transaction */
	    "/* pgshard: all */ CREATE TEMP TABLE t (a int)",
	    "/* pgshard: all */ CREATE TABLE pg_temp.t (a int)",
	    "/* pgshard: all */ DROP TABLE pg_temp.t",
	    "/* pgshard: all */ CREATE INDEX ON pg_temp.t (a)",
	};
	route_plan_t p;

	(void)state;
	for (size_t i = 0; i < sizeof each / sizeof each[0]; i++) {
		expect_commit(each[i], ROUTE_COMMIT_EACH);
		p = route(each[i]);
		assert_true(p.no_tx_block);
		assert_non_null(p.no_tx_why);
	}
	p = route("CREATE INDEX CONCURRENTLY ON users (n)");
	assert_string_equal(p.no_tx_why,
	                    "CREATE INDEX CONCURRENTLY cannot run inside a transaction block");
	/* on one shard nothing is wrapped anyway */
	expect_commit("/* pgshard: shard=1 */ VACUUM users", ROUTE_COMMIT_ONE);
	/* not writes (nothing to wrap), but known all the same */
	p = route("/* pgshard: all */ CREATE DATABASE d");
	assert_true(p.no_tx_block);
	p = route("NOTIFY ch");
	assert_true(p.no_tx_block);
	p = route("DISCARD ALL");
	assert_true(p.no_tx_block);
	/* fine in a block */
	p = route("ANALYZE users");
	assert_false(p.no_tx_block);
	p = route("ALTER TABLE users DETACH PARTITION users_2024");
	assert_false(p.no_tx_block);
	p = route("/* pgshard: all */ ALTER TYPE mood ADD VALUE 'meh'");
	assert_false(p.no_tx_block);
	p = route("EXPLAIN SELECT * FROM users");
	assert_false(p.no_tx_block);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_key_equals_is_one_step_on_the_key_shard),
	    cmocka_unit_test(test_statement_on_no_configured_table_is_one_on_the_default_shard),
	    cmocka_unit_test(test_reference_read_is_one_whose_shard_the_executor_picks),
	    cmocka_unit_test(test_routing_comment_shard_is_one_on_that_shard),
	    cmocka_unit_test(test_in_over_two_shards_is_each_adding_up),
	    cmocka_unit_test(test_ddl_is_each_taking_one_copy_on_every_shard),
	    cmocka_unit_test(test_count_over_shards_is_each_adding_counts),
	    cmocka_unit_test(test_order_by_limit_over_shards_is_gather),
	    cmocka_unit_test(test_multi_row_insert_over_shards_is_split_insert),
	    cmocka_unit_test(test_copy_from_stdin_into_sharded_table_is_split_copy),
	    cmocka_unit_test(test_transaction_control_is_txn_then_where_it_runs),
	    cmocka_unit_test(test_refusals_are_one_refuse_step_with_their_sqlstate),
	    cmocka_unit_test(test_route_plan_refuse_makes_a_whole_refusal),
	    cmocka_unit_test(test_run_step_replaces_the_steps),
	    cmocka_unit_test(test_route_plan_copy_copies_every_field),
	    cmocka_unit_test(test_plan_cache_hit_keeps_the_steps),
	    cmocka_unit_test(test_missing_parameter_then_routed_with_it),
	    cmocka_unit_test(test_writes_on_several_shards_commit_in_two_phases),
	    cmocka_unit_test(test_ddl_on_several_shards_commits_in_two_phases),
	    cmocka_unit_test(test_ddl_that_cannot_be_in_a_transaction_block_commits_each),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
