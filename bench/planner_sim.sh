#!/bin/bash
# The planner simulation of docs/PERFORMANCE.md (issue 23): a day of the Mooncake conversation
# trace (bench/planner_day_trace.py) replayed against `turbine frontend` + mock workers
# (`turbine worker --engine mock --speedup S`), three times:
#   planner  `turbine planner --mode sla --connector local` starts and stops the workers;
#   peak     a fixed fleet sized for the peak rate (`turbine planner size`, the SLA mode's model);
#   mean     a fixed fleet sized for the day's mean rate.
# Fixed fleets are run by the same local connector with min = max (so worker-seconds are counted
# the same way). etcd and nats-server are shared; frontend and workers are fresh per run.
# Then bench/planner_sim_report.py writes the table and the SVGs.
#
# Usage: bench/planner_sim.sh OUTDIR
# Env: TURBINE (build/turbine), SHARED (../shared), SPEEDUP (3), DAY (900 simulated s),
#      BASE_RATE (1.3 req/s simulated), TTFT_MS (2000), ITL_MS (50): the SLA per request, simulated;
#      PLAN_TTFT_MS (1000), PLAN_ITL_MS (25): the mean latencies the planner (and the sizing of the
#      fixed fleets) aims at; INTERVAL (15), WINDOW (4, scale-down window in intervals),
#      KV_BLOCKS (65536), MAX_WORKERS (12), RUNS ("planner peak mean"), PREDICTOR (kalman)
set -u
OUT=$1
HERE=$(cd "$(dirname "$0")/.." && pwd)
T=${TURBINE:-$HERE/build/turbine}
SHARED=${SHARED:-$HERE/../shared}
M=$SHARED/models/stories260K/stories260K.gguf
S=${SPEEDUP:-3}
DAY=${DAY:-900}
BASE=${BASE_RATE:-1.3}
TTFT=${TTFT_MS:-2000}
ITL=${ITL_MS:-50}
PTTFT=${PLAN_TTFT_MS:-1000}
PITL=${PLAN_ITL_MS:-25}
WINDOW=${WINDOW:-4}
INTERVAL=${INTERVAL:-15}
KV=${KV_BLOCKS:-65536}
MAXW=${MAX_WORKERS:-12}
RUNS=${RUNS:-planner peak mean}
PREDICTOR=${PREDICTOR:-kalman}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
cd "$OUT" || exit 1
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
EP=$(free_port); PP=$(free_port); NP=$(free_port)
rm -rf etcd-data nats-data
etcd --data-dir etcd-data --listen-client-urls http://127.0.0.1:$EP --advertise-client-urls http://127.0.0.1:$EP \
  --listen-peer-urls http://127.0.0.1:$PP --initial-advertise-peer-urls http://127.0.0.1:$PP \
  --initial-cluster default=http://127.0.0.1:$PP > etcd.log 2>&1 &
