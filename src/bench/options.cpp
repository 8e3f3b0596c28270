#include "bench/options.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>

namespace turbine::bench {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

Result<double> parse_double(std::string_view s, std::string_view what) {
  s = trim(s);
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || !std::isfinite(v)) {
    return invalid_argument(std::string(what) + ": '" + std::string(s) + "' is not a number",
                            std::string(what));
  }
  return v;
}

}  // namespace

Result<Slo> parse_slo(std::string_view spec) {
  Slo slo;
  std::string_view rest = spec;
  while (!rest.empty()) {
    size_t comma = rest.find(',');
    std::string_view item = trim(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    if (item.empty()) continue;
    size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      return invalid_argument(
          "--slo: expected KEY=MS (ttft, itl, e2e), got '" + std::string(item) + "'", "slo");
    }
    std::string_view key = trim(item.substr(0, eq));
    TURBINE_ASSIGN_OR_RETURN(double ms,
                             parse_double(item.substr(eq + 1), "--slo " + std::string(key)));
    if (ms <= 0) return invalid_argument("--slo " + std::string(key) + ": must be > 0 ms", "slo");
    if (key == "ttft") {
      slo.ttft_ms = ms;
    } else if (key == "itl" || key == "tpot") {
      slo.itl_ms = ms;
    } else if (key == "e2e" || key == "e2el") {
      slo.e2e_ms = ms;
    } else {
      return invalid_argument("--slo: unknown key '" + std::string(key) + "' (ttft, itl, e2e)",
                              "slo");
    }
  }
  if (slo.empty())
    return invalid_argument("--slo: give at least one of ttft=MS, itl=MS, e2e=MS", "slo");
  return slo;
}

Result<std::vector<int>> parse_int_list(std::string_view spec, std::string_view what) {
  std::vector<int> out;
  std::string_view rest = spec;
  while (!rest.empty()) {
    size_t comma = rest.find(',');
    std::string_view item = trim(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    if (item.empty()) continue;
    int v = 0;
    auto [p, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (ec != std::errc() || p != item.data() + item.size() || v <= 0) {
      return invalid_argument(
          std::string(what) + ": '" + std::string(item) + "' is not a positive integer",
          std::string(what));
    }
    out.push_back(v);
  }
  if (out.empty()) return invalid_argument(std::string(what) + ": empty list", std::string(what));
  return out;
}

Status parse_request_rate(std::string_view spec, BenchOptions& options) {
  spec = trim(spec);
  if (spec == "trace") {
    options.arrival = ArrivalKind::kTrace;
    return Status::ok();
  }
  if (spec == "inf" || spec == "infinity") {
    options.arrival = ArrivalKind::kPoisson;
    options.request_rate = std::numeric_limits<double>::infinity();
    return Status::ok();
  }
  TURBINE_ASSIGN_OR_RETURN(double rate, parse_double(spec, "--request-rate"));
  if (rate <= 0)
    return invalid_argument("--request-rate: must be > 0, 'inf' or 'trace'", "request-rate");
  options.arrival = ArrivalKind::kPoisson;
  options.request_rate = rate;
  return Status::ok();
}

double ramp_start_s(int worker, int workers, double ramp_up_s) {
  if (!(ramp_up_s > 0) || workers <= 1 || worker <= 0) return 0;
  return ramp_up_s * static_cast<double>(std::min(worker, workers)) / workers;
}

Status BenchOptions::validate() const {
  if (url.empty()) return invalid_argument("--url is required", "url");
  if (concurrency < 0) return invalid_argument("--concurrency must be >= 0", "concurrency");
  if (arrival == ArrivalKind::kClosedLoop && concurrency < 1 && sweep_concurrency.empty()) {
    return invalid_argument("--concurrency must be >= 1 without --request-rate", "concurrency");
  }
  if (arrival == ArrivalKind::kPoisson && !(request_rate > 0)) {
    return invalid_argument("--request-rate must be > 0", "request-rate");
  }
  if (arrival == ArrivalKind::kTrace) {
    if (dataset.empty()) {
      return invalid_argument("--request-rate trace needs a Mooncake trace (--dataset FILE)",
                              "request-rate");
    }
    if (dataset_format == DatasetFormat::kPrompts) {
      return invalid_argument("--request-rate trace needs a Mooncake trace, not a prompt file",
                              "request-rate");
    }
    if (!(trace_speedup > 0) || !std::isfinite(trace_speedup)) {
      return invalid_argument("--trace-speedup must be > 0", "trace-speedup");
    }
  }
  if (trace_block_tokens < 1 || trace_block_tokens > kMooncakeBlockTokens) {
    return invalid_argument(
        "--trace-block-tokens must be in 1.." + std::to_string(kMooncakeBlockTokens),
        "trace-block-tokens");
  }
  if (!sweep_concurrency.empty() && arrival != ArrivalKind::kClosedLoop) {
    return invalid_argument("--sweep-concurrency cannot be combined with --request-rate",
                            "sweep-concurrency");
  }
  if (ramp_up_s < 0 || !std::isfinite(ramp_up_s)) {
    return invalid_argument("--ramp-up-s must be >= 0 seconds", "ramp-up-s");
  }
  if (ramp_up_s > 0 && arrival != ArrivalKind::kClosedLoop) {
    return invalid_argument("--ramp-up-s applies to the closed loop, not to --request-rate",
                            "ramp-up-s");
  }
  if (warmup_s < 0 || !std::isfinite(warmup_s)) {
    return invalid_argument("--warmup-s must be >= 0 seconds", "warmup-s");
  }
  if (warmup_s > 0 && duration_s > 0 && warmup_s >= duration_s) {
    return invalid_argument(
        "--warmup-s must be shorter than --duration (it would leave out every "
        "request)",
        "warmup-s");
  }
  if (num_requests < 0) return invalid_argument("--num-requests must be >= 0", "num-requests");
  if (duration_s < 0 || !std::isfinite(duration_s)) {
    return invalid_argument("--duration must be >= 0 seconds", "duration");
  }
  if (input_len < 1) return invalid_argument("--input-len must be >= 1", "input-len");
  if (output_len < 1) return invalid_argument("--output-len must be >= 1", "output-len");
  if (input_len_std < 0 || output_len_std < 0) {
    return invalid_argument("--input-len-std/--output-len-std must be >= 0", "input-len-std");
  }
  if (prefix_len < 0) return invalid_argument("--prefix-len must be >= 0", "prefix-len");
  if (num_prefix_groups < 1) {
    return invalid_argument("--num-prefix-groups must be >= 1", "num-prefix-groups");
  }
  if (!(timeout_s > 0)) return invalid_argument("--timeout must be > 0 seconds", "timeout");
  return Status::ok();
}

}  // namespace turbine::bench
