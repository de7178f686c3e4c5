/*
 * join_keys.c — the probe keys a member holds for a probed side, each once.
 *
 * Why once: a probe runs once per batch of JOIN_BATCH_KEYS keys, and a row
 * whose column equals a key in two batches would come twice, and the final
 * statement would join it twice: a key sent again must not start a second
 * fetch of the same rows. Within one batch `col = ANY($1)` finds a row once
 * however often its key is in the array. So keys are split into batches
 * only when equal text is the only way two keys are equal (integers and
 * uuids: their text is canonical), and then each key text is kept once; any
 * other key type (numeric 1.0 = 1.00, text in a collation that ignores case,
 * float -0 = 0, ...) goes in one batch per member, as do the keys of a
 * co-located pair (join_plan.h), whose partner rows may match keys in two
 * batches through two different rows.
 */
#include "proxy/join_int.h"

#include <stdlib.h>
#include <string.h>

bool join_keys_batched(uint32_t type)
{
	switch (type) {
	case 20:   /* int8 */
	case 21:   /* int2 */
	case 23:   /* int4 */
	case 2950: /* uuid */
		return true;
	default:
		return false;
	}
}

/* FNV-1a, never 0 (0 marks an empty slot). */
static uint64_t key_hash(const uint8_t *v, size_t len)
{
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < len; i++) {
		h ^= v[i];
		h *= 1099511628211ULL;
	}
	return h != 0 ? h : 1;
}

static int keyset_grow(keyset_t *s)
{
	size_t cap = s->cap > 0 ? s->cap * 2 : 64;
	keyset_t n = {.cap = cap, .n = s->n};

	n.h = calloc(cap, sizeof *n.h);
	n.k = calloc(cap, sizeof *n.k);
	n.len = calloc(cap, sizeof *n.len);
	if (n.h == NULL || n.k == NULL || n.len == NULL) {
		free(n.h);
		free(n.k);
		free(n.len);
		return -1;
	}
	for (size_t i = 0; i < s->cap; i++) {
		size_t at;

		if (s->h[i] == 0)
			continue;
		at = s->h[i] & (cap - 1);
		while (n.h[at] != 0)
			at = (at + 1) & (cap - 1);
		n.h[at] = s->h[i];
		n.k[at] = s->k[i];
		n.len[at] = s->len[i];
	}
	free(s->h);
	free(s->k);
	free(s->len);
	*s = n;
	return 0;
}

int join_keyset_add(keyset_t *s, const uint8_t *v, size_t len)
{
	uint64_t h = key_hash(v, len);
	size_t at;

	if ((s->n + 1) * 2 > s->cap && keyset_grow(s) < 0)
		return -1;
	at = h & (s->cap - 1);
	for (; s->h[at] != 0; at = (at + 1) & (s->cap - 1))
		if (s->h[at] == h && s->len[at] == len && memcmp(s->k[at], v, len) == 0)
			return 0;
	if ((s->k[at] = malloc(len > 0 ? len : 1)) == NULL)
		return -1;
	memcpy(s->k[at], v, len);
	s->len[at] = len;
	s->h[at] = h;
	s->n++;
	return 1;
}

void join_keyset_free(keyset_t *s)
{
	for (size_t i = 0; i < s->cap; i++)
		if (s->h[i] != 0)
			free(s->k[i]);
	free(s->h);
	free(s->k);
	free(s->len);
	memset(s, 0, sizeof *s);
}
