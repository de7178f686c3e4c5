/*
 * fuzz_rowcmp.c — the merger's value comparison (router/rowcmp.h).
 *
 * Input: a type byte (index into types[]), a flags byte (bit 0 binary
 * format, bit 1 DESC, bit 2 NULLS FIRST, bits 3-4 the collation), then
 * three values, each a header byte (0xff: NULL) giving its length, and its
 * bytes; whatever is left is a DataRow body for rowcmp_fields.
 *
 * A comparison is an order, or the merge sends rows out of order:
 *   reflexive       cmp(a, a) == 0
 *   antisymmetric   sign(cmp(a, b)) == -sign(cmp(b, a))
 *   transitive      a <= b and b <= c imply a <= c (and with <)
 * and a value that does not decode fails the same way whichever side it is
 * on. The k-way merge of the three values (one source each) must hand them
 * out in order, equal ones in source order.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/fuzz_util.h"
#include "router/rowcmp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static const uint32_t types[] = {
    16,   17,   18,   19,   20,   21,   23,   25,   26,   700,  701,
    1042, 1043, 1082, 1083, 1114, 1184, 1186, 1266, 1700, 2950, 114, /* json: unsupported */
};
#define N_TYPES (sizeof(types) / sizeof(types[0]))

static rowcmp_coll_t *colls[3]; /* C, C.UTF-8, en_US.UTF-8 (NULL when missing) */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char *const names[3] = {"C", "C.UTF-8", "en_US.UTF-8"};
	char err[256];

	(void)argc;
	(void)argv;
	for (int i = 0; i < 3; i++) {
		colls[i] = rowcmp_coll_new(names[i], err, sizeof(err));
		if (colls[i] == NULL)
			fprintf(stderr, "fuzz_rowcmp: no collation %s: %s\n", names[i], err);
	}
	return 0;
}

static int sign(int v)
{
	return (v > 0) - (v < 0);
}

/* cmp(a, b) with its error flag; a message must come with an error. */
static int cmp(const rowcmp_key_t *k, const rowcmp_field_t *a, const rowcmp_field_t *b, bool *err)
{
	char msg[256];
	int c;

	*err = false;
	msg[0] = '\0';
	c = rowcmp_compare(k, 1, a, b, err, msg, sizeof(msg));
	if (*err) {
		fuzz_check(c == 0);
		fuzz_check(msg[0] != '\0' && memchr(msg, '\0', sizeof(msg)) != NULL);
	}
	return sign(c);
}

static void check_merge(const rowcmp_key_t *k, const rowcmp_field_t *v)
{
	rowheap_t *h = rowheap_new(3, k, 1);
	char msg[256];
	int prev = -1;

	fuzz_check(h != NULL);
	for (int i = 0; i < 3; i++)
		rowheap_set(h, i, &v[i], 1);
	for (int n = 0; n < 3; n++) {
		int i = rowheap_next(h, msg, sizeof(msg));
		bool err;

		fuzz_check(i >= 0 && i < 3);
		if (prev >= 0) {
			int c = cmp(k, &v[prev], &v[i], &err);

			fuzz_check(!err && (c < 0 || (c == 0 && prev < i)));
		}
		prev = i;
		rowheap_done(h, i);
	}
	fuzz_check(rowheap_waiting(h) == 0);
	fuzz_check(rowheap_next(h, msg, sizeof(msg)) == -1);
	rowheap_free(h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_in_t in = {data, size};
	uint8_t t = fuzz_u8(&in), flags = fuzz_u8(&in);
	rowcmp_key_t k = {0};
	rowcmp_field_t v[3], out[8];
	uint8_t *bufs[3];
	uint8_t *row;
	size_t row_len;
	int ab, ba, bc, ac, n;
	bool e_ab, e_ba, e_bc, e_ac, e_aa, e_bb, e_cb, e_ca;

	k.column = 0;
	k.type_oid = types[t % N_TYPES];
	k.format = flags & 1;
	k.desc = flags & 2;
	k.nulls_first = flags & 4;
	k.coll = (flags >> 3) % 4 == 3 ? NULL : colls[(flags >> 3) % 4];
	for (int i = 0; i < 3; i++) {
		uint8_t h = fuzz_u8(&in);
		size_t l = h == 0xff ? 0 : h;

		if (l > in.n)
			l = in.n;
		bufs[i] = fuzz_dup(in.p, l);
		in.p += l;
		in.n -= l;
		v[i].data = h == 0xff ? NULL : bufs[i];
		v[i].len = h == 0xff ? -1 : (int32_t)l;
	}
	(void)rowcmp_supported(k.type_oid, k.format);

	fuzz_check(cmp(&k, &v[0], &v[0], &e_aa) == 0);
	fuzz_check(cmp(&k, &v[1], &v[1], &e_bb) == 0);
	ab = cmp(&k, &v[0], &v[1], &e_ab);
	ba = cmp(&k, &v[1], &v[0], &e_ba);
	bc = cmp(&k, &v[1], &v[2], &e_bc);
	ac = cmp(&k, &v[0], &v[2], &e_ac);
	fuzz_check(e_ab == e_ba);
	if (!e_ab)
		fuzz_check(ab == -ba);
	(void)cmp(&k, &v[2], &v[1], &e_cb);
	fuzz_check(e_bc == e_cb);
	(void)cmp(&k, &v[2], &v[0], &e_ca);
	fuzz_check(e_ac == e_ca);
	if (!e_ab && !e_bc && !e_ac) {
		if (ab <= 0 && bc <= 0)
			fuzz_check(ac <= 0);
		if (ab >= 0 && bc >= 0)
			fuzz_check(ac >= 0);
		if (ab == 0 && bc == 0)
			fuzz_check(ac == 0);
		check_merge(&k, v);
	}

	row = fuzz_take_rest(&in, &row_len);
	n = rowcmp_fields(row, row_len, out, 8);
	fuzz_check(n >= -1 && n <= 8);
	for (int i = 0; i < n; i++) {
		fuzz_check(out[i].len >= -1);
		if (out[i].len > 0)
			fuzz_check(out[i].data >= row && out[i].data + out[i].len <= row + row_len);
	}
	free(row);
	for (int i = 0; i < 3; i++)
		free(bufs[i]);
	return 0;
}
