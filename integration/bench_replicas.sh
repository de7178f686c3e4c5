#!/usr/bin/env bash
# pgbench -S (select only) through pgshard over 3 shards with one streaming replica each, with
# replica reads off (every read on the primaries), on (reads on the replicas) and with_primary
# (primaries and replicas share them); interleaved runs, one table with TPS and where the reads
# went. Never asserts.
#
#   integration/bench_replicas.sh BUILD_DIR [--seconds S] [--rounds N] [--clients C]
#                                 [--scale F] [--pool-size K] [--protocol simple|extended|prepared]
#                                 [--keep]
#
# Defaults: 10 s per run, 2 rounds, 16 clients (2 pgbench threads), scale 3, pool size 8,
# protocol simple.
# pgbench's tables are sharded by key over the 3 shards (the cluster's pgshard.ini), so every
# SELECT is routed to one shard; with replica reads on it then goes to that shard's replica.
# The three modes are three pgshard processes of the same binary and config but for
# `replica_reads`. Where the reads went comes from each pgshard's own per-node counters (the
# console's SHOW STATS, `statements` per node, before and after each run), printed as each
# node's share of the statements of that mode; CPU time per transaction is pgshard's
# (utime + stime from /proc).
# Ports: shards 5840/5850/5860 with replicas 5841/5851/5861; pgshard 6842 (off), 6843 (on),
# 6844 (with_primary); a temporary directory, removed on exit (--keep leaves it and its logs).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$HERE/lib.sh"


[ $# -ge 1 ] || usage
case $1 in -h | --help) usage ;; esac
BUILD_DIR=$1
shift
SECS=10 ROUNDS=2 CLIENTS=16 SCALE=3 POOL=8 PROTOCOL=simple KEEP=0
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
	--protocol) PROTOCOL=$2 ;;
	*) die "unknown option $1" ;;
	esac
	shift 2
done
positive_ints seconds:SECS rounds:ROUNDS clients:CLIENTS scale:SCALE pool-size:POOL
case $PROTOCOL in simple | extended | prepared) ;; *) die "--protocol must be simple, extended or prepared" ;; esac

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PGBENCH=$PGBIN/pgbench
PGSHARD_BIN=$(realpath "$BUILD_DIR/pgshard" 2>/dev/null) || die "no pgshard binary in $BUILD_DIR"
[ -x "$PGSHARD_BIN" ] || die "no pgshard binary at $PGSHARD_BIN"
[ "$(id -u)" -eq 0 ] || die "run as root (servers run as the postgres OS user)"
CLK_TCK=$(getconf CLK_TCK)

MODES=(off on with_primary)
declare -A PORT=([off]=6842 [on]=6843 [with_primary]=6844) PID

