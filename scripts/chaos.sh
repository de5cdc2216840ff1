#!/usr/bin/env bash
# The chaos matrix and the soak run, on a throwaway natter of their own.
#
#   scripts/chaos.sh [ROW...]          every row of the matrix (default), or the rows named
#   scripts/chaos.sh soak [DURATION]   a moderate mixed load for DURATION (default 1h),
#                                      watching the workers' and edges' /metrics
#   scripts/chaos.sh fault ROW         inject one row's fault (the load tool runs this)
#   scripts/chaos.sh cluster [ROW...]  the same on a 3-node NATS JetStream cluster
#                                      (nats-config/cluster/n1..n3.conf, ports remapped)
#                                      with three workers and two edges on different
#                                      nodes; rows baseline node-kill worker-kill edge-kill
#                                      by default, a 1,000-member group; streams at R3
#
# Rows: baseline worker-kill workers-kill nats-restart redis-flush mysql-kill
#       edge-restart edge-kill; cluster only: node-kill
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
# load-tool flags), CHAOS_DOC (docs/reliability.md; empty: do not write it). Cluster:
# nodes on CHAOS_NATS_PORT..+2 (monitoring +4000, routes CHAOS_ROUTE_PORT 16222..+2),
# a third worker on the third of CHAOS_METRICS_PORTS (default "19101 19102 19103").
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# Our own addresses and state, whatever the environment or .env says about the
# shared services: these are what this script may stop and kill.
CHAOS_MYSQL_PORT="${CHAOS_MYSQL_PORT:-13306}"
CHAOS_REDIS_PORT="${CHAOS_REDIS_PORT:-16380}"
CHAOS_NATS_PORT="${CHAOS_NATS_PORT:-14223}"
read -r -a EDGE_PORTS <<<"${CHAOS_EDGE_PORTS:-18080 18081}"
read -r -a METRICS_PORTS <<<"${CHAOS_METRICS_PORTS:-19101 19102 19103}"
CHAOS_ROUTE_PORT="${CHAOS_ROUTE_PORT:-16222}"
CLUSTER=''
[[ "${1:-}" == cluster || "${CHAOS_CLUSTER:-}" == 1 ]] && CLUSTER=1
export CHAOS_CLUSTER="${CLUSTER:+1}"
WORKERS=2
[[ -n "$CLUSTER" ]] && WORKERS=3
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
cluster_rows=(baseline node-kill worker-kill edge-kill)

label() {
  case "$1" in
    baseline) echo "none (baseline)" ;;
    worker-kill) echo "worker kill -9 (one of $WORKERS), restarted" ;;
    workers-kill) echo "worker kill -9 (both), restarted" ;;
    nats-restart) echo "NATS restart" ;;
    redis-flush) echo "Redis FLUSHALL" ;;
    mysql-kill) echo "MariaDB kill -9, restarted" ;;
    edge-restart) echo "edge restart (graceful, one of two)" ;;
    edge-kill) echo "edge kill -9 (one of two), restarted" ;;
    node-kill) echo "NATS node kill -9 (one of three, edge 2's), restarted" ;;
    *) return 1 ;;
  esac
}

# ---- our processes -----------------------------------------------------------------
# start_app NAME N: start worker or edge N (1-based) in its own session, output to
# its log, pid recorded as NAME-N; the NATS user and password come from lib.sh.
start_app() {
  local name="$1" n="$2" id="$1-$2" logf="$LOGS/$1-$2.log"
  local -a env=(AUTH_DEV=true ADMIN_AUTH_DEV=true LOG_LEVEL="${LOG_LEVEL:-info}" LOG_PRETTY=false)
  # On the cluster each process dials one node (worker n: node n, edge n: node n) and
  # learns the others from the cluster's gossip, so a dead node's clients move over.
  [[ -n "$CLUSTER" ]] && env+=(NATS_URL="nats://127.0.0.1:$(node_port $(((n - 1) % 3 + 1)))")
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
  for ((n = 1; n <= WORKERS; n++)); do wait_ready functions "$n" 60; done
  for n in 1 2; do wait_ready edge "$n" 60; done
  [[ -z "$CLUSTER" ]] || for n in 1 2 3; do wait_node "$n"; done
}

# ---- the NATS cluster (cluster mode) --------------------------------------------------
node_port() { echo $((CHAOS_NATS_PORT + $1 - 1)); }
node_mon() { echo $((CHAOS_NATS_PORT + $1 - 1 + 4000)); }
node_route() { echo $((CHAOS_ROUTE_PORT + $1 - 1)); }

