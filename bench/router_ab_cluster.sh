#!/bin/bash
# Cross-process router A/B: real etcd + nats-server, one `turbine frontend`, 4 `turbine worker
# --engine mock`, replaying the first N requests of the Mooncake conversation trace; the
# frontend and the workers are restarted per mode (fresh caches), etcd and NATS are shared.
# Usage: bench/router_ab_cluster.sh OUTDIR N TRACE_SPEEDUP [modes...]   (env: TURBINE, SHARED,
# SPEEDUP=4, KV_BLOCKS=65536, PORT=18600)
set -u
OUT=$1; N=$2; TS=$3; shift 3
MODES=${*:-kv round-robin random}
HERE=$(cd "$(dirname "$0")/.." && pwd)
T=${TURBINE:-$HERE/build/turbine}
SHARED=${SHARED:-$HERE/../shared}
M=$SHARED/models/stories260K/stories260K.gguf
PORT=${PORT:-18600}
mkdir -p "$OUT"; cd "$OUT" || exit 1
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
EP=$(free_port); PP=$(free_port); NP=$(free_port)
rm -rf etcd-data nats-data
etcd --data-dir etcd-data --listen-client-urls http://127.0.0.1:$EP --advertise-client-urls http://127.0.0.1:$EP \
  --listen-peer-urls http://127.0.0.1:$PP --initial-advertise-peer-urls http://127.0.0.1:$PP \
  --initial-cluster default=http://127.0.0.1:$PP > etcd.log 2>&1 &
ETCD=$!
nats-server -a 127.0.0.1 -p $NP -js -sd nats-data > nats.log 2>&1 &
NATS=$!
trap 'kill $ETCD $NATS 2>/dev/null; wait' EXIT
for i in $(seq 100); do curl -sf http://127.0.0.1:$EP/version >/dev/null && break; sleep 0.1; done
RT=(--discovery etcd --etcd-endpoints http://127.0.0.1:$EP --nats-url nats://127.0.0.1:$NP)
for mode in $MODES; do
  NS=ab-$mode-$$
  pids=()
  for w in 1 2 3 4; do
    $T worker --model $M --served-model-name stories260K --advertise-host 127.0.0.1 \
      --request-plane-host 127.0.0.1 --engine mock --speedup ${SPEEDUP:-4} \
      --mock-kv-blocks ${KV_BLOCKS:-65536} --namespace $NS "${RT[@]}" > worker${w}_$mode.log 2>&1 &
    pids+=($!)
  done
  $T frontend --host 127.0.0.1 --port $PORT --router-mode $mode --namespace $NS "${RT[@]}" \
    > frontend_$mode.log 2>&1 &
  fe=$!
  for i in $(seq 200); do
    [ "$(grep -c 'joined' frontend_$mode.log)" -ge 4 ] && break; sleep 0.1
  done
  $T bench --url http://127.0.0.1:$PORT --endpoint completions \
    --dataset $SHARED/datasets/mooncake_conversation_trace.jsonl --request-rate trace \
    --trace-speedup $TS -n $N -c 0 --calibrate --no-progress \
    --output-json ab_$mode.json --plot ab_$mode.svg > bench_$mode.txt 2>&1
  curl -s localhost:$PORT/metrics > metrics_$mode.txt
  kill $fe; wait $fe
  kill "${pids[@]}"; wait "${pids[@]}"
done
echo done
