#!/usr/bin/env bash
# TPC-B (pgbench's default script) across 3 shards through pgshard with two-phase commit, the
# same with two_phase_commit = off, and one PostgreSQL holding everything; interleaved runs,
# one table. Never asserts.
#
#   integration/bench_tpcb.sh BUILD_DIR [--seconds S] [--rounds N] [--clients C] [--scale F]
#                             [--pool-size K] [--keep]
#
# Defaults: 15 s per run, 2 rounds, 8 clients (2 pgbench threads), scale 3, pool size 8.
# pgbench's tables are sharded by key over 3 shards (the cluster's pgshard.ini: accounts and
# history by aid, tellers by tid, branches by bid, one hash ring): a TPC-B transaction
# updates an account, a teller and a branch that are mostly on different shards, so most
# transactions write on two or three shards and commit in two phases. "one-phase" is the same
# binary and config with two_phase_commit = off (each shard commits on its own: not atomic),
# "direct" is one PostgreSQL with the whole data set, no proxy. pgshard's CPU time per
# transaction (utime + stime from /proc) is measured over each of its runs.
# Ports: shards 5640/5650/5660, pgshard 6632, one-phase pgshard 6633, direct 5670; a
# temporary directory, removed on exit (--keep leaves it and its logs).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$HERE/lib.sh"


[ $# -ge 1 ] || usage
case $1 in -h | --help) usage ;; esac
BUILD_DIR=$1
shift
SECS=15 ROUNDS=2 CLIENTS=8 SCALE=3 POOL=8 KEEP=0
while [ $# -gt 0 ]; do
	case $1 in
	--keep)
		KEEP=1
		shift
		continue
		;;
	-h | --help) usage ;;
	esac
	[ $# -ge 2 ] || die "option $1 needs a value"
	case $1 in
	--seconds) SECS=$2 ;;
	--rounds) ROUNDS=$2 ;;
	--clients) CLIENTS=$2 ;;
	--scale) SCALE=$2 ;;
	--pool-size) POOL=$2 ;;
	*) die "unknown option $1" ;;
	esac
	shift 2
done
positive_ints seconds:SECS rounds:ROUNDS clients:CLIENTS scale:SCALE pool-size:POOL

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PGBENCH=$PGBIN/pgbench
PGSHARD_BIN=$(realpath "$BUILD_DIR/pgshard" 2>/dev/null) || die "no pgshard binary in $BUILD_DIR"
[ -x "$PGSHARD_BIN" ] || die "no pgshard binary at $PGSHARD_BIN"
[ "$(id -u)" -eq 0 ] || die "run as root (servers run as the postgres OS user)"
CLK_TCK=$(getconf CLK_TCK)

TMP=$(mktemp -d /tmp/pgshard-tpcb.XXXXXX)
chmod 755 "$TMP"
ONE_PID=
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	pgshard_stop "$TMP/sharded" >/dev/null 2>&1 || true
	if [ -n "$ONE_PID" ]; then
		kill -TERM "$ONE_PID" 2>/dev/null || true
		wait "$ONE_PID" 2>/dev/null || true
	fi
	local direct_data
	"$HERE/cluster.sh" stop "$TMP/direct" >/dev/null 2>&1 || true
	direct_data=$(readlink "$TMP/direct/data" 2>/dev/null || true)
	case $KEEP:$direct_data in 0:/tmp/pgshard-*) rm -rf -- "$direct_data" ;; esac
	cluster_discard "$TMP/sharded" "$TMP" "$KEEP"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "clusters: 3 shards (5640...), one PostgreSQL (5670)"
