#!/usr/bin/env bash
# The chaos matrix and the soak run, on a throwaway natter of their own.
#
#   scripts/chaos.sh [ROW...]          every row of the matrix (default), or the rows named
#   scripts/chaos.sh soak [DURATION]   a moderate mixed load for DURATION (default 1h),
#                                      watching the workers' and edges' /metrics
#   scripts/chaos.sh fault ROW         inject one row's fault (the load tool runs this)
#
# Rows: baseline worker-kill workers-kill nats-restart redis-flush mysql-kill
#       edge-restart edge-kill
#
# It starts its own MariaDB, Redis and NATS on dedicated ports (never the shared ones:
# nothing is killed that these scripts did not start), two functions workers and two
# edges, with their data, pid files and logs under .data/chaos/. For each row it runs
# the load tool's chaos scenario: 1:1 messages and a 500-member group at once, the
# row's fault injected 10 s in, a drain while resends, reconnects and syncs settle,
# and a check that nothing was lost, shown twice or out of order. It prints the
# matrix and, after a full run, writes it into docs/reliability.md. Everything it
# started is stopped when it ends, however it ends. See docs/reliability.md.
#
# Env (defaults): CHAOS_MYSQL_PORT 13306, CHAOS_REDIS_PORT 16380, CHAOS_NATS_PORT
# 14223, CHAOS_EDGE_PORTS "18080 18081", CHAOS_METRICS_PORTS "19101 19102",
# CHAOS_DURATION 30s (sending, per row), CHAOS_FAULT_AT 10s, CHAOS_DOWN 2 (seconds a
# killed process stays down), CHAOS_BUDGET 900 (seconds: no row starts after that
# many), CHAOS_ROW_TIMEOUT 150s (the load tool's -timeout for one row), CHAOS_LOAD (extra
# load-tool flags), CHAOS_DOC (docs/reliability.md; empty: do not write it).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# Our own addresses and state, whatever the environment or .env says about the
# shared services: these are what this script may stop and kill.
CHAOS_MYSQL_PORT="${CHAOS_MYSQL_PORT:-13306}"
CHAOS_REDIS_PORT="${CHAOS_REDIS_PORT:-16380}"
CHAOS_NATS_PORT="${CHAOS_NATS_PORT:-14223}"
read -r -a EDGE_PORTS <<<"${CHAOS_EDGE_PORTS:-18080 18081}"
read -r -a METRICS_PORTS <<<"${CHAOS_METRICS_PORTS:-19101 19102}"
export NATTER_DATA="${NATTER_CHAOS_DATA:-$(cd "$here/.." && pwd)/.data/chaos}"
export MYSQL_ADDR="127.0.0.1:$CHAOS_MYSQL_PORT"
export MYSQL_DSN="root@tcp($MYSQL_ADDR)/natter_chaos"
export REDIS_ADDR="127.0.0.1:$CHAOS_REDIS_PORT"
export NATS_URL="nats://127.0.0.1:$CHAOS_NATS_PORT"
export NATS_ADDR="127.0.0.1:$CHAOS_NATS_PORT"
export CHAOS_MYSQL_PORT CHAOS_REDIS_PORT CHAOS_NATS_PORT CHAOS_EDGE_PORTS CHAOS_METRICS_PORTS
# shellcheck source=scripts/lib.sh
source "$here/lib.sh"
cd "$ROOT"

BIN="$DATA/bin"
DOWN="${CHAOS_DOWN:-2}"
# The shared services of this machine: never ours to stop.
SHARED_PORTS=(3306 6379 4222 7070 8080 9101)

all_rows=(baseline worker-kill workers-kill nats-restart redis-flush mysql-kill edge-restart edge-kill)

label() {
  case "$1" in
    baseline) echo "none (baseline)" ;;
    worker-kill) echo "worker kill -9 (one of two), restarted" ;;
    workers-kill) echo "worker kill -9 (both), restarted" ;;
    nats-restart) echo "NATS restart" ;;
    redis-flush) echo "Redis FLUSHALL" ;;
    mysql-kill) echo "MariaDB kill -9, restarted" ;;
    edge-restart) echo "edge restart (graceful, one of two)" ;;
    edge-kill) echo "edge kill -9 (one of two), restarted" ;;
    *) return 1 ;;
  esac
}

