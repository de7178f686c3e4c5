/*
 * test_classify.c — session effects of a query string (router/classify.h), pinned.
 *
 * Under transaction pooling a lost SET or a missed pin is a silent wrong
 * answer for the client, so the lexical pre-pass is tested mostly on strings
 * built to trick it into skipping a statement (semicolons in literals, dollar
 * quotes, comments, E'' escapes); the grammar pass then decides.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "router/classify.h"

/* ---- helpers ---- */

static void scan(const char *sql, route_effects_t *e)
{
	assert_int_equal(route_scan_effects(sql, strlen(sql), e), 0);
}

/* The statement has no session effect at all. */
static void assert_no_effects(const char *sql)
{
	route_effects_t e;

	scan(sql, &e);
	if (e.n_sets != 0 || e.pin || e.drop_statements || e.sets != NULL)
		fail_msg("\"%s\": expected no effects, got %d sets, pin=%d (%s), drop=%d", sql,
		         e.n_sets, e.pin, e.pin_why ? e.pin_why : "-", e.drop_statements);
	route_effects_free(&e);
}

/* The statement pins the session, and nothing else; pin_why mentions `why`. */
static void assert_pins(const char *sql, const char *why)
{
	route_effects_t e;

	scan(sql, &e);
	if (!e.pin)
		fail_msg("\"%s\": expected a pin (%s), got none", sql, why);
	assert_non_null(e.pin_why);
	if (strstr(e.pin_why, why) == NULL)
		fail_msg("\"%s\": pin_why \"%s\" does not mention \"%s\"", sql, e.pin_why, why);
	assert_int_equal(e.n_sets, 0);
	assert_false(e.drop_statements);
	route_effects_free(&e);
}

/* libpg_query 15 starts a later statement right after the previous ';', so its
 * text keeps the whitespace before it; replaying that is harmless. */
static const char *lstrip(const char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	return s;
}

/* Exactly one SET to replay, with this name and (leading space aside) this text. */
static void assert_one_set(const char *sql, const char *name, const char *stmt)
{
	route_effects_t e;

	scan(sql, &e);
	if (e.n_sets != 1)
		fail_msg("\"%s\": expected one set, got %d", sql, e.n_sets);
	assert_int_equal(e.sets[0].kind, ROUTE_SET_VALUE);
	assert_string_equal(e.sets[0].name, name);
	assert_non_null(e.sets[0].stmt);
	assert_string_equal(lstrip(e.sets[0].stmt), stmt);
	assert_false(e.pin);
	assert_false(e.drop_statements);
	route_effects_free(&e);
}

/* ---- statements with no session effect ---- */

static void test_plain_dml_has_no_effects_and_allocates_nothing(void **state)
{
	(void)state;
	assert_no_effects("SELECT 1");
	assert_no_effects("select * from t where a = 'set x = 1'");
	assert_no_effects("INSERT INTO t VALUES (1, 'SET')");
	assert_no_effects("DELETE FROM t WHERE a = 1");
	assert_no_effects("");
	assert_no_effects("   \n\t ");
}

static void test_update_set_clause_is_not_a_session_set(void **state)
{
	(void)state;
	assert_no_effects("UPDATE t SET a = 1 WHERE b = 2");
	assert_no_effects("INSERT INTO t VALUES (1) ON CONFLICT (a) DO UPDATE SET a = 2");
}

static void test_set_clauses_of_other_commands_are_not_session_sets(void **state)
{
	(void)state;
	assert_no_effects("ALTER ROLE bob SET work_mem = '1MB'");
	assert_no_effects("ALTER DATABASE app SET search_path = a");
	assert_no_effects(
	    "CREATE FUNCTION f() RETURNS int LANGUAGE sql SET search_path = a AS 'select 1'");
}

/* ---- SET ---- */

static void test_set_search_path_is_replayed_as_written(void **state)
{
	(void)state;
	assert_one_set("SET search_path TO a, b", "search_path", "SET search_path TO a, b");
}

