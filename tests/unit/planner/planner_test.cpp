// The planner's interval loop against a scripted metrics source and a recording connector.
#include "planner/planner.h"

#include <deque>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "metrics/metrics.h"
#include "planner_test_util.h"

namespace turbine::planner {
namespace {

using testing::ps;

struct Script {
  std::deque<Result<std::string>> replies;
};

class ScriptedSource final : public MetricsSource {
 public:
  explicit ScriptedSource(std::shared_ptr<Script> s) : s_(std::move(s)) {}
  Result<std::string> fetch() override {
    if (s_->replies.empty()) return Status(StatusCode::kUnavailable, "script ended");
    auto r = std::move(s_->replies.front());
    s_->replies.pop_front();
    return r;
  }

 private:
  std::shared_ptr<Script> s_;
};

struct Fleet {
  std::map<PoolRole, PoolState> pools;
  std::vector<std::pair<PoolRole, int>> scale_calls;
  bool fail_state = false;
};

class RecordingConnector final : public Connector {
 public:
  explicit RecordingConnector(std::shared_ptr<Fleet> f) : f_(std::move(f)) {}
  Result<PoolState> state(const ModelConfig&, const PoolConfig& pool) override {
    if (f_->fail_state) return Status(StatusCode::kUnavailable, "api down");
    return f_->pools[pool.role];
  }
  Status scale(const ModelConfig&, const PoolConfig& pool, int replicas,
               const std::string&) override {
    f_->scale_calls.push_back({pool.role, replicas});
    PoolState& s = f_->pools[pool.role];
    if (s.blocked && replicas > s.replicas) return Status(StatusCode::kUnavailable, "blocked");
    s.replicas = s.ready = replicas;
    return Status::ok();
  }

