#include "planner/observation.h"

#include <algorithm>
#include <cmath>

#include "metrics/metrics.h"

namespace turbine::planner {
namespace {

double delta(const MetricSet& prev, const MetricSet& cur, const std::string& name,
             const Labels& match) {
  const double now = cur.sum(name, match).value_or(0.0);
  const double before = prev.sum(name, match).value_or(0.0);
  return now >= before ? now - before : now;  // reset: counted from zero
}

}  // namespace

ModelObservation observe_model(const MetricSet& prev, const MetricSet& cur, double wall_dt_s,
                               double time_scale, const std::string& model) {
  const Labels m{{"model", model}};
  ModelObservation o;
  o.interval_s = wall_dt_s * time_scale;
  const double completed = delta(prev, cur, metrics::kRequestsTotal, m);
  const double inflight_now = cur.sum(metrics::kInflightRequests, m).value_or(0.0);
  const double inflight_before = prev.sum(metrics::kInflightRequests, m).value_or(0.0);
  o.completed = static_cast<int64_t>(std::llround(completed));
  o.arrivals = std::max<int64_t>(
      0, o.completed + static_cast<int64_t>(std::llround(inflight_now - inflight_before)));
  o.request_rate = o.interval_s > 0 ? static_cast<double>(o.arrivals) / o.interval_s : 0.0;

  auto mean = [&](const char* family, double scale, int64_t* samples) -> std::optional<double> {
    const std::string f(family);
    const double n = delta(prev, cur, f + "_count", m);
    const double sum = delta(prev, cur, f + "_sum", m);
    if (samples) *samples = static_cast<int64_t>(std::llround(n));
    if (n < 0.5) return std::nullopt;
    return sum / n * scale;
  };
  o.mean_isl = mean(metrics::kInputSequenceTokens, 1.0, &o.isl_count);
  o.mean_osl = mean(metrics::kOutputSequenceTokens, 1.0, &o.osl_count);
  o.isl_sum = o.mean_isl.value_or(0) * static_cast<double>(o.isl_count);
  o.osl_sum = o.mean_osl.value_or(0) * static_cast<double>(o.osl_count);
  // Per-bucket counts of the interval from the cumulative histograms of both scrapes.
  const auto now_b = cur.buckets(metrics::kInputSequenceTokens, m);
  const auto before_b = prev.buckets(metrics::kInputSequenceTokens, m);
  double below_now = 0, below_before = 0;
  for (const auto& [le, cum] : now_b) {
    double cum_before = 0;
    for (const auto& [ble, bcum] : before_b) {
      if (ble == le) cum_before = bcum;
    }
    double n = (cum - below_now) - (cum_before - below_before);
    if (n < 0) n = cum - below_now;  // reset
    below_now = cum, below_before = cum_before;
    if (n > 0) o.isl_buckets.emplace_back(le, n);
  }
  o.mean_ttft_s = mean(metrics::kTimeToFirstToken, time_scale, &o.ttft_samples);
  o.mean_itl_s = mean(metrics::kInterTokenLatency, time_scale, &o.itl_samples);

  o.inflight = inflight_now;
  o.queued = cur.sum(metrics::kQueuedRequests, m).value_or(0.0);
  const std::optional<double> used = cur.sum(metrics::kEngineKvUsedBlocks, m);
  const std::optional<double> total = cur.sum(metrics::kEngineKvTotalBlocks, m);
  if (used && total && *total > 0) o.kv_usage = *used / *total;
  o.engine_waiting = cur.sum(metrics::kEngineWaiting, m).value_or(0.0);
  o.prefill_queue = cur.sum(metrics::kDisaggPrefillQueueSize, m).value_or(0.0);
  return o;
}

}  // namespace turbine::planner
