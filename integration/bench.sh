#!/usr/bin/env bash
# pgbench through nothing, PgBouncer and pgshard, interleaved; prints a table. Never asserts.
#
#   integration/bench.sh BUILD_DIR [--seconds S] [--rounds N] [--pool-size K] [--clients C]
#                        [--threads J] [--scale F] [--workers W] [--auth METHOD]
#                        [--modes "select-simple select-extended ..."] [--baseline BIN] [--keep]
#
# Defaults: 10 s per run, 1 round, pool size 4 (pgshard and PgBouncer alike), 16 clients,
# 2 pgbench threads, scale 10, 1 pgshard worker, auth trust.
# Modes: select-simple select-extended select-prepared tpcb-simple tpcb-prepared
#        (default: all but tpcb-prepared).
# For each mode and round it runs direct, pgbouncer, pgshard and pgshard-flat back to back
# (PgBouncer, pgshard and the baseline in reverse order in even rounds, so that none always
# goes first), and measures the proxies' CPU time (utime+stime from /proc/PID/stat) during
# each run.
# "pgshard" has pgbench's tables sharded by key on a consistent-hash ring (the cluster's
# pgshard.ini; one shard, so that every target serves the same data): every statement is
# parsed and routed. "pgshard-flat" runs the same binary with no map and no table, as the
# foundation did (everything to the default shard): the CPU difference is what routing costs.
# --baseline BIN adds a target "baseline": a second pgshard binary (e.g. the build of an older
# commit) with the same sharded config as "pgshard", on its own port. It runs in every mode and
# round right next to "pgshard" (see the order above), measured the same way; the table gets
# its TPS, its CPU per transaction and the ratio "CPU new/old" (pgshard's CPU per transaction
# over the baseline's; below 1.00 = new is cheaper).
# Uses its own 1-shard cluster (ports 5540, pgshard 6532, PgBouncer 6533, pgshard-flat 6534,
# baseline 6535) in a temporary directory, removed on exit (--keep leaves it and its logs).
# The pgshard binary is BUILD_DIR/pgshard (PGSHARD_BENCH_BIN overrides it, for testing).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$HERE/lib.sh"


[ $# -ge 1 ] || usage
case $1 in -h | --help) usage ;; esac
BUILD_DIR=$1
shift
SECS=10 ROUNDS=1 POOL=4 CLIENTS=16 THREADS=2 SCALE=10 WORKERS=1 AUTH=trust KEEP=0 BASELINE_BIN=
MODES="select-simple select-extended select-prepared tpcb-simple"
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
	--pool-size) POOL=$2 ;;
	--clients) CLIENTS=$2 ;;
	--threads) THREADS=$2 ;;
	--scale) SCALE=$2 ;;
	--workers) WORKERS=$2 ;;
	--auth) AUTH=$2 ;;
	--modes) MODES=$2 ;;
	--baseline) BASELINE_BIN=$2 ;;
	*) die "unknown option $1" ;;
	esac
	shift 2
done
positive_ints seconds:SECS rounds:ROUNDS pool-size:POOL clients:CLIENTS threads:THREADS scale:SCALE workers:WORKERS
case $AUTH in trust | md5 | scram-sha-256) ;; *) die "--auth must be trust, md5 or scram-sha-256" ;; esac
for m in $MODES; do
	case $m in select-simple | select-extended | select-prepared | tpcb-simple | tpcb-prepared) ;;
	*) die "unknown mode $m" ;;
	esac
done

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PGBENCH=$PGBIN/pgbench
PGBOUNCER=${PGBOUNCER:-/usr/sbin/pgbouncer}
PGSHARD_BIN=${PGSHARD_BENCH_BIN:-$BUILD_DIR/pgshard}
if [ ! -f "$PGSHARD_BIN" ] || [ ! -x "$PGSHARD_BIN" ]; then
	die "no pgshard binary at $PGSHARD_BIN (build first: cmake -S . -B $BUILD_DIR && cmake --build $BUILD_DIR)"
fi
PGSHARD_BIN=$(realpath "$PGSHARD_BIN")
if [ -n "$BASELINE_BIN" ]; then
	if [ ! -f "$BASELINE_BIN" ] || [ ! -x "$BASELINE_BIN" ]; then
		die "--baseline: no executable pgshard binary at $BASELINE_BIN"
	fi
	BASELINE_BIN=$(realpath "$BASELINE_BIN")
	[ "$BASELINE_BIN" != "$PGSHARD_BIN" ] || echo "bench: warning: --baseline is the same file as $PGSHARD_BIN" >&2
