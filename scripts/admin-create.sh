#!/usr/bin/env bash
# Make a back-office operator: scripts/admin-create.sh <username> [role] (role
# superadmin by default). The password comes from ADMIN_PASSWORD, else a prompt
# (twice, not echoed). Runs `functions admin-create`, which migrates first.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
(($# >= 1 && $# <= 2)) || die "usage: go tool task admin:create -- <username> [superadmin|operator|auditor]"
if [[ -z "${ADMIN_PASSWORD:-}" ]]; then
  [[ -t 0 ]] || die "set ADMIN_PASSWORD (no terminal to prompt on)"
  read -r -s -p "Password for $1 (8+ characters): " ADMIN_PASSWORD && echo
  read -r -s -p "Again: " again && echo
  [[ "$ADMIN_PASSWORD" == "$again" ]] || die "the passwords differ"
fi
ADMIN_PASSWORD="$ADMIN_PASSWORD" AUTH_DEV="${AUTH_DEV:-true}" ADMIN_AUTH_DEV="${ADMIN_AUTH_DEV:-true}" go run ./functions admin-create "$@"
