/*
 * cancel.c — query cancellation.
 *
 * Clients get a BackendKeyData made up by the proxy (the real backend
 * changes from transaction to transaction). Its pid names the worker that
 * owns the session (cancelkey.h), and each worker keeps its sessions in a
 * table of its own, touched only on its own thread: at login and at close,
 * never when the client's servers change. Nothing is recorded when a client
 * links to a server; the owner looks at the session when a request comes,
 * and forwards it to the backends running the client's query at that moment
 * (c->server, or every member of a statement on several shards), each with
 * that backend's own key. When the client holds no server, or only parked
 * ones with nothing outstanding, there is nothing to cancel.
 *
 * A CancelRequest arrives on a new connection, possibly at another worker.
 * That worker passes (pid, key) to the owner through the owner's inbox: a
 * short queue under a mutex and an event made active. The mutex is taken
 * once per CancelRequest, never on the data path. The inbox is bounded: a
 * request beyond CANCEL_INBOX_MAX waiting ones is dropped (a client that
 * floods cancels has its own requests lost, nobody else's data).
 */
#include "proxy/cancel.h"

#include <event2/bufferevent.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "proxy/auth.h"
#include "proxy/cancelkey.h"
#include "proxy/log.h"
#include "proxy/wire.h"
#include "proxy/worker.h"

#define CANCEL_INBOX_MAX 256

typedef struct cancel_session {
	int32_t pid; /* hash key: the pid the client was told */
	int32_t key;
	client_t *client;
	UT_hash_handle hh;
} cancel_session_t;

typedef struct cancel_request {
	int32_t pid, key;
} cancel_request_t;

/* One per worker, indexed by worker index. */
typedef struct cancel_box {
	/* the owner's thread only */
	cancel_session_t *sessions;
	uint32_t next_serial;

	/* any thread, under lock */
	pthread_mutex_t lock;
	struct event *ev; /* NULL before the worker starts and after it stops */
	cancel_request_t inbox[CANCEL_INBOX_MAX];
	int n_inbox;
} cancel_box_t;

static cancel_box_t *boxes;
static int n_boxes;

int cancel_init(int n_workers)
{
	if (n_workers > CANCEL_MAX_WORKERS)
		return -1;
	boxes = calloc((size_t)n_workers, sizeof(*boxes));
	if (boxes == NULL)
		return -1;
	n_boxes = n_workers;
	for (int i = 0; i < n_boxes; i++) {
		pthread_mutex_init(&boxes[i].lock, NULL);
		/* not the same pids after every restart */
		auth_random(&boxes[i].next_serial, sizeof(boxes[i].next_serial));
	}
	return 0;
}

void cancel_free(void)
{
	for (int i = 0; i < n_boxes; i++)
		pthread_mutex_destroy(&boxes[i].lock);
	free(boxes);
	boxes = NULL;
	n_boxes = 0;
}

static cancel_box_t *box_of(const worker_t *w)
{
	return w->index >= 0 && w->index < n_boxes ? &boxes[w->index] : NULL;
}

static void cancel_local(worker_t *w, int32_t pid, int32_t key);

static void inbox_cb(evutil_socket_t fd, short what, void *arg)
{
	worker_t *w = arg;
	cancel_box_t *b = box_of(w);
	cancel_request_t reqs[CANCEL_INBOX_MAX];
	int n;

	pthread_mutex_lock(&b->lock);
	n = b->n_inbox;
	memcpy(reqs, b->inbox, sizeof(reqs[0]) * (size_t)n);
	b->n_inbox = 0;
	pthread_mutex_unlock(&b->lock);
	for (int i = 0; i < n; i++)
		cancel_local(w, reqs[i].pid, reqs[i].key);
}

int cancel_worker_start(worker_t *w)
{
	cancel_box_t *b = box_of(w);
	struct event *ev;

	if (b == NULL)
		return -1;
	ev = event_new(w->base, -1, 0, inbox_cb, w);
	if (ev == NULL)
		return -1;
	pthread_mutex_lock(&b->lock);
	b->ev = ev;
	pthread_mutex_unlock(&b->lock);
	return 0;
}

void cancel_worker_stop(worker_t *w)
{
	cancel_box_t *b = box_of(w);
	cancel_session_t *e, *tmp;
	struct event *ev;

	if (b == NULL)
		return;
	/* other workers may still be posting: they find no event and drop the request */
	pthread_mutex_lock(&b->lock);
	ev = b->ev;
	b->ev = NULL;
	b->n_inbox = 0;
	pthread_mutex_unlock(&b->lock);
	if (ev != NULL)
		event_free(ev);
	HASH_ITER(hh, b->sessions, e, tmp)
	{
		HASH_DEL(b->sessions, e);
		free(e);
	}
}

