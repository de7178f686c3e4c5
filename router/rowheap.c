/*
 * rowheap.c — the k-way merge of sorted row streams (rowheap_t, declared in
 * rowcmp.h): which source's head row goes next, by rowcmp_compare.
 */
#include "router/rowcmp.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * A binary min-heap of the sources that have a head row, ordered by the
 * row and then by source index. The index makes the order total, so equal
 * rows leave in source order and the merge is stable.
 *
 * The source that rowheap_next hands out stays at the root while its next
 * row is fetched ("taken"): when that row arrives, one sift-down puts it in
 * place, instead of a pop now and a push later. Its old fields are not
 * looked at meanwhile (the caller may have freed them); anything else that
 * changes the heap first takes the taken source out properly.
 */
enum src_state { SRC_WAITING, SRC_HEAD, SRC_DONE };

typedef struct rowheap_src {
	const rowcmp_field_t *fields;
	int n_fields;
	enum src_state state;
	int pos; /* index in heap[] while in the heap */
} rowheap_src_t;

struct rowheap {
	rowcmp_key_t *keys;
	int n_keys;
	int k;
	rowheap_src_t *src;
	int *heap; /* source indexes */
	int n_heap;
	int n_waiting;
	int taken; /* the source at heap[0] whose row was handed out, or -1 */
	bool failed;
	char err[256];
};

static void heap_fail(rowheap_t *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void heap_fail(rowheap_t *h, const char *fmt, ...)
{
	va_list ap;

	if (h->failed)
		return; /* keep the first reason */
	h->failed = true;
	va_start(ap, fmt);
	vsnprintf(h->err, sizeof(h->err), fmt, ap);
	va_end(ap);
}

/* Whether source i's head row goes before source j's. */
static bool heap_before(rowheap_t *h, int i, int j)
{
	bool err = false;
	char msg[200];
	int c = rowcmp_compare(h->keys, h->n_keys, h->src[i].fields, h->src[j].fields, &err, msg,
	                       sizeof(msg));

	if (err)
		heap_fail(h, "%s", msg);
	if (c != 0)
		return c < 0;
	return i < j;
}

static void heap_put(rowheap_t *h, int pos, int s)
{
	h->heap[pos] = s;
	h->src[s].pos = pos;
}

static void sift_up(rowheap_t *h, int pos)
{
	int s = h->heap[pos];

	while (pos > 0) {
		int parent = (pos - 1) / 2;

		if (!heap_before(h, s, h->heap[parent]))
			break;
		heap_put(h, pos, h->heap[parent]);
		pos = parent;
	}
	heap_put(h, pos, s);
}

static void sift_down(rowheap_t *h, int pos)
{
	int s = h->heap[pos];

	for (;;) {
		int child = 2 * pos + 1;

		if (child >= h->n_heap)
			break;
		if (child + 1 < h->n_heap && heap_before(h, h->heap[child + 1], h->heap[child]))
			child++;
		if (!heap_before(h, h->heap[child], s))
			break;
		heap_put(h, pos, h->heap[child]);
		pos = child;
	}
	heap_put(h, pos, s);
}

static void heap_remove_at(rowheap_t *h, int pos)
{
	int last = h->heap[--h->n_heap];

	if (pos == h->n_heap)
		return;
	heap_put(h, pos, last);
	sift_up(h, pos);
	sift_down(h, h->src[last].pos);
}

/* Take the handed-out source out of the root before anything else moves. */
static void heap_settle_taken(rowheap_t *h)
{
	if (h->taken < 0)
		return;
	h->taken = -1;
	h->n_heap--;
	if (h->n_heap > 0) {
		heap_put(h, 0, h->heap[h->n_heap]);
		sift_down(h, 0);
	}
}

rowheap_t *rowheap_new(int k, const rowcmp_key_t *keys, int n_keys)
{
	rowheap_t *h;

	if (k < 0 || n_keys < 0)
		return NULL;
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		return NULL;
	h->k = k;
	h->n_keys = n_keys;
	h->n_waiting = k;
	h->taken = -1;
	h->keys = calloc((size_t)n_keys + 1, sizeof(*h->keys));
	h->src = calloc((size_t)k + 1, sizeof(*h->src));
	h->heap = calloc((size_t)k + 1, sizeof(*h->heap));
	if (h->keys == NULL || h->src == NULL || h->heap == NULL) {
		rowheap_free(h);
		return NULL;
	}
	if (n_keys > 0)
		memcpy(h->keys, keys, (size_t)n_keys * sizeof(*keys));
	return h;
}

void rowheap_free(rowheap_t *h)
{
	if (h == NULL)
		return;
	free(h->keys);
	free(h->src);
	free(h->heap);
	free(h);
}

void rowheap_set(rowheap_t *h, int i, const rowcmp_field_t *fields, int n_fields)
{
	rowheap_src_t *s;

	if (i < 0 || i >= h->k) {
		heap_fail(h, "merge: no source %d", i);
		return;
	}
	s = &h->src[i];
	for (int j = 0; j < h->n_keys; j++) {
		if (h->keys[j].column < 0 || h->keys[j].column >= n_fields) {
			heap_fail(h, "merge: a row of %d columns has no sort column %d", n_fields,
			          h->keys[j].column + 1);
			return;
		}
	}
	switch (s->state) {
	case SRC_DONE:
		heap_fail(h, "merge: a row for source %d after its end", i);
		return;
	case SRC_HEAD:
		/* a new head row without the old one taken: move it where it belongs */
		heap_settle_taken(h);
		s->fields = fields;
		s->n_fields = n_fields;
		sift_up(h, s->pos);
		sift_down(h, s->pos);
		return;
	case SRC_WAITING:
		h->n_waiting--;
		s->fields = fields;
		s->n_fields = n_fields;
		s->state = SRC_HEAD;
		if (h->taken == i) {
			h->taken = -1;
			sift_down(h, 0);
			return;
		}
		heap_settle_taken(h);
		heap_put(h, h->n_heap++, i);
		sift_up(h, h->n_heap - 1);
		return;
	}
}

void rowheap_done(rowheap_t *h, int i)
{
	rowheap_src_t *s;

	if (i < 0 || i >= h->k) {
		heap_fail(h, "merge: no source %d", i);
		return;
	}
	s = &h->src[i];
	if (s->state == SRC_DONE)
		return;
	if (s->state == SRC_WAITING) {
		h->n_waiting--;
		if (h->taken == i)
			heap_settle_taken(h);
	} else {
		heap_settle_taken(h);
		heap_remove_at(h, s->pos);
	}
	s->state = SRC_DONE;
}

int rowheap_waiting(const rowheap_t *h)
{
	return h->n_waiting;
}

int rowheap_next(rowheap_t *h, char *errbuf, size_t errlen)
{
	int s;

	if (!h->failed && h->n_waiting > 0)
		heap_fail(h, "merge: next row asked for while %d sources are waiting",
		          h->n_waiting);
	if (h->failed) {
		if (errbuf != NULL && errlen > 0)
			snprintf(errbuf, errlen, "%s", h->err);
		return -2;
	}
	if (h->n_heap == 0)
		return -1;
	s = h->heap[0];
	h->src[s].state = SRC_WAITING;
	h->n_waiting++;
	h->taken = s;
	return s;
}
