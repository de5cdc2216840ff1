# shellcheck shell=bash
# Common settings and helpers for the scripts the Taskfile runs. Source it; do not
# run it. Every address can be overridden from the environment (or a .env file,
# which the Taskfile loads).

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="${NATTER_DATA:-$ROOT/.data}"
RUN="$DATA/run"   # pid files of what these scripts started
LOGS="$DATA/log"

# ---- addresses -------------------------------------------------------------------
# MySQL/MariaDB: MYSQL_ADDR, else the tcp(...) part of MYSQL_DSN, else 127.0.0.1:3306.
if [[ -z "${MYSQL_ADDR:-}" && "${MYSQL_DSN:-}" =~ tcp\(([^\)]*)\) ]]; then
  MYSQL_ADDR="${BASH_REMATCH[1]}"
fi
MYSQL_ADDR="${MYSQL_ADDR:-127.0.0.1:3306}"
MYSQL_DSN="${MYSQL_DSN:-root@tcp($MYSQL_ADDR)/natter}"

REDIS_ADDR="${REDIS_ADDR:-127.0.0.1:6379}"

# NATS: the first URL of NATS_URL (comma list allowed), without scheme and user info.
NATS_URL="${NATS_URL:-nats://127.0.0.1:4222}"
if [[ -z "${NATS_ADDR:-}" ]]; then
  NATS_ADDR="${NATS_URL%%,*}"
  NATS_ADDR="${NATS_ADDR#*://}"
  NATS_ADDR="${NATS_ADDR##*@}"
  [[ "$NATS_ADDR" == *:* ]] || NATS_ADDR="$NATS_ADDR:4222"
fi

S3_ENDPOINT="${S3_ENDPOINT:-127.0.0.1:7070}"
S3_ACCESS_KEY="${S3_ACCESS_KEY:-natter}"
S3_SECRET_KEY="${S3_SECRET_KEY:-natter-dev-secret}"
S3_REGION="${S3_REGION:-us-east-1}"
S3_BUCKET="${S3_BUCKET:-natter}"

# Passwords of the NATS users in nats-config/accounts.conf (dev defaults).
NATS_EDGE_PASSWORD="${NATS_EDGE_PASSWORD:-natter-dev-edge}"
NATS_CONSOLE_PASSWORD="${NATS_CONSOLE_PASSWORD:-natter-dev-console}"
NATS_FUNCTIONS_PASSWORD="${NATS_FUNCTIONS_PASSWORD:-natter-dev-functions}"
NATS_ADMIN_PASSWORD="${NATS_ADMIN_PASSWORD:-natter-dev-admin}"
NATS_SYS_PASSWORD="${NATS_SYS_PASSWORD:-natter-dev-sys}"

export MYSQL_ADDR MYSQL_DSN REDIS_ADDR NATS_URL NATS_ADDR \
  S3_ENDPOINT S3_ACCESS_KEY S3_SECRET_KEY S3_REGION S3_BUCKET \
  NATS_EDGE_PASSWORD NATS_CONSOLE_PASSWORD NATS_FUNCTIONS_PASSWORD NATS_ADMIN_PASSWORD NATS_SYS_PASSWORD

# ---- output ----------------------------------------------------------------------
# Colour only on a terminal and without NO_COLOR. _b/_0 (bold, reset) are for
# stdout; the helpers look at the stream they write to on each call, since warn and
# die write to stderr and callers redirect (log ... >&2), which may be a file.
if [[ -t 1 && -z "${NO_COLOR:-}" ]]; then _b=$'\e[1m' _0=$'\e[0m'; else _b='' _0=''; fi
_say() { # FD SGR LABEL TEXT
  if [[ -t "$1" && -z "${NO_COLOR:-}" ]]; then printf '\e[%sm%s\e[0m %s\n' "$2" "$3" "$4"
  else printf '%s %s\n' "$3" "$4"; fi
}
log()  { _say 1 1 '==>' "$*"; }
ok()   { _say 1 32 '  ok' "$*"; }
warn() { _say 2 33 'warn:' "$*" >&2; }
die()  { _say 2 31 'error:' "$*" >&2; exit 1; }

# ---- addresses and ports ---------------------------------------------------------
host_of() { local a="$1"; a="${a%:*}"; a="${a#[}"; a="${a%]}"; echo "${a:-127.0.0.1}"; }
port_of() { echo "${1##*:}"; }

# is_local HOST: can this machine start a server for HOST?
is_local() {
  case "$1" in
    127.*|localhost|::1|0.0.0.0|'') return 0 ;;
    *) return 1 ;;
  esac
}

# connect_host HOST: the address to dial for a listen address.
connect_host() {
  case "$1" in
    0.0.0.0|'') echo 127.0.0.1 ;;
    localhost) echo 127.0.0.1 ;;
    *) echo "$1" ;;
  esac
}

# listening HOST PORT: true if something accepts TCP connections there.
listening() {
  local h; h="$(connect_host "$1")"
  timeout 2 bash -c "exec 3<>/dev/tcp/$h/$2" 2>/dev/null
}

