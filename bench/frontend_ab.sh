#!/usr/bin/env bash
# The frontend's own cost, A/B: two turbine binaries serve the same mock engine (simulated time,
# so the engine is the same in both) and `turbine bench` drives each with the same load, in turns.
#   bench/frontend_ab.sh OLD_BIN NEW_BIN [ROUNDS]
# Prints the server's CPU time per request, requests/s, output tok/s and TTFT/E2E p50/p99 per run (docs/PERFORMANCE.md, issue 17).
set -euo pipefail
old=$1
new=$2
rounds=${3:-3}
shared=${TURBINE_SHARED:-$(cd "$(dirname "$0")/../.." && pwd)/shared}
model=$shared/models/stories260K/stories260K.gguf
port=18600

run() {  # BIN TAG
  port=$((port + 1))
  "$1" run --model "$model" --engine mock --speedup 50 --served-model-name m \
    --host 127.0.0.1 --port "$port" >/dev/null 2>&1 &
  local server=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.2; done
  "$new" bench --url "http://127.0.0.1:$port" --endpoint chat -c 32 -n 2000 --input-len 128 \
    --output-len 32 --no-progress --output-json "/tmp/frontend_ab_$2.json" >/dev/null
  # CPU seconds the server spent (user + system): less sensitive to a loaded machine than rates.
  local ticks
  ticks=$(awk '{print $14 + $15}' "/proc/$server/stat")
  echo "$ticks" >"/tmp/frontend_ab_$2.cpu"
  kill "$server"
  wait "$server" 2>/dev/null || true
  python3 - "$2" <<'PY'
import json, os, sys
tag = sys.argv[1]
j = json.load(open(f"/tmp/frontend_ab_{tag}.json"))
cpu = int(open(f"/tmp/frontend_ab_{tag}.cpu").read()) / os.sysconf("SC_CLK_TCK")
print(f"{tag:8} server CPU {cpu * 1000 / j['completed']:5.2f} ms/request  "
      f"{j['requests_per_s']:8.1f} req/s {j['output_tokens_per_s']:9.1f} out tok/s  "
      f"TTFT p50/p99 {j['ttft_ms']['p50']:6.1f}/{j['ttft_ms']['p99']:6.1f} ms  "
      f"E2E p50/p99 {j['e2e_ms']['p50']:6.1f}/{j['e2e_ms']['p99']:6.1f} ms  errors {j['errors']}")
PY
}

for r in $(seq 1 "$rounds"); do
  run "$old" "old$r"
  run "$new" "new$r"
done
