#!/usr/bin/env bash
# Starts or stops a throw-away PostgreSQL server for the tests of the postgres backend.
#
#   eval "$(.ci/postgres.sh start)"   # prints `export AUDIT_TEST_POSTGRES_...=...` lines
#   .ci/postgres.sh stop "$AUDIT_TEST_POSTGRES_DIR"
#   .ci/postgres.sh kill9 DIR; .ci/postgres.sh restart DIR   # crash and restart (tests)
#
# The server listens on 127.0.0.1 (a free port) and on a Unix socket in its directory, with
# TLS on (a CA and a server certificate for `localhost`/127.0.0.1 made for this run), password
# (SCRAM) authentication over TCP and trust over the socket. Roles: `audit_test` owns the
# database `audit_test`; `audit_limited` may connect and nothing more (permission tests);
# `audit_cert` logs in with a client certificate (tls.cert_file/key_file tests).
# PostgreSQL refuses to run as root: as root the server runs as the `postgres` user.
set -euo pipefail

log() { echo "postgres.sh: $*" >&2; }

find_bindir() {
  if [ -n "${PG_BINDIR:-}" ]; then echo "$PG_BINDIR"; return; fi
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return; fi
  done
  if command -v pg_ctl >/dev/null 2>&1; then dirname "$(command -v pg_ctl)"; return; fi
  return 1
}

# Runs a command as the server's user (postgres when we are root, ourselves otherwise).
as_server() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

make_certs() {
  local dir=$1
  (
    cd "$dir"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=audit test CA" \
      -keyout ca.key -out ca.crt -addext basicConstraints=critical,CA:TRUE \
      -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
    # A second, unrelated CA: the "wrong CA" of the TLS tests.
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=other CA" \
      -keyout other-ca.key -out other-ca.crt -addext basicConstraints=critical,CA:TRUE \
      -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
      -keyout server.key -out server.csr 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
      -extfile server.ext -out server.crt 2>/dev/null
    # A client certificate for the role audit_cert (pg_hba: `cert` authentication).
    openssl req -newkey rsa:2048 -nodes -subj "/CN=audit_cert" \
      -keyout client.key -out client.csr 2>/dev/null
    printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n' > client.ext
    openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
      -extfile client.ext -out client.crt 2>/dev/null
    rm -f server.csr server.ext client.csr client.ext ca.srl other-ca.key
    chmod 600 server.key ca.key
  )
}

