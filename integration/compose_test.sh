#!/usr/bin/env bash
# The compose demo (docker/docker-compose.yml), run for real with podman: builds the images
# (docker/Dockerfile), brings the 3 shards x (primary + streaming replica), the two pgshard
# containers and the one-shot demo service up, and checks
#   - the demo service: pgbench's tables loaded and pgbench run through both proxies, the
#     demo story told (docker/demo.sh exits 0)
#   - every replica container streams from its primary container
#   - rows written through pgshard1 and through pgshard2 (on the host's published ports) are
#     on the shard pgshard's router names, read on the shard primaries directly; range-map
#     rows on the shard of their range; the reference table on every shard; the replicas
#     get the rows too
#   - a transaction across shards through pgshard2 commits on both shards
#   - with pgshard1 killed (SIGKILL), pgshard2 goes on serving reads, writes and pgbench
# then brings everything down (also when a check fails or the script is interrupted).
# The demo's chapter 10 sends reads to the replica containers (replica_reads on for its
# session); what it shows is not checked here.
#
#   integration/compose_test.sh [--skip-install] [--keep]
#
# --skip-install: do not apt-get the container tools (integration/install-deps.sh
# --containers). --keep: leave the containers running (bring them down with
# `podman-compose -p pgshard-compose-test -f docker/docker-compose.yml down`).
# Ends with "N passed, N failed". Exit status: 0 all passed, 1 a check failed, 77 containers
# cannot run on this machine (said loudly: the caller counts it as a failure).
#
# Runs as root on Debian 12 (podman, rootful). No container registry is needed: the base
# image is Debian 12 made with debootstrap from Debian's archive and imported as
# localhost/debian:12 (once; kept in podman's storage and as a tarball in CACHE); apt-get in
# the image builds reaches the archive through the containers' network. Podman's settings
# for this (runc, cgroupfs, a file events log, ulimits the sandbox allows) are in
# CACHE/containers.conf, used through CONTAINERS_CONF. CACHE: PGSHARD_COMPOSE_CACHE,
# default /var/cache/pgshard-compose. Host ports: 7432 and 7433 (pgshard1, pgshard2).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
# shellcheck source=integration/lib.sh
. integration/lib.sh

PROJECT=pgshard-compose-test
COMPOSE_FILE=docker/docker-compose.yml
CACHE=${PGSHARD_COMPOSE_CACHE:-/var/cache/pgshard-compose}
BASE_IMAGE=localhost/debian:12
PORT1=7432
PORT2=7433
SHARDS=3
T0=$SECONDS

skip_install=0
keep=0
for arg in "$@"; do
	case $arg in
	--skip-install) skip_install=1 ;;
	--keep) keep=1 ;;
	*)
		echo "usage: integration/compose_test.sh [--skip-install] [--keep]" >&2
		exit 2
		;;
	esac
done

log() { printf 'compose: %s (%ds)\n' "$*" $((SECONDS - T0)); }

# Containers cannot run here: say so where nobody can miss it, and exit 77.
cannot_run() {
	{
		echo
		echo "################################################################################"
		echo "compose: CONTAINERS CANNOT RUN ON THIS MACHINE: $*"
		echo "compose: the compose demo was NOT tested."
		echo "################################################################################"
	} >&2
	exit 77
}

[ "$(id -u)" -eq 0 ] || cannot_run "needs root (rootful podman, debootstrap)"
if [ $skip_install = 0 ]; then
	integration/install-deps.sh --containers
fi
for tool in podman podman-compose debootstrap psql pgbench; do
	command -v "$tool" >/dev/null 2>&1 || cannot_run "no $tool (integration/install-deps.sh installs it)"
done

