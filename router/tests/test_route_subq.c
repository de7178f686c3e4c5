/*
 * test_route_subq.c — subqueries and derived tables in a statement routed
 * to several shards or one (router/route.h), pinned: each shard answers a
 * subquery from its own rows, so one whose answer needs other shards' rows
 * is refused, and one tied to the outer row by the key, or over reference
 * tables only, is allowed.
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

/* ---- subqueries and derived tables across shards ---- */

/*
 * Each shard answers a subquery from its own rows: across shards, a subquery
 * whose answer needs rows of other shards would be wrong on every shard.
 */
/*
 * An IN or [NOT] EXISTS subquery over one sharded table, tied to the outer
 * table by an equality, as a condition of the WHERE: a semi-join across
 * shards (test_join_plan.c), no longer refused. NOT IN, ALL and subqueries
 * without such an equality stay refused (the table above).
 */
static void test_subqueries_tied_by_an_equality_run_as_semi_joins(void **state)
{
	(void)state;
	expect_join_step("SELECT * FROM users WHERE name IN (SELECT item FROM orders)", "users",
	                 "orders");
	expect_join_step("SELECT * FROM users WHERE id IN (SELECT total FROM orders)", "users",
	                 "orders");
	expect_join_step("SELECT * FROM users WHERE n = ANY (SELECT user_id FROM orders)", "users",
	                 "orders");
	expect_join_step(
	    "SELECT * FROM users u WHERE EXISTS (SELECT 1 FROM orders o WHERE o.total = u.n)",
	    "users", "orders");
	expect_join_step("SELECT * FROM users WHERE id = 7 AND name IN (SELECT item FROM orders)",
	                 "users", "orders");
	/* correlated by an equality: any subquery (here a scalar one) */
	expect_join_step(
	    "SELECT id, (SELECT note FROM orders o WHERE o.total = users.n) FROM users", "users",
	    "orders");
	/* not tied by an equality: uncorrelated, it runs first (its answer an array) */
	expect_join_step("SELECT * FROM users WHERE name NOT IN (SELECT item FROM orders)",
	                 "array subquery over orders", "users");
}

