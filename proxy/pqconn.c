/*
 * pqconn.c — a libpq connection on a libevent loop (see pqconn.h).
 *
 * libpq in non-blocking mode: PQconnectStartParams/PQconnectPoll to log in,
 * PQsendQuery/PQflush/PQconsumeInput/PQgetResult to query, each step waiting
 * for the socket on the loop. The socket event is made anew for each wait
 * and freed before libpq may close or replace its socket. Failures found
 * inside pqconn_connect or pqconn_query are reported from the loop (the
 * timer, made active at once), so that a caller never hears of the end of
 * an operation before the call that started it has returned.
 */
#include "proxy/pqconn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/log.h"

static void io_cb(evutil_socket_t fd, short what, void *arg);
static void timer_cb(evutil_socket_t fd, short what, void *arg);

/* The default notice processor prints to stderr ("schema ... already exists, skipping"). */
static void quiet(void *arg, const char *message)
{
}

int pqconn_init(pqconn_t *c, struct event_base *base)
{
	memset(c, 0, sizeof(*c));
	c->base = base;
	c->timer = evtimer_new(base, timer_cb, c);
	return c->timer != NULL ? 0 : -1;
}

static void stop_waiting(pqconn_t *c)
{
	if (c->io != NULL) {
		event_free(c->io);
		c->io = NULL;
	}
	if (c->timer != NULL)
		evtimer_del(c->timer);
}

static void drop_results(PGresult **results, int n)
{
	for (int i = 0; i < n; i++)
		PQclear(results[i]);
	free(results);
}

void pqconn_close(pqconn_t *c)
{
	stop_waiting(c);
	if (c->conn != NULL) {
		PQfinish(c->conn);
		c->conn = NULL;
	}
	drop_results(c->results, c->n_results);
	c->results = NULL;
	c->n_results = c->cap_results = 0;
	c->busy = false;
}

void pqconn_free(pqconn_t *c)
{
	pqconn_close(c);
	if (c->timer != NULL)
		event_free(c->timer);
	c->timer = NULL;
}

bool pqconn_ready(const pqconn_t *c)
{
	return c->conn != NULL && !c->busy && PQstatus(c->conn) == CONNECTION_OK;
}

/* The operation is over: tell the caller. */
static void finish(pqconn_t *c, bool ok, const char *why)
{
	PGresult **results = c->results;
	int n = c->n_results;
	char error[256] = "";
	pqconn_reply_t r = {.ok = ok};
	pqconn_done_fn done = c->done;

	if (!ok) {
		log_one_line(error, sizeof(error), why); /* why may point into the connection */
		r.needs_password = c->conn != NULL && PQconnectionNeedsPassword(c->conn);
	}
	c->results = NULL;
	c->n_results = c->cap_results = 0;
	if (ok) {
		stop_waiting(c);
		c->busy = false;
	} else {
		pqconn_close(c);
	}
	r.error = error;
	r.results = results;
	r.n_results = n;
	done(c->arg, &r);
	drop_results(results, n);
}

/* A failure found before the operation waited for anything: told from the loop. */
static void fail_later(pqconn_t *c, const char *why)
{
	log_one_line(c->error, sizeof(c->error), why);
	stop_waiting(c);
	event_active(c->timer, EV_TIMEOUT, 0);
}

static void wait_for(pqconn_t *c, short what)
{
	int fd = PQsocket(c->conn);

	if (c->io != NULL) {
		event_free(c->io);
		c->io = NULL;
	}
	if (fd < 0) {
		finish(c, false, "connection has no socket");
		return;
	}
	c->io = event_new(c->base, fd, what, io_cb, c);
	if (c->io == NULL || event_add(c->io, NULL) < 0)
		finish(c, false, "out of memory");
}

static void start(pqconn_t *c, int timeout_ms, pqconn_done_fn done, void *arg)
{
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};

	c->busy = true;
	c->timeout_ms = timeout_ms;
	c->done = done;
	c->arg = arg;
	c->error[0] = '\0';
	evtimer_add(c->timer, &tv);
}

void pqconn_connect(pqconn_t *c, const char *const *keys, const char *const *vals, int timeout_ms,
                    pqconn_done_fn done, void *arg)
{
	if (c->conn != NULL)
		pqconn_close(c);
	start(c, timeout_ms, done, arg);
	c->connecting = true;
	c->conn = PQconnectStartParams(keys, vals, 1);
	if (c->conn == NULL) {
		fail_later(c, "out of memory");
		return;
	}
	PQsetNoticeProcessor(c->conn, quiet, NULL);
	if (PQstatus(c->conn) == CONNECTION_BAD) {
		fail_later(c, PQerrorMessage(c->conn));
		return;
	}
	wait_for(c, EV_WRITE); /* libpq: as if PQconnectPoll had said PGRES_POLLING_WRITING */
}

