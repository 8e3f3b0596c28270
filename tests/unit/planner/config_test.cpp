#include "planner/config.h"

#include <cstdio>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace turbine::planner {
namespace {

const char* kFull = R"({
  "mode": "sla", "interval_s": 20, "time_scale": 4, "dry_run": true, "connector": "kubernetes",
  "frontend_metrics_url": "http://fe:8000/metrics", "max_gpus_total": 16, "status_port": 9090,
  "namespace": "prod",
  "load": {"kv_scale_up": 0.8, "kv_scale_down": 0.3, "grace_intervals": 2},
  "sla": {"predictor": "linear", "window": 5, "scale_down_window": 4, "scale_down_margin": 0.8,
          "scale_down_worst_case": false},
  "kubernetes": {"api_server": "https://k8s:6443", "namespace": "llm"},
  "models": [{"name": "llama", "profile": "p.json", "ttft_ms": 500, "itl_ms": 40, "max_gpus": 12,
              "pools": {"decode": {"min": 2, "max": 6, "gpus_per_worker": 2, "deployment": "t-decode"},
                        "prefill": {"max": 4, "deployment": "t-prefill"}}}]
})";

TEST(PlannerConfig, ParsesEveryKey) {
  auto c = config_from_json(kFull);
  ASSERT_TRUE(c.has_value()) << c.status().message();
  EXPECT_EQ(c->mode, PlannerMode::kSla);
  EXPECT_EQ(c->interval_s, 20);
  EXPECT_EQ(c->time_scale, 4);
  EXPECT_TRUE(c->dry_run);
  EXPECT_EQ(c->connector, ConnectorKind::kKubernetes);
  EXPECT_EQ(c->max_gpus_total, 16);
  EXPECT_EQ(c->ns, "prod");
  EXPECT_EQ(c->load.kv_scale_up, 0.8);
  EXPECT_EQ(c->load.grace_intervals, 2);
  EXPECT_EQ(c->sla.predictor.kind, PredictorKind::kLinear);
  EXPECT_EQ(c->sla.scale_down_window, 4);
  EXPECT_EQ(c->sla.scale_down_margin, 0.8);
  EXPECT_FALSE(c->sla.scale_down_worst_case);
  EXPECT_TRUE(SlaModeConfig{}.scale_down_worst_case);
  EXPECT_EQ(c->kubernetes.namespace_name, "llm");
  ASSERT_EQ(c->models.size(), 1u);
  const ModelConfig& m = c->models[0];
  EXPECT_EQ(m.ttft_ms, 500);
  ASSERT_NE(m.pool(PoolRole::kDecode), nullptr);
  EXPECT_EQ(m.pool(PoolRole::kDecode)->gpus_per_worker, 2);
  ASSERT_NE(m.pool(PoolRole::kPrefill), nullptr);
  EXPECT_EQ(m.pool(PoolRole::kPrefill)->min_replicas, 0);  // prefill pools may be empty
  EXPECT_EQ(m.pool(PoolRole::kPrefill)->deployment, "t-prefill");
  EXPECT_TRUE(c->validate().is_ok()) << c->validate().message();
}

