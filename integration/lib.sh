# shellcheck shell=bash
# Helpers for pgshard's shell tests; source it:  . integration/lib.sh
#
#   wait_port HOST PORT SECS        0 once HOST:PORT accepts TCP connections, 1 after SECS (may be 0.5)
#   pgshard_start DIR BINARY [ARGS] start BINARY -c DIR/pgshard.ini [ARGS] in the background
#                                   (cwd DIR, output to DIR/pgshard.log, pid in DIR/pgshard.pid);
#                                   waits up to PGSHARD_START_TIMEOUT (10) s for PGSHARD_PORT
#                                   from DIR/env.sh; on failure prints the log tail, returns 1
#   pgshard_stop DIR                SIGTERM, up to PGSHARD_STOP_TIMEOUT (5) s, then SIGKILL;
#                                   sets PGSHARD_EXIT to the exit status when it can know it
#   cluster_discard DIR TOP KEEP    stop the cluster.sh cluster in DIR; with KEEP=1 say where it
#                                   and its data directory are kept, else remove TOP (which holds
#                                   DIR) and the data directory DIR/data links to (/tmp/pgshard-*)
#   t_pass NAME / t_fail NAME MSG   record a test result (prints "ok - NAME" / "not ok - NAME: MSG")
#   t_summary                       prints one final line "N passed, N failed"; non-zero on failures
#   usage / die MSG / log MSG       a script's usage (its header comment, to stderr, exit 2), its
#                                   error (exit 1) and its progress lines, named after its file
#                                   (bench_tpcb.sh: "bench_tpcb: ..."); a script that wants
#                                   others defines its own after sourcing this file
#   positive_ints NAME:VAR ...      die unless each VAR holds a positive integer (--NAME names it)
#
# Works under `set -euo pipefail`; does not change shell options.