# --- podman's settings ----------------------------------------------------------------------
# crun refuses the mixed cgroup v1/v2 layout of sandboxes like CI's, and without systemd
# neither the systemd cgroup manager nor the journal work; podman's default ulimits
# (nofile 1048576) are above the hard limits such sandboxes allow, which fails every
# container with "setrlimit ... Operation not permitted". These settings work on an ordinary
# Debian machine too.
mkdir -p "$CACHE"
rm -rf "$CACHE/logs" # a previous failure's
nofile=$(ulimit -Hn)
case $nofile in unlimited | '') nofile=1048576 ;; esac
[ "$nofile" -le 1048576 ] || nofile=1048576
cat >"$CACHE/containers.conf" <<EOF
# written by integration/compose_test.sh (used through CONTAINERS_CONF)
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
[network]
network_backend = "netavark"
EOF
export CONTAINERS_CONF=$CACHE/containers.conf

# --- the base image: Debian 12, made here (no registry needed) ------------------------------
if ! podman image exists "$BASE_IMAGE"; then
	if [ ! -s "$CACHE/debian-12-rootfs.tar" ]; then
		log "making the base image: debootstrap --variant=minbase bookworm (about a minute)"
		# what a run stopped in the middle of this step left behind
		rm -rf "$CACHE"/rootfs.* "$CACHE/debian-12-rootfs.tar.part"
		rootfs=$(mktemp -d "$CACHE/rootfs.XXXXXX")
		if ! debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian \
			>"$CACHE/debootstrap.log" 2>&1; then
			tail -20 "$CACHE/debootstrap.log" >&2
			rm -rf "$rootfs"
			echo "compose: debootstrap failed (log: $CACHE/debootstrap.log)" >&2
			echo "0 passed, 1 failed"
			exit 1
		fi
		# apt lists and the package cache are not needed in the image.
		rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb
		tar -C "$rootfs" -cf "$CACHE/debian-12-rootfs.tar.part" .
		mv "$CACHE/debian-12-rootfs.tar.part" "$CACHE/debian-12-rootfs.tar"
		rm -rf "$rootfs"
	fi
	log "importing $CACHE/debian-12-rootfs.tar as $BASE_IMAGE"
	podman import "$CACHE/debian-12-rootfs.tar" "$BASE_IMAGE" >"$CACHE/import.log" 2>&1
fi

# Can a container run at all? (Networks, DNS by service name and published ports are
# exercised by the compose demo itself.)
probe_out=$(podman run --rm --network none "$BASE_IMAGE" true 2>&1) ||
	cannot_run "podman run fails: $probe_out"

# --- images --------------------------------------------------------------------------------
build_image() { # TARGET TAG
	local out
	out=$(mktemp)
	if ! podman build -f docker/Dockerfile --ignorefile docker/Dockerfile.dockerignore \
		--build-arg BASE_IMAGE="$BASE_IMAGE" --target "$1" -t "$2" . >"$out" 2>&1; then
		tail -40 "$out" >&2
		rm -f "$out"
		echo "compose: podman build --target $1 failed" >&2
		echo "0 passed, 1 failed"
		exit 1
	fi
	rm -f "$out"
}
log "building images pgshard-node and pgshard (docker/Dockerfile)"
build_image node pgshard-node
build_image pgshard pgshard

# --- up ------------------------------------------------------------------------------------
compose() { timeout 300 podman-compose -p "$PROJECT" -f "$COMPOSE_FILE" "$@"; }
# Containers of this project, found by the label compose gives them.
containers_of_project() {
	podman ps -a --filter "label=com.docker.compose.project=$PROJECT" --format '{{.Names}}'
}
container() { # SERVICE -> its container's name
	podman ps -a --filter "label=com.docker.compose.project=$PROJECT" \
		--filter "label=com.docker.compose.service=$1" --format '{{.Names}}' | head -n1
}
down() {
	compose down -t 10 >"$CACHE/down.log" 2>&1 || true
	local c
	for c in $(containers_of_project); do podman rm -f "$c" >/dev/null 2>&1 || true; done
	podman network rm -f "${PROJECT}_default" >/dev/null 2>&1 || true
}
# What the containers said, for whoever looks into a failure.
save_logs() {
	local c
	rm -rf "$CACHE/logs"
	mkdir -p "$CACHE/logs"
	for c in $(containers_of_project); do podman logs "$c" >"$CACHE/logs/$c.log" 2>&1 || true; done
	echo "compose: the containers' logs are in $CACHE/logs/" >&2
}
finish() {
	local rc=$?
	if [ $keep = 1 ]; then
		log "kept the containers (--keep); down: podman-compose -p $PROJECT -f $COMPOSE_FILE down"
	elif [ -n "$(containers_of_project)" ]; then
		[ "$rc" = 0 ] || save_logs
		down
		if [ -n "$(containers_of_project)" ]; then
			echo "compose: containers left behind: $(containers_of_project | tr '\n' ' ')" >&2
			rc=1
		fi
	fi
	exit $rc
}