static void test_multi_shard_subquery_that_needs_other_shards_rows_is_refused(void **state)
{
	static const struct {
		const char *sql, *what;
		bool first; /* a SELECT whose subquery now runs first across shards (join_plan.h) */
	} cases[] = {
	    /* scalar subqueries, not tied to the outer row by the key */
	    {"SELECT * FROM users WHERE n > (SELECT avg(n) FROM users)",
	     "a subquery with aggregate function avg() over users across shards", true},
	    {"SELECT id, (SELECT count(*) FROM orders) FROM users",
	     "a subquery with aggregate function count() over orders", true},
	    {"SELECT * FROM users WHERE id = (SELECT max(user_id) FROM orders)",
	     "aggregate function max()", true},
	    {"SELECT count(*) FROM users WHERE n > (SELECT avg(total) FROM orders)",
	     "aggregate function avg()", true},
	    {"SELECT id, ARRAY(SELECT note FROM orders) FROM users",
	     "a scalar subquery not correlated on the shard key", false},
	    {"SELECT * FROM users WHERE n > (SELECT n FROM users WHERE id = 5)",
	     "a scalar subquery not correlated on the shard key", true},
	    {"UPDATE users u SET (n, name) = (SELECT count(*), max(note) FROM orders o)",
	     "aggregate function count()", false},
	    /* an unqualified outer column may be the subquery's own: not trusted */
	    {"SELECT * FROM orders WHERE EXISTS (SELECT 1 FROM users WHERE id = user_id)",
	     "an EXISTS subquery not correlated on the shard key", true},
	    /* writes */
	    {"UPDATE users SET n = 0 WHERE n < (SELECT avg(n) FROM users)",
	     "aggregate function avg()", false},
	    {"DELETE FROM users WHERE id IN (SELECT user_id FROM orders ORDER BY total LIMIT 10)",
	     "a subquery with LIMIT/OFFSET over orders", false},
	    {"INSERT INTO orders (user_id, total) SELECT id, 0 FROM users LIMIT 5", "LIMIT/OFFSET",
	     false},
	    {"INSERT INTO orders (user_id, total) SELECT user_id, sum(total) FROM orders GROUP BY "
	     "total",
	     "GROUP BY on other columns than the shard key", false},
	    {"MERGE INTO users u USING (SELECT user_id, max(total) AS m FROM orders GROUP BY note) "
	     "s ON u.id = s.user_id WHEN MATCHED THEN UPDATE SET n = s.m",
	     "GROUP BY", false},
	    /* IN / EXISTS not on the keys */
	    {"SELECT * FROM users WHERE id > ALL (SELECT user_id FROM orders)",
	     "does not compare shard keys", true},
	    {"SELECT * FROM users WHERE EXISTS (SELECT 1 FROM orders WHERE total > 5)",
	     "an EXISTS subquery not correlated", true},
	    {"SELECT * FROM users WHERE id IN (SELECT user_id FROM orders GROUP BY user_id, "
	     "total HAVING count(*) > 1 LIMIT 3)",
	     "LIMIT/OFFSET", true},
	    {"SELECT * FROM users WHERE id IN (SELECT max(user_id) FROM orders)",
	     "aggregate function max()", true},
	    {"SELECT * FROM users WHERE id IN (SELECT user_id FROM orders GROUP BY total)",
	     "GROUP BY on other columns", true},
	    {"SELECT * FROM users WHERE id IN (SELECT user_id FROM orders WHERE total > (SELECT "
	     "avg(total) FROM orders))",
	     "aggregate function avg()", true},
	    /* derived tables that combine rows */
	    {"SELECT * FROM users u JOIN (SELECT user_id, count(*) FROM orders GROUP BY total) s "
	     "ON s.user_id = u.id",
	     "GROUP BY", true},
	    {"SELECT * FROM users u JOIN (SELECT DISTINCT user_id FROM orders) s ON s.user_id = "
	     "u.id",
	     "a subquery with DISTINCT", true},
	    {"SELECT * FROM users u JOIN (SELECT user_id FROM orders ORDER BY total LIMIT 3) s ON "
	     "s.user_id = u.id",
	     "LIMIT/OFFSET", true},
	    {"SELECT * FROM users u JOIN (SELECT user_id FROM orders UNION SELECT id FROM users) s "
	     "ON s.user_id = u.id",
	     "a subquery with UNION", true},
	    {"WITH t AS (SELECT max(total) AS m FROM orders) SELECT * FROM users u, t WHERE u.n = "
	     "t.m",
	     "aggregate function max()", true},
	    {"SELECT * FROM users u, LATERAL (SELECT row_number() OVER () FROM orders o WHERE "
	     "o.total = u.n) s",
	     "window functions", true},
	    {"WITH RECURSIVE t AS (SELECT id FROM users WHERE id = 1 UNION ALL SELECT u.id FROM "
	     "users u JOIN t ON u.n = t.id) SELECT * FROM users u JOIN t ON t.id = u.id",
	     "a recursive CTE", false},
	    /* a subquery inside a local one is judged on its own */
	    {"SELECT u.id, (SELECT count(*) FROM orders o WHERE o.user_id = u.id AND o.total > "
	     "(SELECT avg(total) FROM orders)) FROM users u",
	     "aggregate function avg()", true},
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		route_plan_t p = route(cases[i].sql);

		if (cases[i].first) {
			/* runs as a join across shards now; EXPLAIN ANALYZE, which runs it, keeps
			   the refusal */
			char explain[512];

			if (!p.join || p.steps[0].kind != ROUTE_STEP_JOIN)
				fail_msg("\"%s\": expected a join across shards, got %s",
				         cases[i].sql, p.reason);
			snprintf(explain, sizeof explain, "EXPLAIN ANALYZE %s", cases[i].sql);
			p = route(explain);
		}
		expect_refused_with(cases[i].sql, &p,
		                    (const char *const[]){cases[i].what, "not supported yet",
		                                          "/* pgshard: shard=N */", NULL});
	}
	/* the message says why, and what would work (a SELECT now runs the subquery first) */
	REFUSED(
	    "DELETE FROM users WHERE n > (SELECT avg(n) FROM users)",
	    "a subquery with aggregate function avg() over users across shards is not supported "
	    "yet (each shard would answer it from its own rows only); correlate it with the "
	    "outer row on the shard key (WHERE users.id = <outer table>.<its key>), add a "
	    "condition on users.id, or /* pgshard: shard=N */");
	/* several shards, not all: still wrong on each */
	REFUSED("DELETE FROM users WHERE id IN (1, 2, 3, 4) AND n > (SELECT avg(n) FROM users)",
	        "aggregate function avg()");
	REFUSED("/* pgshard: all */ SELECT * FROM users WHERE n > (SELECT avg(n) FROM users)",
	        "aggregate function avg()");
}

