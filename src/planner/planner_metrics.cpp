#include "planner/planner_metrics.h"

#include <map>

#include <prometheus/text_serializer.h>

#include "metrics/metrics.h"

namespace turbine::planner {
namespace {

const std::map<std::string, std::string>& help_texts() {
  static const std::map<std::string, std::string> h = {
      {metrics::kPlannerObservedRequestRate, "Requests/s arriving in the last interval"},
      {metrics::kPlannerPredictedRequestRate, "Requests/s predicted for the next interval"},
      {metrics::kPlannerPredictedInputTokens, "Mean prompt tokens predicted for the next interval"},
      {metrics::kPlannerPredictedOutputTokens,
       "Mean output tokens predicted for the next interval"},
      {metrics::kPlannerObservedTtft, "Mean TTFT of the last interval (planner time)"},
      {metrics::kPlannerObservedItl, "Mean ITL of the last interval (planner time)"},
      {metrics::kPlannerEstimatedTtft, "TTFT the SLA model expects at the desired fleet"},
      {metrics::kPlannerEstimatedItl, "ITL the SLA model expects at the desired fleet"},
      {metrics::kPlannerObservedKvUsage, "KV-cache usage of the model's workers"},
      {metrics::kPlannerObservedQueued, "Requests waiting for their first token"},
      {metrics::kPlannerDesiredReplicas, "Workers the planner wants in the pool"},
      {metrics::kPlannerCurrentReplicas, "Workers in the pool (starting or ready)"},
      {metrics::kPlannerReadyReplicas, "Workers in the pool that are ready"},
      {metrics::kPlannerPoolBlocked, "1 when the pool stopped growing: workers never became ready"},
  };
  return h;
}

}  // namespace

PlannerMetrics::PlannerMetrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      metrics_unreachable(prometheus::BuildGauge()
                              .Name(metrics::kPlannerMetricsUnreachable)
                              .Help("1 while the frontend's metrics cannot be read (fleet held)")
                              .Register(*registry_)
                              .Add({})),
      metrics_failures(prometheus::BuildCounter()
                           .Name(metrics::kPlannerMetricsFailures)
                           .Help("Intervals whose metrics scrape failed")
                           .Register(*registry_)
                           .Add({})),
      dry_run(prometheus::BuildGauge()
                  .Name(metrics::kPlannerDryRun)
                  .Help("1 when decisions are only logged")
                  .Register(*registry_)
                  .Add({})) {}

prometheus::Gauge& PlannerMetrics::model_gauge(const char* name, const std::string& model) {
  auto it = help_texts().find(name);
  return prometheus::BuildGauge()
      .Name(name)
      .Help(it == help_texts().end() ? "" : it->second)
      .Register(*registry_)
      .Add({{"model", model}});
}

prometheus::Gauge& PlannerMetrics::pool_gauge(const char* name, const std::string& model,
                                              const std::string& pool) {
  auto it = help_texts().find(name);
  return prometheus::BuildGauge()
      .Name(name)
      .Help(it == help_texts().end() ? "" : it->second)
      .Register(*registry_)
      .Add({{"model", model}, {"pool", pool}});
}

prometheus::Gauge& PlannerMetrics::correction(const std::string& model, const std::string& phase) {
  return prometheus::BuildGauge()
      .Name(metrics::kPlannerCorrectionFactor)
      .Help("Observed / expected latency (phase prefill: TTFT, decode: ITL)")
      .Register(*registry_)
      .Add({{"model", model}, {"phase", phase}});
}

prometheus::Counter& PlannerMetrics::decisions(const std::string& model, const std::string& pool,
                                               const std::string& direction) {
  return prometheus::BuildCounter()
      .Name(metrics::kPlannerDecisions)
      .Help("Scaling decisions (dry-run ones included)")
      .Register(*registry_)
      .Add({{"model", model}, {"pool", pool}, {"direction", direction}});
}

prometheus::Counter& PlannerMetrics::scale_errors(const std::string& model,
                                                  const std::string& pool) {
  return prometheus::BuildCounter()
      .Name(metrics::kPlannerScaleErrors)
      .Help("Decisions the connector could not carry out")
      .Register(*registry_)
      .Add({{"model", model}, {"pool", pool}});
}

prometheus::Counter& PlannerMetrics::start_failures(const std::string& model,
                                                    const std::string& pool) {
  return prometheus::BuildCounter()
      .Name(metrics::kPlannerWorkerStartFailures)
      .Help("Workers that never became ready")
      .Register(*registry_)
      .Add({{"model", model}, {"pool", pool}});
}

std::string PlannerMetrics::serialize() const {
  prometheus::TextSerializer serializer;
  return serializer.Serialize(registry_->Collect());
}

}  // namespace turbine::planner