fi
[ -x "$PGBENCH" ] || die "no pgbench at $PGBENCH (run integration/install-deps.sh)"
[ -x "$PGBOUNCER" ] || die "no PgBouncer at $PGBOUNCER (run integration/install-deps.sh)"
[ "$(id -u)" -eq 0 ] || die "run as root (servers and PgBouncer run as the postgres OS user)"

BASE_PORT=5540 PGSHARD_PORT_B=6532 BOUNCER_PORT=6533 FLAT_PORT=6534 FLAT_PID=
BASELINE_PORT=6535 BASELINE_PID=
CLK_TCK=$(getconf CLK_TCK)

TMP=$(mktemp -d /tmp/pgshard-bench.XXXXXX)
chmod 755 "$TMP"
BOUNCER_PID=
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	pgshard_stop "$TMP" >/dev/null 2>&1 || true
	local p
	for p in "$FLAT_PID" "$BASELINE_PID"; do
		[ -n "$p" ] || continue
		kill -TERM "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	if [ -n "$BOUNCER_PID" ] && kill -0 "$BOUNCER_PID" 2>/dev/null; then
		kill -INT "$BOUNCER_PID" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$BOUNCER_PID" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$BOUNCER_PID" 2>/dev/null || true
	fi
	cluster_discard "$TMP" "$TMP" "$KEEP"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "cluster: 1 shard, no replica, port $BASE_PORT, auth $AUTH"
"$HERE/cluster.sh" start "$TMP" --shards 1 --replicas 0 --port $BASE_PORT --auth "$AUTH" \
	--proxy-port $PGSHARD_PORT_B --pool-size "$POOL" --workers "$WORKERS" </dev/null >"$TMP/cluster.out" 2>&1 ||
	{
		cat "$TMP/cluster.out" >&2
		die "cluster start failed"
	}

# PgBouncer runs as postgres: give it its own readable copy of the users file.
BDIR=$TMP/pgbouncer
mkdir -p "$BDIR"
cp "$TMP/users.txt" "$BDIR/users.txt"
cat >"$BDIR/pgbouncer.ini" <<EOF
[databases]
app = host=127.0.0.1 port=$BASE_PORT dbname=app

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $BOUNCER_PORT
unix_socket_dir =
auth_type = $AUTH
auth_file = $BDIR/users.txt
pool_mode = transaction
default_pool_size = $POOL
max_client_conn = 200
ignore_startup_parameters = extra_float_digits
logfile = $BDIR/pgbouncer.log
pidfile = $BDIR/pgbouncer.pid
log_connections = 0
log_disconnections = 0
EOF
chown -R postgres: "$BDIR"
chmod 600 "$BDIR/users.txt"
(cd / && exec "$PGBOUNCER" -u postgres -q "$BDIR/pgbouncer.ini") </dev/null >"$BDIR/stdout.log" 2>&1 &
BOUNCER_PID=$!
wait_port 127.0.0.1 $BOUNCER_PORT 10 || {
	tail -n 20 "$BDIR/pgbouncer.log" "$BDIR/stdout.log" >&2 || true
	die "PgBouncer did not start"
}

log "pgshard: $PGSHARD_BIN (port $PGSHARD_PORT_B, pool_size $POOL, workers $WORKERS)"
pgshard_start "$TMP" "$PGSHARD_BIN" || die "pgshard did not start"
SHARD_PID=$(cat "$TMP/pgshard.pid")

# The same proxy without maps or tables: the foundation's routing-free path.
sed -e '/^; pgbench.s tables/,$d' -e "s/^listen = .*/listen = 127.0.0.1:$FLAT_PORT/" \
	"$TMP/pgshard.ini" >"$TMP/flat.ini"
grep -q '^\[table\.' "$TMP/pgshard.ini" || die "the cluster's pgshard.ini shards no table"
"$PGSHARD_BIN" -c "$TMP/flat.ini" </dev/null >"$TMP/pgshard-flat.log" 2>&1 &
FLAT_PID=$!
wait_port 127.0.0.1 $FLAT_PORT 10 || die "pgshard-flat did not start"

# The baseline binary: the same sharded config as "pgshard", on its own port.
if [ -n "$BASELINE_BIN" ]; then
	! wait_port 127.0.0.1 $BASELINE_PORT 0 || die "port $BASELINE_PORT (baseline) is already in use"
	log "baseline: $BASELINE_BIN (port $BASELINE_PORT, same config as pgshard)"
	sed -e "s/^listen = .*/listen = 127.0.0.1:$BASELINE_PORT/" "$TMP/pgshard.ini" >"$TMP/baseline.ini"
	(cd "$TMP" && exec "$BASELINE_BIN" -c "$TMP/baseline.ini") </dev/null >"$TMP/pgshard-baseline.log" 2>&1 &
	BASELINE_PID=$!
	wait_port 127.0.0.1 $BASELINE_PORT 10 || {
		tail -n 20 "$TMP/pgshard-baseline.log" >&2 || true
		die "baseline pgshard did not start"
	}
