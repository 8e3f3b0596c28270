// What the planner saw of one model during one interval, from two scrapes of the frontend's
// /metrics: arrivals and completions, mean input/output lengths and latencies of the interval
// (counter and histogram deltas), and the load gauges at its end (KV usage of the model's
// workers, requests waiting for a first token, the disaggregated prefill queue).
//
// All times and rates are in planner time (wall x time_scale). Pure; any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "planner/prometheus_text.h"

namespace turbine::planner {

struct ModelObservation {
  double interval_s = 0;
  int64_t arrivals = 0;                      // completed + change of in-flight
  int64_t completed = 0;                     // finished requests (any status)
  double request_rate = 0;                   // arrivals / interval
  std::optional<double> mean_isl, mean_osl;  // of the requests completed in the interval
  double isl_sum = 0, osl_sum = 0;           // their totals (for windowed means)
  int64_t isl_count = 0, osl_count = 0;
  // Their prompt lengths: (bucket upper bound, requests in the bucket) of the input-length
  // histogram's increase over the interval, ascending; +Inf last.
  std::vector<std::pair<double, double>> isl_buckets;
  std::optional<double> mean_ttft_s, mean_itl_s;
  int64_t ttft_samples = 0, itl_samples = 0;
  double inflight = 0;             // requests in the frontend at the end
  double queued = 0;               // of those, waiting for their first token
  std::optional<double> kv_usage;  // used / total KV blocks over the model's (decode) workers
  double engine_waiting = 0;       // sequences waiting for a slot on the workers
  double prefill_queue = 0;        // disaggregated: remote prefills waiting for a prefill slot
};

// `wall_dt_s`: wall seconds between the scrapes. Counters that went down (a restarted frontend)
// count from zero.
ModelObservation observe_model(const MetricSet& prev, const MetricSet& cur, double wall_dt_s,
                               double time_scale, const std::string& model);

}  // namespace turbine::planner
