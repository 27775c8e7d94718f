#!/usr/bin/env bash
# Builds the fully static release binary (x86_64 musl) and prints its path.
# Installs what it needs: the rustup target and Debian's musl-tools, whose
# musl-gcc compiles the C parts (aws-lc-sys, the TLS crypto).
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=x86_64-unknown-linux-musl

rustup target list --installed | grep -qx "$TARGET" || rustup target add "$TARGET" >&2
if ! command -v musl-gcc >/dev/null; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq >&2 && $SUDO apt-get install -y -qq musl-tools >&2
fi

CC_x86_64_unknown_linux_musl=musl-gcc \
  cargo build --release --locked --target "$TARGET" --bin immichvr >&2

BIN="${CARGO_TARGET_DIR:-target}/$TARGET/release/immichvr"
if ! file "$BIN" | grep -Eq 'statically linked|static-pie linked'; then
  echo "static-build: $BIN is not static: $(file "$BIN")" >&2
  exit 1
fi
echo "$BIN"
