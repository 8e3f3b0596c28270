#include "planner/prometheus_text.h"

#include <cmath>

#include <gtest/gtest.h>

#include "metrics/metrics.h"

namespace turbine::planner {
namespace {

TEST(PrometheusText, ParsesSamplesLabelsAndSpecialValues) {
  auto m = MetricSet::parse(
      "# HELP reqs Requests.\n"
      "# TYPE reqs counter\n"
      "reqs{model=\"a\",status=\"ok\"} 3\n"
      "reqs{status=\"err\", model=\"a\",} 1 1700000000000\n"
      "reqs{model=\"b\\\"x\\\\y\\n\",status=\"ok\"} 5e1\n"
      "# a plain comment\n"
      "\n"
      "up NaN\n"
      "hi +Inf\n"
      "lo -Inf\n");
  ASSERT_TRUE(m.has_value()) << m.status().message();
  EXPECT_EQ(m->samples().size(), 6u);
  EXPECT_EQ(*m->type("reqs"), "counter");
  EXPECT_DOUBLE_EQ(*m->sum("reqs"), 54);
  EXPECT_DOUBLE_EQ(*m->sum("reqs", {{"model", "a"}}), 4);
  EXPECT_DOUBLE_EQ(*m->sum("reqs", {{"model", "a"}, {"status", "ok"}}), 3);
  EXPECT_DOUBLE_EQ(*m->sum("reqs", {{"model", "b\"x\\y\n"}}), 50);
  EXPECT_FALSE(m->sum("reqs", {{"model", "c"}}).has_value());
  EXPECT_FALSE(m->sum("absent").has_value());
  EXPECT_EQ(*m->samples()[1].timestamp_ms, 1700000000000);
  EXPECT_TRUE(std::isnan(*m->sum("up")));
  EXPECT_TRUE(std::isinf(*m->sum("hi")));
  EXPECT_EQ(m->label_values("reqs", "model"), (std::vector<std::string>{"a", "b\"x\\y\n"}));
}

TEST(PrometheusText, HistogramBuckets) {
  auto m = MetricSet::parse(
      "# TYPE lat histogram\n"
      "lat_bucket{model=\"a\",le=\"0.1\"} 2\n"
      "lat_bucket{model=\"a\",le=\"1\"} 5\n"
      "lat_bucket{model=\"a\",le=\"+Inf\"} 6\n"
      "lat_sum{model=\"a\"} 3.5\n"
      "lat_count{model=\"a\"} 6\n");
  ASSERT_TRUE(m.has_value()) << m.status().message();
  auto b = m->buckets("lat", {{"model", "a"}});
  ASSERT_EQ(b.size(), 3u);
  EXPECT_DOUBLE_EQ(b[0].first, 0.1);
  EXPECT_DOUBLE_EQ(b[1].second, 5);
  EXPECT_TRUE(std::isinf(b[2].first));
  EXPECT_DOUBLE_EQ(*m->sum("lat_count"), 6);
}

TEST(PrometheusText, RejectsMalformedInputNamingTheLine) {
  struct Case {
    const char* text;
    const char* why;
  } cases[] = {
      {"a 1\nb{x=1} 2\n", "line 2"},        // unquoted label value
      {"a{x=\"1\" 2\n", "line 1"},          // unterminated label set
      {"a{x=\"1} 2\n", "unterminated"},     // unterminated value
      {"a one\n", "invalid value"},         // not a number
      {"a\n", "space before the value"},    // no value
      {"1a 2\n", "metric name"},            // bad name
      {"a 1 12x\n", "timestamp"},           // bad timestamp
      {"a{x=\"\\q\"} 1\n", "escape"},       // unknown escape
      {"a{x=\"1\",x=\"2\"} 1\n", "twice"},  // duplicate label
      {"a{x=\"1\"} 1\na{x=\"1\"} 2\n", "series given twice"},
      {"# TYPE a counter\n# TYPE a gauge\n", "second TYPE"},
      {"a 1\n# TYPE a counter\n", "after its samples"},
      {"# TYPE a meter\n", "unknown metric type"},
      {"# TYPE h histogram\nh_bucket{x=\"1\"} 1\n", "without an 'le'"},
  };
  for (const Case& c : cases) {
    auto m = MetricSet::parse(c.text);
    ASSERT_FALSE(m.has_value()) << c.text;
    EXPECT_NE(m.status().message().find(c.why), std::string::npos)
        << c.text << " -> " << m.status().message();
  }
}

TEST(PrometheusText, ReadsTheFrontendsOwnExposition) {
  metrics::FrontendMetrics fm("m1");
  metrics::ModelMetrics& mm = fm.model("m1");
  mm.request_done("completions", metrics::RequestType::kStream, metrics::RequestStatus::kSuccess);
  mm.request_done("completions", metrics::RequestType::kStream, metrics::RequestStatus::kError);
  mm.time_to_first_token.Observe(0.25);
  mm.time_to_first_token.Observe(0.75);
  mm.input_tokens.Observe(1000);
  mm.inflight.Set(3);
  engine::EngineStats s;
  s.kv_used_blocks = 10;
  s.kv_total_blocks = 40;
  mm.observe_engine(s);
  auto m = MetricSet::parse(fm.serialize());
  ASSERT_TRUE(m.has_value()) << m.status().message();
  const Labels model{{"model", "m1"}};
  EXPECT_DOUBLE_EQ(*m->sum(metrics::kRequestsTotal, model), 2);
  EXPECT_DOUBLE_EQ(*m->sum(std::string(metrics::kTimeToFirstToken) + "_count", model), 2);
  EXPECT_DOUBLE_EQ(*m->sum(std::string(metrics::kTimeToFirstToken) + "_sum", model), 1.0);
  EXPECT_DOUBLE_EQ(*m->sum(metrics::kInflightRequests, model), 3);
  EXPECT_DOUBLE_EQ(*m->sum(metrics::kEngineKvUsedBlocks, model), 10);
  EXPECT_EQ(*m->type(metrics::kTimeToFirstToken), "histogram");
  EXPECT_FALSE(m->buckets(metrics::kTimeToFirstToken, model).empty());
}

}  // namespace
}  // namespace turbine::planner
