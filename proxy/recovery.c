/*
 * recovery.c — two-phase-commit recovery, on the control thread's loop.
 *
 * A transaction that wrote on several shards commits in the steps of
 * router/twophase.h: the decision record (gid, committed = true) is written
 * in the decider shard D's own transaction while every other writer runs
 * PREPARE TRANSACTION 'gid'; then D commits (that commit is the decision);
 * then COMMIT PREPARED on the others. A pgshard that dies on the way leaves
 * prepared transactions behind, holding their locks. Recovery finishes them:
 *
 *   1. At start-up, on each shard's primary (a connection of its own, the
 *      home connection, as the conninfo's user, in its database): make the
 *      decision table (pgshard.decisions) if it is missing, and check that
 *      max_prepared_transactions is above 0.
 *   2. Every recovery_interval: list pgshard's prepared transactions on each
 *      primary S (pg_prepared_xacts, gid, age and database: of every
 *      database, whichever the connection is in).
 *   3. For each one older than recovery_grace, ask its decider D (named in
 *      the gid), in the database D decided in: insert a tombstone (gid,
 *      committed = false) ON CONFLICT DO NOTHING, under a lock_timeout, then
 *      read the gid's row. The record, committed with D's writes, says
 *      commit; a tombstone says a commit can never come. Then COMMIT
 *      PREPARED or ROLLBACK PREPARED on S, in the database it was prepared in.
 *   4. In a round that listed every primary: delete the decision records
 *      older than RECOVERY_CLEANUP_MIN_AGE_S whose gid no shard lists.
 *
 * Databases. The data path works, on a shard, in the conninfo's dbname for
 * every client, or in each client's own database when the conninfo has no
 * dbname (pools are per node, database and user). A transaction of a client
 * of database X prepares in X on the shards that take the client's database,
 * and writes its record in X's pgshard.decisions on a decider that does.
 * PostgreSQL finishes a prepared transaction only from a session in its
 * database, so the home connection is not enough: recovery opens a
 * connection per (shard, database) that has a gid due in the round, as the
 * conninfo's user (the user the data path prepared as: COMMIT PREPARED needs
 * it), closes it as soon as no gid left in the round needs it, and closes
 * them all at the end of the round. Which database D decided in
 * (recovery_decider_db): D's fixed dbname, else the gid's database when S
 * also takes the client's; else unknown, and the gid stays in doubt (asking
 * in another database would find no record and roll back a commit). A
 * database other than home may have no decision table on D (no commit with
 * a record ever committed there): the same transaction as the tombstone
 * makes it first, so that the tombstone is there to make a late record's
 * INSERT fail. A database recovery cannot log in to keeps its gids in doubt,
 * with a WARNING naming the gid, the database and why.
 *
 * Cleanup runs in each shard's conninfo database, every round that may
 * clean. A shard whose conninfo has no dbname holds records in its clients'
 * databases: each such round cleans one of them (the next by name of those
 * one may connect to, on a connection open only meanwhile), so that every
 * database is visited in turn without a connection per database per round.
 * Either way it stays safe: the listings of the round cover every database
 * of every primary, so the gids kept are those prepared anywhere, a
 * superset of those that can have a record in the database cleaned.
 *
 * Why every crash ends all-or-nothing:
 *   - Before D's COMMIT (the pgshard, D or the connection died during step 1
 *     of the commit): D's transaction never commits, so neither do its
 *     record and its writes; the tombstone goes in and every prepared part
 *     is rolled back. Nothing was committed anywhere.
 *   - After D's COMMIT: the record exists, committed atomically with D's
 *     writes; the tombstone does nothing and every prepared part is
 *     committed. A COMMIT that was sent but whose answer was lost is one of
 *     the two: the record is there exactly when D committed.
 *   - A live pgshard is never overruled: while D's transaction is open, its
 *     uncommitted record holds the key and the tombstone waits for it; the
 *     lock_timeout ends the wait and the gid is asked about again next
 *     round (D's transaction ends when its pgshard commits, rolls back or
 *     dies). A tombstone that comes before the record is written makes the
 *     record's INSERT fail, so that pgshard rolls back: all-or-nothing again,
 *     only needlessly; recovery_grace keeps young prepared transactions out
 *     of it.
 *   - Recovery's own steps can be repeated: a second tombstone changes
 *     nothing, and COMMIT/ROLLBACK PREPARED of a gid someone else finished
 *     answers 42704, which is fine. Recovery dying between asking D and
 *     finishing S leaves the answer in D for the next round (or another
 *     pgshard).
 *   - A shard that is down keeps its prepared transactions (they are on
 *     disk) until it is back; a decider that is down leaves its gids in
 *     doubt (still prepared, counted) until it is back: nothing is guessed.
 *   - Cleanup never deletes a record while a shard could not be listed:
 *     that shard may still hold the gid prepared, and a deleted record
 *     would let the next tombstone turn its commit into a rollback.
 *
 * State ownership: everything here belongs to the control thread (its loop
 * runs every callback), except the counts, read by other threads under
 * rec.lock (recovery_stats).
 */
#include "proxy/recovery.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proxy/context.h"
#include "proxy/log.h"
#include "proxy/nodes.h"
#include "proxy/pqconn.h"
#include "proxy/recovery_rules.h"
#include "router/twophase.h"

_Static_assert(sizeof(((recovery_doubt_t *)0)->gid) >= TWOPHASE_GID_MAX, "a gid fits");

#define RECOVERY_APPLICATION_NAME "pgshard recovery"
/* How long a tombstone waits for the decider's open transaction before it is asked again later. */
#define RECOVERY_LOCK_TIMEOUT_MS 2000

