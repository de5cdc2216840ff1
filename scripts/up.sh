#!/usr/bin/env bash
# Run natter locally in the foreground: ensure MariaDB/MySQL, Redis, NATS (JetStream)
# and the S3 server (reusing running ones, installing/starting what is missing),
# build and migrate, then run the functions worker and the edge, print the URLs and
# wait. Ctrl-C (or either binary exiting) stops the worker, the edge and every
# service this run started; services it reused keep running.
#
# Exit status: 0 after a stop that was asked for (SIGINT, SIGTERM), provided the
# worker and the edge shut down cleanly; 1 when something failed, including either
# binary exiting by itself.
#
# Env: EDGE_ADDR (default :8080), METRICS_ADDR (worker, default 127.0.0.1:9101),
# LOG_LEVEL, LOG_PRETTY (default true here), FUNCTIONS, AUTH_SECRET, and the service
# addresses of scripts/lib.sh.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

EDGE_ADDR="${EDGE_ADDR:-:8080}"
METRICS_ADDR="${METRICS_ADDR:-127.0.0.1:9101}"
LOG_PRETTY="${LOG_PRETTY:-true}"
# Development: the binaries accept the built-in AUTH_SECRET (they refuse it otherwise).
AUTH_DEV="${AUTH_DEV:-true}"
ADMIN_AUTH_DEV="${ADMIN_AUTH_DEV:-$AUTH_DEV}" # operator tokens' built-in ADMIN_AUTH_SECRET, likewise
export EDGE_ADDR METRICS_ADDR LOG_PRETTY AUTH_DEV ADMIN_AUTH_DEV

edge_host="$(connect_host "$(host_of "$EDGE_ADDR")")" edge_port="$(port_of "$EDGE_ADDR")"
metrics_host="$(connect_host "$(host_of "$METRICS_ADDR")")" metrics_port="$(port_of "$METRICS_ADDR")"
listening "$edge_host" "$edge_port" &&
  die "something already listens on $edge_host:$edge_port (another 'task up'? set EDGE_ADDR)"
listening "$metrics_host" "$metrics_port" &&
  die "something already listens on $METRICS_ADDR (set METRICS_ADDR for the worker's metrics)"

STARTED_FILE="$(mktemp "${TMPDIR:-/tmp}/natter-started.XXXXXX")"
export STARTED_FILE
stop_requested='' # set by the INT/TERM traps
fpid='' epid='' # the worker's and the edge's pids, once started
log_pids=()     # the processes copying their output (see run)

