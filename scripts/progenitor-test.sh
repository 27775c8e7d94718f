#!/usr/bin/env bash
# The Rust client progenitor 0.15 generates, as a Rust user makes it: from
# `immichvr openapi --without-multipart` (progenitor refuses a spec with a
# multipart body), compiled with the flow in tests/clients/rust, then run
# against the binary and the AI stand-in. Compiling progenitor and its
# dependencies from nothing takes about 2 minutes on 2 cores. Needs Rust
# 1.88 or newer (progenitor's minimum; the service itself builds on 1.85).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/services.sh
"$BIN" openapi --without-multipart > tests/clients/rust/openapi.yaml
(cd tests/clients/rust && CARGO_TARGET_DIR="$PWD/../../../target/progenitor" cargo build -q)
start_standins
PORT=$(free_port)
TOKEN=progenitor-$RANDOM
start_server "$PORT" "$WORK/data" AUTH_TOKEN="$TOKEN"
target/progenitor/debug/immichvr-progenitor-flow "http://127.0.0.1:$PORT" "$TOKEN"
