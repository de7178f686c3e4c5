#!/usr/bin/env bash
# How pgshard scales, next to PgBouncer, measured in one run: worker threads against client
# counts, and many client connections on a small pool. Prints two tables. Never asserts.
#
#   integration/bench_scale.sh BUILD_DIR [--seconds S] [--clients "16 64"] [--conns "1000 5000"]
#                              [--pool-size K] [--scale F] [--keep]
#
# Defaults: 10 s per run, clients 16 and 64 for the scaling table, 1000 and 5000 connections
# for the many-connections table, pool size 20, scale 10; auth trust (a login costs the same
# on every target), pgbench -S -M simple, pgbench's threads: 2.
# Targets: one PostgreSQL directly (not in the many-connections table: it takes 100 clients);
# PgBouncer (one process); PgBouncer as two processes
# sharing the port with so_reuseport; pgshard with workers = 1 and workers = 2 (pgbench's tables
# sharded by key on one shard, so that every statement is parsed and routed). Each run is
# interleaved with the others of its row. CPU is the proxies' utime + stime over the run per
# transaction (both PgBouncer processes summed); memory is each proxy's resident set (VmRSS,
# both PgBouncer processes summed) at the end of a run, with all the clients still connected.
# Ports: PostgreSQL 5760, pgshard 6762 (1 worker) and 6763 (2 workers), PgBouncer 6764 and
# 6765 (two processes); a temporary directory, removed on exit (--keep leaves it and its logs).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$HERE/lib.sh"


[ $# -ge 1 ] || usage
case $1 in -h | --help) usage ;; esac
BUILD_DIR=$1
shift
SECS=10 CLIENTS_LIST="16 64" CONNS_LIST="1000 5000" POOL=20 SCALE=10 KEEP=0
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
	--clients) CLIENTS_LIST=$2 ;;
	--conns) CONNS_LIST=$2 ;;
	--pool-size) POOL=$2 ;;
	--scale) SCALE=$2 ;;
	*) die "unknown option $1" ;;
	esac
	shift 2
done
for v in $SECS $CLIENTS_LIST $CONNS_LIST $POOL $SCALE; do
	[[ $v =~ ^[1-9][0-9]*$ ]] || die "every number must be a positive integer (got '$v')"
done

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PGBENCH=$PGBIN/pgbench
PGBOUNCER=${PGBOUNCER:-/usr/sbin/pgbouncer}
PGSHARD_BIN=$(realpath "$BUILD_DIR/pgshard" 2>/dev/null) || die "no pgshard binary in $BUILD_DIR"
[ -x "$PGSHARD_BIN" ] || die "no pgshard binary at $PGSHARD_BIN"
[ -x "$PGBOUNCER" ] || die "no PgBouncer at $PGBOUNCER (run integration/install-deps.sh)"
[ "$(id -u)" -eq 0 ] || die "run as root (servers and PgBouncer run as the postgres OS user)"
CLK_TCK=$(getconf CLK_TCK)
MAX_CONNS=0
for n in $CONNS_LIST $CLIENTS_LIST; do [ "$n" -le "$MAX_CONNS" ] || MAX_CONNS=$n; done
ulimit -n $((MAX_CONNS * 2 + 1000)) 2>/dev/null ||
	die "cannot raise the open files limit to $((MAX_CONNS * 2 + 1000)) for $MAX_CONNS connections"

BASE=5760
declare -A PORT=([direct]=$BASE [pgshard-w1]=6762 [pgshard-w2]=6763 [pgbouncer]=6764
	[pgbouncer-x2]=6765)
declare -A PIDS=()
TARGETS=(direct pgbouncer pgbouncer-x2 pgshard-w1 pgshard-w2)

