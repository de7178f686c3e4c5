/*
 * rowcmp_int.h — what the files of rowcmp share: the small helpers every
 * decoder uses, and the decoders and comparisons rowcmp.c calls for each
 * type, named after their file (text_).
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

/* Bytes, then length: memcmp order, as COLLATE "C" and bytea compare. */
static inline int cmp_bytes(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c != 0)
		return sign_of(c);
	return (alen > blen) - (alen < blen);
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

/* ---- rowcmp_text.c: text, uuid, bytea ------------------------------------ */

bool text_cmp_text(const rowcmp_coll_t *coll, const uint8_t *a, size_t alen, const uint8_t *b,
                   size_t blen, int *out);
size_t text_bpchar_len(const rowcmp_field_t *f);
bool text_parse_uuid(const rowcmp_field_t *f, int16_t format, uint8_t out[16]);
bool text_check_bytea_hex(const rowcmp_field_t *f);
int text_cmp_bytea_hex(const rowcmp_field_t *a, const rowcmp_field_t *b);

#endif
