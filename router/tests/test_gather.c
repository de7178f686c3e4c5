/*
 * test_gather.c — the gather planner (router/gather.h), pinned on strings.
 *
 * What a shard runs and the final query are pinned as deparsed text: that
 * text is what PostgreSQL gets, and every one of these statements was run
 * against PostgreSQL 15 (shards as schemas, the final query over their
 * partial rows) and gave the answer, the column names and the types of
 * the statement run on all the rows. The final query reads with its parts
 * in brackets: <ROWS pgshard_p>, <TYPE c1>, <AVG c2>.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/gather.h"
#include "router/route.h"

#include "router/tests/route_config.h"

/* ---- helpers ---- */

static gather_plan_t plan_params(const char *sql, const route_param_t *params, int n)
{
	gather_plan_t p;
	char sqlstate[6], err[512];

	if (route_gather(&ctx, sql, params, n, &p, sqlstate, err, sizeof err) != 0)
		fail_msg("\"%s\": refused (%s): %s", sql, sqlstate, err);
	return p;
}

static gather_plan_t plan(const char *sql)
{
	return plan_params(sql, NULL, 0);
}

/* The final query with its parts in brackets. */
static void final_text(const gather_plan_t *p, char *out, size_t len)
{
	size_t used = 0;

	out[0] = '\0';
	for (int i = 0; i < p->n_parts; i++) {
		const gather_part_t *x = &p->parts[i];
		int n = 0;

		switch (x->kind) {
		case GATHER_PART_TEXT:
			n = snprintf(out + used, len - used, "%s", x->text);
			break;
		case GATHER_PART_ROWS:
			n = snprintf(out + used, len - used, "<ROWS %s>", x->text);
			break;
		case GATHER_PART_TYPE:
			n = snprintf(out + used, len - used, "<TYPE c%d>", x->column);
			break;
		case GATHER_PART_AVG:
			n = snprintf(out + used, len - used, "<AVG c%d>", x->column);
			break;
		}
		assert_true(n >= 0 && (size_t)n < len - used);
		used += (size_t)n;
	}
}

/* A finalizing plan: the shard's query and the final query. */
static void expect_final(const char *sql, const char *shard, const char *final)
{
	gather_plan_t p = plan(sql);
	char text[4096];

	if (!p.finalize)
		fail_msg("\"%s\": streaming, expected finalizing", sql);
	final_text(&p, text, sizeof text);
	if (strcmp(p.shard_sql, shard) != 0)
		fail_msg("\"%s\":\n shard sql %s\n expected  %s", sql, p.shard_sql, shard);
	if (strcmp(text, final) != 0)
		fail_msg("\"%s\":\n final    %s\n expected %s", sql, text, final);
	assert_int_equal(p.n_keys, 0);
	assert_int_equal(p.hidden, 0);
	gather_plan_free(&p);
}

/* Sort keys as "c1 ASC NULLS LAST, h0 DESC NULLS FIRST C": h for a hidden column. */
static void keys_text(const gather_plan_t *p, char *out, size_t len)
{
	size_t used = 0;

	out[0] = '\0';
	for (int i = 0; i < p->n_keys; i++) {
		const gather_key_t *k = &p->keys[i];
		int n = snprintf(out + used, len - used, "%s%c%d %s NULLS %s%s", i > 0 ? ", " : "",
		                 k->hidden ? 'h' : 'c', k->column, k->desc ? "DESC" : "ASC",
		                 k->nulls_first ? "FIRST" : "LAST",
		                 k->coll == GATHER_COLL_C ? " C" : "");

		assert_true(n >= 0 && (size_t)n < len - used);
		used += (size_t)n;
	}
}

/* A streaming plan: the shard's query, the keys, OFFSET and LIMIT, hidden columns. */
static void expect_stream_params(const char *sql, const route_param_t *params, int n_params,
                                 const char *shard, const char *keys, int64_t offset, int64_t limit,
                                 int hidden)
{
	gather_plan_t p = plan_params(sql, params, n_params);
	char text[1024];

	if (p.finalize)
		fail_msg("\"%s\": finalizing, expected streaming", sql);
	keys_text(&p, text, sizeof text);
	if (strcmp(p.shard_sql, shard) != 0)
		fail_msg("\"%s\":\n shard sql %s\n expected  %s", sql, p.shard_sql, shard);
	if (strcmp(text, keys) != 0)
		fail_msg("\"%s\": keys \"%s\", expected \"%s\"", sql, text, keys);
	if (p.offset != offset || p.limit != limit || p.hidden != hidden)
		fail_msg("\"%s\": offset %lld limit %lld hidden %d, expected %lld %lld %d", sql,
		         (long long)p.offset, (long long)p.limit, p.hidden, (long long)offset,
		         (long long)limit, hidden);
	assert_int_equal(p.n_parts, 0);
	gather_plan_free(&p);
}

static void expect_stream(const char *sql, const char *shard, const char *keys, int64_t offset,
                          int64_t limit, int hidden)
{
	expect_stream_params(sql, NULL, 0, shard, keys, offset, limit, hidden);
}

static void expect_refused_params(const char *sql, const route_param_t *params, int n,
                                  const char *needle)
{
	gather_plan_t p;
	char sqlstate[6], err[512];

	if (route_gather(&ctx, sql, params, n, &p, sqlstate, err, sizeof err) == 0)
		fail_msg("\"%s\": planned (%s), expected a refusal with \"%s\"", sql, p.shard_sql,
		         needle);
	if (strcmp(sqlstate, "0A000") != 0)
		fail_msg("\"%s\": SQLSTATE %s, expected 0A000 (%s)", sql, sqlstate, err);
	if (strstr(err, needle) == NULL)
		fail_msg("\"%s\": \"%s\" does not contain \"%s\"", sql, err, needle);
	assert_null(p.shard_sql);
	assert_null(p.parts);
	assert_null(p.keys);
}

static void expect_refused(const char *sql, const char *needle)
{
	expect_refused_params(sql, NULL, 0, needle);
}

/* route_statement and route_gather agree: a plan is GATHER exactly when route_gather plans it. */
static void expect_merge_gather(const char *sql)
{
	route_plan_t p;

	assert_int_equal(route_statement(&ctx, sql, NULL, 0, &p), 0);
	if (p.kind == ROUTE_REFUSE || p.merge != ROUTE_MERGE_GATHER)
		fail_msg("\"%s\": merge %d (%s)", sql, (int)p.merge, p.error);
}

