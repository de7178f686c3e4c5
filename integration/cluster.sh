#!/usr/bin/env bash
# Local PostgreSQL clusters for pgshard: N shards, each a primary with R streaming replicas.
#
#   integration/cluster.sh start DIR [--shards N] [--replicas R] [--port BASE]
#                          [--auth trust|md5|scram-sha-256] [--proxy-port P]
#                          [--pool-size K] [--workers W] [--locale L] [--no-tables]
#   integration/cluster.sh stop DIR
#   integration/cluster.sh status DIR
#
# Defaults: N=2 R=1 BASE=5440 auth=trust P=6432 K=20 W=1, locale C.UTF-8 (C without it).
# --locale: every node's locale (collation and ctype) and UTF8 encoding, e.g. en_US.UTF-8.
# pgshard.ini shards pgbench's tables (and the routing test's) over all shards;
# --no-tables leaves every table on shard 0.
# Shard i's primary listens on 127.0.0.1:BASE+10*i, its replica j on BASE+10*i+1+j.
# Every node has role "app" (password "app-secret") owning database "app"; pg_hba
# asks TCP clients for the --auth method, unix-socket clients are trusted.
#
# DIR receives: pgshard.ini, users.txt, env.sh, cluster.state, and symlinks logs/ and data/.
# The servers' data, logs and sockets live in /tmp/pgshard-<hash of DIR> (owned by the
# postgres OS user, whatever DIR's permissions; short enough for unix socket paths).
# `start` on a DIR with a running cluster stops it, wipes it and creates a new one.
# `stop` is safe to run twice and on a half-started cluster; it also stops a proxy that
# integration/lib.sh's pgshard_start started for DIR.
# `status` prints what runs; exit 0 when every node runs, 3 otherwise.
# Must run as root (servers run as the postgres OS user via runuser) or as postgres.
set -euo pipefail

# The steps for each node (initdb, configuration, role and database, base backup) are
# integration/pgnode.sh's, shared with the containers of docker/docker-compose.yml.
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=integration/pgnode.sh
. "$HERE/pgnode.sh"

# The caller may have sourced an env.sh: never let libpq variables steer our own clients.
unset PGHOST PGHOSTADDR PGPORT PGUSER PGPASSWORD PGPASSFILE PGDATABASE PGSERVICE \
	PGSERVICEFILE PGOPTIONS PGSSLMODE PGREQUIRESSL PGAPPNAME PGCONNECT_TIMEOUT \
	PGTARGETSESSIONATTRS PGDATA PGCLIENTENCODING PGTZ PGDATESTYLE PGGSSENCMODE

