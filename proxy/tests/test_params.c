/*
 * test_params.c — session parameters that follow a client (proxy/params.c), pinned.
 *
 * What is checked is the SQL a server connection will run: startup
 * parameters become set_config() calls with safely quoted values, `options`
 * switches are read the way PostgreSQL reads them, and the sync query can be
 * split back into exactly the statements it was built from (checked with
 * PostgreSQL's own grammar, through libpg_query).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pg_query.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/params.h"
#include "proxy/wire.h"

#define SYNC_HEAD "RESET ALL; RESET ROLE; RESET SESSION AUTHORIZATION"

/* ---- helpers ---- */

typedef struct startup_case {
	wire_startup_t st;
	param_list_t l;
	char err[256];
} startup_case_t;

/* Build a startup packet's parameter list from name, value, ..., NULL. */
static void startup_of(wire_startup_t *st, ...)
{
	va_list ap;
	const char *name;

	memset(st, 0, sizeof(*st));
	st->code = WIRE_PROTOCOL_3_0;
	va_start(ap, st);
	while ((name = va_arg(ap, const char *)) != NULL) {
		assert_true(st->n_params < WIRE_STARTUP_MAX_PARAMS);
		st->params[st->n_params].name = name;
		st->params[st->n_params].value = va_arg(ap, const char *);
		st->n_params++;
	}
	va_end(ap);
}

static int from_startup(startup_case_t *c)
{
	memset(&c->l, 0, sizeof(c->l));
	c->err[0] = '\0';
	return params_from_startup(&c->l, &c->st, c->err, sizeof(c->err));
}

static void assert_item(const param_list_t *l, int i, const char *name, const char *stmt)
{
	assert_true(i < l->n);
	assert_string_equal(l->items[i].name, name);
	assert_string_equal(l->items[i].stmt, stmt);
}

/* The startup packet is refused, with a message that mentions `what`. */
static void assert_refused(startup_case_t *c, const char *what)
{
	assert_int_equal(from_startup(c), -1);
	if (strstr(c->err, what) == NULL)
		fail_msg("error \"%s\" does not mention \"%s\"", c->err, what);
	params_free(&c->l);
}

static param_list_t list_of(const char *first, ...)
{
	param_list_t l = {0};
	va_list ap;
	const char *name = first;

	va_start(ap, first);
	while (name != NULL) {
		assert_int_equal(params_set(&l, name, va_arg(ap, const char *)), 0);
		name = va_arg(ap, const char *);
	}
	va_end(ap);
	return l;
}

/* ---- params_set / params_remove / params_copy ---- */

static void test_set_appends_new_names_in_order(void **state)
{
	param_list_t l = {0};

	(void)state;
	assert_int_equal(params_set(&l, "a", "SET a = 1"), 0);
	assert_int_equal(params_set(&l, "b", "SET b = 1"), 0);
	assert_int_equal(l.n, 2);
	assert_item(&l, 0, "a", "SET a = 1");
	assert_item(&l, 1, "b", "SET b = 1");
	params_free(&l);
	assert_null(l.items);
	assert_int_equal(l.n, 0);
}

static void test_set_of_a_known_name_replaces_it_in_place(void **state)
{
	param_list_t l = list_of("a", "SET a = 1", "b", "SET b = 1", "c", "SET c = 1", NULL);

	(void)state;
	assert_int_equal(params_set(&l, "b", "SET b = 2"), 0);
	assert_int_equal(l.n, 3);
	assert_item(&l, 0, "a", "SET a = 1");
	assert_item(&l, 1, "b", "SET b = 2");
	assert_item(&l, 2, "c", "SET c = 1");
	params_free(&l);
}

static void test_set_copies_its_arguments(void **state)
{
	param_list_t l = {0};
	char name[] = "a", stmt[] = "SET a = 1";

	(void)state;
	assert_int_equal(params_set(&l, name, stmt), 0);
	name[0] = 'z';
	stmt[0] = 'Z';
	assert_item(&l, 0, "a", "SET a = 1");
	params_free(&l);
}