static route_param_t text_param(const char *s)
{
	return (route_param_t){.data = (const uint8_t *)s, .len = (int32_t)strlen(s), .format = 0};
}

static route_param_t binary_int(uint8_t *buf, int bytes, int64_t v, uint32_t oid)
{
	for (int i = bytes - 1; i >= 0; i--, v >>= 8)
		buf[i] = (uint8_t)(v & 0xff);
	return (route_param_t){.data = buf, .len = bytes, .format = 1, .type_oid = oid};
}

/* ---- streaming ---- */

static void test_order_by_a_column_not_selected_adds_a_hidden_key(void **state)
{
	(void)state;
	expect_stream(
	    "SELECT name FROM users ORDER BY created DESC LIMIT 10 OFFSET 5",
	    "SELECT name, created AS pgshard_k0 FROM users ORDER BY created DESC LIMIT 15",
	    "h0 DESC NULLS FIRST", 5, 10, 1);
}

static void test_order_by_selected_column_position_and_alias_use_that_column(void **state)
{
	(void)state;
	expect_stream("SELECT id, name FROM users ORDER BY name, 1 DESC NULLS LAST",
	              "SELECT id, name FROM users ORDER BY name, 1 DESC NULLS LAST",
	              "c1 ASC NULLS LAST, c0 DESC NULLS LAST", 0, -1, 0);
	expect_stream(
	    "SELECT id, upper(name) AS u FROM users ORDER BY u NULLS FIRST, upper(name) DESC",
	    "SELECT id, upper(name) AS u FROM users ORDER BY u NULLS FIRST, upper(name) DESC",
	    "c1 ASC NULLS FIRST, c1 DESC NULLS FIRST", 0, -1, 0);
	/* an unnamed expression is named like a function: upper */
	expect_stream("SELECT id, upper(name) FROM users ORDER BY upper",
	              "SELECT id, upper(name) FROM users ORDER BY upper", "c1 ASC NULLS LAST", 0,
	              -1, 0);
	/* a location does not make two expressions different */
	expect_stream("SELECT id, n   +   1 FROM users ORDER BY n + 1",
	              "SELECT id, n + 1 FROM users ORDER BY n + 1", "c1 ASC NULLS LAST", 0, -1, 0);
}

static void test_order_by_after_a_star_uses_a_hidden_key_but_positions_count_it(void **state)
{
	(void)state;
	expect_stream(
	    "SELECT *, n + 1 FROM users ORDER BY n + 1, id",
	    "SELECT *, n + 1, n + 1 AS pgshard_k0, id AS pgshard_k1 FROM users ORDER BY n "
	    "+ 1, id",
	    "h0 ASC NULLS LAST, h1 ASC NULLS LAST", 0, -1, 2);
	expect_stream(
	    "SELECT *, upper(name) AS up FROM users ORDER BY up",
	    "SELECT *, upper(name) AS up, upper(name) AS pgshard_k0 FROM users ORDER BY up",
	    "h0 ASC NULLS LAST", 0, -1, 1);
	/* a position counts the output columns, * expanded: the proxy's own count */
	expect_stream("SELECT * FROM users ORDER BY 3 DESC", "SELECT * FROM users ORDER BY 3 DESC",
	              "c2 DESC NULLS FIRST", 0, -1, 0);
}

static void test_order_by_direction_nulls_and_using_follow_postgres_defaults(void **state)
{
	(void)state;
	expect_stream(
	    "SELECT id FROM users ORDER BY id ASC, id DESC, id NULLS FIRST, id DESC NULLS "
	    "LAST, id USING <, id USING >, id USING OPERATOR(pg_catalog.>) NULLS LAST",
	    "SELECT id FROM users ORDER BY id ASC, id DESC, id NULLS FIRST, id DESC NULLS "
	    "LAST, id USING <, id USING >, id USING OPERATOR(pg_catalog.>)NULLS LAST",
	    "c0 ASC NULLS LAST, c0 DESC NULLS FIRST, c0 ASC NULLS FIRST, c0 DESC NULLS "
	    "LAST, c0 ASC NULLS LAST, c0 DESC NULLS FIRST, c0 DESC NULLS LAST",
	    0, -1, 0);
	expect_refused("SELECT id FROM users ORDER BY name USING ~<~",
	               "ORDER BY ... USING ~<~ across shards is not supported; use ASC or DESC");
}

static void test_order_by_collate_c_posix_or_default_only(void **state)
{
	(void)state;
	expect_stream(
	    "SELECT * FROM users ORDER BY name COLLATE \"C\", id USING >",
	    "SELECT *, name AS pgshard_k0, id AS pgshard_k1 FROM users ORDER BY name COLLATE "
	    "\"C\", id USING >",
	    "h0 ASC NULLS LAST C, h1 DESC NULLS FIRST", 0, -1, 2);
	expect_stream(
	    "SELECT id, name FROM users ORDER BY name COLLATE \"POSIX\" DESC, name COLLATE "
	    "\"default\", name COLLATE pg_catalog.\"C\"",
	    "SELECT id, name FROM users ORDER BY name COLLATE \"POSIX\" DESC, name COLLATE "
	    "\"default\", name COLLATE pg_catalog.\"C\"",
	    "c1 DESC NULLS FIRST C, c1 ASC NULLS LAST, c1 ASC NULLS LAST C", 0, -1, 0);
	/* the collation of a select-list column the key names */
	expect_stream("SELECT name COLLATE \"C\" AS n FROM users ORDER BY n",
	              "SELECT name COLLATE \"C\" AS n FROM users ORDER BY n", "c0 ASC NULLS LAST C",
	              0, -1, 0);
	expect_refused("SELECT * FROM users ORDER BY name COLLATE \"de_DE\"",
	               "ORDER BY ... COLLATE \"de_DE\" across shards is not supported (the proxy "
	               "merges in \"C\", \"POSIX\" or the database's default collation)");
	expect_refused("SELECT * FROM users ORDER BY lower(name COLLATE \"C\")",
	               "put the COLLATE on the whole sort key");
}