"$HERE/cluster.sh" start "$TMP/sharded" --shards 3 --replicas 0 --port 5640 --proxy-port 6632 \
	--pool-size "$POOL" </dev/null >"$TMP/cluster.out" 2>&1 || {
	cat "$TMP/cluster.out" >&2
	die "cluster start failed"
}
"$HERE/cluster.sh" start "$TMP/direct" --shards 1 --replicas 0 --port 5670 --proxy-port 6634 \
	--no-tables </dev/null >"$TMP/direct.out" 2>&1 || {
	cat "$TMP/direct.out" >&2
	die "one-PostgreSQL cluster start failed"
}
pgshard_start "$TMP/sharded" "$PGSHARD_BIN" || die "pgshard did not start"
SHARD_PID=$(cat "$TMP/sharded/pgshard.pid")
sed -e "s/^listen = .*/listen = 127.0.0.1:6633\ntwo_phase_commit = off/" \
	"$TMP/sharded/pgshard.ini" >"$TMP/sharded/onephase.ini"
(cd "$TMP/sharded" && exec "$PGSHARD_BIN" -c "$TMP/sharded/onephase.ini") </dev/null \
	>"$TMP/onephase.log" 2>&1 &
ONE_PID=$!
wait_port 127.0.0.1 6633 10 || die "the one-phase pgshard did not start"

export PGHOST=127.0.0.1 PGUSER=app PGPASSWORD=app-secret PGDATABASE=app
unset PGPORT PGSERVICE PGOPTIONS
log "pgbench -i -s $SCALE through pgshard (rows split over the shards) and directly"
"$PGBENCH" -i -q -s "$SCALE" -I dtgp -p 6632 >"$TMP/init-sharded.log" 2>&1 || {
	cat "$TMP/init-sharded.log" >&2
	die "pgbench -i through pgshard failed"
}
"$PGBENCH" -i -q -s "$SCALE" -p 5670 >"$TMP/init-direct.log" 2>&1 || die "pgbench -i failed"


declare -A TPS_SUM CPU_SUM TXN_SUM
run() { # TARGET PORT PID
	local target=$1 port=$2 pid=${3:-} out tps txns c0=0 c1=0
	[ -z "$pid" ] || c0=$(cpu_ticks "$pid")
	out=$("$PGBENCH" -n -M simple -c "$CLIENTS" -j 2 -T "$SECS" -p "$port" 2>&1) || {
		printf '%s\n' "$out" | tail -n 5 >&2
		die "pgbench against $target failed"
	}
	[ -z "$pid" ] || c1=$(cpu_ticks "$pid")
	tps=$(sed -nE 's/^tps = ([0-9.]+) .*/\1/p' <<<"$out" | head -n 1)
	txns=$(sed -nE 's/^number of transactions actually processed: ([0-9]+).*/\1/p' <<<"$out")
	TPS_SUM[$target]=$(awk -v a="${TPS_SUM[$target]:-0}" -v b="$tps" 'BEGIN { print a + b }')
	CPU_SUM[$target]=$((${CPU_SUM[$target]:-0} + c1 - c0))
	TXN_SUM[$target]=$((${TXN_SUM[$target]:-0} + txns))
	log "$target: $tps tps"
}

for r in $(seq "$ROUNDS"); do
	log "round $r of $ROUNDS ($SECS s each)"
	run direct 5670
	run two-phase 6632 "$SHARD_PID"
	run one-phase 6633 "$ONE_PID"
done

direct=$(awk -v t="${TPS_SUM[direct]}" -v n="$ROUNDS" 'BEGIN { print t / n }')
echo
echo "TPC-B (pgbench -M simple), scale $SCALE, $CLIENTS clients, $SECS s x $ROUNDS rounds; 3 shards"
printf '%-11s %10s %10s %18s\n' target tps "/ direct" "pgshard CPU us/txn"
for target in direct two-phase one-phase; do
	tps=$(awk -v t="${TPS_SUM[$target]}" -v n="$ROUNDS" 'BEGIN { printf "%.1f", t / n }')
	ratio=$(awk -v a="$tps" -v b="$direct" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
	cpu=-
	if [ "$target" != direct ] && [ "${TXN_SUM[$target]}" -gt 0 ]; then
		cpu=$(awk -v c="${CPU_SUM[$target]}" -v t="${TXN_SUM[$target]}" -v hz="$CLK_TCK" \
			'BEGIN { printf "%.1f", c / hz * 1e6 / t }')
	fi
	printf '%-11s %10s %10s %18s\n' "$target" "$tps" "$ratio" "$cpu"
done
