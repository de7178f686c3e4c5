/*
 * routejob.c — long statements are routed off the workers' loops.
 *
 * libpg_query needs about a second and 250 MB to parse a megabyte of dense
 * SQL (a long select list, a long AND chain), and the router's analysis of
 * such a tree takes as long again. Done on a worker's loop, that would stall
 * every other client of the worker for seconds. So a Query longer than
 * ROUTEJOB_MIN_LEN is handed to one routing thread, and its client waits
 * (reading nothing more) until the plan comes back. One thread, one
 * statement at a time: memory for parsing is bounded by max_route_size
 * (longer statements are refused before anything is parsed, see
 * context_route) times one.
 *
 * The thread keeps its own maps (route_ctx_t), rebuilt when the config it is
 * given changes, so that a reload on a worker never frees what it reads.
 * A job's client pointer is only read and written on the worker's thread:
 * a client that closes while its job runs sets it to NULL.
 */
#include "proxy/hotkeys.h"
#include "proxy/routejob.h"

#include "proxy/colcache.h"

#include <stdlib.h>
#include <string.h>

#include "proxy/context.h"
#include "proxy/log.h"
#include "proxy/sbuf.h"
#include "proxy/session.h"
#include "router/route.h"

struct route_job {
	struct route_job *next;
	worker_t *worker;
	client_t *client; /* NULL once the client has gone (worker's thread only) */
	cfg_ref_t *cfg;
	char *sql;
	route_plan_t plan;
	int rc;
};

static pthread_mutex_t queue_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t queue_cond = PTHREAD_COND_INITIALIZER;
static route_job_t *queue_head, *queue_tail;
static bool thread_started;

static void *routejob_main(void *arg)
{
	route_ctx_t ctx;
	cfg_ref_t *ctx_cfg = NULL;

	for (;;) {
		route_job_t *j;
		worker_t *w;

		pthread_mutex_lock(&queue_lock);
		while (queue_head == NULL)
			pthread_cond_wait(&queue_cond, &queue_lock);
		j = queue_head;
		queue_head = j->next;
		if (queue_head == NULL)
			queue_tail = NULL;
		pthread_mutex_unlock(&queue_lock);

		j->rc = -1;
		if (ctx_cfg != j->cfg) {
			char err[256];

			if (ctx_cfg != NULL) {
				route_ctx_free(&ctx);
				context_cfg_ref_put(ctx_cfg);
				ctx_cfg = NULL;
			}
			if (route_ctx_init(&ctx, j->cfg->cfg, err, sizeof(err)) == 0)
				ctx_cfg = context_cfg_ref_get(j->cfg);
			else
				log_error("routing thread: cannot build the shard maps: %s", err);
		}
		if (ctx_cfg != NULL)
			j->rc = route_statement(&ctx, j->sql, NULL, 0, &j->plan);

		w = j->worker;
		pthread_mutex_lock(&w->route_lock);
		j->next = w->route_done;
		w->route_done = j;
		pthread_mutex_unlock(&w->route_lock);
		waker_activate(&w->waker, w->route_ev);
	}
	return NULL;
}

static void job_free(route_job_t *j)
{
	context_cfg_ref_put(j->cfg);
	free(j->sql);
	free(j);
}

int routejob_start(client_t *c, const char *sql, size_t len)
{
	worker_t *w = c->worker;
	route_job_t *j = calloc(1, sizeof(*j));

	if (j == NULL)
		return -1;
	j->sql = malloc(len + 1);
	if (j->sql == NULL) {
		free(j);
		return -1;
	}
	memcpy(j->sql, sql, len);
	j->sql[len] = '\0';
	j->worker = w;
	j->client = c;
	j->cfg = context_cfg_ref_get(w->cfg);

	pthread_mutex_lock(&queue_lock);
	if (!thread_started) {
		pthread_t t;

		if (pthread_create(&t, NULL, routejob_main, NULL) != 0) {
			pthread_mutex_unlock(&queue_lock);
			job_free(j);
			return -1;
		}
		pthread_detach(t);
		thread_started = true;
	}
	if (queue_tail != NULL)
		queue_tail->next = j;
	else
		queue_head = j;
	queue_tail = j;
	pthread_cond_signal(&queue_cond);
	pthread_mutex_unlock(&queue_lock);

	c->route_job = j;
	c->phase = PH_ROUTING;
	sbuf_pause(&c->sb); /* nothing more from it until its statement is routed */
	log_msg(LOG_DEBUG, c->id, 0, "routing a statement of %zu bytes off the loop", len);
	return 0;
}

void routejob_forget(client_t *c)
{
	if (c->route_job != NULL) {
		c->route_job->client = NULL;
		c->route_job = NULL;
		c->phase = PH_IDLE;
	}
}

/* The worker's side: plans that came back go to their clients, which go on. */
void routejob_done_cb(evutil_socket_t fd, short what, void *arg)
{
	worker_t *w = arg;
	route_job_t *j;

	pthread_mutex_lock(&w->route_lock);
	j = w->route_done;
	w->route_done = NULL;
	pthread_mutex_unlock(&w->route_lock);

	while (j != NULL) {
		route_job_t *next = j->next;
		client_t *c = j->client;

		if (c != NULL) {
			c->route_job = NULL;
			c->phase = PH_IDLE;
			c->plan = j->plan;
			if (c->plan.is_ddl)
				colcache_ddl(); /* tables' column order may change */
			if (j->rc < 0)
				route_plan_refuse(&c->plan, "53200",
				                  "out of memory while routing the statement");
			c->have_plan = true;
			c->txd_ready = false;
			session_check_key_bytes(c, &c->plan);
			hotkeys_note(w->hot, &c->plan);
			session_resume(c);
		}
		job_free(j);
		j = next;
	}
	sbuf_flush_all(&w->loop);
}

/* At shutdown: plans that came back and were not taken. */
void routejob_worker_free(worker_t *w)
{
	route_job_t *j = w->route_done;

	while (j != NULL) {
		route_job_t *next = j->next;

		job_free(j);
		j = next;
	}
	w->route_done = NULL;
}