static void test_set_name_is_lower_cased(void **state)
{
	(void)state;
	assert_one_set("set Statement_Timeout = 5", "statement_timeout",
	               "set Statement_Timeout = 5");
	/* GUC names are case-insensitive even when quoted */
	assert_one_set("set \"Work_Mem\" = '1MB'", "work_mem", "set \"Work_Mem\" = '1MB'");
}

static void test_set_session_is_tracked(void **state)
{
	(void)state;
	assert_one_set("SET SESSION x.y = 1", "x.y", "SET SESSION x.y = 1");
}

static void test_set_with_special_syntax_uses_the_guc_name(void **state)
{
	(void)state;
	assert_one_set("SET TIME ZONE 'UTC'", "timezone", "SET TIME ZONE 'UTC'");
	assert_one_set("SET ROLE bob", "role", "SET ROLE bob");
}

static void test_set_local_has_no_session_effect(void **state)
{
	(void)state;
	assert_no_effects("SET LOCAL x = 1");
	assert_no_effects("SET LOCAL search_path TO a");
}

static void test_set_transaction_has_no_session_effect(void **state)
{
	(void)state;
	assert_no_effects("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE");
}

static void test_set_session_characteristics_is_tracked(void **state)
{
	route_effects_t e;

	(void)state;
	scan("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", &e);
	assert_int_equal(e.n_sets, 1);
	assert_int_equal(e.sets[0].kind, ROUTE_SET_VALUE);
	assert_non_null(e.sets[0].name);
	assert_string_equal(e.sets[0].stmt, "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY");
	route_effects_free(&e);
}

static void test_set_with_trailing_semicolon_replays_without_it(void **state)
{
	route_effects_t e;

	(void)state;
	scan("SET x.y = 1;", &e);
	assert_int_equal(e.n_sets, 1);
	assert_null(strchr(e.sets[0].stmt, ';'));
	assert_string_equal(e.sets[0].stmt, "SET x.y = 1");
	route_effects_free(&e);
}

/* ---- RESET, DISCARD, DEALLOCATE ---- */

static void test_reset_name_forgets_that_name(void **state)
{
	route_effects_t e;

	(void)state;
	scan("RESET work_mem", &e);
	assert_int_equal(e.n_sets, 1);
	assert_int_equal(e.sets[0].kind, ROUTE_RESET);
	assert_string_equal(e.sets[0].name, "work_mem");
	assert_null(e.sets[0].stmt);
	assert_false(e.drop_statements);
	route_effects_free(&e);
}

static void test_set_to_default_is_a_reset(void **state)
{
	route_effects_t e;

	(void)state;
	scan("SET work_mem TO DEFAULT", &e);
	assert_int_equal(e.n_sets, 1);
	assert_int_equal(e.sets[0].kind, ROUTE_RESET);
	assert_string_equal(e.sets[0].name, "work_mem");
	assert_null(e.sets[0].stmt);
	route_effects_free(&e);
}

static void test_reset_all_forgets_everything_but_keeps_statements(void **state)
{
	route_effects_t e;

	(void)state;
	scan("RESET ALL", &e);
	assert_int_equal(e.n_sets, 1);
	assert_int_equal(e.sets[0].kind, ROUTE_RESET_ALL);
	assert_null(e.sets[0].name);
	assert_null(e.sets[0].stmt);
	assert_false(e.drop_statements);
	assert_false(e.pin);
	route_effects_free(&e);
}

static void test_discard_all_resets_all_and_drops_statements(void **state)
{
	route_effects_t e;

	(void)state;
	scan("DISCARD ALL", &e);
	assert_int_equal(e.n_sets, 1);
	assert_int_equal(e.sets[0].kind, ROUTE_RESET_ALL);
	assert_null(e.sets[0].name);
	assert_true(e.drop_statements);
	assert_false(e.pin);
	route_effects_free(&e);
}

static void test_discard_of_less_than_all_has_no_tracked_effect(void **state)
{
	(void)state;
	assert_no_effects("DISCARD PLANS");
	assert_no_effects("DISCARD SEQUENCES");
}