static void test_remove_middle_keeps_the_others_in_order(void **state)
{
	param_list_t l = list_of("a", "SET a = 1", "b", "SET b = 1", "c", "SET c = 1", NULL);

	(void)state;
	params_remove(&l, "b");
	assert_int_equal(l.n, 2);
	assert_item(&l, 0, "a", "SET a = 1");
	assert_item(&l, 1, "c", "SET c = 1");
	params_free(&l);
}

static void test_remove_first_last_and_unknown(void **state)
{
	param_list_t l = list_of("a", "SET a = 1", "b", "SET b = 1", "c", "SET c = 1", NULL);

	(void)state;
	params_remove(&l, "nope");
	assert_int_equal(l.n, 3);
	params_remove(&l, "a");
	assert_int_equal(l.n, 2);
	assert_item(&l, 0, "b", "SET b = 1");
	params_remove(&l, "c");
	assert_int_equal(l.n, 1);
	assert_item(&l, 0, "b", "SET b = 1");
	params_remove(&l, "b");
	assert_int_equal(l.n, 0);
	params_remove(&l, "b");
	assert_int_equal(l.n, 0);
	/* and the list still works */
	assert_int_equal(params_set(&l, "d", "SET d = 1"), 0);
	assert_item(&l, 0, "d", "SET d = 1");
	params_free(&l);
}

static void test_copy_replaces_the_destination_with_a_deep_copy(void **state)
{
	param_list_t src = list_of("a", "SET a = 1", "b", "SET b = 1", NULL);
	param_list_t dst = list_of("old", "SET old = 1", "other", "SET other = 1", "x", "y", NULL);

	(void)state;
	assert_int_equal(params_copy(&dst, &src), 0);
	assert_int_equal(dst.n, 2);
	assert_item(&dst, 0, "a", "SET a = 1");
	assert_item(&dst, 1, "b", "SET b = 1");
	assert_ptr_not_equal(dst.items[0].stmt, src.items[0].stmt);
	assert_ptr_not_equal(dst.items[0].name, src.items[0].name);

	/* later changes to either side stay on that side */
	assert_int_equal(params_set(&src, "a", "SET a = 2"), 0);
	params_remove(&dst, "b");
	assert_item(&dst, 0, "a", "SET a = 1");
	assert_int_equal(src.n, 2);
	params_free(&src);
	params_free(&dst);
}

static void test_copy_of_an_empty_list_empties_the_destination(void **state)
{
	param_list_t src = {0};
	param_list_t dst = list_of("a", "SET a = 1", NULL);

	(void)state;
	assert_int_equal(params_copy(&dst, &src), 0);
	assert_int_equal(dst.n, 0);
	params_free(&dst);
}

/* ---- params_from_startup ---- */

static void test_startup_skips_user_database_and_protocol_options(void **state)
{
	startup_case_t c;

	(void)state;
	startup_of(&c.st, "user", "alice", "database", "app", "_pq_.some_option", "1", NULL);
	assert_int_equal(from_startup(&c), 0);
	assert_int_equal(c.l.n, 0);
	params_free(&c.l);
}

static void test_startup_application_name_becomes_set_config(void **state)
{
	startup_case_t c;

	(void)state;
	startup_of(&c.st, "user", "alice", "application_name", "x", "database", "app", NULL);
	assert_int_equal(from_startup(&c), 0);
	assert_int_equal(c.l.n, 1);
	assert_item(&c.l, 0, "application_name",
	            "SELECT pg_catalog.set_config('application_name', 'x', false)");
	params_free(&c.l);
}

static void test_startup_names_are_lower_cased(void **state)
{
	startup_case_t c;

	(void)state;
	startup_of(&c.st, "DateStyle", "ISO, MDY", "TimeZone", "UTC", NULL);
	assert_int_equal(from_startup(&c), 0);
	assert_int_equal(c.l.n, 2);
	assert_item(&c.l, 0, "datestyle",
	            "SELECT pg_catalog.set_config('datestyle', 'ISO, MDY', false)");
	assert_item(&c.l, 1, "timezone", "SELECT pg_catalog.set_config('timezone', 'UTC', false)");
	params_free(&c.l);
}

