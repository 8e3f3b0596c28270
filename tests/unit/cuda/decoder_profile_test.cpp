// The CUDA backend's op profile (CudaBackendOptions::profile, `turbine_generate --profile-ops`):
// a profiled backend computes the same logits as an unprofiled eager one (the events bracket the
// same kernels; held or not until the step is enqueued, cuda/launch_hold.h), and every step's ops
// land in their kinds with the counts the step's shape implies — the FP8 scale epilogue and
// quantize passes apart from the projections.
#include <gtest/gtest.h>

#include <unistd.h>
#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backend_steps.h"
#include "cuda/cuda_backend.h"
#include "cuda/device.h"
#include "cuda/fp8.h"
#include "cuda/launch_hold.h"
#include "cuda/op_timer.h"
#include "engine/backend.h"
#include "model/model.h"
#include "model/random_model.h"

namespace turbine::cuda {
namespace {

namespace fs = std::filesystem;
using engine::SeqChunk;

class CudaProfileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (device_count() == 0) GTEST_SKIP() << "no CUDA device";
    dir_ = fs::temp_directory_path() / ("turbine_cuda_profile_test_" + std::to_string(::getpid()));
    // E4M3 projections on sm_89+
    auto m = testing::write_tiny_model(dir_, model::DType::kF32, model::Quantization::kFp8, 5);
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

CudaBackendOptions options(model::DType d) {
  CudaBackendOptions o;
  o.dtype = d;
  o.max_context = 256;
  o.max_num_seqs = 2;
  o.max_num_batched_tokens = 256;
  o.kv_cache_memory_bytes = int64_t{64} << 20;
  o.cuda_graphs = false;  // the profiled backend runs eagerly: so does its peer
  return o;
}

// testing::run_two_sequences: one batched prefill of two prompts (32 rows: the cuBLASLt paths),
// then three decode steps of two rows (the skinny paths).
constexpr int kPrefillSteps = 1, kDecodeSteps = 3;

std::map<std::string, OpTimer::Row> rows_by_name(const OpTimer& t) {
  std::map<std::string, OpTimer::Row> m;
  for (const OpTimer::Row& r : t.rows()) m[r.name] = r;
  return m;
}

struct Case {
  const char* name;
  model::DType dtype;
  bool fp8_weights;
  CudaBackendOptions::Fp8Gemv gemv;
  bool hold = true;  // CudaBackendOptions::profile_hold
};

TEST_F(CudaProfileTest, ProfiledStepsGiveTheSameLogitsAndCountEveryOp) {
  const int n_layers = model_->config().n_layers;
  const bool fp8_ok = fp8_device(0);
  const Case cases[] = {
      {"bf16 dequantized", model::DType::kBF16, false, CudaBackendOptions::Fp8Gemv::kW8A16},
      {"bf16 dequantized, not held", model::DType::kBF16, false,
       CudaBackendOptions::Fp8Gemv::kW8A16, false},
      {"f32 dequantized", model::DType::kF32, false, CudaBackendOptions::Fp8Gemv::kW8A16},
      {"bf16 fp8 w8a16", model::DType::kBF16, true, CudaBackendOptions::Fp8Gemv::kW8A16},
      {"bf16 fp8 a8", model::DType::kBF16, true, CudaBackendOptions::Fp8Gemv::kA8},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    if (c.fp8_weights && !fp8_ok) continue;  // E4M3 weights stay on sm_89+ only
    CudaBackendOptions o = options(c.dtype);
    o.fp8_weights = c.fp8_weights;
    o.fp8_gemv = c.gemv;
    std::vector<float> want;
    {
      auto plain = make_cuda_backend(*model_, o);
      ASSERT_TRUE(plain.has_value()) << plain.status().to_string();
      want = testing::run_two_sequences(**plain, kDecodeSteps);
    }  // its KV cache freed before the next backend
    auto timer = std::make_shared<OpTimer>();
    o.profile = timer;
    o.profile_hold = c.hold;
    o.cuda_graphs = true;  // the profile turns graphs off itself
    auto profiled = make_cuda_backend(*model_, o);
    ASSERT_TRUE(profiled.has_value()) << profiled.status().to_string();
    const std::vector<float> got = testing::run_two_sequences(**profiled, kDecodeSteps);
    ASSERT_EQ(got.size(), want.size());
    EXPECT_EQ(got, want);  // the same kernels in the same order: bitwise equal

    const int steps = kPrefillSteps + kDecodeSteps;
    EXPECT_EQ(timer->passes(), steps);
    EXPECT_GT(timer->wall_ms(), 0.0);
    EXPECT_GT(timer->busy_ms(), 0.0);
    auto rows = rows_by_name(*timer);
    EXPECT_EQ(rows["H2D staging"].calls, steps);
    EXPECT_EQ(rows["embedding"].calls, steps);
    EXPECT_EQ(rows["QKV"].calls, steps * n_layers);
    EXPECT_EQ(rows["O"].calls, steps * n_layers);
    EXPECT_EQ(rows["down"].calls, steps * n_layers);
    EXPECT_EQ(rows["rope+KV write"].calls, steps * n_layers);
    EXPECT_EQ(rows["attention prefill"].calls, kPrefillSteps * n_layers);
    EXPECT_EQ(rows["attention decode"].calls, kDecodeSteps * n_layers);
    EXPECT_EQ(rows["final add+norm"].calls, steps);
    EXPECT_EQ(rows["LM head"].calls, steps);
    EXPECT_EQ(rows["D2H outputs"].calls, steps);
    EXPECT_GT(rows["QKV"].flops, 0.0);
    EXPECT_GT(rows["attention decode"].bytes, 0.0);
    // Two norms per layer: plain, or quantizing for an A8 / cuBLASLt FP8 projection.
    EXPECT_EQ(rows["add+rmsnorm"].calls + rows["add+rmsnorm+quant"].calls, 2 * steps * n_layers);
    if (!c.fp8_weights) {
      EXPECT_EQ(rows["fp8 scale epilogue"].calls, 0);
      EXPECT_EQ(rows["fp8 quantize (O in)"].calls, 0);
      EXPECT_EQ(rows["add+rmsnorm+quant"].calls, 0);
    } else {
      // The prefill step's four projections per layer run cuBLASLt's FP8 GEMM, each followed by
      // its scale epilogue (outer-vector scales off); the decode steps of two rows run gemv_fp8
      // (A8) or gemv_w8a16, which apply the scales themselves.
      EXPECT_EQ(rows["fp8 scale epilogue"].calls, 4 * kPrefillSteps * n_layers);
      const int quantized_steps = c.gemv == CudaBackendOptions::Fp8Gemv::kA8 ? steps : 1;
      EXPECT_EQ(rows["fp8 quantize (O in)"].calls, quantized_steps * n_layers);
      EXPECT_EQ(rows["add+rmsnorm+quant"].calls, 2 * quantized_steps * n_layers);
    }
    timer->reset();
    EXPECT_EQ(timer->passes(), 0);
    EXPECT_EQ(timer->busy_ms(), 0.0);
  }
}

// Device sampling under the profile: the draw is its own kind, and greedy tokens equal the
// argmax of the profiled logits.
TEST_F(CudaProfileTest, SamplingIsTimedApart) {
  CudaBackendOptions o = options(model::DType::kBF16);
  o.fp8_weights = false;
  auto timer = std::make_shared<OpTimer>();
  o.profile = timer;
  auto b = make_cuda_backend(*model_, o);
  ASSERT_TRUE(b.has_value()) << b.status().to_string();
  ASSERT_TRUE((*b)->supports_sampling());
  engine::testing::SlotTables tables(**b);
  const auto t0 = tables(0);
  std::vector<int32_t> p0{5, 17, 99, 230, 7};
  std::vector<engine::RowSampling> greedy(1);
  greedy[0].temperature = 0.0f;
  std::vector<int32_t> tokens;
  std::vector<float> logits;
  ASSERT_TRUE((*b)->forward_sample(std::vector<SeqChunk>{{t0, 0, p0, true}}, greedy, tokens, logits)
                  .is_ok());
  ASSERT_EQ(tokens.size(), 1u);
  EXPECT_TRUE(logits.empty());  // nothing on the host
  auto rows = rows_by_name(*timer);
  EXPECT_EQ(rows["sampling"].calls, 1);
  EXPECT_EQ(rows["LM head"].calls, 1);
  // The same prompt again (in other blocks) through forward(): its argmax is the greedy token.
  const auto t1 = tables(1);
  ASSERT_TRUE((*b)->forward(std::vector<SeqChunk>{{t1, 0, p0, true}}, logits).is_ok());
  ASSERT_EQ(logits.size(), static_cast<size_t>(model_->config().n_vocab));
  EXPECT_EQ(std::max_element(logits.begin(), logits.end()) - logits.begin(), tokens[0]);
  EXPECT_EQ(timer->passes(), 2);
}

// The hold keeps the stream's work back until release() (here with a 10 s bound: far longer than
// the calls between), and gives up by itself when nobody releases it.
TEST(CudaProfileHold, HoldsUntilReleasedAndGivesUpAlone) {
  if (device_count() == 0) GTEST_SKIP() << "no CUDA device";
  auto stream = Stream::create();
  ASSERT_TRUE(stream.has_value()) << stream.status().to_string();
  auto hold = LaunchHold::create();
  ASSERT_TRUE(hold.has_value()) << hold.status().to_string();
  auto buf = DeviceBuffer::allocate(64);
  ASSERT_TRUE(buf.has_value());
  cudaStream_t s = stream->get();
  ASSERT_TRUE(hold->hold(s, 10'000.0).is_ok());
  ASSERT_EQ(cudaMemsetAsync(buf->data(), 7, 64, s), cudaSuccess);
  EXPECT_EQ(cudaStreamQuery(s), cudaErrorNotReady);  // still held
  hold->release();
  ASSERT_TRUE(stream->synchronize().is_ok());
  uint8_t host[64] = {};
  ASSERT_EQ(cudaMemcpy(host, buf->data(), 64, cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(host[63], 7);
  // Not released: the spin ends after its bound (1 ms) and the stream drains.
  ASSERT_TRUE(hold->hold(s, 1.0).is_ok());
  ASSERT_TRUE(stream->synchronize().is_ok());
  hold->release();
}

}  // namespace
}  // namespace turbine::cuda
