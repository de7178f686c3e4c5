#!/usr/bin/env bash
# Proxy behaviour that no driver test covers: client authentication methods,
# config errors and SIGHUP reload, too many clients, pool size, a backend that
# dies under a client. Runs against the cluster and pgshard that
# integration/integration.sh started (PGSHARD_DIR, PGSHARD_BIN, PG* in the env),
# and starts extra pgshard instances of its own on ports 6440-6449.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=integration/lib.sh
. "$ROOT/integration/lib.sh"
: "${PGSHARD_DIR:?}" "${PGSHARD_BIN:?}"
# shellcheck source=/dev/null
. "$PGSHARD_DIR/env.sh"
export PGHOST=127.0.0.1 PGUSER=app PGPASSWORD=app-secret PGDATABASE=app
PORT=${PGSHARD_PORT:?}
SHARD0=${SHARD_PORTS%% *}
WORK=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT

# psql through a port; prints rows only
q() {
	local port=$1
	shift
	PGCONNECT_TIMEOUT=5 psql -X -A -t -v ON_ERROR_STOP=1 -p "$port" "$@" 2>&1
}

# superuser SQL on shard 0's primary, over its unix socket
su0() {
	psql -X -A -t -h "$PGSHARD_SOCKDIR" -p "$SHARD0" -U postgres -d app -c "$1" 2>&1
}

# A second pgshard with its own config, from the cluster's one with edits.
# start_extra NAME PORT 'sed program'
start_extra() {
	local name=$1 port=$2 edit=$3
	sed -e "s/^listen = .*/listen = 127.0.0.1:$port/" -e "$edit" \
		"$PGSHARD_DIR/pgshard.ini" >"$WORK/$name.ini"
	cp "$PGSHARD_DIR/users.txt" "$WORK/users.txt"
	"$PGSHARD_BIN" -c "$WORK/$name.ini" >"$WORK/$name.log" 2>&1 &
	pids+=($!)
	eval "${name}_pid=$!"
	wait_port 127.0.0.1 "$port" 10
}

# ---- client authentication ----

out=$(q "$PORT" -c "select 'scram ok'")
[ "$out" = "scram ok" ] && t_pass "scram_sha_256_client_login" ||
	t_fail "scram_sha_256_client_login" "$out"

out=$(PGPASSWORD=wrong q "$PORT" -c "select 1")
grep -q 'password authentication failed for user "app"' <<<"$out" &&
	t_pass "scram_wrong_password_is_rejected_with_28P01" ||
	t_fail "scram_wrong_password_is_rejected_with_28P01" "$out"

start_extra md5 6441 's/^method = .*/method = md5/' || t_fail "start_md5_proxy" "$(cat "$WORK/md5.log")"
out=$(q 6441 -c "select 'md5 ok'")
[ "$out" = "md5 ok" ] && t_pass "md5_client_login" || t_fail "md5_client_login" "$out"
out=$(PGPASSWORD=wrong q 6441 -c "select 1")
grep -q 'password authentication failed' <<<"$out" && t_pass "md5_wrong_password_is_rejected" ||
	t_fail "md5_wrong_password_is_rejected" "$out"
out=$(PGPASSWORD=app-secret q 6441 -U nosuchuser -c "select 1")
grep -q 'password authentication failed for user "nosuchuser"' <<<"$out" &&
	t_pass "md5_unknown_user_is_rejected_like_a_wrong_password" ||
	t_fail "md5_unknown_user_is_rejected_like_a_wrong_password" "$out"

start_extra trust 6442 's/^method = .*/method = trust/' || t_fail "start_trust_proxy" "$(cat "$WORK/trust.log")"
out=$(PGPASSWORD= q 6442 -c "select 'trust ok'")
[ "$out" = "trust ok" ] && t_pass "trust_client_login_without_password" ||
	t_fail "trust_client_login_without_password" "$out"

# ---- the route of a statement, without running it ----

cat >"$WORK/route.ini" <<'INI'
[shard.0]
primary = host=127.0.0.1 port=1
[shard.1]
primary = host=127.0.0.1 port=2
[shard.2]
primary = host=127.0.0.1 port=3
[map.users]
kind = hash
key = bigint
shards = 0, 1, 2
[table.users]
key = id
map = users
[table.orders]
key = user_id
map = users
INI
out=$("$PGSHARD_BIN" -c "$WORK/route.ini" --route "select * from users where id = 42" \
	"select * from orders where user_id in (1, 2, 3)" "select version()" 2>&1)
