/*
 * fuzz_route.c — the router (router/route.h, plancache.h, classify.h) on
 * fuzzed SQL text and parameter values.
 *
 * Input: one flags byte, the SQL text up to a NUL byte, then parameters,
 * each a header byte (bit 0 binary, bit 1 NULL, bits 2-4 the type OID from
 * param_types), a length byte and that many bytes. With flags bit 0 the SQL
 * text is a template "A\x01B\x01C" made into A, then B repeated
 * 64 * (next byte + 1) times, then C: that reaches the depth guard
 * (ROUTE_MAX_SQL_DEPTH) from a small input, and libpg_query's stack with it
 * when the guard's estimate is too low.
 *
 * Checked for every input:
 *   - the plan is well formed (a refusal has a message and SQLSTATE 0A000 or
 *     54001, shards exist in the config, strings are terminated, 1 to
 *     ROUTE_MAX_STEPS steps, the first REFUSE exactly when the plan is refused)
 *   - the plan cache gives the plan route_statement gives, on a miss and on
 *     the hit that follows
 *   - the lexer's tokens move forward and stay inside the text
 *   - a multi-row INSERT the plan says to split splits into statements that
 *     each route to the one shard they were made for
 *   - route_scan_effects (classify.c) runs clean on the same text
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "fuzz/fuzz_util.h"
#include "router/classify.h"
#include "router/plancache.h"
#include "router/route.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define N_SHARDS   3
#define MAX_PARAMS 8

/* The unit tests' config (router/tests/route_config.h) with a uuid map added. */
static const char config[] = "[proxy]\n"
                             "default_shard = 1\n"
                             "[shard.0]\n"
                             "primary = host=10.0.0.1\n"
                             "[shard.1]\n"
                             "primary = host=10.0.0.2\n"
                             "[shard.2]\n"
                             "primary = host=10.0.0.3\n"
                             "[map.users]\n"
                             "kind = hash\n"
                             "key = bigint\n"
                             "shards = 0, 1, 2\n"
                             "[map.regions]\n"
                             "kind = range\n"
                             "key = bigint\n"
                             "range = - 1000 0\n"
                             "range = 1000 2000 1\n"
                             "range = 2000 - 2\n"
                             "[map.gapped]\n"
                             "kind = range\n"
                             "key = bigint\n"
                             "range = 0 100 0\n"
                             "range = 200 300 1\n"
                             "[map.names]\n"
                             "kind = hash\n"
                             "key = text\n"
                             "shards = 1, 2\n"
                             "[map.devices]\n"
                             "kind = hash\n"
                             "key = uuid\n"
                             "shards = 0, 2\n"
                             "vnodes = 16\n"
                             "[table.users]\n"
                             "key = id\n"
                             "map = users\n"
                             "[table.orders]\n"
                             "key = user_id\n"
                             "map = users\n"
                             "[table.public.widgets]\n"
                             "key = id\n"
                             "map = users\n"
                             "[table.countries]\n"
                             "reference = yes\n"
                             "[table.sites]\n"
                             "key = region_id\n"
                             "map = regions\n"
                             "[table.slots]\n"
                             "key = slot\n"
                             "map = gapped\n"
                             "[table.accounts]\n"
                             "key = name\n"
                             "map = names\n"
                             "[table.devices]\n"
                             "key = id\n"
                             "map = devices\n";

static const uint32_t param_types[8] = {0, 20, 21, 23, 25, 1043, 2950, 1042};

static cfg_t *cfg;
static route_ctx_t ctx;

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[512];

	(void)argc;
	(void)argv;
	if (cfg_load_string(config, "fuzz.ini", &cfg, err, sizeof err) != 0 ||
	    route_ctx_init(&ctx, cfg, err, sizeof err) != 0) {
		fprintf(stderr, "fuzz_route: %s\n", err);
		abort();
	}
	return 0;
}

