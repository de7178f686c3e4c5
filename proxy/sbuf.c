/*
 * sbuf.c — buffered non-blocking sockets with few system calls (see sbuf.h).
 */
#include "proxy/sbuf.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

static void sbuf_read_cb(evutil_socket_t fd, short what, void *arg);

/*
 * recv and send as system calls of their own. libc's wrappers are
 * cancellation points, and in a threaded process each call switches
 * asynchronous cancellation on and off around the system call: a few
 * hundred instructions per statement, for threads that are never
 * cancelled (pgshard stops its threads by ending their loops).
 */
static ssize_t sys_recv(int fd, void *buf, size_t len)
{
	return syscall(SYS_recvfrom, fd, buf, len, 0, NULL, NULL);
}

static ssize_t sys_send(int fd, const void *buf, size_t len)
{
	return syscall(SYS_sendto, fd, buf, len, MSG_NOSIGNAL, NULL, 0);
}
static void sbuf_write_cb(evutil_socket_t fd, short what, void *arg);
static void sbuf_timer_cb(evutil_socket_t fd, short what, void *arg);

void sbuf_loop_init(sbuf_loop_t *loop, struct event_base *base)
{
	loop->base = base;
	TAILQ_INIT(&loop->dirty);
}

static void mark_dirty(sbuf_t *sb)
{
	if (!sb->dirty && !sb->shut) {
		sb->dirty = true;
		TAILQ_INSERT_TAIL(&sb->loop->dirty, sb, dirty_link);
	}
}

bool sbuf_move(sbuf_t *sb, pbuf_t *from, size_t n)
{
	int moved = pbuf_remove_buffer(from, sb->out, n);

	if (moved > 0)
		mark_dirty(sb);
	return moved == (int)n;
}

void sbuf_touch(sbuf_t *sb)
{
	mark_dirty(sb);
}

static int sbuf_setup(sbuf_t *sb, sbuf_loop_t *loop, evutil_socket_t fd, sbuf_read_fn on_read,
                      sbuf_drain_fn on_drain, sbuf_event_fn on_event, void *arg)
{
	memset(sb, 0, sizeof(*sb));
	sb->fd = fd;
	sb->loop = loop;
	sb->on_read = on_read;
	sb->on_drain = on_drain;
	sb->on_event = on_event;
	sb->arg = arg;
	sb->in = pbuf_new();
	sb->out = pbuf_new();
	sb->rev = event_new(loop->base, fd, EV_READ | EV_PERSIST, sbuf_read_cb, sb);
	sb->wev = event_new(loop->base, fd, EV_WRITE | EV_PERSIST, sbuf_write_cb, sb);
	sb->timer = evtimer_new(loop->base, sbuf_timer_cb, sb);
	if (sb->in == NULL || sb->out == NULL || sb->rev == NULL || sb->wev == NULL ||
	    sb->timer == NULL)
		return -1;
	return 0;
}

static void update_read(sbuf_t *sb)
{
	bool want = !sb->paused && !sb->connecting && sb->fd >= 0;

	if (want && !sb->reading) {
		event_add(sb->rev, NULL);
		sb->reading = true;
	} else if (!want && sb->reading) {
		event_del(sb->rev);
		sb->reading = false;
	}
}

int sbuf_accept(sbuf_t *sb, sbuf_loop_t *loop, evutil_socket_t fd, sbuf_read_fn on_read,
                sbuf_drain_fn on_drain, sbuf_event_fn on_event, void *arg)
{
	/* on failure sbuf_close closes fd too */
	if (sbuf_setup(sb, loop, fd, on_read, on_drain, on_event, arg) < 0 ||
	    evutil_make_socket_nonblocking(fd) < 0) {
		sbuf_close(sb);
		return -1;
	}
	update_read(sb);
	return 0;
}

int sbuf_connect(sbuf_t *sb, sbuf_loop_t *loop, const struct sockaddr *sa, socklen_t len,
                 sbuf_read_fn on_read, sbuf_drain_fn on_drain, sbuf_event_fn on_event, void *arg)
{
	evutil_socket_t fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		memset(sb, 0, sizeof(*sb));
		sb->fd = -1;
		return -1;
	}
	if (sbuf_setup(sb, loop, fd, on_read, on_drain, on_event, arg) < 0) {
		sbuf_close(sb);
		return -1;
	}
	if (connect(fd, sa, len) < 0 && errno != EINPROGRESS) {
		int err = errno;

		sbuf_close(sb);
		errno = err;
		return -1;
	}
	/* connected or in progress: either way writability says when it is done */
	sb->connecting = true;
	event_add(sb->wev, NULL);
	sb->writing = true;
	return 0;
}

void sbuf_close(sbuf_t *sb)
{
	if (sb->dirty) {
		TAILQ_REMOVE(&sb->loop->dirty, sb, dirty_link);
		sb->dirty = false;
	}
	if (sb->rev != NULL)
		event_free(sb->rev);
	if (sb->wev != NULL)
		event_free(sb->wev);
	if (sb->timer != NULL)
		event_free(sb->timer);
	if (sb->in != NULL)
		pbuf_free(sb->in);
	if (sb->out != NULL)
		pbuf_free(sb->out);
	if (sb->fd >= 0)
		evutil_closesocket(sb->fd);
	sb->rev = sb->wev = sb->timer = NULL;
	sb->in = sb->out = NULL;
	sb->fd = -1;
	sb->reading = sb->writing = false;
}

