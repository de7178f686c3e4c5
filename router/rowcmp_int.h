/*
 * rowcmp_int.h — what the files of rowcmp share: the type OIDs, the small
 * helpers every decoder uses, and the decoders and comparisons rowcmp.c calls
 * for each type, named after their file (num_, text_, time_).
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
#include "router/hexdigit.h"

enum {
	OID_BOOL = 16,
	OID_BYTEA = 17,
	OID_CHAR = 18,
	OID_NAME = 19,
	OID_INT8 = 20,
	OID_INT2 = 21,
	OID_INT4 = 23,
	OID_TEXT = 25,
	OID_OID = 26,
	OID_FLOAT4 = 700,
	OID_FLOAT8 = 701,
	OID_BPCHAR = 1042,
	OID_VARCHAR = 1043,
	OID_DATE = 1082,
	OID_TIME = 1083,
	OID_TIMESTAMP = 1114,
	OID_TIMESTAMPTZ = 1184,
	OID_INTERVAL = 1186,
	OID_TIMETZ = 1266,
	OID_NUMERIC = 1700,
	OID_UUID = 2950,
};

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

static inline bool field_is(const rowcmp_field_t *f, const char *lit)
{
	size_t n = strlen(lit);

	return (size_t)f->len == n && memcmp(f->data, lit, n) == 0;
}

/* ---- rowcmp_num.c: numbers ----------------------------------------------- */

/*
 * A numeric as numeric_out writes it ("-12.3400"), seen in place: the
 * integer digits without leading zeros and the fraction digits without
 * trailing zeros, so that 1.50 = 1.5 and -0.000 = 0 fall out.
 */
typedef struct num_text {
	int kind;
	bool neg;
	const uint8_t *ip; /* integer digits */
	int32_t ilen;
	const uint8_t *fp; /* fraction digits */
	int32_t flen;
} num_text_t;

/*
 * numeric_send: int16 ndigits, int16 weight, uint16 sign, int16 dscale,
 * then ndigits base-10000 digits; the value is sum digit[i] *
 * 10000^(weight - i). Leading and trailing zero digits are dropped here so
 * that any representation of a value compares equal to any other.
 */
typedef struct num_bin {
	int kind;
	bool neg;
	int weight;
	const uint8_t *dig; /* big-endian uint16 digits */
	int nd;
} num_bin_t;

bool num_parse_int(const rowcmp_field_t *f, uint32_t type, int16_t format, int64_t *out);
bool num_parse_bool(const rowcmp_field_t *f, int16_t format, int64_t *out);
bool num_parse_char(const rowcmp_field_t *f, int16_t format, int64_t *out);
bool num_parse_float(const rowcmp_field_t *f, uint32_t type, int16_t format, double *out);
int num_cmp_double(double a, double b);
bool num_parse_numeric_text(const rowcmp_field_t *f, num_text_t *n);
int num_cmp_numeric_text(const num_text_t *a, const num_text_t *b);
bool num_parse_numeric_binary(const rowcmp_field_t *f, num_bin_t *n);
int num_cmp_numeric_binary(const num_bin_t *a, const num_bin_t *b);

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