static void test_limit_offset_push_down_as_their_sum(void **state)
{
	(void)state;
	expect_stream("SELECT * FROM users LIMIT 3", "SELECT * FROM users LIMIT 3", "", 0, 3, 0);
	expect_stream("SELECT * FROM users OFFSET 4", "SELECT * FROM users", "", 4, -1, 0);
	expect_stream("SELECT * FROM users LIMIT ALL OFFSET 2", "SELECT * FROM users", "", 2, -1,
	              0);
	expect_stream("SELECT * FROM users ORDER BY id LIMIT NULL OFFSET NULL",
	              "SELECT *, id AS pgshard_k0 FROM users ORDER BY id", "h0 ASC NULLS LAST", 0,
	              -1, 1);
	expect_stream("SELECT id FROM users ORDER BY id FETCH FIRST 3 ROWS ONLY OFFSET 1",
	              "SELECT id FROM users ORDER BY id LIMIT 4", "c0 ASC NULLS LAST", 1, 3, 0);
	expect_stream("SELECT id FROM users ORDER BY id FETCH FIRST ROW ONLY",
	              "SELECT id FROM users ORDER BY id LIMIT 1", "c0 ASC NULLS LAST", 0, 1, 0);
	expect_stream("SELECT id FROM users LIMIT 5000000000 OFFSET '7'::int8",
	              "SELECT id FROM users LIMIT 5000000007", "", 7, 5000000000, 0);
	/* past int8: no limit on the shards (the proxy still stops) */
	expect_stream("SELECT id FROM users LIMIT 9223372036854775807 OFFSET 1",
	              "SELECT id FROM users", "", 1, INT64_MAX, 0);
}

static void test_negative_limit_or_offset_is_left_to_postgres(void **state)
{
	(void)state;
	expect_stream("SELECT id FROM users ORDER BY id LIMIT -1",
	              "SELECT id FROM users ORDER BY id LIMIT -1", "c0 ASC NULLS LAST", 0, -1, 0);
	expect_stream("SELECT id FROM users ORDER BY id LIMIT 5 OFFSET -2",
	              "SELECT id FROM users ORDER BY id LIMIT 5 OFFSET -2", "c0 ASC NULLS LAST", 0,
	              -1, 0);
}

static void test_limit_offset_parameters_take_their_values(void **state)
{
	uint8_t b8[8], b4[4], b2[2];
	route_param_t two[2] = {text_param(" 10 "), text_param("5")};
	route_param_t bin[3] = {text_param("x"), binary_int(b4, 4, 6, 23),
	                        binary_int(b2, 2, 1, 21)};
	route_param_t big[1] = {binary_int(b8, 8, 20, 20)};
	route_param_t null[1] = {{.data = NULL, .len = -1}};

	(void)state;
	/* the shard still reads every parameter, so that the client's Bind fits it */
	expect_stream_params("SELECT id FROM users ORDER BY id LIMIT $1 OFFSET $2", two, 2,
	                     "SELECT id FROM users WHERE ($1::bigint IS NULL OR true) AND "
	                     "($2::bigint IS NULL OR true) ORDER BY id LIMIT 15",
	                     "c0 ASC NULLS LAST", 5, 10, 0);
	expect_stream_params(
	    "SELECT id FROM users WHERE name = $1 OR n > 3 ORDER BY id LIMIT $2 "
	    "OFFSET $3::int",
	    bin, 3,
	    "SELECT id FROM users WHERE (name = $1 OR n > 3) AND ($2::bigint IS NULL "
	    "OR true) AND ($3::bigint IS NULL OR true) ORDER BY id LIMIT 7",
	    "c0 ASC NULLS LAST", 1, 6, 0);
	expect_stream_params("SELECT id FROM users LIMIT $1", big, 1,
	                     "SELECT id FROM users WHERE $1::bigint IS NULL OR true LIMIT 20", "",
	                     0, 20, 0);
	expect_stream_params("SELECT id FROM users LIMIT $1", null, 1,
	                     "SELECT id FROM users WHERE $1::bigint IS NULL OR true", "", 0, -1, 0);
	expect_refused("SELECT id FROM users ORDER BY id LIMIT $1",
	               "LIMIT/OFFSET across shards needs the value of parameter $1");
	route_param_t bad[1] = {text_param("2.5")};
	expect_refused_params(
	    "SELECT id FROM users ORDER BY id LIMIT $1", bad, 1,
	    "LIMIT/OFFSET across shards must be an integer constant or parameter");
	expect_refused("SELECT id FROM users ORDER BY id LIMIT 2 + 3",
	               "LIMIT/OFFSET across shards must be an integer constant or parameter");
	expect_refused("SELECT id FROM users LIMIT 2.5", "must be an integer constant");
}

/* ---- finalizing: aggregates ---- */

static void test_count_sum_min_max_avg_by_group(void **state)
{
	(void)state;
	expect_final(
	    "SELECT user_id, count(*), sum(total), min(note), max(total), avg(total) FROM orders "
	    "GROUP BY user_id",
	    "SELECT user_id AS c0, count(*) AS c1, sum(total) AS c2, min(note) AS c3, max(total) "
	    "AS "
	    "c4, count(total) AS c5 FROM orders GROUP BY 1",
	    "SELECT pgshard_p.c0 AS user_id, sum(pgshard_p.c1)::<TYPE c1> AS count, "
	    "sum(pgshard_p.c2)::<TYPE c2> AS sum, min(pgshard_p.c3) AS min, max(pgshard_p.c4) AS "
	    "max, sum(pgshard_p.c2)::<AVG c2> / sum(pgshard_p.c5) AS avg FROM <ROWS pgshard_p> "
	    "GROUP BY pgshard_p.c0");
}

static void test_the_example_of_gather_h(void **state)
{
	(void)state;
	expect_final(
	    "SELECT grp, avg(price) FROM items GROUP BY grp HAVING count(*) > 1 ORDER BY 2 DESC",
	    "SELECT grp AS c0, sum(price) AS c1, count(price) AS c2, count(*) AS c3 FROM items "
	    "GROUP BY 1",
	    "SELECT pgshard_p.c0 AS grp, sum(pgshard_p.c1)::<AVG c1> / sum(pgshard_p.c2) AS avg "
	    "FROM <ROWS pgshard_p> GROUP BY pgshard_p.c0 HAVING sum(pgshard_p.c3)::<TYPE c3> > 1 "
	    "ORDER BY 2 DESC");
}

