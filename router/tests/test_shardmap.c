/*
 * test_shardmap.c — key normalization, the hash, the ring and range maps.
 *
 * The fixed vectors below pin the placement format (shardmap.h, README.md
 * "Placement"). They were computed once with an XXH64 written from the
 * xxHash specification in Python, independently of libxxhash and of
 * shardmap.c, and agreed with both. Placement is a data format: these must
 * never change. A change here means rows already stored are on the wrong
 * shard.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "router/shardmap.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static shard_key_t key_text(cfg_key_type_t type, const char *s)
{
	shard_key_t k;
	assert_int_equal(shard_key_from_text(type, s, strlen(s), &k), 0);
	return k;
}

static shard_key_t key_int(int64_t v)
{
	shard_key_t k;
	assert_int_equal(shard_key_from_int(v, &k), 0);
	return k;
}

static shard_key_t key_bin(cfg_key_type_t type, uint32_t oid, const void *data, size_t len)
{
	shard_key_t k;
	assert_int_equal(shard_key_from_binary(type, oid, data, len, &k), 0);
	return k;
}

static void assert_same_key(const shard_key_t *a, const shard_key_t *b)
{
	assert_int_equal(a->type, b->type);
	assert_int_equal(a->len, b->len);
	assert_memory_equal(shard_key_bytes(a), shard_key_bytes(b), a->len);
	assert_int_equal(shard_key_compare(a, b), 0);
	assert_true(shard_key_hash(a) == shard_key_hash(b));
	if (a->type == CFG_KEY_BIGINT)
		assert_true(a->i == b->i);
}

/* A hash map over shards {0, 1, 2} with 256 vnodes, the configuration the vectors pin. */
static const int three_shards[] = {0, 1, 2};

static cfg_map_t hash_cfg(cfg_key_type_t key)
{
	return (cfg_map_t){.name = "users",
	                   .kind = CFG_MAP_HASH,
	                   .key = key,
	                   .shards = (int *)three_shards,
	                   .n_shards = 3,
	                   .vnodes = 256};
}

static cfg_map_t range_cfg(cfg_key_type_t key, cfg_range_t *ranges, int n)
{
	return (cfg_map_t){
	    .name = "regions", .kind = CFG_MAP_RANGE, .key = key, .ranges = ranges, .n_ranges = n};
}

static void build_ok(shard_map_t *m, const cfg_map_t *cfg)
{
	char err[256] = "";
	int rc = shard_map_build(m, cfg, err, sizeof err);
	if (rc != 0)
		fail_msg("shard_map_build: %s", err);
}

/* ------------------------------------------------------------------------ */
/* Shard sets                                                                */
/* ------------------------------------------------------------------------ */

static void test_shard_set_add_has_count_first(void **state)
{
	shard_set_t s;
	shard_set_clear(&s);
	assert_int_equal(shard_set_count(&s), 0);
	assert_int_equal(shard_set_first(&s), -1);

	shard_set_add(&s, 200);
	shard_set_add(&s, 63);
	shard_set_add(&s, 64);
	shard_set_add(&s, 64);
	assert_int_equal(shard_set_count(&s), 3);
	assert_int_equal(shard_set_first(&s), 63);
	assert_true(shard_set_has(&s, 63) && shard_set_has(&s, 64) && shard_set_has(&s, 200));
	assert_false(shard_set_has(&s, 0));
	assert_false(shard_set_has(&s, 255));
}

static void test_shard_set_ignores_ids_outside_range(void **state)
{
	shard_set_t s;
	shard_set_clear(&s);
	shard_set_add(&s, -1);
	shard_set_add(&s, SHARD_MAX);
	shard_set_add(&s, 100000);
	assert_int_equal(shard_set_count(&s), 0);
	assert_false(shard_set_has(&s, -1));
	assert_false(shard_set_has(&s, SHARD_MAX));
	shard_set_add(&s, SHARD_MAX - 1);
	assert_true(shard_set_has(&s, SHARD_MAX - 1));
	assert_int_equal(shard_set_first(&s), SHARD_MAX - 1);
}

static void test_shard_set_union_and_intersect(void **state)
{
	shard_set_t a, b;
	shard_set_clear(&a);
	shard_set_clear(&b);
	shard_set_add(&a, 1);
	shard_set_add(&a, 130);
	shard_set_add(&b, 130);
	shard_set_add(&b, 7);

	shard_set_t u = a;
	shard_set_union(&u, &b);
	assert_int_equal(shard_set_count(&u), 3);
	assert_true(shard_set_has(&u, 1) && shard_set_has(&u, 7) && shard_set_has(&u, 130));

	shard_set_t i = a;
	shard_set_intersect(&i, &b);
	assert_int_equal(shard_set_count(&i), 1);
	assert_int_equal(shard_set_first(&i), 130);
}

/* ------------------------------------------------------------------------ */
/* Fixed vectors: the hash                                                   */
/* ------------------------------------------------------------------------ */

