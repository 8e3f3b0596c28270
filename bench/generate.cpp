// turbine_generate: runs a model without the network stack, for parity checks and benchmarks on
// machines that build with -DTURBINE_NET=OFF (the GPU machine).
//
//   generate --model M [--device cpu|cuda] [--dtype f32|f16|bf16] --prompt-ids 1,2,3 ...
//            [--prompt TEXT ...] [--max-tokens N]        greedy through engine::Engine, one
//                                                        line "seq I: ids..." per prompt
//   generate ... --dump-logits FILE.npy [--logits-tail K] logits of the last K+1 positions of
//            each prompt: positions 0..len-K-1 as one batched prefill chunk per prompt, then K
//            batched decode steps; float32 [n_prompts][K + 1][n_vocab]
//   generate ... --bench NxPxO[,NxPxO...]   backend-level prefill and decode throughput for N
//            sequences of P random prompt tokens and O generated tokens, all batched (one model
//            load for all the runs)
//   --random-prompts NxP adds N random prompts of P tokens; --no-graphs / --no-gemv turn CUDA
//   graphs / the skinny decode GEMM off; --gemv-all / --no-gemv-all route every projection of
//   <= 8 rows (not only wide ones) to it or not; --no-pdl turns programmatic dependent launch off;
//   --no-fused-swiglu runs gate|up and SwiGLU of single-sequence steps as two kernels;
//   --no-device-sampling makes the engine sample on the CPU from downloaded logits (CUDA);
//   --tune-gemm times cuBLASLt's candidates for the decode GEMMs at start-up (CudaBackendOptions).
//   --tensor-parallel-size N: N ranks (issue 22); with --device cuda, given at all (even 1), the
//   backend goes through the tensor-parallel path and NCCL (N = 1: a one-rank NCCL group).
//   --structured-ab [--constraint FILE.json]: the engine run (random prompts, --max-tokens) three
//   times in one process on one engine, temperature 1.0, seeded: unconstrained, constrained by a
//   JSON Schema (FILE, or a built-in array of objects that cannot close within a few hundred
//   tokens, so no sequence ends early), unconstrained again; prints the decode throughput of
//   each and constrained / unconstrained. Needs the model's tokenizer (gen-model --tokenizer).
//   --mask-threads N: threads filling a step's masks (EngineOptions::mask_threads; 0: auto).
//   TURBINE_PROFILE_DECODE_STEP=K (with --bench): decode step K runs between cudaProfilerStart and
//   cudaProfilerStop, for `ncu --profile-from-start off` (add --no-graphs for per-kernel rows)
//   --quantization fp8 quantizes the linear layers to FP8 at load (model::Quantization);
//   --kv-cache-dtype fp8 stores the KV cache in E4M3 (engine::KvCacheDtype); --no-fp8-weights
//   dequantizes FP8 weights at upload instead of keeping them E4M3 on the GPU (the A/B);
//   --fp8-outer-vec lets cuBLASLt apply the FP8 GEMMs' token/channel scales (no epilogue kernel)
//   --fp8-gemv a8|w8a16: the skinny FP8 projections of decode steps (CudaBackendOptions::fp8_gemv;
//   w8a16: weight-only, activations stay BF16, no quantization kernels); --fp8-fast-accum: cuBLASLt
//   FP8 GEMMs with FAST_ACCUM (prefill and steps of > 8 rows)
//   --profile-ops (with --bench, CUDA): the decoder's op profile (CudaBackendOptions::profile):
//   steps run eagerly (no CUDA graphs) with CUDA events around every op; after each phase (the
//   timed prefill, the decode steps after the first) a table of GPU time per op kind: calls and
//   microseconds per step, share of forward() wall time, achieved TFLOP/s and GB/s. Compare
//   throughput with a run without it (events and eager launches cost time). Each profiled step's
//   kernels wait until the host has enqueued them all (CudaBackendOptions::profile_hold), so they
//   run back to back; --profile-no-hold lets them trail the launches instead.
//   --fp8-lm-head: an E4M3 copy of the LM head for decode steps of <= 2 rows (FP8 checkpoints,
//   W8A16; CudaBackendOptions::fp8_lm_head)
//   --bench-device-sampling: --bench draws the next tokens on the device (forward_sample, greedy),
//   as the engine does, instead of downloading every logits row for a host argmax
//   Every decode bench also prints the host time between forward() calls (median per step).
//   generate --gen-model DIR --arch llama|qwen2|qwen3 --shape S [--dtype bf16] [--seed S]
//            [--tokenizer tokenizer.json] [--quantization fp8]
//                                                        random-weight Hugging Face folder
//                                                        (fp8: compressed-tensors FP8-dynamic)
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/engine.h"
#include "model/model.h"
#include "model/random_model.h"
#include "structured/compiler_registry.h"
#include "tokenizer/tokenizer.h"
#ifdef TURBINE_HAVE_CUDA
#include <cuda_profiler_api.h>

