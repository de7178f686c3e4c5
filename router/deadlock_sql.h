/*
 * deadlock_sql.h — the SQL of distributed deadlock detection (run by
 * proxy/deadlock.c on each shard's primary). Pure: a constant.
 */
#ifndef PGSHARD_ROUTER_DEADLOCK_SQL_H
#define PGSHARD_ROUTER_DEADLOCK_SQL_H

/*
 * Every lock wait of the current database as one row per edge:
 * (waiting pid, pid it waits for). pg_blocking_pids names the holders of
 * the lock and the waiters queued before it (they too must go first). The
 * database is the conninfo's, which is the only one pgshard's backends use
 * on a shard whose conninfo fixes it (the detector skips the others).
 * Every name is schema-qualified, so that no search_path changes it.
 */
extern const char deadlock_waits_sql[];

#endif
