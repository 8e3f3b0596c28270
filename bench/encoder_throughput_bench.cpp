// encoder_throughput_bench: embeddings per second through the serving path (EncoderService:
// EncoderEngine's padding-free batches under the token budget, the backend, pooling and
// normalisation) for a list of token-id inputs, on the CPU or CUDA encoder backend.
//
//   encoder_throughput_bench --model DIR --inputs FILE [--device cpu|cuda] [--dtype bf16|f16|f32]
//       [--reps 5] [--warmup 2] [--max-batch-tokens 32768] [--max-batch-seqs 256] [--threads 0]
//       [--no-tc-attention] [--bias-epilogue] [--scalar-kernels] [--prune-last-layer]
//       [--tune-gemms] [--separate-qkv-bias] [--profile-ops]
//       [--dump FILE] [--dump-n 16] [--json FILE]
//
// DIR is a Hugging Face encoder folder (config.json, safetensors, tokenizer.json); FILE is a JSON
// array of token-id arrays (tests/gpu/encoder_vs_st.py writes both, and feeds the same inputs to
// sentence-transformers). Every rep submits all inputs as one call and waits for the last
// vector; reported: the median rep's wall time, embeddings/s and tokens/s (reps after --warmup
// unmeasured ones). --dump writes the first --dump-n embeddings (for a parity check against
// another implementation).
//
// CUDA switches (cuda/cuda_encoder_backend.h): --bias-epilogue adds the Q/K/V and FFN-up biases
// in cuBLASLt's epilogue; --scalar-kernels runs the scalar bias+activation and add+LayerNorm
// kernels instead of the 16-byte ones (the default; --vector-kernels says so explicitly);
// --prune-last-layer runs BERT's last O projection and FFN over the pooled (CLS) rows only;
// --tune-gemms times cuBLASLt's candidates once per GEMM shape (during the warm-up reps when the
// batches repeat); --separate-qkv-bias adds BERT's Q/K/V biases in their own pass over the QKV
// rows instead of inside the attention kernel (the default).
// --profile-ops records every op's GPU time with CUDA events (cuda/op_timer.h) over the measured
// reps and prints a table: op, calls, total ms, share of the forward passes' wall time, achieved
// TFLOP/s (GEMMs, attention: 2 m n k, 4 len^2 dim) or GB/s (element-wise: bytes read + written);
// then the forwards' wall time against the GPU-busy sum (host gaps inside forward()) and the
// calls' wall time against the forwards' (time outside forward(): batch forming, callbacks). The
// events cost a little: compare throughput between runs without --profile-ops.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "encoder/encoder_model.h"
#include "encoder/encoder_service.h"
#ifdef TURBINE_HAVE_CUDA
#include "cuda/cuda_encoder_backend.h"
#endif

namespace {

using namespace turbine;
using Clock = std::chrono::steady_clock;

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "encoder_throughput_bench: %s\n(see the comment at the top of "
               "bench/encoder_throughput_bench.cpp)\n",
               why.c_str());
  std::exit(2);
}

struct Options {
  std::string model, inputs, device = "cpu", dtype = "bf16", dump, json;
  int reps = 5, warmup = 2, max_batch_tokens = 32768, max_batch_seqs = 256, threads = 0;
  int dump_n = 16;
  bool tc_attention = true;
  bool bias_epilogue = false, vector_kernels = true, prune_last_layer = false, tune_gemms = false;
  bool fused_qkv_bias = true;
  bool profile_ops = false;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(a + " needs a value");
      return argv[++i];
    };
    if (a == "--model") {
      o.model = value();
    } else if (a == "--inputs") {
      o.inputs = value();
    } else if (a == "--device") {
      o.device = value();
    } else if (a == "--dtype") {
      o.dtype = value();
    } else if (a == "--reps") {
      o.reps = std::stoi(value());
    } else if (a == "--warmup") {
      o.warmup = std::stoi(value());
    } else if (a == "--max-batch-tokens") {
      o.max_batch_tokens = std::stoi(value());
    } else if (a == "--max-batch-seqs") {
      o.max_batch_seqs = std::stoi(value());
    } else if (a == "--threads") {
      o.threads = std::stoi(value());
    } else if (a == "--no-tc-attention") {
      o.tc_attention = false;
    } else if (a == "--bias-epilogue") {
      o.bias_epilogue = true;
    } else if (a == "--vector-kernels") {
      o.vector_kernels = true;
    } else if (a == "--scalar-kernels") {
      o.vector_kernels = false;
    } else if (a == "--separate-qkv-bias") {
      o.fused_qkv_bias = false;
    } else if (a == "--prune-last-layer") {
      o.prune_last_layer = true;
    } else if (a == "--tune-gemms") {
      o.tune_gemms = true;
    } else if (a == "--profile-ops") {
      o.profile_ops = true;
    } else if (a == "--dump") {
      o.dump = value();
    } else if (a == "--dump-n") {
      o.dump_n = std::stoi(value());
    } else if (a == "--json") {
      o.json = value();
    } else {
      usage("unknown option " + a);
    }
  }
  if (o.model.empty() || o.inputs.empty()) usage("--model and --inputs are required");
  if (o.reps < 1 || o.warmup < 0) usage("--reps must be >= 1");
  return o;
}