fi

export PGHOST=127.0.0.1 PGUSER=app PGPASSWORD=app-secret PGDATABASE=app
unset PGPORT PGSERVICE PGOPTIONS

log "pgbench -i -s $SCALE (direct)"
t0=$(date +%s)
"$PGBENCH" -i -q -s "$SCALE" -p $BASE_PORT >"$TMP/init.log" 2>&1 || {
	cat "$TMP/init.log" >&2
	die "pgbench -i failed"
}
log "initialized in $(($(date +%s) - t0)) s"

peak_rss() { awk '/^VmHWM:/ { print $2 " " $3 }' "/proc/$1/status" 2>/dev/null || echo "?"; }

mode_args() {
	case $1 in
	select-simple) echo "-S -M simple" ;;
	select-extended) echo "-S -M extended" ;;
	select-prepared) echo "-S -M prepared" ;;
	tpcb-simple) echo "-M simple" ;;
	tpcb-prepared) echo "-M prepared" ;;
	esac
}

declare -A TPS_SUM=() TXN_SUM=() TICK_SUM=() RUNS=() ERRS=()
# run MODE TARGET PORT PID(or empty)
run() {
	local mode=$1 target=$2 port=$3 pid=$4 out c0=0 c1=0 tps txns rc=0 key
	out=$TMP/pgbench-$mode-$target-r$round.log
	[ -z "$pid" ] || c0=$(cpu_ticks "$pid")
	# shellcheck disable=SC2046
	# A run that hangs (a stuck proxy) is cut off and counted as failed.
	timeout -k 5 $((SECS + 30)) \
		"$PGBENCH" -n -c "$CLIENTS" -j "$THREADS" -T "$SECS" $(mode_args "$mode") -p "$port" >"$out" 2>&1 || rc=$?
	[ -z "$pid" ] || c1=$(cpu_ticks "$pid")
	tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time).*/\1/p' "$out")
	txns=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$out")
	key=$mode/$target
	if [ $rc -ne 0 ] || [ -z "$tps" ] || [ -z "$txns" ] || [ "$txns" -eq 0 ] ||
		grep -q '^number of failed transactions: [1-9]' "$out" || grep -qi 'aborted' "$out"; then
		ERRS[$key]=$((${ERRS[$key]:-0} + 1))
		local why
		if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
			why="timed out after $((SECS + 30)) s (stuck?)"
		else
			why=$({ grep -m1 -iE 'error|abort|fatal' "$out" || tail -n1 "$out"; } | cut -c1-110)
		fi
		printf 'bench:   %-16s %-9s round %d: FAILED (exit %d): %s\n' "$mode" "$target" "$round" "$rc" "$why"
		return 0
	fi
	RUNS[$key]=$((${RUNS[$key]:-0} + 1))
	TPS_SUM[$key]=$(awk -v a="${TPS_SUM[$key]:-0}" -v b="$tps" 'BEGIN { printf "%.3f", a + b }')
	TXN_SUM[$key]=$((${TXN_SUM[$key]:-0} + txns))
	TICK_SUM[$key]=$((${TICK_SUM[$key]:-0} + c1 - c0))
	if [ -n "$pid" ]; then
		printf 'bench:   %-16s %-9s round %d: %10.1f tps  %6.1f us CPU/txn\n' "$mode" "$target" "$round" "$tps" \
			"$(awk -v t=$((c1 - c0)) -v hz="$CLK_TCK" -v n="$txns" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')"
	else
		printf 'bench:   %-16s %-9s round %d: %10.1f tps\n' "$mode" "$target" "$round" "$tps"
	fi
}

log "runs: modes [$MODES], $ROUNDS round(s), ${SECS} s each, -c $CLIENTS -j $THREADS"
for mode in $MODES; do
	for ((round = 1; round <= ROUNDS; round++)); do
		run "$mode" direct $BASE_PORT ""
		# the proxies in turn: odd rounds PgBouncer, pgshard, baseline; even rounds backwards
		if ((round % 2)); then
			run "$mode" pgbouncer $BOUNCER_PORT "$BOUNCER_PID"
			run "$mode" pgshard $PGSHARD_PORT_B "$SHARD_PID"
			[ -z "$BASELINE_BIN" ] || run "$mode" baseline $BASELINE_PORT "$BASELINE_PID"
		else
			[ -z "$BASELINE_BIN" ] || run "$mode" baseline $BASELINE_PORT "$BASELINE_PID"
			run "$mode" pgshard $PGSHARD_PORT_B "$SHARD_PID"
			run "$mode" pgbouncer $BOUNCER_PORT "$BOUNCER_PID"
		fi
		run "$mode" pgshard-flat $FLAT_PORT "$FLAT_PID"
		if ! _pgshard_alive "$SHARD_PID"; then
			tail -n 30 "$TMP/pgshard.log" >&2 || true
			die "pgshard died during $mode"
		fi
		if [ -n "$BASELINE_BIN" ] && ! _pgshard_alive "$BASELINE_PID"; then
			tail -n 30 "$TMP/pgshard-baseline.log" >&2 || true
			die "baseline pgshard died during $mode"
		fi
	done