/* A subquery tied to the outer row by the key finds all the rows it needs on that row's shard. */
static void test_multi_shard_subquery_co_located_on_the_key_is_allowed(void **state)
{
	(void)state;
	MERGES("SELECT u.id, (SELECT count(*) FROM orders o WHERE o.user_id = u.id) FROM users u",
	       ROUTE_MERGE_SUM);
	MERGES("SELECT u.id, (SELECT max(total) FROM orders o WHERE u.id = o.user_id AND o.total > "
	       "0) FROM users u",
	       ROUTE_MERGE_SUM);
	MERGES("SELECT u.id, ARRAY(SELECT o.total FROM orders o WHERE o.user_id = u.id ORDER BY "
	       "o.total LIMIT 3) FROM users u",
	       ROUTE_MERGE_SUM);
	MERGES("SELECT * FROM users u WHERE u.n > (SELECT avg(total) FROM orders o JOIN users u2 "
	       "ON u2.id = o.user_id WHERE o.user_id = u.id)",
	       ROUTE_MERGE_SUM);
	MERGES("SELECT * FROM users WHERE id IN (SELECT user_id FROM orders WHERE total > 5)",
	       ROUTE_MERGE_SUM);
	MERGES("SELECT count(*) FROM users u WHERE u.id IN (SELECT o.user_id FROM orders o)",
	       ROUTE_MERGE_COUNT);
	MERGES("SELECT * FROM users WHERE id = ANY (SELECT DISTINCT user_id FROM orders)",
	       ROUTE_MERGE_SUM);
	MERGES("SELECT * FROM users WHERE id NOT IN (SELECT user_id FROM orders)", ROUTE_MERGE_SUM);
	MERGES("SELECT * FROM users WHERE id <> ALL (SELECT user_id FROM orders)", ROUTE_MERGE_SUM);
	MERGES("SELECT * FROM users WHERE id IN (SELECT user_id FROM orders GROUP BY user_id "
	       "HAVING count(*) > 2)",
	       ROUTE_MERGE_SUM);
	MERGES("SELECT * FROM users WHERE id IN (SELECT user_id FROM orders UNION SELECT id FROM "
	       "widgets)",
	       ROUTE_MERGE_SUM);
	MERGES("SELECT * FROM users u WHERE EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.id)",
	       ROUTE_MERGE_SUM);
	MERGES("SELECT * FROM users u WHERE NOT EXISTS (SELECT 1 FROM orders o JOIN widgets x ON "
	       "x.id = o.user_id WHERE o.user_id = u.id LIMIT 1)",
	       ROUTE_MERGE_SUM);
	MERGES("SELECT * FROM users u WHERE EXISTS (SELECT 1 FROM orders o JOIN countries c ON "
	       "c.code = o.cc WHERE o.user_id = u.id)",
	       ROUTE_MERGE_SUM);
	/* two levels up */
	MERGES("SELECT * FROM users u WHERE u.cc IN (SELECT code FROM countries c WHERE EXISTS "
	       "(SELECT 1 FROM orders o WHERE o.user_id = u.id AND o.cc = c.code))",
	       ROUTE_MERGE_SUM);
	/* derived tables whose rows each come from one shard */
	MERGES("SELECT * FROM users u, LATERAL (SELECT sum(total) FROM orders o WHERE o.user_id = "
	       "u.id) s",
	       ROUTE_MERGE_SUM);
	MERGES("SELECT * FROM users u JOIN (SELECT user_id, count(*) FROM orders GROUP BY user_id) "
	       "s ON s.user_id = u.id",
	       ROUTE_MERGE_SUM);
	MERGES("SELECT * FROM users u JOIN (SELECT * FROM orders ORDER BY total) s ON s.user_id = "
	       "u.id",
	       ROUTE_MERGE_SUM);
	MERGES(
	    "WITH o AS (SELECT user_id FROM orders UNION ALL SELECT id FROM users) SELECT * FROM "
	    "o",
	    ROUTE_MERGE_SUM);
	/* writes */
	MERGES("UPDATE users u SET n = (SELECT count(*) FROM orders o WHERE o.user_id = u.id)",
	       ROUTE_MERGE_SUM);
	MERGES("UPDATE users u SET (n, name) = (SELECT count(*), max(note) FROM orders o WHERE "
	       "o.user_id = u.id)",
	       ROUTE_MERGE_SUM);
	MERGES("DELETE FROM users WHERE id IN (SELECT user_id FROM orders WHERE total = 0)",
	       ROUTE_MERGE_SUM);
	MERGES(
	    "INSERT INTO orders (user_id, total) SELECT user_id, sum(total) FROM orders GROUP BY "
	    "user_id",
	    ROUTE_MERGE_SUM);
	MERGES("MERGE INTO users u USING (SELECT user_id, max(total) AS m FROM orders GROUP BY "
	       "user_id) s ON u.id = s.user_id WHEN MATCHED THEN UPDATE SET n = s.m",
	       ROUTE_MERGE_SUM);
}

/* Rows of reference tables, or of no table, are the same on every shard. */
static void test_multi_shard_subquery_over_reference_tables_is_allowed(void **state)
{
	(void)state;
	MERGES("SELECT * FROM users WHERE cc IN (SELECT code FROM countries WHERE name > 'm')",
	       ROUTE_MERGE_SUM);
	MERGES("SELECT id, (SELECT count(*) FROM countries) FROM users", ROUTE_MERGE_SUM);
	MERGES("SELECT count(*) FROM users WHERE n > (SELECT max(n) FROM countries LIMIT 1)",
	       ROUTE_MERGE_COUNT);
	MERGES("SELECT * FROM users WHERE n > (SELECT 1) AND EXISTS (SELECT 1 FROM "
	       "generate_series(1, 3))",
	       ROUTE_MERGE_SUM);
	MERGES("SELECT * FROM users u JOIN (SELECT DISTINCT code FROM countries LIMIT 5) c ON "
	       "c.code = u.cc",
	       ROUTE_MERGE_SUM);
	MERGES("WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 3) "
	       "SELECT * FROM users, t",
	       ROUTE_MERGE_SUM);
	MERGES("UPDATE users SET n = (SELECT max(n) FROM countries)", ROUTE_MERGE_SUM);
}

/*
 * A FROM subquery or CTE over a sharded table is joined like the table: each
 * shard holds the rows that join with its own only when the join is on the
 * key the subquery selects unmodified. Joined any other way, pairs whose
 * halves are on different shards would be missing: refused, like tables.
 */