#ifdef TURBINE_HAVE_CUDA
std::shared_ptr<cuda::OpTimer> g_profile;  // --profile-ops with --device cuda
#endif

Result<std::unique_ptr<encoder::EncoderBackend>> make_backend(const encoder::EncoderModel& m,
                                                              const Options& o) {
  if (o.device == "cpu") {
    encoder::EncoderBackendOptions b;
    b.n_threads = o.threads;
    b.max_batch_tokens = o.max_batch_tokens;
    return encoder::make_encoder_backend(m, b);
  }
#ifdef TURBINE_HAVE_CUDA
  if (o.device == "cuda") {
    if (m.weights() == nullptr) return unimplemented("decoder embedders run on the CPU");
    cuda::CudaEncoderOptions c;
    c.dtype = o.dtype == "f32"   ? model::DType::kF32
              : o.dtype == "f16" ? model::DType::kF16
                                 : model::DType::kBF16;
    c.max_batch_tokens = o.max_batch_tokens;
    c.tensor_core_attention = o.tc_attention;
    c.bias_epilogue = o.bias_epilogue;
    c.vector_kernels = o.vector_kernels;
    c.prune_last_layer = o.prune_last_layer;
    c.fused_qkv_bias = o.fused_qkv_bias;
    c.tune_gemms = o.tune_gemms;
    if (o.profile_ops) {
      g_profile = std::make_shared<cuda::OpTimer>();
      c.profile = g_profile;
    }
    return cuda::make_cuda_encoder_backend(m.config(), *m.weights(), c);
  }
#endif
  return invalid_argument("--device must be cpu" +
#ifdef TURBINE_HAVE_CUDA
                          std::string(" or cuda")
#else
                          std::string(" (this build has no CUDA)")
#endif
  );
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  std::ifstream in(o.inputs);
  if (!in) usage("cannot open " + o.inputs);
  std::stringstream ss;
  ss << in.rdbuf();
  const nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, false);
  if (!j.is_array() || j.empty()) usage(o.inputs + ": expected a JSON array of token-id arrays");
  std::vector<std::vector<int32_t>> inputs;
  int64_t tokens = 0;
  int longest = 0;
  for (const auto& row : j) {
    inputs.push_back(row.get<std::vector<int32_t>>());
    tokens += static_cast<int64_t>(inputs.back().size());
    longest = std::max(longest, static_cast<int>(inputs.back().size()));
  }

  auto loaded = encoder::EncoderModel::load(o.model);
  if (!loaded) usage(loaded.status().to_string());
  std::shared_ptr<const encoder::EncoderModel> model(std::move(loaded).value());
  auto backend = make_backend(*model, o);
  if (!backend) usage(backend.status().to_string());
  encoder::EncoderServiceOptions so;
  so.engine.max_batch_tokens = o.max_batch_tokens;
  so.engine.max_batch_seqs = o.max_batch_seqs;
  so.max_inputs = std::max<size_t>(so.max_inputs, inputs.size());
  so.engine.max_queue = std::max<size_t>(so.engine.max_queue, inputs.size());
  encoder::EncoderService service(model, std::move(backend).value(), so);

  std::vector<double> ms;
  std::vector<encoder::Embedding> last;
  for (int r = 0; r < o.warmup + o.reps; ++r) {
#ifdef TURBINE_HAVE_CUDA
    if (g_profile && r == o.warmup) g_profile->reset();  // the measured reps only
#endif
    const auto t0 = Clock::now();
    auto out = service.embed_tokens(inputs);
    const double t = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    if (!out) usage(out.status().to_string());
    if (r >= o.warmup) ms.push_back(t);
    last = std::move(out).value();
  }
  std::vector<double> sorted = ms;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted[sorted.size() / 2];
  const double eps = static_cast<double>(inputs.size()) / (median / 1000.0);
  const double tps = static_cast<double>(tokens) / (median / 1000.0);
  const encoder::EncoderEngineStats st = service.stats();
  std::printf(
      "%s %s %s: %zu inputs, %lld tokens (longest %d): median %.2f ms (min %.2f, max %.2f) over "
      "%d reps: %.1f embeddings/s, %.0f tokens/s; %.1f batches per call\n",
      model->config().arch_name.c_str(), o.device.c_str(), o.dtype.c_str(), inputs.size(),
      static_cast<long long>(tokens), longest, median, sorted.front(), sorted.back(), o.reps, eps,
      tps, static_cast<double>(st.batches) / static_cast<double>(o.warmup + o.reps));
  nlohmann::json profile = nlohmann::json::array();
