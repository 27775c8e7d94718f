#!/usr/bin/env bash
# The project's whole test suite. Installs what the tests need when it is
# missing (Debian packages, npm and PyPI tools), then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --all-targets