# start_node N: nats-server with nats-config/cluster/nN.conf (the files compose.yaml
# mounts): its addresses move to this machine's loopback by flags, and its store
# directory (a container path) by a copy that changes that line only, kept beside a
# link to accounts.conf so that its include resolves as in the repository.
start_node() {
  local n="$1" bin routes="" k dir
  dir="$DATA/nats-node-$n"
  bin="$(tool_path_verbose nats-server)"
  for k in 1 2 3; do routes+="${routes:+,}nats-route://127.0.0.1:$(node_route "$k")"; done
  mkdir -p "$dir/store" "$dir/cluster"
  ln -sf "$ROOT/nats-config/accounts.conf" "$dir/accounts.conf"
  sed -e "s|^\([[:space:]]*store_dir:\).*|\1 \"$dir/store\"|" \
    "$ROOT/nats-config/cluster/n$n.conf" >"$dir/cluster/n$n.conf"
  (exec setsid "$bin" -c "$dir/cluster/n$n.conf" -a 127.0.0.1 -p "$(node_port "$n")" \
    -m "$(node_mon "$n")" --cluster "nats://127.0.0.1:$(node_route "$n")" --routes "$routes" \
    </dev/null >>"$LOGS/nats-node-$n.log" 2>&1) &
  record_pid "nats-node-$n" "$!" "$bin"
  disown "$!"
}

