// The load generator against the in-process fake endpoint: measurement accuracy against the
// server's own timestamps, keep-alive, errors, SIGINT.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <unistd.h>
#include <algorithm>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <thread>

#include <boost/json.hpp>

#include "bench/bench.h"
#include "bench/fake_server.h"
#include "bench/runner.h"
#include "bench/workload.h"

#if defined(__SANITIZE_ADDRESS__)
#define TURBINE_TEST_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TURBINE_TEST_UNDER_ASAN 1
#endif
#endif

namespace turbine::bench {
namespace {

using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

BenchOptions options_for(uint16_t port) {
  BenchOptions o;
  o.url = "http://127.0.0.1:" + std::to_string(port);
  o.model = "fake-model";
  o.progress = false;
  o.timeout_s = 10;
  return o;
}

// Errors of one 256-stream run against the server's own write times (same steady clock).
struct AccuracyRun {
  std::vector<double> ttft_err, itl_err;
  double mean_ttft = 0, mean_itl = 0;
  double slip_p99 = 0;  // how late the server's own timers fired
};

double p99(const std::vector<double>& sorted) {
  return sorted[static_cast<size_t>(0.99 * static_cast<double>(sorted.size() - 1))];
}

// 256 concurrent streams, TTFT 50 ms then a chunk every 20 ms: the measured TTFT and ITL of every
// request are compared with the times the server wrote the bytes.
void measure_accuracy(AccuracyRun& out) {
  FakeServerOptions so;
  so.ttft_ms = 50;
  so.itl_ms = 20;
  so.record_timings = true;
  FakeOpenAiServer server(so);
  ASSERT_TRUE(server.start().is_ok());

  BenchOptions o = options_for(server.port());
  o.input_len = 32;
  o.output_len = 16;
  o.concurrency = 256;
  o.num_requests = 512;
  Workload w = make_synthetic(o, o.num_requests);
  auto ep = parse_endpoint(o.url, ApiKind::kCompletions);
  ASSERT_TRUE(ep.has_value());
  Runner runner(o, *ep, w);
  PointConfig c;
  c.concurrency = 256;
  c.num_requests = 512;
  PointResult r = runner.run_point(c, o.model);
  auto timings = server.take_timings();

  ASSERT_EQ(r.results.size(), 512u);
  double ttft_sum = 0, itl_sum = 0;
  size_t n_itl = 0;
  for (const RequestResult& q : r.results) {
    ASSERT_TRUE(q.ok) << q.error;
    EXPECT_EQ(q.output_tokens, 16);
    EXPECT_TRUE(q.usage_reported);
    EXPECT_EQ(q.input_tokens, 32);
    ASSERT_EQ(q.itl_ms.size(), 15u);
    auto it = timings.find(render_prompt(w, w.requests[static_cast<size_t>(q.index)]));
    ASSERT_NE(it, timings.end());
    const FakeTiming& t = it->second;
    ASSERT_EQ(t.chunks.size(), 16u);
    const auto start = r.origin + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double, std::milli>(q.start_ms));
    out.ttft_err.push_back(std::fabs(q.ttft_ms() - ms_between(start, t.chunks[0])));
    ttft_sum += q.ttft_ms();
    double arrival = q.first_token_ms;
    for (size_t i = 0; i < q.itl_ms.size(); ++i) {
      arrival += q.itl_ms[i];
      const double lag = arrival - ms_between(r.origin, t.chunks[i + 1]);
      if (lag > 1.0 && getenv("TURBINE_BENCH_DEBUG")) {
        std::printf("late chunk: request %d chunk %zu written at %.3f ms, lag %.3f ms\n", q.index,
                    i + 1, ms_between(r.origin, t.chunks[i + 1]), lag);
      }
      out.itl_err.push_back(std::fabs(q.itl_ms[i] - ms_between(t.chunks[i], t.chunks[i + 1])));
      itl_sum += q.itl_ms[i];
      ++n_itl;
    }
  }
  out.mean_ttft = ttft_sum / static_cast<double>(r.results.size());
  out.mean_itl = itl_sum / static_cast<double>(n_itl);
  std::vector<double> slip;
  for (const auto& [key, t] : timings) {
    for (size_t i = 0; i < t.chunks.size(); ++i) {
      slip.push_back(ms_between(t.received, t.chunks[i]) - (50.0 + 20.0 * static_cast<double>(i)));
    }
  }
  std::sort(slip.begin(), slip.end());
  std::sort(out.ttft_err.begin(), out.ttft_err.end());
  std::sort(out.itl_err.begin(), out.itl_err.end());
  out.slip_p99 = p99(slip);
  std::printf(
      "ttft err p50 %.3f p99 %.3f max %.3f ms; itl err p50 %.3f p99 %.3f max %.3f ms; "
      "server timer slip p99 %.3f ms\n",
      out.ttft_err[out.ttft_err.size() / 2], p99(out.ttft_err), out.ttft_err.back(),
      out.itl_err[out.itl_err.size() / 2], p99(out.itl_err), out.itl_err.back(), out.slip_p99);
}

TEST(RunnerTest, TtftAndItlMatchTheServersWriteTimesAt256Streams) {
#ifdef TURBINE_TEST_UNDER_ASAN
  GTEST_SKIP() << "timing accuracy is measured on optimised builds, not under AddressSanitizer";
#endif
  // Every client time is a read completion: it can only lag the server's write, by loopback
  // delivery plus event-loop latency. A measurement bug (chunks coalesced into one read, times
  // taken after parsing a batch, the wrong origin) is off by a whole 20 ms interval at the median
  // in every run; scheduling noise of a shared host is a tail that comes and goes. So this test
  // holds the medians: within 10 ms (half an interval) in every run, within 1 ms with the means
  // right in every run where the host kept the server's own timers within 0.5 ms ("quiet").
  //
  // The sub-millisecond tail (p99 within 1 ms) is a measurement, not a test: on a shared 2-core
  // CI host the client thread is descheduled for milliseconds at will. It is asserted only with
  // TURBINE_BENCH_ACCURACY=1 on a quiet machine (docs/PERFORMANCE.md has the command and numbers).
  const bool assert_tail = getenv("TURBINE_BENCH_ACCURACY") != nullptr;
  constexpr int kAttempts = 8;
  bool tight = false;
  int quiet_runs = 0;
  for (int attempt = 0; attempt < kAttempts && !tight; ++attempt) {
    AccuracyRun a;
    measure_accuracy(a);
    if (HasFatalFailure()) return;
    EXPECT_LT(a.ttft_err[a.ttft_err.size() / 2], 10.0);
    EXPECT_LT(a.itl_err[a.itl_err.size() / 2], 10.0);
    if (HasFailure()) return;
    if (a.slip_p99 > 0.5) continue;  // a loaded host: nothing below a millisecond can show
    ++quiet_runs;
    EXPECT_LT(a.ttft_err[a.ttft_err.size() / 2], 1.0);
    EXPECT_LT(a.itl_err[a.itl_err.size() / 2], 1.0);
    // The measured means are the injected delays (TTFT also holds connect and request transfer).
    EXPECT_GE(a.mean_ttft, 49.9);
    EXPECT_LT(a.mean_ttft, 60.0);
    EXPECT_NEAR(a.mean_itl, 20.0, 1.0);
    if (HasFailure()) return;
    tight = p99(a.ttft_err) < 1.0 && p99(a.itl_err) < 1.0;
    if (!assert_tail && quiet_runs >= 2) break;  // the medians held in two quiet runs
  }
  if (!assert_tail) {
    if (quiet_runs == 0) {
      GTEST_SKIP() << "host too loaded for sub-millisecond medians: no run of " << kAttempts
                   << " had the server's timers within 0.5 ms at p99; medians within 10 ms were "
                      "checked";
    }
    return;
  }
  ASSERT_GE(quiet_runs, 1) << "TURBINE_BENCH_ACCURACY=1 needs a quiet host";
  EXPECT_TRUE(tight) << "p99 TTFT or ITL error above 1 ms in all " << quiet_runs << " quiet runs";
}

}  // namespace
}  // namespace turbine::bench