// Every configuration error names its key.
TEST(PlannerConfig, ErrorsNameTheKey) {
  auto field_of = [](const std::string& json) -> std::string {
    auto c = config_from_json(json);
    if (!c) return c.status().field();
    Status st = c->validate();
    return st.is_ok() ? "" : st.field();
  };
  const std::string pools =
      R"("pools": {"decode": {"min": 1, "max": 2, "command": ["turbine", "worker"]}})";
  const std::string ok = R"({"models": [{"name": "m", )" + pools + "}]}";
  EXPECT_EQ(field_of(ok), "");
  EXPECT_EQ(field_of(R"({"intervall": 3, "models": []})"), "intervall");
  EXPECT_EQ(field_of(R"({"interval_s": "30", "models": []})"), "interval_s");
  EXPECT_EQ(field_of(R"({"interval_s": 0, "models": [{"name": "m", )" + pools + "}]}"),
            "interval_s");
  EXPECT_EQ(field_of(R"({"mode": "fast"})"), "mode");
  EXPECT_EQ(field_of(R"({"connector": "docker"})"), "connector");
  EXPECT_EQ(field_of(R"({"models": []})"), "models");
  EXPECT_EQ(
      field_of(
          R"({"models": [{"name": "m", "pools": {"decode": {"min": 3, "max": 2, "command": ["x"]}}}]})"),
      "models[0].pools.decode.max");
  EXPECT_EQ(field_of(R"({"models": [{"name": "m", "pools": {"decode": {"min": 1, "mx": 2}}}]})"),
            "models[0].pools.decode.mx");
  EXPECT_EQ(field_of(R"({"models": [{"name": "m", "pools": {"decode": {"min": 1}}}]})"),
            "models[0].pools.decode.command");
  EXPECT_EQ(field_of(R"({"models": [{"name": "m", "pools": {"prefill": {"command": ["x"]}}}]})"),
            "models[0].pools.decode");
  EXPECT_EQ(
      field_of(R"({"models": [{"name": "m", "pools": {"decode": {"min": 0, "command": ["x"]}}}]})"),
      "models[0].pools.decode.min");
  EXPECT_EQ(
      field_of(
          R"({"models": [{"name": "m", "pools": {"decode": {"min": 1, "max": 4, "initial": 5, "command": ["x"]}}}]})"),
      "models[0].pools.decode.initial");
  EXPECT_EQ(field_of(R"({"mode": "sla", "models": [{"name": "m", )" + pools + "}]}"),
            "models[0].profile");
  EXPECT_EQ(
      field_of(
          R"({"connector": "kubernetes", "models": [{"name": "m", "pools": {"decode": {}}}]})"),
      "models[0].pools.decode.deployment");
  EXPECT_EQ(
      field_of(
          R"({"max_gpus_total": 1, "models": [{"name": "m", "pools": {"decode": {"min": 2, "command": ["x"]}}}]})"),
      "max_gpus_total");
  EXPECT_EQ(
      field_of(R"({"load": {"kv_scale_up": 0.5, "kv_scale_down": 0.6}, "models": [{"name": "m", )" +
               pools + "}]}"),
      "load.kv_scale_down");
  EXPECT_EQ(field_of(R"({"mode": "sla", "sla": {"predictor": "arima"}})"), "sla.predictor");
  EXPECT_EQ(field_of(R"({"sla": {"scale_down_worst_case": 1}})"), "sla.scale_down_worst_case");
  EXPECT_EQ(
      field_of(R"({"mode": "sla", "sla": {"correction_steady_sd": -1}, "models": [{"name": "m", )" +
               pools + "}]}"),
      "sla.correction_steady_sd");
  EXPECT_EQ(
      field_of(R"({"mode": "sla", "sla": {"scale_down_margin": 1.5}, "models": [{"name": "m", )" +
               pools + "}]}"),
      "sla.scale_down_margin");
  EXPECT_EQ(
      field_of(R"({"models": [{"name": "m", )" + pools + R"(}, {"name": "m", )" + pools + "}]}"),
      "models[1].name");
  EXPECT_EQ(field_of("{not json"), "config");
  auto missing = load_config_file("/nonexistent/planner.json");
  ASSERT_FALSE(missing.has_value());
  EXPECT_NE(missing.status().message().find("/nonexistent/planner.json"), std::string::npos);
}

TEST(PlannerConfig, LoadsProfilesAndChecksTheirTimeScale) {
  const auto dir = std::filesystem::temp_directory_path() / "planner_config_test";
  std::filesystem::create_directories(dir);
  const auto path = (dir / "p.json").string();
  std::ofstream(path) << R"({"version":1,"time_scale":4,"prefill":[{"isl":1000,"ttft_ms":35}],)"
                         R"("decode":[{"context":1000,"points":[{"concurrency":1,"itl_ms":5}]}]})";
  auto c =
      config_from_json(R"({"mode": "sla", "time_scale": 4, "models": [{"name": "m", "profile": ")" +
                       path + R"(", "pools": {"decode": {"command": ["x"]}}}]})");
  ASSERT_TRUE(c.has_value()) << c.status().message();
  ASSERT_TRUE(c->validate().is_ok());
  ASSERT_TRUE(c->load_profiles().is_ok());
  EXPECT_EQ(c->models[0].profile.prefill.size(), 1u);
  c->time_scale = 1;
  Status st = c->load_profiles();
  EXPECT_EQ(st.field(), "models[0].profile");
  EXPECT_NE(st.message().find("time_scale 4"), std::string::npos) << st.message();
  c->models[0].profile_path = (dir / "missing.json").string();
  EXPECT_EQ(c->load_profiles().field(), "models[0].profile");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace turbine::planner