static void check_plan(const route_plan_t *p)
{
	fuzz_check(memchr(p->reason, '\0', sizeof(p->reason)) != NULL);
	fuzz_check(memchr(p->error, '\0', sizeof(p->error)) != NULL);
	fuzz_check(memchr(p->sqlstate, '\0', sizeof(p->sqlstate)) != NULL);
	fuzz_check(p->kind >= ROUTE_DEFAULT && p->kind <= ROUTE_REFUSE);
	fuzz_check(p->txn >= ROUTE_TXN_NONE && p->txn <= ROUTE_TXN_OTHER);
	fuzz_check(p->merge >= ROUTE_MERGE_NONE && p->merge <= ROUTE_MERGE_GATHER);
	/* the executor's view: 1..ROUTE_MAX_STEPS steps, the first a refusal exactly on refusals */
	fuzz_check(p->n_steps >= 1 && p->n_steps <= ROUTE_MAX_STEPS);
	fuzz_check((p->steps[0].kind == ROUTE_STEP_REFUSE) == (p->kind == ROUTE_REFUSE));
	for (int i = 0; i < p->n_steps; i++) {
		const route_step_t *st = &p->steps[i];

		fuzz_check(st->kind >= ROUTE_STEP_REFUSE && st->kind <= ROUTE_STEP_JOIN);
		fuzz_check(st->shard >= -1 && st->shard < N_SHARDS);
		fuzz_check(st->kind == ROUTE_STEP_ONE || st->shard == -1);
		fuzz_check(i == 0 || st->kind != ROUTE_STEP_REFUSE);
	}
	if (p->kind == ROUTE_REFUSE) {
		fuzz_check(p->error[0] != '\0');
		fuzz_check(strcmp(p->sqlstate, "0A000") == 0 || strcmp(p->sqlstate, "54001") == 0);
		return;
	}
	fuzz_check(p->sqlstate[0] == '\0');
	for (int s = N_SHARDS; s < SHARD_MAX; s++)
		fuzz_check(!shard_set_has(&p->shards, s));
	if (p->kind == ROUTE_ANY || p->kind == ROUTE_DEFAULT)
		fuzz_check(shard_set_count(&p->shards) == 1);
}

static void same_plan(const route_plan_t *a, const route_plan_t *b)
{
	fuzz_check(a->kind == b->kind);
	fuzz_check(memcmp(&a->shards, &b->shards, sizeof(a->shards)) == 0);
	fuzz_check(a->is_write == b->is_write && a->is_ddl == b->is_ddl);
	fuzz_check(a->split_insert == b->split_insert && a->key_move == b->key_move);
	fuzz_check((a->map == NULL) == (b->map == NULL));
	fuzz_check(a->map == NULL || strcmp(a->map, b->map) == 0);
	fuzz_check(a->key_column == b->key_column);
	fuzz_check(a->params_missing == b->params_missing);
	fuzz_check(strcmp(a->reason, b->reason) == 0);
	fuzz_check(strcmp(a->error, b->error) == 0);
	fuzz_check(strcmp(a->sqlstate, b->sqlstate) == 0);
	fuzz_check(a->txn == b->txn && a->has_txn_control == b->has_txn_control);
	fuzz_check(a->merge == b->merge);
	fuzz_check(a->copy_from_stdin == b->copy_from_stdin);
	fuzz_check(a->n_steps == b->n_steps);
	for (int i = 0; i < a->n_steps && i < ROUTE_MAX_STEPS; i++) {
		fuzz_check(a->steps[i].kind == b->steps[i].kind);
		fuzz_check(a->steps[i].shard == b->steps[i].shard);
		fuzz_check(memcmp(&a->steps[i].shards, &b->steps[i].shards,
		                  sizeof(a->steps[i].shards)) == 0);
		fuzz_check(a->steps[i].merge == b->steps[i].merge);
	}
}

static void check_tokens(const char *sql, size_t len)
{
	size_t pos = 0;

	for (;;) {
		route_token_t tok;
		size_t next = route_next_token(sql, len, pos, &tok);

		fuzz_check(route_skip_blank(sql, len, pos) <= len);
		if (tok.kind == ROUTE_TOK_END) {
			fuzz_check(next <= len);
			break;
		}
		fuzz_check(tok.start >= pos && tok.len > 0 && tok.start + tok.len <= len);
		fuzz_check(next > pos && next <= len);
		pos = next;
	}
}

static void check_split(const char *sql, const route_plan_t *plan)
{
	route_split_t *splits;
	int n, prev = -1;
	char err[256];

	if (route_split_insert(&ctx, sql, &splits, &n, err, sizeof err) != 0) {
		fuzz_check(err[0] != '\0');
		return;
	}
	fuzz_check(n >= 2);
	for (int i = 0; i < n; i++) {
		route_plan_t p;

		fuzz_check(splits[i].shard > prev && shard_set_has(&plan->shards, splits[i].shard));
		prev = splits[i].shard;
		if (route_statement(&ctx, splits[i].sql, NULL, 0, &p) != 0)
			continue;
		fuzz_check(p.kind == ROUTE_SHARDS && shard_set_count(&p.shards) == 1 &&
		           shard_set_has(&p.shards, splits[i].shard));
	}
	route_splits_free(splits, n);
}

