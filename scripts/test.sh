#!/usr/bin/env bash
# Run natter's tests against real services.
#
#   scripts/test.sh [test|bench|race] [go test flags and packages...]
#
# Ensures MariaDB/MySQL (MYSQL_DSN) and the S3 server (S3_ENDPOINT), reusing running
# ones, installs redis-server (each test package starts its own), then runs go test
# (./... unless packages are given). Services this run started are stopped when it
# ends, however it ends; the exit status is go test's. For test and race it also
# prepares the browser tests (scripts/browser.sh: chromium, npm ci).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

mode="test"
case "${1:-}" in test|bench|race) mode="$1"; shift ;; esac

STARTED_FILE="$(mktemp "${TMPDIR:-/tmp}/natter-started.XXXXXX")"
export STARTED_FILE
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  local rc=$? ids
  ids="$(sort -u "$STARTED_FILE" 2>/dev/null | tr '\n' ' ')"
  if [[ -n "${ids// /}" ]]; then
    log "stopping what this run started: $ids"
    # shellcheck disable=SC2086
    bash "$ROOT/scripts/services.sh" stop $ids || true
  fi
  rm -f "$STARTED_FILE"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bash "$ROOT/scripts/services.sh" start mysql redis-bin s3
if [[ "$mode" != bench ]]; then
  # Browser tests (web pages in Playwright + chromium) must run here, not skip.
  bash "$ROOT/scripts/browser.sh"
  export NATTER_BROWSER_REQUIRED=1
fi

args=(-count=1 -timeout "${TEST_TIMEOUT:-15m}")
case "$mode" in
  bench) args=(-count=1 -timeout "${TEST_TIMEOUT:-30m}" -run '^$' -bench . -benchmem) ;;
  race) args+=(-race) ;;
esac

# Packages: ./... unless the arguments name some (., ./x, ./x/..., natter/x).
pkgs=(./...)
for a in "$@"; do
  case "$a" in .|./*|natter|natter/*) pkgs=() ;; esac
done

log "go test ${args[*]}${*:+ $*}${pkgs[*]:+ ${pkgs[*]}}   (MYSQL_DSN=$MYSQL_DSN S3_ENDPOINT=$S3_ENDPOINT)"
set +e
go test "${args[@]}" "$@" "${pkgs[@]}"
rc=$?
set -e
if ((rc == 0)); then ok "tests passed"; else warn "go test failed (exit $rc)"; fi
exit "$rc"