# ---- our processes -----------------------------------------------------------------
# start_app NAME N: start worker or edge N (1-based) in its own session, output to
# its log, pid recorded as NAME-N; the NATS user and password come from lib.sh.
start_app() {
  local name="$1" n="$2" id="$1-$2" logf="$LOGS/$1-$2.log"
  local -a env=(AUTH_DEV=true ADMIN_AUTH_DEV=true LOG_LEVEL="${LOG_LEVEL:-info}" LOG_PRETTY=false)
  case "$name" in
    functions)
      env+=(NATS_USER="${NATS_FUNCTIONS_USER:-functions}" NATS_PASSWORD="$NATS_FUNCTIONS_PASSWORD"
        METRICS_ADDR="127.0.0.1:${METRICS_PORTS[$((n - 1))]}") ;;
    edge)
      env+=(EDGE_ADMIN=false NATS_USER="${NATS_EDGE_USER:-edge}" NATS_PASSWORD="$NATS_EDGE_PASSWORD"
        EDGE_ADDR="127.0.0.1:${EDGE_PORTS[$((n - 1))]}" EDGE_DEBUG_ADDR= EDGE_ID="chaos-edge-$n"
        EDGE_RATE_LIMIT=-1 EDGE_HTTP_PUBLIC_LIMIT=-1 EDGE_HTTP_USER_LIMIT=-1) ;;
  esac
  (exec setsid env "${env[@]}" "$BIN/natter-$name" </dev/null >>"$logf" 2>&1) &
  record_pid "$id" "$!" "$BIN/natter-$name"
  disown "$!" # killing it is a fault, not news
}

app_url() { # NAME N: its health URL
  case "$1" in
    functions) echo "http://127.0.0.1:${METRICS_PORTS[$(($2 - 1))]}/healthz" ;;
    edge) echo "http://127.0.0.1:${EDGE_PORTS[$(($2 - 1))]}/readyz" ;;
  esac
}

# wait_ready NAME N [SECONDS]: until its health URL answers 200.
wait_ready() {
  local url deadline=$((SECONDS + ${3:-60}))
  url="$(app_url "$1" "$2")"
  until [[ "$(curl -s -m 2 -o /dev/null -w '%{http_code}' "$url" 2>/dev/null)" == 200 ]]; do
    ours_alive "$1-$2" || { tail -n 20 "$LOGS/$1-$2.log" >&2; die "$1-$2 exited (log: $LOGS/$1-$2.log)"; }
    ((SECONDS < deadline)) || die "$1-$2 not ready at $url within ${3:-60}s (log: $LOGS/$1-$2.log)"
    sleep 0.2
  done
}

# kill9 ID: SIGKILL a process these scripts started, and wait until it is gone.
kill9() {
  local pid _
  ours_alive "$1" || die "kill9: $1 is not running (or not ours)"
  read -r pid _ <"$RUN/$1.pid"
  kill -KILL "$pid"
  while pid_running "$pid"; do sleep 0.05; done
  rm -f "$RUN/$1.pid"
}

healthy() {
  local n
  for n in 1 2; do wait_ready functions "$n" 60; done
  for n in 1 2; do wait_ready edge "$n" 60; done
}

# ---- faults ------------------------------------------------------------------------
fault() {
  local row="$1" n
  log "fault: $(label "$row")" >&2
  case "$row" in
    baseline) ;;
    worker-kill)
      kill9 functions-1; sleep "$DOWN"
      start_app functions 1; wait_ready functions 1 ;;
    workers-kill)
      kill9 functions-1; kill9 functions-2; sleep "$DOWN"
      for n in 1 2; do start_app functions "$n"; done
      for n in 1 2; do wait_ready functions "$n"; done ;;
    nats-restart)
      stop_id "nats-$CHAOS_NATS_PORT" >&2
      bash "$ROOT/scripts/services.sh" start nats >&2
      for n in 1 2; do wait_ready edge "$n"; done ;;
    redis-flush)
      redis-cli -h 127.0.0.1 -p "$CHAOS_REDIS_PORT" FLUSHALL >&2 ;;
    mysql-kill)
      kill9 "mysql-$CHAOS_MYSQL_PORT"; sleep "$DOWN"
      bash "$ROOT/scripts/services.sh" start mysql >&2 ;;
    edge-restart)
      stop_id edge-1 >&2
      start_app edge 1; wait_ready edge 1 ;;
    edge-kill)
      kill9 edge-1; sleep "$DOWN"
      start_app edge 1; wait_ready edge 1 ;;
    *) die "unknown row $row (${all_rows[*]})" ;;
  esac
  log "fault: $(label "$row") done" >&2
}

# ---- the stack ---------------------------------------------------------------------
STARTED=''
cleanup() {
  local rc=$?
  trap '' INT TERM
  if [[ -n "$STARTED" ]]; then
    log "stopping the chaos stack"
    bash "$ROOT/scripts/services.sh" stop || rc=1
  fi
  exit "$rc"
}