static void test_bool_and_bit_aggregates_combine_as_themselves(void **state)
{
	(void)state;
	expect_final(
	    "SELECT note, bool_and(paid), every(paid), bool_or(paid), bit_and(flags), "
	    "bit_or(flags), bit_xor(flags) FROM orders GROUP BY 1",
	    "SELECT note AS c0, bool_and(paid) AS c1, every(paid) AS c2, bool_or(paid) AS "
	    "c3, bit_and(flags) AS c4, bit_or(flags) AS c5, bit_xor(flags) AS c6 FROM orders "
	    "GROUP BY 1",
	    "SELECT pgshard_p.c0 AS note, bool_and(pgshard_p.c1) AS bool_and, "
	    "bool_and(pgshard_p.c2) AS every, bool_or(pgshard_p.c3) AS bool_or, "
	    "bit_and(pgshard_p.c4) AS bit_and, bit_or(pgshard_p.c5) AS bit_or, "
	    "bit_xor(pgshard_p.c6) AS bit_xor FROM <ROWS pgshard_p> GROUP BY pgshard_p.c0");
}

static void test_aggregates_without_group_by_give_one_partial_row_per_shard(void **state)
{
	(void)state;
	expect_final(
	    "SELECT round(avg(total), 2), count(*) + 1 AS c, coalesce(max(note), '-') FROM "
	    "orders WHERE total > 0",
	    "SELECT sum(total) AS c0, count(total) AS c1, count(*) AS c2, max(note) AS c3 "
	    "FROM orders WHERE total > 0",
	    "SELECT round(sum(pgshard_p.c0)::<AVG c0> / sum(pgshard_p.c1), 2) AS round, "
	    "sum(pgshard_p.c2)::<TYPE c2> + 1 AS c, COALESCE(max(pgshard_p.c3), '-') AS "
	    "\"coalesce\" FROM <ROWS pgshard_p>");
	/* HAVING alone groups everything in one group: each shard still returns a row */
	expect_final("SELECT 1 FROM orders HAVING true", "SELECT count(*) AS c0 FROM orders",
	             "SELECT 1 AS \"?column?\" FROM <ROWS pgshard_p> HAVING true");
}

static void test_the_same_partial_is_shipped_once(void **state)
{
	(void)state;
	expect_final(
	    "SELECT sum(total), avg(total) FROM orders GROUP BY note ORDER BY sum(total) DESC",
	    "SELECT note AS c0, sum(total) AS c1, count(total) AS c2 FROM orders GROUP BY 1",
	    "SELECT sum(pgshard_p.c1)::<TYPE c1> AS sum, sum(pgshard_p.c1)::<AVG c1> / "
	    "sum(pgshard_p.c2) AS avg FROM <ROWS pgshard_p> GROUP BY pgshard_p.c0 ORDER BY "
	    "sum(pgshard_p.c1)::<TYPE c1> DESC");
}

static void test_filter_goes_into_the_partial(void **state)
{
	(void)state;
	expect_final(
	    "SELECT user_id, count(*) FILTER (WHERE total > 10), avg(total) FILTER (WHERE "
	    "paid) FROM orders GROUP BY user_id HAVING max(total) > 5",
	    "SELECT user_id AS c0, count(*) FILTER (WHERE total > 10) AS c1, sum(total) "
	    "FILTER (WHERE paid) AS c2, count(total) FILTER (WHERE paid) AS c3, max(total) "
	    "AS c4 FROM orders GROUP BY 1",
	    "SELECT pgshard_p.c0 AS user_id, sum(pgshard_p.c1)::<TYPE c1> AS count, "
	    "sum(pgshard_p.c2)::<AVG c2> / sum(pgshard_p.c3) AS avg FROM <ROWS pgshard_p> "
	    "GROUP BY pgshard_p.c0 HAVING max(pgshard_p.c4) > 5");
}

static void test_distinct_aggregates_ship_their_arguments_as_groups(void **state)
{
	(void)state;
	/* no GROUP BY, and a shard with no rows returns no group: count() of nothing is 0 */
	expect_final(
	    "SELECT count(DISTINCT note), count(*) FROM orders",
	    "SELECT note AS c0, count(*) AS c1 FROM orders GROUP BY 1",
	    "SELECT count(DISTINCT pgshard_p.c0) AS count, COALESCE(sum(pgshard_p.c1)::<TYPE "
	    "c1>, 0) AS count FROM <ROWS pgshard_p>");
	/* a row of values comes back as an anonymous record, which no text input reads */
	expect_refused("SELECT count(DISTINCT (user_id, note)) FROM orders",
	               "DISTINCT (a, b, ...)");
	expect_refused("SELECT count(DISTINCT ROW(user_id, note)) FROM orders",
	               "DISTINCT (a, b, ...)");
	expect_final("SELECT user_id, sum(DISTINCT total), string_agg(DISTINCT note, ',' ORDER BY "
	             "note) FROM orders GROUP BY user_id",
	             "SELECT user_id AS c0, total AS c1, note AS c2 FROM orders GROUP BY 1, 2, 3",
	             "SELECT pgshard_p.c0 AS user_id, sum(DISTINCT pgshard_p.c1) AS sum, "
	             "string_agg(DISTINCT pgshard_p.c2, ',' ORDER BY pgshard_p.c2) AS string_agg "
	             "FROM <ROWS pgshard_p> GROUP BY pgshard_p.c0");
	/* a DISTINCT argument that is a group expression reads the group column */
	expect_final(
	    "SELECT note, count(DISTINCT note) FROM orders GROUP BY note",
	    "SELECT note AS c0 FROM orders GROUP BY 1",
	    "SELECT pgshard_p.c0 AS note, count(DISTINCT pgshard_p.c0) AS count FROM <ROWS "
	    "pgshard_p> GROUP BY pgshard_p.c0");
}

static void test_collate_of_an_aggregate_argument_is_kept(void **state)
{
	(void)state;
	expect_final(
	    "SELECT min(note COLLATE \"C\"), count(DISTINCT note COLLATE \"C\") FROM orders",
	    "SELECT min(note COLLATE \"C\") AS c0, note AS c1 FROM orders GROUP BY 2",
	    "SELECT min(pgshard_p.c0 COLLATE \"C\") AS min, count(DISTINCT pgshard_p.c1 "
	    "COLLATE \"C\") AS count FROM <ROWS pgshard_p>");
}

