#!/usr/bin/env bash
# Integration tests: a real local cluster (3 shards, each a primary with a
# streaming replica, SCRAM between pgshard and PostgreSQL), pgshard in front
# (SCRAM between clients and pgshard, pool_size 4), then every suite in
# integration/tests with real clients. Ends with "N passed, N failed".
# The servers run under the en_US.UTF-8 locale when the system has it (install-deps.sh
# generates it), so that text sorts by a real collation, not bytewise (the gather suite
# compares ORDER BY on text with one PostgreSQL); otherwise under cluster.sh's default.
#
#   integration/integration.sh PGSHARD_BINARY
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${1:?usage: integration/integration.sh PGSHARD_BINARY}
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
DIR=$ROOT/.cluster/test
# shellcheck source=integration/lib.sh
. "$ROOT/integration/lib.sh"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=86}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:exitcode=87}

cleanup() {
	pgshard_stop "$DIR" >/dev/null 2>&1 || true
	"$ROOT/integration/cluster.sh" stop "$DIR" >/dev/null 2>&1 || true
}
trap cleanup EXIT

locale_args=()
if locale -a 2>/dev/null | grep -qix 'en_us\.utf-\{0,1\}8'; then
	locale_args=(--locale en_US.UTF-8)
else
	echo "integration: no en_US.UTF-8 locale (run integration/install-deps.sh); text sorts by cluster.sh's default"
fi
"$ROOT/integration/cluster.sh" start "$DIR" --shards 3 --replicas 1 --port 5460 \
	--auth scram-sha-256 --proxy-port 6434 --pool-size 4 "${locale_args[@]}" || {
	echo "integration: cluster did not start"
	echo "0 passed, 1 failed"
	exit 1
}
pgshard_start "$DIR" "$BIN" || {
	echo "integration: pgshard did not start"
	echo "0 passed, 1 failed"
	exit 1
}

# shellcheck source=/dev/null
. "$DIR/env.sh"
export PGHOST=127.0.0.1 PGPORT=$PGSHARD_PORT PGUSER=app PGPASSWORD=app-secret PGDATABASE=app
export PGSHARD_DIR=$DIR PGSHARD_BIN=$BIN

total_pass=0
total_fail=0
suite() {
	local name=$1 out line p f rc
	shift
	echo "---- $name"
	out=$(timeout 600 "$@" 2>&1)
	rc=$?
	printf '%s\n' "$out" | sed 's/^/  /'
	line=$(printf '%s\n' "$out" | grep -E '^[^ ]*[0-9]+ passed, [0-9]+ failed' | tail -1)
	if [ -z "$line" ]; then
		echo "  $name: no summary line (exit $rc)"
		total_fail=$((total_fail + 1))
		return
	fi
	p=$(sed -E 's/^[^0-9]*([0-9]+) passed.*/\1/' <<<"$line")
	f=$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
	if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
		echo "  $name: exit $rc with no failed test"
		total_fail=$((total_fail + 1))
	fi
}

suite "clients (psql, pgbench, psycopg2, node-postgres, raw protocol)" \
	"$ROOT/integration/tests/run-all.sh" "pgshard"
suite "proxy behaviour (auth, reload, backend loss, config errors)" \
	"$ROOT/integration/tests/test_proxy.sh"
# Prepared transactions left by a "crashed" pgshard, made directly on the shards; pgshards of
# its own (ports PGSHARD_PORT+30..+39) with recovery_interval = 500 finish them.
suite "two-phase commit recovery" \
	/usr/bin/python3 "$ROOT/integration/tests/test_recovery.py"

# Mutated recordings of real sessions, a fixed 45 s budget and seed; a well-behaved client
# checks its answers meanwhile. Longer: integration/fuzz_sessions.py --sessions 100000
suite "session fuzzer (45 s, seed 1)" \
	/usr/bin/python3 "$ROOT/integration/fuzz_sessions.py" --seconds 45 --seed 1

# The sanitizer build reports memory errors and leaks when pgshard exits.
echo "---- pgshard exit"
pgshard_stop "$DIR"
if [ "${PGSHARD_EXIT:-0}" = 0 ]; then
	if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$DIR/pgshard.log"; then
		echo "  sanitizer report in $DIR/pgshard.log:"
		grep -E -A 30 'AddressSanitizer|LeakSanitizer|runtime error:' "$DIR/pgshard.log" | head -60
		total_fail=$((total_fail + 1))
	else
		echo "  clean exit, no sanitizer report"
		total_pass=$((total_pass + 1))
	fi
else
	echo "  pgshard exited with status $PGSHARD_EXIT; log tail:"
	tail -40 "$DIR/pgshard.log"
	total_fail=$((total_fail + 1))
fi

echo "integration: $total_pass passed, $total_fail failed"
[ "$total_fail" = 0 ]
