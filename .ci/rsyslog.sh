#!/usr/bin/env bash
# Starts or stops a throw-away rsyslogd for `audit bench` against the syslog plugin
# (docs/benchmarks.md, "Syslog plugin").
#
#   eval "$(.ci/rsyslog.sh start)"   # prints `export AUDIT_RSYSLOG_...=...` lines
#   .ci/rsyslog.sh stop "$AUDIT_RSYSLOG_DIR"
#
# Listeners on 127.0.0.1 (free ports): plain TCP and TLS (gtls driver, anonymous clients; a
# CA and a server certificate for localhost/127.0.0.1 made for this run). Each writes the raw
# messages it receives to its own file (tcp.log, tls.log) with rsyslog's buffered
# asynchronous omfile writer, so the disk is not what a benchmark measures;
# AUDIT_RSYSLOG_DISCARD=1 at start writes them to /dev/null instead (received, parsed and
# formatted as usual, nothing stored).
set -euo pipefail

log() { echo "rsyslog.sh: $*" >&2; }

RSYSLOGD=${RSYSLOGD:-/usr/sbin/rsyslogd}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

make_certs() {
  (
    cd "$1"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=audit bench CA" \
      -keyout ca.key -out ca.pem 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
      -keyout server.key -out server.csr 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
      -extfile server.ext -out server.pem 2>/dev/null
  )
}

start() {
  [ -x "$RSYSLOGD" ] || { log "$RSYSLOGD is missing: apt-get install --no-install-recommends rsyslog rsyslog-gnutls"; exit 1; }
  local dir tcp_port tls_port action tcp_file tls_file
  dir=$(mktemp -d /tmp/audit-rsyslog.XXXXXX)
  make_certs "$dir"
  tcp_port=$(free_port)
  tls_port=$(free_port)
  tcp_file=$dir/tcp.log
  tls_file=$dir/tls.log
  if [ "${AUDIT_RSYSLOG_DISCARD:-0}" = 1 ]; then
    tcp_file=/dev/null
    tls_file=/dev/null
  fi
  # Buffered, written by a background thread, flushed when the buffer fills.
  action='template="raw" asyncWriting="on" flushOnTXEnd="off" ioBufferSize="1m"'
  tcp_action="action(type=\"omfile\" file=\"$tcp_file\" $action)"
  tls_action="action(type=\"omfile\" file=\"$tls_file\" $action)"
  cat > "$dir/rsyslog.conf" <<CONF
global(workDirectory="$dir" maxMessageSize="64k"
  DefaultNetstreamDriverCAFile="$dir/ca.pem" DefaultNetstreamDriverCertFile="$dir/server.pem" DefaultNetstreamDriverKeyFile="$dir/server.key")
module(load="imtcp" maxSessions="100")
template(name="raw" type="string" string="%rawmsg%\n")
ruleset(name="tcp") { $tcp_action }
ruleset(name="tls") { $tls_action }
input(type="imtcp" address="127.0.0.1" port="$tcp_port" ruleset="tcp")
input(type="imtcp" address="127.0.0.1" port="$tls_port" ruleset="tls" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")
CONF
  "$RSYSLOGD" -n -f "$dir/rsyslog.conf" -i "$dir/rsyslogd.pid" >/dev/null 2>"$dir/rsyslogd.err" &
  echo $! > "$dir/pid"
  for port in "$tcp_port" "$tls_port"; do
    for _ in $(seq 300); do
      (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
      sleep 0.1
    done
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { log "rsyslogd does not listen on $port: $(cat "$dir/rsyslogd.err")"; exit 1; }
  done
  echo "export AUDIT_RSYSLOG_DIR=$dir"
  echo "export AUDIT_RSYSLOG_TCP=127.0.0.1:$tcp_port"
  echo "export AUDIT_RSYSLOG_TLS=127.0.0.1:$tls_port"
  echo "export AUDIT_RSYSLOG_CA=$dir/ca.pem"
}

stop() {
  local dir=${1:?usage: rsyslog.sh stop DIR}
  if [ -f "$dir/pid" ]; then
    kill "$(cat "$dir/pid")" 2>/dev/null || true
  fi
  rm -rf "$dir"
}

case "${1:-}" in
  start) start ;;
  stop) stop "${2:-}" ;;
  *) log "usage: rsyslog.sh start | stop DIR"; exit 2 ;;
esac