static void test_startup_options_c_switches_become_set_configs_in_order(void **state)
{
	startup_case_t c;

	(void)state;
	startup_of(&c.st, "options", "-c statement_timeout=100 -c search_path=a,b", NULL);
	assert_int_equal(from_startup(&c), 0);
	assert_int_equal(c.l.n, 2);
	assert_item(&c.l, 0, "statement_timeout",
	            "SELECT pg_catalog.set_config('statement_timeout', '100', false)");
	/* the raw list value, exactly as the startup packet gives it to the server */
	assert_item(&c.l, 1, "search_path",
	            "SELECT pg_catalog.set_config('search_path', 'a,b', false)");
	params_free(&c.l);
}

static void test_startup_options_attached_c_and_extra_spaces(void **state)
{
	startup_case_t c;

	(void)state;
	startup_of(&c.st, "options", "  -cwork_mem=1MB \t -c  DateStyle=ISO  ", NULL);
	assert_int_equal(from_startup(&c), 0);
	assert_int_equal(c.l.n, 2);
	assert_item(&c.l, 0, "work_mem", "SELECT pg_catalog.set_config('work_mem', '1MB', false)");
	assert_item(&c.l, 1, "datestyle",
	            "SELECT pg_catalog.set_config('datestyle', 'ISO', false)");
	params_free(&c.l);
}

static void test_startup_options_long_switch_turns_dashes_into_underscores(void **state)
{
	startup_case_t c;

	(void)state;
	startup_of(&c.st, "options", "--work-mem=64MB", NULL);
	assert_int_equal(from_startup(&c), 0);
	assert_int_equal(c.l.n, 1);
	/* only the name: a dash in the value stays */
	assert_item(&c.l, 0, "work_mem", "SELECT pg_catalog.set_config('work_mem', '64MB', false)");
	params_free(&c.l);

	startup_of(&c.st, "options", "--application-name=a-b", NULL);
	assert_int_equal(from_startup(&c), 0);
	assert_item(&c.l, 0, "application_name",
	            "SELECT pg_catalog.set_config('application_name', 'a-b', false)");
	params_free(&c.l);
}

static void test_startup_options_backslash_escapes_a_space(void **state)
{
	startup_case_t c;

	(void)state;
	/* libpq sends "-c application_name=a\ b" for the value "a b" */
	startup_of(&c.st, "options", "-c application_name=a\\ b -c x.y=1", NULL);
	assert_int_equal(from_startup(&c), 0);
	assert_int_equal(c.l.n, 2);
	assert_item(&c.l, 0, "application_name",
	            "SELECT pg_catalog.set_config('application_name', 'a b', false)");
	assert_item(&c.l, 1, "x.y", "SELECT pg_catalog.set_config('x.y', '1', false)");
	params_free(&c.l);
}

static void test_startup_options_value_may_contain_equals(void **state)
{
	startup_case_t c;

	(void)state;
	startup_of(&c.st, "options", "-c x.y=a=b", NULL);
	assert_int_equal(from_startup(&c), 0);
	assert_item(&c.l, 0, "x.y", "SELECT pg_catalog.set_config('x.y', 'a=b', false)");
	params_free(&c.l);
}

static void test_startup_options_empty_sets_nothing(void **state)
{
	startup_case_t c;

	(void)state;
	startup_of(&c.st, "options", "   ", NULL);
	assert_int_equal(from_startup(&c), 0);
	assert_int_equal(c.l.n, 0);
	params_free(&c.l);
}

static void test_startup_options_later_setting_of_a_name_wins_in_place(void **state)
{
	startup_case_t c;

	(void)state;
	startup_of(&c.st, "application_name", "first", "options",
	           "-c work_mem=1MB -c application_name=second", NULL);
	assert_int_equal(from_startup(&c), 0);
	assert_int_equal(c.l.n, 2);
	assert_item(&c.l, 0, "application_name",
	            "SELECT pg_catalog.set_config('application_name', 'second', false)");
	assert_item(&c.l, 1, "work_mem", "SELECT pg_catalog.set_config('work_mem', '1MB', false)");
	params_free(&c.l);
}

static void test_startup_options_rejects_other_switches(void **state)
{
	startup_case_t c;

	(void)state;
	startup_of(&c.st, "options", "-X", NULL);
	assert_refused(&c, "-X");
	startup_of(&c.st, "options", "-c a.b=1 -B 100", NULL);
	assert_refused(&c, "-B");
	startup_of(&c.st, "options", "statement_timeout=1", NULL);
	assert_refused(&c, "statement_timeout=1");
}