# A previous run that was killed may have left its containers.
if [ -n "$(containers_of_project)" ] || podman network exists "${PROJECT}_default"; then down; fi
for port in $PORT1 $PORT2; do
	if wait_port 127.0.0.1 "$port" 0; then
		echo "compose: port $port is in use (docker/docker-compose.yml publishes pgshard there)" >&2
		echo "0 passed, 1 failed"
		exit 1
	fi
done
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "podman-compose up -d"
if ! compose up -d --no-build >"$CACHE/up.log" 2>&1; then
	tail -30 "$CACHE/up.log" >&2
	echo "compose: podman-compose up failed (log: $CACHE/up.log)" >&2
	echo "0 passed, 1 failed"
	exit 1
fi

# Each check below reads what it needs itself, so that one failing does not hide the next.
export PGUSER=app PGPASSWORD=app-secret PGDATABASE=app PGCONNECT_TIMEOUT=5
via() { # PORT SQL... -> unaligned rows, through a pgshard on the host's published port
	local port=$1
	shift
	psql -X -q -A -t -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" "$@"
}
on_node() { # SERVICE SQL -> unaligned rows, straight from that node (not through pgshard)
	podman exec "$(container "$1")" psql -X -q -A -t -v ON_ERROR_STOP=1 -U postgres -d app -c "$2"
}

# --- the demo service -----------------------------------------------------------------------
demo=$(container demo)
status=""
start=$SECONDS
while [ $((SECONDS - start)) -lt 300 ]; do
	status=$(podman inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$demo" 2>/dev/null || echo gone)
	case $status in exited* | gone) break ;; esac
	sleep 1
done
demo_log=$(podman logs "$demo" 2>&1 || true)
tps_lines=$(grep -c '^tps = ' <<<"$demo_log" || true)
failed_zero=$(grep -c '^number of failed transactions: 0 ' <<<"$demo_log" || true)
if [ "$status" = "exited 0" ] && [ "$tps_lines" = 2 ] && [ "$failed_zero" = 2 ] &&
	grep -q '^demo: done' <<<"$demo_log"; then
	t_pass "demo service: pgbench loaded and run through pgshard1 and pgshard2, story told ($(grep '^tps = ' <<<"$demo_log" | awk '{printf "%d ", $3}')tps)"
else
	t_fail "demo service" "state '$status', $tps_lines pgbench runs, $failed_zero without failures; log tail:"
	tail -40 <<<"$demo_log" | sed 's/^/    /'
fi
log "demo service finished"

# --- streaming replication between containers -----------------------------------------------
# Waits up to 90 s for each, as integration/cluster.sh waits for its replicas: podman's name
# server (aardvark-dns) has been seen failing lookups for a while as containers join the
# network ("Temporary failure in name resolution"), and a replica's WAL receiver then retries
# every 5 s until it resolves its primary. Deadlines go by the clock: each podman exec takes
# a good part of a second.
ok=1
for ((s = 0; s < SHARDS; s++)); do
	start=$SECONDS
	while :; do
		got=$(on_node "shard$s-primary" "SELECT application_name || ' ' || state FROM pg_stat_replication" 2>&1 || true)
		rec=$(on_node "shard$s-replica" "SELECT pg_is_in_recovery()" 2>&1 || true)
		if [ "$got" = "shard$s-replica streaming" ] && [ "$rec" = t ]; then break; fi
		[ $((SECONDS - start)) -lt 90 ] || break
		sleep 0.5
	done
	if [ "$got" != "shard$s-replica streaming" ] || [ "$rec" != t ]; then
		ok=0
		t_fail "shard $s replica streams" "primary's pg_stat_replication: '$got'; replica in recovery: '$rec'"
	elif [ $((SECONDS - start)) -gt 2 ]; then
		echo "compose: shard $s's replica streamed only after $((SECONDS - start)) more s (set up late or reconnected: name lookups)" >&2
	fi