#include "cuda/cuda_backend.h"
#include "cuda/op_timer.h"
#include "cuda/tensor_parallel.h"
#endif

namespace {

using namespace turbine;

struct Args {
  std::string model, device = "cpu", dtype = "bf16", dump_logits, gen_model, arch = "llama",
                     shape = "tiny", tokenizer, quantization = "none", kv_cache_dtype = "auto";
  std::vector<std::vector<int32_t>> prompt_ids;
  std::vector<std::string> prompts;
  int max_tokens = 16, logits_tail = 4;
  std::string bench;
  int max_num_batched_tokens = 8192, max_num_seqs = 256, max_context = 4096, block_size = 16;
  int threads = 0;
  int tp = 0;  // 0: not given (the plain one-GPU backend)
  double gpu_mem = 0.9;
  uint64_t seed = 0;
  bool graphs = true, gemv = true, device_sampling = true;
  bool gemv_all = false, pdl = true, fused_swiglu = true,
       tune_gemm = false;              // as CudaBackendOptions
  bool fp8_weights = true;             // CudaBackendOptions::fp8_weights (--no-fp8-weights)
  bool fp8_outer_vec = false;          // CudaBackendOptions::fp8_outer_vec_scales (--fp8-outer-vec)
  bool fp8_w8a16 = true;               // CudaBackendOptions::fp8_gemv kW8A16 (--fp8-gemv a8: kA8)
  bool fp8_fast_accum = false;         // CudaBackendOptions::fp8_fast_accum (--fp8-fast-accum)
  bool profile_ops = false;            // --profile-ops: CudaBackendOptions::profile
  bool fp8_lm_head = false;            // CudaBackendOptions::fp8_lm_head (--fp8-lm-head)
  bool profile_hold = true;            // CudaBackendOptions::profile_hold (--profile-no-hold)
  bool device_sampling_bench = false;  // --bench-device-sampling
  int random_n = 0, random_len = 0;
  bool structured_ab = false;
  std::string constraint;  // a JSON Schema file for --structured-ab; empty: the built-in one
  int mask_threads = 0;    // --mask-threads (EngineOptions::mask_threads; 0: auto)
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr, "turbine_generate: %s\n(see the comment at the top of bench/generate.cpp)\n",
               why.c_str());
  std::exit(2);
}

std::vector<int32_t> parse_ids(const std::string& s) {
  std::vector<int32_t> ids;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = s.find(',', i);
    if (j == std::string::npos) j = s.size();
    if (j > i) ids.push_back(static_cast<int32_t>(std::stol(s.substr(i, j - i))));
    i = j + 1;
  }
  return ids;
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) usage("missing value after " + k);
      return argv[++i];
    };
    if (k == "--model")
      a.model = val();
    else if (k == "--device")
      a.device = val();
    else if (k == "--dtype")
      a.dtype = val();
    else if (k == "--prompt-ids")
      a.prompt_ids.push_back(parse_ids(val()));
    else if (k == "--prompt")
      a.prompts.push_back(val());
    else if (k == "--max-tokens")
      a.max_tokens = std::stoi(val());
    else if (k == "--greedy")
      continue;  // the only mode
    else if (k == "--dump-logits")
      a.dump_logits = val();
    else if (k == "--logits-tail")
      a.logits_tail = std::stoi(val());
    else if (k == "--bench")
      a.bench = val();
    else if (k == "--no-graphs")
      a.graphs = false;
    else if (k == "--no-gemv")
      a.gemv = false;
    else if (k == "--gemv-all")
      a.gemv_all = true;
    else if (k == "--no-gemv-all")
      a.gemv_all = false;
    else if (k == "--no-pdl")
      a.pdl = false;
    else if (k == "--fused-swiglu")
      a.fused_swiglu = true;
    else if (k == "--no-fused-swiglu")
      a.fused_swiglu = false;
    else if (k == "--tune-gemm")
      a.tune_gemm = true;
    else if (k == "--no-fp8-weights")
      a.fp8_weights = false;
    else if (k == "--fp8-outer-vec")
      a.fp8_outer_vec = true;
    else if (k == "--fp8-fast-accum")
      a.fp8_fast_accum = true;
    else if (k == "--profile-ops")
      a.profile_ops = true;
    else if (k == "--profile-no-hold")
      a.profile_hold = false;
    else if (k == "--fp8-lm-head")
      a.fp8_lm_head = true;
    else if (k == "--bench-device-sampling")
      a.device_sampling_bench = true;
    else if (k == "--fp8-gemv") {
      const std::string v = val();
      if (v != "a8" && v != "w8a16") usage("--fp8-gemv takes a8 or w8a16");
      a.fp8_w8a16 = v == "w8a16";
    } else if (k == "--structured-ab")
      a.structured_ab = true;
    else if (k == "--constraint")
      a.constraint = val();
    else if (k == "--mask-threads")
      a.mask_threads = std::atoi(val().c_str());
    else if (k == "--no-device-sampling")
      a.device_sampling = false;
    else if (k == "--random-prompts") {
      if (std::sscanf(val().c_str(), "%dx%d", &a.random_n, &a.random_len) != 2)
        usage("--random-prompts takes NxP");
    } else if (k == "--max-num-batched-tokens")
      a.max_num_batched_tokens = std::stoi(val());
    else if (k == "--max-num-seqs")
      a.max_num_seqs = std::stoi(val());
    else if (k == "--max-context")
      a.max_context = std::stoi(val());
    else if (k == "--block-size")
      a.block_size = std::stoi(val());
    else if (k == "--threads")
      a.threads = std::stoi(val());
    else if (k == "--tensor-parallel-size")
      a.tp = std::stoi(val());
    else if (k == "--gpu-memory-utilization")
      a.gpu_mem = std::stod(val());
    else if (k == "--gen-model")
      a.gen_model = val();
    else if (k == "--arch")
      a.arch = val();
    else if (k == "--shape")
      a.shape = val();
    else if (k == "--seed")
      a.seed = std::stoull(val());
    else if (k == "--tokenizer")
      a.tokenizer = val();
    else if (k == "--quantization")
      a.quantization = val();
    else if (k == "--kv-cache-dtype")
      a.kv_cache_dtype = val();
    else
      usage("unknown option " + k);
  }
  return a;
}