rc=$?
if [ $rc = 0 ] && grep -q "^why:       users.id = 42 -> shard [0-2] (hash map users)$" <<<"$out" &&
	grep -q "^why:       orders.user_id IN (1, 2, 3) -> shards " <<<"$out" &&
	grep -q "^route:     default, shard 0$" <<<"$out"; then
	t_pass "route_shows_shards_and_why_without_running"
else
	t_fail "route_shows_shards_and_why_without_running" "rc=$rc $out"
fi
out=$("$PGSHARD_BIN" -c "$WORK/route.ini" --route "create unique index on users (name)" 2>&1)
rc=$?
[ $rc = 3 ] && grep -q "^route:     refused, ERROR 0A000 pgshard: a UNIQUE index on sharded table users" <<<"$out" &&
	t_pass "route_shows_a_refusal_with_its_message_and_exit_3" ||
	t_fail "route_shows_a_refusal_with_its_message_and_exit_3" "rc=$rc $out"

# ---- config errors and reload ----

printf '[proxy]\nlisten = 127.0.0.1:6449\npool_sise = 3\n[shard.0]\nprimary = host=127.0.0.1 port=1\n' >"$WORK/bad.ini"
out=$("$PGSHARD_BIN" -c "$WORK/bad.ini" 2>&1)
rc=$?
if [ $rc != 0 ] && grep -q "bad.ini:3: unknown key 'pool_sise'" <<<"$out"; then
	t_pass "bad_config_refuses_to_start_naming_file_and_line"
else
	t_fail "bad_config_refuses_to_start_naming_file_and_line" "rc=$rc $out"
fi
out=$("$PGSHARD_BIN" --check -c "$PGSHARD_DIR/pgshard.ini" 2>&1)
[ $? = 0 ] && t_pass "check_accepts_the_cluster_config" || t_fail "check_accepts_the_cluster_config" "$out"

# reload: a broken file keeps the old config; a good one takes effect
cp "$WORK/trust.ini" "$WORK/trust.good"
echo "bogus_key = 1" >>"$WORK/trust.ini"
kill -HUP "$trust_pid"
sleep 0.5
out=$(PGPASSWORD= q 6442 -c "select 'still trust'")
if [ "$out" = "still trust" ] && grep -q "reload failed.*trust.ini:[0-9]*: unknown key 'bogus_key'" "$WORK/trust.log"; then
	t_pass "bad_reload_keeps_old_config_and_logs_file_line"
else
	t_fail "bad_reload_keeps_old_config_and_logs_file_line" "$out / $(tail -3 "$WORK/trust.log")"
fi
sed 's/^method = .*/method = md5/' "$WORK/trust.good" >"$WORK/trust.ini"
kill -HUP "$trust_pid"
sleep 0.5
out=$(PGPASSWORD=wrong q 6442 -c "select 1")
out2=$(q 6442 -c "select 'md5 now'")
if grep -q 'password authentication failed' <<<"$out" && [ "$out2" = "md5 now" ]; then
	t_pass "good_reload_takes_effect_for_new_clients"
else
	t_fail "good_reload_takes_effect_for_new_clients" "$out / $out2"
fi

# ---- a shard that is down ----

start_extra down 6444 's/^primary = host=127.0.0.1 port=[0-9]* /primary = host=127.0.0.1 port=1 /' ||
	t_fail "start_down_proxy" "$(cat "$WORK/down.log")"
start=$(date +%s)
out=$(q 6444 -c "select 1")
took=$(($(date +%s) - start))
if grep -q 'pgshard: could not connect to shard 0 (127.0.0.1:1)' <<<"$out" && [ "$took" -lt 10 ]; then
	t_pass "unreachable_shard_fails_the_client_with_08001_at_once"
else
	t_fail "unreachable_shard_fails_the_client_with_08001_at_once" "took ${took}s: $out"
fi

# ---- two workers: SO_REUSEPORT listeners, pools split between them, cancel across them ----

start_extra two 6445 's/^workers = .*/workers = 2/' || t_fail "start_two_worker_proxy" "$(cat "$WORK/two.log")"
echo 'select :client_id::int + 1;' >"$WORK/two.sql"
out=$(PGPORT=6445 pgbench -n -M prepared -c 8 -j 2 -t 300 -f "$WORK/two.sql" 2>&1)
if grep -q "number of transactions actually processed: 2400/2400" <<<"$out" &&
	grep -q "number of failed transactions: 0 " <<<"$out"; then
	t_pass "two_workers_serve_prepared_pgbench_without_failures"
else
	t_fail "two_workers_serve_prepared_pgbench_without_failures" "$(tail -5 <<<"$out")"
fi
out=$(PGPORT=6445 timeout 60 /usr/bin/python3 "$ROOT/integration/tests/test_protocol.py" \
	cancel_running_query_with_psycopg2 cancel_in_transaction_and_wrong_key_ignored 2>&1)
