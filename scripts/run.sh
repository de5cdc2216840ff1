#!/usr/bin/env bash
# Run a command with natter's environment (the addresses scripts/lib.sh settles:
# MYSQL_DSN, REDIS_ADDR, NATS_URL, S3_*, ...).   scripts/run.sh CMD [ARGS...]
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
(($#)) || die "usage: scripts/run.sh CMD [ARGS...]"
exec "$@"
