/*
 * rowcmp.h — ordering result rows as PostgreSQL orders them, and the k-way
 * merge of sorted row streams.
 *
 * A SELECT ... ORDER BY on several shards arrives as one sorted stream per
 * shard; the proxy sends the client the smallest head row each time. The
 * values are the DataRow fields as the servers sent them, in text or
 * binary format, so each comparison decodes them by type OID (PostgreSQL
 * 15's btree order for each type):
 *
 *   int2 int4 int8 oid      integers (oid unsigned)
 *   float4 float8           NaN after every number and equal to NaN, -0 = 0
 *   numeric                 exact (digits, not doubles): -Infinity, numbers,
 *                           Infinity, NaN; 1.50 = 1.5
 *   bool                    false < true
 *   text varchar bpchar     the key's collation (strcoll_l with a
 *                           deterministic tie-break on bytes, as
 *                           PostgreSQL's varstr_cmp); bpchar without its
 *                           trailing spaces; name and "char" by bytes
 *                           whatever the key's collation
 *   date time timestamp     by value; BC and infinities included
 *   timestamptz timetz      by the UTC instant (timetz then by zone)
 *   interval                by the whole span, 30-day months, 24-hour days
 *   uuid bytea              by bytes (bytea: then by length)
 *
 * Every type works in both formats. Text is what the server writes with
 * its default output settings: DateStyle ISO (any field order), IntervalStyle
 * postgres, bytea_output hex, extra_float_digits >= 1 (shortest-exact
 * floats; with fewer digits two different floats can print alike and are
 * then taken as equal). Text collation assumes client_encoding is the
 * database's encoding (the bytes go to strcoll_l as they are).
 *
 * NULL sorts as the key says (NULLS FIRST / LAST). A value that does not
 * decode is an error, never a guess: a date in DateStyle SQL or German, a
 * numeric with an exponent, an int4 out of range.
 *
 * Pure: bytes in, order out.
 */
#ifndef PGSHARD_ROUTER_ROWCMP_H
#define PGSHARD_ROUTER_ROWCMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A collation for text keys. */
typedef struct rowcmp_coll rowcmp_coll_t;

/*
 * The collation named as pg_database.datcollate names it ("C", "POSIX",
 * "C.UTF-8", "en_US.UTF-8", ...). NULL with a message in err when this
 * machine has no such locale or memory runs out. "C", "POSIX", "C.UTF-8"
 * and "C.utf8" compare bytes without a locale (glibc's C.UTF-8 collates by
 * code point, which is byte order in UTF-8). Read-only once made: one
 * collation may serve any number of threads.
 */
rowcmp_coll_t *rowcmp_coll_new(const char *lc_collate, char *err, size_t errlen);
void rowcmp_coll_free(rowcmp_coll_t *c);

/* One field of a row: len -1 for NULL. */
typedef struct rowcmp_field {
	const uint8_t *data;
	int32_t len;
} rowcmp_field_t;

typedef struct rowcmp_key {
	int column; /* index into the row's fields */
	uint32_t type_oid;
	int16_t format; /* 0 text, 1 binary */
	bool desc;
	bool nulls_first;
	const rowcmp_coll_t *coll; /* text, varchar, bpchar; NULL: bytes (COLLATE "C") */
} rowcmp_key_t;

/* Whether values of this type in this format can be compared. */
bool rowcmp_supported(uint32_t type_oid, int16_t format);

/*
 * <0, 0, >0 as row a sorts before, with, after row b under the keys (the
 * first key that differs decides; DESC reverses, NULLS FIRST/LAST apply
 * after that). Each key's column must be a valid index into both rows.
 * Returns 0 and sets *err to true (with a message in errbuf, which may be
 * NULL) when a value does not decode or a type or format is not supported;
 * *err is left alone otherwise. NULLs are never decoded.
 */
int rowcmp_compare(const rowcmp_key_t *keys, int n_keys, const rowcmp_field_t *a,
                   const rowcmp_field_t *b, bool *err, char *errbuf, size_t errlen);

/*
 * The fields of a DataRow body (int16 count, then per field int32 length
 * and bytes). Fills up to max fields; returns the field count, or -1 when
 * the body is malformed or has more than max fields.
 */
int rowcmp_fields(const uint8_t *body, size_t len, rowcmp_field_t *out, int max);

/*
 * The k-way merge: k sources, each a sorted stream of rows. A source is
 * either waiting (its next row is not known yet), has a head row, or is
 * done. rowheap_next says which source's head row goes next, once no
 * source is waiting. Rows that compare equal go in source order (the
 * lower source first), so the merge is stable.
 */
typedef struct rowheap rowheap_t;

/* The keys are copied; their collations must outlive the heap. NULL when memory runs out. */
rowheap_t *rowheap_new(int k, const rowcmp_key_t *keys, int n_keys);
void rowheap_free(rowheap_t *h);

/*
 * Source i's head row (the fields stay the caller's until it is taken, and
 * must hold every key's column). Errors (a row too short, a compare that
 * fails, a row after done) are kept and reported by rowheap_next.
 */
void rowheap_set(rowheap_t *h, int i, const rowcmp_field_t *fields, int n_fields);
/* Source i has no more rows. */
void rowheap_done(rowheap_t *h, int i);
/* How many sources are waiting (neither a head row nor done). */
int rowheap_waiting(const rowheap_t *h);
/*
 * The source whose head row is next, which becomes waiting again; -1 when
 * every source is done. Call only with no source waiting. -2 on a compare
 * error or misuse (message in errbuf), and on every call after that.
 * O(log k) comparisons a row.
 */
int rowheap_next(rowheap_t *h, char *errbuf, size_t errlen);

#endif