void sbuf_shutdown(sbuf_t *sb)
{
	if (sb->dirty) {
		TAILQ_REMOVE(&sb->loop->dirty, sb, dirty_link);
		sb->dirty = false;
	}
	if (sb->rev != NULL)
		event_free(sb->rev);
	if (sb->wev != NULL)
		event_free(sb->wev);
	if (sb->timer != NULL)
		event_free(sb->timer);
	if (sb->fd >= 0)
		evutil_closesocket(sb->fd);
	sb->rev = sb->wev = sb->timer = NULL;
	sb->fd = -1;
	sb->reading = sb->writing = false;
	sb->shut = true;
}

void sbuf_pause(sbuf_t *sb)
{
	sb->paused = true;
	update_read(sb);
}

void sbuf_resume(sbuf_t *sb)
{
	sb->paused = false;
	update_read(sb);
}

void sbuf_set_timeout(sbuf_t *sb, const struct timeval *tv)
{
	if (sb->timer == NULL)
		return;
	if (tv != NULL)
		evtimer_add(sb->timer, tv);
	else
		evtimer_del(sb->timer);
}

int sbuf_write(sbuf_t *sb, const void *data, size_t len)
{
	if (sb->shut)
		return 0;
	if (pbuf_add(sb->out, data, len) < 0)
		return -1;
	mark_dirty(sb);
	return 0;
}

/* The owner may close (and free) the sbuf in any callback: keep the loop aside. */
static void report(sbuf_t *sb, sbuf_event_t what)
{
	sbuf_loop_t *loop = sb->loop;

	sb->on_event(sb->arg, what);
	sbuf_flush_all(loop);
}

/*
 * One send of the output: the bytes sent (and drained), or -1 with errno.
 * send rather than write: a socket written through the VFS costs the
 * kernel more per call, and the proxy writes twice a statement.
 */
static ssize_t send_out(sbuf_t *sb)
{
	size_t len;
	const unsigned char *data = pbuf_peek(sb->out, &len);
	ssize_t sent = sys_send(sb->fd, data, len);

	if (sent > 0)
		pbuf_drain(sb->out, (size_t)sent);
	return sent;
}

/*
 * Write what the kernel takes now. A write error is not reported from here
 * (the owner may be in the middle of something): reading is woken instead,
 * and the recv() that follows reports the broken connection the usual way.
 */
static void try_write(sbuf_t *sb)
{
	while (pbuf_get_length(sb->out) > 0) {
		ssize_t n = send_out(sb);

		if (n > 0) {
			sb->n_out += (uint64_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (!sb->writing) {
				event_add(sb->wev, NULL);
				sb->writing = true;
			}
			return;
		}
		/* broken: drop the output, let the reader find out */
		sb->error = n < 0 ? errno : EPIPE;
		pbuf_drain(sb->out, pbuf_get_length(sb->out));
		event_active(sb->rev, EV_READ, 0);
		break;
	}
	if (sb->writing) {
		event_del(sb->wev);
		sb->writing = false;
	}
	if (sb->on_drain != NULL && sb->error == 0)
		sb->on_drain(sb->arg);
}

void sbuf_defer(sbuf_t *sb)
{
	if (sb->dirty) {
		TAILQ_REMOVE(&sb->loop->dirty, sb, dirty_link);
		sb->dirty = false;
	}
}

void sbuf_flush_all(sbuf_loop_t *loop)
{
	sbuf_t *sb;

	/* pop first: writing may call on_drain, which may close other sbufs */
	while ((sb = TAILQ_FIRST(&loop->dirty)) != NULL) {
		TAILQ_REMOVE(&loop->dirty, sb, dirty_link);
		sb->dirty = false;
		if (!sb->connecting && !sb->writing && sb->fd >= 0)
			try_write(sb);
	}
}

static void sbuf_read_cb(evutil_socket_t fd, short what, void *arg)
{
	sbuf_t *sb = arg;
	sbuf_loop_t *loop = sb->loop;
	ssize_t n;

	if (sb->error != 0) {
		report(sb, SBUF_ERROR);
		return;
	}
	n = sys_recv(fd, loop->read_buf, sizeof(loop->read_buf));
	if (n > 0) {
		sb->n_in += (uint64_t)n;
		if (pbuf_add(sb->in, loop->read_buf, (size_t)n) < 0) {
			sb->error = ENOMEM;
			report(sb, SBUF_ERROR);
			return;
		}
		sb->on_read(sb->arg);
		sbuf_flush_all(loop);
		return;
	}
	if (n == 0) {
		report(sb, SBUF_EOF);
	} else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
		sb->error = errno;
		report(sb, SBUF_ERROR);
	}
}

static void sbuf_write_cb(evutil_socket_t fd, short what, void *arg)
{
	sbuf_t *sb = arg;
	sbuf_loop_t *loop = sb->loop;

	if (sb->connecting) {
		int err = 0;
		socklen_t len = sizeof(err);

		event_del(sb->wev);
		sb->writing = false;
		sb->connecting = false;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err != 0) {
			sb->error = err;
			report(sb, SBUF_ERROR);
			return;
		}
		update_read(sb);
		sb->on_event(sb->arg, SBUF_CONNECTED);
		/* what was queued while connecting (the startup packet) goes now */
		mark_dirty(sb);
		sbuf_flush_all(loop);
		return;
	}
	try_write(sb);
	sbuf_flush_all(loop);
}

static void sbuf_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	report(arg, SBUF_TIMEOUT);
}
