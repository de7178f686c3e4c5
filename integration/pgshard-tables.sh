#!/usr/bin/env bash
# Prints pgshard.ini sections ([map.*], [table.*]) for the tables of a set, over shards
# 0..N-1. integration/cluster.sh writes the bench set into every cluster's config,
# integration/demo.sh adds the demo set to its cluster's, and docker/pgshard.sh writes both
# for the containers of docker/docker-compose.yml: one description of each set.
#
#   integration/pgshard-tables.sh bench N   pgbench's tables, on hash map "bench"
#   integration/pgshard-tables.sh demo N    the demo application (integration/demo/schema.sql)
set -euo pipefail

set_name=${1:-}
shards=${2:-}
if [[ ! $shards =~ ^[0-9]+$ ]] || [ "$shards" -lt 1 ]; then
	echo "usage: integration/pgshard-tables.sh bench|demo N (N >= 1 shards)" >&2
	exit 2
fi
all=$(seq -s ', ' 0 $((shards - 1)))

case $set_name in
bench)
	cat <<EOF

; pgbench's tables, sharded on a consistent-hash ring (co-located by value)
[map.bench]
kind = hash
key = bigint
shards = $all
vnodes = 256

[table.pgbench_accounts]
key = aid
map = bench

[table.pgbench_tellers]
key = tid
map = bench

[table.pgbench_branches]
key = bid
map = bench

[table.pgbench_history]
key = aid
map = bench
EOF
	;;
demo)
	# events: ids below 1,000,000 on shard 0, each next million on the next shard, the rest on
	# the last one (a range map: ranges are chosen, not hashed).
	cat <<EOF

; the demo application (integration/demo/schema.sql): a tenant's users and orders live
; together on one shard (same map, same key values), plans is on every shard, events is
; placed by id ranges
[map.tenants]
kind = hash
key = bigint
shards = $all
vnodes = 256

[table.users]
key = tenant_id
map = tenants

[table.orders]
key = tenant_id
map = tenants

[table.plans]
reference = yes

[map.event_ids]
kind = range
key = bigint
EOF
	if [ "$shards" -eq 1 ]; then
		echo "range = - - 0"
	else
		echo "range = - 1000000 0"
		for ((i = 1; i < shards - 1; i++)); do
			echo "range = ${i}000000 $((i + 1))000000 $i"
		done
		echo "range = $((shards - 1))000000 - $((shards - 1))"
	fi
	cat <<EOF

[table.events]
key = event_id
map = event_ids
EOF
	;;
*)
	echo "usage: integration/pgshard-tables.sh bench|demo N (N >= 1 shards)" >&2
	exit 2
	;;
esac
