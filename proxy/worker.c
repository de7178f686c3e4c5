/*
 * worker.c — one event loop per thread, shared-nothing.
 *
 * Each worker listens on its own SO_REUSEPORT socket, so the kernel spreads
 * new connections, and owns its clients, pools and prepared-statement
 * registry outright: nothing on the data path takes a lock, not even
 * libevent's (its base has none). The main thread talks to a worker only to
 * hand it a new config (reload) or stop it; the control thread only to hand
 * it a new view of the nodes (nodes.h), and another worker only to pass on a
 * CancelRequest for one of its sessions (cancel.c) or an admin job
 * (adminbox.c). Each of those makes an event of the worker's active through
 * its waker (waker.h), never through libevent directly.
 */
#include "proxy/worker.h"

#include <errno.h>
#include <event2/thread.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/adminbox.h"
#include "proxy/cancel.h"
#include "proxy/client.h"
#include "proxy/colcache.h"
#include "proxy/context.h"
#include "proxy/control.h"
#include "proxy/gather.h"
#include "proxy/lifecycle.h"
#include "proxy/hotkeys.h"
#include "proxy/log.h"
#include "proxy/login.h"
#include "proxy/metrics.h"
#include "proxy/nodes.h"
#include "proxy/pool.h"
#include "proxy/prepare.h"
#include "proxy/routejob.h"
#include "proxy/sbuf.h"
#include "proxy/stats.h"
#include "proxy/server.h"
#include "proxy/session.h"
#include "proxy/txwatch.h"
#include "proxy/wire.h"

int g_n_workers = 1;
worker_t *g_workers;

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *addr, int len,
                      void *arg)
{
	client_accept(arg, fd);
}

static void accept_error_cb(struct evconnlistener *l, void *arg)
{
	int err = EVUTIL_SOCKET_ERROR();

	log_warn("accept failed: %s", evutil_socket_error_to_string(err));
	/* out of file descriptors: pause accepting briefly rather than spin */
	if (err == EMFILE || err == ENFILE) {
		evconnlistener_disable(l);
		evconnlistener_enable(l);
	}
}

static void reload_cb(evutil_socket_t fd, short what, void *arg)
{
	worker_t *w = arg;
	cfg_ref_t *next;

	pthread_mutex_lock(&w->lock);
	next = w->cfg_next;
	w->cfg_next = NULL;
	pthread_mutex_unlock(&w->lock);
	if (next != NULL) {
		context_cfg_ref_put(w->cfg);
		w->cfg = next;
		w->pools_gen++;
		login_params_free(w); /* the shards may be other servers now */
		if (w->index == 0)
			metrics_reload(w);
	}
}

/* The control thread posted a newer view of the nodes. */
static void nodes_cb(evutil_socket_t fd, short what, void *arg)
{
	worker_t *w = arg;
	nodes_view_t *v = nodes_box_take(&w->nodes_box);

	if (v != NULL) {
		nodes_view_put(w->nodes);
		w->nodes = v;
		w->pools_gen++;
	}
}

void worker_reap_now(worker_t *w)
{
	client_t *c;
	server_t *s;

	while ((c = TAILQ_FIRST(&w->closed_clients)) != NULL) {
		TAILQ_REMOVE(&w->closed_clients, c, link);
		session_free(c);
	}
	while ((s = TAILQ_FIRST(&w->closed_servers)) != NULL) {
		TAILQ_REMOVE(&w->closed_servers, s, link);
		server_free(s);
	}
}

static void reap_cb(evutil_socket_t fd, short what, void *arg)
{
	worker_reap_now(arg);
}

/*
 * Clients between transactions with nothing buffered give their buffers'
 * blocks back (pbuf.h keeps a small one between messages): thousands of
 * idle connections then hold no buffer memory. A client that sends again
 * gets a block at its next read.
 */
static void release_idle_buffers(worker_t *w)
{
	client_t *c;

	TAILQ_FOREACH(c, &w->idle_clients, link)
	{
		if (c->sb.in != NULL && pbuf_get_length(c->sb.in) == 0)
			pbuf_release(c->sb.in);
		if (c->sb.out != NULL && pbuf_get_length(c->sb.out) == 0)
			pbuf_release(c->sb.out);
	}
}

static void janitor_cb(evutil_socket_t fd, short what, void *arg)
{
	worker_t *w = arg;

	time_t now = time(NULL);

	pool_close_idle(w, now - context_cfg(w)->server_idle_timeout_s);
	login_timeouts(w, now);
	txwatch_publish(w);
	hotkeys_age(w->hot, stats_now_us());
	release_idle_buffers(w);
	sbuf_flush_all(&w->loop);
}

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
	worker_t *w = arg;

	event_base_loopexit(w->base, NULL);
}

static void *worker_main(void *arg)
{
	worker_t *w = arg;

	event_base_dispatch(w->base);
	return NULL;
}

