// The CUDA encoder path (issue 27) against the CPU encoder backend and a double-precision
// attention reference:
//   * varlen_attention (tensor cores for F16/BF16 head_dim 64/128, CUDA cores otherwise) over
//     packed sequences of mixed lengths, global and sliding-window;
//   * the whole backend on the committed tiny checkpoints (tests/fixtures/encoders: BERT,
//     RoBERTa cross-encoder, ModernBERT, with their heads' inputs: CLS, mean, every token) and on
//     random BERT / ModernBERT weights with head_dim 64, which take the tensor-core attention and
//     ModernBERT's local windows, in F32 (1e-4) and BF16 / F16 (relative L2 error per sequence).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "cuda/cuda_encoder_backend.h"
#include "cuda/encoder_attention.h"
#include "cuda_test_util.h"
#include "encoder/cpu_encoder_backend.h"
#include "encoder/encoder_model.h"

namespace turbine::cuda {
namespace {

namespace fs = std::filesystem;
using testing::CudaTest;
using testing::download;
using testing::dtype_label;
using testing::random_values;
using testing::upload;
using testing::upload_raw;

const fs::path kFixtures = fs::path(TURBINE_SOURCE_DIR) / "tests" / "fixtures" / "encoders";

// Relative L2 error of one sequence's rows; the tolerance of a stack of BF16 layers.
double tolerance_of(model::DType d) {
  return d == model::DType::kF32 ? 1e-4 : d == model::DType::kF16 ? 1e-2 : 4e-2;
}

double rel_l2(const float* got, const float* want, size_t n) {
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(got[i])) return INFINITY;
    const double e = static_cast<double>(got[i]) - want[i];
    num += e * e;
    den += static_cast<double>(want[i]) * want[i];
  }
  return den == 0.0 ? std::sqrt(num) : std::sqrt(num / den);
}

// ---- attention ------------------------------------------------------------------------------

// out[t][h] = softmax(q k^T * scale over the visible keys of t's sequence) v, in double.
std::vector<double> reference_attention(const std::vector<float>& qkv,
                                        const std::vector<int32_t>& begin, int n_heads,
                                        int head_dim, int half_window, float scale) {
  const int d = n_heads * head_dim;
  const int n = begin.back();
  std::vector<double> out(static_cast<size_t>(n) * d, 0.0);
  for (size_t s = 0; s + 1 < begin.size(); ++s) {
    const int b = begin[s], len = begin[s + 1] - b;
    for (int h = 0; h < n_heads; ++h) {
      for (int i = 0; i < len; ++i) {
        const int lo = half_window < 0 ? 0 : std::max(0, i - half_window);
        const int hi = half_window < 0 ? len : std::min(len, i + half_window + 1);
        const float* q = &qkv[static_cast<size_t>(b + i) * 3 * d + h * head_dim];
        std::vector<double> p(static_cast<size_t>(hi - lo));
        double mx = -INFINITY;
        for (int j = lo; j < hi; ++j) {
          const float* k = &qkv[static_cast<size_t>(b + j) * 3 * d + d + h * head_dim];
          double dot = 0.0;
          for (int c = 0; c < head_dim; ++c) dot += static_cast<double>(q[c]) * k[c];
          p[static_cast<size_t>(j - lo)] = dot * scale;
          mx = std::max(mx, dot * scale);
        }
        double sum = 0.0;
        for (double& x : p) sum += (x = std::exp(x - mx));
        double* o = &out[static_cast<size_t>(b + i) * d + h * head_dim];
        for (int j = lo; j < hi; ++j) {
          const float* v = &qkv[static_cast<size_t>(b + j) * 3 * d + 2 * d + h * head_dim];
          for (int c = 0; c < head_dim; ++c) o[c] += p[static_cast<size_t>(j - lo)] / sum * v[c];
        }
      }
    }
  }
  return out;
}

class CudaEncoderAttentionTest : public CudaTest {};

