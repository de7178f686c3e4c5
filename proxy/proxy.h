/*
 * proxy.h — the proxy's objects: workers, client sessions, server
 * connections and pools, and how they point at each other.
 *
 * Each worker thread owns one libevent loop and everything reachable from
 * it (shared-nothing). Every client and every server connection has exactly
 * one state, and each state is backed by a list, so that an admin view or an
 * invariant check is a walk over lists:
 *
 *   client: CL_LOGIN    worker->login_clients   startup and authentication
 *           CL_IDLE     worker->idle_clients    logged in, holds no server
 *           CL_WAITING  pool->waiting           wants a server, in FIFO order
 *           CL_ACTIVE   pool->active_clients    holds one server or more (of c->pool: the
 *                                               pool it got its last one from)
 *           CL_CLOSED   worker->closed_clients  closed, freed at the end of the loop pass
 *
 *   server: SV_CONNECT  pool->connecting        TCP connect, startup, auth
 *           SV_IDLE     pool->idle              ready, in no transaction
 *           SV_ACTIVE   pool->active            linked to a client
 *           SV_CLOSED   worker->closed_servers  closed, freed at the end of the loop pass
 *
 * Closing never frees: a callback deep in the stack (a reply being relayed, a
 * Terminate read while another message is handled) may close the object its
 * callers still hold. A closed object keeps its memory, answers no event and
 * is freed by the worker's reaper, which runs as a callback of its own once
 * the current one has returned (context_reap_later).
 *
 * A client is linked to a server for one transaction (or one statement in
 * autocommit), and for longer only when it holds session state that cannot
 * move (pinned: LISTEN, temporary tables, session advisory locks, ...).
 *
 * Each statement is routed (router/route.h) to the shards it needs. A client
 * holds at most one server per shard (c->links); c->server is the one its
 * messages go to now, and the others are parked with nothing outstanding. A
 * statement for several shards runs as a fan-out (fanout.c) over several
 * links at once, its replies merged into one answer.
 */
#ifndef PGSHARD_PROXY_H
#define PGSHARD_PROXY_H

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>

#include "config/config.h"
#include "proxy/auth.h"
#include "proxy/nodes.h"
#include "proxy/sbuf.h"
#include "proxy/status.h"
#include "proxy/tx.h"
#include "proxy/wire.h"
#include "router/classify.h"
#include "router/plancache.h"
#include "router/route.h"

typedef struct worker worker_t;
typedef struct client client_t;
typedef struct server server_t;
typedef struct pool pool_t;
typedef struct ps_entry ps_entry_t;
typedef struct ps_client_map ps_client_map_t;
typedef struct ps_server_set ps_server_set_t;
typedef struct fanout fanout_t;
typedef struct worker_coll worker_coll_t;
typedef struct route_job route_job_t;

/* Config shared by workers; freed when the last holder lets go (reload swaps it). */
typedef struct cfg_ref {
	cfg_t *cfg;
	nodes_table_t *nodes; /* cfg's nodes */
	atomic_int refs;
} cfg_ref_t;

cfg_ref_t *context_cfg_ref_new(cfg_t *cfg);
cfg_ref_t *context_cfg_ref_get(cfg_ref_t *r);
void context_cfg_ref_put(cfg_ref_t *r);

/* Bytes kept in a buffer before the other side (or the client itself) stops being read. */
#define PROXY_HIGH_WATERMARK (256 * 1024)

/* ---- session parameters (params.c) ---- */

typedef struct param {
	char *name; /* lower case */
	char *stmt; /* SQL that sets it, e.g. SET application_name = 'x' */
} param_t;

typedef struct param_list {
	param_t *items;
	int n;
} param_list_t;

void params_free(param_list_t *l);
int params_set(param_list_t *l, const char *name, const char *stmt);
void params_remove(param_list_t *l, const char *name);
int params_copy(param_list_t *dst, const param_list_t *src);
/* Turn startup-packet parameters (and `options` -c switches) into SET statements.
 * On an unusable parameter, returns -1 with a message in err. */
