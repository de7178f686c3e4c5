/*
 * commit.h — the COMMIT of a transaction that wrote on two or more shards,
 * in two phases (commit.c; the protocol is router/twophase.h's). The
 * client's links are its participants; the proxy runs the steps on them
 * and answers the client once the outcome is decided and applied.
 */
#ifndef PGSHARD_PROXY_COMMIT_H
#define PGSHARD_PROXY_COMMIT_H

#include "proxy/proxy.h"

/* What ends the transaction. */
typedef enum commit_mode {
	COMMIT_EXPLICIT, /* the client's COMMIT: answered "COMMIT" */
	COMMIT_IMPLICIT, /* the end of a statement pgshard ran in a transaction of its own
	                    (tx_t.implicit): answered with the statement's own tag */
	COMMIT_ROLLBACK, /* such a statement failed (its error went out): rolled back */
} commit_mode_t;

/*
 * Start it on every link of c (all held, nothing outstanding). Two phases
 * when the transaction wrote on two or more shards, else a plain COMMIT on
 * each. With !ready the answer ends without ReadyForQuery (an Execute; the
 * client's Sync gets it). `tag`: COMMIT_IMPLICIT's answer (NULL: none).
 * 0, or -1 when memory runs out.
 */
int commit_start(client_t *c, commit_mode_t mode, bool ready, const char *tag);
bool commit_has(const commit_t *k, const server_t *s);
void commit_reply(client_t *c, server_t *s); /* a participant has data */
/* A participant left: commit_member_lost marks it (from the client's unlinked op);
 * commit_server_lost also unlinks it and lets the steps go on without it. */
void commit_member_lost(client_t *c, server_t *s);
void commit_server_lost(client_t *c, server_t *s);
void commit_free(client_t *c);

/*
 * For SHOW TRANSACTIONS: where the commit is. Two phases: "preparing"
 * (PREPARE TRANSACTION and the decision record under way), "prepared"
 * (every writer prepared, the decider commits the decision), "committing"
 * (decided: COMMIT PREPARED under way); one phase: "committing"; either:
 * "aborting" (rolling back, prepared parts with ROLLBACK PREPARED).
 */
const char *commit_state_name(const commit_t *k);
/* Its gid when it commits in two phases, else NULL. */
const char *commit_gid(const commit_t *k);

#endif