# wait_listening NAME HOST PORT SECONDS [PID [LOGFILE]]: wait until the port accepts
# connections; fail early with the log tail if PID dies.
wait_listening() {
  local name="$1" host="$2" port="$3" secs="$4" pid="${5:-}" logf="${6:-}"
  local deadline=$((SECONDS + secs))
  while ! listening "$host" "$port"; do
    if [[ -n "$pid" ]] && ! pid_running "$pid"; then
      [[ -n "$logf" && -f "$logf" ]] && tail -n 25 "$logf" >&2
      die "$name exited before listening on $host:$port (log: ${logf:-none})"
    fi
    if (( SECONDS >= deadline )); then
      [[ -n "$logf" && -f "$logf" ]] && tail -n 25 "$logf" >&2
      die "$name did not listen on $host:$port within ${secs}s (log: ${logf:-none})"
    fi
    sleep 0.2
  done
}

# ---- tools built by `go tool` ----------------------------------------------------
# tool_path NAME [go tool flags...]: build (or take from the build cache) a tool
# declared in go.mod / tools/go.mod and print the path of its executable, so the
# process we start is the server itself (its pid is the one we record and stop).
tool_path() {
  local name="$1"; shift
  local out
  if ! out="$(cd "$ROOT" && go tool -n "$@" "$name" 2>"$LOGS/build-$name.log")"; then
    cat "$LOGS/build-$name.log" >&2
    die "could not build $name with go tool $*"
  fi
  echo "$out" | tail -n 1
}

# tool_path_verbose NAME [flags...]: tool_path that says so (on stderr) when it has
# to compile: a first build takes a minute or two, later ones come from the cache
# and say nothing.
tool_path_verbose() {
  local name="$1"; shift
  mkdir -p "$LOGS"
  local t0=$SECONDS path ticker=
  # The ticker must not hold our stdout: the caller reads it through $(...).
  ( exec >&2 </dev/null
    sleep 2
    log "building $name with go tool: a first build compiles it (a minute or two); later runs take it from the build cache"
    while sleep 1; do
      (( (SECONDS - t0) % 30 )) || printf '     ... still building %s (%ss)\n' "$name" $((SECONDS - t0))
    done ) &
  ticker=$!
  path="$(tool_path "$name" "$@")" || { kill "$ticker" 2>/dev/null; wait "$ticker" 2>/dev/null; exit 1; }
  kill "$ticker" 2>/dev/null; wait "$ticker" 2>/dev/null || true
  (( SECONDS - t0 > 3 )) && ok "$name built in $((SECONDS - t0))s" >&2
  echo "$path"
}

# ---- installing Debian packages --------------------------------------------------
_apt_updated=
as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else die "need root (or sudo) to run: $*"
  fi
}

# apt_install PKG...: install Debian/Ubuntu packages (apt-get update once per run).
apt_install() {
  command -v apt-get >/dev/null || die "apt-get not found: install $* yourself (this script knows Debian/Ubuntu)"
  if [[ -z "$_apt_updated" ]]; then
    log "apt-get update"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq || die "apt-get update failed"
    _apt_updated=1
  fi
  log "apt-get install $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" \
    || die "apt-get install $* failed"
}

# first_cmd CMD...: print the path of the first command that exists.
first_cmd() {
  local c
  for c in "$@"; do
    if command -v "$c" >/dev/null 2>&1; then command -v "$c"; return 0; fi
    for d in /usr/sbin /usr/local/sbin /sbin; do
      [[ -x "$d/$c" ]] && { echo "$d/$c"; return 0; }
    done
  done
  return 1
}

# ---- processes we started --------------------------------------------------------
# A pid file RUN/ID.pid holds "PID EXE": stop only kills PID if it still runs EXE,
# so a recycled pid is never hit.
record_pid() { # ID PID EXECUTABLE
  local exe; exe="$(readlink -f "$3" 2>/dev/null || true)"
  mkdir -p "$RUN"
  echo "$2 $exe" >"$RUN/$1.pid"
}

# pid_running PID: the process exists and is not a zombie.
pid_running() {
  kill -0 "$1" 2>/dev/null || return 1
  local st; st="$(sed -E 's/.*\) (.).*/\1/' "/proc/$1/stat" 2>/dev/null || true)"
  [[ "$st" != Z ]]
}

# ours_alive ID: true if the recorded process still runs.
ours_alive() {
  local f="$RUN/$1.pid" pid exe
  [[ -f "$f" ]] || return 1
  read -r pid exe <"$f" || return 1
  [[ -n "$pid" ]] && pid_running "$pid" || return 1
  local now; now="$(readlink "/proc/$pid/exe" 2>/dev/null || true)"
  [[ -z "$exe" || "${now% (deleted)}" == "$exe" ]]
}

# stop_id ID: SIGTERM the recorded process, wait up to 30 s, then SIGKILL.
stop_id() {
  local id="$1" f="$RUN/$1.pid" pid exe
  [[ -f "$f" ]] || return 0
  read -r pid exe <"$f" || true
  if ours_alive "$id"; then
    kill -TERM "$pid" 2>/dev/null || true
    local i
    for ((i = 0; i < 150; i++)); do
      pid_running "$pid" || break
      sleep 0.2
    done
    if pid_running "$pid"; then
      warn "$id (pid $pid) ignored SIGTERM for 30s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    ok "stopped $id (pid $pid)"
  fi
  rm -f "$f"
}
