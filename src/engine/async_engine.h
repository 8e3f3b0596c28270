// AsyncEngine: the token-in/token-out interface every generator behind the frontend implements.
//
// The local Engine (engine thread + backend), the mock engine (simulated time), a remote worker
// reached over the request plane and the router that spreads requests over many workers are all
// AsyncEngines, so the frontend and the runtime compose them without knowing which is which.
//
// Contract: submit() and cancel() may be called from any thread and never block on the model.
// A request whose submit() returned ok gets its callback called at least once, the last time with
// finish != kNone; callbacks may run on any thread of the implementation and must not block.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "common/status.h"
#include "common/trace.h"
#include "engine/kv_transfer.h"
#include "engine/sampling.h"

namespace turbine::engine {

enum class FinishReason { kNone, kStop, kLength, kCancelled, kError };
const char* finish_reason_name(FinishReason reason);  // "stop", "length", "cancelled", "error"

struct EngineOutput {
  std::vector<SampledToken> tokens;  // new tokens since the last output (usually one)
  FinishReason finish = FinishReason::kNone;
  Status error;  // set when finish == kError
  int prompt_tokens = 0;
  int completion_tokens = 0;  // total so far
  int cached_tokens = 0;      // prompt tokens served from the prefix cache (at first admission)
  // Prefill-only requests (engine/kv_transfer.h): the final output's pinned KV blocks.
  std::shared_ptr<const KvTransferMeta> kv_transfer;
};

using OutputCallback = std::function<void(EngineOutput&&)>;

// Where a request should run, when the caller knows better than the router.
struct RoutingHints {
  uint64_t instance_id = 0;  // 0: the router chooses; otherwise this worker instance (or an error)
};

struct EngineRequest {
  uint64_t id = 0;  // unique among live requests of one AsyncEngine
  std::vector<int32_t> prompt;
  SamplingParams params;
  OutputCallback on_output;
  RoutingHints routing;
  KvDisagg disagg;            // disaggregated serving (engine/kv_transfer.h); default: neither
  trace::TraceContext trace;  // the caller's span (W3C trace context); invalid: not traced
};

struct EngineStats {
  int running = 0;
  int waiting = 0;
  uint64_t steps = 0;
  uint64_t cancelled = 0;
  uint64_t prompt_tokens = 0;
  uint64_t generated_tokens = 0;
  // KV cache (blocks of the backend's block size).
  int kv_total_blocks = 0;
  int kv_used_blocks = 0;  // referenced by running sequences (cached-but-free blocks not counted)
  int kv_block_size = 0;
  // Prefix cache: tokens looked up at admission and tokens found (hit rate = hit / queried).
  uint64_t prefix_cache_queried_tokens = 0;
  uint64_t prefix_cache_hit_tokens = 0;
  uint64_t preemptions = 0;
  // The last step.
  int last_step_batch_size = 0;  // sequences
  int last_step_tokens = 0;
  double last_step_seconds = 0.0;
  // Disaggregated serving (engine/kv_transfer.h). Prefill side: transfers pinned now, blocks they
  // hold (also in kv_used_blocks), and those released by TTL expiry. Decode side: KV imports
  // completed / fallen back to local prefill, blocks fetched vs reused from the local prefix
  // cache, bytes fetched, seconds spent fetching (sum).
  int kv_transfers_pinned = 0;
  int kv_transfer_pinned_blocks = 0;
  uint64_t kv_transfers_expired = 0;
  uint64_t kv_imports = 0;
  uint64_t kv_import_fallbacks = 0;
  uint64_t kv_import_fetched_blocks = 0;
  uint64_t kv_import_reused_blocks = 0;
  uint64_t kv_import_bytes = 0;
  double kv_import_seconds = 0.0;
  // Of the imports above: those copied device to device (CUDA IPC), their bytes and seconds.
  uint64_t kv_device_imports = 0;
  uint64_t kv_import_device_bytes = 0;
  double kv_import_device_seconds = 0.0;
  // Set by the disaggregating orchestrator (disagg::DisaggEngine): requests prefilled on a
  // prefill worker, on the decode worker by policy, and remote prefills that failed over.
  uint64_t disagg_remote_prefills = 0;
  uint64_t disagg_local_prefills = 0;
  uint64_t disagg_prefill_failures = 0;
  // Remote prefills sent and not yet back, and of the prefill pool's requests those waiting for
  // a sequence slot on a prefill worker (the prefill queue).
  int disagg_prefill_inflight = 0;
  int disagg_prefill_queue = 0;
  // Decode side: KV bytes moved per transport (the engine's KvTransfer, plus "cuda_ipc" for
  // device-to-device imports). Local only: not carried in load reports.
  std::vector<KvTransportStats> kv_transports;
};

// Adds w's disaggregation counters (kv_transfers_* .. disagg_*) to `into`: for engines that sum
// their workers' stats.
inline void add_disagg_stats(EngineStats& into, const EngineStats& w) {
  into.kv_transfers_pinned += w.kv_transfers_pinned;
  into.kv_transfer_pinned_blocks += w.kv_transfer_pinned_blocks;
  into.kv_transfers_expired += w.kv_transfers_expired;
  into.kv_imports += w.kv_imports;
  into.kv_import_fallbacks += w.kv_import_fallbacks;
  into.kv_import_fetched_blocks += w.kv_import_fetched_blocks;
  into.kv_import_reused_blocks += w.kv_import_reused_blocks;
  into.kv_import_bytes += w.kv_import_bytes;
  into.kv_import_seconds += w.kv_import_seconds;
  into.kv_device_imports += w.kv_device_imports;
  into.kv_import_device_bytes += w.kv_import_device_bytes;
  into.kv_import_device_seconds += w.kv_import_device_seconds;
  into.disagg_remote_prefills += w.disagg_remote_prefills;
  into.disagg_local_prefills += w.disagg_local_prefills;
  into.disagg_prefill_failures += w.disagg_prefill_failures;
  into.disagg_prefill_inflight += w.disagg_prefill_inflight;
  into.disagg_prefill_queue += w.disagg_prefill_queue;
  add_transport_stats(into.kv_transports, w.kv_transports);
}

class AsyncEngine {
 public:
  virtual ~AsyncEngine() = default;
  // Checks the request (prompt fits the context, parameters valid) and queues it. On success the
  // callback will be called at least once, the last time with finish != kNone.
  virtual Status submit(EngineRequest request) = 0;
  // Stops a request; its callback gets a final output with FinishReason::kCancelled (unless it
  // already finished). Unknown ids are ignored.
  virtual void cancel(uint64_t id) = 0;
  // Ends a request whose output the caller has completed itself (a stop string matched in the
  // detokenized text): as cancel(), but it counts as a finished request, not a cancelled one
  // (EngineStats::cancelled, the cancellation metric), and its final output says kStop.
  // Implementations that do not distinguish the two cancel.
  virtual void stop(uint64_t id) { cancel(id); }
  // Stops generating; requests still running are cancelled. Idempotent.
  virtual void shutdown() = 0;

  virtual EngineStats stats() const = 0;
  virtual int max_context() const = 0;
  virtual int num_slots() const = 0;  // sequences decoded together
  virtual int block_size() const = 0;
};

}  // namespace turbine::engine
