#!/usr/bin/env bash
# Prepare browser tests: install Debian's chromium when /usr/bin/chromium is missing
# (apt-get, through sudo when not root), then `npm ci` every npm package of the repo
# (a package-lock.json outside node_modules) whose node_modules is missing or older
# than its lock file. scripts/test.sh runs it before go test; the Go tests then drive
# chromium through Playwright (npm playwright-core) with testenv.Chromium/RunNode.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

if [[ ! -x /usr/bin/chromium ]]; then
  log "installing chromium (Debian package) for the browser tests"
  sudo_cmd=()
  ((EUID == 0)) || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null ||
    { "${sudo_cmd[@]}" apt-get update -q >/dev/null &&
      "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }
fi

command -v npm >/dev/null || die "npm is needed for the browser tests (apt-get install nodejs npm)"
while IFS= read -r lock; do
  dir="$(dirname "$lock")"
  if [[ ! -d "$dir/node_modules" || "$lock" -nt "$dir/node_modules" ]]; then
    log "npm ci in ${dir#"$ROOT"/}"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    touch "$dir/node_modules"
  fi
done < <(find "$ROOT" -name package-lock.json -not -path '*/node_modules/*' -not -path "$DATA/*" | sort)
