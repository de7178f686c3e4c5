/*
 * rowcmp_text.c — the sort keys that compare as strings of bytes: text,
 * varchar and bpchar under a collation (rowcmp_coll_t, made here from
 * datcollate), and uuid and bytea decoded from their text form.
 */
#define _GNU_SOURCE
#include "router/rowcmp_int.h"

#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- collations ---------------------------------------------------------- */

struct rowcmp_coll {
	locale_t loc; /* (locale_t)0 when the collation is byte order */
};

/*
 * "C" and "POSIX" are byte order by definition, and PostgreSQL compares
 * with memcmp for them. glibc's C.UTF-8 collates by code point, which for
 * UTF-8 is byte order too (PostgreSQL 15 calls strcoll_l for it, with the
 * same result; test_rowcmp checks the equivalence).
 */
static bool coll_is_bytes(const char *name)
{
	static const char *const bytes[] = {"C", "POSIX", "C.UTF-8", "C.utf8"};

	for (size_t i = 0; i < sizeof(bytes) / sizeof(bytes[0]); i++) {
		if (strcmp(name, bytes[i]) == 0)
			return true;
	}
	return false;
}

rowcmp_coll_t *rowcmp_coll_new(const char *lc_collate, char *err, size_t errlen)
{
	rowcmp_coll_t *c;

	if (lc_collate == NULL || lc_collate[0] == '\0') {
		snprintf(err, errlen, "no collation named");
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (coll_is_bytes(lc_collate))
		return c;
	c->loc = newlocale(LC_COLLATE_MASK, lc_collate, (locale_t)0);
	if (c->loc == (locale_t)0) {
		snprintf(err, errlen, "collation \"%s\" is not available on this machine",
		         lc_collate);
		free(c);
		return NULL;
	}
	return c;
}

void rowcmp_coll_free(rowcmp_coll_t *c)
{
	if (c == NULL)
		return;
	if (c->loc != (locale_t)0)
		freelocale(c->loc);
	free(c);
}

/* ---- text ---------------------------------------------------------------- */

#define COLL_STACK 512

/*
 * varstr_cmp for a libc collation: equal bytes are equal without asking
 * the locale; otherwise strcoll_l on NUL-terminated copies, and strcmp to
 * break its ties, because a deterministic collation never calls two
 * different strings equal. false when memory runs out for a long value.
 */
bool text_cmp_text(const rowcmp_coll_t *coll, const uint8_t *a, size_t alen, const uint8_t *b,
                   size_t blen, int *out)
{
	char sa[COLL_STACK], sb[COLL_STACK];
	char *pa = sa, *pb = sb;
	int r;

	if (coll == NULL || coll->loc == (locale_t)0) {
		*out = cmp_bytes(a, alen, b, blen);
		return true;
	}
	if (alen == blen && memcmp(a, b, alen) == 0) {
		*out = 0;
		return true;
	}
	if (alen >= sizeof(sa))
		pa = malloc(alen + 1);
	if (blen >= sizeof(sb))
		pb = malloc(blen + 1);
	if (pa == NULL || pb == NULL) {
		if (pa != sa)
			free(pa);
		if (pb != sb)
			free(pb);
		return false;
	}
	memcpy(pa, a, alen);
	pa[alen] = '\0';
	memcpy(pb, b, blen);
	pb[blen] = '\0';
	r = strcoll_l(pa, pb, coll->loc);
	if (r == 0)
		r = strcmp(pa, pb);
	if (pa != sa)
		free(pa);
	if (pb != sb)
		free(pb);
	*out = sign_of(r);
	return true;
}

/* bcTruelen: a bpchar without its trailing spaces. */
size_t text_bpchar_len(const rowcmp_field_t *f)
{
	size_t n = (size_t)f->len;

	while (n > 0 && f->data[n - 1] == ' ')
		n--;
	return n;
}

/* ---- uuid, bytea ---------------------------------------------------------- */

bool text_parse_uuid(const rowcmp_field_t *f, int16_t format, uint8_t out[16])
{
	const uint8_t *p = f->data;
	int n = 0;

	if (format != 0) {
		if (f->len != 16)
			return false;
		memcpy(out, p, 16);
		return true;
	}
	if (f->len != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		int hi, lo;

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (p[i] != '-')
				return false;
			continue;
		}
		hi = hex_value(p[i]);
		lo = i + 1 < 36 ? hex_value(p[i + 1]) : -1;
		if (hi < 0 || lo < 0)
			return false;
		out[n++] = (uint8_t)(hi << 4 | lo);
		i++;
	}
	return true;
}

/* bytea_output hex: "\x" and two hex digits a byte. */
bool text_check_bytea_hex(const rowcmp_field_t *f)
{
	if (f->len < 2 || f->data[0] != '\\' || f->data[1] != 'x' || f->len % 2 != 0)
		return false;
	for (int32_t i = 2; i < f->len; i++) {
		if (hex_value(f->data[i]) < 0)
			return false;
	}
	return true;
}

/* byteacmp on the decoded bytes, decoding as it goes. */
int text_cmp_bytea_hex(const rowcmp_field_t *a, const rowcmp_field_t *b)
{
	int32_t an = (a->len - 2) / 2, bn = (b->len - 2) / 2;

	for (int32_t i = 0; i < an && i < bn; i++) {
		int va = hex_value(a->data[2 + 2 * i]) << 4 | hex_value(a->data[3 + 2 * i]);
		int vb = hex_value(b->data[2 + 2 * i]) << 4 | hex_value(b->data[3 + 2 * i]);

		if (va != vb)
			return va < vb ? -1 : 1;
	}
	return (an > bn) - (an < bn);
}
