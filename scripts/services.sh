#!/usr/bin/env bash
# Ensure natter's backing services: reuse one already listening at its configured
# address, else install what is missing (Debian/Ubuntu) and start a throwaway
# instance with its data under .data/ (never through systemd).
#
#   scripts/services.sh start [SERVICE...]  mysql redis nats s3 (default: all four);
#                                           redis-bin only installs redis-server
#   scripts/services.sh stop [ID...]        stop what these scripts started (default:
#                                           all; ID is a service or service-port)
#   scripts/services.sh status              what listens where, and what is ours
#   scripts/services.sh env                 export lines for the configured addresses
#
# Addresses (env): MYSQL_ADDR or MYSQL_DSN, REDIS_ADDR, NATS_URL, S3_ENDPOINT; see
# scripts/lib.sh. STARTED_FILE, if set, receives the id of each service this run
# started (one a line), so a caller can stop exactly those.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

mkdir -p "$RUN" "$LOGS"

started() { # ID
  [[ -n "${STARTED_FILE:-}" ]] && echo "$1" >>"$STARTED_FILE"
  return 0
}

# spawn ID LOGFILE CMD...: start CMD in its own session (so a terminal's signals
# or hangup do not reach it), stdin closed, output to LOGFILE; record its pid.
spawn() {
  local id="$1" logf="$2"; shift 2
  (cd "${SPAWN_CWD:-$ROOT}" && exec setsid "$@" </dev/null >>"$logf" 2>&1) &
  SPAWNED=$!
  record_pid "$id" "$SPAWNED" "$1"
  started "$id"
}

need_local() { # NAME ADDR ENVVAR
  is_local "$(host_of "$2")" ||
    die "$1: nothing listens at $2 and it is not a local address, so it cannot be started here (set $3)"
}

