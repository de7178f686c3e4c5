/*
 * cancel.c — query cancellation.
 *
 * Clients get a BackendKeyData made up by the proxy (the real backend
 * changes from transaction to transaction). A CancelRequest arrives on a new
 * connection, possibly at another worker, so the key table is shared by all
 * workers under a mutex; it is touched once per link and unlink, never per
 * message. A matching request is forwarded to the backend that is running
 * the client's query at that moment, with that backend's own key (to every
 * shard's backend during a statement on several shards); when the client
 * holds no server there is nothing to cancel.
 */
#include "proxy/proxy.h"

#include <event2/bufferevent.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "proxy/log.h"

/* A backend to cancel, as its postmaster must be told. */
typedef struct cancel_target {
	struct sockaddr_storage addr; /* the server connection's own address: no lookup */
	socklen_t addrlen;
	int32_t backend_pid, backend_key;
} cancel_target_t;

typedef struct cancel_entry {
	int32_t pid; /* hash key: the pid the client was told */
	int32_t key;
	cancel_target_t *targets; /* the backends running the client's query now */
	int n_targets;
	UT_hash_handle hh;
} cancel_entry_t;

static pthread_mutex_t cancel_lock = PTHREAD_MUTEX_INITIALIZER;
static cancel_entry_t *cancel_table;
static int32_t cancel_next_pid;

void cancel_init(void)
{
	uint32_t r = 0;

	auth_random(&r, sizeof(r));
	/* looks like a pid, never 0 or negative */
	cancel_next_pid = (int32_t)(10000 + r % 1000000);
}

void cancel_register(client_t *c)
{
	cancel_entry_t *e = calloc(1, sizeof(*e));
	int32_t key = 0;

	if (e == NULL)
		return; /* the client cannot be cancelled; it still works */
	auth_random(&key, sizeof(key));
	pthread_mutex_lock(&cancel_lock);
	do {
		cancel_entry_t *other = NULL;

		if (++cancel_next_pid <= 0)
			cancel_next_pid = 10000;
		HASH_FIND_INT(cancel_table, &cancel_next_pid, other);
		if (other == NULL)
			break;
	} while (1);
	e->pid = cancel_next_pid;
	e->key = key;
	HASH_ADD_INT(cancel_table, pid, e);
	pthread_mutex_unlock(&cancel_lock);
	c->cancel_pid = e->pid;
	c->cancel_key = key;
}

void cancel_unregister(client_t *c)
{
	cancel_entry_t *e = NULL;

	if (c->cancel_pid == 0)
		return;
	pthread_mutex_lock(&cancel_lock);
	HASH_FIND_INT(cancel_table, &c->cancel_pid, e);
	if (e != NULL) {
		HASH_DEL(cancel_table, e);
		free(e->targets);
		free(e);
	}
	pthread_mutex_unlock(&cancel_lock);
	c->cancel_pid = 0;
}

void cancel_update(client_t *c)
{
	cancel_entry_t *e = NULL;
	cancel_target_t *t = NULL;
	server_t *one[1] = {c->server}, **servers = one;
	int n = c->server != NULL ? 1 : 0;

	if (c->cancel_pid == 0)
		return;
	if (c->server == NULL && c->fan != NULL) {
		/* during a fan-out, every member's query */
		servers = fanout_servers(c->fan, &n);
	}
	if (n > 0) {
		t = calloc((size_t)n, sizeof(*t));
		if (t == NULL)
			n = 0; /* the query cannot be cancelled; it still runs */
	}
	for (int i = 0; i < n; i++) {
		memcpy(&t[i].addr, &servers[i]->addr, sizeof(t[i].addr));
		t[i].addrlen = servers[i]->addrlen;
		t[i].backend_pid = servers[i]->backend_pid;
		t[i].backend_key = servers[i]->backend_key;
	}
	if (servers != one)
		free(servers);
	pthread_mutex_lock(&cancel_lock);
	HASH_FIND_INT(cancel_table, &c->cancel_pid, e);
	if (e != NULL) {
		free(e->targets);
		e->targets = t;
		e->n_targets = n;
		t = NULL;
	}
	pthread_mutex_unlock(&cancel_lock);
	free(t);
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

/* Send one backend's postmaster a CancelRequest for it. */
static void cancel_send(worker_t *w, const cancel_target_t *t)
{
	struct bufferevent *bev;
	struct timeval tv = {5, 0};
	wire_buf_t b;

	if (t->addrlen == 0)
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
	wire_put_i32(&b, t->backend_pid);
	wire_put_i32(&b, t->backend_key);
	if (wire_end(&b) < 0 || bufferevent_write(bev, b.data, b.len) < 0 ||
	    bufferevent_socket_connect(bev, (const struct sockaddr *)&t->addr, (int)t->addrlen) < 0)
		bufferevent_free(bev);
	else
		log_info("forwarded cancel request to backend %d", t->backend_pid);
	wire_buf_free(&b);
}

void cancel_server(worker_t *w, const server_t *s)
{
	cancel_target_t t;

	memcpy(&t.addr, &s->addr, sizeof(t.addr));
	t.addrlen = s->addrlen;
	t.backend_pid = s->backend_pid;
	t.backend_key = s->backend_key;
	cancel_send(w, &t);
}

void cancel_forward(worker_t *w, int32_t pid, int32_t key)
{
	cancel_entry_t *e = NULL;
	cancel_target_t *copy = NULL;
	int n = 0;

	pthread_mutex_lock(&cancel_lock);
	HASH_FIND_INT(cancel_table, &pid, e);
	if (e != NULL && e->key == key && e->n_targets > 0) {
		copy = malloc(sizeof(*copy) * (size_t)e->n_targets);
		if (copy != NULL) {
			memcpy(copy, e->targets, sizeof(*copy) * (size_t)e->n_targets);
			n = e->n_targets;
		}
	}
	pthread_mutex_unlock(&cancel_lock);
	if (n == 0)
		log_debug("cancel request for unknown or idle session %d ignored", pid);
	for (int i = 0; i < n; i++)
		cancel_send(w, &copy[i]);
	free(copy);
}
