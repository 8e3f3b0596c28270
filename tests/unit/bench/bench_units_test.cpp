// Pure parts of the bench module: option parsing, workloads, SSE decoding, statistics, reports.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <filesystem>
#include <fstream>

#include "bench/options.h"
#include "bench/report.h"
#include "bench/sse.h"
#include "bench/stats.h"
#include "bench/workload.h"
#include "test_support/missing_dependency.h"

namespace turbine::bench {
namespace {

TEST(OptionsTest, ParsesSlo) {
  auto slo = parse_slo("ttft=200, itl=50");
  ASSERT_TRUE(slo.has_value());
  EXPECT_DOUBLE_EQ(*slo->ttft_ms, 200);
  EXPECT_DOUBLE_EQ(*slo->itl_ms, 50);
  EXPECT_FALSE(slo->e2e_ms.has_value());
  EXPECT_FALSE(parse_slo("ttft").has_value());
  EXPECT_FALSE(parse_slo("ttft=-1").has_value());
  EXPECT_FALSE(parse_slo("latency=3").has_value());
  EXPECT_FALSE(parse_slo("").has_value());
  EXPECT_NE(parse_slo("foo=1").status().message().find("foo"), std::string::npos);
}

TEST(OptionsTest, ParsesListsAndRates) {
  auto l = parse_int_list("1,2, 4,8", "--sweep-concurrency");
  ASSERT_TRUE(l.has_value());
  EXPECT_EQ(*l, (std::vector<int>{1, 2, 4, 8}));
  EXPECT_FALSE(parse_int_list("1,x", "--sweep-concurrency").has_value());
  EXPECT_FALSE(parse_int_list("0", "--sweep-concurrency").has_value());
  BenchOptions o;
  EXPECT_TRUE(parse_request_rate("2.5", o).is_ok());
  EXPECT_EQ(o.arrival, ArrivalKind::kPoisson);
  EXPECT_DOUBLE_EQ(o.request_rate, 2.5);
  EXPECT_TRUE(parse_request_rate("trace", o).is_ok());
  EXPECT_EQ(o.arrival, ArrivalKind::kTrace);
  EXPECT_TRUE(parse_request_rate("inf", o).is_ok());
  EXPECT_TRUE(std::isinf(o.request_rate));
  EXPECT_FALSE(parse_request_rate("fast", o).is_ok());
  EXPECT_FALSE(parse_request_rate("0", o).is_ok());
}

TEST(OptionsTest, ValidateNamesTheBadOption) {
  BenchOptions o;
  EXPECT_TRUE(o.validate().is_ok());
  o.concurrency = 0;
  EXPECT_NE(o.validate().message().find("--concurrency"), std::string::npos);
  o = BenchOptions{};
  o.input_len = 0;
  EXPECT_NE(o.validate().message().find("--input-len"), std::string::npos);
  o = BenchOptions{};
  o.arrival = ArrivalKind::kTrace;
  EXPECT_NE(o.validate().message().find("--dataset"), std::string::npos);
  o = BenchOptions{};
  o.arrival = ArrivalKind::kPoisson;
  o.request_rate = 1;
  o.sweep_concurrency = {1, 2};
  EXPECT_FALSE(o.validate().is_ok());
}

TEST(WorkloadTest, SyntheticTextHasOneWordPerToken) {
  std::string t = synth_text(7, 100);
  EXPECT_EQ(std::count(t.begin(), t.end(), ' '), 100);
  EXPECT_EQ(t, synth_text(7, 100));
  EXPECT_NE(t, synth_text(8, 100));
  // A shorter text from the same seed is a prefix: partial Mooncake blocks share text.
  EXPECT_EQ(t.substr(0, synth_text(7, 40).size()), synth_text(7, 40));
}

TEST(WorkloadTest, SyntheticLengthsAndPrefixGroups) {
  BenchOptions o;
  o.input_len = 50;
  o.output_len = 10;
  o.prefix_len = 20;
  o.num_prefix_groups = 2;
  Workload w = make_synthetic(o, 4);
  ASSERT_EQ(w.requests.size(), 4u);
  std::vector<std::string> p;
  for (const auto& r : w.requests) {
    EXPECT_EQ(r.output_tokens, 10);
    p.push_back(render_prompt(w, r));
    EXPECT_EQ(std::count(p.back().begin(), p.back().end(), ' '), 70);
  }
  auto first20 = [](const std::string& s) {
    size_t pos = 0;
    for (int i = 0; i < 20; ++i) pos = s.find(' ', pos + 1);
    return s.substr(0, pos);
  };
  EXPECT_EQ(first20(p[0]), first20(p[2]));
  EXPECT_EQ(first20(p[1]), first20(p[3]));
  EXPECT_NE(first20(p[0]), first20(p[1]));
  EXPECT_NE(p[0], p[2]);  // the unique parts differ

  o.input_len_std = 10;
  o.prefix_len = 0;
  Workload v = make_synthetic(o, 200);
  double sum = 0;
  int distinct = 0;
  for (const auto& r : v.requests) {
    sum += r.input_tokens;
    distinct += r.input_tokens != 50;
    EXPECT_GE(r.input_tokens, 1);
  }
  EXPECT_NEAR(sum / 200, 50, 3);
  EXPECT_GT(distinct, 100);
}

std::string write_temp(const std::string& name, const std::string& content) {
  auto path = std::filesystem::temp_directory_path() / ("turbine_bench_" + name);
  std::ofstream(path) << content;
  return path.string();
}

TEST(WorkloadTest, MooncakeEqualHashIdsShareText) {
  BenchOptions o;
  o.dataset = write_temp(
      "trace.jsonl",
      "{\"timestamp\": 0, \"input_length\": 1100, \"output_length\": 5, \"hash_ids\": [1, 2, 3]}\n"
      "\n"
      "{\"timestamp\": 250, \"input_length\": 600, \"output_length\": 7, \"hash_ids\": [1, 9]}\n");
  auto w = load_dataset(o);
  ASSERT_TRUE(w.has_value()) << w.status().message();
  ASSERT_EQ(w->requests.size(), 2u);
  EXPECT_TRUE(w->has_timestamps);
  EXPECT_DOUBLE_EQ(w->requests[1].timestamp_ms, 250);
  std::string a = render_prompt(*w, w->requests[0]);
  std::string b = render_prompt(*w, w->requests[1]);
  EXPECT_EQ(std::count(a.begin(), a.end(), ' '), 1100);
  EXPECT_EQ(std::count(b.begin(), b.end(), ' '), 600);
  size_t pos = 0;
  for (int i = 0; i < kMooncakeBlockTokens; ++i) pos = a.find(' ', pos + 1);
  EXPECT_EQ(a.substr(0, pos), b.substr(0, pos));      // block 1 shared
  EXPECT_NE(a.substr(pos, 200), b.substr(pos, 200));  // blocks 2 vs 9 differ
  std::string body = build_request_body(*w, w->requests[1], ApiKind::kChat, "m", true);
  auto v = boost::json::parse(body).as_object();
  EXPECT_EQ(v["max_tokens"].as_int64(), 7);
  EXPECT_TRUE(v["ignore_eos"].as_bool());
  EXPECT_TRUE(v["stream"].as_bool());
  EXPECT_TRUE(v["stream_options"].as_object()["include_usage"].as_bool());
  EXPECT_EQ(v["messages"].as_array()[0].as_object()["content"].as_string(), b);
}

TEST(WorkloadTest, MooncakeScaledReplayKeepsTheSharingWithSmallerBlocks) {
  BenchOptions o;
  o.trace_block_tokens = 32;
  o.dataset = write_temp(
      "trace_scaled.jsonl",
      "{\"timestamp\": 0, \"input_length\": 1100, \"output_length\": 500, \"hash_ids\": [1, 2, "
      "3]}\n"
      "{\"timestamp\": 90, \"input_length\": 600, \"output_length\": 7, \"hash_ids\": [1, 9]}\n");
  ASSERT_TRUE(o.validate().ok());
  auto w = load_dataset(o);
  ASSERT_TRUE(w.has_value()) << w.status().message();
  // Lengths scale by 32/512, rounded, at least 1.
  EXPECT_EQ(w->requests[0].input_tokens, 69);
  EXPECT_EQ(w->requests[0].output_tokens, 31);
  EXPECT_EQ(w->requests[1].input_tokens, 38);
  EXPECT_EQ(w->requests[1].output_tokens, 1);
  EXPECT_DOUBLE_EQ(w->requests[1].timestamp_ms, 90);  // arrival times are kept
  std::string a = render_prompt(*w, w->requests[0]);
  std::string b = render_prompt(*w, w->requests[1]);
  EXPECT_EQ(std::count(a.begin(), a.end(), ' '), 69);
  EXPECT_EQ(std::count(b.begin(), b.end(), ' '), 38);
  // Block 1 (32 words) is shared; the second blocks (2 vs 9) differ.
  size_t pos = 0;
  for (int i = 0; i < 32; ++i) pos = a.find(' ', pos + 1);
  EXPECT_EQ(a.substr(0, pos), b.substr(0, pos));
  EXPECT_NE(a.substr(pos), b.substr(pos, a.size() - pos));
  BenchOptions bad;
  bad.trace_block_tokens = 0;
  EXPECT_EQ(bad.validate().code(), StatusCode::kInvalidArgument);
  bad.trace_block_tokens = 513;
  EXPECT_EQ(bad.validate().code(), StatusCode::kInvalidArgument);
}

TEST(WorkloadTest, RealMooncakeTracesLoad) {
  std::filesystem::path dir = std::filesystem::path(TURBINE_SHARED_DEFAULT) / "datasets";
  if (const char* env = std::getenv("TURBINE_SHARED"))
    dir = std::filesystem::path(env) / "datasets";
  auto path = dir / "mooncake_synthetic_trace.jsonl";
  if (!std::filesystem::exists(path)) TURBINE_MISSING_DEPENDENCY(path << " not present");
  BenchOptions o;
  o.dataset = path.string();
  auto w = load_dataset(o);
  ASSERT_TRUE(w.has_value()) << w.status().message();
  EXPECT_GT(w->requests.size(), 1000u);
  EXPECT_TRUE(w->has_timestamps);
  const RequestSpec& r = w->requests.front();
  std::string p = render_prompt(*w, r);
  EXPECT_EQ(std::count(p.begin(), p.end(), ' '), r.input_tokens);
}

TEST(WorkloadTest, PromptFilesAndErrorsNameTheLine) {
  BenchOptions o;
  o.output_len = 33;
  o.dataset = write_temp("prompts.jsonl",
                         "{\"prompt\": \"hello there\"}\n"
                         "{\"messages\": [{\"role\": \"system\", \"content\": \"be brief\"}, "
                         "{\"role\": \"user\", \"content\": \"hi\"}], \"max_tokens\": 4}\n");
  auto w = load_dataset(o);
  ASSERT_TRUE(w.has_value()) << w.status().message();
  ASSERT_EQ(w->requests.size(), 2u);
  EXPECT_FALSE(w->has_timestamps);
  EXPECT_EQ(w->requests[0].output_tokens, 33);
  EXPECT_EQ(w->requests[1].output_tokens, 4);
  auto chat = boost::json::parse(build_request_body(*w, w->requests[1], ApiKind::kChat, "m", false))
                  .as_object();
  EXPECT_EQ(chat["messages"].as_array().size(), 2u);
  EXPECT_FALSE(chat.contains("ignore_eos"));
  auto cmpl =
      boost::json::parse(build_request_body(*w, w->requests[1], ApiKind::kCompletions, "m", true))
          .as_object();
  EXPECT_EQ(cmpl["prompt"].as_string(), "be brief\nhi");

  o.dataset = write_temp("bad.jsonl", "{\"prompt\": \"ok\"}\n{\"nothing\": 1}\n");
  auto bad = load_dataset(o);
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.status().message().find("bad.jsonl:2"), std::string::npos)
      << bad.status().message();
  o.dataset = "/nonexistent/file.jsonl";
  EXPECT_FALSE(load_dataset(o).has_value());
}

TEST(SseTest, DecodesEventsSplitAnywhere) {
  const std::string stream =
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n"
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\r\n\r\n"
      ": keep-alive comment\n\n"
      "data: {\"choices\":[{\"index\":0,\"text\":\" there\"}]}\n\n"
      "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":2}}\n\n"
      "data: [DONE]\n\n";
  for (size_t split = 1; split < 40; ++split) {
    SseDecoder d;
    std::vector<SseEvent> ev;
    for (size_t i = 0; i < stream.size(); i += split)
      d.feed(std::string_view(stream).substr(i, split), ev);
    ASSERT_EQ(ev.size(), 5u) << "split " << split;
    EXPECT_FALSE(ev[0].has_content);
    EXPECT_TRUE(ev[1].has_content);
    EXPECT_TRUE(ev[2].has_content);
    EXPECT_TRUE(ev[3].has_usage);
    EXPECT_EQ(ev[3].prompt_tokens, 12);
    EXPECT_EQ(ev[3].completion_tokens, 2);
    EXPECT_FALSE(ev[3].has_content);
    EXPECT_TRUE(ev[4].done);
    for (const auto& e : ev) EXPECT_TRUE(e.error.empty()) << e.error;
  }
  SseEvent e = decode_sse_payload("{\"error\":{\"message\":\"boom\"}}");
  EXPECT_EQ(e.error, "boom");
  EXPECT_FALSE(decode_sse_payload("not json").error.empty());
}