static void test_derived_table_joined_without_its_key_runs_whole_across_shards(void **state)
{
	static const char *const cases[] = {
	    "SELECT * FROM users u JOIN (SELECT * FROM orders) s ON s.note = u.name",
	    "WITH s AS (SELECT * FROM orders) SELECT * FROM users u JOIN s ON s.note = u.name",
	    "SELECT * FROM users u LEFT JOIN (SELECT * FROM orders) s ON s.note = u.name",
	    "SELECT * FROM users u RIGHT JOIN (SELECT * FROM orders) s ON s.note = u.name",
	    "SELECT * FROM users u FULL JOIN (SELECT * FROM orders) s ON s.note = u.name",
	    "SELECT * FROM users u, (SELECT * FROM orders) s WHERE s.note = u.name",
	    "SELECT * FROM users u CROSS JOIN (SELECT * FROM orders) s",
	    "WITH s AS (SELECT * FROM orders) SELECT * FROM users u, s WHERE s.total = u.n",
	    /* the key is selected, but not compared */
	    "SELECT * FROM users u JOIN (SELECT user_id, note FROM orders) s ON s.note = u.name",
	    /* selected modified: no longer the key */
	    "SELECT * FROM users u JOIN (SELECT user_id + 0 AS user_id FROM orders) s ON "
	    "s.user_id = u.id",
	    /* USING a column that is not the subquery's key */
	    "SELECT * FROM users u JOIN (SELECT * FROM orders) s USING (id)",
	    /* two derived tables, nested ones, a self-join of a CTE */
	    "SELECT * FROM (SELECT * FROM users) a JOIN (SELECT * FROM orders) b ON a.name = "
	    "b.note",
	    "SELECT * FROM users u JOIN (SELECT * FROM (SELECT * FROM orders) x) s ON s.note = "
	    "u.name",
	    "WITH s AS (SELECT * FROM orders) SELECT * FROM s a JOIN s b ON a.note = b.note",
	    "SELECT * FROM users u WHERE u.id IN (SELECT s.user_id FROM (SELECT * FROM orders) s "
	    "JOIN widgets x ON x.id = s.total)",
	    /* a LATERAL subquery not correlated on the key */
	    "SELECT * FROM users u, LATERAL (SELECT * FROM orders o WHERE o.note = u.name) s",
	    /* a write's RETURNING, joined on another column */
	    "WITH d AS (DELETE FROM orders WHERE total = 0 RETURNING user_id) SELECT * FROM users "
	    "u "
	    "JOIN d ON d.user_id = u.n",
	    /* even where a condition would send it to one shard: other rows are elsewhere */
	    "SELECT * FROM users u JOIN (SELECT * FROM orders) s ON s.note = u.name WHERE u.id = 5",
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		static const char *const needles[] = {"joined without equal keys",
		                                      "or query them separately", NULL};
		route_plan_t p;

		/* a SELECT runs as a join across shards, every table fetched whole; a write's
		   RETURNING as a CTE stays refused */
		if (strncmp(cases[i], "WITH d AS (DELETE", 17) != 0) {
			expect_whole_and_explain_refused(cases[i], needles);
			continue;
		}
		p = route(cases[i]);
		expect_refused_with(cases[i], &p, needles);
	}
	/* the message names both sides and the join that would work */
	WHOLE_BUT_EXPLAIN_REFUSED(
	    "SELECT * FROM users u JOIN (SELECT * FROM orders) s ON s.note = u.name",
	    "table users and subquery s over orders are joined without equal keys, so matching "
	    "rows may be on different shards; join them on u.id = s.user_id, with subquery s "
	    "selecting orders.user_id unmodified (and grouping by it if it aggregates), or "
	    "query them separately");
	WHOLE_BUT_EXPLAIN_REFUSED(
	    "WITH s AS (SELECT * FROM orders) SELECT * FROM users u JOIN s ON s.note = u.name",
	    "table users and CTE s over orders", "join them on u.id = s.user_id");
	/* a subquery that combines rows of several keys has no key to be joined on */
	WHOLE_BUT_EXPLAIN_REFUSED("SELECT * FROM users u, (SELECT count(*) AS c FROM orders) s",
	                          "subquery s over orders has aggregate function count()",
	                          "not supported yet", "/* pgshard: shard=N */");
	WHOLE_BUT_EXPLAIN_REFUSED(
	    "SELECT * FROM users u, (SELECT count(*) AS c FROM orders) s WHERE u.id = 5",
	    "subquery s over orders has aggregate function count()");
	WHOLE_BUT_EXPLAIN_REFUSED(
	    "SELECT * FROM users u JOIN (SELECT user_id FROM orders ORDER BY total LIMIT 3) s "
	    "ON s.user_id = u.id WHERE u.id = 5",
	    "has LIMIT/OFFSET", "join on u.id = s.user_id");
	WHOLE_BUT_EXPLAIN_REFUSED(
	    "SELECT * FROM users u JOIN (SELECT user_id, max(total) AS m FROM orders GROUP BY "
	    "note) s ON s.user_id = u.id",
	    "has GROUP BY on other columns than the shard key");
	/* the comment that takes the decision still does */
	{
		const char *sql =
		    "/* pgshard: shard=1 */ SELECT * FROM users u JOIN (SELECT * FROM "
		    "orders) s ON s.note = u.name";
		route_plan_t p = route(sql);

		expect_one(sql, &p, ROUTE_SHARDS, 1);
	}
}

/*
 * A derived table held to one shard by its own key condition: its LIMIT, aggregate or window
 * runs over every row it can see (all on that shard), so joined on the key it is what one
 * PostgreSQL answers (SQLAlchemy's joinedload of one tenant's first rows writes this).
 */
static void test_derived_table_on_one_shard_with_limit_joins_on_its_key(void **state)
{
	const char *sql = "SELECT * FROM (SELECT * FROM orders WHERE user_id = 5 ORDER BY total "
	                  "LIMIT 3) s LEFT JOIN users u ON u.id = s.user_id ORDER BY s.total";
	const char *agg = "SELECT * FROM users u JOIN (SELECT user_id, count(*) OVER () AS n FROM "
	                  "orders WHERE user_id = 5) s ON s.user_id = u.id";
	int64_t other = 6;
	char two[256];
	route_plan_t p;

	(void)state;
	p = route(sql);
	expect_one(sql, &p, ROUTE_SHARDS, shard_of("users", 5));
	p = route(agg);
	expect_one(agg, &p, ROUTE_SHARDS, shard_of("users", 5));
	/* two keys on two shards: the LIMIT picks among rows of both, so the shards cannot run it
	   alone: it runs as a join across shards, every table fetched whole */
	while (shard_of("users", other) == shard_of("users", 5))
		other++;
	snprintf(two, sizeof two,
	         "SELECT * FROM (SELECT * FROM orders WHERE user_id IN (5, %lld) ORDER BY total "
	         "LIMIT 3) s JOIN users u ON u.id = s.user_id",
	         (long long)other);
	WHOLE_BUT_EXPLAIN_REFUSED(two, "has LIMIT/OFFSET", "not supported yet");
}