/* Why a prepared transaction old enough to resolve is still prepared after a round. */
typedef enum doubt {
	DOUBT_OPEN,         /* its decider's transaction is still open */
	DOUBT_BUSY,         /* another session was finishing it */
	DOUBT_NO_DECIDER,   /* its gid names no shard of the config */
	DOUBT_DECIDER_OFF,  /* recovery is off for its decider's shard */
	DOUBT_DECIDER_DOWN, /* its decider's primary could not be asked */
	DOUBT_DB_UNKNOWN,   /* the decider's database cannot be known from the config */
	DOUBT_LOGIN,        /* recovery cannot log in to a database it needs */
	DOUBT_FAILED,       /* a statement failed */
} doubt_t;

typedef struct rgid {
	char *gid;
	long long age_s;
	char *db; /* the database it was prepared in */
} rgid_t;

typedef struct rdoubt {
	char *gid;
	doubt_t why;
	recovery_doubt_t shown; /* what SHOW TRANSACTIONS shows of it */
} rdoubt_t;

typedef struct rdoubts {
	rdoubt_t *v;
	int n, cap;
} rdoubts_t;

/* One shard's primary, as recovery sees it. */
typedef struct rshard {
	int shard;
	const node_t *node; /* in rec.cfg->nodes */
	char name[300];     /* "shard 1 (127.0.0.1:5470)" */
	char *options;      /* the conninfo's options, then lock_timeout */
	bool off;           /* recovery cannot log in as the data path does (logged once) */
	/*
	 * The home connection, in the conninfo's database: listing (every
	 * database's prepared transactions), the start-up checks, cleanup, and
	 * resolving what is in that database. A conninfo without dbname has no
	 * such database: home is then the health check's (postgres), used only
	 * to list and check, never for decisions.
	 */
	const char *home_db;
	pqconn_t conn;
	bool set_up;           /* checked, and (dbname fixed) the decision table made, on conn */
	int max_prepared;      /* as last read; -1: not yet */
	char trouble[256];     /* the last problem logged about logging in, setting up, listing */
	char clean_error[256]; /* the last cleanup failure logged */
	/* no dbname in the conninfo: its clients' databases are cleaned one per round, in turn */
	pqconn_t clean_conn; /* to that database, during the cleanup only */
	char *clean_db;      /* the one being cleaned, or cleaned last */

	/* this round */
	bool listed;
	rgid_t *gids;
	int n_gids;
	rdoubts_t doubts; /* in doubt after the last round that listed this shard */
	rdoubts_t next;   /* in doubt in this round */
} rshard_t;

typedef enum round_phase {
	ROUND_IDLE,
	ROUND_LISTING,   /* every shard: log in, set up, list */
	ROUND_RESOLVING, /* one gid at a time: ask its decider, finish it */
	ROUND_CLEANING,  /* every shard: delete the records no longer needed */
} round_phase_t;

/*
 * A connection to one database of one primary other than its home: opened
 * for a round's gids in that database (as holder or as decider), closed
 * once no gid left in the round needs it, and at the end of the round. So
 * recovery holds at most one per (shard, database) with gids in doubt, and
 * none while nothing is.
 */
typedef struct rdbconn {
	int shard;
	char *db;
	pqconn_t conn;
	bool failed;     /* could not log in this round: the gids needing it stay in doubt */
	char error[384]; /* why */
	struct rdbconn *next;
} rdbconn_t;

typedef enum resolve_step {
	STEP_ASK,    /* ask the decider, in the decider's database */
	STEP_FINISH, /* COMMIT or ROLLBACK PREPARED on the shard, in the gid's database */
} resolve_step_t;

static struct recovery {
	struct event_base *base;
	cfg_ref_t *cfg;
	rshard_t *shards; /* by shard number */
	int n;
	rdbconn_t *dbconns; /* open for this round */
	struct event *tick;
	round_phase_t phase;
	int pending;        /* listing, cleaning: shards not done yet */
	int64_t started_ms; /* when the round began (monotonic) */
	char *clean_sql;    /* cleaning: the DELETE of this round */
	int at_shard;       /* resolving: the shard and gid under way, */
	int at_gid;
	int decider;                /* its decider, */
	const char *decider_db;     /* in which database it decided (node's or gid's, not owned), */
	resolve_step_t step;        /* what is under way, */
	recovery_verdict_t verdict; /* and the decider's answer */
	pthread_mutex_t lock;       /* guards stats and shown */
	recovery_stats_t stats;
	recovery_doubt_t *shown; /* every shard's doubts, as of the end of the last round */
	int n_shown;
} rec = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void resolve_next(void);
static void clean_begin(void);

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int connect_timeout(void)
{
	return rec.cfg->cfg->server_connect_timeout_ms;
}

/* A statement may wait for a lock up to the lock_timeout, then must answer. */
static int query_timeout(void)
{
	return rec.cfg->cfg->server_connect_timeout_ms + RECOVERY_LOCK_TIMEOUT_MS;
}

static void stats_change(int committed, int rolled_back)
{
	pthread_mutex_lock(&rec.lock);
	rec.stats.committed += (uint64_t)committed;
	rec.stats.rolled_back += (uint64_t)rolled_back;
	pthread_mutex_unlock(&rec.lock);
}

/* Log a problem once, until it changes (into *last, size 256); a shard down is not news each round.
 */