TEST_F(CudaEncoderAttentionTest, PackedSequencesMatchTheReference) {
  std::mt19937 rng(7);
  const std::vector<int> lens = {1, 17, 64, 65, 200, 3, 513};
  std::vector<int32_t> begin = {0};
  for (int l : lens) begin.push_back(begin.back() + l);
  const int n = begin.back();
  struct Case {
    model::DType dtype;
    int head_dim;
    bool tensor_cores;
  };
  const Case cases[] = {{model::DType::kBF16, 64, true},  {model::DType::kF16, 64, true},
                        {model::DType::kBF16, 128, true}, {model::DType::kBF16, 64, false},
                        {model::DType::kF32, 64, false},  {model::DType::kF32, 8, false},
                        {model::DType::kBF16, 8, true}};
  for (const Case& c : cases) {
    for (int half_window : {-1, 64, 5}) {
      SCOPED_TRACE(std::string(dtype_label(c.dtype)) + " head_dim " + std::to_string(c.head_dim) +
                   (c.tensor_cores ? " tc" : " simt") + " half_window " +
                   std::to_string(half_window));
      const int n_heads = 3, d = n_heads * c.head_dim;
      auto qkv = random_values(rng, static_cast<size_t>(n) * 3 * d, c.dtype, -2.0f, 2.0f);
      auto dqkv = upload(c.dtype, qkv);
      auto dbegin = upload_raw(begin);
      auto dout = testing::poisoned(c.dtype, static_cast<size_t>(n) * d);
      VarlenAttentionArgs a;
      a.dtype = c.dtype;
      a.out = dout.data();
      a.q = dqkv.data();
      a.k = static_cast<const uint8_t*>(dqkv.data()) + d * dtype_bytes(c.dtype);
      a.v = static_cast<const uint8_t*>(dqkv.data()) + 2 * d * dtype_bytes(c.dtype);
      a.qkv_stride = 3 * d;
      a.seq_begin = dbegin.as<int32_t>();
      a.n_seqs = static_cast<int>(lens.size());
      a.max_seq_len = *std::max_element(lens.begin(), lens.end());
      a.n_heads = n_heads;
      a.head_dim = c.head_dim;
      a.half_window = half_window;
      a.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
      a.tensor_cores = c.tensor_cores;
      const bool tc = c.tensor_cores && c.dtype != model::DType::kF32 && c.head_dim % 64 == 0;
      EXPECT_EQ(varlen_attention_uses_tensor_cores(a), tc);
      ASSERT_TRUE(varlen_attention(stream(), a).is_ok());
      const auto out = download(c.dtype, dout, static_cast<size_t>(n) * d);
      const auto ref = reference_attention(qkv, begin, n_heads, c.head_dim, half_window, a.scale);
      EXPECT_LT(testing::rel_error(out, ref), testing::tolerance(c.dtype));
    }
  }
}

// The Q/K/V biases given to the kernel (VarlenAttentionArgs::qkv_bias) against the reference
// over q + b_q, k + b_k, v + b_v: on tensor cores K's bias is dropped (softmax's invariance) and
// V's added to the output, so biases as large as the inputs check that the shortcuts hold.
TEST_F(CudaEncoderAttentionTest, BiasesInsideTheKernelMatchBiasedInputs) {
  std::mt19937 rng(9);
  const std::vector<int> lens = {1, 17, 65, 200, 130};
  std::vector<int32_t> begin = {0};
  for (int l : lens) begin.push_back(begin.back() + l);
  const int n = begin.back();
  for (model::DType dt : testing::kAllDTypes) {
    for (bool tensor_cores : {true, false}) {
      for (int half_window : {-1, 20}) {
        SCOPED_TRACE(std::string(dtype_label(dt)) + (tensor_cores ? " tc" : " simt") +
                     " half_window " + std::to_string(half_window));
        const int n_heads = 2, head_dim = 64, d = n_heads * head_dim;
        auto qkv = random_values(rng, static_cast<size_t>(n) * 3 * d, dt, -2.0f, 2.0f);
        auto bias = random_values(rng, static_cast<size_t>(3) * d, dt, -1.0f, 1.0f);
        // The reference's inputs: every row plus the bias, rounded as the dtype stores it.
        std::vector<float> biased = qkv;
        for (int t = 0; t < n; ++t) {
          for (int c = 0; c < 3 * d; ++c) biased[static_cast<size_t>(t) * 3 * d + c] += bias[c];
        }
        for (float& x : biased) x = testing::round_to(dt, x);
        auto dqkv = upload(dt, qkv);
        auto dbias = upload(dt, bias);
        auto dbegin = upload_raw(begin);
        auto dout = testing::poisoned(dt, static_cast<size_t>(n) * d);
        VarlenAttentionArgs a;
        a.dtype = dt;
        a.out = dout.data();
        a.q = dqkv.data();
        a.k = static_cast<const uint8_t*>(dqkv.data()) + d * dtype_bytes(dt);
        a.v = static_cast<const uint8_t*>(dqkv.data()) + 2 * d * dtype_bytes(dt);
        a.qkv_stride = 3 * d;
        a.qkv_bias = dbias.data();
        a.seq_begin = dbegin.as<int32_t>();
        a.n_seqs = static_cast<int>(lens.size());
        a.max_seq_len = *std::max_element(lens.begin(), lens.end());
        a.n_heads = n_heads;
        a.head_dim = head_dim;
        a.half_window = half_window;
        a.scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
        a.tensor_cores = tensor_cores;
        EXPECT_EQ(varlen_attention_uses_tensor_cores(a), tensor_cores && dt != model::DType::kF32);
        ASSERT_TRUE(varlen_attention(stream(), a).is_ok());
        const auto out = download(dt, dout, static_cast<size_t>(n) * d);
        const auto ref =
            reference_attention(biased, begin, n_heads, head_dim, half_window, a.scale);
        EXPECT_LT(testing::rel_error(out, ref), testing::tolerance(dt));
        // And the biases matter here: the unbiased inputs' attention is far from it.
        const auto plain = reference_attention(qkv, begin, n_heads, head_dim, half_window, a.scale);
        EXPECT_GT(testing::rel_error(std::vector<float>(plain.begin(), plain.end()), ref),
                  10 * testing::tolerance(dt));
      }
    }
  }
}

