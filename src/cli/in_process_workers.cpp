#include "cli/in_process_workers.h"

#include <spdlog/spdlog.h>

#include "mock/mock_engine.h"
#include "router/flat_map.h"
#include "router/routed_engine.h"

namespace turbine::cli {

Result<std::unique_ptr<engine::AsyncEngine>> make_in_process_engine(
    const model::Model& model, const LocalEngineOptions& engine_options,
    const InProcessWorkersOptions& o) {
  if (o.workers < 1) return invalid_argument("--workers must be >= 1", "workers");
  if (o.engine != "real" && o.engine != "mock")
    return invalid_argument("--engine must be real or mock", "engine");
  // One real worker: the engine itself, no router in the path.
  if (o.workers == 1 && o.engine == "real") {
    TURBINE_ASSIGN_OR_RETURN(auto e, make_local_engine(model, engine_options));
    return std::unique_ptr<engine::AsyncEngine>(std::move(e));
  }
  router::RouterOptions ropts;
  TURBINE_ASSIGN_OR_RETURN(ropts.mode, router::parse_router_mode(o.router_mode));
  ropts.temperature = o.router_temperature;
  ropts.overlap_weight = o.kv_overlap_weight;
  ropts.use_kv_events = o.router_kv_events;
  TURBINE_RETURN_IF_ERROR(ropts.validate());
  auto router = std::make_unique<router::RoutedEngine>(ropts);
  for (int i = 0; i < o.workers; ++i) {
    const uint64_t id = router::mix64(static_cast<uint64_t>(i) + 1);
    auto sink = std::make_shared<router::RouterKvEventSink>(router.get(), id);
    std::shared_ptr<engine::AsyncEngine> worker;
    int64_t blocks = 0;
    if (o.engine == "mock") {
      mock::MockEngineOptions m;
      m.n_vocab = model.config().n_vocab;
      if (engine_options.eos_token_id >= 0) m.eos_token_ids.push_back(engine_options.eos_token_id);
      m.block_size = engine_options.block_size;
      m.num_blocks = o.mock_kv_blocks;
      if (engine_options.max_model_len > 0) m.max_context = engine_options.max_model_len;
      m.enable_prefix_caching = engine_options.enable_prefix_caching;
      m.speedup = o.speedup;
      m.kv_event_sink = sink;
      TURBINE_RETURN_IF_ERROR(m.validate());
      blocks = m.num_blocks;
      worker = std::make_shared<mock::MockEngine>(m);
    } else {
      LocalEngineOptions e = engine_options;
      e.kv_event_sink = sink;
      TURBINE_ASSIGN_OR_RETURN(auto real, make_local_engine(model, e));
      blocks = real->stats().kv_total_blocks;
      worker = std::move(real);
    }
    const int block_size = worker->block_size();
    router->add_worker({id, block_size, blocks}, std::move(worker));
  }
  spdlog::info("router: {} in-process {} workers, mode {}, overlap weight {}, temperature {}{}",
               o.workers, o.engine, router::router_mode_name(ropts.mode), ropts.overlap_weight,
               ropts.temperature, ropts.use_kv_events ? "" : ", approximate (no KV events)");
  return std::unique_ptr<engine::AsyncEngine>(std::move(router));
}

}  // namespace turbine::cli
