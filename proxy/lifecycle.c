/*
 * lifecycle.c — pgshard's run states: running, paused and shutting down.
 *
 * Both PAUSE and a graceful shutdown act on clients at one moment only: when
 * a client is between transactions (at_boundary below: logged in, no
 * transaction open, nothing of a statement under way, every server it
 * holds idle). A client in a transaction always goes on to its end, so that
 * neither waits on itself; one between transactions is held (PAUSE: its
 * socket is no longer read until RESUME, so what it buffers stays bounded)
 * or told 57P01 and closed (shutdown), as PostgreSQL's smart shutdown
 * does. The message loop asks before each message (lifecycle_stops); a
 * client that sends nothing is found by a tick that walks the worker's
 * clients every TICK_MS while a PAUSE waits or a shutdown runs, and only
 * then.
 *
 * The state itself is global (atomics: the console's worker or the main
 * thread changes it); each worker applies it on its own thread when poked
 * (an event of its own, made active under a mutex so that a worker that
 * has stopped is never poked) and publishes back what the others need:
 * whether it has no transaction left for the current PAUSE (pause epoch),
 * how many clients it still has during a shutdown. The console's PAUSE is
 * answered by its own worker's tick once every worker says it is drained
 * for this PAUSE, or, when pause_timeout passes first, told 57014 with the
 * clients still in a transaction (each worker publishes the first few it
 * waits for), and the pause is called off: a PAUSE that cannot drain must
 * not hold every other client for ever behind one idle in transaction, and
 * closing that one's transaction is for the operator to decide (the error
 * names it; SHOW CLIENTS and SHOW TRANSACTIONS say more). A shutdown
 * ends when the main thread's timer sees no client left, or at the
 * timeout.
 */
#include "proxy/lifecycle.h"

#include <stdlib.h>
#include <string.h>

#include "proxy/context.h"
#include "proxy/log.h"
#include "proxy/sbuf.h"
#include "proxy/session.h"
#include "proxy/tx.h"
#include "proxy/wire.h"
#include "proxy/worker.h"

#define TICK_MS 10

enum { SD_RUNNING, SD_DRAINING, SD_FORCING };

typedef struct lc_worker {
	pthread_mutex_t lock; /* guards open: poking a worker whose events are gone */
	bool open;
	worker_t *w;
	struct event *ev;   /* the state changed: apply it */
	struct event *tick; /* while a PAUSE waits or a shutdown runs */
	bool tick_on;
	/* the worker's own view, changed on its thread only */
	bool paused, draining, forcing;
	int waiters; /* console clients of this worker waiting for their PAUSE */
	/* published to the other threads */
	atomic_uint drained_epoch; /* the PAUSE for which it has no transaction left */
	atomic_int busy, held, clients;
	atomic_bool saw_shutdown; /* it has applied the shutdown: `clients` counts */
	char busy_names[256];     /* (under lock) the first clients it waits for, for an error */
} lc_worker_t;

static lc_worker_t *lcw;
static int n_lcw;
static atomic_int g_paused;
static atomic_uint g_pause_epoch;
static _Atomic uint64_t g_pause_deadline_us; /* the current PAUSE gives up then; 0: never */
static atomic_uint g_pause_timeout_s;
static atomic_int g_shutdown;

/* the main thread's shutdown */
static struct event *sd_timer;
static struct event_base *sd_base;
static uint64_t sd_deadline_us, sd_hard_us;

/* ---- which clients may be held or closed ---- */

static bool link_quiet(const server_t *s)
{
	return s->pending.count == 0 && !s->unsynced && !s->syncing_params && s->tx_status == 'I';
}

/* Between two transactions: nothing of the client's runs or is half done. */
static bool at_boundary(const client_t *c)
{
	if (c->login_step != LOGIN_DONE || c->closing || c->state == CL_WAITING ||
	    c->state == CL_CLOSED)
		return false;
	if (tx_open(&c->tx) || c->phase != PH_IDLE || c->route_job != NULL || c->fan != NULL ||
	    c->commit != NULL || c->move != NULL || c->join != NULL || c->batch != NULL ||
	    c->colfetch != NULL || c->have_plan || c->skip_until_sync)
		return false;
	for (int i = 0; i < c->links_cap; i++)
		if (c->links[i] != NULL && !link_quiet(c->links[i]))
			return false;
	return true;
}

