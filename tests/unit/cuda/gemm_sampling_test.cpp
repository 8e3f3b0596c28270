// cuBLASLt projection and device sampling against CPU references.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "cuda/gemm.h"
#include "cuda/kernels.h"
#include "cuda/sampling.h"
#include "cuda_test_util.h"
#include "engine/cpu_kernels.h"

namespace turbine::cuda {
namespace {

using testing::CudaTest;
using testing::download;
using testing::dtype_label;
using testing::kAllDTypes;
using testing::poisoned;
using testing::random_values;
using testing::rel_error;
using testing::tolerance;
using testing::upload;
using testing::upload_raw;

class CudaGemmTest : public CudaTest {};

// x [m][k] · w [n][k]ᵀ on the CPU backend's F32 matmul: the reference of the GEMM tests.
std::vector<float> cpu_matmul(engine::CpuThreadPool& pool, const std::vector<float>& x,
                              const std::vector<float>& w, int m, int n, int k) {
  model::TensorView wv;
  wv.dtype = model::DType::kF32;
  wv.rows = n;
  wv.cols = k;
  wv.data = w.data();
  std::vector<float> y(static_cast<size_t>(m) * n);
  std::vector<std::vector<float>> scratch(1, std::vector<float>(k));
  engine::matmul(pool, x.data(), m, wv, y.data(), scratch);
  return y;
}

TEST_F(CudaGemmTest, MatchesCpuMatmulAndCachesPlans) {
  std::mt19937 rng(21);
  auto gemm = Gemm::create();
  ASSERT_TRUE(gemm.has_value()) << gemm.status().to_string();
  engine::CpuThreadPool pool(1);
  for (model::DType d : kAllDTypes) {
    for (auto [m, n, k] :
         {std::tuple{1, 4096, 512}, std::tuple{7, 96, 1000}, std::tuple{64, 1024, 2048},
          std::tuple{3, 4104, 1000}}) {  // m = 1, k < 2n in f16/bf16: the gemv path
      SCOPED_TRACE(std::string(dtype_label(d)) + " m=" + std::to_string(m) +
                   " n=" + std::to_string(n) + " k=" + std::to_string(k));
      auto x = random_values(rng, static_cast<size_t>(m) * k, d);
      auto w = random_values(rng, static_cast<size_t>(n) * k, d);
      auto dx = upload(d, x), dw = upload(d, w);
      auto dy = poisoned(d, static_cast<size_t>(m) * n);
      ASSERT_TRUE(gemm->matmul(stream(), d, dx.data(), dw.data(), dy.data(), m, n, k).is_ok());
      auto y = download(d, dy, static_cast<size_t>(m) * n);
      const std::vector<float> ref_f = cpu_matmul(pool, x, w, m, n, k);
      EXPECT_LT(rel_error(y, testing::to_double(ref_f)), tolerance(d));
    }
  }
  const size_t plans = gemm->cached_plans();
  EXPECT_EQ(plans, 10u);  // 4 f32 shapes + m = 3, 7 and 64 in f16 and bf16; m = 1 ran gemv
  auto dx = upload(model::DType::kBF16, std::vector<float>(512, 1.0f));
  auto dw = upload(model::DType::kBF16, std::vector<float>(4096 * 512, 1.0f));
  auto dy = poisoned(model::DType::kBF16, 4096);
  ASSERT_TRUE(
      gemm->matmul(stream(), model::DType::kBF16, dx.data(), dw.data(), dy.data(), 1, 4096, 512)
          .is_ok());
  EXPECT_EQ(gemm->cached_plans(), plans);  // same shape: no new plan
  EXPECT_EQ(download(model::DType::kBF16, dy, 4096)[4095], 512.0f);
}

// matmul_bias: cuBLASLt's BIAS epilogue adds one value per output column, on the encoder's
// shapes (rounded row counts, n = 3 dim and ffn) and an odd one; two biases through the same
// plan (the pointer is set per call).
TEST_F(CudaGemmTest, BiasEpilogueAddsThePerColumnBias) {
  std::mt19937 rng(22);
  auto gemm = Gemm::create();
  ASSERT_TRUE(gemm.has_value()) << gemm.status().to_string();
  engine::CpuThreadPool pool(1);
  for (model::DType d : kAllDTypes) {
    for (auto [m, n, k] : {std::tuple{16, 384, 128}, std::tuple{256, 2304, 768},
                           std::tuple{512, 3072, 768}, std::tuple{48, 200, 64}}) {
      SCOPED_TRACE(std::string(dtype_label(d)) + " m=" + std::to_string(m) +
                   " n=" + std::to_string(n) + " k=" + std::to_string(k));
      auto x = random_values(rng, static_cast<size_t>(m) * k, d);
      auto w = random_values(rng, static_cast<size_t>(n) * k, d);
      auto dx = upload(d, x), dw = upload(d, w);
      const std::vector<float> ref_f = cpu_matmul(pool, x, w, m, n, k);
      const size_t plans = gemm->cached_plans();
      for (int rep = 0; rep < 2; ++rep) {
        auto b = random_values(rng, static_cast<size_t>(n), d, -4.0f, 4.0f);
        auto db = upload(d, b);
        auto dy = poisoned(d, static_cast<size_t>(m) * n);
        const Status st =
            gemm->matmul_bias(stream(), d, dx.data(), dw.data(), db.data(), dy.data(), m, n, k);
        ASSERT_TRUE(st.is_ok()) << st.to_string();
        auto y = download(d, dy, static_cast<size_t>(m) * n);
        std::vector<double> ref(ref_f.size());
        for (size_t i = 0; i < ref.size(); ++i)
          ref[i] = static_cast<double>(ref_f[i]) + b[i % static_cast<size_t>(n)];
        EXPECT_LT(rel_error(y, ref), tolerance(d)) << "bias " << rep;
      }
      EXPECT_EQ(gemm->cached_plans(), plans + 1);  // one epilogue plan for both biases
    }
  }
}

// Gemm::tune times the heuristic's candidates over several weight matrices and keeps the
// fastest: the tuned plan still computes the product (checked for each of the matrices), no new
// plan is made for the shape, and tuning is refused while the stream captures a graph.
TEST_F(CudaGemmTest, TuneKeepsACorrectAlgorithm) {
  std::mt19937 rng(23);
  auto gemm = Gemm::create();
  ASSERT_TRUE(gemm.has_value()) << gemm.status().to_string();
  engine::CpuThreadPool pool(1);
  const model::DType d = model::DType::kBF16;
  const int m = 64, n = 1536, k = 1024;
  auto x = random_values(rng, static_cast<size_t>(m) * k, d);
  std::vector<std::vector<float>> w;
  std::vector<DeviceBuffer> dw;
  std::vector<const void*> ws;
  for (int i = 0; i < 3; ++i) {
    w.push_back(random_values(rng, static_cast<size_t>(n) * k, d));
    dw.push_back(upload(d, w.back()));
    ws.push_back(dw.back().data());
  }
  auto dx = upload(d, x);
  auto dy = poisoned(d, static_cast<size_t>(m) * n);
  auto us = gemm->tune(stream(), d, dx.data(), ws, dy.data(), m, n, k, d);
  ASSERT_TRUE(us.has_value()) << us.status().to_string();
  ASSERT_FALSE(us->empty());
  EXPECT_LE(us->size(), static_cast<size_t>(Gemm::kMaxTuneCandidates));
  EXPECT_GT(us->front(), 0.0f);  // the heuristic's own choice always runs
  EXPECT_EQ(gemm->cached_plans(), 1u);
  for (size_t i = 0; i < ws.size(); ++i) {
    SCOPED_TRACE("matrix " + std::to_string(i));
    auto out = poisoned(d, static_cast<size_t>(m) * n);
    ASSERT_TRUE(gemm->matmul(stream(), d, dx.data(), ws[i], out.data(), m, n, k).is_ok());
    const std::vector<float> ref_f = cpu_matmul(pool, x, w[i], m, n, k);
    EXPECT_LT(rel_error(download(d, out, static_cast<size_t>(m) * n), testing::to_double(ref_f)),
              tolerance(d));
  }
  EXPECT_EQ(gemm->cached_plans(), 1u);

  ASSERT_EQ(cudaStreamBeginCapture(stream(), cudaStreamCaptureModeThreadLocal), cudaSuccess);
  const auto refused = gemm->tune(stream(), d, dx.data(), ws, dy.data(), m, n, k, d);
  cudaGraph_t graph = nullptr;
  ASSERT_EQ(cudaStreamEndCapture(stream(), &graph), cudaSuccess);
  if (graph != nullptr) cudaGraphDestroy(graph);
  EXPECT_FALSE(refused.has_value());
  EXPECT_FALSE(gemm->tune(stream(), d, dx.data(), {}, dy.data(), m, n, k, d).has_value());
  EXPECT_FALSE(gemm->tune(stream(), d, dx.data(), ws, dy.data(), m, n, k, d, 0).has_value());
  EXPECT_FALSE(gemm->tune(stream(), d, dx.data(), ws, dy.data(), m, n, k, d, 8, 0).has_value());
}

// F32 logits from BF16/F16 inputs (the LM head), through gemv (m <= 8) and through cuBLASLt.
TEST_F(CudaGemmTest, WritesF32OutputFromHalfInputs) {
  std::mt19937 rng(22);
  auto gemm = Gemm::create();
  ASSERT_TRUE(gemm.has_value()) << gemm.status().to_string();
  engine::CpuThreadPool pool(1);
  for (model::DType d : {model::DType::kBF16, model::DType::kF16}) {
    for (int m : {1, 8, 9, 33}) {
      for (bool skinny : {true, false}) {
        SCOPED_TRACE(std::string(dtype_label(d)) + " m=" + std::to_string(m) +
                     (skinny ? " gemv" : " cublasLt"));
        gemm->use_gemv(skinny);
        const int n = 1031, k = 256;  // n >= 4k: gemv when allowed
        auto x = random_values(rng, static_cast<size_t>(m) * k, d);
        auto w = random_values(rng, static_cast<size_t>(n) * k, d);
        auto dx = upload(d, x), dw = upload(d, w);
        auto dy = poisoned(model::DType::kF32, static_cast<size_t>(m) * n);
        ASSERT_TRUE(
            gemm->matmul(stream(), d, dx.data(), dw.data(), dy.data(), m, n, k, model::DType::kF32)
                .is_ok());
        auto y = download(model::DType::kF32, dy, static_cast<size_t>(m) * n);
        const std::vector<float> ref_f = cpu_matmul(pool, x, w, m, n, k);
        EXPECT_LT(rel_error(y, testing::to_double(ref_f)), 1e-5);  // f32 accumulate and output
      }
    }
  }
  EXPECT_FALSE(gemv_applies(model::DType::kF32, model::DType::kF32, 1, 256));
  EXPECT_FALSE(gemv_applies(model::DType::kBF16, model::DType::kF32, 1, 250));
  EXPECT_FALSE(gemv_applies(model::DType::kBF16, model::DType::kF32, 9, 256));
  EXPECT_TRUE(gemv_preferred(1));  // every shape: the LM head, Q|K|V, down (long rows)
  EXPECT_TRUE(gemv_preferred(2));
  EXPECT_EQ(gemv_split(4096, 14336), 16);  // long rows: 16 warps each
  EXPECT_FALSE(gemv_preferred(3));
  EXPECT_FALSE(gemv_preferred(8));
}

// gemv with 1, 2, 4, 8 and 16 warps per weight row (split-K within a block) gives the same F32
// result, also when n is not a multiple of the rows a block covers (rows past the end join the
// block's reduction but write nothing).
TEST_F(CudaGemmTest, GemvSplitVariantsAgree) {
  std::mt19937 rng(31);
  engine::CpuThreadPool pool(1);
  for (int m : {1, 5, 8}) {
    for (int n : {1, 3, 258}) {
      const int k = 1032;  // 129 chunks of 8: a ragged last batch for every split
      const model::DType d = model::DType::kBF16;
      auto x = random_values(rng, static_cast<size_t>(m) * k, d);
      auto w = random_values(rng, static_cast<size_t>(n) * k, d);
      auto dx = upload(d, x), dw = upload(d, w);
      const std::vector<float> ref_f = cpu_matmul(pool, x, w, m, n, k);
      for (int split : {1, 2, 4, 8, 16}) {
        SCOPED_TRACE("m=" + std::to_string(m) + " n=" + std::to_string(n) +
                     " split=" + std::to_string(split));
        auto dy = poisoned(model::DType::kF32, static_cast<size_t>(m) * n);
        ASSERT_TRUE(gemv(stream(), d, dx.data(), dw.data(), dy.data(), m, n, k, model::DType::kF32,
                         false, split)
                        .is_ok());
        auto y = download(model::DType::kF32, dy, static_cast<size_t>(m) * n);
        EXPECT_LT(rel_error(y, testing::to_double(ref_f)), 1e-5);
      }
    }
  }
  auto dummy = upload(model::DType::kBF16, std::vector<float>(8, 0.0f));
  EXPECT_FALSE(gemv(stream(), model::DType::kBF16, dummy.data(), dummy.data(), dummy.data(), 1, 1,
                    8, model::DType::kBF16, false, 3)
                   .is_ok());
  for (int n : {4096, 6144, 28672, 128256}) {
    const int split = gemv_split(n, 4096);
    EXPECT_TRUE(split == 1 || split == 2 || split == 4 || split == 8 || split == 16);
  }
}

// gate|up + SwiGLU in one pass (gemv_swiglu) equals gemv with the same warps per row followed by
// swiglu exactly (same accumulation order, same rounding of g and u), with and without PDL
// launches; and gemv_all routes a narrow projection (n < 4k) to gemv.
TEST_F(CudaGemmTest, FusedSwigluEqualsGemvThenSwiglu) {
  std::mt19937 rng(23);
  for (model::DType d : {model::DType::kBF16, model::DType::kF16}) {
    for (int m : {1, 3, 8}) {
      for (int split : {1, 4}) {
        const bool pdl = split == 4;
        SCOPED_TRACE(std::string(dtype_label(d)) + " m=" + std::to_string(m) +
                     " split=" + std::to_string(split) + (pdl ? " pdl" : ""));
        const int ffn = 1000, k = 264;
        auto x = random_values(rng, static_cast<size_t>(m) * k, d);
        auto w = random_values(rng, static_cast<size_t>(2 * ffn) * k, d, -0.2f, 0.2f);
        auto dx = upload(d, x), dw = upload(d, w);
        auto dgu = poisoned(d, static_cast<size_t>(m) * 2 * ffn);
        auto dref = poisoned(d, static_cast<size_t>(m) * ffn);
        auto dout = poisoned(d, static_cast<size_t>(m) * ffn);
        ASSERT_TRUE(
            gemv(stream(), d, dx.data(), dw.data(), dgu.data(), m, 2 * ffn, k, d, pdl, split)
                .is_ok());
        auto* gu = static_cast<uint8_t*>(dgu.data());
        ASSERT_TRUE(swiglu(stream(), d, dref.data(), gu, gu + static_cast<size_t>(ffn) * 2, m, ffn,
                           2 * ffn, pdl)
                        .is_ok());
        ASSERT_TRUE(
            gemv_swiglu(stream(), d, dx.data(), dw.data(), dout.data(), m, ffn, k, pdl, split)
                .is_ok());
        auto ref = download(d, dref, static_cast<size_t>(m) * ffn);
        auto out = download(d, dout, static_cast<size_t>(m) * ffn);
        for (size_t i = 0; i < out.size(); ++i) ASSERT_EQ(out[i], ref[i]) << i;
        double nz = 0;
        for (float v : out) nz += v != 0.0f;
        EXPECT_GT(nz, 0.9 * static_cast<double>(out.size()));  // not trivially zero
      }
    }
  }
  EXPECT_FALSE(
      gemv_swiglu(stream(), model::DType::kF32, nullptr, nullptr, nullptr, 1, 8, 8).is_ok());
  // gemv_all: a narrow projection of one row runs gemv (no cuBLASLt plan) and matches.
  auto gemm = Gemm::create();
  ASSERT_TRUE(gemm.has_value()) << gemm.status().to_string();
  gemm->gemv_all(true);
  const model::DType d = model::DType::kBF16;
  const int n = 4096, k = 14336;
  auto x = random_values(rng, k, d);
  auto w = random_values(rng, static_cast<size_t>(n) * k, d, -0.05f, 0.05f);
  auto dx = upload(d, x), dw = upload(d, w);
  auto dy = poisoned(model::DType::kF32, n);
  ASSERT_TRUE(
      gemm->matmul(stream(), d, dx.data(), dw.data(), dy.data(), 1, n, k, model::DType::kF32)
          .is_ok());
  EXPECT_EQ(gemm->cached_plans(), 0u);
  auto y = download(model::DType::kF32, dy, n);
  std::vector<double> ref(n, 0.0);
  for (int r = 0; r < n; ++r)
    for (int c = 0; c < k; ++c) ref[r] += double{x[c]} * w[static_cast<size_t>(r) * k + c];
  EXPECT_LT(rel_error(y, ref), 1e-5);
}

class CudaSamplingTest : public CudaTest {};

TEST_F(CudaSamplingTest, ArgmaxMatchesCpuWithLowestIndexOnTies) {
  std::mt19937 rng(31);
  for (model::DType d : kAllDTypes) {
    SCOPED_TRACE(dtype_label(d));
    const int rows = 5, vocab = 128256;
    auto logits = random_values(rng, static_cast<size_t>(rows) * vocab, d, -10, 10);
    logits[3 * vocab + 100] = logits[3 * vocab + 90000] = 50.0f;  // tie
    auto dl = upload(d, logits);
    auto dout = upload_raw(std::vector<int32_t>(rows, -7));
    ASSERT_TRUE(argmax(stream(), d, dl.data(), rows, vocab, dout.as<int32_t>()).is_ok());
    std::vector<int32_t> got(rows);
    ASSERT_TRUE(stream_.synchronize().is_ok());  // non-blocking stream: cudaMemcpy does not wait
    ASSERT_EQ(cudaMemcpy(got.data(), dout.data(), rows * 4, cudaMemcpyDeviceToHost), cudaSuccess);
    for (int r = 0; r < rows; ++r) {
      const float* row = &logits[static_cast<size_t>(r) * vocab];
      EXPECT_EQ(got[r], std::max_element(row, row + vocab) - row) << "row " << r;
    }
  }
}

// Draws many rows of one small distribution (one row per draw, distinct steps) and compares the
// histogram with softmax(logits / T) restricted to top-k / top-p.
TEST_F(CudaSamplingTest, SampleFollowsRestrictedSoftmaxAndIsSeeded) {
  const int vocab = 8, draws = 20000;
  const std::vector<float> base = {2.0f, 1.5f, 1.0f, 0.5f, 0.0f, -0.5f, -1.0f, -3.0f};
  struct Case {
    float t;
    int k;
    float p;
  };
  for (Case c :
       {Case{1.0f, 0, 1.0f}, Case{0.7f, 3, 1.0f}, Case{1.0f, 0, 0.8f}, Case{0.0f, 0, 1.0f}}) {
    SCOPED_TRACE("T=" + std::to_string(c.t) + " k=" + std::to_string(c.k) +
                 " p=" + std::to_string(c.p));
    std::vector<float> logits;
    std::vector<SampleParams> params(draws);
    for (int i = 0; i < draws; ++i) {
      logits.insert(logits.end(), base.begin(), base.end());
      params[i] = SampleParams{c.t, c.k, c.p, 0, 1234, static_cast<uint64_t>(i)};
    }
    auto dl = upload(model::DType::kF32, logits);
    auto dp = upload_raw(params);
    auto dout = upload_raw(std::vector<int32_t>(draws, -1));
    ASSERT_TRUE(sample(stream(), model::DType::kF32, dl.data(), draws, vocab, dp.as<SampleParams>(),
                       dout.as<int32_t>())
                    .is_ok());
    std::vector<int32_t> got(draws);
    ASSERT_TRUE(stream_.synchronize().is_ok());  // non-blocking stream: cudaMemcpy does not wait
    ASSERT_EQ(cudaMemcpy(got.data(), dout.data(), draws * 4, cudaMemcpyDeviceToHost), cudaSuccess);
    // Expected distribution.
    std::vector<double> prob(vocab, 0.0);
    if (c.t <= 0.0f) {
      prob[0] = 1.0;
    } else {
      double sum = 0.0;
      for (int i = 0; i < vocab; ++i) sum += prob[i] = std::exp(base[i] / c.t);
      int keep = c.k > 0 ? c.k : vocab;  // base is sorted descending
      double mass = 0.0;
      for (int i = 0; i < keep; ++i) {
        mass += prob[i] / sum;
        if (mass >= c.p) {
          keep = i + 1;
          break;
        }
      }
      double ksum = 0.0;
      for (int i = 0; i < vocab; ++i) ksum += i < keep ? prob[i] : 0.0;
      for (int i = 0; i < vocab; ++i) prob[i] = i < keep ? prob[i] / ksum : 0.0;
    }
    std::vector<int> hist(vocab, 0);
    for (int32_t t : got) {
      ASSERT_TRUE(t >= 0 && t < vocab);
      ++hist[t];
    }
    for (int i = 0; i < vocab; ++i) {
      const double freq = static_cast<double>(hist[i]) / draws;
      if (prob[i] == 0.0) {
        EXPECT_EQ(hist[i], 0) << "token " << i << " is outside top-k/top-p";
      } else {
        EXPECT_NEAR(freq, prob[i], 0.015) << "token " << i;  // ~4 sigma at 20k draws
      }
    }
    // Same seed and steps: same tokens.
    auto dout2 = upload_raw(std::vector<int32_t>(draws, -1));
    ASSERT_TRUE(sample(stream(), model::DType::kF32, dl.data(), draws, vocab, dp.as<SampleParams>(),
                       dout2.as<int32_t>())
                    .is_ok());
    std::vector<int32_t> got2(draws);
    ASSERT_TRUE(stream_.synchronize().is_ok());  // non-blocking stream: cudaMemcpy does not wait
    ASSERT_EQ(cudaMemcpy(got2.data(), dout2.data(), draws * 4, cudaMemcpyDeviceToHost),
              cudaSuccess);
    EXPECT_EQ(got, got2);
  }
}

// Structured outputs: a row's bitmask restricts the draw (greedy, top-k, top-p and plain
// sampling) to its allowed ids, in proportion to their restricted softmax; unmasked rows in the
// same launch are unaffected.
TEST_F(CudaSamplingTest, MaskedRowsDrawOnlyAllowedIdsInProportion) {
  const int vocab = 70, draws = 20000;  // 3 mask words, the last one partial
  std::vector<float> base(vocab);
  for (int i = 0; i < vocab; ++i) base[i] = 2.0f - 0.05f * static_cast<float>(i);
  const std::vector<int> allow = {3, 33, 64, 69};  // not the argmax (0)
  const int words = (vocab + 31) / 32;
  std::vector<uint32_t> one(words, 0);
  for (int id : allow) one[id / 32] |= 1u << (id % 32);
  struct Case {
    float t;
    int k;
    float p;
  };
  for (Case c : {Case{1.0f, 0, 1.0f}, Case{1.0f, 2, 1.0f}, Case{0.0f, 0, 1.0f}}) {
    SCOPED_TRACE("T=" + std::to_string(c.t) + " k=" + std::to_string(c.k));
    std::vector<float> logits;
    std::vector<SampleParams> params(draws);
    std::vector<uint32_t> masks;
    for (int i = 0; i < draws; ++i) {
      logits.insert(logits.end(), base.begin(), base.end());
      // Every 10th row is unmasked: it must still pick from the whole vocabulary.
      const int masked = i % 10 == 0 ? 0 : 1;
      params[i] = SampleParams{c.t, c.k, c.p, masked, 99, static_cast<uint64_t>(i)};
      masks.insert(masks.end(), one.begin(), one.end());
    }
    auto dl = upload(model::DType::kF32, logits);
    auto dp = upload_raw(params);
    auto dm = upload_raw(masks);
    auto dout = upload_raw(std::vector<int32_t>(draws, -1));
    ASSERT_TRUE(sample(stream(), model::DType::kF32, dl.data(), draws, vocab, dp.as<SampleParams>(),
                       dout.as<int32_t>(), dm.as<uint32_t>(), words)
                    .is_ok());
    std::vector<int32_t> got(draws);
    ASSERT_TRUE(stream_.synchronize().is_ok());
    ASSERT_EQ(cudaMemcpy(got.data(), dout.data(), draws * 4, cudaMemcpyDeviceToHost), cudaSuccess);
    std::vector<double> prob(vocab, 0.0);
    double sum = 0.0;
    const int keep = c.t <= 0.0f ? 1 : (c.k > 0 ? c.k : static_cast<int>(allow.size()));
    for (int j = 0; j < keep; ++j) sum += std::exp(base[allow[j]] / (c.t <= 0 ? 1.0f : c.t));
    for (int j = 0; j < keep; ++j)
      prob[allow[j]] = std::exp(base[allow[j]] / (c.t <= 0 ? 1.0f : c.t)) / sum;
    std::vector<int> hist(vocab, 0);
    int n_masked = 0, unmasked_outside = 0;
    for (int i = 0; i < draws; ++i) {
      ASSERT_TRUE(got[i] >= 0 && got[i] < vocab);
      if (i % 10 == 0) {
        unmasked_outside += prob[got[i]] == 0.0 ? 1 : 0;
        continue;
      }
      ++n_masked;
      ++hist[got[i]];
    }
    EXPECT_GT(unmasked_outside, 0);  // unmasked rows are not restricted
    for (int i = 0; i < vocab; ++i) {
      if (prob[i] == 0.0) {
        EXPECT_EQ(hist[i], 0) << "token " << i << " is outside the mask or top-k";
      } else {
        EXPECT_NEAR(static_cast<double>(hist[i]) / n_masked, prob[i], 0.015) << "token " << i;
      }
    }
  }
}

// logit_bias on the device: +100 makes a token certain, -100 removes the best one, both for the
// greedy and the sampled path; rows without entries are untouched.
TEST_F(CudaSamplingTest, LogitBiasIsAddedBeforeSampling) {
  const int vocab = 8, rows = 3;
  const std::vector<float> base = {2.0f, 1.5f, 1.0f, 0.5f, 0.0f, -0.5f, -1.0f, -3.0f};
  std::vector<float> logits;
  for (int r = 0; r < rows; ++r) logits.insert(logits.end(), base.begin(), base.end());
  std::vector<SampleParams> params(rows);
  params[0] = SampleParams{1.0f, 0, 1.0f, 0, 7, 0};
  params[0].n_bias = 1;
  params[0].bias_ids[0] = 7;
  params[0].bias_values[0] = 100.0f;
  params[1] = SampleParams{0.0f, 0, 1.0f, 0, 7, 0};
  params[1].n_bias = 1;
  params[1].bias_ids[0] = 0;
  params[1].bias_values[0] = -100.0f;
  params[2] = SampleParams{0.0f, 0, 1.0f, 0, 7, 0};
  auto dl = upload(model::DType::kF32, logits);
  auto dp = upload_raw(params);
  auto dout = upload_raw(std::vector<int32_t>(rows, -1));
  ASSERT_TRUE(add_logit_bias(stream(), dl.as<float>(), rows, vocab, dp.as<SampleParams>()).is_ok());
  ASSERT_TRUE(sample(stream(), model::DType::kF32, dl.data(), rows, vocab, dp.as<SampleParams>(),
                     dout.as<int32_t>())
                  .is_ok());
  std::vector<int32_t> got(rows);
  ASSERT_TRUE(stream_.synchronize().is_ok());
  ASSERT_EQ(cudaMemcpy(got.data(), dout.data(), rows * 4, cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(got, (std::vector<int32_t>{7, 1, 0}));
}

}  // namespace
}  // namespace turbine::cuda
