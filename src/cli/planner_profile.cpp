// `turbine planner profile`: the planner's per-pool throughput profile (planner/profile.h) from
// a `turbine bench` sweep against a deployment with ONE worker (a frontend + one worker, or
// `turbine run`; a mock worker gives the mock's timing model, for simulation).
//
//  - prefill: for each input length, a few lone requests with max_tokens 1; the median TTFT is
//    the worker's time for that prompt;
//  - decode: for each context length and concurrency, that many requests at once with long
//    outputs; the median inter-token gap is the decode step at that concurrency (the median
//    leaves out the steps that carried a new request's prompt).
// Every point uses prompts of its own seed, so no point hits another's prefix cache.
// --time-scale S records simulated time (latencies x S) for a mock run with --speedup S.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <random>

#include <spdlog/spdlog.h>
#include <boost/json.hpp>

#include "bench/bench.h"
#include "bench/options.h"
#include "cli/planner_command.h"
#include "planner/policy.h"
#include "planner/profile.h"

namespace turbine::cli {
namespace {

struct ProfileArgs {
  std::string url = "http://127.0.0.1:8000";
  std::string model;
  std::string endpoint = "completions";
  std::string output;
  std::string isl = "256,1024,4096,8192,16384,32768";
  std::string contexts = "1024,4096,16384";
  std::string concurrency = "1,4,16,32,64";
  int prefill_requests = 3;
  int decode_output_len = 256;
  double time_scale = 1;
};

Result<bench::Summary> point(const ProfileArgs& a, uint64_t seed, int input_len, int output_len,
                             int concurrency, int n) {
  bench::BenchOptions o;
  o.url = a.url;
  o.model = a.model;
  o.api = a.endpoint == "chat" ? bench::ApiKind::kChat : bench::ApiKind::kCompletions;
  o.concurrency = concurrency;
  o.num_requests = n;
  o.input_len = input_len;
  o.output_len = output_len;
  o.seed = seed;
  o.calibrate = true;
  o.progress = false;
  bench::BenchReport report;
  std::FILE* devnull = std::fopen("/dev/null", "w");
  const int rc = bench::run_bench(o, devnull ? devnull : stderr, &report);
  if (devnull) std::fclose(devnull);
  if (rc != bench::kExitOk || report.points.empty())
    return Status(StatusCode::kUnavailable,
                  "bench point failed (input " + std::to_string(input_len) + ", concurrency " +
                      std::to_string(concurrency) + ", exit " + std::to_string(rc) + ")");
  const bench::Summary& s = report.points.front().summary;
  if (s.errors > 0 || s.completed == 0)
    return Status(StatusCode::kUnavailable, std::to_string(s.errors) +
                                                " of the requests failed (input " +
                                                std::to_string(input_len) + ", concurrency " +
                                                std::to_string(concurrency) + ")");
  return s;
}

int run_profile(const ProfileArgs& a) {
  auto fail = [](const Status& s) {
    std::fprintf(stderr, "turbine planner profile: %s\n", s.message().c_str());
    return 1;
  };
  auto isls = bench::parse_int_list(a.isl, "--isl");
  if (!isls) return fail(isls.status());
  auto contexts = bench::parse_int_list(a.contexts, "--contexts");
  if (!contexts) return fail(contexts.status());
  auto levels = bench::parse_int_list(a.concurrency, "--concurrency");
  if (!levels) return fail(levels.status());
  std::sort(isls->begin(), isls->end());
  std::sort(contexts->begin(), contexts->end());
  std::sort(levels->begin(), levels->end());

  planner::Profile p;
  p.time_scale = a.time_scale;
  p.source = "turbine planner profile --url " + a.url;
  uint64_t seed = std::random_device{}();
  for (int isl : *isls) {
    auto s = point(a, seed++ * 1000003, isl, 1, 1, a.prefill_requests);
    if (!s) return fail(s.status());
    const double ttft = s->ttft_ms.p50 * a.time_scale;
    spdlog::info("profile: prefill isl {}: ttft {:.1f} ms", isl, ttft);
    p.prefill.push_back({static_cast<double>(isl), ttft});
  }
  for (int context : *contexts) {
    planner::DecodeCurve curve;
    curve.context = context;
    for (int k : *levels) {
      auto s = point(a, seed++ * 1000003, context, a.decode_output_len, k, std::max(k, 2));
      if (!s) return fail(s.status());
      const double itl = s->itl_ms.p50 * a.time_scale;
      spdlog::info("profile: decode context {}, {} sequences: itl {:.2f} ms", context, k, itl);
      if (!(itl > 0)) return fail(invalid_argument("no inter-token gaps measured"));
      curve.points.push_back({static_cast<double>(k), itl});
    }
    p.decode.push_back(std::move(curve));
  }
  if (Status st = p.validate(); !st.is_ok()) return fail(st);
  std::FILE* f = std::fopen(a.output.c_str(), "w");
  if (!f) return fail(invalid_argument("cannot write " + a.output));
  const std::string text = planner::to_json(p);
  std::fwrite(text.data(), 1, text.size(), f);
  std::fclose(f);
  std::printf("%s", text.c_str());
  return 0;
}

struct SizeArgs {
  std::string profile, dataset;
  double rate = 0, isl = 0, osl = 0, ttft_ms = 2000, itl_ms = 50;
  bool disaggregated = false;
  int max_workers = 64;
};

// The SLA mode's answer for one steady load (planner/policy.h size_pools), e.g. to size a fixed
// fleet for a peak: {"decode": N, "prefill": M, "ttft_s": ..., "itl_s": ...}.
int run_size(const SizeArgs& a) {
  auto profile = planner::load_profile(a.profile);
  if (!profile) {
    std::fprintf(stderr, "turbine planner size: %s\n", profile.status().message().c_str());
    return 2;
  }
  planner::ModelConfig m;
  m.name = "model";
  m.profile = std::move(*profile);
  m.ttft_ms = a.ttft_ms;
  m.itl_ms = a.itl_ms;
  planner::PoolConfig d;
  d.max_replicas = a.max_workers;
  m.pools.push_back(d);
  if (a.disaggregated) {
    planner::PoolConfig p;
    p.role = planner::PoolRole::kPrefill;
    p.min_replicas = 0;
    p.max_replicas = a.max_workers;
    m.pools.push_back(p);
  }
  planner::Load load{a.rate, a.isl, a.osl};
  if (!a.dataset.empty()) {
    // Lengths from a Mooncake trace: E[S] and E[S^2] over its prompts, as the planner sees them.
    std::ifstream in(a.dataset);
    if (!in) {
      std::fprintf(stderr, "turbine planner size: cannot read %s\n", a.dataset.c_str());
      return 2;
    }
    double n = 0, isl = 0, osl = 0, s1 = 0, s2 = 0;
    std::string line;
    while (std::getline(in, line)) {
      boost::system::error_code ec;
      boost::json::value v = boost::json::parse(line, ec);
      if (ec || !v.is_object()) continue;
      const auto* il = v.as_object().if_contains("input_length");
      const auto* ol = v.as_object().if_contains("output_length");
      if (!il || !ol || !il->is_number() || !ol->is_number()) continue;
      const double i = il->to_number<double>(), o = ol->to_number<double>();
      const double t = m.profile.prefill_seconds(i);
      n += 1, isl += i, osl += o, s1 += t, s2 += t * t;
    }
    if (n == 0) {
      std::fprintf(stderr, "turbine planner size: no Mooncake records in %s\n", a.dataset.c_str());
      return 2;
    }
    load = {a.rate, isl / n, osl / n, s1 / n, s2 / n};
  } else if (!(a.isl > 0) || !(a.osl > 0)) {
    std::fprintf(stderr, "turbine planner size: give --isl and --osl, or --dataset\n");
    return 2;
  }
  const planner::PoolSizing s = planner::size_pools(m, load);
  std::printf("{");
  for (const auto& [role, n] : s.pools)
    std::printf("\"%s\": %d, ", planner::pool_role_name(role), n.first);
  std::printf("\"ttft_s\": %.4f, \"itl_s\": %.5f}\n", s.ttft_s, s.itl_s);
  return 0;
}

}  // namespace

void add_planner_size_command(CLI::App& planner) {
  auto args = std::make_shared<SizeArgs>();
  SizeArgs& a = *args;
  auto* cmd = planner.add_subcommand(
      "size", "Workers the SLA mode would run for a steady load (capacity planning)");
  cmd->add_option("--profile", a.profile, "Profile JSON (turbine planner profile)")->required();
  cmd->add_option("--rate", a.rate, "Requests/s")->required()->check(CLI::NonNegativeNumber);
  cmd->add_option("--isl", a.isl, "Mean prompt tokens")->check(CLI::PositiveNumber);
  cmd->add_option("--osl", a.osl, "Mean output tokens")->check(CLI::PositiveNumber);
  cmd->add_option("--dataset", a.dataset,
                  "Mooncake JSONL: prompt and output lengths from it (instead of --isl/--osl)");
  cmd->add_option("--ttft", a.ttft_ms, "TTFT target, ms")->capture_default_str();
  cmd->add_option("--itl", a.itl_ms, "ITL target, ms")->capture_default_str();
  cmd->add_flag("--disaggregated", a.disaggregated, "Size a prefill pool and a decode pool");
  cmd->add_option("--max-workers", a.max_workers, "Largest pool considered")->capture_default_str();
  cmd->callback([args] { std::exit(run_size(*args)); });
}

void add_planner_profile_command(CLI::App& planner) {
  auto args = std::make_shared<ProfileArgs>();
  ProfileArgs& a = *args;
  auto* cmd = planner.add_subcommand(
      "profile", "Measure one worker's prefill and decode curves for the SLA planner");
  cmd->add_option("--url", a.url, "Server with exactly one worker (http://HOST:PORT)")
      ->capture_default_str();
  cmd->add_option("--model", a.model, "Model name (default: the server's first)");
  cmd->add_option("--endpoint", a.endpoint, "completions or chat")
      ->check(CLI::IsMember({"completions", "chat"}))
      ->capture_default_str();
  cmd->add_option("--output,-o", a.output, "Profile JSON to write")->required();
  cmd->add_option("--isl", a.isl, "Prompt lengths of the prefill points")->capture_default_str();
  cmd->add_option("--contexts", a.contexts, "Context lengths of the decode curves")
      ->capture_default_str();
  cmd->add_option("--concurrency", a.concurrency, "Sequences decoding together, per curve")
      ->capture_default_str();
  cmd->add_option("--prefill-requests", a.prefill_requests, "Lone requests per prefill point")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--decode-output-len", a.decode_output_len, "Output tokens of decode requests")
      ->check(CLI::Range(16, 1 << 20))
      ->capture_default_str();
  cmd->add_option("--time-scale", a.time_scale,
                  "Simulated seconds per wall second (the mock worker's --speedup)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->callback([args] { std::exit(run_profile(*args)); });
}

}  // namespace turbine::cli
