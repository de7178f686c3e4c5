/*
 * waker.c — events of a lock-free event base made active from other threads
 * (see waker.h).
 */
#include "proxy/waker.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "proxy/log.h"

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
	waker_t *wk = arg;
	struct event *due[WAKER_EVENTS];
	uint64_t count;
	int n;

	(void)what;
	/* the count is not needed: the list says what to do */
	while (read(fd, &count, sizeof count) < 0 && errno == EINTR)
		;
	pthread_mutex_lock(&wk->lock);
	n = wk->n_due;
	for (int i = 0; i < n; i++)
		due[i] = wk->due[i];
	wk->n_due = 0;
	pthread_mutex_unlock(&wk->lock);
	for (int i = 0; i < n; i++)
		event_active(due[i], 0, 0);
}

int waker_init(waker_t *wk, struct event_base *base)
{
	wk->n_due = 0;
	wk->ev = NULL;
	wk->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (wk->fd < 0)
		return -1;
	pthread_mutex_init(&wk->lock, NULL);
	wk->ev = event_new(base, wk->fd, EV_READ | EV_PERSIST, wake_cb, wk);
	if (wk->ev == NULL || event_add(wk->ev, NULL) < 0)
		return -1;
	return 0;
}

void waker_activate(waker_t *wk, struct event *ev)
{
	static const uint64_t one = 1;
	bool listed = false;

	pthread_mutex_lock(&wk->lock);
	for (int i = 0; i < wk->n_due && !listed; i++)
		listed = wk->due[i] == ev;
	if (!listed) {
		if (wk->n_due < WAKER_EVENTS)
			wk->due[wk->n_due++] = ev;
		else
			log_error("waker: more than %d events to wake a loop for; one is lost",
			          WAKER_EVENTS);
	}
	pthread_mutex_unlock(&wk->lock);
	/* EAGAIN only when the counter is full, and then the loop is woken anyway */
	while (write(wk->fd, &one, sizeof one) < 0 && errno == EINTR)
		;
}

void waker_free(waker_t *wk)
{
	if (wk->ev != NULL)
		event_free(wk->ev);
	wk->ev = NULL;
	if (wk->fd >= 0) {
		close(wk->fd);
		pthread_mutex_destroy(&wk->lock);
	}
	wk->fd = -1;
}
