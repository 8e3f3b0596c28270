#!/usr/bin/env bash
# Runs the end-to-end suites against a turbine binary: `tests/e2e/run.sh build/turbine`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export TURBINE_BIN="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
export TURBINE_SHARED="${TURBINE_SHARED:-$(cd "$here/../../.." && pwd)/shared}"
cd "$here"
if [ ! -d node_modules/openai ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
# One file at a time: each starts its own server, and node 18 lacks --test-concurrency.
status=0
for f in *.test.mjs; do
  echo "== $f"
  node --test "$f" || status=1
done
exit $status
