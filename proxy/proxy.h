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
 *
 * This header holds the objects and nothing else. Each module declares its
 * functions in a header of its own, named after its file (session.h,
 * pool.h, server.h, ...), and a file includes the headers of the modules it
 * calls, so that its includes show what it depends on.
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
#include "proxy/stats.h"
#include "proxy/status.h"
#include "proxy/tx.h"
#include "proxy/txmap.h"
#include "proxy/waker.h"
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
typedef struct commit commit_t;
typedef struct move move_t;
typedef struct join join_t;

/* Config shared by workers; freed when the last holder lets go (reload swaps it). */
typedef struct cfg_ref {
	cfg_t *cfg;
	nodes_table_t *nodes; /* cfg's nodes */
	atomic_int refs;
} cfg_ref_t;

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
	uint64_t
	    started_us; /* when the statement the server works on was sent (stats.h); 0: none */
} pending_queue_t;

/* ---- client sessions (client.c, session.c, login.c) ---- */

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
	PH_IDLE,       /* nothing runs for it but what its current server (if any) answers */
	PH_ROUTING,    /* its statement is routed off the loop (routejob.c, c->route_job) */
	PH_GATHERING,  /* a server of each shard a statement needs is being collected */
	PH_SEVERAL,    /* a statement runs on several shards (fanout.c, c->fan; move.c,
	                  c->move) */
	PH_COMMITTING, /* its transaction commits in two phases (commit.c, c->commit) */
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
	void (*statement_ended)(client_t *c, server_t *s); /* its ReadyForQuery came (server.c) */
} client_ops_t;

/* What a step of the message loop did: consumed the message, wait, or failed. */
enum { STEP_NEXT = 0, STEP_WAIT = 1, STEP_FAIL = -1 };

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
	pool_t *primary_pool;      /* the pool of the primary last asked for (forward.c acquire): */
	int primary_pool_shard;    /* its shard, and the worker's pools_gen then; another shard */
	unsigned primary_pool_gen; /* or gen looks the pool up again */

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
	bool txd_ready;             /* the head message's transaction decision is made: */
	tx_decision_t txd;          /* (tx_control, once per message, even if it waits) */
	fanout_t *fan;              /* a statement running on several shards */
	commit_t *commit;           /* a two-phase commit running */
	move_t *move;               /* an UPDATE of the shard key moving rows (move.c) */
	join_t *join;               /* a join across shards running in steps (join.c) */
	struct colfetch *colfetch;  /* a table's columns asked of the catalog (colcache.c) */
	struct batch *batch;        /* a query string run statement by statement (client.c) */
	struct cursor_at **cursors; /* SQL cursors and where each was declared (cursor.c) */
	int n_cursors;
	char *columns_tried; /* the table they were asked for, for the head message */
	char *txn_portal;    /* a portal whose Bind the proxy answered (BEGIN over Bind/Execute) */
	char txn_tag[16];    /* its CommandComplete tag */
	char *txn_sql;       /* or the statement its Execute runs on every link */
	bool txn_two_phase;  /* which is a COMMIT in two phases (commit.c) */
	struct fan_portal *fan_portal;     /* a portal on several shards, run at its Execute */
	struct fan_portal *parked_portals; /* others read in parts, waiting (extended.c) */
	uint32_t portal_seq;               /* names the cursors behind portals read in parts */
	bool ext_batch_tx;    /* the extended batch runs in a transaction of pgshard's own, which
	                         its Sync commits (extended.c) */
	bool ext_batch_wrote; /* a statement of the batch so far may write */

	int32_t cancel_pid, cancel_key; /* what the client was told in BackendKeyData */

	/* authentication */
	uint8_t md5_salt[4];
	char *stored_password;
	auth_scram_server_t *scram;

	/* session state that follows the client from server to server */
	bool held_counted; /* counted in its pool's n_waiting_held while it waits */
	param_list_t startup_params;
	param_list_t session_params;
	char client_encoding[32]; /* as the client was last told (ParameterStatus) */
	char server_encoding[32];
	uint64_t params_hash;
	route_set_t *pend_sets; /* SET/RESET sent but whose transaction has not ended */
	int n_pend_sets;
	bool pinned;
	const char *pin_why;

	ps_client_map_t *statements;     /* client statement name -> ps_entry */
	ps_client_map_t *statement_last; /* the one ps_client_get found last, or NULL */
	uint8_t *unnamed_parse;          /* the last unnamed Parse message, whole */
	size_t unnamed_parse_len;
	uint64_t unnamed_gen; /* identifies it; 0 = none */

	bool closing;
	struct event *close_ev; /* closes a client with nothing left to send */
	bool in_process;        /* process_messages is on the stack */
	bool skip_until_sync;   /* the proxy answered an error; drop messages until Sync */
	bool wait_server_drain;
	bool too_many;           /* over max_clients: refused at its startup packet */
	bool admin;              /* a client of the admin console (admin.c): never gets a server */
	bool admin_busy;         /* the workers are answering its last command */
	bool pause_wait;         /* a console client whose PAUSE waits for transactions to end */
	bool held;               /* between transactions while paused: not read until RESUME */
	struct stmtlog *stmtlog; /* its statement's start, for log_min_duration_statement */

	/* reads on replicas (replica.c) */
	int replica_reads;     /* the session's pgshard.replica_reads; -1: the config's */
	struct causal *causal; /* by shard: what it has seen (causal.h) */
	int n_causal;
	const nodes_table_t *causal_nodes; /* the node table its node ids are of */
	struct event *token_ev;            /* resumes it: SHOW pgshard.causal_token, a read again */
	uint64_t token_wait_us;            /* since when it waits */
	uint8_t *read_again;   /* the Query of a read on a replica, until it answers (replica.c) */
	size_t read_again_len; /* 0: none kept */
	size_t read_again_cap;
	pbuf_t *read_desc; /* its RowDescription, kept back until more comes */
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
	uint8_t *unnamed_copy;       /* the Parse that made it, when ensure_unnamed sent it */
	size_t unnamed_copy_len, unnamed_copy_cap;
	uint64_t unnamed_copy_gen;    /* unnamed_gen then: the copy is void once they differ */
	uint64_t unnamed_copy_params; /* params_hash it was parsed under (0: unknown) */

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
	bool has_decisions; /* pgshard.decisions exists in its database (commit.c) */

	struct server_list connecting, idle, active;
	struct client_list waiting, active_clients;
	int n_waiting;      /* clients on `waiting` (session.c keeps it) */
	int n_waiting_held; /* ... of which hold servers of other shards (held_counted) */
	int n_connecting;   /* servers on `connecting` */
	int n_servers;
	char *last_connect_error;
	stats_counters_t stats; /* what its servers did (stats.h); written by its worker only */
};

