/*
 * shardmap.h — where a key value lives: key normalization, the hash, the
 * consistent-hash ring and range maps.
 *
 * Placement is a data format: rows already stored on a shard must keep
 * being found there, so the normalization, the hash function and the ring
 * construction below are fixed, documented in README.md ("Placement") and
 * pinned by unit tests with known vectors. Changing any of them strands
 * existing rows.
 *
 *   key bytes  bigint: the value as 8 bytes, big-endian two's complement
 *              text:   the UTF-8 bytes, as stored (no case folding)
 *              uuid:   the 16 bytes of the UUID
 *   hash       XXH64(key bytes, seed 0)            (libxxhash)
 *   ring       for each shard s of the map and v in [0, vnodes):
 *                point = XXH64(be32(s) || be32(v), seed SHARD_RING_SEED)
 *              (its own seed: with seed 0, be32(0) || be32(v) would be the
 *              bigint key v, and keys 0..vnodes-1 would all land on shard 0)
 *              points sorted by (point, shard); a key belongs to the first
 *              point >= its hash, wrapping around to the first point.
 *   range      half-open [lo, hi); bigint compared as integers, text and
 *              uuid bytewise (memcmp, a prefix sorts first).
 *
 * Every spelling of a value normalizes alike: 42, '42', 42::int8, a text
 * parameter "42" and a binary int2/int4/int8 parameter are all the bigint 42.
 *
 * Pure: no I/O.
 */
#ifndef PGSHARD_ROUTER_SHARDMAP_H
#define PGSHARD_ROUTER_SHARDMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

/* PostgreSQL type OIDs that key parameters arrive with */
#define SHARD_OID_INT8    20
#define SHARD_OID_INT2    21
#define SHARD_OID_INT4    23
#define SHARD_OID_TEXT    25
#define SHARD_OID_VARCHAR 1043
#define SHARD_OID_BPCHAR  1042
#define SHARD_OID_UUID    2950
#define SHARD_OID_UNKNOWN 0 /* the client did not say: judge by the map's key type */

/* Seed of the ring points: the bytes "pgshard". Part of the placement format. */
#define SHARD_RING_SEED 0x0070677368617264ULL

/* The most shards a config may have (shard sets are fixed-size bitsets). */
#define SHARD_MAX 256

typedef struct shard_set {
	uint64_t bits[SHARD_MAX / 64];
} shard_set_t;

void shard_set_clear(shard_set_t *s);
void shard_set_add(shard_set_t *s, int shard);
bool shard_set_has(const shard_set_t *s, int shard);
int shard_set_count(const shard_set_t *s);
int shard_set_first(const shard_set_t *s); /* -1 when empty */
void shard_set_union(shard_set_t *into, const shard_set_t *other);
void shard_set_intersect(shard_set_t *into, const shard_set_t *other);

/* A normalized key value. `bytes` are what the hash and range compare use. */
typedef struct shard_key {
	cfg_key_type_t type;
	int64_t i;          /* bigint */
	uint8_t bytes[16];  /* bigint (8, big-endian) and uuid (16) */
	const uint8_t *ext; /* text: points at the caller's bytes */
	size_t len;         /* length of the key bytes */
} shard_key_t;

/* The key bytes (for hashing and comparison). */
const uint8_t *shard_key_bytes(const shard_key_t *k);

/*
 * Whether k is a text key with a byte above 0x7F: its bytes, and so its
 * shard, depend on the encoding its text was sent in.
 */
bool shard_key_encoded(const shard_key_t *k);

/*
 * From a text spelling (a literal's text, or a text-format parameter) for a
 * map whose keys are `type`. bigint: optional spaces and sign, decimal
 * digits, range of int8. uuid: PostgreSQL's accepted input forms (hyphens
 * optional, braces, any case). text: the bytes as given. 0, or -1 when the
 * value is not a valid key of that type (the caller then cannot route by it).
 */
int shard_key_from_text(cfg_key_type_t type, const char *text, size_t len, shard_key_t *out);

/* From a binary-format parameter of PostgreSQL type `oid` (SHARD_OID_*). */
int shard_key_from_binary(cfg_key_type_t type, uint32_t oid, const uint8_t *data, size_t len,
                          shard_key_t *out);

int shard_key_from_int(int64_t v, shard_key_t *out);

uint64_t shard_key_hash(const shard_key_t *k);

/*
 * A key as text, the same for every spelling of it: bigint in decimal, uuid
 * in its canonical 8-4-4-4-12 lower-case form, text as its bytes, cut to fit
 * (at a UTF-8 character's start, with "..." when cut). Always NUL-terminated
 * when size > 0.
 */
void shard_key_text(const shard_key_t *k, char *buf, size_t size);

/* "bigint", "text" or "uuid" */
const char *shard_key_type_name(cfg_key_type_t t);

/* Negative, zero or positive, as a sorts before, with or after b (same type). */
int shard_key_compare(const shard_key_t *a, const shard_key_t *b);

typedef struct shard_ring {
	uint64_t *points;
	int *shards;
	int n;
	/*
	 * Where the points of each run of hashes begin, by the hash's top `bits`
	 * bits (2^bits + 1 entries, at least two runs per point): a lookup
	 * compares a point or two instead of searching the whole ring, whose
	 * branches a random key mispredicts at every step.
	 */
	uint32_t *start;
	int bits;
} shard_ring_t;

int shard_ring_build(shard_ring_t *r, const int *shards, int n_shards, int vnodes);
void shard_ring_free(shard_ring_t *r);
int shard_ring_lookup(const shard_ring_t *r, uint64_t hash);
/* The run index of r's points (sorted, n set), as shard_ring_build makes it: 0 or -1. */
int shard_ring_index(shard_ring_t *r);

typedef struct shard_range {
	bool lo_unbounded, hi_unbounded;
	shard_key_t lo, hi; /* text bounds point into the map's own copies */
	int shard;
} shard_range_t;

/* One [map.X] section, ready for lookups. */
typedef struct shard_map {
	const cfg_map_t *cfg;
	shard_ring_t ring;     /* hash maps */
	shard_range_t *ranges; /* range maps, sorted by lo */
	int n_ranges;
	shard_set_t all; /* every shard the map places rows on */
} shard_map_t;

/* 0, or -1 with a message in err (a bound that is not a valid key, ...). */
int shard_map_build(shard_map_t *m, const cfg_map_t *cfg, char *err, size_t errlen);
void shard_map_free(shard_map_t *m);

/* The shard of one key; -1 when a range map has no range for it. */
int shard_map_lookup(const shard_map_t *m, const shard_key_t *k);

/*
 * Range maps: add to *out every shard whose range meets the interval between
 * lo and hi (NULL = unbounded), with the given inclusivity. Hash maps: every
 * shard of the map (a hash says nothing about ranges).
 */
void shard_map_lookup_range(const shard_map_t *m, const shard_key_t *lo, bool lo_incl,
                            const shard_key_t *hi, bool hi_incl, shard_set_t *out);

#endif