log() { printf 'cluster: %s\n' "$*"; }
die() {
	printf 'cluster: error: %s\n' "$*" >&2
	exit 1
}
usage() {
	sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

# Superuser SQL over the cluster's unix socket directory.
psql_su() {
	local port=$1
	shift
	node_psql "$SOCK" "$port" "$@"
}

port_busy() {
	if command -v ss >/dev/null 2>&1; then
		ss -Hltn "( sport = :$1 )" 2>/dev/null | grep -q .
	else
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
	fi
}

# ", by ..." for a busy port: the process, and the cluster.sh DIR when it is one of ours.
port_owner() {
	local pid cmd root
	pid=$( (ss -Hltnp "( sport = :$1 )" 2>/dev/null || true) | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -n1)
	[ -n "$pid" ] || return 0
	cmd=$({ tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null || true)
	printf ', by pid %s (%s)' "$pid" "${cmd% }"
	root=$(sed -n 's|.* -D \(/tmp/pgshard-[0-9a-f]*\)/.*|\1|p' <<<"$cmd")
	if [ -n "$root" ] && [ -s "$root/owner" ]; then
		printf '; it belongs to a cluster: integration/cluster.sh stop %s' "$(cat "$root/owner")"
	fi
}

is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }
in_range() { # VALUE MIN MAX
	is_uint "$1" || return 1
	[ "$1" -ge "$2" ] && [ "$1" -le "$3" ]
}

# Absolute path of DIR (which may not exist yet) and the data root derived from it.
resolve_dir() {
	local d=$1
	[ -n "$d" ] || die "DIR is empty"
	DIR=$(realpath -m -- "$d")
	ROOT="/tmp/pgshard-$(printf '%s' "$DIR" | md5sum | cut -c1-10)"
	if [ -f "$DIR/cluster.state" ]; then
		local recorded
		recorded=$(sed -n 's/^ROOT=//p' "$DIR/cluster.state" | tr -d "'")
		if [ -n "$recorded" ]; then ROOT=$recorded; fi
	fi
	SOCK=$ROOT/sock
	LOGDIR=$ROOT/log
}

# Postmaster PIDs whose data directory is under ROOT (found even if ROOT was deleted).
postmasters_under() {
	pgrep -f -- "/postgres -D \"?$ROOT/" || true
}

node_pid() { # DATADIR -> pid of its running postmaster, or nothing
	local pidfile=$1/postmaster.pid pid
	[ -r "$pidfile" ] || return 0
	pid=$(head -n1 "$pidfile" 2>/dev/null || true)
	if [ -n "$pid" ] && [ -d "/proc/$pid" ]; then echo "$pid"; fi
}

stop_nodes() { # data dirs...; in parallel
	local d pids=()
	for d in "$@"; do
		[ -f "$d/postmaster.pid" ] || continue
		log "stopping $(basename "$d")"
		(
			as_pg "$PGBIN/pg_ctl" -D "$d" -m fast -w -t 30 stop >/dev/null 2>&1 ||
				as_pg "$PGBIN/pg_ctl" -D "$d" -m immediate -w -t 10 stop >/dev/null 2>&1 || true
		) &
		pids+=($!)
	done
	for d in "${pids[@]}"; do wait "$d" || true; done
}

stop_proxy() {
	local pidfile=$DIR/pgshard.pid pid i
	[ -s "$pidfile" ] || return 0
	pid=$(cat "$pidfile")
	# Only a process that is ours: started on this DIR's config, or (lib.sh) from inside DIR.
	if is_uint "$pid" && [ -d "/proc/$pid" ] &&
		{ [ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" = "$DIR" ] ||
			{ tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -qF "$DIR/pgshard.ini"; }; then
		log "stopping proxy (pid $pid)"
		kill -TERM "$pid" 2>/dev/null || true
		for i in $(seq 50); do
			[ -d "/proc/$pid" ] || break
			[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ] || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$pidfile"
}

do_stop() {
	stop_proxy
	local reps=() prims=() d
	if [ -d "$ROOT" ]; then
		for d in "$ROOT"/shard*-replica*; do if [ -d "$d" ]; then reps+=("$d"); fi; done
		for d in "$ROOT"/shard*-primary; do if [ -d "$d" ]; then prims+=("$d"); fi; done
	fi
	stop_nodes "${reps[@]}"
	stop_nodes "${prims[@]}"
	# Anything left (stale pid file, data root removed under a running server): signal it.
	local left pid i
	left=$(postmasters_under)
	if [ -n "$left" ]; then
		for pid in $left; do
			log "fast shutdown of leftover postmaster $pid"
			kill -INT "$pid" 2>/dev/null || true
		done
		for i in $(seq 100); do
			left=$(postmasters_under)
			[ -n "$left" ] || break
			sleep 0.1
		done
		for pid in $left; do kill -KILL "$pid" 2>/dev/null || true; done
	fi
}

cmd_stop() {
	[ $# -eq 1 ] || usage
	resolve_dir "$1"
	do_stop
	log "stopped ($DIR)"
}

cmd_status() {
	[ $# -eq 1 ] || usage
	resolve_dir "$1"
	if [ ! -f "$ROOT/nodes" ]; then
		log "no cluster for $DIR"
		return 3
	fi
	local name role port pid detail all=0 total=0 up=0
	log "cluster $DIR (data $ROOT)"
	while read -r name role port; do
		total=$((total + 1))
		pid=$(node_pid "$ROOT/$name")
		if [ -z "$pid" ]; then
			printf '  %-18s %-8s 127.0.0.1:%-6s stopped\n' "$name" "$role" "$port"
			continue
		fi
		up=$((up + 1))
		detail=""
		if [ "$role" = replica ]; then
			detail=$(psql_su "$port" -c "SELECT coalesce((SELECT status FROM pg_stat_wal_receiver), 'no wal receiver')" 2>/dev/null || echo "not answering")
		else
			detail="$(psql_su "$port" -c "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'" 2>/dev/null || echo "?") streaming replica(s)"
		fi
		printf '  %-18s %-8s 127.0.0.1:%-6s running (pid %s) %s\n' "$name" "$role" "$port" "$pid" "$detail"
	done <"$ROOT/nodes"
	if [ -s "$DIR/pgshard.pid" ] && [ -d "/proc/$(cat "$DIR/pgshard.pid")" ]; then
		printf '  %-18s %-8s %-16s running (pid %s)\n' pgshard proxy \
			"$(sed -n 's/^listen *= *//p' "$DIR/pgshard.ini" 2>/dev/null)" "$(cat "$DIR/pgshard.pid")"
	else
		printf '  %-18s %-8s %-16s not running\n' pgshard proxy ""
	fi
	[ "$up" -eq "$total" ] || all=3
	return $all
}

# Single-quotes a value for a shell (env.sh, cluster.state).
shq() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

STARTING=0
on_exit() {
	local rc=$?
	if [ "$STARTING" = 1 ] && [ $rc -ne 0 ]; then
		printf 'cluster: start failed (exit %s); log tails:\n' "$rc" >&2
		local f
		for f in "$LOGDIR"/*.log; do
			[ -f "$f" ] || continue
			printf -- '--- %s\n' "$f" >&2
			tail -n 15 "$f" >&2 || true
		done
		STARTING=0
		# Background initdb / pg_ctl / pg_basebackup first, so no server starts after the sweep.
		local j
		for j in $(jobs -p); do kill -TERM "$j" 2>/dev/null || true; done
		wait || true
		do_stop >&2 || true
	fi
}

cmd_start() {
	[ $# -ge 1 ] || usage
	local dir_arg=$1
	shift
	local shards=2 replicas=1 base=5440 auth=trust proxy_port=6432 pool_size=20 workers=1
	local tables=yes locale=
	while [ $# -gt 0 ]; do
		if [ "$1" = --no-tables ]; then
			tables=no
			shift
			continue
		fi
		[ $# -ge 2 ] || die "option $1 needs a value"
		case $1 in
		--shards) shards=$2 ;;
		--replicas) replicas=$2 ;;
		--port) base=$2 ;;
		--auth) auth=$2 ;;
		--proxy-port) proxy_port=$2 ;;
		--pool-size) pool_size=$2 ;;
		--workers) workers=$2 ;;
		--locale) locale=$2 ;;
		*) die "unknown option $1" ;;
		esac
		shift 2
	done
	in_range "$shards" 1 100 || die "--shards must be an integer 1..100"
	in_range "$replicas" 0 9 || die "--replicas must be an integer 0..9"
	in_range "$base" 1024 65535 || die "--port must be an integer 1024..65535"
	in_range "$proxy_port" 1 65535 || die "--proxy-port must be a port number"
	in_range "$pool_size" 1 100000 || die "--pool-size must be an integer >= 1"
	in_range "$workers" 1 1024 || die "--workers must be an integer 1..1024"
	[ $((base + 10 * (shards - 1) + replicas)) -le 65535 ] || die "ports beyond 65535"
	case $auth in
	trust | md5 | scram-sha-256) ;;
	*) die "--auth must be trust, md5 or scram-sha-256" ;;
	esac
	[ -x "$PGBIN/initdb" ] || die "no PostgreSQL binaries in $PGBIN (run integration/install-deps.sh)"
	if [ -z "$locale" ]; then
		locale=C.UTF-8
		if ! locale -a 2>/dev/null | grep -qix 'c\.utf-\{0,1\}8'; then locale=C; fi
	elif ! [[ $locale =~ ^[A-Za-z0-9_.@-]+$ ]]; then
		die "--locale: not a locale name: $locale"
	fi
	if [ "$(id -u)" -ne 0 ] && [ "$(id -un)" != "$PG_OS_USER" ]; then
		die "run as root (servers run as the $PG_OS_USER OS user) or as $PG_OS_USER"
	fi
	id "$PG_OS_USER" >/dev/null 2>&1 || die "no $PG_OS_USER OS user (install postgresql)"

	local t0
	t0=$(date +%s%N)
	mkdir -p -- "$dir_arg"
	resolve_dir "$dir_arg"
	ROOT="/tmp/pgshard-$(printf '%s' "$DIR" | md5sum | cut -c1-10)" # fresh start: no recorded root
	SOCK=$ROOT/sock
	LOGDIR=$ROOT/log

	# A running cluster on this DIR (recorded or derived location): stop it first.
	local fresh_root=$ROOT
	resolve_dir "$dir_arg"
	if [ "$ROOT" != "$fresh_root" ]; then
		do_stop
		rm -rf -- "$ROOT"
		ROOT=$fresh_root SOCK=$fresh_root/sock LOGDIR=$fresh_root/log
	fi
	do_stop

	# Ports.
	local i j names=() roles=() ports=() shard_ports=() replica_ports=() p
	for ((i = 0; i < shards; i++)); do
		names+=("shard$i-primary") roles+=(primary) ports+=($((base + 10 * i)))
		shard_ports+=($((base + 10 * i)))
		for ((j = 0; j < replicas; j++)); do
			names+=("shard$i-replica$j") roles+=(replica) ports+=($((base + 10 * i + 1 + j)))
			replica_ports+=($((base + 10 * i + 1 + j)))
		done
	done
	for p in "${ports[@]}"; do
		[ "$p" != "$proxy_port" ] || die "--proxy-port $proxy_port collides with a server port"
		if port_busy "$p"; then die "port $p is already in use$(port_owner "$p")"; fi
	done

	STARTING=1
	trap on_exit EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM

	# Fresh data root.
	rm -rf -- "$ROOT"
	mkdir -p -- "$ROOT" "$SOCK" "$LOGDIR"
	chown -R "$PG_OS_USER:" "$ROOT"
	chmod 755 "$ROOT" "$SOCK" "$LOGDIR"
	rm -f -- "$DIR/pgshard.ini" "$DIR/users.txt" "$DIR/env.sh" "$DIR/cluster.state"
	local link
	for link in logs:"$LOGDIR" data:"$ROOT"; do
		if [ -L "$DIR/${link%%:*}" ]; then rm -f -- "$DIR/${link%%:*}"; fi
		if [ ! -e "$DIR/${link%%:*}" ]; then ln -s "${link#*:}" "$DIR/${link%%:*}"; fi
	done
	printf 'ROOT=%s\n' "$(shq "$ROOT")" >"$DIR/cluster.state"
	printf '%s\n' "$DIR" >"$ROOT/owner"
	: >"$ROOT/nodes"
	for i in "${!names[@]}"; do
		printf '%s %s %s\n' "${names[$i]}" "${roles[$i]}" "${ports[$i]}" >>"$ROOT/nodes"
	done

	# initdb all primaries in parallel.
	log "initdb $shards primaries (auth $auth, locale $locale) in $ROOT"
	local pids=() pid
	for ((i = 0; i < shards; i++)); do
		node_initdb "$ROOT/shard$i-primary" "$locale" "$LOGDIR/initdb-shard$i.log" &
		pids+=($!)
	done
	local failed=0
	for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
	[ $failed -eq 0 ] || die "initdb failed (see $LOGDIR/initdb-shard*.log)"

	for ((i = 0; i < shards; i++)); do
		node_configure_primary "$ROOT/shard$i-primary" $((base + 10 * i)) 127.0.0.1 "$SOCK" \
			"shard$i-primary" "$auth" 127.0.0.1/32
	done

	start_nodes() { # names...; pg_ctl start -w in parallel
		local n pids=() pid bad=0
		for n in "$@"; do
			as_pg "$PGBIN/pg_ctl" -D "$ROOT/$n" -l "$LOGDIR/$n.log" -w -t 60 start >/dev/null 2>&1 &
			pids+=($!)
		done
		for pid in "${pids[@]}"; do wait "$pid" || bad=1; done
		[ $bad -eq 0 ] || die "a server did not start (see $LOGDIR)"
	}
	log "starting primaries on ports ${shard_ports[*]}"
	local pnames=()
	for ((i = 0; i < shards; i++)); do pnames+=("shard$i-primary"); done
	start_nodes "${pnames[@]}"

	pids=()
	for ((i = 0; i < shards; i++)); do
		node_create_app "$SOCK" $((base + 10 * i)) "$auth" &
		pids+=($!)
	done
	for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
	[ $failed -eq 0 ] || die "could not create role $APP_USER / database $APP_DB"

	if [ "$replicas" -gt 0 ]; then
		log "base backups for $((shards * replicas)) replicas"
		pids=()
		local rnames=()
		for ((i = 0; i < shards; i++)); do
			for ((j = 0; j < replicas; j++)); do
				local rn=shard$i-replica$j
				rnames+=("$rn")
				node_basebackup "$ROOT/$rn" 127.0.0.1 $((base + 10 * i)) "$LOGDIR/basebackup-$rn.log" &
				pids+=($!)
			done
		done
		failed=0
		for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
		[ $failed -eq 0 ] || die "pg_basebackup failed (see $LOGDIR/basebackup-*.log)"
		for ((i = 0; i < shards; i++)); do
			for ((j = 0; j < replicas; j++)); do
				node_configure_replica "$ROOT/shard$i-replica$j" $((base + 10 * i + 1 + j)) "shard$i-replica$j"
			done
		done
		log "starting replicas on ports ${replica_ports[*]}"
		start_nodes "${rnames[@]}"

		# Wait until every primary sees all its replicas streaming.
		local deadline=$((SECONDS + 30)) want=$replicas n
		for ((i = 0; i < shards; i++)); do
			while :; do
				n=$(psql_su $((base + 10 * i)) -c "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' AND application_name LIKE 'shard${i}-replica%'" 2>/dev/null || echo 0)
				[ "$n" -lt "$want" ] || break
				[ $SECONDS -lt $deadline ] || die "replicas of shard $i not streaming after 30 s"
				sleep 0.05
			done
			for ((j = 0; j < replicas; j++)); do
				[ "$(psql_su $((base + 10 * i + 1 + j)) -c 'SELECT pg_is_in_recovery()')" = t ] ||
					die "shard$i-replica$j is not in recovery"
			done
		done
	fi

	# Proxy config, users, environment.
	printf '"%s" "%s"\n' "$APP_USER" "$APP_PASSWORD" >"$DIR/users.txt"
	chmod 600 "$DIR/users.txt"
	{
		echo "; pgshard config written by integration/cluster.sh (rewritten on every start)"
		echo "; shards: $shards, replicas per shard: $replicas, backend auth: $auth, locale: $locale"
		echo
		echo "[proxy]"
		echo "listen = 127.0.0.1:$proxy_port"
		echo "workers = $workers"
		echo "pool_size = $pool_size"
		echo "default_shard = 0"
		echo "shutdown_timeout = 3 ; seconds SIGTERM waits for open transactions: tests tear down fast"
		echo
		echo "[auth]"
		echo "method = $auth"
		echo "users = users.txt"
		for ((i = 0; i < shards; i++)); do
			echo
			echo "[shard.$i]"
			echo "primary = host=127.0.0.1 port=$((base + 10 * i)) dbname=$APP_DB user=$APP_USER"
			for ((j = 0; j < replicas; j++)); do
				echo "replica = host=127.0.0.1 port=$((base + 10 * i + 1 + j)) dbname=$APP_DB user=$APP_USER"
			done
		done
		if [ "$tables" = yes ]; then
			local all
			all=$(seq -s ', ' 0 $((shards - 1)))
			"$HERE/pgshard-tables.sh" bench "$shards"
			echo
			echo "; the tables of integration/tests/test_routing.sh"
			echo "[map.users]"
			echo "kind = hash"
			echo "key = bigint"
			echo "shards = $all"
			echo "vnodes = 256"
			echo
			echo "[table.rt_users]"
			echo "key = id"
			echo "map = users"
			echo
			echo "[table.rt_orders]"
			echo "key = user_id"
			echo "map = users"
			echo
			echo "[map.names]"
			echo "kind = hash"
			echo "key = text"
			echo "shards = $all"
			echo "vnodes = 64"
			echo
			echo "[table.rt_names]"
			echo "key = name"
			echo "map = names"
			echo
			echo "[map.events]"
			echo "kind = range"
			echo "key = bigint"
			echo "range = - 1000 0"
			echo "range = 1000 - $((shards - 1))"
			echo
			echo "[table.rt_events]"
			echo "key = id"
			echo "map = events"
			echo
			echo "[table.rt_countries]"
			echo "reference = yes"
			echo
			echo "; the tables of integration/tests/test_gather.py (integration/difftest/schema.sql)"
			echo "[map.dg]"
			echo "kind = hash"
			echo "key = bigint"
			echo "shards = $all"
			echo "vnodes = 256"
			local t
			for t in dg_items:id dg_orders:item_id dg_big:id dg_empty:id; do
				echo
				echo "[table.${t%%:*}]"
				echo "key = ${t#*:}"
				echo "map = dg"
			done
			echo
			echo "[table.dg_events]"
			echo "key = id"
			echo "map = events"
			echo
			echo "[table.dg_countries]"
			echo "reference = yes"
			echo
			echo "; the tables of integration/tests/test_joins.py: orders by user, their lines by"
			echo "; order on a map of their own, so that a user's lines are on other shards"
			echo "[table.jn_orders]"
			echo "key = user_id"
			echo "map = dg"
			echo
			echo "[map.jn_lines]"
			echo "kind = hash"
			echo "key = bigint"
			echo "shards = $all"
			echo "vnodes = 64"
			echo
			echo "[table.jn_order_lines]"
			echo "key = order_id"
			echo "map = jn_lines"
			echo
			echo "; the tables of the same-app tests (integration/apps/, integration/tests/test_apps.py)"
			echo "[map.app_tenants]"
			echo "kind = hash"
			echo "key = bigint"
			echo "shards = $all"
			echo "vnodes = 256"
			for t in app_users app_orders app_order_lines app_accounts app_payments; do
				echo
				echo "[table.$t]"
				echo "key = tenant_id"
				echo "map = app_tenants"
			done
			echo
			echo "[table.app_products]"
			echo "reference = yes"
			echo
			echo "; the tables of integration/tests/test_insert_select.py"
			local u
			for u in is_users:id is_orders:user_id is_src:id; do
				echo
				echo "[table.${u%%:*}]"
				echo "key = ${u#*:}"
				echo "map = users"
			done
			echo
			echo "[table.is_names]"
			echo "key = name"
			echo "map = names"
			echo
			echo "[table.is_events]"
			echo "key = id"
			echo "map = events"
			echo
			echo "[table.is_ref]"
			echo "reference = yes"
		fi
	} >"$DIR/pgshard.ini"
	{
		echo "# written by integration/cluster.sh start; source it: . $DIR/env.sh"
		echo "export PGSHARD_DIR=$(shq "$DIR")"
		echo "export PGSHARD_CONFIG=$(shq "$DIR/pgshard.ini")"
		echo "export PGSHARD_PORT=$proxy_port"
		echo "export PGSHARD_AUTH=$auth"
		echo "export PGSHARD_SHARDS=$shards"
		echo "export PGSHARD_REPLICAS=$replicas"
		echo "export PGSHARD_POOL_SIZE=$pool_size"
		echo "export PGSHARD_WORKERS=$workers"
		echo "export PGSHARD_LOCALE=$(shq "$locale")"
		echo "export PGSHARD_DATA=$(shq "$ROOT")"
		echo "export PGSHARD_SOCKDIR=$(shq "$SOCK")"
		echo "export SHARD_PORTS=\"${shard_ports[*]}\""
		echo "export REPLICA_PORTS=\"${replica_ports[*]}\""
		for ((i = 0; i < shards; i++)); do
			local rp=()
			for ((j = 0; j < replicas; j++)); do rp+=($((base + 10 * i + 1 + j))); done
			echo "export SHARD${i}_REPLICA_PORTS=\"${rp[*]}\""
		done
		echo "export PGBIN=$(shq "$PGBIN")"
		echo "export PGHOST=127.0.0.1"
		echo "export PGPORT=$proxy_port"
		echo "export PGUSER=$APP_USER"
		echo "export PGPASSWORD=$APP_PASSWORD"
		echo "export PGDATABASE=$APP_DB"
	} >"$DIR/env.sh"

	STARTING=0
	trap - EXIT INT TERM
	log "ready in $((($(date +%s%N) - t0) / 1000000)) ms: $shards shard(s) x $replicas replica(s), auth $auth;" \
		"primaries ${shard_ports[*]}${replica_ports:+, replicas ${replica_ports[*]}}"
	log "config $DIR/pgshard.ini, env $DIR/env.sh, logs $DIR/logs/"
}

[ $# -ge 1 ] || usage
cmd=$1
shift
case $cmd in
start) cmd_start "$@" ;;
stop) cmd_stop "$@" ;;
status) cmd_status "$@" ;;
-h | --help | help) usage ;;
*) usage ;;
esac
