// encoder_bench: latency of one sequence classification on the CPU encoder backend (random
// weights in a ModernBERT-base shape by default: 22 layers, hidden 768, 12 heads, GeGLU 1152,
// every third layer global, the others a 128-token window), and its FLOP rate as a share of the
// CPU backend's own matrix-multiply peak measured in the same run.
//
//   encoder_bench [--tokens 64] [--iters 30] [--threads 0] [--layers 22] [--dim 768]
//                 [--ffn 1152] [--heads 12] [--labels 2] [--bert] [--json FILE]
//
// FLOPs counted: 2 per multiply-add of every weight matrix (Q, K, V, O, the MLP) and of the
// attention (QK^T and PV over each token's visible keys). The peak is engine::matmul on the same
// thread pool size (f32 weights): first a scan over a few large shapes, then the best shape timed
// once after every classification, so that both see the same contention on a shared machine.
// Reported: latency (median and p90 wall time over --iters runs after 3 warm-up runs, forward +
// classification head) and the FLOP rate as a share of the peak, from wall time and from process
// CPU time (the latter does not count time spent waiting for a core).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
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

double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Shape {
  int m, k, n;
};

// The shape engine::matmul runs fastest (GFLOP/s printed for each).
Shape best_shape(engine::CpuThreadPool& pool) {
  std::vector<std::vector<float>> scratch;
  Store store;
  double best = 0.0;
  Shape best_s{256, 768, 2304};
  const Shape shapes[] = {{64, 768, 2304}, {256, 768, 2304}, {512, 1024, 4096}, {128, 768, 3072}};
  for (const Shape& s : shapes) {
    const model::TensorView w = store.make(s.n, s.k, 0.02f);
    std::vector<float> x(static_cast<size_t>(s.m) * s.k, 0.5f), y(static_cast<size_t>(s.m) * s.n);
    for (int i = 0; i < 2; ++i) engine::matmul(pool, x.data(), s.m, w, y.data(), scratch);
    const int reps = std::max(3, static_cast<int>(1e9 / (2.0 * s.m * s.k * s.n)));
    const auto t0 = Clock::now();
    for (int i = 0; i < reps; ++i) engine::matmul(pool, x.data(), s.m, w, y.data(), scratch);
    const double gflops = 2.0 * s.m * s.k * s.n * reps / seconds_since(t0) / 1e9;
    std::printf("  matmul %4d x %4d x %4d: %7.1f GFLOP/s\n", s.m, s.k, s.n, gflops);
    if (gflops > best) {
      best = gflops;
      best_s = s;
    }
    store.buffers.pop_back();
  }
  return best_s;
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

  std::printf("matmul shapes (same pool size, scan):\n");
  engine::CpuThreadPool peak_pool(threads);
  const Shape ps = best_shape(peak_pool);
  Store peak_store;
  const model::TensorView peak_w = peak_store.make(ps.n, ps.k, 0.02f);
  std::vector<float> peak_x(static_cast<size_t>(ps.m) * ps.k, 0.5f),
      peak_y(static_cast<size_t>(ps.m) * ps.n);
  std::vector<std::vector<float>> peak_scratch;
  const double peak_flop = 2.0 * ps.m * ps.k * ps.n;

  std::vector<float> out;
  std::vector<double> times, cpu_times, peak_times, peak_cpu_times;
  float sink = 0.0f;
  for (int i = 0; i < iters + 3; ++i) {
    const auto t0 = Clock::now();
    const double c0 = cpu_seconds();
    const Status st = (*backend)->forward(batch, out);
    if (!st.is_ok()) usage(st.to_string());
    sink += head.sequence_logits(out.data())[0];
    const double wall = seconds_since(t0), cpu = cpu_seconds() - c0;
    const auto t1 = Clock::now();
    const double c1 = cpu_seconds();
    engine::matmul(peak_pool, peak_x.data(), ps.m, peak_w, peak_y.data(), peak_scratch);
    const double peak_wall = seconds_since(t1), peak_cpu = cpu_seconds() - c1;
    if (i < 3) continue;
    times.push_back(wall);
    cpu_times.push_back(cpu);
    peak_times.push_back(peak_wall);
    peak_cpu_times.push_back(peak_cpu);
  }
  std::vector<double> sorted = times;
  std::sort(sorted.begin(), sorted.end());
  const double median_s = sorted[sorted.size() / 2];
  const double p90 = sorted[std::min(sorted.size() - 1, sorted.size() * 9 / 10)];

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
  const double gflops = flops / median_s / 1e9;
  const double peak = peak_flop / median(peak_times) / 1e9;
  const double share_wall = gflops / peak;
  const double share_cpu = (flops / median(cpu_times)) / (peak_flop / median(peak_cpu_times));

  std::printf(
      "encoder_bench: %s shape, %d layers, dim %d, ffn %d, %d heads, %d tokens, %d threads "
      "(%s kernels)\n",
      bert ? "BERT" : "ModernBERT", layers, dim, ffn, heads, tokens, threads,
      engine::cpu_simd_level());
  std::printf("classification latency: median %.2f ms, p90 %.2f ms (%d runs)\n", median_s * 1e3,
              p90 * 1e3, iters);
  std::printf(
      "FLOPs per classification: %.2f GFLOP; %.1f GFLOP/s vs matmul %d x %d x %d "
      "interleaved: %.1f GFLOP/s\n",
      flops / 1e9, gflops, ps.m, ps.k, ps.n, peak);
  std::printf("share of the matmul peak: %.0f%% (wall time), %.0f%% (CPU time)\n",
              100.0 * share_wall, 100.0 * share_cpu);
  if (!json_path.empty()) {
    std::ofstream js(json_path);
    js << "{\"arch\":\"" << (bert ? "bert" : "modernbert") << "\",\"tokens\":" << tokens
       << ",\"threads\":" << threads << ",\"median_ms\":" << median_s * 1e3
       << ",\"p90_ms\":" << p90 * 1e3 << ",\"gflop\":" << flops / 1e9 << ",\"gflops\":" << gflops
       << ",\"matmul_peak_gflops\":" << peak << ",\"share_of_peak_wall\":" << share_wall
       << ",\"share_of_peak_cpu\":" << share_cpu << "}\n";
  }
  return sink == 12345.0f ? 1 : 0;
}