#ifdef TURBINE_HAVE_CUDA
std::shared_ptr<cuda::OpTimer> g_profile;  // --profile-ops with --device cuda
#endif

// --profile-ops: zeroes the op totals (before a phase's measured steps).
void profile_reset() {
#ifdef TURBINE_HAVE_CUDA
  if (g_profile) g_profile->reset();
#endif
}

// --profile-ops: the op table of the steps since profile_reset(), per step.
void profile_print(const std::string& phase) {
#ifdef TURBINE_HAVE_CUDA
  if (!g_profile || g_profile->passes() == 0) return;
  const auto steps = static_cast<double>(g_profile->passes());
  const double wall = g_profile->wall_ms(), busy = g_profile->busy_ms();
  // Held steps (the default): wall = the host's enqueue of the whole step + the GPU's run of it.
  std::printf(
      "profile %s: %lld forward passes, per step: forward() wall %.3f ms, GPU busy (sum of the "
      "ops) %.3f ms\n",
      phase.c_str(), static_cast<long long>(g_profile->passes()), wall / steps, busy / steps);
  std::printf("profile %s: %-22s %8s %10s %7s %7s %9s %9s\n", phase.c_str(), "op", "calls/st",
              "us/step", "% busy", "% wall", "TFLOP/s", "GB/s");
  for (const cuda::OpTimer::Row& row : g_profile->rows()) {
    if (row.calls == 0) continue;
    const double sec = row.ms / 1000.0;
    const double tflops = sec > 0 && row.flops > 0 ? row.flops / sec / 1e12 : 0.0;
    const double gbps = sec > 0 && row.bytes > 0 ? row.bytes / sec / 1e9 : 0.0;
    std::printf("profile %s: %-22s %8.1f %10.1f %6.1f%% %6.1f%% %9.1f %9.0f\n", phase.c_str(),
                row.name.c_str(), static_cast<double>(row.calls) / steps, 1e3 * row.ms / steps,
                busy > 0 ? 100.0 * row.ms / busy : 0.0, wall > 0 ? 100.0 * row.ms / wall : 0.0,
                tflops, gbps);
  }
  std::fflush(stdout);
#else
  (void)phase;
#endif
}

Result<model::DType> parse_dtype(const std::string& s) {
  if (s == "f32") return model::DType::kF32;
  if (s == "f16") return model::DType::kF16;
  if (s == "bf16") return model::DType::kBF16;
  return invalid_argument("--dtype must be f32, f16 or bf16");
}

