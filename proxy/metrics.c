/*
 * metrics.c — the Prometheus endpoint: libevent's evhttp on worker 0's
 * loop answers GET /metrics with the figures every worker holds, gathered
 * as the admin console gathers them (figures.c), in the text format
 * metrics_text.c writes. Any other path is 404, any other method 405.
 *
 * Why worker 0 and not a thread of its own: a gathering comes back to a
 * worker's mailbox, and the request must be answered on the loop that owns
 * it, so the loop that takes the request is a worker's. A scrape costs that
 * worker one pass over its pools and the others one mailbox visit each.
 *
 * A request is answered when the figures are in; if its client has gone
 * meanwhile, evhttp has already detached the request from its connection,
 * and the answer only frees it. A reload that changes metrics_listen
 * moves the listening socket (listen_at).
 */
#include "proxy/metrics.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/context.h"
#include "proxy/figures.h"
#include "proxy/log.h"
#include "proxy/metrics_text.h"
#include "proxy/nodes.h"

/* worker 0's; touched only on its thread */
static struct evhttp *http;
static struct evhttp_bound_socket *bound; /* where it listens; NULL: nowhere (off) */
static char bound_host[256];
static int bound_port;

static void reply_text(struct evhttp_request *req, int code, const char *reason, const char *text,
                       size_t len)
{
	struct evbuffer *body = evbuffer_new();

	if (body == NULL) {
		evhttp_send_error(req, 500, "Out of memory");
		return;
	}
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	                  code == 200 ? "text/plain; version=0.0.4; charset=utf-8"
	                              : "text/plain; charset=utf-8");
	evbuffer_add(body, text, len);
	evhttp_send_reply(req, code, reason, body);
	evbuffer_free(body);
}

/* The configured nodes with what the control thread last published of them. */
static metrics_node_t *node_states(worker_t *w, int *n)
{
	const nodes_table_t *nt = w->cfg->nodes;
	metrics_node_t *a = calloc((size_t)(nt->n > 0 ? nt->n : 1), sizeof(*a));

	*n = 0;
	if (a == NULL)
		return NULL;
	for (int i = 0; i < nt->n; i++) {
		const node_t *node = &nt->nodes[i];
		const node_state_t *st = nodes_view_state(w->nodes, node);

		a[i].shard = node->shard;
		a[i].role = node->role;
		a[i].host = node->host;
		a[i].port = node->port;
		a[i].up = st == NULL || st->health == NODE_UNKNOWN ? -1 : st->health == NODE_UP;
		a[i].lag_bytes = st != NULL ? st->lag_bytes : -1;
		a[i].lag_ms = st != NULL ? st->lag_ms : -1;
	}
	*n = nt->n;
	return a;
}

static void figures_in(worker_t *w, const figures_t *f, uint64_t id, int what)
{
	struct evhttp_request *req = (struct evhttp_request *)(uintptr_t)id;
	metrics_node_t *nodes = NULL;
	recovery_stats_t rec;
	char *text = NULL;
	size_t len = 0;
	FILE *out;
	int n = 0;

	(void)what;
	if (f == NULL || (nodes = node_states(w, &n)) == NULL ||
	    (out = open_memstream(&text, &len)) == NULL) {
		free(nodes);
		evhttp_send_error(req, 500, "Out of memory");
		return;
	}
	recovery_stats(&rec);
	metrics_text_write(out, f, nodes, n, &rec);
	if (fclose(out) != 0 || text == NULL)
		evhttp_send_error(req, 500, "Out of memory");
	else
		reply_text(req, 200, "OK", text, len);
	free(text);
	free(nodes);
}

static void request_cb(struct evhttp_request *req, void *arg)
{
	worker_t *w = arg;
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	static const char not_found[] = "pgshard serves GET /metrics only\n";

	if (path == NULL || strcmp(path, "/metrics") != 0) {
		reply_text(req, 404, "Not Found", not_found, sizeof(not_found) - 1);
		return;
	}
	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET &&
	    evhttp_request_get_command(req) != EVHTTP_REQ_HEAD) {
		reply_text(req, 405, "Method Not Allowed", not_found, sizeof(not_found) - 1);
		return;
	}
	if (figures_gather(w->index, figures_in, (uint64_t)(uintptr_t)req, 0) < 0)
		evhttp_send_error(req, 500, "Out of memory");
}

/*
 * Listen where a config says: at start, and after each reload (on worker
 * 0's thread). Only the listening socket moves: the evhttp stays, so a
 * scrape still waiting for the workers' figures keeps its connection and
 * its request (freeing the evhttp would free a request a gathering is
 * about to answer). A new address that cannot be bound keeps the old one.
 */
static int listen_at(worker_t *w, const cfg_addr_t *a)
{
	struct evhttp_bound_socket *nb;
	const char *host;

	if (a->host == NULL
	        ? bound == NULL
	        : bound != NULL && strcmp(a->host, bound_host) == 0 && a->port == bound_port)
		return 0;
	if (a->host == NULL) {
		evhttp_del_accept_socket(http, bound);
		bound = NULL;
		log_info("metrics endpoint off (metrics_listen is empty)");
		return 0;
	}
	if (http == NULL) {
		http = evhttp_new(w->base);
		if (http == NULL)
			return -1;
		evhttp_set_allowed_methods(http,
		                           EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST);
		evhttp_set_gencb(http, request_cb, w);
	}
	host = strcmp(a->host, "*") == 0 ? "0.0.0.0" : a->host;
	nb = evhttp_bind_socket_with_handle(http, host, (uint16_t)a->port);
	if (nb == NULL) {
		if (bound != NULL)
			log_error("cannot listen for metrics on %s:%d; the endpoint stays on %s:%d",
			          a->host, a->port, bound_host, bound_port);
		else
			log_error("cannot listen for metrics on %s:%d", a->host, a->port);
		return -1;
	}
	if (bound != NULL)
		evhttp_del_accept_socket(http, bound);
	bound = nb;
	snprintf(bound_host, sizeof(bound_host), "%s", a->host);
	bound_port = a->port;
	log_info("metrics on http://%s:%d/metrics", a->host, a->port);
	return 0;
}

int metrics_start(worker_t *w)
{
	return listen_at(w, &context_cfg(w)->metrics_listen);
}

void metrics_reload(worker_t *w)
{
	(void)listen_at(w, &context_cfg(w)->metrics_listen); /* a failure is logged */
}

void metrics_stop(worker_t *w)
{
	(void)w;
	if (http != NULL)
		evhttp_free(http);
	http = NULL;
	bound = NULL;
}
