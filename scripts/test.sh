#!/usr/bin/env bash
# The project's whole test suite. Installs what the tests need when it is
# missing (Debian packages, npm and PyPI tools), then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v curl >/dev/null || need_apt+=(curl)
command -v file >/dev/null || need_apt+=(file)
# tests/ksplat_spark.rs loads our splats in Spark inside headless Chromium.
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
command -v npm >/dev/null || need_apt+=(nodejs npm)
if [ ${#need_apt[@]} -gt 0 ]; then
  apt-get update -qq && apt-get install -y -qq "${need_apt[@]}"
fi
command -v st >/dev/null || python3 -m pip install -q schemathesis
# Prism validates our Immich client against Immich's own spec.
command -v prism >/dev/null || npm install -g --silent @stoplight/prism-cli

# Unit, HTTP, pipeline, crash and contract tests (Rust); the kill -9 test
# runs on its own so that its figures are printed.
cargo test --lib --bins --tests --examples -- --skip kill_nine_loses_nothing
cargo test --test kill9 -- --nocapture
# Fuzzing the running binary against the checked-in openapi.yaml.
scripts/fuzz.sh
# Clients generated from openapi.yaml (Python, TypeScript, Rust) run the
# main flow.
scripts/clients-test.sh
scripts/progenitor-test.sh
# The admin page in a real browser (Chromium, headless).
scripts/browser-test.sh
# Shipping: the fully static binary, install.sh into a prefix, and the
# container image's files run in an empty chroot.
STATIC=$(scripts/static-build.sh)
scripts/install-test.sh "$STATIC"
scripts/chroot-test.sh "$STATIC"
