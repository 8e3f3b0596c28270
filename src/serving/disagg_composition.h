// Disaggregated serving (issue 8) composed over routers: a disagg::DisaggEngine in front of a
// model's decode pool, with a prefill pool and a KV transfer.
//
//   `turbine frontend`: prefill workers come from discovery (component `prefill`); the
//     ModelWatcher keeps a per-model prefill pool and calls discovered_disaggregation()'s hook
//     with the typed decode and prefill routers.
//   `turbine run --prefill-workers N`: InProcessPrefillPool builds N in-process prefill engines
//     behind their own KV-aware router and an InProcessKvTransfer to the decode workers, and
//     wraps the ModelEvents so that each announced model is served through a DisaggEngine.
//
// The policy's "uncached prompt tokens" come from the decode router's KV index
// (RoutedEngine::cached_prefix_tokens), handed over as a typed router, never found by a cast.
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "disagg/disagg_engine.h"
#include "disagg/in_process_transfer.h"
#include "engine/kv_transfer.h"
#include "router/routed_engine.h"
#include "serving/model_watcher.h"
#include "serving/worker_engine.h"

namespace turbine::serving {

// The decode pool's cached prefix of a prompt (its index's best non-draining worker, whole
// blocks); an empty function without a router (the whole prompt counts as uncached).
disagg::CachedTokensFn decode_cached_tokens(std::shared_ptr<router::RoutedEngine> decode);

// ModelWatcherOptions::disaggregate for prefill pools found in discovery (`turbine frontend`):
// a DisaggEngine that does not own the watcher's prefill pool, importing over `transfer`.
// `options` must be valid (validate()).
decltype(ModelWatcherOptions::disaggregate) discovered_disaggregation(
    disagg::DisaggOptions options, std::shared_ptr<engine::KvTransfer> transfer);

struct InProcessPrefillOptions {
  int prefill_workers = 1;
  disagg::DisaggOptions disagg;
  std::string description;  // how the engines were made, for the log line
};

// Threads: start() and the destructor on the main thread; wrap()'s events on the watcher's.
class InProcessPrefillPool {
 public:
  // Builds the prefill engines with `make_engine` (ids in_process_prefill_worker_id(i), no
  // transfer of their own, KV events to the pool's router).
  static Result<std::unique_ptr<InProcessPrefillPool>> start(
      const InProcessPrefillOptions& options, const WorkerEngineFactory& make_engine);
  ~InProcessPrefillPool();  // stops the prefill engines

  // What the decode workers fetch imports with (InProcessWorkersOptions::kv_transfer).
  std::shared_ptr<engine::KvTransfer> transfer() const { return transfer_; }
  // `events` with every announced model served through a DisaggEngine over this pool.
  ModelEvents wrap(ModelEvents events);

 private:
  InProcessPrefillPool() = default;
  InProcessPrefillOptions options_;
  std::shared_ptr<disagg::InProcessKvTransfer> transfer_;
  std::shared_ptr<router::RoutedEngine> pool_;
};

}  // namespace turbine::serving
