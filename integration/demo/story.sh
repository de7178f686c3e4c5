#!/usr/bin/env bash
# The demo's story, told through pgshard with psql: loads the demo application
# (integration/demo/schema.sql), then shows one query for each thing pgshard does with it, each
# followed by `pgshard --route` saying where it runs and why. Run by integration/demo.sh (a
# local cluster) and by the compose demo's "demo" service (docker/demo.sh).
#
#   integration/demo/story.sh PGSHARD_BINARY PGSHARD_INI
#
# PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE: pgshard. DEMO_SHARDS (optional): the shard
# primaries as "host:port host:port ...", in shard order, to show where the rows are.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BIN=${1:?usage: story.sh PGSHARD_BINARY PGSHARD_INI}
INI=${2:?usage: story.sh PGSHARD_BINARY PGSHARD_INI}

chapter() { printf '\n======== %s\n' "$*"; }
# Statements from standard input through pgshard, each echoed before its result.
sql() { psql -X -e -v ON_ERROR_STOP=1; }
# Where each statement would run; exit status 3 means a statement is refused, which is
# part of the story (the refusal is printed).
route() {
	echo "-- pgshard --route:"
	"$BIN" -c "$INI" --route "$@" | sed 's/^/   /' || [ "${PIPESTATUS[0]}" = 3 ]
}

chapter "the schema and its rows, loaded through pgshard (integration/demo/schema.sql)"
psql -X -q -f "$HERE/schema.sql"
echo "loaded: plans on every shard; users and orders split by tenant_id; events by event_id"
if [ -n "${DEMO_SHARDS:-}" ]; then
	echo "-- where the rows are, read on each shard's primary directly (not through pgshard):"
	i=0
	for hp in $DEMO_SHARDS; do
		printf 'shard %d (%s): ' "$i" "$hp"
		psql -X -A -t -h "${hp%:*}" -p "${hp##*:}" -c "SELECT
			(SELECT 'tenants ' || coalesce(string_agg(DISTINCT tenant_id::text, ',' ORDER BY tenant_id::text), '-') FROM users)
			|| '; users ' || (SELECT count(*) FROM users) || ', orders ' || (SELECT count(*) FROM orders)
			|| ', events ' || (SELECT count(*) FROM events) || ', plans ' || (SELECT count(*) FROM plans)"
		i=$((i + 1))
	done
fi

chapter "1. one tenant's data: one shard (the key, tenant_id, picks it)"
sql <<'SQL'
SELECT user_id, email FROM users WHERE tenant_id = 3 ORDER BY user_id;
SQL
route "SELECT user_id, email FROM users WHERE tenant_id = 3 ORDER BY user_id"

chapter "2. a join of co-located tables (and a reference table), on that one shard"
sql <<'SQL'
SELECT u.email, p.name AS plan, count(o.order_id) AS orders, coalesce(sum(o.amount), 0) AS spent
FROM users u JOIN plans p USING (plan_id)
LEFT JOIN orders o ON o.tenant_id = u.tenant_id AND o.user_id = u.user_id
WHERE u.tenant_id = 3 GROUP BY u.email, p.name ORDER BY u.email;
SQL
route "SELECT u.email, count(o.order_id) FROM users u LEFT JOIN orders o ON o.tenant_id = u.tenant_id AND o.user_id = u.user_id WHERE u.tenant_id = 3 GROUP BY u.email"

chapter "3. scatter-gather: an aggregate over every shard, finished by pgshard"
sql <<'SQL'
SELECT status, count(*), sum(amount), round(avg(amount), 2) AS avg FROM orders GROUP BY status ORDER BY status;
SQL
route "SELECT status, count(*), sum(amount), round(avg(amount), 2) AS avg FROM orders GROUP BY status ORDER BY status"

chapter "4. the co-located join on every shard at once: revenue per plan"
sql <<'SQL'
SELECT p.name AS plan, count(DISTINCT u.email) AS buyers, sum(o.amount) AS revenue
FROM orders o JOIN users u ON u.tenant_id = o.tenant_id AND u.user_id = o.user_id
JOIN plans p ON p.plan_id = u.plan_id
GROUP BY p.name ORDER BY revenue DESC;
SQL
route "SELECT p.name, sum(o.amount) FROM orders o JOIN users u ON u.tenant_id = o.tenant_id AND u.user_id = o.user_id JOIN plans p ON p.plan_id = u.plan_id GROUP BY p.name"

chapter "5. a table on another map: events, placed by ranges of event_id"
sql <<'SQL'
SELECT event_id, tenant_id, kind FROM events WHERE event_id >= 1000000 AND event_id < 2000000 ORDER BY event_id;
SELECT kind, count(*) FROM events GROUP BY kind ORDER BY kind;
SQL
route "SELECT event_id FROM events WHERE event_id >= 1000000 AND event_id < 2000000" \
	"SELECT kind, count(*) FROM events GROUP BY kind"