# ---- MariaDB / MySQL ---------------------------------------------------------------
start_mysql() {
  local host port id dir logf
  host="$(host_of "$MYSQL_ADDR")" port="$(port_of "$MYSQL_ADDR")" id="mysql-$port"
  if listening "$host" "$port"; then
    local admin
    if admin="$(first_cmd mariadb-admin mysqladmin)" &&
      ! "$admin" --no-defaults --protocol=tcp -h"$(connect_host "$host")" -P"$port" -uroot \
        --connect-timeout=3 ping >/dev/null 2>&1; then
      warn "mysql: $MYSQL_ADDR accepts connections but does not answer a MySQL ping"
    fi
    # The default DSN logs in as root without a password over TCP; a server installed
    # as a system service often allows root only through its unix socket.
    local client err
    if [[ "$MYSQL_DSN" == root@tcp\(* ]] && client="$(first_cmd mariadb mysql)" &&
      ! err="$("$client" --no-defaults --protocol=tcp -h"$(connect_host "$host")" -P"$port" -uroot \
        --connect-timeout=3 -e 'SELECT 1' 2>&1 >/dev/null)"; then
      warn "mysql: root without a password cannot log in at $MYSQL_ADDR over TCP: ${err%%$'\n'*}"
      warn "mysql: set MYSQL_DSN=user:password@tcp($MYSQL_ADDR)/natter (a user that may create databases)"
    fi
    if ours_alive "$id"; then ok "mysql: $MYSQL_ADDR (ours, started earlier)"
    else ok "mysql: reusing the server at $MYSQL_ADDR"; fi
    return
  fi
  need_local mysql "$MYSQL_ADDR" "MYSQL_DSN or MYSQL_ADDR"

  local bin installdb
  if ! bin="$(first_cmd mariadbd mysqld)" || ! installdb="$(first_cmd mariadb-install-db mysql_install_db)"; then
    apt_install mariadb-server-core mariadb-client
    bin="$(first_cmd mariadbd mysqld)" || die "mariadbd not found after installing mariadb-server-core"
    installdb="$(first_cmd mariadb-install-db mysql_install_db)" || die "mariadb-install-db not found"
  fi
  "$bin" --version 2>/dev/null | grep -qi mariadb ||
    die "mysql: $bin is not MariaDB; start MySQL yourself at $MYSQL_ADDR (or install mariadb-server-core)"

  dir="$DATA/$id" logf="$LOGS/$id.log"
  if [[ ! -d "$dir/mysql" ]]; then
    log "mysql: initialising a throwaway MariaDB in ${dir#"$ROOT"/}"
    rm -rf "$dir" && mkdir -p "$dir"
    "$installdb" --no-defaults --datadir="$dir" --auth-root-authentication-method=normal \
      --skip-test-db >"$LOGS/$id-init.log" 2>&1 ||
      { tail -n 20 "$LOGS/$id-init.log" >&2; die "mariadb-install-db failed (log: $LOGS/$id-init.log)"; }
  fi
  local sock="$dir/mysqld.sock"
  (( ${#sock} > 100 )) && sock="/tmp/natter-$id.sock" # unix socket paths are short
  local args=(--no-defaults --datadir="$dir" --port="$port" --bind-address="$host"
    --socket="$sock" --pid-file="$dir/mysqld.pid" --log-error="$logf"
    --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci
    --max-connections=1000 --innodb-buffer-pool-size=256M
    --innodb-flush-log-at-trx-commit=2)
  [[ $(id -u) -eq 0 ]] && args+=(--user=root)
  log "mysql: starting MariaDB at $host:$port"
  spawn "$id" "$logf" "$bin" "${args[@]}"
  wait_listening mysql "$host" "$port" 60 "$SPAWNED" "$logf"
  ok "mysql: MariaDB at $host:$port (pid $SPAWNED, data ${dir#"$ROOT"/})"
}

# ---- Redis -------------------------------------------------------------------------
redis_bin() {
  local bin
  if ! bin="$(first_cmd redis-server)"; then
    apt_install redis-server
    bin="$(first_cmd redis-server)" || die "redis-server not found after installing it"
  fi
  echo "$bin"
}

start_redis_bin() {
  local bin; bin="$(redis_bin)"
  ok "redis-server: $bin (tests start their own private instances)"
}

redis_ping() { # HOST PORT
  local h; h="$(connect_host "$1")"
  timeout 3 bash -c "exec 3<>/dev/tcp/$h/$2; printf 'PING\r\n' >&3; head -c 5 <&3" 2>/dev/null |
    grep -q -e '+PONG' -e '-NOAU'
}

start_redis() {
  local host port id dir logf bin
  host="$(host_of "$REDIS_ADDR")" port="$(port_of "$REDIS_ADDR")" id="redis-$port"
  bin="$(redis_bin)"
  if listening "$host" "$port"; then
    redis_ping "$host" "$port" || warn "redis: $REDIS_ADDR accepts connections but does not answer PING"
    if ours_alive "$id"; then ok "redis: $REDIS_ADDR (ours, started earlier)"
    else ok "redis: reusing the server at $REDIS_ADDR"; fi
    return
  fi
  need_local redis "$REDIS_ADDR" REDIS_ADDR
  dir="$DATA/$id" logf="$LOGS/$id.log"
  mkdir -p "$dir"
  log "redis: starting redis-server at $host:$port (no persistence)"
  spawn "$id" "$logf" "$bin" --bind "$host" --port "$port" --save "" --appendonly no \
    --daemonize no --dir "$dir"
  wait_listening redis "$host" "$port" 20 "$SPAWNED" "$logf"
  ok "redis: $host:$port (pid $SPAWNED)"
}

# ---- NATS --------------------------------------------------------------------------
start_nats() {
  local host port id logf bin
  host="$(host_of "$NATS_ADDR")" port="$(port_of "$NATS_ADDR")" id="nats-$port"
  if listening "$host" "$port"; then
    timeout 3 bash -c "exec 3<>/dev/tcp/$(connect_host "$host")/$port; head -c 4 <&3" 2>/dev/null | grep -q INFO ||
      warn "nats: $NATS_ADDR accepts connections but does not greet like NATS"
    if ours_alive "$id"; then ok "nats: $NATS_ADDR (ours, started earlier)"
    else ok "nats: reusing the server at $NATS_ADDR"; fi
    return
  fi
  need_local nats "$NATS_ADDR" NATS_URL
  bin="$(tool_path_verbose nats-server)"
  logf="$LOGS/$id.log"
  # dev.conf keeps JetStream in .data/nats (relative to the working directory): the
  # default port runs from the repo, another port from its own folder, so two
  # throwaway servers never share a store. Monitoring on port+4000 (4222 -> 8222).
  local cwd="$ROOT"
  [[ "$port" == 4222 ]] || { cwd="$DATA/$id"; mkdir -p "$cwd"; }
  log "nats: starting nats-server (JetStream, nats-config/dev.conf) at $host:$port"
  SPAWN_CWD="$cwd" spawn "$id" "$logf" "$bin" -c "$ROOT/nats-config/dev.conf" -a "$host" -p "$port" \
    -m $((port + 4000))
  wait_listening nats "$host" "$port" 30 "$SPAWNED" "$logf"
  ok "nats: $host:$port (pid $SPAWNED, JetStream in ${cwd#"$ROOT"/}/.data/nats, monitor :$((port + 4000)))"
}

# ---- S3 (versitygw, Apache-2.0, posix backend) ------------------------------------
start_s3() {
  local host port id base logf bin
  host="$(host_of "$S3_ENDPOINT")" port="$(port_of "$S3_ENDPOINT")" id="s3-$port"
  if listening "$host" "$port"; then
    if ours_alive "$id"; then ok "s3: $S3_ENDPOINT (ours, started earlier)"
    else ok "s3: reusing the server at $S3_ENDPOINT"; fi
    return
  fi
  need_local s3 "$S3_ENDPOINT" S3_ENDPOINT
  bin="$(tool_path_verbose versitygw -modfile=tools/go.mod)"
  base="$DATA/$id" logf="$LOGS/$id.log"
  mkdir -p "$base/buckets" "$base/meta"
  # Object metadata lives in user xattrs when the filesystem has them; otherwise in
  # a sidecar folder. The choice sticks to the data folder (mode file).
  local mode="${NATTER_S3_META:-}"
  [[ -z "$mode" && -f "$base/mode" ]] && mode="$(cat "$base/mode")"
  local try
  for try in ${mode:-xattr sidecar}; do
    local args=(--access "$S3_ACCESS_KEY" --secret "$S3_SECRET_KEY" --region "$S3_REGION"
      --port "$host:$port" --quiet posix)
    [[ "$try" == sidecar ]] && args+=(--sidecar "$base/meta")
    args+=("$base/buckets")
    log "s3: starting versitygw posix ($try metadata) at $host:$port"
    : >"$logf"
    spawn "$id" "$logf" "$bin" "${args[@]}"
    local deadline=$((SECONDS + 30))
    while ! listening "$host" "$port" && pid_running "$SPAWNED" && ((SECONDS < deadline)); do sleep 0.2; done
    if ! pid_running "$SPAWNED" && [[ "$try" == xattr && -z "$mode" ]] && grep -qi xattr "$logf"; then
      warn "s3: this filesystem has no user xattrs; using a sidecar metadata folder instead"
      rm -f "$RUN/$id.pid"
      continue
    fi
    wait_listening s3 "$host" "$port" 1 "$SPAWNED" "$logf"
    echo "$try" >"$base/mode"
    ok "s3: versitygw at http://$host:$port (pid $SPAWNED, buckets in ${base#"$ROOT"/}/buckets, $try metadata)"
    return
  done
  die "s3: versitygw did not start (log: $logf)"
}

# ---- commands ----------------------------------------------------------------------
cmd_start() {
  local svcs=("$@")
  ((${#svcs[@]})) || svcs=(mysql redis nats s3)
  local s
  for s in "${svcs[@]}"; do
    case "$s" in
      mysql) start_mysql ;;
      redis) start_redis ;;
      redis-bin) start_redis_bin ;;
      nats) start_nats ;;
      s3) start_s3 ;;
      *) die "unknown service $s (mysql, redis, redis-bin, nats, s3)" ;;
    esac
  done
}

cmd_stop() {
  local f id sel
  shopt -s nullglob
  local files=("$RUN"/*.pid)
  ((${#files[@]})) || { ok "nothing of ours is running"; return; }
  # Apps (edge, functions) first, then the services they use.
  for f in "$RUN"/edge*.pid "$RUN"/functions*.pid "$RUN"/*.pid; do
    [[ -f "$f" ]] || continue
    id="$(basename "$f" .pid)"
    if (($#)); then
      local match=
      for sel in "$@"; do [[ "$id" == "$sel" || "$id" == "$sel"-* ]] && match=1; done
      [[ -n "$match" ]] || continue
    fi
    stop_id "$id"
  done
}

cmd_status() {
  local name addr host port
  for name in mysql redis nats s3; do
    case $name in
      mysql) addr="$MYSQL_ADDR" ;; redis) addr="$REDIS_ADDR" ;;
      nats) addr="$NATS_ADDR" ;; s3) addr="$S3_ENDPOINT" ;;
    esac
    host="$(host_of "$addr")" port="$(port_of "$addr")"
    if ours_alive "$name-$port"; then
      printf '%-6s %-22s running (ours, pid %s)\n' "$name" "$addr" "$(cut -d' ' -f1 "$RUN/$name-$port.pid")"
    elif listening "$host" "$port"; then
      printf '%-6s %-22s running (not ours: reused)\n' "$name" "$addr"
    else
      printf '%-6s %-22s not running\n' "$name" "$addr"
    fi
  done
  local f
  for f in "$RUN"/*.pid; do
    [[ -f "$f" ]] || continue
    local id; id="$(basename "$f" .pid)"
    ours_alive "$id" || { rm -f "$f"; continue; }
    case "$id" in mysql-*|redis-*|nats-*|s3-*) ;; *) printf '%-29s running (ours, pid %s)\n' "$id" "$(cut -d' ' -f1 "$f")" ;; esac
  done
}

cmd_env() {
  local v
  for v in MYSQL_DSN REDIS_ADDR NATS_URL S3_ENDPOINT S3_ACCESS_KEY S3_SECRET_KEY S3_REGION S3_BUCKET; do
    printf 'export %s=%q\n' "$v" "${!v}"
  done
}

case "${1:-}" in
  start) shift; cmd_start "$@" ;;
  stop|down) shift; cmd_stop "$@" ;;
  status) cmd_status ;;
  env) cmd_env ;;
  *) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
