#!/usr/bin/env bash
# The GPU machine's checks for the CUDA backend (issue 7): op and backend tests (cuda_test, incl.
# stories260K greedy vs the llama2.c golden), end-to-end parity against transformers
# (tests/gpu/parity.py) and first throughput numbers on random Llama-3.1-8B-shaped BF16 weights.
#
# Usage (repository root): tests/gpu/run.sh [test] [parity] [bench] [kvcopy] [gemv] [disagg] [serve] [tp] [goodput]
#   [encoder] [encprof] [structured] [kvtiers] [decprof]
#   (default: test parity bench). kvcopy: KV block copy bandwidth (bench/kv_copy_bench.cpp);
#   gemv: decode-size projections, gemv variants vs cuBLASLt (bench/gemv_bench.cpp, GEMV_ARGS),
#         BF16 and FP8 weights (A8 gemv, cuBLASLt FP8, the W8A16 rows x split grid);
#   disagg: disaggregated serving across two worker processes on this GPU (tests/gpu/disagg.py);
#   serve: `turbine run --device cuda` + `turbine bench`, 1,000 x (512 in, 256 out), concurrency 256.
#   goodput: goodput at SLO before/after --target-itl-ms (issue 29): the same server without and
#            with the latency target, each swept over concurrency 64..256 (tests/gpu/goodput_report.py
#            makes the table and $OUT/goodput.svg). GOODPUT_ITL_MS (40); GOODPUT_DURATION (20 s
#            of arrivals per point, then the point drains) or GOODPUT_N (requests per point);
#            GOODPUT_RAMP (5 s: the closed loop's clients start over that long, --ramp-up-s);
#            GOODPUT_WARMUP (0: requests of a point's first S s left out, --warmup-s);
#            GOODPUT_MNBT (8192, --max-num-batched-tokens); GOODPUT_VARIANTS ("baseline target
#            target@16384": baseline / target = without / with the latency targets, @N = that
#            --max-num-batched-tokens instead of GOODPUT_MNBT);
#            ~6 min for two variants with the 8B model's generation (~50 s), ~9 for three.
#            GOODPUT_ENGINE=mock rehearses it on a CPU (`--engine mock`, the 1B shape with the llama3 tokenizer, BIN=build; GOODPUT_SPEEDUP S:
#            simulated seconds per wall second, the SLO and the duration scale with it).
#   encoder: the encoder cases of cuda_test and tests/gpu/encoder_vs_st.py (issue 27; needs
#            encoder_throughput_bench in BIN).
#   encprof: BERT-base encoder throughput, profiled and A/B'd in one call (issue 27): the encoder
#            cases of cuda_test (parity of every switch), the op table (bench --profile-ops) of
#            bert-base mixed at the default and at ENCPROF_BEST, then sentence-transformers vs every
#            configuration of ENCPROF_CONFIGS on bert-base mixed / fixed 128 / fixed 512 (table in
#            $OUT/encoder_configs.md; op tables in $OUT/encoder_profile_*.txt). ~3-4 min on an H100.
#            Switches (bench/encoder_throughput_bench.cpp): --scalar-kernels, --separate-qkv-bias
#            (the Q/K/V bias pass the attention kernel now does), --bias-epilogue,
#            --prune-last-layer, --tune-gemms, --max-batch-tokens.
#   fp8: FP8 weights and KV cache (issue 28): the FP8 cases of cuda_test, then a random
#   Llama-3.1-8B-shaped compressed-tensors FP8-dynamic checkpoint (gen-model --quantization fp8,
#   same seed as the BF16 one) against the BF16 baseline in the same call: batch-1 and 64-sequence
#   decode, 4 x 2,048 prefill, KV blocks, for BF16 / FP8 on the GPU / FP8 dequantized / FP8 KV
#   (table in $OUT/fp8_table.md), the logits parity against PyTorch (tests/tools/fp8_parity.py).
#   FP8_DEVICE=cpu FP8_SHAPE=tiny rehearses the stage on a machine without a GPU (BIN=build);
#   FP8_SKIP_TEST=1 skips the cuda_test cases, FP8_RUNS="bf16 fp8 ..." picks the bench runs
#   (fp8-w8a16, fp8-w8a16+outer-vec: the weight-only decode gemv, --fp8-gemv w8a16).
#   decprof: where the FP8 / BF16 decoder step's time goes (issue 28), ~4-5 min with the 8B models
#   present (the fp8 stage's; generated when absent, ~100 s more): the cuda_test cases of the
#   profile and of FP8 (DECPROF_TEST_FILTER; DECPROF_TEST_FILTER=- skips them);
#   `turbine_generate --profile-ops --bench-device-sampling` on BF16 and on the FP8 checkpoint (op
#   tables per phase, tokens drawn on the device as the engine does: prefill
#   4 x 2,048 and 64 x 512, decode 1 and 64 rows; $OUT/decprof_profile_*.log, lines "profile ..."),
#   then the A/B without the profile: host argmax vs --bench-device-sampling (the engine's path)
#   and FP8 + --fp8-outer-vec (cuBLASLt applies the scales: no epilogue kernel) [+ --fp8-fast-accum],
#   FP8 + --tune-gemm (cuBLASLt's E4M3 candidates timed per decode bucket), FP8 + --fp8-lm-head
#   (an E4M3 copy of the LM head for decode steps of <= 2 rows), all three together
#   (tables $OUT/decprof_table_{host,device}.md), and the engine's own batch-1 decode (host gap
#   between steps included). DECPROF_RUNS picks A/B labels, DECPROF_BENCH_SPECS the shapes.
#   tp: tensor parallelism (issue 22): the 8B bench through the TP path and NCCL at TP 1 beside the
#   plain backend in the same call, greedy ids equal, TP 2.. when the machine has the GPUs (TP_SIZES),
#   and the clear start-up errors (too few GPUs, no NCCL).
#   structured: constrained (JSON Schema) vs unconstrained decode, 64 sequences, one engine
#   (turbine_generate --structured-ab, issue 19).
#   kvtiers: KV cache tiers (issue 24): `turbine run --device cuda` on the 8B model with a small KV
#   budget (KVTIERS_KV_BYTES, 4 GiB) + `turbine bench` replaying the Mooncake conversation trace,
#   scaled (KVTIERS_BLOCK_TOKENS tokens per hash block, 32: every length x 32/512, the sharing and
#   arrival times kept; the first KVTIERS_N requests, 2,000 = 670 s of trace with ~25% of blocks
#   seen before), once per KVTIERS_SPEEDUPS value ("16"), three servers each: no tiers, host tier
#   (KVTIERS_HOST_BYTES, 32 GiB), host + disk (8 GiB host, KVTIERS_DISK_BYTES 64 GiB under
#   KVTIERS_DISK, /tmp/turbine-kv); then bench/kv_tier_bench (host->device and disk->host onboarding
#   bandwidth vs pinned H2D and raw O_DIRECT reads). Needs turbine and kv_tier_bench in BIN.
#   KVTIERS_VARIANTS picks the servers (default "none host host+disk"; also host-all: the host
#   tier with --kv-offload-all-completed). KVTIERS_TIER_FLAGS: more flags for every tiered server
#   (e.g. "--kv-offload-inflight-bytes 1073741824").
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
# NCCL for tensor parallelism (cuda_test's TP tests, the tp stage): the system's libnccl.so.2,
# else the one PyTorch's wheels ship (nvidia-nccl-cu*).
if [ -z "${TURBINE_NCCL_LIBRARY:-}" ] && ! ldconfig -p 2>/dev/null | grep -q 'libnccl.so.2 '; then
  lib=$(python3 -c 'import nvidia.nccl, os; print(os.path.join(list(nvidia.nccl.__path__)[0], "lib/libnccl.so.2"))' 2>/dev/null)
  [ -n "$lib" ] && [ -f "$lib" ] && export TURBINE_NCCL_LIBRARY="$lib"
