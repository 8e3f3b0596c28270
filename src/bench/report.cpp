#include "bench/report.h"

#include <fmt/format.h>
#include <boost/json.hpp>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>

namespace turbine::bench {
namespace json = boost::json;
namespace {

const char* api_name(ApiKind api) {
  return api == ApiKind::kChat ? "chat" : "completions";
}

const char* arrival_name(ArrivalKind a) {
  switch (a) {
    case ArrivalKind::kClosedLoop: return "concurrency";
    case ArrivalKind::kPoisson: return "poisson";
    case ArrivalKind::kTrace: return "trace";
  }
  return "?";
}

json::value number(double v) {
  if (std::isinf(v)) return json::value("inf");
  if (std::isnan(v)) return nullptr;
  return v;
}

json::object dist_json(const Distribution& d) {
  return {{"mean", d.mean}, {"p50", d.p50}, {"p90", d.p90}, {"p95", d.p95},    {"p99", d.p99},
          {"min", d.min},   {"max", d.max}, {"std", d.std}, {"count", d.count}};
}

json::object summary_json(const Summary& s) {
  json::object o;
  o["completed"] = s.completed;
  o["errors"] = s.errors;
  o["cancelled"] = s.cancelled;
  o["warmup_excluded"] = s.warmup_excluded;
  o["duration_s"] = s.duration_s;
  o["input_tokens"] = s.input_tokens;
  o["output_tokens"] = s.output_tokens;
  o["requests_per_s"] = s.requests_per_s;
  o["output_tokens_per_s"] = s.output_tokens_per_s;
  o["total_tokens_per_s"] = s.total_tokens_per_s;
  o["goodput_requests_per_s"] = s.goodput_requests_per_s;
  o["good_requests"] = s.good_requests;
  o["goodput_output_tokens_per_s"] = s.goodput_output_tokens_per_s;
  o["ttft_ms"] = dist_json(s.ttft_ms);
  o["itl_ms"] = dist_json(s.itl_ms);
  o["tpot_ms"] = dist_json(s.tpot_ms);
  o["e2e_ms"] = dist_json(s.e2e_ms);
  json::array kinds;
  for (const auto& [msg, n] : s.error_kinds)
    kinds.push_back(json::object{{"error", msg}, {"count", n}});
  o["error_kinds"] = std::move(kinds);
  return o;
}

std::string dist_row(const char* name, const Distribution& d) {
  if (d.count == 0) return fmt::format("  {:<10} {:>10}\n", name, "-");
  return fmt::format("  {:<10} {:>10.2f} {:>10.2f} {:>10.2f} {:>10.2f} {:>10.2f}\n", name, d.mean,
                     d.p50, d.p90, d.p99, d.max);
}

std::string csv_escape(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c == '\n' ? ' ' : c;
  }
  return out + "\"";
}

}  // namespace

std::string format_text(const BenchReport& r) {
  std::string out;
  out +=
      fmt::format("turbine bench: {} model {} ({} workload)\n", r.target_url, r.model, r.workload);
  for (const PointReport& p : r.points) {
    const Summary& s = p.summary;
    out += fmt::format("\n== {}{}\n", p.config.label, s.interrupted ? " (interrupted)" : "");
    out += fmt::format("  requests   {} ok, {} errors, {} cancelled in {:.2f} s\n", s.completed,
                       s.errors, s.cancelled, s.duration_s);
    if (r.options.warmup_s > 0) {
      out += fmt::format("  warmup     {} requests started in the first {:g} s left out\n",
                         s.warmup_excluded, r.options.warmup_s);
    }
    out += fmt::format("  throughput {:.2f} req/s, {:.1f} output tok/s, {:.1f} total tok/s\n",
                       s.requests_per_s, s.output_tokens_per_s, s.total_tokens_per_s);
    out += fmt::format("  tokens     {} in, {} out\n", s.input_tokens, s.output_tokens);
    if (!r.options.slo.empty()) {
      out += fmt::format(
          "  goodput    {:.2f} req/s, {:.1f} output tok/s ({} of {} requests meet the SLO)\n",
          s.goodput_requests_per_s, s.goodput_output_tokens_per_s, s.good_requests,
          s.completed + s.errors);
    }
    out += fmt::format("  {:<10} {:>10} {:>10} {:>10} {:>10} {:>10}\n", "ms", "mean", "p50", "p90",
                       "p99", "max");
    out += dist_row("TTFT", s.ttft_ms);
    out += dist_row("ITL", s.itl_ms);
    out += dist_row("TPOT", s.tpot_ms);
    out += dist_row("E2E", s.e2e_ms);
    for (size_t i = 0; i < s.error_kinds.size() && i < 5; ++i) {
      out += fmt::format("  error x{}: {}\n", s.error_kinds[i].second, s.error_kinds[i].first);
    }
  }
  return out;
}