# wait_node N: the node answers and its JetStream is current (/healthz on monitoring).
wait_node() {
  local deadline=$((SECONDS + ${2:-60}))
  until [[ "$(curl -s -m 2 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$(node_mon "$1")/healthz" 2>/dev/null)" == 200 ]]; do
    ours_alive "nats-node-$1" || { tail -n 20 "$LOGS/nats-node-$1.log" >&2; die "nats-node-$1 exited"; }
    ((SECONDS < deadline)) || die "nats-node-$1 not healthy within ${2:-60}s (log: $LOGS/nats-node-$1.log)"
    sleep 0.3
  done
}

# streams_report: each stream's replicas and, per node, its last sequence (the three
# copies must agree once the cluster has settled), from the nodes' /jsz.
streams_report() {
  local n
  command -v python3 >/dev/null || { warn "no python3: streams not reported"; return; }
  sleep 3
  for n in 1 2 3; do
    curl -s -m 5 "http://127.0.0.1:$(node_mon "$n")/jsz?streams=true&config=true" >"$DATA/jsz-$n.json" || true
  done
  python3 - "$DATA"/jsz-1.json "$DATA"/jsz-2.json "$DATA"/jsz-3.json <<'PY'
import json, sys
rows = {}
for i, path in enumerate(sys.argv[1:], 1):
    try:
        d = json.load(open(path))
    except Exception:
        continue
    for acc in d.get("account_details", []):
        for st in acc.get("stream_detail", []):
            r = rows.setdefault(st["name"], {"replicas": st.get("config", {}).get("num_replicas"), "nodes": {}})
            r["nodes"][i] = (st["state"]["messages"], st["state"]["last_seq"])
print("stream\treplicas\tnode 1 (messages, last seq)\tnode 2\tnode 3\tcopies agree")
for name, r in sorted(rows.items()):
    cells = [str(r["nodes"].get(i, "-")) for i in (1, 2, 3)]
    agree = len(set(r["nodes"].values())) == 1 and len(r["nodes"]) == 3
    print(f"{name}\tR{r['replicas']}\t" + "\t".join(cells) + f"\t{'yes' if agree else 'NO'}")
PY
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
    node-kill)
      [[ -n "$CLUSTER" ]] || die "node-kill is a cluster row (scripts/chaos.sh cluster)"
      kill9 nats-node-2; sleep "$DOWN"
      start_node 2; wait_node 2 ;;
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
  local ports=("$CHAOS_MYSQL_PORT" "$CHAOS_REDIS_PORT" "$CHAOS_NATS_PORT" $((CHAOS_NATS_PORT + 4000)) \
    "${EDGE_PORTS[@]}" "${METRICS_PORTS[@]:0:WORKERS}")
  [[ -z "$CLUSTER" ]] || for p in 2 3; do ports+=("$(node_port "$p")" "$(node_mon "$p")" "$(node_route "$p")"); done
  [[ -z "$CLUSTER" ]] || ports+=("$(node_route 1)")
  for p in "${ports[@]}"; do
    [[ " ${SHARED_PORTS[*]} " == *" $p "* ]] && die "port $p belongs to the machine's shared services: pick another (CHAOS_*_PORT)"
    listening 127.0.0.1 "$p" && die "something not started by this script listens on 127.0.0.1:$p: pick other ports (CHAOS_*_PORT)"
  done
  STARTED=1
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  # Nothing listens on our ports, so services.sh starts throwaway servers there.
  local s ids=("mysql-$CHAOS_MYSQL_PORT" "redis-$CHAOS_REDIS_PORT")
  if [[ -n "$CLUSTER" ]]; then
    bash "$ROOT/scripts/services.sh" start mysql redis
    rm -rf "$DATA"/nats-node-* # a fresh cluster: the streams' counts below are this run's
    for s in 1 2 3; do start_node "$s"; done
    for s in 1 2 3; do wait_node "$s" 90; done
    ok "NATS cluster: nodes on $(node_port 1)-$(node_port 3), routes $(node_route 1)-$(node_route 3)"
  else
    bash "$ROOT/scripts/services.sh" start mysql redis nats
    ids+=("nats-$CHAOS_NATS_PORT")
  fi
  for s in "${ids[@]}"; do
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
  for ((n = 1; n <= WORKERS; n++)); do start_app functions "$n"; done
  # The edges follow IM_EVENTS, which a worker creates before it is healthy.
  for ((n = 1; n <= WORKERS; n++)); do wait_ready functions "$n"; done
  for n in 1 2; do start_app edge "$n"; done
  for n in 1 2; do wait_ready edge "$n"; done
  ok "chaos stack up: edges ${EDGE_PORTS[*]}, workers' metrics ${METRICS_PORTS[*]:0:WORKERS}, MariaDB $CHAOS_MYSQL_PORT, Redis $CHAOS_REDIS_PORT, NATS $CHAOS_NATS_PORT${CLUSTER:+ (3-node cluster)}"
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

# write_doc FILE BLOCK [MARKER]: replace what lies between the MARKER (default
# chaos-matrix) begin/end comments in FILE.
write_doc() {
  local doc="$1" block="$2" m="${3:-chaos-matrix}"
  if [[ ! -f "$doc" ]] || ! grep -q "<!-- $m:begin -->" "$doc"; then
    warn "$doc has no $m markers: not written"
    return
  fi
  awk -v blockfile="$block" -v b="<!-- $m:begin -->" -v e="<!-- $m:end -->" '
    index($0, b) { print; while ((getline l < blockfile) > 0) print l; skip = 1; next }
    index($0, e) { skip = 0 }
    !skip { print }' "$doc" >"$doc.tmp" && mv "$doc.tmp" "$doc"
  ok "matrix written into ${doc#"$ROOT"/}"
}

run_matrix() {
  local rows=("$@") r full=("${all_rows[@]}") marker=chaos-matrix
  if [[ -n "$CLUSTER" ]]; then
    full=("${cluster_rows[@]}") marker=cluster-matrix
    CHAOS_LOAD="${CHAOS_LOAD--members 1000 -online 1000}"
  fi
  ((${#rows[@]})) || rows=("${full[@]}")
  for r in "${rows[@]}"; do label "$r" >/dev/null || die "unknown row $r (${full[*]})"; done
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
    if [[ -n "$CLUSTER" ]]; then
      echo "Measured $conditions: \`go tool task test:cluster\`, a 3-node NATS JetStream cluster (nats-config/cluster), three workers (one per node) and two edges (nodes 1 and 2); each row ${dur} of 1:1 messages (200 users, 200/s) and a group (1,000 members, all online, 5 senders, 5/s) at once over both edges, the fault ${at} in${CHAOS_LOAD:+, load-tool flags $CHAOS_LOAD}."
    else
      echo "Measured $conditions: \`go tool task chaos\`, each row ${dur} of 1:1 messages (200 users, 200/s) and a group (500 members, all online, 5 senders, 5/s) at once, the fault ${at} in${CHAOS_LOAD:+, load-tool flags $CHAOS_LOAD}."
    fi
    echo
    markdown "$tsv"
    if [[ -n "$CLUSTER" ]]; then
      local st="$DATA/streams-$stamp.tsv"
      streams_report >"$st"
      echo
      echo "JetStream streams after the run, read from each node's \`/jsz\`:"
      echo
      markdown "$st"
    fi
  } >"$md"
  echo
  [[ -z "$CLUSTER" ]] || cat "$md"
  if ((${#rows[@]} == ${#full[@]})) && [[ -n "${CHAOS_DOC-docs/reliability.md}" ]]; then
    write_doc "$ROOT/${CHAOS_DOC:-docs/reliability.md}" "$md" "$marker"
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
  cluster) shift; run_matrix "$@" ;;
  soak) shift; run_soak "$@" ;;
  -h|--help|help) sed -n '2,/^set -euo pipefail/{/^set /d;p}' "$0" | sed 's/^# \{0,1\}//' ;;
  *) run_matrix "$@" ;;
esac
