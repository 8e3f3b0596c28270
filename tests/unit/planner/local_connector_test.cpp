// The local connector with real child processes (tests/unit/planner/fake/fake_worker.cpp).
#include <chrono>
#include <thread>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "planner/connector.h"

namespace turbine::planner {
namespace {

using namespace std::chrono_literals;

ModelConfig model_with(std::vector<std::string> command) {
  ModelConfig m;
  m.name = "m";
  PoolConfig p;
  p.command = std::move(command);
  m.pools.push_back(p);
  return m;
}

struct Events {
  std::vector<boost::json::object> all;
  int count(const std::string& what) const {
    int n = 0;
    for (const auto& e : all) n += e.at("event").as_string() == what;
    return n;
  }
};

// Polls until `pred` holds (or 20 s pass).
template <typename Pred>
bool poll_until(Connector& c, Pred pred) {
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < deadline) {
    c.poll();
    if (pred()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

TEST(LocalConnector, StartsWaitsForHealthAndDrainsOnScaleDown) {
  auto events = std::make_shared<Events>();
  LocalConnectorConfig cfg;
  auto c = make_local_connector(cfg, [events](boost::json::object e) { events->all.push_back(e); });
  const ModelConfig m = model_with({FAKE_WORKER, "ok", "300"});
  const PoolConfig& pool = m.pools[0];
  ASSERT_TRUE(c->scale(m, pool, 2, "test").is_ok());
  PoolState s = *c->state(m, pool);
  EXPECT_EQ(s.replicas, 2);
  ASSERT_TRUE(poll_until(*c, [&] { return c->state(m, pool)->ready == 2; }));
  EXPECT_EQ(events->count("worker_ready"), 2);

  ASSERT_TRUE(c->scale(m, pool, 1, "less load").is_ok());
  s = *c->state(m, pool);
  EXPECT_EQ(s.replicas, 1);
  EXPECT_EQ(s.draining, 1);  // SIGTERM sent; the worker takes 300 ms to finish
  ASSERT_TRUE(poll_until(*c, [&] { return c->state(m, pool)->draining == 0; }));
  EXPECT_EQ(events->count("worker_exited"), 1);
  for (const auto& e : events->all) {
    if (e.at("event").as_string() == "worker_exited") {
      EXPECT_EQ(e.at("code").as_int64(), 0);         // it exited by itself, after draining
      EXPECT_GE(e.at("drain_s").as_double(), 0.25);  // not killed
    }
  }
  EXPECT_EQ(c->state(m, pool)->ready, 1);
  c->shutdown();
  EXPECT_EQ(c->state(m, pool)->replicas, 0);
  EXPECT_EQ(events->count("worker_exited"), 2);
}

TEST(LocalConnector, NeverReadyWorkerIsReplacedOnceThenThePoolIsBlocked) {
  auto events = std::make_shared<Events>();
  LocalConnectorConfig cfg;
  cfg.ready_timeout_s = 0.5;
  auto c = make_local_connector(cfg, [events](boost::json::object e) { events->all.push_back(e); });
  const ModelConfig m = model_with({FAKE_WORKER, "never"});
  const PoolConfig& pool = m.pools[0];
  ASSERT_TRUE(c->scale(m, pool, 1, "test").is_ok());
  ASSERT_TRUE(poll_until(*c, [&] { return c->state(m, pool)->blocked; }));
  PoolState s = *c->state(m, pool);
  EXPECT_EQ(s.start_failures, 2);  // the worker and its one replacement
  EXPECT_EQ(s.replicas, 0);
  EXPECT_NE(s.blocked_reason.find("never became ready"), std::string::npos) << s.blocked_reason;
  EXPECT_EQ(events->count("worker_started"), 2);
  // Not retried forever: no more starts, and growing is refused.
  for (int i = 0; i < 20; ++i) {
    c->poll();
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(events->count("worker_started"), 2);
  EXPECT_EQ(c->scale(m, pool, 1, "again").code(), StatusCode::kUnavailable);
}

TEST(LocalConnector, WorkerThatExitsWhileStartingIsReplacedOnce) {
  LocalConnectorConfig cfg;
  auto c = make_local_connector(cfg, nullptr);
  const ModelConfig m = model_with({FAKE_WORKER, "crash"});
  const PoolConfig& pool = m.pools[0];
  ASSERT_TRUE(c->scale(m, pool, 1, "test").is_ok());
  ASSERT_TRUE(poll_until(*c, [&] { return c->state(m, pool)->blocked; }));
  EXPECT_EQ(c->state(m, pool)->start_failures, 2);
  // A command that cannot even be executed fails the same way.
  const ModelConfig missing = model_with({"/nonexistent/turbine", "worker"});
  auto c2 = make_local_connector(cfg, nullptr);
  ASSERT_TRUE(c2->scale(missing, missing.pools[0], 1, "test").is_ok());
  ASSERT_TRUE(poll_until(*c2, [&] { return c2->state(missing, missing.pools[0])->blocked; }));
}

}  // namespace
}  // namespace turbine::planner