static void test_group_expressions_positions_and_qualified_names(void **state)
{
	(void)state;
	expect_final(
	    "SELECT upper(note), count(*) FROM orders GROUP BY note ORDER BY 1",
	    "SELECT note AS c0, count(*) AS c1 FROM orders GROUP BY 1",
	    "SELECT upper(pgshard_p.c0) AS upper, sum(pgshard_p.c1)::<TYPE c1> AS count FROM "
	    "<ROWS pgshard_p> GROUP BY pgshard_p.c0 ORDER BY 1");
	expect_final("SELECT o.note || '!' AS k, count(*) FROM orders o GROUP BY 1",
	             "SELECT o.note || '!' AS c0, count(*) AS c1 FROM orders o GROUP BY 1",
	             "SELECT pgshard_p.c0 AS k, sum(pgshard_p.c1)::<TYPE c1> AS count FROM <ROWS "
	             "pgshard_p> GROUP BY pgshard_p.c0");
	/* note and o.note are one column when both resolve */
	expect_final(
	    "SELECT o.note, count(*) FROM orders o GROUP BY note",
	    "SELECT note AS c0, count(*) AS c1 FROM orders o GROUP BY 1",
	    "SELECT pgshard_p.c0 AS note, sum(pgshard_p.c1)::<TYPE c1> AS count FROM <ROWS "
	    "pgshard_p> GROUP BY pgshard_p.c0");
	expect_final(
	    "SELECT user_id, count(*) FROM orders WHERE note = $1 GROUP BY user_id ORDER BY "
	    "2 DESC, user_id LIMIT 3",
	    "SELECT user_id AS c0, count(*) AS c1 FROM orders WHERE note = $1 GROUP BY 1",
	    "SELECT pgshard_p.c0 AS user_id, sum(pgshard_p.c1)::<TYPE c1> AS count FROM "
	    "<ROWS pgshard_p> GROUP BY pgshard_p.c0 ORDER BY 2 DESC, user_id LIMIT 3");
}

static void test_output_names_are_postgres_own(void **state)
{
	(void)state;
	expect_final(
	    "SELECT count(*)::int, CAST(sum(total) AS numeric(10, 2)), 'x'::text || count(*), "
	    "CASE WHEN count(*) > 1 THEN 'many' END, CASE WHEN true THEN max(note) ELSE "
	    "max(note) END, ARRAY[count(*)], ROW(count(*)), greatest(count(*), 2), least(1, "
	    "count(*)), nullif(count(*), 0), current_date, count(*) AS \"Count\", sum(total) AS "
	    "\"select\", count(*) > 1 FROM orders",
	    "SELECT count(*) AS c0, sum(total) AS c1, max(note) AS c2 FROM orders",
	    "SELECT sum(pgshard_p.c0)::<TYPE c0>::int AS count, sum(pgshard_p.c1)::<TYPE "
	    "c1>::numeric(10, 2) AS sum, 'x'::text || sum(pgshard_p.c0)::<TYPE c0> AS "
	    "\"?column?\", "
	    "CASE WHEN sum(pgshard_p.c0)::<TYPE c0> > 1 THEN 'many' END AS \"case\", CASE WHEN "
	    "true "
	    "THEN max(pgshard_p.c2) ELSE max(pgshard_p.c2) END AS max, "
	    "ARRAY[sum(pgshard_p.c0)::<TYPE c0>] AS \"array\", ROW(sum(pgshard_p.c0)::<TYPE c0>) "
	    "AS \"row\", GREATEST(sum(pgshard_p.c0)::<TYPE c0>, 2) AS \"greatest\", LEAST(1, "
	    "sum(pgshard_p.c0)::<TYPE c0>) AS \"least\", NULLIF(sum(pgshard_p.c0)::<TYPE c0>, 0) "
	    "AS \"nullif\", current_date AS \"current_date\", sum(pgshard_p.c0)::<TYPE c0> AS "
	    "\"Count\", sum(pgshard_p.c1)::<TYPE c1> AS \"select\", sum(pgshard_p.c0)::<TYPE c0> > "
	    "1 AS \"?column?\" FROM <ROWS pgshard_p>");
	/* a cast of a constant is named after its type */
	expect_final("SELECT 1::int8, count(*) FROM orders", "SELECT count(*) AS c0 FROM orders",
	             "SELECT 1::int8 AS int8, sum(pgshard_p.c0)::<TYPE c0> AS count FROM <ROWS "
	             "pgshard_p>");
}

/* ---- finalizing: DISTINCT ---- */

static void test_distinct_ships_the_rows_and_distinct_again(void **state)
{
	(void)state;
	expect_final("SELECT DISTINCT note, total FROM orders ORDER BY total DESC LIMIT 3",
	             "SELECT DISTINCT note AS c0, total AS c1 FROM orders",
	             "SELECT DISTINCT pgshard_p.c0 AS note, pgshard_p.c1 AS total FROM <ROWS "
	             "pgshard_p> ORDER BY total DESC LIMIT 3");
	expect_final("SELECT DISTINCT upper(note) FROM orders ORDER BY upper(note)",
	             "SELECT DISTINCT upper(note) AS c0 FROM orders",
	             "SELECT DISTINCT pgshard_p.c0 AS upper FROM <ROWS pgshard_p> ORDER BY "
	             "pgshard_p.c0");
}

static void test_distinct_on_keeps_each_shards_first_and_takes_the_first_of_those(void **state)
{
	(void)state;
	expect_final(
	    "SELECT DISTINCT ON (user_id) user_id, total, note FROM orders ORDER BY user_id, "
	    "total DESC",
	    "SELECT DISTINCT ON (user_id) user_id AS c0, total AS c1, note AS c2 FROM orders "
	    "ORDER BY user_id, total DESC",
	    "SELECT DISTINCT ON (user_id) pgshard_p.c0 AS user_id, pgshard_p.c1 AS total, "
	    "pgshard_p.c2 AS note FROM <ROWS pgshard_p> ORDER BY user_id, total DESC");
	/* positions and output names mean the select-list expression, on the shards too */
	expect_final(
	    "SELECT DISTINCT ON (1) lower(note) AS k, total FROM orders ORDER BY 1, k, "
	    "created DESC LIMIT 2",
	    "SELECT DISTINCT ON (lower(note)) lower(note) AS c0, total AS c1, created AS c2 "
	    "FROM orders ORDER BY lower(note), lower(note), created DESC",
	    "SELECT DISTINCT ON (1) pgshard_p.c0 AS k, pgshard_p.c1 AS total FROM <ROWS "
	    "pgshard_p> ORDER BY 1, k, pgshard_p.c2 DESC LIMIT 2");
}