start_stack() {
  mkdir -p "$RUN" "$LOGS" "$BIN"
  # A run that died without cleaning up left its processes: ours, so stop them.
  bash "$ROOT/scripts/services.sh" stop >/dev/null
  local p
  for p in "$CHAOS_MYSQL_PORT" "$CHAOS_REDIS_PORT" "$CHAOS_NATS_PORT" $((CHAOS_NATS_PORT + 4000)) \
    "${EDGE_PORTS[@]}" "${METRICS_PORTS[@]}"; do
    [[ " ${SHARED_PORTS[*]} " == *" $p "* ]] && die "port $p belongs to the machine's shared services: pick another (CHAOS_*_PORT)"
    listening 127.0.0.1 "$p" && die "something not started by this script listens on 127.0.0.1:$p: pick other ports (CHAOS_*_PORT)"
  done
  STARTED=1
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  # Nothing listens on our ports, so services.sh starts throwaway servers there.
  bash "$ROOT/scripts/services.sh" start mysql redis nats
  local s
  for s in "mysql-$CHAOS_MYSQL_PORT" "redis-$CHAOS_REDIS_PORT" "nats-$CHAOS_NATS_PORT"; do
    ours_alive "$s" || die "$s is not a server this script started"
  done
  log "go build: functions, edge, loadtest -> ${BIN#"$ROOT"/}"
  go build -o "$BIN/natter-functions" ./functions
  go build -o "$BIN/natter-edge" ./edge
  go build -o "$BIN/natter-load" ./loadtest
  log "fresh database: $MYSQL_DSN"
  "$(first_cmd mariadb mysql)" --no-defaults --protocol=tcp -h127.0.0.1 -P"$CHAOS_MYSQL_PORT" -uroot \
    -e 'DROP DATABASE IF EXISTS natter_chaos'
  AUTH_DEV=true "$BIN/natter-functions" migrate >"$LOGS/migrate.log" 2>&1 ||
    { tail -n 20 "$LOGS/migrate.log" >&2; die "migrate failed"; }
  local n
  for n in 1 2; do start_app functions "$n"; done
  # The edges follow IM_EVENTS, which a worker creates before it is healthy.
  for n in 1 2; do wait_ready functions "$n"; done
  for n in 1 2; do start_app edge "$n"; done
  for n in 1 2; do wait_ready edge "$n"; done
  ok "chaos stack up: edges ${EDGE_PORTS[*]}, workers' metrics ${METRICS_PORTS[*]}, MariaDB $CHAOS_MYSQL_PORT, Redis $CHAOS_REDIS_PORT, NATS $CHAOS_NATS_PORT"
}

edges() {
  local p out=()
  for p in "${EDGE_PORTS[@]}"; do out+=("http://127.0.0.1:$p"); done
  (IFS=,; echo "${out[*]}")
}

# machine: one line on where and when.
machine() {
  printf '%s, %s CPUs (%s), %s GB, load %s, commit %s%s' "$(date -u '+%Y-%m-%d %H:%M UTC')" "$(nproc)" \
    "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)" \
    "$(awk '/MemTotal/ {printf "%.0f", $2/1048576}' /proc/meminfo)" "$(cut -d' ' -f1-3 /proc/loadavg)" \
    "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')" \
    "$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' (with local changes)')"
}

# markdown TSV: the file as a markdown table.
markdown() {
  awk -F'\t' 'NR == 1 { h = "|"; s = "|"; for (i = 1; i <= NF; i++) { h = h " " $i " |"; s = s "---|" } print h; print s; next }
    { r = "|"; for (i = 1; i <= NF; i++) r = r " " $i " |"; print r }' "$1"
}

# write_doc FILE BLOCK: replace what lies between the chaos-matrix markers in FILE.
write_doc() {
  local doc="$1" block="$2"
  if [[ ! -f "$doc" ]] || ! grep -q '<!-- chaos-matrix:begin -->' "$doc"; then
    warn "$doc has no chaos-matrix markers: not written"
    return
  fi
  awk -v blockfile="$block" '
    /<!-- chaos-matrix:begin -->/ { print; while ((getline l < blockfile) > 0) print l; skip = 1; next }
    /<!-- chaos-matrix:end -->/ { skip = 0 }
    !skip { print }' "$doc" >"$doc.tmp" && mv "$doc.tmp" "$doc"
  ok "matrix written into ${doc#"$ROOT"/}"
}