/* An UPDATE that moves rows: its statements are made, and the UPDATE still plans the same. */
static void check_move(const char *sql, const route_plan_t *plan)
{
	route_move_t m;
	route_plan_t p;
	char err[256];

	fuzz_check(route_step_routed(plan)->kind == ROUTE_STEP_MOVE);
	fuzz_check(shard_set_count(&plan->move_to) >= 1);
	if (route_move_prepare(&ctx, sql, &m, err, sizeof err) != 0) {
		fuzz_check(err[0] != '\0');
		return;
	}
	fuzz_check(m.map >= 0 && m.update_sql != NULL && m.delete_sql != NULL);
	if (route_statement(&ctx, m.update_sql, NULL, 0, &p) == 0)
		fuzz_check(p.kind != ROUTE_DEFAULT && p.kind != ROUTE_ANY);
	route_move_free(&m);
}

/* The SQL text: plain, or a template whose middle part is repeated. */
static char *take_sql(fuzz_in_t *in, bool repeat)
{
	char *t = fuzz_take_string(in, 0), *a, *b, *c, *sql, *p;
	size_t times, la, lb, lc;

	if (!repeat)
		return t;
	times = 64 * ((size_t)fuzz_u8(in) + 1);
	a = t;
	b = strchr(a, '\x01');
	c = b != NULL ? strchr(b + 1, '\x01') : NULL;
	if (c == NULL)
		return t;
	*b++ = '\0';
	*c++ = '\0';
	la = strlen(a);
	lb = strlen(b);
	lc = strlen(c);
	sql = malloc(la + lb * times + lc + 1);
	if (sql == NULL)
		abort();
	p = sql;
	memcpy(p, a, la);
	p += la;
	for (size_t i = 0; i < times; i++, p += lb)
		memcpy(p, b, lb);
	memcpy(p, c, lc + 1);
	free(t);
	return sql;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_in_t in = {data, size};
	uint8_t flags = fuzz_u8(&in);
	char *sql = take_sql(&in, flags & 1);
	size_t len = strlen(sql);
	route_param_t params[MAX_PARAMS];
	uint8_t *bufs[MAX_PARAMS];
	int n = 0;
	route_plan_t plan, cached;
	route_cache_t *cache;
	route_effects_t eff;

	while (in.n > 0 && n < MAX_PARAMS) {
		uint8_t h = fuzz_u8(&in);
		size_t l = fuzz_u8(&in);

		if (l > in.n)
			l = in.n;
		bufs[n] = fuzz_dup(in.p, l);
		in.p += l;
		in.n -= l;
		params[n].format = h & 1;
		params[n].data = h & 2 ? NULL : bufs[n];
		params[n].len = h & 2 ? -1 : (int32_t)l;
		params[n].type_oid = param_types[(h >> 2) & 7];
		n++;
	}

	(void)route_sql_depth_estimate(sql, len);
	if (len <= 1 << 16)
		check_tokens(sql, len);

	if (route_statement(&ctx, sql, n > 0 ? params : NULL, n, &plan) == 0) {
		check_plan(&plan);
		if (plan.split_insert && !(flags & 2))
			check_split(sql, &plan);
		if (plan.key_move)
			check_move(sql, &plan);

		cache = route_cache_new(&ctx, 2);
		fuzz_check(cache != NULL);
		for (int i = 0; i < 2; i++) {
			if (route_statement_cached(cache, sql, n > 0 ? params : NULL, n, &cached) !=
			    0)
				break;
			same_plan(&plan, &cached);
		}
		route_cache_free(cache);
	}

	if (route_scan_effects(sql, len, &eff) == 0) {
		for (int i = 0; i < eff.n_sets; i++) {
			fuzz_check(eff.sets[i].kind == ROUTE_RESET_ALL || eff.sets[i].name != NULL);
			fuzz_check(eff.sets[i].kind != ROUTE_SET_VALUE || eff.sets[i].stmt != NULL);
		}
		fuzz_check(!eff.pin || eff.pin_why != NULL);
		route_effects_free(&eff);
	}

	for (int i = 0; i < n; i++)
		free(bufs[i]);
	free(sql);
	return 0;
}
