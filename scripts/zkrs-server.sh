#!/usr/bin/env bash
# zkrs-server.sh: starts, stops and checks a zkrs server as Apache ZooKeeper's zkServer.sh
# does, with the same commands, options, environment variables and messages, so scripts
# written around zkServer.sh work unchanged:
#
#   zkrs-server.sh [--config <conf-dir>] {start|start-foreground|stop|restart|status|print-cmd|version} [zoo.cfg]
#
# ZOOCFGDIR (the conf dir: /etc/zkrs when installed, else ../conf), ZOOCFG (zoo.cfg),
# ZOO_LOG_DIR (the log dir, passed to zkrs as ZKRS_LOG_DIR), ZOOPIDFILE (default
# <dataDir>/zookeeper_server.pid), ZOO_LOG_FILE's .out companion, and zookeeper-env.sh /
# zkrs-env.sh in the conf dir are read as zkServer.sh reads them. Unlike zkServer.sh,
# the dataDir and client port are read by zkrs itself (`zkrs config check`), so the
# wrapper sees the zoo.cfg exactly as the server does (Java properties syntax, a
# dynamicConfigFile, a member's client address).
set -uo pipefail

ZOOBIN="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ZKRS="${ZKRS:-}"
if [ -z "$ZKRS" ]; then
  for candidate in "$ZOOBIN/zkrs" "$ZOOBIN/../target/release/zkrs" "$(command -v zkrs 2>/dev/null)"; do
    [ -n "$candidate" ] && [ -x "$candidate" ] && { ZKRS="$candidate"; break; }
  done
fi
[ -n "$ZKRS" ] || { echo "zkrs-server.sh: cannot find the zkrs binary (set ZKRS)" >&2; exit 1; }

if [ "${1:-}" = "--config" ]; then
  [ $# -ge 2 ] || { echo "Error: --config needs a conf dir" >&2; exit 1; }
  ZOOCFGDIR="$2"
  shift 2
fi
if [ -z "${ZOOCFGDIR:-}" ]; then
  if [ -d /etc/zkrs ] && [ "$ZOOBIN" = /usr/bin ]; then ZOOCFGDIR=/etc/zkrs; else ZOOCFGDIR="$ZOOBIN/../conf"; fi
fi
for env_file in zookeeper-env.sh zkrs-env.sh; do
  # shellcheck disable=SC1090
  [ -f "$ZOOCFGDIR/$env_file" ] && . "$ZOOCFGDIR/$env_file"
done
ZOOCFG="${ZOOCFG:-zoo.cfg}"
ZOOCFG="$ZOOCFGDIR/$ZOOCFG"
if [ -n "${2:-}" ]; then
  ZOOCFG="$ZOOCFGDIR/$2"
  [ "$(dirname "$ZOOCFG")" = "$ZOOCFGDIR" ] || ZOOCFG="$2"
  case "$2" in */*) ZOOCFG="$2" ;; esac
fi
echo "Using config: $ZOOCFG" >&2

if [ -z "${ZOO_LOG_DIR:-}" ]; then
  if [ "$ZOOBIN" = /usr/bin ]; then ZOO_LOG_DIR=/var/log/zkrs; else ZOO_LOG_DIR="$ZOOBIN/../logs"; fi
fi
USER="${USER:-$(id -un)}"
HOSTNAME="${HOSTNAME:-$(hostname)}"
_ZOO_DAEMON_OUT="$ZOO_LOG_DIR/zkrs-$USER-server-$HOSTNAME.out"

# One value of `zkrs config check`'s output (key=value lines).
checked() {
  "$ZKRS" config check "$ZOOCFG" 2>/dev/null | sed -n "s/^$1=//p" | head -n 1
}

pid_file() {
  if [ -n "${ZOOPIDFILE:-}" ]; then
    mkdir -p "$(dirname "$ZOOPIDFILE")"
    echo "$ZOOPIDFILE"
    return
  fi
  local data_dir
  data_dir=$(checked dataDir)
  [ -n "$data_dir" ] || return 1
  mkdir -p "$data_dir"
  echo "$data_dir/zookeeper_server.pid"
}

command_line() {
  echo "ZKRS_LOG_DIR=\"$ZOO_LOG_DIR\" nohup \"$ZKRS\" server \"$ZOOCFG\" > \"$_ZOO_DAEMON_OUT\" 2>&1 < /dev/null"
}

case "${1:-}" in
start)
  echo -n "Starting zkrs ... "
  if ! problems=$("$ZKRS" config check "$ZOOCFG" 2>&1 >/dev/null); then
    echo "FAILED TO START"
    echo "$problems" >&2
    exit 2
  fi
  ZOOPIDFILE=$(pid_file) || { echo "FAILED TO START (no dataDir)"; exit 1; }
  if [ -f "$ZOOPIDFILE" ] && kill -0 "$(cat "$ZOOPIDFILE")" >/dev/null 2>&1; then
    echo "zkrs already running as process $(cat "$ZOOPIDFILE")."
    exit 1
  fi
  mkdir -p "$ZOO_LOG_DIR"
  ZKRS_LOG_DIR="$ZOO_LOG_DIR" nohup "$ZKRS" server "$ZOOCFG" >"$_ZOO_DAEMON_OUT" 2>&1 </dev/null &
  pid=$!
  if ! echo -n "$pid" >"$ZOOPIDFILE"; then
    echo "FAILED TO WRITE PID"
    exit 1
  fi
  sleep 1
  if kill -0 "$pid" >/dev/null 2>&1; then
    echo STARTED
  else
    echo "FAILED TO START"
    tail -n 5 "$_ZOO_DAEMON_OUT" >&2
    exit 1
  fi
  ;;
start-foreground)
  exec "$ZKRS" server "$ZOOCFG"
  ;;
print-cmd)
  command_line
  ;;
stop)
  echo -n "Stopping zkrs ... "
  ZOOPIDFILE=$(pid_file) || ZOOPIDFILE=""
  if [ -z "$ZOOPIDFILE" ] || [ ! -f "$ZOOPIDFILE" ]; then
    echo "no zkrs to stop (could not find file $ZOOPIDFILE)"
  else
    pid=$(cat "$ZOOPIDFILE")
    kill "$pid" 2>/dev/null
    rm -f "$ZOOPIDFILE"
    # zkServer.sh sleeps a second; zkrs waits for the server to finish its shutdown.
    for _ in $(seq 1 600); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    echo STOPPED
  fi
  exit 0
  ;;
version)
  "$ZKRS" --version
  ;;
restart)
  shift
  "$0" stop "$@"
  sleep 3
  "$0" start "$@"
  ;;
status)
  address=$(checked clientAddress)
  if [ -z "$address" ] || [ "$address" = none ]; then
    echo "Unable to find either secure or unsecure client port in any configs. Terminating."
    exit 1
  fi
  port=${address##*:}
  host=${address%:*}
  host=${host#[}
  host=${host%]}
  case "$host" in 0.0.0.0) host=127.0.0.1 ;; ::) host=::1 ;; esac
  echo "Client port found: $port. Client address: $host. Client SSL: false."
  STAT=$(timeout 5 bash -c 'exec 3<>"/dev/tcp/$1/$2"; printf srvr >&3; cat <&3' _ "$host" "$port" 2>/dev/null | grep Mode)
  if [ -z "$STAT" ]; then
    echo "Error contacting service. It is probably not running."
    exit 1
  fi
  echo "$STAT"
  exit 0
  ;;
*)
  echo "Usage: $0 [--config <conf-dir>] {start|start-foreground|stop|version|restart|status|print-cmd}" >&2
  ;;
esac