int params_from_startup(param_list_t *l, const wire_startup_t *s, char *err, size_t errlen);
/* Hash of startup + session lists, to tell whether a server already has them. */
uint64_t params_hash(const param_list_t *startup, const param_list_t *session);
/* "RESET ALL; <startup sets>; <session sets>" — what makes a server match a client. */
char *params_sync_sql(const param_list_t *startup, const param_list_t *session);

/* ---- the response queue of a linked client/server pair ----
 *
 * Every message sent to a server that will be answered is remembered here
 * in order, so that the proxy knows when a server is done (and can be
 * released), where a synthesized reply must be slotted in (a Parse the
 * proxy did not send because the server already had that statement), and
 * which replies the client must not see (a Parse the proxy injected to
 * re-prepare a statement on a new server connection).
 */
typedef enum pending_action {
	PEND_FORWARD,    /* the server answers; the answer goes to the client */
	PEND_SWALLOW,    /* the server answers; the proxy asked, the client never sees it */
	PEND_SYNTHESIZE, /* the server is not asked; the proxy answers in order */
} pending_action_t;

typedef struct pending {
	uint8_t msg;    /* client message type: 'P','B','D','E','C','S','Q','F' */
	uint8_t action; /* pending_action_t */
	uint8_t reply;  /* PEND_SYNTHESIZE: what to send ('1', '3', or 'E' with `str`) */
	ps_entry_t *ps; /* a Parse that prepares this entry on the server */
	char *str;      /* client's name of that statement, or SQLSTATE+message of an error */
} pending_t;

typedef struct pending_queue {
	pending_t *items;
	uint32_t cap, head, count;
} pending_queue_t;

int pending_push(pending_queue_t *q, uint8_t msg, pending_action_t action, uint8_t reply,
                 ps_entry_t *ps, char *str);
pending_t *pending_head(pending_queue_t *q);
void pending_pop(pending_queue_t *q);
void pending_clear(pending_queue_t *q);

/* ---- client sessions (client.c) ---- */

typedef enum client_state {
	CL_LOGIN,
	CL_IDLE,
	CL_WAITING,
	CL_ACTIVE,
	CL_CLOSED,
} client_state_t;

/*
 * What a client's statement is doing, beyond its messages going to c->server:
 * one field, so that "can its servers go back to their pools?" and an admin
 * view ask one thing.
 */
typedef enum client_phase {
	PH_IDLE,      /* nothing runs for it but what its current server (if any) answers */
	PH_ROUTING,   /* its statement is routed off the loop (routejob.c, c->route_job) */
	PH_GATHERING, /* a server of each shard a statement needs is being collected */
	PH_SEVERAL,   /* a statement runs on several shards (fanout.c, c->fan) */
} client_phase_t;

typedef enum client_login_step {
	LOGIN_STARTUP,      /* waiting for the startup packet */
	LOGIN_PASSWORD,     /* md5: waiting for PasswordMessage */
	LOGIN_SASL_INITIAL, /* scram: waiting for SASLInitialResponse */
	LOGIN_SASL_FINAL,   /* scram: waiting for SASLResponse */
	LOGIN_PARAMS,       /* authenticated, waiting for a server to learn parameters */
	LOGIN_DONE,
} client_login_step_t;

/*
 * What the client's message loop (client.c, the top of a session) does for
 * the layers below it, which report up through these instead of calling it:
 * calls go down, events come up.
 */
typedef struct client_ops {
	void (*resume)(client_t *c);                    /* read and run its messages again */
	void (*server_reply)(client_t *c, server_t *s); /* a linked server has data */
	void (*unlinked)(client_t *c, server_t *s);     /* a server left the client */
	void (*closing)(client_t *c);                   /* the session closes */
	void (*freeing)(client_t *c);                   /* and its memory goes (reaper) */
	void (*params_known)(client_t *c); /* a login's server applied its parameters */
	/* from the pools (pool.c) */
	void (*pool_wait)(client_t *c, pool_t *p);       /* into p's waiting list */
	void (*pool_unwait)(client_t *c);                /* out of it again */
	void (*pool_linked)(client_t *c, server_t *s);   /* the pool gave it a server */
	void (*pool_released)(client_t *c, server_t *s); /* s goes back to its pool */
	void (*pool_failed)(client_t *c, pool_t *p, const char *why, const uint8_t *error_body,
	                    size_t error_len); /* no server could be had */
	/* from a linked server connection (server.c) */
	void (*server_lost)(client_t *c, server_t *s, const char *why);
} client_ops_t;

