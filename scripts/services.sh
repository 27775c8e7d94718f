# Sourced by the scripts that run the binary against the stand-ins
# (fuzz.sh, clients-test.sh, progenitor-test.sh): free ports, the stand-ins,
# servers, and a clean-up that stops whatever was started.
BIN=${BIN:-target/debug/immichvr}
[ -x "$BIN" ] || cargo build -q
cargo build -q --example standins
WORK=$(mktemp -d)
PIDS=()
stop_services() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
# Set before anything starts: whatever exits, what was started stops.
trap stop_services EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The AI stand-in and the Immich stand-in; sets AI_PORT, IMMICH_URL and
# IMMICH_API_KEY.
start_standins() {
  AI_PORT=$(free_port)
  : >"$WORK/standins.log"
  target/debug/examples/standins --ai-port "$AI_PORT" --control-port "$(free_port)" --immich \
    >"$WORK/standins.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do grep -q '^immich key:' "$WORK/standins.log" && break; sleep 0.1; done
  IMMICH_URL=$(awk '/^immich stand-in:/ {print $3}' "$WORK/standins.log")
  IMMICH_API_KEY=$(awk '/^immich key:/ {print $3}' "$WORK/standins.log")
}

# start_server PORT DATA_DIR [VAR=value ...]: the binary on PORT with the AI
# stand-in, until /health answers; its log is DATA_DIR.log.
start_server() {
  local port=$1 data=$2
  shift 2
  # Following Immich off unless asked (VAR=value wins): the clients' and
  # fuzzing's checks of the queue must not see its background jobs.
  env IMMICH_SYNC_SECS=0 "$@" DATA_DIR="$data" BACKEND_PORT="$port" BIND_ADDR=127.0.0.1 \
    AI_SERVICE_URL="http://127.0.0.1:$AI_PORT" RUST_LOG=warn "$BIN" >"$data.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && return; sleep 0.1; done
  echo "the server did not start:" >&2
  cat "$data.log" >&2
  exit 1
}
