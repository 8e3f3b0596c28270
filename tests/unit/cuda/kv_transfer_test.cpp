// KV export/import of the CUDA backend (disaggregated serving, issue 8): host-staged
// read/write_kv_blocks and the device-to-device copy from a peer's pool
// (copy_kv_blocks_from_pool; in one process it uses the peer's pointers, across processes CUDA
// IPC — that path runs in the two-worker GPU check, tests/gpu/run.sh disagg). A sequence prefilled
// on one backend and finished on another gives bit-identical logits; the F32 layout is the CPU
// backend's, so a CPU prefill can feed a GPU decode.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <numeric>

#include "../model/model_test_util.h"
#include "cuda/cuda_backend.h"
#include "cuda/device.h"
#include "engine/backend.h"
#include "model/model.h"
#include "model/random_model.h"

namespace turbine::cuda {
namespace {

namespace fs = std::filesystem;
using engine::SeqChunk;

class CudaKvTransferTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (device_count() == 0) GTEST_SKIP() << "no CUDA device";
    dir_ = fs::temp_directory_path() / ("turbine_cuda_kv_test_" + std::to_string(::getpid()));
    model::RandomModelOptions o;
    o.arch = model::Arch::kLlama;
    o.shape = "tiny";
    o.dtype = model::DType::kF32;
    o.seed = 11;
    auto bytes = model::write_random_model(o, dir_);
    ASSERT_TRUE(bytes.has_value()) << bytes.status().to_string();
    auto m = model::load_model(dir_);
    ASSERT_TRUE(m.has_value()) << m.status().to_string();
    model_ = std::move(m).value();
  }
  void TearDown() override {
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }
  std::unique_ptr<engine::Backend> backend(model::DType dtype, int block_size = 4) {
    CudaBackendOptions o;
    o.dtype = dtype;
    o.block_size = block_size;
    o.max_num_seqs = 2;
    o.max_context = 256;
    o.kv_cache_memory_bytes = int64_t{8} << 20;
    auto b = make_cuda_backend(*model_, o);
    EXPECT_TRUE(b.has_value()) << b.status().to_string();
    return b.has_value() ? std::move(b).value() : nullptr;
  }
  std::vector<int32_t> prompt() const {
    std::vector<int32_t> p(23);
    for (size_t i = 0; i < p.size(); ++i) p[i] = static_cast<int32_t>((i * 29 + 3) % 200 + 2);
    return p;
  }
  fs::path dir_;
  std::unique_ptr<model::Model> model_;
};

std::vector<int32_t> table(int first, int step, int n) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) t[static_cast<size_t>(i)] = first + step * i;
  return t;
}

TEST_F(CudaKvTransferTest, HostStagedAndPoolCopiesGiveIdenticalLogits) {
  for (model::DType dtype : {model::DType::kF32, model::DType::kBF16}) {
    SCOPED_TRACE(model::dtype_name(dtype));
    auto a = backend(dtype), b = backend(dtype), c = backend(dtype);
    ASSERT_TRUE(a && b && c);
    const engine::KvLayout layout = a->kv_layout();
    ASSERT_TRUE(layout.exportable());
    EXPECT_EQ(layout, b->kv_layout());
    EXPECT_EQ(layout.dtype, dtype == model::DType::kF32 ? "f32" : "bf16");
    const auto& cfg = model_->config();
    EXPECT_EQ(layout.bytes_per_block, int64_t{2} * cfg.n_layers * 4 * cfg.n_kv_heads *
                                          cfg.head_dim * (dtype == model::DType::kF32 ? 4 : 2));
    EXPECT_FALSE(a->kv_pool_descriptor().empty());

    const auto p = prompt();
    const int n = static_cast<int>(p.size());
    const int n_blocks = (n - 1 + 3) / 4;
    const auto ta = table(0, 1, n_blocks + 1), tb = table(40, 3, n_blocks + 1),
               tc = table(100, 2, n_blocks + 1);
    std::vector<float> logits_a, logits_b, logits_c, unused;
    const SeqChunk pre{ta, 0, std::span<const int32_t>(p).first(n - 1), false};
    ASSERT_TRUE(a->forward({&pre, 1}, unused).is_ok());

    // Host-staged: a -> bytes -> b.
    std::string bytes = "x";  // read appends
    ASSERT_TRUE(a->read_kv_blocks(std::span<const int32_t>(ta).first(n_blocks), bytes).is_ok());
    ASSERT_EQ(static_cast<int64_t>(bytes.size()), 1 + n_blocks * layout.bytes_per_block);
    bytes.erase(0, 1);
    const SeqChunk last_b{tb, n - 1, std::span<const int32_t>(p).subspan(n - 1), true};
    EXPECT_FALSE(b->forward({&last_b, 1}, logits_b).is_ok());  // nothing written there yet
    EXPECT_FALSE(b->write_kv_blocks(std::span<const int32_t>(tb).first(n_blocks),
                                    std::string_view(bytes).substr(1), n - 1)
                     .is_ok());
    const std::vector<int32_t> bad = {100000};
    std::string ignored;
    EXPECT_FALSE(a->read_kv_blocks(bad, ignored).is_ok());
    ASSERT_TRUE(
        b->write_kv_blocks(std::span<const int32_t>(tb).first(n_blocks), bytes, n - 1).is_ok());

    // Device to device: a's pool -> c.
    EXPECT_FALSE(c->copy_kv_blocks_from_pool("garbage", std::span<const int32_t>(ta).first(1),
                                             std::span<const int32_t>(tc).first(1), 4)
                     .is_ok());
    ASSERT_TRUE(c->copy_kv_blocks_from_pool(a->kv_pool_descriptor(),
                                            std::span<const int32_t>(ta).first(n_blocks),
                                            std::span<const int32_t>(tc).first(n_blocks), n - 1)
                    .is_ok());

    // The bytes c now holds are a's, block for block (read before the next step writes more).
    std::string from_c;
    ASSERT_TRUE(c->read_kv_blocks(std::span<const int32_t>(tc).first(n_blocks), from_c).is_ok());
    EXPECT_EQ(from_c, bytes);

    const SeqChunk last_a{ta, n - 1, std::span<const int32_t>(p).subspan(n - 1), true};
    const SeqChunk last_c{tc, n - 1, std::span<const int32_t>(p).subspan(n - 1), true};
    ASSERT_TRUE(a->forward({&last_a, 1}, logits_a).is_ok());
    ASSERT_TRUE(b->forward({&last_b, 1}, logits_b).is_ok());
    ASSERT_TRUE(c->forward({&last_c, 1}, logits_c).is_ok());
    ASSERT_EQ(logits_a.size(), logits_b.size());
    ASSERT_EQ(logits_a.size(), logits_c.size());
    EXPECT_EQ(0, std::memcmp(logits_a.data(), logits_b.data(), logits_a.size() * sizeof(float)));
    EXPECT_EQ(0, std::memcmp(logits_a.data(), logits_c.data(), logits_a.size() * sizeof(float)));
  }
}

