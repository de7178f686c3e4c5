#!/usr/bin/env bash
# Streaming benchmark for multi-shard SELECTs: `SELECT * FROM t` over 5,000,000 rows spread over
# 3 shards must stream through pgshard (bounded memory), at a throughput printed next to psql
# reading the same rows from one plain PostgreSQL directly. Not part of CI (a few minutes).
#
#   integration/bench_gather.sh [PGSHARD_BINARY] [--rows N] [--rounds R] [--query SQL] [--keep]
#
# PGSHARD_BINARY defaults to build/pgshard. --rows (default 5000000), --rounds (default 2:
# direct and pgshard run alternately, R times each). --query replaces 'SELECT * FROM t' (e.g.
# 'SELECT * FROM t ORDER BY id' for a sorted merge; it must return every row of t once).
# --keep leaves the servers' data and logs.
# What it does: starts a 3-shard cluster (integration/cluster.sh, no replicas, ports 5900,
# 5910, 5920, pgshard on 6900, trust auth) whose pgshard.ini also shards table t by id on the
# "bench" hash map, and a plain PostgreSQL (port 5950, same locale) that holds all the rows.
# t (bigint id, int n, text s of ~20 bytes, numeric amount, timestamptz at) is filled on the
# plain server with generate_series, then copied through pgshard (COPY t TO STDOUT | COPY t
# FROM STDIN: pgshard splits the rows by key). A fresh pgshard process serves the measurement:
# `psql -X -A -t -c 'SELECT * FROM t'` (psql's default fetch: the whole result at once; its
# output is counted by wc, not kept) against the plain server and through pgshard.
# Prints rows/s and MB/s (of psql's output) for each, the ratio, and pgshard's peak RSS
# (VmHWM from /proc/PID/status). Exits non-zero when pgshard's peak RSS reaches 64 MiB, or
# when the rows or bytes read through pgshard differ from the direct ones.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$HERE/lib.sh"

now_ms() { echo $(($(date +%s%N) / 1000000)); }

BIN=$ROOT/build/pgshard ROWS=5000000 ROUNDS=2 KEEP=0 QUERY='SELECT * FROM t'
while [ $# -gt 0 ]; do
	case $1 in
	-h | --help) usage ;;
	--keep) KEEP=1 ;;
	--query)
		[ $# -ge 2 ] || die "option $1 needs a value"
		QUERY=$2
		shift
		;;
	--rows | --rounds)
		[ $# -ge 2 ] || die "option $1 needs a value"
		[[ $2 =~ ^[1-9][0-9]*$ ]] || die "$1 must be a positive integer"
		if [ "$1" = --rows ]; then ROWS=$2; else ROUNDS=$2; fi
		shift
		;;
	-*) die "unknown option $1" ;;
	*) BIN=$1 ;;
	esac
	shift
done
[ -x "$BIN" ] || die "no pgshard binary at $BIN (build it, or give its path)"
BIN=$(realpath "$BIN")
[ "$(id -u)" -eq 0 ] || die "run as root (servers run as the postgres OS user)"
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PSQL=$PGBIN/psql
BASE=5900 PROXY_PORT=6900 REF_PORT=5950
MAX_RSS_KB=$((64 * 1024))
for p in $BASE $((BASE + 10)) $((BASE + 20)) $PROXY_PORT $REF_PORT; do
	if ss -Hltn "( sport = :$p )" 2>/dev/null | grep -q .; then die "port $p is in use"; fi
done

# The caller's libpq variables must not steer our clients.
unset PGHOST PGPORT PGUSER PGPASSWORD PGDATABASE PGSERVICE PGOPTIONS

TMP=$(mktemp -d /tmp/pgshard-bgather.XXXXXX)
chmod 755 "$TMP"
CL=$TMP/cluster
REF=$TMP/ref
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	pgshard_stop "$CL" >/dev/null 2>&1 || true
	if [ -f "$REF/postmaster.pid" ]; then
		runuser -u postgres -- "$PGBIN/pg_ctl" -D "$REF" -m fast -w stop >/dev/null 2>&1 || true
	fi
	cluster_discard "$CL" "$TMP" "$KEEP"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

t0=$(now_ms)
log "starting 3 shards (ports $BASE, $((BASE + 10)), $((BASE + 20))) and a plain server (port $REF_PORT)"
"$HERE/cluster.sh" start "$CL" --shards 3 --replicas 0 --port $BASE --proxy-port $PROXY_PORT \
	>"$TMP/cluster.log" 2>&1 || {
	cat "$TMP/cluster.log" >&2
	die "cluster did not start"
}
printf '\n; integration/bench_gather.sh\n[table.t]\nkey = id\nmap = bench\n' >>"$CL/pgshard.ini"
LOCALE=$(sed -n "s/^export PGSHARD_LOCALE='\(.*\)'$/\1/p" "$CL/env.sh")
mkdir -p "$REF" && chown postgres: "$REF"
runuser -u postgres -- "$PGBIN/initdb" -D "$REF" -U postgres -A trust --no-sync -E UTF8 \
	--locale="${LOCALE:-C.UTF-8}" >"$TMP/initdb.log" 2>&1 || die "initdb failed (see $TMP/initdb.log)"
cat >>"$REF/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $REF_PORT
unix_socket_directories = '$REF'
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$REF" -l "$REF/server.log" -w -t 60 start >/dev/null ||
	die "the plain server did not start (see $REF/server.log)"

direct() { "$PSQL" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p $REF_PORT -U postgres -d postgres "$@"; }
proxy() { PGPASSWORD=app-secret "$PSQL" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p $PROXY_PORT -U app -d app "$@"; }