static void test_deallocate_all_drops_statements(void **state)
{
	route_effects_t e;

	(void)state;
	scan("DEALLOCATE ALL", &e);
	assert_true(e.drop_statements);
	assert_int_equal(e.n_sets, 0);
	assert_false(e.pin);
	route_effects_free(&e);

	scan("deallocate prepare all", &e);
	assert_true(e.drop_statements);
	route_effects_free(&e);
}

static void test_deallocate_one_statement_has_no_tracked_effect(void **state)
{
	(void)state;
	assert_no_effects("DEALLOCATE q1");
	assert_no_effects("DEALLOCATE PREPARE q1");
}

/* ---- several statements in one string ---- */

static void test_set_inside_a_transaction_block_keeps_only_its_own_text(void **state)
{
	route_effects_t e;
	const char *sql = "BEGIN; SET a.b = 1; SELECT 2";

	(void)state;
	scan(sql, &e);
	assert_int_equal(e.n_sets, 1);
	assert_int_equal(e.sets[0].kind, ROUTE_SET_VALUE);
	assert_string_equal(e.sets[0].name, "a.b");
	/* only the SET: nothing of BEGIN before it, of SELECT after it, or a ';' */
	assert_string_equal(lstrip(e.sets[0].stmt), "SET a.b = 1");
	/* and it is the text at that place in the string */
	assert_non_null(strstr(sql, e.sets[0].stmt));
	route_effects_free(&e);
}

static void test_sets_and_resets_come_out_in_statement_order(void **state)
{
	route_effects_t e;

	(void)state;
	scan("SET a.b = 1; select 1; RESET a.b; SET c.d TO 2; RESET ALL", &e);
	assert_int_equal(e.n_sets, 4);
	assert_int_equal(e.sets[0].kind, ROUTE_SET_VALUE);
	assert_string_equal(e.sets[0].name, "a.b");
	assert_string_equal(e.sets[0].stmt, "SET a.b = 1");
	assert_int_equal(e.sets[1].kind, ROUTE_RESET);
	assert_string_equal(e.sets[1].name, "a.b");
	assert_int_equal(e.sets[2].kind, ROUTE_SET_VALUE);
	assert_string_equal(e.sets[2].name, "c.d");
	assert_string_equal(lstrip(e.sets[2].stmt), "SET c.d TO 2");
	assert_int_equal(e.sets[3].kind, ROUTE_RESET_ALL);
	route_effects_free(&e);
}

static void test_semicolons_inside_string_literals_do_not_split(void **state)
{
	(void)state;
	/* the lexer must find the SET after a ';' inside a literal */
	assert_one_set("select ';'; set x.y = 'a;b'", "x.y", "set x.y = 'a;b'");
}

static void test_dollar_quoted_body_with_semicolons_does_not_hide_a_set(void **state)
{
	(void)state;
	assert_one_set("DO $$ BEGIN PERFORM 1; END $$; SET x.y=1", "x.y", "SET x.y=1");
	assert_one_set("SELECT $tag$ ' ; $$ $tag$; SET x.y = 1", "x.y", "SET x.y = 1");
}

/*
 * Regression test for a bug once in router/classify.c.
 * skip_statement() (classify.c:162) accepts only [A-Za-z0-9_] in a dollar-quote
 * tag, but PostgreSQL's scanner also takes bytes >= 0x80 (dolq_start/dolq_cont
 * in scan.l). `$é$` is then not seen as a quote, the `'` inside it opens a
 * string that runs to the end, the SET is never looked at and is lost.
 */
static void test_dollar_quote_with_a_non_ascii_tag_does_not_hide_a_set(void **state)
{
	(void)state;
	assert_one_set("SELECT $\xc3\xa9$ ' $\xc3\xa9$; SET x.y = 1", "x.y", "SET x.y = 1");
}

static void test_set_words_in_comments_are_not_statements(void **state)
{
	(void)state;
	assert_no_effects("/* set x */ select 1");
	assert_no_effects("-- set\nselect 1");
	assert_no_effects("/* a /* nested */ set x.y = 1 */ select 1");
}