 private:
  std::shared_ptr<Fleet> f_;
};

// The frontend's exposition for model "m" with these totals.
std::string frontend_text(double requests, double kv_used, double queued) {
  metrics::FrontendMetrics fm("m");
  auto& mm = fm.model("m");
  for (int i = 0; i < static_cast<int>(requests); ++i)
    mm.request_done("completions", metrics::RequestType::kStream, metrics::RequestStatus::kSuccess);
  mm.queued.Set(queued);
  engine::EngineStats s;
  s.kv_used_blocks = static_cast<int>(kv_used);
  s.kv_total_blocks = 100;
  mm.observe_engine(s);
  return fm.serialize();
}

PlannerConfig load_config(int min = 1, int max = 4, int initial = -1) {
  PlannerConfig c;
  c.mode = PlannerMode::kLoad;
  c.interval_s = 10;
  c.load.grace_intervals = 0;
  ModelConfig m;
  m.name = "m";
  PoolConfig d;
  d.min_replicas = min;
  d.max_replicas = max;
  d.initial_replicas = initial;
  d.command = {"unused"};
  m.pools.push_back(d);
  c.models.push_back(m);
  return c;
}

struct Harness {
  std::shared_ptr<Script> script = std::make_shared<Script>();
  std::shared_ptr<Fleet> fleet = std::make_shared<Fleet>();
  std::shared_ptr<PlannerMetrics> metrics = std::make_shared<PlannerMetrics>();
  std::unique_ptr<Planner> planner;
  explicit Harness(PlannerConfig c) {
    EXPECT_TRUE(c.validate().is_ok()) << c.validate().message();
    planner = std::make_unique<Planner>(std::move(c), std::make_unique<ScriptedSource>(script),
                                        std::make_unique<RecordingConnector>(fleet), metrics);
  }
  std::string exposition() const { return metrics->serialize(); }
  double metric(const std::string& name, const Labels& labels = {}) const {
    auto m = MetricSet::parse(exposition());
    EXPECT_TRUE(m.has_value());
    return m->sum(name, labels).value_or(-1);
  }
};

TEST(Planner, StartsTheInitialFleetThenFollowsTheLoad) {
  Harness h(load_config(1, 4, 2));
  h.script->replies.push_back(frontend_text(0, 10, 0));
  h.script->replies.push_back(frontend_text(5, 95, 0));  // kv 0.95 > 0.9
  h.script->replies.push_back(frontend_text(9, 20, 0));  // 0.2 on 3 -> 0.3 on 2
  TickReport r = h.planner->tick(0);
  EXPECT_TRUE(r.held);  // the first scrape is a baseline
  ASSERT_EQ(h.fleet->scale_calls.size(), 1u);
  EXPECT_EQ(h.fleet->scale_calls[0].second, 2);  // initial fleet
  r = h.planner->tick(10);
  EXPECT_FALSE(r.held);
  ASSERT_EQ(r.pools.size(), 1u);
  EXPECT_EQ(r.pools[0].desired, 3);
  EXPECT_TRUE(r.pools[0].changed);
  EXPECT_EQ(h.fleet->pools[PoolRole::kDecode].replicas, 3);
  r = h.planner->tick(20);
  EXPECT_EQ(r.pools[0].desired, 2);
  EXPECT_EQ(h.metric(metrics::kPlannerDecisions, {{"direction", "up"}}), 1);
  EXPECT_EQ(h.metric(metrics::kPlannerDecisions, {{"direction", "down"}}), 1);
  EXPECT_EQ(h.metric(metrics::kPlannerDesiredReplicas, {{"model", "m"}, {"pool", "decode"}}), 2);
  EXPECT_EQ(h.metric(metrics::kPlannerObservedRequestRate, {{"model", "m"}}), 4.0 / 10);
}

TEST(Planner, HoldsTheFleetWhenMetricsAreUnreachable) {
  Harness h(load_config());
  h.script->replies.push_back(frontend_text(0, 10, 0));
  h.script->replies.push_back(Status(StatusCode::kUnavailable, "connection refused"));
  h.script->replies.push_back(std::string("garbage{ 1\n"));
  h.script->replies.push_back(frontend_text(5, 99, 0));  // new baseline: no decision yet
  h.script->replies.push_back(frontend_text(6, 99, 0));
  h.planner->tick(0);
  const size_t calls = h.fleet->scale_calls.size();
  TickReport r = h.planner->tick(10);
  EXPECT_TRUE(r.held);
  EXPECT_NE(r.hold_reason.find("connection refused"), std::string::npos) << r.hold_reason;
  EXPECT_EQ(h.metric(metrics::kPlannerMetricsUnreachable), 1);
  r = h.planner->tick(20);  // unparseable counts as unreachable
  EXPECT_TRUE(r.held);
  EXPECT_NE(r.hold_reason.find("line 1"), std::string::npos) << r.hold_reason;
  EXPECT_EQ(h.metric(metrics::kPlannerMetricsFailures), 2);
  EXPECT_EQ(h.fleet->scale_calls.size(), calls);  // nothing changed
  r = h.planner->tick(30);
  EXPECT_TRUE(r.held);
  EXPECT_EQ(h.metric(metrics::kPlannerMetricsUnreachable), 0);
  r = h.planner->tick(40);
  EXPECT_FALSE(r.held);
  EXPECT_EQ(r.pools[0].desired, 2);
}

TEST(Planner, DryRunOnlyLogs) {
  PlannerConfig c = load_config();
  c.dry_run = true;
  Harness h(c);
  h.fleet->pools[PoolRole::kDecode] = ps(1, 1);
  h.script->replies.push_back(frontend_text(0, 10, 0));
  h.script->replies.push_back(frontend_text(5, 95, 0));
  h.planner->tick(0);
  TickReport r = h.planner->tick(10);
  EXPECT_EQ(r.pools[0].desired, 2);
  EXPECT_TRUE(h.fleet->scale_calls.empty());
  EXPECT_EQ(h.metric(metrics::kPlannerDryRun), 1);
  EXPECT_EQ(h.metric(metrics::kPlannerDecisions, {{"direction", "up"}}), 1);
}

TEST(Planner, BlockedPoolIsNotGrownAndConnectorErrorsHold) {
  Harness h(load_config());
  h.fleet->pools[PoolRole::kDecode] = {1, 1, 0, true, "never ready", 2};
  h.script->replies.push_back(frontend_text(0, 10, 0));
  h.script->replies.push_back(frontend_text(5, 95, 0));
  h.script->replies.push_back(frontend_text(6, 95, 0));
  h.planner->tick(0);
  TickReport r = h.planner->tick(10);
  EXPECT_EQ(r.pools[0].desired, 1);
  EXPECT_NE(r.pools[0].reason.find("blocked"), std::string::npos);
  EXPECT_TRUE(h.fleet->scale_calls.empty());
  EXPECT_EQ(h.metric(metrics::kPlannerPoolBlocked, {{"pool", "decode"}}), 1);
  EXPECT_EQ(h.metric(metrics::kPlannerWorkerStartFailures, {{"pool", "decode"}}), 2);
  h.fleet->fail_state = true;
  r = h.planner->tick(20);
  EXPECT_TRUE(r.pools.empty());
  EXPECT_TRUE(h.fleet->scale_calls.empty());
}

TEST(Planner, BudgetCapsTheDecision) {
  PlannerConfig c = load_config(1, 8);
  c.max_gpus_total = 2;
  Harness h(c);
  h.fleet->pools[PoolRole::kDecode] = ps(2, 2);
  h.script->replies.push_back(frontend_text(0, 10, 0));
  h.script->replies.push_back(frontend_text(5, 99, 50));
  h.planner->tick(0);
  TickReport r = h.planner->tick(10);
  EXPECT_EQ(r.pools[0].desired, 2);
  EXPECT_FALSE(r.pools[0].changed);
  EXPECT_NE(r.pools[0].reason.find("total budget"), std::string::npos) << r.pools[0].reason;
}

}  // namespace
}  // namespace turbine::planner