# stop_app NAME PID: stop a binary run() started (SIGTERM, SIGKILL after 30 s) and
# return its exit status (0 if it was never started).
# shellcheck disable=SC2317 # called from cleanup
stop_app() {
  [[ -n "$2" ]] || return 0
  stop_id "$1"
  local st=0
  wait "$2" 2>/dev/null || st=$?
  ((st == 0)) || warn "$1 exited with status $st (log: .data/log/$1.log)"
  return "$st"
}

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  local rc=$?
  trap '' INT TERM
  # A requested stop succeeds unless a binary then fails to shut down cleanly.
  [[ -n "$stop_requested" ]] && rc=0
  echo
  log "shutting down"
  stop_app edge "$epid" || rc=1
  stop_app functions "$fpid" || rc=1
  ((${#log_pids[@]} == 0)) || wait "${log_pids[@]}" 2>/dev/null || true
  local ids
  ids="$(sort -u "$STARTED_FILE" 2>/dev/null | tr '\n' ' ')"
  if [[ -n "${ids// /}" ]]; then
    # shellcheck disable=SC2086
    bash "$ROOT/scripts/services.sh" stop $ids || rc=1
  fi
  rm -f "$STARTED_FILE"
  exit "$rc"
}
trap cleanup EXIT
trap 'stop_requested=INT; exit 0' INT
trap 'stop_requested=TERM; exit 0' TERM

bash "$ROOT/scripts/services.sh" start mysql redis nats s3

log "go build -o bin/natter-functions ./functions && go build -o bin/natter-edge ./edge"
go build -o bin/natter-functions ./functions
go build -o bin/natter-edge ./edge

log "migrate: $MYSQL_DSN"
bin/natter-functions migrate

# run NAME NATS_USER NATS_PASSWORD: start bin/natter-NAME in the background with its
# output prefixed by NAME (and copied to .data/log/NAME.log); its pid in RUN_PID.
# The copying ignores Ctrl-C and ends when the binary closes its output, so the
# binary's shutdown lines still arrive (and it never writes to a broken pipe).
run() {
  local name="$1" user="$2" pass="$3" out
  : >"$LOGS/$name.log"
  exec {out}> >(trap '' INT TERM; tee -a "$LOGS/$name.log" | sed -u "s/^/$(printf '%-9s' "$name") | /")
  log_pids+=("$!")
  NATS_USER="$user" NATS_PASSWORD="$pass" "bin/natter-$name" >&"$out" 2>&1 &
  RUN_PID=$!
  exec {out}>&-
  record_pid "$name" "$RUN_PID" "bin/natter-$name"
}
# The back office's monitoring scrapes the worker's and the edge's /metrics.
export ADMIN_SCRAPE_TARGETS="${ADMIN_SCRAPE_TARGETS:-http://$metrics_host:$metrics_port/metrics,http://$edge_host:$edge_port/metrics}"
run functions functions "$NATS_FUNCTIONS_PASSWORD"
fpid=$RUN_PID

# The edge follows session revocations in the JetStream stream IM_EVENTS, which the
# worker creates before it answers /healthz (functions/main.go): start the edge
# only then, so it never looks for a stream that does not exist yet.
deadline=$((SECONDS + 60))
until [[ "$(curl -s -o /dev/null -w '%{http_code}' "http://$metrics_host:$metrics_port/healthz" 2>/dev/null)" == 200 ]]; do
  pid_running "$fpid" || die "the functions worker exited before it was ready (log: .data/log/functions.log)"
  ((SECONDS < deadline)) ||
    die "the functions worker did not answer http://$metrics_host:$metrics_port/healthz within 60s (log: .data/log/functions.log)"
  sleep 0.2
done

run edge console "$NATS_CONSOLE_PASSWORD" # the edge and the back office (console at /admin)
epid=$RUN_PID

# Ready when the edge answers /readyz with 200 (it needs NATS and the functions).
base="http://$edge_host:$edge_port"
deadline=$((SECONDS + 60))
until [[ "$(curl -s -o /dev/null -w '%{http_code}' "$base/readyz" 2>/dev/null)" == 200 ]]; do
  pid_running "$fpid" || die "the functions worker exited (log: .data/log/functions.log)"
  pid_running "$epid" || die "the edge exited (log: .data/log/edge.log)"
  if ((SECONDS >= deadline)); then
    warn "the edge did not report ready at $base/readyz within 60s; carrying on"
    break
  fi
  sleep 0.3
done

# NATS monitoring: a server services.sh started serves it on the NATS port + 4000
# (4222 -> 8222); a reused server has what its own configuration says, maybe none.
nats_host="$(connect_host "$(host_of "$NATS_ADDR")")" nats_port="$(port_of "$NATS_ADDR")"
nats_mon="http://$nats_host:$((nats_port + 4000))"
if ours_alive "nats-$nats_port"; then
  nats_mon="$nats_mon   (/varz /jsz /connz)"
elif [[ "$(curl -s -m 2 -o /dev/null -w '%{http_code}' "$nats_mon/varz" 2>/dev/null)" == 200 ]]; then
  nats_mon="$nats_mon   (of the reused NATS server)"
else
  nats_mon="none: the reused NATS server answers nothing at $nats_mon/varz (its own config sets monitoring)"
fi

cat <<EOF

${_b}natter is up${_0}
  web chat      $base/
  WebSocket     ws://$edge_host:$edge_port/ws
  HTTP API      $base/api/v1/
  back office   $base/admin   (first operator: go tool task admin:create -- root)
  health        $base/healthz   $base/readyz
  metrics       $base/metrics   (edge)   http://$metrics_host:$metrics_port/metrics   (functions)
  NATS          nats://$NATS_ADDR   (ops: go tool task nats -- micro list)
  NATS monitor  $nats_mon
  S3            http://$S3_ENDPOINT   (access key $S3_ACCESS_KEY, bucket $S3_BUCKET)
  MySQL         $MYSQL_DSN
  Redis         $REDIS_ADDR
  logs          .data/log/functions.log  .data/log/edge.log

Ctrl-C stops the worker, the edge and the services this run started.
EOF

# Returns only when a binary exits by itself (a signal runs its trap instead): that
# is a failure whatever its status, which cleanup reports.
wait -n "$fpid" "$epid" || true
pid_running "$fpid" || warn "the functions worker exited by itself"
pid_running "$epid" || warn "the edge exited by itself"
exit 1
