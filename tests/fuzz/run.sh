#!/usr/bin/env bash
# Runs every fuzz target built in BUILD_DIR for a bounded time: `tests/fuzz/run.sh build-asan`.
# FUZZ_SECONDS (default 20) per target. A crash fails the run and leaves the input in $work.
set -euo pipefail
build="$1"
here="$(cd "$(dirname "$0")" && pwd)"
seconds="${FUZZ_SECONDS:-20}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
found=0
for bin in "$build"/tests/*_fuzz; do
  [ -x "$bin" ] || continue
  found=1
  name="$(basename "$bin" _fuzz)"
  corpus="$work/$name"
  mkdir -p "$corpus"
  seeds=()
  [ -d "$here/corpus/$name" ] && seeds=("$here/corpus/$name")
  echo "== fuzz $name for ${seconds}s"
  ASAN_OPTIONS=detect_leaks=1 "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$work/" -print_final_stats=1 "$corpus" "${seeds[@]}" 2>&1 | tail -n 12
done
if [ "$found" -eq 0 ]; then
  echo "no fuzz targets in $build/tests" >&2
  exit 1
fi
