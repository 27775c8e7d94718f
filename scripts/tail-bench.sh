#!/usr/bin/env bash
# One-connection latency (wrk -t1 -c1) of GET /api/queue/stats and
# GET /health for several binaries in the same run, rounds interleaved so
# that a noisy neighbour hits them all alike; prints p50/p99 per round and
# the medians, plus the idle RSS of each binary (after start, before load).
#   scripts/tail-bench.sh NAME=BINARY [NAME=BINARY ...]   (ROUNDS=5, SECS=5)
set -euo pipefail
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
ROUNDS=${ROUNDS:-5}
SECS=${SECS:-5}
WORK=$(mktemp -d -p "${TMPDIR:-/var/tmp}" immichvr-tail.XXXX)
trap 'rm -rf "$WORK"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ms() { # wrk latency figure (us/ms/s) -> ms
  awk '{v=$1; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; printf "%.3f\n", v}'
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "## $(nproc) cores, $(uname -r), $(date -u '+%F %H:%M') UTC, load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$ROUNDS"); do
  for spec in "$@"; do
    name=${spec%%=*}; bin=${spec#*=}
    port=$(free_port); url="http://127.0.0.1:$port"
    rm -rf "$WORK/data"
    DATA_DIR=$WORK/data BACKEND_PORT=$port BIND_ADDR=127.0.0.1 AUTO_START_WORKER=false \
      AI_SERVICE_URL=http://127.0.0.1:9 RUST_LOG=warn "$bin" >/dev/null 2>&1 &
    pid=$!
    curl -fs -o /dev/null --retry 2000 --retry-connrefused --retry-delay 0 --retry-max-time 10 "$url/health"
    sleep 1
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
    for path in /api/queue/stats /health; do
      wrk -t1 -c1 -d1s "$url$path" >/dev/null   # warm-up
      out=$(wrk -t1 -c1 -d"${SECS}s" --latency "$url$path")
      p50=$(echo "$out" | awk '/ 50%/ {print $2}' | ms)
      p99=$(echo "$out" | awk '/ 99%/ {print $2}' | ms)
      rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
      echo "round $round $name $path p50 $p50 p99 $p99 req/s $rps rss_kib $rss load $(cut -d' ' -f1 /proc/loadavg)" | tee -a "$WORK/all"
    done
    kill "$pid"; wait "$pid" 2>/dev/null || true
  done
done
echo "## medians of $ROUNDS rounds"
echo "| binary | route | p50 ms | p99 ms | req/s | idle RSS KiB |"
echo "|---|---|---|---|---|---|"
for spec in "$@"; do
  name=${spec%%=*}
  for path in /api/queue/stats /health; do
    sel() { awk -v n="$name" -v p="$path" -v f="$1" '$3==n && $4==p {for (i=1;i<=NF;i++) if ($i==f) print $(i+1)}' "$WORK/all" | median; }
    echo "| $name | $path | $(sel p50) | $(sel p99) | $(sel req/s) | $(sel rss_kib) |"
  done
done