T_PASSED=${T_PASSED:-0}
T_FAILED=${T_FAILED:-0}
PGSHARD_EXIT=${PGSHARD_EXIT:-}
SCRIPT_NAME=${0##*/}
SCRIPT_NAME=${SCRIPT_NAME%.sh}

usage() {
	awk 'NR == 1 { next } !/^#/ { exit } { sub(/^# ?/, ""); print }' "$0" >&2
	exit 2
}
die() {
	printf '%s: error: %s\n' "$SCRIPT_NAME" "$*" >&2
	exit 1
}
log() { printf '%s: %s\n' "$SCRIPT_NAME" "$*"; }

positive_ints() { # NAME:VAR ...
	local v var
	for v in "$@"; do
		var=${v#*:}
		[[ ${!var} =~ ^[1-9][0-9]*$ ]] || die "--${v%%:*} must be a positive integer (got '${!var}')"
	done
}

cluster_discard() { # DIR TOP KEEP
	local dir=$1 top=$2 keep=$3 data
	"$(dirname "${BASH_SOURCE[0]}")/cluster.sh" stop "$dir" >/dev/null 2>&1 || true
	data=$(readlink "$dir/data" 2>/dev/null || true)
	if [ "$keep" = 1 ]; then
		printf '%s: kept %s%s\n' "${0##*/}" "$top" "${data:+ and $data}"
	else
		case $data in /tmp/pgshard-*) rm -rf -- "$data" ;; esac
		rm -rf -- "$top"
	fi
}

wait_port() { # HOST PORT SECS
	local host=$1 port=$2 secs=$3 deadline
	deadline=$(($(date +%s%N) / 1000000 + $(awk -v s="$secs" 'BEGIN { printf "%d", s * 1000 }')))
	while :; do
		if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
			return 0
		fi
		[ $(($(date +%s%N) / 1000000)) -lt "$deadline" ] || return 1
		sleep 0.05
	done
}

# True while PID exists and is not a zombie.
_pgshard_alive() {
	local state
	[ -r "/proc/$1/stat" ] || return 1
	state=$({ awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$1/stat"; } 2>/dev/null) || return 1
	[ -n "$state" ] && [ "$state" != Z ]
}

pgshard_stop() { # DIR
	local dir=$1 pid i rc
	local pidfile=$dir/pgshard.pid
	PGSHARD_EXIT=
	[ -s "$pidfile" ] || return 0
	pid=$(cat "$pidfile")
	if [[ $pid =~ ^[0-9]+$ ]]; then
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < ${PGSHARD_STOP_TIMEOUT:-5} * 20; i++)); do
			_pgshard_alive "$pid" || break
			sleep 0.05
		done
		if _pgshard_alive "$pid"; then
			echo "pgshard_stop: pid $pid ignored SIGTERM for ${PGSHARD_STOP_TIMEOUT:-5} s, sending SIGKILL" >&2
			kill -KILL "$pid" 2>/dev/null || true
		fi
		# Reap it when it is our child (otherwise wait fails at once: not our child).
		rc=0
		wait "$pid" 2>/dev/null || rc=$?
		if [ "$rc" -ne 127 ]; then PGSHARD_EXIT=$rc; fi
	fi
	rm -f "$pidfile"
	return 0
}

pgshard_start() { # DIR BINARY [extra args]
	if [ $# -lt 2 ]; then
		echo "usage: pgshard_start DIR BINARY [ARGS...]" >&2
		return 2
	fi
	local dir=$1 bin=$2 port pid i
	shift 2
	dir=$(realpath -- "$dir") || return 1
	if [ ! -f "$dir/pgshard.ini" ] || [ ! -f "$dir/env.sh" ]; then
		echo "pgshard_start: $dir has no pgshard.ini / env.sh (run integration/cluster.sh start $dir)" >&2
		return 1
	fi
	case $bin in */*) bin=$(realpath -- "$bin") || return 1 ;; esac
	if ! command -v "$bin" >/dev/null 2>&1 || [ -d "$bin" ]; then
		echo "pgshard_start: $bin is not an executable" >&2
		return 1
	fi
	port=$(
		# shellcheck disable=SC1091
		. "$dir/env.sh" && echo "$PGSHARD_PORT"
	)
	pgshard_stop "$dir"
	if wait_port 127.0.0.1 "$port" 0; then
		echo "pgshard_start: port $port is already in use" >&2
		return 1
	fi
	(cd "$dir" && exec "$bin" -c "$dir/pgshard.ini" "$@") </dev/null >"$dir/pgshard.log" 2>&1 &
	pid=$!
	echo "$pid" >"$dir/pgshard.pid"
	for ((i = 0; i < ${PGSHARD_START_TIMEOUT:-10} * 20; i++)); do
		if wait_port 127.0.0.1 "$port" 0; then
			return 0
		fi
		if ! _pgshard_alive "$pid"; then
			local rc=0
			wait "$pid" 2>/dev/null || rc=$?
			echo "pgshard_start: $bin exited (status $rc) before listening on $port; log tail:" >&2
			tail -n 30 "$dir/pgshard.log" >&2 || true
			rm -f "$dir/pgshard.pid"
			return 1
		fi
		sleep 0.05
	done
	echo "pgshard_start: $bin not listening on 127.0.0.1:$port after ${PGSHARD_START_TIMEOUT:-10} s; log tail:" >&2
	tail -n 30 "$dir/pgshard.log" >&2 || true
	pgshard_stop "$dir"
	return 1
}

t_pass() { # NAME
	T_PASSED=$((T_PASSED + 1))
	printf 'ok - %s\n' "$1"
}

t_fail() { # NAME MSG
	T_FAILED=$((T_FAILED + 1))
	printf 'not ok - %s: %s\n' "$1" "${2:-}"
}

t_summary() {
	printf '%d passed, %d failed\n' "$T_PASSED" "$T_FAILED"
	[ "$T_FAILED" -eq 0 ]
}

cpu_ticks() { # PID -> utime+stime of the whole process (all threads), in clock ticks
	local f
	f=$(cat "/proc/$1/stat" 2>/dev/null) || {
		echo 0
		return
	}
	f=${f##*) }
	# shellcheck disable=SC2086
	set -- $f
	echo $((${12} + ${13}))
}
