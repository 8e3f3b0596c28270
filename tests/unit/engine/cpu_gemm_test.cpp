// The register-blocked GEMM: every block shape and k tail against a double reference, and bit-for-
// bit batch invariance (a token's outputs do not depend on how many tokens share the call or on
// the thread count).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <random>
#include <thread>

#include "engine/cpu_kernels.h"

namespace turbine::engine {
namespace {

std::vector<float> random_vec(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

TEST(CpuGemm, AllShapesMatchReference) {
  std::printf("[ simd ] %s\n", cpu_simd_level());
  const std::vector<std::string> levels = cpu_simd_levels();
  ASSERT_FALSE(levels.empty());
  EXPECT_EQ(levels.front(), cpu_simd_level());
  EXPECT_EQ(levels.back(), "generic");
  for (const std::string& level : levels) {
    for (int64_t k : {1, 7, 16, 33, 64, 100, 172}) {
      for (int m : {1, 2, 3, 4, 5, 6, 7, 11, 13}) {
        for (int64_t n : {1, 2, 3, 4, 5, 9}) {
          const auto x = random_vec(static_cast<size_t>(m * k), 1);
          const auto w = random_vec(static_cast<size_t>(n * k), 2);
          std::vector<float> y(static_cast<size_t>(m * (n + 3)), 99.0f);
          // Padded output rows (ldy > n) catch writes past n.
          ASSERT_TRUE(gemm_f32_at_level(level, x.data(), m, k, w.data(), n, y.data(), n + 3));
          for (int t = 0; t < m; ++t) {
            for (int64_t r = 0; r < n; ++r) {
              double ref = 0;
              for (int64_t i = 0; i < k; ++i)
                ref += static_cast<double>(x[static_cast<size_t>(t * k + i)]) *
                       w[static_cast<size_t>(r * k + i)];
              ASSERT_NEAR(y[static_cast<size_t>(t * (n + 3) + r)], ref, 1e-4 * (1 + std::sqrt(k)))
                  << level << " m=" << m << " k=" << k << " n=" << n << " t=" << t << " r=" << r;
            }
            for (int64_t r = n; r < n + 3; ++r)
              ASSERT_EQ(y[static_cast<size_t>(t * (n + 3) + r)], 99.0f) << level << " wrote past n";
          }
        }
      }
    }
  }
  EXPECT_FALSE(gemm_f32_at_level("sse9", nullptr, 0, 0, nullptr, 0, nullptr, 0));
}

TEST(CpuGemm, OutputsAreBatchInvariantBitForBit) {
  const int64_t k = 172, n = 23;
  const int max_m = 40;
  const auto x = random_vec(static_cast<size_t>(max_m * k), 3);
  const auto w = random_vec(static_cast<size_t>(n * k), 4);
  // Each token alone.
  std::vector<float> alone(static_cast<size_t>(max_m * n));
  for (int t = 0; t < max_m; ++t)
    gemm_f32(x.data() + t * k, 1, k, w.data(), n, alone.data() + t * n, n);
  for (int m = 2; m <= max_m; ++m) {
    std::vector<float> y(static_cast<size_t>(m * n));
    gemm_f32(x.data(), m, k, w.data(), n, y.data(), n);
    for (size_t i = 0; i < y.size(); ++i) ASSERT_EQ(y[i], alone[i]) << "m=" << m << " i=" << i;
  }
  // Through the pool (row split across tasks and threads), too.
  model::TensorView tv{model::DType::kF32, n, k, w.data(), w.size() * 4, "w", {}, {}};
  for (int threads : {1, 2, 3}) {
    CpuThreadPool pool(threads);
    std::vector<std::vector<float>> scratch;
    std::vector<float> y(static_cast<size_t>(max_m * n));
    matmul(pool, x.data(), max_m, tv, y.data(), scratch);
    for (size_t i = 0; i < y.size(); ++i) ASSERT_EQ(y[i], alone[i]) << threads << " " << i;
  }
}

TEST(CpuGemm, DotAndAxpy) {
  for (int64_t n : {1, 8, 15, 16, 17, 64, 100}) {
    const auto a = random_vec(static_cast<size_t>(n), 5), b = random_vec(static_cast<size_t>(n), 6);
    double ref = 0;
    for (int64_t i = 0; i < n; ++i)
      ref += static_cast<double>(a[static_cast<size_t>(i)]) * b[static_cast<size_t>(i)];
    EXPECT_NEAR(dot_f32(a.data(), b.data(), n), ref, 1e-5 * (1 + n)) << n;
    std::vector<float> y = b;
    y.push_back(42.0f);  // must stay untouched
    axpy_f32(0.5f, a.data(), y.data(), n);
    for (int64_t i = 0; i < n; ++i)
      EXPECT_NEAR(y[static_cast<size_t>(i)],
                  b[static_cast<size_t>(i)] + 0.5f * a[static_cast<size_t>(i)], 1e-6f);
    EXPECT_EQ(y.back(), 42.0f);
  }
}

TEST(CpuGemm, WeightedSumEqualsAxpyInOrder) {
  for (int64_t hd : {8, 20, 64, 80}) {
    const int n = 37;
    const auto v = random_vec(static_cast<size_t>(n * hd + 16), 7);
    const auto a = random_vec(static_cast<size_t>(n), 8);
    std::vector<const float*> rows;
    for (int p = 0; p < n; ++p) rows.push_back(v.data() + (p * 5 % n) * hd);  // any order
    std::vector<float> want(static_cast<size_t>(hd), 0.0f), got(static_cast<size_t>(hd) + 1, 7.0f);
    for (int p = 0; p < n; ++p)
      axpy_f32(a[static_cast<size_t>(p)], rows[static_cast<size_t>(p)], want.data(), hd);
    weighted_sum_f32(a.data(), rows.data(), n, hd, got.data());
    for (int64_t i = 0; i < hd; ++i)
      ASSERT_EQ(got[static_cast<size_t>(i)], want[static_cast<size_t>(i)]) << hd << " " << i;
    EXPECT_EQ(got.back(), 7.0f);
  }
}

TEST(CpuGemm, ThreadPoolSurvivesManySmallJobsAndIdleGaps) {
  CpuThreadPool pool(3);
  std::atomic<int> sum{0};
  for (int round = 0; round < 2000; ++round) {
    pool.run(3, [&](int task, int) { sum += task + 1; });
    if (round % 500 == 0)  // long enough for the workers to go to sleep
      std::this_thread::sleep_for(std::chrono::nanoseconds(3 * CpuThreadPool::kSpinNanos));
  }
  EXPECT_EQ(sum.load(), 2000 * 6);
}

}  // namespace
}  // namespace turbine::engine
