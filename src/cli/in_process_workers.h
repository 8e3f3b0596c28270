// The engine `turbine run` serves from: the local engine alone (one real worker, no router in
// the path), or a router::RoutedEngine over N in-process workers (real engines or mock engines),
// each with its own instance id and a KV event sink feeding the router.
#pragma once

#include <memory>
#include <string>

#include "cli/local_engine.h"
#include "common/status.h"
#include "engine/async_engine.h"
#include "model/model.h"

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
};

Result<std::unique_ptr<engine::AsyncEngine>> make_in_process_engine(
    const model::Model& model, const LocalEngineOptions& engine_options,
    const InProcessWorkersOptions& options);

}  // namespace turbine::cli
