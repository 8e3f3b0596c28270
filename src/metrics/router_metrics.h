// Prometheus series of the KV-aware router (names in metrics/metrics.h, table in docs/DEPLOY.md):
//   turbine_router_decisions_total{model,worker_id,router_mode}   counter  workers chosen
//   turbine_router_overlap_blocks{model}                          histogram cached blocks of the
//                                                                           chosen worker
//   turbine_router_prompt_blocks_total{model}                     counter  full prompt blocks
//   routed turbine_router_cached_blocks_total{model}                     counter  of those, cached
//   on the
//                                                                          chosen worker (hit rate
//                                                                          = cached / prompt)
//   turbine_frontend_cached_tokens{model}                         histogram the same in tokens
//   turbine_frontend_worker_active_decode_blocks{model,worker_id} gauge    router's decode load
//   turbine_frontend_worker_active_prefill_tokens{model,worker_id} gauge   router's pending prefill
//   turbine_router_indexed_blocks{model}                          gauge    (worker, block) pairs
//   turbine_router_kv_events_total{model}                         counter  KV events received
//   turbine_frontend_model_migration_total{model,migration_type}  counter  new_request |
//                                                                          ongoing_request
// worker_id is the instance id in hex (as the logs and the x-worker-instance-id header);
// router_mode is kv, round-robin, random, least-loaded, or override (x-worker-instance-id).
// One RouterMetrics per process (its own registry, appended to /metrics); one observer per
// router (RouterOptions::observer), labelled with the model it routes. Thread-safe.
#pragma once

#include <memory>
#include <string>

#include <prometheus/registry.h>

#include "router/router_observer.h"

namespace turbine::metrics {

class RouterMetrics {
 public:
  RouterMetrics();
  RouterMetrics(const RouterMetrics&) = delete;
  RouterMetrics& operator=(const RouterMetrics&) = delete;

  std::shared_ptr<router::RouterObserver> observer(const std::string& model);
  // The registry in Prometheus text format (version 0.0.4).
  std::string serialize() const;

  struct Families;

 private:
  std::shared_ptr<Families> families_;
};

}  // namespace turbine::metrics
