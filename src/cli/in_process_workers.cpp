#include "cli/in_process_workers.h"

#include <algorithm>

#include "cli/local_engine.h"
#include "mock/mock_engine.h"
#include "router/routed_engine.h"

namespace turbine::cli {

Result<mock::MockEngineOptions> mock_engine_options(const model::Model& model,
                                                    const LocalEngineOptions& engine_options,
                                                    const InProcessWorkersOptions& o) {
  mock::MockEngineOptions m;
  m.n_vocab = model.config().n_vocab;
  if (engine_options.eos_token_id >= 0) m.eos_token_ids.push_back(engine_options.eos_token_id);
  m.block_size = engine_options.block_size;
  m.num_blocks = o.mock_kv_blocks;
  if (engine_options.max_model_len > 0) m.max_context = engine_options.max_model_len;
  m.enable_prefix_caching = engine_options.enable_prefix_caching;
  // The scheduling flags mean the same to the simulated engine as to a real one when given.
  if (engine_options.max_num_seqs_given) m.max_num_seqs = engine_options.max_num_seqs;
  if (engine_options.max_num_batched_tokens_given)
    m.max_num_batched_tokens = engine_options.max_num_batched_tokens;
  m.max_num_batched_tokens = std::max(m.max_num_batched_tokens, m.max_num_seqs);
  m.target_itl_ms = engine_options.target_itl_ms;
  m.target_ttft_ms = engine_options.target_ttft_ms;
  m.scheduling_policy = engine_options.scheduling_policy;
  m.speedup = o.speedup;
  m.kv_bytes_per_token = o.mock_kv_bytes_per_token;
  m.kv_transfer_gbps = o.mock_kv_transfer_gbps;
  m.grammar_compiler = grammar_compiler(model);
  m.kv_offload = engine_options.kv_offload;
  TURBINE_RETURN_IF_ERROR(m.validate());
  return m;
}

serving::WorkerEngineFactory worker_engine_factory(const model::Model& model,
                                                   const LocalEngineOptions& engine_options,
                                                   const InProcessWorkersOptions& o) {
  return [&model, engine_options,
          o](const serving::WorkerEngineSpec& spec) -> Result<serving::WorkerEngine> {
    if (o.engine == "mock") {
      TURBINE_ASSIGN_OR_RETURN(mock::MockEngineOptions m,
                               mock_engine_options(model, engine_options, o));
      m.kv_event_sink = spec.kv_event_sink;
      m.instance_id = spec.instance_id;
      m.kv_transfer = spec.kv_transfer;  // --prefill-workers: imports fetch with it
      if (m.kv_offload.enabled()) {
        TURBINE_ASSIGN_OR_RETURN(m.kv_tiers, mock::simulated_tiers(m));
      }
      auto engine = std::make_shared<mock::MockEngine>(m);
      return serving::WorkerEngine{engine, engine, m.num_blocks};
    }
    LocalEngineOptions e = engine_options;
    e.instance_id = spec.instance_id;
    e.kv_event_sink = spec.kv_event_sink;
    e.kv_transfer = spec.kv_transfer;
    TURBINE_ASSIGN_OR_RETURN(auto made, make_local_engine(model, e));
    std::shared_ptr<engine::Engine> engine = std::move(made);
    const int64_t blocks = engine->stats().kv_total_blocks;
    return serving::WorkerEngine{engine, engine, blocks, engine_options.tensor_parallel_size};
  };
}

Result<serving::InProcessWorkersOptions> serving_workers_options(const InProcessWorkersOptions& o,
                                                                 const std::string& model_name,
                                                                 const std::string& model_location,
                                                                 const std::string& served_name) {
  if (o.workers < 1) return invalid_argument("--workers must be >= 1", "workers");
  if (o.engine != "real" && o.engine != "mock")
    return invalid_argument("--engine must be real or mock", "engine");
  serving::InProcessWorkersOptions s;
  s.workers = o.workers;
  s.model_name = model_name;
  s.served_name = served_name;
  s.model_location = model_location;
  s.engine_kind = o.engine;
  TURBINE_ASSIGN_OR_RETURN(s.router.mode, router::parse_router_mode(o.router_mode));
  s.router.temperature = o.router_temperature;
  s.router.overlap_weight = o.kv_overlap_weight;
  s.router.host_tier_weight = o.router_host_tier_weight;
  s.router.disk_tier_weight = o.router_disk_tier_weight;
  s.router.use_kv_events = o.router_kv_events;
  s.router.observer = o.router_observer;
  s.router.tracer = o.tracer;
  TURBINE_RETURN_IF_ERROR(s.router.validate());
  // One real worker: the engine itself, no router in the path.
  s.use_router = !(o.workers == 1 && o.engine == "real");
  return s;
}

}  // namespace turbine::cli
