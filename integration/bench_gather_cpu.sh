#!/usr/bin/env bash
# pgshard's CPU time per multi-shard SELECT (routing, gather planning, merging) or per join
# across shards, for one or more pgshard binaries run alternately against the same cluster:
# e.g. a build before and after a change. Not part of CI; numbers are printed, never asserted.
#
#   integration/bench_gather_cpu.sh DIR BINARY [BINARY...] [--seconds S] [--rounds R]
#                                   [--clients C] [--mode simple|extended|prepared]
#                                   [--query gather|join]
#
# DIR is a cluster from `integration/cluster.sh start DIR` (its pgbench tables sharded on
# several shards; any ports), with no pgshard running on DIR's port. Defaults: 10 seconds,
# 2 rounds, 4 clients (2 pgbench threads), simple protocol. pgbench's tables are (re)loaded at
# scale 1 through the first binary. Each run starts a fresh pgshard (one worker), runs 1 s of
# warm-up, then pgbench -T S with a script of three multi-shard SELECTs on pgbench_accounts:
#   a sorted merge whose literals change every time (WHERE aid BETWEEN :a AND :a + 30 ...
#     ORDER BY abalance DESC, aid LIMIT 5),
#   a sorted merge sent identically every time (... WHERE aid < 40 ORDER BY aid DESC LIMIT 3),
#   partial aggregates finished by a final query (GROUP BY bid with count, sum, avg over
#     WHERE aid BETWEEN :a AND :a + 30),
# and reads pgshard's utime+stime from /proc/PID/stat before and after. --query join runs one
# statement instead, a join across shards (accounts by an aid range, their branches by bid:
# the accounts are fetched from every shard they are on, then the branches probed by key):
#   SELECT ... FROM pgbench_accounts a JOIN pgbench_branches b ON b.bid = a.bid
#     WHERE a.aid BETWEEN :a AND :a + 30
# Prints, per binary and round, the statements per second and pgshard's CPU microseconds per
# statement.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$HERE/lib.sh"

log() { printf '%s: %s\n' "$SCRIPT_NAME" "$*" >&2; } # its progress goes to stderr

DIR='' BINS=() SECONDS_=10 ROUNDS=2 CLIENTS=4 MODE=simple QUERY=gather
while [ $# -gt 0 ]; do
	case $1 in
	-h | --help) usage ;;
	--seconds | --rounds | --clients)
		[ $# -ge 2 ] || die "option $1 needs a value"
		[[ $2 =~ ^[1-9][0-9]*$ ]] || die "$1 must be a positive integer"
		case $1 in
		--seconds) SECONDS_=$2 ;;
		--rounds) ROUNDS=$2 ;;
		--clients) CLIENTS=$2 ;;
		esac
		shift
		;;
	--mode)
		[ $# -ge 2 ] || die "option $1 needs a value"
		case $2 in simple | extended | prepared) MODE=$2 ;; *) die "--mode: simple, extended or prepared" ;; esac
		shift
		;;
	--query)
		[ $# -ge 2 ] || die "option $1 needs a value"
		case $2 in gather | join) QUERY=$2 ;; *) die "--query: gather or join" ;; esac
		shift
		;;
	-*) die "unknown option $1" ;;
	*)
		if [ -z "$DIR" ]; then DIR=$1; else BINS+=("$(realpath "$1")"); fi
		;;
	esac
	shift
done
[ -n "$DIR" ] && [ ${#BINS[@]} -gt 0 ] || usage
[ -f "$DIR/env.sh" ] || die "$DIR has no env.sh (integration/cluster.sh start $DIR)"
for b in "${BINS[@]}"; do [ -x "$b" ] || die "no pgshard binary at $b"; done
# shellcheck disable=SC1091
. "$DIR/env.sh"
export PGPORT=$PGSHARD_PORT
PGBENCH=$(command -v pgbench || echo "$PGBIN/pgbench")
TMP=$(mktemp -d /tmp/pgshard-bgcpu.XXXXXX)
trap 'pgshard_stop "$DIR" >/dev/null 2>&1 || true; rm -rf "$TMP"' EXIT


if [ "$QUERY" = join ]; then
	cat >"$TMP/script.sql" <<'EOF'
\set a random(1, 99000)
SELECT a.aid, a.abalance, b.bbalance FROM pgbench_accounts a JOIN pgbench_branches b ON b.bid = a.bid WHERE a.aid BETWEEN :a AND :a + 30;
EOF
	STMTS=1
else
	cat >"$TMP/script.sql" <<'EOF'
\set a random(1, 99000)
SELECT aid, abalance FROM pgbench_accounts WHERE aid BETWEEN :a AND :a + 30 ORDER BY abalance DESC, aid LIMIT 5;
SELECT aid FROM pgbench_accounts WHERE aid < 40 ORDER BY aid DESC LIMIT 3;
SELECT bid, count(*), sum(abalance), avg(abalance) FROM pgbench_accounts WHERE aid BETWEEN :a AND :a + 30 GROUP BY bid;
EOF
	STMTS=3
fi

log "loading pgbench tables (scale 1) through ${BINS[0]}"
pgshard_start "$DIR" "${BINS[0]}" >/dev/null || die "pgshard did not start"
"$PGBENCH" -i -q -s 1 >"$TMP/init.log" 2>&1 || {
	cat "$TMP/init.log" >&2
	die "pgbench -i failed"
}
pgshard_stop "$DIR"

clk=$(getconf CLK_TCK)
printf '| binary | round | statements/s | pgshard µs CPU/statement |\n| --- | ---: | ---: | ---: |\n'
for ((r = 1; r <= ROUNDS; r++)); do
	for b in "${BINS[@]}"; do
		pgshard_start "$DIR" "$b" >/dev/null || die "pgshard $b did not start"
		pid=$(cat "$DIR/pgshard.pid")
		"$PGBENCH" -n -f "$TMP/script.sql" -M "$MODE" -c "$CLIENTS" -j 2 -T 1 >/dev/null 2>&1 ||
			die "warm-up failed (see $DIR/pgshard.log)"
		t0=$(cpu_ticks "$pid")
		"$PGBENCH" -n -f "$TMP/script.sql" -M "$MODE" -c "$CLIENTS" -j 2 -T "$SECONDS_" \
			>"$TMP/run.log" 2>&1 || {
			cat "$TMP/run.log" >&2
			die "pgbench failed"
		}
		t1=$(cpu_ticks "$pid")
		pgshard_stop "$DIR"
		n=$(awk '/number of transactions actually processed/ { print $NF }' "$TMP/run.log")
		n=${n%%/*}
		[ -n "$n" ] && [ "$n" -gt 0 ] || die "no transactions (see $TMP/run.log)"
		awk -v b="$b" -v r="$r" -v n="$n" -v s="$SECONDS_" -v k="$STMTS" -v t="$((t1 - t0))" \
			-v clk="$clk" 'BEGIN { printf "| %s | %d | %.0f | %.1f |\n", b, r, n * k / s,
				t * 1e6 / clk / (n * k) }'
	done
done
