#include "planner/policy.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <tuple>

#include <fmt/format.h>

#include "planner/capacity.h"

namespace turbine::planner {
namespace {

PoolState state_of(const std::map<PoolRole, PoolState>& pools, PoolRole role) {
  auto it = pools.find(role);
  return it == pools.end() ? PoolState{} : it->second;
}

}  // namespace

std::vector<PoolDecision> LoadPolicy::decide(const ModelConfig& model, const ModelObservation& obs,
                                             const std::map<PoolRole, PoolState>& pools) {
  const bool has_prefill_pool = model.pool(PoolRole::kPrefill) != nullptr;
  std::vector<PoolDecision> out;
  for (const PoolConfig& pc : model.pools) {
    const PoolState st = state_of(pools, pc.role);
    int& grace = grace_left_[pc.role];
    PoolDecision d{pc.role, st.replicas, "hold"};
    // The signals this pool answers for: KV usage on the decode pool; queued prefill work on
    // the pool that prefills (the prefill pool, or the decode pool when there is none).
    std::optional<double> kv;
    if (pc.role == PoolRole::kDecode) kv = obs.kv_usage;
    std::optional<double> queued;
    if (pc.role == PoolRole::kPrefill || !has_prefill_pool) queued = obs.queued;
    const int n = st.replicas;
    const double per_worker_q = queued ? *queued / std::max(st.ready, 1) : 0.0;
    const bool over_kv = kv && *kv > config_.kv_scale_up;
    const bool over_q = queued && per_worker_q > config_.queue_scale_up;
    if (st.replicas > st.ready) {
      d.reason = fmt::format("waiting for {} starting worker(s)", st.replicas - st.ready);
    } else if (over_kv || over_q) {
      d.desired = n + 1;
      d.reason = over_kv ? fmt::format("kv usage {:.2f} > {:.2f}", *kv, config_.kv_scale_up)
                         : fmt::format("{:.2f} queued per worker > {:.2f}", per_worker_q,
                                       config_.queue_scale_up);
      grace = config_.grace_intervals;
    } else if (grace > 0) {
      d.reason = fmt::format("grace period ({} interval(s) left)", grace);
    } else if (n > 1 && (!kv || *kv < config_.kv_scale_down) &&
               (!queued || per_worker_q < config_.queue_scale_down)) {
      // Consolidation: the same load on one worker fewer must stay below the midpoint of the
      // thresholds, or the next interval would add the worker back.
      const double scale = static_cast<double>(n) / (n - 1);
      const double kv_mid = 0.5 * (config_.kv_scale_up + config_.kv_scale_down);
      const double q_mid = 0.5 * (config_.queue_scale_up + config_.queue_scale_down);
      const double kv_after = kv ? *kv * scale : 0.0;
      const double q_after = queued ? *queued / (n - 1) : 0.0;
      if (kv_after < kv_mid && q_after < q_mid) {
        d.desired = n - 1;
        d.reason = kv ? fmt::format("kv usage {:.2f} < {:.2f}, {:.2f} on {} worker(s)", *kv,
                                    config_.kv_scale_down, kv_after, n - 1)
                      : fmt::format("{:.2f} queued per worker < {:.2f}", per_worker_q,
                                    config_.queue_scale_down);
      } else {
        d.reason = fmt::format("low load, but {} worker(s) would be overfilled", n - 1);
      }
    }
    if (grace > 0 && d.desired <= n) --grace;
    out.push_back(std::move(d));
  }
  return out;
}

SlaPolicy::SlaPolicy(SlaModeConfig config, const ModelConfig& model)
    : config_(config), rate_(make_predictor(config.predictor)) {}

void SlaPolicy::correct(const ModelConfig& model, const ModelObservation& obs,
                        const std::map<PoolRole, PoolState>& pools, bool fleet_steady) {
  // Only an interval served by one fleet from start to end says how good the model is.
  if (!fleet_steady || !obs.mean_isl || !obs.mean_osl ||
      obs.completed < config_.correction_min_requests)
    return;
  for (const auto& [role, st] : pools) {
    if (st.replicas != st.ready) return;
  }
  // A transient is not a model error: the arrival rate of this interval and of the previous one
  // must each be within Poisson noise of the interval before.
  if (config_.correction_steady_sd > 0 && obs.interval_s > 0) {
    for (size_t i = 1; i < observed_rates_.size(); ++i) {
      const double r0 = observed_rates_[i - 1], r1 = observed_rates_[i];
      const double sd = std::sqrt((r0 + r1) / obs.interval_s);
      if (std::abs(r1 - r0) > config_.correction_steady_sd * sd) {
        estimate_.load_steady = false;
        return;
      }
    }
  }
  Load seen{obs.request_rate, *obs.mean_isl, *obs.mean_osl};
  const Profile& p = model.profile;
  std::tie(seen.s_mean, seen.s2_mean) = prefill_moments(p, obs.isl_buckets);
  const int n_decode = state_of(pools, PoolRole::kDecode).ready;
  double expected_ttft = 0, expected_itl = 0;
  if (model.pool(PoolRole::kPrefill)) {
    expected_ttft = estimate_prefill_ttft(p, seen, state_of(pools, PoolRole::kPrefill).ready);
    expected_itl = estimate_decode_itl(p, seen, n_decode);
  } else {
    const LatencyEstimate e = estimate_aggregated(p, seen, n_decode);
    expected_ttft = e.ttft_s, expected_itl = e.itl_s;
  }
  auto update = [&](double& factor, std::optional<double> observed, double expected,
                    int64_t samples) {
    if (!observed || samples < config_.correction_min_requests || !std::isfinite(expected) ||
        !(expected > 0))
      return;
    const double sample =
        std::clamp(*observed / expected, config_.correction_min, config_.correction_max);
    factor = (1 - config_.correction_weight) * factor + config_.correction_weight * sample;
  };
  update(p_corr_, obs.mean_ttft_s, expected_ttft, obs.ttft_samples);
  update(d_corr_, obs.mean_itl_s, expected_itl, obs.itl_samples);
}

PoolSizing size_pools(const ModelConfig& model, const Load& load, double p_corr, double d_corr,
                      double margin, double relaxed_slack) {
  const Profile& p = model.profile;
  PoolSizing out;
  const PoolConfig* prefill = model.pool(PoolRole::kPrefill);
  const PoolConfig* decode = model.pool(PoolRole::kDecode);
  if (!decode) return out;
  // A target below what any size reaches (a prompt alone takes longer, or the corrections ask
  // for more than the curve gives) becomes `relaxed_slack` times the best estimate (at max):
  // more workers stop helping there. Taking the larger of the two keeps the size monotonic in
  // the target.
  auto target = [relaxed_slack](double wanted, double best, bool* relaxed) {
    *relaxed = wanted < relaxed_slack * best;
    return std::max(wanted, relaxed_slack * best);
  };
  auto first_meeting = [](int lo, int hi, auto&& ok) {
    for (int n = lo; n < hi; ++n) {
      if (ok(n)) return n;
    }
    return hi;
  };
  const std::string relaxed_note =
      fmt::format(" (target unreachable: best + {:.0f}%)", (relaxed_slack - 1) * 100);
  auto note = [&](bool relaxed) { return relaxed ? relaxed_note : std::string(); };
  bool relaxed_t = false, relaxed_i = false;
  if (prefill) {
    const int lo = std::max(prefill->min_replicas, load.rate > 0 ? 1 : 0);
    const double ttft = target(margin * model.ttft_ms / 1000.0 / p_corr,
                               estimate_prefill_ttft(p, load, prefill->max_replicas), &relaxed_t);
    const int n_p = first_meeting(lo, prefill->max_replicas,
                                  [&](int n) { return estimate_prefill_ttft(p, load, n) <= ttft; });
    out.ttft_s = estimate_prefill_ttft(p, load, n_p) * p_corr;
    out.pools[PoolRole::kPrefill] = {n_p, fmt::format("ttft {:.0f} ms at {} worker(s){}",
                                                      out.ttft_s * 1e3, n_p, note(relaxed_t))};
    const double itl = target(margin * model.itl_ms / 1000.0 / d_corr,
                              estimate_decode_itl(p, load, decode->max_replicas), &relaxed_i);
    const int n_d = first_meeting(decode->min_replicas, decode->max_replicas,
                                  [&](int n) { return estimate_decode_itl(p, load, n) <= itl; });
    out.itl_s = estimate_decode_itl(p, load, n_d) * d_corr;
    out.pools[PoolRole::kDecode] = {
        n_d, fmt::format("itl {:.1f} ms at {} worker(s){}", out.itl_s * 1e3, n_d, note(relaxed_i))};
    return out;
  }
  const LatencyEstimate best = estimate_aggregated(p, load, decode->max_replicas);
  const double ttft = target(margin * model.ttft_ms / 1000.0 / p_corr, best.ttft_s, &relaxed_t);
  const double itl = target(margin * model.itl_ms / 1000.0 / d_corr, best.itl_s, &relaxed_i);
  const int chosen = first_meeting(decode->min_replicas, decode->max_replicas, [&](int k) {
    const LatencyEstimate e = estimate_aggregated(p, load, k);
    return e.ttft_s <= ttft && e.itl_s <= itl;
  });
  const LatencyEstimate e = estimate_aggregated(p, load, chosen);
  out.ttft_s = e.ttft_s * p_corr, out.itl_s = e.itl_s * d_corr;
  out.pools[PoolRole::kDecode] = {
      chosen, fmt::format("ttft {:.0f} ms, itl {:.1f} ms at {} worker(s){}", out.ttft_s * 1e3,
                          out.itl_s * 1e3, chosen, note(relaxed_t || relaxed_i))};
  return out;
}

std::optional<std::vector<PoolDecision>> SlaPolicy::decide(
    const ModelConfig& model, const ModelObservation& obs,
    const std::map<PoolRole, PoolState>& pools) {
  rate_->observe(obs.request_rate);
  // Lengths change slowly and one interval holds few requests with heavy-tailed prompts: they
  // are averaged over the last `length_window` intervals instead of predicted.
  lengths_.push_back({obs.isl_sum, static_cast<double>(obs.isl_count), obs.osl_sum,
                      static_cast<double>(obs.osl_count), obs.isl_buckets});
  while (static_cast<int>(lengths_.size()) > config_.length_window) lengths_.pop_front();
  double isl_sum = 0, isl_n = 0, osl_sum = 0, osl_n = 0;
  std::map<double, double> buckets;
  for (const Lengths& l : lengths_) {
    isl_sum += l.isl_sum, isl_n += l.isl_n, osl_sum += l.osl_sum, osl_n += l.osl_n;
    for (const auto& [le, n] : l.isl_buckets) buckets[le] += n;
  }
  const bool steady = steady_;
  observed_rates_.push_back(obs.request_rate);
  while (observed_rates_.size() > 3) observed_rates_.pop_front();
  estimate_.load_steady = true;
  correct(model, obs, pools, steady);
  const std::optional<double> rate = rate_->predict();
  if (!rate || isl_n <= 0 || osl_n <= 0) return std::nullopt;
  const std::optional<double> isl = isl_sum / isl_n, osl = osl_sum / osl_n;
  // Requests already waiting for a first token are served on top of the predicted arrivals:
  // plan to clear them within one interval.
  const double backlog_rate = obs.interval_s > 0 ? obs.queued / obs.interval_s : 0.0;
  Load load{*rate + backlog_rate, *isl, std::max(*osl, 1.0)};
  std::tie(load.s_mean, load.s2_mean) =
      prefill_moments(model.profile, {buckets.begin(), buckets.end()});
  estimate_.rate = *rate, estimate_.isl = *isl, estimate_.osl = *osl;
  estimate_.prefill_correction = p_corr_, estimate_.decode_correction = d_corr_;
  const PoolSizing sizing = size_pools(model, load, p_corr_, d_corr_);
  estimate_.ttft_s = sizing.ttft_s, estimate_.itl_s = sizing.itl_s;
  std::map<PoolRole, std::pair<int, std::string>> rec = sizing.pools;

  // The predicted rate at a new high of the window (by more than 10%): the load is rising.
  const double previous_high =
      recent_rates_.empty() ? 0.0 : *std::max_element(recent_rates_.begin(), recent_rates_.end());
  const bool rising = !recent_rates_.empty() && *rate > 1.1 * previous_high;
  recent_rates_.push_back(*rate);
  while (static_cast<int>(recent_rates_.size()) > config_.scale_down_window)
    recent_rates_.pop_front();
  estimate_.load_rate = load.rate;
  // This interval's sizes with the scale-down margin: how far a pool may shrink. With
  // scale_down_worst_case the largest of them over the window counts (each interval with its
  // own load and corrections), else this interval's.
  const PoolSizing tight = size_pools(model, load, p_corr_, d_corr_, config_.scale_down_margin);
  // And with the highest rate that arrived in the window: a prediction below it (a trend
  // extrapolated down) is no reason to shrink below what the arrivals need.
  recent_observed_.push_back(obs.request_rate);
  while (static_cast<int>(recent_observed_.size()) > config_.scale_down_window)
    recent_observed_.pop_front();
  const double max_arrived = *std::max_element(recent_observed_.begin(), recent_observed_.end());
  std::optional<PoolSizing> observed_tight;
  if (config_.scale_down_worst_case) {
    Load arrived = load;
    arrived.rate = max_arrived + backlog_rate;
    if (arrived.rate > load.rate)
      observed_tight = size_pools(model, arrived, p_corr_, d_corr_, config_.scale_down_margin);
  }
  // The relaxed targets' band: the sizes at a slack widened by the margin. A pool that meets
  // them is not grown for a target no size reaches (only the relaxation would move it).
  const PoolSizing loose =
      size_pools(model, load, p_corr_, d_corr_, 1.0, kRelaxedSlack / config_.scale_down_margin);
  std::vector<PoolDecision> out;
  for (const PoolConfig& pc : model.pools) {
    const int current = state_of(pools, pc.role).replicas;
    auto [want, why] = rec[pc.role];
    std::deque<int>& recent = recent_[pc.role];
    recent.push_back(want);
    while (static_cast<int>(recent.size()) > config_.scale_down_window) recent.pop_front();
    std::deque<int>& recent_tight = recent_tight_[pc.role];
    recent_tight.push_back(tight.pools.count(pc.role) ? tight.pools.at(pc.role).first : want);
    while (static_cast<int>(recent_tight.size()) > config_.scale_down_window)
      recent_tight.pop_front();
    PoolDecision d{pc.role, want,
                   fmt::format("{:.2f} req/s, isl {:.0f}, osl {:.0f}: {}", load.rate, load.isl,
                               load.osl, why)};
    if (want > current && loose.pools.count(pc.role) && loose.pools.at(pc.role).first <= current) {
      d.desired = current;
      d.reason += fmt::format(" (within best + {:.0f}% at {}: held)",
                              (kRelaxedSlack / config_.scale_down_margin - 1) * 100, current);
    } else if (want < current) {
      const int highest = *std::max_element(recent.begin(), recent.end());
      if (rising) {
        // A fleet that looks too big while the load climbs to a new high only looks so (the
        // corrections lag): shrinking now would be undone within an interval or two.
        d.desired = current;
        d.reason += " (no scale-down while the predicted rate rises)";
      } else {
        int with_margin = config_.scale_down_worst_case
                              ? *std::max_element(recent_tight.begin(), recent_tight.end())
                              : recent_tight.back();
        int arrived = 0;
        if (observed_tight && observed_tight->pools.count(pc.role))
          arrived = observed_tight->pools.at(pc.role).first;
        d.desired = std::min(current, std::max({highest, with_margin, arrived}));
        if (arrived > std::max(highest, with_margin) && arrived > want) {
          d.reason +=
              fmt::format(" (the window's arrivals, {:.2f} req/s: {})", max_arrived, arrived);
        } else if (highest > want && highest >= with_margin) {
          d.reason += fmt::format(" (scale-down window: {})", highest);
        } else if (with_margin > want) {
          d.reason +=
              fmt::format(" (scale-down margin {:.2f}{}: {})", config_.scale_down_margin,
                          with_margin > recent_tight.back() ? " over the window" : "", with_margin);
        }
      }
    }
    out.push_back(std::move(d));
  }
  steady_ = true;
  for (const PoolDecision& d : out)
    steady_ = steady_ && d.desired == state_of(pools, d.role).replicas;
  return out;
}

void apply_budgets(const std::vector<ModelConfig>& models, int max_gpus_total,
                   std::vector<std::vector<PoolDecision>>& decisions) {
  struct Ref {
    const PoolConfig* pool;
    PoolDecision* decision;
    size_t model;
  };
  std::vector<Ref> all;
  for (size_t m = 0; m < models.size() && m < decisions.size(); ++m) {
    for (PoolDecision& d : decisions[m]) {
      const PoolConfig* pc = models[m].pool(d.role);
      if (!pc) continue;
      if (d.desired > pc->max_replicas) {
        d.desired = pc->max_replicas;
        d.reason += fmt::format(" (max {})", pc->max_replicas);
      } else if (d.desired < pc->min_replicas) {
        d.desired = pc->min_replicas;
        d.reason += fmt::format(" (min {})", pc->min_replicas);
      }
      all.push_back({pc, &d, m});
    }
  }
  // Takes one worker at a time from the pool with the most GPUs above its minimum.
  auto trim = [&](auto&& in_scope, int budget, const std::string& what) {
    auto gpus = [&] {
      int g = 0;
      for (const Ref& r : all) {
        if (in_scope(r)) g += r.decision->desired * r.pool->gpus_per_worker;
      }
      return g;
    };
    while (gpus() > budget) {
      Ref* best = nullptr;
      int best_excess = 0;
      for (Ref& r : all) {
        if (!in_scope(r) || r.pool->gpus_per_worker == 0) continue;
        const int excess = (r.decision->desired - r.pool->min_replicas) * r.pool->gpus_per_worker;
        if (excess > best_excess) best = &r, best_excess = excess;
      }
      if (!best) break;  // validate() guarantees the minimums fit
      --best->decision->desired;
      if (best->decision->reason.find(what) == std::string::npos)
        best->decision->reason += " (" + what + ")";
    }
  };
  for (size_t m = 0; m < models.size(); ++m) {
    if (models[m].max_gpus > 0) {
      trim([m](const Ref& r) { return r.model == m; }, models[m].max_gpus,
           fmt::format("model budget {} GPUs", models[m].max_gpus));
    }
  }
  if (max_gpus_total > 0)
    trim([](const Ref&) { return true; }, max_gpus_total,
         fmt::format("total budget {} GPUs", max_gpus_total));
}

}  // namespace turbine::planner
