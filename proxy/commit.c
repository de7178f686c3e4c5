/*
 * commit.c — the COMMIT of a transaction that wrote on two or more shards,
 * in two phases (router/twophase.h has the protocol and why each crash
 * point ends all or nothing). The steps, each run on the participants at
 * once, the next one starting when every participant has answered:
 *
 *   PREPARE  the decider inserts the decision record in its own
 *            transaction; every other writer runs PREPARE TRANSACTION
 *   DECIDE   the decider runs COMMIT: from its answer on, the outcome is
 *            decided and durable
 *   APPLY    COMMIT PREPARED on the other writers, COMMIT on the readers
 *   ABORT    (instead of DECIDE or APPLY, when a step before failed)
 *            ROLLBACK PREPARED where PREPARE went through, ROLLBACK where a
 *            transaction is still open
 *
 * The client gets COMMIT once APPLY is over, or the first error: a shard's
 * own (a PREPARE or the decider's COMMIT that failed: the transaction is
 * rolled back, as PostgreSQL's COMMIT answers), or 08007 when the decider's
 * connection was lost while it committed (the outcome is known only there;
 * recovery applies it to the others). A writer lost during APPLY does not
 * change the outcome: the client gets COMMIT with a warning, and recovery
 * commits that shard's prepared transaction when it is back.
 *
 * Replies are read here, message by message, and none goes to the client.
 */
#include "proxy/commit.h"

#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "proxy/context.h"
#include "proxy/log.h"
#include "proxy/pending.h"
#include "proxy/server.h"
#include "proxy/session.h"
#include "proxy/tx.h"
#include "proxy/wire.h"
#include "router/twophase.h"

typedef enum part_role {
	ROLE_DECIDER,
	ROLE_WRITER,
	ROLE_READER,
} part_role_t;

typedef enum commit_step {
	STEP_PREPARE,
	STEP_DECIDE,
	STEP_APPLY,
	STEP_ABORT,
} commit_step_t;

typedef struct part {
	server_t *s; /* NULL once lost */
	int shard;
	part_role_t role;
	int waiting;   /* ReadyForQuery still to come in this step */
	bool failed;   /* an error came in this step */
	bool prepared; /* its PREPARE TRANSACTION went through */
	char status;   /* of its last ReadyForQuery */
} part_t;

struct commit {
	part_t *p;
	int n;
	commit_step_t step;
	commit_mode_t mode;
	bool two_phase; /* else one: COMMIT on every participant, the decider first */
	bool ready;
	char tag[96]; /* the answer when it commits */
	char gid[TWOPHASE_GID_MAX];
	uint8_t *error; /* the first ErrorResponse body: the client's answer */
	size_t error_len;
	char sqlstate[6]; /* or pgshard's own error */
	char message[256];
	bool apply_incomplete; /* decided, but a writer did not confirm COMMIT PREPARED */
};

/* ---- the gid ---- */

static uint64_t g_instance;
static pthread_once_t g_instance_once = PTHREAD_ONCE_INIT;

static void draw_instance(void)
{
	if (getrandom(&g_instance, sizeof(g_instance), 0) != (ssize_t)sizeof(g_instance))
		g_instance = ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid();
}

static void make_gid(client_t *c, int decider, char *gid)
{
	pthread_once(&g_instance_once, draw_instance);
	twophase_gid(gid, g_instance, decider,
	             ((uint64_t)c->worker->index << 56) | ++c->worker->next_gid);
}

/*
 * For the crash tests (integration/tests/test_twophase.py), after the step
 * named prepared or decided: PGSHARD_DEBUG_COMMIT_CRASH=STEP kills pgshard;
 * PGSHARD_DEBUG_COMMIT_PAUSE=STEP stops its worker for two seconds (a test
 * takes a shard down meanwhile).
 */
static void debug_hook(const char *at)
{
	const char *crash = getenv("PGSHARD_DEBUG_COMMIT_CRASH");
	const char *pause = getenv("PGSHARD_DEBUG_COMMIT_PAUSE");

	if (crash != NULL && strcmp(crash, at) == 0) {
		log_msg(LOG_WARNING, 0, 0, "PGSHARD_DEBUG_COMMIT_CRASH=%s: exiting now", at);
		raise(SIGKILL);
	}
	if (pause != NULL && strcmp(pause, at) == 0) {
		log_msg(LOG_WARNING, 0, 0, "PGSHARD_DEBUG_COMMIT_PAUSE=%s: pausing 2 s", at);
		sleep(2);
	}
}

