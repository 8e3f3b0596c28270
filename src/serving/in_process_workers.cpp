#include "serving/in_process_workers.h"

#include <spdlog/spdlog.h>

#include "router/flat_map.h"
#include "runtime/component.h"
#include "runtime/model_card.h"

namespace turbine::serving {

uint64_t in_process_worker_id(int i) {
  return router::mix64(static_cast<uint64_t>(i) + 1);
}

uint64_t in_process_prefill_worker_id(int i) {
  return router::mix64(0x70726566ULL + static_cast<uint64_t>(i));
}

Result<std::unique_ptr<InProcessWorkers>> InProcessWorkers::start(
    const InProcessWorkersOptions& o, const WorkerEngineFactory& make_engine, ModelEvents events) {
  if (o.workers < 1) return invalid_argument("--workers must be >= 1", "workers");
  if (!o.use_router && o.workers != 1)
    return invalid_argument("several workers need a router", "workers");
  ModelWatcherOptions wopts;
  wopts.router = o.router;
  TURBINE_RETURN_IF_ERROR(wopts.router.validate());
  wopts.use_router = o.use_router;

  std::unique_ptr<InProcessWorkers> w(new InProcessWorkers());
  w->store_ = runtime::MemoryDiscovery::make_store();
  w->discovery_ = std::make_unique<runtime::MemoryDiscovery>(w->store_);
  w->watcher_ =
      std::make_unique<ModelWatcher>(wopts, *w->discovery_, w->connector_, std::move(events));
  TURBINE_RETURN_IF_ERROR(w->watcher_->start());
  const runtime::EndpointId ep;
  for (int i = 0; i < o.workers; ++i) {
    auto discovery = std::make_unique<runtime::MemoryDiscovery>(w->store_, in_process_worker_id(i));
    const uint64_t id = discovery->instance_id();
    WorkerEngineSpec spec;
    spec.instance_id = id;
    if (wopts.use_router)
      spec.kv_event_sink = std::make_shared<WatcherKvSink>(w->watcher_.get(), id);
    spec.kv_transfer = o.kv_transfer;
    TURBINE_ASSIGN_OR_RETURN(WorkerEngine made, make_engine(spec));
    std::shared_ptr<engine::AsyncEngine> engine = std::move(made.engine);
    runtime::ModelCard card;
    card.model_name = o.model_name;
    card.served_name = o.served_name;
    card.context_length = engine->max_context();
    card.block_size = engine->block_size();
    card.kv_total_blocks = made.kv_total_blocks;
    card.tensor_parallel_size = made.tensor_parallel_size;
    card.max_num_seqs = engine->num_slots();
    card.tokenizer_location = o.model_location;
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
                 o.workers, o.engine_kind, router::router_mode_name(wopts.router.mode),
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

}  // namespace turbine::serving