static void test_startup_options_rejects_a_dangling_c(void **state)
{
	startup_case_t c;

	(void)state;
	startup_of(&c.st, "options", "-c statement_timeout=1 -c", NULL);
	assert_refused(&c, "-c");
	startup_of(&c.st, "options", "-c   ", NULL);
	assert_refused(&c, "-c");
}

static void test_startup_options_rejects_a_switch_without_equals(void **state)
{
	startup_case_t c;

	(void)state;
	startup_of(&c.st, "options", "-c statement_timeout", NULL);
	assert_refused(&c, "statement_timeout");
	startup_of(&c.st, "options", "--fsync", NULL);
	assert_refused(&c, "fsync");
}

static void test_startup_replication_true_is_refused(void **state)
{
	startup_case_t c;

	(void)state;
	startup_of(&c.st, "user", "alice", "replication", "true", NULL);
	assert_refused(&c, "replication");
	startup_of(&c.st, "replication", "database", NULL);
	assert_refused(&c, "replication");
}

static void test_startup_replication_false_is_ignored(void **state)
{
	static const char *const no[] = {"false", "off", "0", "no"};
	startup_case_t c;

	(void)state;
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		startup_of(&c.st, "replication", no[i], "application_name", "x", NULL);
		assert_int_equal(from_startup(&c), 0);
		assert_int_equal(c.l.n, 1);
		assert_string_equal(c.l.items[0].name, "application_name");
		params_free(&c.l);
	}
}

static void test_startup_invalid_names_are_refused(void **state)
{
	char long_name[200];
	startup_case_t c;

	(void)state;
	startup_of(&c.st, "bad name", "1", NULL);
	assert_refused(&c, "bad name");
	startup_of(&c.st, "x'); DROP TABLE t; --", "1", NULL);
	assert_refused(&c, "invalid");
	startup_of(&c.st, "options", "-c a;b=1", NULL);
	assert_refused(&c, "a;b");
	startup_of(&c.st, "options", "-c =1", NULL);
	assert_refused(&c, "invalid");

	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	startup_of(&c.st, long_name, "1", NULL);
	assert_refused(&c, "invalid");
}

static void test_startup_value_with_quote_and_backslash_is_quoted_safely(void **state)
{
	startup_case_t c;

	(void)state;
	startup_of(&c.st, "application_name", "it's a \\ thing', false); DROP TABLE t; --", NULL);
	assert_int_equal(from_startup(&c), 0);
	assert_int_equal(c.l.n, 1);
	assert_item(&c.l, 0, "application_name",
	            "SELECT pg_catalog.set_config('application_name', "
	            "E'it''s a \\\\ thing'', false); DROP TABLE t; --', false)");
	params_free(&c.l);
}

static void test_startup_set_config_statements_parse_as_one_statement_each(void **state)
{
	PgQuerySplitResult r;
	startup_case_t c;

	(void)state;
	startup_of(&c.st, "application_name", "a'b\\c;d -- e", NULL);
	assert_int_equal(from_startup(&c), 0);
	r = pg_query_split_with_parser(c.l.items[0].stmt);
	assert_null(r.error);
	assert_int_equal(r.n_stmts, 1);
	pg_query_free_split_result(r);
	params_free(&c.l);
}

/* ---- params_hash ---- */

static void test_hash_is_equal_for_equal_lists(void **state)
{
	param_list_t s1 = list_of("a", "SET a = 1", NULL), s2 = list_of("a", "SET a = 1", NULL);
	param_list_t x1 = list_of("b", "SET b = 1", "c", "SET c = 1", NULL);
	param_list_t x2 = list_of("b", "SET b = 1", "c", "SET c = 1", NULL);
	param_list_t none = {0};

	(void)state;
	assert_true(params_hash(&s1, &x1) == params_hash(&s2, &x2));
	assert_true(params_hash(&none, &none) == params_hash(&none, &none));
	params_free(&s1);
	params_free(&s2);
	params_free(&x1);
	params_free(&x2);
}

