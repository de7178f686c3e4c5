/*
 * test_causal.c — a session's positions per shard (proxy/causal.h): when a
 * replica may serve its reads after writes and reads, and causal tokens.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "proxy/causal.h"

#define R1 5 /* node ids of two replicas */
#define R2 6

static causal_pos_t pos(uint64_t lsn, uint64_t at_us)
{
	causal_pos_t p = {lsn, at_us};

	return p;
}

static const causal_pos_t unknown = {0, 0};

static void test_a_fresh_session_may_read_from_any_replica_with_a_position(void **state)
{
	causal_t k;

	(void)state;
	causal_init(&k);
	assert_true(causal_allows(&k, R1, pos(100, 10)));
	assert_true(causal_allows(&k, R2, pos(1, 10)));
	assert_false(causal_allows(&k, R1, unknown)); /* never checked: no */
	assert_true(causal_settled(&k));
}

static void test_after_a_write_only_the_primary_until_a_later_check_bounds_it(void **state)
{
	causal_t k;

	(void)state;
	causal_init(&k);
	causal_ran(&k, -1, 1000); /* a commit on the primary, seen at t=1000 */
	assert_false(causal_allows(&k, R1, pos(500, 900)));
	assert_false(causal_settled(&k));
	/* a primary check sent before the commit ended says nothing */
	causal_settle(&k, pos(400, 999), unknown);
	assert_false(causal_allows(&k, R1, pos(500, 1100)));
	/* one sent after: the write is at or below 450 */
	causal_settle(&k, pos(450, 1001), unknown);
	assert_true(causal_settled(&k));
	assert_int_equal(k.need_lsn, 450);
	assert_false(causal_allows(&k, R1, pos(449, 1200))); /* replay paused below: no */
	assert_true(causal_allows(&k, R1, pos(450, 1200)));
	assert_true(causal_allows(&k, R2, pos(9000, 1200)));
}

static void test_where_the_latest_statement_ran_is_remembered(void **state)
{
	causal_t k;

	(void)state;
	causal_init(&k);
	assert_false(k.on_primary); /* nothing ran yet */
	causal_ran(&k, -1, 1000);
	assert_true(k.on_primary);
	causal_settle(&k, pos(450, 1001), unknown);
	assert_true(k.on_primary); /* bounding it does not move it */
	causal_ran(&k, R1, 1100);
	assert_false(k.on_primary);
	assert_int_equal(k.rep_node, R1);
	causal_ran(&k, -1, 1200);
	assert_true(k.on_primary);
	assert_int_equal(k.rep_node, R1); /* the replica read before is still known */
}

static void test_the_primary_asked_after_a_statement_bounds_it_at_once(void **state)
{
	causal_t k;

	(void)state;
	causal_init(&k);
	causal_ran(&k, -1, 1000);    /* a write ended at t=1000 */
	causal_bound(&k, 700, 1001); /* asked right after: the primary was at 700 */
	assert_true(causal_settled(&k));
	assert_int_equal(k.need_lsn, 700);
	assert_false(causal_allows(&k, R1, pos(699, 1002)));
	assert_true(causal_allows(&k, R1, pos(700, 1002)));
	/* an answer to a question asked before a later statement ended bounds only the earlier */
	causal_ran(&k, -1, 2000);
	causal_bound(&k, 800, 1500);
	assert_false(causal_settled(&k));
	assert_int_equal(k.need_lsn, 800);
	/* an unknown position changes nothing */
	causal_bound(&k, 0, 2500);
	assert_false(causal_settled(&k));
	causal_bound(&k, 750, 2500); /* lower than known: need stays, the statement is bound */
	assert_true(causal_settled(&k));
	assert_int_equal(k.need_lsn, 800);
	/* a replica read, then a write: the answer after the write bounds the read too */
	causal_ran(&k, R1, 3000);
	causal_ran(&k, -1, 3100);
	assert_false(causal_settled(&k));
	causal_bound(&k, 900, 3101);
	assert_true(causal_settled(&k));
	assert_int_equal(k.need_lsn, 900);
	/* a read after the question is not bound by its answer */
	causal_ran(&k, R1, 3300);
	causal_bound(&k, 950, 3200);
	assert_false(causal_settled(&k));
}

