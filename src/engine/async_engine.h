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

#include <algorithm>
#include <cstddef>
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
  // SamplingParams::prompt_logprobs >= 0: on the first output only (whatever preemptions
  // happened), entry i scores prompt token i + 1 (the first prompt token has no score).
  std::vector<SampledToken> prompt_logprobs;
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

// Every counter and gauge of EngineStats, defined once: X(type, name, how), where `how` says how
// accumulate() combines two engines' values: sum, max (the slowest), or first (a property all
// engines share). A new counter is one line here (and its increments); metrics/ exports it.
// (/* */ comments: a line comment would end the macro.)
#define TURBINE_ENGINE_STATS(X)                                                                  \
  /* Sequences running, and waiting (queued, or admitted and fetching imported KV). */           \
  X(int, running, sum)                                                                           \
  X(int, waiting, sum)                                                                           \
  X(uint64_t, steps, sum)                                                                        \
  X(uint64_t, cancelled, sum)                                                                    \
  X(uint64_t, prompt_tokens, sum)                                                                \
  X(uint64_t, generated_tokens, sum)                                                             \
  /* KV cache, in blocks of kv_block_size positions; used = referenced by running sequences      \
     and pinned transfers (cached-but-free blocks not counted). */                               \
  X(int, kv_total_blocks, sum)                                                                   \
  X(int, kv_used_blocks, sum)                                                                    \
  X(int, kv_block_size, first)                                                                   \
  /* Prefix cache: tokens looked up at admission and tokens found (hit rate = hit / queried). */ \
  X(uint64_t, prefix_cache_queried_tokens, sum)                                                  \
  X(uint64_t, prefix_cache_hit_tokens, sum)                                                      \
  X(uint64_t, preemptions, sum)                                                                  \
  /* The last step: sequences, tokens, seconds (modelled seconds on a simulated backend). */     \
  X(int, last_step_batch_size, sum)                                                              \
  X(int, last_step_tokens, sum)                                                                  \
  X(double, last_step_seconds, max)                                                              \
  /* Scheduling for latency targets (issue 29): prefill positions computed (recomputation        \
     included) and those of the last step; admissions from the queue and their summed wait       \
     (first admissions only, seconds as last_step_seconds counts them); the step-time model's    \
     prediction for the last step, steps it was checked against, and the sum of its relative     \
     errors |predicted - measured| / measured (mean = sum / samples). */                         \
  X(uint64_t, prefill_tokens, sum)                                                               \
  X(int, last_step_prefill_tokens, sum)                                                          \
  X(uint64_t, queue_admissions, sum)                                                             \
  X(double, queue_wait_seconds, sum)                                                             \
  X(double, last_step_predicted_seconds, max)                                                    \
  X(uint64_t, step_model_samples, sum)                                                           \
  X(double, step_model_relative_error, sum)                                                      \
  /* Steps allowed past the ITL target to save a request's TTFT (banked ITL time spent). */      \
  X(uint64_t, boosted_steps, sum)                                                                \
  /* Disaggregated serving (engine/kv_transfer.h). Prefill side: transfers pinned now, blocks    \
     they hold (also in kv_used_blocks), and those released by TTL expiry. */                    \
  X(int, kv_transfers_pinned, sum)                                                               \
  X(int, kv_transfer_pinned_blocks, sum)                                                         \
  X(uint64_t, kv_transfers_expired, sum)                                                         \
  /* Decode side: KV imports completed / fallen back to local prefill, blocks fetched vs reused  \
     from the local prefix cache, bytes fetched, seconds spent fetching (sum). */                \
  X(uint64_t, kv_imports, sum)                                                                   \
  X(uint64_t, kv_import_fallbacks, sum)                                                          \
  X(uint64_t, kv_import_fetched_blocks, sum)                                                     \
  X(uint64_t, kv_import_reused_blocks, sum)                                                      \
  /* Of the reused blocks, those onboarded from this worker's own KV tiers (issue 24). */        \
  X(uint64_t, kv_import_tier_blocks, sum)                                                        \
  X(uint64_t, kv_import_bytes, sum)                                                              \
  X(double, kv_import_seconds, sum)                                                              \
  /* Of the imports above: those copied device to device (CUDA IPC), their bytes and seconds. */ \
  X(uint64_t, kv_device_imports, sum)                                                            \
  X(uint64_t, kv_import_device_bytes, sum)                                                       \
  X(double, kv_import_device_seconds, sum)                                                       \
  /* Set by the disaggregating orchestrator (disagg::DisaggEngine): requests prefilled on a      \
     prefill worker, on the decode worker by policy, and remote prefills that failed over;       \
     remote prefills sent and not yet back, and the prefill pool's requests waiting for a        \
     sequence slot on a prefill worker (the prefill queue). */                                   \
  X(uint64_t, disagg_remote_prefills, sum)                                                       \
  X(uint64_t, disagg_local_prefills, sum)                                                        \
  X(uint64_t, disagg_prefill_failures, sum)                                                      \
  X(int, disagg_prefill_inflight, sum)                                                           \
  X(int, disagg_prefill_queue, sum)                                                              \
  /* KV cache tiers (issue 24, kvtier/), per tier: blocks and bytes offloaded into it and        \
     onboarded from it, blocks looked up at admission and found there (hit rate = hit /          \
     lookup), seconds spent reading blocks back, bytes used and budgeted (gauges), corrupt       \
     blocks (checksum mismatch: recomputed) and I/O errors; disk blocks the frequency filter     \
     kept off the disk. Engine side: tier loads finished, loads abandoned after the timeout,     \
     prompt tokens onboarded instead of computed, blocks a load could not return (recomputed);   \
     offers and loads queued. */                                                                 \
  X(uint64_t, kv_tier_host_offloaded_blocks, sum)                                                \
  X(uint64_t, kv_tier_host_offloaded_bytes, sum)                                                 \
  X(uint64_t, kv_tier_host_onboarded_blocks, sum)                                                \
  X(uint64_t, kv_tier_host_onboarded_bytes, sum)                                                 \
  X(uint64_t, kv_tier_host_lookup_blocks, sum)                                                   \
  X(uint64_t, kv_tier_host_hit_blocks, sum)                                                      \
  X(double, kv_tier_host_onboard_seconds, sum)                                                   \
  X(int64_t, kv_tier_host_used_bytes, sum)                                                       \
  X(int64_t, kv_tier_host_capacity_bytes, sum)                                                   \
  X(uint64_t, kv_tier_host_corrupt_blocks, sum)                                                  \
  X(uint64_t, kv_tier_host_errors, sum)                                                          \
  X(uint64_t, kv_tier_disk_offloaded_blocks, sum)                                                \
  X(uint64_t, kv_tier_disk_offloaded_bytes, sum)                                                 \
  X(uint64_t, kv_tier_disk_onboarded_blocks, sum)                                                \
  X(uint64_t, kv_tier_disk_onboarded_bytes, sum)                                                 \
  X(uint64_t, kv_tier_disk_lookup_blocks, sum)                                                   \
  X(uint64_t, kv_tier_disk_hit_blocks, sum)                                                      \
  X(double, kv_tier_disk_onboard_seconds, sum)                                                   \
  X(int64_t, kv_tier_disk_used_bytes, sum)                                                       \
  X(int64_t, kv_tier_disk_capacity_bytes, sum)                                                   \
  X(uint64_t, kv_tier_disk_corrupt_blocks, sum)                                                  \
  X(uint64_t, kv_tier_disk_errors, sum)                                                          \
  X(uint64_t, kv_tier_disk_filtered_blocks, sum)                                                 \
  X(uint64_t, kv_tier_loads, sum)                                                                \
  X(uint64_t, kv_tier_load_timeouts, sum)                                                        \
  X(uint64_t, kv_tier_onboarded_tokens, sum)                                                     \
  X(uint64_t, kv_tier_recomputed_blocks, sum)                                                    \
  X(int64_t, kv_tier_queued_jobs, sum)                                                           \
  /* Asynchronous offload: blocks not copied because the in-flight budget was used up, and the   \
     staging slots out now (copying, or queued for the tier worker). */                          \
  X(uint64_t, kv_tier_offload_dropped_blocks, sum)                                               \
  X(int64_t, kv_tier_offload_inflight_blocks, sum)

