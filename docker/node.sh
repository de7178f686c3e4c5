#!/usr/bin/env bash
# Entrypoint of a PostgreSQL node of the compose demo (docker/docker-compose.yml): a shard's
# primary, or a streaming replica of one. The set-up is integration/pgnode.sh's, the steps
# integration/cluster.sh runs for each node of a local cluster; here each node has a container
# of its own, listens on port 5432 and reaches the others by their service names.
#
# Environment:
#   NODE_ROLE     primary | replica
#   NODE_NAME     cluster_name, and the name a replica reports to its primary
#                 (pg_stat_replication.application_name); default: the container's host name
#   PRIMARY_HOST  replica: its primary's host name
#   AUTH          how TCP clients log in: scram-sha-256 (default), md5 or trust
#
# On its first start a node sets itself up (a primary: initdb, configuration, role app with
# password app-secret owning database app; a replica: a base backup of its primary, which it
# waits for), then runs postgres in the foreground as the container's main process. A later
# start of the same container finds its data and only runs postgres.
set -euo pipefail

# shellcheck source=integration/pgnode.sh
. /opt/pgshard/integration/pgnode.sh

ROLE=${NODE_ROLE:-}
NAME=${NODE_NAME:-$(hostname)}
AUTH=${AUTH:-scram-sha-256}
DATA=/var/lib/postgresql/data
SOCK=/var/run/postgresql
PORT=5432
# Set-up done: kept outside the data directory, so that a base backup never copies it.
READY=/var/lib/postgresql/set-up-done

log() { printf 'node %s: %s\n' "$NAME" "$*"; }
die() {
	printf 'node %s: error: %s\n' "$NAME" "$*" >&2
	exit 1
}

mkdir -p "$DATA" "$SOCK"
chown "$PG_OS_USER:" "$DATA" "$SOCK" /var/lib/postgresql
chmod 700 "$DATA"

if [ ! -f "$READY" ]; then
	# A set-up that was interrupted (the container stopped half-way) starts over.
	find "$DATA" -mindepth 1 -delete
	case $ROLE in
	primary)
		log "initdb"
		node_initdb "$DATA" C.UTF-8 /tmp/initdb.log || {
			cat /tmp/initdb.log >&2
			die "initdb failed"
		}
		# Clients come from the containers' network (samenet: any address of the node's own
		# subnets), which includes the host's published ports.
		node_configure_primary "$DATA" "$PORT" '*' "$SOCK" "$NAME" "$AUTH" samenet
		# Role and database with the server on its unix socket only, so that no replica or
		# proxy connects before they exist.
		as_pg "$PGBIN/pg_ctl" -D "$DATA" -o "-c listen_addresses=''" -l /tmp/set-up.log \
			-w -t 60 start >/dev/null || {
			cat /tmp/set-up.log >&2
			die "the server did not start for set-up"
		}
		node_create_app "$SOCK" "$PORT" "$AUTH" || die "could not create role and database app"
		as_pg "$PGBIN/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null
		;;
	replica)
		[ -n "${PRIMARY_HOST:-}" ] || die "PRIMARY_HOST is not set"
		# The primary's container may still be setting up (or be started later): wait.
		log "waiting for the primary $PRIMARY_HOST"
		start=$SECONDS
		for ((i = 0; ; i++)); do
			if out=$("$PGBIN/pg_isready" -h "$PRIMARY_HOST" -p "$PORT" -U postgres -t 2 2>&1); then break; fi
			# Say why now and then (a name that does not resolve shows here).
			[ $((i % 10)) != 2 ] || log "still waiting for $PRIMARY_HOST: $out"
			[ $((SECONDS - start)) -lt 300 ] || die "primary $PRIMARY_HOST not ready after 5 minutes: $out"
			sleep 1
		done
		[ "$i" = 0 ] || log "$PRIMARY_HOST ready after $((SECONDS - start)) s"
		# A few tries: while containers join the network, its name server can fail to
		# resolve a name for a moment (seen with podman's aardvark-dns: "could not translate
		# host name"), right after pg_isready resolved it. pg_basebackup empties the data
		# directory when it fails.
		for ((try = 1; ; try++)); do
			log "base backup of $PRIMARY_HOST"
			if node_basebackup "$DATA" "$PRIMARY_HOST" "$PORT" /tmp/basebackup.log; then break; fi
			cat /tmp/basebackup.log >&2
			[ "$try" -lt 5 ] || die "pg_basebackup from $PRIMARY_HOST failed $try times"
			sleep 2
		done
		node_configure_replica "$DATA" "$PORT" "$NAME"
		;;
	*) die "NODE_ROLE must be primary or replica, not '$ROLE'" ;;
	esac
	touch "$READY"
fi

log "starting postgres ($ROLE)"
exec setpriv --reuid="$PG_OS_USER" --regid="$PG_OS_USER" --init-groups \
	"$PGBIN/postgres" -D "$DATA"
