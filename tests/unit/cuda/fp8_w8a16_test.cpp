// The weight-only FP8 gemv (cuda/fp8.h: gemv_w8a16, gemv_w8a16_swiglu) against a float64
// reference of the same product (activations as stored in dtype, E4M3 weights, per-row scales),
// for every rows-per-warp and split the kernels take, and against the CPU backend's semantics
// (activations quantized per token, model::quantize_input_row) within the bound that quantization
// itself sets.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "cuda/fp8.h"
#include "cuda/gemm.h"
#include "cuda_test_util.h"
#include "model/dtype.h"

namespace turbine::cuda {
namespace {

using model::DType;
using testing::CudaTest;
using testing::download;
using testing::dtype_label;
using testing::poisoned;
using testing::random_values;
using testing::rel_error;
using testing::round_to;
using testing::upload;
using testing::upload_raw;

class CudaFp8W8a16Test : public CudaTest {};

// Finite E4M3 codes (0x7f / 0xff are NaN).
std::vector<uint8_t> random_codes(std::mt19937& rng, size_t n) {
  std::uniform_int_distribution<int> dist(0, 253);
  std::vector<uint8_t> v(n);
  for (uint8_t& c : v) {
    c = static_cast<uint8_t>(dist(rng));
    if ((c & 0x7f) == 0x7f) c = 0x10;
  }
  return v;
}

struct Problem {
  DType dtype;
  int m, n, k;  // n: rows of w
  std::vector<float> x, ws;
  std::vector<uint8_t> w;
  DeviceBuffer dx, dw, dws;
  Problem(std::mt19937& rng, DType d, int m_, int n_, int k_) : dtype(d), m(m_), n(n_), k(k_) {
    x = random_values(rng, static_cast<size_t>(m) * k, d);
    w = random_codes(rng, static_cast<size_t>(n) * k);
    std::uniform_real_distribution<float> sd(1e-3f, 2e-2f);
    for (int i = 0; i < n; ++i) ws.push_back(sd(rng));
    dx = upload(d, x);
    dw = upload_raw(w);
    dws = upload_raw(ws);
  }
  // ws[j] · Σ xq(x[r])[i] · e4m3(w[j][i]) in float64; xq the identity, or the CPU's per-token
  // E4M3 quantization (scale · code) when `quantize_x`.
  double dot(int r, int j, bool quantize_x) const {
    const float* xr = &x[static_cast<size_t>(r) * k];
    std::vector<float> xv(xr, xr + k);
    if (quantize_x) {
      float amax = 0.0f;
      for (float v : xv) amax = std::max(amax, std::fabs(v));
      const float s = std::max(amax / model::kE4M3Max, model::kFp8MinScale);
      for (float& v : xv) v = model::e4m3_to_f32(model::f32_to_e4m3(v / s)) * s;
    }
    double acc = 0.0;
    for (int i = 0; i < k; ++i)
      acc += double{xv[static_cast<size_t>(i)]} *
             model::e4m3_to_f32(w[static_cast<size_t>(j) * k + i]);
    return acc * ws[static_cast<size_t>(j)];
  }
  std::vector<double> reference(bool quantize_x = false) const {
    std::vector<double> y(static_cast<size_t>(m) * n);
    for (int r = 0; r < m; ++r)
      for (int j = 0; j < n; ++j) y[static_cast<size_t>(r) * n + j] = dot(r, j, quantize_x);
    return y;
  }
};

// F32 activations and output: the kernel sums exact products in F32 (1e-5 as the other gemv
// kernels). BF16 output: bounded by its own rounding (2^-9 per element).
double tolerance(DType d) {
  return d == DType::kF32 ? 1e-5 : 1e-2;
}

TEST_F(CudaFp8W8a16Test, GemvMatchesReferenceForEveryRowsAndSplit) {
  std::mt19937 rng(11);
  struct Shape {
    int n, k;
  };
  for (DType d : {DType::kBF16, DType::kF32}) {
    // Odd n (groups past the end), k of 3 chunks (fewer chunks than lanes), long k (several
    // batches per lane).
    for (Shape sh : {Shape{83, 512}, Shape{16, 4096}, Shape{333, 48}}) {
      for (int m : {1, 2, 5, 8}) {
        Problem p(rng, d, m, sh.n, sh.k);
        const std::vector<double> ref = p.reference();
        for (int rows : {0, 1, 2, 4}) {
          for (int split : {0, 1, 2, 4, 8}) {
            DeviceBuffer y = poisoned(d, static_cast<size_t>(m) * sh.n);
            const Status st =
                gemv_w8a16(stream(), d, p.dx.data(), p.dw.as<uint8_t>(), p.dws.as<float>(),
                           y.data(), m, sh.n, sh.k, false, split, rows);
            ASSERT_TRUE(st.is_ok()) << st.to_string();
            const double err = rel_error(download(d, y, static_cast<size_t>(m) * sh.n), ref);
            EXPECT_LT(err, tolerance(d)) << dtype_label(d) << " m " << m << " n " << sh.n << " k "
                                         << sh.k << " rows " << rows << " split " << split;
          }
        }
      }
    }
  }
}

TEST_F(CudaFp8W8a16Test, SwigluMatchesGemvThenSwiglu) {
  std::mt19937 rng(12);
  for (DType d : {DType::kBF16, DType::kF32}) {
    for (int ffn : {80, 333}) {
      for (int m : {1, 3, 8}) {
        const int k = 256;
        Problem p(rng, d, m, 2 * ffn, k);
        // g and u rounded to dtype as a projection would store them, then silu(g) · u.
        std::vector<double> ref(static_cast<size_t>(m) * ffn);
        for (int r = 0; r < m; ++r)
          for (int i = 0; i < ffn; ++i) {
            const double g = round_to(d, static_cast<float>(p.dot(r, i, false)));
            const double u = round_to(d, static_cast<float>(p.dot(r, ffn + i, false)));
            ref[static_cast<size_t>(r) * ffn + i] = g / (1.0 + std::exp(-g)) * u;
          }
        for (int rows : {0, 2, 4}) {
          for (int split : {0, 1, 8}) {
            DeviceBuffer y = poisoned(d, static_cast<size_t>(m) * ffn);
            const Status st =
                gemv_w8a16_swiglu(stream(), d, p.dx.data(), p.dw.as<uint8_t>(), p.dws.as<float>(),
                                  y.data(), m, ffn, k, false, split, rows);
            ASSERT_TRUE(st.is_ok()) << st.to_string();
            // BF16: g and u may round to the neighbouring BF16 value where the F32 sums differ
            // in the last bits, then the output rounds again.
            const double err = rel_error(download(d, y, static_cast<size_t>(m) * ffn), ref);
            EXPECT_LT(err, d == DType::kF32 ? 1e-5 : 2e-2)
                << dtype_label(d) << " m " << m << " ffn " << ffn << " rows " << rows << " split "
                << split;
          }
        }
      }
    }
  }
}

// The CPU backend (and gemv_fp8) quantize each activation row to E4M3 before the product; W8A16
// does not. The two differ by that quantization's error: 3 mantissa bits, at most 2^-4 relative
// per element and about 2^-4 / sqrt(3) RMS, which a dot product of random-sign terms keeps as its
// relative error (~3.6%). W8A16 must sit within 6% of the CPU result, and closer to the
// unquantized product than the CPU result is (it drops an error, adds none).
TEST_F(CudaFp8W8a16Test, StaysWithinTheActivationQuantizationErrorOfTheCpuPath) {
  std::mt19937 rng(13);
  const DType d = DType::kBF16;
  for (int m : {1, 4}) {
    Problem p(rng, d, m, 64, 4096);
    const std::vector<double> exact = p.reference(false), cpu = p.reference(true);
    DeviceBuffer y = poisoned(d, static_cast<size_t>(m) * p.n);
    ASSERT_TRUE(gemv_w8a16(stream(), d, p.dx.data(), p.dw.as<uint8_t>(), p.dws.as<float>(),
                           y.data(), m, p.n, p.k)
                    .is_ok());
    const std::vector<float> got = download(d, y, static_cast<size_t>(m) * p.n);
    const double vs_cpu = rel_error(got, cpu), vs_exact = rel_error(got, exact);
    std::vector<float> cpu_f(cpu.begin(), cpu.end());
    const double cpu_vs_exact = rel_error(cpu_f, exact);
    EXPECT_LT(vs_cpu, 6e-2) << "m " << m;
    EXPECT_LT(vs_exact, cpu_vs_exact) << "m " << m;
    EXPECT_LT(vs_exact, 1e-2) << "m " << m;
  }
}

// cuBLASLt's FP8 GEMM with FAST_ACCUM (the prefill switch, Gemm::fp8_fast_accum) against a
// float64 reference of the E4M3 product: the tensor cores' accumulator (about 14 bits, see
// fp8_kernels_test.cpp) is kept over the whole k loop, so the bound is 2e-3 relative at k 1024
// (F32 output; 1e-3 without FAST_ACCUM at k 256).
TEST_F(CudaFp8W8a16Test, CublasLtFastAccumMatchesReference) {
  if (!fp8_device(0)) GTEST_SKIP() << "cuBLASLt FP8 needs compute capability 8.9+";
  std::mt19937 rng(14);
  auto g = Gemm::create();
  ASSERT_TRUE(g.has_value()) << g.status().to_string();
  g->use_gemv(false);
  g->fp8_fast_accum(true);
  for (bool outer : {false, true}) {
    g->fp8_outer_vec(outer);
    const int m = 64, n = 96, k = 1024;
    const std::vector<uint8_t> x = random_codes(rng, static_cast<size_t>(m) * k);
    const std::vector<uint8_t> w = random_codes(rng, static_cast<size_t>(n) * k);
    std::uniform_real_distribution<float> sd(1e-3f, 2e-2f);
    std::vector<float> xs(m), ws(n);
    for (float& v : xs) v = sd(rng);
    for (float& v : ws) v = sd(rng);
    std::vector<double> ref(static_cast<size_t>(m) * n);
    for (int r = 0; r < m; ++r)
      for (int j = 0; j < n; ++j) {
        double acc = 0.0;
        for (int i = 0; i < k; ++i)
          acc += double{model::e4m3_to_f32(x[static_cast<size_t>(r) * k + i])} *
                 model::e4m3_to_f32(w[static_cast<size_t>(j) * k + i]);
        ref[static_cast<size_t>(r) * n + j] =
            acc * xs[static_cast<size_t>(r)] * ws[static_cast<size_t>(j)];
      }
    DeviceBuffer dx = upload_raw(x), dw = upload_raw(w), dxs = upload_raw(xs), dws = upload_raw(ws);
    DeviceBuffer y = poisoned(DType::kF32, ref.size());
    const Status st = g->matmul_fp8(stream(), DType::kF32, dx.as<uint8_t>(), dxs.as<float>(),
                                    dw.as<uint8_t>(), dws.as<float>(), y.data(), m, n, k);
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    EXPECT_LT(rel_error(download(DType::kF32, y, ref.size()), ref), 2e-3)
        << (outer ? "outer-vector scales" : "epilogue scales");
  }
}

TEST_F(CudaFp8W8a16Test, RejectsBadArguments) {
  DeviceBuffer b = poisoned(DType::kF32, 1024);
  const auto* w = static_cast<const uint8_t*>(b.data());
  const auto* s = static_cast<const float*>(b.data());
  void* p = b.data();
  EXPECT_FALSE(gemv_w8a16(stream(), DType::kBF16, p, w, s, p, 1, 8, 24).is_ok());      // k % 16
  EXPECT_FALSE(gemv_w8a16(stream(), DType::kBF16, p, w, s, p, 9, 8, 32).is_ok());      // m > 8
  EXPECT_FALSE(gemv_w8a16(stream(), DType::kF16, p, w, s, p, 1, 8, 32).is_ok());       // f16
  EXPECT_FALSE(gemv_w8a16(stream(), DType::kBF16, p, w + 1, s, p, 1, 8, 32).is_ok());  // align
  EXPECT_FALSE(gemv_w8a16(stream(), DType::kBF16, p, w, s, p, 1, 8, 32, false, 16).is_ok());
  EXPECT_FALSE(gemv_w8a16(stream(), DType::kBF16, p, w, s, p, 1, 8, 32, false, 0, 3).is_ok());
  EXPECT_FALSE(
      gemv_w8a16_swiglu(stream(), DType::kBF16, p, w, s, p, 1, 8, 32, false, 0, 1).is_ok());
}

}  // namespace
}  // namespace turbine::cuda