TEST_F(CudaEncoderAttentionTest, RefusesHeadSizesItCannotRun) {
  VarlenAttentionArgs a;
  a.n_seqs = 1;
  a.max_seq_len = 4;
  a.head_dim = 258;
  EXPECT_EQ(varlen_attention(stream(), a).code(), StatusCode::kUnimplemented);
}

// ---- the backend ------------------------------------------------------------------------------

// A batch of `lens` sequences of random ids, with the outputs given.
encoder::EncoderBatch random_batch(std::mt19937& rng, const std::vector<int>& lens,
                                   const std::vector<encoder::Output>& outputs, int vocab,
                                   int type_vocab) {
  encoder::EncoderBatch b;
  b.clear();
  std::uniform_int_distribution<int> id(0, vocab - 1), type(0, std::max(1, type_vocab) - 1);
  for (size_t s = 0; s < lens.size(); ++s) {
    for (int i = 0; i < lens[s]; ++i) {
      b.ids.push_back(id(rng));
      b.type_ids.push_back(type(rng));
    }
    b.seq_begin.push_back(static_cast<int32_t>(b.ids.size()));
    b.outputs.push_back(outputs[s % outputs.size()]);
  }
  return b;
}

// Both backends over `batch`; every output row group (one pooled row, or a sequence's tokens)
// within the dtype's tolerance.
void expect_backends_agree(const encoder::EncoderConfig& config,
                           const encoder::EncoderWeights& weights,
                           const encoder::EncoderBatch& batch) {
  encoder::CpuEncoderOptions co;
  co.n_threads = 2;
  auto cpu = encoder::make_cpu_encoder_backend(config, weights, co);
  ASSERT_TRUE(cpu.has_value()) << cpu.status().to_string();
  std::vector<float> want;
  ASSERT_TRUE((*cpu)->forward(batch, want).is_ok());
  // Each throughput switch (cuda_encoder_backend.h) against the CPU: the default path, the
  // biases in cuBLASLt's epilogue, the 16-byte element-wise kernels, the pruned last layer (taken
  // only by batches of CLS / last-token outputs), tuned GEMMs, the profiled pass and BERT's QKV
  // bias in its own pass rather than inside attention.
  enum Variant { kDefault, kBiasEpilogue, kVectorKernels, kPrune, kTuned, kProfiled, kQkvBiasPass };
  for (Variant variant :
       {kDefault, kBiasEpilogue, kVectorKernels, kPrune, kTuned, kProfiled, kQkvBiasPass})
    for (model::DType dt : testing::kAllDTypes) {
      SCOPED_TRACE(std::string(dtype_label(dt)) + " variant " + std::to_string(variant));
      CudaEncoderOptions o;
      o.dtype = dt;
      o.max_batch_tokens = 256;  // smaller than some batches: the scratch grows
      o.bias_epilogue = variant == kBiasEpilogue;
      o.vector_kernels = variant == kVectorKernels;
      o.prune_last_layer = variant == kPrune;
      o.tune_gemms = variant == kTuned;
      o.fused_qkv_bias = variant != kQkvBiasPass;
      if (variant == kProfiled) o.profile = std::make_shared<OpTimer>();
      auto gpu = make_cuda_encoder_backend(config, weights, o);
      ASSERT_TRUE(gpu.has_value()) << gpu.status().to_string();
      std::vector<float> got;
      ASSERT_TRUE((*gpu)->forward(batch, got).is_ok());
      ASSERT_EQ(got.size(), want.size());
      // Twice: the second pass reuses every buffer and plan.
      std::vector<float> again;
      ASSERT_TRUE((*gpu)->forward(batch, again).is_ok());
      EXPECT_EQ(got, again);
      if (o.profile) {
        // Every layer's GEMMs and attention were timed on both passes, and the busy time fits in
        // the passes' wall time.
        EXPECT_EQ(o.profile->passes(), 2);
        int gemm_kinds = 0;
        for (const OpTimer::Row& r : o.profile->rows()) {
          if (!r.gemm) continue;
          ++gemm_kinds;
          EXPECT_EQ(r.calls, 2 * config.n_layers) << r.name;
          EXPECT_GT(r.ms, 0.0) << r.name;
          EXPECT_GT(r.flops, 0.0) << r.name;
        }
        EXPECT_EQ(gemm_kinds, 5);  // QKV, attention, O, FFN-up, FFN-down
        EXPECT_GT(o.profile->busy_ms(), 0.0);
        EXPECT_LE(o.profile->busy_ms(), o.profile->wall_ms());
      }
      const size_t d = static_cast<size_t>(config.dim);
      size_t row = 0;
      for (size_t s = 0; s < batch.n_seqs(); ++s) {
        const size_t rows = batch.outputs[s] == encoder::Output::kAllTokens
                                ? static_cast<size_t>(batch.seq_begin[s + 1] - batch.seq_begin[s])
                                : 1;
        EXPECT_LT(rel_l2(&got[row * d], &want[row * d], rows * d), tolerance_of(dt))
            << "sequence " << s << " (" << encoder::output_name(batch.outputs[s]) << ")";
        row += rows;
      }
    }
}

