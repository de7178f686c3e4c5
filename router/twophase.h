/*
 * twophase.h — the names and the SQL of pgshard's two-phase commit, shared
 * by the commit path on the workers (proxy/commit.c) and recovery on the
 * control thread (proxy/recovery.c). Pure: strings in, strings out.
 *
 * The protocol, for a transaction that wrote on two or more shards:
 *
 *   1. One writer is the decider D (the lowest shard that wrote). In D's
 *      own transaction the proxy inserts the decision record
 *      (gid, committed = true) into pgshard.decisions; at the same time every
 *      other writer runs PREPARE TRANSACTION 'gid'.
 *   2. When all of that succeeded, D runs COMMIT. The decision is that
 *      commit: the record exists with committed = true exactly when D's
 *      transaction committed, atomically with D's own writes.
 *   3. Every other writer runs COMMIT PREPARED 'gid' (read-only participants
 *      a plain COMMIT). A failure in step 1 rolls everything back (ROLLBACK
 *      on D, ROLLBACK PREPARED where PREPARE succeeded).
 *
 * Recovery finds prepared transactions named pgshard:... on a shard, reads
 * the decider from the name and asks D: it inserts a tombstone
 * (gid, committed = false) with ON CONFLICT DO NOTHING. While D's
 * transaction is still open its uncommitted record holds the key and the
 * insert waits (under a lock_timeout; recovery tries again later), so a
 * live proxy's commit is never undone; once D's transaction is over, the
 * record says commit, or the tombstone (D rolled back, or died) says that a
 * commit can never come. Then COMMIT PREPARED or ROLLBACK PREPARED.
 *
 * A gid is "pgshard:<instance>:<decider>:<n>": instance 16 hex digits drawn
 * when the proxy starts, the decider's shard number, and a number unique
 * within the instance. Only [0-9a-f:] appear in it, and it stays under
 * PostgreSQL's 200 bytes.
 */
#ifndef PGSHARD_ROUTER_TWOPHASE_H
#define PGSHARD_ROUTER_TWOPHASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TWOPHASE_GID_PREFIX "pgshard:"
#define TWOPHASE_GID_MAX    80

/* Write the gid into buf (at least TWOPHASE_GID_MAX bytes). */
void twophase_gid(char *buf, uint64_t instance, int decider, uint64_t n);

/* The decider shard of a gid of ours, or -1 when gid is not one. */
int twophase_gid_decider(const char *gid);

/* The schema and table of the decision records, made if missing (idempotent). */
extern const char twophase_setup_sql[];
/* One row: max_prepared_transactions as an integer. */
extern const char twophase_max_prepared_sql[];
/* Our prepared transactions in every database: gid, age in seconds, database. */
extern const char twophase_list_prepared_sql[];
/* The databases one may connect to: datname. */
extern const char twophase_databases_sql[];
/* One row: whether the current database has the decision table. */
extern const char twophase_has_decisions_sql[];

/*
 * Each returns a malloc'd statement for the gid, or NULL when memory runs
 * out (or the gid is not one of ours: nothing else is ever quoted here).
 */
char *twophase_record_sql(const char *gid); /* INSERT (gid, committed = true) */
/* The same behind twophase_setup_sql: for a database where the table may not exist yet. */
char *twophase_setup_record_sql(const char *gid);
char *twophase_prepare_sql(const char *gid);   /* PREPARE TRANSACTION 'gid' */
char *twophase_commit_sql(const char *gid);    /* COMMIT PREPARED 'gid' */
char *twophase_rollback_sql(const char *gid);  /* ROLLBACK PREPARED 'gid' */
char *twophase_tombstone_sql(const char *gid); /* INSERT (gid, false) ON CONFLICT DO NOTHING */
char *twophase_decision_sql(const char *gid);  /* SELECT committed ... one row, or none */

/*
 * The question recovery asks the decider, in one transaction: the tombstone,
 * then the decision row. set_up_first: twophase_setup_sql before them, for a
 * database where the table may be missing. A missing table means that no
 * record was ever committed there, but the tombstone must still go in, so
 * that a record written later (a live pgshard whose first commit in that
 * database makes the table) fails instead of committing after the rollback.
 */
char *twophase_ask_sql(const char *gid, bool set_up_first);

/*
 * Decision records no longer needed: older than `min_age_s` seconds and
 * not among the n gids still prepared somewhere. Run only after every
 * shard's prepared transactions were listed in the same round.
 */
char *twophase_cleanup_sql(const char *const *prepared, int n, int min_age_s);

#endif