start() {
  local bindir dir port password
  bindir=$(find_bindir) || {
    log "PostgreSQL server binaries (initdb, pg_ctl) not found; install them (Debian: apt-get install postgresql) or set PG_BINDIR"
    exit 1
  }
  dir=$(mktemp -d /tmp/audit-pg.XXXXXX)
  chmod 755 "$dir"
  mkdir "$dir/data" "$dir/sock" "$dir/tls" "$dir/log"
  make_certs "$dir/tls"
  password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
  printf '%s\n' "$password" > "$dir/password"
  chmod 600 "$dir/password"
  # The server's own copy of the password (initdb reads it) and its TLS files.
  printf '%s\n' "$password" > "$dir/tls/pwfile"
  if [ "$(id -u)" = 0 ]; then
    chown -R postgres: "$dir/data" "$dir/sock" "$dir/tls" "$dir/log"
  fi
  chmod 700 "$dir/data"
  as_server "$bindir/initdb" -D "$dir/data" -U postgres --auth-local=trust \
    --auth-host=scram-sha-256 --pwfile="$dir/tls/pwfile" -E UTF8 --locale=C.UTF-8 >"$dir/log/initdb.log" 2>&1 || {
    cat "$dir/log/initdb.log" >&2; exit 1; }
  cat > "$dir/data/pg_hba.conf" <<HBA
local all all trust
hostssl all audit_cert 127.0.0.1/32 cert
hostssl all all 127.0.0.1/32 scram-sha-256
hostnossl all all 127.0.0.1/32 scram-sha-256
HBA
  cat >> "$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir/sock'
ssl = on
ssl_cert_file = '$dir/tls/server.crt'
ssl_key_file = '$dir/tls/server.key'
ssl_ca_file = '$dir/tls/ca.crt'
max_connections = 100
fsync = on
synchronous_commit = on
CONF
  port=$(free_port)
  as_server "$bindir/pg_ctl" -D "$dir/data" -l "$dir/log/server.log" -w -t 60 \
    -o "-p $port" start >&2 || { cat "$dir/log/server.log" >&2; exit 1; }
  echo "$port" > "$dir/port"
  echo "$bindir" > "$dir/bindir"
  as_server "$bindir/psql" -h "$dir/sock" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 -q >&2 <<SQL
CREATE ROLE audit_test LOGIN PASSWORD '$password';
CREATE ROLE audit_limited LOGIN PASSWORD '$password';
CREATE ROLE audit_cert LOGIN;
CREATE ROLE audit_one LOGIN PASSWORD '$password' CONNECTION LIMIT 1;
CREATE DATABASE audit_test OWNER audit_test;
SQL
  as_server "$bindir/psql" -h "$dir/sock" -p "$port" -U postgres -d audit_test -v ON_ERROR_STOP=1 -q >&2 <<SQL
REVOKE ALL ON SCHEMA public FROM PUBLIC;
ALTER SCHEMA public OWNER TO audit_test;
GRANT USAGE ON SCHEMA public TO audit_limited;
GRANT USAGE, CREATE ON SCHEMA public TO audit_cert;
GRANT USAGE, CREATE ON SCHEMA public TO audit_one;
SQL
  log "PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port and $dir/sock (data in $dir)"
  cat <<ENV
export AUDIT_TEST_POSTGRES_DIR='$dir'
export AUDIT_TEST_POSTGRES_URL='postgresql://audit_test@localhost:$port/audit_test'
export AUDIT_TEST_POSTGRES_LIMITED_URL='postgresql://audit_limited@localhost:$port/audit_test'
export AUDIT_TEST_POSTGRES_ONE_CONN_URL='postgresql://audit_one@localhost:$port/audit_test'
export AUDIT_TEST_POSTGRES_SOCKET_URL='host=$dir/sock port=$port user=audit_test dbname=audit_test'
export AUDIT_TEST_POSTGRES_PASSWORD_FILE='$dir/password'
export AUDIT_TEST_POSTGRES_CA='$dir/tls/ca.crt'
export AUDIT_TEST_POSTGRES_OTHER_CA='$dir/tls/other-ca.crt'
export AUDIT_TEST_POSTGRES_CERT_URL='postgresql://audit_cert@localhost:$port/audit_test'
export AUDIT_TEST_POSTGRES_CLIENT_CERT='$dir/tls/client.crt'
export AUDIT_TEST_POSTGRES_CLIENT_KEY='$dir/tls/client.key'
ENV
}

# SIGKILL of the postmaster and its children (a crash, not a shutdown), by their ids.
kill9() {
  local dir=$1 pid kids
  pid=$(head -1 "$dir/data/postmaster.pid")
  kids=$(pgrep -P "$pid" || true)
  kill -9 "$pid" $kids
  # Wait until they are gone (reaped): a restart refuses while the old postmaster's id lives.
  local i
  for i in $(seq 100); do
    [ -e "/proc/$pid" ] || return 0
    if [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = Z ] && [ "$i" -gt 50 ]; then
      # A zombie nobody reaps (no init in a container): it holds no lock, only its id.
      rm -f "$dir/data/postmaster.pid"
      return 0
    fi
    sleep 0.1
  done
  log "kill9: postmaster $pid still present after 10 s"
  exit 1
}

# Starts the server of DIR again, on its port (after kill9 or stop of a kept directory).
restart() {
  local dir=$1
  as_server "$(cat "$dir/bindir")/pg_ctl" -D "$dir/data" -l "$dir/log/server.log" -w -t 60 \
    -o "-p $(cat "$dir/port")" start >&2 || { cat "$dir/log/server.log" >&2; exit 1; }
}

stop() {
  local dir=${1:-${AUDIT_TEST_POSTGRES_DIR:-}}
  if [ -z "$dir" ] || [ ! -d "$dir/data" ]; then
    log "stop: no server directory given (argument or AUDIT_TEST_POSTGRES_DIR)"
    exit 1
  fi
  as_server "$(cat "$dir/bindir")/pg_ctl" -D "$dir/data" -m fast -w stop >&2 || true
  rm -rf "$dir"
}

case "${1:-}" in
  start) start ;;
  stop) stop "${2:-}" ;;
  kill9) kill9 "${2:?usage: $0 kill9 DIR}" ;;
  restart) restart "${2:?usage: $0 restart DIR}" ;;
  *) echo "usage: $0 start | stop [DIR] | kill9 DIR | restart DIR" >&2; exit 2 ;;
esac
