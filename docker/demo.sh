#!/usr/bin/env bash
# The compose demo's one-shot "demo" service (docker/docker-compose.yml): waits until both
# pgshard containers serve every shard, loads pgbench's tables through the first one, runs
# pgbench through each of them, then tells the demo application's story
# (integration/demo/story.sh, as integration/demo.sh does on a local cluster). Exits 0 when
# all of it worked.
#
# Environment: PROXIES ("pgshard1 pgshard2"), SHARDS (3), SCALE (pgbench -i scale, 5),
# SECONDS_PER_RUN (pgbench -T, 10), PGUSER, PGPASSWORD, PGDATABASE.
set -euo pipefail

PROXIES=${PROXIES:-pgshard1 pgshard2}
SHARDS=${SHARDS:-3}
export PGPORT=6432 PGUSER=${PGUSER:-app} PGPASSWORD=${PGPASSWORD:-app-secret} PGDATABASE=${PGDATABASE:-app}
export PGCONNECT_TIMEOUT=5

log() { printf '\ndemo: %s\n' "$*"; }

# A proxy serves the cluster once a statement reaches each shard's primary through it
# (the nodes set themselves up while the proxies already run).
wait_serving() { # HOST
	local host=$1 i s
	for ((i = 0; i < 300; i++)); do
		for ((s = 0; s < SHARDS; s++)); do
			psql -X -q -A -t -h "$host" -c "/* pgshard: shard=$s */ SELECT 1" >/dev/null 2>&1 || break
		done
		if [ "$s" -eq "$SHARDS" ]; then return 0; fi
		sleep 1
	done
	echo "demo: $host does not serve all $SHARDS shards after 5 minutes" >&2
	return 1
}

for p in $PROXIES; do
	log "waiting for $p to serve shards 0..$((SHARDS - 1))"
	wait_serving "$p"
done

first=${PROXIES%% *}
log "loading pgbench's tables through $first (scale ${SCALE:-5}, split by key over the shards)"
pgbench -h "$first" -i -s "${SCALE:-5}" -q 2>&1 | grep -v '^NOTICE'
for p in $PROXIES; do
	log "pgbench (TPC-B-like, 4 clients, ${SECONDS_PER_RUN:-10} s) through $p"
	pgbench -h "$p" -c 4 -j 2 -T "${SECONDS_PER_RUN:-10}" 2>&1 | grep -E 'transactions|failed|tps'
done

# pgshard --route reads the same config as the proxies.
/opt/pgshard/docker/pgshard.sh config
shards=""
for ((s = 0; s < SHARDS; s++)); do shards="$shards shard$s-primary:5432"; done
log "the demo application's story, through $first"
PGHOST=$first DEMO_SHARDS=${shards# } \
	/opt/pgshard/integration/demo/story.sh /usr/local/bin/pgshard /etc/pgshard/pgshard.ini

cat <<'MSG'

demo: done. pgshard1 and pgshard2 are published on the host (127.0.0.1:7432 and 127.0.0.1:7433
unless PGSHARD1_PORT / PGSHARD2_PORT said otherwise):
    PGPASSWORD=app-secret psql -h 127.0.0.1 -p 7432 -U app app
MSG