TEST(StatsTest, PercentilesAndGoodput) {
  std::vector<double> v = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  EXPECT_DOUBLE_EQ(percentile(v, 50), 5.5);
  EXPECT_NEAR(percentile(v, 90), 9.1, 1e-9);
  EXPECT_NEAR(percentile(v, 99), 9.91, 1e-9);
  Distribution d = distribution({3, 1, 2});
  EXPECT_DOUBLE_EQ(d.mean, 2);
  EXPECT_DOUBLE_EQ(d.p50, 2);
  EXPECT_DOUBLE_EQ(d.max, 3);

  std::vector<RequestResult> rs(4);
  for (int i = 0; i < 4; ++i) {
    rs[i].index = i;
    rs[i].ok = true;
    rs[i].start_ms = 0;
    rs[i].first_token_ms = 100.0 * (i + 1);  // TTFT 100..400
    rs[i].itl_ms = {10, 30};                 // mean 20
    rs[i].end_ms = 1000;
    rs[i].output_tokens = 3;
  }
  rs[3].ok = false;
  rs[3].error = "HTTP 500: x";
  Slo slo;
  slo.ttft_ms = 250;
  slo.itl_ms = 25;
  Summary s = summarize(rs, slo);
  EXPECT_EQ(s.completed, 3u);
  EXPECT_EQ(s.errors, 1u);
  EXPECT_EQ(s.good_requests, 2u);  // TTFT 100 and 200
  EXPECT_DOUBLE_EQ(s.duration_s, 1.0);
  EXPECT_DOUBLE_EQ(s.goodput_requests_per_s, 2.0);
  EXPECT_DOUBLE_EQ(s.goodput_output_tokens_per_s, 6.0);  // the output tokens of those two
  EXPECT_DOUBLE_EQ(s.requests_per_s, 3.0);
  EXPECT_DOUBLE_EQ(s.output_tokens_per_s, 9.0);
  EXPECT_DOUBLE_EQ(s.ttft_ms.p50, 200);
  EXPECT_EQ(s.itl_ms.count, 6u);
  ASSERT_EQ(s.error_kinds.size(), 1u);
  EXPECT_EQ(s.error_kinds[0].first, "HTTP 500: x");
  slo.itl_ms = 15;
  EXPECT_EQ(summarize(rs, slo).good_requests, 0u);
}