static void poll_connect(pqconn_t *c)
{
	switch (PQconnectPoll(c->conn)) {
	case PGRES_POLLING_READING:
		wait_for(c, EV_READ);
		return;
	case PGRES_POLLING_WRITING:
		wait_for(c, EV_WRITE);
		return;
	case PGRES_POLLING_OK:
		if (PQsetnonblocking(c->conn, 1) != 0) {
			finish(c, false, PQerrorMessage(c->conn));
			return;
		}
		finish(c, true, NULL);
		return;
	default:
		finish(c, false, PQerrorMessage(c->conn));
		return;
	}
}

static void flush(pqconn_t *c)
{
	int r = PQflush(c->conn);

	if (r < 0)
		finish(c, false, PQerrorMessage(c->conn));
	else
		wait_for(c, r == 1 ? EV_READ | EV_WRITE : EV_READ);
}

void pqconn_query(pqconn_t *c, const char *sql, int timeout_ms, pqconn_done_fn done, void *arg)
{
	bool ready = pqconn_ready(c);

	start(c, timeout_ms, done, arg);
	c->connecting = false;
	if (!ready) {
		fail_later(c, "not connected");
		return;
	}
	if (!PQsendQuery(c->conn, sql)) {
		fail_later(c, PQerrorMessage(c->conn));
		return;
	}
	flush(c);
}

static bool keep_result(pqconn_t *c, PGresult *res)
{
	if (c->n_results == c->cap_results) {
		int cap = c->cap_results ? c->cap_results * 2 : 4;
		PGresult **more = realloc(c->results, (size_t)cap * sizeof(*more));

		if (more == NULL)
			return false;
		c->results = more;
		c->cap_results = cap;
	}
	c->results[c->n_results++] = res;
	return true;
}

static void poll_query(pqconn_t *c, short what)
{
	if ((what & EV_WRITE) != 0) {
		int r = PQflush(c->conn);

		if (r < 0) {
			finish(c, false, PQerrorMessage(c->conn));
			return;
		}
		if (r == 1) {
			wait_for(c, EV_READ | EV_WRITE);
			return;
		}
	}
	if ((what & EV_READ) != 0 && !PQconsumeInput(c->conn)) {
		finish(c, false, PQerrorMessage(c->conn));
		return;
	}
	while (!PQisBusy(c->conn)) {
		PGresult *res = PQgetResult(c->conn);

		if (res == NULL) {
			if (PQstatus(c->conn) != CONNECTION_OK)
				finish(c, false, PQerrorMessage(c->conn));
			else
				finish(c, true, NULL);
			return;
		}
		if (!keep_result(c, res)) {
			PQclear(res);
			finish(c, false, "out of memory");
			return;
		}
	}
	wait_for(c, EV_READ);
}

static void io_cb(evutil_socket_t fd, short what, void *arg)
{
	pqconn_t *c = arg;

	/* not pending any more (one-shot): freed before libpq may close its socket */
	event_free(c->io);
	c->io = NULL;
	if (c->connecting)
		poll_connect(c);
	else
		poll_query(c, what);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	pqconn_t *c = arg;
	char why[256];

	if (!c->busy)
		return;
	if (c->error[0] != '\0')
		snprintf(why, sizeof(why), "%s", c->error);
	else
		snprintf(why, sizeof(why), "no answer within %d ms (%s)", c->timeout_ms,
		         c->connecting ? "logging in" : "query");
	finish(c, false, why);
}

const char *pqconn_sqlstate(const pqconn_reply_t *r)
{
	for (int i = 0; i < r->n_results; i++) {
		ExecStatusType st = PQresultStatus(r->results[i]);

		if (st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE ||
		    st == PGRES_NONFATAL_ERROR) {
			const char *code = PQresultErrorField(r->results[i], PG_DIAG_SQLSTATE);

			return code != NULL ? code : "XX000";
		}
	}
	return NULL;
}

void pqconn_error(const pqconn_reply_t *r, char *buf, size_t size)
{
	buf[0] = '\0';
	for (int i = 0; i < r->n_results; i++) {
		if (PQresultErrorMessage(r->results[i])[0] != '\0') {
			log_one_line(buf, size, PQresultErrorMessage(r->results[i]));
			return;
		}
	}
}
