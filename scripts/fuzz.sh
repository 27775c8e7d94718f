#!/usr/bin/env bash
# Fuzzes the running binary with schemathesis against the checked-in
# openapi.yaml: every check, at least 1,000 generated cases, 0 failures.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v st >/dev/null || python3 -m pip install -q schemathesis
BIN=${BIN:-target/debug/immichvr}
[ -x "$BIN" ] || cargo build
cargo build -q --example standins
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
AI_PORT=$(free_port)
STANDINS_OUT=$(mktemp)
DATA=$(mktemp -d)
PID="" AI_PID=""
# Set before anything starts: whatever exits, what this script started stops.
trap 'kill $PID $AI_PID 2>/dev/null || true; wait $PID $AI_PID 2>/dev/null || true; rm -rf "$DATA" "$STANDINS_OUT"' EXIT
target/debug/examples/standins --ai-port "$AI_PORT" --control-port "$(free_port)" --immich >"$STANDINS_OUT" 2>&1 &
AI_PID=$!
for _ in $(seq 100); do grep -q '^immich key:' "$STANDINS_OUT" && break; sleep 0.1; done
IMMICH_URL=$(awk '/^immich stand-in:/ {print $3}' "$STANDINS_OUT")
IMMICH_API_KEY=$(awk '/^immich key:/ {print $3}' "$STANDINS_OUT")
export IMMICH_URL IMMICH_API_KEY
PORT=$(free_port)
TOKEN=fuzz-$RANDOM-$RANDOM
AUTH_TOKEN=$TOKEN DATA_DIR=$DATA BACKEND_PORT=$PORT BIND_ADDR=127.0.0.1 AI_SERVICE_URL=http://127.0.0.1:$AI_PORT \
  UPLOAD_CONCURRENCY=64 RUST_LOG=warn "$BIN" >"$DATA/server.log" 2>&1 &
PID=$!
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break; sleep 0.1; done
# /api/events is a never-ending stream: it has its own test (tests/events.rs).
st --config-file schemathesis.toml run openapi.yaml --url "http://127.0.0.1:$PORT" \
  --max-examples "${EXAMPLES:-100}" --seed 42 --workers 2 --request-timeout 10 \
  --exclude-path /api/events --suppress-health-check all \
  --phases examples,fuzzing,stateful \
  -H "Authorization: Bearer $TOKEN" \
  --report junit --report-junit-path "$DATA/junit.xml" "$@"