TMP=$(mktemp -d /tmp/pgshard-scale.XXXXXX)
chmod 755 "$TMP"
cleanup() {
	local rc=$? p
	trap - EXIT INT TERM
	for p in ${PIDS[@]+"${PIDS[@]}"}; do
		kill -TERM "$p" 2>/dev/null || true
	done
	sleep 0.5
	for p in ${PIDS[@]+"${PIDS[@]}"}; do
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	cluster_discard "$TMP/cl" "$TMP" "$KEEP"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "cluster: 1 shard, no replica, port $BASE"
"$HERE/cluster.sh" start "$TMP/cl" --shards 1 --replicas 0 --port $BASE --proxy-port 6762 \
	--pool-size "$POOL" </dev/null >"$TMP/cluster.out" 2>&1 || {
	cat "$TMP/cluster.out" >&2
	die "cluster start failed"
}
for w in 1 2; do
	sed -e "s/^listen = .*/listen = 127.0.0.1:${PORT[pgshard-w$w]}\nmax_clients = $((MAX_CONNS + 100))/" \
		-e "s/^workers = .*/workers = $w/" "$TMP/cl/pgshard.ini" >"$TMP/cl/w$w.ini"
	(cd "$TMP/cl" && exec "$PGSHARD_BIN" -c "$TMP/cl/w$w.ini") </dev/null >"$TMP/pgshard-w$w.log" 2>&1 &
	PIDS[pgshard-w$w]=$!
	wait_port 127.0.0.1 "${PORT[pgshard-w$w]}" 10 || die "pgshard with workers = $w did not start"
done

# PgBouncer runs as postgres: its own readable copy of the users file.
start_bouncer() { # NAME PORT REUSEPORT
	local d=$TMP/$1
	mkdir -p "$d"
	cp "$TMP/cl/users.txt" "$d/users.txt"
	cat >"$d/pgbouncer.ini" <<EOF
[databases]
app = host=127.0.0.1 port=$BASE dbname=app

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $2
unix_socket_dir =
auth_type = trust
auth_file = $d/users.txt
pool_mode = transaction
default_pool_size = $POOL
max_client_conn = $((MAX_CONNS + 100))
ignore_startup_parameters = extra_float_digits
so_reuseport = $3
logfile = $d/pgbouncer.log
pidfile = $d/pgbouncer.pid
log_connections = 0
log_disconnections = 0
EOF
	chown -R postgres: "$d"
	chmod 600 "$d/users.txt"
	(cd / && exec "$PGBOUNCER" -u postgres -q "$d/pgbouncer.ini") </dev/null >"$d/stdout.log" 2>&1 &
	PIDS[$1]=$!
}
start_bouncer pgbouncer "${PORT[pgbouncer]}" 0
# two processes on one port, as PgBouncer's documentation suggests for more than one core
start_bouncer pgbouncer-x2 "${PORT[pgbouncer-x2]}" 1
sed -e "s/^pidfile = .*/pidfile = ${TMP//\//\\/}\/pgbouncer-x2\/pgbouncer2.pid/" \
	-e "s/^logfile = .*/logfile = ${TMP//\//\\/}\/pgbouncer-x2\/pgbouncer2.log/" \
	"$TMP/pgbouncer-x2/pgbouncer.ini" >"$TMP/pgbouncer-x2/pgbouncer2.ini"
chown postgres: "$TMP/pgbouncer-x2/pgbouncer2.ini"
(cd / && exec "$PGBOUNCER" -u postgres -q "$TMP/pgbouncer-x2/pgbouncer2.ini") </dev/null \
	>"$TMP/pgbouncer-x2/stdout2.log" 2>&1 &
PIDS[pgbouncer-x2b]=$!
for t in pgbouncer pgbouncer-x2; do
	wait_port 127.0.0.1 "${PORT[$t]}" 10 || die "$t did not start"
done

export PGHOST=127.0.0.1 PGUSER=app PGPASSWORD=app-secret PGDATABASE=app
unset PGPORT PGSERVICE PGOPTIONS
log "pgbench -i -s $SCALE (direct)"
"$PGBENCH" -i -q -s "$SCALE" -p "$BASE" >"$TMP/init.log" 2>&1 || {
	cat "$TMP/init.log" >&2
	die "pgbench -i failed"
}

# The processes whose CPU and memory count for a target.
procs_of() {
	case $1 in
	direct) ;;
	pgbouncer-x2) echo "${PIDS[pgbouncer-x2]} ${PIDS[pgbouncer-x2b]}" ;;
	*) echo "${PIDS[$1]}" ;;
	esac
}
ticks_of() {
	local t=0 p
	for p in $(procs_of "$1"); do t=$((t + $(cpu_ticks "$p"))); done
	echo "$t"
}
rss_of() { # kB
	local t=0 p k
	for p in $(procs_of "$1"); do
		k=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null || echo 0)
		t=$((t + ${k:-0}))
	done
	echo "$t"
}

