// RouterObserver: what a RoutedEngine reports as it routes, for metrics (metrics::RouterMetrics
// turns it into Prometheus series; tests record it). The router calls it under its own mutex, on
// whichever thread routes, finishes a request or delivers a KV event, so an implementation must
// be quick, must not call back into the router, and is called for one router at a time.
#pragma once

#include <cstddef>
#include <cstdint>

#include "router/selector.h"

namespace turbine::router {

struct RoutingDecision {
  uint64_t worker_id = 0;
  RouterMode mode = RouterMode::kKv;
  bool override_header = false;  // chosen by routing.instance_id, not by the mode
  bool migration = false;        // a re-submission after the worker was lost
  size_t prompt_blocks = 0;      // full blocks of the prompt (+ tokens generated, on migration)
  size_t cached_blocks = 0;      // of those, cached on the chosen worker per the index
  int block_size = 0;
};

enum class MigrationType {
  kNewRequest,      // the worker refused the request as unavailable; sent to another one
  kOngoingRequest,  // the worker was lost mid-request; resumed on another one
};

class RouterObserver {
 public:
  virtual ~RouterObserver() = default;
  virtual void routed(const RoutingDecision& decision) = 0;
  virtual void migrated(MigrationType type) = 0;
  // The router's view of a worker's load after it changed.
  virtual void worker_load(uint64_t worker_id, double active_decode_blocks,
                           double pending_prefill_tokens) = 0;
  virtual void worker_removed(uint64_t worker_id) = 0;
  // After every KV event: (worker, block) pairs in the index and events received so far.
  virtual void index_changed(size_t indexed_blocks, uint64_t kv_events) = 0;
};

}  // namespace turbine::router