static void terminate(client_t *c)
{
	session_fail(c, "FATAL", "57P01", "terminating connection due to administrator command");
}

bool lifecycle_stops(client_t *c)
{
	lc_worker_t *lw = &lcw[c->worker->index];

	if ((!lw->paused && !lw->draining) || c->admin || !at_boundary(c))
		return false;
	if (lw->draining) {
		terminate(c);
		return true;
	}
	if (!c->held) {
		c->held = true;
		atomic_fetch_add(&lw->held, 1);
		log_msg(LOG_DEBUG, c->id, 0, "paused: statement held until RESUME");
	}
	sbuf_pause(&c->sb);
	return true;
}

/* ---- answers to the console ---- */

static void answer(client_t *c, const char *tag, const char *sqlstate, const char *msg)
{
	wire_buf_t *b = &c->worker->scratch;

	wire_buf_reset(b);
	if (sqlstate != NULL) {
		log_msg(LOG_INFO, c->id, 0, "admin console: ERROR %s: %s", sqlstate, msg);
		wire_put_error(b, "ERROR", sqlstate, msg);
	} else {
		wire_begin(b, 'C');
		wire_put_cstring(b, tag);
		wire_end(b);
	}
	wire_put_ready(b, 'I');
	session_send_buf(c, b);
}

/* ---- on each worker ---- */

/* Every client of w, into an array: closing one may move others between lists. */
static client_t **all_clients(worker_t *w, int *n)
{
	client_t **a = malloc(sizeof(*a) * (size_t)(w->n_clients + 1));
	client_t *c;
	pool_t *p;
	int k = 0;

	if (a == NULL)
		return NULL;
#define TAKE(list)                                                                                 \
	TAILQ_FOREACH(c, list, link)                                                               \
	if (k < w->n_clients)                                                                      \
		a[k++] = c;
	TAKE(&w->login_clients);
	TAKE(&w->idle_clients);
	TAILQ_FOREACH(p, &w->pools, link)
	{
		TAKE(&p->waiting);
		TAKE(&p->active_clients);
	}
#undef TAKE
	*n = k;
	return a;
}

static void release_held(lc_worker_t *lw, client_t **a, int n)
{
	int released = 0;

	for (int i = 0; i < n; i++) {
		client_t *c = a[i];

		if (!c->held || c->closing)
			continue;
		c->held = false;
		released++;
		session_resume(c); /* reads its socket again and runs what it sent */
	}
	atomic_store(&lw->held, 0);
	if (released > 0)
		log_info("worker %d: RESUME released %d client%s", lw->w->index, released,
		         released == 1 ? "" : "s");
}

static void tick_start(lc_worker_t *lw)
{
	struct timeval tv = {0, TICK_MS * 1000};

	if (!lw->tick_on && lw->tick != NULL) {
		lw->tick_on = true;
		event_add(lw->tick, &tv);
	}
}

static void poke_all(void);

/* What every worker still waits for, from their busy_names: "C-3 (app, idle in transaction)". */
static void busy_names(char *buf, size_t size)
{
	size_t n = 0;

	buf[0] = '\0';
	for (int i = 0; i < n_lcw; i++) {
		pthread_mutex_lock(&lcw[i].lock);
		if (lcw[i].busy_names[0] != '\0') {
			int k =
			    snprintf(buf + n, size - n, "%s%s", n ? ", " : "", lcw[i].busy_names);

			if (k > 0)
				n += (size_t)k < size - n ? (size_t)k : size - n - 1;
		}
		pthread_mutex_unlock(&lcw[i].lock);
	}
}

/*
 * pause_timeout passed before every worker drained: the pause is called off
 * (every worker releases what it holds when poked) and the waiting PAUSE
 * gets an error naming what it waited for. false: not yet, or a RESUME
 * came first.
 */
