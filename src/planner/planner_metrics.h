// The planner's own Prometheus series (names in metrics/metrics.h, turbine_planner_*), served
// on `turbine planner --status-port`. Thread-safe (prometheus-cpp): the planner thread sets,
// the status server's thread serialises.
#pragma once

#include <memory>
#include <string>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

namespace turbine::planner {

class PlannerMetrics {
  // Declared first: the references below point into the registry.
  std::shared_ptr<prometheus::Registry> registry_;

 public:
  PlannerMetrics();

  prometheus::Gauge& model_gauge(const char* name, const std::string& model);
  prometheus::Gauge& pool_gauge(const char* name, const std::string& model,
                                const std::string& pool);
  prometheus::Gauge& correction(const std::string& model, const std::string& phase);
  prometheus::Counter& decisions(const std::string& model, const std::string& pool,
                                 const std::string& direction);
  prometheus::Counter& scale_errors(const std::string& model, const std::string& pool);
  prometheus::Counter& start_failures(const std::string& model, const std::string& pool);
  prometheus::Gauge& metrics_unreachable;
  prometheus::Counter& metrics_failures;
  prometheus::Gauge& dry_run;

  std::string serialize() const;
};

}  // namespace turbine::planner
