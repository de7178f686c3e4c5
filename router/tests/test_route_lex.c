/*
 * test_route_lex.c — the router's depth guard (router/route.h), pinned:
 * tokens cut as PostgreSQL cuts them, the depth estimated from a statement's
 * text, and statements too deep refused with SQLSTATE 54001, before parsing
 * or after, never crashed on.
 *
 * The helpers, the config, and why no test hard-codes a shard: route_expect.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <limits.h>
#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/route.h"
#include "router/sqlchars.h"

#include "router/tests/route_config.h"
#include "router/tests/route_expect.h"

/* ---- the depth guard ---- */

static void test_absurdly_deep_statement_is_refused_not_crashed(void **state)
{
	size_t n = 5000, len = 64 + 2 * n;
	char *sql = malloc(len);
	size_t k;

	(void)state;
	assert_non_null(sql);
	k = (size_t)snprintf(sql, len, "SELECT * FROM users WHERE id = 1 AND x = ");
	for (size_t i = 0; i < n; i++) {
		sql[k++] = '1';
		sql[k++] = '+';
	}
	sql[k++] = '1';
	sql[k] = '\0';
	{
		route_plan_t p = route(sql);

		expect_kind("deep", &p, ROUTE_REFUSE);
		expect_reason("deep", &p, "nested too deeply");
		assert_string_equal(p.sqlstate, "54001");
	}
	free(sql);
}

static int estimate(const char *sql)
{
	return route_sql_depth_estimate(sql, strlen(sql));
}

/* head, `open` n times, center, `close` n times */
static char *repeat_sql(const char *head, const char *open, const char *center, const char *close,
                        size_t n)
{
	size_t hl = strlen(head), ol = strlen(open), cl = strlen(center), xl = strlen(close);
	size_t k = hl;
	char *sql = malloc(hl + n * (ol + xl) + cl + 1);

	assert_non_null(sql);
	memcpy(sql, head, hl);
	for (size_t i = 0; i < n; i++, k += ol)
		memcpy(sql + k, open, ol);
	memcpy(sql + k, center, cl);
	k += cl;
	for (size_t i = 0; i < n; i++, k += xl)
		memcpy(sql + k, close, xl);
	sql[k] = '\0';
	return sql;
}

/* The tokens of sql, as "kind:text" joined by spaces (kinds: route_token_kind_t's order). */
static void tokens(const char *sql, char *out, size_t n)
{
	static const char kinds[] = "ewqsxnpoc.";
	size_t len = strlen(sql), pos = 0, k = 0;
	route_token_t t;

	out[0] = '\0';
	for (;;) {
		pos = route_next_token(sql, len, pos, &t);
		if (t.kind == ROUTE_TOK_END)
			break;
		k += (size_t)snprintf(out + k, n - k, "%s%c%s:%.*s", k ? " " : "", kinds[t.kind],
		                      t.unterminated ? "!" : "", (int)t.len, sql + t.start);
	}
}

#define TOKENS(sql, want)                                                                          \
	do {                                                                                       \
		char got_[512];                                                                    \
                                                                                                   \
		tokens((sql), got_, sizeof got_);                                                  \
		if (strcmp(got_, (want)) != 0)                                                     \
			fail_msg("\"%s\": tokens \"%s\", expected \"%s\"", (sql), got_, (want));   \
	} while (0)

static void test_tokens_are_cut_as_postgresql_cuts_them(void **state)
{
	(void)state;
	TOKENS("SELECT a1, $2 FROM \"T\"\"x\"", "w:SELECT w:a1 .:, p:$2 w:FROM q:\"T\"\"x\"");
	TOKENS("1 1.5 .5 5. 1e-3 1e 1..2", "n:1 n:1.5 n:.5 n:5. n:1e-3 n:1 w:e n:1 .:.. n:2");
	/* trailing + and - leave an operator unless it has one of ~!@#%^&|`? */
	TOKENS("a=-5 b@-5 c<>+-1 d*/*x*/e", "w:a o:= o:- n:5 w:b o:@- n:5 w:c o:<> o:+ o:- n:1 w:d "
	                                    "o:* w:e");
	TOKENS("x::int[] -- note\n;", "w:x c::: w:int .:[ .:] .:;");
	TOKENS("'it''s' E'\\'' U&'a' B'01' $$x$$ $t$a$$b$t$",
	       "s:'it''s' x:E'\\'' x:U&'a' x:B'01' x:$$x$$ x:$t$a$$b$t$");
	/* a string continues after a newline, in its own escape rules */
	TOKENS("'a'\n'b' 'c' 'd'", "s:'a'\n'b' s:'c' s:'d'");
	TOKENS("E'a'\n'\\'' + 1 '", "x:E'a'\n'\\'' o:+ n:1 s!:'");
	TOKENS("/* a /* b */ c */ x /* open", "w:x");
	TOKENS("\"open", "q!:\"open");
}

