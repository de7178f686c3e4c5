/*
 * rowcmp.c — ordering result rows as PostgreSQL 15 orders them (see
 * rowcmp.h): two rows compared key by key, each key's values by their type,
 * and a DataRow cut into its fields. The values of each type are decoded in
 * rowcmp_num.c (numbers, bool, "char"), rowcmp_time.c (dates and times) and
 * rowcmp_text.c (collations, text, uuid, bytea), which share rowcmp_int.h;
 * the k-way merge of sorted row streams is rowheap.c.
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
#include "router/rowcmp_int.h"

#include <stdio.h>
#include <string.h>

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
		DECODE2(num_parse_int(a, k->type_oid, fmt, &ia),
		        num_parse_int(b, k->type_oid, fmt, &ib));
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
		DECODE2(num_parse_bool(a, fmt, &ia), num_parse_bool(b, fmt, &ib));
		return cmp_i64(ia, ib);
	case OID_CHAR:
		DECODE2(num_parse_char(a, fmt, &ia), num_parse_char(b, fmt, &ib));
		return cmp_i64(ia, ib);
	case OID_FLOAT4:
	case OID_FLOAT8: {
		double da, db;

		DECODE2(num_parse_float(a, k->type_oid, fmt, &da),
		        num_parse_float(b, k->type_oid, fmt, &db));
		return num_cmp_double(da, db);
	}
	case OID_NUMERIC:
		if (fmt == 0) {
			num_text_t na, nb;

			DECODE2(num_parse_numeric_text(a, &na), num_parse_numeric_text(b, &nb));
			return num_cmp_numeric_text(&na, &nb);
		} else {
			num_bin_t na, nb;

			DECODE2(num_parse_numeric_binary(a, &na), num_parse_numeric_binary(b, &nb));
			return num_cmp_numeric_binary(&na, &nb);
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