TEST(OptionsTest, RampStartsWorkersLinearly) {
  // 4 workers over 2 s: at 0, 0.5, 1, 1.5 s (the last one starts one step before the end).
  EXPECT_DOUBLE_EQ(ramp_start_s(0, 4, 2.0), 0.0);
  EXPECT_DOUBLE_EQ(ramp_start_s(1, 4, 2.0), 0.5);
  EXPECT_DOUBLE_EQ(ramp_start_s(3, 4, 2.0), 1.5);
  EXPECT_DOUBLE_EQ(ramp_start_s(3, 4, 0.0), 0.0);  // no ramp: all at once
  EXPECT_DOUBLE_EQ(ramp_start_s(0, 1, 5.0), 0.0);  // a single worker starts at once
  BenchOptions o;
  o.ramp_up_s = -1;
  EXPECT_NE(o.validate().message().find("--ramp-up-s"), std::string::npos);
  o.ramp_up_s = 5;
  EXPECT_TRUE(o.validate().is_ok());
  ASSERT_TRUE(parse_request_rate("10", o).is_ok());
  EXPECT_NE(o.validate().message().find("--ramp-up-s"), std::string::npos);  // open loop
  o = BenchOptions{};
  o.duration_s = 10;
  o.warmup_s = 10;
  EXPECT_NE(o.validate().message().find("--warmup-s"), std::string::npos);
  o.warmup_s = 3;
  EXPECT_TRUE(o.validate().is_ok());
}