static bool pause_gives_up(char *msg, size_t size)
{
	uint64_t deadline = atomic_load(&g_pause_deadline_us);
	int expected = 1, busy = 0;
	char names[512];

	if (deadline == 0 || stats_now_us() < deadline)
		return false;
	for (int i = 0; i < n_lcw; i++)
		busy += atomic_load(&lcw[i].busy);
	busy_names(names, sizeof(names));
	if (!atomic_compare_exchange_strong(&g_paused, &expected, 0))
		return false;
	snprintf(msg, size,
	         "pgshard: PAUSE gave up after pause_timeout (%u s): %d client%s still in a "
	         "transaction: %s; nothing is paused",
	         atomic_load(&g_pause_timeout_s), busy, busy == 1 ? "" : "s",
	         names[0] ? names : "?");
	log_warn("%s", msg);
	poke_all();
	return true;
}

/* Answer this worker's console clients waiting for PAUSE, once every worker is drained. */
static void answer_waiters(lc_worker_t *lw)
{
	unsigned epoch = atomic_load(&g_pause_epoch);
	bool paused = atomic_load(&g_paused) != 0, drained = true;
	char gave_up[1024] = "";
	client_t *c, *next;

	for (int i = 0; i < n_lcw && paused; i++)
		drained = drained && atomic_load(&lcw[i].drained_epoch) == epoch;
	if (paused && !drained) {
		if (!pause_gives_up(gave_up, sizeof(gave_up)))
			return;
		paused = false;
	}
	for (c = TAILQ_FIRST(&lw->w->idle_clients); c != NULL; c = next) {
		next = TAILQ_NEXT(c, link);
		if (!c->pause_wait || c->closing)
			continue;
		c->pause_wait = false;
		c->admin_busy = false;
		lw->waiters--;
		if (paused) {
			log_msg(LOG_INFO, c->id, 0, "paused: no transaction in progress");
			answer(c, "PAUSE", NULL, NULL);
		} else if (gave_up[0] != '\0') {
			answer(c, NULL, "57014", gave_up);
		} else {
			answer(c, NULL, "57014", "pgshard: PAUSE canceled by RESUME");
		}
		session_resume(c);
	}
	lw->waiters = 0; /* those that closed meanwhile wait no more */
}

/* "C-3 (app, idle in transaction)" appended to buf: a client PAUSE waits for. */
static void name_busy(char *buf, size_t size, const client_t *c)
{
	size_t n = strlen(buf);
	const char *what = c->commit != NULL ? "committing"
	                   : tx_open(&c->tx) && c->phase == PH_IDLE && !c->have_plan &&
	                           pbuf_get_length(c->sb.in) == 0
	                       ? "idle in transaction"
	                       : "running a statement";

	snprintf(buf + n, size - n, "%sC-%llu (%s, %s)", n ? ", " : "", (unsigned long long)c->id,
	         c->user, what);
}

static void name_more(char *buf, size_t size, int more)
{
	size_t n = strlen(buf);

	snprintf(buf + n, size - n, " and %d more", more);
}

