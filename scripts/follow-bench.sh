#!/usr/bin/env bash
# Keeping the AI busy and the app first (benches/follow.rs): builds this
# checkout and the baseline revision (default 3e48830, the one the issue
# measured; `none` to skip it) in release, then runs the benchmark, which
# measures both in the same run.
#   scripts/follow-bench.sh [BASELINE_REV]     (RUNS=3 for medians of 3)
# Wrap it in the machine's lock for heavy jobs when the host is shared.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=$(realpath -m "${CARGO_TARGET_DIR:-target}")
REV=${1:-3e48830}
cargo build --release -q
if [ "$REV" != none ]; then
  SRC="$TARGET/baseline-src"
  rm -rf "$SRC"
  mkdir -p "$SRC"
  git archive "$REV" | tar -x -C "$SRC"
  (cd "$SRC" && CARGO_TARGET_DIR="$TARGET/baseline" cargo build --release -q)
  export BASELINE_BIN="$TARGET/baseline/release/immichvr"
fi
CANDIDATE_BIN="$TARGET/release/immichvr" cargo bench -q --bench follow
