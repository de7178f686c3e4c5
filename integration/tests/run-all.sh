#!/usr/bin/env bash
# Runs every end-to-end suite against the target in the environment
# (PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE; e.g. `. DIR/env.sh` after cluster.sh start,
# with PGPORT=$PGSHARD_PORT to go through pgshard).
#
#   integration/tests/run-all.sh TARGET_DESCRIPTION
#
# Each suite runs under its own time limit. Its output is shown prefixed with its name, then
# one result line per suite, then exactly "N passed, N failed" summed over all suites (from
# each suite's own final "N passed, N failed" line). A suite that times out, crashes or prints
# no summary counts as one failure. Exit status is non-zero if anything failed.
# E2E_SUITES="psycopg2 protocol ..." runs a subset.
set -u
export PGCONNECT_TIMEOUT="${PGCONNECT_TIMEOUT:-10}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
target="${1:-${PGHOST:-localhost}:${PGPORT:-5432}}"
python=/usr/bin/python3
[ -x "$python" ] || python=python3

# name, time limit in seconds, command
suites=(
    "psycopg2|300|$python $here/test_psycopg2.py"
    "protocol|300|$python $here/test_protocol.py"
    "node|300|$here/run_node.sh"
    "psql|180|$here/test_psql.sh"
    "pgbench|900|$here/test_pgbench.sh"
    "routing|300|$python $here/test_routing.py"
    "pgbench_routing|900|$python $here/test_pgbench_routing.py"
    "gather|600|$python $here/test_gather.py"
    "joins|600|$python $here/test_joins.py"
    "scatter|300|$python $here/test_scatter.py"
    "robust|300|$python $here/test_robust.py"
    "twophase|300|$python $here/test_twophase.py"
    "deadlock|300|$python $here/test_deadlock.py"
    "move|300|$python $here/test_move.py"
    "cursors|300|$python $here/test_cursors.py"
    "insert_select|300|$python $here/test_insert_select.py"
    "verify|300|$python $here/test_verify.py"
    "admin|300|$python $here/test_admin.py"
    "lifecycle|300|$python $here/test_lifecycle.py"
    "metrics|300|$python $here/test_metrics.py"
    "replicas|300|$python $here/test_replicas.py"
    "apps|600|$python $here/test_apps.py"
)
wanted="${E2E_SUITES:-psycopg2 protocol node psql pgbench routing pgbench_routing gather joins scatter robust twophase deadlock move cursors insert_select verify admin lifecycle metrics replicas apps}"

logdir="$(mktemp -d)"
trap 'rm -rf "$logdir"' EXIT
total_pass=0 total_fail=0 results=()

echo "end-to-end tests against $target (PGHOST=${PGHOST:-} PGPORT=${PGPORT:-} PGUSER=${PGUSER:-} PGDATABASE=${PGDATABASE:-})"
for entry in "${suites[@]}"; do
    IFS='|' read -r name limit cmd <<<"$entry"
    case " $wanted " in *" $name "*) ;; *) continue ;; esac
    log="$logdir/$name.log"
    echo "=== suite $name (limit ${limit}s)"
    start=$(date +%s)
    # shellcheck disable=SC2086 # cmd is a command line
    timeout -k 10 "$limit" $cmd </dev/null >"$log" 2>&1
    status=$?
    secs=$(( $(date +%s) - start ))
    sed "s/^/  [$name] /" "$log"
    summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
    if [ -n "$summary" ]; then
        pass=${summary%% passed*}
        fail=${summary#*passed, }; fail=${fail%% failed*}
    else
        pass=0 fail=0
    fi
    note=""
    if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
        note=" (timed out after ${limit}s)"
        fail=$((fail + 1))
    elif [ -z "$summary" ]; then
        note=" (no summary line, exit status $status)"
        fail=$((fail + 1))
    elif [ "$status" -ne 0 ] && [ "$fail" -eq 0 ]; then
        note=" (exit status $status)"
        fail=1
    fi
    total_pass=$((total_pass + pass))
    total_fail=$((total_fail + fail))
    results+=("suite $name: $pass passed, $fail failed in ${secs}s$note")
done

echo "=== results against $target"
for r in "${results[@]}"; do echo "$r"; done
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
