#include "planner/planner.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/json.hpp>

#include "metrics/metrics.h"
#include "planner/http_fetch.h"
#include "runtime/discovery.h"

namespace turbine::planner {
namespace {

namespace json = boost::json;

class HttpMetricsSource final : public MetricsSource {
 public:
  HttpMetricsSource(std::string url, double timeout_s)
      : url_(std::move(url)), timeout_s_(timeout_s) {}
  Result<std::string> fetch() override {
    TURBINE_ASSIGN_OR_RETURN(HttpReply r, http_call({"GET", url_, {}, "", timeout_s_, ""}));
    if (r.status != 200)
      return Status(StatusCode::kUnavailable, fmt::format("GET {}: HTTP {}", url_, r.status));
    return std::move(r.body);
  }

 private:
  std::string url_;
  double timeout_s_;
};

json::value number_or_null(std::optional<double> v) {
  if (!v || !std::isfinite(*v)) return nullptr;
  return *v;
}

}  // namespace

std::unique_ptr<MetricsSource> make_http_metrics_source(std::string url, double timeout_s) {
  return std::make_unique<HttpMetricsSource>(std::move(url), timeout_s);
}

Planner::Planner(PlannerConfig config, std::unique_ptr<MetricsSource> source,
                 std::unique_ptr<Connector> connector, std::shared_ptr<PlannerMetrics> metrics,
                 std::shared_ptr<runtime::Discovery> discovery)
    : config_(std::move(config)),
      source_(std::move(source)),
      connector_(std::move(connector)),
      metrics_(std::move(metrics)),
      discovery_(std::move(discovery)) {
  for (const ModelConfig& m : config_.models) {
    load_.emplace_back(config_.load);
    sla_.emplace_back(config_.sla, m);
  }
  if (metrics_) metrics_->dry_run.Set(config_.dry_run ? 1 : 0);
}

Planner::~Planner() {
  shutdown();
}

EventLog Planner::event_log() {
  return [this](json::object e) { log_line(std::move(e)); };
}

void Planner::log_line(json::object line) {
  if (!log_file_) return;
  const double t =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - created_).count();
  line["t"] = t;  // wall seconds since the planner started
  line["t_planner"] = t * config_.time_scale;
  // Wall-clock time, to line the log up with other tools' records (e.g. a benchmark's window).
  line["unix_s"] =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  const std::string text = json::serialize(line) + "\n";
  std::fwrite(text.data(), 1, text.size(), log_file_);
  std::fflush(log_file_);
}

std::map<PoolRole, PoolState> Planner::states(const ModelConfig& model, TickReport& report,
                                              bool* ok) {
  *ok = true;
  std::map<PoolRole, PoolState> out;
  std::optional<std::map<std::pair<std::string, PoolRole>, int>> registered;
  if (discovery_) {
    auto counts = count_registered_workers(*discovery_, config_.ns);
    if (counts) registered = std::move(*counts);
  }
  for (const PoolConfig& p : model.pools) {
    auto st = connector_->state(model, p);
    if (!st) {
      spdlog::warn("planner: {} {} pool: connector cannot tell its size ({}); holding it",
                   model.name, pool_role_name(p.role), st.status().message());
      *ok = false;
      report.hold_reason = st.status().message();
      continue;
    }
    if (registered) {
      auto it = registered->find({model.name, p.role});
      st->ready = std::min(st->replicas, it == registered->end() ? 0 : it->second);
    }
    out[p.role] = *st;
  }
  return out;
}

void Planner::hold_all(TickReport& report, const std::string& why) {
  report.held = true;
  report.hold_reason = why;
  json::array pools;
  for (const ModelConfig& m : config_.models) {
    for (const PoolConfig& p : m.pools) {
      auto st = connector_->state(m, p);
      PoolReport r{m.name, p.role, st ? *st : PoolState{}, 0, false, why};
      r.desired = r.state.replicas;
      if (metrics_ && st) {
        metrics_->pool_gauge(metrics::kPlannerCurrentReplicas, m.name, pool_role_name(p.role))
            .Set(r.state.replicas);
        metrics_->pool_gauge(metrics::kPlannerReadyReplicas, m.name, pool_role_name(p.role))
            .Set(r.state.ready);
      }
      pools.push_back({{"model", m.name},
                       {"pool", pool_role_name(p.role)},
                       {"replicas", r.state.replicas},
                       {"ready", r.state.ready},
                       {"draining", r.state.draining},
                       {"desired", r.desired}});
      report.pools.push_back(std::move(r));
    }
  }
  log_line({{"event", "interval"}, {"held", true}, {"reason", why}, {"pools", std::move(pools)}});
}

