/*
 * numtext.h — an integer's decimal text, as printf's "%lld" writes it, for
 * the paths that run once per statement (snprintf costs several times
 * more than the digits).
 */
#ifndef PGSHARD_ROUTER_NUMTEXT_H
#define PGSHARD_ROUTER_NUMTEXT_H

#include <stddef.h>

/* v's digits (with a '-' when negative) and a NUL into buf; its length. buf: 21 bytes. */
static inline int num_text(char buf[21], long long v)
{
	char tmp[20];
	unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
	int n = 0, k = 0;

	do {
		tmp[n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u > 0);
	if (v < 0)
		buf[k++] = '-';
	while (n > 0)
		buf[k++] = tmp[--n];
	buf[k] = '\0';
	return k;
}

#endif
