#!/usr/bin/env bash
# pgbench through the target (PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE): initialise scale 2,
# run the select-only script in simple, extended and prepared query modes with 16 clients,
# then the default TPC-B-like script, and check that every run processed all of its
# transactions, failed none, and left the balances consistent.
# Prints "ok - NAME" / "not ok - NAME: why" lines (integration/lib.sh) and exactly
# "N passed, N failed"; exit 1 on failure.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
integration="$(dirname "$here")"
# shellcheck source=integration/lib.sh
. "$integration/lib.sh"
set +e
export PGCONNECT_TIMEOUT="${PGCONNECT_TIMEOUT:-10}"

RUN_TIMEOUT=${PGBENCH_RUN_TIMEOUT:-240}
log="$(mktemp -d)"
trap 'rm -rf "$log"' EXIT

sql() { timeout 60 psql -X -At -v ON_ERROR_STOP=1 -c "$1" 2>&1; }

# check_run NAME EXPECTED_TXNS OUTPUT_FILE EXIT_STATUS
check_run() {
    local name=$1 want=$2 out=$3 status=$4
    if [ "$status" -ne 0 ]; then
        t_fail "$name" "pgbench exited with status $status: $(grep -v '^progress' "$out" | tail -n 3 | tr '\n' ' ')"
    elif ! grep -q "^number of transactions actually processed: $want/$want\$" "$out"; then
        t_fail "$name" "want $want/$want transactions: $(grep -E 'actually processed|aborted' "$out" | tr '\n' ' ')"
    elif ! grep -q '^number of failed transactions: 0 (' "$out"; then
        t_fail "$name" "failed transactions: $(grep -E 'failed transactions' "$out" | tr '\n' ' ')"
    elif grep -qiE 'error|aborted' "$out"; then
        t_fail "$name" "errors in output: $(grep -iE 'error|aborted' "$out" | head -n 2 | tr '\n' ' ')"
    else
        t_pass "$name"
    fi
}

# 1. Initialisation: CREATE TABLE, COPY of 200000 rows, VACUUM, primary keys.
timeout "$RUN_TIMEOUT" pgbench -i -s 2 -q >"$log/init" 2>&1
status=$?
accounts=$(sql "select count(*) from pgbench_accounts")
if [ "$status" -ne 0 ]; then
    t_fail pgbench_init "pgbench -i exited with status $status: $(tail -n 3 "$log/init" | tr '\n' ' ')"
elif [ "$accounts" != 200000 ]; then
    t_fail pgbench_init "pgbench_accounts has '$accounts' rows, want 200000"
elif ! grep -q '^done in' "$log/init"; then
    t_fail pgbench_init "no 'done in' line: $(tail -n 3 "$log/init" | tr '\n' ' ')"
else
    t_pass pgbench_init
fi

# 2. Select-only in each query mode: 16 clients x 200 transactions.
for mode in simple extended prepared; do
    timeout "$RUN_TIMEOUT" pgbench -S -M "$mode" -c 16 -j 2 -t 200 >"$log/select_$mode" 2>&1
    check_run "pgbench_select_only_$mode" 3200 "$log/select_$mode" $?
done

# 3. TPC-B-like default script, 8 clients x 100 transactions; the balances must agree.
# The sums are taken on each shard directly (SHARD_PORTS; without it, through the target):
# pgbench's tables are sharded, and summing across shards is the scatter-gather issue.
on_shards() {
    local port total=0 v
    if [ -z "${SHARD_PORTS:-}" ]; then
        sql "$1"
        return
    fi
    for port in $SHARD_PORTS; do
        v=$(PGPORT=$port timeout 60 psql -X -At -v ON_ERROR_STOP=1 -c "$1" 2>&1) || { echo "$v"; return; }
        total=$((total + ${v:-0}))
    done
    echo "$total"
}
check_balances() {
    local name=$1 want_history=$2 a b t h
    a=$(on_shards "select coalesce(sum(abalance), 0) from pgbench_accounts")
    b=$(on_shards "select coalesce(sum(bbalance), 0) from pgbench_branches")
    t=$(on_shards "select coalesce(sum(tbalance), 0) from pgbench_tellers")
    h=$(on_shards "select count(*) from pgbench_history")
    if [ "$a" = "$b" ] && [ "$b" = "$t" ] && [ "$h" = "$want_history" ]; then
        t_pass "$name"
    else
        t_fail "$name" "sums accounts|branches|tellers = $a|$b|$t, history $h (want $want_history)"
    fi
}
timeout "$RUN_TIMEOUT" pgbench -c 8 -j 2 -t 100 >"$log/tpcb" 2>&1
check_run pgbench_tpcb_simple 800 "$log/tpcb" $?
check_balances pgbench_tpcb_simple_balances 800
before=$(on_shards "select coalesce(sum(delta), 0) from pgbench_history")

# -j 8, one client per thread: pgbench prepares a script's statements with a blocking PQprepare
# at each client's first transaction. With several clients per thread and fewer server
# connections than clients, that PQprepare waits for a server connection while the same
# thread's other clients hold every one inside BEGIN..END: pgbench deadlocks itself behind any
# transaction pooler that does not fake ParseComplete.
timeout "$RUN_TIMEOUT" pgbench -M prepared -c 8 -j 8 -t 100 >"$log/tpcb_prepared" 2>&1
check_run pgbench_tpcb_prepared 800 "$log/tpcb_prepared" $?
check_balances pgbench_tpcb_prepared_balances 800
# Every committed delta of both runs is in the balances (history is truncated per run).
got_a=$(on_shards "select coalesce(sum(abalance), 0) from pgbench_accounts")
got_h=$(on_shards "select coalesce(sum(delta), 0) from pgbench_history")
if [ -n "$before" ] && [ "$got_a" = "$((before + got_h))" ]; then
    t_pass pgbench_no_lost_updates
else
    t_fail pgbench_no_lost_updates "sum(abalance) $got_a, want $before + $got_h"
fi

timeout 120 pgbench -i -I d >"$log/drop" 2>&1 || echo "note: dropping the pgbench tables failed: $(tail -n 2 "$log/drop")"
t_summary
