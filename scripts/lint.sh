#!/usr/bin/env bash
# gofmt check, go vet, and a syntax/semantics test of every nats-server config.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
rc=0

log "gofmt -l"
mapfile -t files < <(find . -name '*.go' -not -path './.data/*' -not -path './.git/*' -not -path './bin/*' -not -path '*/testdata/*')
if ((${#files[@]})); then
  unformatted="$(gofmt -l "${files[@]}")"
  if [[ -n "$unformatted" ]]; then
    warn "not gofmt-ed (run: go tool task fmt):"; echo "$unformatted" >&2; rc=1
  fi
fi

log "go vet ./..."
go vet ./... || rc=1

log "nats-server -t nats-config/*.conf"
for f in nats-config/dev.conf nats-config/cluster/*.conf; do
  out="$(go tool nats-server -c "$f" -t 2>&1)" || { warn "$f: $out"; rc=1; continue; }
done

((rc == 0)) && ok "lint clean"
exit "$rc"
