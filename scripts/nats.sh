#!/usr/bin/env bash
# The nats CLI (natscli, from tools/go.mod) as the operators' read-only user `admin`
# against NATS_URL:
#   scripts/nats.sh micro list        scripts/nats.sh micro stats im-message
# (A server without accounts, such as a plain reused one, ignores the credentials.)
# Replies come under the user's own inbox prefix, the only one nats-config lets it
# subscribe to.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
# The first run compiles natscli, a minute or two: tool_path_verbose says so rather
# than sit silent (on stderr, so the CLI's own output stays clean); later runs take
# it from the build cache at once.
nats="$(tool_path_verbose nats -modfile=tools/go.mod)"
user="${NATS_ADMIN_USER:-admin}"
exec "$nats" --server "$NATS_URL" \
  --user "$user" --password "$NATS_ADMIN_PASSWORD" --inbox-prefix "_INBOX.$user" "$@"
