/*
 * rowcmp.c — ordering result rows as PostgreSQL 15 orders them (see
 * rowcmp.h; the k-way merge of sorted row streams is in rowheap.c).
 *
 * Every comparison decodes the two values it is given from the bytes the
 * servers sent: nothing is cached between comparisons, so a value costs one
 * decode per comparison. That is cheap for the common keys (integers,
 * timestamps) and keeps the module free of per-row state. Numeric and bytea
 * are compared in place, digit by digit, without building a value; text is
 * copied into stack buffers only because strcoll_l wants NUL-terminated
 * strings.
 *
 * The text formats accepted are exactly the ones PostgreSQL writes (DateStyle
 * ISO, IntervalStyle postgres, bytea_output hex, numeric without exponent).
 * Anything else is an error: a plausible guess at another DateStyle would
 * merge rows in the wrong order without anyone noticing.
 */
#define _GNU_SOURCE
#include "router/rowcmp_int.h"

#include <limits.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* ---- integers, bool, "char" ---------------------------------------------- */

/*
 * A decimal integer as int2out/int4out/int8out/oidout write it: an optional
 * minus and digits, within [min, max].
 */
static bool parse_int_text(const rowcmp_field_t *f, int64_t min, int64_t max, int64_t *out)
{
	const uint8_t *p = f->data, *end = f->data + f->len;
	bool neg = false;
	uint64_t mag = 0, limit;

	if (p < end && *p == '-') {
		neg = true;
		p++;
	}
	if (p == end || end - p > 19)
		return false;
	for (; p < end; p++) {
		if (!is_digit(*p))
			return false;
		mag = mag * 10 + (uint64_t)(*p - '0'); /* 19 digits fit in uint64 */
	}
	limit = neg ? (uint64_t)0 - (uint64_t)min : (uint64_t)max;
	if (mag > limit)
		return false;
	*out = neg ? (int64_t)((uint64_t)0 - mag) : (int64_t)mag;
	return true;
}

static bool parse_int_binary(const rowcmp_field_t *f, uint32_t type, int64_t *out)
{
	switch (type) {
	case OID_INT2:
		if (f->len != 2)
			return false;
		*out = (int16_t)be16(f->data);
		return true;
	case OID_INT4:
		if (f->len != 4)
			return false;
		*out = (int32_t)be32(f->data);
		return true;
	case OID_OID:
		if (f->len != 4)
			return false;
		*out = be32(f->data); /* unsigned */
		return true;
	default:
		if (f->len != 8)
			return false;
		*out = (int64_t)be64(f->data);
		return true;
	}
}

static bool parse_int(const rowcmp_field_t *f, uint32_t type, int16_t format, int64_t *out)
{
	if (format != 0)
		return parse_int_binary(f, type, out);
	switch (type) {
	case OID_INT2:
		return parse_int_text(f, INT16_MIN, INT16_MAX, out);
	case OID_INT4:
		return parse_int_text(f, INT32_MIN, INT32_MAX, out);
	case OID_OID:
		return parse_int_text(f, 0, UINT32_MAX, out);
	default:
		return parse_int_text(f, INT64_MIN, INT64_MAX, out);
	}
}

static bool parse_bool(const rowcmp_field_t *f, int16_t format, int64_t *out)
{
	if (f->len != 1)
		return false;
	if (format != 0) {
		*out = f->data[0] != 0; /* boolrecv: any nonzero byte is true */
		return true;
	}
	if (f->data[0] != 't' && f->data[0] != 'f')
		return false;
	*out = f->data[0] == 't';
	return true;
}

/*
 * "char": one byte, compared unsigned. Its text form is the byte itself,
 * empty for \0, or \ooo (octal) for bytes with the high bit set.
 */
