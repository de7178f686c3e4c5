#!/usr/bin/env bash
# Entrypoint of the demo container: starts a local cluster with integration/cluster.sh
# (SHARDS shards, each a primary with REPLICAS streaming replicas), then pgshard in front of it
# with integration/lib.sh, listening on all of the container's interfaces on port PROXY_PORT (6432).
# Stops both on SIGTERM / SIGINT; exits when pgshard exits.
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${PGSHARD_DEMO_DIR:-/var/lib/pgshard-demo}
BIN=${PGSHARD_BIN:-/usr/local/bin/pgshard}
PROXY_PORT=${PROXY_PORT:-6432}
# shellcheck source-path=SCRIPTDIR source=../integration/lib.sh
. "$SRC/integration/lib.sh"

shutdown() {
	trap - TERM INT
	echo "entrypoint: stopping"
	pgshard_stop "$DIR" || true
	"$SRC/integration/cluster.sh" stop "$DIR" || true
	exit "${1:-0}"
}
trap 'shutdown 0' TERM INT

"$SRC/integration/cluster.sh" start "$DIR" \
	--shards "${SHARDS:-2}" --replicas "${REPLICAS:-1}" --port "${BASE_PORT:-5440}" \
	--auth "${AUTH:-scram-sha-256}" --proxy-port "$PROXY_PORT" \
	--pool-size "${POOL_SIZE:-8}" --workers "${WORKERS:-1}"
# Reachable through the published port, not only from inside the container.
sed -i 's/^listen = 127\.0\.0\.1:/listen = 0.0.0.0:/' "$DIR/pgshard.ini"

if ! pgshard_start "$DIR" "$BIN"; then
	shutdown 1
fi
# shellcheck source=/dev/null
ports=$(. "$DIR/env.sh" && echo "${SHARD_PORTS:-}")
cat <<MSG
entrypoint: pgshard listens on port $PROXY_PORT in front of shards at $ports
entrypoint: connect with  PGPASSWORD=app-secret psql -h 127.0.0.1 -p $PROXY_PORT -U app app
MSG

pid=$(cat "$DIR/pgshard.pid")
while _pgshard_alive "$pid"; do
	sleep 1 &
	wait $! || true
done
echo "entrypoint: pgshard exited; log tail:"
tail -n 30 "$DIR/pgshard.log" || true
shutdown 1