static void test_hash_differs_when_order_differs(void **state)
{
	param_list_t ab = list_of("a", "SET a = 1", "b", "SET b = 1", NULL);
	param_list_t ba = list_of("b", "SET b = 1", "a", "SET a = 1", NULL);
	param_list_t none = {0};

	(void)state;
	assert_true(params_hash(&none, &ab) != params_hash(&none, &ba));
	assert_true(params_hash(&ab, &none) != params_hash(&ba, &none));
	params_free(&ab);
	params_free(&ba);
}

static void test_hash_differs_when_content_differs(void **state)
{
	param_list_t one = list_of("a", "SET a = 1", NULL);
	param_list_t two = list_of("a", "SET a = 2", NULL);
	param_list_t more = list_of("a", "SET a = 1", "b", "SET b = 1", NULL);
	param_list_t none = {0};

	(void)state;
	assert_true(params_hash(&none, &one) != params_hash(&none, &two));
	assert_true(params_hash(&none, &one) != params_hash(&none, &more));
	assert_true(params_hash(&none, &one) != params_hash(&none, &none));
	/* the same statement as a startup or as a session parameter */
	assert_true(params_hash(&one, &none) != params_hash(&none, &one));
	params_free(&one);
	params_free(&two);
	params_free(&more);
}

static void test_hash_separates_statements(void **state)
{
	param_list_t ab_c = list_of("x", "ab", "y", "c", NULL);
	param_list_t a_bc = list_of("x", "a", "y", "bc", NULL);
	param_list_t none = {0};

	(void)state;
	assert_true(params_hash(&none, &ab_c) != params_hash(&none, &a_bc));
	params_free(&ab_c);
	params_free(&a_bc);
}

/* ---- params_sync_sql ---- */

static void test_sync_sql_of_empty_lists_is_the_resets_only(void **state)
{
	param_list_t none = {0};
	char *sql;

	(void)state;
	sql = params_sync_sql(&none, &none);
	assert_non_null(sql);
	assert_string_equal(sql, SYNC_HEAD);
	free(sql);
}

/*
 * Split sql with PostgreSQL's grammar and compare each statement, without the
 * whitespace around it, to want[0..n-1]. NULL if they match, else what differs
 * (in a static buffer, so that the caller can free its things before failing).
 */
static const char *statements_differ(const char *sql, const char *const *want, int n)
{
	static char why[1024];
	PgQuerySplitResult r = pg_query_split_with_parser(sql);

	why[0] = '\0';
	if (r.error != NULL) {
		snprintf(why, sizeof(why), "the sync query does not parse (%s):\n%s",
		         r.error->message, sql);
	} else if (r.n_stmts != n) {
		snprintf(why, sizeof(why), "the sync query has %d statements, not %d:\n%s",
		         r.n_stmts, n, sql);
	} else {
		for (int i = 0; i < n && why[0] == '\0'; i++) {
			const char *p = sql + r.stmts[i]->stmt_location;
			size_t len = (size_t)r.stmts[i]->stmt_len;

			while (len > 0 && (*p == ' ' || *p == '\n')) {
				p++;
				len--;
			}
			while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\n'))
				len--;
			if (strlen(want[i]) != len || strncmp(p, want[i], len) != 0)
				snprintf(why, sizeof(why), "statement %d is \"%.*s\", not \"%s\"",
				         i, (int)len, p, want[i]);
		}
	}
	pg_query_free_split_result(r);
	return why[0] != '\0' ? why : NULL;
}

static void test_sync_sql_is_resets_then_startup_then_session_each_on_its_own_line(void **state)
{
	static const char *const want[] = {
	    "RESET ALL",
	    "RESET ROLE",
	    "RESET SESSION AUTHORIZATION",
	    "SELECT pg_catalog.set_config('application_name', 'x', false)",
	    "SELECT pg_catalog.set_config('work_mem', '1MB', false)",
	    "SET search_path TO a, b",
	};
	param_list_t startup = list_of("application_name", want[3], "work_mem", want[4], NULL);
	param_list_t session = list_of("search_path", want[5], NULL);
	const char *why;
	char *sql;

	(void)state;
	sql = params_sync_sql(&startup, &session);
	assert_non_null(sql);
	assert_int_equal(strncmp(sql, SYNC_HEAD, strlen(SYNC_HEAD)), 0);
	why = statements_differ(sql, want, 6);
	if (why != NULL)
		fail_msg("%s", why);
	/* every replayed statement starts on a line of its own */
	assert_non_null(strstr(sql, "\nSELECT pg_catalog.set_config('application_name'"));
	assert_non_null(strstr(sql, "\nSELECT pg_catalog.set_config('work_mem'"));
	assert_non_null(strstr(sql, "\nSET search_path TO a, b"));
	free(sql);
	params_free(&startup);
	params_free(&session);
}