/* Joined on the key it selects unmodified, a derived table is co-located with the table. */
static void test_derived_table_joined_on_its_key_is_allowed(void **state)
{
	(void)state;
	MERGES("SELECT * FROM users u JOIN (SELECT * FROM orders) s ON s.user_id = u.id",
	       ROUTE_MERGE_SUM);
	MERGES("WITH s AS (SELECT * FROM orders) SELECT * FROM users u JOIN s ON s.user_id = u.id",
	       ROUTE_MERGE_SUM);
	MERGES("SELECT * FROM users u JOIN (SELECT user_id, count(*) FROM orders GROUP BY user_id) "
	       "s ON u.id = s.user_id",
	       ROUTE_MERGE_SUM);
	MERGES("WITH s AS (SELECT user_id, sum(total) AS t FROM orders GROUP BY user_id) SELECT * "
	       "FROM users u LEFT JOIN s ON s.user_id = u.id",
	       ROUTE_MERGE_SUM);
	MERGES("SELECT * FROM users u, (SELECT * FROM orders) s WHERE s.user_id = u.id AND s.note "
	       "= u.name",
	       ROUTE_MERGE_SUM);
	MERGES("SELECT * FROM users u FULL JOIN (SELECT o.user_id AS uid, o.note FROM orders o) s "
	       "ON s.uid = u.id",
	       ROUTE_MERGE_SUM);
	MERGES("SELECT * FROM users u JOIN (SELECT user_id AS id FROM orders) s USING (id)",
	       ROUTE_MERGE_SUM);
	MERGES(
	    "SELECT * FROM users u JOIN (SELECT user_id, note FROM orders) s(k, t) ON s.k = u.id",
	    ROUTE_MERGE_SUM);
	MERGES("SELECT * FROM users u JOIN (SELECT x.* FROM (SELECT * FROM orders) x) s ON "
	       "s.user_id = u.id",
	       ROUTE_MERGE_SUM);
	MERGES("SELECT * FROM users u JOIN (SELECT user_id FROM orders UNION ALL SELECT id FROM "
	       "widgets) s ON s.user_id = u.id",
	       ROUTE_MERGE_SUM);
	MERGES("WITH s AS (SELECT * FROM orders) SELECT * FROM s a JOIN s b ON a.user_id = "
	       "b.user_id",
	       ROUTE_MERGE_SUM);
	MERGES("WITH d AS (DELETE FROM orders WHERE total = 0 RETURNING user_id) SELECT * FROM "
	       "users u JOIN d ON d.user_id = u.id",
	       ROUTE_MERGE_SUM);
	MERGES("SELECT * FROM users u, LATERAL (SELECT * FROM orders o WHERE o.user_id = u.id) s",
	       ROUTE_MERGE_SUM);
	/* over reference tables only: every shard has all its rows */
	MERGES("SELECT * FROM users u JOIN (SELECT * FROM countries) c ON c.code = u.cc",
	       ROUTE_MERGE_SUM);
	MERGES("WITH c AS (SELECT * FROM countries) SELECT * FROM users u JOIN c ON c.code = u.cc",
	       ROUTE_MERGE_SUM);
	/* a key condition on either side routes it to one shard */
	ROUTES_TO("SELECT * FROM users u JOIN (SELECT * FROM orders) s ON s.user_id = u.id WHERE "
	          "u.id = 5",
	          "users", 5);
	ROUTES_TO("WITH s AS (SELECT * FROM orders) SELECT * FROM users u JOIN s ON s.user_id = "
	          "u.id WHERE u.id = 6",
	          "users", 6);
	ROUTES_TO("SELECT * FROM users u JOIN (SELECT * FROM orders WHERE user_id = 7) s ON "
	          "s.user_id = u.id",
	          "users", 7);
	ROUTES_TO("SELECT * FROM (SELECT * FROM orders) s WHERE s.user_id = 8", "users", 8);
	/* INSERT ... SELECT of a derived table's key: rows stay on their shard */
	MERGES("INSERT INTO orders (user_id, note) SELECT s.user_id, s.note FROM (SELECT * FROM "
	       "orders) s",
	       ROUTE_MERGE_SUM);
}

/*
 * A statement on one shard runs whole there, subqueries included: a subquery
 * that reads rows of other shards would be answered from that shard's rows
 * only, where one PostgreSQL would use them all.
 */
