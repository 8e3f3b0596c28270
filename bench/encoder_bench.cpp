// encoder_bench: latency of one sequence classification on the CPU encoder backend (random
// weights in a ModernBERT-base shape by default: 22 layers, hidden 768, 12 heads, GeGLU 1152,
// every third layer global, the others a 128-token window), and its FLOP rate as a share of the
// CPU backend's own matrix-multiply peak measured in the same run.
//
//   encoder_bench [--tokens 64] [--iters 30] [--threads 0] [--layers 22] [--dim 768]
//                 [--ffn 1152] [--heads 12] [--labels 2] [--bert] [--json FILE]
//
// FLOPs counted: 2 per multiply-add of every weight matrix (Q, K, V, O, the MLP) and of the
// attention (QK^T and PV over each token's visible keys). The matmul peak is the best of
// engine::matmul over several large shapes on the same thread pool size (f32 weights). Latency:
// median and p90 over --iters runs after 3 warm-up runs, forward + classification head.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "encoder/cpu_encoder_backend.h"
#include "encoder/heads.h"
#include "engine/cpu_kernels.h"
#include "engine/cpu_thread_pool.h"

namespace {

using namespace turbine;
using Clock = std::chrono::steady_clock;

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "encoder_bench: %s\n(see the comment at the top of bench/encoder_bench.cpp)\n",
               why.c_str());
  std::exit(2);
}