/* What a server connection reports to its pool (pool.c gives them at server_connect). */
typedef struct server_events {
	void (*ready)(server_t *s); /* logged in, or back from its client: hand it on */
	void (*gone)(server_t *s, const char *why, const uint8_t *error_body, size_t error_len);
} server_events_t;

struct client {
	TAILQ_ENTRY(client) link; /* in the list of its state */
	const client_ops_t *ops;
	px_status_t status; /* why the last step failed, when it did */
	uint64_t id;
	client_state_t state;
	client_login_step_t login_step;
	int login_tries;     /* shards tried for the server a login learns parameters from */
	char *login_error;   /* why the first of them could not be reached */
	char *connect_error; /* the shard the head message waited for cannot be reached */
	time_t accepted_at;  /* login_timeout counts from here */
	worker_t *worker;
	sbuf_t sb;

	char *user;
	char *database;
	pool_t *pool;     /* set after login */
	server_t *server; /* where messages go now; NULL when parked or fanning out */
	server_t **links; /* by shard: every server this client holds */
	int links_cap;
	int n_links;
	client_phase_t phase; /* what its statement is doing now, see client_phase_t */

	/* the message at the head of the input, once routed */
	bool have_plan;
	route_plan_t plan;
	route_job_t *route_job; /* its plan is being made off the loop (routejob.c) */

	/* the transaction as the client sees it (BEGIN is answered by the proxy): tx.h */
	tx_t tx;
	bool txd_ready;    /* the head message's transaction decision is made: */
	tx_decision_t txd; /* (tx_control, once per message, even if it waits) */
	fanout_t *fan;     /* a statement running on several shards */
	char *txn_portal;  /* a portal whose Bind the proxy answered (BEGIN over Bind/Execute) */
	char txn_tag[16];  /* its CommandComplete tag */
	char *txn_sql;     /* or the statement its Execute runs on every link */
	struct fan_portal *fan_portal; /* a portal on several shards, run at its Execute */

	int32_t cancel_pid, cancel_key; /* what the client was told in BackendKeyData */

	/* authentication */
	uint8_t md5_salt[4];
	char *stored_password;
	auth_scram_server_t *scram;

	/* session state that follows the client from server to server */
	param_list_t startup_params;
	param_list_t session_params;
	uint64_t params_hash;
	route_set_t *pend_sets; /* SET/RESET sent but whose transaction has not ended */
	int n_pend_sets;
	bool pinned;
	const char *pin_why;

	ps_client_map_t *statements; /* client statement name -> ps_entry */
	uint8_t *unnamed_parse;      /* the last unnamed Parse message, whole */
	size_t unnamed_parse_len;
	uint64_t unnamed_gen; /* identifies it; 0 = none */

	bool closing;
	struct event *close_ev; /* closes a client with nothing left to send */
	bool in_process;        /* process_messages is on the stack */
	bool skip_until_sync;   /* the proxy answered an error; drop messages until Sync */
	bool wait_server_drain;
	bool too_many; /* over max_clients: refused at its startup packet */
};

TAILQ_HEAD(client_list, client);

/* ---- server connections (server.c) ---- */

typedef enum server_state {
	SV_CONNECT,
	SV_IDLE,
	SV_ACTIVE,
	SV_CLOSED,
} server_state_t;

struct server {
	TAILQ_ENTRY(server) link;
	const server_events_t *events; /* its pool's */
	uint64_t id;
	server_state_t state;
	pool_t *pool;
	sbuf_t sb;
	client_t *client; /* SV_ACTIVE */

	char tx_status; /* from the last ReadyForQuery: 'I', 'T' or 'E' */
	int32_t backend_pid, backend_key;
	struct sockaddr_storage addr; /* where it connected: a CancelRequest goes there too */
	socklen_t addrlen;
	param_list_t reported; /* ParameterStatus values, name -> value (in stmt) */

	pending_queue_t pending;
	bool unsynced;       /* messages sent since the last Sync, answered only after one */
	bool syncing_params; /* a proxy-made SET query is in flight */
	uint8_t *sync_error; /* its ErrorResponse body, if any, to tell the client */
	size_t sync_error_len;