static void test_one_shard_subquery_that_needs_other_shards_rows_is_refused(void **state)
{
	static const struct {
		const char *sql, *what;
		bool first; /* a SELECT whose subquery now runs first across shards (join_plan.h) */
	} cases[] = {
	    {"SELECT * FROM users WHERE id = 3 AND n > (SELECT avg(n) FROM users)",
	     "a subquery with aggregate function avg() over users", true},
	    {"SELECT id, (SELECT count(*) FROM orders) FROM users WHERE id = 4",
	     "a subquery with aggregate function count() over orders", true},
	    {"UPDATE users SET n = 0 WHERE id = 5 AND n < (SELECT avg(n) FROM users)",
	     "a subquery with aggregate function avg() over users", false},
	    {"DELETE FROM users WHERE id = 6 AND id IN (SELECT user_id FROM orders ORDER BY total "
	     "LIMIT 10)",
	     "a subquery with LIMIT/OFFSET over orders", false},
	    {"SELECT * FROM users WHERE id = 8 AND EXISTS (SELECT 1 FROM orders WHERE total > 5)",
	     "an EXISTS subquery not correlated on the shard key", true},
	    {"SELECT * FROM users WHERE id = 9 AND n > (SELECT n FROM users WHERE name = 'x')",
	     "a scalar subquery not correlated on the shard key", true},
	    {"SELECT * FROM users WHERE id = 10 AND id IN (SELECT user_id FROM orders GROUP BY "
	     "user_id, note HAVING count(*) > 1 LIMIT 3)",
	     "LIMIT/OFFSET", true},
	    /* an outer join's ON keeps the rows it does not match: no narrowing */
	    {"SELECT * FROM users WHERE id = 12 AND n > (SELECT count(*) FROM orders o LEFT JOIN "
	     "users u ON u.id = o.user_id AND u.id = 12)",
	     "aggregate function count()", false},
	    /* EXPLAIN ANALYZE runs the UPDATE, with one shard's average */
	    {"EXPLAIN ANALYZE UPDATE users SET n = 0 WHERE id = 5 AND n < (SELECT avg(n) FROM "
	     "users)",
	     "a subquery with aggregate function avg() over users", false},
	    {"EXPLAIN (ANALYZE true, COSTS off) SELECT * FROM users WHERE id = 3 AND n > (SELECT "
	     "avg(n) FROM users)",
	     "a subquery with aggregate function avg() over users", false},
	};
	char sql[256], want[512];
	int64_t b = key_elsewhere("users", 3);

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		route_plan_t p = route(cases[i].sql);

		if (cases[i].first) {
			/* runs as a join across shards now; EXPLAIN ANALYZE, which runs it, keeps
			   the refusal */
			char explain[512];

			if (!p.join || p.steps[0].kind != ROUTE_STEP_JOIN)
				fail_msg("\"%s\": expected a join across shards, got %s",
				         cases[i].sql, p.reason);
			snprintf(explain, sizeof explain, "EXPLAIN ANALYZE %s", cases[i].sql);
			p = route(explain);
		}
		expect_refused_with(
		    cases[i].sql, &p,
		    (const char *const[]){
		        cases[i].what, "not supported yet in a statement on one shard",
		        "inside it that keeps it on shard",
		        "/* pgshard: shard=N */ to use only that shard's rows", NULL});
	}
	/* the message says why, and what would work */
	snprintf(
	    want, sizeof want,
	    "a subquery with aggregate function avg() over users is not supported yet in a "
	    "statement on one shard (it runs on shard %d alone, which would answer it from its "
	    "own rows only); correlate it with the outer row on the shard key (WHERE users.id "
	    "= <outer table>.<its key>), add a condition on users.id inside it that keeps it on "
	    "shard %d, or /* pgshard: shard=N */ to use only that shard's rows",
	    shard_of("users", 3), shard_of("users", 3));
	REFUSED("DELETE FROM users WHERE id = 3 AND n > (SELECT avg(n) FROM users)", want);
	/* its own key condition, for a key on another shard */
	snprintf(sql, sizeof sql,
	         "DELETE FROM users WHERE id = 3 AND n > (SELECT count(*) FROM orders WHERE "
	         "user_id = %lld)",
	         (long long)b);
	REFUSED(sql, "aggregate function count() over orders");
	snprintf(sql, sizeof sql,
	         "DELETE FROM users WHERE id = 3 AND n > (SELECT count(*) FROM orders WHERE "
	         "user_id IN (3, %lld))",
	         (long long)b);
	REFUSED(sql, "aggregate function count() over orders");
	WHOLE_BUT_EXPLAIN_REFUSED(
	    "WITH t AS (SELECT max(total) AS m FROM orders) SELECT * FROM users WHERE id = 11 "
	    "AND n > (SELECT m FROM t)",
	    "not supported yet in a statement on one shard");
	/* a derived table inside the subquery is not narrowed by the subquery's condition */
	WHOLE_BUT_EXPLAIN_REFUSED(
	    "SELECT * FROM users WHERE id = 3 AND n > (SELECT count(*) FROM (SELECT * FROM "
	    "orders) s WHERE s.user_id = 3)",
	    "over sharded tables is not supported yet in a statement on one shard",
	    "read its sharded tables in its own FROM");
	REFUSED(
	    "WITH RECURSIVE t AS (SELECT id FROM users WHERE id = 1 UNION ALL SELECT u.id FROM "
	    "users u JOIN t ON u.id = t.id + 1) SELECT * FROM users u WHERE u.id = 1 AND u.n IN "
	    "(SELECT id FROM t)",
	    "not supported yet in a statement on one shard");
	REFUSED("SELECT * FROM users WHERE id = 3 AND id IN (SELECT user_id FROM orders UNION "
	        "SELECT id FROM users LIMIT 2)",
	        "a subquery with LIMIT/OFFSET over sharded tables is not supported yet in a "
	        "statement on one shard",
	        "; run it with /* pgshard: shard=N */ to use only that shard's rows");
}

