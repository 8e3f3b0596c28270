// FP8 checkpoints on the CUDA backend (issue 28): E4M3 weights kept on the device (cuBLASLt FP8
// GEMMs, gemv_fp8, inputs quantized per token in the fused RMSNorm/SwiGLU kernels) and the E4M3
// KV cache, against the CPU backend's FP8 path on a tiny random compressed-tensors FP8-dynamic
// checkpoint (gen-model --quantization fp8). The dequantize-at-upload path (fp8_weights off)
// stays checked against the CPU backend with input quantization off; the weight-only decode gemv
// (fp8_gemv kW8A16) against both CPU paths.
#include <gtest/gtest.h>

#include <unistd.h>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <vector>

#include "backend_steps.h"
#include "cuda/cuda_backend.h"
#include "cuda/device.h"
#include "cuda/fp8.h"
#include "engine/backend.h"
#include "model/loaded_model.h"
#include "model/model.h"
#include "model/random_model.h"

namespace turbine::cuda {
namespace {

namespace fs = std::filesystem;
using engine::SeqChunk;

class CudaFp8Test : public ::testing::Test {
 protected:
  void SetUp() override {
    if (device_count() == 0) GTEST_SKIP() << "no CUDA device";
    dir_ = fs::temp_directory_path() / ("turbine_cuda_fp8_test_" + std::to_string(::getpid()));
    // F32 scales and norms (see cpu_fp8_parity_test.cpp)
    auto m = testing::write_tiny_model(dir_, model::DType::kF32, model::Quantization::kFp8, 21);
    ASSERT_TRUE(m.has_value()) << m.status().to_string();
    model_ = std::move(m).value();
  }
  void TearDown() override {
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }
  fs::path dir_;
  std::unique_ptr<model::Model> model_;
};

double rel_error(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (double{a[i]} - b[i]) * (double{a[i]} - b[i]);
    den += double{b[i]} * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

// Tolerances (relative L2 of all logits of run_two_sequences()): F32 3e-2, BF16 8e-2. The device
// and the host quantize the same activations, but an element within rounding of the midpoint of two
// E4M3 values (rsqrtf vs 1/sqrt, summation order) may round the other way, and one such flip moves
// later logits by up to a few percent on a tiny random model (tests/tools/fp8_parity.py measured
// 3-5e-2 between the CPU backend and a float64 reference on BF16 checkpoints, where exact midpoints
// are common; this F32 checkpoint has few); BF16 activations also round between the kernels.
double fp8_tolerance(model::DType d) {
  return d == model::DType::kF32 ? 3e-2 : 8e-2;
}
// With the FP8 KV cache as well, K and V are rounded to E4M3 a second time on each side, from
// values that already differ in their last bits: on the H200 (2026-12-07) F32 gave 0.0312 against
// 0.0244 with BF16 KV (BF16: 0.0538 against 0.0393).
double fp8_kv_tolerance(model::DType d) {
  return d == model::DType::kF32 ? 4e-2 : 8e-2;
}

// The index of the largest logit of each row of n_vocab.
std::vector<int> argmax_rows(const std::vector<float>& logits, int n_vocab) {
  std::vector<int> ids;
  for (size_t r = 0; r + static_cast<size_t>(n_vocab) <= logits.size(); r += n_vocab)
    ids.push_back(
        static_cast<int>(std::max_element(logits.begin() + static_cast<int64_t>(r),
                                          logits.begin() + static_cast<int64_t>(r) + n_vocab) -
                         logits.begin() - static_cast<int64_t>(r)));
  return ids;
}

CudaBackendOptions small_options(model::DType d) {
  CudaBackendOptions o;
  o.dtype = d;
  o.max_context = 256;
  o.max_num_seqs = 2;
  o.max_num_batched_tokens = 256;
  o.kv_cache_memory_bytes = int64_t{64} << 20;
  // The activation-quantizing (A8) path, whose semantics the CPU backend's FP8 path shares; the
  // default weight-only decode gemv has its own test (W8a16DecodeStaysBetweenTheCpuPaths).
  o.fp8_gemv = CudaBackendOptions::Fp8Gemv::kA8;
  return o;
}

TEST_F(CudaFp8Test, DequantizedFp8CheckpointMatchesCpuBackendWithoutInputQuantization) {
  // The CPU reference without input quantization: the maths of the dequantize-at-upload path.
  auto* loaded = dynamic_cast<model::LoadedModel*>(model_.get());
  ASSERT_NE(loaded, nullptr);
  int fp8 = 0;
  for (model::LayerWeights& L : loaded->mutable_weights().layers) {
    for (model::TensorView* t : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) {
      fp8 += t->dtype == model::DType::kF8E4M3;
      t->input_quant = model::InputQuant{};
    }
  }
  ASSERT_EQ(fp8, 14);  // 2 layers x 7 projections
  engine::CpuBackendOptions copts;
  copts.n_threads = 2;
  copts.max_num_seqs = 2;
  copts.max_context = 256;
  auto cpu = engine::make_cpu_backend(*model_, copts);
  ASSERT_TRUE(cpu.has_value()) << cpu.status().to_string();
  const std::vector<float> ref = testing::run_two_sequences(**cpu);
  for (model::DType d : {model::DType::kF32, model::DType::kBF16}) {
    CudaBackendOptions o = small_options(d);
    o.fp8_weights = false;  // dequantized at upload
    auto gpu = make_cuda_backend(*model_, o);
    ASSERT_TRUE(gpu.has_value()) << gpu.status().to_string();
    const std::vector<float> out = testing::run_two_sequences(**gpu);
    ASSERT_EQ(out.size(), ref.size());
    EXPECT_LT(rel_error(out, ref), d == model::DType::kF32 ? 1e-4 : 4e-2) << model::dtype_name(d);
  }
}

TEST_F(CudaFp8Test, Fp8WeightsOnTheDeviceMatchTheCpuFp8Path) {
  if (!fp8_device(0)) GTEST_SKIP() << "FP8 weights stay E4M3 on sm_89+ only";
  engine::CpuBackendOptions copts;
  copts.n_threads = 2;
  copts.max_num_seqs = 2;
  copts.max_context = 256;
  auto cpu = engine::make_cpu_backend(*model_, copts);
  ASSERT_TRUE(cpu.has_value()) << cpu.status().to_string();
  const std::vector<float> ref = testing::run_two_sequences(**cpu);
  const int vocab = model_->config().n_vocab;
  for (model::DType d : {model::DType::kF32, model::DType::kBF16}) {
    auto gpu = make_cuda_backend(*model_, small_options(d));
    ASSERT_TRUE(gpu.has_value()) << gpu.status().to_string();
    const std::vector<float> out = testing::run_two_sequences(**gpu);
    ASSERT_EQ(out.size(), ref.size());
    const double err = rel_error(out, ref);
    EXPECT_LT(err, fp8_tolerance(d)) << model::dtype_name(d);
    const std::vector<int> a = argmax_rows(out, vocab), b = argmax_rows(ref, vocab);
    int same = 0;
    for (size_t i = 0; i < a.size(); ++i) same += a[i] == b[i];
    std::printf("[ fp8 ] %s: logits rel L2 %.3g vs CPU FP8, greedy %d of %zu rows equal\n",
                model::dtype_name(d), err, same, a.size());
    if (d == model::DType::kF32) {
      EXPECT_GE(same + 1, static_cast<int>(a.size()));  // at most one near tie may part
    }
  }
}

// fp8_gemv kW8A16: the decode steps of run_two_sequences() (2 rows) take the weight-only gemv,
// which does not quantize the activations; the prefill keeps cuBLASLt's FP8 GEMM. The logits then
// sit between the CPU's FP8 path (activations quantized per token) and the CPU without input
// quantization: within fp8_tolerance of the FP8 path plus the distance between the two CPU paths.
TEST_F(CudaFp8Test, W8a16DecodeStaysBetweenTheCpuPaths) {
  if (!fp8_device(0)) GTEST_SKIP() << "FP8 weights stay E4M3 on sm_89+ only";
  engine::CpuBackendOptions copts;
  copts.n_threads = 2;
  copts.max_num_seqs = 2;
  copts.max_context = 256;
  auto cpu = engine::make_cpu_backend(*model_, copts);
  ASSERT_TRUE(cpu.has_value()) << cpu.status().to_string();
  const std::vector<float> ref_q = testing::run_two_sequences(**cpu);
  std::vector<std::vector<float>> outs;
  for (model::DType d : {model::DType::kF32, model::DType::kBF16}) {
    CudaBackendOptions o = small_options(d);
    o.fp8_gemv = CudaBackendOptions::Fp8Gemv::kW8A16;
    auto gpu = make_cuda_backend(*model_, o);
    ASSERT_TRUE(gpu.has_value()) << gpu.status().to_string();
    outs.push_back(testing::run_two_sequences(**gpu));
  }
  auto* loaded = dynamic_cast<model::LoadedModel*>(model_.get());
  ASSERT_NE(loaded, nullptr);
  for (model::LayerWeights& L : loaded->mutable_weights().layers)
    for (model::TensorView* t : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down})
      t->input_quant = model::InputQuant{};
  auto cpu_nq = engine::make_cpu_backend(*model_, copts);
  ASSERT_TRUE(cpu_nq.has_value()) << cpu_nq.status().to_string();
  const std::vector<float> ref_nq = testing::run_two_sequences(**cpu_nq);
  const double paths = rel_error(ref_nq, ref_q);
  size_t i = 0;
  for (model::DType d : {model::DType::kF32, model::DType::kBF16}) {
    const std::vector<float>& out = outs[i++];
    ASSERT_EQ(out.size(), ref_q.size());
    const double err = rel_error(out, ref_q);
    std::printf(
        "[ fp8 ] %s W8A16 decode: logits rel L2 %.3g vs CPU FP8, %.3g vs CPU without "
        "input quantization (CPU paths %.3g apart)\n",
        model::dtype_name(d), err, rel_error(out, ref_nq), paths);
    EXPECT_LT(err, fp8_tolerance(d) + paths) << model::dtype_name(d);
  }
}

TEST_F(CudaFp8Test, Fp8KvCacheMatchesTheCpuFp8KvCache) {
  if (!fp8_device(0)) {
    auto gpu = [&] {
      CudaBackendOptions o = small_options(model::DType::kBF16);
      o.kv_cache_dtype = engine::KvCacheDtype::kFp8;
      return make_cuda_backend(*model_, o);
    }();
    ASSERT_FALSE(gpu.has_value());
    EXPECT_EQ(gpu.status().code(), StatusCode::kUnimplemented);
    EXPECT_NE(gpu.status().message().find("8.9"), std::string::npos) << gpu.status().to_string();
    return;
  }
  engine::CpuBackendOptions copts;
  copts.n_threads = 2;
  copts.max_num_seqs = 2;
  copts.max_context = 256;
  copts.kv_cache_dtype = engine::KvCacheDtype::kFp8;
  auto cpu = engine::make_cpu_backend(*model_, copts);
  ASSERT_TRUE(cpu.has_value()) << cpu.status().to_string();
  const std::vector<float> ref = testing::run_two_sequences(**cpu);
  for (model::DType d : {model::DType::kF32, model::DType::kBF16}) {
    for (bool graphs : {true, false}) {
      CudaBackendOptions o = small_options(d);
      o.kv_cache_dtype = engine::KvCacheDtype::kFp8;
      o.cuda_graphs = graphs;
      auto gpu = make_cuda_backend(*model_, o);
      ASSERT_TRUE(gpu.has_value()) << gpu.status().to_string();
      EXPECT_EQ((*gpu)->kv_layout().dtype, "fp8");
      const std::vector<float> out = testing::run_two_sequences(**gpu);
      ASSERT_EQ(out.size(), ref.size());
      const double err = rel_error(out, ref);
      EXPECT_LT(err, fp8_kv_tolerance(d)) << model::dtype_name(d) << (graphs ? " graphs" : "");
      std::printf("[ fp8 kv ] %s%s: logits rel L2 %.3g vs CPU FP8 KV\n", model::dtype_name(d),
                  graphs ? " (graphs)" : "", err);
    }
  }
}

TEST_F(CudaFp8Test, Fp8KvCacheHoldsTwiceTheBf16Positions) {
  const model::ModelConfig& c = model_->config();
  EXPECT_EQ(cuda_kv_bytes_per_token(c, model::DType::kBF16, engine::KvCacheDtype::kFp8) * 2,
            cuda_kv_bytes_per_token(c, model::DType::kBF16));
  if (!fp8_device(0)) GTEST_SKIP() << "the FP8 KV cache needs sm_89+";
  int blocks[2] = {0, 0};
  for (int fp8 = 0; fp8 < 2; ++fp8) {
    CudaBackendOptions o = small_options(model::DType::kBF16);
    o.max_num_seqs = 256;  // the budget, not the sequences, bounds the blocks
    o.kv_cache_memory_bytes = int64_t{1} << 20;
    if (fp8 != 0) o.kv_cache_dtype = engine::KvCacheDtype::kFp8;
    auto gpu = make_cuda_backend(*model_, o);
    ASSERT_TRUE(gpu.has_value()) << gpu.status().to_string();
    blocks[fp8] = (*gpu)->num_blocks();
  }
  EXPECT_EQ(blocks[1], 2 * blocks[0]);
}

}  // namespace
}  // namespace turbine::cuda