TEST(StatsTest, WarmupRequestsAreLeftOut) {
  // Requests started at 0, 1, 2, 3 s; the first two miss the TTFT SLO.
  std::vector<RequestResult> rs(4);
  for (int i = 0; i < 4; ++i) {
    rs[i].index = i;
    rs[i].ok = true;
    rs[i].start_ms = 1000.0 * i;
    rs[i].first_token_ms = rs[i].start_ms + (i < 2 ? 900 : 100);
    rs[i].end_ms = rs[i].start_ms + 1000;
    rs[i].output_tokens = 10;
  }
  Slo slo;
  slo.ttft_ms = 500;
  Summary all = summarize(rs, slo);
  EXPECT_EQ(all.completed, 4u);
  EXPECT_EQ(all.good_requests, 2u);
  EXPECT_EQ(all.warmup_excluded, 0u);
  Summary s = summarize(rs, slo, 1500);  // requests started before 1.5 s are out
  EXPECT_EQ(s.warmup_excluded, 2u);
  EXPECT_EQ(s.completed, 2u);
  EXPECT_EQ(s.good_requests, 2u);
  EXPECT_DOUBLE_EQ(s.duration_s, 2.0);  // from 2 s (the first kept start) to 4 s
  EXPECT_DOUBLE_EQ(s.goodput_output_tokens_per_s, 10.0);
  EXPECT_DOUBLE_EQ(s.ttft_ms.max, 100);
}

