// Kernel pieces checked against hand-computed values and reference formulas.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "engine/cpu_kernels.h"
#include "model/dtype.h"

namespace turbine::engine {
namespace {

TEST(CpuKernels, RmsNormByHand) {
  const float x[4] = {1, 2, 3, 4}, w[4] = {1, 1, 2, 0.5f};
  float out[4];
  rmsnorm(out, x, w, 4, 0.0f);
  const float r = std::sqrt(30.0f / 4.0f);
  EXPECT_NEAR(out[0], 1 / r, 1e-6f);
  EXPECT_NEAR(out[2], 2 * 3 / r, 1e-6f);
  EXPECT_NEAR(out[3], 0.5f * 4 / r, 1e-6f);
  rmsnorm(out, x, w, 4, 1.0f);  // eps inside the square root
  EXPECT_NEAR(out[0], 1 / std::sqrt(7.5f + 1.0f), 1e-6f);
}

TEST(CpuKernels, Llama3RopeScalingMatchesReferenceFormula) {
  model::RopeScaling s;
  s.type = model::RopeScaling::Type::kLlama3;
  s.factor = 8;
  s.low_freq_factor = 1;
  s.high_freq_factor = 4;
  s.original_max_position = 8192;
  const int hd = 128;
  const double theta = 500000.0;
  const auto inv = rope_inv_freq(hd, static_cast<float>(theta), s);
  ASSERT_EQ(inv.size(), 64u);
  int kept = 0, divided = 0, smoothed = 0;
  for (int i = 0; i < 64; ++i) {
    // Meta's apply_scaling (llama3.1 reference), in double.
    const double f = 1.0 / std::pow(theta, 2.0 * i / hd);
    const double wavelen = 2 * M_PI / f, low_wl = 8192.0 / 1, high_wl = 8192.0 / 4;
    double want;
    if (wavelen < high_wl) {
      want = f;
      ++kept;
    } else if (wavelen > low_wl) {
      want = f / 8;
      ++divided;
    } else {
      const double smooth = (8192.0 / wavelen - 1) / (4 - 1);
      want = (1 - smooth) * f / 8 + smooth * f;
      ++smoothed;
    }
    EXPECT_NEAR(inv[static_cast<size_t>(i)], want, want * 1e-5) << i;
  }
  EXPECT_GT(kept, 0);
  EXPECT_GT(divided, 0);
  EXPECT_GT(smoothed, 0);
  const auto plain = rope_inv_freq(hd, static_cast<float>(theta), model::RopeScaling{});
  EXPECT_EQ(plain[0], 1.0f);
  EXPECT_NEAR(plain[63], 1.0 / std::pow(theta, 126.0 / 128), 1e-12);
}

TEST(CpuKernels, RopeLayoutsAgreeUnderPermutation) {
  const int hd = 8, heads = 2;
  const auto inv = rope_inv_freq(hd, 10000.0f, model::RopeScaling{});
  std::vector<float> inter(heads * hd), halves(heads * hd);
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-1, 1);
  for (auto& v : inter) v = u(rng);
  // Interleaved element 2i+a of a head sits at a*hd/2 + i in the halves layout.
  for (int h = 0; h < heads; ++h) {
    for (int j = 0; j < hd; ++j) halves[h * hd + (j % 2) * hd / 2 + j / 2] = inter[h * hd + j];
  }
  auto inter0 = inter;
  apply_rope(inter.data(), heads, hd, 7, inv, model::RopeLayout::kInterleaved);
  apply_rope(halves.data(), heads, hd, 7, inv, model::RopeLayout::kHalves);
  for (int h = 0; h < heads; ++h) {
    for (int j = 0; j < hd; ++j)
      EXPECT_FLOAT_EQ(halves[h * hd + (j % 2) * hd / 2 + j / 2], inter[h * hd + j]);
  }
  // Pair 0 rotates by exactly pos radians.
  EXPECT_NEAR(inter[0], inter0[0] * std::cos(7.0f) - inter0[1] * std::sin(7.0f), 1e-6f);
  EXPECT_NEAR(inter[1], inter0[0] * std::sin(7.0f) + inter0[1] * std::cos(7.0f), 1e-6f);
}

TEST(CpuKernels, MatmulAllDtypesAgainstReference) {
  const int rows = 37, cols = 96, n_tokens = 3;
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> w(rows * cols), x(n_tokens * cols);
  for (auto& v : w) v = u(rng);
  for (auto& v : x) v = u(rng);
  std::vector<uint16_t> f16(w.size()), bf16(w.size());
  for (size_t i = 0; i < w.size(); ++i) {
    f16[i] = model::f32_to_f16(w[i]);
    bf16[i] = model::f32_to_bf16(w[i]);
  }
  std::vector<uint8_t> q8(rows * (cols / 32) * model::kQ8BlockBytes);
  for (int r = 0; r < rows; ++r) {
    model::quantize_row_q8_0(w.data() + r * cols, cols,
                             q8.data() + r * (cols / 32) * model::kQ8BlockBytes);
  }
  CpuThreadPool pool(3);
  std::vector<std::vector<float>> scratch(3, std::vector<float>(cols));
  struct Case {
    model::TensorView t;
    float tol;
  };
  const Case cases[] = {
      {{model::DType::kF32, rows, cols, w.data(), w.size() * 4, "w", {}, {}}, 1e-5f},
      {{model::DType::kF16, rows, cols, f16.data(), f16.size() * 2, "w", {}, {}}, 0.01f},
      {{model::DType::kBF16, rows, cols, bf16.data(), bf16.size() * 2, "w", {}, {}}, 0.1f},
      {{model::DType::kQ8_0, rows, cols, q8.data(), q8.size(), "w", {}, {}}, 0.1f},
  };
  for (const Case& c : cases) {
    std::vector<float> y(n_tokens * rows, -1);
    matmul(pool, x.data(), n_tokens, c.t, y.data(), scratch);
    for (int t = 0; t < n_tokens; ++t) {
      for (int r = 0; r < rows; ++r) {
        double ref = 0;
        for (int k = 0; k < cols; ++k)
          ref += static_cast<double>(x[t * cols + k]) * w[r * cols + k];
        EXPECT_NEAR(y[t * rows + r], ref, c.tol)
            << model::dtype_name(c.t.dtype) << " t=" << t << " r=" << r;
      }
    }
  }
}

TEST(CpuKernels, ThreadPoolRunsEveryTaskOnce) {
  CpuThreadPool pool(4);
  for (int round = 0; round < 50; ++round) {
    std::vector<std::atomic<int>> hits(97);
    pool.run(97, [&](int task, int thread) {
      ASSERT_LT(thread, 4);
      hits[static_cast<size_t>(task)]++;
    });
    for (auto& h : hits) ASSERT_EQ(h.load(), 1);
  }
}

}  // namespace
}  // namespace turbine::engine