TEST_F(CudaKvTransferTest, PoolOfAnotherLayoutIsRefused) {
  auto a = backend(model::DType::kF32, 4), b = backend(model::DType::kF32, 8),
       c = backend(model::DType::kBF16, 4);
  ASSERT_TRUE(a && b && c);
  const std::vector<int32_t> one = {0};
  EXPECT_EQ(b->copy_kv_blocks_from_pool(a->kv_pool_descriptor(), one, one, 4).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(c->copy_kv_blocks_from_pool(a->kv_pool_descriptor(), one, one, 4).code(),
            StatusCode::kInvalidArgument);
  const std::vector<int32_t> far = {1 << 30};
  EXPECT_FALSE(a->copy_kv_blocks_from_pool(a->kv_pool_descriptor(), far, one, 4).is_ok());
}

// The F32 layout is the CPU backend's: a CPU prefill's blocks decode on the GPU.
TEST_F(CudaKvTransferTest, CpuBlocksDecodeOnTheGpu) {
  engine::CpuBackendOptions co;
  co.n_threads = 1;
  co.max_num_seqs = 2;
  co.block_size = 4;
  auto cpu = engine::make_cpu_backend(*model_, co);
  ASSERT_TRUE(cpu.has_value());
  auto gpu = backend(model::DType::kF32);
  ASSERT_TRUE(gpu);
  ASSERT_EQ((*cpu)->kv_layout(), gpu->kv_layout());
  const auto p = prompt();
  const int n = static_cast<int>(p.size());
  const int n_blocks = (n - 1 + 3) / 4;
  const auto t = table(0, 1, n_blocks + 1);
  std::vector<float> ref, got, unused;
  const SeqChunk pre{t, 0, std::span<const int32_t>(p).first(n - 1), false};
  ASSERT_TRUE((*cpu)->forward({&pre, 1}, unused).is_ok());
  std::string bytes;
  ASSERT_TRUE((*cpu)->read_kv_blocks(std::span<const int32_t>(t).first(n_blocks), bytes).is_ok());
  ASSERT_TRUE(
      gpu->write_kv_blocks(std::span<const int32_t>(t).first(n_blocks), bytes, n - 1).is_ok());
  const SeqChunk last{t, n - 1, std::span<const int32_t>(p).subspan(n - 1), true};
  ASSERT_TRUE((*cpu)->forward({&last, 1}, ref).is_ok());
  ASSERT_TRUE(gpu->forward({&last, 1}, got).is_ok());
  ASSERT_EQ(ref.size(), got.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    num += (double{got[i]} - ref[i]) * (double{got[i]} - ref[i]);
    den += double{ref[i]} * ref[i];
  }
  EXPECT_LT(std::sqrt(num / den), 1e-4);
}

}  // namespace
}  // namespace turbine::cuda
