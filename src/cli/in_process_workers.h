// `turbine run`'s worker flags and the engines behind them. The composition (memory discovery,
// the ModelWatcher, routers, disaggregation) is serving's (serving/in_process_workers.h,
// serving/disagg_composition.h); this file turns the flags into serving's options and into the
// WorkerEngineFactory that builds each worker's engine: the model on the local backend
// (cli/local_engine), or the mock engine.
#pragma once

#include <memory>
#include <string>

#include "cli/local_engine.h"
#include "common/status.h"
#include "model/model.h"
#include "router/router_observer.h"
#include "serving/in_process_workers.h"
#include "serving/worker_engine.h"

namespace turbine::mock {
struct MockEngineOptions;
}

namespace turbine::cli {

struct InProcessWorkersOptions {
  int workers = 1;
  std::string engine = "real";     // "real" or "mock"
  std::string router_mode = "kv";  // kv, round-robin, random, least-loaded
  double router_temperature = 0.0;
  double kv_overlap_weight = 1.0;
  double router_host_tier_weight = 0.75;  // KV tiers (issue 24): weights of lower-tier hits
  double router_disk_tier_weight = 0.25;
  bool router_kv_events = true;  // false: approximate routing from the router's own decisions
  double speedup = 1.0;          // mock engine: simulated seconds per wall-clock second
  int mock_kv_blocks = 16384;    // mock engine: KV blocks per worker
  // Mock engine, disaggregated serving: simulated KV bytes per token and KV link bandwidth.
  int64_t mock_kv_bytes_per_token = int64_t{128} << 10;
  double mock_kv_transfer_gbps = 200.0;
  std::shared_ptr<router::RouterObserver> router_observer;  // metrics of the router; may be null
  std::shared_ptr<trace::Tracer> tracer;  // the router's "route" spans; may be null
};

// The options of one in-process mock worker (no event sink, instance id or KV transfer yet).
Result<mock::MockEngineOptions> mock_engine_options(const model::Model& model,
                                                    const LocalEngineOptions& engine_options,
                                                    const InProcessWorkersOptions& options);

// Builds each worker's engine: `model` with `engine_options` (real), or the mock engine; the
// spec's instance id, KV event sink and KV transfer go into it. `model` must outlive the engines.
serving::WorkerEngineFactory worker_engine_factory(const model::Model& model,
                                                   const LocalEngineOptions& engine_options,
                                                   const InProcessWorkersOptions& options);

// serving's options for the workers: validated flags, the router options, and one real worker
// served with no router in the path.
Result<serving::InProcessWorkersOptions> serving_workers_options(
    const InProcessWorkersOptions& options, const std::string& model_name,
    const std::string& model_location, const std::string& served_name);

}  // namespace turbine::cli
