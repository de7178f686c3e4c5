/*
 * test_plancache_reuse.c — what the plan cache (router/plancache.h) makes
 * once and reuses, pinned: a statement on several shards is parsed once and
 * its gather plan made once per set of inputs; a plan that one key placed
 * serves other values of that key (generic plans); a join across shards is
 * planned once per kept parse. Every reused plan must still equal
 * route_statement's (plancache_expect.h).
 */
#include "router/tests/plancache_expect.h"

/* ---- gather plans: one parse per statement ---- */

/* Statements on several shards that the proxy merges with a gather plan, literals everywhere. */
static const char *const gather_corpus[] = {
    "SELECT count(*) FROM orders",
    "SELECT * FROM users ORDER BY name LIMIT 5",
    "SELECT id FROM users ORDER BY id LIMIT 5 OFFSET 2",
    "SELECT id FROM users WHERE n > 10 ORDER BY id DESC NULLS LAST LIMIT 3",
    "SELECT id FROM users LIMIT 5000000000 OFFSET 7::int8",
    "SELECT *, n + 1 FROM users ORDER BY n + 1, id LIMIT 20",
    "SELECT note, avg(total) FROM orders GROUP BY note HAVING count(*) > 1 ORDER BY 2 DESC",
    ("SELECT note, sum(total) FROM orders WHERE total > -2.5 GROUP BY note HAVING "
     "max(note) <> 'it''s' ORDER BY 1 LIMIT 4"),
    "SELECT count(DISTINCT note), count(*) FROM orders WHERE note <> 'x'",
    "SELECT DISTINCT note, total FROM orders ORDER BY total DESC LIMIT 3",
    "SELECT DISTINCT ON (user_id) user_id, total, note FROM orders ORDER BY user_id, total",
    "SELECT round(avg(total), 2), min(total) - 1 FROM orders",
    "SELECT id FROM users ORDER BY id LIMIT $1 OFFSET $2",
    "SELECT count(*) FROM orders WHERE total > $3 HAVING count(*) > 2",
    "SELECT id FROM users WHERE n = ANY($1::int[]) ORDER BY id LIMIT 7",
};

static void expect_same_gather(const char *sql, const gather_plan_t *a, const gather_plan_t *b)
{
	if (strcmp(a->shard_sql, b->shard_sql) != 0)
		fail_msg("\"%s\": shard query\n  %s\ncached\n  %s", sql, a->shard_sql,
		         b->shard_sql);
	if (a->finalize != b->finalize || a->probed != b->probed || a->hidden != b->hidden ||
	    a->offset != b->offset || a->limit != b->limit || a->n_keys != b->n_keys ||
	    a->n_parts != b->n_parts)
		fail_msg("\"%s\": gather plans differ", sql);
	if (a->n_keys > 0 && memcmp(a->keys, b->keys, (size_t)a->n_keys * sizeof *a->keys) != 0)
		fail_msg("\"%s\": sort keys differ", sql);
	for (int i = 0; i < a->n_parts; i++)
		if (a->parts[i].kind != b->parts[i].kind ||
		    a->parts[i].column != b->parts[i].column ||
		    (a->parts[i].text == NULL) != (b->parts[i].text == NULL) ||
		    (a->parts[i].text != NULL && strcmp(a->parts[i].text, b->parts[i].text) != 0))
			fail_msg("\"%s\": final query part %d differs", sql, i);
}

/* As the proxy does: route, then ask for the gather plan; compared with route_gather's. */
static gather_plan_t *gather_both(route_cache_t *c, const char *sql, const route_param_t *params,
                                  int n)
{
	gather_plan_t a, *b;
	route_plan_t p;
	char sqlstate[6], err[400];

	p = both(c, sql, params, n);
	if (p.merge != ROUTE_MERGE_GATHER && p.merge != ROUTE_MERGE_COUNT)
		fail_msg("\"%s\": merge %d (%s)", sql, (int)p.merge, p.reason);
	if (route_gather(&ctx, sql, params, n, &a, sqlstate, err, sizeof err) != 0)
		fail_msg("\"%s\": refused (%s): %s", sql, sqlstate, err);
	if (route_gather_cached(c, sql, params, n, &b, sqlstate, err, sizeof err) != 0)
		fail_msg("\"%s\": refused cached (%s): %s", sql, sqlstate, err);
	expect_same_gather(sql, &a, b);
	gather_plan_free(&a);
	return b;
}

