/*
 * shardmap.c — key normalization, the hash, the consistent-hash ring and
 * range maps (the format is specified in shardmap.h and README.md,
 * "Placement").
 *
 * Everything a key can be spelled as is reduced here to one shard_key_t, so
 * that the rest of the router never has to care whether 42 came as a literal,
 * a text parameter or a binary int4. Once normalized, placement depends on
 * the key bytes only: XXH64 of them on hash maps, their order on range maps.
 *
 * Pure: no I/O, no globals.
 */
#include "router/shardmap.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/hexdigit.h"
#include "router/numtext.h"

#include <xxhash.h>

/* ------------------------------------------------------------------------ */
/* Shard sets                                                                */
/* ------------------------------------------------------------------------ */

static bool shard_in_range(int shard)
{
	return shard >= 0 && shard < SHARD_MAX;
}

void shard_set_clear(shard_set_t *s)
{
	memset(s, 0, sizeof *s);
}

void shard_set_add(shard_set_t *s, int shard)
{
	if (shard_in_range(shard))
		s->bits[shard / 64] |= UINT64_C(1) << (shard % 64);
}

bool shard_set_has(const shard_set_t *s, int shard)
{
	return shard_in_range(shard) && (s->bits[shard / 64] >> (shard % 64) & 1) != 0;
}

int shard_set_count(const shard_set_t *s)
{
	int n = 0;

	/*
	 * One step per member, not a popcount: without -mpopcnt that is a libgcc
	 * call per word, and the router counts a set of one or two shards for
	 * every statement.
	 */
	for (int i = 0; i < SHARD_MAX / 64; i++)
		for (uint64_t w = s->bits[i]; w != 0; w &= w - 1)
			n++;
	return n;
}

int shard_set_first(const shard_set_t *s)
{
	for (int i = 0; i < SHARD_MAX / 64; i++) {
		if (s->bits[i] != 0)
			return i * 64 + __builtin_ctzll(s->bits[i]);
	}
	return -1;
}

void shard_set_union(shard_set_t *into, const shard_set_t *other)
{
	for (int i = 0; i < SHARD_MAX / 64; i++)
		into->bits[i] |= other->bits[i];
}

void shard_set_intersect(shard_set_t *into, const shard_set_t *other)
{
	for (int i = 0; i < SHARD_MAX / 64; i++)
		into->bits[i] &= other->bits[i];
}

/* ------------------------------------------------------------------------ */
/* Keys                                                                      */
/* ------------------------------------------------------------------------ */

const uint8_t *shard_key_bytes(const shard_key_t *k)
{
	return k->type == CFG_KEY_TEXT ? k->ext : k->bytes;
}

int shard_key_from_int(int64_t v, shard_key_t *out)
{
	uint64_t u = (uint64_t)v;

	memset(out, 0, sizeof *out);
	out->type = CFG_KEY_BIGINT;
	out->i = v;
	for (int b = 7; b >= 0; b--) {
		out->bytes[b] = (uint8_t)(u & 0xff);
		u >>= 8;
	}
	out->len = 8;
	return 0;
}

/* The whitespace PostgreSQL's int8in skips around a number (C isspace). */
static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/*
 * Decimal only: PostgreSQL 16 also reads 0x10, 0o17, 0b101 and 1_000 as
 * int8, but those spellings are rare in keys; refusing them only means the
 * caller cannot route by the value, never that it routes it wrongly.
 */
static int parse_bigint(const char *s, size_t len, int64_t *out)
{
	size_t i = 0;
	bool neg = false;
	uint64_t limit, v = 0;

	while (i < len && is_space(s[i]))
		i++;
	if (i < len && (s[i] == '+' || s[i] == '-'))
		neg = s[i++] == '-';
	/* accumulate the magnitude unsigned: -9223372036854775808 fits, its negation does not */
	limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	size_t digits = i;
	while (i < len && s[i] >= '0' && s[i] <= '9') {
		unsigned d = (unsigned)(s[i] - '0');
		/* 18 digits stay below the limit: the division only after them */
		if (i - digits >= 18 && v > (limit - d) / 10)
			return -1;
		v = v * 10 + d;
		i++;
	}
	if (i == digits)
		return -1;
	while (i < len && is_space(s[i]))
		i++;
	if (i != len)
		return -1;
	*out = neg ? (int64_t)(0 - v) : (int64_t)v;
	return 0;
}

