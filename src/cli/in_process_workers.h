// `turbine run`'s workers, served through the same discovery path as the distributed mode.
//
// Each worker is an engine of this process (real, or mock) with a MemoryDiscovery client of its
// own (its lease id is the instance id) that registers its instance and model card, as
// `turbine worker` does in etcd. A runtime::ModelWatcher over the same in-memory store reaches
// the workers through a runtime::InProcessConnector and announces the model to the frontend.
// One real worker is served directly (no router in the path); otherwise a router::RoutedEngine
// spreads requests over the workers, fed by their KV events.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "cli/local_engine.h"
#include "common/status.h"
#include "engine/async_engine.h"
#include "model/model.h"
#include "router/router_observer.h"
#include "runtime/connectors.h"
#include "runtime/discovery.h"
#include "runtime/model_watcher.h"

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

class InProcessWorkers {
 public:
  // Starts the watcher and the workers and registers them; the model has been announced
  // through `events` when this returns. `model_location` goes into the cards' tokenizer
  // location, `served_name` is what clients put in "model".
  static Result<std::unique_ptr<InProcessWorkers>> start(const model::Model& model,
                                                         const std::string& model_location,
                                                         const std::string& served_name,
                                                         const LocalEngineOptions& engine_options,
                                                         const InProcessWorkersOptions& options,
                                                         runtime::ModelEvents events);
  // Stops the watcher, then the engines, then revokes the registrations.
  ~InProcessWorkers();

  runtime::ModelWatcher& watcher() { return *watcher_; }

 private:
  InProcessWorkers() = default;
  std::shared_ptr<runtime::MemoryStore> store_;
  std::unique_ptr<runtime::Discovery> discovery_;  // the frontend's
  runtime::InProcessConnector connector_;
  std::unique_ptr<runtime::ModelWatcher> watcher_;
  struct Worker {
    std::unique_ptr<runtime::Discovery> discovery;
    std::shared_ptr<engine::AsyncEngine> engine;
  };
  std::vector<Worker> workers_;
};

}  // namespace turbine::cli