Result<std::unique_ptr<engine::Backend>> make_backend(const model::Model& m, const Args& a) {
  TURBINE_ASSIGN_OR_RETURN(const engine::KvCacheDtype kv_dtype,
                           engine::parse_kv_cache_dtype(a.kv_cache_dtype));
  if (a.device == "cpu") {
    engine::CpuBackendOptions o;
    o.n_threads = a.threads;
    o.max_num_seqs = std::min(a.max_num_seqs, 4096);
    o.max_context = a.max_context;
    o.block_size = a.block_size;
    o.kv_cache_dtype = kv_dtype;
    o.tensor_parallel_size = std::max(1, a.tp);
    return engine::make_cpu_backend(m, o);
  }
  if (a.device == "cuda") {
#ifdef TURBINE_HAVE_CUDA
    cuda::CudaBackendOptions o;
    TURBINE_ASSIGN_OR_RETURN(o.dtype, parse_dtype(a.dtype));
    o.max_context = a.max_context;
    o.block_size = a.block_size;
    o.max_num_seqs = a.max_num_seqs;
    o.max_num_batched_tokens = a.max_num_batched_tokens;
    o.gpu_memory_utilization = a.gpu_mem;
    o.cuda_graphs = a.graphs;
    o.skinny_gemv = a.gemv;
    o.gemv_all = a.gemv_all;
    o.pdl = a.pdl;
    o.fused_swiglu = a.fused_swiglu;
    o.device_sampling = a.device_sampling;
    o.tune_gemm = a.tune_gemm;
    o.kv_cache_dtype = kv_dtype;
    o.fp8_weights = a.fp8_weights;
    o.fp8_outer_vec_scales = a.fp8_outer_vec;
    o.fp8_fast_accum = a.fp8_fast_accum;
    o.fp8_gemv = a.fp8_w8a16 ? cuda::CudaBackendOptions::Fp8Gemv::kW8A16
                             : cuda::CudaBackendOptions::Fp8Gemv::kA8;
    o.fp8_lm_head = a.fp8_lm_head;
    if (a.profile_ops) {
      g_profile = std::make_shared<cuda::OpTimer>();
      o.profile = g_profile;
      o.profile_hold = a.profile_hold;
    }
    if (a.tp > 0) return cuda::make_cuda_tp_backend(m, o, a.tp);
    return cuda::make_cuda_backend(m, o);
#else
    return unimplemented("this turbine_generate was built without CUDA (-DTURBINE_CUDA=ON)");
#endif
  }
  return invalid_argument("--device must be cpu or cuda");
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Sequential blocks per sequence: sequence i owns [i * per, (i + 1) * per).
struct Tables {
  int per = 0;
  std::vector<std::vector<int32_t>> t;
  Status init(const engine::Backend& b, int n_seqs, int max_len) {
    per = (max_len + b.block_size() - 1) / b.block_size();
    if (static_cast<int64_t>(per) * n_seqs > b.num_blocks())
      return invalid_argument("KV cache of " + std::to_string(b.num_blocks()) +
                              " blocks cannot hold " + std::to_string(n_seqs) + " x " +
                              std::to_string(max_len) + " positions");
    t.resize(static_cast<size_t>(n_seqs));
    for (int s = 0; s < n_seqs; ++s)
      for (int j = 0; j < per; ++j) t[static_cast<size_t>(s)].push_back(s * per + j);
    return Status::ok();
  }
};

Status write_npy(const std::string& path, const std::vector<float>& data,
                 const std::vector<size_t>& shape) {
  std::string dims;
  for (size_t d : shape) dims += std::to_string(d) + ", ";
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::ofstream out(path, std::ios::binary);
  if (!out) return not_found("cannot write " + path);
  out.write("\x93NUMPY\x01\x00", 8);
  const uint16_t len = static_cast<uint16_t>(header.size());
  out.write(reinterpret_cast<const char*>(&len), 2);
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  out.write(reinterpret_cast<const char*>(data.data()),
            static_cast<std::streamsize>(data.size() * sizeof(float)));
  return out ? Status::ok() : data_loss("short write to " + path);
}

Status dump_logits(engine::Backend& b, const std::vector<std::vector<int32_t>>& prompts,
                   const Args& a, int n_vocab) {
  const int k = a.logits_tail;
  const auto n = prompts.size();
  size_t max_len = 0;
  for (const auto& p : prompts) {
    if (p.size() < static_cast<size_t>(k) + 1)
      return invalid_argument("prompts need at least --logits-tail + 1 tokens");
    max_len = std::max(max_len, p.size());
  }
  Tables tables;
  TURBINE_RETURN_IF_ERROR(tables.init(b, static_cast<int>(n), static_cast<int>(max_len)));
  const size_t row = static_cast<size_t>(n_vocab);
  std::vector<float> out(n * static_cast<size_t>(k + 1) * row), logits;
  for (int step = 0; step <= k; ++step) {
    std::vector<engine::SeqChunk> chunks;
    for (size_t s = 0; s < n; ++s) {
      const auto& p = prompts[s];
      const int first = static_cast<int>(p.size()) - k;  // prefill [0, first), then one by one
      engine::SeqChunk ch;
      ch.block_table = tables.t[s];
      ch.pos = step == 0 ? 0 : first + step - 1;
      ch.tokens = step == 0 ? std::span<const int32_t>(p.data(), static_cast<size_t>(first))
                            : std::span<const int32_t>(&p[static_cast<size_t>(ch.pos)], 1);
      chunks.push_back(ch);
    }
    TURBINE_RETURN_IF_ERROR(b.forward(chunks, logits));
    for (size_t s = 0; s < n; ++s)
      std::copy_n(logits.data() + s * row, row,
                  out.data() + (s * static_cast<size_t>(k + 1) + static_cast<size_t>(step)) * row);
  }
  return write_npy(a.dump_logits, out, {n, static_cast<size_t>(k + 1), row});
}

struct EngineRun {
  double decode_tok_s = 0.0;  // after every sequence's second token
  size_t n_tokens = 0;
  size_t n_stopped = 0;  // sequences that ended before max_tokens
};

// `params` for every prompt (the seed is offset per prompt); prints the tokens when `print`.
Result<EngineRun> run_batch(engine::Engine& eng, const std::vector<std::vector<int32_t>>& ps,
                            const engine::SamplingParams& params, uint64_t first_id, bool print) {
  std::mutex mu;
  std::condition_variable cv;
  size_t done = 0, n_started = 0, tokens_at_start = 0, n_tokens = 0;
  // When every sequence had its second token: decode from there on (the first decode step, which
  // may capture a CUDA graph, is left out).
  double t_started = 0.0;
  std::vector<std::vector<int32_t>> out(ps.size());
  std::vector<Status> errors(ps.size());
  const double t0 = now_s();
  for (size_t i = 0; i < ps.size(); ++i) {
    engine::EngineRequest r;
    r.id = first_id + i;
    r.prompt = ps[i];
    r.params = params;
    if (r.params.seed) *r.params.seed += i;
    r.on_output = [&, i](engine::EngineOutput&& o) {
      std::lock_guard<std::mutex> lock(mu);
      if (out[i].size() < 2 && out[i].size() + o.tokens.size() >= 2 && ++n_started == ps.size()) {
        t_started = now_s();
        tokens_at_start = n_tokens + o.tokens.size();
      }
      n_tokens += o.tokens.size();
      for (const auto& t : o.tokens) out[i].push_back(t.token);
      if (o.finish != engine::FinishReason::kNone) {
        if (o.finish == engine::FinishReason::kError) errors[i] = o.error;
        ++done;
        cv.notify_all();
      }
    };
    TURBINE_RETURN_IF_ERROR(eng.submit(std::move(r)));
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return done == ps.size(); });
  }
  const double secs = now_s() - t0;
  size_t n_out = 0;
  EngineRun run;
  for (size_t i = 0; i < ps.size(); ++i) {
    TURBINE_RETURN_IF_ERROR(errors[i]);
    if (print) {
      std::printf("seq %zu:", i);
      for (int32_t t : out[i]) std::printf(" %d", t);
      std::printf("\n");
    }
    n_out += out[i].size();
    if (static_cast<int>(out[i].size()) < params.max_tokens) run.n_stopped++;
  }
  run.n_tokens = n_out;
  if (n_out > tokens_at_start && t_started > t0)
    run.decode_tok_s = static_cast<double>(n_out - tokens_at_start) / (t0 + secs - t_started);
  std::fprintf(stderr, "engine: %zu sequences, %zu tokens in %.3f s (%.1f tok/s)\n", ps.size(),
               n_out, secs, static_cast<double>(n_out) / secs);
  if (n_out > tokens_at_start && t_started > t0)
    std::fprintf(stderr,
                 "engine decode (after every sequence's second token): %zu tokens in %.3f s "
                 "(%.1f tok/s)\n",
                 n_out - tokens_at_start, t0 + secs - t_started,
                 static_cast<double>(n_out - tokens_at_start) / (t0 + secs - t_started));
  return run;
}

