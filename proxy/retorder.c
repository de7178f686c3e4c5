/*
 * retorder.c — a split INSERT's RETURNING rows in VALUES order (see
 * retorder.h).
 *
 * Each member's rows are kept back to back in one buffer of its own, with
 * where each starts; the VALUES list is known as the member each of its
 * rows went to (row_member), and a row's place among its member's rows is
 * the count of earlier rows that went there.
 */
#include "proxy/retorder.h"

#include <stdlib.h>
#include <string.h>

typedef struct held {
	uint8_t *data;
	size_t len, cap;
	size_t *start; /* where each row begins in data */
	size_t n, n_cap;
	size_t given; /* rows of the VALUES list this member got */
} held_t;

struct retorder {
	int *row_member; /* per row of the VALUES list: the member that got it */
	size_t n_rows;
	held_t *m;
	int n_members;
	size_t bytes;
};

int retorder_new(const route_split_t *splits, int n_splits, const int *member_shard, int n_members,
                 retorder_t **out)
{
	retorder_t *r;
	size_t n_rows = 0;

	*out = NULL;
	for (int k = 0; k < n_splits; k++) {
		if (splits[k].rows == NULL)
			return 0; /* no RETURNING */
		n_rows += splits[k].n_rows;
	}
	if (n_splits == 0 || n_members <= 0)
		return 0;
	r = calloc(1, sizeof *r);
	if (r == NULL)
		return -1;
	r->row_member = malloc(sizeof *r->row_member * (n_rows > 0 ? n_rows : 1));
	r->m = calloc((size_t)n_members, sizeof *r->m);
	r->n_rows = n_rows;
	r->n_members = n_members;
	if (r->row_member == NULL || r->m == NULL) {
		retorder_free(r);
		return -1;
	}
	for (size_t i = 0; i < n_rows; i++)
		r->row_member[i] = -1;
	for (int k = 0; k < n_splits; k++) {
		int member = -1;

		for (int i = 0; i < n_members; i++)
			if (member_shard[i] == splits[k].shard)
				member = i;
		if (member < 0) {
			retorder_free(r); /* no link there: rows go out as they come */
			return 0;
		}
		for (size_t j = 0; j < splits[k].n_rows; j++) {
			size_t row = splits[k].rows[j];

			if (row >= n_rows || r->row_member[row] >= 0) {
				retorder_free(r); /* not a split of one VALUES list */
				return 0;
			}
			r->row_member[row] = member;
		}
		r->m[member].given += splits[k].n_rows;
	}
	*out = r;
	return 0;
}

void retorder_drop(retorder_t *r)
{
	for (int i = 0; i < r->n_members; i++) {
		free(r->m[i].data);
		free(r->m[i].start);
		r->m[i].data = NULL;
		r->m[i].start = NULL;
		r->m[i].len = r->m[i].cap = r->m[i].n = r->m[i].n_cap = 0;
	}
	r->bytes = 0;
}

void retorder_free(retorder_t *r)
{
	if (r == NULL)
		return;
	if (r->m != NULL)
		retorder_drop(r);
	free(r->m);
	free(r->row_member);
	free(r);
}

int retorder_hold(retorder_t *r, int member, const uint8_t *msg, size_t len)
{
	held_t *h;

	if (member < 0 || member >= r->n_members)
		return -1;
	h = &r->m[member];
	if (h->n == h->n_cap) {
		size_t cap = h->n_cap > 0 ? 2 * h->n_cap : (h->given > 0 ? h->given : 16);
		size_t *start = realloc(h->start, sizeof *start * cap);

		if (start == NULL)
			return -1;
		h->start = start;
		h->n_cap = cap;
	}
	if (h->len + len > h->cap) {
		size_t cap = h->cap > 0 ? h->cap : 4096;
		uint8_t *data;

		while (cap < h->len + len)
			cap *= 2;
		data = realloc(h->data, cap);
		if (data == NULL)
			return -1;
		h->data = data;
		h->cap = cap;
	}
	memcpy(h->data + h->len, msg, len);
	h->start[h->n++] = h->len;
	h->len += len;
	r->bytes += len;
	return 0;
}

size_t retorder_held(const retorder_t *r)
{
	return r->bytes;
}

/* Row k of member h. */
static void out_row(const held_t *h, size_t k, retorder_out_fn out, void *arg)
{
	size_t end = k + 1 < h->n ? h->start[k + 1] : h->len;

	out(arg, h->data + h->start[k], end - h->start[k]);
}

bool retorder_emit(retorder_t *r, retorder_out_fn out, void *arg)
{
	bool in_order = true;
	size_t *next;

	for (int i = 0; i < r->n_members; i++)
		in_order &= r->m[i].n == r->m[i].given;
	next = in_order && r->n_members > 0 ? calloc((size_t)r->n_members, sizeof *next) : NULL;
	if (next != NULL) {
		for (size_t row = 0; row < r->n_rows; row++) {
			held_t *h = &r->m[r->row_member[row]];

			out_row(h, next[r->row_member[row]]++, out, arg);
		}
		free(next);
	} else {
		in_order = false; /* also when memory ran out: the rows still go out */
		for (int i = 0; i < r->n_members; i++)
			for (size_t k = 0; k < r->m[i].n; k++)
				out_row(&r->m[i], k, out, arg);
	}
	retorder_drop(r);
	return in_order;
}
