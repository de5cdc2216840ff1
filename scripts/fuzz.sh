#!/usr/bin/env bash
# Run every fuzz target of the repository for a bounded time each.
#
#   scripts/fuzz.sh [FUZZ_TIME]   (default 30s per target; env FUZZ_TIME works too)
#
# Targets are found with `go test -list 'Fuzz.*'`. A target that fails leaves its
# input under the package's testdata/fuzz/<Target>/: commit it, fix the code, and
# it runs as a regular test case from then on (go test runs the corpus).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

fuzztime="${1:-${FUZZ_TIME:-30s}}"
bash "$ROOT/scripts/services.sh" start mysql redis-bin >/dev/null

failed=0
while read -r pkg targets; do
  for target in $targets; do
    log "fuzz $pkg $target ($fuzztime)"
    if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg"; then
      warn "$pkg $target failed: see its testdata/fuzz/$target/"
      failed=1
    fi
  done
done < <(go list -f '{{.ImportPath}} {{.Dir}}' ./... | while read -r pkg dir; do
  t="$(cd "$dir" && go test -list 'Fuzz.*' . 2>/dev/null | grep '^Fuzz' | tr '\n' ' ' || true)"
  [[ -n "$t" ]] && echo "$pkg $t"
done)
if ((failed)); then die "fuzzing found failures"; fi
ok "every fuzz target ran $fuzztime without a failure"