declare -A TPS CPU RSS
run() { # TARGET CLIENTS
	local t=$1 n=$2 out c0 c1 rss_file tps txns
	out=$TMP/pgbench-$t-$n.log
	rss_file=$TMP/rss-$t-$n
	c0=$(ticks_of "$t")
	# memory near the end of the run, every client still connected
	(sleep $((SECS * 4 / 5 + n / 500)) && rss_of "$t" >"$rss_file") &
	local sampler=$!
	timeout -k 5 $((SECS + 60 + n / 50)) "$PGBENCH" -n -S -M simple -c "$n" -j 2 -T "$SECS" \
		-p "${PORT[$t]}" >"$out" 2>&1 || {
		tail -n 5 "$out" >&2
		wait "$sampler" 2>/dev/null || true
		die "pgbench -c $n against $t failed"
	}
	c1=$(ticks_of "$t")
	wait "$sampler" 2>/dev/null || true
	tps=$(sed -nE 's/^tps = ([0-9.]+) .*/\1/p' "$out" | head -n 1)
	txns=$(sed -nE 's/^number of transactions actually processed: ([0-9]+).*/\1/p' "$out")
	TPS[$t,$n]=$tps
	CPU[$t,$n]=$(awk -v c=$((c1 - c0)) -v x="$txns" -v hz="$CLK_TCK" \
		'BEGIN { printf "%.1f", (x > 0 ? c / hz * 1e6 / x : 0) }')
	RSS[$t,$n]=$(cat "$rss_file" 2>/dev/null || echo 0)
	log "$t, $n clients: $tps tps, ${CPU[$t,$n]} us CPU/txn, ${RSS[$t,$n]} kB"
}

for n in $CLIENTS_LIST; do
	for t in "${TARGETS[@]}"; do run "$t" "$n"; done
done
# PostgreSQL itself takes max_connections (100) clients: the many-connection rows are proxies'
for n in $CONNS_LIST; do
	for t in "${TARGETS[@]:1}"; do run "$t" "$n"; done
done

table() { # TITLE COUNTS...
	local title=$1 n t
	shift
	echo
	echo "$title"
	printf '%-13s %8s' target clients
	printf ' %10s %10s %10s %10s\n' tps "/ pgbouncer" "CPU us" "RSS MB"
	for n in "$@"; do
		for t in "${TARGETS[@]}"; do
			local rss=- cpu=- ratio
			[ -n "${TPS[$t,$n]:-}" ] || continue
			ratio=$(awk -v a="${TPS[$t,$n]}" -v b="${TPS[pgbouncer,$n]}" \
				'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
			if [ "$t" != direct ]; then
				cpu=${CPU[$t,$n]}
				rss=$(awk -v k="${RSS[$t,$n]}" 'BEGIN { printf "%.1f", k / 1024 }')
			fi
			printf '%-13s %8s %10.0f %10s %10s %10s\n' "$t" "$n" "${TPS[$t,$n]}" "$ratio" \
				"$cpu" "$rss"
		done
	done
}
# shellcheck disable=SC2086
table "pgbench -S -M simple, $SECS s per run, pool size $POOL, scale $SCALE; $(nproc) cores" \
	$CLIENTS_LIST
# shellcheck disable=SC2086
table "many connections (same runs, pool size $POOL)" $CONNS_LIST
