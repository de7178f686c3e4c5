/*
 * rowcmp_num.c — the numeric sort keys: int2, int4, int8 and oid, bool,
 * "char", float4 and float8, and numeric, decoded from binary or from the
 * text PostgreSQL writes. Numeric is compared in place, digit by digit
 * (text) or base-10000 digit by digit (binary), without building a value.
 */
#define _GNU_SOURCE
#include "router/rowcmp_int.h"

#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>

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

bool num_parse_int(const rowcmp_field_t *f, uint32_t type, int16_t format, int64_t *out)
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

bool num_parse_bool(const rowcmp_field_t *f, int16_t format, int64_t *out)
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
bool num_parse_char(const rowcmp_field_t *f, int16_t format, int64_t *out)
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

bool num_parse_float(const rowcmp_field_t *f, uint32_t type, int16_t format, double *out)
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
int num_cmp_double(double a, double b)
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

bool num_parse_numeric_text(const rowcmp_field_t *f, num_text_t *n)
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

int num_cmp_numeric_text(const num_text_t *a, const num_text_t *b)
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

bool num_parse_numeric_binary(const rowcmp_field_t *f, num_bin_t *n)
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

int num_cmp_numeric_binary(const num_bin_t *a, const num_bin_t *b)
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
