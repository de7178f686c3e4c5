#!/usr/bin/env bash
# The README's test command: installs what is missing, builds pgshard twice
# (optimized, and with AddressSanitizer + UndefinedBehaviorSanitizer), runs
# the unit tests in both builds, then each libFuzzer target for a short fixed
# time (integration/fuzz.sh: one count per target; a target that does not
# build counts as failed), then the integration suites against a real local
# cluster through the sanitizer build, then the compose demo in containers
# (integration/compose_test.sh: podman; a machine where containers cannot run
# counts as one failure, said loudly), and prints one closing line
# "N passed, N failed" over everything.
#
#   integration/test.sh [--skip-install] [--unit-only]
#
# FUZZ_SECONDS (default 10) is each fuzz target's time here; the long run is
# integration/fuzz.sh --seconds 600.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

skip_install=0
unit_only=0
for arg in "$@"; do
	case $arg in
	--skip-install) skip_install=1 ;;
	--unit-only) unit_only=1 ;;
	*)
		echo "usage: integration/test.sh [--skip-install] [--unit-only]" >&2
		exit 2
		;;
	esac
done

[ $skip_install = 1 ] || integration/install-deps.sh

passed=0
failed=0

# ctest prints "N% tests passed, F tests failed out of T"
run_ctest() {
	local dir=$1 out line total fails
	out=$(cd "$dir" && ctest --output-on-failure 2>&1) || true
	printf '%s\n' "$out"
	line=$(printf '%s\n' "$out" | grep -E 'tests passed, [0-9]+ tests failed out of [0-9]+' | tail -1)
	if [ -z "$line" ]; then
		echo "test: no ctest summary in $dir" >&2
		failed=$((failed + 1))
		return
	fi
	total=$(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"$line")
	fails=$(sed -E 's/.* ([0-9]+) tests failed.*/\1/' <<<"$line")
	passed=$((passed + total - fails))
	failed=$((failed + fails))
}

build() {
	local dir=$1
	shift
	cmake -S . -B "$dir" "$@" >/dev/null
	cmake --build "$dir" -j"$(nproc)" -- --no-print-directory 2>&1 | grep -vE '^\[|^Consolidate|^Built target' || true
	[ -x "$dir/pgshard" ] || {
		echo "test: build in $dir failed" >&2
		exit 1
	}
}

echo "== build (RelWithDebInfo) and unit tests"
build build -DCMAKE_BUILD_TYPE=RelWithDebInfo
run_ctest build

echo "== build (ASan + UBSan) and unit tests"
build build-asan -DCMAKE_BUILD_TYPE=Debug -DPGSHARD_SANITIZE=ON
run_ctest build-asan

echo "== fuzz targets (${FUZZ_SECONDS:-10} s each)"
fuzz_out=$(mktemp)
set +e
integration/fuzz.sh --seconds "${FUZZ_SECONDS:-10}" 2>&1 | tee "$fuzz_out"
fuzz_rc=${PIPESTATUS[0]}
set -e
fuzz_line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$fuzz_out" | tail -1 || true)
rm -f "$fuzz_out"
fuzz_failed=0
if [ -n "$fuzz_line" ]; then
	fuzz_failed=$(sed -E 's/.* ([0-9]+) failed$/\1/' <<<"$fuzz_line")
	passed=$((passed + $(sed -E 's/^([0-9]+) passed.*/\1/' <<<"$fuzz_line")))
	failed=$((failed + fuzz_failed))
fi
if [ "$fuzz_rc" != 0 ] && [ "$fuzz_failed" = 0 ]; then
	echo "test: fuzz run exited $fuzz_rc" >&2
	failed=$((failed + 1))
fi

if [ $unit_only = 0 ]; then
	echo "== integration tests (sanitizer build)"
	out_file=$(mktemp)
	set +e
	integration/integration.sh "$ROOT/build-asan/pgshard" 2>&1 | tee "$out_file"
	rc=${PIPESTATUS[0]}
	set -e
	line=$(grep -E '^(integration: )?[0-9]+ passed, [0-9]+ failed' "$out_file" | tail -1)
	rm -f "$out_file"
	if [ -n "$line" ]; then
		p=$(sed -E 's/^[^0-9]*([0-9]+) passed.*/\1/' <<<"$line")
		f=$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")
		passed=$((passed + p))
		failed=$((failed + f))
	fi
	if [ "$rc" != 0 ] && { [ -z "$line" ] || [ "${f:-0}" = 0 ]; }; then
		echo "test: integration run exited $rc" >&2
		failed=$((failed + 1))
	fi
fi

if [ $unit_only = 0 ]; then
	echo "== compose demo in containers (integration/compose_test.sh)"
	out_file=$(mktemp)
	compose_args=()
	[ $skip_install = 0 ] || compose_args=(--skip-install)
	set +e
	integration/compose_test.sh "${compose_args[@]}" 2>&1 | tee "$out_file"
	rc=${PIPESTATUS[0]}
	set -e
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out_file" | tail -1 || true)
	rm -f "$out_file"
	if [ "$rc" = 77 ]; then
		# compose_test.sh said why above; a test that could not run is not a pass.
		echo "test: THE COMPOSE DEMO WAS NOT TESTED: containers cannot run here (exit 77), counted as failed" >&2
		failed=$((failed + 1))
	else
		f=0
		if [ -n "$line" ]; then
			p=$(sed -E 's/^([0-9]+) passed.*/\1/' <<<"$line")
			f=$(sed -E 's/.* ([0-9]+) failed$/\1/' <<<"$line")
			passed=$((passed + p))
			failed=$((failed + f))
		fi
		if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
			echo "test: compose test exited $rc" >&2
			failed=$((failed + 1))
		fi
	fi
fi

echo
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
