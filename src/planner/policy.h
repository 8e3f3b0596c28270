// Scaling policies: from one interval's observation of a model and its pools' state, the number
// of workers each pool should have. One policy object per model, owned by the planner thread.
//
// LoadPolicy (mode load): thresholds on the decode pool's KV-cache usage and on queued prefill
// work (requests waiting for a first token, per worker of the pool that prefills), one worker up
// or down per interval. A pool whose new workers are still starting is held; after a scale-up a
// pool may not shrink for `grace_intervals`; a scale-down happens only when the load spread over
// one worker fewer stays below the midpoint of the two thresholds (consolidation-aware: never to
// a count the load would overfill, which would only bring the worker back next interval).
//
// SlaPolicy (mode sla): predicts the next interval's request rate (input/output lengths and the
// prompt-length distribution are averaged over the last `length_window` intervals), corrects the
// profile's latency model by how observed TTFT/ITL compared with what it expected for the fleet
// that served the interval, and picks the smallest pool sizes whose estimated TTFT and ITL meet the
// targets (capacity.h). Scale-up is immediate (for a target no size reaches: only once the pool
// is past the relaxed target's band, see size_pools); scale-down follows the largest recommendation
// of the last `scale_down_window` intervals, goes only to a size that meets the targets times
// `scale_down_margin` at each interval of that window, and waits while the
// predicted rate climbs to a new high of that window.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "planner/capacity.h"
#include "planner/config.h"
#include "planner/observation.h"
#include "planner/predictor.h"

namespace turbine::planner {

// A pool as the connector sees it.
struct PoolState {
  int replicas = 0;      // workers asked for and not leaving: starting + ready
  int ready = 0;         // serving
  int draining = 0;      // told to stop, finishing their requests
  bool blocked = false;  // scale-up refused (see the connector)
  std::string blocked_reason;
  int64_t start_failures = 0;  // workers that never became ready, since start
};

struct PoolDecision {
  PoolRole role = PoolRole::kDecode;
  int desired = 0;
  std::string reason;
};

// What the SLA policy predicted and estimated (for metrics and the decision log).
struct SlaEstimate {
  double rate = 0, isl = 0, osl = 0;  // predicted
  double ttft_s = 0, itl_s = 0;       // estimated at the desired fleet, corrections applied
  double prefill_correction = 1, decode_correction = 1;
  bool load_steady = true;  // false: the load stepped, the corrections were not updated
  double load_rate = 0;     // planned: predicted rate + the rate that clears the backlog
};

// The SLA mode's sizing for one load: the smallest pools (within min..max) whose estimated TTFT
// and ITL, multiplied by the correction factors, meet the model's targets; max where none does.
// `margin` (<= 1) tightens the targets first (the scale-down hysteresis). A target below what
// any size reaches is relaxed to `relaxed_slack` times the best estimate (the size where more
// workers stop helping); that relaxation is not tightened. Its hysteresis is on the way up
// instead: SlaPolicy grows a pool for a relaxed target only when the current size misses
// `relaxed_slack / scale_down_margin` times the best.
constexpr double kRelaxedSlack = 1.1;
struct PoolSizing {
  std::map<PoolRole, std::pair<int, std::string>> pools;  // workers, why
  double ttft_s = 0, itl_s = 0;  // estimated at those sizes, corrections applied
};
PoolSizing size_pools(const ModelConfig& model, const Load& load, double p_corr = 1,
                      double d_corr = 1, double margin = 1, double relaxed_slack = kRelaxedSlack);

class LoadPolicy {
 public:
  explicit LoadPolicy(LoadModeConfig config) : config_(config) {}
  std::vector<PoolDecision> decide(const ModelConfig& model, const ModelObservation& obs,
                                   const std::map<PoolRole, PoolState>& pools);

 private:
  LoadModeConfig config_;
  std::map<PoolRole, int> grace_left_;
};

class SlaPolicy {
 public:
  SlaPolicy(SlaModeConfig config, const ModelConfig& model);
  // nullopt: nothing to size from yet (no request has completed); the pools are held.
  std::optional<std::vector<PoolDecision>> decide(const ModelConfig& model,
                                                  const ModelObservation& obs,
                                                  const std::map<PoolRole, PoolState>& pools);
  const SlaEstimate& estimate() const { return estimate_; }

 private:
  void correct(const ModelConfig& model, const ModelObservation& obs,
               const std::map<PoolRole, PoolState>& pools, bool fleet_steady);
  struct Lengths {
    double isl_sum, isl_n, osl_sum, osl_n;
    std::vector<std::pair<double, double>> isl_buckets;
  };
  SlaModeConfig config_;
  std::unique_ptr<Predictor> rate_;
  std::deque<Lengths> lengths_;        // the last length_window intervals
  bool steady_ = false;                // the last decision changed no pool
  std::deque<double> observed_rates_;  // arrival rates of the last three intervals, oldest first
  double p_corr_ = 1, d_corr_ = 1;
  std::map<PoolRole, std::deque<int>> recent_;
  std::deque<double> recent_rates_;     // predicted rates of the last scale_down_window intervals
  std::deque<double> recent_observed_;  // arrival rates of the last scale_down_window intervals
  // Sizes with the scale-down margin of the last scale_down_window intervals, per pool.
  std::map<PoolRole, std::deque<int>> recent_tight_;
  SlaEstimate estimate_;
};

// Clamps decisions to each pool's [min, max], then trims them to the per-model GPU budgets and
// the total (largest excess over min first). `decisions[i]` belongs to `models[i]`.
void apply_budgets(const std::vector<ModelConfig>& models, int max_gpus_total,
                   std::vector<std::vector<PoolDecision>>& decisions);

}  // namespace turbine::planner
