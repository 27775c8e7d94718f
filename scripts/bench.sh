#!/usr/bin/env bash
# All benchmarks in one command: limits probe, storage, HTTP (wrk),
# memory, pipeline. Prints figures; BENCHMARKS.md records a run.
#   scripts/bench.sh            (SIZES=1000,100000,1000000 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
SIZES=${SIZES:-1000,100000,1000000}
RUNS=${RUNS:-3}
WORK=${WORK:-$(mktemp -d -p "${TMPDIR:-/var/tmp}" immichvr-bench.XXXX)}
cargo build --release --bins --benches --examples -q
BIN=${BIN:-target/release/immichvr}   # BIN=$(scripts/static-build.sh) measures the shipped static binary
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
now_ms() { date +%s%3N; }

echo "## machine"; echo "$(nproc) cores, $(free -g | awk '/Mem/ {print $2}') GiB, $(uname -r), $(date -u +%F)"
echo "## limits (data directory's file system: $WORK)"
python3 scripts/limits.py "$WORK/limits" | tee "$WORK/limits.txt"
echo "## storage"
SIZES=$SIZES KEEP_DIR=$WORK cargo bench -q --bench storage 2>/dev/null | grep '^|'

start() { # data dir -> sets PID, URL, START_MS (time to healthy)
  PORT=$(free_port); URL="http://127.0.0.1:$PORT"
  local t0; t0=$(now_ms)
  DATA_DIR=$1 BACKEND_PORT=$PORT BIND_ADDR=127.0.0.1 AUTO_START_WORKER=${WORKER:-false} \
    AI_SERVICE_URL=${AI:-http://127.0.0.1:9} RUST_LOG=warn UPLOAD_CONCURRENCY=16 MAX_UPLOAD_BYTES=$((200*1024*1024)) "$BIN" >/dev/null 2>&1 &
  PID=$!
  curl -fs -o /dev/null --retry 2000 --retry-connrefused --retry-delay 0 --retry-max-time 10 "$URL/health"
  START_MS=$(( $(now_ms) - t0 ))
}
stop() { kill "$PID"; wait "$PID" 2>/dev/null || true; PID=; }
PID=
AI_PID=""
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; [ -n "$AI_PID" ] && kill "$AI_PID" 2>/dev/null; true' EXIT
p99_ms() { # wrk --latency output -> p99 in ms
  awk '/ 99%/ {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; print v}'
}

echo "## http (latency: wrk -t1 -c1 -d5s; throughput: wrk -t2 -c8 -d5s; medians of $RUNS runs)"
echo "| items | start to healthy | idle RSS | stats p99 (c1) | stats req/s (c8) | list p99 (c1) | list req/s (c8) |"
echo "|---|---|---|---|---|---|---|"
for n in ${SIZES//,/ }; do
  starts=(); rss=(); sp=(); sr=(); lp=(); lr=()
  for _ in $(seq "$RUNS"); do
    start "$WORK/n$n"; starts+=("$START_MS"); sleep 0.5; rss+=("$(rss_kib $PID)")
    sp+=("$(wrk -t1 -c1 -d5s --latency "$URL/api/queue/stats" | p99_ms)")
    sr+=("$(wrk -t2 -c8 -d5s "$URL/api/queue/stats" | awk '/Requests\/sec/ {print $2}')")
    lp+=("$(wrk -t1 -c1 -d5s --latency "$URL/api/queue/items?status=queued&limit=50" | p99_ms)")
    lr+=("$(wrk -t2 -c8 -d5s "$URL/api/queue/items?status=queued&limit=50" | awk '/Requests\/sec/ {print $2}')")
    stop
  done
  printf '| %s | %s ms | %s KiB | %s ms | %s | %s ms | %s |\n' "$n" \
    "$(printf '%s\n' "${starts[@]}" | median)" "$(printf '%s\n' "${rss[@]}" | median)" \
    "$(printf '%s\n' "${sp[@]}" | median)" "$(printf '%s\n' "${sr[@]}" | median)" \
    "$(printf '%s\n' "${lp[@]}" | median)" "$(printf '%s\n' "${lr[@]}" | median)"
done

echo "## uploads (1 MiB photos, 8 concurrent, wrk -t2 -c8 -d10s)"
ups=()
for _ in $(seq "$RUNS"); do
  rm -rf "$WORK/up"; start "$WORK/up"
  ups+=("$(wrk -t2 -c8 -d10s -s scripts/upload.lua "$URL" | awk -F= '/uploads_per_sec/ {print $2}')")
  stop
done
echo "uploads_per_sec wrk (median) = $(printf '%s\n' "${ups[@]}" | median)  (x 1 MiB = MiB/s)"
echo "## uploads with the lean client (benches/uploads.rs: no per-request copy in the client)"
RUNS=$RUNS BIN=$BIN cargo bench -q --bench uploads 2>/dev/null | grep '^uploads'

echo "## memory during a 100 MiB upload"
rm -rf "$WORK/mem"; start "$WORK/mem"; sleep 0.5
printf '\x89PNG\r\n\x1a\n' > "$WORK/big.png"; head -c $((100*1024*1024)) /dev/urandom >> "$WORK/big.png"
before=$(rss_kib $PID)
curl -fs -o /dev/null -F "media=@$WORK/big.png" "$URL/api/media/upload"
echo "idle_rss_kib=$before peak_rss_kib=$(hwm_kib $PID) after_rss_kib=$(rss_kib $PID)"
stop

echo "## memory after 10,000 processed items (64 KiB photos, AI stand-in)"
AI_PORT=$(free_port)
target/release/examples/standins --ai-port "$AI_PORT" --control-port "$(free_port)" >/dev/null 2>&1 &
AI_PID=$!
curl -fs -o /dev/null --retry 200 --retry-connrefused --retry-delay 0 --retry-max-time 10 "http://127.0.0.1:$AI_PORT/health"
rm -rf "$WORK/mem10k"; WORKER=true AI=http://127.0.0.1:$AI_PORT start "$WORK/mem10k"; sleep 0.5
idle=$(rss_kib $PID)
URL=$URL COUNT=10000 SIZE=65536 CONNS=4 RUNS=1 SECS=900 cargo bench -q --bench uploads 2>/dev/null | grep '^uploads'
until curl -fs "$URL/api/queue/stats" | python3 -c 'import json,sys; s=json.load(sys.stdin)["stats"]; sys.exit(0 if s["completed"]+s["failed"]>=10000 else 1)'; do sleep 1; done
done_rss=$(rss_kib $PID); sleep 10
echo "idle_rss_kib=$idle after_10000_rss_kib=$done_rss 10s_later_rss_kib=$(rss_kib $PID) peak_rss_kib=$(hwm_kib $PID)"
curl -fs "$URL/api/queue/stats" | python3 -c 'import json,sys; print("stats", json.load(sys.stdin)["stats"])'
stop; kill "$AI_PID"; wait "$AI_PID" 2>/dev/null || true

echo "## pipeline"
RUNS=$RUNS cargo bench -q --bench pipeline 2>/dev/null | grep -E 'dispatch|throughput'


echo "## keeping the AI busy and the app first (benches/follow.rs; the baseline revision is built too)"
RUNS=$RUNS scripts/follow-bench.sh 2>/dev/null | grep '^|'
echo "work dir: $WORK"
