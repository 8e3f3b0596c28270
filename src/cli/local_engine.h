// Builds the in-process engine (backend + engine thread) from a loaded model; shared by the
// subcommands that run a model (`run`, and `worker` with the distributed runtime).
#pragma once

#include <cstdint>
#include <memory>

#include "common/status.h"
#include "engine/engine.h"
#include "model/model.h"

namespace turbine::cli {

struct LocalEngineOptions {
  int max_model_len = 0;  // 0: the model's context
  int max_num_seqs = 16;
  int max_num_batched_tokens = 2048;
  int block_size = 16;
  int64_t kv_cache_memory = 0;  // bytes; 0: the backend's default budget
  bool enable_prefix_caching = true;
  int threads = 0;  // CPU backend threads; 0: all cores
  int32_t eos_token_id = -1;
  std::shared_ptr<kv::KvEventSink> kv_event_sink;  // null: no KV events
};

Result<std::unique_ptr<engine::Engine>> make_local_engine(const model::Model& model,
                                                          const LocalEngineOptions& options);

}  // namespace turbine::cli