TAILQ_HEAD(pool_list, pool);

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

/* ---- workers (worker.c) ---- */

struct worker {
	int index;
	pthread_t thread;
	struct event_base *base;
	sbuf_loop_t loop;
	struct evconnlistener *listener;
	struct event *reload_ev;
	struct event *stop_ev; /* ends the loop (worker_stop) */
	waker_t waker;         /* how other threads make its events active (waker.h) */
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
	unsigned pools_gen; /* bumped when a reload or a view of the nodes may change which pool
	                       serves a shard, or a pool's settings */
	int n_clients;
	uint64_t next_id;
	uint64_t next_unnamed_gen;
	uint64_t next_gid; /* numbers the two-phase commits of this worker (commit.c) */
	struct ps_registry *statements;
	uint64_t next_ps_id;
	wire_buf_t scratch; /* for building messages on the loop's thread */
	route_ctx_t route;  /* maps of the config in route_cfg */
	bool have_route;
	cfg_ref_t *route_cfg;
	route_cache_t *plans;
	struct worker_coll *colls; /* each database's collation, for sorted merges (gather.c) */
	struct colcache *columns;  /* tables' column order, by database (colcache.c) */
	int n_colls;

	/* distributed deadlock detection (txwatch.c) */
	txmap_box_t txbox;        /* its snapshot out, the detector's victims in */
	txmap_t txsnap;           /* the next snapshot, built on the janitor tick */
	struct event *txwatch_ev; /* made active when a victim is posted */
	uint64_t next_dist_id;    /* numbers its distributed transactions */

	uint64_t replica_rr;           /* round robin over replicas (replica.c) */
	uint64_t replica_reads_served; /* statements its clients ran on replicas */
	uint64_t *replica_failed_at;   /* by node id: when a connection to it failed (replica.c) */
	int n_replica_failed;
	struct hotkeys *hot; /* where its routed statements went (hotkeys.h) */
};

#endif
