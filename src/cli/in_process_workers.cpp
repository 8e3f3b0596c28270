#include "cli/in_process_workers.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "mock/mock_engine.h"
#include "router/flat_map.h"
#include "router/routed_engine.h"
#include "runtime/component.h"
#include "runtime/model_card.h"

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
  m.speedup = o.speedup;
  m.kv_bytes_per_token = o.mock_kv_bytes_per_token;
  m.kv_transfer_gbps = o.mock_kv_transfer_gbps;
  TURBINE_RETURN_IF_ERROR(m.validate());
  return m;
}

Result<std::unique_ptr<InProcessWorkers>> InProcessWorkers::start(
    const model::Model& model, const std::string& model_location, const std::string& served_name,
    const LocalEngineOptions& engine_options, const InProcessWorkersOptions& o,
    runtime::ModelEvents events) {
  if (o.workers < 1) return invalid_argument("--workers must be >= 1", "workers");
  if (o.engine != "real" && o.engine != "mock")
    return invalid_argument("--engine must be real or mock", "engine");
  runtime::ModelWatcherOptions wopts;
  TURBINE_ASSIGN_OR_RETURN(wopts.router.mode, router::parse_router_mode(o.router_mode));
  wopts.router.temperature = o.router_temperature;
  wopts.router.overlap_weight = o.kv_overlap_weight;
  wopts.router.use_kv_events = o.router_kv_events;
  wopts.router.observer = o.router_observer;
  wopts.router.tracer = o.tracer;
  TURBINE_RETURN_IF_ERROR(wopts.router.validate());
  // One real worker: the engine itself, no router in the path.
  wopts.use_router = !(o.workers == 1 && o.engine == "real");

  std::unique_ptr<InProcessWorkers> w(new InProcessWorkers());
  w->store_ = runtime::MemoryDiscovery::make_store();
  w->discovery_ = std::make_unique<runtime::MemoryDiscovery>(w->store_);
  w->watcher_ = std::make_unique<runtime::ModelWatcher>(wopts, *w->discovery_, w->connector_,
                                                        std::move(events));
  TURBINE_RETURN_IF_ERROR(w->watcher_->start());
  const runtime::EndpointId ep;
  for (int i = 0; i < o.workers; ++i) {
    // Stable ids (the same every run), as before discovery chose them.
    auto discovery = std::make_unique<runtime::MemoryDiscovery>(
        w->store_, router::mix64(static_cast<uint64_t>(i) + 1));
    const uint64_t id = discovery->instance_id();
    std::shared_ptr<kv::KvEventSink> sink;
    if (wopts.use_router) sink = std::make_shared<runtime::WatcherKvSink>(w->watcher_.get(), id);
    std::shared_ptr<engine::AsyncEngine> engine;
    int64_t blocks = 0;
    if (o.engine == "mock") {
      TURBINE_ASSIGN_OR_RETURN(mock::MockEngineOptions m,
                               mock_engine_options(model, engine_options, o));
      m.kv_event_sink = sink;
      m.instance_id = id;
      m.kv_transfer = engine_options.kv_transfer;  // --prefill-workers: imports fetch with it
      blocks = m.num_blocks;
      engine = std::make_shared<mock::MockEngine>(m);
    } else {
      LocalEngineOptions e = engine_options;
      e.kv_event_sink = sink;
      TURBINE_ASSIGN_OR_RETURN(auto real, make_local_engine(model, e));
      blocks = real->stats().kv_total_blocks;
      engine = std::move(real);
    }
    runtime::ModelCard card;
    card.model_name = model.name();
    card.served_name = served_name;
    card.context_length = engine->max_context();
    card.block_size = engine->block_size();
    card.kv_total_blocks = blocks;
    card.max_num_seqs = engine->num_slots();
    card.tokenizer_location = model_location;
    card.address = "in-process:" + runtime::hex_id(id);
    w->connector_.add(id, engine);
    w->workers_.push_back({std::move(discovery), engine});
    runtime::Discovery& d = *w->workers_.back().discovery;
    TURBINE_RETURN_IF_ERROR(
        d.register_key(runtime::instance_key(ep, id),
                       runtime::to_json(runtime::InstanceRecord{ep, id, card.address})));
    TURBINE_RETURN_IF_ERROR(
        d.register_key(runtime::model_card_key(ep, id), runtime::to_json(card)));
  }
  if (w->watcher_->model_names().empty())
    return internal_error("the in-process workers' model was not announced (see the log)");
  if (wopts.use_router) {
    spdlog::info("router: {} in-process {} workers, mode {}, overlap weight {}, temperature {}{}",
                 o.workers, o.engine, router::router_mode_name(wopts.router.mode),
                 wopts.router.overlap_weight, wopts.router.temperature,
                 wopts.router.use_kv_events ? "" : ", approximate (no KV events)");
  }
  return w;
}

InProcessWorkers::~InProcessWorkers() {
  if (watcher_) watcher_->stop();
  for (auto& w : workers_) w.engine->shutdown();
  for (auto& w : workers_) w.discovery->shutdown();
  if (discovery_) discovery_->shutdown();
  workers_.clear();
  watcher_.reset();
}

}  // namespace turbine::cli
