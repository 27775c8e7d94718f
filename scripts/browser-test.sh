#!/usr/bin/env bash
# Browser tests of the admin page: Debian's Chromium driven by
# playwright-core against the real binary and the stand-ins. Installs what
# is missing (chromium from apt, playwright-core from npm; never a browser
# download), builds, then runs Node's test runner on tests/browser/.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
if [ ! -d tests/browser/node_modules/playwright-core ]; then
  (cd tests/browser && { npm ci --no-audit --no-fund || npm install --no-audit --no-fund; })
fi

if [ ! -d tests/live/node_modules/socket.io-client ]; then
  (cd tests/live && { npm ci --no-audit --no-fund || npm install --no-audit --no-fund; })
fi

cargo build --examples --bins
mkdir -p artifacts/screenshots
node --test tests/browser/
# The VR app's live channel, with the Socket.IO client the app uses.
node --test tests/live/
