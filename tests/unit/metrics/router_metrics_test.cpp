#include "metrics/router_metrics.h"

#include <gtest/gtest.h>

#include <mutex>
#include <numeric>
#include <string>
#include <vector>

#include "kv/block_hash.h"
#include "router/routed_engine.h"

namespace turbine::metrics {
namespace {

constexpr int kBs = 4;

// A worker that keeps what it is sent and answers when told.
class HeldEngine final : public engine::AsyncEngine {
 public:
  Status submit(engine::EngineRequest r) override {
    std::lock_guard lock(mu);
    if (!refuse.is_ok()) return refuse;
    held.push_back(std::move(r));
    return Status::ok();
  }
  void cancel(uint64_t) override {}
  void shutdown() override {}
  engine::EngineStats stats() const override { return {}; }
  int max_context() const override { return 4096; }
  int num_slots() const override { return 8; }
  int block_size() const override { return kBs; }
  void finish(size_t i, engine::FinishReason f = engine::FinishReason::kLength,
              Status error = Status::ok()) {
    engine::EngineOutput o;
    o.tokens.push_back({7, 0.0f, {}});
    o.finish = f;
    o.error = std::move(error);
    held.at(i).on_output(std::move(o));
  }
  std::mutex mu;
  std::vector<engine::EngineRequest> held;
  Status refuse;
};

std::vector<int32_t> seq(int n, int start = 0) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  std::iota(t.begin(), t.end(), start);
  return t;
}

bool has(const std::string& text, const std::string& line) {
  return text.find(line + "\n") != std::string::npos;
}

TEST(RouterMetricsTest, ARoutedRequestMovesTheCounters) {
  RouterMetrics m;
  router::RouterOptions o;
  o.observer = m.observer("stories");
  router::RoutedEngine r(o);
  auto w1 = std::make_shared<HeldEngine>();
  auto w2 = std::make_shared<HeldEngine>();
  r.add_worker({0x1a, kBs, 100}, w1);
  r.add_worker({0x2b, kBs, 100}, w2);
  // Worker 0x2b caches 6 blocks of the prompt (one KV event).
  const auto h = kv::block_hashes(seq(24), kBs);
  kv::BlockStored s;
  for (size_t i = 0; i < h.local.size(); ++i) s.blocks.push_back({h.sequence[i], h.local[i]});
  s.block_size = kBs;
  r.on_kv_event(0x2b, kv::KvEvent{kv::kKvEventsVersion, 0, s});

  std::string t = m.serialize();
  EXPECT_TRUE(has(t, "turbine_router_indexed_blocks{model=\"stories\"} 6")) << t;
  EXPECT_TRUE(has(t, "turbine_router_kv_events_total{model=\"stories\"} 1")) << t;
  EXPECT_TRUE(has(t, "turbine_router_prompt_blocks_total{model=\"stories\"} 0")) << t;

  engine::EngineRequest q;
  q.id = 1;
  q.prompt = seq(40);  // 10 blocks, 6 cached on 0x2b
  q.params.max_tokens = 4;
  q.on_output = [](engine::EngineOutput&&) {};
  ASSERT_TRUE(r.submit(std::move(q)).is_ok());
  ASSERT_EQ(w2->held.size(), 1u);
  t = m.serialize();
  EXPECT_TRUE(has(t,
                  "turbine_router_decisions_total{model=\"stories\",router_mode=\"kv\","
                  "worker_id=\"2b\"} 1"))
      << t;
  EXPECT_EQ(t.find("worker_id=\"1a\"} 1"), std::string::npos) << t;
  EXPECT_TRUE(has(t, "turbine_router_prompt_blocks_total{model=\"stories\"} 10")) << t;
  EXPECT_TRUE(has(t, "turbine_router_cached_blocks_total{model=\"stories\"} 6")) << t;
  EXPECT_TRUE(has(t, "turbine_router_overlap_blocks_bucket{model=\"stories\",le=\"4\"} 0")) << t;
  EXPECT_TRUE(has(t, "turbine_router_overlap_blocks_bucket{model=\"stories\",le=\"8\"} 1")) << t;
  EXPECT_TRUE(has(t, "turbine_frontend_cached_tokens_sum{model=\"stories\"} 24")) << t;
  EXPECT_TRUE(has(t,
                  "turbine_frontend_worker_active_decode_blocks{model=\"stories\","
                  "worker_id=\"2b\"} 10"))
      << t;
  EXPECT_TRUE(has(t,
                  "turbine_frontend_worker_active_prefill_tokens{model=\"stories\","
                  "worker_id=\"2b\"} 16"))
      << t;

  // The worker is lost mid-request: the request migrates to 0x1a (an ongoing-request migration,
  // a second decision), and 0x2b's load drops to zero.
  w2->finish(0, engine::FinishReason::kError, {StatusCode::kUnavailable, "worker lost"});
  ASSERT_EQ(w1->held.size(), 1u);
  t = m.serialize();
  EXPECT_TRUE(has(t,
                  "turbine_frontend_model_migration_total{migration_type=\"ongoing_request\","
                  "model=\"stories\"} 1"))
      << t;
  EXPECT_TRUE(has(t,
                  "turbine_router_decisions_total{model=\"stories\",router_mode=\"kv\","
                  "worker_id=\"1a\"} 1"))
      << t;
  EXPECT_TRUE(has(t,
                  "turbine_frontend_worker_active_decode_blocks{model=\"stories\","
                  "worker_id=\"2b\"} 0"))
      << t;
  // Removing a worker drops its load series.
  r.remove_worker(0x2b);
  t = m.serialize();
  EXPECT_EQ(t.find("worker_id=\"2b\"} 0"), std::string::npos) << t;
  w1->finish(0);
  t = m.serialize();
  EXPECT_TRUE(has(t,
                  "turbine_frontend_worker_active_decode_blocks{model=\"stories\","
                  "worker_id=\"1a\"} 0"))
      << t;
  r.shutdown();
}

}  // namespace
}  // namespace turbine::metrics