static void test_quotes_inside_comments_and_identifiers_do_not_hide_a_set(void **state)
{
	(void)state;
	assert_one_set("SELECT 1 /* it's */; SET x.y = 1", "x.y", "SET x.y = 1");
	assert_one_set("SELECT 1 -- it's\n; SET x.y = 1", "x.y", "SET x.y = 1");
	assert_one_set("SELECT 1 AS \"it's\"; SET x.y = 1", "x.y", "SET x.y = 1");
	assert_one_set("/* a /* nested */ ' */ select 1; SET x.y = 1", "x.y", "SET x.y = 1");
}

static void test_escaped_quote_in_e_string_does_not_end_it(void **state)
{
	(void)state;
	/* E'it\'s' is one literal: the SET after it must be found */
	assert_one_set("SELECT E'it\\'s'; SET x.y = 1", "x.y", "SET x.y = 1");
	assert_one_set("SELECT e'\\\\'; SET x.y = 1", "x.y", "SET x.y = 1");
	/* and a SET inside an E'' literal is not a statement */
	assert_no_effects("SELECT E'a\\'; SET x.y = 1; --'");
}

static void test_syntax_error_anywhere_means_no_effects(void **state)
{
	(void)state;
	assert_no_effects("SET x = ;");
	assert_no_effects("SET");
	/* the server rejects the whole string, so the SET never ran */
	assert_no_effects("BEGIN; SELEC 1; SET x.y = 1");
}

/* ---- pins ---- */

static void test_listen_pins(void **state)
{
	(void)state;
	assert_pins("LISTEN ch", "LISTEN");
	assert_no_effects("UNLISTEN ch");
	assert_no_effects("NOTIFY ch");
}

static void test_create_temp_table_pins(void **state)
{
	(void)state;
	assert_pins("CREATE TEMP TABLE t(a int)", "temporary");
	assert_pins("CREATE TEMPORARY TABLE t(a int)", "temporary");
	assert_pins("create temp table t as select 1", "temporary");
	assert_pins("create temp sequence s", "temporary");
}

static void test_create_regular_table_does_not_pin(void **state)
{
	(void)state;
	assert_no_effects("CREATE TABLE t(a int)");
	assert_no_effects("CREATE UNLOGGED TABLE t(a int)");
	assert_no_effects("create table t as select 1");
	assert_no_effects("create view v as select 1");
}

static void test_create_temp_view_pins(void **state)
{
	(void)state;
	assert_pins("create temp view v as select 1", "temporary");
	assert_pins("CREATE OR REPLACE TEMPORARY VIEW v AS SELECT 1", "temporary");
}

/*
 * Regression test for a bug once in router/classify.c.
 * SELECT ... INTO TEMP creates a temporary table (PostgreSQL docs, SELECT INTO),
 * but route_scan_effects() never parses a statement whose first word is SELECT
 * (classify_head, classify.c:196), and effects_of_stmt() has no case for a
 * SelectStmt with an intoClause either. The client loses its table on the next
 * transaction.
 */
static void test_select_into_temp_pins(void **state)
{
	(void)state;
	assert_pins("SELECT 1 AS a INTO TEMP t", "temporary");
}

/*
 * Regression test for a bug once in router/classify.c.
 * A relation created in schema pg_temp is temporary (PostgreSQL's
 * RangeVarAdjustRelationPersistence), but is_temp() (classify.c:246) only
 * looks at relpersistence, which the grammar leaves at 'p' here.
 */
static void test_create_table_in_pg_temp_schema_pins(void **state)
{
	(void)state;
	assert_pins("CREATE TABLE pg_temp.t(a int)", "temporary");
}

static void test_sql_prepare_pins(void **state)
{
	(void)state;
	assert_pins("PREPARE p AS SELECT 1", "PREPARE");
}

static void test_cursor_with_hold_pins_and_without_hold_does_not(void **state)
{
	(void)state;
	assert_pins("DECLARE c CURSOR WITH HOLD FOR SELECT 1", "HOLD");
	assert_no_effects("DECLARE c CURSOR FOR SELECT 1");
	assert_no_effects("DECLARE c CURSOR WITHOUT HOLD FOR SELECT 1");
}