/* What a shard can answer alone is still right on one shard. */
static void test_one_shard_subquery_local_to_its_shard_is_allowed(void **state)
{
	char sql[256];
	int64_t b = key_beside("users", 3);

	(void)state;
	/* correlated on the key: the outer row's shard holds every row with its key */
	ROUTES_TO("SELECT u.id, (SELECT count(*) FROM orders o WHERE o.user_id = u.id) FROM users "
	          "u WHERE u.id = 3",
	          "users", 3);
	ROUTES_TO("SELECT * FROM users u WHERE u.id = 4 AND EXISTS (SELECT 1 FROM orders o WHERE "
	          "o.user_id = u.id ORDER BY o.total LIMIT 1)",
	          "users", 4);
	ROUTES_TO("UPDATE users u SET n = (SELECT sum(total) FROM orders o WHERE o.user_id = u.id) "
	          "WHERE u.id = 5",
	          "users", 5);
	/* IN over keys, without combining rows */
	ROUTES_TO("SELECT * FROM users WHERE id = 6 AND id IN (SELECT user_id FROM orders WHERE "
	          "total > 5)",
	          "users", 6);
	ROUTES_TO("DELETE FROM users WHERE id = 7 AND id NOT IN (SELECT user_id FROM orders)",
	          "users", 7);
	/* reference tables only */
	ROUTES_TO("SELECT id, (SELECT count(*) FROM countries) FROM users WHERE id = 8", "users",
	          8);
	ROUTES_TO("SELECT * FROM users WHERE id = 9 AND cc IN (SELECT code FROM countries ORDER BY "
	          "name LIMIT 3)",
	          "users", 9);
	/* its own key condition keeps it on the statement's shard */
	ROUTES_TO(
	    "SELECT * FROM users WHERE id = 3 AND n > (SELECT avg(n) FROM users WHERE id = 3)",
	    "users", 3);
	ROUTES_TO("SELECT * FROM users WHERE id = 3 AND n > (SELECT count(*) FROM orders WHERE "
	          "user_id = 3)",
	          "users", 3);
	ROUTES_TO("SELECT * FROM users WHERE id = 3 AND n > (SELECT count(*) FROM orders o JOIN "
	          "users u ON u.id = o.user_id AND u.id = 3)",
	          "users", 3);
	snprintf(sql, sizeof sql,
	         "SELECT * FROM users WHERE id = 3 AND n > (SELECT count(*) FROM orders WHERE "
	         "user_id IN (3, %lld))",
	         (long long)b);
	ROUTES_TO(sql, "users", 3);
	ROUTES_TO("SELECT * FROM (SELECT * FROM orders WHERE user_id = 3 ORDER BY total LIMIT 5) s",
	          "users", 3);
	ROUTES_TO("SELECT * FROM countries WHERE code IN (SELECT cc FROM users WHERE id = 5)",
	          "users", 5);
	ROUTES_TO("SELECT (SELECT max(total) FROM orders WHERE user_id = 4)", "users", 4);
	/* the user says where it runs, and takes that shard's rows */
	MERGES("/* pgshard: shard=1 */ SELECT * FROM users WHERE n > (SELECT avg(n) FROM users)",
	       ROUTE_MERGE_NONE);
	ROUTES_TO("/* pgshard: key=3 */ SELECT * FROM users WHERE n > (SELECT avg(n) FROM users)",
	          "users", 3);
	ROUTES_TO("/* pgshard: key=3 */ SELECT * FROM users WHERE id = 3 AND n > (SELECT avg(n) "
	          "FROM users)",
	          "users", 3);
}

/*
 * Tables joined on other columns than their keys, each held to one and the
 * same shard by its own key conditions: every row either side can join is
 * on that shard (issue 11's "false refusals").
 */
static void test_sides_pinned_to_one_shard_join_there(void **state)
{
	int64_t b = key_beside("users", 3);
	char sql[256];
	route_plan_t p;

	(void)state;
	ROUTES_TO("SELECT * FROM users u JOIN orders o ON o.total = u.n WHERE u.id = 3 AND "
	          "o.user_id = 3",
	          "users", 3);
	ROUTES_TO("WITH x AS (SELECT * FROM orders WHERE user_id = 3) SELECT * FROM users u JOIN x "
	          "ON x.note = u.name WHERE u.id = 3",
	          "users", 3);
	ROUTES_TO(
	    "SELECT * FROM users u JOIN (SELECT * FROM orders WHERE user_id = 3) s ON s.note = "
	    "u.name WHERE u.id = 3",
	    "users", 3);
	ROUTES_TO("SELECT * FROM users u JOIN widgets w ON w.id = 3 WHERE u.id = 3", "users", 3);
	/* two keys of one shard: all their rows are there */
	snprintf(sql, sizeof sql,
	         "SELECT * FROM users u JOIN orders o ON o.total = u.n WHERE u.id = 3 AND "
	         "o.user_id = %lld",
	         (long long)b);
	p = route(sql);
	expect_kind(sql, &p, ROUTE_SHARDS);
	assert_int_equal(shard_set_count(&p.shards), 1);
	/* not pinned: one side free, under OR, or only in an outer join's ON: a join across
	   shards (test_join_plan.c) */
	expect_join_step("SELECT * FROM users u JOIN orders o ON o.total = u.n WHERE u.id = 3",
	                 "users", "orders");
	expect_join_step("SELECT * FROM users u JOIN orders o ON o.total = u.n WHERE (u.id = 3 OR "
	                 "u.n = 1) AND o.user_id = 3",
	                 "users", "orders");
	snprintf(sql, sizeof sql,
	         "SELECT * FROM users u JOIN orders o ON o.total = u.n WHERE u.id = 3 AND "
	         "o.user_id = %lld",
	         (long long)key_elsewhere("users", 3));
	expect_join_step(sql, "users", "orders");
	/* parameters: decided when they are given */
	p = route("SELECT * FROM users u JOIN orders o ON o.total = u.n WHERE u.id = $1 AND "
	          "o.user_id = $1");
	assert_true(p.params_missing);
	{
		route_param_t prm[1] = {text_param("3")};

		p = route_params(
		    "SELECT * FROM users u JOIN orders o ON o.total = u.n WHERE u.id = $1 "
		    "AND o.user_id = $1",
		    prm, 1);
		expect_keys("pinned by a parameter", &p, "users", KEYS(3));
	}
}