/* Only a statement whose first word is INSERT or WITH is routed at Parse for its columns. */
static void test_only_insert_or_with_may_be_an_insert(void **state)
{
	static const char *yes[] = {"INSERT INTO t VALUES (1)", "  insert into t values (1)",
	                            "/* c */ -- x\n WITH a AS (SELECT 1) INSERT INTO t VALUES (1)",
	                            "Insert", "\n\t WITH a AS (SELECT 1) INSERT INTO t VALUES (1)"};
	static const char *no[] = {"SELECT 1",
	                           "inserts",
	                           "\"insert\" into t",
	                           "EXPLAIN INSERT INTO t VALUES (1)",
	                           "",
	                           "-- insert",
	                           "_insert",
	                           "withdraw",
	                           "  update t set a = 1",
	                           "\xc3\xa9insert"};

	(void)state;
	for (size_t i = 0; i < sizeof yes / sizeof *yes; i++)
		if (!route_may_be_insert(yes[i], strlen(yes[i])))
			fail_msg("\"%s\": expected maybe an INSERT", yes[i]);
	for (size_t i = 0; i < sizeof no / sizeof *no; i++)
		if (route_may_be_insert(no[i], strlen(no[i])))
			fail_msg("\"%s\": expected not an INSERT", no[i]);
}

static void test_depth_estimate_counts_levels_and_operator_chains(void **state)
{
	(void)state;
	assert_int_equal(estimate(""), 0);
	assert_int_equal(estimate("SELECT 1"), 0);
	assert_int_equal(estimate("SELECT 1+1+1"), 2);
	assert_int_equal(estimate("SELECT (1)"), 1);
	assert_int_equal(estimate("SELECT ((1+1)+1)*2"), 5);
	assert_int_equal(estimate("SELECT x::int::text"), 2);
	assert_int_equal(estimate("SELECT a[1][2]"), 1);
	/* =-5 is = and a unary minus, as PostgreSQL cuts it; @- is one operator */
	assert_int_equal(estimate("SELECT a=-5"), 2);
	assert_int_equal(estimate("SELECT a@-5"), 1);
	/* 1e-5 is a number, not a subtraction */
	assert_int_equal(estimate("SELECT 1e-5"), 0);
	/* AND and OR are flattened by PostgreSQL; commas separate */
	assert_int_equal(estimate("SELECT a FROM t WHERE a = 1 AND b = 2 OR c = 3"), 1);
	assert_int_equal(estimate("SELECT f(1, 2, 3), g(4)"), 1);
	assert_int_equal(estimate("INSERT INTO t (id, v) VALUES (1, 'a'), (2, 'b'), (3, 'c')"), 1);
	/* CASE opens a level; its WHEN branches are a list */
	assert_int_equal(
	    estimate("SELECT CASE WHEN a = 1 THEN 'x' WHEN a = 2 THEN 'y' ELSE 'z' END + 1"), 3);
	/* statements of a string are measured apart */
	assert_int_equal(estimate("SELECT 1+1+1; SELECT 2"), 2);
	/* closers without openers close nothing */
	assert_int_equal(estimate("SELECT 1) + 1] + 1"), 2);
}

static void test_depth_estimate_skips_strings_comments_and_quoted_names(void **state)
{
	(void)state;
	assert_int_equal(estimate("SELECT '((((+++', 'it''s (('"), 0);
	assert_int_equal(estimate("SELECT $$((+++$$, $a$ (( $$ )) $a$, $1"), 0);
	assert_int_equal(estimate("SELECT \"a+b((\" FROM \"t\"\"((\""), 0);
	assert_int_equal(estimate("SELECT E'\\'((++', e'\\\\', U&'((+' , B'01', X'1f'"), 0);
	assert_int_equal(estimate("SELECT /* (( /* nested (( */ ++ */ 1 -- ((+++\n"), 0);
	/* 'a'<newline>'b' is one literal; E'' escapes continue into the next piece */
	assert_int_equal(estimate("SELECT 'a'\n'(+('"), 0);
	assert_int_equal(estimate("SELECT E'x'\n'\\'' +1+1 '"), 2);
	/* unterminated: what follows the quote is not code */
	assert_int_equal(estimate("SELECT 1 + 'oops ((((+"), 1);
	assert_int_equal(estimate("SELECT 1 + /* oops ((((+"), 1);
}