namespace turbine::bench {
namespace {

uint16_t closed_port() {
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor a(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();  // closed when `a` goes out of scope
}

TEST(RunnerTest, UnreachableServerIsAClearError) {
  BenchOptions o = options_for(closed_port());
  Workload w = make_synthetic(o, 1);
  auto ep = parse_endpoint(o.url, ApiKind::kChat);
  ASSERT_TRUE(ep.has_value());
  Runner runner(o, *ep, w);
  Status s = runner.check_reachable();
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_NE(s.message().find("cannot connect to http://127.0.0.1:"), std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("refused"), std::string::npos) << s.message();
  // And the whole command exits non-zero without writing a report.
  std::FILE* devnull = std::fopen("/dev/null", "w");
  EXPECT_EQ(run_bench(o, devnull), kExitFailed);
  std::fclose(devnull);
}

TEST(RunnerTest, BadArgumentsExitWithTwo) {
  std::FILE* devnull = std::fopen("/dev/null", "w");
  BenchOptions o = options_for(1);
  o.url = "ftp://x";
  EXPECT_EQ(run_bench(o, devnull), kExitBadArgs);
  o.url = "https://example.com";
  EXPECT_EQ(run_bench(o, devnull), kExitBadArgs);
  o = options_for(1);
  o.output_len = 0;
  EXPECT_EQ(run_bench(o, devnull), kExitBadArgs);
  std::fclose(devnull);
}

TEST(RunnerTest, ParsesEndpoints) {
  auto e = parse_endpoint("http://localhost:8000", ApiKind::kChat);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->host, "localhost");
  EXPECT_EQ(e->port, "8000");
  EXPECT_EQ(e->target, "/v1/chat/completions");
  e = parse_endpoint("http://127.0.0.1:9/v1/", ApiKind::kCompletions);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->target, "/v1/completions");
  e = parse_endpoint("http://h/proxy/v1/completions", ApiKind::kChat);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->api, ApiKind::kCompletions);
  EXPECT_EQ(e->port, "80");
  EXPECT_EQ(e->base_path, "/proxy");
  EXPECT_FALSE(parse_endpoint("not a url", ApiKind::kChat).has_value());
}