/* Apply the global state on lw's worker, and say how it stands. */
static void apply(lc_worker_t *lw)
{
	worker_t *w = lw->w;
	bool paused = atomic_load(&g_paused) != 0;
	int sd = atomic_load(&g_shutdown), n = 0, busy = 0;
	unsigned epoch = atomic_load(&g_pause_epoch);
	char names[sizeof(lw->busy_names)] = "";
	client_t **a;

	if (sd != SD_RUNNING && w->listener != NULL) {
		evconnlistener_free(w->listener); /* new connections are refused from now on */
		w->listener = NULL;
	}
	lw->draining = sd != SD_RUNNING;
	lw->forcing = sd == SD_FORCING;
	a = all_clients(w, &n);
	if (a == NULL)
		goto out; /* the next tick tries again */
	if (lw->paused && !paused) {
		lw->paused = false; /* first: the released run their messages now */
		release_held(lw, a, n);
	}
	lw->paused = paused;
	for (int i = 0; i < n; i++) {
		client_t *c = a[i];

		if (c->closing || c->state == CL_CLOSED)
			continue;
		if (lw->draining) {
			if (c->login_step != LOGIN_DONE || c->admin || at_boundary(c) ||
			    (lw->forcing && c->phase != PH_COMMITTING))
				terminate(c);
		} else if (paused && !c->admin && c->login_step == LOGIN_DONE && !at_boundary(c)) {
			if (busy++ < 4)
				name_busy(names, sizeof(names), c);
		}
	}
	free(a);
	if (busy > 4)
		name_more(names, sizeof(names), busy - 4);
	pthread_mutex_lock(&lw->lock);
	memcpy(lw->busy_names, names, sizeof(names));
	pthread_mutex_unlock(&lw->lock);
	atomic_store(&lw->busy, busy);
	if (paused && busy == 0)
		atomic_store(&lw->drained_epoch, epoch);
	if (lw->draining) {
		atomic_store(&lw->clients, w->n_clients);
		atomic_store(&lw->saw_shutdown, true);
	}
out:
	if (lw->waiters > 0)
		answer_waiters(lw);
	if (lw->draining || (paused && (busy > 0 || lw->waiters > 0)) || a == NULL)
		tick_start(lw);
	sbuf_flush_all(&w->loop); /* the answers, errors and released statements written */
}

static void ev_cb(evutil_socket_t fd, short what, void *arg)
{
	apply(arg);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	lc_worker_t *lw = arg;

	lw->tick_on = false;
	apply(lw);
}

static void poke(int i)
{
	lc_worker_t *lw = &lcw[i];

	pthread_mutex_lock(&lw->lock);
	if (lw->open)
		waker_activate(&g_workers[i].waker, lw->ev);
	pthread_mutex_unlock(&lw->lock);
}

static void poke_all(void)
{
	for (int i = 0; i < n_lcw; i++)
		poke(i);
}

int lifecycle_init(int n_workers)
{
	lcw = calloc((size_t)n_workers, sizeof(*lcw));
	if (lcw == NULL)
		return -1;
	n_lcw = n_workers;
	for (int i = 0; i < n_workers; i++)
		pthread_mutex_init(&lcw[i].lock, NULL);
	return 0;
}

void lifecycle_free(void)
{
	for (int i = 0; i < n_lcw; i++)
		pthread_mutex_destroy(&lcw[i].lock);
	free(lcw);
	lcw = NULL;
	n_lcw = 0;
}

int lifecycle_worker_start(worker_t *w)
{
	lc_worker_t *lw = &lcw[w->index];

	lw->w = w;
	lw->ev = event_new(w->base, -1, 0, ev_cb, lw);
	lw->tick = event_new(w->base, -1, 0, tick_cb, lw);
	if (lw->ev == NULL || lw->tick == NULL)
		return -1;
	pthread_mutex_lock(&lw->lock);
	lw->open = true;
	pthread_mutex_unlock(&lw->lock);
	/* a worker started during a pause or a shutdown: there is none of that yet */
	return 0;
}

void lifecycle_worker_stop(worker_t *w)
{
	lc_worker_t *lw;

	if (lcw == NULL || w->index >= n_lcw)
		return;
	lw = &lcw[w->index];
	pthread_mutex_lock(&lw->lock);
	lw->open = false;
	pthread_mutex_unlock(&lw->lock);
	if (lw->ev != NULL)
		event_free(lw->ev);
	if (lw->tick != NULL)
		event_free(lw->tick);
	lw->ev = lw->tick = NULL;
}

/* ---- the console ---- */

int lifecycle_pause(client_t *c)
{
	lc_worker_t *lw = &lcw[c->worker->index];
	int expected = 0, timeout_s;

	if (atomic_load(&g_shutdown) != SD_RUNNING) {
		answer(c, NULL, "55000", "pgshard: shutting down");
		return STEP_NEXT;
	}
	if (!atomic_compare_exchange_strong(&g_paused, &expected, 1)) {
		answer(c, NULL, "55000", "pgshard: already paused (RESUME first)");
		return STEP_NEXT;
	}
	/* a worker that applied the pause before this reads the new epoch when poked */
	atomic_fetch_add(&g_pause_epoch, 1);
	timeout_s = context_cfg(c->worker)->pause_timeout_s;
	atomic_store(&g_pause_timeout_s, (unsigned)timeout_s);
	atomic_store(&g_pause_deadline_us,
	             timeout_s > 0 ? stats_now_us() + (uint64_t)timeout_s * 1000000 : 0);
	log_msg(LOG_INFO, c->id, 0,
	        "admin console: PAUSE by user %s: new transactions wait, open ones finish",
	        c->user);
	c->pause_wait = true;
	c->admin_busy = true; /* its next commands wait for the answer */
	lw->waiters++;
	poke_all(); /* its own worker too: the answer comes from there */
	return STEP_NEXT;
}

