#!/usr/bin/env bash
# Entrypoint of a pgshard container of the compose demo (docker/docker-compose.yml): writes
# the config for the cluster's shards (containers shardI-primary and shardI-replica, port
# 5432) and runs pgshard in the foreground as the container's main process. Every pgshard
# container writes the same config: they are stateless and serve the same cluster.
#
#   docker/pgshard.sh          write the config, print it, exec pgshard
#   docker/pgshard.sh config   only write it (the demo service uses it for pgshard --route)
#
# Environment: SHARDS (3), AUTH (scram-sha-256: clients to pgshard and pgshard to the
# nodes), POOL_SIZE (10), WORKERS (1), PGSHARD_CONFIG_DIR (/etc/pgshard).
set -euo pipefail

SHARDS=${SHARDS:-3}
AUTH=${AUTH:-scram-sha-256}
DIR=${PGSHARD_CONFIG_DIR:-/etc/pgshard}
TABLES=/opt/pgshard/integration/pgshard-tables.sh

mkdir -p "$DIR"
# PgBouncer-style users file: the clients' logins, and the password pgshard logs in to the
# nodes with (the nodes' role app, set up by integration/pgnode.sh).
printf '"app" "app-secret"\n' >"$DIR/users.txt"
chmod 600 "$DIR/users.txt"
{
	echo "; pgshard config written by docker/pgshard.sh for the compose demo"
	echo
	echo "[proxy]"
	echo "listen = *:6432"
	echo "workers = ${WORKERS:-1}"
	echo "pool_size = ${POOL_SIZE:-10}"
	echo "default_shard = 0"
	echo
	echo "[auth]"
	echo "method = $AUTH"
	echo "users = users.txt"
	for ((i = 0; i < SHARDS; i++)); do
		echo
		echo "[shard.$i]"
		echo "primary = host=shard$i-primary port=5432 dbname=app user=app"
		echo "replica = host=shard$i-replica port=5432 dbname=app user=app"
	done
	"$TABLES" bench "$SHARDS"
	"$TABLES" demo "$SHARDS"
} >"$DIR/pgshard.ini"

[ "${1:-}" != config ] || exit 0
echo "pgshard.sh: $DIR/pgshard.ini:"
sed 's/^/    /' "$DIR/pgshard.ini"
exec pgshard -c "$DIR/pgshard.ini"
