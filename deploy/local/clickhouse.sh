#!/usr/bin/env bash
# Runs a project-local ClickHouse server for the demo and the tests, without systemd and without root
# once the packages are installed.
#
#   deploy/local/clickhouse.sh start    install the Debian packages when missing, start, wait for /ping
#   deploy/local/clickhouse.sh stop     stop the server this script started, by its PID
#   deploy/local/clickhouse.sh status   print whether it runs and where
#
# The server listens on 127.0.0.1 only and keeps its data, logs and PID file under .data/clickhouse in
# the repository. Environment: CLICKHOUSE_HTTP_PORT (default 8123), CLICKHOUSE_TCP_PORT (default 9000),
# TISYNC_DATA_DIR (default <repository>/.data). Running start twice is harmless.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
data_root=${TISYNC_DATA_DIR:-$repo/.data}
dir=$data_root/clickhouse
http_port=${CLICKHOUSE_HTTP_PORT:-8123}
tcp_port=${CLICKHOUSE_TCP_PORT:-9000}
pid_file=$dir/clickhouse-server.pid
ports_file=$dir/ports
server_bin=/usr/sbin/clickhouse-server

log() { printf 'clickhouse.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

ping_ok() { curl -fsS --max-time 2 "http://127.0.0.1:$http_port/ping" >/dev/null 2>&1; }

running_pid() {
  [[ -f $pid_file ]] || return 1
  local pid
  pid=$(<"$pid_file")
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

# port_in_use PORT reports whether something already listens on 127.0.0.1:PORT.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

install_packages() {
  if [[ -x $server_bin ]] && command -v clickhouse-client >/dev/null; then
    return
  fi
  log "installing Debian's clickhouse-server and clickhouse-client with apt-get"
  local sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || die "clickhouse-server is not installed and this user is not root: run 'apt-get install clickhouse-server clickhouse-client' as root"
    sudo=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  if ! "${sudo[@]}" apt-get install -y --no-install-recommends clickhouse-server clickhouse-client curl >/dev/null; then
    "${sudo[@]}" apt-get update -q >/dev/null
    "${sudo[@]}" apt-get install -y --no-install-recommends clickhouse-server clickhouse-client curl >/dev/null
  fi
  [[ -x $server_bin ]] || die "apt-get finished but $server_bin is missing"
}

write_config() {
  mkdir -p "$dir/data" "$dir/tmp" "$dir/user_files" "$dir/format_schemas" "$dir/log"
  sed -e "s|@DIR@|$dir|g" -e "s|@HTTP_PORT@|$http_port|g" -e "s|@TCP_PORT@|$tcp_port|g" \
    "$repo/deploy/local/clickhouse-config.xml" >"$dir/config.xml"
  cp "$repo/deploy/local/clickhouse-users.xml" "$dir/users.xml"
}

# check_ports fails when the server this script started listens on other ports than requested:
# the PID file alone cannot tell, and a ping on the requested port may reach another server.
check_ports() {
  local pid=$1 running
  [[ -f $ports_file ]] || return 0 # started by an older version of this script
  running=$(<"$ports_file")
  if [[ $running != "$http_port $tcp_port" ]]; then
    die "the server this script started (PID $pid) listens on HTTP and native ports $running, not $http_port $tcp_port: stop it with the ports it was started with, or use those ports"
  fi
}

start() {
  command -v curl >/dev/null || install_packages
  install_packages
  if pid=$(running_pid); then
    check_ports "$pid"
    if ping_ok; then
      log "already running (PID $pid) on 127.0.0.1:$tcp_port (native) and :$http_port (HTTP)"
      return
    fi
  fi
  for port in "$http_port" "$tcp_port"; do
    if port_in_use "$port"; then
      die "port $port on 127.0.0.1 is already in use by another process; stop that process or choose other ports with CLICKHOUSE_HTTP_PORT and CLICKHOUSE_TCP_PORT"
    fi
  done
  write_config
  rm -f "$pid_file"
  log "starting clickhouse-server with data in $dir"
  # setsid detaches the server from this shell's process group, so that Ctrl-C in a terminal that
  # later runs tisync does not reach it. Stop it with this script.
  # NB: 18.16 writes no PID file unless it daemonizes, so the script records the PID itself. setsid
  # does not fork here because a background job of a non-interactive shell is no group leader.
  setsid "$server_bin" --config-file="$dir/config.xml" >>"$dir/log/stdout.log" 2>&1 </dev/null &
  local started=$!
  echo "$started" >"$pid_file"
  echo "$http_port $tcp_port" >"$ports_file"
  for _ in $(seq 1 120); do
    if ping_ok; then
      log "ready (PID $started) on 127.0.0.1:$tcp_port (native) and :$http_port (HTTP)"
      return
    fi
    if ! kill -0 "$started" 2>/dev/null; then
      tail -n 20 "$dir/log/clickhouse-server.err.log" >&2 2>/dev/null || true
      die "clickhouse-server exited during start-up; the log is in $dir/log"
    fi
    sleep 0.5
  done
  die "clickhouse-server did not respond on http://127.0.0.1:$http_port/ping within 60 seconds; the log is in $dir/log"
}

stop() {
  local pid
  if ! pid=$(running_pid); then
    log "not running"
    rm -f "$pid_file"
    return
  fi
  kill "$pid"
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || { log "stopped (PID $pid)"; rm -f "$pid_file"; return; }
    sleep 0.5
  done
  log "PID $pid did not stop within 30 seconds; sending SIGKILL"
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$pid_file"
}

status() {
  local pid
  if pid=$(running_pid); then
    check_ports "$pid"
  fi
  if pid=$(running_pid) && ping_ok; then
    echo "running (PID $pid) on 127.0.0.1:$tcp_port (native) and :$http_port (HTTP), data in $dir"
  else
    echo "not running"
    return 3
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
