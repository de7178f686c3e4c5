# shellcheck shell=bash
# One PostgreSQL node of a pgshard test or demo cluster: the steps that make a shard's primary
# and a streaming replica of it. Sourced by integration/cluster.sh (every node on this machine,
# on 127.0.0.1 with its own port) and by docker/node.sh (one node per container, port 5432),
# so that the containers run the same set-up as the local clusters the tests use.
#
#   . integration/pgnode.sh
#   node_initdb DATADIR LOCALE LOG             initdb (superuser postgres, trusted locally)
#   node_configure_primary DATADIR PORT LISTEN SOCKDIR NAME AUTH NET
#                                              postgresql.conf additions and pg_hba.conf;
#                                              AUTH: trust | md5 | scram-sha-256 for TCP
#                                              clients from NET (127.0.0.1/32, samenet, ...)
#   node_create_app SOCKDIR PORT AUTH          role app (password app-secret), database app
#   node_basebackup DATADIR HOST PORT LOG      pg_basebackup -R from the primary at HOST:PORT
#   node_configure_replica DATADIR PORT NAME   the replica's own port and cluster_name
#   node_psql SOCKDIR PORT [psql args]         superuser psql over the unix socket
#   as_pg CMD...                               CMD as the postgres OS user
#
# Functions return non-zero on failure and print nothing on success; callers say what failed.

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PG_OS_USER=postgres
APP_USER=app
APP_PASSWORD=app-secret
APP_DB=app

# Runs a command as the postgres OS user, from a directory it can enter.
as_pg() {
	if [ "$(id -un)" = "$PG_OS_USER" ]; then
		(cd / && "$@")
	else
		(cd / && runuser -u "$PG_OS_USER" -- "$@")
	fi
}

# Superuser SQL over the unix socket (trusted), as any OS user that can reach the socket.
node_psql() { # SOCKDIR PORT [psql args]
	local sock=$1 port=$2
	shift 2
	PGCONNECT_TIMEOUT=5 "$PGBIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 \
		-h "$sock" -p "$port" -U postgres -d postgres "$@"
}

# password_encryption that makes the app role's password usable with AUTH.
node_password_encryption() { # AUTH
	case $1 in
	md5) echo md5 ;;
	*) echo scram-sha-256 ;;
	esac
}

node_initdb() { # DATADIR LOCALE LOG
	as_pg "$PGBIN/initdb" -D "$1" -U postgres -A trust --no-sync -E UTF8 --locale="$2" >"$3" 2>&1
}

node_configure_primary() { # DATADIR PORT LISTEN SOCKDIR NAME AUTH NET
	local d=$1 port=$2 listen=$3 sock=$4 name=$5 auth=$6 net=$7 method
	case $auth in
	trust | md5 | scram-sha-256) method=$auth ;;
	*) return 1 ;;
	esac
	cat >>"$d/postgresql.conf" <<EOF

# --- integration/pgnode.sh ---
listen_addresses = '$listen'
port = $port
unix_socket_directories = '$sock'
max_connections = 200
# two-phase commit (pgshard's commits on several shards, and its recovery); the replicas get
# this file with their base backup: a hot standby needs at least its primary's value
max_prepared_transactions = 100
password_encryption = $(node_password_encryption "$auth")
fsync = off
synchronous_commit = off
full_page_writes = off
wal_level = replica
max_wal_senders = 10
wal_keep_size = 256MB
hot_standby = on
hot_standby_feedback = on
cluster_name = '$name'
log_line_prefix = '%m [%p] %q%u@%d '
EOF
	# Replication connections (pg_basebackup, the replicas' WAL receivers) come as postgres
	# from NET and are trusted: the nodes are reachable from NET only (127.0.0.1, or the
	# containers' own network).
	cat >"$d/pg_hba.conf" <<EOF
# integration/pgnode.sh: TCP clients from $net use $auth; unix sockets trusted.
local   all          all                    trust
local   replication  all                    trust
host    replication  all    $net    trust
host    all          all    $net    $method
EOF
	chown "$PG_OS_USER:" "$d/pg_hba.conf" "$d/postgresql.conf"
}

node_create_app() { # SOCKDIR PORT AUTH
	node_psql "$1" "$2" \
		-c "SET password_encryption = '$(node_password_encryption "$3")'" \
		-c "CREATE ROLE $APP_USER LOGIN CREATEDB PASSWORD '$APP_PASSWORD'" \
		-c "CREATE DATABASE $APP_DB OWNER $APP_USER"
}

node_basebackup() { # DATADIR HOST PORT LOG
	as_pg "$PGBIN/pg_basebackup" -h "$2" -p "$3" -U postgres \
		-D "$1" -R -X stream -c fast --no-sync >"$4" 2>&1
}

node_configure_replica() { # DATADIR PORT NAME
	# The WAL receiver reports cluster_name as its application_name to the primary
	# (pg_stat_replication), which is how the callers see that this replica streams.
	cat >>"$1/postgresql.conf" <<EOF
# --- integration/pgnode.sh: replica $3 ---
port = $2
cluster_name = '$3'
EOF
}