/* Every left-deep chain the grammar builds without a parenthesis is counted. */
static void test_depth_estimate_counts_chains_of_keywords(void **state)
{
	static const struct {
		const char *head, *open, *center, *close;
	} chains[] = {
	    {"SELECT 1", "+1", "", ""},
	    {"SELECT 'a'", " || 'a'", "", ""},
	    {"SELECT x", "::int", "", ""},
	    {"SELECT 'a'", " COLLATE \"C\"", "", ""},
	    {"SELECT now()", " AT TIME ZONE 'UTC'", "", ""},
	    {"SELECT 1", " IS NULL", "", ""},
	    {"SELECT 1", " IN (1)", "", ""},
	    {"SELECT 1", " OPERATOR(pg_catalog.+) 1", "", ""},
	    {"SELECT ", "NOT ", "true", ""},
	    {"SELECT * FROM t", " JOIN t ON true", "", ""},
	    {"SELECT 1", " UNION SELECT 1", "", ""},
	    {"SELECT ", "(", "1", ")"},
	    {"SELECT ", "(SELECT ", "1", ")"},
	    {"SELECT ", "ARRAY[", "1", "]"},
	    {"SELECT ", "CASE WHEN ", "true", " THEN 1 END"},
	};
	size_t n = ROUTE_MAX_SQL_DEPTH + 100;

	(void)state;
	for (size_t i = 0; i < sizeof chains / sizeof chains[0]; i++) {
		char *sql = repeat_sql(chains[i].head, chains[i].open, chains[i].center,
		                       chains[i].close, n);

		if (estimate(sql) <= ROUTE_MAX_SQL_DEPTH)
			fail_msg("\"%s...\" %zu times: estimate %d", chains[i].open, n,
			         estimate(sql));
		free(sql);
	}
}

/* Wide statements are not deep: long lists must pass the guard. */
static void test_depth_estimate_of_wide_lists_stays_small(void **state)
{
	char *sql;

	(void)state;
	sql = repeat_sql("SELECT * FROM t WHERE a = 1", " AND a = 1", "", "", 20000);
	assert_true(estimate(sql) <= 2);
	free(sql);
	sql = repeat_sql("SELECT * FROM t WHERE a IN (1", ", 1", ")", "", 20000);
	assert_true(estimate(sql) <= 3);
	free(sql);
	sql = repeat_sql("SELECT CASE a", " WHEN 1 THEN 'x'", " END", "", 20000);
	assert_true(estimate(sql) <= 2);
	free(sql);
	sql = repeat_sql("SELECT ", "f(x) = 1, ", "1", "", 20000);
	assert_true(estimate(sql) <= 2);
	free(sql);
}

/*
 * Without the guard, libpg_query itself overflows the stack on this one
 * (about 23,500 levels on 8 MB): the test would crash, not fail.
 */
static void test_deep_operator_chain_is_refused_before_parsing(void **state)
{
	size_t n = 150000; /* 300 kB */
	char *sql = repeat_sql("SELECT 1", "+1", "", "", n);
	char want[256];
	route_plan_t p;

	(void)state;
	assert_true(strlen(sql) > 300000);
	p = route(sql);
	expect_kind("300 kB of +1", &p, ROUTE_REFUSE);
	assert_string_equal(p.sqlstate, "54001");
	snprintf(want, sizeof want,
	         "statement is nested too deeply to analyze (estimated depth %zu, limit %d)", n,
	         ROUTE_MAX_SQL_DEPTH);
	assert_string_equal(p.error, want);
	assert_int_equal(shard_set_count(&p.shards), 0);
	free(sql);
	/* just over the limit, too */
	sql = repeat_sql("SELECT * FROM users WHERE id = 1 AND x = 1", "*1", "", "",
	                 ROUTE_MAX_SQL_DEPTH);
	p = route(sql);
	expect_kind("limit + 1", &p, ROUTE_REFUSE);
	assert_string_equal(p.sqlstate, "54001");
	free(sql);
	/* a routing comment still decides, as for a statement that does not parse */
	sql = repeat_sql("/* pgshard: shard=2 */ SELECT 1", "+1", "", "", n);
	p = route(sql);
	expect_one("override", &p, ROUTE_SHARDS, 2);
	assert_string_equal(p.sqlstate, "");
	free(sql);
}

