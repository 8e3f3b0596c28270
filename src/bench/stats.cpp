#include "bench/stats.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

namespace turbine::bench {

double RequestResult::mean_itl_ms() const {
  if (itl_ms.empty()) return 0;
  return std::accumulate(itl_ms.begin(), itl_ms.end(), 0.0) / static_cast<double>(itl_ms.size());
}

double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  double rank = p / 100.0 * static_cast<double>(sorted.size() - 1);
  size_t lo = static_cast<size_t>(std::floor(rank));
  size_t hi = std::min(lo + 1, sorted.size() - 1);
  double frac = rank - static_cast<double>(lo);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * frac;
}

Distribution distribution(std::vector<double> v) {
  Distribution d;
  d.count = v.size();
  if (v.empty()) return d;
  std::sort(v.begin(), v.end());
  double sum = std::accumulate(v.begin(), v.end(), 0.0);
  d.mean = sum / static_cast<double>(v.size());
  double sq = 0;
  for (double x : v) sq += (x - d.mean) * (x - d.mean);
  d.std = std::sqrt(sq / static_cast<double>(v.size()));
  d.min = v.front();
  d.max = v.back();
  d.p50 = percentile(v, 50);
  d.p90 = percentile(v, 90);
  d.p95 = percentile(v, 95);
  d.p99 = percentile(v, 99);
  return d;
}

bool meets_slo(const RequestResult& r, const Slo& slo) {
  if (!r.ok) return false;
  if (slo.ttft_ms && !(r.ttft_ms() >= 0 && r.ttft_ms() <= *slo.ttft_ms)) return false;
  if (slo.itl_ms && r.mean_itl_ms() > *slo.itl_ms) return false;
  if (slo.e2e_ms && r.e2e_ms() > *slo.e2e_ms) return false;
  return true;
}

Summary summarize(const std::vector<RequestResult>& results, const Slo& slo, double warmup_ms) {
  Summary s;
  std::vector<double> ttft, itl, e2e, tpot;
  double first = 0, last = 0;
  bool any = false;
  std::map<std::string, size_t> kinds;
  for (const RequestResult& r : results) {
    if (warmup_ms > 0 && r.start_ms < warmup_ms) {
      ++s.warmup_excluded;
      continue;
    }
    if (r.cancelled) {
      ++s.cancelled;
      continue;
    }
    if (!any || r.start_ms < first) first = r.start_ms;
    if (!any || r.end_ms > last) last = r.end_ms;
    any = true;
    if (!r.ok) {
      ++s.errors;
      ++kinds[r.error.substr(0, 200)];
      continue;
    }
    ++s.completed;
    s.input_tokens += r.input_tokens;
    s.output_tokens += r.output_tokens;
    if (r.ttft_ms() >= 0) ttft.push_back(r.ttft_ms());
    itl.insert(itl.end(), r.itl_ms.begin(), r.itl_ms.end());
    e2e.push_back(r.e2e_ms());
    if (r.output_tokens > 1 && r.ttft_ms() >= 0) {
      tpot.push_back((r.e2e_ms() - r.ttft_ms()) / static_cast<double>(r.output_tokens - 1));
    }
    if (!slo.empty() && meets_slo(r, slo)) {
      ++s.good_requests;
      s.good_output_tokens += r.output_tokens;
    }
  }
  s.duration_s = any ? (last - first) / 1000.0 : 0;
  if (s.duration_s > 0) {
    s.requests_per_s = static_cast<double>(s.completed) / s.duration_s;
    s.output_tokens_per_s = static_cast<double>(s.output_tokens) / s.duration_s;
    s.total_tokens_per_s = static_cast<double>(s.input_tokens + s.output_tokens) / s.duration_s;
    s.goodput_requests_per_s = static_cast<double>(s.good_requests) / s.duration_s;
    s.goodput_output_tokens_per_s = static_cast<double>(s.good_output_tokens) / s.duration_s;
  }
  s.ttft_ms = distribution(std::move(ttft));
  s.itl_ms = distribution(std::move(itl));
  s.e2e_ms = distribution(std::move(e2e));
  s.tpot_ms = distribution(std::move(tpot));
  s.error_kinds.assign(kinds.begin(), kinds.end());
  std::stable_sort(s.error_kinds.begin(), s.error_kinds.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  return s;
}

}  // namespace turbine::bench