void cancel_register(client_t *c)
{
	cancel_box_t *b = box_of(c->worker);
	cancel_session_t *e, *other;
	int32_t key = 0;

	if (b == NULL || (e = calloc(1, sizeof(*e))) == NULL)
		return; /* the client cannot be cancelled; it still works */
	auth_random(&key, sizeof(key));
	do {
		e->pid = cancel_pid_make(c->worker->index, b->next_serial++);
		other = NULL;
		HASH_FIND_INT(b->sessions, &e->pid, other);
	} while (other != NULL);
	e->key = key;
	e->client = c;
	HASH_ADD_INT(b->sessions, pid, e);
	c->cancel_pid = e->pid;
	c->cancel_key = key;
}

void cancel_unregister(client_t *c)
{
	cancel_box_t *b = box_of(c->worker);
	cancel_session_t *e = NULL;

	if (c->cancel_pid == 0 || b == NULL)
		return;
	HASH_FIND_INT(b->sessions, &c->cancel_pid, e);
	if (e != NULL && e->client == c) {
		HASH_DEL(b->sessions, e);
		free(e);
	}
	c->cancel_pid = 0;
}

static void cancel_done_cb(struct bufferevent *bev, short what, void *arg)
{
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
		bufferevent_free(bev);
}

static void cancel_written_cb(struct bufferevent *bev, void *arg)
{
	/* the backend closes the connection after reading the request */
	bufferevent_disable(bev, EV_WRITE);
}

/* Ask s's postmaster to cancel what s's backend runs (at s's own address: no lookup). */
void cancel_server(worker_t *w, const server_t *s)
{
	struct bufferevent *bev;
	struct timeval tv = {5, 0};
	wire_buf_t b;

	if (s->addrlen == 0)
		return;
	bev = bufferevent_socket_new(w->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL)
		return;
	bufferevent_setcb(bev, NULL, cancel_written_cb, cancel_done_cb, NULL);
	bufferevent_set_timeouts(bev, &tv, &tv);
	bufferevent_enable(bev, EV_READ | EV_WRITE);

	wire_buf_init(&b);
	wire_begin(&b, 0);
	wire_put_i32(&b, WIRE_CANCEL_CODE);
	wire_put_i32(&b, s->backend_pid);
	wire_put_i32(&b, s->backend_key);
	if (wire_end(&b) < 0 || bufferevent_write(bev, b.data, b.len) < 0 ||
	    bufferevent_socket_connect(bev, (const struct sockaddr *)&s->addr, (int)s->addrlen) < 0)
		bufferevent_free(bev);
	else
		log_info("forwarded cancel request to backend %d", s->backend_pid);
	wire_buf_free(&b);
}

/*
 * A request for one of w's own sessions, on w's thread: every server the
 * client holds that has something outstanding (its current one, or every
 * member of a statement on several shards) gets a CancelRequest; an idle
 * session has nothing to cancel.
 */
static void cancel_local(worker_t *w, int32_t pid, int32_t key)
{
	cancel_box_t *b = box_of(w);
	cancel_session_t *e = NULL;
	client_t *c;
	int n = 0;

	HASH_FIND_INT(b->sessions, &pid, e);
	if (e == NULL || e->key != key) {
		log_debug("cancel request for unknown session %d ignored", pid);
		return;
	}
	c = e->client;
	for (int i = 0; i < c->links_cap; i++) {
		server_t *s = c->links[i];

		if (s != NULL && s->pending.count > 0) {
			cancel_server(w, s);
			n++;
		}
	}
	if (n == 0)
		log_msg(LOG_DEBUG, c->id, 0, "cancel request for an idle session ignored");
}

void cancel_forward(worker_t *w, int32_t pid, int32_t key)
{
	int owner = cancel_pid_worker(pid);
	cancel_box_t *b;
	bool queued = false;

	if (owner < 0 || owner >= n_boxes) {
		log_debug("cancel request for unknown session %d ignored", pid);
		return;
	}
	if (owner == w->index) {
		cancel_local(w, pid, key);
		return;
	}
	b = &boxes[owner];
	pthread_mutex_lock(&b->lock);
	if (b->ev != NULL && b->n_inbox < CANCEL_INBOX_MAX) {
		b->inbox[b->n_inbox].pid = pid;
		b->inbox[b->n_inbox].key = key;
		b->n_inbox++;
		waker_activate(&g_workers[owner].waker, b->ev);
		queued = true;
	}
	pthread_mutex_unlock(&b->lock);
	if (!queued)
		log_warn("cancel request for session %d dropped: worker %d is stopping or has %d "
		         "requests waiting",
		         pid, owner, CANCEL_INBOX_MAX);
}
