/*
 * recovery_rules.h — the decisions of two-phase-commit recovery
 * (recovery.c), apart from its I/O: what an answer of the decider means,
 * what the end of COMMIT/ROLLBACK PREPARED means, which prepared
 * transactions are due, when a round may delete decision records. Pure;
 * unit tested in proxy/tests/test_recovery_rules.c.
 */
#ifndef PGSHARD_RECOVERY_RULES_H
#define PGSHARD_RECOVERY_RULES_H

#include <stdbool.h>
#include <stdint.h>

/*
 * Decision records are deleted once they are older than this and no shard
 * lists their gid as prepared. The age is what protects a record whose gid
 * is being prepared on a shard right now, after this round listed that shard
 * (so that no list has it): decided_at is when the record was written
 * (router/twophase.c), the commit path runs its PREPAREs at the same time,
 * and a round that may clean up is shorter than RECOVERY_CLEAN_MAX_ROUND_MS,
 * so such a record is deleted only if its PREPARE finished more than
 * 600 - 300 s after the record was written. Ten minutes of rows cost
 * little; a record deleted under a prepared transaction turns its commit
 * into a rollback.
 */
#define RECOVERY_CLEANUP_MIN_AGE_S  600
#define RECOVERY_CLEAN_MAX_ROUND_MS (RECOVERY_CLEANUP_MIN_AGE_S * 1000 / 2)

/* What the decider's answer to "tombstone; decision" says about a gid. */
typedef enum recovery_verdict {
	RECOVERY_COMMIT,   /* its record says committed: D's transaction committed */
	RECOVERY_ROLLBACK, /* a tombstone (ours or an earlier one): a commit can never come */
	RECOVERY_WAIT,     /* lock timeout: D's transaction is still open; ask again later */
	RECOVERY_UNKNOWN,  /* the question failed; ask again later */
} recovery_verdict_t;

/*
 * sqlstate: of the first error among the results, NULL when none; rows and
 * committed (text format: "t" or "f"): the decision SELECT's answer.
 */
recovery_verdict_t recovery_verdict(const char *sqlstate, int rows, const char *committed);

/* What the end of COMMIT PREPARED or ROLLBACK PREPARED on the shard says. */
typedef enum recovery_finish {
	RECOVERY_FINISHED, /* done now, by us */
	RECOVERY_GONE,     /* 42704, no such prepared transaction: someone else finished it */
	RECOVERY_BUSY,     /* 55000: another session is finishing it at this moment */
	RECOVERY_FAILED,   /* anything else: try again next round */
} recovery_finish_t;

recovery_finish_t recovery_finish(const char *sqlstate);

/* A prepared transaction of age_s seconds is old enough to resolve. */
bool recovery_due(long long age_s, int grace_ms);

/* The decider of gid, when it is one of n_shards; -1 when not (or gid is not one of ours). */
int recovery_decider(const char *gid, int n_shards);

/*
 * The database of the decider shard in which the decision of a transaction
 * prepared in `prepared_db` on shard S was recorded, or NULL when it cannot
 * be known. A conninfo's dbname (S's `holder_dbname`, the decider's
 * `decider_dbname`; NULL when the conninfo leaves it to the client) is the
 * database the data path uses on that shard for every client; without one,
 * the client's own. So: a transaction prepared in another database than
 * S's fixed one was not made under this config (another pgshard's, or an
 * older config): unknown. Else the decider's fixed database when it has
 * one; else the client's, which is prepared_db when S also takes the
 * client's; else (S fixed, the decider not) nothing says which client
 * database it was. Unknown stays in doubt: asking in a wrong database would
 * find no record there and roll back a committed transaction.
 */
const char *recovery_decider_db(const char *holder_dbname, const char *decider_dbname,
                                const char *prepared_db);

/*
 * A round may delete decision records only when every primary's prepared
 * transactions were listed in it (a shard that could not be listed may hold
 * a gid prepared whose record would then become a tombstone, and its commit
 * a rollback), and it has not taken longer than RECOVERY_CLEAN_MAX_ROUND_MS.
 */
bool recovery_may_clean(int n_primaries, int n_listed, int64_t round_ms);

/*
 * The database whose decision records a round cleans up next on a shard
 * whose conninfo has no dbname (its clients' databases, one per round): the
 * first of names (any order) after `last` (NULL: none yet) in strcmp order,
 * wrapping around to the first; NULL when there is none.
 */
const char *recovery_next_clean_db(const char *const *names, int n, const char *last);

/*
 * The startup options of recovery's connections: the conninfo's own
 * (may be NULL), then lock_timeout, so that a tombstone waiting for an open
 * transaction gives up. malloc'd; NULL when out of memory.
 */
char *recovery_options(const char *conninfo_options, int lock_timeout_ms);

#endif