TEST(RunnerTest, FullRunWithKeepAliveModelDiscoveryAndOutputs) {
  FakeServerOptions so;
  so.model = "discovered";
  FakeOpenAiServer server(so);
  ASSERT_TRUE(server.start().is_ok());
  BenchOptions o = options_for(server.port());
  o.model.clear();  // from /v1/models
  o.concurrency = 4;
  o.num_requests = 40;
  o.output_len = 5;
  o.calibrate = true;
  o.slo.ttft_ms = 10000;
  auto dir = std::filesystem::temp_directory_path();
  o.output_json = (dir / "turbine_bench_run.json").string();
  o.output_csv = (dir / "turbine_bench_run.csv").string();
  o.plot_svg = (dir / "turbine_bench_run.svg").string();
  std::FILE* devnull = std::fopen("/dev/null", "w");
  BenchReport report;
  EXPECT_EQ(run_bench(o, devnull, &report), kExitOk);
  std::fclose(devnull);
  EXPECT_EQ(report.model, "discovered");
  EXPECT_DOUBLE_EQ(report.words_per_token, 1.0);  // the fake /tokenize counts words
  ASSERT_EQ(report.points.size(), 1u);
  EXPECT_EQ(report.overall.completed, 40u);
  EXPECT_EQ(report.overall.output_tokens, 200);
  EXPECT_EQ(report.overall.good_requests, 40u);
  EXPECT_EQ(server.requests_served(), 40u);
  for (const auto& p : {o.output_json, o.output_csv, o.plot_svg}) {
    EXPECT_GT(std::filesystem::file_size(p), 100u) << p;
  }
}

TEST(RunnerTest, SweepAndPoissonArrivals) {
  FakeServerOptions so;
  // Requests long enough (~45 ms) that the overlap at concurrency 4, not the client's per-request
  // overhead, decides the rate even on a loaded 2-core host.
  so.ttft_ms = 30;
  so.itl_ms = 5;
  FakeOpenAiServer server(so);
  ASSERT_TRUE(server.start().is_ok());
  std::FILE* devnull = std::fopen("/dev/null", "w");
  BenchOptions o = options_for(server.port());
  o.sweep_concurrency = {1, 4};
  o.num_requests = 8;
  o.output_len = 4;
  BenchReport report;
  EXPECT_EQ(run_bench(o, devnull, &report), kExitOk);
  ASSERT_EQ(report.points.size(), 2u);
  EXPECT_EQ(report.points[1].config.concurrency, 4);
  EXPECT_EQ(report.points[0].summary.completed, 8u);
  // Concurrency 4 overlaps requests: more than twice the request rate of concurrency 1.
  EXPECT_GT(report.points[1].summary.requests_per_s, 2 * report.points[0].summary.requests_per_s);

  // Poisson at 200 req/s for 40 requests: ~0.2 s of arrivals.
  o = options_for(server.port());
  ASSERT_TRUE(parse_request_rate("200", o).is_ok());
  o.concurrency = 0;
  o.num_requests = 40;
  o.output_len = 2;
  EXPECT_EQ(run_bench(o, devnull, &report), kExitOk);
  EXPECT_EQ(report.overall.completed, 40u);
  EXPECT_GT(report.overall.duration_s, 0.08);
  EXPECT_LT(report.overall.duration_s, 1.0);
  std::fclose(devnull);
}

