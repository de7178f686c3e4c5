#!/usr/bin/env bash
# Runs the node-postgres end-to-end tests (test_node.js) against the target named by
# PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE, with node's built-in test runner.
# node-postgres comes from integration/node_modules (npm install in integration/) or NODE_PATH.
# Prints the TAP output, then exactly "N passed, N failed"; exits non-zero on any failure.
set -u
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
integration="$(dirname "$here")"
export NODE_PATH="$integration/node_modules${NODE_PATH:+:$NODE_PATH}"

if ! command -v node >/dev/null 2>&1; then
    echo "FAIL node: node is not installed"
    echo "0 passed, 1 failed"
    exit 1
fi
if ! node -e "require.resolve('pg')" >/dev/null 2>&1; then
    echo "FAIL node: the 'pg' package is missing (run: cd integration && npm install)"
    echo "0 passed, 1 failed"
    exit 1
fi

out="$(mktemp)"
trap 'rm -f "$out"' EXIT
timeout -k 10 "${NODE_SUITE_TIMEOUT:-240}" \
    node --test --test-reporter=tap "$here/test_node.js" 2>&1 | tee "$out"
status=${PIPESTATUS[0]}

count() { sed -n "s/^# $1 \([0-9][0-9]*\)\$/\1/p" "$out" | tail -n 1; }
pass=$(count pass); fail=$(count fail); cancelled=$(count cancelled)
pass=${pass:-0}; fail=${fail:-0}; cancelled=${cancelled:-0}
failed=$((fail + cancelled))
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
    # The runner died or timed out (124) without reporting a failure: count it as one.
    echo "FAIL node: test runner exited with status $status"
    failed=1
fi
if [ "$pass" -eq 0 ] && [ "$failed" -eq 0 ]; then
    echo "FAIL node: no test ran"
    failed=1
fi
echo "$pass passed, $failed failed"
[ "$failed" -eq 0 ]