/*
 * Regression test for a bug once in proxy/params.c.
 * params_sync_sql() (params.c:275 and :277) joins with ";\n", which puts the
 * ';' *after* a replayed statement's trailing "-- comment", inside the
 * comment. classify.c keeps such comments in the replayed text ("SET a.b = 1
 * -- why" is stored as is), so the next statement runs on into this one:
 * "...SET a.b = 1 -- why;\nSET c.d = 2" is a syntax error, and the server
 * rejects the whole sync query. A newline before the ';' ("\n;\n") fixes it.
 */
static void test_sync_sql_trailing_comment_does_not_swallow_the_next_statement(void **state)
{
	static const char *const want[] = {
	    "RESET ALL",          "RESET ROLE",          "RESET SESSION AUTHORIZATION",
	    "SET a.b = 1 -- why", "SET c.d = 2 /* x */",
	};
	param_list_t session =
	    list_of("a.b", "SET a.b = 1 -- why", "c.d", "SET c.d = 2 /* x */", NULL);
	param_list_t none = {0};
	const char *why;
	char *sql;

	(void)state;
	sql = params_sync_sql(&none, &session);
	assert_non_null(sql);
	why = statements_differ(sql, want, 5);
	free(sql);
	params_free(&session);
	if (why != NULL)
		fail_msg("%s", why);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_set_appends_new_names_in_order),
	    cmocka_unit_test(test_set_of_a_known_name_replaces_it_in_place),
	    cmocka_unit_test(test_set_copies_its_arguments),
	    cmocka_unit_test(test_remove_middle_keeps_the_others_in_order),
	    cmocka_unit_test(test_remove_first_last_and_unknown),
	    cmocka_unit_test(test_copy_replaces_the_destination_with_a_deep_copy),
	    cmocka_unit_test(test_copy_of_an_empty_list_empties_the_destination),

	    cmocka_unit_test(test_startup_skips_user_database_and_protocol_options),
	    cmocka_unit_test(test_startup_application_name_becomes_set_config),
	    cmocka_unit_test(test_startup_names_are_lower_cased),
	    cmocka_unit_test(test_startup_options_c_switches_become_set_configs_in_order),
	    cmocka_unit_test(test_startup_options_attached_c_and_extra_spaces),
	    cmocka_unit_test(test_startup_options_long_switch_turns_dashes_into_underscores),
	    cmocka_unit_test(test_startup_options_backslash_escapes_a_space),
	    cmocka_unit_test(test_startup_options_value_may_contain_equals),
	    cmocka_unit_test(test_startup_options_empty_sets_nothing),
	    cmocka_unit_test(test_startup_options_later_setting_of_a_name_wins_in_place),
	    cmocka_unit_test(test_startup_options_rejects_other_switches),
	    cmocka_unit_test(test_startup_options_rejects_a_dangling_c),
	    cmocka_unit_test(test_startup_options_rejects_a_switch_without_equals),
	    cmocka_unit_test(test_startup_replication_true_is_refused),
	    cmocka_unit_test(test_startup_replication_false_is_ignored),
	    cmocka_unit_test(test_startup_invalid_names_are_refused),
	    cmocka_unit_test(test_startup_value_with_quote_and_backslash_is_quoted_safely),
	    cmocka_unit_test(test_startup_set_config_statements_parse_as_one_statement_each),

	    cmocka_unit_test(test_hash_is_equal_for_equal_lists),
	    cmocka_unit_test(test_hash_differs_when_order_differs),
	    cmocka_unit_test(test_hash_differs_when_content_differs),
	    cmocka_unit_test(test_hash_separates_statements),

	    cmocka_unit_test(test_sync_sql_of_empty_lists_is_the_resets_only),
	    cmocka_unit_test(
	        test_sync_sql_is_resets_then_startup_then_session_each_on_its_own_line),
	    cmocka_unit_test(test_sync_sql_trailing_comment_does_not_swallow_the_next_statement),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
