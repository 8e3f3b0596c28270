// The planner: every interval it reads the frontend's /metrics, turns the interval into an
// observation per model, lets the model's policy (load or SLA mode) decide each pool's size,
// trims the decisions to the GPU budgets and hands them to the connector (or only logs them in
// dry-run mode).
//
// The first tick starts every pool at its initial size (min unless `initial` is set).
// Faults: when the metrics cannot be read or parsed the planner holds every pool at its current
// size, logs why (once per interval) and sets turbine_planner_metrics_unreachable; the next good
// scrape is a new baseline. A connector that cannot report a pool holds that pool. A pool the
// connector blocked (workers that never became ready) is not grown.
//
// Threads: one thread owns the Planner (run() or tick()/poll() from a test); the metrics object
// is shared with the status server, which only serialises it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "planner/config.h"
#include "planner/connector.h"
#include "planner/planner_metrics.h"
#include "planner/policy.h"
#include "planner/prometheus_text.h"

namespace turbine::runtime {
class Discovery;
}

namespace turbine::planner {

class MetricsSource {
 public:
  virtual ~MetricsSource() = default;
  virtual Result<std::string> fetch() = 0;
};

// GET of a /metrics URL.
std::unique_ptr<MetricsSource> make_http_metrics_source(std::string url, double timeout_s);

struct PoolReport {
  std::string model;
  PoolRole role = PoolRole::kDecode;
  PoolState state;
  int desired = 0;
  bool changed = false;
  std::string reason;
};

struct TickReport {
  bool held = false;  // nothing decided this interval
  std::string hold_reason;
  std::vector<PoolReport> pools;
};

class Planner {
 public:
  // `metrics` may be null; `discovery` (optional) gives ready counts of registered workers to
  // the kubernetes connector, whose scale subresource only knows pods.
  Planner(PlannerConfig config, std::unique_ptr<MetricsSource> source,
          std::unique_ptr<Connector> connector, std::shared_ptr<PlannerMetrics> metrics,
          std::shared_ptr<runtime::Discovery> discovery = nullptr);
  ~Planner();

  // One interval at wall time `now_s` (monotonic seconds).
  TickReport tick(double now_s);
  // Connector bookkeeping between intervals.
  void poll();
  // poll() every 0.5 s and tick() every interval until `stop`; then shuts the connector down.
  void run(const std::atomic<bool>& stop);
  void shutdown();

  // The decision log's sink (JSON lines); the connector's events go there too.
  void set_log(std::FILE* file) { log_file_ = file; }
  EventLog event_log();

 private:
  void bring_up();  // the first tick: every pool to its initial size (min by default)
  void log_line(boost::json::object line);
  void hold_all(TickReport& report, const std::string& why);
  std::map<PoolRole, PoolState> states(const ModelConfig& model, TickReport& report, bool* ok);

  PlannerConfig config_;
  std::unique_ptr<MetricsSource> source_;
  std::unique_ptr<Connector> connector_;
  std::shared_ptr<PlannerMetrics> metrics_;
  std::shared_ptr<runtime::Discovery> discovery_;
  std::optional<MetricSet> prev_;
  double prev_s_ = 0;
  double start_s_ = -1;
  double now_s_ = 0;
  std::vector<LoadPolicy> load_;
  std::vector<SlaPolicy> sla_;
  std::map<std::string, int64_t> start_failures_seen_;
  std::FILE* log_file_ = nullptr;
  const std::chrono::steady_clock::time_point created_ = std::chrono::steady_clock::now();
  bool was_unreachable_ = false;
};

}  // namespace turbine::planner
