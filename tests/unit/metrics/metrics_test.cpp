#include "metrics/metrics.h"

#include <gtest/gtest.h>

namespace turbine::metrics {
namespace {

TEST(MetricsTest, ExposesNamedSeriesInTextFormat) {
  FrontendMetrics m("stories");
  ModelMetrics& s = m.model("stories");
  s.request_done("chat_completions", RequestType::kStream, RequestStatus::kSuccess);
  s.request_done("chat_completions", RequestType::kStream, RequestStatus::kSuccess);
  s.disconnected_clients.Increment();
  s.time_to_first_token.Observe(0.02);
  m.http_response(404);
  const std::string text = m.serialize();
  EXPECT_NE(text.find("# TYPE turbine_frontend_requests_total counter"), std::string::npos);
  EXPECT_NE(text.find("turbine_frontend_requests_total{endpoint=\"chat_completions\",model="
                      "\"stories\",request_type=\"stream\",status=\"success\"} 2"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("turbine_frontend_disconnected_clients{model=\"stories\"} 1"),
            std::string::npos);
  EXPECT_NE(text.find("turbine_frontend_time_to_first_token_seconds_bucket{model=\"stories\","
                      "le=\"0.025\"} 1"),
            std::string::npos);
  EXPECT_NE(text.find("turbine_http_requests_total{code=\"404\"} 1"), std::string::npos);
}

// Engine counters become gauges; KV transports get one series each, labelled by transport,
// created when a transport first reports and updated after.
TEST(MetricsTest, EngineStatsWithPrefillQueueAndTransports) {
  FrontendMetrics m("stories");
  ModelMetrics& s = m.model("stories");
  engine::EngineStats st;
  st.disagg_prefill_inflight = 5;
  st.disagg_prefill_queue = 3;
  st.kv_transports = {{"tcp", 4, 1, 4096, 0.5}, {"cuda_ipc", 2, 0, 8192, 0.25}};
  s.observe_engine(st);
  std::string text = m.serialize();
  for (const char* line :
       {"turbine_disagg_prefill_inflight{model=\"stories\"} 5",
        "turbine_disagg_prefill_queue_size{model=\"stories\"} 3",
        "turbine_kv_transport_fetches_total{model=\"stories\",transport=\"tcp\"} 4",
        "turbine_kv_transport_failures_total{model=\"stories\",transport=\"tcp\"} 1",
        "turbine_kv_transport_bytes_total{model=\"stories\",transport=\"tcp\"} 4096",
        "turbine_kv_transport_seconds_total{model=\"stories\",transport=\"tcp\"} 0.5",
        "turbine_kv_transport_bytes_total{model=\"stories\",transport=\"cuda_ipc\"} 8192"})
    EXPECT_NE(text.find(line), std::string::npos) << line << "\n" << text;
  st.kv_transports = {{"tcp", 6, 1, 6144, 0.75}};
  st.disagg_prefill_queue = 0;
  s.observe_engine(st);
  text = m.serialize();
  EXPECT_NE(text.find("turbine_kv_transport_bytes_total{model=\"stories\",transport=\"tcp\"} 6144"),
            std::string::npos);
  EXPECT_NE(text.find("turbine_disagg_prefill_queue_size{model=\"stories\"} 0"), std::string::npos);
  // One family per name, whatever the number of transports.
  size_t families = 0;
  for (size_t at = 0;
       (at = text.find("# TYPE turbine_kv_transport_bytes_total", at)) != std::string::npos; ++at)
    ++families;
  EXPECT_EQ(families, 1u);
}

// The latency-target scheduler's series (issue 29) carry the engine's counters as they are.
TEST(MetricsTest, SchedulingSeries) {
  FrontendMetrics m("stories");
  ModelMetrics& s = m.model("stories");
  engine::EngineStats st;
  st.prefill_tokens = 4096;
  st.last_step_prefill_tokens = 512;
  st.queue_admissions = 8;
  st.queue_wait_seconds = 2.5;
  st.last_step_predicted_seconds = 0.25;
  st.step_model_samples = 40;
  st.step_model_relative_error = 2;
  st.boosted_steps = 3;
  s.observe_engine(st);
  const std::string text = m.serialize();
  for (const char* line : {"turbine_engine_prefill_tokens_total{model=\"stories\"} 4096",
                           "turbine_engine_last_step_prefill_tokens{model=\"stories\"} 512",
                           "turbine_engine_queue_admissions_total{model=\"stories\"} 8",
                           "turbine_engine_queue_wait_seconds_total{model=\"stories\"} 2.5",
                           "turbine_engine_last_step_predicted_seconds{model=\"stories\"} 0.25",
                           "turbine_engine_step_model_samples_total{model=\"stories\"} 40",
                           "turbine_engine_step_model_relative_error_total{model=\"stories\"} 2",
                           "turbine_engine_ttft_boosted_steps_total{model=\"stories\"} 3"})
    EXPECT_NE(text.find(line), std::string::npos) << line << "\n" << text;
}

// KV tiers (issue 24): per-tier series (label tier) exist once a tier has a capacity; counters
// follow the engine's totals, the hit rate is hits / lookups.
TEST(MetricsTest, KvTierSeries) {
  FrontendMetrics m("stories");
  ModelMetrics& s = m.model("stories");
  engine::EngineStats st;
  s.observe_engine(st);
  EXPECT_EQ(m.serialize().find("turbine_kv_tier_"), std::string::npos);  // no tiers: no series
  st.kv_tier_host_capacity_bytes = 1 << 20;
  st.kv_tier_host_used_bytes = 4096;
  st.kv_tier_host_onboarded_blocks = 5;
  st.kv_tier_host_lookup_blocks = 8;
  st.kv_tier_host_hit_blocks = 6;
  st.kv_tier_loads = 2;
  st.kv_tier_recomputed_blocks = 1;
  st.kv_tier_offload_dropped_blocks = 3;
  s.observe_engine(st);
  st.kv_tier_host_onboarded_blocks = 7;
  s.observe_engine(st);
  const std::string text = m.serialize();
  for (const char* line :
       {"turbine_kv_tier_onboarded_blocks_total{model=\"stories\",tier=\"host\"} 7",
        "turbine_kv_tier_hit_rate{model=\"stories\",tier=\"host\"} 0.75",
        "turbine_kv_tier_used_bytes{model=\"stories\",tier=\"host\"} 4096",
        "turbine_kv_tier_capacity_bytes{model=\"stories\",tier=\"host\"} 1048576",
        "turbine_kv_tier_loads_total{model=\"stories\"} 2",
        "turbine_kv_tier_recomputed_blocks_total{model=\"stories\"} 1",
        "turbine_kv_tier_offload_dropped_blocks_total{model=\"stories\"} 3",
        "# TYPE turbine_kv_tier_onboarded_blocks_total counter"})
    EXPECT_NE(text.find(line), std::string::npos) << line << "\n" << text;
  EXPECT_EQ(text.find("tier=\"disk\""), std::string::npos);
}

}  // namespace
}  // namespace turbine::metrics
