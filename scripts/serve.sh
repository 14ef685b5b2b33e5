#!/usr/bin/env bash
# The README's run command: installs what is missing, builds the release binary
# and starts the server in the foreground (Ctrl-C / SIGTERM drains and exits 0).
# Extra arguments go to `switchboard serve`, e.g. scripts/serve.sh --socket /tmp/sb.sock
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
swift build -c release --product switchboard >&2
bin=$(swift build -c release --show-bin-path)/switchboard
echo "serve: $bin serve $*" >&2
exec "$bin" serve "$@"
