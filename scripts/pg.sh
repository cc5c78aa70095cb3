#!/usr/bin/env bash
# A PostgreSQL server of the tests' own, on 127.0.0.1, on a data directory of
# its own: bash scripts/pg.sh start|stop|url
#
#   start  installs PostgreSQL from Debian's packages when missing, creates the
#          cluster in $VPNAAS_PG_DIR (default target/pg) on first use (user
#          `vpnaas`, a random password kept in the directory, scram-sha-256,
#          listening only on 127.0.0.1:$VPNAAS_PG_PORT, default 55432), starts
#          it unless running, and prints the admin URL the tests use
#          (each test creates a fresh database of its own through it);
#   stop   stops it (the data directory stays; delete it to start over);
#   url    prints the URL of a running cluster.
#
# As root, the cluster runs as the `postgres` user (PostgreSQL refuses root).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT="$(pwd)"
DIR="${VPNAAS_PG_DIR:-$ROOT/target/pg}"
PORT="${VPNAAS_PG_PORT:-55432}"

log() { printf 'pg: %s\n' "$*" >&2; }

bin_dir() {
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
    [ -n "$d" ] && [ -x "$d/pg_ctl" ] && echo "$d"
}

as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

url() {
    printf 'postgres://vpnaas:%s@127.0.0.1:%s/postgres\n' "$(cat "$DIR/password")" "$PORT"
}

start() {
    if [ -z "$(bin_dir)" ]; then
        log "installing postgresql from Debian's packages"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
        # The package starts its own cluster on port 5432; the tests don't use it.
    fi
    local bin
    bin=$(bin_dir) || { log "no PostgreSQL binaries after installing"; exit 1; }
    if [ ! -f "$DIR/data/PG_VERSION" ]; then
        log "creating a cluster in $DIR"
        mkdir -p "$DIR"
        head -c 24 /dev/urandom | base64 | tr -d '/+=' > "$DIR/password"
        chmod 600 "$DIR/password"
        if [ "$(id -u)" = 0 ]; then chown -R postgres: "$DIR"; fi
        as_owner "$bin/initdb" -D "$DIR/data" -U vpnaas --pwfile="$DIR/password" \
            --auth-local=scram-sha-256 --auth-host=scram-sha-256 -E UTF8 >/dev/null
    fi
    if ! as_owner "$bin/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then
        log "starting on 127.0.0.1:$PORT"
        # fsync stays on: the tests check what is acknowledged survives.
        as_owner "$bin/pg_ctl" -D "$DIR/data" -l "$DIR/log" -w -t 60 start \
            -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR -c max_connections=400" >/dev/null
    fi
    url
}

stop() {
    local bin
    bin=$(bin_dir) || exit 0
    [ -f "$DIR/data/PG_VERSION" ] || exit 0
    as_owner "$bin/pg_ctl" -D "$DIR/data" -m fast stop >/dev/null 2>&1 || true
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    url) url ;;
    *) echo "usage: $0 start|stop|url" >&2; exit 2 ;;
esac