pgshard_start "$CL" "$BIN" || die "pgshard did not start"
DDL="CREATE TABLE t (id bigint PRIMARY KEY, n int, s text, amount numeric(12, 2), at timestamptz)"
direct -c "$DDL"
proxy -c "$DDL"
log "filling t with $ROWS rows on the plain server"
direct -c "INSERT INTO t SELECT i, (i * 7) % 1000, 'row ' || lpad(i::text, 10, '0') || ' xyzw',
	(i % 100000) / 100.0, timestamptz '2024-01-01 00:00+00' + i * interval '1 second'
	FROM generate_series(1, $ROWS) i" -c "VACUUM ANALYZE t"
log "copying the rows through pgshard (COPY split by key)"
tc=$(now_ms)
direct -c "COPY t TO STDOUT" | proxy -c "COPY t FROM STDIN"
log "copied in $((($(now_ms) - tc) / 1000)) s; rows per shard:"
for i in 0 1 2; do
	n=$("$PSQL" -X -q -A -t -h "$(readlink "$CL/data")/sock" -p $((BASE + 10 * i)) -U postgres -d app \
		-c "VACUUM ANALYZE t" -c "SELECT count(*) FROM t")
	log "  shard $i: $n"
done
# A fresh proxy for the measurement: its peak RSS is the SELECTs' alone.
pgshard_stop "$CL"
pgshard_start "$CL" "$BIN" || die "pgshard did not restart"
PID=$(cat "$CL/pgshard.pid")
log "setup took $((($(now_ms) - t0) / 1000)) s; measuring (pgshard pid $PID)"

declare -A MS=() RUNS=()
want_lines='' want_bytes='' bad=0
# run TARGET: one timed SELECT * through psql; output counted, not kept.
run() {
	local target=$1 t1 t2 counts lines bytes
	t1=$(now_ms)
	if [ "$target" = direct ]; then
		counts=$(direct -A -t -c "$QUERY" | wc -lc)
	else
		counts=$(proxy -A -t -c "$QUERY" | wc -lc)
	fi
	t2=$(now_ms)
	read -r lines bytes <<<"$counts"
	MS[$target]=$((${MS[$target]:-0} + t2 - t1))
	RUNS[$target]=$((${RUNS[$target]:-0} + 1))
	BYTES=$bytes
	printf 'bench_gather:   %-8s %9d rows %11d bytes in %6d ms: %10.0f rows/s %7.1f MB/s\n' "$target" \
		"$lines" "$bytes" $((t2 - t1)) "$(awk -v n="$lines" -v ms=$((t2 - t1)) 'BEGIN { print n * 1000 / ms }')" \
		"$(awk -v b="$bytes" -v ms=$((t2 - t1)) 'BEGIN { print b / 1e6 * 1000 / ms }')"
	if [ "$target" = direct ]; then
		want_lines=$lines want_bytes=$bytes
		if [ "$lines" -ne "$ROWS" ]; then
			log "direct read $lines rows, want $ROWS"
			bad=1
		fi
	elif [ "$lines" -ne "$ROWS" ] || [ "$bytes" != "$want_bytes" ]; then
		log "pgshard read $lines rows / $bytes bytes, direct $want_lines rows / $want_bytes bytes"
		bad=1
	fi
}
for ((r = 1; r <= ROUNDS; r++)); do
	run direct
	run pgshard
	_pgshard_alive "$PID" || die "pgshard died during the run (log: $CL/pgshard.log)"
done

hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$PID/status")
rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$PID/status")
rate() { awk -v n="$1" -v ms="$2" -v runs="$3" 'BEGIN { printf "%.0f", n * runs * 1000 / ms }'; }
dr=$(rate "$ROWS" "${MS[direct]}" "${RUNS[direct]}")
pr=$(rate "$ROWS" "${MS[pgshard]}" "${RUNS[pgshard]}")
db=$(awk -v b="$BYTES" -v ms="${MS[direct]}" -v runs="${RUNS[direct]}" 'BEGIN { printf "%.1f", b * runs / 1e6 * 1000 / ms }')
pb=$(awk -v b="$BYTES" -v ms="${MS[pgshard]}" -v runs="${RUNS[pgshard]}" 'BEGIN { printf "%.1f", b * runs / 1e6 * 1000 / ms }')
echo
printf '%s, %d rows, %d round(s), psql -A -t (default fetch: whole result)\n' "$QUERY" "$ROWS" "$ROUNDS"
printf '%-24s | %12s | %8s\n' target "rows/s" "MB/s"
printf '%-24s | %12s | %8s\n' "direct (1 server)" "$dr" "$db"
printf '%-24s | %12s | %8s\n' "pgshard (3 shards)" "$pr" "$pb"
printf 'pgshard/direct: %s\n' "$(awk -v a="$pr" -v b="$dr" 'BEGIN { printf "%.2f", a / b }')"
printf 'pgshard peak RSS (VmHWM): %d kB = %.1f MiB (limit %d MiB); RSS now %d kB\n' "$hwm" \
	"$(awk -v k="$hwm" 'BEGIN { print k / 1024 }')" $((MAX_RSS_KB / 1024)) "$rss"
if [ "$hwm" -ge $MAX_RSS_KB ]; then
	log "FAIL: pgshard's peak RSS is 64 MiB or more: the rows are not streamed"
	bad=1
fi
if [ $bad = 0 ]; then log "ok"; else log "FAILED"; fi
exit $bad