engine::EngineOptions engine_options(const Args& a, size_t n_prompts) {
  engine::EngineOptions eo;
  eo.max_num_seqs = std::max<int>(1, std::min<int>(a.max_num_seqs, static_cast<int>(n_prompts)));
  eo.max_num_batched_tokens = a.max_num_batched_tokens;
  eo.mask_threads = a.mask_threads;
  return eo;
}

Status run_engine(std::unique_ptr<engine::Backend> b, const std::vector<std::vector<int32_t>>& ps,
                  const Args& a, int n_vocab) {
  engine::EngineOptions eo = engine_options(a, ps.size());
  TURBINE_RETURN_IF_ERROR(eo.validate());
  engine::Engine eng(std::move(b), n_vocab, eo);
  engine::SamplingParams p;
  p.temperature = 0.0f;
  p.max_tokens = a.max_tokens;
  p.ignore_eos = true;
  auto run = run_batch(eng, ps, p, 1, /*print=*/true);
  eng.shutdown();
  return run.status();
}

// An array of at least 64 objects: a few hundred tokens cannot close it, so every constrained
// sequence runs to max_tokens like the unconstrained ones (the same batch shape throughout).
constexpr const char* kBenchSchema = R"({"type":"array","minItems":64,"items":{"type":"object",
  "properties":{"name":{"type":"string","maxLength":24},"age":{"type":"integer","minimum":0,
  "maximum":120},"email":{"type":"string","format":"email"},"tags":{"type":"array","items":
  {"enum":["red","green","blue"]},"maxItems":4},"score":{"type":"number"}},
  "required":["name","age","tags"],"additionalProperties":false}})";

