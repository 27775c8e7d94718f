#!/usr/bin/env bash
# Makes tests/fixtures/release-v3/data: a data dir written by a schema-3
# release (its binary as $1) through its own API, against the stand-ins:
# the VR app's generate for three Immich photos (depth, small), one upload
# with its depth map. tests/migrations.rs opens it with this release and
# follows the same Immich library: the three are found made, not made
# again. Run once per schema change; the output is checked in.
#   scripts/make-v3-fixture.sh /path/to/immichvr-of-schema-3
set -euo pipefail
cd "$(dirname "$0")/.."
OLD=${1:?the binary of a schema-3 release}
TARGET=${CARGO_TARGET_DIR:-target}
cargo build -q --example standins
OUT=tests/fixtures/release-v3
rm -rf "$OUT/data"
mkdir -p "$OUT/data"
WORK=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
AI_PORT=$(free_port)
: >"$WORK/standins.log"
"$TARGET/debug/examples/standins" --ai-port "$AI_PORT" --control-port "$(free_port)" --immich --immich-photos 6 >"$WORK/standins.log" 2>&1 &
STANDINS=$!
trap 'kill $STANDINS 2>/dev/null || true; [ -n "${SERVER:-}" ] && kill $SERVER 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do grep -q '^immich key:' "$WORK/standins.log" && break; sleep 0.1; done
IMMICH_URL=$(awk '/^immich stand-in:/ {print $3}' "$WORK/standins.log")
IMMICH_API_KEY=$(awk '/^immich key:/ {print $3}' "$WORK/standins.log")
PORT=$(free_port)
DATA_DIR="$PWD/$OUT/data" BACKEND_PORT=$PORT BIND_ADDR=127.0.0.1 AI_SERVICE_URL="http://127.0.0.1:$AI_PORT" \
  IMMICH_URL="$IMMICH_URL" IMMICH_API_KEY="$IMMICH_API_KEY" RUST_LOG=warn "$OLD" >"$WORK/server.log" 2>&1 &
SERVER=$!
URL=http://127.0.0.1:$PORT
for _ in $(seq 100); do curl -fsS "$URL/health" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS -X POST "$URL/api/settings/models/sync" >/dev/null
for i in 1 2 3; do
  curl -fsS -o /dev/null -X POST -H 'content-type: application/json' \
    -d '{"type":"depth","modelKey":"small"}' "$URL/api/assets/00000000-0000-4000-8000-00000000000$i/generate"
done
python3 - "$WORK/up.png" <<'PY'
import struct, sys, zlib
w, h = 16, 12
raw = b"".join(b"\x00" + bytes((x * 13 + y * 7) % 256 for x in range(w * 3)) for y in range(h))
chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
open(sys.argv[1], "wb").write(png)
PY
Q=$(curl -fsS -F "media=@$WORK/up.png;filename=upload.png" "$URL/api/media/upload" | python3 -c 'import json,sys; print(json.load(sys.stdin)["queueId"])')
for _ in $(seq 100); do
  curl -fsS "$URL/api/queue/items/$Q" | grep -q '"completed"' && break; sleep 0.1
done
kill -TERM $SERVER; wait $SERVER || true
SERVER=
echo "made $OUT/data with $("$OLD" --version)"