TEST(RunnerTest, RampUpStartsTheWorkersOneAfterAnother) {
  FakeServerOptions so;
  so.ttft_ms = 600;  // longer than the ramp: no worker sends a second request before it ends
  FakeOpenAiServer server(so);
  ASSERT_TRUE(server.start().is_ok());
  std::FILE* devnull = std::fopen("/dev/null", "w");
  BenchOptions o = options_for(server.port());
  o.concurrency = 4;
  o.num_requests = 4;  // one request per worker
  o.output_len = 2;
  o.ramp_up_s = 0.4;  // workers at 0, 0.1, 0.2, 0.3 s
  BenchReport report;
  EXPECT_EQ(run_bench(o, devnull, &report), kExitOk);
  std::fclose(devnull);
  ASSERT_EQ(report.points.size(), 1u);
  EXPECT_NE(report.points[0].config.label.find("ramp-up 0.4 s"), std::string::npos);
  const auto& rs = report.points[0].results;
  ASSERT_EQ(rs.size(), 4u);
  // Each worker's first request waits for its start (a timer never fires early); without the
  // ramp all four would start within a few milliseconds.
  std::vector<double> starts;
  for (const auto& r : rs) starts.push_back(r.start_ms);
  std::sort(starts.begin(), starts.end());
  for (int k = 1; k < 4; ++k) EXPECT_GE(starts[k], 100.0 * k) << k;
}

TEST(RunnerTest, HttpErrorsAreCountedWithTheServerMessage) {
  FakeServerOptions so;
  FakeOpenAiServer server(so);
  ASSERT_TRUE(server.start().is_ok());
  BenchOptions o = options_for(server.port());
  o.url = "http://127.0.0.1:" + std::to_string(server.port()) + "/v2/unknown";
  Workload w = make_synthetic(o, 3);
  auto ep = parse_endpoint(o.url, ApiKind::kChat);
  ASSERT_TRUE(ep.has_value());
  Runner runner(o, *ep, w);
  PointConfig c;
  c.num_requests = 3;
  PointResult r = runner.run_point(c, "m");
  ASSERT_EQ(r.results.size(), 3u);
  for (const auto& q : r.results) {
    EXPECT_FALSE(q.ok);
    EXPECT_EQ(q.http_status, 404);
    EXPECT_EQ(q.error, "HTTP 404: not found");
  }
}

TEST(RunnerTest, SigintStopsTheRunAndKeepsThePartialResults) {
  FakeServerOptions so;
  so.ttft_ms = 10;
  so.itl_ms = 10;
  FakeOpenAiServer server(so);
  ASSERT_TRUE(server.start().is_ok());
  BenchOptions o = options_for(server.port());
  o.handle_sigint = true;
  o.concurrency = 8;
  o.num_requests = 100000;  // would take minutes
  o.output_len = 20;
  o.output_json = (std::filesystem::temp_directory_path() / "turbine_bench_sigint.json").string();
  std::filesystem::remove(o.output_json);
  std::thread killer([] {
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
    ::kill(::getpid(), SIGINT);
  });
  std::FILE* devnull = std::fopen("/dev/null", "w");
  BenchReport report;
  const auto t0 = Clock::now();
  int code = run_bench(o, devnull, &report);
  killer.join();
  std::fclose(devnull);
  EXPECT_EQ(code, kExitInterrupted);
  EXPECT_LT(ms_between(t0, Clock::now()), 5000);
  EXPECT_TRUE(report.interrupted);
  EXPECT_GT(report.overall.completed, 8u);  // ~0.2 s per request, 8 at a time, 0.7 s
  EXPECT_LT(report.overall.completed, 1000u);
  EXPECT_GE(report.overall.cancelled, 1u);  // the in-flight ones
  EXPECT_EQ(report.overall.errors, 0u);
  auto j = boost::json::parse(std::ifstream(o.output_json) ? [&] {
    std::ifstream f(o.output_json);
    return std::string(std::istreambuf_iterator<char>(f), {});
  }() : std::string("{}"));
  EXPECT_TRUE(j.as_object()["interrupted"].as_bool());
}

}  // namespace
}  // namespace turbine::bench
