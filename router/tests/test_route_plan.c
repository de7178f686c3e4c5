/*
 * test_route_plan.c — statement routing (router/route.h) of a query string
 * with several statements, and of transaction control, pinned: statements
 * routed alike go together and the others are refused; transaction control
 * is named, and flagged among other statements.
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

#include "router/route.h"

#include "router/tests/route_config.h"
#include "router/tests/route_expect.h"

/* ---- several statements ---- */

static void test_statements_routed_alike_go_together(void **state)
{
	int64_t b = key_beside("users", 1);
	char sql[256];
	route_plan_t p;

	(void)state;
	snprintf(sql, sizeof sql,
	         "SELECT * FROM users WHERE id = 1; SELECT * FROM orders WHERE "
	         "user_id = %lld;",
	         (long long)b);
	p = route(sql);
	expect_keys(sql, &p, "users", KEYS(1));
	ROUTES_TO("BEGIN; UPDATE users SET n = 1 WHERE id = 9; COMMIT;", "users", 9);
	ROUTES_TO("SET LOCAL statement_timeout = 100; SELECT * FROM users WHERE id = 3", "users",
	          3);
	expect_default("SELECT 1; SHOW server_version; BEGIN");
}

/* Statements that route differently run one by one, as PostgreSQL runs a query string. */
static void test_statements_routed_differently_run_as_a_batch(void **state)
{
	int64_t b = key_elsewhere("users", 1);
	char sql[256];

	(void)state;
	snprintf(sql, sizeof sql,
	         "SELECT * FROM users WHERE id = 1; SELECT * FROM users WHERE id = "
	         "%lld",
	         (long long)b);
	expect_batch(sql);
	expect_batch("SELECT * FROM users; SELECT * FROM accounts");
	expect_batch("SELECT * FROM users WHERE id = 1; SELECT * FROM sites WHERE region_id = 1; "
	             "SELECT * FROM sites WHERE region_id = 2500");
	snprintf(sql, sizeof sql, "BEGIN; INSERT INTO users (id) VALUES (1), (%lld)", (long long)b);
	expect_batch(sql);
	expect_batch("BEGIN; UPDATE users SET n = 0; COMMIT");
	expect_batch("UPDATE users SET id = id + 1 WHERE id = 5; UPDATE users SET name = 'x' WHERE "
	             "id = 5");
	expect_batch(
	    "CREATE TABLE orders (id bigserial, user_id bigint); CREATE INDEX ON orders (id)");
	expect_batch("DECLARE c CURSOR FOR SELECT * FROM users WHERE id = 5; FETCH 1 FROM c");
	/* what cannot run one by one as PostgreSQL would is still refused */
	snprintf(sql, sizeof sql,
	         "SELECT * FROM users WHERE id = 1; COMMIT; SELECT * FROM users WHERE id = %lld",
	         (long long)b);
	REFUSED(sql, "separately");
	REFUSED("INSERT INTO countries (code) VALUES ('x'); COMMIT", "COMMIT");
	REFUSED("UPDATE users SET n = 0; COPY users FROM STDIN", "COPY");
}

/* ---- transaction control ---- */