int worker_start(worker_t *w, int index, cfg_ref_t *cfg)
{
	const cfg_t *c = cfg->cfg;
	struct addrinfo hints, *res = NULL;
	char port[16];
	struct timeval one_second = {1, 0};
	struct event_config *base_cfg;

	memset(w, 0, sizeof(*w));
	w->index = index;
	w->cfg = context_cfg_ref_get(cfg);
	w->nodes = control_view();
	w->next_id = (uint64_t)index << 48;
	pthread_mutex_init(&w->lock, NULL);
	pthread_mutex_init(&w->route_lock, NULL);
	TAILQ_INIT(&w->login_clients);
	TAILQ_INIT(&w->idle_clients);
	TAILQ_INIT(&w->closed_clients);
	TAILQ_INIT(&w->closed_servers);
	TAILQ_INIT(&w->pools);
	wire_buf_init(&w->scratch);
	txmap_box_init(&w->txbox);
	txmap_init(&w->txsnap);

	w->hot = malloc(sizeof(*w->hot));
	if (w->hot == NULL)
		return -1;
	hotkeys_init(w->hot, HOTKEYS_CAPACITY);
	w->hot->since_us = w->hot->aged_us = stats_now_us();
	w->waker.fd = -1;
	/* no lock: other threads wake it through w->waker only */
	base_cfg = event_config_new();
	if (base_cfg == NULL || event_config_set_flag(base_cfg, EVENT_BASE_FLAG_NOLOCK) < 0 ||
	    (w->base = event_base_new_with_config(base_cfg)) == NULL) {
		if (base_cfg != NULL)
			event_config_free(base_cfg);
		return -1;
	}
	event_config_free(base_cfg);
	if (waker_init(&w->waker, w->base) < 0)
		return -1;
	sbuf_loop_init(&w->loop, w->base);

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%d", c->listen_port);
	if (getaddrinfo(c->listen_host, port, &hints, &res) != 0 || res == NULL) {
		log_error("cannot resolve listen address %s", c->listen_host);
		return -1;
	}
	w->listener = evconnlistener_new_bind(w->base, accept_cb, w,
	                                      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
	                                          LEV_OPT_REUSEABLE_PORT | LEV_OPT_CLOSE_ON_EXEC,
	                                      1024, res->ai_addr, (int)res->ai_addrlen);
	freeaddrinfo(res);
	if (w->listener == NULL) {
		log_error("cannot listen on %s:%d: %s", c->listen_host, c->listen_port,
		          evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		return -1;
	}
	evconnlistener_set_error_cb(w->listener, accept_error_cb);

	w->reload_ev = event_new(w->base, -1, 0, reload_cb, w);
	w->stop_ev = event_new(w->base, -1, 0, stop_cb, w);
	w->reap_ev = event_new(w->base, -1, 0, reap_cb, w);
	w->route_ev = event_new(w->base, -1, 0, routejob_done_cb, w);
	w->nodes_ev = event_new(w->base, -1, 0, nodes_cb, w);
	w->txwatch_ev = event_new(w->base, -1, 0, txwatch_victims_cb, w);
	if (w->reload_ev == NULL || w->stop_ev == NULL || w->reap_ev == NULL ||
	    w->route_ev == NULL || w->nodes_ev == NULL || w->txwatch_ev == NULL ||
	    cancel_worker_start(w) < 0 || adminbox_worker_start(w) < 0 ||
	    lifecycle_worker_start(w) < 0 || (index == 0 && metrics_start(w) < 0))
		return -1;
	w->janitor = event_new(w->base, -1, EV_PERSIST, janitor_cb, w);
	event_add(w->janitor, &one_second);

	if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
		return -1;
	return 0;
}

void worker_set_config(worker_t *w, cfg_ref_t *cfg)
{
	cfg_ref_t *old;

	pthread_mutex_lock(&w->lock);
	old = w->cfg_next;
	w->cfg_next = context_cfg_ref_get(cfg);
	pthread_mutex_unlock(&w->lock);
	context_cfg_ref_put(old);
	waker_activate(&w->waker, w->reload_ev);
}

void worker_stop(worker_t *w)
{
	if (w->stop_ev != NULL)
		waker_activate(&w->waker, w->stop_ev);
}

void worker_join(worker_t *w)
{
	client_t *c;

	pthread_join(w->thread, NULL);
	adminbox_worker_stop(w);
	lifecycle_worker_stop(w);
	/* the loop is over: tear everything down on this thread */
	while ((c = TAILQ_FIRST(&w->login_clients)) != NULL)
		session_close(c);
	while ((c = TAILQ_FIRST(&w->idle_clients)) != NULL)
		session_close(c);
	{
		pool_t *p;

		TAILQ_FOREACH(p, &w->pools, link)
		{
			while ((c = TAILQ_FIRST(&p->active_clients)) != NULL)
				session_close(c);
			while ((c = TAILQ_FIRST(&p->waiting)) != NULL)
				session_close(c);
		}
	}
	pool_close_all(w);
	worker_reap_now(w); /* closed servers still point at their pools */
	pool_free_all(w);
	login_params_free(w);
	ps_registry_free(w);
	if (w->listener)
		evconnlistener_free(w->listener);
	if (w->reload_ev)
		event_free(w->reload_ev);
	if (w->stop_ev)
		event_free(w->stop_ev);
	if (w->reap_ev)
		event_free(w->reap_ev);
	if (w->route_ev)
		event_free(w->route_ev);
	if (w->nodes_ev)
		event_free(w->nodes_ev);
	if (w->txwatch_ev)
		event_free(w->txwatch_ev);
	cancel_worker_stop(w);
	routejob_worker_free(w);
	if (w->janitor)
		event_free(w->janitor);
	if (w->index == 0)
		metrics_stop(w);
	waker_free(&w->waker);
	event_base_free(w->base);
	wire_buf_free(&w->scratch);
	gather_colls_free(w);
	colcache_free(w->columns);
	free(w->replica_failed_at);
	context_route_drop(w);
	context_cfg_ref_put(w->cfg);
	context_cfg_ref_put(w->cfg_next);
	nodes_box_clear(&w->nodes_box);
	nodes_view_put(w->nodes);
	pthread_mutex_destroy(&w->lock);
	pthread_mutex_destroy(&w->route_lock);
	txmap_free(&w->txsnap);
	txmap_box_destroy(&w->txbox);
	free(w->hot);
	w->hot = NULL;
}
