/*
 * pqconn.h — one libpq connection driven by a libevent loop: connect, then
 * one query string at a time, each under a deadline, the end told through a
 * callback. Non-blocking throughout, so that a slow or silent server stalls
 * nothing else on the loop. Used by two-phase-commit recovery (recovery.c)
 * and deadlock detection (deadlock.c) on the control thread.
 */
#ifndef PGSHARD_PQCONN_H
#define PGSHARD_PQCONN_H

#include <event2/event.h>
#include <libpq-fe.h>
#include <stdbool.h>

typedef struct pqconn_reply {
	bool ok;                  /* connected, or every result of the query came */
	bool needs_password;      /* !ok: the server asked for a password libpq did not have */
	const char *error;        /* !ok: why, on one line */
	PGresult *const *results; /* a query's results in order; an error result ends them */
	int n_results;
} pqconn_reply_t;

/*
 * Called from the loop, never from inside pqconn_connect or pqconn_query.
 * The reply and its results are freed when it returns. It may start the
 * next operation on the same connection, or close it; it may not free it.
 */
typedef void (*pqconn_done_fn)(void *arg, const pqconn_reply_t *reply);

typedef struct pqconn {
	struct event_base *base;
	PGconn *conn;
	bool connecting; /* an operation is under way: connecting, else querying */
	bool busy;
	int timeout_ms;
	struct event *io;    /* on PQsocket, made anew for each wait */
	struct event *timer; /* the operation's deadline, or a failure to report */
	char error[256];     /* a failure to report from the timer */
	PGresult **results;
	int n_results, cap_results;
	pqconn_done_fn done;
	void *arg;
} pqconn_t;

/* 0, or -1 when out of memory. */
int pqconn_init(pqconn_t *c, struct event_base *base);
/* Close it and free what it holds; an operation under way is dropped without a callback. */
void pqconn_free(pqconn_t *c);
/* Logged in, and no operation under way. */
bool pqconn_ready(const pqconn_t *c);
/* Close the connection (not busy), so that the next use opens a new one. */
void pqconn_close(pqconn_t *c);

/*
 * Open the connection (PQconnectStartParams with expand_dbname = 1); done
 * hears whether it is logged in within timeout_ms. A failed connection is
 * closed.
 */
void pqconn_connect(pqconn_t *c, const char *const *keys, const char *const *vals, int timeout_ms,
                    pqconn_done_fn done, void *arg);
/*
 * Send one query string (simple protocol: several statements run as one
 * transaction); done hears its results, or, when the connection failed or no
 * answer came within timeout_ms, that it failed (and the connection is
 * closed).
 */
void pqconn_query(pqconn_t *c, const char *sql, int timeout_ms, pqconn_done_fn done, void *arg);

/* The SQLSTATE of the first error among the reply's results, or NULL when there is none. */
const char *pqconn_sqlstate(const pqconn_reply_t *r);
/* Its message on one line in buf, or "" when there is none. */
void pqconn_error(const pqconn_reply_t *r, char *buf, size_t size);

#endif
