#include "cli/local_engine.h"

#include <spdlog/spdlog.h>

#include "engine/backend.h"

namespace turbine::cli {

Result<std::unique_ptr<engine::Engine>> make_local_engine(const model::Model& model,
                                                          const LocalEngineOptions& opts) {
  engine::CpuBackendOptions bopts;
  bopts.n_threads = opts.threads;
  bopts.max_num_seqs = opts.max_num_seqs;
  bopts.max_context = opts.max_model_len;
  bopts.block_size = opts.block_size;
  bopts.kv_cache_memory_bytes = opts.kv_cache_memory;
  TURBINE_ASSIGN_OR_RETURN(auto backend, engine::make_cpu_backend(model, bopts));
  spdlog::info("KV cache: {} blocks of {} positions, prefix caching {}", backend->num_blocks(),
               backend->block_size(), opts.enable_prefix_caching ? "on" : "off");
  engine::EngineOptions eopts;
  eopts.max_num_batched_tokens = opts.max_num_batched_tokens;
  eopts.max_num_seqs = opts.max_num_seqs;
  eopts.enable_prefix_caching = opts.enable_prefix_caching;
  eopts.kv_event_sink = opts.kv_event_sink;
  if (opts.eos_token_id >= 0) eopts.eos_token_ids.push_back(opts.eos_token_id);
  TURBINE_RETURN_IF_ERROR(eopts.validate());
  return std::make_unique<engine::Engine>(std::move(backend), model.config().n_vocab, eopts);
}

}  // namespace turbine::cli