void Planner::bring_up() {
  for (const ModelConfig& m : config_.models) {
    for (const PoolConfig& p : m.pools) {
      const int want = p.initial_replicas >= 0 ? p.initial_replicas : p.min_replicas;
      auto st = connector_->state(m, p);
      if (!st || st->replicas >= want) continue;
      spdlog::info("planner: {}{} {} pool {} -> {}: initial fleet",
                   config_.dry_run ? "dry-run: " : "", m.name, pool_role_name(p.role), st->replicas,
                   want);
      if (config_.dry_run) continue;
      if (Status s = connector_->scale(m, p, want, "initial fleet"); !s.is_ok()) {
        spdlog::error("planner: cannot start the initial {} {} pool: {}", m.name,
                      pool_role_name(p.role), s.message());
        if (metrics_) metrics_->scale_errors(m.name, pool_role_name(p.role)).Increment();
      }
    }
  }
}

TickReport Planner::tick(double now_s) {
  now_s_ = now_s;
  if (start_s_ < 0) {
    start_s_ = now_s;
    bring_up();
  }
  connector_->poll();
  TickReport report;

  Result<std::string> text = source_->fetch();
  Result<MetricSet> scraped = text ? MetricSet::parse(*text) : Result<MetricSet>(text.status());
  if (!scraped) {
    const std::string why = "frontend metrics unreachable (" + scraped.status().message() + ")";
    spdlog::warn("planner: {}: holding the fleet at its current size", why);
    was_unreachable_ = true;
    if (metrics_) {
      metrics_->metrics_unreachable.Set(1);
      metrics_->metrics_failures.Increment();
    }
    prev_.reset();  // the next good scrape starts a fresh interval
    hold_all(report, why);
    return report;
  }
  if (metrics_) metrics_->metrics_unreachable.Set(0);
  if (was_unreachable_) {
    spdlog::info("planner: frontend metrics readable again");
    was_unreachable_ = false;
  }
  if (!prev_) {
    prev_ = std::move(*scraped);
    prev_s_ = now_s;
    hold_all(report, "first scrape (baseline for the next interval)");
    return report;
  }
  const double dt = now_s - prev_s_;

  std::vector<std::vector<PoolDecision>> decisions(config_.models.size());
  std::vector<std::map<PoolRole, PoolState>> pool_states(config_.models.size());
  json::array model_lines;
  for (size_t i = 0; i < config_.models.size(); ++i) {
    const ModelConfig& m = config_.models[i];
    bool ok = true;
    pool_states[i] = states(m, report, &ok);
    const ModelObservation obs = observe_model(*prev_, *scraped, dt, config_.time_scale, m.name);
    json::object line{{"model", m.name},
                      {"rate", obs.request_rate},
                      {"arrivals", obs.arrivals},
                      {"completed", obs.completed},
                      {"isl", number_or_null(obs.mean_isl)},
                      {"osl", number_or_null(obs.mean_osl)},
                      {"ttft_s", number_or_null(obs.mean_ttft_s)},
                      {"itl_s", number_or_null(obs.mean_itl_s)},
                      {"kv_usage", number_or_null(obs.kv_usage)},
                      {"queued", obs.queued}};
    if (metrics_) {
      metrics_->model_gauge(metrics::kPlannerObservedRequestRate, m.name).Set(obs.request_rate);
      if (obs.mean_ttft_s)
        metrics_->model_gauge(metrics::kPlannerObservedTtft, m.name).Set(*obs.mean_ttft_s);
      if (obs.mean_itl_s)
        metrics_->model_gauge(metrics::kPlannerObservedItl, m.name).Set(*obs.mean_itl_s);
      if (obs.kv_usage)
        metrics_->model_gauge(metrics::kPlannerObservedKvUsage, m.name).Set(*obs.kv_usage);
      metrics_->model_gauge(metrics::kPlannerObservedQueued, m.name).Set(obs.queued);
    }
    std::optional<std::vector<PoolDecision>> d;
    std::string hold = "connector cannot tell the pool sizes";
    if (ok && config_.mode == PlannerMode::kLoad) {
      d = load_[i].decide(m, obs, pool_states[i]);
    } else if (ok) {
      d = sla_[i].decide(m, obs, pool_states[i]);
      hold = "no completed request yet: nothing to size from";
      if (d) {
        const SlaEstimate& e = sla_[i].estimate();
        line["predicted"] = json::object{{"rate", e.rate}, {"isl", e.isl}, {"osl", e.osl}};
        line["estimated"] = json::object{{"ttft_s", number_or_null(e.ttft_s)},
                                         {"itl_s", number_or_null(e.itl_s)},
                                         {"prefill_correction", e.prefill_correction},
                                         {"decode_correction", e.decode_correction}};
        line["planned_rate"] = e.load_rate;
        line["load_steady"] = e.load_steady;
        if (metrics_) {
          metrics_->model_gauge(metrics::kPlannerPredictedRequestRate, m.name).Set(e.rate);
          metrics_->model_gauge(metrics::kPlannerPredictedInputTokens, m.name).Set(e.isl);
          metrics_->model_gauge(metrics::kPlannerPredictedOutputTokens, m.name).Set(e.osl);
          if (std::isfinite(e.ttft_s))
            metrics_->model_gauge(metrics::kPlannerEstimatedTtft, m.name).Set(e.ttft_s);
          if (std::isfinite(e.itl_s))
            metrics_->model_gauge(metrics::kPlannerEstimatedItl, m.name).Set(e.itl_s);
          metrics_->correction(m.name, "prefill").Set(e.prefill_correction);
          metrics_->correction(m.name, "decode").Set(e.decode_correction);
        }
      }
    }
    if (!d) {
      d.emplace();
      for (const auto& [role, st] : pool_states[i]) d->push_back({role, st.replicas, hold});
    }
    decisions[i] = std::move(*d);
    model_lines.push_back(std::move(line));
  }
  apply_budgets(config_.models, config_.max_gpus_total, decisions);

  json::array pool_lines;
  for (size_t i = 0; i < config_.models.size(); ++i) {
    const ModelConfig& m = config_.models[i];
    for (PoolDecision& d : decisions[i]) {
      auto it = pool_states[i].find(d.role);
      if (it == pool_states[i].end()) continue;
      const PoolState& st = it->second;
      const PoolConfig& pc = *m.pool(d.role);
      const std::string pool = pool_role_name(d.role);
      if (st.blocked && d.desired > st.replicas) {
        d.desired = st.replicas;
        d.reason += " (blocked: " + st.blocked_reason + ")";
      }
      PoolReport r{m.name, d.role, st, d.desired, d.desired != st.replicas, d.reason};
      if (r.changed) {
        const char* direction = d.desired > st.replicas ? "up" : "down";
        spdlog::info("planner: {}{} {} pool {} -> {}: {}", config_.dry_run ? "dry-run: " : "",
                     m.name, pool, st.replicas, d.desired, d.reason);
        if (metrics_) metrics_->decisions(m.name, pool, direction).Increment();
        if (!config_.dry_run) {
          if (Status s = connector_->scale(m, pc, d.desired, d.reason); !s.is_ok()) {
            spdlog::error("planner: cannot scale {} {} pool to {}: {}", m.name, pool, d.desired,
                          s.message());
            if (metrics_) metrics_->scale_errors(m.name, pool).Increment();
          }
        }
      } else {
        spdlog::debug("planner: {} {} pool stays at {}: {}", m.name, pool, st.replicas, d.reason);
      }
      if (metrics_) {
        metrics_->pool_gauge(metrics::kPlannerDesiredReplicas, m.name, pool).Set(d.desired);
        metrics_->pool_gauge(metrics::kPlannerCurrentReplicas, m.name, pool).Set(st.replicas);
        metrics_->pool_gauge(metrics::kPlannerReadyReplicas, m.name, pool).Set(st.ready);
        metrics_->pool_gauge(metrics::kPlannerPoolBlocked, m.name, pool).Set(st.blocked ? 1 : 0);
        const std::string key = m.name + "/" + pool;
        const int64_t seen = start_failures_seen_[key];
        if (st.start_failures > seen) {
          metrics_->start_failures(m.name, pool)
              .Increment(static_cast<double>(st.start_failures - seen));
          start_failures_seen_[key] = st.start_failures;
        }
      }
      pool_lines.push_back({{"model", m.name},
                            {"pool", pool},
                            {"replicas", st.replicas},
                            {"ready", st.ready},
                            {"draining", st.draining},
                            {"desired", d.desired},
                            {"blocked", st.blocked},
                            {"reason", d.reason}});
      report.pools.push_back(std::move(r));
    }
  }
  log_line({{"event", "interval"},
            {"held", false},
            {"dry_run", config_.dry_run},
            {"interval_s", dt * config_.time_scale},
            {"models", std::move(model_lines)},
            {"pools", std::move(pool_lines)}});
  prev_ = std::move(*scraped);
  prev_s_ = now_s;
  return report;
}

void Planner::poll() {
  connector_->poll();
}

void Planner::run(const std::atomic<bool>& stop) {
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  auto seconds = [&] { return std::chrono::duration<double>(Clock::now() - t0).count(); };
  const double interval_wall = config_.interval_s / config_.time_scale;
  double next_tick = 0;
  while (!stop.load()) {
    const double now = seconds();
    if (now >= next_tick) {
      tick(now);
      next_tick += interval_wall;
      if (next_tick <= now) next_tick = now + interval_wall;
    } else {
      poll();
    }
    const double wait = std::clamp(next_tick - seconds(), 0.0, 0.5);
    std::this_thread::sleep_for(std::chrono::duration<double>(wait));
  }
  shutdown();
}

void Planner::shutdown() {
  if (connector_) connector_->shutdown();
}

}  // namespace turbine::planner