static void test_transaction_control_statements_are_named(void **state)
{
	static const struct {
		const char *sql;
		route_txn_t txn;
		const char *tag; /* PostgreSQL's CommandComplete tag for it */
	} cases[] = {
	    {"BEGIN", ROUTE_TXN_BEGIN, "BEGIN"},
	    {"begin work", ROUTE_TXN_BEGIN, "BEGIN"},
	    {"BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", ROUTE_TXN_BEGIN, "BEGIN"},
	    {"START TRANSACTION ISOLATION LEVEL SERIALIZABLE", ROUTE_TXN_BEGIN,
	     "START TRANSACTION"},
	    {"COMMIT", ROUTE_TXN_COMMIT, "COMMIT"},
	    {"END", ROUTE_TXN_COMMIT, "COMMIT"},
	    {"COMMIT TRANSACTION;", ROUTE_TXN_COMMIT, "COMMIT"},
	    {"ROLLBACK", ROUTE_TXN_ROLLBACK, "ROLLBACK"},
	    {"ABORT", ROUTE_TXN_ROLLBACK, "ROLLBACK"},
	    {"SAVEPOINT a", ROUTE_TXN_SAVEPOINT, "SAVEPOINT"},
	    {"  savepoint \"Rollback\"", ROUTE_TXN_SAVEPOINT, "SAVEPOINT"},
	    {"RELEASE SAVEPOINT a", ROUTE_TXN_SAVEPOINT, "RELEASE"},
	    {"RELEASE a", ROUTE_TXN_SAVEPOINT, "RELEASE"},
	    {"-- why\nrelease savepoint a", ROUTE_TXN_SAVEPOINT, "RELEASE"},
	    {"ROLLBACK TO SAVEPOINT a", ROUTE_TXN_SAVEPOINT, "ROLLBACK"},
	    {"ROLLBACK TO a", ROUTE_TXN_SAVEPOINT, "ROLLBACK"},
	    {"ROLLBACK WORK TO SAVEPOINT release", ROUTE_TXN_SAVEPOINT, "ROLLBACK"},
	    {"COMMIT AND CHAIN", ROUTE_TXN_OTHER, "COMMIT"},
	    {"ROLLBACK AND CHAIN", ROUTE_TXN_OTHER, "ROLLBACK"},
	    {"COMMIT AND NO CHAIN", ROUTE_TXN_COMMIT, "COMMIT"},
	    {"PREPARE TRANSACTION 'g1'", ROUTE_TXN_OTHER, "PREPARE TRANSACTION"},
	    {"COMMIT PREPARED 'g1'", ROUTE_TXN_OTHER, "COMMIT PREPARED"},
	    {"ROLLBACK PREPARED 'g1'", ROUTE_TXN_OTHER, "ROLLBACK PREPARED"},
	    {"/* pgshard: shard=2 */ BEGIN", ROUTE_TXN_BEGIN, "BEGIN"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		route_plan_t p = route(cases[i].sql);

		if (p.txn != cases[i].txn || !p.has_txn_control)
			fail_msg("\"%s\": txn %d (has %d), expected %d", cases[i].sql, (int)p.txn,
			         p.has_txn_control, (int)cases[i].txn);
		if (strcmp(p.txn_tag, cases[i].tag) != 0)
			fail_msg("\"%s\": tag \"%s\", expected \"%s\"", cases[i].sql, p.txn_tag,
			         cases[i].tag);
	}
}

static void test_transaction_control_among_other_statements_is_only_flagged(void **state)
{
	static const char *const mixed[] = {
	    "BEGIN; SELECT 1",
	    "SELECT * FROM users WHERE id = 1; COMMIT",
	    "BEGIN; COMMIT",
	};
	static const char *const none[] = {
	    "SELECT 1",
	    "SET LOCAL statement_timeout = 0",
	    "SELEC 1; BEGIN", /* does not parse: nobody can tell */
	    "PREPARE q AS SELECT 1",
	};
	route_plan_t p;

	(void)state;
	for (size_t i = 0; i < sizeof mixed / sizeof mixed[0]; i++) {
		p = route(mixed[i]);
		if (p.txn != ROUTE_TXN_NONE || !p.has_txn_control || p.txn_tag[0] != '\0')
			fail_msg("\"%s\": txn %d, has %d, tag \"%s\"", mixed[i], (int)p.txn,
			         p.has_txn_control, p.txn_tag);
	}
	for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
		p = route(none[i]);
		if (p.txn != ROUTE_TXN_NONE || p.has_txn_control || p.txn_tag[0] != '\0')
			fail_msg("\"%s\": txn %d, has %d, tag \"%s\"", none[i], (int)p.txn,
			         p.has_txn_control, p.txn_tag);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_statements_routed_alike_go_together),
	    cmocka_unit_test(test_statements_routed_differently_run_as_a_batch),
	    cmocka_unit_test(test_transaction_control_statements_are_named),
	    cmocka_unit_test(test_transaction_control_among_other_statements_is_only_flagged),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