chapter "6. a transaction across shards: all or nothing (two-phase commit)"
echo "-- tenants 1 and 2 live on different shards; both refunds commit, or neither does"
sql <<'SQL'
BEGIN;
UPDATE orders SET status = 'refunded' WHERE tenant_id = 1 AND order_id = 1;
UPDATE orders SET status = 'refunded' WHERE tenant_id = 2 AND order_id = 1;
INSERT INTO events (event_id, tenant_id, kind) VALUES (103000, 1, 'refund'), (1003000, 2, 'refund');
COMMIT;
SELECT tenant_id, order_id, status FROM orders WHERE tenant_id IN (1, 2) AND order_id = 1 ORDER BY tenant_id;
SQL
route "UPDATE orders SET status = 'refunded' WHERE tenant_id = 1 AND order_id = 1" \
	"UPDATE orders SET status = 'refunded' WHERE tenant_id = 2 AND order_id = 1"
echo "-- (each statement alone would commit in one phase; the transaction wrote on two shards,"
echo "-- so its COMMIT went in two: the lowest shard that wrote, the decider, holds the record)"
if [ -n "${DEMO_SHARDS:-}" ]; then
	hp=${DEMO_SHARDS%% *}
	echo "-- the newest decision record on shard 0 ($hp), read directly:"
	psql -X -h "${hp%:*}" -p "${hp##*:}" -c "SELECT gid, committed, decided_at FROM pgshard.decisions ORDER BY decided_at DESC LIMIT 1"
fi
echo "-- a write to a reference table changes every shard's copy, in two phases as well:"
sql <<'SQL'
UPDATE plans SET monthly_price = 15 WHERE plan_id = 2;
SQL
route "UPDATE plans SET monthly_price = 15 WHERE plan_id = 2"

chapter "7. a user moves to another tenant: an UPDATE of the key moves the row"
echo "-- the row is deleted on its old shard and inserted on its new one, in one transaction:"
sql <<'SQL'
INSERT INTO users (tenant_id, user_id, email, plan_id) VALUES (1, 100, 'mover@tenant1.example', 1);
UPDATE users SET tenant_id = 2 WHERE tenant_id = 1 AND user_id = 100 RETURNING tenant_id, user_id, email;
SELECT tenant_id, user_id, email FROM users WHERE user_id = 100;
DELETE FROM users WHERE tenant_id = 2 AND user_id = 100;
SQL
route "UPDATE users SET tenant_id = 2 WHERE tenant_id = 1 AND user_id = 100"

chapter "8. a join across maps: users with events, in steps"
echo "-- users and events are on different maps: pgshard reads tenant 1's users on their one shard,"
echo "-- then the events with those tenant ids, then joins them with the statement itself:"
sql <<'SQL'
SELECT u.email, e.kind FROM users u JOIN events e ON e.tenant_id = u.tenant_id WHERE u.tenant_id = 1 ORDER BY u.email, e.kind;
SQL
route "SELECT u.email, e.kind FROM users u JOIN events e ON e.tenant_id = u.tenant_id WHERE u.tenant_id = 1 ORDER BY u.email, e.kind"

chapter "9. what pgshard refuses (SQLSTATE 0A000), and why"
echo "-- a join of tables on different maps with no equality between them is not run across"
echo "-- shards (every pair of rows would have to meet); join them on equal columns, or query each"
if sql <<'SQL' 2>&1; then
SELECT u.email, e.kind FROM users u JOIN events e ON e.tenant_id < u.tenant_id WHERE u.tenant_id = 2;
SQL
	echo "demo: the cross-map join without an equality was expected to be refused" >&2
	exit 1
fi
route "SELECT u.email, e.kind FROM users u JOIN events e ON e.tenant_id < u.tenant_id WHERE u.tenant_id = 2"

chapter "10. reads on a replica that never show a session older data than it wrote"
echo "-- the config leaves replica_reads off; this session turns it on. A read of one tenant goes"
echo "-- to a replica of its shard once the replica is known to be fit (the health checks tell"
echo "-- its position); after the session's write, its reads go only to a node that has it:"
sql <<'SQL'
SET pgshard.replica_reads = on;
SELECT pg_is_in_recovery() AS on_a_replica, count(*) FROM users WHERE tenant_id = 1;
UPDATE users SET email = 'first@tenant1.example' WHERE tenant_id = 1 AND user_id = 1;
SELECT email FROM users WHERE tenant_id = 1 AND user_id = 1;
SHOW pgshard.causal_token;
SQL
echo "-- another connection given that token reads the write too, from the primary or a replica"
echo "-- that has replayed it (SET pgshard.causal_token = '...', or the startup parameter)."
route "SELECT count(*) FROM users WHERE tenant_id = 1"

chapter "not in this story yet"
cat <<'MSG'
- Subqueries correlated with the outer query otherwise than by an equality, and recursive
  CTEs over sharded tables: refused today.
MSG
