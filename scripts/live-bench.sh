#!/usr/bin/env bash
# The live channel under load: 1,000 Socket.IO clients (WebSocket only, the
# app's client library) receiving queue:update. Prints figures for
# BENCHMARKS.md; RUNS (3) runs, read the medians.
#   scripts/live-bench.sh [clients] [updates]
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d tests/live/node_modules/socket.io-client ] || (cd tests/live && npm ci --no-audit --no-fund)
cargo build --release -q
for i in $(seq "${RUNS:-3}"); do
  echo "## run $i"
  node tests/live/bench.mjs target/release/immichvr "${1:-1000}" "${2:-20}"
done