	uint64_t params_hash;        /* the client parameter set this server has applied */
	ps_server_set_t *statements; /* ps_entry ids prepared here */
	uint64_t unnamed_gen;        /* whose unnamed statement this server holds */

	auth_scram_client_t *scram;
	time_t idle_since;
	bool sets_doomed;       /* an error or ROLLBACK since the client's SET was sent */
	bool executed;          /* an Execute was sent since the last Sync */
	bool batch_failed;      /* and an error came: the server skips to the Sync */
	bool flushed;           /* the proxy sent a Flush to learn how the batch went */
	bool wait_client_drain; /* reading paused: the client's output is full */
};

TAILQ_HEAD(server_list, server);

/* ---- pools (pool.c) ---- */

struct pool {
	TAILQ_ENTRY(pool) link;
	worker_t *worker;
	int shard;
	node_role_t role; /* the node is (shard, role, host, port): what outlives a reload */
	int node_id;      /* in the worker's config's node table, as of the last pool_get */
	char *host;
	int port;
	char *dbname;
	char *user;
	char *password; /* NULL: no password known */
	int max_servers;

	struct server_list connecting, idle, active;
	struct client_list waiting, active_clients;
	int n_servers;
	char *last_connect_error;
};

TAILQ_HEAD(pool_list, pool);

/* The pool of a node: shard's primary, or (NODE_REPLICA) a replica not known to be down. */
pool_t *pool_get_role(worker_t *w, int shard, node_role_t role, const char *dbname,
                      const char *user);
pool_t *pool_get(worker_t *w, int shard, const char *dbname, const char *user); /* primary */
/* Give the client a server now (returns 1), or queue it (returns 0). -1: cannot. */
int pool_acquire(pool_t *p, client_t *c);
/* The client is done with its server (idle, no transaction). */
void pool_release(server_t *s);
/* A server connection finished its login, or came back: hand it to a waiting client. */
void pool_server_ready(server_t *s);
/* A server connection is gone (or never came up): forget it; error for waiting clients. */
void pool_server_gone(server_t *s, const char *why, const uint8_t *error_body, size_t error_len);
void pool_remove_waiting(client_t *c);
void pool_close_idle(worker_t *w, time_t older_than);
void pool_close_all(worker_t *w); /* at shutdown: every server closed */
void pool_free_all(worker_t *w);  /* then the pools, once the reaper freed the servers */

/* ---- server side (server.c) ---- */

server_t *server_connect(pool_t *p, const server_events_t *events);
void server_close(server_t *s, const char *why);
int server_send(server_t *s, const void *data, size_t len);
/* The first ErrorResponse body of a settings sync, kept for the client. */
void server_keep_sync_error(server_t *s, const uint8_t *body, size_t len);
/* Send a simple Query the proxy makes, noted in the pending queue as pend_msg/action. */
int server_query(server_t *s, wire_buf_t *b, const char *sql, uint8_t pend_msg,
                 pending_action_t action);
/* Read server messages and relay them to its client (server read callback drives this). */

/* ---- client side (client.c) ---- */

