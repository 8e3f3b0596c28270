// Per-request measurements and their summary (mean/percentiles, throughput, goodput).
// Pure; safe on any thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bench/options.h"

namespace turbine::bench {

// One request as the client saw it. Times are steady_clock milliseconds relative to the start of
// the sweep point, taken when the bytes arrived (the read completion), not when they were parsed.
struct RequestResult {
  int index = 0;               // position in the workload
  double start_ms = 0;         // just before connecting (or taking a kept-alive connection)
  double first_token_ms = -1;  // first SSE chunk with content; -1: none
  double end_ms = 0;           // response complete (or failed)
  std::vector<double> itl_ms;  // gaps between consecutive content chunks
  int64_t input_tokens = 0;    // usage.prompt_tokens, else the workload's intent
  int64_t output_tokens = 0;   // usage.completion_tokens, else the number of content chunks
  int64_t content_chunks = 0;
  bool usage_reported = false;
  bool ok = false;
  bool cancelled = false;  // stopped by SIGINT / end of run: not an error, not counted
  int http_status = 0;
  std::string error;

  double ttft_ms() const { return first_token_ms < 0 ? -1 : first_token_ms - start_ms; }
  double e2e_ms() const { return end_ms - start_ms; }
  double mean_itl_ms() const;  // 0 when fewer than two chunks
};

struct Distribution {
  size_t count = 0;
  double mean = 0, min = 0, max = 0, std = 0;
  double p50 = 0, p90 = 0, p95 = 0, p99 = 0;
};

// Percentile by linear interpolation between closest ranks (numpy's default); `sorted` ascending.
double percentile(const std::vector<double>& sorted, double p);
Distribution distribution(std::vector<double> values);

struct Summary {
  std::string label;        // "concurrency 8", "rate 4.0/s", ...
  int concurrency = 0;      // 0: open loop without cap
  double request_rate = 0;  // 0: closed loop
  size_t completed = 0;     // successful requests
  size_t errors = 0;
  size_t cancelled = 0;
  size_t warmup_excluded = 0;  // started within the warmup: not in any other field
  bool interrupted = false;
  double duration_s = 0;  // first start to last end
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
  double requests_per_s = 0;
  double output_tokens_per_s = 0;
  double total_tokens_per_s = 0;
  double goodput_requests_per_s = 0;  // 0 when no SLO was given
  size_t good_requests = 0;
  // Output tokens of the requests that meet the SLO, per second (0 when no SLO was given).
  int64_t good_output_tokens = 0;
  double goodput_output_tokens_per_s = 0;
  Distribution ttft_ms, itl_ms, e2e_ms, tpot_ms;
  std::vector<std::pair<std::string, size_t>> error_kinds;  // most frequent first
};

bool meets_slo(const RequestResult& r, const Slo& slo);
// Requests started before `warmup_ms` (RequestResult::start_ms) are only counted in
// warmup_excluded; the duration runs from the first start after it to the last end.
Summary summarize(const std::vector<RequestResult>& results, const Slo& slo, double warmup_ms = 0);

}  // namespace turbine::bench
