#!/usr/bin/env bash
# Tests install.sh the way a container or CI can: --prefix DIR --no-systemd
# into a temporary directory, start the installed binary on a free port,
# check /health and the healthcheck subcommand, upgrade in place (the edited
# configuration and the data survive), uninstall, purge.
#   scripts/install-test.sh [BINARY]   (default: build the static binary)
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "install-test: FAIL: $*" >&2; exit 1; }

BINARY="${1:-$(scripts/static-build.sh)}"
DIR="$(mktemp -d)"
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$DIR"; }
trap cleanup EXIT
PREFIX="$DIR/immichvr"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"

./install.sh --prefix "$PREFIX" --no-systemd --binary "$BINARY" > "$DIR/install.log"
grep -q "run it with" "$DIR/install.log" || fail "no run instructions: $(cat "$DIR/install.log")"
[ -x "$PREFIX/bin/immichvr" ] || fail "binary not installed"
UNIT="$PREFIX/systemd/immichvr.service"
grep -qx "ExecStart=$PREFIX/bin/immichvr serve" "$UNIT" || fail "unit without ExecStart: $(cat "$UNIT")"
grep -qx "LimitNOFILE=65536" "$UNIT" || fail "unit without LimitNOFILE"
grep -qx "EnvironmentFile=$PREFIX/etc/immichvr.env" "$UNIT" || fail "unit without its env file"
if grep -q '@\|^#system\|^User=' "$UNIT"; then fail "unit not filled in: $(cat "$UNIT")"; fi
ENV_FILE="$PREFIX/etc/immichvr.env"
grep -qx "DATA_DIR=$PREFIX/data" "$ENV_FILE" || fail "DATA_DIR not set in $ENV_FILE"
for opt in $("$PREFIX/bin/immichvr" config --reference | tail -n +3 | cut -d'`' -f2); do
  [ "$opt" = DATA_DIR ] && continue
  grep -q "^#$opt=" "$ENV_FILE" || fail "$opt is not documented in $ENV_FILE"
done
echo "BACKEND_PORT=$PORT" >> "$ENV_FILE"
echo "AUTO_START_WORKER=false" >> "$ENV_FILE"

start() {
  ( set -a; . "$ENV_FILE"; set +a; exec "$PREFIX/bin/immichvr" serve ) > "$DIR/serve.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$PORT/health" > "$DIR/health.json" 2>/dev/null && return 0
    sleep 0.1
  done
  fail "no /health answer: $(cat "$DIR/serve.log")"
}
stop() { kill "$PID"; wait "$PID" || true; PID=""; }

start
grep -q '"status":"healthy"' "$DIR/health.json" || fail "unhealthy: $(cat "$DIR/health.json")"
BACKEND_PORT=$PORT "$PREFIX/bin/immichvr" healthcheck || fail "healthcheck subcommand"
[ -f "$PREFIX/data/immichvr.redb" ] || fail "no database in the data dir"
stop

# Upgrade in place: configuration edits and data stay.
./install.sh --prefix "$PREFIX" --no-systemd --binary "$BINARY" > "$DIR/install2.log"
grep -q "kept $ENV_FILE" "$DIR/install2.log" || fail "env file not kept on upgrade"
grep -qx "BACKEND_PORT=$PORT" "$ENV_FILE" || fail "edit lost on upgrade"
start; stop

./install.sh --prefix "$PREFIX" --uninstall > /dev/null
[ ! -e "$PREFIX/bin/immichvr" ] || fail "binary left after --uninstall"
[ -f "$PREFIX/data/immichvr.redb" ] && [ -f "$ENV_FILE" ] || fail "--uninstall removed data or config"
./install.sh --prefix "$PREFIX" --uninstall --purge > /dev/null
[ ! -e "$PREFIX/data" ] && [ ! -e "$PREFIX/etc" ] || fail "--purge left data or config"
if ./install.sh --purge >/dev/null 2>&1; then fail "--purge without --uninstall accepted"; fi
echo "install-test: ok (install, /health, healthcheck, upgrade keeps config and data, uninstall, purge)"
