#include "serving/disagg_composition.h"

#include <spdlog/spdlog.h>

#include "serving/in_process_workers.h"

namespace turbine::serving {

disagg::CachedTokensFn decode_cached_tokens(std::shared_ptr<router::RoutedEngine> decode) {
  if (!decode) return {};
  // The DisaggEngine holds the decode pool too, so the router outlives its requests; the function
  // keeps its own reference all the same.
  return [decode = std::move(decode)](std::span<const int32_t> prompt) {
    return decode->cached_prefix_tokens(prompt);
  };
}

decltype(ModelWatcherOptions::disaggregate) discovered_disaggregation(
    disagg::DisaggOptions options, std::shared_ptr<engine::KvTransfer> transfer) {
  options.owns_prefill = false;  // the watcher's per-model prefill pool survives the model going
  return
      [options, transfer = std::move(transfer)](
          const runtime::ModelCard&, std::shared_ptr<router::RoutedEngine> decode,
          std::shared_ptr<router::RoutedEngine> prefill) -> std::shared_ptr<engine::AsyncEngine> {
        auto cached = decode_cached_tokens(decode);
        return std::make_shared<disagg::DisaggEngine>(
            options, std::move(prefill), std::move(decode), transfer, std::move(cached));
      };
}

Result<std::unique_ptr<InProcessPrefillPool>> InProcessPrefillPool::start(
    const InProcessPrefillOptions& options, const WorkerEngineFactory& make_engine) {
  if (options.prefill_workers < 1) return invalid_argument("--prefill-workers must be >= 1");
  TURBINE_RETURN_IF_ERROR(options.disagg.validate());
  std::unique_ptr<InProcessPrefillPool> p(new InProcessPrefillPool());
  p->options_ = options;
  p->transfer_ = std::make_shared<disagg::InProcessKvTransfer>();
  p->pool_ = std::make_shared<router::RoutedEngine>(router::RouterOptions{});
  for (int i = 0; i < options.prefill_workers; ++i) {
    WorkerEngineSpec spec;
    spec.instance_id = in_process_prefill_worker_id(i);
    spec.kv_event_sink =
        std::make_shared<router::RouterKvEventSink>(p->pool_.get(), spec.instance_id);
    TURBINE_ASSIGN_OR_RETURN(WorkerEngine made, make_engine(spec));
    if (!made.kv_source)
      return invalid_argument("a prefill worker's engine must serve KV transfers");
    p->transfer_->add_source(spec.instance_id, made.kv_source);
    p->pool_->add_worker({spec.instance_id, made.engine->block_size(), made.kv_total_blocks},
                         made.engine);
  }
  spdlog::info(
      "disaggregated serving: {} in-process {} prefill workers, in-process KV transfer, max local "
      "prefill length {}",
      options.prefill_workers, options.description, options.disagg.max_local_prefill_length);
  return p;
}

InProcessPrefillPool::~InProcessPrefillPool() {
  if (pool_) pool_->shutdown();
}

ModelEvents InProcessPrefillPool::wrap(ModelEvents events) {
  ModelEvents out = events;
  out.added = [this, added = std::move(events.added)](const runtime::ModelCard& card,
                                                      ModelEngine decode) -> Status {
    auto cached = decode_cached_tokens(decode.router);
    auto served = std::make_shared<disagg::DisaggEngine>(options_.disagg, pool_, decode.engine,
                                                         transfer_, std::move(cached));
    return added(card, {std::move(served), std::move(decode.router)});
  };
  return out;
}

}  // namespace turbine::serving
