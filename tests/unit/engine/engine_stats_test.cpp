// EngineStats' one definition: accumulate() combines every field as TURBINE_ENGINE_STATS says.
#include <gtest/gtest.h>

#include <string_view>

#include "engine/async_engine.h"

namespace turbine::engine {
namespace {

TEST(EngineStatsTest, AccumulateSumsCountersTakesTheSlowestStepAndTheSharedBlockSize) {
  EngineStats a;
  a.running = 2;
  a.steps = 10;
  a.kv_total_blocks = 100;
  a.kv_block_size = 16;
  a.last_step_seconds = 0.5;
  a.kv_import_seconds = 1.25;
  a.disagg_prefill_queue = 1;
  a.kv_transports = {{"tcp", 3, 1, 300, 0.3, 2}};
  EngineStats b;
  b.running = 3;
  b.steps = 5;
  b.kv_total_blocks = 50;
  b.kv_block_size = 16;
  b.last_step_seconds = 0.75;
  b.kv_import_seconds = 0.25;
  b.disagg_prefill_queue = 4;
  b.kv_transports = {{"cuda_ipc", 1, 0, 10, 0.1, 0}, {"tcp", 2, 0, 200, 0.2, 1}};

  EngineStats sum;  // as a router sums its workers: from zero
  accumulate(sum, a);
  accumulate(sum, b);
  EXPECT_EQ(sum.running, 5);
  EXPECT_EQ(sum.steps, 15u);
  EXPECT_EQ(sum.kv_total_blocks, 150);
  EXPECT_EQ(sum.kv_block_size, 16);  // shared, not summed
  EXPECT_DOUBLE_EQ(sum.last_step_seconds, 0.75);
  EXPECT_DOUBLE_EQ(sum.kv_import_seconds, 1.5);
  EXPECT_EQ(sum.disagg_prefill_queue, 5);
  ASSERT_EQ(sum.kv_transports.size(), 2u);
  EXPECT_EQ(sum.kv_transports[0].transport, "tcp");
  EXPECT_EQ(sum.kv_transports[0].fetches, 5u);
  EXPECT_EQ(sum.kv_transports[0].failures, 1u);
  EXPECT_EQ(sum.kv_transports[0].bytes, 500u);
  EXPECT_EQ(sum.kv_transports[0].connects, 3u);
  EXPECT_EQ(sum.kv_transports[1].transport, "cuda_ipc");

  // A field left out of the list would stay zero here: every one of them is combined.
  EngineStats ones;
#define TURBINE_TEST_SET(type, name, how) ones.name = 1;
  TURBINE_ENGINE_STATS(TURBINE_TEST_SET)
#undef TURBINE_TEST_SET
  EngineStats twice;
  accumulate(twice, ones);
  accumulate(twice, ones);
#define TURBINE_TEST_CHECK(type, name, how) \
  EXPECT_EQ(twice.name, static_cast<type>(std::string_view(#how) == "sum" ? 2 : 1)) << #name;
  TURBINE_ENGINE_STATS(TURBINE_TEST_CHECK)
#undef TURBINE_TEST_CHECK
}

TEST(EngineStatsTest, ReportedLoadCarriesTheWorkersOwnCounters) {
  EngineStats s;
  s.running = 3;
  s.waiting = 4;
  s.kv_used_blocks = 5;
  s.kv_total_blocks = 6;
  const WorkerLoad l = reported_load(99, s);
  EXPECT_EQ(l, (WorkerLoad{99, 3, 4, 5, 6}));
  EXPECT_EQ(l.active_requests, 0);  // the router's part stays its own
}

}  // namespace
}  // namespace turbine::engine