TEST(ReportTest, JsonCsvAndSvg) {
  BenchReport r;
  r.model = "m";
  r.target_url = "http://h/v1/chat/completions";
  r.workload = "synthetic";
  r.options.slo.ttft_ms = 100;
  for (int c : {1, 4}) {
    PointReport p;
    p.config.concurrency = c;
    p.config.label = "concurrency " + std::to_string(c);
    for (int i = 0; i < 300; ++i) {
      RequestResult q;
      q.index = i;
      q.ok = true;
      q.start_ms = i;
      q.first_token_ms = i + 20.0 * c + i % 7;
      q.itl_ms = {5.0 * c, 6.0 * c};
      q.end_ms = q.first_token_ms + 11 * c;
      q.output_tokens = 3;
      q.error = i == 0 ? "a,\"b\"" : "";
      p.results.push_back(q);
    }
    p.summary = summarize(p.results, r.options.slo);
    r.points.push_back(std::move(p));
  }
  r.overall = r.points[0].summary;
  auto j = boost::json::parse(to_json(r)).as_object();
  for (const char* k : {"ttft_ms", "itl_ms", "e2e_ms"}) {
    ASSERT_TRUE(j.contains(k)) << k;
    for (const char* f : {"mean", "p50", "p90", "p99"})
      EXPECT_TRUE(j[k].as_object().contains(f)) << k << f;
  }
  for (const char* k : {"output_tokens_per_s", "requests_per_s", "goodput_requests_per_s",
                        "goodput_output_tokens_per_s", "errors", "config"}) {
    EXPECT_TRUE(j.contains(k)) << k;
  }
  ASSERT_EQ(j["points"].as_array().size(), 2u);
  EXPECT_EQ(j["points"].as_array()[1].as_object()["concurrency"].as_int64(), 4);
  EXPECT_EQ(j["config"].as_object()["model"].as_string(), "m");

  std::string csv = to_csv(r);
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 601);
  EXPECT_NE(csv.find("\"a,\"\"b\"\"\""), std::string::npos);

  std::string svg = to_svg(r);
  EXPECT_EQ(svg.rfind("<?xml", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  EXPECT_NE(svg.find("TTFT CDF"), std::string::npos);
  EXPECT_NE(svg.find("vs throughput"), std::string::npos);  // a sweep adds the second row
  size_t polylines = 0;
  for (size_t pos = 0; (pos = svg.find("<polyline", pos)) != std::string::npos; ++pos) ++polylines;
  EXPECT_EQ(polylines,
            3u * 2 + 2 * 2 + 2);  // 3 CDFs x 2 points, 2 latency panels x 2, throughput x 2
}

}  // namespace
}  // namespace turbine::bench
