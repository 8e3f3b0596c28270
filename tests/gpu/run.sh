#!/usr/bin/env bash
# The GPU machine's checks for the CUDA backend (issue 7): op and backend tests (cuda_test, incl.
# stories260K greedy vs the llama2.c golden), end-to-end parity against transformers
# (tests/gpu/parity.py) and first throughput numbers on random Llama-3.1-8B-shaped BF16 weights.
#
# Usage (repository root): tests/gpu/run.sh [test] [parity] [bench]   (default: all three)
#   BIN      folder with cuda_test and turbine_generate (default build-cuda; a carried
#            .carry/dev/bin is used when present, with its .carry/dev/lib next to it)
#   OUT      where logs go (default /tmp/turbine-gpu)
#   TURBINE_SHARED  assets (default .carry/shared when present, else ../shared)
set -u
cd "$(dirname "$0")/../.."
if [ -z "${BIN:-}" ]; then
  if [ -x .carry/dev/bin/turbine_generate ]; then BIN=.carry/dev/bin; else BIN=build-cuda; fi
fi
OUT=${OUT:-/tmp/turbine-gpu}
mkdir -p "$OUT"
if [ -d .carry/dev/lib ]; then
  export LD_LIBRARY_PATH="$PWD/.carry/dev/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
fi
if [ -z "${TURBINE_SHARED:-}" ] && [ -d .carry/shared ]; then export TURBINE_SHARED="$PWD/.carry/shared"; fi
stages="${*:-test parity bench}"
status=0
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/machine.txt"
date -u +%FT%TZ | tee -a "$OUT/machine.txt"
for stage in $stages; do
  case "$stage" in
    test)
      echo "== cuda_test"
      timeout 300 "$BIN/cuda_test" >"$OUT/cuda_test.log" 2>&1 || status=1
      grep -E '^\[  (PASSED|FAILED|SKIPPED) |^\[  FAILED|tests ran|Failure|error' "$OUT/cuda_test.log" | head -40
      ;;
    parity)
      echo "== parity vs transformers"
      PYTHONUNBUFFERED=1 timeout 400 python3 tests/gpu/parity.py --bin "$BIN/turbine_generate" \
        --out "$OUT" 2>&1 | tee "$OUT/parity.log" | grep -v Warning
      [ "${PIPESTATUS[0]}" = 0 ] || status=1
      ;;
    bench)
      echo "== copy bandwidth"
      python3 - <<'PY' 2>&1 | tee "$OUT/bench.log"
import torch
x = torch.empty(1 << 30, dtype=torch.uint8, device="cuda")
y = torch.empty_like(x)
for _ in range(3):
    y.copy_(x)
s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
s.record()
for _ in range(20):
    y.copy_(x)
e.record()
torch.cuda.synchronize()
ms = s.elapsed_time(e) / 20
print(f"D2D copy 1 GiB: {ms:.3f} ms = {2 * (1 << 30) / ms / 1e6:.0f} GB/s (read + write)")
PY
      M=${MODEL_8B:-/tmp/llama-3.1-8b-random}
      if [ ! -f "$M/config.json" ]; then
        timeout 300 "$BIN/turbine_generate" --gen-model "$M" --arch llama --shape llama-3.1-8b \
          --dtype bf16 --seed 1 2>&1 | tee -a "$OUT/bench.log"
      fi
      echo "== llama-3.1-8b bf16: batch-1 decode, 4x2048 prefill, 64 x (512 in, 128 out)"
      timeout 400 "$BIN/turbine_generate" --model "$M" --device cuda --dtype bf16 \
        --max-context 4096 --max-num-seqs 64 --max-num-batched-tokens 8192 \
        --bench "${BENCH_SPECS:-1x128x128,4x2048x1,64x512x128}" 2>&1 | tee -a "$OUT/bench.log" || status=1
      echo "== batch-1 decode: without the skinny GEMM; without it and without CUDA graphs"
      for flags in --no-gemv "--no-gemv --no-graphs"; do
        timeout 300 "$BIN/turbine_generate" --model "$M" --device cuda --dtype bf16 $flags \
          --max-context 4096 --max-num-seqs 64 --max-num-batched-tokens 8192 \
          --bench 1x128x128 2>&1 | tee -a "$OUT/bench.log" || status=1
      done
      for n in 64 1; do
        for f in "" --no-device-sampling; do
          echo "== engine::Engine, $n requests x (512 random prompt tokens, 128 greedy tokens) $f"
          timeout 300 "$BIN/turbine_generate" --model "$M" --device cuda --dtype bf16 $f \
            --max-context 4096 --max-num-seqs 64 --max-num-batched-tokens 8192 \
            --random-prompts ${n}x512 --max-tokens 128 2>&1 >"$OUT/engine$n$f.txt" |
            tee -a "$OUT/bench.log" || status=1
        done
        echo "greedy sequences equal with and without device sampling:" \
          "$(comm -12 <(sort "$OUT/engine$n.txt") <(sort "$OUT/engine$n--no-device-sampling.txt") | wc -l) of $n"
      done
      ;;
    *) echo "unknown stage $stage"; status=2 ;;
  esac
done
exit $status
