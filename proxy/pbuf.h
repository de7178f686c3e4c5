/*
 * pbuf.h — a byte buffer in one block: bytes are taken from the front and
 * added at the back. The input and output of every sbuf, and the few
 * messages the proxy keeps aside, are pbufs.
 *
 * Why not libevent's evbuffer: an evbuffer is a list of chains, so every
 * read appended to an empty one mallocs a chain and every drain to empty
 * frees it, and each call goes through its locking and callback checks.
 * That was about a fifth of the proxy's instructions per statement. A
 * proxy's buffer holds a message or a few at a time, so one block that
 * stays is enough: adding is a memcpy, taking from the front moves an
 * offset, and a message is always contiguous (pbuf_pullup never copies).
 *
 * The calls are evbuffer's that the proxy used, with the same results
 * (pbuf_pullup of more bytes than held is NULL, copyout copies what there
 * is), so that the code reads the same.
 *
 * The block grows by doubling; it is given back when the buffer empties
 * while larger than PBUF_KEEP, so that a connection that once carried a
 * large result does not keep the memory. Pointers into the bytes (from
 * pbuf_pullup, pbuf_peek) hold until the next add or prepend to the buffer,
 * or a drain that empties it.
 */
#ifndef PGSHARD_PBUF_H
#define PGSHARD_PBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <sys/types.h>

#define PBUF_MIN  512         /* the first block */
#define PBUF_KEEP (16 * 1024) /* a block larger than this goes when the buffer empties */

typedef struct pbuf {
	unsigned char *data; /* NULL until the first byte */
	size_t off;          /* where the bytes start in data */
	size_t len;          /* how many there are */
	size_t cap;          /* the block's size */
} pbuf_t;

pbuf_t *pbuf_new(void);
void pbuf_free(pbuf_t *b);

/* pbuf_add when the room after the bytes is too small: grows or slides. */
int pbuf_add_slow(pbuf_t *b, const void *data, size_t n);

/* Append n bytes: 0, or -1 when out of memory (nothing added). */
static inline int pbuf_add(pbuf_t *b, const void *data, size_t n)
{
	if (n == 0)
		return 0;
	if (b->cap - b->off - b->len < n)
		return pbuf_add_slow(b, data, n);
	memcpy(b->data + b->off + b->len, data, n);
	b->len += n;
	return 0;
}

/* Put n bytes in front of what b holds: 0 or -1 (nothing added). */
int pbuf_prepend(pbuf_t *b, const void *data, size_t n);

/*
 * Move the first n bytes of src (all, when it holds fewer) to the back of
 * dst: how many moved, or -1 when out of memory (nothing moved). All of src
 * into an empty dst trades their blocks instead of copying.
 */
int pbuf_remove_buffer(pbuf_t *src, pbuf_t *dst, size_t n);

/* Give the block back (b is empty and stays usable). */
void pbuf_release(pbuf_t *b);

static inline size_t pbuf_get_length(const pbuf_t *b)
{
	return b->len;
}

/*
 * The first n bytes, contiguous (n < 0: all of them); NULL when b holds
 * fewer than n, or none is asked for or held.
 */
static inline unsigned char *pbuf_pullup(pbuf_t *b, ssize_t n)
{
	size_t want = n < 0 ? b->len : (size_t)n;

	if (want == 0 || want > b->len)
		return NULL;
	return b->data + b->off;
}

/* Everything b holds, in place, and how much: *len 0 and NULL when empty. */
static inline const unsigned char *pbuf_peek(const pbuf_t *b, size_t *len)
{
	*len = b->len;
	return b->len > 0 ? b->data + b->off : NULL;
}

/* Take the first n bytes away (all, when fewer). Always 0, as evbuffer_drain. */
static inline int pbuf_drain(pbuf_t *b, size_t n)
{
	if (n < b->len) {
		b->off += n;
		b->len -= n;
		return 0;
	}
	b->off = b->len = 0;
	if (b->cap > PBUF_KEEP)
		pbuf_release(b);
	return 0;
}

/* Copy out the first n bytes (fewer when b holds fewer), without taking them: how many. */
static inline ssize_t pbuf_copyout(const pbuf_t *b, void *out, size_t n)
{
	if (n > b->len)
		n = b->len;
	if (n > 0)
		memcpy(out, b->data + b->off, n);
	return (ssize_t)n;
}

/* pbuf_copyout, then take them: how many. */
static inline int pbuf_remove(pbuf_t *b, void *out, size_t n)
{
	ssize_t got = pbuf_copyout(b, out, n);

	pbuf_drain(b, (size_t)got);
	return (int)got;
}

/* Copy n bytes found `at` bytes in, without taking them: false when b holds fewer. */
static inline bool pbuf_copyout_at(const pbuf_t *b, size_t at, void *out, size_t n)
{
	if (b->len < at || b->len - at < n)
		return false;
	if (n > 0)
		memcpy(out, b->data + b->off + at, n);
	return true;
}

#endif