done
[ $ok = 0 ] || t_pass "each shard's replica container streams from its primary container"

# --- rows through both proxies land where the router says -----------------------------------
# Tenants 1001..1030 (the demo's own are 1..6): even ones written through pgshard1, odd ones
# through pgshard2, each a user and an order (co-located: same shard).
tenants=$(seq 1001 1030)
ok=1
via $PORT1 -c "DELETE FROM orders WHERE tenant_id BETWEEN 1001 AND 1030" \
	-c "DELETE FROM users WHERE tenant_id BETWEEN 1001 AND 1030" || ok=0
for t in $tenants; do
	port=$PORT1
	[ $((t % 2)) = 0 ] || port=$PORT2
	via "$port" -c "INSERT INTO users (tenant_id, user_id, email, plan_id) VALUES ($t, 1, 'u@t$t.example', 1)" \
		-c "INSERT INTO orders (tenant_id, order_id, user_id, amount) VALUES ($t, 1, 1, $t.50)" || ok=0
done
# Where pgshard's router puts each tenant (one pgshard --route run for all of them).
route_args=()
for t in $tenants; do route_args+=("SELECT * FROM users WHERE tenant_id = $t"); done
routes=$(podman exec "$(container pgshard2)" pgshard -c /etc/pgshard/pgshard.ini --route "${route_args[@]}" |
	sed -n 's/^why: *users\.tenant_id = \([0-9]*\) -> shard \([0-9]*\) .*/\1 \2/p' | sort)
[ "$(wc -l <<<"$routes")" = 30 ] || {
	ok=0
	echo "compose: pgshard --route named $(wc -l <<<"$routes") of 30 tenants' shards" >&2
}
# Where the rows are, read on each primary directly.
found=""
for ((s = 0; s < SHARDS; s++)); do
	rows=$(on_node "shard$s-primary" "SELECT u.tenant_id FROM users u JOIN orders o USING (tenant_id, user_id) WHERE u.tenant_id BETWEEN 1001 AND 1030") || ok=0
	for t in $rows; do found+="$t $s"$'\n'; done
done
found=$(sort <<<"${found%$'\n'}")
used=$(awk '{print $2}' <<<"$found" | sort -u | wc -l)
if [ $ok = 1 ] && [ "$found" = "$routes" ] && [ "$used" -ge 2 ]; then
	t_pass "30 tenants written through both proxies: each user and order on exactly the shard the router names ($used shards used)"
else
	t_fail "rows on the right shards" "router says / primaries hold (tenant shard):"
	diff <(echo "$routes") <(echo "$found") | head -20 | sed 's/^/    /' || true
fi

# A range map's rows by their range (docker/pgshard.sh: event_id < 1,000,000 on shard 0, the
# next million on shard 1, the rest on shard 2), written through pgshard2.
ok=1
via $PORT2 -c "DELETE FROM events WHERE event_id IN (900001, 1900001, 2900001)" \
	-c "INSERT INTO events (event_id, tenant_id, kind) VALUES (900001, 1, 't'), (1900001, 1, 't'), (2900001, 1, 't')" || ok=0
for ((s = 0; s < SHARDS; s++)); do
	got=$(on_node "shard$s-primary" "SELECT string_agg(event_id::text, ',') FROM events WHERE event_id IN (900001, 1900001, 2900001)" || true)
	[ "$got" = $((s * 1000000 + 900001)) ] || {
		ok=0
		echo "compose: shard $s holds events '$got', expected $((s * 1000000 + 900001))" >&2
	}
done
plans=$(for ((s = 0; s < SHARDS; s++)); do on_node "shard$s-primary" "SELECT count(*) FROM plans" || true; done | tr '\n' ' ')
if [ $ok = 1 ] && [ "$plans" = "3 3 3 " ]; then
	t_pass "range-map rows on the shard of their range; the reference table on every shard"