static void test_final_limit_parameters_become_literals(void **state)
{
	uint8_t b8[8];
	route_param_t prm[2] = {text_param("4"), binary_int(b8, 8, 2, 20)};
	gather_plan_t p;
	char text[1024];

	(void)state;
	p = plan_params(
	    "SELECT note, count(*) FROM orders GROUP BY note ORDER BY 2 LIMIT $1 OFFSET "
	    "$2",
	    prm, 2);
	final_text(&p, text, sizeof text);
	assert_string_equal(
	    p.shard_sql, "SELECT note AS c0, count(*) AS c1 FROM orders WHERE ($1::bigint IS NULL "
	                 "OR true) AND ($2::bigint IS NULL OR true) GROUP BY 1");
	assert_string_equal(text,
	                    "SELECT pgshard_p.c0 AS note, sum(pgshard_p.c1)::<TYPE c1> AS "
	                    "count FROM <ROWS pgshard_p> GROUP BY pgshard_p.c0 ORDER BY 2 LIMIT "
	                    "'4' OFFSET 2");
	assert_true(p.finalize);
	assert_int_equal(p.limit, -1);
	assert_int_equal(p.offset, 0);
	gather_plan_free(&p);
}

/* A finalizing plan's final query parameters: which of the client's each $k is. */
static void expect_final_params(const char *sql, const route_param_t *params, int n,
                                const char *shard, const char *final, const int *map, int n_map)
{
	gather_plan_t p = plan_params(sql, params, n);
	char text[4096];

	assert_true(p.finalize);
	final_text(&p, text, sizeof text);
	if (strcmp(p.shard_sql, shard) != 0)
		fail_msg("\"%s\":\n shard sql %s\n expected  %s", sql, p.shard_sql, shard);
	if (strcmp(text, final) != 0)
		fail_msg("\"%s\":\n final    %s\n expected %s", sql, text, final);
	assert_int_equal(p.n_final_params, n_map);
	for (int k = 0; k < n_map; k++)
		assert_int_equal(p.final_params[k], map[k]);
	if (n_map == 0)
		assert_null(p.final_params);
	gather_plan_free(&p);
}

/*
 * A parameter over aggregates stays a parameter of the final query, numbered
 * from $1 there; the shard query reads it too, in a HAVING that is always
 * true, in the same expression, so that PostgreSQL types it there as it
 * types it in the statement.
 */
static void test_parameters_over_aggregates_are_the_final_querys(void **state)
{
	route_param_t prm[3] = {text_param("x"), text_param("10"), text_param("2")};

	(void)state;
	expect_final_params(
	    "SELECT note, sum(total) AS paid FROM orders WHERE note <> $1 GROUP BY note "
	    "HAVING sum(total) > $2 ORDER BY 2 DESC",
	    prm, 2,
	    "SELECT note AS c0, sum(total) AS c1 FROM orders WHERE note <> $1 GROUP BY 1 "
	    "HAVING sum(total) > $2 OR true",
	    "SELECT pgshard_p.c0 AS note, sum(pgshard_p.c1)::<TYPE c1> AS paid FROM <ROWS "
	    "pgshard_p> GROUP BY pgshard_p.c0 HAVING sum(pgshard_p.c1)::<TYPE c1> > $1 ORDER "
	    "BY 2 DESC",
	    (const int[]){2}, 1);
	/* in the select list and ORDER BY: `(e) IS NULL OR true`; a bare one is text */
	expect_final_params(
	    "SELECT user_id, round(avg(total), $3) AS a, $1 AS label FROM orders GROUP BY "
	    "user_id ORDER BY count(*) * $2, 1",
	    prm, 3,
	    "SELECT user_id AS c0, sum(total) AS c1, count(total) AS c2, count(*) AS c3 FROM "
	    "orders GROUP BY 1 HAVING (round(avg(total), $3) IS NULL OR true) AND ($1::text IS "
	    "NULL OR true) AND (count(*) * $2 IS NULL OR true)",
	    "SELECT pgshard_p.c0 AS user_id, round(sum(pgshard_p.c1)::<AVG c1> / "
	    "sum(pgshard_p.c2), $1) AS a, $2 AS label FROM <ROWS pgshard_p> GROUP BY "
	    "pgshard_p.c0 ORDER BY sum(pgshard_p.c3)::<TYPE c3> * $3, 1",
	    (const int[]){3, 1, 2}, 3);
	/* the same parameter twice is one parameter of the final query */
	expect_final_params("SELECT count(*) FROM orders HAVING count(*) > $1 AND count(*) < $1 "
	                    "* 10",
	                    prm + 1, 1,
	                    "SELECT count(*) AS c0 FROM orders HAVING (count(*) > $1 AND count(*) "
	                    "< ($1 * 10)) OR true",
	                    "SELECT sum(pgshard_p.c0)::<TYPE c0> AS count FROM <ROWS pgshard_p> "
	                    "HAVING sum(pgshard_p.c0)::<TYPE c0> > $1 AND "
	                    "sum(pgshard_p.c0)::<TYPE c0> < ($1 * 10)",
	                    (const int[]){1}, 1);
	/* parameters only in WHERE, group expressions and aggregate arguments: none there */
	expect_final_params("SELECT note || $1, sum(total * $2) FROM orders GROUP BY note || $1",
	                    prm, 2,
	                    "SELECT note || $1 AS c0, sum(total * $2) AS c1 FROM orders GROUP BY 1",
	                    "SELECT pgshard_p.c0 AS \"?column?\", sum(pgshard_p.c1)::<TYPE c1> "
	                    "AS sum FROM <ROWS pgshard_p> GROUP BY pgshard_p.c0",
	                    NULL, 0);
	/* with LIMIT $n too: a literal there, a no-op typed as LIMIT on the shards */
	expect_final_params("SELECT note, count(*) FROM orders GROUP BY note HAVING count(*) >= $2 "
	                    "ORDER BY 2 LIMIT $3",
	                    prm, 3,
	                    "SELECT note AS c0, count(*) AS c1 FROM orders WHERE $3::bigint IS "
	                    "NULL OR true GROUP BY 1 HAVING count(*) >= $2 OR true",
	                    "SELECT pgshard_p.c0 AS note, sum(pgshard_p.c1)::<TYPE c1> AS count "
	                    "FROM <ROWS pgshard_p> GROUP BY pgshard_p.c0 HAVING "
	                    "sum(pgshard_p.c1)::<TYPE c1> >= $1 ORDER BY 2 LIMIT '2'",
	                    (const int[]){2}, 1);
}