/*
 * A subquery's sharded tables must be joined on their keys, as the
 * statement's own: its answer is wrong on every shard otherwise, correlated
 * or not, on one shard or several.
 */
static void test_subquery_joining_tables_without_their_keys_is_refused(void **state)
{
	(void)state;
	REFUSED("SELECT * FROM users u WHERE u.n > (SELECT count(*) FROM users a JOIN orders b ON "
	        "a.n = b.total WHERE a.id = u.id)",
	        "tables users and orders are joined without equal keys",
	        "join them on a.id = b.user_id");
	REFUSED(
	    "SELECT * FROM users WHERE id = 3 AND n > (SELECT count(*) FROM users a JOIN orders "
	    "b ON a.n = b.total WHERE a.id = 3)",
	    "tables users and orders are joined without equal keys");
	REFUSED(
	    "SELECT u.id, (SELECT count(*) FROM users a, orders b WHERE a.id = u.id) FROM users "
	    "u WHERE u.id = 3",
	    "tables users and orders are joined without equal keys");
	/* on their keys, or USING them, they are co-located */
	ROUTES_TO("SELECT * FROM users WHERE id = 3 AND n > (SELECT count(*) FROM users a JOIN "
	          "widgets x USING (id) WHERE a.id = 3)",
	          "users", 3);
	MERGES("SELECT * FROM users u WHERE u.n > (SELECT count(*) FROM users a JOIN orders b ON "
	       "a.id = b.user_id WHERE a.id = u.id)",
	       ROUTE_MERGE_SUM);
}

/* Known only with the parameter: refused then if it leaves several shards, not at Parse. */
static void test_subquery_refusal_waits_for_the_parameters(void **state)
{
	/* a write: a SELECT of the same shape runs its subquery first (join_plan.h) */
	const char *sql = "DELETE FROM users WHERE id = $1 AND n > (SELECT avg(n) FROM users)";
	const char *own = "DELETE FROM users WHERE id = 7 AND n > (SELECT avg(n) FROM users "
	                  "WHERE id = $1)";
	const char *select = "SELECT * FROM users WHERE id = $1 AND n > (SELECT avg(n) FROM users)";
	char beside[32], elsewhere[32];
	route_param_t prm = text_param("7");
	route_plan_t p = route(sql);

	(void)state;
	assert_int_not_equal(p.kind, ROUTE_REFUSE);
	assert_true(p.params_missing);
	/* with the value, it runs on one shard: the subquery would see that shard's rows only */
	p = route_params(sql, &prm, 1);
	expect_refused_with(sql, &p,
	                    (const char *const[]){"aggregate function avg() over users",
	                                          "in a statement on one shard", NULL});
	/* the subquery's own key parameter decides whether it stays on the statement's shard */
	p = route(own);
	expect_keys(own, &p, "users", KEYS(7));
	assert_true(p.params_missing);
	snprintf(beside, sizeof beside, "%lld", (long long)key_beside("users", 7));
	prm = text_param(beside);
	p = route_params(own, &prm, 1);
	expect_keys(own, &p, "users", KEYS(7));
	assert_int_equal(p.merge, ROUTE_MERGE_NONE);
	snprintf(elsewhere, sizeof elsewhere, "%lld", (long long)key_elsewhere("users", 7));
	prm = text_param(elsewhere);
	p = route_params(own, &prm, 1);
	expect_refused_with(own, &p,
	                    (const char *const[]){"aggregate function avg() over users", NULL});
	prm = text_param("7");
	p = route_params(select, &prm, 1);
	assert_true(p.join);
	assert_int_equal(p.steps[0].kind, ROUTE_STEP_JOIN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_multi_shard_subquery_that_needs_other_shards_rows_is_refused),
	    cmocka_unit_test(test_subqueries_tied_by_an_equality_run_as_semi_joins),
	    cmocka_unit_test(test_multi_shard_subquery_co_located_on_the_key_is_allowed),
	    cmocka_unit_test(test_multi_shard_subquery_over_reference_tables_is_allowed),
	    cmocka_unit_test(test_derived_table_joined_without_its_key_runs_whole_across_shards),
	    cmocka_unit_test(test_derived_table_joined_on_its_key_is_allowed),
	    cmocka_unit_test(test_derived_table_on_one_shard_with_limit_joins_on_its_key),
	    cmocka_unit_test(test_one_shard_subquery_that_needs_other_shards_rows_is_refused),
	    cmocka_unit_test(test_one_shard_subquery_local_to_its_shard_is_allowed),
	    cmocka_unit_test(test_subquery_joining_tables_without_their_keys_is_refused),
	    cmocka_unit_test(test_sides_pinned_to_one_shard_join_there),
	    cmocka_unit_test(test_subquery_refusal_waits_for_the_parameters),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
