// KV tiers through the real engine and the CPU backend (issue 24): with a device pool too small
// for the working set, prompts that share prefixes are sent, evicted, and sent again; the blocks
// come back from the host tier or the disk tier and the greedy outputs equal those of a pool
// large enough that nothing is evicted. A corrupted disk block is detected and recomputed.
#include <gtest/gtest.h>

#include <future>
#include <random>
#include <set>

#include "../model/model_test_util.h"
#include "engine/engine.h"
#include "kv/block_hash.h"
#include "kv_tiers_test_util.h"
#include "kvtier/tier_manager.h"
#include "model/model.h"

namespace turbine::engine {
namespace {

std::vector<std::vector<int32_t>> prompts(int32_t n_vocab) {
  return testing::kv_tier_prompts(n_vocab, 7);
}
using testing::cpu_block_bytes;
using testing::generate_greedy;

struct PassResult {
  std::vector<std::vector<int32_t>> outputs;  // two passes over the prompts
  EngineStats stats;
};

// Two passes over the prompts, one request at a time; `between` runs between the passes.
PassResult run_passes(const model::Model& m, int num_blocks,
                      std::shared_ptr<kvtier::TierManager> tiers,
                      const std::function<void()>& between = {}) {
  CpuBackendOptions bo;
  bo.n_threads = 2;
  bo.max_num_seqs = 2;
  bo.block_size = 16;
  bo.num_blocks = num_blocks;
  auto backend = make_cpu_backend(m, bo);
  EXPECT_TRUE(backend.has_value()) << backend.status().to_string();
  if (!backend.has_value()) return {};
  EngineOptions eo;
  eo.max_num_seqs = 2;
  eo.kv_tiers = tiers;
  Engine engine(std::move(backend).value(), m.config().n_vocab, eo);
  PassResult r;
  uint64_t id = 1;
  const auto ps = prompts(m.config().n_vocab);
  for (int pass = 0; pass < 2; ++pass) {
    for (const auto& p : ps) r.outputs.push_back(generate_greedy(engine, id++, p));
    if (tiers) tiers->drain();  // the evicted blocks are stored before the second pass
    if (pass == 0 && between) between();
  }
  r.stats = engine.stats();
  engine.shutdown();
  return r;
}

class KvTiers : public ::testing::Test {
 protected:
  void SetUp() override {
    TURBINE_REQUIRE_ASSET(turbine::testing::stories_gguf());
    auto loaded = model::load_model(turbine::testing::stories_gguf());
    ASSERT_TRUE(loaded.has_value()) << loaded.status().to_string();
    model_ = std::move(loaded).value();
    reference_ = run_passes(*model_, 256, nullptr).outputs;  // nothing is evicted
    ASSERT_EQ(reference_.size(), 8u);
    for (const auto& o : reference_) ASSERT_EQ(o.size(), 8u);
  }
  std::unique_ptr<model::Model> model_;
  std::vector<std::vector<int32_t>> reference_;
  turbine::testing::TempDir dir_;
};

// 10 blocks hold one prompt and a half: each prompt evicts most of the one before.
constexpr int kSmallPool = 10;

TEST_F(KvTiers, HostTierOnboardsAndOutputsMatch) {
  kvtier::TierOptions o;
  o.host_bytes = 64 * cpu_block_bytes(*model_);
  auto tiers = kvtier::TierManager::create(o, cpu_block_bytes(*model_));
  ASSERT_TRUE(tiers.has_value()) << tiers.status().to_string();
  const PassResult r =
      run_passes(*model_, kSmallPool, std::shared_ptr<kvtier::TierManager>(std::move(*tiers)));
  EXPECT_EQ(r.outputs, reference_);
  EXPECT_GT(r.stats.kv_tier_host_offloaded_blocks, 0u);
  EXPECT_GT(r.stats.kv_tier_host_onboarded_blocks, 0u);
  EXPECT_GT(r.stats.kv_tier_onboarded_tokens, 0u);
  EXPECT_EQ(r.stats.kv_tier_recomputed_blocks, 0u);
  // Without tiers the same small pool recomputes (and still answers the same).
  const PassResult plain = run_passes(*model_, kSmallPool, nullptr);
  EXPECT_EQ(plain.outputs, reference_);
  EXPECT_EQ(plain.stats.kv_tier_onboarded_tokens, 0u);
  EXPECT_GT(r.stats.prefill_tokens + r.stats.kv_tier_onboarded_tokens,
            plain.stats.prefill_tokens - 1);
  EXPECT_LT(r.stats.prefill_tokens, plain.stats.prefill_tokens);
}

TEST_F(KvTiers, DiskTierOnboardsAndOutputsMatch) {
  kvtier::TierOptions o;
  o.disk_path = (dir_.path() / "kv").string();
  o.disk_bytes = 128 * (cpu_block_bytes(*model_) + 4096);
  o.disk_min_hits = 1;
  auto tiers = kvtier::TierManager::create(o, cpu_block_bytes(*model_));
  ASSERT_TRUE(tiers.has_value()) << tiers.status().to_string();
  const PassResult r =
      run_passes(*model_, kSmallPool, std::shared_ptr<kvtier::TierManager>(std::move(*tiers)));
  EXPECT_EQ(r.outputs, reference_);
  EXPECT_GT(r.stats.kv_tier_disk_offloaded_blocks, 0u);
  EXPECT_GT(r.stats.kv_tier_disk_onboarded_blocks, 0u);
  EXPECT_EQ(r.stats.kv_tier_host_onboarded_blocks, 0u);
}

TEST_F(KvTiers, CorruptDiskBlockIsRecomputed) {
  kvtier::TierOptions o;
  o.disk_path = (dir_.path() / "kv").string();
  o.disk_bytes = 128 * (cpu_block_bytes(*model_) + 4096);
  o.disk_min_hits = 1;
  auto made = kvtier::TierManager::create(o, cpu_block_bytes(*model_));
  ASSERT_TRUE(made.has_value()) << made.status().to_string();
  std::shared_ptr<kvtier::TierManager> tiers(std::move(*made));
  // The first prompt's own blocks (after the shared prefix) are on disk after the first pass:
  // corrupt the first of them there; the second pass's load stops at it and recomputes from it.
  const auto first_prompt = prompts(model_->config().n_vocab)[0];
  const auto hashes = kv::block_hashes(first_prompt, 16).sequence;
  bool corrupted = false;
  const PassResult r = run_passes(*model_, kSmallPool, tiers, [&] {
    for (size_t b = 4; b < hashes.size() && !corrupted; ++b)
      corrupted = tiers->corrupt_for_test(hashes[b]).is_ok();
  });
  ASSERT_TRUE(corrupted) << "none of the first prompt's own blocks was on disk";
  EXPECT_EQ(r.outputs, reference_);
  EXPECT_EQ(r.stats.kv_tier_disk_corrupt_blocks, 1u);
  EXPECT_GT(r.stats.kv_tier_recomputed_blocks, 0u);
}

// --kv-offload-all-completed: every completed block goes to the host tier once, as soon as it is
// computed (a pool large enough never to evict still fills the tier), and evictions of blocks the
// tier holds copy nothing again.
TEST_F(KvTiers, OffloadAllCompletedWritesEachBlockOnce) {
  // The distinct full blocks the two passes compute: each prompt with its output, less the last
  // token (sampled, never computed).
  const auto ps = prompts(model_->config().n_vocab);
  std::set<uint64_t> distinct;
  for (size_t i = 0; i < ps.size(); ++i) {
    std::vector<int32_t> seq = ps[i];
    seq.insert(seq.end(), reference_[i].begin(), reference_[i].end() - 1);
    for (uint64_t h : kv::block_hashes(seq, 16).sequence) distinct.insert(h);
  }
  for (const int pool_blocks : {256, kSmallPool}) {
    kvtier::TierOptions o;
    o.host_bytes = 64 * cpu_block_bytes(*model_);  // holds every block: nothing leaves it
    o.offload_all_completed = true;
    auto made = kvtier::TierManager::create(o, cpu_block_bytes(*model_));
    ASSERT_TRUE(made.has_value()) << made.status().to_string();
    std::shared_ptr<kvtier::TierManager> tiers(std::move(*made));
    const PassResult r = run_passes(*model_, pool_blocks, tiers);
    EXPECT_EQ(r.outputs, reference_) << pool_blocks;
    const kvtier::TierStats t = tiers->stats();
    EXPECT_EQ(t.host.offloaded_blocks, distinct.size()) << pool_blocks;
    EXPECT_EQ(t.offered_blocks, distinct.size()) << pool_blocks << ": a block was copied twice";
    EXPECT_EQ(r.stats.kv_tier_recomputed_blocks, 0u);
    if (pool_blocks == kSmallPool) {
      EXPECT_GT(r.stats.kv_tier_host_onboarded_blocks, 0u);
    } else {
      EXPECT_EQ(r.stats.kv_tier_host_onboarded_blocks, 0u);  // the device kept everything
    }
  }
  // The default (write-back) offers only what the device evicts: nothing with the large pool.
  kvtier::TierOptions o;
  o.host_bytes = 64 * cpu_block_bytes(*model_);
  auto made = kvtier::TierManager::create(o, cpu_block_bytes(*model_));
  ASSERT_TRUE(made.has_value()) << made.status().to_string();
  std::shared_ptr<kvtier::TierManager> tiers(std::move(*made));
  const PassResult r = run_passes(*model_, 256, tiers);
  EXPECT_EQ(r.outputs, reference_);
  EXPECT_EQ(tiers->stats().offered_blocks, 0u);
}

}  // namespace
}  // namespace turbine::engine