/* ---- the parts ---- */

static void test_parts_alternate_text_and_placeholders(void **state)
{
	gather_plan_t p;

	(void)state;
	p = plan("SELECT avg(total) FROM orders");
	assert_int_equal(p.n_parts, 4);
	assert_int_equal(p.parts[0].kind, GATHER_PART_TEXT);
	assert_string_equal(p.parts[0].text, "SELECT sum(pgshard_p.c0)::");
	assert_int_equal(p.parts[1].kind, GATHER_PART_AVG);
	assert_int_equal(p.parts[1].column, 0);
	assert_null(p.parts[1].text);
	assert_int_equal(p.parts[2].kind, GATHER_PART_TEXT);
	assert_string_equal(p.parts[2].text, " / sum(pgshard_p.c1) AS avg FROM ");
	assert_int_equal(p.parts[3].kind, GATHER_PART_ROWS);
	assert_string_equal(p.parts[3].text, "pgshard_p");
	gather_plan_free(&p);
	gather_plan_free(&p); /* twice is harmless */
}

/* ---- what stays one shard's, or refused ---- */

static void test_finalizing_refusals_say_what_works(void **state)
{
	(void)state;
	expect_refused(
	    "SELECT string_agg(note, ',') FROM orders",
	    "the aggregate string_agg() across shards is not supported (count, sum, min, "
	    "max, avg, bool_and, bool_or, every, bit_and, bit_or, bit_xor, and any "
	    "aggregate with DISTINCT are)");
	expect_refused("SELECT array_agg(total ORDER BY total) FROM orders",
	               "array_agg() with ORDER BY inside across shards is not supported");
	expect_refused("SELECT stddev(total), count(*) FROM orders", "the aggregate stddev()");
	expect_refused("SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY total) FROM orders",
	               "the ordered-set aggregate percentile_disc() (WITHIN GROUP)");
	expect_refused(
	    "SELECT sum(DISTINCT total) FILTER (WHERE paid) FROM orders",
	    "sum(DISTINCT ...) FILTER (WHERE ...) across shards is not supported; move the "
	    "condition into the argument");
	expect_refused("SELECT note, count(*) FROM orders",
	               "column note must appear in the GROUP BY clause or be used in an aggregate "
	               "function when the query runs on several shards");
	expect_refused("SELECT user_id, o.total + 1, count(*) FROM orders o GROUP BY user_id",
	               "column o.total must appear in the GROUP BY clause");
	expect_refused(
	    "SELECT myschema.myagg(total) FROM orders GROUP BY note",
	    "column total must appear in the GROUP BY clause or be used in an aggregate "
	    "function when the query runs on several shards (pgshard knows only built-in "
	    "aggregates, not myagg())");
	expect_refused("SELECT *, count(*) OVER () FROM orders", "window functions");
	expect_refused("SELECT * FROM orders GROUP BY user_id", "name the columns");
	expect_refused("SELECT DISTINCT * FROM orders", "name the columns");
	expect_refused("SELECT note, count(*) FROM orders GROUP BY CUBE (note)",
	               "GROUPING SETS, ROLLUP and CUBE");
	expect_refused("SELECT note, count(*) FROM orders GROUP BY GROUPING SETS ((note), ())",
	               "GROUPING SETS");
	expect_refused("SELECT note, count(*) > (SELECT 1) FROM orders GROUP BY note",
	               "a subquery in the select list, HAVING or ORDER BY");
	expect_refused("SELECT lower(note) AS k, count(*) FROM orders GROUP BY k",
	               "GROUP BY k names an output column across shards, which is not supported; "
	               "write its position (GROUP BY 1) or its expression");
	expect_refused("SELECT note, count(*) FROM orders GROUP BY 3",
	               "GROUP BY position 3 is not in the select list");
}

static void test_statements_no_gather_plan_takes(void **state)
{
	(void)state;
	expect_refused("SELECT * FROM orders ORDER BY total FETCH FIRST 2 ROWS WITH TIES",
	               "FETCH FIRST ... WITH TIES across shards is not supported; use LIMIT");
	expect_refused("SELECT * FROM orders ORDER BY total LIMIT 3 FOR UPDATE",
	               "FOR UPDATE/SHARE");
	expect_refused("SELECT * FROM orders ORDER BY total; SELECT * FROM orders",
	               "send it alone");
	expect_refused("SELECT user_id FROM orders UNION ALL SELECT id FROM users ORDER BY 1",
	               "ORDER BY");
	expect_refused("SELECT pgshard_x FROM orders ORDER BY 1",
	               "names and constants starting with \"pgshard_\" are pgshard's own");
	expect_refused(
	    "SELECT note, count(*) FROM orders WHERE note <> 'pgshard_type_1' GROUP BY 1",
	    "\"pgshard_type_1\"");
	/* route_statement says why, with what would work */
	expect_refused("SELECT *, row_number() OVER () FROM orders",
	               "add a condition on orders.user_id, or /* pgshard: shard=N */");
	/* ...and a streaming plan's literals are not placeholders */
	expect_stream("SELECT id FROM users WHERE name = 'pgshard_p' ORDER BY id",
	              "SELECT id FROM users WHERE name = 'pgshard_p' ORDER BY id",
	              "c0 ASC NULLS LAST", 0, -1, 0);
}

/* The plan cache's masked literals are the constants they stand for, not parameters. */
static void test_masked_literals_are_constants_to_the_check(void **state)
{
	route_param_t lit = text_param("1");
	route_literals_t lits = {.first = 1, .n = 1, .values = &lit, .kinds = "i"};
	route_parsed_t *p = route_parse("SELECT note, count(*) FROM orders GROUP BY note HAVING "
	                                "count(*) > $1");
	route_plan_t plan_;

	(void)state;
	assert_non_null(p);
	assert_int_equal(route_analyze(&ctx, p, NULL, 0, &lits, &plan_), 0);
	assert_int_equal(plan_.kind, ROUTE_SHARDS);
	assert_int_equal(plan_.merge, ROUTE_MERGE_GATHER);
	/* a real parameter there is one the final query is bound */
	assert_int_equal(route_analyze(&ctx, p, NULL, 0, NULL, &plan_), 0);
	assert_int_equal(plan_.kind, ROUTE_SHARDS);
	assert_int_equal(plan_.merge, ROUTE_MERGE_GATHER);
	route_parsed_free(p);
}