run_matrix() {
  local rows=("$@") r
  ((${#rows[@]})) || rows=("${all_rows[@]}")
  for r in "${rows[@]}"; do label "$r" >/dev/null || die "unknown row $r (${all_rows[*]})"; done
  start_stack
  local stamp tsv failed=()
  stamp="$(date -u +%Y%m%d-%H%M%S)"
  tsv="$DATA/matrix-$stamp.tsv"
  local conditions
  conditions="$(machine)"
  local dur="${CHAOS_DURATION:-30s}" at="${CHAOS_FAULT_AT:-10s}" budget="${CHAOS_BUDGET:-900}" t0=$SECONDS
  for r in "${rows[@]}"; do
    if ((SECONDS - t0 > budget)); then
      failed+=("$r")
      warn "row $r not run: the matrix has used its ${budget}s (CHAOS_BUDGET)"
      continue
    fi
    healthy
    sleep 1
    log "row $r: $(label "$r") — ${dur} of load, the fault at ${at}"
    local rowlog="$LOGS/row-$r-$stamp.txt" before=0
    [[ -f "$tsv" ]] && before=$(wc -l <"$tsv")
    # shellcheck disable=SC2086 # CHAOS_LOAD is a list of flags
    if ! "$BIN/natter-load" chaos -edges "$(edges)" -mysql-dsn "$MYSQL_DSN" -quiet \
      -duration "$dur" -fault-at "$at" -fault "bash '$ROOT/scripts/chaos.sh' fault $r" -fault-name "$(label "$r")" \
      -row "$tsv" -out "$DATA/results" -timeout "${CHAOS_ROW_TIMEOUT:-150s}" ${CHAOS_LOAD:-} >"$rowlog" 2>&1; then
      failed+=("$r")
      warn "row $r failed: $(grep -E '^loadtest:' "$rowlog" | tail -n 1) (log: ${rowlog#"$ROOT"/})"
      if [[ ! -f "$tsv" ]] || (($(wc -l <"$tsv") == before)); then
        [[ -f "$tsv" ]] || printf 'fault\terrors by code\n' >"$tsv"
        printf '%s\trun failed: see %s\n' "$(label "$r")" "${rowlog#"$ROOT"/}" >>"$tsv"
      fi
    else
      ok "row $r: $(tail -n 1 "$tsv" | cut -f2-6 | tr '\t' '|')"
    fi
  done
  echo
  log "chaos matrix ($conditions)"
  column -t -s $'\t' "$tsv" 2>/dev/null || cat "$tsv"
  local md="$DATA/matrix-$stamp.md"
  {
    echo "Measured $conditions: \`go tool task chaos\`, each row ${dur} of 1:1 messages (200 users, 200/s) and a group (500 members, all online, 5 senders, 5/s) at once, the fault ${at} in${CHAOS_LOAD:+, load-tool flags $CHAOS_LOAD}."
    echo
    markdown "$tsv"
  } >"$md"
  echo
  if ((${#rows[@]} == ${#all_rows[@]})) && [[ -n "${CHAOS_DOC-docs/reliability.md}" ]]; then
    write_doc "$ROOT/${CHAOS_DOC:-docs/reliability.md}" "$md"
  else
    log "matrix in ${md#"$ROOT"/} (docs/reliability.md is written after a full run only)"
  fi
  ((${#failed[@]} == 0)) || die "rows failed: ${failed[*]}"
  ok "every row: nothing lost, shown twice or out of order"
}

run_soak() {
  local dur="${1:-1h}"
  start_stack
  local m=() n
  for n in 1 2; do m+=("worker$n=http://127.0.0.1:${METRICS_PORTS[$((n - 1))]}/metrics"); done
  for n in 1 2; do m+=("edge$n=http://127.0.0.1:${EDGE_PORTS[$((n - 1))]}/metrics"); done
  local out
  out="$DATA/soak-$(date -u +%Y%m%d-%H%M%S).txt"
  log "soak: $dur of moderate load; /metrics sampled every 30 s; table in ${out#"$ROOT"/}"
  local rc=0
  # shellcheck disable=SC2086
  "$BIN/natter-load" soak -edges "$(edges)" -mysql-dsn "$MYSQL_DSN" -duration "$dur" -timeout 0 \
    -metrics "$(IFS=,; echo "${m[*]}")" -out "$DATA/results" ${CHAOS_LOAD:-} | tee "$out" || rc=$?
  ((rc == 0)) || die "soak failed (table: ${out#"$ROOT"/})"
  ok "soak passed"
}

case "${1:-}" in
  fault) shift; (($# == 1)) || die "usage: scripts/chaos.sh fault ROW"; fault "$1" ;;
  soak) shift; run_soak "$@" ;;
  -h|--help|help) sed -n '2,/^set -euo pipefail/{/^set /d;p}' "$0" | sed 's/^# \{0,1\}//' ;;
  *) run_matrix "$@" ;;
esac
