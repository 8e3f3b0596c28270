// Benchmark reports: terminal text, JSON, per-request CSV and an SVG chart. Pure; any thread.
#pragma once

#include <string>
#include <vector>

#include "bench/options.h"
#include "bench/runner.h"
#include "bench/stats.h"

namespace turbine::bench {

struct PointReport {
  PointConfig config;
  Summary summary;
  std::vector<RequestResult> results;
};

struct BenchReport {
  BenchOptions options;
  std::string model;
  std::string target_url;  // full URL of the generation endpoint
  std::string workload;    // "synthetic", "mooncake FILE", "prompts FILE"
  double words_per_token = 1.0;
  bool interrupted = false;
  std::vector<PointReport> points;
  Summary overall;  // every request of every point
};

std::string format_text(const BenchReport& report);
// {"config": {...}, <overall summary fields>, "points": [{...summary of the point}]}
std::string to_json(const BenchReport& report);
// Header + one row per request (all points).
std::string to_csv(const BenchReport& report);
// Latency CDFs (TTFT, ITL, E2E), one curve per point; with several points also throughput vs
// latency. Self-contained SVG 1.1 (no scripts, no external fonts).
std::string to_svg(const BenchReport& report);

Status write_text_file(const std::string& path, const std::string& content);

}  // namespace turbine::bench
