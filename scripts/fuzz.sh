#!/usr/bin/env bash
# Fuzzes the running binary with schemathesis against the checked-in
# openapi.yaml: every check, at least 1,000 generated cases, 0 failures.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v st >/dev/null || python3 -m pip install -q schemathesis
. scripts/services.sh
start_standins
PORT=$(free_port)
TOKEN=fuzz-$RANDOM-$RANDOM
# A generate waits at most 5 s (then 504), within the 10 s request timeout.
start_server "$PORT" "$WORK/data" AUTH_TOKEN="$TOKEN" UPLOAD_CONCURRENCY=64 GENERATE_WAIT_SECS=5 \
  IMMICH_URL="$IMMICH_URL" IMMICH_API_KEY="$IMMICH_API_KEY"
# /api/events never ends: schemathesis reads its first event per case
# (schemathesis.toml) and checks it against the declared `Event`.
st --config-file schemathesis.toml run openapi.yaml --url "http://127.0.0.1:$PORT" \
  --max-examples "${EXAMPLES:-100}" --seed 42 --workers 2 --request-timeout 10 \
  --suppress-health-check all \
  --phases examples,fuzzing,stateful \
  -H "Authorization: Bearer $TOKEN" \
  --report junit --report-junit-path "$WORK/junit.xml" "$@"