void client_accept(worker_t *w, int fd);
void login_params_free(worker_t *w); /* at shutdown and reload */
/* Close the clients that have not logged in within login_timeout. */
void login_timeouts(worker_t *w, time_t now);
void session_linked(client_t *c, server_t *s); /* pool gave it a server */
server_t *session_link(const client_t *c, int shard);
void session_fail(client_t *c, const char *severity, const char *sqlstate, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void session_fail_with_body(client_t *c, const uint8_t *error_body, size_t len);
void session_fail_status(client_t *c, px_status_t st); /* FATAL with the status's SQLSTATE */
void session_close(client_t *c);
/* The pool could not open a server for the waiting client c (it is out of p->waiting). */
void login_connect_failed(client_t *c, pool_t *p, const char *why, const uint8_t *error_body,
                          size_t error_len);
void session_server_reply(client_t *c, server_t *s); /* called when the server has data */
void relay_reply(client_t *c, server_t *s);          /* the one server's replies, relayed */
void session_server_lost(client_t *c, server_t *s, const char *why);
void session_resume(client_t *c);
void session_wait(client_t *c, pool_t *p);       /* into p->waiting, CL_WAITING */
void session_unwait(client_t *c);                /* out of p->waiting, back to CL_IDLE */
void session_unlinked(client_t *c, server_t *s); /* s went back to the pool, or is gone */
/* Write a reply the proxy makes, in order: behind what the current server still owes. */
int session_reply(client_t *c, uint8_t reply, char *str);
char session_tx_status(const client_t *c);
void session_note_status(client_t *c, char status); /* a ReadyForQuery from a link */
void session_tx_fail(client_t *c);                  /* an error inside the transaction */
void session_sync_done(client_t *c, server_t *s, const uint8_t *error_body, size_t len);
bool session_maybe_release(client_t *c);
void session_drop_pending_sets(client_t *c); /* forget SETs noted in the current transaction */
void server_note_parameter(server_t *s, const uint8_t *body, size_t len);
void ps_server_del(server_t *s, ps_entry_t *e);
/* Send the replies the proxy makes itself that are due now (head of the queue). */
void session_flush_synthesized(client_t *c, server_t *s);
void session_emit(client_t *c, uint8_t reply, const char *str); /* see session_reply */

/* ---- statements on several shards (fanout.c) ---- */

/* Run a simple Query on the client's links to every shard of c->plan (all are
 * held and idle): `sql` as is, or per shard for a split INSERT. Consumes
 * nothing from the client; the caller drains the Query. With !ready the
 * merged answer ends without ReadyForQuery (an Execute the proxy runs this
 * way; the client's Sync gets it). 0, or -1. */
int fanout_query(client_t *c, const char *sql, bool ready);

/* A Bind the proxy answered for a statement on several shards, run at its Execute. */
typedef struct fanout_bind {
	const uint8_t *params; /* from the parameter format codes to the last value, as sent */
	size_t params_len;
	const uint8_t *results; /* result format codes: int16 count, codes */
	size_t results_len;
	const uint8_t *types; /* the statement's parameter types: int32 OIDs */
	int16_t n_types;
	const route_param_t *values; /* the parameters, decoded, for the router */
	int n_values;
	bool describe;      /* the client sent Describe for the portal */
	bool describe_only; /* and no Execute: Parse/Bind/Describe only */
} fanout_bind_t;

/* The extended protocol's fan-out: every member runs Parse/Bind/Execute/Sync of sql
 * with the client's parameters; ends without ReadyForQuery. 0, or -1. */
int fanout_execute(client_t *c, const char *sql, const fanout_bind_t *bind);
void fanout_reply(client_t *c, server_t *s); /* a member has data */
bool fanout_has(const fanout_t *f, const server_t *s);
/* CopyData, CopyDone, CopyFail from the client during a fan-out COPY. */
int fanout_copy_message(client_t *c, uint8_t type, const uint8_t *msg, size_t total);
/* Where a fan-out's COPY FROM STDIN is. */
typedef enum fanout_copy {
	FANOUT_NOT_COPY,
	FANOUT_COPY_STARTING, /* CopyInResponse not sent yet: the client's rows wait */
	FANOUT_COPY_OPEN,     /* the client copies in */
	FANOUT_COPY_DONE,     /* CopyDone or CopyFail came, or the copy failed */
} fanout_copy_t;
fanout_copy_t fanout_copy_state(const fanout_t *f);
/* Any other message meanwhile (the caller consumes it). */
void fanout_copy_unexpected(client_t *c, uint8_t type);
void fanout_member_lost(client_t *c, server_t *s);
void fanout_free(client_t *c);
void fanout_resume_members(client_t *c); /* the client drained its output */
void gather_colls_free(worker_t *w);

/* ---- prepared statements (prepare.c) ---- */

struct ps_entry {
	uint64_t id;
	char server_name[32];
	uint8_t *key; /* query || NUL || param types: what makes two Parses the same */
	size_t key_len;
	const char *query; /* points into key */
	const uint8_t *types;
	int16_t n_types;
	int refs;
};

ps_entry_t *ps_intern(worker_t *w, const wire_parse_msg_t *m);
void ps_unref(worker_t *w, ps_entry_t *e);
int ps_client_put(client_t *c, const char *name, ps_entry_t *e);
ps_entry_t *ps_client_get(client_t *c, const char *name);
int ps_client_del(client_t *c, const char *name);
void ps_client_free(client_t *c);
bool ps_server_has(server_t *s, ps_entry_t *e);
int ps_server_add(server_t *s, ps_entry_t *e);
void ps_server_free(server_t *s);
void ps_registry_free(worker_t *w);
/* Append a Parse message for e under its server-side name. */
void ps_put_parse(wire_buf_t *b, const ps_entry_t *e);

/* ---- cancel (cancel.c) ---- */

void cancel_register(client_t *c);
void cancel_unregister(client_t *c);
void cancel_forward(worker_t *w, int32_t pid, int32_t key);
/* Ask s's backend to cancel what it runs (its client went away mid-statement). */
void cancel_server(worker_t *w, const server_t *s);
int cancel_init(int n_workers); /* before the workers start; cancel_free after they stop */
void cancel_free(void);
int cancel_worker_start(worker_t *w); /* its inbox for requests other workers accept */
void cancel_worker_stop(worker_t *w);

/* ---- routing long statements off the loop (routejob.c) ---- */

/* Statements at least this long are routed by the routing thread. */
#define ROUTEJOB_MIN_LEN (64 * 1024)

/* Route c's Query off the loop; c->plan is set and c resumed when done. 0, or -1. */
int routejob_start(client_t *c, const char *sql, size_t len);
void routejob_forget(client_t *c); /* c closes: its plan, when it comes, is dropped */
void routejob_done_cb(evutil_socket_t fd, short what, void *arg);
void routejob_worker_free(worker_t *w);

/* ---- workers (worker.c) ---- */

struct worker {
	int index;
	pthread_t thread;
	struct event_base *base;
	sbuf_loop_t loop;
	struct evconnlistener *listener;
	struct event *reload_ev;
	struct event *janitor;
	cfg_ref_t *cfg;       /* current config; swapped on reload */
	cfg_ref_t *cfg_next;  /* set by the main thread, taken by the worker */
	pthread_mutex_t lock; /* guards cfg_next only */

	nodes_view_t *nodes;    /* the nodes' state as last published; never NULL */
	nodes_box_t nodes_box;  /* where the control thread posts the next view */
	struct event *nodes_ev; /* made active when it does */

	struct client_list login_clients, idle_clients, closed_clients;
	struct server_list closed_servers;
	struct event *reap_ev;             /* frees what was closed, after the current callback */
	struct login_params *login_params; /* what logins report, by startup parameters (login.c) */
	int n_login_params;
	uint64_t login_params_clock;
	struct event *route_ev;     /* plans from the routing thread came back */
	pthread_mutex_t route_lock; /* guards route_done only */
	route_job_t *route_done;
	struct pool_list pools;
	int n_clients;
	uint64_t next_id;
	uint64_t next_unnamed_gen;
	struct ps_registry *statements;
	uint64_t next_ps_id;
	wire_buf_t scratch; /* for building messages on the loop's thread */
	route_ctx_t route;  /* maps of the config in route_cfg */
	bool have_route;
	cfg_ref_t *route_cfg;
	route_cache_t *plans;
	struct worker_coll *colls; /* each database's collation, for sorted merges (gather.c) */
	int n_colls;
};

int worker_start(worker_t *w, int index, cfg_ref_t *cfg);
/* Free the closed clients and servers once the current callback has returned. */
void context_reap_later(worker_t *w);
void worker_reap_now(worker_t *w);    /* at shutdown, when no callback is on the stack */
void context_route_drop(worker_t *w); /* the maps and plan cache of the old config */
void session_free(client_t *c);       /* a CL_CLOSED client, from the reaper */
void server_free(server_t *s);        /* an SV_CLOSED server, from the reaper */
void worker_stop(worker_t *w);
void worker_join(worker_t *w);
void worker_set_config(worker_t *w, cfg_ref_t *cfg);
const cfg_t *context_cfg(const worker_t *w);
/* Route a statement with the worker's plan cache (refreshed when the config changes). */
int context_route(worker_t *w, const char *sql, const route_param_t *params, int n_params,
                  route_plan_t *out);

extern int g_n_workers;
extern worker_t *g_workers;

#endif
