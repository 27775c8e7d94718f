#!/usr/bin/env bash
# The built-in depth engine's benchmark (BENCHMARKS.md, "Built-in depth
# engine"): seconds per 12 MP photo with 1 and 2 threads, glibc and static
# builds, against PyTorch on the CPU with the same weights and photo, peak
# RSS, /health p99 while inferring, and the binary size.
#
#   scripts/engine-bench.sh            (RUNS=5; BIN_STATIC=path skips the musl build)
#
# Needs the PyTorch venv of scripts/make-depth-fixture.py (made on first
# use, ~3 GB) for random weights of the real Small architecture and the
# reference timing. Run it under `flock /work/notes/heavy.lock` on shared
# machines: it uses every core.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
WORK=${WORK:-$(mktemp -d -p "${TMPDIR:-/var/tmp}" immichvr-engine-bench.XXXX)}
T=${CARGO_TARGET_DIR:-target}
FIX=scripts/make-depth-fixture.py
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }

MODELS=$WORK/models
if [ ! -f "$MODELS/Depth-Anything-V2-Small-hf/model.safetensors" ]; then
  "$FIX" real --size small --out "$MODELS/Depth-Anything-V2-Small-hf" >&2
fi
PHOTO=${PHOTO:-$WORK/photo-12mp.jpg}
if [ ! -f "$PHOTO" ]; then
  # A 4000x3000 JPEG (quality 90) with structure and noise, made by the same venv.
  "${DEPTH_VENV:-$HOME/.cache/immichvr/depth-venv}/bin/python" - "$PHOTO" <<'PY'
import sys, numpy as np
from PIL import Image
rng = np.random.default_rng(1)
h, w = 3000, 4000
y, x = np.mgrid[0:h, 0:w].astype(np.float32)
r = 127 + 100 * np.sin(x / w * 9) * np.cos(y / h * 7)
g = 255 * (y / h)
b = 255 * ((x - w / 2) ** 2 + (y - h / 3) ** 2 < (h / 4) ** 2)
img = np.stack([r, g, b], -1) + rng.normal(0, 10, (h, w, 3))
Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(sys.argv[1], quality=90)
PY
fi

cargo build --release --bin immichvr -q
GLIBC=$T/release/immichvr
STATIC=${BIN_STATIC:-$(scripts/static-build.sh)}

echo "## machine"
echo "$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem/ {print $2}') GiB, $(uname -r), $(date -u +%F)"
echo "## binary size (bytes)"
for b in "$GLIBC" "$STATIC"; do echo "$(stat -c %s "$b") $b"; done

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "## seconds per photo (median of $RUNS after one warm-up), peak RSS"
for bin in "$GLIBC" "$STATIC"; do
  for threads in 1 2; do
    out=$(MODEL_DIR=$MODELS BUILTIN_THREADS=$threads DATA_DIR=$WORK/data /usr/bin/time -f 'maxrss_kib=%M' \
      "$bin" models depth "$PHOTO" --runs $((RUNS + 1)) --json 2>"$WORK/time.txt")
    rss=$(sed -n 's/^maxrss_kib=//p' "$WORK/time.txt")
    photo=$(echo "$out" | grep "^{" | tail -n +2 | python3 -c 'import sys,json; [print(json.loads(l)["photo_s"]) for l in sys.stdin]' | median)
    model=$(echo "$out" | grep "^{" | tail -n +2 | python3 -c 'import sys,json; [print(json.loads(l)["model_s"]) for l in sys.stdin]' | median)
    echo "immichvr $(basename "$(dirname "$(dirname "$bin")")") threads=$threads photo_s=$photo model_s=$model peak_rss_mib=$((rss / 1024))"
    echo "$out" | grep "^{" | tail -1
  done
done
echo "## PyTorch (same weights, same photo, the AI service's path)"
"$FIX" bench --model "$MODELS/Depth-Anything-V2-Small-hf" --image "$PHOTO" --threads 1,2 --runs "$RUNS"

echo "## /health while inferring (glibc, BUILTIN_THREADS=1, 2 cores)"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT
rm -rf "$WORK/serve"
DATA_DIR=$WORK/serve BACKEND_PORT=$PORT BIND_ADDR=127.0.0.1 MODEL_DIR=$MODELS BUILTIN_THREADS=1 RUST_LOG=warn \
  "$GLIBC" >/dev/null 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
curl -fs -o /dev/null --retry 200 --retry-connrefused --retry-delay 0 --retry-max-time 10 "$URL/health"
health_p99() {
  wrk -t1 -c4 -d"$1" --latency "$URL/health" | awk '/ 99%/ {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; print v}'
}
echo "idle: p99_ms=$(health_p99 5s)"
for i in $(seq 1 8); do
  # Distinct bytes (a JPEG decoder ignores what follows its end): no duplicates.
  cp "$PHOTO" "$WORK/p$i.jpg"; echo "$i" >> "$WORK/p$i.jpg"
  curl -fs -o /dev/null -F "media=@$WORK/p$i.jpg" "$URL/api/media/upload"
done
sleep 3   # the model loads, the first photo is in the engine
echo "inferring: p99_ms=$(health_p99 20s)"
curl -fs "$URL/api/queue/stats"; echo
echo "server peak RSS: $(awk '/^VmHWM/ {print int($2/1024)}' /proc/$PID/status) MiB"