static void test_session_advisory_locks_pin_and_xact_locks_do_not(void **state)
{
	(void)state;
	assert_pins("select pg_advisory_lock(1)", "advisory");
	assert_pins("select pg_try_advisory_lock(1)", "advisory");
	assert_pins("SELECT PG_ADVISORY_LOCK_SHARED(1, 2)", "advisory");
	assert_no_effects("select pg_advisory_xact_lock(1)");
	assert_no_effects("select pg_try_advisory_xact_lock(1)");
}

static void test_pin_and_set_in_one_string_are_both_reported(void **state)
{
	route_effects_t e;

	(void)state;
	scan("SET a.b = 1; SELECT pg_advisory_lock(1); LISTEN ch", &e);
	assert_true(e.pin);
	assert_non_null(e.pin_why);
	assert_int_equal(e.n_sets, 1);
	assert_string_equal(e.sets[0].name, "a.b");
	route_effects_free(&e);
}

static void test_effects_free_leaves_an_empty_description(void **state)
{
	route_effects_t e;

	(void)state;
	scan("SET a.b = 1; SET c.d = 2", &e);
	assert_int_equal(e.n_sets, 2);
	route_effects_free(&e);
	assert_null(e.sets);
	assert_int_equal(e.n_sets, 0);
	route_effects_free(&e); /* a second free is harmless */
}

static void test_scan_honours_len_not_the_nul(void **state)
{
	static const char sql[] = "SELECT 1; SET x.y = 1";
	route_effects_t e;

	(void)state;

	/* only "SELECT 1; " is the query: the SET after it is not part of it */
	assert_int_equal(route_scan_effects(sql, 10, &e), 0);
	assert_int_equal(e.n_sets, 0);
	route_effects_free(&e);
}

/* ---- route_quote_literal ---- */

static void assert_quotes_as(const char *in, const char *want)
{
	char *q = route_quote_literal(in);

	assert_non_null(q);
	assert_string_equal(q, want);
	free(q);
}

static void test_quote_literal_plain(void **state)
{
	(void)state;
	assert_quotes_as("abc", "'abc'");
	assert_quotes_as("", "''");
}

static void test_quote_literal_doubles_single_quotes(void **state)
{
	(void)state;
	assert_quotes_as("it's", "'it''s'");
	assert_quotes_as("''", "''''''");
}

static void test_quote_literal_with_backslash_uses_e_form_and_doubles_it(void **state)
{
	(void)state;
	assert_quotes_as("a\\b", "E'a\\\\b'");
	assert_quotes_as("it's\\", "E'it''s\\\\'");
}

/* libpg_query overflows the stack on very deep expressions: such statements must
 * not be parsed (this test crashed before the length cap), and the session is
 * pinned, which is always correct. */
static void test_huge_deep_statement_is_not_parsed_and_pins(void **state)
{
	static const char head[] = "create table t as select 1";
	size_t terms = 150000, len = sizeof(head) - 1 + terms * 2;
	char *sql = malloc(len + 1);
	route_effects_t e;

	(void)state;
	assert_non_null(sql);
	memcpy(sql, head, sizeof(head) - 1);
	for (size_t i = 0; i < terms; i++)
		memcpy(sql + sizeof(head) - 1 + i * 2, "+1", 2);
	sql[len] = '\0';
	assert_int_equal(route_scan_effects(sql, len, &e), 0);
	assert_true(e.pin);
	assert_int_equal(e.n_sets, 0);
	route_effects_free(&e);
	free(sql);
}

/* Under the length cap but deeper than the router's depth limit: not parsed either
 * (30,000 operators in 60 kB overflow an 8 MB stack inside libpg_query). */