// --structured-ab: unconstrained, constrained, unconstrained, on one engine.
Status structured_ab(std::unique_ptr<engine::Backend> b, const model::Model& m,
                     const std::vector<std::vector<int32_t>>& ps, const Args& a) {
  auto tok = tokenizer::make_tokenizer(m.vocab());
  if (!tok) return tok.status();
  const double tc = now_s();
  TURBINE_ASSIGN_OR_RETURN(auto compiler,
                           structured::shared_compiler_for_model(**tok, m.config().n_vocab));
  engine::SamplingParams p;
  p.temperature = 1.0f;
  p.seed = a.seed + 1;
  p.max_tokens = a.max_tokens;
  p.ignore_eos = true;
  structured::ConstraintSpec spec{structured::ConstraintSpec::Kind::kJsonSchema, kBenchSchema};
  if (!a.constraint.empty()) {
    std::ifstream in(a.constraint);
    if (!in) return invalid_argument("cannot read " + a.constraint);
    spec.text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  TURBINE_RETURN_IF_ERROR(compiler->compile(spec).status());
  std::fprintf(stderr, "structured-ab: vocabulary + compile %.3f s\n", now_s() - tc);
  engine::EngineOptions eo = engine_options(a, ps.size());
  eo.grammar_compiler = compiler;
  TURBINE_RETURN_IF_ERROR(eo.validate());
  engine::Engine eng(std::move(b), m.config().n_vocab, eo);
  engine::SamplingParams constrained = p;
  constrained.constraint = spec;
  double tok_s[3] = {0, 0, 0};
  const engine::SamplingParams* order[3] = {&p, &constrained, &p};
  const char* names[3] = {"unconstrained", "constrained", "unconstrained again"};
  for (int k = 0; k < 3; ++k) {
    auto run = run_batch(eng, ps, *order[k], 1 + static_cast<uint64_t>(k) * ps.size(), false);
    if (!run) {
      eng.shutdown();
      return run.status();
    }
    tok_s[k] = run->decode_tok_s;
    std::printf("structured-ab %s: %zu sequences, %zu tokens, %zu ended early, decode %.1f tok/s\n",
                names[k], ps.size(), run->n_tokens, run->n_stopped, run->decode_tok_s);
  }
  eng.shutdown();
  const double base = std::max(tok_s[0], tok_s[2]);
  std::printf("structured-ab: constrained / unconstrained (the better of the two) = %.3f\n",
              base > 0 ? tok_s[1] / base : 0.0);
  return Status::ok();
}

Status bench_one(engine::Backend& b, const Args& a, int n_vocab, int n, int p, int o) {
  // Sequences [0, n) are measured; [n, n + n_warm) warm up the first prefill step's shape.
  const int n_warm = std::max(1, std::min(n, a.max_num_batched_tokens / p));
  Tables tables;
  TURBINE_RETURN_IF_ERROR(tables.init(b, n + n_warm, p + o + 1));
  std::mt19937 rng(static_cast<uint32_t>(a.seed + 1));
  std::uniform_int_distribution<int32_t> tok(3, n_vocab - 1);
  std::vector<std::vector<int32_t>> prompts(static_cast<size_t>(n + n_warm));
  for (auto& pr : prompts)
    for (int i = 0; i < p; ++i) pr.push_back(tok(rng));
  std::vector<float> logits;
  // --bench-device-sampling: greedy on the device (forward_sample), the engine's path.
  const bool dev_sample = a.device_sampling_bench && b.supports_sampling();
  std::vector<engine::RowSampling> greedy(static_cast<size_t>(n));
  for (auto& r : greedy) r.temperature = 0.0f;
  std::vector<int32_t> sampled;
  auto run_step = [&](const std::vector<engine::SeqChunk>& chunks) {
    if (!dev_sample) return b.forward(chunks, logits);
    return b.forward_sample(chunks,
                            std::span<const engine::RowSampling>(greedy.data(), chunks.size()),
                            sampled, logits);
  };
  // Warm-up (kernel loading, GEMM plans, caches) on the extra sequences' blocks: one prefill step
  // of the timed run's first shape (decode is reported as a median of steps). Then the timed
  // prefill: whole prompts batched up to max_num_batched_tokens per step.
  {
    std::vector<engine::SeqChunk> chunks;
    for (int s = n; s < n + n_warm; ++s)
      chunks.push_back(
          {tables.t[static_cast<size_t>(s)], 0, prompts[static_cast<size_t>(s)], true});
    TURBINE_RETURN_IF_ERROR(run_step(chunks));
  }
  profile_reset();
  const double t0 = now_s();
  for (int s = 0; s < n;) {
    std::vector<engine::SeqChunk> chunks;
    int tokens = 0;
    while (s < n && (chunks.empty() || tokens + p <= a.max_num_batched_tokens)) {
      chunks.push_back(
          {tables.t[static_cast<size_t>(s)], 0, prompts[static_cast<size_t>(s)], true});
      tokens += p;
      ++s;
    }
    TURBINE_RETURN_IF_ERROR(run_step(chunks));
  }
  const double t1 = now_s();
  profile_print("prefill " + std::to_string(n) + "x" + std::to_string(p));
  profile_reset();
  // Decode: every sequence one token per step; the fed token is the argmax of the last logits.
  std::vector<int32_t> next(static_cast<size_t>(n), 5);
  std::vector<double> step_times, host_times;  // forward() wall; the rest of each step
  const char* profile_env = std::getenv("TURBINE_PROFILE_DECODE_STEP");
  [[maybe_unused]] const int profile_step = profile_env != nullptr ? std::atoi(profile_env) : -1;
  double t_prev = now_s();  // end of the previous forward()
  for (int step = 0; step < o; ++step) {
    std::vector<engine::SeqChunk> chunks;
    for (int s = 0; s < n; ++s)
      chunks.push_back({tables.t[static_cast<size_t>(s)], p + step,
                        std::span<const int32_t>(&next[static_cast<size_t>(s)], 1), true});
#ifdef TURBINE_HAVE_CUDA
    if (step == profile_step) cudaProfilerStart();
#endif
    const double ts = now_s();
    if (step > 0) host_times.push_back(ts - t_prev);
    TURBINE_RETURN_IF_ERROR(run_step(chunks));
    t_prev = now_s();
    step_times.push_back(t_prev - ts);
    if (step == 0) profile_reset();  // the first decode step may capture or plan: left out
#ifdef TURBINE_HAVE_CUDA
    if (step == profile_step) cudaProfilerStop();
#endif
    for (int s = 0; s < n; ++s) {
      if (dev_sample) {
        next[static_cast<size_t>(s)] = sampled[static_cast<size_t>(s)];
        continue;
      }
      const float* r = logits.data() + static_cast<size_t>(s) * static_cast<size_t>(n_vocab);
      next[static_cast<size_t>(s)] = static_cast<int32_t>(std::max_element(r, r + n_vocab) - r);
    }
  }
  const double t2 = now_s();
  if (o > 1) profile_print("decode " + std::to_string(n) + " rows");
  std::sort(step_times.begin(), step_times.end());
  const double median = step_times.empty() ? 0.0 : step_times[step_times.size() / 2];
  double mean = 0.0;
  for (double x : step_times) mean += x / static_cast<double>(step_times.size());
  std::printf("bench %s: %d seqs x %d prompt tokens: prefill %.0f tok/s (%.3f s)\n",
              std::string(b.name()).c_str(), n, p, static_cast<double>(n) * p / (t1 - t0), t1 - t0);
  if (o > 0) {
    std::printf(
        "bench %s: %d seqs x %d output tokens: decode %.1f tok/s (%.3f s incl. %s); "
        "forward median %.3f ms (mean %.3f ms) = %.1f tok/s per sequence, %.1f tok/s total\n",
        std::string(b.name()).c_str(), n, o, static_cast<double>(n) * o / (t2 - t1), t2 - t1,
        dev_sample ? "device sampling" : "host argmax", median * 1e3, mean * 1e3, 1.0 / median,
        n / median);
    std::sort(host_times.begin(), host_times.end());
    double host_mean = 0.0;
    for (double x : host_times) host_mean += x / static_cast<double>(host_times.size());
    if (!host_times.empty())
      std::printf(
          "bench %s: %d seqs: host time between forward() calls (%s, next chunks): median %.3f "
          "ms, mean %.3f ms per step\n",
          std::string(b.name()).c_str(), n, dev_sample ? "token ids" : "argmax over the logits",
          host_times[host_times.size() / 2] * 1e3, host_mean * 1e3);
  }
  std::fflush(stdout);
  return Status::ok();
}

Status bench(engine::Backend& b, const Args& a, int n_vocab) {
  size_t i = 0;
  while (i < a.bench.size()) {
    size_t j = a.bench.find(',', i);
    if (j == std::string::npos) j = a.bench.size();
    int n = 0, p = 0, o = 0;
    const std::string spec = a.bench.substr(i, j - i);
    if (std::sscanf(spec.c_str(), "%dx%dx%d", &n, &p, &o) != 3 || n <= 0 || p <= 0 || o < 0)
      return invalid_argument("--bench: expected NxPxO, got '" + spec + "'");
    TURBINE_RETURN_IF_ERROR(bench_one(b, a, n_vocab, n, p, o));
    i = j + 1;
  }
  return Status::ok();
}

int run(const Args& a) {
  if (!a.gen_model.empty()) {
    model::RandomModelOptions o;
    auto arch = model::parse_arch(a.arch);
    auto dt = parse_dtype(a.dtype);
    if (!arch || !dt) usage(!arch ? arch.status().message() : dt.status().message());
    o.arch = *arch;
    o.dtype = *dt;
    o.shape = a.shape;
    o.seed = a.seed;
    o.tokenizer = a.tokenizer;
    auto q = model::parse_quantization(a.quantization);
    if (!q) usage(q.status().message());
    o.quantization = *q;
    const double t0 = now_s();
    auto bytes = model::write_random_model(o, a.gen_model);
    if (!bytes) {
      std::fprintf(stderr, "gen-model: %s\n", bytes.status().to_string().c_str());
      return 1;
    }
    std::fprintf(stderr, "gen-model: wrote %.2f GB to %s in %.1f s\n",
                 static_cast<double>(*bytes) / 1e9, a.gen_model.c_str(), now_s() - t0);
    return 0;
  }
  if (a.model.empty()) usage("--model is required");
  const double t0 = now_s();
  auto quant = model::parse_quantization(a.quantization);
  if (!quant) usage(quant.status().message());
  auto m = model::load_model(a.model, model::LoadOptions{.quantization = *quant});
  if (!m) {
    std::fprintf(stderr, "load: %s\n", m.status().to_string().c_str());
    return 1;
  }
  const int n_vocab = (*m)->config().n_vocab;
  std::vector<std::vector<int32_t>> prompts = a.prompt_ids;
  std::mt19937 prompt_rng(static_cast<uint32_t>(a.seed + 7));
  std::uniform_int_distribution<int32_t> prompt_tok(3, n_vocab - 1);
  for (int i = 0; i < a.random_n; ++i) {
    prompts.emplace_back();
    for (int j = 0; j < a.random_len; ++j) prompts.back().push_back(prompt_tok(prompt_rng));
  }
  if (!a.prompts.empty()) {
    auto tok = tokenizer::make_tokenizer((*m)->vocab());
    if (!tok) {
      std::fprintf(stderr, "tokenizer: %s\n", tok.status().to_string().c_str());
      return 1;
    }
    for (const auto& text : a.prompts) prompts.push_back((*tok)->encode(text, true));
  }
  auto b = make_backend(**m, a);
  if (!b) {
    std::fprintf(stderr, "backend: %s\n", b.status().to_string().c_str());
    return 1;
  }
  std::fprintf(stderr, "%s backend ready in %.2f s: %d KV blocks of %d\n",
               std::string((*b)->name()).c_str(), now_s() - t0, (*b)->num_blocks(),
               (*b)->block_size());
  Status st = Status::ok();
  if (!a.bench.empty()) {
    st = bench(**b, a, n_vocab);
  } else if (prompts.empty()) {
    usage("give --prompt-ids or --prompt (or --bench)");
  } else if (!a.dump_logits.empty()) {
    st = dump_logits(**b, prompts, a, n_vocab);
  } else if (a.structured_ab) {
    st = structured_ab(std::move(*b), **m, prompts, a);
  } else {
    st = run_engine(std::move(*b), prompts, a, n_vocab);
  }
  if (!st.is_ok()) {
    std::fprintf(stderr, "error: %s\n", st.to_string().c_str());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return run(parse(argc, argv));
}