/* ---- participants ---- */

static part_t *part_of(commit_t *k, const server_t *s)
{
	for (int i = 0; i < k->n; i++)
		if (k->p[i].s == s && s != NULL)
			return &k->p[i];
	return NULL;
}

bool commit_has(const commit_t *k, const server_t *s)
{
	for (int i = 0; i < k->n; i++)
		if (k->p[i].s == s && s != NULL)
			return true;
	return false;
}

static int run(client_t *c, part_t *p, char *sql)
{
	int rc;

	if (sql == NULL)
		return -1;
	rc = server_query(p->s, &c->worker->scratch, sql, 'Q', PEND_SWALLOW);
	free(sql);
	if (rc < 0)
		return -1;
	p->waiting++;
	return 0;
}

static int run_const(client_t *c, part_t *p, const char *sql)
{
	return run(c, p, strdup(sql));
}

static void own_error(commit_t *k, const char *sqlstate, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void own_error(commit_t *k, const char *sqlstate, const char *fmt, ...)
{
	va_list ap;

	if (k->error != NULL || k->sqlstate[0] != '\0')
		return;
	memcpy(k->sqlstate, sqlstate, 6);
	va_start(ap, fmt);
	vsnprintf(k->message, sizeof(k->message), fmt, ap);
	va_end(ap);
}

static void keep_error(commit_t *k, const uint8_t *body, size_t len)
{
	if (k->error != NULL || k->sqlstate[0] != '\0')
		return;
	k->error = malloc(len);
	if (k->error != NULL) {
		memcpy(k->error, body, len);
		k->error_len = len;
	}
}

void commit_free(client_t *c)
{
	commit_t *k = c->commit;

	if (k == NULL)
		return;
	free(k->p);
	free(k->error);
	free(k);
	c->commit = NULL;
	c->phase = PH_IDLE;
}

const char *commit_state_name(const commit_t *k)
{
	switch (k->step) {
	case STEP_PREPARE:
		return k->two_phase ? "preparing" : "committing";
	case STEP_DECIDE:
		return k->two_phase ? "prepared" : "committing";
	case STEP_APPLY:
		return "committing";
	case STEP_ABORT:
		return "aborting";
	}
	return "committing";
}

const char *commit_gid(const commit_t *k)
{
	return k->two_phase ? k->gid : NULL;
}

/* ---- the steps ---- */

static void advance(client_t *c, commit_t *k);

static int start_abort(client_t *c, commit_t *k)
{
	k->step = STEP_ABORT;
	for (int i = 0; i < k->n; i++) {
		part_t *p = &k->p[i];

		p->failed = false;
		if (p->s == NULL)
			continue;
		if (p->prepared) {
			if (run(c, p, twophase_rollback_sql(k->gid)) < 0)
				return -1;
		} else if (p->status != 'I' && run_const(c, p, "ROLLBACK") < 0) {
			return -1;
		}
	}
	return 0;
}

static int start_decide(client_t *c, commit_t *k)
{
	k->step = STEP_DECIDE;
	for (int i = 0; i < k->n; i++)
		if (k->p[i].role == ROLE_DECIDER)
			return run_const(c, &k->p[i], "COMMIT");
	return -1;
}

static int start_apply(client_t *c, commit_t *k)
{
	k->step = STEP_APPLY;
	for (int i = 0; i < k->n; i++) {
		part_t *p = &k->p[i];

		p->failed = false;
		if (p->s == NULL) {
			if (p->role == ROLE_WRITER)
				k->apply_incomplete = true;
			continue;
		}
		if (p->role == ROLE_WRITER && k->two_phase) {
			if (run(c, p, twophase_commit_sql(k->gid)) < 0)
				return -1;
		} else if (p->role != ROLE_DECIDER && run_const(c, p, "COMMIT") < 0) {
			return -1;
		}
	}
	return 0;
}

static void send_error_body(client_t *c, const uint8_t *body, size_t len)
{
	wire_buf_t *b = &c->worker->scratch;

	wire_buf_reset(b);
	wire_begin(b, 'E');
	wire_put_bytes(b, body, len);
	wire_end(b);
	session_send_buf(c, b);
}

static void send_notice(client_t *c, const char *msg)
{
	wire_buf_t *b = &c->worker->scratch;

	wire_buf_reset(b);
	wire_put_notice(b, "WARNING", "01000", msg);
	session_send_buf(c, b);
}

/* The answer, and the transaction is over. */
static void finish(client_t *c, commit_t *k, bool committed)
{
	bool ready = k->ready;

	if (committed) {
		if (k->apply_incomplete) {
			char msg[300];

			snprintf(
			    msg, sizeof(msg),
			    "pgshard: the transaction is committed; a shard did not confirm it "
			    "yet and applies it when recovery reaches it (%s)",
			    k->gid);
			send_notice(c, msg);
		}
		if (k->tag[0] != '\0')
			session_emit(c, 'C', k->tag);
	} else if (k->mode == COMMIT_ROLLBACK) {
		/* the statement's error went out already */
	} else if (k->error != NULL) {
		send_error_body(c, k->error, k->error_len);
	} else {
		char str[300];

		snprintf(str, sizeof(str), "%.5s%s", k->sqlstate[0] != '\0' ? k->sqlstate : "XX000",
		         k->message[0] != '\0' ? k->message : "pgshard: the commit failed");
		session_emit(c, 'E', str);
	}
	log_msg(LOG_DEBUG, c->id, 0, "two-phase commit %s: %s", k->gid,
	        committed ? "committed" : "rolled back or unknown");
	commit_free(c);
	session_note_status(c, 'I');
	if (ready)
		session_emit(c, 'Z', NULL);
	else if (!committed)
		c->skip_until_sync = true;
	if (!session_maybe_release(c))
		session_resume(c);
}

static bool decider_lost(const commit_t *k)
{
	for (int i = 0; i < k->n; i++)
		if (k->p[i].role == ROLE_DECIDER)
			return k->p[i].s == NULL;
	return true;
}

static bool any_failed(const commit_t *k)
{
	for (int i = 0; i < k->n; i++)
		if (k->p[i].failed || (k->p[i].s == NULL && k->p[i].role != ROLE_READER))
			return true;
	return false;
}

/* Every participant answered the step: the next one. */
static void advance(client_t *c, commit_t *k)
{
	int rc = 0;

	for (int i = 0; i < k->n; i++)
		if (k->p[i].s != NULL && k->p[i].waiting > 0)
			return;
	switch (k->step) {
	case STEP_PREPARE:
		if (any_failed(k)) {
			own_error(k, "08006",
			          "pgshard: a shard's connection was lost while the transaction "
			          "prepared to commit; it is rolled back");
			rc = start_abort(c, k);
			break;
		}
		debug_hook("prepared");
		rc = start_decide(c, k);
		break;
	case STEP_DECIDE:
		if (decider_lost(k)) {
			own_error(
			    k, "08007",
			    "pgshard: the connection to the shard that decides the commit was "
			    "lost while it committed: the outcome is known only there, and "
			    "pgshard's recovery applies it to the other shards (%s)",
			    k->gid);
			finish(c, k, false);
			return;
		}
		if (any_failed(k)) {
			rc = start_abort(c, k);
			break;
		}
		for (int i = 0; i < k->n; i++)
			if (k->two_phase && k->p[i].role == ROLE_DECIDER)
				k->p[i].s->pool->has_decisions = true; /* the table is there now */
		debug_hook("decided");
		rc = start_apply(c, k);
		break;
	case STEP_APPLY:
		for (int i = 0; i < k->n; i++)
			if (k->p[i].role == ROLE_WRITER && (k->p[i].failed || k->p[i].s == NULL))
				k->apply_incomplete = true;
		finish(c, k, true);
		return;
	case STEP_ABORT:
		finish(c, k, false);
		return;
	}
	if (rc < 0) {
		session_fail_status(c, PX_NOMEM);
		return;
	}
	/* a step with nothing to wait for (all lost) goes on at once */
	for (int i = 0; i < k->n; i++)
		if (k->p[i].s != NULL && k->p[i].waiting > 0)
			return;
	advance(c, k);
}

int commit_start(client_t *c, commit_mode_t mode, bool ready, const char *tag)
{
	const cfg_t *cfg = context_cfg(c->worker);
	int decider = tx_decider(&c->tx), rc = 0;
	commit_t *k = calloc(1, sizeof(*k));

	if (k == NULL)
		return -1;
	k->p = calloc((size_t)cfg->n_shards, sizeof(*k->p));
	if (k->p == NULL) {
		free(k);
		return -1;
	}
	k->ready = ready;
	k->mode = mode;
	k->two_phase = mode != COMMIT_ROLLBACK && tx_writers(&c->tx) > 1;
	snprintf(k->tag, sizeof(k->tag), "%s",
	         mode == COMMIT_EXPLICIT ? "COMMIT"
	         : tag != NULL           ? tag
	                                 : "");
	if (decider < 0) /* nothing wrote: any one of them decides */
		for (int i = 0; i < c->links_cap && decider < 0; i++)
			if (c->links[i] != NULL)
				decider = i;
	make_gid(c, decider, k->gid);
	for (int i = 0; i < c->links_cap; i++) {
		part_t *p;

		if (c->links[i] == NULL)
			continue;
		p = &k->p[k->n++];
		p->s = c->links[i];
		p->shard = i;
		p->status = 'T';
		p->role = i == decider          ? ROLE_DECIDER
		          : tx_wrote(&c->tx, i) ? ROLE_WRITER
		                                : ROLE_READER;
	}
	c->commit = k;
	c->phase = PH_COMMITTING;
	c->server = NULL;
	if (mode == COMMIT_ROLLBACK) {
		rc = start_abort(c, k);
	} else if (!k->two_phase) {
		rc = start_decide(c, k);
	} else {
		for (int i = 0; i < k->n && rc == 0; i++) {
			part_t *p = &k->p[i];

			/* the first commit in a database recovery has not set up makes the table */
			if (p->role == ROLE_DECIDER)
				rc = run(c, p,
				         p->s->pool->has_decisions
				             ? twophase_record_sql(k->gid)
				             : twophase_setup_record_sql(k->gid));
			else if (p->role == ROLE_WRITER)
				rc = run(c, p, twophase_prepare_sql(k->gid));
		}
	}
	if (rc < 0) {
		commit_free(c);
		return -1;
	}
	log_msg(LOG_DEBUG, c->id, 0, "%s %s on %d shards",
	        mode == COMMIT_ROLLBACK ? "rollback"
	        : k->two_phase          ? "two-phase commit"
	                                : "commit",
	        k->gid, k->n);
	/* nothing to wait for (all rolled back already): over now */
	for (int i = 0; i < k->n; i++)
		if (k->p[i].waiting > 0)
			return 0;
	advance(c, k);
	return 0;
}

/* One participant's replies: errors kept, ReadyForQuery counted, nothing forwarded. */
void commit_reply(client_t *c, server_t *s)
{
	commit_t *k = c->commit;
	part_t *p = part_of(k, s);
	pbuf_t *in = s->sb.in;

	if (p == NULL)
		return;
	while (p->waiting > 0 && c->commit == k && !c->closing) {
		uint8_t type;
		size_t total;
		const uint8_t *msg;

		if (session_server_message(c, s, &type, &total, &msg) != 1)
			return;
		switch (type) {
		case 'E': {
			const char *code = wire_error_field(msg + 5, total - 5, 'C');
			/* COMMIT PREPARED of a transaction that recovery finished already */
			bool finished =
			    k->step == STEP_APPLY && code != NULL && strcmp(code, "42704") == 0;

			server_note_error(s, msg + 5, total - 5,
			                  finished ? LOG_BY_PROBE : LOG_BY_CLIENT);
			if (finished)
				break;
			p->failed = true;
			keep_error(k, msg + 5, total - 5);
			break;
		}
		case 'C':
			if (k->step != STEP_PREPARE || p->role != ROLE_WRITER)
				break;
			/* PREPARE TRANSACTION of a transaction that had failed there rolls it back
			 */
			if (total - 5 == sizeof("PREPARE TRANSACTION") &&
			    memcmp(msg + 5, "PREPARE TRANSACTION", total - 5) == 0) {
				p->prepared = true;
			} else {
				p->failed = true;
				own_error(k, "25P02",
				          "pgshard: the transaction had failed on shard %d; it is "
				          "rolled back",
				          p->shard);
			}
			break;
		case 'S':
			server_note_parameter(s, msg + 5, total - 5);
			break;
		case 'Z':
			p->status = (char)msg[5];
			server_note_ready(s, p->status);
			pending_pop(&s->pending);
			p->waiting--;
			break;
		default:
			break;
		}
		pbuf_drain(in, total);
	}
	if (c->commit == k && !c->closing)
		advance(c, k);
}

/* A participant left (its connection broke): the steps go on without it. */
void commit_member_lost(client_t *c, server_t *s)
{
	part_t *p = part_of(c->commit, s);

	if (p == NULL)
		return;
	p->s = NULL;
	p->waiting = 0;
}

void commit_server_lost(client_t *c, server_t *s)
{
	commit_t *k = c->commit;

	session_unlinked(c, s); /* commit_member_lost, through the client's ops */
	if (c->commit == k && !c->closing)
		advance(c, k);
}
