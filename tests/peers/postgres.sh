#!/usr/bin/env bash
# Throw-away PostgreSQL for tests: data dir under ${SPE_PEERS_DIR:-/tmp/spe-peers}/postgres,
# listening on 127.0.0.1:${SPE_PG_PORT:-55432} (and a unix socket in that dir), trust auth,
# database spe_test owned by role spe (password spe).
#
# Usage: tests/peers/postgres.sh start|stop|url
#   start  start it if needed, then print its URL (the only stdout line; logs go to stderr)
#   url    print the URL
#   stop   stop it (the data dir is kept; delete it for a clean slate)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

PORT=${SPE_PG_PORT:-55432}
DIR=$PEERS_DIR/postgres
DATA=$DIR/data
URL="postgres://spe:spe@127.0.0.1:$PORT/spe_test"

# Debian keeps the server binaries off PATH, in /usr/lib/postgresql/<major>/bin.
find_bindir() {
  local d
  d=$(printf '%s\n' /usr/lib/postgresql/*/bin | grep -v '\*' | sort -V | tail -n1)
  [ -z "$d" ] && command -v initdb >/dev/null && d=$(dirname "$(readlink -f "$(command -v initdb)")")
  [ -n "$d" ] && [ -x "$d/initdb" ] && echo "$d"
}

# The server refuses to run as root, so as root we run it as the postgres user.
as_pg() {
  if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

psql_admin() {
  as_pg "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$DIR" -p "$PORT" -U postgres -d postgres -tA "$@"
}

running() { [ -n "${BIN:-}" ] && as_pg "$BIN/pg_ctl" status -D "$DATA" >/dev/null 2>&1; }

start() {
  BIN=$(find_bindir) || { apt_install postgresql; BIN=$(find_bindir) || die "no initdb after installing postgresql"; }
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
    mkdir -p "$DIR" && chown postgres: "$DIR" && chmod 755 "$DIR"
    as_pg test -w "$DIR" || die "user postgres cannot write $DIR (set SPE_PEERS_DIR to a path it can reach)"
  else
    mkdir -p "$DIR"
  fi

  if [ ! -s "$DATA/PG_VERSION" ]; then
    log "initdb $DATA"
    as_pg "$BIN/initdb" -D "$DATA" -U postgres -A trust -E UTF8 --no-locale --no-sync >"$DIR/initdb.log" 2>&1 \
      || { cat "$DIR/initdb.log" >&2; die "initdb failed"; }
    # Durability is pointless for a throw-away database; these make tests faster.
    cat >>"$DATA/postgresql.conf" <<CONF
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
CONF
  fi

  if ! running; then
    log "starting postgres on 127.0.0.1:$PORT"
    as_pg "$BIN/pg_ctl" start -s -w -t 60 -D "$DATA" -l "$DIR/server.log" \
      -o "-c listen_addresses=127.0.0.1 -p $PORT -c unix_socket_directories=$DIR" >&2 \
      || { tail -n 20 "$DIR/server.log" >&2; die "postgres did not start"; }
  fi

  if [ -z "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = 'spe'")" ]; then
    psql_admin -c "CREATE ROLE spe LOGIN CREATEDB PASSWORD 'spe'"
  fi
  # Tests create a database each; an older role may lack the right.
  psql_admin -c "ALTER ROLE spe CREATEDB"
  if [ -z "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = 'spe_test'")" ]; then
    psql_admin -c "CREATE DATABASE spe_test OWNER spe"
  fi
  echo "$URL"
}

stop() {
  BIN=$(find_bindir) || return 0
  if running; then as_pg "$BIN/pg_ctl" stop -s -w -m fast -D "$DATA" >&2; fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  url) echo "$URL" ;;
  *) echo "usage: $0 start|stop|url" >&2; exit 2 ;;
esac
