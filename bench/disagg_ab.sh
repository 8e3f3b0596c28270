#!/bin/bash
# Disaggregated vs aggregated serving A/B (issue 8) on in-process mock workers (`turbine run
# --engine mock`), the same fleet size for every layout, replaying the first N requests of the
# Mooncake conversation trace at several offered rates with a goodput SLO. One fresh server per
# (fleet, rate). Writes ab_<fleet>_ts<TS>.{json,svg}, bench_*.txt, metrics_*.txt (the /metrics
# scrape after the replay), server_*.log and load.txt into OUTDIR; bench/disagg_ab_table.py makes
# the table.
# Usage: bench/disagg_ab.sh OUTDIR N "TS1 TS2 ..." [extra `turbine run` flags...]
# Env: TURBINE (default build/turbine), SHARED (default ../shared), FLEETS (default
#   "8 3+5 5+3": prefill+decode workers, a bare number = aggregated; P+D:CAP adds
#   --max-inflight-prefills CAP), SPEEDUP (mock, 2),
#   KV_BLOCKS (65536), SLO (simulated ms, default ttft=2000,itl=50; divided by SPEEDUP for the
#   wall-clock bench), PORT.
set -u
OUT=$1; N=$2; RATES=$3; shift 3
HERE=$(cd "$(dirname "$0")/.." && pwd)
T=${TURBINE:-$HERE/build/turbine}
SHARED=${SHARED:-$HERE/../shared}
M=$SHARED/models/stories260K/stories260K.gguf
PORT=${PORT:-18570}
SP=${SPEEDUP:-2}
SLO_SIM=${SLO:-ttft=2000,itl=50}
# The bench measures wall time; simulated time runs SPEEDUP times faster.
SLO_WALL=$(echo "$SLO_SIM" | tr ',' '\n' | awk -F= -v s="$SP" '{printf "%s%s=%g", (NR>1?",":""), $1, $2/s}')
mkdir -p "$OUT"; cd "$OUT" || exit 1
echo "slo simulated $SLO_SIM, wall $SLO_WALL, speedup $SP" >> load.txt
for ts in $RATES; do
  for fleet in ${FLEETS:-8 3+5 5+3}; do
    extra=()
    if [[ $fleet == *:* ]]; then
      extra=(--max-inflight-prefills ${fleet#*:}); cap=c${fleet#*:}; fleet=${fleet%:*}
    else
      cap=
    fi
    if [[ $fleet == *+* ]]; then
      P=${fleet%+*}; D=${fleet#*+}; name=${P}p${D}d$cap
    else
      P=0; D=$fleet; name=agg$D
    fi
    tag=${name}_ts$ts
    $T run --model $M --workers $D --prefill-workers $P --engine mock --speedup $SP \
      --router-mode kv --mock-kv-blocks ${KV_BLOCKS:-65536} --port $PORT "${extra[@]}" "$@" \
      > server_$tag.log 2>&1 &
    pid=$!
    for i in $(seq 100); do curl -sf localhost:$PORT/health >/dev/null && break; sleep 0.2; done
    $T bench --url http://127.0.0.1:$PORT --endpoint completions \
      --dataset $SHARED/datasets/mooncake_conversation_trace.jsonl --request-rate trace \
      --trace-speedup $ts -n $N -c 0 --calibrate --no-progress --slo "$SLO_WALL" \
      --output-json ab_$tag.json --output-csv ab_$tag.csv --plot ab_$tag.svg \
      > bench_$tag.txt 2>&1
    curl -s localhost:$PORT/metrics > metrics_$tag.txt
    kill $pid; wait $pid
    echo "$tag $(uptime)" >> load.txt
  done
done