std::string to_json(const BenchReport& r) {
  const BenchOptions& o = r.options;
  json::object config;
  config["url"] = r.target_url;
  config["model"] = r.model;
  config["api"] = api_name(o.api);
  config["workload"] = r.workload;
  config["arrival"] = arrival_name(o.arrival);
  config["concurrency"] = o.concurrency;
  config["request_rate"] = number(o.request_rate);
  config["trace_speedup"] = o.trace_speedup;
  config["trace_block_tokens"] = o.trace_block_tokens;
  config["num_requests"] = o.num_requests;
  config["duration_s"] = o.duration_s;
  config["ramp_up_s"] = o.ramp_up_s;
  config["warmup_s"] = o.warmup_s;
  json::array sweep;
  for (int c : o.sweep_concurrency) sweep.push_back(c);
  config["sweep_concurrency"] = std::move(sweep);
  config["input_len"] = o.input_len;
  config["input_len_std"] = o.input_len_std;
  config["output_len"] = o.output_len;
  config["output_len_std"] = o.output_len_std;
  config["prefix_len"] = o.prefix_len;
  config["num_prefix_groups"] = o.num_prefix_groups;
  config["ignore_eos"] = o.ignore_eos;
  config["seed"] = o.seed;
  config["words_per_token"] = r.words_per_token;
  json::object slo;
  if (o.slo.ttft_ms) slo["ttft_ms"] = *o.slo.ttft_ms;
  if (o.slo.itl_ms) slo["itl_ms"] = *o.slo.itl_ms;
  if (o.slo.e2e_ms) slo["e2e_ms"] = *o.slo.e2e_ms;
  config["slo"] = std::move(slo);

  json::object root = summary_json(r.overall);
  root["config"] = std::move(config);
  root["interrupted"] = r.interrupted;
  json::array points;
  for (const PointReport& p : r.points) {
    json::object po = summary_json(p.summary);
    po["label"] = p.config.label;
    po["concurrency"] = p.config.concurrency;
    po["request_rate"] = number(p.config.request_rate);
    po["interrupted"] = p.summary.interrupted;
    points.push_back(std::move(po));
  }
  root["points"] = std::move(points);
  return json::serialize(root) + "\n";
}

std::string to_csv(const BenchReport& r) {
  std::string out =
      "point,index,start_ms,ttft_ms,e2e_ms,itl_mean_ms,itl_max_ms,content_chunks,input_tokens,"
      "output_tokens,ok,cancelled,http_status,error\n";
  for (size_t pi = 0; pi < r.points.size(); ++pi) {
    for (const RequestResult& q : r.points[pi].results) {
      double itl_max = 0;
      for (double v : q.itl_ms) itl_max = std::max(itl_max, v);
      out += fmt::format("{},{},{:.3f},{:.3f},{:.3f},{:.3f},{:.3f},{},{},{},{},{},{},{}\n", pi,
                         q.index, q.start_ms, q.ttft_ms(), q.e2e_ms(), q.mean_itl_ms(), itl_max,
                         q.content_chunks, q.input_tokens, q.output_tokens, q.ok ? 1 : 0,
                         q.cancelled ? 1 : 0, q.http_status, csv_escape(q.error));
    }
  }
  return out;
}

Status write_text_file(const std::string& path, const std::string& content) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) {
    return invalid_argument("cannot write " + path + ": " + std::strerror(errno), "output");
  }
  f << content;
  f.close();
  if (!f) return internal_error("cannot write " + path + ": " + std::strerror(errno));
  return Status::ok();
}

}  // namespace turbine::bench
