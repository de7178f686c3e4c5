/*
 * rowcmp_int.h — what the files of rowcmp share: the small helpers every
 * decoder uses, and the decoders and comparisons rowcmp.c calls for each
 * type, named after their file (text_, time_).
 *
 * Not part of rowcmp's interface: only rowcmp's own .c files include it.
 */
#ifndef PGSHARD_ROUTER_ROWCMP_INT_H
#define PGSHARD_ROUTER_ROWCMP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "router/rowcmp.h"

/* ---- small helpers ------------------------------------------------------- */

static inline int sign_of(long long v)
{
	return (v > 0) - (v < 0);
}

static inline int cmp_i64(int64_t a, int64_t b)
{
	return (a > b) - (a < b);
}

static inline uint16_t be16(const uint8_t *p)
{
	return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

static inline uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t be64(const uint8_t *p)
{
	return (uint64_t)be32(p) << 32 | be32(p + 4);
}

/* Bytes, then length: memcmp order, as COLLATE "C" and bytea compare. */
static inline int cmp_bytes(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c != 0)
		return sign_of(c);
	return (alen > blen) - (alen < blen);
}

static inline bool is_digit(uint8_t c)
{
	return c >= '0' && c <= '9';
}

static inline int hex_value(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static inline bool field_is(const rowcmp_field_t *f, const char *lit)
{
	size_t n = strlen(lit);

	return (size_t)f->len == n && memcmp(f->data, lit, n) == 0;
}

/* ---- rowcmp_text.c: text, uuid, bytea ------------------------------------ */

bool text_cmp_text(const rowcmp_coll_t *coll, const uint8_t *a, size_t alen, const uint8_t *b,
                   size_t blen, int *out);
size_t text_bpchar_len(const rowcmp_field_t *f);
bool text_parse_uuid(const rowcmp_field_t *f, int16_t format, uint8_t out[16]);
bool text_check_bytea_hex(const rowcmp_field_t *f);
int text_cmp_bytea_hex(const rowcmp_field_t *a, const rowcmp_field_t *b);

/* ---- rowcmp_time.c: date and time ---------------------------------------- */

/*
 * timetz: the time and the zone in seconds west of UTC (timetz_send's
 * order; the text "+05:30" is zone -19800). timetz_cmp_internal orders by
 * the UTC time first, then by zone, so 12:00+01 and 11:00+00 differ.
 */
typedef struct timetz {
	int64_t time;
	int32_t zone;
} timetz_t;

bool time_parse_date(const rowcmp_field_t *f, int16_t format, int64_t *out);
bool time_parse_time(const rowcmp_field_t *f, int16_t format, int64_t *out);
bool time_parse_timestamp(const rowcmp_field_t *f, int16_t format, bool tz, int64_t *out);
bool time_parse_timetz(const rowcmp_field_t *f, int16_t format, timetz_t *out);
int time_cmp_timetz(const timetz_t *a, const timetz_t *b);
bool time_parse_interval(const rowcmp_field_t *f, int16_t format, __int128 *span);

#endif