static void test_lsn_text_is_read_like_postgresql_writes_it(void **state)
{
	uint64_t lsn = 0;
	const char *end;

	(void)state;
	assert_true(causal_lsn_parse("16/B374D848", &lsn, &end));
	assert_int_equal(lsn, (UINT64_C(0x16) << 32) | 0xB374D848);
	assert_int_equal(*end, '\0');
	assert_true(causal_lsn_parse("0/0,", &lsn, &end));
	assert_int_equal(lsn, 0);
	assert_int_equal(*end, ',');
	assert_false(causal_lsn_parse("", &lsn, &end));
	assert_false(causal_lsn_parse("16", &lsn, &end));
	assert_false(causal_lsn_parse("16/", &lsn, &end));
	assert_false(causal_lsn_parse("x/1", &lsn, &end));
	assert_false(causal_lsn_parse("1FFFFFFFF/0", &lsn, &end));
}

static void test_reads_stay_on_their_replica_until_bounded(void **state)
{
	causal_t k;

	(void)state;
	causal_init(&k);
	causal_ran(&k, R1, 2000); /* read on R1 */
	assert_true(causal_allows(&k, R1, pos(300, 1500)));
	/* R2 could be behind what R1 showed */
	assert_false(causal_allows(&k, R2, pos(1000, 2500)));
	/* R1's check after the read: it had at most 320 */
	causal_settle(&k, unknown, pos(320, 2001));
	assert_int_equal(k.need_lsn, 320);
	assert_false(causal_allows(&k, R2, pos(310, 2500)));
	assert_true(causal_allows(&k, R2, pos(320, 2500)));
	/* going to R2 makes R2 the one to stay on */
	causal_ran(&k, R2, 3000);
	assert_false(causal_allows(&k, R1, pos(10000, 3500)));
	assert_true(causal_allows(&k, R2, pos(320, 3500)));
}

static void test_leaving_a_replica_while_pending_hands_the_bound_to_the_primary(void **state)
{
	causal_t k;

	(void)state;
	causal_init(&k);
	causal_ran(&k, R1, 2000);
	causal_forget_node(&k); /* a reload renumbered the nodes */
	assert_false(causal_allows(&k, R1, pos(10000, 2500)));
	causal_settle(&k, pos(700, 1999), unknown);
	assert_false(causal_settled(&k));
	causal_settle(&k, pos(700, 2000), unknown);
	assert_true(causal_settled(&k));
	assert_int_equal(k.need_lsn, 700);
}

static void test_need_never_goes_down(void **state)
{
	causal_t k;

	(void)state;
	causal_init(&k);
	causal_ran(&k, -1, 10);
	causal_settle(&k, pos(900, 11), unknown);
	causal_ran(&k, -1, 20);
	causal_settle(&k, pos(800, 21), unknown); /* a restored primary? never lower */
	assert_int_equal(k.need_lsn, 900);
}

static void test_tokens_carry_positions_to_another_session(void **state)
{
	causal_t a[3], b[3];
	char buf[CAUSAL_TOKEN_MAX];

	(void)state;
	for (int i = 0; i < 3; i++) {
		causal_init(&a[i]);
		causal_init(&b[i]);
	}
	assert_true(causal_token_write(a, 3, buf, sizeof buf));
	assert_string_equal(buf, "pgshard1:");
	a[0].need_lsn = 0x3000148;
	a[2].need_lsn = (uint64_t)0x16 << 32 | 0xB374D848;
	assert_true(causal_token_write(a, 3, buf, sizeof buf));
	assert_string_equal(buf, "pgshard1:0=0/3000148,2=16/B374D848");
	b[0].need_lsn = 0x4000000; /* higher already: stays */
	assert_true(causal_token_read(b, 3, buf));
	assert_int_equal(b[0].need_lsn, 0x4000000);
	assert_int_equal(b[1].need_lsn, 0);
	assert_int_equal(b[2].need_lsn, a[2].need_lsn);
	/* a token of a config with more shards: the others are ignored */
	assert_true(causal_token_read(b, 2, "pgshard1:1=0/10,5=0/20"));
	assert_int_equal(b[1].need_lsn, 0x10);
	assert_true(causal_token_read(b, 3, "pgshard1:"));
	assert_false(causal_token_write(a, 3, buf, 12)); /* does not fit */
}