static void test_gather_plans_are_the_same_cached_and_not(void **state)
{
	static const char *const values[] = {"3", "1", "30", "{1,2}"};
	route_cache_t *c = route_cache_new(&ctx, 64);
	route_param_t prm[4];

	(void)state;
	for (int i = 0; i < 4; i++)
		prm[i] = text_param(values[i]);
	for (int round = 0; round < 3; round++)
		for (size_t i = 0; i < sizeof gather_corpus / sizeof gather_corpus[0]; i++) {
			bool has_params = strchr(gather_corpus[i], '$') != NULL;

			for (int k = -1; k < 3; k++) {
				char *v =
				    k < 0 ? strdup(gather_corpus[i]) : variant(gather_corpus[i], k);

				gather_plan_unref(
				    gather_both(c, v, has_params ? prm : NULL, has_params ? 4 : 0));
				free(v);
			}
		}
	route_cache_free(c);
}

static void test_a_statement_is_parsed_once_and_its_gather_plan_made_once(void **state)
{
	static const char sql[] = "SELECT id FROM users WHERE n > 10 ORDER BY id LIMIT 5";
	route_cache_t *c = route_cache_new(&ctx, 16);
	gather_plan_t *g1, *g2, *g3;
	route_plan_t p;
	char sqlstate[6], err[400];
	uint64_t before;
	route_cache_stats_t s;

	(void)state;
	/* first sight: the cache parses the text and its masked form; the gather parses nothing */
	before = route_parse_count();
	assert_int_equal(route_statement_cached(c, sql, NULL, 0, &p), 0);
	assert_int_equal(p.merge, ROUTE_MERGE_GATHER);
	assert_int_equal(route_gather_cached(c, sql, NULL, 0, &g1, sqlstate, err, sizeof err), 0);
	assert_int_equal(route_parse_count() - before, 2);
	assert_int_equal(g1->limit, 5);

	/* again: no parse, no analysis, the same gather plan */
	before = route_parse_count();
	assert_int_equal(route_statement_cached(c, sql, NULL, 0, &p), 0);
	assert_int_equal(route_gather_cached(c, sql, NULL, 0, &g2, sqlstate, err, sizeof err), 0);
	assert_int_equal(route_parse_count() - before, 0);
	assert_ptr_equal(g1, g2);

	/* other literals: still no parse; a gather plan of their own */
	before = route_parse_count();
	assert_int_equal(
	    route_statement_cached(c, "SELECT id FROM users WHERE n > 11 ORDER BY id LIMIT 6", NULL,
	                           0, &p),
	    0);
	assert_int_equal(
	    route_gather_cached(c, "SELECT id FROM users WHERE n > 11 ORDER BY id LIMIT 6", NULL, 0,
	                        &g3, sqlstate, err, sizeof err),
	    0);
	assert_int_equal(route_parse_count() - before, 0);
	assert_ptr_not_equal(g3, g1);
	assert_int_equal(g3->limit, 6);
	assert_non_null(strstr(g3->shard_sql, "n > 11"));
	assert_int_equal(g1->limit, 5); /* the first is intact, held by its statement */

	s = stats(c);
	assert_int_equal(s.gathers_made, 2);
	assert_int_equal(s.gathers_reused, 1);
	/* the plan was found without analysis at every gather call and the second route */
	assert_int_equal(s.reused, 4);
	gather_plan_unref(g1);
	gather_plan_unref(g2);
	route_cache_free(c);
	/* a plan outlives the cache that made it (a reload while the statement runs) */
	assert_int_equal(g3->limit, 6);
	gather_plan_unref(g3);
}

static void test_gather_parameters_make_their_own_plans(void **state)
{
	static const char sql[] = "SELECT id FROM users ORDER BY id LIMIT $1 OFFSET $2";
	route_cache_t *c = route_cache_new(&ctx, 16);
	route_param_t a[2] = {text_param("3"), text_param("1")},
	              b[2] = {text_param("4"), text_param("1")};
	gather_plan_t *g1, *g2, *g3;
	uint64_t before;

	(void)state;
	g1 = gather_both(c, sql, a, 2);
	before = route_parse_count();
	g2 = gather_both(c, sql, b, 2);
	g3 = gather_both(c, sql, b, 2);
	/* route_statement's and route_gather's, which gather_both compares with: none by the cache
	 */
	assert_int_equal(route_parse_count() - before, 4);
	assert_int_equal(g1->limit, 3);
	assert_int_equal(g2->limit, 4);
	assert_ptr_equal(g2, g3);
	/* a LIMIT parameter without a value is refused, as route_gather refuses it */
	{
		char sqlstate[6], err[400];
		gather_plan_t *g;

		assert_int_equal(
		    route_gather_cached(c, sql, NULL, 0, &g, sqlstate, err, sizeof err), -1);
		assert_null(g);
		assert_string_equal(sqlstate, "0A000");
	}
	gather_plan_unref(g1);
	gather_plan_unref(g2);
	gather_plan_unref(g3);
	route_cache_free(c);
}

