// The E4M3 LM head of decode steps (CudaBackendOptions::fp8_lm_head): gemv_w8a16_out with F32
// logits from BF16 activations against a float64 reference and against the BF16-output kernel it
// extends (the same F32 sums, rounded once more), and the backend's logits with the E4M3 head
// against its BF16 head (they differ by the head's E4M3 rounding only).
#include <gtest/gtest.h>

#include <unistd.h>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <random>
#include <vector>

#include "backend_steps.h"
#include "cuda/cuda_backend.h"
#include "cuda/fp8.h"
#include "cuda_test_util.h"
#include "engine/backend.h"
#include "model/dtype.h"
#include "model/model.h"
#include "model/random_model.h"

namespace turbine::cuda {
namespace {

using model::DType;
using testing::CudaTest;
using testing::download;
using testing::poisoned;
using testing::random_values;
using testing::rel_error;
using testing::upload;
using testing::upload_raw;

class CudaFp8LmHeadTest : public CudaTest {};

TEST_F(CudaFp8LmHeadTest, F32OutputIsTheBf16KernelsSumUnrounded) {
  std::mt19937 rng(31);
  const int n = 1000, k = 512;  // n not a multiple of the rows per warp
  std::vector<uint8_t> w(static_cast<size_t>(n) * k);
  std::uniform_int_distribution<int> code(0, 253);
  for (uint8_t& c : w) {
    c = static_cast<uint8_t>(code(rng));
    if ((c & 0x7f) == 0x7f) c = 0x10;  // 0x7f / 0xff are NaN
  }
  std::vector<float> ws(n);
  std::uniform_real_distribution<float> sd(1e-3f, 2e-2f);
  for (float& s : ws) s = sd(rng);
  const DeviceBuffer dw = upload_raw(w), dws = upload_raw(ws);
  for (int m : {1, 2, 5}) {
    const std::vector<float> x = random_values(rng, static_cast<size_t>(m) * k, DType::kBF16);
    const DeviceBuffer dx = upload(DType::kBF16, x);
    std::vector<double> ref(static_cast<size_t>(m) * n);
    for (int r = 0; r < m; ++r)
      for (int j = 0; j < n; ++j) {
        double acc = 0.0;
        for (int i = 0; i < k; ++i)
          acc += double{x[static_cast<size_t>(r) * k + i]} *
                 model::e4m3_to_f32(w[static_cast<size_t>(j) * k + i]);
        ref[static_cast<size_t>(r) * n + j] = acc * ws[static_cast<size_t>(j)];
      }
    DeviceBuffer y32 = poisoned(DType::kF32, static_cast<size_t>(m) * n);
    DeviceBuffer y16 = poisoned(DType::kBF16, static_cast<size_t>(m) * n);
    ASSERT_TRUE(gemv_w8a16_out(stream(), DType::kBF16, DType::kF32, dx.data(), dw.as<uint8_t>(),
                               dws.as<float>(), y32.data(), m, n, k)
                    .is_ok());
    ASSERT_TRUE(gemv_w8a16(stream(), DType::kBF16, dx.data(), dw.as<uint8_t>(), dws.as<float>(),
                           y16.data(), m, n, k)
                    .is_ok());
    const std::vector<float> f32 = download(DType::kF32, y32, static_cast<size_t>(m) * n);
    const std::vector<float> b16 = download(DType::kBF16, y16, static_cast<size_t>(m) * n);
    EXPECT_LT(rel_error(f32, ref), 1e-5) << "m " << m;
    for (size_t i = 0; i < f32.size(); ++i) {
      ASSERT_EQ(model::bf16_to_f32(model::f32_to_bf16(f32[i])), b16[i]) << "m " << m << " i " << i;
    }
  }
  // F16 output, or F32 output of SwiGLU, is refused.
  DeviceBuffer y = poisoned(DType::kF32, n);
  const DeviceBuffer dx = upload(DType::kBF16, std::vector<float>(k, 0.5f));
  EXPECT_EQ(gemv_w8a16_out(stream(), DType::kBF16, DType::kF16, dx.data(), dw.as<uint8_t>(),
                           dws.as<float>(), y.data(), 1, n, k)
                .code(),
            StatusCode::kInvalidArgument);
}

// The tiny FP8 checkpoint on a BF16 backend (W8A16 decode): every logits row of a prefill step
// of two prompts and three decode steps of two sequences (all <= 2 rows: the E4M3 head serves
// each, testing::run_two_sequences), with and without fp8_lm_head.
TEST(CudaFp8LmHeadBackend, LogitsMoveByTheHeadsE4m3RoundingOnly) {
  if (device_count() == 0) GTEST_SKIP() << "no CUDA device";
  if (!fp8_device(0)) GTEST_SKIP() << "FP8 weights stay E4M3 on sm_89+ only";
  namespace fs = std::filesystem;
  const fs::path dir =
      fs::temp_directory_path() / ("turbine_cuda_lm8_test_" + std::to_string(::getpid()));
  auto m = testing::write_tiny_model(dir, DType::kBF16, model::Quantization::kFp8, 9);
  std::error_code ec;
  fs::remove_all(dir, ec);
  ASSERT_TRUE(m.has_value()) << m.status().to_string();
  CudaBackendOptions o;
  o.dtype = DType::kBF16;
  o.max_context = 256;
  o.max_num_seqs = 2;
  o.max_num_batched_tokens = 256;
  o.kv_cache_memory_bytes = int64_t{64} << 20;
  o.fp8_gemv = CudaBackendOptions::Fp8Gemv::kW8A16;
  std::vector<float> bf16_head, e4m3_head;
  for (bool lm8 : {false, true}) {
    o.fp8_lm_head = lm8;
    auto b = make_cuda_backend(**m, o);
    ASSERT_TRUE(b.has_value()) << b.status().to_string();
    (lm8 ? e4m3_head : bf16_head) = testing::run_two_sequences(**b);
  }
  ASSERT_EQ(bf16_head.size(), e4m3_head.size());
  ASSERT_FALSE(bf16_head.empty());
  // Per-row E4M3 weights: 3 mantissa bits, about 2^-4 / sqrt(3) relative RMS per weight, which a
  // dot product of random-sign terms keeps (~3.6%); 0 would mean the head was not used.
  const double err = rel_error(e4m3_head, std::vector<double>(bf16_head.begin(), bf16_head.end()));
  EXPECT_GT(err, 1e-4);
  EXPECT_LT(err, 8e-2);
}

}  // namespace
}  // namespace turbine::cuda
