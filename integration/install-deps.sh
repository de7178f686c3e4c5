#!/usr/bin/env bash
# Installs what pgshard needs to build, test and demo on Debian 12, then node-postgres.
#
#   integration/install-deps.sh               everything below
#   integration/install-deps.sh --build-only  only what building pgshard needs (docker/Dockerfile's
#                                             build stage): no servers, locale, node-postgres
#   integration/install-deps.sh --containers  only the container tools that
#                                             integration/compose_test.sh runs docker/ with:
#                                             podman, podman-compose, debootstrap (base image)
#
# Idempotent: apt is only called when a package is missing, npm only when
# integration/node_modules lacks pg or pg-cursor. Works with no standard input (CI, docker build).
# System PostgreSQL / PgBouncer services that the packages start are stopped and disabled:
# the integration scripts run their own servers on other ports.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 NEEDRESTART_MODE=l
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

mode=all
case ${1:-} in
"") ;;
--build-only) mode=build ;;
--containers) mode=containers ;;
*)
	echo "usage: integration/install-deps.sh [--build-only | --containers]" >&2
	exit 2
	;;
esac

BUILD_PACKAGES=(
	build-essential cmake pkg-config
	libevent-dev libpq-dev libinih-dev libcmocka-dev libpg-query-dev libprotobuf-c-dev uthash-dev libxxhash-dev libssl-dev
)
# runc, not crun: crun refuses the mixed cgroup v1/v2 layout of some CI sandboxes; netavark and
# aardvark-dns give compose networks DNS by service name; debootstrap makes the base image
# where no container registry is reachable (integration/compose_test.sh).
CONTAINER_PACKAGES=(
	podman podman-compose runc netavark aardvark-dns conmon uidmap iptables debootstrap
)
case $mode in
build) PACKAGES=("${BUILD_PACKAGES[@]}") ;;
containers) PACKAGES=("${CONTAINER_PACKAGES[@]}") ;;
all)
	PACKAGES=(
		"${BUILD_PACKAGES[@]}" clang-format
		clang libclang-rt-14-dev # the fuzz targets (integration/fuzz.sh): libFuzzer is in the rt package
		postgresql postgresql-contrib postgresql-client pgbouncer
		python3-psycopg2 python3-xxhash nodejs npm procps iproute2 locales
		python3-sqlalchemy # integration/apps/sqla_app.py (Debian 12: SQLAlchemy 1.4)
		ca-certificates # npm's registry is HTTPS (not pulled in with --no-install-recommends)
	)
	;;
esac

log() { printf 'install-deps: %s\n' "$*"; }

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO=(sudo -n)
	fi
fi

# Installed packages plus the virtual packages they provide (e.g. NodeSource's nodejs
# provides and conflicts with Debian's npm: asking apt for npm there would remove nodejs).
installed_names() {
	dpkg-query -W -f='${db:Status-Abbrev}|${Package}|${Provides}\n' 2>/dev/null |
		awk -F'|' '$1 ~ /^ii/ {
			print $2
			n = split($3, p, ",")
			for (i = 1; i <= n; i++) {
				name = p[i]; sub(/\(.*\)/, "", name); gsub(/[ \t]/, "", name)
				if (name != "") print name
			}
		}' | sort -u
}

missing=()
have=$(installed_names)
for pkg in "${PACKAGES[@]}"; do
	if ! grep -qxF "$pkg" <<<"$have"; then
		missing+=("$pkg")
	fi
done

if [ "${#missing[@]}" -gt 0 ]; then
	log "installing: ${missing[*]}"
	# Keep package scripts from starting services at all (restored afterwards).
	policy_created=0
	if [ ! -e /usr/sbin/policy-rc.d ] && [ "$(id -u)" -eq 0 ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		policy_created=1
	fi
	restore_policy() { if [ "$policy_created" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi; }
	trap restore_policy EXIT
	"${SUDO[@]}" apt-get update -q </dev/null
	"${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
	restore_policy
	trap - EXIT
else
	log "all Debian packages present"
fi

if [ "$mode" != all ]; then
	log "done"
	exit 0
fi

# --- the en_US.UTF-8 locale: the integration cluster sorts text by it ----------------------
# (locale-gen builds it from the locales package's own data: no download)
if ! locale -a 2>/dev/null | grep -qix 'en_us\.utf-\{0,1\}8'; then
	if [ "$(id -u)" -eq 0 ] && [ -f /etc/locale.gen ] && command -v locale-gen >/dev/null 2>&1; then
		log "generating the en_US.UTF-8 locale"
		sed -i 's/^# *en_US.UTF-8 UTF-8/en_US.UTF-8 UTF-8/' /etc/locale.gen
		grep -q '^en_US.UTF-8 UTF-8' /etc/locale.gen || echo 'en_US.UTF-8 UTF-8' >>/etc/locale.gen
		locale-gen >/dev/null
	else
		log "warning: no en_US.UTF-8 locale and cannot generate it (needs root and the locales package)"
	fi
fi

# --- stop and disable the package's own services (ports 5432 / 6432) ---------------------
if [ "$(id -u)" -eq 0 ]; then
	if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
		systemctl disable --now postgresql.service pgbouncer.service >/dev/null 2>&1 || true
	fi
	if command -v update-rc.d >/dev/null 2>&1; then
		update-rc.d postgresql disable >/dev/null 2>&1 || true
		update-rc.d pgbouncer disable >/dev/null 2>&1 || true
	fi
	# Debian clusters (pg_createcluster "main"): stop the running ones, no autostart.
	if command -v pg_lsclusters >/dev/null 2>&1; then
		while read -r ver name _port status _rest; do
			[ -n "$ver" ] || continue
			if [ -f "/etc/postgresql/$ver/$name/start.conf" ] &&
				grep -qx auto "/etc/postgresql/$ver/$name/start.conf"; then
				echo manual >"/etc/postgresql/$ver/$name/start.conf"
			fi
			case $status in online*)
				log "stopping system PostgreSQL cluster $ver/$name"
				pg_ctlcluster "$ver" "$name" stop -m fast >/dev/null 2>&1 || true
				;;
			esac
		done < <(pg_lsclusters -h 2>/dev/null || true)
	fi
	# Debian's pgbouncer service.
	if [ -f /etc/default/pgbouncer ] && ! grep -q '^START=0' /etc/default/pgbouncer; then
		echo 'START=0' >>/etc/default/pgbouncer
	fi
	pidfile=/var/run/postgresql/pgbouncer.pid
	if [ -s "$pidfile" ]; then
		pid=$(cat "$pidfile")
		if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q '/etc/pgbouncer/'; then
			log "stopping system PgBouncer (pid $pid)"
			kill -INT "$pid" 2>/dev/null || true
			for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
fi
if command -v ss >/dev/null 2>&1; then
	for port in 5432 6432; do
		if ss -Hltn "( sport = :$port )" 2>/dev/null | grep -q .; then
			log "warning: something still listens on port $port:"
			ss -Hltnp "( sport = :$port )" 2>/dev/null || true
		fi
	done
fi

# --- node-postgres (and pg-cursor, integration/apps/node_app.js) for the end-to-end tests --
if [ -f "$HERE/node_modules/pg/package.json" ] && [ -f "$HERE/node_modules/pg-cursor/package.json" ]; then
	log "node-postgres present"
else
	log "npm install (node-postgres, pg-cursor)"
	(cd "$HERE" && npm install --no-audit --no-fund --loglevel=error </dev/null)
fi
log "done"