static void test_short_deep_statement_is_not_parsed_and_pins(void **state)
{
	static const char head[] = "set work_mem = 1";
	size_t terms = 30000, len = sizeof(head) - 1 + terms * 2;
	char *sql = malloc(len + 1);
	route_effects_t e;

	(void)state;
	assert_non_null(sql);
	memcpy(sql, head, sizeof(head) - 1);
	for (size_t i = 0; i < terms; i++)
		memcpy(sql + sizeof(head) - 1 + i * 2, "+1", 2);
	sql[len] = '\0';
	assert_true(len < 64 * 1024);
	assert_int_equal(route_scan_effects(sql, len, &e), 0);
	assert_true(e.pin);
	assert_int_equal(e.n_sets, 0);
	route_effects_free(&e);
	free(sql);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_huge_deep_statement_is_not_parsed_and_pins),
	    cmocka_unit_test(test_short_deep_statement_is_not_parsed_and_pins),
	    cmocka_unit_test(test_plain_dml_has_no_effects_and_allocates_nothing),
	    cmocka_unit_test(test_update_set_clause_is_not_a_session_set),
	    cmocka_unit_test(test_set_clauses_of_other_commands_are_not_session_sets),

	    cmocka_unit_test(test_set_search_path_is_replayed_as_written),
	    cmocka_unit_test(test_set_name_is_lower_cased),
	    cmocka_unit_test(test_set_session_is_tracked),
	    cmocka_unit_test(test_set_with_special_syntax_uses_the_guc_name),
	    cmocka_unit_test(test_set_local_has_no_session_effect),
	    cmocka_unit_test(test_set_transaction_has_no_session_effect),
	    cmocka_unit_test(test_set_session_characteristics_is_tracked),
	    cmocka_unit_test(test_set_with_trailing_semicolon_replays_without_it),

	    cmocka_unit_test(test_reset_name_forgets_that_name),
	    cmocka_unit_test(test_set_to_default_is_a_reset),
	    cmocka_unit_test(test_reset_all_forgets_everything_but_keeps_statements),
	    cmocka_unit_test(test_discard_all_resets_all_and_drops_statements),
	    cmocka_unit_test(test_discard_of_less_than_all_has_no_tracked_effect),
	    cmocka_unit_test(test_deallocate_all_drops_statements),
	    cmocka_unit_test(test_deallocate_one_statement_has_no_tracked_effect),

	    cmocka_unit_test(test_set_inside_a_transaction_block_keeps_only_its_own_text),
	    cmocka_unit_test(test_sets_and_resets_come_out_in_statement_order),
	    cmocka_unit_test(test_semicolons_inside_string_literals_do_not_split),
	    cmocka_unit_test(test_dollar_quoted_body_with_semicolons_does_not_hide_a_set),
	    cmocka_unit_test(test_dollar_quote_with_a_non_ascii_tag_does_not_hide_a_set),
	    cmocka_unit_test(test_set_words_in_comments_are_not_statements),
	    cmocka_unit_test(test_quotes_inside_comments_and_identifiers_do_not_hide_a_set),
	    cmocka_unit_test(test_escaped_quote_in_e_string_does_not_end_it),
	    cmocka_unit_test(test_syntax_error_anywhere_means_no_effects),

	    cmocka_unit_test(test_listen_pins),
	    cmocka_unit_test(test_create_temp_table_pins),
	    cmocka_unit_test(test_create_regular_table_does_not_pin),
	    cmocka_unit_test(test_create_temp_view_pins),
	    cmocka_unit_test(test_select_into_temp_pins),
	    cmocka_unit_test(test_create_table_in_pg_temp_schema_pins),
	    cmocka_unit_test(test_sql_prepare_pins),
	    cmocka_unit_test(test_cursor_with_hold_pins_and_without_hold_does_not),
	    cmocka_unit_test(test_session_advisory_locks_pin_and_xact_locks_do_not),
	    cmocka_unit_test(test_pin_and_set_in_one_string_are_both_reported),
	    cmocka_unit_test(test_effects_free_leaves_an_empty_description),
	    cmocka_unit_test(test_scan_honours_len_not_the_nul),

	    cmocka_unit_test(test_quote_literal_plain),
	    cmocka_unit_test(test_quote_literal_doubles_single_quotes),
	    cmocka_unit_test(test_quote_literal_with_backslash_uses_e_form_and_doubles_it),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