/*
 * PostgreSQL's uuid_in (string_to_uuid): an optional '{' that must then be
 * closed by '}', 32 hex digits in any case, and at most one hyphen after
 * each group of four digits but not after the last. No spaces.
 */
static int parse_uuid(const char *s, size_t len, uint8_t out[16])
{
	size_t i = 0;
	bool braces = false;

	if (i < len && s[i] == '{') {
		braces = true;
		i++;
	}
	for (int b = 0; b < 16; b++) {
		if (len - i < 2)
			return -1;
		int hi = hex_value(s[i]), lo = hex_value(s[i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[b] = (uint8_t)(hi << 4 | lo);
		i += 2;
		if (i < len && s[i] == '-' && b % 2 == 1 && b < 15)
			i++;
	}
	if (braces) {
		if (i >= len || s[i] != '}')
			return -1;
		i++;
	}
	return i == len ? 0 : -1;
}

static void text_key(const char *text, size_t len, shard_key_t *out)
{
	memset(out, 0, sizeof *out);
	out->type = CFG_KEY_TEXT;
	/* an empty key still needs a valid pointer: it is hashed and compared like any other */
	out->ext = len > 0 ? (const uint8_t *)text : (const uint8_t *)"";
	out->len = len;
}

static void uuid_key(const uint8_t u[16], shard_key_t *out)
{
	memset(out, 0, sizeof *out);
	out->type = CFG_KEY_UUID;
	memcpy(out->bytes, u, 16);
	out->len = 16;
}

bool shard_key_encoded(const shard_key_t *k)
{
	const uint8_t *b = shard_key_bytes(k);

	if (k->type != CFG_KEY_TEXT)
		return false;
	for (size_t i = 0; i < k->len; i++)
		if (b[i] >= 0x80)
			return true;
	return false;
}

int shard_key_from_text(cfg_key_type_t type, const char *text, size_t len, shard_key_t *out)
{
	int64_t v;

	if (text == NULL && len > 0)
		return -1;
	switch (type) {
	case CFG_KEY_BIGINT:
		if (parse_bigint(text, len, &v) < 0)
			return -1;
		return shard_key_from_int(v, out);
	case CFG_KEY_TEXT:
		text_key(text, len, out);
		return 0;
	case CFG_KEY_UUID: {
		uint8_t u[16];
		if (parse_uuid(text, len, u) < 0)
			return -1;
		uuid_key(u, out);
		return 0;
	}
	}
	return -1;
}

static int64_t be_signed(const uint8_t *p, size_t len)
{
	uint64_t u = (p[0] & 0x80) ? UINT64_MAX : 0; /* sign extension */
	for (size_t i = 0; i < len; i++)
		u = u << 8 | p[i];
	return (int64_t)u;
}

static bool is_text_oid(uint32_t oid)
{
	return oid == SHARD_OID_TEXT || oid == SHARD_OID_VARCHAR || oid == SHARD_OID_BPCHAR;
}

/*
 * character(n) pads with spaces and PostgreSQL ignores trailing spaces when
 * it compares bpchar values (and drops them when it casts bpchar to text),
 * so 'ab  '::char(4) and 'ab' are the same key: strip them before hashing.
 * text and varchar keep every byte, as PostgreSQL does.
 */
static size_t bpchar_len(const uint8_t *data, size_t len)
{
	while (len > 0 && data[len - 1] == ' ')
		len--;
	return len;
}

int shard_key_from_binary(cfg_key_type_t type, uint32_t oid, const uint8_t *data, size_t len,
                          shard_key_t *out)
{
	if (data == NULL && len > 0)
		return -1;
	if (oid == SHARD_OID_BPCHAR)
		len = bpchar_len(data, len);
	/* the binary form of text, varchar and char(n) is the text itself */
	if (is_text_oid(oid) || (type == CFG_KEY_TEXT && oid == SHARD_OID_UNKNOWN))
		return shard_key_from_text(type, (const char *)data, len, out);

	switch (type) {
	case CFG_KEY_BIGINT:
		/*
		 * Unknown type: the server reads the value as the key column's own
		 * type, which may be smallint, integer or bigint; the length says which.
		 */
		if ((oid == SHARD_OID_INT8 && len == 8) || (oid == SHARD_OID_INT4 && len == 4) ||
		    (oid == SHARD_OID_INT2 && len == 2) ||
		    (oid == SHARD_OID_UNKNOWN && (len == 8 || len == 4 || len == 2)))
			return shard_key_from_int(be_signed(data, len), out);
		return -1;
	case CFG_KEY_UUID:
		if ((oid == SHARD_OID_UUID || oid == SHARD_OID_UNKNOWN) && len == 16) {
			uuid_key(data, out);
			return 0;
		}
		return -1;
	case CFG_KEY_TEXT:
		return -1; /* text maps took every text-ish oid above */
	}
	return -1;
}

uint64_t shard_key_hash(const shard_key_t *k)
{
	return XXH64(shard_key_bytes(k), k->len, 0);
}

void shard_key_text(const shard_key_t *k, char *buf, size_t size)
{
	const uint8_t *b = shard_key_bytes(k);
	size_t n;

	if (size == 0)
		return;
	if (k->type == CFG_KEY_BIGINT) {
		char num[21];
		size_t digits = (size_t)num_text(num, (long long)k->i);

		if (digits >= size)
			digits = size - 1; /* cut as snprintf cuts */
		memcpy(buf, num, digits);
		buf[digits] = '\0';
		return;
	}
	if (k->type == CFG_KEY_UUID && k->len == 16) {
		snprintf(buf, size,
		         "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		         b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
		         b[12], b[13], b[14], b[15]);
		return;
	}
	if (k->len < size) {
		memcpy(buf, b, k->len);
		buf[k->len] = '\0';
		return;
	}
	/* cut: room for "..." and the NUL, back to a character's first byte */
	n = size > 4 ? size - 4 : 0;
	while (n > 0 && (b[n] & 0xC0) == 0x80)
		n--;
	memcpy(buf, b, n);
	snprintf(buf + n, size - n, "%s", "...");
}

int shard_key_compare(const shard_key_t *a, const shard_key_t *b)
{
	if (a->type == CFG_KEY_BIGINT)
		return (a->i > b->i) - (a->i < b->i);
	size_t n = a->len < b->len ? a->len : b->len;
	int c = n > 0 ? memcmp(shard_key_bytes(a), shard_key_bytes(b), n) : 0;
	if (c != 0)
		return c;
	return (a->len > b->len) - (a->len < b->len);
}

/* ------------------------------------------------------------------------ */
/* The consistent-hash ring                                                  */
/* ------------------------------------------------------------------------ */

typedef struct ring_point {
	uint64_t point;
	int shard;
} ring_point_t;

static int ring_point_cmp(const void *a, const void *b)
{
	const ring_point_t *x = a, *y = b;
	if (x->point != y->point)
		return x->point > y->point ? 1 : -1;
	return (x->shard > y->shard) - (x->shard < y->shard);
}

/*
 * Each shard owns `vnodes` points, at XXH64(be32(shard) || be32(v), SHARD_RING_SEED).
 * The seed differs from the keys' (0): with the same seed, be32(0) || be32(v)
 * is byte for byte the bigint key v, and keys 0..vnodes-1 would all sit on
 * shard 0's own points. Points
 * depend on the shard id only, never on the other shards, so adding a shard
 * adds points and moves keys only to it: every other key keeps its point.
 * Ties (equal points) go to the lower shard id, by the sort and by the
 * lower-bound search finding the first of equal points.
 */
int shard_ring_build(shard_ring_t *r, const int *shards, int n_shards, int vnodes)
{
	memset(r, 0, sizeof *r);
	if (n_shards < 0 || vnodes < 1 || (n_shards > 0 && shards == NULL))
		return -1;
	for (int i = 0; i < n_shards; i++) {
		if (!shard_in_range(shards[i]))
			return -1;
	}
	if (n_shards == 0)
		return 0;
	if ((size_t)n_shards > (size_t)INT_MAX / (size_t)vnodes)
		return -1;

	size_t n = (size_t)n_shards * (size_t)vnodes;
	ring_point_t *tmp = malloc(n * sizeof *tmp);
	r->points = malloc(n * sizeof *r->points);
	r->shards = malloc(n * sizeof *r->shards);
	if (tmp == NULL || r->points == NULL || r->shards == NULL) {
		free(tmp);
		shard_ring_free(r);
		return -1;
	}
	size_t k = 0;
	for (int i = 0; i < n_shards; i++) {
		uint32_t s = (uint32_t)shards[i];
		for (uint32_t v = 0; v < (uint32_t)vnodes; v++) {
			uint8_t buf[8] = {
			    (uint8_t)(s >> 24), (uint8_t)(s >> 16), (uint8_t)(s >> 8), (uint8_t)s,
			    (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v,
			};
			tmp[k].point = XXH64(buf, sizeof buf, SHARD_RING_SEED);
			tmp[k].shard = shards[i];
			k++;
		}
	}
	qsort(tmp, n, sizeof *tmp, ring_point_cmp);
	for (size_t j = 0; j < n; j++) {
		r->points[j] = tmp[j].point;
		r->shards[j] = tmp[j].shard;
	}
	free(tmp);
	r->n = (int)n;
	if (shard_ring_index(r) < 0) {
		shard_ring_free(r);
		return -1;
	}
	return 0;
}

int shard_ring_index(shard_ring_t *r)
{
	size_t runs, n = (size_t)r->n;

	r->bits = 1;
	while (r->bits < 16 && ((size_t)1 << r->bits) < 2 * n)
		r->bits++;
	runs = (size_t)1 << r->bits;
	free(r->start);
	r->start = malloc((runs + 1) * sizeof *r->start);
	if (r->start == NULL)
		return -1;
	for (size_t b = 0, j = 0; b < runs; b++) {
		/* the first point whose top bits are b or more */
		while (j < n && (r->points[j] >> (64 - r->bits)) < b)
			j++;
		r->start[b] = (uint32_t)j;
	}
	r->start[runs] = (uint32_t)n;
	return 0;
}

void shard_ring_free(shard_ring_t *r)
{
	free(r->points);
	free(r->shards);
	free(r->start);
	memset(r, 0, sizeof *r);
}

/* The shard of the first point >= hash, wrapping to the first point; -1 on an empty ring. */
int shard_ring_lookup(const shard_ring_t *r, uint64_t hash)
{
	if (r->n == 0)
		return -1;
	/* the points before the run of hash's top bits are below it, those after above it */
	size_t run = (size_t)(hash >> (64 - r->bits));
	uint32_t lo = r->start[run], hi = r->start[run + 1];

	while (lo < hi && r->points[lo] < hash)
		lo++;
	return r->shards[lo == (uint32_t)r->n ? 0 : lo];
}

/* ------------------------------------------------------------------------ */
/* Maps                                                                      */
/* ------------------------------------------------------------------------ */

const char *shard_key_type_name(cfg_key_type_t t)
{
	switch (t) {
	case CFG_KEY_BIGINT:
		return "bigint";
	case CFG_KEY_TEXT:
		return "text";
	case CFG_KEY_UUID:
		return "uuid";
	}
	return "key";
}

/*
 * A bound of a range map as a key. A text key only points at its bytes, so
 * text bounds point at copies the map owns (shard_map_free frees them): the
 * map stays valid whatever happens to the cfg strings.
 */
static int bound_key(const cfg_map_t *cfg, const char *text, shard_key_t *out, char *err,
                     size_t errlen, const char *which, int line)
{
	size_t len = strlen(text);

	if (cfg->key == CFG_KEY_TEXT) {
		char *copy = malloc(len + 1);
		if (copy == NULL) {
			snprintf(err, errlen, "map %s: out of memory", cfg->name);
			return -1;
		}
		memcpy(copy, text, len + 1);
		text_key(copy, len, out);
		out->ext = (const uint8_t *)copy; /* owned, even when empty */
		return 0;
	}
	if (shard_key_from_text(cfg->key, text, len, out) < 0) {
		snprintf(err, errlen, "map %s: range %s '%s' (line %d) is not a valid %s",
		         cfg->name, which, text, line, shard_key_type_name(cfg->key));
		return -1;
	}
	return 0;
}

/* Unbounded lo sorts first. */
static int range_lo_cmp(const void *a, const void *b)
{
	const shard_range_t *x = a, *y = b;
	if (x->lo_unbounded || y->lo_unbounded)
		return (int)y->lo_unbounded - (int)x->lo_unbounded;
	return shard_key_compare(&x->lo, &y->lo);
}

static void free_ranges(shard_map_t *m)
{
	for (int i = 0; i < m->n_ranges; i++) {
		shard_range_t *r = &m->ranges[i];
		if (r->lo.type == CFG_KEY_TEXT && !r->lo_unbounded)
			free((void *)r->lo.ext);
		if (r->hi.type == CFG_KEY_TEXT && !r->hi_unbounded)
			free((void *)r->hi.ext);
	}
	free(m->ranges);
	m->ranges = NULL;
	m->n_ranges = 0;
}

static int build_ranges(shard_map_t *m, const cfg_map_t *cfg, char *err, size_t errlen)
{
	if (cfg->n_ranges <= 0) {
		snprintf(err, errlen, "map %s: a range map without ranges", cfg->name);
		return -1;
	}
	m->ranges = calloc((size_t)cfg->n_ranges, sizeof *m->ranges);
	if (m->ranges == NULL) {
		snprintf(err, errlen, "map %s: out of memory", cfg->name);
		return -1;
	}
	for (int i = 0; i < cfg->n_ranges; i++) {
		const cfg_range_t *c = &cfg->ranges[i];
		shard_range_t *r = &m->ranges[i];
		r->shard = c->shard;
		r->lo.type = r->hi.type = cfg->key;
		r->lo_unbounded = c->lo == NULL;
		r->hi_unbounded = c->hi == NULL;
		/* counted before parsing, so that free_ranges frees what was copied so far */
		m->n_ranges = i + 1;
		if (!r->lo_unbounded &&
		    bound_key(cfg, c->lo, &r->lo, err, errlen, "lo", c->line) < 0)
			return -1;
		if (!r->hi_unbounded &&
		    bound_key(cfg, c->hi, &r->hi, err, errlen, "hi", c->line) < 0)
			return -1;
		if (!shard_in_range(r->shard)) {
			snprintf(err, errlen,
			         "map %s: range (line %d) names shard %d (expected 0 to %d)",
			         cfg->name, c->line, r->shard, SHARD_MAX - 1);
			return -1;
		}
		if (!r->lo_unbounded && !r->hi_unbounded &&
		    shard_key_compare(&r->lo, &r->hi) >= 0) {
			snprintf(err, errlen,
			         "map %s: range (line %d) has lo '%s' not below hi '%s'", cfg->name,
			         c->line, c->lo, c->hi);
			return -1;
		}
		shard_set_add(&m->all, r->shard);
	}
	qsort(m->ranges, (size_t)m->n_ranges, sizeof *m->ranges, range_lo_cmp);

	/* the config loader checks this too; lookups depend on it, so do not trust a caller */
	for (int i = 1; i < m->n_ranges; i++) {
		const shard_range_t *prev = &m->ranges[i - 1], *cur = &m->ranges[i];
		if (prev->hi_unbounded || cur->lo_unbounded ||
		    shard_key_compare(&cur->lo, &prev->hi) < 0) {
			snprintf(err, errlen, "map %s: ranges overlap", cfg->name);
			return -1;
		}
	}
	return 0;
}

int shard_map_build(shard_map_t *m, const cfg_map_t *cfg, char *err, size_t errlen)
{
	memset(m, 0, sizeof *m);
	m->cfg = cfg;
	if (cfg->kind == CFG_MAP_HASH) {
		if (shard_ring_build(&m->ring, cfg->shards, cfg->n_shards, cfg->vnodes) < 0) {
			snprintf(err, errlen,
			         "map %s: cannot build the ring (shard ids 0 to %d, vnodes >= 1, "
			         "memory)",
			         cfg->name, SHARD_MAX - 1);
			return -1;
		}
		for (int i = 0; i < cfg->n_shards; i++)
			shard_set_add(&m->all, cfg->shards[i]);
		return 0;
	}
	if (build_ranges(m, cfg, err, errlen) < 0) {
		shard_map_free(m);
		return -1;
	}
	return 0;
}

void shard_map_free(shard_map_t *m)
{
	shard_ring_free(&m->ring);
	free_ranges(m);
	shard_set_clear(&m->all);
}

/*
 * The shard of one key: -1 when a range map has no range for it, and also
 * when the key is not of the map's type (placing it anyway would be wrong).
 */
int shard_map_lookup(const shard_map_t *m, const shard_key_t *k)
{
	if (k->type != m->cfg->key)
		return -1;
	if (m->cfg->kind == CFG_MAP_HASH)
		return shard_ring_lookup(&m->ring, shard_key_hash(k));

	/* the last range whose lo <= k; ranges are sorted and disjoint, so only it can hold k */
	int lo = 0, hi = m->n_ranges;
	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;
		const shard_range_t *r = &m->ranges[mid];
		if (r->lo_unbounded || shard_key_compare(&r->lo, k) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return -1;
	const shard_range_t *r = &m->ranges[lo - 1];
	if (!r->hi_unbounded && shard_key_compare(k, &r->hi) >= 0)
		return -1;
	return r->shard;
}

/* One end of an interval: key NULL = unbounded. */
typedef struct bound {
	const shard_key_t *key;
	bool incl;
} bound_t;

/* The tighter of two lower ends (a larger value, or exclusive at an equal value). */
static bound_t max_lower(bound_t a, bound_t b)
{
	if (a.key == NULL)
		return b;
	if (b.key == NULL)
		return a;
	int c = shard_key_compare(a.key, b.key);
	if (c != 0)
		return c > 0 ? a : b;
	return a.incl ? b : a;
}

static bound_t min_upper(bound_t a, bound_t b)
{
	if (a.key == NULL)
		return b;
	if (b.key == NULL)
		return a;
	int c = shard_key_compare(a.key, b.key);
	if (c != 0)
		return c < 0 ? a : b;
	return a.incl ? b : a;
}

/*
 * Whether some value lies between lower and upper. Exact at equal ends.
 * Between two different values with exclusive ends, text and uuid are
 * assumed to hold something (a shard too many is safe, one missing is not);
 * bigint ends were made inclusive before, so it is exact for them.
 */
static bool nonempty(bound_t lower, bound_t upper)
{
	if (lower.key == NULL || upper.key == NULL)
		return true;
	int c = shard_key_compare(lower.key, upper.key);
	return c < 0 || (c == 0 && lower.incl && upper.incl);
}

/*
 * bigint is discrete: x > 5 is x >= 6, x < 5 is x <= 4. Making the ends
 * inclusive lets nonempty() be exact ((5, 6) holds nothing). false when the
 * end cannot move (x > INT64_MAX, x < INT64_MIN): the interval is empty.
 */
static bool bigint_inclusive(bound_t *b, shard_key_t *store, int step)
{
	if (b->key == NULL || b->key->type != CFG_KEY_BIGINT || b->incl)
		return true;
	int64_t v = b->key->i;
	if ((step > 0 && v == INT64_MAX) || (step < 0 && v == INT64_MIN))
		return false;
	shard_key_from_int(v + step, store);
	b->key = store;
	b->incl = true;
	return true;
}

void shard_map_lookup_range(const shard_map_t *m, const shard_key_t *lo, bool lo_incl,
                            const shard_key_t *hi, bool hi_incl, shard_set_t *out)
{
	if (m->cfg->kind == CFG_MAP_HASH) {
		shard_set_union(out, &m->all);
		return;
	}
	bound_t lower = {lo, lo_incl}, upper = {hi, hi_incl};
	shard_key_t lo_store, hi_store, hi_last;
	if (!bigint_inclusive(&lower, &lo_store, +1) || !bigint_inclusive(&upper, &hi_store, -1))
		return;

	for (int i = 0; i < m->n_ranges; i++) {
		const shard_range_t *r = &m->ranges[i];
		bound_t rlo = {r->lo_unbounded ? NULL : &r->lo, true};
		bound_t rhi = {r->hi_unbounded ? NULL : &r->hi, false};
		if (!bigint_inclusive(&rhi, &hi_last, -1))
			continue; /* [.., INT64_MIN): holds nothing */
		if (nonempty(max_lower(lower, rlo), min_upper(upper, rhi)))
			shard_set_add(out, r->shard);
	}
}