static void test_gather_of_a_text_not_kept_parses_it_once(void **state)
{
	route_cache_t *c = route_cache_new(&ctx, 1);
	char *big = malloc(ROUTE_CACHE_MAX_TEXT + 200), sqlstate[6], err[400];
	gather_plan_t *g;
	uint64_t before;
	size_t o;

	(void)state;
	o = (size_t)sprintf(big, "SELECT id FROM users WHERE note <> '");
	memset(big + o, 'x', ROUTE_CACHE_MAX_TEXT);
	o += ROUTE_CACHE_MAX_TEXT;
	sprintf(big + o, "' ORDER BY id LIMIT 2");
	before = route_parse_count();
	assert_int_equal(route_gather_cached(c, big, NULL, 0, &g, sqlstate, err, sizeof err), 0);
	assert_int_equal(route_parse_count() - before, 1);
	assert_int_equal(g->limit, 2);
	gather_plan_unref(g);
	free(big);
	route_cache_free(c);
}

/* ---- generic plans ---- */

static uint64_t generic_hits(const route_cache_t *c)
{
	return stats(c).generic;
}

/* tmpl with its one "%d" replaced by v. */
static void fill(char *out, size_t len, const char *tmpl, int v)
{
	const char *at = strstr(tmpl, "%d");

	assert_non_null(at);
	snprintf(out, len, "%.*s%d%s", (int)(at - tmpl), tmpl, v, at + 2);
}

/*
 * A statement whose one key value picks its one shard is analysed once:
 * other values reuse the plan (same plans as route_statement, reasons too).
 */
/*
 * tmpl with n values (from v0, 97 apart) routed both ways through c: how
 * many of them the cache made from a generic plan.
 */
static uint64_t route_values(route_cache_t *c, const char *tmpl, int n, int v0)
{
	uint64_t before = generic_hits(c);
	char sql[256];

	for (int v = 0; v < n; v++) {
		fill(sql, sizeof sql, tmpl, v * 97 + v0);
		both(c, sql, NULL, 0);
	}
	return generic_hits(c) - before;
}

static void test_one_key_plans_are_reused_for_other_values(void **state)
{
	static const char *const sqls[] = {
	    "SELECT * FROM users WHERE id = %d",
	    ("SELECT name FROM users u JOIN orders o ON o.user_id = u.id WHERE u.id = %d AND o.n > "
	     "2"),
	    "UPDATE users SET name = 'x' WHERE id = %d",
	    "INSERT INTO users (id, name) VALUES (%d, 'a')",
	    "SELECT * FROM sites WHERE region_id = %d",
	    "SELECT * FROM users u JOIN countries c ON c.code = u.cc WHERE u.id = %d",
	};
	route_cache_t *c = route_cache_new(&ctx, 64);

	(void)state;
	for (size_t i = 0; i < sizeof sqls / sizeof sqls[0]; i++) {
		uint64_t hits = route_values(c, sqls[i], 40, -500);

		if (hits < 30)
			fail_msg("%s: %llu generic plans of 40", sqls[i], (unsigned long long)hits);
	}
	/* a client's parameter, in text and in binary */
	{
		uint64_t before = generic_hits(c);

		for (int v = 0; v < 20; v++) {
			char text[16];
			uint8_t bin[8];
			route_param_t t, b = {.data = bin, .len = 8, .format = 1, .type_oid = 20};

			snprintf(text, sizeof text, "%d", v * 31);
			t = text_param(text);
			for (int k = 0; k < 8; k++)
				bin[k] = (uint8_t)((uint64_t)(v * 31) >> (56 - 8 * k));
			both(c, "SELECT * FROM users WHERE id = $1", &t, 1);
			both(c, "SELECT * FROM users WHERE id = $1", &b, 1);
			both(c, "SELECT * FROM accounts WHERE name = $1", &t, 1);
		}
		assert_true(generic_hits(c) - before >= 50);
	}
	route_cache_free(c);
}

/* What depends on its inputs otherwise is analysed every time, and routes the same. */
static void test_plans_not_of_one_key_are_analysed_each_time(void **state)
{
	static const char *const sqls[] = {
	    "SELECT * FROM users WHERE id IN (%d, 7)",
	    "SELECT * FROM users WHERE id = %d OR id = 7",
	    "SELECT * FROM users WHERE id = %d AND id = 7",
	    "SELECT * FROM sites WHERE region_id > %d",
	    "SELECT * FROM sites WHERE region_id BETWEEN %d AND 2500",
	    "/* pgshard: shard=1 */ SELECT * FROM users WHERE id = %d",
	    "SELECT * FROM users WHERE id = %d; SELECT 1",
	    "UPDATE users SET id = 4 WHERE id = %d",
	    "SELECT * FROM users WHERE id = ANY('{%d,3}')",
	    "SELECT count(*) FROM users WHERE id > %d",
	};
	route_cache_t *c = route_cache_new(&ctx, 64);

	(void)state;
	for (size_t i = 0; i < sizeof sqls / sizeof sqls[0]; i++) {
		if (route_values(c, sqls[i], 12, -300) != 0)
			fail_msg("%s: made from a generic plan", sqls[i]);
	}
	route_cache_free(c);
}