static void test_order_by_position_outside_the_select_list_is_refused(void **state)
{
	(void)state;
	expect_refused("SELECT id FROM users ORDER BY 2",
	               "ORDER BY position 2 is not in the select");
	expect_refused("SELECT id FROM users ORDER BY 0", "ORDER BY position 0");
	expect_refused("SELECT DISTINCT id FROM users ORDER BY 3", "ORDER BY position is not in");
}

/* What route_gather plans, route_statement says is ROUTE_MERGE_GATHER; and the other way. */
/*
 * A function the router does not know may be a user-defined aggregate: a
 * concatenating SELECT calling one goes through a gather plan whose shard
 * WHERE makes PostgreSQL refuse an aggregate; known scalar functions and
 * subqueries do not.
 */
static void test_unknown_functions_in_a_streaming_select_are_probed(void **state)
{
	route_plan_t r;

	(void)state;
	expect_stream("SELECT my_sum(total) FROM orders",
	              "SELECT my_sum(total) FROM orders WHERE true OR my_sum(total) IS NULL", "", 0,
	              -1, 0);
	expect_stream("SELECT user_id, twice(total) + 1 FROM orders WHERE total > 5 ORDER BY 1",
	              "SELECT user_id, twice(total) + 1 FROM orders WHERE total > 5 AND (true OR "
	              "twice(total) IS NULL) ORDER BY 1",
	              "c0 ASC NULLS LAST", 0, -1, 0);
	expect_merge_gather("SELECT my_sum(total) FROM orders");
	assert_int_equal(
	    route_statement(&ctx, "SELECT lower(note), total FROM orders", NULL, 0, &r), 0);
	assert_int_equal(r.merge, ROUTE_MERGE_SUM);
	assert_int_equal(
	    route_statement(&ctx,
	                    "SELECT (SELECT my_sum(n) FROM users u WHERE u.id = o.user_id) "
	                    "FROM orders o",
	                    NULL, 0, &r),
	    0);
	assert_int_equal(r.merge, ROUTE_MERGE_SUM);
}

static void test_route_statement_and_route_gather_agree(void **state)
{
	static const char *const cases[] = {
	    "SELECT * FROM users ORDER BY name LIMIT 5",
	    "SELECT note, count(*) FROM orders GROUP BY note",
	    "SELECT DISTINCT note FROM orders",
	    "SELECT count(DISTINCT note) FROM orders",
	    "SELECT sum(total) FROM orders",
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		gather_plan_t p = plan(cases[i]);

		expect_merge_gather(cases[i]);
		gather_plan_free(&p);
	}
}

/* route_gather parses the statement once: the gather planner rewrites a copy of the router's tree.
 */
static void test_route_gather_parses_the_statement_once(void **state)
{
	static const char *const sqls[] = {
	    "SELECT id FROM users ORDER BY id LIMIT 5",
	    "SELECT note, avg(total) FROM orders GROUP BY note HAVING count(*) > 1 ORDER BY 2",
	    "SELECT DISTINCT note FROM orders",
	};

	(void)state;
	for (size_t i = 0; i < sizeof sqls / sizeof sqls[0]; i++) {
		uint64_t before = route_parse_count();
		gather_plan_t p = plan(sqls[i]);

		if (route_parse_count() - before != 1)
			fail_msg("\"%s\": %llu parses", sqls[i],
			         (unsigned long long)(route_parse_count() - before));
		gather_plan_free(&p);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_order_by_a_column_not_selected_adds_a_hidden_key),
	    cmocka_unit_test(test_unknown_functions_in_a_streaming_select_are_probed),
	    cmocka_unit_test(test_order_by_selected_column_position_and_alias_use_that_column),
	    cmocka_unit_test(test_order_by_after_a_star_uses_a_hidden_key_but_positions_count_it),
	    cmocka_unit_test(test_order_by_direction_nulls_and_using_follow_postgres_defaults),
	    cmocka_unit_test(test_order_by_collate_c_posix_or_default_only),
	    cmocka_unit_test(test_limit_offset_push_down_as_their_sum),
	    cmocka_unit_test(test_negative_limit_or_offset_is_left_to_postgres),
	    cmocka_unit_test(test_limit_offset_parameters_take_their_values),
	    cmocka_unit_test(test_count_sum_min_max_avg_by_group),
	    cmocka_unit_test(test_the_example_of_gather_h),
	    cmocka_unit_test(test_bool_and_bit_aggregates_combine_as_themselves),
	    cmocka_unit_test(test_aggregates_without_group_by_give_one_partial_row_per_shard),
	    cmocka_unit_test(test_the_same_partial_is_shipped_once),
	    cmocka_unit_test(test_filter_goes_into_the_partial),
	    cmocka_unit_test(test_distinct_aggregates_ship_their_arguments_as_groups),
	    cmocka_unit_test(test_collate_of_an_aggregate_argument_is_kept),
	    cmocka_unit_test(test_group_expressions_positions_and_qualified_names),
	    cmocka_unit_test(test_output_names_are_postgres_own),
	    cmocka_unit_test(test_distinct_ships_the_rows_and_distinct_again),
	    cmocka_unit_test(test_distinct_on_keeps_each_shards_first_and_takes_the_first_of_those),
	    cmocka_unit_test(test_final_limit_parameters_become_literals),
	    cmocka_unit_test(test_parameters_over_aggregates_are_the_final_querys),
	    cmocka_unit_test(test_parts_alternate_text_and_placeholders),
	    cmocka_unit_test(test_finalizing_refusals_say_what_works),
	    cmocka_unit_test(test_statements_no_gather_plan_takes),
	    cmocka_unit_test(test_masked_literals_are_constants_to_the_check),
	    cmocka_unit_test(test_order_by_position_outside_the_select_list_is_refused),
	    cmocka_unit_test(test_route_statement_and_route_gather_agree),
	    cmocka_unit_test(test_route_gather_parses_the_statement_once),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
