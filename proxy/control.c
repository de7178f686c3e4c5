/*
 * control.c — the control thread: node health checks and name resolution.
 *
 * One thread with a libevent loop of its own, so that nothing here can
 * stall a client. Every health_check_interval it checks each node with
 * libpq in non-blocking mode: a connection of its own per node, opened with
 * PQconnectStartParams/PQconnectPoll and kept, on which it runs
 * `SELECT pg_is_in_recovery()`; the check must end within
 * server_connect_timeout. It logs in as the node's conninfo says, with the
 * password the data path would use (nodes.h: check_user). A kept
 * connection that broke since the last check is reopened once before the
 * node is called down, so that a restarted server is not reported down
 * for a whole interval.
 *
 * Two-phase-commit recovery (recovery.c) and distributed deadlock
 * detection (deadlock.c) run on the same loop: started, reconfigured and
 * stopped with the checks.
 *
 * It also resolves each node's host name (getaddrinfo, which may block: it
 * blocks this thread only) and publishes the address, which server.c
 * connects to, so that the workers' loops never wait for a name server.
 *
 * What it learns goes out as a new immutable view of the nodes (nodes.h),
 * posted to every worker's mailbox; the workers take it on their own
 * threads. A node's change of state (up, down and why, a primary in
 * recovery, a replica that is not) is logged once per change. It does not
 * change routing yet: clients still go to the shard's primary and get the
 * data path's own errors when it cannot be reached.
 *
 * State ownership: `ctl` belongs to the main thread until control_start and
 * to the control thread from then until control_stop, except cfg_next, the
 * reload hand-over, which is guarded by ctl.lock.
 */
#include "proxy/control.h"

#include <libpq-fe.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proxy/context.h"
#include "proxy/deadlock.h"
#include "proxy/log.h"
#include "proxy/nodes.h"
#include "proxy/recovery.h"
#include "proxy/worker.h"

/* a replica's replay position, a primary's insert position (nodes.h: node_state_t.lsn) */
#define CHECK_QUERY                                                                                \
	"SELECT pg_is_in_recovery(), CASE WHEN pg_is_in_recovery() THEN "                          \
	"pg_last_wal_replay_lsn() ELSE pg_current_wal_insert_lsn() END"
#define WAL_HISTORY            64 /* positions of a primary kept to time its replicas' lag */
#define CHECK_APPLICATION_NAME "pgshard health check"

typedef enum check_phase {
	CHECK_IDLE,
	CHECK_CONNECTING,
	CHECK_QUERYING,
} check_phase_t;

/* One node's health check. */
typedef struct check {
	const node_t *node; /* in ctl.cfg->nodes */
	PGconn *conn;       /* kept from one check to the next */
	check_phase_t phase;
	bool reused;            /* conn was open before this check began */
	bool withheld_password; /* the users file has only a hash of it: libpq cannot use it */
	int in_recovery;        /* the answer, -1 until it comes */
	uint64_t lsn;           /* its WAL position (0: none) */
	uint64_t sent_us;       /* when the query was sent (CLOCK_MONOTONIC) */
	char error[256];        /* an error result of the query */
	struct event *io;       /* on PQsocket, made anew for each wait */
	struct event *timer;    /* the check's deadline */
} check_t;

/*
 * A primary's WAL positions as the checks saw them, each kept once, when it
 * was first seen: a replica that has not replayed position P has lagged
 * since the first check that saw its primary past P.
 */
typedef struct wal_history {
	uint64_t lsn[WAL_HISTORY];
	uint64_t at_us[WAL_HISTORY];
	int head, n; /* the oldest, and how many */
} wal_history_t;

static struct control {
	struct event_base *base;
	pthread_t thread;
	bool running;
	cfg_ref_t *cfg;
	check_t **checks; /* by node id of cfg->nodes */
	int n_checks;
	wal_history_t *wal; /* by shard of cfg */
	int n_wal;
	nodes_view_t *view; /* the latest published */
	struct event *tick;
	struct event *reload_ev;
	pthread_mutex_t lock; /* guards cfg_next */
	cfg_ref_t *cfg_next;
} ctl = {.lock = PTHREAD_MUTEX_INITIALIZER};

