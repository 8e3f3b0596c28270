#!/bin/bash
# Router A/B on 4 in-process mock workers (`turbine run --workers 4 --engine mock`), replaying the
# first N requests of the Mooncake conversation trace; the modes run back to back, each on a
# fresh server. Writes ab_<mode><suffix>.{json,svg}, bench_*.txt, metrics_*.txt (the /metrics
# scrape after the replay: router hit rate, engine prefix-cache counters) into OUTDIR.
# Usage: bench/router_ab.sh OUTDIR N TRACE_SPEEDUP [extra `turbine run` flags...]
# Env: TURBINE (default build/turbine), SHARED (default ../shared), MODES ("kv round-robin
# random"), SUFFIX (appended to the file names), SPEEDUP (mock, 4), KV_BLOCKS (65536), PORT.
set -u
OUT=$1; N=$2; TS=$3; shift 3
HERE=$(cd "$(dirname "$0")/.." && pwd)
T=${TURBINE:-$HERE/build/turbine}
SHARED=${SHARED:-$HERE/../shared}
M=$SHARED/models/stories260K/stories260K.gguf
PORT=${PORT:-18560}
S=${SUFFIX:-}
mkdir -p "$OUT"; cd "$OUT" || exit 1
for mode in ${MODES:-kv round-robin random}; do
  $T run --model $M --workers 4 --engine mock --speedup ${SPEEDUP:-4} --router-mode $mode \
    --mock-kv-blocks ${KV_BLOCKS:-65536} --port $PORT "$@" > server_$mode$S.log 2>&1 &
  pid=$!
  for i in $(seq 100); do curl -sf localhost:$PORT/health >/dev/null && break; sleep 0.2; done
  $T bench --url http://127.0.0.1:$PORT --endpoint completions \
    --dataset $SHARED/datasets/mooncake_conversation_trace.jsonl --request-rate trace \
    --trace-speedup $TS -n $N -c 0 --calibrate --no-progress \
    --output-json ab_$mode$S.json --plot ab_$mode$S.svg > bench_$mode$S.txt 2>&1
  curl -s localhost:$PORT/metrics > metrics_$mode$S.txt
  kill $pid; wait $pid
  echo "$mode$S $(uptime)" >> load.txt
done
