/*
 * waker.h — other threads' way to make an event of a worker's loop active
 * (waker.c).
 *
 * A worker's event base has no lock (EVENT_BASE_FLAG_NOLOCK): libevent's
 * lock was taken around every callback, event_add and event_del of the data
 * path, about 3% of a statement's instructions, for the few events other
 * threads make active (a new config, a new view of the nodes, plans from the
 * routing thread, an admin job, a cancel, a deadlock victim, a lifecycle
 * step, the stop). Those go through the waker instead: the event is put on a
 * short list under the waker's own lock and an eventfd wakes the loop, which
 * makes the listed events active on its own thread.
 */
#ifndef PGSHARD_PROXY_WAKER_H
#define PGSHARD_PROXY_WAKER_H

#include <event2/event.h>
#include <pthread.h>

#define WAKER_EVENTS 16 /* distinct events one loop can be woken for (8 are used) */

typedef struct waker {
	int fd; /* eventfd; -1 before waker_init */
	struct event *ev;
	pthread_mutex_t lock; /* guards due and n_due */
	struct event *due[WAKER_EVENTS];
	int n_due;
} waker_t;

/* On base's thread, before other threads may wake it: 0 or -1. */
int waker_init(waker_t *wk, struct event_base *base);

/* From any thread: ev (of wk's base) becomes active in the loop's next turn. */
void waker_activate(waker_t *wk, struct event *ev);

/* Once no thread can wake it any more. */
void waker_free(waker_t *wk);

#endif
