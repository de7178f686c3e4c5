/*
 * fuzz_util.h — cutting one libFuzzer input into the arguments of an API call.
 *
 * Every piece handed to the code under test is copied into its own malloc'd
 * buffer of exactly its size, so that AddressSanitizer catches a read one
 * byte past it (a slice of libFuzzer's buffer would not: the next bytes are
 * still inside the allocation).
 *
 * fuzz_check() aborts with a message: a property that fails is a crash, and
 * libFuzzer saves the input that made it.
 */
#ifndef PGSHARD_FUZZ_UTIL_H
#define PGSHARD_FUZZ_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define fuzz_check(cond)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__,        \
			        #cond);                                                            \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

typedef struct fuzz_in {
	const uint8_t *p;
	size_t n;
} fuzz_in_t;

static inline uint8_t fuzz_u8(fuzz_in_t *in)
{
	uint8_t v;

	if (in->n == 0)
		return 0;
	v = in->p[0];
	in->p++;
	in->n--;
	return v;
}

static inline uint32_t fuzz_u32(fuzz_in_t *in)
{
	uint32_t v = 0;

	for (int i = 0; i < 4; i++)
		v = v << 8 | fuzz_u8(in);
	return v;
}

/* An exact-size copy of n bytes (NULL never: n may be 0). */
static inline uint8_t *fuzz_dup(const void *p, size_t n)
{
	uint8_t *d = malloc(n > 0 ? n : 1);

	if (d == NULL)
		abort();
	if (n > 0)
		memcpy(d, p, n);
	return d;
}

/* The bytes up to the next `sep` (or the end), as a copy of exactly that size; *len set. */
static inline uint8_t *fuzz_take_until(fuzz_in_t *in, uint8_t sep, size_t *len)
{
	const uint8_t *end = memchr(in->p, sep, in->n);
	size_t n = end != NULL ? (size_t)(end - in->p) : in->n;
	uint8_t *d = fuzz_dup(in->p, n);

	*len = n;
	in->p += n;
	in->n -= n;
	if (end != NULL) {
		in->p++;
		in->n--;
	}
	return d;
}

/* The same as a NUL-terminated string: the bytes up to `sep` (NULs inside cut it short). */
static inline char *fuzz_take_string(fuzz_in_t *in, uint8_t sep)
{
	const uint8_t *end = memchr(in->p, sep, in->n);
	size_t n = end != NULL ? (size_t)(end - in->p) : in->n;
	char *s = malloc(n + 1);

	if (s == NULL)
		abort();
	memcpy(s, in->p, n);
	s[n] = '\0';
	in->p += n;
	in->n -= n;
	if (end != NULL) {
		in->p++;
		in->n--;
	}
	return s;
}

/* Everything that is left, as an exact-size copy. */
static inline uint8_t *fuzz_take_rest(fuzz_in_t *in, size_t *len)
{
	uint8_t *d = fuzz_dup(in->p, in->n);

	*len = in->n;
	in->p += in->n;
	in->n = 0;
	return d;
}

#endif
