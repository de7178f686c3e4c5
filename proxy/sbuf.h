/*
 * sbuf.h — a non-blocking socket with an input and an output buffer, on a
 * libevent loop (the name is PgBouncer's, the idea too).
 *
 * Why not libevent's bufferevent: it adds and removes its write event
 * around every write and asks the kernel how many bytes are readable before
 * every read, which costs three epoll_ctl calls and an ioctl per message
 * round trip. A proxy's traffic is mostly small requests and replies, so
 * here:
 *
 *   - the read event is added once and stays (removed only to pause);
 *   - a read is one recv() into the input pbuf (pbuf.h);
 *   - writes only append to the output pbuf and mark the sbuf dirty
 *     (sbuf_write, sbuf_move);
 *     at the end of each callback, sbuf_flush_all() writes every dirty
 *     sbuf with one send() each, and only a socket the kernel did not
 *     take everything from gets a write event until it drains.
 */
#ifndef PGSHARD_SBUF_H
#define PGSHARD_SBUF_H

#include <event2/event.h>
#include <stdbool.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include "proxy/pbuf.h"

typedef enum sbuf_event {
	SBUF_CONNECTED,
	SBUF_EOF,
	SBUF_ERROR, /* errno-like code in sbuf->error */
	SBUF_TIMEOUT,
} sbuf_event_t;

typedef struct sbuf sbuf_t;
typedef void (*sbuf_read_fn)(void *arg);
typedef void (*sbuf_drain_fn)(void *arg);
typedef void (*sbuf_event_fn)(void *arg, sbuf_event_t what);

/* What all sbufs of one loop share: the loop and the list of sbufs with output to write. */
typedef struct sbuf_loop {
	struct event_base *base;
	TAILQ_HEAD(, sbuf) dirty;
	/*
	 * Every recv() lands here first and only the bytes received are
	 * appended to the input. Room for a large read in each input instead
	 * would make every input's block that large, and a block above
	 * PBUF_KEEP is freed whenever its buffer empties (a malloc and free
	 * per message, and glibc gives such memory back with madvise(), whose
	 * TLB shootdowns cost more than the copy).
	 */
	char read_buf[64 * 1024];
} sbuf_loop_t;

struct sbuf {
	evutil_socket_t fd;
	sbuf_loop_t *loop;
	pbuf_t *in;
	pbuf_t *out;
	struct event *rev;   /* readable (persistent) */
	struct event *wev;   /* writable: connect finished, or output can go on */
	struct event *timer; /* connect/login timeout */
	TAILQ_ENTRY(sbuf) dirty_link;
	bool dirty;
	bool reading; /* the read event is added */
	bool paused;  /* the owner asked not to read */
	bool writing; /* the write event is added */
	bool connecting;
	bool shut; /* sbuf_shutdown: no more I/O, buffers kept until sbuf_close */
	int error;
	uint64_t n_in, n_out; /* bytes received and sent (for the admin console's figures) */

	sbuf_read_fn on_read;   /* new bytes in `in` */
	sbuf_drain_fn on_drain; /* `out` was written out completely (may be NULL) */
	sbuf_event_fn on_event;
	void *arg;
};

void sbuf_loop_init(sbuf_loop_t *loop, struct event_base *base);

/* Take over an accepted, connected socket (made non-blocking here). 0 or -1. */
int sbuf_accept(sbuf_t *sb, sbuf_loop_t *loop, evutil_socket_t fd, sbuf_read_fn on_read,
                sbuf_drain_fn on_drain, sbuf_event_fn on_event, void *arg);

/* Start a non-blocking connect; SBUF_CONNECTED or SBUF_ERROR follows. Output
 * added before that is sent once connected. 0 or -1 (errno set). */
int sbuf_connect(sbuf_t *sb, sbuf_loop_t *loop, const struct sockaddr *sa, socklen_t len,
                 sbuf_read_fn on_read, sbuf_drain_fn on_drain, sbuf_event_fn on_event, void *arg);

/* Close the socket and free the buffers; safe on a zeroed sbuf. */
void sbuf_close(sbuf_t *sb);

/*
 * Close the socket and stop every event, but keep the buffers: the owner is
 * being closed while callers up the stack may still look at it, and frees it
 * (sbuf_close) at the end of the loop pass. Writes after this are dropped.
 */
void sbuf_shutdown(sbuf_t *sb);

void sbuf_pause(sbuf_t *sb);
void sbuf_resume(sbuf_t *sb);

/* Arm (tv != NULL) or disarm the timeout. */
void sbuf_set_timeout(sbuf_t *sb, const struct timeval *tv);

/* Append to the output; written at the next sbuf_flush_all. */
int sbuf_write(sbuf_t *sb, const void *data, size_t len);

/*
 * Move n bytes from the front of `from` (another sbuf's input, say) to the
 * output without copying what can be moved; written at the next
 * sbuf_flush_all. false when fewer than n moved.
 */
bool sbuf_move(sbuf_t *sb, pbuf_t *from, size_t n);

/*
 * Output is waiting that no write since the last sbuf_flush_all put there
 * (after sbuf_defer): it goes at the next one. sbuf_write and sbuf_move
 * say so themselves; the output has no callback watching it (libevent's
 * callbacks on every change of a buffer cost more than the bookkeeping).
 */
void sbuf_touch(sbuf_t *sb);

/*
 * Leave sb's output for later: not written at this sbuf_flush_all, but with
 * the next bytes appended to it (which must be sure to come).
 */
void sbuf_defer(sbuf_t *sb);

/* Write the output of every dirty sbuf of the loop. Call at the end of every
 * callback that may have produced output. */
void sbuf_flush_all(sbuf_loop_t *loop);

#endif