class CudaEncoderBackendTest : public CudaTest {};

TEST_F(CudaEncoderBackendTest, FixturesMatchTheCpuBackend) {
  std::mt19937 rng(3);
  for (const char* name : {"bert", "bert_cls", "bert_ner", "modernbert", "modernbert_cls",
                           "modernbert_ner", "xlmr_rerank"}) {
    SCOPED_TRACE(name);
    auto model = encoder::EncoderModel::load(kFixtures / name);
    ASSERT_TRUE(model.has_value()) << model.status().to_string();
    const encoder::EncoderConfig& c = (*model)->config();
    const int longest = std::min(60, c.max_tokens());
    auto batch =
        random_batch(rng, {5, longest, 1, 23, 40, 9},
                     {encoder::Output::kCls, encoder::Output::kMean, encoder::Output::kAllTokens,
                      encoder::Output::kLastToken, encoder::Output::kMax},
                     c.vocab_size, c.type_vocab_size);
    expect_backends_agree(c, *(*model)->weights(), batch);
  }
}

// Random weights held in memory, viewed as EncoderWeights.
struct RandomModel {
  encoder::EncoderConfig config;
  encoder::EncoderWeights weights;
  std::vector<std::vector<float>> storage;

  model::TensorView tensor(std::mt19937& rng, int64_t rows, int64_t cols, float scale,
                           float offset = 0.0f) {
    std::normal_distribution<float> dist(0.0f, scale);
    std::vector<float> v(static_cast<size_t>(rows * cols));
    for (float& x : v) x = offset + dist(rng);
    storage.push_back(std::move(v));
    model::TensorView t;
    t.dtype = model::DType::kF32;
    t.rows = rows;
    t.cols = cols;
    t.data = storage.back().data();
    t.size_bytes = storage.back().size() * sizeof(float);
    t.name = "random";
    return t;
  }
};