fi
echo "NCCL: ${TURBINE_NCCL_LIBRARY:-libnccl.so.2 from the loader path}"
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
    kvcopy)
      echo "== KV block copy bandwidth: pool copy, CUDA IPC, host-staged vs cudaMemcpy (8B layout)"
      timeout 180 "$BIN/kv_copy_bench" ${KVCOPY_ARGS:-} 2>&1 | tee "$OUT/kv_copy.log"
      [ "${PIPESTATUS[0]}" = 0 ] || status=1
      ;;
    gemv)
      echo "== skinny projections: gemv warps per row vs cuBLASLt on the 8B shapes (bench/gemv_bench.cpp)"
      timeout 240 "$BIN/gemv_bench" ${GEMV_ARGS:---rows 1,2,4,8} 2>&1 | tee "$OUT/gemv_bench.log"
      [ "${PIPESTATUS[0]}" = 0 ] || status=1
      ;;
    disagg)
      # Two worker processes on this GPU + frontend, etcd, nats-server (tests/gpu/disagg.py).
      # etcd/nats-server: on PATH, or the Debian packages carried in .carry/debs (extracted here).
      TOOLS=/tmp/turbine-tools
      if ! command -v etcd >/dev/null && ls .carry/debs/*.deb >/dev/null 2>&1; then
        mkdir -p $TOOLS && for d in .carry/debs/*.deb; do dpkg -x "$d" $TOOLS; done
      fi
      export PATH="$PATH:$TOOLS/usr/bin:$TOOLS/usr/sbin"
      M=${MODEL_1B:-/tmp/llama-3.2-1b-random}
      if [ ! -f "$M/config.json" ]; then
        TOK=/tmp/llama3-tokenizer.json
        gunzip -c "$TURBINE_SHARED/tokenizers/llama3/tokenizer.json.gz" > $TOK
        timeout 300 "$BIN/turbine_generate" --gen-model "$M" --arch llama --shape llama-3.2-1b \
          --dtype bf16 --seed 3 --tokenizer $TOK 2>&1 | tail -1
      fi
      echo "== disaggregated serving, two processes on one GPU (CUDA IPC)"
      timeout 500 python3 tests/gpu/disagg.py --turbine "$BIN/turbine" --etcd "$(command -v etcd)" \
        --nats "$(command -v nats-server)" --model "$M" --out "$OUT/disagg" 2>&1 | tee "$OUT/disagg.log"
      [ "${PIPESTATUS[0]}" = 0 ] || status=1
      ;;
    structured)
      # Issue 19: decode throughput with every sequence constrained by a JSON Schema vs none, 64
      # sequences of 512 random prompt tokens and 256 sampled tokens, in one process on one engine
      # (unconstrained, constrained, unconstrained again). Needs the tokenizer next to the weights.
      M=${MODEL_8B:-/tmp/llama-3.1-8b-random}
      if [ ! -f "$M/tokenizer.json" ]; then
        gunzip -c "$TURBINE_SHARED/tokenizers/llama3/tokenizer.json.gz" > /tmp/tok.json
        if [ -f "$M/config.json" ]; then cp /tmp/tok.json "$M/tokenizer.json"; else
          timeout 300 "$BIN/turbine_generate" --gen-model "$M" --arch llama --shape llama-3.1-8b \
            --dtype bf16 --seed 1 --tokenizer /tmp/tok.json 2>&1 | tail -1; fi
      fi
      echo "== structured outputs: constrained vs unconstrained decode, 64 x (512 in, 256 out)"
      timeout 500 "$BIN/turbine_generate" --model "$M" --device cuda --dtype bf16 \
        --max-context 4096 --max-num-seqs 64 --max-num-batched-tokens 8192 \
        --random-prompts 64x512 --max-tokens 256 --structured-ab 2>&1 | tee "$OUT/structured.log"
      [ "${PIPESTATUS[0]}" = 0 ] || status=1
      ;;
    serve)
      # Serving throughput (issue 7): `turbine run --device cuda` on the 8B model (with the llama3
      # tokenizer so that text round-trips) and `turbine bench`, 1,000 requests of 512 in / 256
      # out at concurrency 256.
      M=${MODEL_8B:-/tmp/llama-3.1-8b-random}
      if [ ! -f "$M/tokenizer.json" ]; then
        gunzip -c "$TURBINE_SHARED/tokenizers/llama3/tokenizer.json.gz" > "$M/tokenizer.json" 2>/dev/null ||
          { mkdir -p "$M"; gunzip -c "$TURBINE_SHARED/tokenizers/llama3/tokenizer.json.gz" > /tmp/tok.json;
            timeout 300 "$BIN/turbine_generate" --gen-model "$M" --arch llama --shape llama-3.1-8b \
              --dtype bf16 --seed 1 --tokenizer /tmp/tok.json 2>&1 | tail -1; }
      fi
      PORT=18631
      echo "== turbine run --device cuda + turbine bench (1000 x 512/256, concurrency 256)"
      "$BIN/turbine" run --model "$M" --served-model-name llama8b --device cuda --dtype bf16 \
        --max-model-len 4096 --max-num-seqs ${SERVE_SEQS:-256} --max-num-batched-tokens 8192 \
        --port $PORT ${SERVE_ARGS:-} > "$OUT/serve_server.log" 2>&1 &
      spid=$!
      # (system curl, not against the carried libraries)
      for i in $(seq 600); do env -u LD_LIBRARY_PATH curl -sf localhost:$PORT/health >/dev/null && break; sleep 0.5; done
      timeout 400 "$BIN/turbine" bench --url http://127.0.0.1:$PORT --endpoint completions \
        -n ${SERVE_N:-1000} -c 256 --input-len 512 --output-len 256 --no-progress \
        --output-json "$OUT/bench_turbine.json" 2>&1 | tee "$OUT/serve_bench.log" || status=1
      kill $spid; wait $spid
      ;;
    goodput)
      # Issue 29. One server per variant (the same flags; "target" adds the latency targets), each
      # swept by `turbine bench` at 64..256 concurrent requests of 512 in / 256 out with the SLO
      # TTFT <= 1 s, mean ITL <= 50 ms per request. Each point issues requests for
      # GOODPUT_DURATION seconds and then drains (~30 s a point, ~2.2 minutes per variant on the
      # H100). Points reuse prompts: prefix caching is off so that no point reuses another's KV.
      ENGINE=${GOODPUT_ENGINE:-cuda}
      SP=${GOODPUT_SPEEDUP:-1}
      if [ "$ENGINE" = mock ]; then
        # The mock computes nothing, but the model's vocabulary must be the tokenizer's: the 1B
        # shape has the llama3 vocabulary (2.5 GB of random weights, written once).
        M=${MODEL_1B:-/tmp/llama-3.2-1b-random}
        if [ ! -f "$M/tokenizer.json" ]; then
          gunzip -c "$TURBINE_SHARED/tokenizers/llama3/tokenizer.json.gz" > /tmp/goodput-tok.json
          "$BIN/turbine" gen-model --out "$M" --arch llama --shape llama-3.2-1b --dtype bf16 \
            --seed 3 --tokenizer /tmp/goodput-tok.json 2>&1 | tail -1
        fi
        ENGINE_ARGS="--engine mock --speedup $SP"
      else
        M=${MODEL_8B:-/tmp/llama-3.1-8b-random}
        if [ ! -f "$M/tokenizer.json" ]; then
          gunzip -c "$TURBINE_SHARED/tokenizers/llama3/tokenizer.json.gz" > "$M/tokenizer.json" 2>/dev/null ||
            { mkdir -p "$M"; gunzip -c "$TURBINE_SHARED/tokenizers/llama3/tokenizer.json.gz" > /tmp/tok.json;
              timeout 300 "$BIN/turbine_generate" --gen-model "$M" --arch llama --shape llama-3.1-8b \
                --dtype bf16 --seed 1 --tokenizer /tmp/tok.json 2>&1 | tail -1; }
        fi
        ENGINE_ARGS="--device cuda --dtype bf16"
      fi
      # The SLO in wall milliseconds (a mock at --speedup S runs S simulated ms per wall ms).
      SLO=$(python3 -c "print(f'ttft={1000/$SP:g},itl={50/$SP:g}')")
      if [ -n "${GOODPUT_N:-}" ]; then SIZE="-n $GOODPUT_N"
      else SIZE="--duration $(python3 -c "print(f'{${GOODPUT_DURATION:-20}/$SP:g}')")"; fi
      PORT=18632
      # Wall seconds, as the duration (the SLO and the ramp are simulated time on a mock).
      RAMP=$(python3 -c "print(f'{${GOODPUT_RAMP:-5}/$SP:g}')")
      WARM=$(python3 -c "print(f'{${GOODPUT_WARMUP:-0}/$SP:g}')")
      REPORTS=()
      for spec in ${GOODPUT_VARIANTS:-baseline target target@16384}; do
        kind=${spec%@*}
        mnbt=${GOODPUT_MNBT:-8192}
        [ "$kind" != "$spec" ] && mnbt=${spec#*@}
        variant=$kind; [ "$mnbt" != 8192 ] && variant="${kind}_$mnbt"
        TARGETS=""
        [ $kind = target ] && TARGETS="--target-itl-ms ${GOODPUT_ITL_MS:-40} --target-ttft-ms 1000"
        echo "== goodput $variant: turbine run $ENGINE_ARGS $TARGETS --max-num-batched-tokens $mnbt;" \
          "bench $SIZE --ramp-up-s $RAMP --warmup-s $WARM --slo $SLO ($(date -u +%T))"
        "$BIN/turbine" run --model "$M" --served-model-name llama8b $ENGINE_ARGS \
          --max-model-len 4096 --max-num-seqs 256 --max-num-batched-tokens $mnbt $TARGETS \
          --no-enable-prefix-caching --port $PORT > "$OUT/goodput_${variant}_server.log" 2>&1 &
        spid=$!
        for i in $(seq 600); do
          env -u LD_LIBRARY_PATH curl -sf localhost:$PORT/health >/dev/null && break
          kill -0 $spid 2>/dev/null || break  # the server exited: no need to wait 5 minutes
          sleep 0.5
        done
        if ! kill -0 $spid 2>/dev/null; then
          echo "goodput $variant: the server exited"; tail -5 "$OUT/goodput_${variant}_server.log"
          status=1; continue
        fi
        timeout ${GOODPUT_TIMEOUT:-300} "$BIN/turbine" bench --url http://127.0.0.1:$PORT \
          --endpoint completions --sweep-concurrency ${GOODPUT_LEVELS:-64,128,192,256} \
          $SIZE --ramp-up-s $RAMP --warmup-s $WARM --input-len 512 --output-len 256 --slo "$SLO" \
          --no-progress --output-json "$OUT/goodput_$variant.json" \
          --output-csv "$OUT/goodput_$variant.csv" > "$OUT/goodput_${variant}_bench.log" 2>&1 || status=1
        grep -E '^==|throughput|goodput|warmup|TTFT|ITL|error' "$OUT/goodput_${variant}_bench.log"
        env -u LD_LIBRARY_PATH curl -s localhost:$PORT/metrics > "$OUT/goodput_${variant}_metrics.txt"
        grep -E '^turbine_engine_(steps_total|prefill_tokens_total|queue_|step_model_)' \
          "$OUT/goodput_${variant}_metrics.txt"
        kill $spid; wait $spid
        label=$kind; [ $kind = target ] && label="target ${GOODPUT_ITL_MS:-40} ms"
        [ "$mnbt" != 8192 ] && label="$label, $mnbt tok"
        REPORTS+=("$label=$OUT/goodput_$variant.json")
      done
      python3 tests/gpu/goodput_report.py --speedup "$SP" --svg "$OUT/goodput.svg" \
        --title "goodput vs concurrency ($ENGINE, 512 in / 256 out, SLO TTFT 1 s, ITL 50 ms, ramp ${GOODPUT_RAMP:-5} s)" \
        "${REPORTS[@]}" | tee "$OUT/goodput.txt" || status=1
      ;;
    encoder)
      # Encoder models (issue 27): the CUDA encoder path's parity cases of cuda_test, then
      # embeddings/s against sentence-transformers (BF16, same random weights) for BERT-base and
      # ModernBERT-base shapes: 256 inputs of uniform 16-512 tokens, fixed 128, fixed 512.
      echo "== cuda_test: encoder cases"
      timeout 300 "$BIN/cuda_test" --gtest_filter='CudaEncoder*' >"$OUT/encoder_cuda_test.log" 2>&1 || status=1
      grep -E '^\[  (PASSED|FAILED|SKIPPED) |^\[  FAILED|tests ran|Failure' "$OUT/encoder_cuda_test.log" | head -40
      echo "== encoder embeddings/s vs sentence-transformers"
      PYTHONUNBUFFERED=1 timeout 500 python3 tests/gpu/encoder_vs_st.py \
        --bench "$BIN/encoder_throughput_bench" --out "$OUT" 2>&1 | tee "$OUT/encoder_vs_st.log" | grep -v Warning
      [ "${PIPESTATUS[0]}" = 0 ] || status=1
      ;;
    encprof)
      echo "== cuda_test: encoder cases (every switch against the CPU backend) + bias epilogue GEMM"
      timeout 300 "$BIN/cuda_test" --gtest_filter='CudaEncoder*:CudaGemmTest.BiasEpilogue*' \
        >"$OUT/encprof_cuda_test.log" 2>&1 || status=1
      grep -E '^\[  (PASSED|FAILED|SKIPPED) |^\[  FAILED|tests ran|Failure' "$OUT/encprof_cuda_test.log" | head -40
      best=${ENCPROF_BEST:---prune-last-layer --max-batch-tokens 131072}
      configs=${ENCPROF_CONFIGS:-default;--separate-qkv-bias;--bias-epilogue;--prune-last-layer;--max-batch-tokens 131072;$best}
      echo "== encoder profile + sentence-transformers vs: $configs"
      PYTHONUNBUFFERED=1 timeout 420 python3 tests/gpu/encoder_vs_st.py \
        --bench "$BIN/encoder_throughput_bench" --out "$OUT" --shapes bert-base \
        --turbine-configs "$configs" --profile "default;$best" --profile-workloads mixed \
        2>&1 | tee "$OUT/encprof.log" | grep -v Warning
      [ "${PIPESTATUS[0]}" = 0 ] || status=1
      ;;
    fp8)
      # The A/B of issue 28 in one call: the same random Llama-3.1-8B-shaped weights as BF16 and as
      # a compressed-tensors FP8-dynamic checkpoint (same seed), each through turbine_generate
      # --bench: BF16; FP8 E4M3 on the GPU (scales in an epilogue kernel, or inside cuBLASLt with
      # --fp8-outer-vec); FP8 dequantized at upload (--no-fp8-weights); FP8 +
      # --kv-cache-dtype fp8; the BF16 model with --quantization fp8. $OUT/fp8_table.md gets
      # batch-1 and batch-64 decode, 4 x 2,048 prefill and the KV blocks (sequences capacity) of
      # each, with ratios to BF16. Then the FP8 logits parity against a float64 reference (tests/tools/
      # fp8_parity.py; torch's E4M3 cast when installed) and the greedy ids of checkpoint vs
      # quantized-at-load.
      dev=${FP8_DEVICE:-cuda}
      shape=${FP8_SHAPE:-llama-3.1-8b}
      if [ "$dev" = cuda ] && [ -z "${FP8_SKIP_TEST:-}" ]; then  # FP8_SKIP_TEST=1: run them apart
        echo "== cuda_test: FP8 cases"
        timeout 400 "$BIN/cuda_test" --gtest_filter='*Fp8*' >"$OUT/cuda_test_fp8.log" 2>&1 || status=1
        grep -E '^\[  (PASSED|FAILED|SKIPPED) |^\[  FAILED|^\[ fp8|tests ran|Failure|error' "$OUT/cuda_test_fp8.log" | head -40
      fi
      M16=${MODEL_8B:-/tmp/$shape-random}
      M8=${MODEL_8B_FP8:-/tmp/$shape-random-fp8}
      [ -f "$M16/config.json" ] || timeout 300 "$BIN/turbine_generate" --gen-model "$M16" --arch llama \
        --shape "$shape" --dtype bf16 --seed 1 2>&1 | tail -1 | tee -a "$OUT/fp8.log"
      [ -f "$M8/config.json" ] || timeout 300 "$BIN/turbine_generate" --gen-model "$M8" --arch llama \
        --shape "$shape" --dtype bf16 --seed 1 --quantization fp8 2>&1 | tail -1 | tee -a "$OUT/fp8.log"
      du -sh "$M16" "$M8" | tee -a "$OUT/fp8.log"
      # --max-num-seqs 512: the KV cache is bounded by memory, not by sequences x context, so its
      # blocks are the capacity the KV dtype and the weights' size leave (the 1.9x of the issue).
      GEN=("$BIN/turbine_generate" --device "$dev" --dtype bf16 --max-context 4096 --max-num-seqs 512
        --max-num-batched-tokens 8192)
      specs=${FP8_BENCH_SPECS:-1x128x128,64x512x128,4x2048x1}
      [ "$dev" = cpu ] && specs=${FP8_BENCH_SPECS:-1x16x8,4x64x1,8x32x8}
      # fp8: the defaults (decode steps of <= 2 rows through the weight-only gemv since the H100
      # run); fp8-a8: those steps through the activation-quantizing gemv (--fp8-gemv a8);
      # fp8-w8a16: decode steps of <= 2 rows through the weight-only FP8 gemv (--fp8-gemv w8a16);
      # fp8-w8a16+outer-vec: that plus the cuBLASLt scales for the larger steps; +fast-accum:
      # cuBLASLt FP8 GEMMs with FAST_ACCUM too (--fp8-fast-accum).
      runs=("bf16:$M16:" "fp8:$M8:" "fp8-a8:$M8:--fp8-gemv a8" "fp8-w8a16:$M8:--fp8-gemv w8a16"
        "fp8-w8a16+outer-vec:$M8:--fp8-gemv w8a16 --fp8-outer-vec"
        "fp8-w8a16+outer-vec+fast-accum:$M8:--fp8-gemv w8a16 --fp8-outer-vec --fp8-fast-accum"
        "fp8-outer-vec:$M8:--fp8-outer-vec" "fp8-dequantized:$M8:--no-fp8-weights"
        "fp8+kv-fp8:$M8:--kv-cache-dtype fp8" "bf16+kv-fp8:$M16:--kv-cache-dtype fp8"
        "bf16-quantized-at-load:$M16:--quantization fp8")
      if [ -n "${FP8_RUNS:-}" ]; then  # e.g. FP8_RUNS="bf16 fp8 fp8+kv-fp8": those labels only
        sel=()
        for run in "${runs[@]}"; do [[ " $FP8_RUNS " == *" ${run%%:*} "* ]] && sel+=("$run"); done
        runs=("${sel[@]}")
      fi
      for run in "${runs[@]}"; do
        IFS=: read -r label model extra <<<"$run"
        echo "== $shape $label ($dev): $specs" | tee -a "$OUT/fp8.log"
        timeout 500 "${GEN[@]}" --model "$model" $extra --bench "$specs" >"$OUT/fp8_$label.log" 2>&1 ||
          status=1
        grep -E 'backend ready|^bench|rror' "$OUT/fp8_$label.log" | tee -a "$OUT/fp8.log"
      done
      python3 tests/gpu/fp8_report.py --out "$OUT/fp8_table.md" \
        $(for run in "${runs[@]}"; do l=${run%%:*}; echo "$l=$OUT/fp8_$l.log"; done) || status=1
      cat "$OUT/fp8_table.md"
      if python3 -c 'import numpy' 2>/dev/null; then
        echo "== FP8 logits vs the reference written from the format (tests/tools/fp8_parity.py)"
        PYTHONUNBUFFERED=1 timeout 500 python3 tests/tools/fp8_parity.py --bin "$BIN/turbine_generate" \
          --device "$dev" --out "$OUT" 2>&1 | tee "$OUT/fp8_parity.log"
        [ "${PIPESTATUS[0]}" = 0 ] || status=1
      else
        echo "== no numpy here: tests/tools/fp8_parity.py skipped"
      fi
      echo "== greedy ids, 8 x (256 in, 32 out): FP8 checkpoint vs the BF16 model quantized at load"
      timeout 300 "${GEN[@]}" --model "$M8" --random-prompts 8x256 --max-tokens 32 \
        >"$OUT/fp8_ckpt.txt" 2>/dev/null || status=1
      timeout 300 "${GEN[@]}" --model "$M16" --quantization fp8 --random-prompts 8x256 --max-tokens 32 \
        >"$OUT/fp8_load.txt" 2>/dev/null || status=1
      echo "$(comm -12 <(sort "$OUT/fp8_ckpt.txt") <(sort "$OUT/fp8_load.txt") | wc -l) of 8 equal" \
        "(the checkpoint's scales are BF16-rounded, --quantization keeps F32 scales: near ties may part)"
      ;;
    decprof)
      # Issue 28: the decoder's op profile for BF16 and FP8, then the A/B of the switches that
      # remove what it shows, every peer in this call on this GPU.
      # DECPROF_DEVICE=cpu FP8_SHAPE=tiny BIN=build rehearses the stage's script without a GPU
      # (no profile tables there).
      dev=${DECPROF_DEVICE:-cuda}
      shape=${FP8_SHAPE:-llama-3.1-8b}
      M16=${MODEL_8B:-/tmp/$shape-random}
      M8=${MODEL_8B_FP8:-/tmp/$shape-random-fp8}
      [ -f "$M16/config.json" ] || timeout 300 "$BIN/turbine_generate" --gen-model "$M16" --arch llama \
        --shape "$shape" --dtype bf16 --seed 1 2>&1 | tail -1 | tee -a "$OUT/decprof.log"
      [ -f "$M8/config.json" ] || timeout 300 "$BIN/turbine_generate" --gen-model "$M8" --arch llama \
        --shape "$shape" --dtype bf16 --seed 1 --quantization fp8 2>&1 | tail -1 | tee -a "$OUT/decprof.log"
      if [ "$dev" = cuda ] && [ "${DECPROF_TEST_FILTER:-}" != - ]; then
        # The profile, LaunchHold, the E4M3 LM head, and every FP8 / W8A16 case (the FP8 GEMM's
        # product and epilogue are now two calls; gemv_w8a16 gained an F32 output).
        filter=${DECPROF_TEST_FILTER:-CudaProfile*:*Fp8*:*W8a16*}
        echo "== cuda_test: $filter" | tee -a "$OUT/decprof.log"
        timeout 300 "$BIN/cuda_test" --gtest_filter="$filter" >"$OUT/cuda_test_decprof.log" 2>&1 || status=1
        grep -E '^\[  (PASSED|FAILED|SKIPPED) |^\[  FAILED|Failure' "$OUT/cuda_test_decprof.log" | tee -a "$OUT/decprof.log"
      fi
      # The fp8 stage's settings, so that its numbers and these compare.
      GEN=("$BIN/turbine_generate" --device "$dev" --dtype bf16 --max-context 4096 --max-num-seqs 512
        --max-num-batched-tokens 8192)
      specs=${DECPROF_BENCH_SPECS:-1x128x128,64x512x128,4x2048x1}
      [ "$dev" = cpu ] && specs=${DECPROF_BENCH_SPECS:-1x16x8,4x64x1,8x32x8}
      for run in "bf16:$M16" "fp8:$M8"; do
        IFS=: read -r label model <<<"$run"
        echo "== op profile $label: $specs" | tee -a "$OUT/decprof.log"
        timeout 200 "${GEN[@]}" --model "$model" --profile-ops --bench-device-sampling --bench "$specs" \
          >"$OUT/decprof_profile_$label.log" 2>&1 || status=1
        grep -E '^profile|^bench|rror' "$OUT/decprof_profile_$label.log" | tee -a "$OUT/decprof.log"
      done
      # The A/B: *-ds rows draw tokens on the device (forward_sample), as the engine does.
      runs=("bf16:$M16:" "fp8:$M8:" "bf16-ds:$M16:--bench-device-sampling" "fp8-ds:$M8:--bench-device-sampling"
        "fp8-ds+outer-vec:$M8:--bench-device-sampling --fp8-outer-vec"
        "fp8-ds+outer-vec+fast-accum:$M8:--bench-device-sampling --fp8-outer-vec --fp8-fast-accum"
        "fp8-ds+tune:$M8:--bench-device-sampling --tune-gemm" "bf16-ds+tune:$M16:--bench-device-sampling --tune-gemm"
        "fp8-ds+lm-head8:$M8:--bench-device-sampling --fp8-lm-head"
        "fp8-ds+all:$M8:--bench-device-sampling --fp8-outer-vec --fp8-lm-head --tune-gemm")
      sel=()
      for run in "${runs[@]}"; do
        [[ " ${DECPROF_RUNS:-bf16 fp8 bf16-ds fp8-ds fp8-ds+outer-vec fp8-ds+lm-head8 fp8-ds+all} " == \
          *" ${run%%:*} "* ]] && sel+=("$run")
      done
      for run in "${sel[@]}"; do
        IFS=: read -r label model extra <<<"$run"
        echo "== $label: $specs" | tee -a "$OUT/decprof.log"
        timeout 200 "${GEN[@]}" --model "$model" $extra --bench "$specs" >"$OUT/decprof_$label.log" 2>&1 ||
          status=1
        grep -E 'backend ready|^bench|rror' "$OUT/decprof_$label.log" | tee -a "$OUT/decprof.log"
      done
      for t in host device; do  # one table per way of drawing the tokens
        logs=()
        for run in "${sel[@]}"; do
          l=${run%%:*}
          { [ $t = device ] && [[ $l == *-ds* ]]; } || { [ $t = host ] && [[ $l != *-ds* ]]; } &&
            logs+=("$l=$OUT/decprof_$l.log")
        done
        [ "${#logs[@]}" -gt 0 ] || continue
        python3 tests/gpu/fp8_report.py --out "$OUT/decprof_table_$t.md" "${logs[@]}" || status=1
        echo "== A/B, tokens drawn on the $t (first row: the baseline)" | tee -a "$OUT/decprof.log"
        tee -a "$OUT/decprof.log" <"$OUT/decprof_table_$t.md"
      done
      # The engine's batch-1 decode: its host work between steps (scheduling, detokenizer-free
      # output, device sampling's copy-back) on top of the forward passes above.
      for run in "bf16:$M16" "fp8:$M8"; do
        IFS=: read -r label model <<<"$run"
        echo "== engine batch-1 decode $label (1 x 128 in, 256 out)" | tee -a "$OUT/decprof.log"
        timeout 120 "${GEN[@]}" --model "$model" --random-prompts 1x128 --max-tokens 256 \
          2>&1 >/dev/null | grep -E '^engine' | tee -a "$OUT/decprof.log"
      done
      ;;
    tp)
      M=${MODEL_8B:-/tmp/llama-3.1-8b-random}
      if [ ! -f "$M/config.json" ]; then
        timeout 300 "$BIN/turbine_generate" --gen-model "$M" --arch llama --shape llama-3.1-8b \
          --dtype bf16 --seed 1 2>&1 | tail -1
      fi
      GEN=("$BIN/turbine_generate" --model "$M" --device cuda --dtype bf16 --max-context 4096
        --max-num-seqs 64 --max-num-batched-tokens 8192)
      n_gpus=$(nvidia-smi -L | wc -l)
      echo "== tensor parallelism: plain backend, then TP 1 through NCCL (same machine, same call)"
      for f in "" "--tensor-parallel-size 1"; do
        echo "-- ${f:-plain}"
        timeout 400 "${GEN[@]}" $f --bench "${BENCH_SPECS:-1x128x128,4x2048x1,64x512x128}" 2>&1 |
          tee -a "$OUT/tp.log" || status=1
      done
      echo "== greedy ids: plain vs TP 1..N (TP_SIZES, default: 1 and every power of two <= $n_gpus GPUs)"
      sizes=${TP_SIZES:-$(for t in 1 2 4 8; do [ $t -le "$n_gpus" ] && echo $t; done)}
      timeout 300 "${GEN[@]}" --random-prompts 8x256 --max-tokens 64 >"$OUT/tp_plain.txt" 2>/dev/null || status=1
      for t in $sizes; do
        timeout 300 "${GEN[@]}" --tensor-parallel-size $t --random-prompts 8x256 --max-tokens 64 \
          >"$OUT/tp_$t.txt" 2>"$OUT/tp_$t.err" || { status=1; tail -3 "$OUT/tp_$t.err"; }
        echo "TP $t: $(comm -12 <(sort "$OUT/tp_plain.txt") <(sort "$OUT/tp_$t.txt") | wc -l) of 8 greedy sequences equal the plain backend's"
      done
      echo "== clear errors at start"
      out=$("${GEN[@]}" --tensor-parallel-size $((n_gpus * 2)) --bench 1x16x4 2>&1) && status=1
      echo "$out" | grep -E "needs $((n_gpus * 2)) GPUs" || { echo "no clear too-few-GPUs error: $out"; status=1; }
      out=$(TURBINE_NCCL_LIBRARY=/nonexistent/libnccl.so.2 "${GEN[@]}" --tensor-parallel-size 1 --bench 1x16x4 2>&1) && status=1
      echo "$out" | grep -E "cannot load /nonexistent/libnccl.so.2" || { echo "no clear no-NCCL error: $out"; status=1; }
      ;;
    kvtiers)
      M=${MODEL_8B:-/tmp/llama-3.1-8b-random}
      if [ ! -f "$M/tokenizer.json" ]; then
        mkdir -p "$M"; gunzip -c "$TURBINE_SHARED/tokenizers/llama3/tokenizer.json.gz" > /tmp/tok.json
        [ -f "$M/config.json" ] || timeout 300 "$BIN/turbine_generate" --gen-model "$M" --arch llama \
          --shape llama-3.1-8b --dtype bf16 --seed 1 --tokenizer /tmp/tok.json 2>&1 | tail -1
        cp /tmp/tok.json "$M/tokenizer.json"
      fi
      PORT=18641
      KVD=${KVTIERS_DISK:-/tmp/turbine-kv}
      G=$((1 << 30))
      BT=${KVTIERS_BLOCK_TOKENS:-32}
      for sp in ${KVTIERS_SPEEDUPS:-16}; do
      for variant in ${KVTIERS_VARIANTS:-none host host+disk}; do
        case $variant in
          none) tiers="" ;;
          host) tiers="--kv-offload-host-bytes ${KVTIERS_HOST_BYTES:-$((32 * G))}" ;;
          host-all) tiers="--kv-offload-host-bytes ${KVTIERS_HOST_BYTES:-$((32 * G))} --kv-offload-all-completed" ;;
          host+disk) tiers="--kv-offload-host-bytes $((8 * G)) --kv-offload-disk-path $KVD \
            --kv-offload-disk-bytes ${KVTIERS_DISK_BYTES:-$((64 * G))} --kv-offload-disk-min-hits 1" ;;
        esac
        [ "$variant" = none ] || tiers="$tiers ${KVTIERS_TIER_FLAGS:-}"
        echo "== kvtiers $variant x$sp: KV cache ${KVTIERS_KV_BYTES:-$((4 * G))} bytes; $tiers" | tee -a "$OUT/kvtiers.log"
        rm -rf "$KVD"
        "$BIN/turbine" run --model "$M" --served-model-name llama8b --device cuda --dtype bf16 \
          --max-model-len 32768 --max-num-seqs 64 --max-num-batched-tokens 8192 \
          --kv-cache-memory ${KVTIERS_KV_BYTES:-$((4 * G))} $tiers --port $PORT \
          > "$OUT/kvtiers_server_$variant.log" 2>&1 &
        spid=$!
        for i in $(seq 600); do env -u LD_LIBRARY_PATH curl -sf localhost:$PORT/health >/dev/null && break; sleep 0.5; done
        timeout 500 "$BIN/turbine" bench --url http://127.0.0.1:$PORT --endpoint completions \
          --dataset "$TURBINE_SHARED/datasets/mooncake_conversation_trace.jsonl" --request-rate trace \
          --trace-speedup $sp --trace-block-tokens $BT -n ${KVTIERS_N:-2000} -c 0 --no-progress \
          --output-json "$OUT/kvtiers_${variant}_x$sp.json" 2>&1 | tee -a "$OUT/kvtiers.log" || status=1
        env -u LD_LIBRARY_PATH curl -s localhost:$PORT/metrics | grep -E "^turbine_(kv_tier|engine_prefix)" \
          | tee "$OUT/kvtiers_metrics_${variant}_x$sp.txt" | grep -E "onboarded_blocks|offloaded_blocks|offload_dropped|hit_rate|prefix_cache_hit" | tee -a "$OUT/kvtiers.log"
        kill $spid; wait $spid
      done
      done
      echo "== kv_tier_bench (host->device, disk->host onboarding vs copy limits)" | tee -a "$OUT/kvtiers.log"
      mkdir -p "$KVD"
      timeout 300 "$BIN/kv_tier_bench" --disk-path "$KVD" --blocks ${KVTIERS_BENCH_BLOCKS:-1024} 2>&1 |
        tee -a "$OUT/kvtiers.log" || status=1
      ;;
    *) echo "unknown stage $stage"; status=2 ;;
  esac
done
exit $status