static void test_bigint_key_bytes_are_big_endian_twos_complement(void **state)
{
	static const uint8_t b42[8] = {0, 0, 0, 0, 0, 0, 0, 0x2a};
	static const uint8_t bm1[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	static const uint8_t bmin[8] = {0x80, 0, 0, 0, 0, 0, 0, 0};
	shard_key_t k = key_int(42);
	assert_int_equal(k.len, 8);
	assert_memory_equal(shard_key_bytes(&k), b42, 8);
	k = key_int(-1);
	assert_memory_equal(shard_key_bytes(&k), bm1, 8);
	k = key_int(INT64_MIN);
	assert_memory_equal(shard_key_bytes(&k), bmin, 8);
}

/* placement is a data format: these must never change */
static void test_hash_of_bigint_keys_is_pinned(void **state)
{
	static const struct {
		int64_t v;
		uint64_t hash;
	} vec[] = {
	    {0, 0x34c96acdcadb1bbbULL},         {1, 0x9f1ffc793b8a47daULL},
	    {42, 0xa2c396223f8bdbdfULL},        {-1, 0x85d136adb773c6c9ULL},
	    {INT64_MIN, 0xa7299a58d03a1d0cULL}, {INT64_MAX, 0x043de1bbaf341994ULL},
	};
	for (size_t i = 0; i < COUNT(vec); i++) {
		shard_key_t k = key_int(vec[i].v);
		assert_true(shard_key_hash(&k) == vec[i].hash);
	}
}

/* placement is a data format: these must never change */
static void test_hash_of_text_and_uuid_keys_is_pinned(void **state)
{
	static const struct {
		const char *s;
		uint64_t hash;
	} vec[] = {
	    {"", 0xef46db3751d8e999ULL}, /* XXH64 of no bytes, the xxHash spec's own vector */
	    {"alice", 0x73a3ea485f2e6049ULL},
	    {"Z\xc3\xbcrich \xe6\x9d\xb1\xe4\xba\xac", 0x7e5d1e2e9e872c76ULL}, /* "Zürich 東京" */
	};
	for (size_t i = 0; i < COUNT(vec); i++) {
		shard_key_t k = key_text(CFG_KEY_TEXT, vec[i].s);
		assert_true(shard_key_hash(&k) == vec[i].hash);
	}

	shard_key_t u = key_text(CFG_KEY_UUID, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
	static const uint8_t ub[16] = {0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8,
	                               0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38, 0x0a, 0x11};
	assert_int_equal(u.len, 16);
	assert_memory_equal(shard_key_bytes(&u), ub, 16);
	assert_true(shard_key_hash(&u) == 0x2be0e46a4e11f685ULL);
}

/* ------------------------------------------------------------------------ */
/* Fixed vectors: the ring                                                   */
/* ------------------------------------------------------------------------ */

/* placement is a data format: these must never change */
static void test_ring_points_are_pinned(void **state)
{
	shard_ring_t r;
	assert_int_equal(shard_ring_build(&r, three_shards, 3, 256), 0);
	assert_int_equal(r.n, 768);
	/* XXH64(be32(shard) || be32(vnode), SHARD_RING_SEED), sorted: the two lowest and the
	 * highest (computed with an XXH64 written from the spec, not with libxxhash) */
	assert_true(r.points[0] == 0x00025ce5e0d328c7ULL);
	assert_int_equal(r.shards[0], 2);
	assert_true(r.points[1] == 0x00ef3acf732edf71ULL);
	assert_int_equal(r.shards[1], 1);
	assert_true(r.points[767] == 0xff1cb7f48b59e545ULL);
	assert_int_equal(r.shards[767], 0);
	for (int i = 1; i < r.n; i++)
		assert_true(r.points[i - 1] <= r.points[i]);
	shard_ring_free(&r);
}

/*
 * placement is a data format: these must never change. Computed with an
 * XXH64 written from the spec, independently of libxxhash and shardmap.c.
 */
static void test_ring_placement_of_keys_is_pinned(void **state)
{
	static const int small[20] = {0, 1, 1, 1, 2, 0, 0, 1, 2, 2, 2, 0, 0, 2, 0, 2, 0, 1, 0, 0};
	static const int thousands[20] = {0, 0, 1, 1, 0, 0, 0, 0, 2, 2,
	                                  2, 2, 2, 1, 1, 1, 1, 0, 1, 0};
	static const struct {
		const char *s;
		int shard;
	} texts[] = {
	    {"alice", 1}, {"bob", 1},
	    {"carol", 1}, {"dave", 2},
	    {"eve", 1},   {"mallory", 1},
	    {"", 2},      {"Z\xc3\xbcrich \xe6\x9d\xb1\xe4\xba\xac", 1},
	};
	static const struct {
		const char *s;
		int shard;
	} uuids[] = {
	    {"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", 2},
	    {"00000000-0000-0000-0000-000000000000", 1},
	    {"ffffffff-ffff-ffff-ffff-ffffffffffff", 0},
	};

	cfg_map_t bc = hash_cfg(CFG_KEY_BIGINT), tc = hash_cfg(CFG_KEY_TEXT),
	          uc = hash_cfg(CFG_KEY_UUID);
	shard_map_t bm, tm, um;
	build_ok(&bm, &bc);
	build_ok(&tm, &tc);
	build_ok(&um, &uc);
	for (int i = 0; i < 20; i++) {
		shard_key_t k = key_int(i + 1);
		assert_int_equal(shard_map_lookup(&bm, &k), small[i]);
		k = key_int(i + 1001);
		assert_int_equal(shard_map_lookup(&bm, &k), thousands[i]);
	}
	for (size_t i = 0; i < COUNT(texts); i++) {
		shard_key_t k = key_text(CFG_KEY_TEXT, texts[i].s);
		assert_int_equal(shard_map_lookup(&tm, &k), texts[i].shard);
	}
	for (size_t i = 0; i < COUNT(uuids); i++) {
		shard_key_t k = key_text(CFG_KEY_UUID, uuids[i].s);
		assert_int_equal(shard_map_lookup(&um, &k), uuids[i].shard);
	}
	shard_map_free(&bm);
	shard_map_free(&tm);
	shard_map_free(&um);
}

static void test_ring_does_not_depend_on_shard_order_in_config(void **state)
{
	static const int reversed[] = {2, 1, 0};
	shard_ring_t a, b;
	assert_int_equal(shard_ring_build(&a, three_shards, 3, 64), 0);
	assert_int_equal(shard_ring_build(&b, reversed, 3, 64), 0);
	assert_int_equal(a.n, b.n);
	assert_memory_equal(a.points, b.points, sizeof a.points[0] * (size_t)a.n);
	assert_memory_equal(a.shards, b.shards, sizeof a.shards[0] * (size_t)a.n);
	shard_ring_free(&a);
	shard_ring_free(&b);
}

static void test_ring_lookup_takes_first_point_at_or_above_and_wraps(void **state)
{
	uint64_t points[] = {100, 200, 200, 300};
	int shards[] = {5, 1, 2, 3}; /* equal points: the lower shard id sorts first */
	shard_ring_t r = {.points = points, .shards = shards, .n = 4};
	assert_int_equal(shard_ring_index(&r), 0);
	assert_int_equal(shard_ring_lookup(&r, 0), 5);
	assert_int_equal(shard_ring_lookup(&r, 100), 5);
	assert_int_equal(shard_ring_lookup(&r, 101), 1);
	assert_int_equal(shard_ring_lookup(&r, 200), 1);
	assert_int_equal(shard_ring_lookup(&r, 201), 3);
	assert_int_equal(shard_ring_lookup(&r, 300), 3);
	assert_int_equal(shard_ring_lookup(&r, 301), 5);
	assert_int_equal(shard_ring_lookup(&r, UINT64_MAX), 5);
	free(r.start);
}

/* The first point at or above hash by a search of the whole ring, as the index must find it. */
static int ring_lower_bound(const shard_ring_t *r, uint64_t hash)
{
	int lo = 0, hi = r->n;

	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;

		if (r->points[mid] < hash)
			lo = mid + 1;
		else
			hi = mid;
	}
	return r->shards[lo == r->n ? 0 : lo];
}

/* Points bunched at the edges of the index's runs, ties, the ends: the index finds what a search
 * does. */
static void test_ring_index_finds_what_a_search_of_the_ring_finds(void **state)
{
	uint64_t points[64], x = 88172645463325252ull;
	int shards[64];
	shard_ring_t r;

	(void)state;
	for (int n = 1; n <= 64; n += 7) {
		for (int i = 0; i < n; i++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			/* a third on run edges (top bits, then zeros or ones), a few equal */
			points[i] = i % 3 == 0 ? (x & 0xff00000000000000ull) |
			                             (i % 2 ? 0 : 0x00ffffffffffffffull)
			            : i % 5 == 0 && i > 0 ? points[i - 1]
			                                  : x;
			shards[i] = i % 4;
		}
		/* sorted, as the ring keeps them */
		for (int i = 1; i < n; i++)
			for (int j = i; j > 0 && points[j - 1] > points[j]; j--) {
				uint64_t p = points[j];
				int s = shards[j];

				points[j] = points[j - 1], shards[j] = shards[j - 1];
				points[j - 1] = p, shards[j - 1] = s;
			}
		r = (shard_ring_t){.points = points, .shards = shards, .n = n};
		assert_int_equal(shard_ring_index(&r), 0);
		assert_true(((size_t)1 << r.bits) >= 2 * (size_t)n);
		for (int i = 0; i < n; i++) {
			uint64_t probes[] = {points[i], points[i] - 1, points[i] + 1, 0,
			                     UINT64_MAX};

			for (size_t k = 0; k < sizeof probes / sizeof *probes; k++)
				assert_int_equal(shard_ring_lookup(&r, probes[k]),
				                 ring_lower_bound(&r, probes[k]));
		}
		for (int k = 0; k < 2000; k++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			assert_int_equal(shard_ring_lookup(&r, x), ring_lower_bound(&r, x));
		}
		free(r.start);
	}
}

static void test_ring_lookup_of_each_point_is_its_shard(void **state)
{
	shard_ring_t r;
	assert_int_equal(shard_ring_build(&r, three_shards, 3, 256), 0);
	for (int i = 0; i < r.n; i++) {
		assert_int_equal(shard_ring_lookup(&r, r.points[i]), r.shards[i]);
		if (i + 1 < r.n && r.points[i] + 1 < r.points[i + 1])
			assert_int_equal(shard_ring_lookup(&r, r.points[i] + 1), r.shards[i + 1]);
	}
	assert_int_equal(shard_ring_lookup(&r, r.points[r.n - 1] + 1), r.shards[0]);
	shard_ring_free(&r);
}

static void test_ring_build_rejects_bad_shards_and_vnodes(void **state)
{
	shard_ring_t r;
	int bad_low[] = {0, -1}, bad_high[] = {SHARD_MAX};
	assert_int_equal(shard_ring_build(&r, three_shards, 3, 0), -1);
	assert_int_equal(shard_ring_build(&r, bad_low, 2, 8), -1);
	assert_int_equal(shard_ring_build(&r, bad_high, 1, 8), -1);
	assert_int_equal(shard_ring_build(&r, NULL, 0, 8), 0);
	assert_int_equal(shard_ring_lookup(&r, 42), -1);
	shard_ring_free(&r);
}

/*
 * 1,000,000 consecutive bigint keys over 3 shards with 256 vnodes: each
 * shard gets 1/3 within a relative tolerance of 10%, i.e. between 30.0%
 * and 36.7% of the keys.
 */
static void test_ring_balances_consecutive_bigint_keys_within_ten_percent(void **state)
{
	enum { N = 1000000 };
	shard_ring_t r;
	int count[3] = {0};
	assert_int_equal(shard_ring_build(&r, three_shards, 3, 256), 0);
	for (int64_t v = 1; v <= N; v++) {
		shard_key_t k = key_int(v);
		int s = shard_ring_lookup(&r, shard_key_hash(&k));
		assert_true(s >= 0 && s < 3);
		count[s]++;
	}
	for (int s = 0; s < 3; s++) {
		double share = (double)count[s] / N;
		if (share < (1.0 / 3) * 0.9 || share > (1.0 / 3) * 1.1)
			fail_msg("shard %d holds %.4f of the keys (expected 1/3 +- 10%%)", s,
			         share);
	}
	shard_ring_free(&r);
}

/*
 * Consistent hashing: adding shard 3 moves about 1/4 of the keys (between
 * 0.20 and 0.30 of them), and every key that moves goes to the new shard.
 */
static void test_adding_a_shard_moves_a_quarter_of_keys_all_to_it(void **state)
{
	enum { N = 1000000 };
	static const int four[] = {0, 1, 2, 3};
	shard_ring_t r3, r4;
	int moved = 0;
	assert_int_equal(shard_ring_build(&r3, three_shards, 3, 256), 0);
	assert_int_equal(shard_ring_build(&r4, four, 4, 256), 0);
	for (int64_t v = 1; v <= N; v++) {
		shard_key_t k = key_int(v);
		uint64_t h = shard_key_hash(&k);
		int before = shard_ring_lookup(&r3, h), after = shard_ring_lookup(&r4, h);
		if (before == after)
			continue;
		if (after != 3)
			fail_msg("key %lld moved from shard %d to %d, not to the new shard 3",
			         (long long)v, before, after);
		moved++;
	}
	double share = (double)moved / N;
	if (share < 0.20 || share > 0.30)
		fail_msg("%.4f of the keys moved (expected between 0.20 and 0.30)", share);
	shard_ring_free(&r3);
	shard_ring_free(&r4);
}

/* ------------------------------------------------------------------------ */
/* Every spelling of a value is one key                                      */
/* ------------------------------------------------------------------------ */

static void test_every_spelling_of_bigint_42_is_one_key_on_one_shard(void **state)
{
	static const uint8_t i2[2] = {0, 42}, i4[4] = {0, 0, 0, 42},
	                     i8[8] = {0, 0, 0, 0, 0, 0, 0, 42};
	static const char *texts[] = {"42", " 42 ", "+42", "042", "\t42\r\n", "  +0000000042"};
	shard_key_t want = key_int(42);
	shard_key_t got[COUNT(texts) + 9];
	size_t n = 0;

	for (size_t i = 0; i < COUNT(texts); i++)
		got[n++] = key_text(CFG_KEY_BIGINT, texts[i]);
	got[n++] = key_bin(CFG_KEY_BIGINT, SHARD_OID_INT2, i2, 2);
	got[n++] = key_bin(CFG_KEY_BIGINT, SHARD_OID_INT4, i4, 4);
	got[n++] = key_bin(CFG_KEY_BIGINT, SHARD_OID_INT8, i8, 8);
	got[n++] = key_bin(CFG_KEY_BIGINT, SHARD_OID_UNKNOWN, i2, 2);
	got[n++] = key_bin(CFG_KEY_BIGINT, SHARD_OID_UNKNOWN, i4, 4);
	got[n++] = key_bin(CFG_KEY_BIGINT, SHARD_OID_UNKNOWN, i8, 8);
	got[n++] = key_bin(CFG_KEY_BIGINT, SHARD_OID_TEXT, "42", 2);
	got[n++] = key_bin(CFG_KEY_BIGINT, SHARD_OID_VARCHAR, " 42", 3);
	got[n++] = key_bin(CFG_KEY_BIGINT, SHARD_OID_BPCHAR, "42  ", 4);

	cfg_map_t cfg = hash_cfg(CFG_KEY_BIGINT);
	shard_map_t m;
	build_ok(&m, &cfg);
	int shard = shard_map_lookup(&m, &want);
	assert_true(shard >= 0);
	for (size_t i = 0; i < n; i++) {
		assert_same_key(&got[i], &want);
		assert_int_equal(shard_map_lookup(&m, &got[i]), shard);
	}
	shard_map_free(&m);
}

static void test_binary_integers_are_sign_extended(void **state)
{
	static const uint8_t i2[2] = {0xff, 0xd6}, i4[4] = {0xff, 0xff, 0xff, 0xd6},
	                     i8[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xd6};
	static const uint8_t i4min[4] = {0x80, 0, 0, 0}, i2max[2] = {0x7f, 0xff};
	shard_key_t want = key_int(-42), k;

	k = key_bin(CFG_KEY_BIGINT, SHARD_OID_INT2, i2, 2);
	assert_same_key(&k, &want);
	k = key_bin(CFG_KEY_BIGINT, SHARD_OID_INT4, i4, 4);
	assert_same_key(&k, &want);
	k = key_bin(CFG_KEY_BIGINT, SHARD_OID_INT8, i8, 8);
	assert_same_key(&k, &want);
	k = key_text(CFG_KEY_BIGINT, "-42");
	assert_same_key(&k, &want);

	k = key_bin(CFG_KEY_BIGINT, SHARD_OID_INT4, i4min, 4);
	assert_true(k.i == INT32_MIN);
	k = key_bin(CFG_KEY_BIGINT, SHARD_OID_INT2, i2max, 2);
	assert_true(k.i == INT16_MAX);
}

static void test_bigint_text_accepts_the_int8_extremes(void **state)
{
	shard_key_t k = key_text(CFG_KEY_BIGINT, "-9223372036854775808");
	assert_true(k.i == INT64_MIN);
	k = key_text(CFG_KEY_BIGINT, "9223372036854775807");
	assert_true(k.i == INT64_MAX);
	k = key_text(CFG_KEY_BIGINT, "+9223372036854775807");
	assert_true(k.i == INT64_MAX);
	k = key_text(CFG_KEY_BIGINT, "-0");
	shard_key_t zero = key_int(0);
	assert_same_key(&k, &zero);
}

static void test_every_spelling_of_a_uuid_is_one_key(void **state)
{
	static const char *spellings[] = {
	    "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
	    "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
	    "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
	    "a0eebc999c0b4ef8bb6d6bb9bd380a11",
	    "{A0eeBC999c0b4EF8bb6d6bb9bd380a11}",
	    "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11", /* PostgreSQL: a hyphen after any 4 */
	    "a0eebc999c0b-4ef8bb6d6bb9bd38-0a11",
	};
	static const uint8_t raw[16] = {0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8,
	                                0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38, 0x0a, 0x11};
	shard_key_t want = key_bin(CFG_KEY_UUID, SHARD_OID_UUID, raw, 16);
	cfg_map_t cfg = hash_cfg(CFG_KEY_UUID);
	shard_map_t m;
	build_ok(&m, &cfg);
	int shard = shard_map_lookup(&m, &want);

	for (size_t i = 0; i < COUNT(spellings); i++) {
		shard_key_t k = key_text(CFG_KEY_UUID, spellings[i]);
		assert_same_key(&k, &want);
		assert_int_equal(shard_map_lookup(&m, &k), shard);
	}
	shard_key_t k = key_bin(CFG_KEY_UUID, SHARD_OID_UNKNOWN, raw, 16);
	assert_same_key(&k, &want);
	k = key_bin(CFG_KEY_UUID, SHARD_OID_TEXT, spellings[2], strlen(spellings[2]));
	assert_same_key(&k, &want);
	k = key_bin(CFG_KEY_UUID, SHARD_OID_VARCHAR, spellings[3], strlen(spellings[3]));
	assert_same_key(&k, &want);
	shard_map_free(&m);
}

/* character(n) pads with spaces and PostgreSQL compares it without them */
static void test_bpchar_trailing_spaces_are_not_part_of_the_key(void **state)
{
	shard_key_t want = key_text(CFG_KEY_TEXT, "ab");
	shard_key_t k = key_bin(CFG_KEY_TEXT, SHARD_OID_BPCHAR, "ab  ", 4);
	assert_same_key(&k, &want);
	k = key_bin(CFG_KEY_TEXT, SHARD_OID_BPCHAR, "ab", 2);
	assert_same_key(&k, &want);

	/* all spaces is the empty string; leading spaces stay */
	shard_key_t empty = key_text(CFG_KEY_TEXT, "");
	k = key_bin(CFG_KEY_TEXT, SHARD_OID_BPCHAR, "   ", 3);
	assert_same_key(&k, &empty);
	k = key_bin(CFG_KEY_TEXT, SHARD_OID_BPCHAR, " ab", 3);
	assert_int_equal(k.len, 3);
}

/* text and varchar keep every byte, as PostgreSQL compares them */
static void test_text_keys_are_bytes_as_given(void **state)
{
	shard_key_t ab = key_text(CFG_KEY_TEXT, "ab");
	shard_key_t k = key_bin(CFG_KEY_TEXT, SHARD_OID_TEXT, "ab  ", 4);
	assert_int_equal(k.len, 4);
	assert_int_not_equal(shard_key_compare(&k, &ab), 0);
	k = key_bin(CFG_KEY_TEXT, SHARD_OID_VARCHAR, "ab", 2);
	assert_same_key(&k, &ab);
	k = key_bin(CFG_KEY_TEXT, SHARD_OID_UNKNOWN, "ab", 2);
	assert_same_key(&k, &ab);

	shard_key_t upper = key_text(CFG_KEY_TEXT, "AB");
	assert_int_not_equal(shard_key_compare(&upper, &ab), 0);

	/* the key points at the caller's text, not a copy */
	const char *s = " alice ";
	k = key_text(CFG_KEY_TEXT, s);
	assert_ptr_equal(shard_key_bytes(&k), s);
	assert_int_equal(k.len, 7);
}

/* ------------------------------------------------------------------------ */
/* Invalid inputs                                                            */
/* ------------------------------------------------------------------------ */

static void test_invalid_text_spellings_are_rejected(void **state)
{
	static const struct {
		cfg_key_type_t type;
		const char *s;
		size_t len; /* 0: strlen */
	} bad[] = {
	    {CFG_KEY_BIGINT, "", 0},
	    {CFG_KEY_BIGINT, "   ", 0},
	    {CFG_KEY_BIGINT, "+", 0},
	    {CFG_KEY_BIGINT, "-", 0},
	    {CFG_KEY_BIGINT, "1.0", 0},
	    {CFG_KEY_BIGINT, "1e3", 0},
	    {CFG_KEY_BIGINT, "0x10", 0},
	    {CFG_KEY_BIGINT, "1_000", 0},
	    {CFG_KEY_BIGINT, "4 2", 0},
	    {CFG_KEY_BIGINT, "- 42", 0},
	    {CFG_KEY_BIGINT, "--42", 0},
	    {CFG_KEY_BIGINT, "+-42", 0},
	    {CFG_KEY_BIGINT, "42abc", 0},
	    {CFG_KEY_BIGINT, "abc", 0},
	    {CFG_KEY_BIGINT, "'42'", 0},
	    {CFG_KEY_BIGINT,
	     "4\0"
	     "2",
	     3},
	    {CFG_KEY_BIGINT, "9223372036854775808", 0},
	    {CFG_KEY_BIGINT, "-9223372036854775809", 0},
	    {CFG_KEY_BIGINT, "18446744073709551616", 0},
	    {CFG_KEY_BIGINT, "99999999999999999999999", 0},
	    {CFG_KEY_UUID, "", 0},
	    {CFG_KEY_UUID, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1", 0},   /* 31 digits */
	    {CFG_KEY_UUID, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a111", 0}, /* 33 digits */
	    {CFG_KEY_UUID, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1g", 0},
	    {CFG_KEY_UUID, "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", 0},
	    {CFG_KEY_UUID, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}", 0},
	    {CFG_KEY_UUID, "-a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", 0},
	    {CFG_KEY_UUID, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11-", 0},
	    {CFG_KEY_UUID, "a0eebc99--9c0b-4ef8-bb6d-6bb9bd380a11", 0},
	    {CFG_KEY_UUID, "a0e-ebc99-9c0b-4ef8-bb6d-6bb9bd380a11", 0},
	    {CFG_KEY_UUID, "a0-eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", 0}, /* after 2 digits */
	    {CFG_KEY_UUID, " a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", 0},
	    {CFG_KEY_UUID, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11 ", 0},
	    {CFG_KEY_UUID, "{{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}}", 0},
	    {CFG_KEY_UUID,
	     "a0eebc99-9c0b-4ef8-bb6d-6bb9bd38\0"
	     "0a11",
	     36},
	};
	for (size_t i = 0; i < COUNT(bad); i++) {
		shard_key_t k;
		size_t len = bad[i].len ? bad[i].len : strlen(bad[i].s);
		if (shard_key_from_text(bad[i].type, bad[i].s, len, &k) != -1)
			fail_msg("'%s' was accepted as a %s key", bad[i].s,
			         bad[i].type == CFG_KEY_BIGINT ? "bigint" : "uuid");
	}
}

static void test_invalid_binary_parameters_are_rejected(void **state)
{
	static const uint8_t bytes[17] = {0};
	static const struct {
		cfg_key_type_t type;
		uint32_t oid;
		size_t len;
	} bad[] = {
	    {CFG_KEY_BIGINT, SHARD_OID_INT2, 4},     {CFG_KEY_BIGINT, SHARD_OID_INT4, 8},
	    {CFG_KEY_BIGINT, SHARD_OID_INT8, 4},     {CFG_KEY_BIGINT, SHARD_OID_INT8, 0},
	    {CFG_KEY_BIGINT, SHARD_OID_UNKNOWN, 3},  {CFG_KEY_BIGINT, SHARD_OID_UNKNOWN, 16},
	    {CFG_KEY_BIGINT, SHARD_OID_UNKNOWN, 0},  {CFG_KEY_BIGINT, SHARD_OID_UUID, 16},
	    {CFG_KEY_BIGINT, 1700 /* numeric */, 8}, {CFG_KEY_BIGINT, SHARD_OID_TEXT, 0},
	    {CFG_KEY_UUID, SHARD_OID_UUID, 15},      {CFG_KEY_UUID, SHARD_OID_UUID, 17},
	    {CFG_KEY_UUID, SHARD_OID_UNKNOWN, 8},    {CFG_KEY_UUID, SHARD_OID_INT8, 8},
	    {CFG_KEY_UUID, SHARD_OID_TEXT, 16},      {CFG_KEY_TEXT, SHARD_OID_INT8, 8},
	    {CFG_KEY_TEXT, SHARD_OID_INT4, 4},       {CFG_KEY_TEXT, SHARD_OID_UUID, 16},
	};
	for (size_t i = 0; i < COUNT(bad); i++) {
		shard_key_t k;
		if (shard_key_from_binary(bad[i].type, bad[i].oid, bytes, bad[i].len, &k) != -1)
			fail_msg("case %zu: oid %u, %zu bytes accepted for key type %d", i,
			         bad[i].oid, bad[i].len, bad[i].type);
	}
}

/* ------------------------------------------------------------------------ */
/* Comparison                                                                */
/* ------------------------------------------------------------------------ */

static void test_bigint_keys_compare_as_integers_not_bytes(void **state)
{
	shard_key_t m1 = key_int(-1), p1 = key_int(1), min = key_int(INT64_MIN),
	            max = key_int(INT64_MAX);
	assert_true(shard_key_compare(&m1, &p1) < 0);
	assert_true(shard_key_compare(&p1, &m1) > 0);
	assert_true(shard_key_compare(&min, &m1) < 0);
	assert_true(shard_key_compare(&max, &p1) > 0);
}

static void test_text_keys_compare_bytewise_with_prefix_first(void **state)
{
	shard_key_t a = key_text(CFG_KEY_TEXT, "a"), ab = key_text(CFG_KEY_TEXT, "ab"),
	            b = key_text(CFG_KEY_TEXT, "b"), Z = key_text(CFG_KEY_TEXT, "Z"),
	            e = key_text(CFG_KEY_TEXT, ""), u = key_text(CFG_KEY_TEXT, "\xc3\xa9");
	assert_true(shard_key_compare(&a, &ab) < 0);
	assert_true(shard_key_compare(&ab, &b) < 0);
	assert_true(shard_key_compare(&Z, &a) < 0); /* bytes, not a collation */
	assert_true(shard_key_compare(&e, &a) < 0);
	assert_true(shard_key_compare(&b, &u) < 0); /* unsigned bytes: UTF-8 after ASCII */
}

/* ------------------------------------------------------------------------ */
/* Range maps                                                                */
/* ------------------------------------------------------------------------ */

/* [-, -100) -> 0, [-100, 100) -> 1, gap, [200, 1000000) -> 2, [1000000, -) -> 3; out of order */
static cfg_range_t bigint_ranges[] = {
    {.lo = "1000000", .hi = NULL, .shard = 3, .line = 4},
    {.lo = "-100", .hi = "100", .shard = 1, .line = 2},
    {.lo = NULL, .hi = "-100", .shard = 0, .line = 1},
    {.lo = "200", .hi = "1000000", .shard = 2, .line = 3},
};

static void test_range_map_lo_inclusive_hi_exclusive_with_gaps(void **state)
{
	static const struct {
		int64_t v;
		int shard;
	} cases[] = {
	    {INT64_MIN, 0}, {-101, 0},    {-100, 1},      {0, 1},   {99, 1},
	    {100, -1},      {150, -1},    {199, -1},      {200, 2}, {999999, 2},
	    {1000000, 3},   {1000001, 3}, {INT64_MAX, 3},
	};
	cfg_map_t cfg = range_cfg(CFG_KEY_BIGINT, bigint_ranges, (int)COUNT(bigint_ranges));
	shard_map_t m;
	build_ok(&m, &cfg);
	assert_int_equal(m.n_ranges, 4);
	assert_true(m.ranges[0].lo_unbounded);
	assert_true(m.ranges[3].hi_unbounded);
	assert_int_equal(shard_set_count(&m.all), 4);
	for (size_t i = 0; i < COUNT(cases); i++) {
		shard_key_t k = key_int(cases[i].v);
		int got = shard_map_lookup(&m, &k);
		if (got != cases[i].shard)
			fail_msg("key %lld: shard %d (expected %d)", (long long)cases[i].v, got,
			         cases[i].shard);
	}
	shard_map_free(&m);
}

static void test_range_map_from_a_config_file(void **state)
{
	static const char ini[] = "[shard.0]\nprimary = host=h0\n"
	                          "[shard.1]\nprimary = host=h1\n"
	                          "[map.regions]\nkind = range\nkey = bigint\n"
	                          "range = 1000000 - 1\n"
	                          "range = - +1000000 0\n";
	cfg_t *cfg;
	char err[256];
	if (cfg_load_string(ini, "test.ini", &cfg, err, sizeof err) != 0)
		fail_msg("%s", err);
	shard_map_t m;
	build_ok(&m, cfg_find_map(cfg, "regions"));
	shard_key_t k = key_text(CFG_KEY_BIGINT, "999999");
	assert_int_equal(shard_map_lookup(&m, &k), 0);
	k = key_text(CFG_KEY_BIGINT, " 1000000");
	assert_int_equal(shard_map_lookup(&m, &k), 1);
	shard_map_free(&m);
	cfg_free(cfg);
}

static void test_text_range_map_compares_bytes(void **state)
{
	char lo_m[] = "m", hi_t[] = "t"; /* the map keeps its own copies */
	cfg_range_t ranges[] = {
	    {.lo = NULL, .hi = lo_m, .shard = 0},
	    {.lo = lo_m, .hi = hi_t, .shard = 1},
	};
	static const struct {
		const char *s;
		int shard;
	} cases[] = {
	    {"", 0},   {"A", 0},   {"Zebra", 0}, {"lzzz", 0},      {"m", 1},
	    {"ma", 1}, {"szz", 1}, {"t", -1},    {"\xc3\xa9", -1},
	};
	cfg_map_t cfg = range_cfg(CFG_KEY_TEXT, ranges, 2);
	shard_map_t m;
	build_ok(&m, &cfg);
	lo_m[0] = hi_t[0] = 'x';
	for (size_t i = 0; i < COUNT(cases); i++) {
		shard_key_t k = key_text(CFG_KEY_TEXT, cases[i].s);
		int got = shard_map_lookup(&m, &k);
		if (got != cases[i].shard)
			fail_msg("key '%s': shard %d (expected %d)", cases[i].s, got,
			         cases[i].shard);
	}
	shard_map_free(&m);
}

static void test_uuid_range_map_matches_any_spelling(void **state)
{
	cfg_range_t ranges[] = {
	    {.lo = NULL, .hi = "80000000-0000-0000-0000-000000000000", .shard = 0},
	    {.lo = "80000000-0000-0000-0000-000000000000", .hi = NULL, .shard = 1},
	};
	cfg_map_t cfg = range_cfg(CFG_KEY_UUID, ranges, 2);
	shard_map_t m;
	build_ok(&m, &cfg);
	shard_key_t k = key_text(CFG_KEY_UUID, "7FFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF");
	assert_int_equal(shard_map_lookup(&m, &k), 0);
	k = key_text(CFG_KEY_UUID, "{80000000000000000000000000000000}");
	assert_int_equal(shard_map_lookup(&m, &k), 1);
	k = key_text(CFG_KEY_UUID, "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11");
	assert_int_equal(shard_map_lookup(&m, &k), 1);
	shard_map_free(&m);
}

/* An interval and the shards it must reach. NULL bound: unbounded. */
typedef struct range_case {
	const char *lo;
	bool lo_incl;
	const char *hi;
	bool hi_incl;
	const char *want; /* shard ids as digits, e.g. "01"; "" for none */
} range_case_t;

static void check_range_cases(const shard_map_t *m, const range_case_t *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const range_case_t *c = &cases[i];
		shard_key_t lo, hi;
		memset(&lo, 0, sizeof lo);
		memset(&hi, 0, sizeof hi);
		if (c->lo)
			lo = key_text(m->cfg->key, c->lo);
		if (c->hi)
			hi = key_text(m->cfg->key, c->hi);
		shard_set_t got, want;
		shard_set_clear(&got);
		shard_set_clear(&want);
		for (const char *p = c->want; *p; p++)
			shard_set_add(&want, *p - '0');
		shard_map_lookup_range(m, c->lo ? &lo : NULL, c->lo_incl, c->hi ? &hi : NULL,
		                       c->hi_incl, &got);
		if (memcmp(&got, &want, sizeof got) != 0) {
			char buf[12] = "";
			size_t len = 0;
			for (int s = 0; s < 10; s++) {
				if (shard_set_has(&got, s))
					buf[len++] = (char)('0' + s);
			}
			fail_msg("%s%s, %s%s: shards {%s} (expected {%s})", c->lo_incl ? "[" : "(",
			         c->lo ? c->lo : "-", c->hi ? c->hi : "-", c->hi_incl ? "]" : ")",
			         buf, c->want);
		}
	}
}

/* [-, 1000000) -> 0 and [1000000, -) -> 1: every inclusivity at the boundary */
static void test_lookup_range_at_a_bigint_boundary(void **state)
{
	cfg_range_t ranges[] = {
	    {.lo = NULL, .hi = "1000000", .shard = 0},
	    {.lo = "1000000", .hi = NULL, .shard = 1},
	};
	static const range_case_t cases[] = {
	    {NULL, false, "1000000", false, "0"},    /* key < 1000000 */
	    {NULL, false, "1000000", true, "01"},    /* key <= 1000000 */
	    {NULL, false, "999999", true, "0"},      /* key <= 999999 */
	    {"1000000", true, NULL, false, "1"},     /* key >= 1000000 */
	    {"1000000", false, NULL, false, "1"},    /* key > 1000000 */
	    {"999999", false, NULL, false, "1"},     /* key > 999999 */
	    {"999999", true, NULL, false, "01"},     /* key >= 999999 */
	    {"999999", true, "1000000", false, "0"}, /* [999999, 1000000) */
	    {"999999", false, "1000000", true, "1"}, /* (999999, 1000000] */
	    {"999999", true, "1000000", true, "01"}, /* [999999, 1000000] */
	    {"999999", false, "1000000", false, ""}, /* (999999, 1000000): no integer */
	    {"1000000", true, "1000000", true, "1"}, /* key = 1000000 */
	    {"1000000", false, "1000000", true, ""}, /* empty */
	    {"5", true, "3", true, ""},              /* lo above hi */
	    {NULL, false, NULL, false, "01"},
	    {"9223372036854775807", false, NULL, false, ""},  /* key > INT64_MAX */
	    {NULL, false, "-9223372036854775808", false, ""}, /* key < INT64_MIN */
	    {"9223372036854775807", true, NULL, false, "1"},
	    {NULL, false, "-9223372036854775808", true, "0"},
	};
	cfg_map_t cfg = range_cfg(CFG_KEY_BIGINT, ranges, 2);
	shard_map_t m;
	build_ok(&m, &cfg);
	check_range_cases(&m, cases, COUNT(cases));
	shard_map_free(&m);
}

static void test_lookup_range_skips_gaps_and_spans_ranges(void **state)
{
	static const range_case_t cases[] = {
	    {"100", true, "199", true, ""},  /* inside the gap [100, 200) */
	    {"100", true, "200", false, ""}, /* up to the next range, excluded */
	    {"100", true, "200", true, "2"}, /* ... included */
	    {"99", true, "200", false, "1"}, /* the end of [-100, 100) */
	    {"99", false, "200", false, ""}, /* (99, 200) holds only gap keys */
	    {"-100", false, "1000000", true, "123"}, {"-101", true, "-100", false, "0"},
	    {NULL, false, "0", true, "01"},          {"0", true, NULL, false, "123"},
	};
	cfg_map_t cfg = range_cfg(CFG_KEY_BIGINT, bigint_ranges, (int)COUNT(bigint_ranges));
	shard_map_t m;
	build_ok(&m, &cfg);
	check_range_cases(&m, cases, COUNT(cases));
	shard_map_free(&m);
}

/* [-, "m") -> 0, ["m", -) -> 1 */
static void test_lookup_range_at_a_text_boundary(void **state)
{
	cfg_range_t ranges[] = {
	    {.lo = NULL, .hi = "m", .shard = 0},
	    {.lo = "m", .hi = NULL, .shard = 1},
	};
	static const range_case_t cases[] = {
	    {NULL, false, "m", false, "0"},  {NULL, false, "m", true, "01"},
	    {"m", true, NULL, false, "1"},   {"m", false, NULL, false, "1"},
	    {"l", false, NULL, false, "01"}, /* "la" lies between */
	    {"l", true, "m", false, "0"},    {"m", true, "m", true, "1"},
	    {"m", false, "m", true, ""},     {"n", true, "b", true, ""},
	    {"", true, "a", true, "0"},      {"ma", true, "z", false, "1"},
	};
	cfg_map_t cfg = range_cfg(CFG_KEY_TEXT, ranges, 2);
	shard_map_t m;
	build_ok(&m, &cfg);
	check_range_cases(&m, cases, COUNT(cases));
	shard_map_free(&m);
}

static void test_lookup_range_at_a_uuid_boundary(void **state)
{
	cfg_range_t ranges[] = {
	    {.lo = NULL, .hi = "80000000-0000-0000-0000-000000000000", .shard = 0},
	    {.lo = "80000000-0000-0000-0000-000000000000", .hi = NULL, .shard = 1},
	};
	static const range_case_t cases[] = {
	    {NULL, false, "80000000-0000-0000-0000-000000000000", false, "0"},
	    {NULL, false, "80000000000000000000000000000000", true, "01"},
	    {"{80000000-0000-0000-0000-000000000000}", false, NULL, false, "1"},
	    {"7fffffff-ffff-ffff-ffff-ffffffffffff", true, NULL, false, "01"},
	    {"7FFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF", true, "7fffffff-ffff-ffff-ffff-ffffffffffff",
	     true, "0"},
	};
	cfg_map_t cfg = range_cfg(CFG_KEY_UUID, ranges, 2);
	shard_map_t m;
	build_ok(&m, &cfg);
	check_range_cases(&m, cases, COUNT(cases));
	shard_map_free(&m);
}

static void test_lookup_range_on_a_hash_map_is_every_shard(void **state)
{
	cfg_map_t cfg = hash_cfg(CFG_KEY_BIGINT);
	shard_map_t m;
	build_ok(&m, &cfg);
	shard_key_t lo = key_int(1), hi = key_int(2);
	shard_set_t got;
	shard_set_clear(&got);
	shard_set_add(&got, 9); /* added to, not replaced */
	shard_map_lookup_range(&m, &lo, true, &hi, true, &got);
	assert_int_equal(shard_set_count(&got), 4);
	assert_true(shard_set_has(&got, 0) && shard_set_has(&got, 1) && shard_set_has(&got, 2));
	shard_map_free(&m);
}

static void test_hash_map_lookup_is_the_ring_of_its_shards(void **state)
{
	static const int shards[] = {2, 5};
	cfg_map_t cfg = {.name = "users",
	                 .kind = CFG_MAP_HASH,
	                 .key = CFG_KEY_BIGINT,
	                 .shards = (int *)shards,
	                 .n_shards = 2,
	                 .vnodes = 16};
	shard_map_t m;
	build_ok(&m, &cfg);
	assert_int_equal(m.ring.n, 32);
	assert_int_equal(shard_set_count(&m.all), 2);
	assert_true(shard_set_has(&m.all, 2) && shard_set_has(&m.all, 5));
	for (int64_t v = -50; v < 50; v++) {
		shard_key_t k = key_int(v * 7919);
		int s = shard_map_lookup(&m, &k);
		assert_true(s == 2 || s == 5);
		assert_int_equal(s, shard_ring_lookup(&m.ring, shard_key_hash(&k)));
	}
	/* a key of another type is never placed */
	shard_key_t t = key_text(CFG_KEY_TEXT, "42");
	assert_int_equal(shard_map_lookup(&m, &t), -1);
	shard_map_free(&m);
}

/* ------------------------------------------------------------------------ */
/* Building maps: errors                                                     */
/* ------------------------------------------------------------------------ */

static void expect_build_error(cfg_key_type_t key, cfg_range_t *ranges, int n, const char *want)
{
	cfg_map_t cfg = range_cfg(key, ranges, n);
	shard_map_t m;
	char err[256] = "";
	assert_int_equal(shard_map_build(&m, &cfg, err, sizeof err), -1);
	if (strstr(err, want) == NULL || strstr(err, "regions") == NULL)
		fail_msg("error '%s' does not name the map and '%s'", err, want);
	shard_map_free(&m); /* harmless after a failed build */
}

static void test_build_rejects_bounds_that_are_not_keys(void **state)
{
	cfg_range_t a[] = {{.lo = NULL, .hi = "12x", .shard = 0, .line = 7}};
	expect_build_error(CFG_KEY_BIGINT, a, 1, "'12x'");
	cfg_range_t b[] = {{.lo = NULL, .hi = "100", .shard = 0},
	                   {.lo = "100", .hi = "1.5e3", .shard = 1}};
	expect_build_error(CFG_KEY_BIGINT, b, 2, "'1.5e3'");
	cfg_range_t c[] = {{.lo = "not-a-uuid", .hi = NULL, .shard = 0}};
	expect_build_error(CFG_KEY_UUID, c, 1, "'not-a-uuid'");
	cfg_range_t d[] = {{.lo = "9223372036854775808", .hi = NULL, .shard = 0}};
	expect_build_error(CFG_KEY_BIGINT, d, 1, "'9223372036854775808'");
}

static void test_build_rejects_inverted_overlapping_and_bad_shards(void **state)
{
	cfg_range_t inverted[] = {{.lo = "10", .hi = "10", .shard = 0}};
	expect_build_error(CFG_KEY_BIGINT, inverted, 1, "not below");
	char lo_a[] = "a", hi_c[] = "c", lo_b[] = "b";
	cfg_range_t overlap[] = {{.lo = lo_a, .hi = hi_c, .shard = 0},
	                         {.lo = lo_b, .hi = NULL, .shard = 1}};
	expect_build_error(CFG_KEY_TEXT, overlap, 2, "overlap");
	cfg_range_t two_unbounded[] = {{.lo = NULL, .hi = NULL, .shard = 0},
	                               {.lo = NULL, .hi = "5", .shard = 1}};
	expect_build_error(CFG_KEY_BIGINT, two_unbounded, 2, "overlap");
	cfg_range_t bad_shard[] = {{.lo = NULL, .hi = NULL, .shard = SHARD_MAX}};
	expect_build_error(CFG_KEY_BIGINT, bad_shard, 1, "shard");

	cfg_map_t hash = hash_cfg(CFG_KEY_BIGINT);
	hash.vnodes = 0;
	shard_map_t m;
	char err[256] = "";
	assert_int_equal(shard_map_build(&m, &hash, err, sizeof err), -1);
	assert_non_null(strstr(err, "users"));
}

static void test_key_text_is_one_spelling_per_key(void **state)
{
	shard_key_t k;
	char buf[64], small[8];
	const char *uuid = "{A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11}";
	const char *long_text = "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"; /* four two-byte letters */

	(void)state;
	assert_int_equal(shard_key_from_text(CFG_KEY_BIGINT, " -0042", 6, &k), 0);
	shard_key_text(&k, buf, sizeof buf);
	assert_string_equal(buf, "-42");
	assert_int_equal(shard_key_from_text(CFG_KEY_UUID, uuid, strlen(uuid), &k), 0);
	shard_key_text(&k, buf, sizeof buf);
	assert_string_equal(buf, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
	assert_int_equal(shard_key_from_text(CFG_KEY_TEXT, "abc", 3, &k), 0);
	shard_key_text(&k, buf, sizeof buf);
	assert_string_equal(buf, "abc");
	/* cut to fit, never inside a character */
	assert_int_equal(shard_key_from_text(CFG_KEY_TEXT, long_text, strlen(long_text), &k), 0);
	shard_key_text(&k, small, sizeof small);
	assert_string_equal(small, "\xc3\xa9\xc3\xa9...");
	shard_key_text(&k, small, 6);
	assert_string_equal(small, "\xc3\xa9...");
	/* bigint keys at both ends of their range, and cut as snprintf cuts */
	assert_int_equal(shard_key_from_text(CFG_KEY_BIGINT, "-9223372036854775808", 20, &k), 0);
	shard_key_text(&k, buf, sizeof buf);
	assert_string_equal(buf, "-9223372036854775808");
	assert_int_equal(shard_key_from_text(CFG_KEY_BIGINT, "9223372036854775807", 19, &k), 0);
	shard_key_text(&k, buf, sizeof buf);
	assert_string_equal(buf, "9223372036854775807");
	shard_key_text(&k, small, sizeof small);
	assert_string_equal(small, "9223372");
	assert_int_equal(shard_key_from_text(CFG_KEY_BIGINT, "0", 1, &k), 0);
	shard_key_text(&k, buf, sizeof buf);
	assert_string_equal(buf, "0");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_shard_set_add_has_count_first),
	    cmocka_unit_test(test_key_text_is_one_spelling_per_key),
	    cmocka_unit_test(test_shard_set_ignores_ids_outside_range),
	    cmocka_unit_test(test_shard_set_union_and_intersect),
	    cmocka_unit_test(test_bigint_key_bytes_are_big_endian_twos_complement),
	    cmocka_unit_test(test_hash_of_bigint_keys_is_pinned),
	    cmocka_unit_test(test_hash_of_text_and_uuid_keys_is_pinned),
	    cmocka_unit_test(test_ring_points_are_pinned),
	    cmocka_unit_test(test_ring_placement_of_keys_is_pinned),
	    cmocka_unit_test(test_ring_does_not_depend_on_shard_order_in_config),
	    cmocka_unit_test(test_ring_lookup_takes_first_point_at_or_above_and_wraps),
	    cmocka_unit_test(test_ring_index_finds_what_a_search_of_the_ring_finds),
	    cmocka_unit_test(test_ring_lookup_of_each_point_is_its_shard),
	    cmocka_unit_test(test_ring_build_rejects_bad_shards_and_vnodes),
	    cmocka_unit_test(test_ring_balances_consecutive_bigint_keys_within_ten_percent),
	    cmocka_unit_test(test_adding_a_shard_moves_a_quarter_of_keys_all_to_it),
	    cmocka_unit_test(test_every_spelling_of_bigint_42_is_one_key_on_one_shard),
	    cmocka_unit_test(test_binary_integers_are_sign_extended),
	    cmocka_unit_test(test_bigint_text_accepts_the_int8_extremes),
	    cmocka_unit_test(test_every_spelling_of_a_uuid_is_one_key),
	    cmocka_unit_test(test_bpchar_trailing_spaces_are_not_part_of_the_key),
	    cmocka_unit_test(test_text_keys_are_bytes_as_given),
	    cmocka_unit_test(test_invalid_text_spellings_are_rejected),
	    cmocka_unit_test(test_invalid_binary_parameters_are_rejected),
	    cmocka_unit_test(test_bigint_keys_compare_as_integers_not_bytes),
	    cmocka_unit_test(test_text_keys_compare_bytewise_with_prefix_first),
	    cmocka_unit_test(test_range_map_lo_inclusive_hi_exclusive_with_gaps),
	    cmocka_unit_test(test_range_map_from_a_config_file),
	    cmocka_unit_test(test_text_range_map_compares_bytes),
	    cmocka_unit_test(test_uuid_range_map_matches_any_spelling),
	    cmocka_unit_test(test_lookup_range_at_a_bigint_boundary),
	    cmocka_unit_test(test_lookup_range_skips_gaps_and_spans_ranges),
	    cmocka_unit_test(test_lookup_range_at_a_text_boundary),
	    cmocka_unit_test(test_lookup_range_at_a_uuid_boundary),
	    cmocka_unit_test(test_lookup_range_on_a_hash_map_is_every_shard),
	    cmocka_unit_test(test_hash_map_lookup_is_the_ring_of_its_shards),
	    cmocka_unit_test(test_build_rejects_bounds_that_are_not_keys),
	    cmocka_unit_test(test_build_rejects_inverted_overlapping_and_bad_shards),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
