// KV tiers on the CUDA backend (issue 24, must-show 1's CUDA half): with a device pool too small
// for the working set, stories260K prompts that share a prefix are sent, evicted, and sent again;
// their blocks come back from the host tier (pinned memory from the backend) or from the disk tier
// through the backend's block export/import, and the greedy outputs equal those of a pool large
// enough that nothing is evicted. F32, one request at a time, so that the schedule (and so the
// GEMM shapes) of the runs compared is the same wherever a block was recomputed.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <future>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "../engine/kv_tiers_test_util.h"
#include "../model/model_test_util.h"
#include "cuda/cuda_backend.h"
#include "cuda/device.h"
#include "engine/engine.h"
#include "kvtier/tier_manager.h"
#include "model/model.h"

namespace turbine::cuda {
namespace {

constexpr int kBlockSize = 16;
constexpr int kSmallPool = 10;  // one prompt and a half: each prompt evicts most of the one before

std::vector<std::vector<int32_t>> prompts(int32_t n_vocab) {
  return engine::testing::kv_tier_prompts(n_vocab, 11);
}

Result<std::unique_ptr<engine::Backend>> backend(const model::Model& m, int64_t kv_bytes) {
  CudaBackendOptions o;
  o.dtype = model::DType::kF32;
  o.block_size = kBlockSize;
  o.max_num_seqs = 2;
  o.kv_cache_memory_bytes = kv_bytes;
  return make_cuda_backend(m, o);
}

struct PassResult {
  std::vector<std::vector<int32_t>> outputs;  // two passes over the prompts
  engine::EngineStats stats;
};

// Two passes over the prompts, one request at a time. `tiers_options` unset: no tiers.
PassResult run_passes(const model::Model& m, int64_t kv_bytes,
                      const kvtier::TierOptions* tiers_options) {
  auto b = backend(m, kv_bytes);
  EXPECT_TRUE(b.has_value()) << b.status().to_string();
  if (!b.has_value()) return {};
  engine::EngineOptions eo;
  eo.max_num_seqs = 2;
  std::shared_ptr<kvtier::TierManager> tiers;
  if (tiers_options != nullptr) {
    const engine::KvLayout layout = (*b)->kv_layout();
    EXPECT_TRUE(layout.exportable());
    auto made =
        kvtier::TierManager::create(*tiers_options, layout.bytes_per_block, (*b)->host_memory());
    EXPECT_TRUE(made.has_value()) << made.status().to_string();
    if (!made.has_value()) return {};
    tiers = std::move(made).value();
    eo.kv_tiers = tiers;
  }
  engine::Engine eng(std::move(b).value(), m.config().n_vocab, eo);
  PassResult r;
  uint64_t id = 1;
  const auto ps = prompts(m.config().n_vocab);
  for (int pass = 0; pass < 2; ++pass) {
    for (const auto& p : ps) r.outputs.push_back(engine::testing::generate_greedy(eng, id++, p));
    if (tiers) {
      // The evicted blocks are stored before the second pass: their copies done (the engine
      // polls them; a bounded wait) and the tier worker idle.
      for (int i = 0; i < 5000 && tiers->stats().offload_inflight_blocks != 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      tiers->drain();
    }
  }
  r.stats = eng.stats();
  eng.shutdown();
  return r;
}

class CudaKvTiersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (device_count() == 0) GTEST_SKIP() << "no CUDA device";
    TURBINE_REQUIRE_ASSET(turbine::testing::stories_gguf());
    auto loaded = model::load_model(turbine::testing::stories_gguf());
    ASSERT_TRUE(loaded.has_value()) << loaded.status().to_string();
    model_ = std::move(loaded).value();
    // The block size in bytes, from a backend's own layout.
    auto probe = backend(*model_, int64_t{64} << 20);
    ASSERT_TRUE(probe.has_value()) << probe.status().to_string();
    block_bytes_ = (*probe)->kv_layout().bytes_per_block;
    ASSERT_GT(block_bytes_, 0);
    probe->reset();
    reference_ = run_passes(*model_, 256 * block_bytes_, nullptr).outputs;
    ASSERT_EQ(reference_.size(), 8u);
    for (const auto& o : reference_) ASSERT_EQ(o.size(), 8u);
  }
  std::unique_ptr<model::Model> model_;
  int64_t block_bytes_ = 0;
  std::vector<std::vector<int32_t>> reference_;
  turbine::testing::TempDir dir_;
};

TEST_F(CudaKvTiersTest, HostTierOnboardsAndOutputsMatch) {
  kvtier::TierOptions o;
  o.host_bytes = 64 * block_bytes_;
  const PassResult r = run_passes(*model_, kSmallPool * block_bytes_, &o);
  EXPECT_EQ(r.outputs, reference_);
  EXPECT_GT(r.stats.kv_tier_host_offloaded_blocks, 0u);
  EXPECT_GT(r.stats.kv_tier_host_onboarded_blocks, 0u);
  EXPECT_GT(r.stats.kv_tier_onboarded_tokens, 0u);
  EXPECT_EQ(r.stats.kv_tier_recomputed_blocks, 0u);
  // The same small pool without tiers recomputes more (and still answers the same).
  const PassResult plain = run_passes(*model_, kSmallPool * block_bytes_, nullptr);
  EXPECT_EQ(plain.outputs, reference_);
  EXPECT_LT(r.stats.prefill_tokens, plain.stats.prefill_tokens);
}

TEST_F(CudaKvTiersTest, DiskTierOnboardsAndOutputsMatch) {
  kvtier::TierOptions o;
  o.disk_path = (dir_.path() / "kv").string();
  o.disk_bytes = 128 * (block_bytes_ + 4096);
  o.disk_min_hits = 1;
  const PassResult r = run_passes(*model_, kSmallPool * block_bytes_, &o);
  EXPECT_EQ(r.outputs, reference_);
  EXPECT_GT(r.stats.kv_tier_disk_offloaded_blocks, 0u);
  EXPECT_GT(r.stats.kv_tier_disk_onboarded_blocks, 0u);
  EXPECT_EQ(r.stats.kv_tier_recomputed_blocks, 0u);
}

// The copy stream's offload against the synchronous export: the pool's blocks land in the
// destinations in the packed layout, and a KV write enqueued right after the copy (the compute
// stream reusing the blocks) neither reaches the copy nor runs before it has read the blocks.
// Then the onboarding upload (write_kv_blocks_async) against the same export.
TEST_F(CudaKvTiersTest, AsyncOffloadReadsTheBlocksAsTheyWereWhenEnqueued) {
  auto made = backend(*model_, 32 * block_bytes_);
  ASSERT_TRUE(made.has_value()) << made.status().to_string();
  engine::Backend& be = **made;
  const auto bb = static_cast<size_t>(block_bytes_);
  const std::vector<int32_t> ids = {5, 2, 9};
  const int n_positions = static_cast<int>(ids.size()) * kBlockSize;
  auto random_bytes = [&](uint32_t seed) {
    std::string b(ids.size() * bb, '\0');
    std::mt19937 rng(seed);
    for (char& c : b) c = static_cast<char>(rng());
    return b;
  };
  const std::string first = random_bytes(1), second = random_bytes(2);
  ASSERT_TRUE(be.write_kv_blocks(ids, first, n_positions).is_ok());
  std::shared_ptr<kvtier::HostMemory> mem = be.host_memory();
  ASSERT_TRUE(mem);
  auto* host = static_cast<uint8_t*>(mem->allocate(ids.size() * bb));
  ASSERT_NE(host, nullptr);
  std::memset(host, 0, ids.size() * bb);
  std::vector<uint8_t*> dst;  // in reverse order: each block goes where it is told
  for (size_t i = 0; i < ids.size(); ++i) dst.push_back(host + (ids.size() - 1 - i) * bb);
  Result<uint64_t> ticket = be.read_kv_blocks_async(ids, dst);
  ASSERT_TRUE(ticket.has_value()) << ticket.status().to_string();
  ASSERT_TRUE(be.write_kv_blocks(ids, second, n_positions).is_ok());
  std::optional<Status> done;
  for (int i = 0; i < 1000 && !(done = be.poll_kv_copy(*ticket)); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (!done) done = be.wait_kv_copy(*ticket);
  ASSERT_TRUE(done->is_ok()) << done->to_string();
  for (size_t i = 0; i < ids.size(); ++i)
    EXPECT_EQ(std::memcmp(dst[i], first.data() + i * bb, bb), 0) << "block " << ids[i];
  std::string now;
  ASSERT_TRUE(be.read_kv_blocks(ids, now).is_ok());
  EXPECT_TRUE(now == second);
  mem->release(host, ids.size() * bb);
  // Onboarding's upload on the copy stream: the bytes are taken at the call (overwritten right
  // after it here), and what runs on the compute stream next (the export) sees them.
  std::string third = random_bytes(3);
  ASSERT_TRUE(be.write_kv_blocks_async(ids, third, n_positions).is_ok());
  const std::string sent = third;
  std::fill(third.begin(), third.end(), '\0');
  now.clear();
  ASSERT_TRUE(be.read_kv_blocks(ids, now).is_ok());
  EXPECT_TRUE(now == sent);
}

}  // namespace
}  // namespace turbine::cuda
