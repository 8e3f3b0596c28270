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

}  // namespace
}  // namespace turbine::metrics