#ifdef TURBINE_HAVE_CUDA
  if (g_profile) {
    double calls_ms = 0.0;
    for (double t : ms) calls_ms += t;
    const double wall = g_profile->wall_ms(), busy = g_profile->busy_ms();
    std::printf("%-16s %7s %10s %8s %12s\n", "op", "calls", "total ms", "% wall", "achieved");
    for (const cuda::OpTimer::Row& row : g_profile->rows()) {
      const double sec = row.ms / 1000.0;
      const double rate = sec <= 0.0 ? 0.0
                          : row.gemm ? row.flops / sec / 1e12
                                     : row.bytes / sec / 1e9;
      std::printf("%-16s %7lld %10.2f %7.1f%% %8.1f %s\n", row.name.c_str(),
                  static_cast<long long>(row.calls), row.ms, wall > 0 ? 100.0 * row.ms / wall : 0.0,
                  rate, row.gemm ? "TFLOP/s" : "GB/s");
      profile.push_back({{"op", row.name},
                         {"calls", row.calls},
                         {"ms", row.ms},
                         {"share_of_forward_wall", wall > 0 ? row.ms / wall : 0.0},
                         {row.gemm ? "tflops" : "gbps", rate}});
    }
    std::printf(
        "forward(): %lld passes, wall %.2f ms, GPU busy %.2f ms (%.1f%%; the rest is host time "
        "inside forward() or GPU idle); calls' wall %.2f ms, %.1f%% of it inside forward()\n",
        static_cast<long long>(g_profile->passes()), wall, busy,
        wall > 0 ? 100.0 * busy / wall : 0.0, calls_ms,
        calls_ms > 0 ? 100.0 * wall / calls_ms : 0.0);
  }
#endif
  if (!o.json.empty()) {
    nlohmann::json r = {{"model", o.model},
                        {"arch", model->config().arch_name},
                        {"device", o.device},
                        {"dtype", o.dtype},
                        {"inputs", inputs.size()},
                        {"tokens", tokens},
                        {"median_ms", median},
                        {"min_ms", sorted.front()},
                        {"max_ms", sorted.back()},
                        {"reps_ms", ms},
                        {"embeddings_per_s", eps},
                        {"tokens_per_s", tps},
                        {"max_batch_tokens", o.max_batch_tokens},
                        {"tc_attention", o.tc_attention},
                        {"bias_epilogue", o.bias_epilogue},
                        {"vector_kernels", o.vector_kernels},
                        {"prune_last_layer", o.prune_last_layer},
                        {"tune_gemms", o.tune_gemms},
                        {"fused_qkv_bias", o.fused_qkv_bias},
                        {"batches_per_call",
                         static_cast<double>(st.batches) / static_cast<double>(o.warmup + o.reps)}};
    if (!profile.empty()) r["profile"] = profile;
    std::ofstream(o.json) << r.dump(1) << "\n";
  }
  if (!o.dump.empty()) {
    nlohmann::json d = nlohmann::json::array();
    for (size_t i = 0; i < last.size() && static_cast<int>(i) < o.dump_n; ++i)
      d.push_back(last[i].vector);
    std::ofstream(o.dump) << d.dump() << "\n";
  }
  service.shutdown();
  return 0;
}
