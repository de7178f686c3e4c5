/*
 * pbuf.c — the byte buffer's calls that may move or grow its block (see
 * pbuf.h).
 */
#include "proxy/pbuf.h"

#include <stdint.h>
#include <stdlib.h>

pbuf_t *pbuf_new(void)
{
	return calloc(1, sizeof(pbuf_t));
}

void pbuf_free(pbuf_t *b)
{
	if (b == NULL)
		return;
	free(b->data);
	free(b);
}

void pbuf_release(pbuf_t *b)
{
	free(b->data);
	b->data = NULL;
	b->off = b->len = b->cap = 0;
}

/* The size of a block for `need` bytes: doubling from PBUF_MIN or the block's size. */
static size_t block_size(size_t cap, size_t need)
{
	size_t size = cap < PBUF_MIN ? PBUF_MIN : cap;

	while (size < need) {
		if (size > SIZE_MAX / 2)
			return need;
		size *= 2;
	}
	return size;
}

/*
 * Make room for n more bytes, `front` of them before what b holds and the
 * rest after it: afterwards b->off >= front and b->off + b->len + n - front
 * <= b->cap. 0, or -1 with b unchanged.
 */
static int make_room(pbuf_t *b, size_t front, size_t n)
{
	size_t back = n - front, need, size;
	unsigned char *data;

	if (b->off >= front && b->cap - b->off - b->len >= back)
		return 0;
	if (b->len > SIZE_MAX - n)
		return -1;
	need = b->len + n;
	if (need <= b->cap && b->len <= b->cap / 2) {
		/* the block is big enough: slide the bytes, which are few, into place */
		memmove(b->data + front, b->data + b->off, b->len);
		b->off = front;
		return 0;
	}
	size = block_size(b->cap, need);
	data = malloc(size);
	if (data == NULL)
		return -1;
	if (b->len > 0)
		memcpy(data + front, b->data + b->off, b->len);
	free(b->data);
	b->data = data;
	b->cap = size;
	b->off = front;
	return 0;
}

int pbuf_add_slow(pbuf_t *b, const void *data, size_t n)
{
	if (make_room(b, 0, n) < 0)
		return -1;
	memcpy(b->data + b->off + b->len, data, n);
	b->len += n;
	return 0;
}

int pbuf_prepend(pbuf_t *b, const void *data, size_t n)
{
	if (n == 0)
		return 0;
	if (make_room(b, n, n) < 0)
		return -1;
	b->off -= n;
	b->len += n;
	memcpy(b->data + b->off, data, n);
	return 0;
}

int pbuf_remove_buffer(pbuf_t *src, pbuf_t *dst, size_t n)
{
	if (n > src->len)
		n = src->len;
	if (n == 0)
		return 0;
	if (n == src->len && dst->len == 0) {
		/* all of it to an empty buffer: trade blocks */
		pbuf_t empty = *dst;

		*dst = *src;
		*src = empty;
		src->off = 0;
		return (int)n;
	}
	if (pbuf_add(dst, src->data + src->off, n) < 0)
		return -1;
	pbuf_drain(src, n);
	return (int)n;
}
