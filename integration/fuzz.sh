#!/usr/bin/env bash
# Builds pgshard's libFuzzer targets (fuzz/) with clang into build-fuzz and runs
# each one for a fixed time on a copy of its seed corpus (fuzz/corpus/<target>/;
# the checked-in corpus is never grown). A crash, a sanitizer report, a leak, a
# timeout (-timeout=10) or running out of memory (-rss_limit_mb=2048) fails the
# target, and the path of the input that did it is printed: run the target on
# that file to reproduce (build-fuzz/fuzz/fuzz_copy build-fuzz/fuzz-runs/...).
# The last line is "N passed, N failed", one count per target.
#
#   integration/fuzz.sh                     # every target, 10 s each (the test run)
#   integration/fuzz.sh --seconds 600       # the long run: 10 minutes each
#   FUZZ_BUILD=build-fuzz-long integration/fuzz.sh --seconds 600   # in its own build dir
#   integration/fuzz.sh --seconds 120 fuzz_route copy   # some targets ("fuzz_" optional)
#
# Targets are the fuzz/fuzz_*.c files. Each runs alone (one process, one core).
# fuzz/<name>.dict is used for fuzz_<name> when it exists. Needs clang with
# libFuzzer (Debian: clang, libclang-rt-14-dev; integration/install-deps.sh).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

seconds=10
targets=()
while [ $# -gt 0 ]; do
	case $1 in
	--seconds)
		[ $# -ge 2 ] && [[ $2 =~ ^[0-9]+$ ]] && [ "$2" -gt 0 ] || {
			echo "fuzz: --seconds needs a positive number" >&2
			exit 2
		}
		seconds=$2
		shift 2
		;;
	-h | --help)
		sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	-*)
		echo "usage: integration/fuzz.sh [--seconds N] [TARGET...]" >&2
		exit 2
		;;
	*)
		t=${1#fuzz_}
		targets+=("fuzz_${t%.c}")
		shift
		;;
	esac
done
if [ ${#targets[@]} -eq 0 ]; then
	for f in fuzz/fuzz_*.c; do
		targets+=("$(basename "$f" .c)")
	done
fi
for t in "${targets[@]}"; do
	[ -f "fuzz/$t.c" ] || {
		echo "fuzz: no target $t (fuzz/$t.c)" >&2
		exit 2
	}
done

# The longest input each target is given, in bytes: room for what it parses, small
# enough to keep each run fast. fuzz_route needs more for the depth guard's plain
# nesting (its repeat template reaches deeper from short inputs).
max_len() {
	case $1 in
	fuzz_auth) echo 1024 ;;
	fuzz_rowcmp) echo 1024 ;;
	fuzz_route) echo 8192 ;;
	*) echo 4096 ;;
	esac
}

BUILD=${FUZZ_BUILD:-build-fuzz} # another directory lets a long run go on beside the test run
RUNS=$BUILD/fuzz-runs
passed=0
failed=0

echo "fuzz: building ${targets[*]} in $BUILD (clang, libFuzzer + ASan + UBSan)"
if ! command -v clang >/dev/null 2>&1; then
	echo "fuzz: clang not found (integration/install-deps.sh installs it)" >&2
	echo "0 passed, ${#targets[@]} failed"
	exit 1
fi
for t in "${targets[@]}"; do
	rm -f "$BUILD/fuzz/$t" # a target that no longer builds must not run stale
done
mkdir -p "$BUILD"
if ! cmake -S . -B "$BUILD" -DCMAKE_C_COMPILER=clang -DPGSHARD_FUZZ=ON \
	-DCMAKE_BUILD_TYPE=RelWithDebInfo >"$BUILD/configure.log" 2>&1; then
	cat "$BUILD/configure.log" >&2
	echo "fuzz: configuring $BUILD failed" >&2
	echo "0 passed, ${#targets[@]} failed"
	exit 1
fi
# -k: one target that does not compile does not keep the others from running
cmake --build "$BUILD" -j2 --target "${targets[@]}" -- -k --no-print-directory 2>&1 |
	grep -vE '^\[|^Consolidate|^Built target|^Scanning' || true

mkdir -p "$RUNS"
for t in "${targets[@]}"; do
	bin=$BUILD/fuzz/$t
	if [ ! -x "$bin" ]; then
		echo "FAIL $t: did not build"
		failed=$((failed + 1))
		continue
	fi
	work=$RUNS/$t
	rm -rf "$work"
	mkdir -p "$work/corpus"
	if [ -d "fuzz/corpus/$t" ]; then
		cp -r "fuzz/corpus/$t/." "$work/corpus/"
	fi
	args=(-max_total_time="$seconds" -max_len="$(max_len "$t")" -timeout=10
		-rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$work/")
	dict=fuzz/${t#fuzz_}.dict
	[ -f "$dict" ] && args+=(-dict="$dict")
	echo "== $t: ${seconds}s, $(find "$work/corpus" -type f | wc -l) seeds"
	ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
		"$bin" "${args[@]}" "$work/corpus" >"$work.log" 2>&1
	rc=$?
	artifacts=$(find "$work" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' \
		-o -name 'timeout-*' -o -name 'oom-*' \) | sort)
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work.log" | tail -1)
	if [ $rc -eq 0 ] && [ -z "$artifacts" ]; then
		echo "ok   $t: ${runs:-?} runs, corpus $(find "$work/corpus" -type f | wc -l) inputs"
		passed=$((passed + 1))
	else
		echo "FAIL $t: exit $rc (log: $work.log)"
		grep -E 'ERROR: |property failed|SUMMARY: |runtime error' "$work.log" | head -5 | sed 's/^/     /'
		for a in $artifacts; do
			echo "     reproducer: $a   (run: $bin $a)"
		done
		failed=$((failed + 1))
	fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
