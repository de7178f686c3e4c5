/*
 * hexdigit.h — the value of one hexadecimal digit, for the parsers of the
 * router that read hex text (uuid and bytea keys, COPY escapes, sort keys).
 */
#ifndef PGSHARD_ROUTER_HEXDIGIT_H
#define PGSHARD_ROUTER_HEXDIGIT_H

/* 0 to 15, or -1 when c is not a hex digit (any char or byte value). */
static inline int hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

#endif
