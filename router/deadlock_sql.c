/*
 * deadlock_sql.c — the SQL of distributed deadlock detection (see deadlock_sql.h).
 */
#include "router/deadlock_sql.h"

const char deadlock_waits_sql[] =
    "SELECT w.pid, b.pid FROM pg_catalog.pg_stat_activity AS w CROSS JOIN LATERAL "
    "pg_catalog.unnest(pg_catalog.pg_blocking_pids(w.pid)) AS b(pid) "
    "WHERE w.wait_event_type OPERATOR(pg_catalog.=) 'Lock' "
    "AND w.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()";