done

avg_tps() { # KEY -> mean tps or "-"
	local k=$1
	if [ "${RUNS[$k]:-0}" -gt 0 ]; then
		awk -v s="${TPS_SUM[$k]}" -v n="${RUNS[$k]}" 'BEGIN { printf "%.0f", s / n }'
	else
		echo "-"
	fi
}
cpu_per_txn() {
	local k=$1
	if [ "${RUNS[$k]:-0}" -gt 0 ] && [ "${TXN_SUM[$k]}" -gt 0 ]; then
		awk -v t="${TICK_SUM[$k]}" -v hz="$CLK_TCK" -v n="${TXN_SUM[$k]}" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }'
	else
		echo "-"
	fi
}
ratio() {
	if [ "$1" = - ] || [ "$2" = - ] || [ "$2" = 0 ]; then echo "-"; else awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; fi
}

echo
printf 'pgbench -c %s -j %s -T %s, scale %s, pool size %s, %s round(s), pgshard workers %s, auth %s\n' \
	"$CLIENTS" "$THREADS" "$SECS" "$SCALE" "$POOL" "$ROUNDS" "$WORKERS" "$AUTH"
fmt='%-16s | %10s | %13s | %11s | %17s | %14s | %20s | %18s | %17s | %14s'
width=180
if [ -n "$BASELINE_BIN" ]; then
	fmt="$fmt | %12s | %19s | %11s"
	width=$((width + 3 * 3 + 12 + 19 + 11))
	printf 'pgshard: %s\nbaseline: %s\n' "$PGSHARD_BIN" "$BASELINE_BIN"
fi
fmt="$fmt\n"
hdr=(mode "direct tps" "pgbouncer tps" "pgshard tps" "pgshard/pgbouncer" "pgshard/direct"
	"pgbouncer us CPU/txn" "pgshard us CPU/txn" "flat us CPU/txn" "routing us/txn")
[ -z "$BASELINE_BIN" ] || hdr+=("baseline tps" "baseline us CPU/txn" "CPU new/old")
# shellcheck disable=SC2059
printf "$fmt" "${hdr[@]}"
printf -- '%.0s-' $(seq 1 "$width")
echo
for mode in $MODES; do
	d=$(avg_tps "$mode/direct")
	b=$(avg_tps "$mode/pgbouncer")
	s=$(avg_tps "$mode/pgshard")
	cs=$(cpu_per_txn "$mode/pgshard")
	cf=$(cpu_per_txn "$mode/pgshard-flat")
	if [ "$cs" = - ] || [ "$cf" = - ]; then rc_cost=-; else rc_cost=$(awk -v a="$cs" -v b="$cf" 'BEGIN { printf "%.1f", a - b }'); fi
	row=("$mode" "$d" "$b" "$s" "$(ratio "$s" "$b")" "$(ratio "$s" "$d")"
		"$(cpu_per_txn "$mode/pgbouncer")" "$cs" "$cf" "$rc_cost")
	if [ -n "$BASELINE_BIN" ]; then
		co=$(cpu_per_txn "$mode/baseline")
		row+=("$(avg_tps "$mode/baseline")" "$co" "$(ratio "$cs" "$co")")
	fi
	# shellcheck disable=SC2059
	printf "$fmt" "${row[@]}"
done
echo
printf 'peak RSS (VmHWM): pgbouncer %s, pgshard %s, pgshard-flat %s' "$(peak_rss "$BOUNCER_PID")" \
	"$(peak_rss "$SHARD_PID")" "$(peak_rss "$FLAT_PID")"
[ -z "$BASELINE_BIN" ] || printf ', baseline %s' "$(peak_rss "$BASELINE_PID")"
echo
if [ "${#ERRS[@]}" -gt 0 ]; then
	list=""
	for k in "${!ERRS[@]}"; do list="$list $k (${ERRS[$k]}x)"; done
	echo "failed runs, left out of the table (see FAILED lines above):$list"
	case " ${!ERRS[*]}" in *"prepared/pgbouncer"*)
		echo "  PgBouncer $("$PGBOUNCER" --version | awk 'NR == 1 { print $2 }') in transaction mode does not support protocol-level prepared statements" ;;
	esac
fi