grep -q "^2 passed, 0 failed" <<<"$out" && t_pass "two_workers_forward_cancel_requests" ||
	t_fail "two_workers_forward_cancel_requests" "$out"

# ---- too many clients ----

start_extra few 6443 's/^\[proxy\]/[proxy]\nmax_clients = 2/' || t_fail "start_few_proxy" "$(cat "$WORK/few.log")"
q 6443 -c "select pg_sleep(3)" >/dev/null &
s1=$!
q 6443 -c "select pg_sleep(3)" >/dev/null &
s2=$!
sleep 1
out=$(q 6443 -c "select 1")
grep -q 'sorry, too many clients already' <<<"$out" && t_pass "over_max_clients_gets_53300" ||
	t_fail "over_max_clients_gets_53300" "$out"
wait $s1 $s2

# ---- pool size: 16 clients share at most pool_size server connections ----

# the extra instances hold server connections of their own: stop them first
for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
wait "${pids[@]}" 2>/dev/null
pids=()

pool_size=$(sed -n 's/^pool_size *= *\([0-9]*\).*/\1/p' "$PGSHARD_DIR/pgshard.ini")
pgbench -n -p "$PORT" -c 16 -j 2 -T 4 -f <(echo "select pg_sleep(0.01);") >"$WORK/pgbench.out" 2>&1 &
bench=$!
max=0
for _ in $(seq 1 12); do
	sleep 0.25
	# pgshard's own health check and recovery connections are not a pool's
	n=$(su0 "select count(*) from pg_stat_activity where usename = 'app' and client_addr is not null and application_name not in ('pgshard health check', 'pgshard recovery')")
	[[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -gt "$max" ] && max=$n
done
wait $bench
if [ "$max" -ge 1 ] && [ "$max" -le "$pool_size" ] && grep -q "number of failed transactions: 0 " "$WORK/pgbench.out"; then
	t_pass "sixteen_clients_use_at_most_pool_size_server_connections"
else
	t_fail "sixteen_clients_use_at_most_pool_size_server_connections" "max=$max pool_size=$pool_size $(tail -3 "$WORK/pgbench.out")"
fi

# ---- a backend that dies under its client ----

cat >"$WORK/victim.py" <<'PY'
# The victim speaks raw protocol (libpq hides a FATAL that precedes a close, from
# PostgreSQL as from pgshard); the bystander is psycopg2.
import os, sys, threading, time, subprocess, struct
sys.path.insert(0, os.environ["TESTS_DIR"])
import psycopg2
import test_protocol as tp

victim = tp.connected()
victim.send(tp.msg(b"Q", tp.cstr("begin; select pg_backend_pid()")))
pid = None
while True:
    kind, body = victim.read()
    if kind == "D":
        pid = int(body[6:].decode())
    if kind == "Z":
        break
bystander = psycopg2.connect()
bystander.autocommit = True
errors = []
def bystand():
    try:
        c = bystander.cursor()
        for i in range(300):
            c.execute("select %s::int + 1", (i,))
            assert c.fetchone()[0] == i + 1
    except Exception as e:
        errors.append(repr(e))
t = threading.Thread(target=bystand); t.start()
def kill():
    time.sleep(0.5)
    subprocess.run(sys.argv[1:] + ["select pg_terminate_backend(%d)" % pid], check=True,
                   stdout=subprocess.DEVNULL)
threading.Thread(target=kill).start()
victim.send(tp.msg(b"Q", tp.cstr("select pg_sleep(10)")))
codes = [tp.parse_fields(b).get("C") for k, b in victim.read_until_eof() if k == "E"]
t.join()
after = psycopg2.connect(); ac = after.cursor(); ac.execute("select 42")
print("victim", ",".join(c or "?" for c in codes), "bystander_errors", len(errors), "after", ac.fetchone()[0])
PY
out=$(TESTS_DIR="$ROOT/integration/tests" PGPORT=$PORT timeout 60 /usr/bin/python3 "$WORK/victim.py" \
	psql -X -q -h "$PGSHARD_SOCKDIR" -p "$SHARD0" -U postgres -d app -c 2>&1)
# PostgreSQL's own FATAL 57P01 is relayed, then pgshard's 08006 says the connection is gone
if grep -qE "^victim (57P01,)?08006 bystander_errors 0 after 42$" <<<"$out"; then
	t_pass "backend_killed_mid_query_fails_only_its_client_and_pool_recovers"
else
	t_fail "backend_killed_mid_query_fails_only_its_client_and_pool_recovers" "$out"
fi

t_summary