/* A value the generic plan cannot place (no range, NULL, not a key) is analysed. */
static void test_values_a_generic_plan_cannot_place_are_analysed(void **state)
{
	route_cache_t *c = route_cache_new(&ctx, 64);
	route_param_t null = {.data = NULL, .len = -1}, bad = text_param("x1");
	route_param_t one = text_param("7");

	(void)state;
	both(c, "SELECT * FROM slots WHERE slot = 5", NULL, 0);
	both(c, "SELECT * FROM slots WHERE slot = 250", NULL, 0);
	both(c, "SELECT * FROM slots WHERE slot = 150", NULL, 0); /* in no range */
	both(c, "SELECT * FROM slots WHERE slot = 205", NULL, 0);
	both(c, "SELECT * FROM users WHERE id = $1", &one, 1);
	both(c, "SELECT * FROM users WHERE id = $1", &null, 1);
	both(c, "SELECT * FROM users WHERE id = $1", &bad, 1);
	both(c, "SELECT * FROM users WHERE id = $1", NULL, 0);
	both(c, "SELECT * FROM users WHERE id = $1", &one, 1);
	route_cache_free(c);
}

/* Without reasons (the proxy's cache), a reused plan routes the same and says nothing. */
static void test_reused_plans_without_reasons_route_the_same(void **state)
{
	route_cache_t *c = route_cache_new(&ctx, 16);
	char sql[64];

	(void)state;
	route_cache_set_reasons(c, false);
	for (int v = 0; v < 30; v++) {
		route_plan_t a, b;

		snprintf(sql, sizeof sql, "SELECT * FROM users WHERE id = %d", v * 13);
		assert_int_equal(route_statement(&ctx, sql, NULL, 0, &a), 0);
		assert_int_equal(route_statement_cached(c, sql, NULL, 0, &b), 0);
		assert_memory_equal(&a.shards, &b.shards, sizeof a.shards);
		assert_int_equal(a.kind, b.kind);
		assert_string_equal(a.key_value, b.key_value);
		if (v > 0)
			assert_string_equal(b.reason, "");
	}
	assert_true(stats(c).generic >= 29);
	route_cache_free(c);
}

/*
 * A join across shards is planned once per kept parse: another literal
 * routes it from the entry's parse without the join planner, which parses
 * the statement itself.
 */
static void test_a_join_across_shards_is_planned_once_per_kept_parse(void **state)
{
	route_cache_t *c = route_cache_new(&ctx, 16);
	route_plan_t cached, direct;
	uint64_t before;
	char sql[200];

	(void)state;
	assert_non_null(c);
	for (int i = 0; i < 3; i++) {
		snprintf(sql, sizeof sql,
		         "SELECT * FROM users u JOIN (SELECT DISTINCT user_id FROM orders) s "
		         "ON s.user_id = u.id WHERE u.n > %d",
		         5 + i);
		before = route_parse_count();
		assert_int_equal(route_statement_cached(c, sql, NULL, 0, &cached), 0);
		if (i > 0)
			assert_int_equal(route_parse_count() - before, 0);
		assert_true(cached.join);
		assert_int_equal(route_statement(&ctx, sql, NULL, 0, &direct), 0);
		expect_same_plan(sql, &direct, &cached);
	}
	route_cache_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_gather_plans_are_the_same_cached_and_not),
	    cmocka_unit_test(test_a_statement_is_parsed_once_and_its_gather_plan_made_once),
	    cmocka_unit_test(test_gather_parameters_make_their_own_plans),
	    cmocka_unit_test(test_gather_of_a_text_not_kept_parses_it_once),
	    cmocka_unit_test(test_one_key_plans_are_reused_for_other_values),
	    cmocka_unit_test(test_plans_not_of_one_key_are_analysed_each_time),
	    cmocka_unit_test(test_values_a_generic_plan_cannot_place_are_analysed),
	    cmocka_unit_test(test_reused_plans_without_reasons_route_the_same),
	    cmocka_unit_test(test_a_join_across_shards_is_planned_once_per_kept_parse),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
