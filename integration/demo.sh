#!/usr/bin/env bash
# The README's demo command: installs what is missing, builds pgshard, starts a
# local cluster (2 shards, each a primary with a streaming replica), starts
# pgshard in front of it, loads pgbench data through pgshard, runs pgbench and
# a psql query through it (pgbench's tables are sharded by key over both
# shards), shows where statements go, then tells the demo application's story
# (integration/demo/story.sh: one tenant's rows, scatter-gather, co-located joins,
# a transaction across shards, what is refused), and leaves everything running.
#
#   integration/demo.sh          set up and run the demo
#   integration/demo.sh stop     stop pgshard and the cluster
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=$ROOT/.cluster/demo
cd "$ROOT"
# shellcheck source=integration/lib.sh
. integration/lib.sh

if [ "${1:-}" = stop ]; then
	pgshard_stop "$DIR" || true
	integration/cluster.sh stop "$DIR"
	exit 0
fi

integration/install-deps.sh
echo "demo: building"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null

integration/cluster.sh start "$DIR" --shards 2 --replicas 1 --port 5440 \
	--auth scram-sha-256 --proxy-port 6432 --pool-size 8
# The demo application's tables (integration/demo/schema.sql), as the compose demo has them.
integration/pgshard-tables.sh demo 2 >>"$DIR/pgshard.ini"
pgshard_start "$DIR" "$ROOT/build/pgshard"

# shellcheck source=/dev/null
. "$DIR/env.sh"
export PGHOST=127.0.0.1 PGPORT=$PGSHARD_PORT PGUSER=app PGPASSWORD=app-secret PGDATABASE=app

echo "demo: loading pgbench data through pgshard"
pgbench -i -s 5 -q
echo "demo: pgbench -S -M prepared -c 16 through pgshard (pool_size 8)"
pgbench -S -M prepared -c 16 -j 2 -T 5 | grep -E 'transactions|failed|tps'
echo "demo: TPC-B-like pgbench through pgshard"
pgbench -c 8 -j 2 -T 5 | grep -E 'transactions|failed|tps'
echo "demo: psql through pgshard"
psql -X -c "select count(*) as accounts from pgbench_accounts" \
	-c "select aid, bid, abalance from pgbench_accounts where aid in (1, 2, 3)" \
	-c "select version()"
echo "demo: scatter-gather through pgshard (ORDER BY/LIMIT merged, GROUP BY finished by pgshard)"
psql -X -c "select aid, abalance from pgbench_accounts order by abalance desc, aid limit 5" \
	-c "select bid, count(*), sum(abalance), round(avg(abalance), 2) as avg from pgbench_accounts group by bid order by bid"
echo "demo: where statements go (pgshard --route)"
"$ROOT/build/pgshard" -c "$DIR/pgshard.ini" --route \
	"select abalance from pgbench_accounts where aid = 42" \
	"update pgbench_accounts set abalance = 0 where aid in (1, 2, 3)" \
	"select count(*) from pgbench_accounts" \
	"select bid, avg(abalance) from pgbench_accounts group by bid order by 2 desc limit 3" || true

echo "demo: the demo application's story (integration/demo/story.sh)"
shard_hosts=""
for p in $SHARD_PORTS; do shard_hosts="$shard_hosts 127.0.0.1:$p"; done
DEMO_SHARDS=${shard_hosts# } integration/demo/story.sh "$ROOT/build/pgshard" "$DIR/pgshard.ini"

cat <<MSG

pgshard is running on 127.0.0.1:$PGSHARD_PORT in front of shards at ports $SHARD_PORTS.
Connect with:
    PGPASSWORD=app-secret psql -h 127.0.0.1 -p $PGSHARD_PORT -U app app
Config: $DIR/pgshard.ini   Log: $DIR/pgshard.log
Stop everything with: integration/demo.sh stop
MSG
