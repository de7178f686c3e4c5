/*
 * tx.h — a client's transaction as pgshard keeps it: pure bookkeeping, no
 * I/O (unit-tested in proxy/tests/test_tx.c without libevent).
 *
 * The client sees one transaction; behind it, each shard the transaction
 * touches runs a transaction of its own (a participant). BEGIN is answered
 * by pgshard and opened on a shard only when the transaction first touches
 * it, by replaying what the client has said so far (BEGIN as written, with
 * its isolation level and access mode, then its SAVEPOINTs): the prefix.
 * Which participants wrote is what a commit needs to know (one writer: a
 * plain COMMIT; several: two-phase commit).
 *
 * Transaction control (BEGIN, COMMIT, ROLLBACK, SAVEPOINT, RELEASE,
 * ROLLBACK TO) is decided here once, for the simple and the extended
 * protocol alike (tx_control): pgshard answers it itself, runs it on the
 * one participant, runs it on every participant, or routes it as any other
 * statement.
 */
#ifndef PGSHARD_PROXY_TX_H
#define PGSHARD_PROXY_TX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "router/route.h"

typedef enum tx_state {
	TX_IDLE,   /* no transaction block */
	TX_OPEN,   /* in a transaction block */
	TX_FAILED, /* in a failed one: only its end (or a savepoint rollback) is accepted */
} tx_state_t;

typedef struct tx_participant {
	int shard;
	bool wrote; /* a statement that may write ran there in this transaction */
} tx_participant_t;

typedef struct tx {
	tx_state_t state;
	char *prefix; /* BEGIN ...; SAVEPOINT ...: what a shard that joins runs first */
	tx_participant_t *parts;
	int n_parts, cap_parts;
	bool implicit;    /* opened by pgshard around one autocommit statement that writes on
	                     several shards, so that it commits on all of them or none */
	int64_t began_ms; /* when it opened (monotonic clock): its age in SHOW TRANSACTIONS */
	/* distributed deadlock detection (txwatch.c): set while it runs on two shards or more */
	uint64_t dist_id;      /* its id in the detector's snapshot; 0: not seen yet */
	int64_t dist_since_ms; /* when it was first seen (monotonic) */
	char *deadlock_detail; /* chosen as a deadlock's victim: the DETAIL of its 40P01 */
} tx_t;

/* What to do with a statement of transaction control. */
typedef enum tx_action {
	TX_ROUTE,    /* not the proxy's: route and run it as any statement */
	TX_ANSWER,   /* the proxy answers it itself with `tag` */
	TX_ON_ONE,   /* run `sql` on the transaction's one participant */
	TX_ON_ALL,   /* run `sql` on every participant at once */
	TX_REJECTED, /* a failed transaction: 25P02, the statement is not run */
} tx_action_t;

typedef struct tx_decision {
	tx_action_t action;
	const char *tag;  /* TX_ANSWER: the CommandComplete tag */
	const char *sql;  /* TX_ON_ONE, TX_ON_ALL: the statement, or ROLLBACK for COMMIT of a
	                     failed transaction (valid during the call only: may be `sql`) */
	bool as_rollback; /* COMMIT of a failed transaction: it runs as a ROLLBACK */
	bool two_phase;   /* TX_ON_ALL: a COMMIT of a transaction that wrote on two or more
	                     shards, which commits in two phases (router/twophase.h) */
} tx_decision_t;

void tx_init(tx_t *t);
void tx_free(tx_t *t);

bool tx_open(const tx_t *t); /* TX_OPEN or TX_FAILED */
/* Open an implicit transaction (see tx_t.implicit). -1: out of memory. */
int tx_begin_implicit(tx_t *t);
bool tx_implicit(const tx_t *t);
bool tx_failed(const tx_t *t);
/* The status byte of ReadyForQuery: 'I', 'T' or 'E'. */
char tx_status(const tx_t *t);

/*
 * Decide about one statement in the client's transaction. `txn` is what the
 * router found (ROUTE_TXN_NONE for an ordinary statement), `sql` its text,
 * `savepoint_tag` the tag of a savepoint statement (SAVEPOINT, RELEASE or
 * ROLLBACK for ROLLBACK TO), `n_links` how many shards the transaction
 * holds now. BEGIN opens the transaction and a savepoint joins the prefix
 * as decided; the end of a transaction the proxy answers ends it. -1 when
 * memory runs out.
 */
int tx_control(tx_t *t, route_txn_t txn, const char *sql, const char *savepoint_tag, int n_links,
               tx_decision_t *d);

/* A shard joins the transaction (it runs the prefix first). -1: out of memory. */
int tx_join(tx_t *t, int shard);
/* A statement that may write runs on `shard` inside the transaction. */
void tx_note_write(tx_t *t, int shard);
int tx_writers(const tx_t *t);
/* The participant whose commit decides a two-phase commit: the lowest shard that wrote; -1. */
int tx_decider(const tx_t *t);
bool tx_wrote(const tx_t *t, int shard);
const tx_participant_t *tx_participant(const tx_t *t, int shard);

/* A statement failed inside the transaction block (the client sees 25P02 until its end). */
void tx_fail(tx_t *t);
/*
 * A participant reported its status (ReadyForQuery). 'I': the transaction
 * is over. 'T' or 'E' outside a block: a query string opened one on the
 * server (other shards join with a plain BEGIN). -1: out of memory.
 */
int tx_note_status(tx_t *t, char status);

/*
 * The deadlock detector chose this transaction as a victim: its cancelled
 * statement's 57014 is told as 40P01 with `detail`, until it is (tx_take_deadlock)
 * or the transaction ends. -1: out of memory.
 */
int tx_mark_deadlock(tx_t *t, const char *detail);
/* The victim's DETAIL, handed over (the caller frees it), or NULL when it is no victim. */
char *tx_take_deadlock(tx_t *t);

#endif
