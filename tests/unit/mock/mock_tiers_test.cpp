// Simulated KV tiers on the mock engine (issue 24): evicted blocks land in the host tier with
// KV events that say so, and a prompt that comes back is onboarded from it (modelled time).
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <numeric>

#include "mock/mock_engine.h"

namespace turbine::mock {
namespace {

std::vector<int32_t> prompt(int n, int start) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  std::iota(t.begin(), t.end(), start);
  return t;
}

// Runs one request to the end.
bool run(MockEngine& e, uint64_t id, std::vector<int32_t> p) {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  engine::EngineRequest r;
  r.id = id;
  r.prompt = std::move(p);
  r.params.max_tokens = 2;
  r.params.ignore_eos = true;
  r.on_output = [&](engine::EngineOutput&& o) {
    if (o.finish == engine::FinishReason::kNone) return;
    std::lock_guard lock(mu);
    done = true;
    cv.notify_all();
  };
  if (!e.submit(std::move(r)).is_ok()) return false;
  std::unique_lock lock(mu);
  return cv.wait_for(lock, std::chrono::seconds(30), [&] { return done; });
}

TEST(MockTiers, EvictedBlocksComeBackFromTheHostTier) {
  MockEngineOptions o;
  o.n_vocab = 5000;
  o.block_size = 16;
  o.num_blocks = 12;  // one 160-token prompt and a bit
  o.max_context = 190;
  o.speedup = 100;
  o.kv_offload.host_bytes = 64 * o.kv_bytes_per_token * o.block_size;  // 64 modelled blocks
  auto sink = std::make_shared<kv::InProcessKvEventSink>();
  o.kv_event_sink = sink;
  auto tiers = simulated_tiers(o);
  ASSERT_TRUE(tiers.has_value()) << tiers.status().to_string();
  o.kv_tiers = *tiers;
  ASSERT_TRUE(o.validate().is_ok());
  MockEngine e(o);
  ASSERT_TRUE(run(e, 1, prompt(160, 10)));
  ASSERT_TRUE(run(e, 2, prompt(160, 1000)));  // evicts most of the first prompt's blocks
  (*tiers)->drain();
  ASSERT_TRUE(run(e, 3, prompt(160, 10)));
  const engine::EngineStats s = e.stats();
  EXPECT_GT(s.kv_tier_host_offloaded_blocks, 0u);
  EXPECT_GT(s.kv_tier_host_onboarded_blocks, 0u);
  EXPECT_GT(s.kv_tier_onboarded_tokens, 0u);
  EXPECT_EQ(s.kv_tier_host_capacity_bytes, 64 * kSimulatedTierBlockBytes);
  bool host_event = false;
  for (const kv::KvEvent& ev : sink->take()) {
    if (const auto* st = std::get_if<kv::BlockStored>(&ev.data);
        st != nullptr && st->storage_tier == kv::kStorageHost) {
      host_event = true;
      EXPECT_EQ(ev.version, kv::kKvTierEventsVersion);
    }
  }
  EXPECT_TRUE(host_event);
  e.shutdown();
}

TEST(MockTiers, BadBudgetsAreStartUpErrors) {
  MockEngineOptions o;
  o.kv_offload.host_bytes = 100;  // less than one modelled block
  EXPECT_FALSE(simulated_tiers(o).has_value());
  o.kv_offload = {};
  o.kv_offload.disk_path = "/proc/turbine-kv-cannot-exist";
  o.kv_offload.disk_bytes = int64_t{1} << 30;
  EXPECT_FALSE(simulated_tiers(o).has_value());
}

}  // namespace
}  // namespace turbine::mock
