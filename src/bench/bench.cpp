#include "bench/bench.h"

#include <fmt/format.h>
#include <sys/resource.h>

#include <algorithm>
#include <cmath>

#include "bench/runner.h"
#include "bench/workload.h"

namespace turbine::bench {
namespace {

constexpr int kSyntheticPoolForDuration = 4096;  // duration runs cycle over this many prompts
constexpr int kCalibrationWords = 1000;

void raise_fd_limit() {
  // One socket per in-flight request: 1024 descriptors is too few for big sweeps.
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
}

std::string point_label(const PointConfig& c) {
  switch (c.arrival) {
    case ArrivalKind::kClosedLoop:
      return c.ramp_up_s > 0
                 ? fmt::format("concurrency {} (ramp-up {:g} s)", c.concurrency, c.ramp_up_s)
                 : fmt::format("concurrency {}", c.concurrency);
    case ArrivalKind::kPoisson: {
      std::string s = std::isfinite(c.request_rate) ? fmt::format("rate {:g}/s", c.request_rate)
                                                    : std::string("rate inf");
      if (c.concurrency > 0) s += fmt::format(" (max {} in flight)", c.concurrency);
      return s;
    }
    case ArrivalKind::kTrace: return fmt::format("trace timestamps x{:g}", c.trace_speedup);
  }
  return "";
}

void fail(const Status& s) {
  std::fprintf(stderr, "turbine bench: error: %s\n", s.message().c_str());
}

}  // namespace

int run_bench(const BenchOptions& options, std::FILE* out, BenchReport* report_out) {
  if (Status s = options.validate(); !s.is_ok()) {
    fail(s);
    return kExitBadArgs;
  }
  auto endpoint = parse_endpoint(options.url, options.api);
  if (!endpoint) {
    fail(endpoint.status());
    return kExitBadArgs;
  }
  BenchReport report;
  report.options = options;
  report.options.api = endpoint->api;
  report.target_url = "http://" + endpoint->host_header + endpoint->target;

  // Points first: the synthetic workload is sized by the largest one.
  std::vector<PointConfig> points;
  auto base_point = [&]() {
    PointConfig c;
    c.arrival = options.arrival;
    c.concurrency = options.concurrency;
    c.request_rate = options.request_rate;
    c.trace_speedup = options.trace_speedup;
    c.num_requests = options.num_requests;
    c.duration_s = options.duration_s;
    c.ramp_up_s = options.ramp_up_s;
    if (c.num_requests == 0 && c.duration_s == 0 && c.arrival != ArrivalKind::kTrace) {
      c.num_requests = kDefaultNumRequests;
    }
    return c;
  };
  if (!options.sweep_concurrency.empty()) {
    for (int level : options.sweep_concurrency) {
      PointConfig c = base_point();
      c.concurrency = level;
      points.push_back(c);
    }
  } else {
    points.push_back(base_point());
  }
  for (PointConfig& c : points) c.label = point_label(c);

  Workload workload;
  if (!options.dataset.empty()) {
    auto loaded = load_dataset(options);
    if (!loaded) {
      fail(loaded.status());
      return kExitBadArgs;
    }
    workload = std::move(*loaded);
    report.workload = (workload.has_timestamps ? "mooncake " : "prompts ") + options.dataset;
    if (options.arrival == ArrivalKind::kTrace && !workload.has_timestamps) {
      fail(invalid_argument("--request-rate trace: " + options.dataset + " has no timestamps"));
      return kExitBadArgs;
    }
  } else {
    int n = 0;
    for (const PointConfig& c : points) n = std::max(n, c.num_requests);
    if (n == 0) n = kSyntheticPoolForDuration;
    workload = make_synthetic(options, n);
    report.workload =
        fmt::format("synthetic in {}{} out {}", options.input_len,
                    options.prefix_len > 0 ? fmt::format("+{} shared", options.prefix_len) : "",
                    options.output_len);
  }

  raise_fd_limit();
  Runner runner(report.options, *endpoint, workload);
  if (Status s = runner.check_reachable(); !s.is_ok()) {
    fail(s);
    return kExitFailed;
  }
  report.model = options.model;
  if (report.model.empty()) {
    auto model = runner.first_model();
    if (!model) {
      fail(model.status());
      return kExitFailed;
    }
    report.model = *model;
  }
  if (options.calibrate) {
    auto count = runner.count_tokens(synth_text(options.seed, kCalibrationWords));
    if (count && *count > 0) {
      workload.words_per_token =
          static_cast<double>(kCalibrationWords) / static_cast<double>(*count);
      std::fprintf(stderr, "calibrated with /tokenize: %d words = %lld tokens\n", kCalibrationWords,
                   static_cast<long long>(*count));
    } else {
      std::fprintf(stderr, "turbine bench: warning: calibration skipped: %s\n",
                   count ? "zero tokens" : count.status().message().c_str());
    }
  }
  report.words_per_token = workload.words_per_token;

  std::vector<RequestResult> all;
  for (const PointConfig& c : points) {
    if (runner.interrupted()) break;
    PointResult r = runner.run_point(c, report.model);
    PointReport p;
    p.config = c;
    p.summary = summarize(r.results, options.slo, options.warmup_s * 1000.0);
    p.summary.label = c.label;
    p.summary.concurrency = c.arrival == ArrivalKind::kClosedLoop ? c.concurrency : c.concurrency;
    p.summary.request_rate = c.request_rate;
    p.summary.interrupted = r.interrupted;
    p.results = std::move(r.results);
    all.insert(all.end(), p.results.begin(), p.results.end());
    report.interrupted = report.interrupted || r.interrupted;
    report.points.push_back(std::move(p));
  }
  // Overall throughput over several points would mix load levels: points are run one after the
  // other, so the overall summary sums their durations instead of spanning first to last.
  report.overall = summarize(all, options.slo, options.warmup_s * 1000.0);
  if (report.points.size() > 1) {
    double total_s = 0;
    for (const PointReport& p : report.points) total_s += p.summary.duration_s;
    Summary& s = report.overall;
    s.duration_s = total_s;
    if (total_s > 0) {
      s.requests_per_s = static_cast<double>(s.completed) / total_s;
      s.output_tokens_per_s = static_cast<double>(s.output_tokens) / total_s;
      s.total_tokens_per_s = static_cast<double>(s.input_tokens + s.output_tokens) / total_s;
      s.goodput_requests_per_s = static_cast<double>(s.good_requests) / total_s;
      s.goodput_output_tokens_per_s = static_cast<double>(s.good_output_tokens) / total_s;
    }
  }
  report.overall.interrupted = report.interrupted;
  report.overall.label = "overall";

  std::string text = format_text(report);
  std::fputs(text.c_str(), out);
  std::fflush(out);
  int code = report.interrupted ? kExitInterrupted : kExitOk;
  auto write = [&](const std::string& path, const std::string& content) {
    if (path.empty()) return;
    if (Status s = write_text_file(path, content); !s.is_ok()) {
      fail(s);
      code = kExitFailed;
    }
  };
  write(options.output_json, to_json(report));
  write(options.output_csv, to_csv(report));
  write(options.plot_svg, to_svg(report));
  if (code == kExitOk && report.overall.completed == 0 && report.overall.errors > 0) {
    std::fprintf(
        stderr, "turbine bench: error: every request failed (first: %s)\n",
        report.overall.error_kinds.empty() ? "?" : report.overall.error_kinds[0].first.c_str());
    code = kExitFailed;
  }
  if (report_out) *report_out = std::move(report);
  return code;
}

}  // namespace turbine::bench
