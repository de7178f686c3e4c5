/*
 * lifecycle.h — pgshard's run states (lifecycle.c): running, paused (the
 * console's PAUSE and RESUME) and shutting down (SIGTERM or SHUTDOWN: no new
 * connections, open transactions finish, up to shutdown_timeout).
 */
#ifndef PGSHARD_PROXY_LIFECYCLE_H
#define PGSHARD_PROXY_LIFECYCLE_H

#include "proxy/proxy.h"

/* Before the workers start; lifecycle_free after they have all stopped. 0, or -1: no memory. */
int lifecycle_init(int n_workers);
void lifecycle_free(void);
int lifecycle_worker_start(worker_t *w); /* its events, on its base */
void lifecycle_worker_stop(worker_t *w); /* its loop is over */

/*
 * The main thread's SIGTERM: every worker stops accepting and closes its
 * clients as their transactions end; the main loop `base` exits once none
 * is left, or shutdown_timeout seconds after the start (clients in the
 * middle of a two-phase commit get as long again to finish it). false when
 * a shutdown is already under way.
 */
bool lifecycle_shutdown(struct event_base *base, int timeout_s);
void lifecycle_shutdown_end(void); /* the main loop is over: its timer goes */

/*
 * The message loop (client.c), before it runs a client's next message:
 * true when the client must not go on now: it is between transactions and
 * pgshard is paused (the client is held, its socket no longer read, until
 * RESUME) or shutting down (the client is told 57P01 and closed).
 */
bool lifecycle_stops(client_t *c);

/*
 * The console's PAUSE and RESUME, on the console client's worker; each
 * answers the client itself (PAUSE once every transaction in progress has
 * ended) and returns STEP_NEXT.
 */
int lifecycle_pause(client_t *c);
int lifecycle_resume(client_t *c);

typedef struct lifecycle_state {
	const char *state; /* running, pausing, paused, shutting down */
	int busy;          /* clients in a transaction that PAUSE waits for (as last counted) */
	int held;          /* clients whose statements wait for RESUME */
} lifecycle_state_t;

void lifecycle_state(lifecycle_state_t *out);

#endif
