// `turbine run`'s workers, served through the same discovery path as the distributed mode.
//
// Each worker is an engine of this process (made by a WorkerEngineFactory: real or mock, the
// CLI decides) with a MemoryDiscovery client of its own (its lease id is the instance id) that
// registers its instance and model card, as `turbine worker` does in etcd. A ModelWatcher over
// the same in-memory store reaches the workers through an InProcessConnector and announces the
// model through `events`. Without a router (use_router = false, one worker) the worker's engine
// is served directly; otherwise a router::RoutedEngine spreads requests over the workers, fed by
// their KV events.
//
// Threads: start() and the destructor on the main thread; the watcher's callbacks run on the
// thread that registers (memory discovery delivers synchronously).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "engine/async_engine.h"
#include "engine/kv_transfer.h"
#include "router/routed_engine.h"
#include "runtime/discovery.h"
#include "serving/connectors.h"
#include "serving/model_watcher.h"
#include "serving/worker_engine.h"

namespace turbine::serving {

struct InProcessWorkersOptions {
  int workers = 1;
  std::string model_name;      // the cards' model_name
  std::string served_name;     // what clients put in "model"
  std::string model_location;  // the cards' tokenizer location
  bool use_router = true;      // false: one worker, served with no router in the path
  router::RouterOptions router;
  // Disaggregation (InProcessPrefillPool::transfer()): the decode workers' imports fetch with it.
  std::shared_ptr<engine::KvTransfer> kv_transfer;
  std::string engine_kind = "real";  // for the log line only
};

class InProcessWorkers {
 public:
  // Starts the watcher and the workers and registers them; the model has been announced through
  // `events` when this returns.
  static Result<std::unique_ptr<InProcessWorkers>> start(const InProcessWorkersOptions& options,
                                                         const WorkerEngineFactory& make_engine,
                                                         ModelEvents events);
  // Stops the watcher, then the engines, then revokes the registrations.
  ~InProcessWorkers();

  ModelWatcher& watcher() { return *watcher_; }

 private:
  InProcessWorkers() = default;
  std::shared_ptr<runtime::MemoryStore> store_;
  std::unique_ptr<runtime::Discovery> discovery_;  // the frontend's
  InProcessConnector connector_;
  std::unique_ptr<ModelWatcher> watcher_;
  struct Worker {
    std::unique_ptr<runtime::Discovery> discovery;
    std::shared_ptr<engine::AsyncEngine> engine;
  };
  std::vector<Worker> workers_;
};

// The instance id of in-process decode worker `i` (stable from run to run, as before discovery
// chose them) and of in-process prefill worker `i` (apart from the decode workers').
uint64_t in_process_worker_id(int i);
uint64_t in_process_prefill_worker_id(int i);

}  // namespace turbine::serving