// Owns random f32 tensors and hands out views.
struct Store {
  std::vector<std::vector<float>> buffers;
  std::mt19937 rng{1234};
  model::TensorView make(int64_t rows, int64_t cols, float scale, float offset = 0.0f) {
    std::normal_distribution<float> dist(0.0f, 1.0f);
    buffers.emplace_back(static_cast<size_t>(rows * cols));
    for (float& v : buffers.back()) v = offset + scale * dist(rng);
    model::TensorView t;
    t.dtype = model::DType::kF32;
    t.rows = rows;
    t.cols = cols;
    t.data = buffers.back().data();
    t.size_bytes = buffers.back().size() * sizeof(float);
    t.name = "random";
    return t;
  }
};

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Best GFLOP/s of engine::matmul over a few large shapes.
double matmul_peak(int threads) {
  engine::CpuThreadPool pool(threads);
  std::vector<std::vector<float>> scratch;
  Store store;
  double best = 0.0;
  const int shapes[][3] = {{64, 768, 2304}, {256, 768, 2304}, {512, 1024, 4096}, {128, 768, 3072}};
  for (const auto& s : shapes) {
    const int m = s[0], k = s[1], n = s[2];
    const model::TensorView w = store.make(n, k, 0.02f);
    std::vector<float> x(static_cast<size_t>(m) * k, 0.5f), y(static_cast<size_t>(m) * n);
    for (int i = 0; i < 2; ++i) engine::matmul(pool, x.data(), m, w, y.data(), scratch);
    const int reps = std::max(3, static_cast<int>(2e9 / (2.0 * m * k * n)));
    const auto t0 = Clock::now();
    for (int i = 0; i < reps; ++i) engine::matmul(pool, x.data(), m, w, y.data(), scratch);
    const double gflops = 2.0 * m * k * n * reps / seconds_since(t0) / 1e9;
    std::printf("  matmul %4d x %4d x %4d: %7.1f GFLOP/s\n", m, k, n, gflops);
    best = std::max(best, gflops);
    store.buffers.pop_back();
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  int tokens = 64, iters = 30, threads = 0, layers = 22, dim = 768, ffn = 1152, heads = 12,
      labels = 2;
  bool bert = false;
  std::string json_path;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto next = [&]() -> std::string {
      if (i + 1 >= argc) usage("missing value for " + a);
      return argv[++i];
    };
    if (a == "--tokens")
      tokens = std::atoi(next().c_str());
    else if (a == "--iters")
      iters = std::atoi(next().c_str());
    else if (a == "--threads")
      threads = std::atoi(next().c_str());
    else if (a == "--layers")
      layers = std::atoi(next().c_str());
    else if (a == "--dim")
      dim = std::atoi(next().c_str());
    else if (a == "--ffn")
      ffn = std::atoi(next().c_str());
    else if (a == "--heads")
      heads = std::atoi(next().c_str());
    else if (a == "--labels")
      labels = std::atoi(next().c_str());
    else if (a == "--bert")
      bert = true;
    else if (a == "--json")
      json_path = next();
    else
      usage("unknown flag " + a);
  }
  if (tokens <= 0 || iters <= 0 || layers <= 0 || dim <= 0 || heads <= 0 || dim % heads != 0)
    usage("bad sizes");
  if (threads == 0) threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));

  encoder::EncoderConfig c;
  c.arch = bert ? encoder::EncoderArch::kBert : encoder::EncoderArch::kModernBert;
  c.head = encoder::HeadKind::kSequenceClassification;
  c.vocab_size = 50368;
  c.dim = dim;
  c.n_layers = layers;
  c.n_heads = heads;
  c.head_dim = dim / heads;
  c.ffn_dim = ffn;
  c.max_positions = 8192;
  c.type_vocab_size = bert ? 2 : 0;
  c.norm_eps = 1e-5f;
  c.local_window = 128;
  c.layer_local.assign(static_cast<size_t>(layers), false);
  for (int l = 0; l < layers; ++l) c.layer_local[static_cast<size_t>(l)] = !bert && l % 3 != 0;
  for (int i = 0; i < labels; ++i) c.labels.push_back("LABEL_" + std::to_string(i));

  Store store;
  encoder::EncoderWeights w;
  const float s = 0.02f;
  w.word_emb = store.make(c.vocab_size, dim, s);
  if (bert) {
    w.pos_emb = store.make(c.max_positions, dim, s);
    w.type_emb = store.make(2, dim, s);
  }
  w.emb_norm = {store.make(1, dim, 0.1f, 1.0f),
                bert ? store.make(1, dim, 0.1f) : model::TensorView{}};
  for (int l = 0; l < layers; ++l) {
    encoder::EncoderLayer L;
    const auto bias = [&](int n) { return bert ? store.make(1, n, s) : model::TensorView{}; };
    L.q = {store.make(dim, dim, s), bias(dim)};
    L.k = {store.make(dim, dim, s), bias(dim)};
    L.v = {store.make(dim, dim, s), bias(dim)};
    L.o = {store.make(dim, dim, s), bias(dim)};
    if (bert || l > 0) L.attn_norm = {store.make(1, dim, 0.1f, 1.0f), bias(dim)};
    L.up = {store.make(ffn, dim, s), bias(ffn)};
    if (!bert) L.gate = {store.make(ffn, dim, s), {}};
    L.down = {store.make(dim, ffn, s), bias(dim)};
    L.ffn_norm = {store.make(1, dim, 0.1f, 1.0f), bias(dim)};
    w.layers.push_back(L);
  }
  if (!bert) w.final_norm = {store.make(1, dim, 0.1f, 1.0f), {}};
  if (bert) {
    w.pooler = {store.make(dim, dim, s), store.make(1, dim, s)};
  } else {
    w.head_dense = {store.make(dim, dim, s), {}};
    w.head_norm = {store.make(1, dim, 0.1f, 1.0f), {}};
  }
  w.classifier = {store.make(labels, dim, s), store.make(1, labels, s)};

  encoder::CpuEncoderOptions o;
  o.n_threads = threads;
  auto backend = encoder::make_cpu_encoder_backend(c, w, o);
  if (!backend.has_value()) usage(backend.status().to_string());
  auto heads_r = encoder::Heads::create(c, w);
  if (!heads_r.has_value()) usage(heads_r.status().to_string());
  const encoder::Heads& head = *heads_r;

  encoder::EncoderBatch batch;
  batch.clear();
  std::mt19937 rng(7);
  for (int t = 0; t < tokens; ++t) batch.ids.push_back(static_cast<int32_t>(rng() % 50000));
  batch.type_ids.assign(batch.ids.size(), 0);
  batch.seq_begin.push_back(tokens);
  batch.outputs.push_back(head.sequence_output());

  std::vector<float> out;
  std::vector<double> times;
  float sink = 0.0f;
  for (int i = 0; i < iters + 3; ++i) {
    const auto t0 = Clock::now();
    const Status st = (*backend)->forward(batch, out);
    if (!st.is_ok()) usage(st.to_string());
    sink += head.sequence_logits(out.data())[0];
    if (i >= 3) times.push_back(seconds_since(t0));
  }
  std::sort(times.begin(), times.end());
  const double median = times[times.size() / 2];
  const double p90 = times[std::min(times.size() - 1, times.size() * 9 / 10)];

  // FLOPs of one forward.
  const double n = tokens;
  double flops = 0.0;
  const double per_token_weights =
      4.0 * dim * dim + (bert ? 2.0 : 3.0) * static_cast<double>(dim) * ffn;
  flops += 2.0 * n * per_token_weights * layers;
  for (int l = 0; l < layers; ++l) {
    double keys = n;  // per query, on average
    if (c.layer_local[static_cast<size_t>(l)] && n > c.local_window / 2 + 1) {
      keys = 0.0;
      for (int i = 0; i < tokens; ++i) {
        const int lo = std::max(0, i - c.local_window / 2);
        const int hi = std::min(tokens, i + c.local_window / 2 + 1);
        keys += hi - lo;
      }
      keys /= n;
    }
    flops += 2.0 * 2.0 * n * keys * dim;
  }
  const double gflops = flops / median / 1e9;

  std::printf(
      "encoder_bench: %s shape, %d layers, dim %d, ffn %d, %d heads, %d tokens, %d threads "
      "(%s kernels)\n",
      bert ? "BERT" : "ModernBERT", layers, dim, ffn, heads, tokens, threads,
      engine::cpu_simd_level());
  std::printf("matmul peak (same pool size):\n");
  const double peak = matmul_peak(threads);
  std::printf("classification latency: median %.2f ms, p90 %.2f ms (%d runs)\n", median * 1e3,
              p90 * 1e3, iters);
  std::printf(
      "FLOPs per classification: %.2f GFLOP -> %.1f GFLOP/s = %.0f%% of the matmul peak "
      "%.1f GFLOP/s\n",
      flops / 1e9, gflops, 100.0 * gflops / peak, peak);
  if (!json_path.empty()) {
    std::ofstream js(json_path);
    js << "{\"arch\":\"" << (bert ? "bert" : "modernbert") << "\",\"tokens\":" << tokens
       << ",\"threads\":" << threads << ",\"median_ms\":" << median * 1e3
       << ",\"p90_ms\":" << p90 * 1e3 << ",\"gflop\":" << flops / 1e9 << ",\"gflops\":" << gflops
       << ",\"matmul_peak_gflops\":" << peak << ",\"share_of_peak\":" << gflops / peak << "}\n";
  }
  return sink == 12345.0f ? 1 : 0;
}