TMP=$(mktemp -d /tmp/pgshard-replbench.XXXXXX)
chmod 755 "$TMP"
cleanup() {
	local rc=$? m
	trap - EXIT INT TERM
	for m in "${MODES[@]}"; do
		if [ -n "${PID[$m]:-}" ]; then
			kill -TERM "${PID[$m]}" 2>/dev/null || true
			wait "${PID[$m]}" 2>/dev/null || true
		fi
	done
	cluster_discard "$TMP/cl" "$TMP" "$KEEP"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "cluster: 3 shards (5840...), one streaming replica each"
"$HERE/cluster.sh" start "$TMP/cl" --shards 3 --replicas 1 --port 5840 --proxy-port 6842 \
	--pool-size "$POOL" </dev/null >"$TMP/cluster.out" 2>&1 || {
	cat "$TMP/cluster.out" >&2
	die "cluster start failed"
}
for m in "${MODES[@]}"; do
	# The cluster's config with this mode's port and replica reads, and the app user as the
	# console's admin (SHOW STATS).
	sed -e "s/^listen = .*/listen = 127.0.0.1:${PORT[$m]}\nreplica_reads = $m\nadmin_users = app/" \
		"$TMP/cl/pgshard.ini" >"$TMP/cl/$m.ini"
	(cd "$TMP/cl" && exec "$PGSHARD_BIN" -c "$TMP/cl/$m.ini") </dev/null >"$TMP/$m.log" 2>&1 &
	PID[$m]=$!
	wait_port 127.0.0.1 "${PORT[$m]}" 10 || die "the pgshard with replica_reads = $m did not start"
done

export PGHOST=127.0.0.1 PGUSER=app PGPASSWORD=app-secret PGDATABASE=app
unset PGPORT PGSERVICE PGOPTIONS
log "pgbench -i -s $SCALE through pgshard (rows split over the shards)"
"$PGBENCH" -i -q -s "$SCALE" -I dtgp -p "${PORT[off]}" >"$TMP/init.log" 2>&1 || {
	cat "$TMP/init.log" >&2
	die "pgbench -i through pgshard failed"
}
# The replicas must have the data before the reads start: wait until each has replayed its
# primary's position of now.
for i in 0 1 2; do
	p=$((5840 + 10 * i))
	lsn=$(psql -X -At -p "$p" -c "SELECT pg_current_wal_lsn()")
	for _ in $(seq 200); do
		ok=$(psql -X -At -p $((p + 1)) -c "SELECT pg_last_wal_replay_lsn() >= '$lsn'")
		[ "$ok" = t ] && break
		sleep 0.05
	done
	[ "$ok" = t ] || die "the replica of shard $i did not replay the loaded data"
done

# "node statements" lines of the console's SHOW STATS: role|host:port|statements
node_statements() { # PORT
	psql -X -At -F'|' -p "$1" -d pgshard -c "SHOW STATS" | awk -F'|' '{ print $2 "|" $3 "|" $4 }'
}

declare -A TPS_SUM CPU_SUM TXN_SUM NODE_STMTS ROLE_OF
run() { # MODE
	local m=$1 out tps txns c0 c1 before after node role n
	before=$(node_statements "${PORT[$m]}")
	c0=$(cpu_ticks "${PID[$m]}")
	out=$("$PGBENCH" -n -S -M "$PROTOCOL" -c "$CLIENTS" -j 2 -T "$SECS" -p "${PORT[$m]}" 2>&1) || {
		printf '%s\n' "$out" | tail -n 5 >&2
		die "pgbench with replica_reads = $m failed"
	}
	c1=$(cpu_ticks "${PID[$m]}")
	after=$(node_statements "${PORT[$m]}")
	tps=$(sed -nE 's/^tps = ([0-9.]+) .*/\1/p' <<<"$out" | head -n 1)
	txns=$(sed -nE 's/^number of transactions actually processed: ([0-9]+).*/\1/p' <<<"$out")
	TPS_SUM[$m]=$(awk -v a="${TPS_SUM[$m]:-0}" -v b="$tps" 'BEGIN { print a + b }')
	CPU_SUM[$m]=$((${CPU_SUM[$m]:-0} + c1 - c0))
	TXN_SUM[$m]=$((${TXN_SUM[$m]:-0} + txns))
	while IFS='|' read -r role node n; do
		local was
		was=$(awk -F'|' -v nd="$node" '$2 == nd { print $3 }' <<<"$before")
		NODE_STMTS[$m,$node]=$((${NODE_STMTS[$m,$node]:-0} + n - ${was:-0}))
		ROLE_OF[$node]=$role
	done <<<"$after"
	log "replica_reads = $m: $tps tps"
}

for r in $(seq "$ROUNDS"); do
	log "round $r of $ROUNDS ($SECS s each)"
	if [ $((r % 2)) -eq 1 ]; then order=(off on with_primary); else order=(with_primary on off); fi
	for m in "${order[@]}"; do run "$m"; done
done

mapfile -t NODES < <(printf '%s\n' "${!ROLE_OF[@]}" | sort -t: -k2 -n)
off_tps=$(awk -v t="${TPS_SUM[off]}" -v n="$ROUNDS" 'BEGIN { print t / n }')
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f%%", (b > 0 ? 100 * a / b : 0) }'; }
declare -A TOTAL
echo
echo "pgbench -S -M $PROTOCOL, scale $SCALE, $CLIENTS clients, $SECS s x $ROUNDS rounds;"
echo "3 shards, one streaming replica each; reads per node from pgshard's SHOW STATS"
printf '%-13s %10s %7s %12s %10s %10s\n' replica_reads tps "/ off" "CPU us/txn" primaries replicas
for m in "${MODES[@]}"; do
	tps=$(awk -v t="${TPS_SUM[$m]}" -v n="$ROUNDS" 'BEGIN { printf "%.1f", t / n }')
	ratio=$(awk -v a="$tps" -v b="$off_tps" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
	cpu=$(awk -v c="${CPU_SUM[$m]}" -v t="${TXN_SUM[$m]}" -v hz="$CLK_TCK" \
		'BEGIN { printf "%.1f", (t > 0 ? c / hz * 1e6 / t : 0) }')
	total=0 prim=0
	for node in "${NODES[@]}"; do
		n=${NODE_STMTS[$m,$node]:-0}
		total=$((total + n))
		[ "${ROLE_OF[$node]}" != primary ] || prim=$((prim + n))
	done
	TOTAL[$m]=$total
	printf '%-13s %10s %7s %12s %10s %10s\n' "$m" "$tps" "$ratio" "$cpu" "$(pct $prim $total)" \
		"$(pct $((total - prim)) $total)"
done
echo
printf '%-8s %-16s' role node
for m in "${MODES[@]}"; do printf ' %13s' "$m"; done
echo
for node in "${NODES[@]}"; do
	printf '%-8s %-16s' "${ROLE_OF[$node]}" "$node"
	for m in "${MODES[@]}"; do printf ' %13s' "$(pct "${NODE_STMTS[$m,$node]:-0}" "${TOTAL[$m]}")"; done
	echo
done