RandomModel random_model(encoder::EncoderArch arch, std::mt19937& rng) {
  RandomModel m;
  encoder::EncoderConfig& c = m.config;
  c.arch = arch;
  c.vocab_size = 500;
  c.dim = 128;
  c.n_heads = 2;
  c.head_dim = 64;
  c.ffn_dim = 256;
  c.max_positions = 300;
  const bool modern = arch == encoder::EncoderArch::kModernBert;
  c.n_layers = modern ? 3 : 2;
  c.type_vocab_size = modern ? 0 : 2;
  c.norm_eps = modern ? 1e-5f : 1e-12f;
  c.act = encoder::Activation::kGelu;
  if (modern) {
    c.layer_local = {false, true, false};
    c.local_window = 32;  // |i - j| <= 16
    c.norm_bias = c.attention_bias = c.mlp_bias = false;
  }
  const int d = c.dim, f = c.ffn_dim;
  encoder::EncoderWeights& W = m.weights;
  W.word_emb = m.tensor(rng, c.vocab_size, d, 1.0f);
  if (!modern) {
    W.pos_emb = m.tensor(rng, c.max_positions, d, 0.5f);
    W.type_emb = m.tensor(rng, 2, d, 0.5f);
  }
  auto norm = [&](bool bias) {
    encoder::Norm n;
    n.w = m.tensor(rng, 1, d, 0.1f, 1.0f);
    if (bias) n.b = m.tensor(rng, 1, d, 0.1f);
    return n;
  };
  auto linear = [&](int out, int in, bool bias) {
    encoder::Linear l;
    l.w = m.tensor(rng, out, in, 1.0f / std::sqrt(static_cast<float>(in)));
    if (bias) l.b = m.tensor(rng, 1, out, 0.1f);
    return l;
  };
  W.emb_norm = norm(!modern);
  for (int l = 0; l < c.n_layers; ++l) {
    encoder::EncoderLayer L;
    const bool b = !modern;
    L.q = linear(d, d, b);
    L.k = linear(d, d, b);
    L.v = linear(d, d, b);
    L.o = linear(d, d, b);
    L.up = linear(f, d, b);
    if (modern) L.gate = linear(f, d, false);
    L.down = linear(d, f, b);
    if (!modern || l > 0) L.attn_norm = norm(b);
    L.ffn_norm = norm(b);
    W.layers.push_back(L);
  }
  if (modern) W.final_norm = norm(false);
  return m;
}

TEST_F(CudaEncoderBackendTest, RandomHeadDim64ModelsMatchTheCpuBackend) {
  std::mt19937 rng(11);
  for (auto arch : {encoder::EncoderArch::kBert, encoder::EncoderArch::kModernBert}) {
    SCOPED_TRACE(arch == encoder::EncoderArch::kBert ? "bert" : "modernbert");
    RandomModel m = random_model(arch, rng);
    auto batch =
        random_batch(rng, {3, 100, 1, 257, 64, 65, 17},
                     {encoder::Output::kMean, encoder::Output::kAllTokens, encoder::Output::kCls},
                     m.config.vocab_size, m.config.type_vocab_size);
    expect_backends_agree(m.config, m.weights, batch);
    // Only pooled rows (what prune_last_layer needs), with every switch again.
    auto pooled = random_batch(rng, {3, 100, 1, 257, 64, 65, 17},
                               {encoder::Output::kCls, encoder::Output::kLastToken},
                               m.config.vocab_size, m.config.type_vocab_size);
    expect_backends_agree(m.config, m.weights, pooled);
  }
}

TEST_F(CudaEncoderBackendTest, RefusesBadBatchesAndDecoders) {
  auto model = encoder::EncoderModel::load(kFixtures / "bert");
  ASSERT_TRUE(model.has_value());
  auto gpu = make_cuda_encoder_backend((*model)->config(), *(*model)->weights(), {});
  ASSERT_TRUE(gpu.has_value()) << gpu.status().to_string();
  encoder::EncoderBatch b;
  b.clear();
  b.ids = {1, 2, 100000};
  b.type_ids = {0, 0, 0};
  b.seq_begin.push_back(3);
  b.outputs.push_back(encoder::Output::kCls);
  std::vector<float> out;
  EXPECT_EQ((*gpu)->forward(b, out).code(), StatusCode::kInvalidArgument);
  encoder::EncoderConfig decoder = (*model)->config();
  decoder.arch = encoder::EncoderArch::kDecoder;
  EXPECT_FALSE(make_cuda_encoder_backend(decoder, *(*model)->weights(), {}).has_value());
}

}  // namespace
}  // namespace turbine::cuda