else
	t_fail "range map and reference table" "plans per shard: $plans"
fi

# The replicas replay what the primaries got (within 15 s).
ok=0
start=$SECONDS
while [ $((SECONDS - start)) -le 15 ]; do
	total=0
	for ((s = 0; s < SHARDS; s++)); do
		n=$(on_node "shard$s-replica" "SELECT count(*) FROM users WHERE tenant_id BETWEEN 1001 AND 1030" 2>/dev/null || echo 0)
		total=$((total + n))
	done
	if [ "$total" = 30 ]; then
		ok=1
		break
	fi
	sleep 0.2
done
if [ $ok = 1 ]; then
	t_pass "the replica containers have the 30 tenants' rows"
else
	t_fail "replicas have the rows" "$total of 30 users on the replicas after 15 s"
fi

# --- a transaction across shards, through pgshard2 ------------------------------------------
# Two tenants on different shards (from the routes above).
t_a=$(head -n1 <<<"$routes")
t_b=$(awk -v s="${t_a#* }" '$2 != s' <<<"$routes" | head -n1)
out=$(via $PORT2 -c "BEGIN" \
	-c "UPDATE orders SET status = 'tx-both' WHERE tenant_id = ${t_a% *}" \
	-c "UPDATE orders SET status = 'tx-both' WHERE tenant_id = ${t_b% *}" \
	-c "COMMIT" 2>&1) || true
a=$(on_node "shard${t_a#* }-primary" "SELECT status FROM orders WHERE tenant_id = ${t_a% *}" || true)
b=$(on_node "shard${t_b#* }-primary" "SELECT status FROM orders WHERE tenant_id = ${t_b% *}" || true)
if [ "$a" = tx-both ] && [ "$b" = tx-both ]; then
	t_pass "a transaction through pgshard2 on shards ${t_a#* } and ${t_b#* } committed on both"
else
	t_fail "transaction across shards" "statuses '$a' and '$b'; psql: $out"
fi

# --- one proxy killed: the other serves -----------------------------------------------------
podman kill "$(container pgshard1)" >/dev/null 2>&1 || true
ok=1
if via $PORT1 -c "SELECT 1" >/dev/null 2>&1; then
	ok=0
	echo "compose: pgshard1 still answers after podman kill" >&2
fi
n=$(via $PORT2 -c "SELECT count(*) FROM users WHERE tenant_id BETWEEN 1001 AND 1030" 2>&1) || ok=0
via $PORT2 -c "UPDATE orders SET status = 'after-kill' WHERE tenant_id = 1001" >/dev/null 2>&1 || ok=0
s1001=$(awk '$1 == 1001 {print $2}' <<<"$routes")
after=$(on_node "shard$s1001-primary" "SELECT status FROM orders WHERE tenant_id = 1001" || true)
bench=$(pgbench -h 127.0.0.1 -p $PORT2 -S -c 4 -j 2 -T 3 2>&1) || ok=0
if [ $ok = 1 ] && [ "$n" = 30 ] && [ "$after" = after-kill ] &&
	grep -q '^number of failed transactions: 0 ' <<<"$bench"; then
	t_pass "pgshard1 killed: pgshard2 still reads, writes and runs pgbench ($(sed -n 's/^tps = \([0-9]*\).*/\1/p' <<<"$bench") tps)"
else
	t_fail "pgshard2 serves with pgshard1 killed" "count '$n', status on shard '$after'; pgbench:"
	tail -5 <<<"$bench" | sed 's/^/    /'
fi

# --- down ----------------------------------------------------------------------------------
if [ $keep = 0 ]; then
	[ "$T_FAILED" = 0 ] || save_logs
	log "podman-compose down"
	down
	if [ -z "$(containers_of_project)" ]; then
		t_pass "down: no container of the project is left"
	else
		t_fail "down" "left: $(containers_of_project | tr '\n' ' ')"
	fi
fi
log "done"
t_summary