static void test_bad_tokens_change_nothing(void **state)
{
	causal_t b[2];
	const char *bad[] = {"",
	                     "pgshard2:0=0/1",
	                     "pgshard1:0=0/1,",
	                     "pgshard1:x=0/1",
	                     "pgshard1:0=0-1",
	                     "pgshard1:0=/1",
	                     "pgshard1:0=0/1;1=0/2",
	                     "pgshard1:0=1FFFFFFFF/0",
	                     "pgshard1:1=0/5,0=zz/1"};

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		causal_init(&b[0]);
		causal_init(&b[1]);
		if (causal_token_read(b, 2, bad[i]))
			fail_msg("accepted %s", bad[i]);
		assert_int_equal(b[0].need_lsn + b[1].need_lsn, 0);
	}
}

static causal_verb_t parse(const char *sql, char *name, char *value)
{
	return causal_parse_command(sql, name, 64, value, 256);
}

static void test_session_commands_of_pgshard_are_recognized(void **state)
{
	char name[64], value[256];

	(void)state;
	assert_int_equal(parse("SHOW pgshard.causal_token", name, value), CAUSAL_SHOW);
	assert_string_equal(name, "causal_token");
	assert_int_equal(parse("  show PGSHARD.Replica_Reads ; ", name, value), CAUSAL_SHOW);
	assert_string_equal(name, "replica_reads");
	assert_int_equal(parse("SET pgshard.causal_token = 'pgshard1:0=0/1'", name, value),
	                 CAUSAL_SET);
	assert_string_equal(value, "pgshard1:0=0/1");
	assert_int_equal(parse("set session pgshard.replica_reads to off;", name, value),
	                 CAUSAL_SET);
	assert_string_equal(value, "off");
	assert_int_equal(parse("SET pgshard.x = 'it''s'", name, value), CAUSAL_SET);
	assert_string_equal(value, "it's");
	assert_int_equal(parse("SET pgshard.replica_reads TO DEFAULT", name, value), CAUSAL_RESET);
	assert_int_equal(parse("RESET pgshard.causal_token", name, value), CAUSAL_RESET);
	/* not ours */
	assert_int_equal(parse("SET work_mem = '1MB'", name, value), CAUSAL_NOT_OURS);
	assert_int_equal(parse("SHOW work_mem", name, value), CAUSAL_NOT_OURS);
	assert_int_equal(parse("SET LOCAL pgshard.replica_reads = off", name, value),
	                 CAUSAL_NOT_OURS);
	assert_int_equal(parse("SELECT 1", name, value), CAUSAL_NOT_OURS);
	assert_int_equal(parse("settle", name, value), CAUSAL_NOT_OURS);
	/* ours, but not a command */
	assert_int_equal(parse("SET pgshard.causal_token 'x'", name, value), CAUSAL_BAD);
	assert_int_equal(parse("SET pgshard.causal_token = 'x", name, value), CAUSAL_BAD);
	assert_int_equal(parse("SHOW pgshard.causal_token; SELECT 1", name, value), CAUSAL_BAD);
	assert_int_equal(parse("SHOW pgshard.", name, value), CAUSAL_BAD);
	assert_int_equal(parse("SET pgshard.a =", name, value), CAUSAL_BAD);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_a_fresh_session_may_read_from_any_replica_with_a_position),
	    cmocka_unit_test(test_after_a_write_only_the_primary_until_a_later_check_bounds_it),
	    cmocka_unit_test(test_where_the_latest_statement_ran_is_remembered),
	    cmocka_unit_test(test_the_primary_asked_after_a_statement_bounds_it_at_once),
	    cmocka_unit_test(test_lsn_text_is_read_like_postgresql_writes_it),
	    cmocka_unit_test(test_reads_stay_on_their_replica_until_bounded),
	    cmocka_unit_test(test_leaving_a_replica_while_pending_hands_the_bound_to_the_primary),
	    cmocka_unit_test(test_need_never_goes_down),
	    cmocka_unit_test(test_tokens_carry_positions_to_another_session),
	    cmocka_unit_test(test_bad_tokens_change_nothing),
	    cmocka_unit_test(test_session_commands_of_pgshard_are_recognized),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