/* A tree deeper than the router walks, from a text the estimate lets through. */
static void test_deep_tree_under_the_text_limit_is_refused_with_54001(void **state)
{
	char *sql = repeat_sql("SELECT ", "(SELECT ", "1", ")", 1500);
	route_plan_t p;

	(void)state;
	assert_true(estimate(sql) <= ROUTE_MAX_SQL_DEPTH);
	p = route(sql);
	expect_kind("nested subqueries", &p, ROUTE_REFUSE);
	assert_string_equal(p.sqlstate, "54001");
	expect_reason("nested subqueries", &p, "nested too deeply for pgshard's router");
	free(sql);
}

/* 5 MB of rows: wide, not deep; the guard must let it through. */
static void test_wide_multi_row_insert_is_not_refused_by_the_guard(void **state)
{
	size_t rows = 300000, cap = rows * 24 + 64, k;
	char *sql = malloc(cap);
	route_plan_t p;

	(void)state;
	assert_non_null(sql);
	k = (size_t)snprintf(sql, cap, "INSERT INTO users (id, v) VALUES ");
	for (size_t i = 0; i < rows; i++)
		k += (size_t)snprintf(sql + k, cap - k, "%s(%zu,'row %06zu')", i ? "," : "", i + 1,
		                      i);
	assert_true(k > 5 * 1000 * 1000);
	assert_true(estimate(sql) <= 2);
	p = route(sql);
	expect_map_all("5 MB INSERT", &p, "users");
	assert_true(p.split_insert);
	assert_int_equal(p.merge, ROUTE_MERGE_SUM);
	assert_string_equal(p.sqlstate, "");
	free(sql);
}

/* The table says of every byte what the C locale's ctype and the scanner's rules say. */
static void test_char_classes_are_ctypes_and_the_scanners(void **state)
{
	(void)state;
	for (int c = 0; c < 256; c++) {
		bool high = c >= 0x80;

		assert_int_equal(sql_is((unsigned char)c, SQLCH_SPACE), isspace(c) != 0);
		assert_int_equal(sql_is((unsigned char)c, SQLCH_DIGIT), isdigit(c) != 0);
		assert_int_equal(sql_is((unsigned char)c, SQLCH_ALNUM), isalnum(c) != 0);
		assert_int_equal(sql_is((unsigned char)c, SQLCH_START),
		                 isalpha(c) != 0 || c == '_' || high);
		assert_int_equal(sql_is((unsigned char)c, SQLCH_IDENT),
		                 isalnum(c) != 0 || c == '_' || c == '$' || high);
		assert_int_equal(sql_is((unsigned char)c, SQLCH_OP),
		                 c != 0 && strchr("+-*/<>=~!@#%^&|`?", c) != NULL);
		assert_int_equal(sql_is((unsigned char)c, SQLCH_SPECIAL),
		                 c != 0 && strchr("~!@#^&|`?%", c) != NULL);
		assert_int_equal(sql_is((unsigned char)c, SQLCH_STMT),
		                 c != 0 && strchr(";'\"$-/", c) != NULL);
		assert_int_equal(sql_lower((unsigned char)c), tolower(c));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_absurdly_deep_statement_is_refused_not_crashed),
	    cmocka_unit_test(test_char_classes_are_ctypes_and_the_scanners),
	    cmocka_unit_test(test_tokens_are_cut_as_postgresql_cuts_them),
	    cmocka_unit_test(test_only_insert_or_with_may_be_an_insert),
	    cmocka_unit_test(test_depth_estimate_counts_levels_and_operator_chains),
	    cmocka_unit_test(test_depth_estimate_skips_strings_comments_and_quoted_names),
	    cmocka_unit_test(test_depth_estimate_counts_chains_of_keywords),
	    cmocka_unit_test(test_depth_estimate_of_wide_lists_stays_small),
	    cmocka_unit_test(test_deep_operator_chain_is_refused_before_parsing),
	    cmocka_unit_test(test_deep_tree_under_the_text_limit_is_refused_with_54001),
	    cmocka_unit_test(test_wide_multi_row_insert_is_not_refused_by_the_guard),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