static uint64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* "16/B374D848" as a number; 0 for anything else. */
static uint64_t parse_lsn(const char *s)
{
	unsigned int hi, lo;

	if (s == NULL || sscanf(s, "%X/%X", &hi, &lo) != 2)
		return 0;
	return ((uint64_t)hi << 32) | lo;
}

static void wal_note(wal_history_t *h, uint64_t lsn, uint64_t at_us)
{
	int last = (h->head + h->n - 1) % WAL_HISTORY;

	if (lsn == 0 || (h->n > 0 && h->lsn[last] >= lsn))
		return;
	if (h->n == WAL_HISTORY) {
		h->head = (h->head + 1) % WAL_HISTORY;
		h->n--;
	}
	last = (h->head + h->n) % WAL_HISTORY;
	h->lsn[last] = lsn;
	h->at_us[last] = at_us;
	h->n++;
}

/* A replica at replay position `replay`, checked at at_us: how far behind its primary. */
static void wal_lag(const wal_history_t *h, uint64_t replay, uint64_t at_us, node_state_t *st)
{
	uint64_t newest;

	st->lag_bytes = st->lag_ms = -1;
	if (h == NULL || h->n == 0 || replay == 0)
		return;
	newest = h->lsn[(h->head + h->n - 1) % WAL_HISTORY];
	st->lag_bytes = newest > replay ? (int64_t)(newest - replay) : 0;
	st->lag_ms = 0;
	for (int i = 0; i < h->n; i++) {
		int k = (h->head + i) % WAL_HISTORY;

		if (h->lsn[k] > replay) {
			st->lag_ms =
			    at_us > h->at_us[k] ? (int64_t)(at_us - h->at_us[k]) / 1000 : 0;
			break;
		}
	}
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct timeval ms_tv(int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	return tv;
}

static void node_name(char *buf, size_t size, const node_t *n)
{
	snprintf(buf, size, "node %d (shard %d %s %s:%d)", n->id, n->shard,
	         nodes_role_name(n->role), n->host, n->port);
}

static int resolve(const node_t *n, struct sockaddr_storage *ss, socklen_t *len)
{
	struct addrinfo hints, *res = NULL;
	char port[16];
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%d", n->port);
	rc = getaddrinfo(n->host, port, &hints, &res);
	if (rc != 0 || res == NULL) {
		log_debug("cannot resolve %s: %s", n->host, rc ? gai_strerror(rc) : "no address");
		return -1;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = (socklen_t)res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* Resolve n into st; true when its address changed. */
static bool resolve_into(const node_t *n, node_state_t *st)
{
	struct sockaddr_storage ss;
	socklen_t len = 0;

	if (resolve(n, &ss, &len) < 0)
		return false; /* keep what worked before: a name server may be down for a moment */
	if (len == st->addrlen && memcmp(&ss, &st->addr, len) == 0)
		return false;
	memcpy(&st->addr, &ss, len);
	st->addrlen = len;
	return true;
}

/* Make v the latest view, and hand it to every worker. */
static void publish(nodes_view_t *v)
{
	nodes_view_put(ctl.view);
	ctl.view = v;
	for (int i = 0; i < g_n_workers; i++) {
		nodes_box_post(&g_workers[i].nodes_box, v);
		waker_activate(&g_workers[i].waker, g_workers[i].nodes_ev);
	}
}

/* A private copy of the latest view, to change and publish. */
static nodes_view_t *next_view(void)
{
	nodes_view_t *v = nodes_view_new(ctl.cfg->nodes, ctl.view);

	if (v == NULL)
		log_error("control: out of memory; node states not published");
	return v;
}

static void log_change(const node_t *n, const node_state_t *old, const node_state_t *st)
{
	char name[320];

	node_name(name, sizeof(name), n);
	if (st->health != old->health) {
		if (st->health == NODE_UP)
			log_info("%s is up%s", name, old->health == NODE_DOWN ? " again" : "");
		else
			log_warn("%s is down: %s", name, st->error);
	}
	if (st->in_recovery != old->in_recovery && st->in_recovery >= 0) {
		if (n->role == NODE_PRIMARY && st->in_recovery == 1)
			log_warn("%s is in recovery: it is configured as the shard's primary",
			         name);
		else if (n->role == NODE_REPLICA && st->in_recovery == 0)
			log_warn("%s is not in recovery: it is configured as a replica (promoted?)",
			         name);
	}
}

/* The check ended: publish what it found. */
static void check_record(check_t *ch, node_health_t health, int in_recovery, const char *error)
{
	const node_t *n = ch->node;
	nodes_view_t *v = next_view();
	node_state_t *st, old;
	int64_t now = now_ms();

	if (v == NULL)
		return;
	st = &v->states[n->id];
	old = *st;
	st->health = health;
	st->in_recovery = in_recovery;
	st->checked_at_ms = now;
	if (health == NODE_UP && ch->lsn != 0) {
		wal_history_t *h = n->shard < ctl.n_wal ? &ctl.wal[n->shard] : NULL;

		st->lsn = ch->lsn;
		st->lsn_at_us = ch->sent_us;
		if (n->role == NODE_PRIMARY && h != NULL)
			wal_note(h, ch->lsn, ch->sent_us);
		else if (n->role == NODE_REPLICA)
			wal_lag(h, ch->lsn, ch->sent_us, st);
	} else if (health != NODE_UP) {
		st->lsn = st->lsn_at_us = 0;
		st->lag_bytes = st->lag_ms = -1;
	}
	if (health != old.health)
		st->changed_at_ms = now;
	if (health == NODE_DOWN)
		log_one_line(st->error, sizeof(st->error), error ? error : "unknown error");
	else
		st->error[0] = '\0';
	log_change(n, &old, st);
	publish(v);
}

static void check_end(check_t *ch, bool close)
{
	if (ch->io != NULL) {
		event_free(ch->io);
		ch->io = NULL;
	}
	if (ch->timer != NULL)
		evtimer_del(ch->timer);
	if (close && ch->conn != NULL) {
		PQfinish(ch->conn);
		ch->conn = NULL;
	}
	ch->phase = CHECK_IDLE;
}

static void check_fail(check_t *ch, const char *why)
{
	char error[256];

	log_one_line(error, sizeof(error), why); /* why may point into the connection */
	check_end(ch, true);
	check_record(ch, NODE_DOWN, -1, error);
}

static void check_ok(check_t *ch, int in_recovery, bool keep)
{
	check_end(ch, !keep);
	check_record(ch, NODE_UP, in_recovery, NULL);
}

static void io_cb(evutil_socket_t fd, short what, void *arg);

/* Wait until the connection's socket is readable or writable (what). */
static void check_wait(check_t *ch, short what)
{
	int fd = PQsocket(ch->conn);

	if (ch->io != NULL) {
		event_free(ch->io);
		ch->io = NULL;
	}
	if (fd < 0) {
		check_fail(ch, "connection has no socket");
		return;
	}
	ch->io = event_new(ctl.base, fd, what, io_cb, ch);
	if (ch->io == NULL || event_add(ch->io, NULL) < 0)
		check_fail(ch, "out of memory");
}

static void check_connect(check_t *ch)
{
	nodes_login_t l;

	nodes_login(&l, ch->node, NODES_LOGIN_CHECK, CHECK_APPLICATION_NAME, NULL);
	ch->withheld_password = l.withheld_password;
	ch->reused = false;
	ch->phase = CHECK_CONNECTING;
	ch->conn = PQconnectStartParams(l.keys, l.vals, 1);
	if (ch->conn == NULL) {
		check_fail(ch, "out of memory");
		return;
	}
	if (PQstatus(ch->conn) == CONNECTION_BAD) {
		check_fail(ch, PQerrorMessage(ch->conn));
		return;
	}
	check_wait(ch, EV_WRITE); /* libpq: as if PQconnectPoll had said PGRES_POLLING_WRITING */
}

/* The kept connection failed: reopen it once, or call the node down. */
static void check_broken(check_t *ch)
{
	if (ch->reused) {
		if (ch->io != NULL) {
			event_free(ch->io);
			ch->io = NULL;
		}
		PQfinish(ch->conn);
		ch->conn = NULL;
		check_connect(ch);
		return;
	}
	check_fail(ch, PQerrorMessage(ch->conn));
}

static void check_flush(check_t *ch)
{
	int r = PQflush(ch->conn);

	if (r < 0)
		check_broken(ch);
	else
		check_wait(ch, r == 1 ? EV_READ | EV_WRITE : EV_READ);
}

static void check_query(check_t *ch)
{
	ch->phase = CHECK_QUERYING;
	ch->in_recovery = -1;
	ch->lsn = 0;
	ch->sent_us = mono_us();
	ch->error[0] = '\0';
	if (!PQsendQuery(ch->conn, CHECK_QUERY)) {
		check_broken(ch);
		return;
	}
	check_flush(ch);
}

static void poll_connect(check_t *ch)
{
	switch (PQconnectPoll(ch->conn)) {
	case PGRES_POLLING_READING:
		check_wait(ch, EV_READ);
		return;
	case PGRES_POLLING_WRITING:
		check_wait(ch, EV_WRITE);
		return;
	case PGRES_POLLING_OK:
		if (PQsetnonblocking(ch->conn, 1) != 0) {
			check_fail(ch, PQerrorMessage(ch->conn));
			return;
		}
		check_query(ch);
		return;
	default:
		/*
		 * Asked for a password that only a hash of is known: the server
		 * is up and accepting logins (as pg_isready would say); pgshard
		 * itself logs in with the hash, by md5, which libpq cannot.
		 */
		if (ch->withheld_password && PQconnectionNeedsPassword(ch->conn)) {
			check_ok(ch, -1, false);
			return;
		}
		check_fail(ch, PQerrorMessage(ch->conn));
		return;
	}
}

static void poll_query(check_t *ch, short what)
{
	if ((what & EV_WRITE) != 0) {
		int r = PQflush(ch->conn);

		if (r < 0) {
			check_broken(ch);
			return;
		}
		if (r == 1) {
			check_wait(ch, EV_READ | EV_WRITE);
			return;
		}
	}
	if ((what & EV_READ) != 0 && !PQconsumeInput(ch->conn)) {
		check_broken(ch);
		return;
	}
	while (!PQisBusy(ch->conn)) {
		PGresult *res = PQgetResult(ch->conn);

		if (res == NULL) {
			if (ch->error[0] != '\0')
				check_fail(ch, ch->error);
			else
				check_ok(ch, ch->in_recovery, true);
			return;
		}
		if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
			ch->in_recovery = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
			if (PQnfields(res) > 1 && !PQgetisnull(res, 0, 1))
				ch->lsn = parse_lsn(PQgetvalue(res, 0, 1));
		} else
			log_one_line(ch->error, sizeof(ch->error), PQresultErrorMessage(res));
		PQclear(res);
	}
	check_wait(ch, EV_READ);
}

static void io_cb(evutil_socket_t fd, short what, void *arg)
{
	check_t *ch = arg;

	/* not pending any more (one-shot): freed before libpq may close its socket */
	event_free(ch->io);
	ch->io = NULL;
	if (ch->phase == CHECK_CONNECTING)
		poll_connect(ch);
	else if (ch->phase == CHECK_QUERYING)
		poll_query(ch, what);
}

static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	check_t *ch = arg;
	char why[64];

	snprintf(why, sizeof(why), "no answer within %d ms (server_connect_timeout)",
	         ctl.cfg->cfg->server_connect_timeout_ms);
	check_fail(ch, why);
}

static void check_begin(check_t *ch)
{
	const node_t *n = ch->node;
	struct timeval tv = ms_tv(ctl.cfg->cfg->server_connect_timeout_ms);
	node_state_t st = *nodes_view_state(ctl.view, n);

	if (resolve_into(n, &st)) {
		nodes_view_t *v = next_view();

		if (v != NULL) {
			v->states[n->id].addr = st.addr;
			v->states[n->id].addrlen = st.addrlen;
			publish(v);
		}
	}
	evtimer_add(ch->timer, &tv);
	if (ch->conn != NULL) {
		ch->reused = true;
		check_query(ch);
	} else {
		check_connect(ch);
	}
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	for (int i = 0; i < ctl.n_checks; i++) {
		/* a check still running when the next is due goes on (its deadline ends it) */
		if (ctl.checks[i]->phase == CHECK_IDLE)
			check_begin(ctl.checks[i]);
	}
}

static void check_free(check_t *ch)
{
	if (ch == NULL)
		return;
	check_end(ch, true);
	if (ch->timer != NULL)
		event_free(ch->timer);
	free(ch);
}

static void checks_free(check_t **checks, int n)
{
	for (int i = 0; i < n; i++)
		check_free(checks[i]);
	free(checks);
}

static bool same_str(const char *a, const char *b)
{
	return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/*
 * Checks for the nodes of t. An idle check of the same node logging in the
 * same way (from the config before a reload) gives its connection to the
 * new one. NULL: out of memory.
 */
static check_t **checks_new(const nodes_table_t *t)
{
	check_t **checks = calloc((size_t)(t->n > 0 ? t->n : 1), sizeof(*checks));

	if (checks == NULL)
		return NULL;
	for (int i = 0; i < t->n; i++) {
		check_t *ch = calloc(1, sizeof(*ch));

		if (ch != NULL)
			ch->timer = evtimer_new(ctl.base, timeout_cb, ch);
		if (ch == NULL || ch->timer == NULL) {
			free(ch);
			checks_free(checks, i);
			return NULL;
		}
		ch->node = &t->nodes[i];
		ch->in_recovery = -1;
		checks[i] = ch;
		for (int j = 0; j < ctl.n_checks; j++) {
			check_t *old = ctl.checks[j];
			const node_t *o = old->node;

			if (old->phase == CHECK_IDLE && old->conn != NULL &&
			    nodes_same(o, ch->node) && same_str(o->conninfo, ch->node->conninfo) &&
			    same_str(o->check_user, ch->node->check_user) &&
			    same_str(o->check_password, ch->node->check_password) &&
			    same_str(o->check_dbname, ch->node->check_dbname)) {
				ch->conn = old->conn;
				old->conn = NULL;
				break;
			}
		}
	}
	return checks;
}

/* The checks' interval: shorter when replicas serve reads, to know their positions. */
static int check_interval_ms(const cfg_t *cfg)
{
	bool replicas = false;

	for (int i = 0; i < cfg->n_shards; i++)
		replicas |= cfg->shards[i].n_replicas > 0;
	if (replicas && cfg->replica_reads != CFG_REPLICA_READS_OFF &&
	    cfg->replica_check_interval_ms < cfg->health_check_interval_ms)
		return cfg->replica_check_interval_ms;
	return cfg->health_check_interval_ms;
}

/* A fresh history for each shard of cfg (a reload may renumber them). -1: out of memory. */
static int wal_reset(const cfg_t *cfg)
{
	wal_history_t *w = calloc((size_t)(cfg->n_shards > 0 ? cfg->n_shards : 1), sizeof(*w));

	if (w == NULL)
		return -1;
	free(ctl.wal);
	ctl.wal = w;
	ctl.n_wal = cfg->n_shards;
	return 0;
}

static void tick_schedule(void)
{
	struct timeval tv = ms_tv(check_interval_ms(ctl.cfg->cfg));

	event_del(ctl.tick);
	event_add(ctl.tick, &tv);
	event_active(ctl.tick, EV_TIMEOUT, 0); /* and a first round now */
}

/* A view of cfg's nodes, states carried over from the latest, new hosts resolved. */
static nodes_view_t *view_for(cfg_ref_t *cfg)
{
	nodes_view_t *v = nodes_view_new(cfg->nodes, ctl.view);

	if (v == NULL)
		return NULL;
	for (int i = 0; i < cfg->nodes->n; i++) {
		const node_t *n = &cfg->nodes->nodes[i];

		if (v->states[i].addrlen == 0 && !resolve_into(n, &v->states[i]))
			log_warn("cannot resolve the host name of node %d (shard %d %s %s:%d) yet",
			         n->id, n->shard, nodes_role_name(n->role), n->host, n->port);
	}
	return v;
}

static void reload_cb(evutil_socket_t fd, short what, void *arg)
{
	cfg_ref_t *next;
	check_t **checks;
	nodes_view_t *v;

	pthread_mutex_lock(&ctl.lock);
	next = ctl.cfg_next;
	ctl.cfg_next = NULL;
	pthread_mutex_unlock(&ctl.lock);
	if (next == NULL)
		return;
	checks = checks_new(next->nodes);
	v = view_for(next);
	if (checks == NULL || v == NULL) {
		log_error(
		    "control: out of memory; the nodes of the reloaded config are not checked");
		if (checks != NULL)
			checks_free(checks, next->nodes->n);
		nodes_view_put(v);
		context_cfg_ref_put(next);
		return;
	}
	checks_free(ctl.checks, ctl.n_checks);
	ctl.checks = checks;
	ctl.n_checks = next->nodes->n;
	if (wal_reset(next->cfg) < 0)
		log_error("control: out of memory; replica lag unknown until the next reload");
	context_cfg_ref_put(ctl.cfg);
	ctl.cfg = next;
	publish(v);
	tick_schedule();
	recovery_set_config(next);
	deadlock_set_config(next);
}

int control_init(cfg_ref_t *cfg)
{
	ctl.cfg = context_cfg_ref_get(cfg);
	ctl.view = view_for(cfg);
	return ctl.view != NULL ? 0 : -1;
}

nodes_view_t *control_view(void)
{
	return nodes_view_get(ctl.view);
}

static void *control_main(void *arg)
{
	event_base_dispatch(ctl.base);
	return NULL;
}

int control_start(void)
{
	ctl.base = event_base_new();
	if (ctl.base == NULL)
		return -1;
	ctl.tick = event_new(ctl.base, -1, EV_PERSIST, tick_cb, NULL);
	ctl.reload_ev = event_new(ctl.base, -1, 0, reload_cb, NULL);
	ctl.checks = checks_new(ctl.cfg->nodes);
	if (ctl.tick == NULL || ctl.reload_ev == NULL || ctl.checks == NULL ||
	    wal_reset(ctl.cfg->cfg) < 0)
		return -1;
	ctl.n_checks = ctl.cfg->nodes->n;
	tick_schedule();
	if (recovery_start(ctl.base, ctl.cfg) < 0 || deadlock_start(ctl.base, ctl.cfg) < 0)
		return -1;
	if (pthread_create(&ctl.thread, NULL, control_main, NULL) != 0)
		return -1;
	ctl.running = true;
	return 0;
}

void control_set_config(cfg_ref_t *cfg)
{
	cfg_ref_t *old;

	if (ctl.reload_ev == NULL)
		return;
	pthread_mutex_lock(&ctl.lock);
	old = ctl.cfg_next;
	ctl.cfg_next = context_cfg_ref_get(cfg);
	pthread_mutex_unlock(&ctl.lock);
	context_cfg_ref_put(old);
	event_active(ctl.reload_ev, 0, 0);
}

void control_stop(void)
{
	if (ctl.running) {
		event_base_loopexit(ctl.base, NULL);
		pthread_join(ctl.thread, NULL);
		ctl.running = false;
	}
	recovery_stop(); /* their connections are events of ctl.base */
	deadlock_stop();
	checks_free(ctl.checks, ctl.n_checks);
	ctl.checks = NULL;
	ctl.n_checks = 0;
	free(ctl.wal);
	ctl.wal = NULL;
	ctl.n_wal = 0;
	if (ctl.tick != NULL)
		event_free(ctl.tick);
	if (ctl.reload_ev != NULL)
		event_free(ctl.reload_ev);
	ctl.tick = ctl.reload_ev = NULL;
	if (ctl.base != NULL)
		event_base_free(ctl.base);
	ctl.base = NULL;
	context_cfg_ref_put(ctl.cfg);
	context_cfg_ref_put(ctl.cfg_next);
	ctl.cfg = ctl.cfg_next = NULL;
	nodes_view_put(ctl.view);
	ctl.view = NULL;
}
