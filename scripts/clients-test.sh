#!/usr/bin/env bash
# Generated clients as a new user makes them. openapi-python-client and
# @hey-api/openapi-ts (zod validation on), pinned, generate from the
# checked-in openapi.yaml; any warning either prints fails the run. The
# output and our flows are type-checked (mypy --strict, tsc --noEmit
# --strict), then each flow runs against the binary with the AI and Immich
# stand-ins: upload (multipart and raw), poll, lists, depth bytes, typed
# errors, worker stop/start, Immich import, typed events.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. scripts/services.sh

# Tools: a virtualenv kept under target/ (pinned versions), npm ci from the lock.
VENV=target/client-tools/venv
if ! "$VENV/bin/openapi-python-client" --version 2>/dev/null | grep -q 0.29.1; then
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q openapi-python-client==0.29.1 mypy==2.4.1 httpx==0.28.1
fi
(cd tests/clients/typescript && npm ci --silent --no-audit --no-fund)

fail_on_warnings() { # log, generator
  if grep -Eiq 'warn|error|unable|cannot|skipp' "$1"; then
    echo "clients: $2 printed warnings about openapi.yaml:" >&2
    cat "$1" >&2
    exit 1
  fi
}

echo "clients: openapi-python-client 0.29.1"
mkdir -p "$WORK/py"
"$VENV/bin/openapi-python-client" generate --path openapi.yaml --meta none \
  --output-path "$WORK/py/immichvr_client" \
  --config tests/clients/python/openapi-python-client.yaml >"$WORK/py.log" 2>&1
fail_on_warnings "$WORK/py.log" openapi-python-client
cp tests/clients/python/flow.py "$WORK/py/"
(cd "$WORK/py" && "$ROOT/$VENV/bin/mypy" --strict --no-incremental immichvr_client flow.py)

echo "clients: @hey-api/openapi-ts 0.95.0 (zod)"
(cd tests/clients/typescript && rm -rf gen dist && npx openapi-ts >"$WORK/ts.log" 2>&1)
fail_on_warnings "$WORK/ts.log" @hey-api/openapi-ts
(cd tests/clients/typescript && npx tsc --noEmit --strict -p . && npx tsc -p .)

start_standins

PORT=$(free_port)
TOKEN=clients-$RANDOM-$RANDOM
start_server "$PORT" "$WORK/data" AUTH_TOKEN="$TOKEN" IMMICH_URL="$IMMICH_URL" IMMICH_API_KEY="$IMMICH_API_KEY"
(cd "$WORK/py" && "$ROOT/$VENV/bin/python" flow.py "http://127.0.0.1:$PORT" "$TOKEN")
(cd tests/clients/typescript && node dist/flow.js "http://127.0.0.1:$PORT" "$TOKEN")

# Without AUTH_TOKEN: what the README tells Python users to pass.
OPEN_PORT=$(free_port)
start_server "$OPEN_PORT" "$WORK/open"
(cd "$WORK/py" && "$ROOT/$VENV/bin/python" flow.py "http://127.0.0.1:$OPEN_PORT" none --open)
echo "clients: ok"