ETCD=$!
nats-server -a 127.0.0.1 -p $NP -sd nats-data > nats.log 2>&1 &
NATS=$!
PIDS=()
cleanup() { kill "${PIDS[@]}" 2>/dev/null; wait "${PIDS[@]}" 2>/dev/null; kill $ETCD $NATS 2>/dev/null; wait; }
trap cleanup EXIT
for i in $(seq 100); do curl -sf http://127.0.0.1:$EP/version >/dev/null && break; sleep 0.1; done
RT="--discovery etcd --etcd-endpoints http://127.0.0.1:$EP --nats-url nats://127.0.0.1:$NP"
worker_cmd() {  # $1: namespace
  echo "$T worker --model $M --served-model-name stories260K --advertise-host 127.0.0.1" \
    "--request-plane-host 127.0.0.1 --engine mock --speedup $S --mock-kv-blocks $KV" \
    "--shutdown-grace 3600 --namespace $1 $RT"
}
start_frontend() {  # $1: namespace, $2: log; sets FE_PORT and FE
  FE_PORT=$(free_port)
  $T frontend --host 127.0.0.1 --port $FE_PORT --router-mode kv --namespace $1 $RT > $2 2>&1 &
  FE=$!
  PIDS+=($FE)
  for i in $(seq 100); do curl -sf http://127.0.0.1:$FE_PORT/live >/dev/null && break; sleep 0.1; done
}
wait_workers() {  # $1: count
  for i in $(seq 600); do
    n=$(curl -s http://127.0.0.1:$FE_PORT/health | grep -o '"instance_id"' | wc -l)
    [ "$n" -ge "$1" ] && return 0
    sleep 0.1
  done
  echo "workers did not come up" >&2
  return 1
}

# 1. The profile of one mock worker (kept between invocations).
if [ ! -f profile.json ]; then
  start_frontend prof-$$ profile_frontend.log
  $(worker_cmd prof-$$) > profile_worker.log 2>&1 &
  W=$!
  wait_workers 1
  /usr/bin/time -f "profile wall %e s" $T planner profile --url http://127.0.0.1:$FE_PORT --time-scale $S \
    --isl 1024,4096,8192,16384,32768,65536 --contexts 1024,4096,16384 --concurrency 1,4,16,32,64 \
    --output profile.json > profile_stdout.log 2> profile.log || { tail profile.log; exit 1; }
  kill $W $FE; wait $W $FE 2>/dev/null
fi

# 2. The day.
python3 "$HERE/bench/planner_day_trace.py" "$SHARED/datasets/mooncake_conversation_trace.jsonl" day.jsonl \
  $DAY $BASE > day.json || exit 1
read -r ISL OSL MEAN PEAK < <(python3 -c "import json; d=json.load(open('day.json')); print(d['mean_input'], d['mean_output'], d['mean_rate'], d['peak_rate'])")
size() { $T planner size --profile profile.json --rate $1 --dataset day.jsonl --ttft $PTTFT --itl $PITL \
  | python3 -c "import json,sys; print(json.load(sys.stdin)['decode'])"; }
N_PEAK=$(size $PEAK)
N_MEAN=$(size $MEAN)
echo "{\"peak_workers\": $N_PEAK, \"mean_workers\": $N_MEAN, \"speedup\": $S, \"interval_s\": $INTERVAL," \
  "\"ttft_ms\": $TTFT, \"itl_ms\": $ITL, \"plan_ttft_ms\": $PTTFT, \"plan_itl_ms\": $PITL," \
  "\"scale_down_window\": $WINDOW, \"predictor\": \"$PREDICTOR\"}" > fleets.json
cat day.json fleets.json

# 3. The runs.
SLO="ttft=$(python3 -c "print($TTFT/$S)"),itl=$(python3 -c "print($ITL/$S)")"
for run in $RUNS; do
  NS=sim-$run-$$
  rm -rf $run; mkdir -p $run
  start_frontend $NS $run/frontend.log
  case $run in
    planner) FLEET=(--mode sla --min-decode 1 --max-decode $MAXW --initial-decode $N_MEAN
                    --profile profile.json --ttft $PTTFT --itl $PITL --predictor $PREDICTOR
                    --scale-down-window $WINDOW); N0=$N_MEAN ;;
    peak) FLEET=(--mode load --min-decode $N_PEAK --max-decode $N_PEAK); N0=$N_PEAK ;;
    mean) FLEET=(--mode load --min-decode $N_MEAN --max-decode $N_MEAN); N0=$N_MEAN ;;
  esac
  $T planner --connector local --time-scale $S --interval $INTERVAL --model stories260K \
    "${FLEET[@]}" --frontend-metrics http://127.0.0.1:$FE_PORT/metrics \
    --decode-command "$(worker_cmd $NS)" --log-dir $run --decision-log $run/decisions.jsonl \
    --status-port 0 > $run/planner.log 2>&1 &
  PL=$!
  PIDS+=($PL)
  wait_workers $N0 || exit 1
  python3 -c "import time; print(time.time())" > $run/bench_start
  $T bench --url http://127.0.0.1:$FE_PORT --endpoint completions --dataset day.jsonl \
    --request-rate trace --trace-speedup $S -c 0 --calibrate --slo $SLO --no-progress \
    --output-json $run/bench.json --output-csv $run/bench.csv > $run/bench.txt 2>&1
  python3 -c "import time; print(time.time())" > $run/bench_end
  kill $PL; wait $PL  # the planner stops its workers; they drain
  curl -s http://127.0.0.1:$FE_PORT/metrics > $run/frontend_metrics.txt
  kill $FE; wait $FE
  grep -E "completed|errors|goodput" $run/bench.txt | head -5
done
python3 "$HERE/bench/planner_sim_report.py" "$OUT"
