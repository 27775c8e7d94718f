#!/usr/bin/env bash
# Stands in for the container image (no Docker engine on these machines):
# builds the static binary, puts exactly the files the Dockerfile COPYs into
# an empty directory, and runs the binary chrooted there as the image's
# user, with the image's ENV. Checks /health, an upload processed through
# an AI stand-in over HTTP, /metrics, a backup, and `immichvr healthcheck`
# inside the chroot (the image's HEALTHCHECK).
#   scripts/chroot-test.sh [BINARY]   (needs root for chroot)
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "chroot-test: FAIL: $*" >&2; [ -f "${ROOT:-/x}/../serve.log" ] && tail -20 "$ROOT/../serve.log" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "chroot-test: needs root (chroot)" >&2; exit 1; }

BINARY="${1:-$(scripts/static-build.sh)}"
file "$BINARY" | grep -Eq 'statically linked|static-pie linked' || fail "$BINARY is not static"
cargo build -q --example standins

WORK="$(mktemp -d)"
ROOT="$WORK/root"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
mkdir -p "$ROOT"

# The image's file system, from the Dockerfile's COPY lines: build-context
# sources come from this checkout, --from=<stage> sources from this Debian
# host (the stage is Debian too); a directory the stage only creates is
# created empty.
OWNER=""
while read -r -a words; do
  [ "${words[0]:-}" = COPY ] || continue
  from="" chown=""; args=()
  for w in "${words[@]:1}"; do
    case "$w" in --from=*) from="${w#*=}" ;; --chown=*) chown="${w#*=}" ;; *) args+=("$w") ;; esac
  done
  src="${args[0]}" dst="$ROOT${args[1]}"
  mkdir -p "$(dirname "$dst")"
  if [ -z "$from" ]; then
    [ "$src" = target/x86_64-unknown-linux-musl/release/immichvr ] && src="$BINARY"
    cp "$src" "$dst"
  elif [ -f "$src" ]; then
    cp -L "$src" "$dst"
  else
    mkdir -p "$dst"
  fi
  [ -n "$chown" ] && chown "$chown" "$dst"
done < Dockerfile
CHROOT="$(command -v chroot)"
USERSPEC="$(awk '/^USER /{print $2}' Dockerfile)"
IMAGE_ENV=($(awk '/^ENV /{for (i=2;i<=NF;i++) print $i}' Dockerfile))
ENTRY="$(sed -n 's/^ENTRYPOINT \["\([^"]*\)"\]/\1/p' Dockerfile)"
echo "chroot-test: the chroot holds:"
(cd "$ROOT" && find . -mindepth 1 | sort | sed 's/^/  /')

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
AI_PORT="$(free_port)" PORT="$(free_port)"
"${CARGO_TARGET_DIR:-target}"/debug/examples/standins --ai-port "$AI_PORT" --control-port "$(free_port)" > "$WORK/ai.log" 2>&1 &
PIDS+=($!)

in_image() { env -i "${IMAGE_ENV[@]}" BACKEND_PORT="$PORT" AI_SERVICE_URL="http://127.0.0.1:$AI_PORT" \
  RETRY_BASE_SECS=0.2 "$CHROOT" --userspec="$USERSPEC" "$ROOT" "$ENTRY" "$@"; }
# exec: env, then chroot, then the binary replace the subshell, so $! is the
# server itself and the clean-up stops it (not just a shell around it).
( in_image() { exec env -i "${IMAGE_ENV[@]}" BACKEND_PORT="$PORT" AI_SERVICE_URL="http://127.0.0.1:$AI_PORT" \
    RETRY_BASE_SECS=0.2 "$CHROOT" --userspec="$USERSPEC" "$ROOT" "$ENTRY" "$@"; }
  in_image serve ) > "$WORK/serve.log" 2>&1 &
PIDS+=($!)

URL="http://127.0.0.1:$PORT"
for _ in $(seq 1 100); do curl -fsS "$URL/health" > "$WORK/health.json" 2>/dev/null && break; sleep 0.1; done
grep -q '"status":"healthy"' "$WORK/health.json" || fail "no healthy /health"
in_image healthcheck || fail "healthcheck inside the chroot"
# Read whole first: `grep -q` stops at its match, and a curl still writing
# then fails the pipeline.
page=$(curl -fsS "$URL/") || fail "GET / (admin entry)"
grep -q "ImmichVR" <<<"$page" || fail "GET / (admin entry)"

python3 - "$WORK/p.png" <<'PY'
import struct, sys, zlib
w, h = 8, 8
rows = b"".join(b"\0" + bytes((x * 31 + y) % 256 for x in range(w * 3)) for y in range(h))
def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
       + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
open(sys.argv[1], "wb").write(png)
PY
QID="$(curl -fsS -F "media=@$WORK/p.png" "$URL/api/media/upload" | python3 -c 'import json,sys; print(json.load(sys.stdin)["queueId"])')"
for _ in $(seq 1 150); do
  STATUS="$(curl -fsS "$URL/api/queue/items/$QID" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')"
  [ "$STATUS" = completed ] && break; sleep 0.1
done
[ "$STATUS" = completed ] || fail "upload not processed through the AI stand-in (status $STATUS)"
ls "$ROOT/data/depth_maps/" | grep -q '\.png$' || fail "no depth map stored in /data"

metrics=$(curl -fsS "$URL/metrics") || fail "/metrics"
grep -q '^immichvr_items_processed_total 1$' <<<"$metrics" || fail "/metrics"
BACKUP="$(curl -fsS -X POST "$URL/api/admin/backup" | python3 -c 'import json,sys; print(json.load(sys.stdin)["path"])')"
[ -s "$ROOT$BACKUP" ] || fail "backup $BACKUP not written inside the chroot"

# The built-in depth engine in the static binary, no AI service: a model
# placed by hand (the tiny fixture, as MODEL_DIR would be mounted), one photo.
mkdir -p "$ROOT/models/Depth-Anything-V2-Small-hf"
cp tests/fixtures/depth-anything-tiny/{config.json,preprocessor_config.json,model.safetensors} \
  "$ROOT/models/Depth-Anything-V2-Small-hf/"
cp "$WORK/p.png" "$ROOT/data/engine-in.png" && chmod 644 "$ROOT/data/engine-in.png"
env -i "${IMAGE_ENV[@]}" MODEL_DIR=/models BUILTIN_THREADS=1 "$CHROOT" --userspec="$USERSPEC" "$ROOT" \
  "$ENTRY" models depth /data/engine-in.png --out /data/engine-out.png > "$WORK/engine.log" 2>&1 \
  || fail "the built-in engine in the chroot: $(cat "$WORK/engine.log")"
python3 - "$ROOT/data/engine-out.png" <<'PY' || fail "the built-in engine's depth map is not an 8x8 8-bit grayscale PNG"
import struct, sys
b = open(sys.argv[1], "rb").read()
assert b[:8] == b"\x89PNG\r\n\x1a\n" and b[12:16] == b"IHDR"
w, h, depth, color = struct.unpack(">IIBB", b[16:26])
assert (w, h, depth, color) == (8, 8, 8, 0), (w, h, depth, color)
PY

SIZE="$(stat -c %s "$BINARY")"
echo "chroot-test: ok (chroot, user $USERSPEC): /health, healthcheck, upload -> AI -> depth map, /metrics, backup, built-in engine depth map; binary $SIZE bytes"