int lifecycle_resume(client_t *c)
{
	int expected = 1;

	if (!atomic_compare_exchange_strong(&g_paused, &expected, 0)) {
		answer(c, NULL, "55000", "pgshard: not paused");
		return STEP_NEXT;
	}
	log_msg(LOG_INFO, c->id, 0, "admin console: RESUME by user %s", c->user);
	answer(c, "RESUME", NULL, NULL);
	poke_all();
	return STEP_NEXT;
}

void lifecycle_state(lifecycle_state_t *out)
{
	bool drained = true;
	unsigned epoch = atomic_load(&g_pause_epoch);

	memset(out, 0, sizeof(*out));
	for (int i = 0; i < n_lcw; i++) {
		out->busy += atomic_load(&lcw[i].busy);
		out->held += atomic_load(&lcw[i].held);
		drained = drained && atomic_load(&lcw[i].drained_epoch) == epoch;
	}
	if (atomic_load(&g_shutdown) != SD_RUNNING)
		out->state = "shutting down";
	else if (atomic_load(&g_paused))
		out->state = drained ? "paused" : "pausing";
	else
		out->state = "running";
	if (!atomic_load(&g_paused))
		out->busy = 0;
}

/* ---- the main thread's shutdown ---- */

static int clients_left(bool *all_saw)
{
	int n = 0;

	*all_saw = true;
	for (int i = 0; i < n_lcw; i++) {
		*all_saw = *all_saw && atomic_load(&lcw[i].saw_shutdown);
		n += atomic_load(&lcw[i].clients);
	}
	return n;
}

static void sd_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	uint64_t now = stats_now_us();
	bool all_saw;
	int left = clients_left(&all_saw);

	if (all_saw && left == 0) {
		log_info("shutdown: no client left, exiting");
		event_base_loopexit(sd_base, NULL);
		return;
	}
	if (now >= sd_hard_us) {
		log_warn("shutdown: %d client%s still committing after the grace time, exiting",
		         left, left == 1 ? "" : "s");
		event_base_loopexit(sd_base, NULL);
		return;
	}
	if (now >= sd_deadline_us && atomic_load(&g_shutdown) == SD_DRAINING) {
		log_warn("shutdown_timeout reached: closing %d client%s (transactions not "
		         "committing are rolled back)",
		         left, left == 1 ? "" : "s");
		atomic_store(&g_shutdown, SD_FORCING);
		poke_all();
	}
}

void lifecycle_shutdown_end(void)
{
	if (sd_timer != NULL)
		event_free(sd_timer);
	sd_timer = NULL;
}

bool lifecycle_shutdown(struct event_base *base, int timeout_s)
{
	int expected = SD_RUNNING;
	struct timeval every = {0, 20 * 1000};
	uint64_t now = stats_now_us();

	if (!atomic_compare_exchange_strong(&g_shutdown, &expected, SD_DRAINING))
		return false;
	sd_base = base;
	sd_deadline_us = now + (uint64_t)timeout_s * 1000000;
	sd_hard_us = sd_deadline_us + (uint64_t)(timeout_s > 0 ? timeout_s : 1) * 1000000;
	log_info("shutting down: no new connections; open transactions have %d s to finish",
	         timeout_s);
	poke_all();
	sd_timer = event_new(base, -1, EV_PERSIST, sd_timer_cb, NULL);
	if (sd_timer == NULL) {
		event_base_loopexit(base, NULL);
		return true;
	}
	event_add(sd_timer, &every);
	return true;
}