struct EngineStats {
#define TURBINE_ENGINE_STATS_FIELD(type, name, how) type name = 0;
  TURBINE_ENGINE_STATS(TURBINE_ENGINE_STATS_FIELD)
#undef TURBINE_ENGINE_STATS_FIELD
  // Decode side: KV bytes moved per transport (the engine's KvTransfer, plus "cuda_ipc" for
  // device-to-device imports). Local only: not carried in load reports.
  std::vector<KvTransportStats> kv_transports;
};

namespace stats_detail {
template <class T>
void combine_sum(T& into, T from) {
  into += from;
}
template <class T>
void combine_max(T& into, T from) {
  into = std::max(into, from);
}
template <class T>
void combine_first(T& into, T from) {
  if (into == T{}) into = from;
}
}  // namespace stats_detail

// Adds `from` to `into` (every field, as TURBINE_ENGINE_STATS says; transports by name): how
// engines over several engines (router, disaggregation) sum their parts.
inline void accumulate(EngineStats& into, const EngineStats& from) {
#define TURBINE_ENGINE_STATS_COMBINE(type, name, how) \
  stats_detail::combine_##how(into.name, from.name);
  TURBINE_ENGINE_STATS(TURBINE_ENGINE_STATS_COMBINE)
#undef TURBINE_ENGINE_STATS_COMBINE
  add_transport_stats(into.kv_transports, from.kv_transports);
}

// One worker's load: what the worker reports of itself (from its EngineStats; the runtime's load
// subject carries these) and what a router estimates from its own decisions
// (router::RoutedEngine). Each side fills its part; the other part stays zero.
struct WorkerLoad {
  uint64_t instance_id = 0;
  // Reported by the worker.
  int running = 0;
  int waiting = 0;
  int kv_used_blocks = 0;
  int kv_total_blocks = 0;
  // Estimated by a router: requests it has in flight there, their decode blocks (unique blocks
  // of active requests), prompt tokens not yet prefilled, blocks its index holds for the worker,
  // and requests routed there so far (migrations included).
  int active_requests = 0;
  double active_decode_blocks = 0;
  double pending_prefill_tokens = 0;
  size_t indexed_blocks = 0;
  uint64_t routed = 0;
  bool operator==(const WorkerLoad&) const = default;
};

// The reported part of a worker's load.
inline WorkerLoad reported_load(uint64_t instance_id, const EngineStats& s) {
  WorkerLoad l;
  l.instance_id = instance_id;
  l.running = s.running;
  l.waiting = s.waiting;
  l.kv_used_blocks = s.kv_used_blocks;
  l.kv_total_blocks = s.kv_total_blocks;
  return l;
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
