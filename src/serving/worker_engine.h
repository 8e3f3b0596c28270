// An engine this process runs as a worker (`turbine run`'s in-process workers and prefill
// pool). The CLI builds it from its flags (CPU or CUDA backend, or the mock engine); serving
// composes it with discovery, routers and disaggregation. The factory hands over typed handles:
// the engine to serve and the same engine as the source of its pinned KV transfers.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "common/status.h"
#include "engine/async_engine.h"
#include "engine/kv_transfer.h"
#include "kv/protocol.h"

namespace turbine::serving {

struct WorkerEngineSpec {
  uint64_t instance_id = 0;                         // stamped into its prefill transfers
  std::shared_ptr<kv::KvEventSink> kv_event_sink;   // null: no KV events
  std::shared_ptr<engine::KvTransfer> kv_transfer;  // imports fetch with it (null: local prefill)
};

struct WorkerEngine {
  std::shared_ptr<engine::AsyncEngine> engine;
  // The same engine as a source of pinned KV transfers (disaggregation); null when it has none.
  std::shared_ptr<engine::KvTransferSource> kv_source;
  int64_t kv_total_blocks = 0;   // for its model card and the router
  int tensor_parallel_size = 1;  // ranks the engine spans, for its model card
};

// Called on the thread that starts the workers, once per worker.
using WorkerEngineFactory = std::function<Result<WorkerEngine>(const WorkerEngineSpec& spec)>;

}  // namespace turbine::serving