static void report(char *last, log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void report(char *last, log_level_t level, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (strcmp(msg, last) == 0)
		return;
	snprintf(last, 256, "%s", msg);
	log_msg(level, 0, 0, "recovery: %s", msg);
}

/* ---- doubts: what a round leaves prepared, logged when it starts or changes ---- */

static void doubts_clear(rdoubts_t *d)
{
	for (int i = 0; i < d->n; i++)
		free(d->v[i].gid);
	free(d->v);
	memset(d, 0, sizeof(*d));
}

static const rdoubt_t *doubts_find(const rdoubts_t *d, const char *gid)
{
	for (int i = 0; i < d->n; i++) {
		if (strcmp(d->v[i].gid, gid) == 0)
			return &d->v[i];
	}
	return NULL;
}

static void doubt(rshard_t *sh, const rgid_t *g, doubt_t why, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* g stays prepared on sh this round; logged when it was not in doubt for this reason before. */
static void doubt(rshard_t *sh, const rgid_t *g, doubt_t why, const char *fmt, ...)
{
	const char *gid = g->gid;
	const rdoubt_t *before = doubts_find(&sh->doubts, gid);
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (before == NULL || before->why != why)
		log_msg(why == DOUBT_OPEN || why == DOUBT_BUSY ? LOG_INFO : LOG_WARNING, 0, 0,
		        "recovery: %s stays prepared on shard %d: %s (database %s)", gid, sh->shard,
		        msg, g->db);
	if (sh->next.n == sh->next.cap) {
		int cap = sh->next.cap ? sh->next.cap * 2 : 8;
		rdoubt_t *v = realloc(sh->next.v, (size_t)cap * sizeof(*v));

		if (v == NULL)
			return; /* only the log and the count lose it */
		sh->next.v = v;
		sh->next.cap = cap;
	}
	sh->next.v[sh->next.n].gid = strdup(gid);
	if (sh->next.v[sh->next.n].gid != NULL) {
		rdoubt_t *d = &sh->next.v[sh->next.n++];
		recovery_doubt_t *r = &d->shown;

		d->why = why;
		snprintf(r->gid, sizeof(r->gid), "%s", gid);
		r->shard = sh->shard;
		snprintf(r->db, sizeof(r->db), "%s", g->db);
		r->prepared_at = time(NULL) - (time_t)g->age_s;
		snprintf(r->reason, sizeof(r->reason), "%.*s", (int)sizeof(r->reason) - 1, msg);
	}
}

/* ---- listing: log in, set up once per connection, list ---- */

static void list_done(void)
{
	if (--rec.pending == 0)
		resolve_next();
}

static void gids_free(rshard_t *sh)
{
	for (int i = 0; i < sh->n_gids; i++) {
		free(sh->gids[i].gid);
		free(sh->gids[i].db);
	}
	free(sh->gids);
	sh->gids = NULL;
	sh->n_gids = 0;
}

static int gids_keep(rshard_t *sh, const PGresult *res)
{
	int n = PQntuples(res);

	gids_free(sh);
	sh->gids = calloc((size_t)(n > 0 ? n : 1), sizeof(*sh->gids));
	if (sh->gids == NULL)
		return -1;
	for (int i = 0; i < n; i++) {
		sh->gids[i].gid = strdup(PQgetvalue(res, i, 0));
		sh->gids[i].age_s = strtoll(PQgetvalue(res, i, 1), NULL, 10);
		sh->gids[i].db = strdup(PQgetvalue(res, i, 2));
		if (sh->gids[i].gid == NULL || sh->gids[i].db == NULL) {
			sh->n_gids = i + 1;
			return -1;
		}
	}
	sh->n_gids = n;
	return 0;
}

static void on_listed(void *arg, const pqconn_reply_t *r)
{
	rshard_t *sh = arg;
	char error[256];

	pqconn_error(r, error, sizeof(error));
	if (!r->ok)
		report(sh->trouble, LOG_WARNING, "cannot list the prepared transactions of %s: %s",
		       sh->name, r->error);
	else if (r->n_results != 1 || PQresultStatus(r->results[0]) != PGRES_TUPLES_OK ||
	         PQnfields(r->results[0]) != 3)
		report(sh->trouble, LOG_WARNING, "cannot list the prepared transactions of %s: %s",
		       sh->name, error[0] ? error : "unexpected answer");
	else if (gids_keep(sh, r->results[0]) < 0)
		report(sh->trouble, LOG_WARNING, "out of memory listing %s", sh->name);
	else
		sh->listed = true;
	if (sh->listed && sh->set_up && sh->trouble[0] != '\0') {
		log_info("recovery: %s answers again", sh->name);
		sh->trouble[0] = '\0';
	}
	list_done();
}

static void list(rshard_t *sh)
{
	pqconn_query(&sh->conn, twophase_list_prepared_sql, query_timeout(), on_listed, sh);
}

static void check_max_prepared(rshard_t *sh, const PGresult *res)
{
	int v;

	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
		return;
	v = atoi(PQgetvalue(res, 0, 0));
	if (v == 0 && sh->max_prepared != 0)
		log_error("recovery: %s has max_prepared_transactions = 0: set "
		          "max_prepared_transactions above 0 (e.g. 100) in its postgresql.conf and "
		          "restart it: transactions that write on several shards need it",
		          sh->name);
	sh->max_prepared = v;
}

/*
 * "max_prepared_transactions; make the decision table": one round trip. The
 * table only in the conninfo's database: in other databases the commit path
 * makes it with its first record, and recovery before its first tombstone.
 */
static void on_set_up(void *arg, const pqconn_reply_t *r)
{
	rshard_t *sh = arg;
	char error[256];

	if (!r->ok) {
		report(sh->trouble, LOG_WARNING, "cannot set up on %s: %s", sh->name, r->error);
		list_done();
		return;
	}
	if (r->n_results > 0)
		check_max_prepared(sh, r->results[0]);
	if (pqconn_sqlstate(r) != NULL) {
		pqconn_error(r, error, sizeof(error));
		report(sh->trouble, LOG_WARNING, "cannot %s on %s: %s",
		       sh->node->dbname != NULL ? "make the decision table pgshard.decisions"
		                                : "read max_prepared_transactions",
		       sh->name, error);
	} else {
		sh->set_up = true;
	}
	list(sh);
}

static void set_up(rshard_t *sh)
{
	size_t len = strlen(twophase_max_prepared_sql) + strlen(twophase_setup_sql) + 3;
	char *sql = malloc(len);

	if (sql == NULL) {
		list(sh);
		return;
	}
	if (sh->node->dbname != NULL)
		snprintf(sql, len, "%s; %s", twophase_max_prepared_sql, twophase_setup_sql);
	else
		snprintf(sql, len, "%s", twophase_max_prepared_sql);
	pqconn_query(&sh->conn, sql, query_timeout(), on_set_up, sh);
	free(sql);
}

static void on_connected(void *arg, const pqconn_reply_t *r)
{
	rshard_t *sh = arg;
	nodes_login_t l;

	if (r->ok) {
		sh->set_up = false; /* a new server process may be behind it: check it again */
		set_up(sh);
		return;
	}
	nodes_login_in(&l, sh->node, sh->home_db, RECOVERY_APPLICATION_NAME, NULL);
	if (r->needs_password && l.withheld_password)
		report(sh->trouble, LOG_WARNING,
		       "cannot log in to %s as %s: the users file holds only a hash of its "
		       "password, which libpq cannot log in with (give the plain password there "
		       "or as password= in the conninfo)",
		       sh->name, sh->node->user);
	else
		report(sh->trouble, LOG_WARNING, "cannot connect to %s (database %s): %s", sh->name,
		       sh->home_db, r->error);
	list_done();
}

static void shard_list(rshard_t *sh)
{
	nodes_login_t l;

	if (pqconn_ready(&sh->conn)) {
		if (sh->set_up)
			list(sh);
		else
			set_up(sh);
		return;
	}
	nodes_login_in(&l, sh->node, sh->home_db, RECOVERY_APPLICATION_NAME, sh->options);
	pqconn_connect(&sh->conn, l.keys, l.vals, connect_timeout(), on_connected, sh);
}

static void round_begin(void)
{
	rec.phase = ROUND_LISTING;
	rec.started_ms = mono_ms();
	rec.pending = 1; /* held until every shard has started, so that none ends the phase early */
	rec.at_shard = 0;
	rec.at_gid = -1;
	for (int i = 0; i < rec.n; i++) {
		rshard_t *sh = &rec.shards[i];

		sh->listed = false;
		gids_free(sh);
		doubts_clear(&sh->next);
		if (!sh->off) {
			rec.pending++;
			shard_list(sh);
		}
	}
	list_done();
}

/* ---- connections to the databases a round's gids are in ---- */

static void dbconn_free(rdbconn_t *dc)
{
	pqconn_free(&dc->conn);
	free(dc->db);
	free(dc);
}

static void dbconns_free(void)
{
	while (rec.dbconns != NULL) {
		rdbconn_t *dc = rec.dbconns;

		rec.dbconns = dc->next;
		dbconn_free(dc);
	}
}

/* The database the decider of g (on shard `holder`) decided in; NULL: unknown (see rules). */
static const char *decider_db(int holder, int decider, const rgid_t *g)
{
	return recovery_decider_db(rec.shards[holder].node->dbname,
	                           rec.shards[decider].node->dbname, g->db);
}

/* The home connection of shard serves db: its conninfo names that database. */
static bool home_serves(const rshard_t *sh, const char *db)
{
	return sh->node->dbname != NULL && strcmp(sh->node->dbname, db) == 0;
}

/* A gid of the round after the one under way needs (shard, db), as holder or as decider. */
static bool dbconn_needed(int shard, const char *db)
{
	for (int i = rec.at_shard; i < rec.n; i++) {
		const rshard_t *sh = &rec.shards[i];

		if (!sh->listed)
			continue;
		for (int j = i == rec.at_shard ? rec.at_gid + 1 : 0; j < sh->n_gids; j++) {
			const rgid_t *g = &sh->gids[j];
			int d = recovery_decider(g->gid, rec.n);
			const char *ddb = d >= 0 ? decider_db(i, d, g) : NULL;

			if (i == shard && strcmp(g->db, db) == 0)
				return true;
			if (d == shard && ddb != NULL && strcmp(ddb, db) == 0)
				return true;
		}
	}
	return false;
}

/* Close the connections no gid left in the round needs (between gids: none is busy). */
static void dbconns_release(void)
{
	rdbconn_t **at = &rec.dbconns;

	while (*at != NULL) {
		rdbconn_t *dc = *at;

		if (dbconn_needed(dc->shard, dc->db)) {
			at = &dc->next;
		} else {
			*at = dc->next;
			dbconn_free(dc);
		}
	}
}

typedef enum conn_got {
	CONN_READY, /* *out is logged in and idle */
	CONN_WAIT,  /* logging in: resolve_continue() follows */
	CONN_FAILED /* why in err */
} conn_got_t;

static bool resolve_continue_step(void);
static void resolve_continue(void);

static void on_db_connected(void *arg, const pqconn_reply_t *r)
{
	rdbconn_t *dc = arg;
	const rshard_t *sh = &rec.shards[dc->shard];
	nodes_login_t l;

	if (!r->ok) {
		dc->failed = true;
		nodes_login_in(&l, sh->node, dc->db, RECOVERY_APPLICATION_NAME, NULL);
		if (r->needs_password && l.withheld_password)
			snprintf(
			    dc->error, sizeof(dc->error),
			    "cannot log in to database %s of shard %d as %s: the users file "
			    "holds only a hash of its password, which libpq cannot log in with",
			    dc->db, dc->shard, sh->node->user);
		else
			snprintf(dc->error, sizeof(dc->error),
			         "cannot log in to database %s of shard %d as %s: %s", dc->db,
			         dc->shard, sh->node->user, r->error);
	}
	resolve_continue();
}

/*
 * A connection to db on shard, logged in as the conninfo's user: the home
 * one when the conninfo names db, else one of the round's own, opened now
 * when there is none (COMMIT/ROLLBACK PREPARED must run in the database the
 * transaction was prepared in, and the decider keeps its decisions in each
 * client database apart).
 */
static conn_got_t conn_get(int shard, const char *db, pqconn_t **out, char *err, size_t size)
{
	rshard_t *sh = &rec.shards[shard];
	rdbconn_t *dc;
	nodes_login_t l;

	if (home_serves(sh, db)) {
		if (!pqconn_ready(&sh->conn)) {
			snprintf(err, size, "%s cannot be reached", sh->name);
			return CONN_FAILED;
		}
		*out = &sh->conn;
		return CONN_READY;
	}
	for (dc = rec.dbconns; dc != NULL; dc = dc->next)
		if (dc->shard == shard && strcmp(dc->db, db) == 0)
			break;
	if (dc == NULL) {
		dc = calloc(1, sizeof(*dc));
		if (dc == NULL || (dc->db = strdup(db)) == NULL ||
		    pqconn_init(&dc->conn, rec.base) < 0) {
			if (dc != NULL)
				free(dc->db);
			free(dc);
			snprintf(err, size, "out of memory");
			return CONN_FAILED;
		}
		dc->shard = shard;
		dc->next = rec.dbconns;
		rec.dbconns = dc;
	}
	if (dc->failed) {
		snprintf(err, size, "%s", dc->error);
		return CONN_FAILED;
	}
	if (pqconn_ready(&dc->conn)) {
		*out = &dc->conn;
		return CONN_READY;
	}
	/* new, or closed after a failed query: (again) */
	nodes_login_in(&l, sh->node, dc->db, RECOVERY_APPLICATION_NAME, sh->options);
	pqconn_connect(&dc->conn, l.keys, l.vals, connect_timeout(), on_db_connected, dc);
	return CONN_WAIT;
}

/* ---- resolving: one gid at a time, its decider asked, then its shard finishing it ---- */

static rshard_t *at_shard(void)
{
	return &rec.shards[rec.at_shard];
}

static const rgid_t *at_gid(void)
{
	return &at_shard()->gids[rec.at_gid];
}

static void on_finished(void *arg, const pqconn_reply_t *r)
{
	rshard_t *sh = arg;
	const rgid_t *g = at_gid();
	const char *gid = g->gid;
	bool commit = rec.verdict == RECOVERY_COMMIT;
	const char *what = commit ? "COMMIT PREPARED" : "ROLLBACK PREPARED";
	char error[256];

	if (!r->ok) {
		doubt(sh, g, DOUBT_FAILED, "%s (decided on shard %d): %s", what, rec.decider,
		      r->error);
		resolve_next();
		return;
	}
	switch (recovery_finish(pqconn_sqlstate(r))) {
	case RECOVERY_FINISHED:
		if (commit)
			log_info("recovery: committed %s on shard %d (decided on shard %d) "
			         "in database %s",
			         gid, sh->shard, rec.decider, g->db);
		else
			log_info("recovery: rolled back %s on shard %d (shard %d holds no commit "
			         "decision for it in database %s) in database %s",
			         gid, sh->shard, rec.decider, rec.decider_db, g->db);
		stats_change(commit, !commit);
		break;
	case RECOVERY_GONE:
		log_debug("recovery: %s on shard %d was finished by someone else", gid, sh->shard);
		break;
	case RECOVERY_BUSY:
		doubt(sh, g, DOUBT_BUSY, "another session is finishing it");
		break;
	case RECOVERY_FAILED:
		pqconn_error(r, error, sizeof(error));
		doubt(sh, g, DOUBT_FAILED, "%s (decided on shard %d) failed: %s", what, rec.decider,
		      error);
		break;
	}
	resolve_next();
}

/* COMMIT or ROLLBACK PREPARED as the verdict says, on the gid's shard, in its database. */
static bool finish(void)
{
	rshard_t *sh = at_shard();
	const rgid_t *g = at_gid();
	pqconn_t *c = NULL;
	char err[384], *sql;

	switch (conn_get(sh->shard, g->db, &c, err, sizeof(err))) {
	case CONN_WAIT:
		return true;
	case CONN_FAILED:
		doubt(sh, g, home_serves(sh, g->db) ? DOUBT_FAILED : DOUBT_LOGIN,
		      "%s as shard %d decided, but %s",
		      rec.verdict == RECOVERY_COMMIT ? "to commit" : "to roll back", rec.decider,
		      err);
		return false;
	case CONN_READY:
		break;
	}
	sql = rec.verdict == RECOVERY_COMMIT ? twophase_commit_sql(g->gid)
	                                     : twophase_rollback_sql(g->gid);
	if (sql == NULL) {
		doubt(sh, g, DOUBT_FAILED, "out of memory");
		return false;
	}
	pqconn_query(c, sql, query_timeout(), on_finished, sh);
	free(sql);
	return true;
}

/* The decider's answer to "tombstone; decision". */
static void on_decided(void *arg, const pqconn_reply_t *r)
{
	rshard_t *sh = arg;
	const rgid_t *g = at_gid();
	const PGresult *last = r->n_results > 0 ? r->results[r->n_results - 1] : NULL;
	bool rows = last != NULL && PQresultStatus(last) == PGRES_TUPLES_OK;
	char error[256];

	if (!r->ok) {
		doubt(sh, g, DOUBT_DECIDER_DOWN, "cannot ask its decider shard %d: %s", rec.decider,
		      r->error);
		resolve_next();
		return;
	}
	rec.verdict =
	    recovery_verdict(pqconn_sqlstate(r), rows ? PQntuples(last) : 0,
	                     rows && PQntuples(last) == 1 ? PQgetvalue(last, 0, 0) : NULL);
	switch (rec.verdict) {
	case RECOVERY_WAIT:
		doubt(sh, g, DOUBT_OPEN,
		      "its decider shard %d still has the transaction open (lock timeout); asking "
		      "again next round",
		      rec.decider);
		resolve_next();
		return;
	case RECOVERY_UNKNOWN:
		pqconn_error(r, error, sizeof(error));
		doubt(sh, g, DOUBT_FAILED, "asking its decider shard %d (database %s) failed: %s",
		      rec.decider, rec.decider_db, error[0] ? error : "no decision row");
		resolve_next();
		return;
	default:
		break;
	}
	rec.step = STEP_FINISH;
	if (!finish())
		resolve_next();
}

/*
 * Ask the decider, in the database it decided in. Its home connection made
 * the table at start-up; any other database may not have it yet (no commit
 * with a record ever ran there): it is made in the same transaction as the
 * tombstone, so that a record that comes later fails instead of committing.
 */
static bool ask(void)
{
	rshard_t *sh = at_shard();
	const rgid_t *g = at_gid();
	pqconn_t *c = NULL;
	char err[384], *sql;

	switch (conn_get(rec.decider, rec.decider_db, &c, err, sizeof(err))) {
	case CONN_WAIT:
		return true;
	case CONN_FAILED:
		if (home_serves(&rec.shards[rec.decider], rec.decider_db))
			doubt(sh, g, DOUBT_DECIDER_DOWN, "its decider shard %d cannot be reached",
			      rec.decider);
		else
			doubt(sh, g, DOUBT_LOGIN, "its decider shard %d cannot be asked: %s",
			      rec.decider, err);
		return false;
	case CONN_READY:
		break;
	}
	/* one round trip, one transaction: the SELECT sees the tombstone or the record */
	sql = twophase_ask_sql(g->gid, c != &rec.shards[rec.decider].conn);
	if (sql == NULL) {
		doubt(sh, g, DOUBT_FAILED, "out of memory");
		return false;
	}
	pqconn_query(c, sql, query_timeout(), on_decided, sh);
	free(sql);
	return true;
}

/* A connection the step waited for is there (or not): go on with the step. */
static bool resolve_continue_step(void)
{
	return rec.step == STEP_ASK ? ask() : finish();
}

static void resolve_continue(void)
{
	if (!resolve_continue_step())
		resolve_next();
}

/* Start resolving the gid under way: true when something is under way (its callback goes on). */
static bool resolve_start(void)
{
	rshard_t *sh = at_shard();
	const rgid_t *g = at_gid();
	int d = recovery_decider(g->gid, rec.n), named = twophase_gid_decider(g->gid);

	if (!recovery_due(g->age_s, rec.cfg->cfg->recovery_grace_ms))
		return false;
	if (d < 0) {
		if (named < 0)
			doubt(sh, g, DOUBT_NO_DECIDER, "not a gid pgshard makes; left alone");
		else
			doubt(sh, g, DOUBT_NO_DECIDER,
			      "its decider is shard %d, which the config does not have", named);
		return false;
	}
	if (rec.shards[d].off) {
		doubt(sh, g, DOUBT_DECIDER_OFF, "recovery is off for its decider shard %d", d);
		return false;
	}
	rec.decider = d;
	rec.decider_db = decider_db(sh->shard, d, g);
	if (rec.decider_db == NULL) {
		if (sh->node->dbname != NULL && strcmp(sh->node->dbname, g->db) != 0)
			doubt(sh, g, DOUBT_DB_UNKNOWN,
			      "shard %d's conninfo fixes dbname=%s, so no pgshard with this config "
			      "prepared it (another config's?): in which database its decider "
			      "shard %d "
			      "recorded the decision is unknown; finish it by hand",
			      sh->shard, sh->node->dbname, d);
		else
			doubt(
			    sh, g, DOUBT_DB_UNKNOWN,
			    "its decider shard %d takes each client's database (no dbname= in its "
			    "conninfo) while shard %d's conninfo fixes dbname=%s, so in which "
			    "database the decision was recorded is unknown; give both the same "
			    "dbname rule",
			    d, sh->shard, sh->node->dbname);
		return false;
	}
	rec.step = STEP_ASK;
	return ask();
}

/* The next due gid of the round, or the cleanup once there is none. */
static void resolve_next(void)
{
	rec.phase = ROUND_RESOLVING;
	dbconns_release();
	for (; rec.at_shard < rec.n; rec.at_shard++, rec.at_gid = -1) {
		rshard_t *sh = &rec.shards[rec.at_shard];

		if (!sh->listed)
			continue;
		while (++rec.at_gid < sh->n_gids) {
			if (resolve_start())
				return;
		}
	}
	dbconns_free();
	clean_begin();
}

/* ---- cleanup, and the end of the round ---- */

static void round_end(void)
{
	int in_doubt = 0, k = 0;
	recovery_doubt_t *shown;

	for (int i = 0; i < rec.n; i++) {
		rshard_t *sh = &rec.shards[i];

		if (sh->listed) { /* a shard not listed keeps what was known of it */
			doubts_clear(&sh->doubts);
			sh->doubts = sh->next;
			memset(&sh->next, 0, sizeof(sh->next));
		}
		doubts_clear(&sh->next);
		gids_free(sh);
		in_doubt += sh->doubts.n;
	}
	shown = malloc(sizeof(*shown) * (size_t)(in_doubt > 0 ? in_doubt : 1));
	for (int i = 0; i < rec.n && shown != NULL; i++)
		for (int j = 0; j < rec.shards[i].doubts.n; j++)
			shown[k++] = rec.shards[i].doubts.v[j].shown;
	pthread_mutex_lock(&rec.lock);
	if (shown != NULL) { /* else the last list stays: only the console loses */
		free(rec.shown);
		rec.shown = shown;
		rec.n_shown = k;
	}
	rec.stats.in_doubt = in_doubt;
	rec.stats.rounds++;
	pthread_mutex_unlock(&rec.lock);
	free(rec.clean_sql);
	rec.clean_sql = NULL;
	rec.phase = ROUND_IDLE;
}

static void clean_done(void)
{
	if (--rec.pending == 0)
		round_end();
}

static void on_cleaned(void *arg, const pqconn_reply_t *r)
{
	rshard_t *sh = arg;
	char error[256];

	pqconn_error(r, error, sizeof(error));
	if (!r->ok || error[0] != '\0') {
		report(sh->clean_error, LOG_WARNING, "cannot delete old decision records on %s: %s",
		       sh->name, r->ok ? error : r->error);
	} else {
		sh->clean_error[0] = '\0';
		if (r->n_results == 1 && strcmp(PQcmdTuples(r->results[0]), "0") != 0)
			log_debug("recovery: deleted %s old decision records on %s",
			          PQcmdTuples(r->results[0]), sh->name);
	}
	clean_done();
}

/* ---- cleanup in the clients' databases of a shard whose conninfo has no dbname ---- */

static void clean_db_end(rshard_t *sh)
{
	pqconn_close(&sh->clean_conn);
	clean_done();
}

static void on_cleaned_db(void *arg, const pqconn_reply_t *r)
{
	rshard_t *sh = arg;
	char error[256];

	pqconn_error(r, error, sizeof(error));
	if (!r->ok || error[0] != '\0')
		report(sh->clean_error, LOG_WARNING,
		       "cannot delete old decision records in database %s of %s: %s", sh->clean_db,
		       sh->name, r->ok ? error : r->error);
	else if (r->n_results == 1 && strcmp(PQcmdTuples(r->results[0]), "0") != 0)
		log_debug("recovery: deleted %s old decision records in database %s of %s",
		          PQcmdTuples(r->results[0]), sh->clean_db, sh->name);
	clean_db_end(sh);
}

static void on_clean_db_has_table(void *arg, const pqconn_reply_t *r)
{
	rshard_t *sh = arg;

	if (!r->ok || pqconn_sqlstate(r) != NULL || r->n_results != 1 ||
	    PQntuples(r->results[0]) != 1 || strcmp(PQgetvalue(r->results[0], 0, 0), "t") != 0) {
		clean_db_end(sh); /* no table: nothing to delete */
		return;
	}
	pqconn_query(&sh->clean_conn, rec.clean_sql, query_timeout(), on_cleaned_db, sh);
}

static void on_clean_db_connected(void *arg, const pqconn_reply_t *r)
{
	rshard_t *sh = arg;

	if (!r->ok) {
		/* the data path logs in as the same user: it cannot have written there either */
		log_debug("recovery: cannot log in to database %s of %s to clean up: %s",
		          sh->clean_db, sh->name, r->error);
		clean_done();
		return;
	}
	pqconn_query(&sh->clean_conn, twophase_has_decisions_sql, query_timeout(),
	             on_clean_db_has_table, sh);
}

static void on_clean_dbs(void *arg, const pqconn_reply_t *r)
{
	rshard_t *sh = arg;
	const PGresult *res = r->n_results == 1 ? r->results[0] : NULL;
	const char **names = NULL;
	const char *next = NULL;
	char *db = NULL;
	nodes_login_t l;
	int n;

	if (!r->ok || res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
		clean_done();
		return;
	}
	n = PQntuples(res);
	names = calloc((size_t)(n > 0 ? n : 1), sizeof(*names));
	if (names != NULL) {
		for (int i = 0; i < n; i++)
			names[i] = PQgetvalue(res, i, 0);
		next = recovery_next_clean_db(names, n, sh->clean_db);
		db = next != NULL ? strdup(next) : NULL;
	}
	free(names);
	if (db == NULL) {
		clean_done();
		return;
	}
	free(sh->clean_db);
	sh->clean_db = db;
	nodes_login_in(&l, sh->node, sh->clean_db, RECOVERY_APPLICATION_NAME, sh->options);
	pqconn_connect(&sh->clean_conn, l.keys, l.vals, connect_timeout(), on_clean_db_connected,
	               sh);
}

static void clean_begin(void)
{
	int listed = 0, n = 0;
	const char **keep;
	char *sql;

	for (int i = 0; i < rec.n; i++) {
		listed += rec.shards[i].listed;
		n += rec.shards[i].n_gids;
	}
	if (!recovery_may_clean(rec.n, listed, mono_ms() - rec.started_ms)) {
		round_end();
		return;
	}
	keep = calloc((size_t)(n > 0 ? n : 1), sizeof(*keep));
	if (keep == NULL) {
		round_end();
		return;
	}
	n = 0;
	for (int i = 0; i < rec.n; i++) {
		for (int j = 0; j < rec.shards[i].n_gids; j++) {
			const char *gid = rec.shards[i].gids[j].gid;

			/* a malformed pgshard:... gid cannot have a record (none is written for it)
			 */
			if (twophase_gid_decider(gid) >= 0)
				keep[n++] = gid;
		}
	}
	sql = twophase_cleanup_sql(keep, n, RECOVERY_CLEANUP_MIN_AGE_S);
	free(keep);
	if (sql == NULL) {
		round_end();
		return;
	}
	rec.phase = ROUND_CLEANING;
	rec.clean_sql = sql;
	rec.pending = 1;
	for (int i = 0; i < rec.n; i++) {
		rshard_t *sh = &rec.shards[i];

		if (!pqconn_ready(&sh->conn))
			continue;
		rec.pending++;
		/* the conninfo's database; without one, one of the clients' (see the head) */
		if (sh->node->dbname != NULL)
			pqconn_query(&sh->conn, sql, query_timeout(), on_cleaned, sh);
		else
			pqconn_query(&sh->conn, twophase_databases_sql, query_timeout(),
			             on_clean_dbs, sh);
	}
	clean_done();
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	/* a round still under way when the next is due goes on (its deadlines end it) */
	if (rec.phase == ROUND_IDLE)
		round_begin();
}

/* ---- the shards of a config ---- */

static char *options_for(const node_t *n)
{
	PQconninfoOption *opts = PQconninfoParse(n->conninfo, NULL);
	const char *own = NULL;
	char *merged;

	for (PQconninfoOption *o = opts; o != NULL && o->keyword != NULL; o++) {
		if (strcmp(o->keyword, "options") == 0)
			own = o->val;
	}
	merged = recovery_options(own, RECOVERY_LOCK_TIMEOUT_MS);
	PQconninfoFree(opts);
	return merged;
}

static void shards_free(void)
{
	dbconns_free();
	free(rec.clean_sql);
	rec.clean_sql = NULL;
	for (int i = 0; i < rec.n; i++) {
		rshard_t *sh = &rec.shards[i];

		pqconn_free(&sh->conn);
		pqconn_free(&sh->clean_conn);
		free(sh->clean_db);
		free(sh->options);
		gids_free(sh);
		doubts_clear(&sh->doubts);
		doubts_clear(&sh->next);
	}
	free(rec.shards);
	rec.shards = NULL;
	rec.n = 0;
	rec.phase = ROUND_IDLE;
}

static void warn_off(const rshard_t *sh)
{
	log_warn("recovery: two-phase commit recovery is off for %s: its conninfo leaves the "
	         "user to the client, so recovery cannot know as whom to finish its prepared "
	         "transactions (COMMIT PREPARED must be run by the user who prepared); give "
	         "user= in [shard.%d] primary. Meanwhile no decision records are cleaned up on "
	         "any shard",
	         sh->name, sh->shard);
}

static int shards_build(void)
{
	const nodes_table_t *t = rec.cfg->nodes;
	int off = 0;

	rec.shards = calloc((size_t)(t->n_shards > 0 ? t->n_shards : 1), sizeof(*rec.shards));
	if (rec.shards == NULL)
		return -1;
	rec.n = t->n_shards;
	for (int i = 0; i < rec.n; i++) {
		rshard_t *sh = &rec.shards[i];

		sh->shard = i;
		sh->node = nodes_primary(t, i);
		sh->max_prepared = -1;
		snprintf(sh->name, sizeof(sh->name), "shard %d (%s:%d)", i, sh->node->host,
		         sh->node->port);
		if (pqconn_init(&sh->conn, rec.base) < 0 ||
		    pqconn_init(&sh->clean_conn, rec.base) < 0)
			return -1;
		sh->home_db = sh->node->dbname != NULL ? sh->node->dbname : sh->node->check_dbname;
		sh->off = sh->node->user == NULL;
		if (sh->off) {
			warn_off(sh);
			off++;
			continue;
		}
		sh->options = options_for(sh->node);
		if (sh->options == NULL)
			return -1;
	}
	pthread_mutex_lock(&rec.lock);
	rec.stats.shards_off = off;
	pthread_mutex_unlock(&rec.lock);
	return 0;
}

static void tick_schedule(void)
{
	struct timeval tv = {rec.cfg->cfg->recovery_interval_ms / 1000,
	                     (rec.cfg->cfg->recovery_interval_ms % 1000) * 1000};

	event_del(rec.tick);
	event_add(rec.tick, &tv);
	event_active(rec.tick, EV_TIMEOUT, 0); /* and a first round now */
}

int recovery_start(struct event_base *base, cfg_ref_t *cfg)
{
	rec.base = base;
	rec.cfg = context_cfg_ref_get(cfg);
	rec.tick = event_new(base, -1, EV_PERSIST, tick_cb, NULL);
	if (rec.tick == NULL || shards_build() < 0) {
		log_error("recovery: out of memory; two-phase commit recovery does not run");
		return -1;
	}
	tick_schedule();
	return 0;
}

void recovery_set_config(cfg_ref_t *cfg)
{
	if (rec.tick == NULL)
		return;
	shards_free(); /* a round under way is dropped: every step of it can be repeated */
	context_cfg_ref_put(rec.cfg);
	rec.cfg = context_cfg_ref_get(cfg);
	if (shards_build() < 0) {
		log_error("recovery: out of memory; two-phase commit recovery stops");
		shards_free();
		event_del(rec.tick);
		return;
	}
	tick_schedule();
}

void recovery_stop(void)
{
	shards_free();
	pthread_mutex_lock(&rec.lock);
	free(rec.shown);
	rec.shown = NULL;
	rec.n_shown = 0;
	pthread_mutex_unlock(&rec.lock);
	if (rec.tick != NULL)
		event_free(rec.tick);
	rec.tick = NULL;
	context_cfg_ref_put(rec.cfg);
	rec.cfg = NULL;
	rec.base = NULL;
}

void recovery_stats(recovery_stats_t *out)
{
	pthread_mutex_lock(&rec.lock);
	*out = rec.stats;
	pthread_mutex_unlock(&rec.lock);
}

int recovery_doubts(recovery_doubt_t **out)
{
	int n;

	pthread_mutex_lock(&rec.lock);
	n = rec.n_shown;
	*out = malloc(sizeof(**out) * (size_t)(n > 0 ? n : 1));
	if (*out == NULL)
		n = -1;
	else if (n > 0)
		memcpy(*out, rec.shown, sizeof(**out) * (size_t)n);
	pthread_mutex_unlock(&rec.lock);
	return n;
}