static bool parse_char(const rowcmp_field_t *f, int16_t format, int64_t *out)
{
	const uint8_t *p = f->data;

	if (format != 0) {
		if (f->len != 1)
			return false;
		*out = p[0];
		return true;
	}
	if (f->len == 0) {
		*out = 0;
		return true;
	}
	if (f->len == 1) {
		*out = p[0];
		return true;
	}
	if (f->len == 4 && p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' &&
	    p[2] <= '7' && p[3] >= '0' && p[3] <= '7') {
		*out = (p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0');
		return true;
	}
	return false;
}

/* ---- float4, float8 ------------------------------------------------------ */

static locale_t c_numeric;
static pthread_once_t c_numeric_once = PTHREAD_ONCE_INIT;

static void c_numeric_init(void)
{
	c_numeric = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
}

/*
 * float4out/float8out: shortest-exact digits ("1.5", "1e+300", "-0"),
 * "NaN", "Infinity", "-Infinity". Parsed with strtof_l/strtod_l in the C
 * locale, so the proxy's own LC_NUMERIC cannot change the decimal point.
 * float4 goes through strtof: the shortest digits of a float4 name that
 * float4 exactly, not necessarily the nearest double.
 */
static bool parse_float_text(const rowcmp_field_t *f, bool is4, double *out)
{
	char buf[64];
	char *end;

	if (field_is(f, "NaN")) {
		*out = NAN;
		return true;
	}
	if (field_is(f, "Infinity")) {
		*out = INFINITY;
		return true;
	}
	if (field_is(f, "-Infinity")) {
		*out = -INFINITY;
		return true;
	}
	if (f->len == 0 || (size_t)f->len >= sizeof(buf))
		return false;
	for (int32_t i = 0; i < f->len; i++) {
		uint8_t ch = f->data[i];

		if (!is_digit(ch) && ch != '.' && ch != 'e' && ch != '-' && ch != '+')
			return false;
	}
	memcpy(buf, f->data, (size_t)f->len);
	buf[f->len] = '\0';
	pthread_once(&c_numeric_once, c_numeric_init);
	if (c_numeric == (locale_t)0)
		return false;
	if (is4)
		*out = strtof_l(buf, &end, c_numeric);
	else
		*out = strtod_l(buf, &end, c_numeric);
	/* underflow to a subnormal is fine (ERANGE); overflow is not a float's text */
	return end == buf + f->len && isfinite(*out);
}

static bool parse_float(const rowcmp_field_t *f, uint32_t type, int16_t format, double *out)
{
	bool is4 = type == OID_FLOAT4;

	if (format == 0)
		return parse_float_text(f, is4, out);
	if (is4) {
		uint32_t bits;
		float v;

		if (f->len != 4)
			return false;
		bits = be32(f->data);
		memcpy(&v, &bits, sizeof(v));
		*out = v;
	} else {
		uint64_t bits;

		if (f->len != 8)
			return false;
		bits = be64(f->data);
		memcpy(out, &bits, sizeof(*out));
	}
	return true;
}

/* float8_cmp_internal: NaN equals NaN and sorts after everything; -0 = 0. */
static int cmp_double(double a, double b)
{
	if (isnan(a))
		return isnan(b) ? 0 : 1;
	if (isnan(b))
		return -1;
	return (a > b) - (a < b);
}

/* ---- numeric ------------------------------------------------------------- */

/* The four kinds of numeric in their sort order; NaN last. */
enum { NUM_NINF, NUM_FINITE, NUM_PINF, NUM_NAN };

#define NUMERIC_POS  0x0000
#define NUMERIC_NEG  0x4000
#define NUMERIC_NAN  0xC000
#define NUMERIC_PINF 0xD000
#define NUMERIC_NINF 0xF000

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

static bool parse_numeric_text(const rowcmp_field_t *f, num_text_t *n)
{
	const uint8_t *p = f->data, *end = f->data + f->len;

	memset(n, 0, sizeof(*n));
	n->kind = NUM_FINITE;
	if (field_is(f, "NaN") || field_is(f, "Infinity") || field_is(f, "-Infinity")) {
		n->kind = f->data[0] == 'N' ? NUM_NAN : f->data[0] == 'I' ? NUM_PINF : NUM_NINF;
		return true;
	}
	if (p < end && *p == '-') {
		n->neg = true;
		p++;
	}
	n->ip = p;
	while (p < end && is_digit(*p))
		p++;
	n->ilen = (int32_t)(p - n->ip);
	if (p < end && *p == '.') {
		p++;
		n->fp = p;
		while (p < end && is_digit(*p))
			p++;
		n->flen = (int32_t)(p - n->fp);
		if (n->flen == 0)
			return false;
	}
	if (p != end || n->ilen == 0)
		return false;
	while (n->ilen > 0 && n->ip[0] == '0') {
		n->ip++;
		n->ilen--;
	}
	while (n->flen > 0 && n->fp[n->flen - 1] == '0')
		n->flen--;
	if (n->ilen == 0 && n->flen == 0)
		n->neg = false; /* zero has no sign */
	return true;
}

static int cmp_numeric_text(const num_text_t *a, const num_text_t *b)
{
	int sa, sb, c;
	int32_t m;

	if (a->kind != b->kind || a->kind != NUM_FINITE)
		return (a->kind > b->kind) - (a->kind < b->kind);
	sa = a->ilen == 0 && a->flen == 0 ? 0 : a->neg ? -1 : 1;
	sb = b->ilen == 0 && b->flen == 0 ? 0 : b->neg ? -1 : 1;
	if (sa != sb || sa == 0)
		return (sa > sb) - (sa < sb);
	/* same sign: compare magnitudes, then flip for negatives */
	if (a->ilen != b->ilen) {
		c = a->ilen > b->ilen ? 1 : -1;
	} else {
		c = sign_of(memcmp(a->ip, b->ip, (size_t)a->ilen));
		if (c == 0) {
			m = a->flen < b->flen ? a->flen : b->flen;
			c = m > 0 ? sign_of(memcmp(a->fp, b->fp, (size_t)m)) : 0;
			if (c == 0)
				c = (a->flen > b->flen) - (a->flen < b->flen);
		}
	}
	return sa < 0 ? -c : c;
}

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

static bool parse_numeric_binary(const rowcmp_field_t *f, num_bin_t *n)
{
	int16_t nd;
	uint16_t sign;

	if (f->len < 8)
		return false;
	nd = (int16_t)be16(f->data);
	n->weight = (int16_t)be16(f->data + 2);
	sign = be16(f->data + 4);
	if (nd < 0 || f->len != 8 + 2 * (int32_t)nd)
		return false;
	n->dig = f->data + 8;
	n->nd = nd;
	n->neg = false;
	switch (sign) {
	case NUMERIC_NAN:
		n->kind = NUM_NAN;
		return true;
	case NUMERIC_PINF:
		n->kind = NUM_PINF;
		return true;
	case NUMERIC_NINF:
		n->kind = NUM_NINF;
		return true;
	case NUMERIC_POS:
	case NUMERIC_NEG:
		n->kind = NUM_FINITE;
		n->neg = sign == NUMERIC_NEG;
		break;
	default:
		return false;
	}
	for (int i = 0; i < n->nd; i++) {
		if (be16(n->dig + 2 * i) > 9999)
			return false;
	}
	while (n->nd > 0 && be16(n->dig) == 0) {
		n->dig += 2;
		n->nd--;
		n->weight--;
	}
	while (n->nd > 0 && be16(n->dig + 2 * (n->nd - 1)) == 0)
		n->nd--;
	if (n->nd == 0)
		n->neg = false;
	return true;
}

static int cmp_numeric_binary(const num_bin_t *a, const num_bin_t *b)
{
	int sa, sb, c = 0;
	int m;

	if (a->kind != b->kind || a->kind != NUM_FINITE)
		return (a->kind > b->kind) - (a->kind < b->kind);
	sa = a->nd == 0 ? 0 : a->neg ? -1 : 1;
	sb = b->nd == 0 ? 0 : b->neg ? -1 : 1;
	if (sa != sb || sa == 0)
		return (sa > sb) - (sa < sb);
	if (a->weight != b->weight) {
		c = a->weight > b->weight ? 1 : -1;
	} else {
		m = a->nd < b->nd ? a->nd : b->nd;
		for (int i = 0; i < m && c == 0; i++)
			c = cmp_i64(be16(a->dig + 2 * i), be16(b->dig + 2 * i));
		if (c == 0)
			c = (a->nd > b->nd) - (a->nd < b->nd);
	}
	return sa < 0 ? -c : c;
}

/* ---- comparing two values of a key ---------------------------------------- */

static const struct {
	uint32_t oid;
	const char *name;
} type_names[] = {
    {OID_BOOL, "boolean"},
    {OID_BYTEA, "bytea"},
    {OID_CHAR, "\"char\""},
    {OID_NAME, "name"},
    {OID_INT8, "bigint"},
    {OID_INT2, "smallint"},
    {OID_INT4, "integer"},
    {OID_TEXT, "text"},
    {OID_OID, "oid"},
    {OID_FLOAT4, "real"},
    {OID_FLOAT8, "double precision"},
    {OID_BPCHAR, "character"},
    {OID_VARCHAR, "character varying"},
    {OID_DATE, "date"},
    {OID_TIME, "time"},
    {OID_TIMESTAMP, "timestamp"},
    {OID_TIMESTAMPTZ, "timestamptz"},
    {OID_INTERVAL, "interval"},
    {OID_TIMETZ, "timetz"},
    {OID_NUMERIC, "numeric"},
    {OID_UUID, "uuid"},
};

/* The types cmp_values knows, by name; NULL for any other. */
static const char *type_name(uint32_t oid)
{
	for (size_t i = 0; i < sizeof(type_names) / sizeof(type_names[0]); i++) {
		if (type_names[i].oid == oid)
			return type_names[i].name;
	}
	return NULL;
}

bool rowcmp_supported(uint32_t type_oid, int16_t format)
{
	return (format == 0 || format == 1) && type_name(type_oid) != NULL;
}

/* Why a comparison failed: a value that does not decode, or something else. */
typedef struct cmp_fail {
	const rowcmp_field_t *bad; /* the value, or NULL */
	const char *why;           /* when bad is NULL */
} cmp_fail_t;

#define DECODE2(ok_a, ok_b)                                                                        \
	do {                                                                                       \
		if (!(ok_a)) {                                                                     \
			fail->bad = a;                                                             \
			return 0;                                                                  \
		}                                                                                  \
		if (!(ok_b)) {                                                                     \
			fail->bad = b;                                                             \
			return 0;                                                                  \
		}                                                                                  \
	} while (0)

/* <0, 0, >0 for two non-NULL values of key k, ascending; fail set on error. */
static int cmp_values(const rowcmp_key_t *k, const rowcmp_field_t *a, const rowcmp_field_t *b,
                      cmp_fail_t *fail)
{
	int16_t fmt = k->format;
	int64_t ia, ib;
	int r = 0;

	if (fmt != 0 && fmt != 1) {
		fail->why = "unknown format code";
		return 0;
	}
	switch (k->type_oid) {
	case OID_INT2:
	case OID_INT4:
	case OID_INT8:
	case OID_OID:
		DECODE2(parse_int(a, k->type_oid, fmt, &ia), parse_int(b, k->type_oid, fmt, &ib));
		return cmp_i64(ia, ib);
	case OID_TEXT:
	case OID_VARCHAR:
		if (!text_cmp_text(k->coll, a->data, (size_t)a->len, b->data, (size_t)b->len, &r))
			fail->why = "out of memory";
		return r;
	case OID_BPCHAR:
		if (!text_cmp_text(k->coll, a->data, text_bpchar_len(a), b->data,
		                   text_bpchar_len(b), &r))
			fail->why = "out of memory";
		return r;
	case OID_NAME:
		return cmp_bytes(a->data, (size_t)a->len, b->data, (size_t)b->len);
	case OID_TIMESTAMP:
	case OID_TIMESTAMPTZ: {
		bool tz = k->type_oid == OID_TIMESTAMPTZ;

		DECODE2(time_parse_timestamp(a, fmt, tz, &ia),
		        time_parse_timestamp(b, fmt, tz, &ib));
		return cmp_i64(ia, ib);
	}
	case OID_DATE:
		DECODE2(time_parse_date(a, fmt, &ia), time_parse_date(b, fmt, &ib));
		return cmp_i64(ia, ib);
	case OID_TIME:
		DECODE2(time_parse_time(a, fmt, &ia), time_parse_time(b, fmt, &ib));
		return cmp_i64(ia, ib);
	case OID_BOOL:
		DECODE2(parse_bool(a, fmt, &ia), parse_bool(b, fmt, &ib));
		return cmp_i64(ia, ib);
	case OID_CHAR:
		DECODE2(parse_char(a, fmt, &ia), parse_char(b, fmt, &ib));
		return cmp_i64(ia, ib);
	case OID_FLOAT4:
	case OID_FLOAT8: {
		double da, db;

		DECODE2(parse_float(a, k->type_oid, fmt, &da),
		        parse_float(b, k->type_oid, fmt, &db));
		return cmp_double(da, db);
	}
	case OID_NUMERIC:
		if (fmt == 0) {
			num_text_t na, nb;

			DECODE2(parse_numeric_text(a, &na), parse_numeric_text(b, &nb));
			return cmp_numeric_text(&na, &nb);
		} else {
			num_bin_t na, nb;

			DECODE2(parse_numeric_binary(a, &na), parse_numeric_binary(b, &nb));
			return cmp_numeric_binary(&na, &nb);
		}
	case OID_UUID: {
		uint8_t ua[16], ub[16];

		DECODE2(text_parse_uuid(a, fmt, ua), text_parse_uuid(b, fmt, ub));
		return sign_of(memcmp(ua, ub, 16));
	}
	case OID_TIMETZ: {
		timetz_t ta, tb;

		DECODE2(time_parse_timetz(a, fmt, &ta), time_parse_timetz(b, fmt, &tb));
		return time_cmp_timetz(&ta, &tb);
	}
	case OID_INTERVAL: {
		__int128 sa, sb;

		DECODE2(time_parse_interval(a, fmt, &sa), time_parse_interval(b, fmt, &sb));
		return (sa > sb) - (sa < sb);
	}
	case OID_BYTEA:
		if (fmt != 0)
			return cmp_bytes(a->data, (size_t)a->len, b->data, (size_t)b->len);
		DECODE2(text_check_bytea_hex(a), text_check_bytea_hex(b));
		return text_cmp_bytea_hex(a, b);
	default:
		fail->why = "type not supported";
		return 0;
	}
}

/* The message for a failed comparison: the type, the format and, if short and printable, the value.
 */
static void fail_message(const rowcmp_key_t *k, const cmp_fail_t *fail, char *errbuf, size_t errlen)
{
	const char *tn = type_name(k->type_oid);
	const char *fmt = k->format == 0 ? "text" : "binary";
	bool printable = fail->bad != NULL && fail->bad->len <= 48;

	if (errbuf == NULL || errlen == 0)
		return;
	if (fail->bad == NULL) {
		if (tn != NULL)
			snprintf(errbuf, errlen, "cannot order by column %d (%s, %s format): %s",
			         k->column + 1, tn, fmt, fail->why);
		else
			snprintf(errbuf, errlen, "cannot order by column %d: type %u not supported",
			         k->column + 1, k->type_oid);
		return;
	}
	for (int32_t i = 0; printable && i < fail->bad->len; i++) {
		if (fail->bad->data[i] < 0x20 || fail->bad->data[i] > 0x7e)
			printable = false;
	}
	if (printable)
		snprintf(errbuf, errlen,
		         "cannot order by column %d: invalid %s value in %s format: \"%.*s\"",
		         k->column + 1, tn, fmt, (int)fail->bad->len,
		         (const char *)fail->bad->data);
	else
		snprintf(errbuf, errlen,
		         "cannot order by column %d: invalid %s value in %s format (%d bytes)",
		         k->column + 1, tn, fmt, (int)fail->bad->len);
}

int rowcmp_compare(const rowcmp_key_t *keys, int n_keys, const rowcmp_field_t *a,
                   const rowcmp_field_t *b, bool *err, char *errbuf, size_t errlen)
{
	for (int i = 0; i < n_keys; i++) {
		const rowcmp_key_t *k = &keys[i];
		const rowcmp_field_t *fa = &a[k->column], *fb = &b[k->column];
		cmp_fail_t fail = {NULL, NULL};
		int c;

		/* NULLS FIRST/LAST is where NULLs go in the output, whatever DESC says */
		if (fa->len < 0 || fb->len < 0) {
			if (fa->len < 0 && fb->len < 0)
				continue;
			c = fa->len < 0 ? -1 : 1;
			return k->nulls_first ? c : -c;
		}
		c = cmp_values(k, fa, fb, &fail);
		if (fail.bad != NULL || fail.why != NULL) {
			fail_message(k, &fail, errbuf, errlen);
			*err = true;
			return 0;
		}
		if (c != 0)
			return k->desc ? -c : c;
	}
	return 0;
}

/* ---- DataRow ------------------------------------------------------------- */

int rowcmp_fields(const uint8_t *body, size_t len, rowcmp_field_t *out, int max)
{
	size_t pos = 2;
	int n;

	if (len < 2)
		return -1;
	n = (int16_t)be16(body);
	if (n < 0 || n > max)
		return -1;
	for (int i = 0; i < n; i++) {
		int32_t flen;

		if (len - pos < 4)
			return -1;
		flen = (int32_t)be32(body + pos);
		pos += 4;
		if (flen < -1 || (flen > 0 && (size_t)flen > len - pos))
			return -1;
		out[i].data = body + pos;
		out[i].len = flen;
		if (flen > 0)
			pos += (size_t)flen;
	}
	return pos == len ? n : -1;
}
