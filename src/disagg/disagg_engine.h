// DisaggEngine: disaggregated prefill/decode serving as one AsyncEngine (issue 8), the way NVIDIA
// Dynamo orchestrates it in the frontend, prefill first.
//
// Per request: should_prefill_remotely() decides. Remote: the prompt goes to the prefill pool as a
// prefill-only request (max_tokens 1; engine/kv_transfer.h); its first token is streamed to the
// caller at once, then the decode pool gets prompt + first token with the prefill's KvTransferMeta
// as an import and max/min_tokens reduced by one (as a migration does): the decode worker reuses
// its own prefix cache, fetches only the blocks it lacks and continues. A prefill that fails (no
// prefill worker, worker lost after the router's migrations, error) falls back to a plain request
// on the decode pool, so the caller never sees the prefill side's failures. Local: the request
// goes to the decode pool as is.
//
// Outputs keep the caller's view: one stream, prompt_tokens of the caller's prompt,
// completion_tokens counting the first token. Seeded sampling restarts its RNG on the decode
// worker (as migration does): greedy outputs are identical to aggregated serving, seeded
// non-greedy ones are not.
//
// Threads: every public method may be called from any thread. mu_ guards the request map and is
// never held while calling a pool or a callback; each request's own mutex orders its outputs and
// is held while submitting its next phase (the pools' submit/cancel never wait for callbacks).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <unordered_map>

#include "engine/async_engine.h"

namespace turbine::disagg {

// Conditional disaggregation: prefill remotely when the part of the prompt the decode side does
// not cache is longer than max_local_prefill_length and a prefill worker has room.
bool should_prefill_remotely(int uncached_prompt_tokens, int max_local_prefill_length,
                             bool prefill_capacity_free);

struct DisaggOptions {
  int max_local_prefill_length = 1000;  // tokens; 0: every request with a prefill worker free
  int max_inflight_prefills = 0;        // 0: the prefill pool's num_slots()
  // shutdown() shuts the prefill pool down too; false when the pool outlives this engine (the
  // frontend's per-model pool, kept by the ModelWatcher while the model comes and goes).
  bool owns_prefill = true;
  Status validate() const;
};

struct DisaggStats {
  uint64_t remote_prefills = 0;   // first token from a prefill worker
  uint64_t local_prefills = 0;    // decided local (short prompt, no prefill capacity)
  uint64_t prefill_failures = 0;  // remote prefill failed: served locally instead
  int inflight_prefills = 0;
};

// Tokens of `prompt` the decode pool already holds (e.g. from the router's index); may be null.
using CachedTokensFn = std::function<int(std::span<const int32_t> prompt)>;

class DisaggEngine final : public engine::AsyncEngine {
 public:
  // `transfer` releases the pinned blocks of prefills that are not continued (natural end after
  // the first token, cancel); null: the prefill engine's TTL frees them.
  DisaggEngine(DisaggOptions options, std::shared_ptr<engine::AsyncEngine> prefill,
               std::shared_ptr<engine::AsyncEngine> decode,
               std::shared_ptr<engine::KvTransfer> transfer, CachedTokensFn decode_cached = {});
  ~DisaggEngine() override;

  Status submit(engine::EngineRequest request) override;
  void cancel(uint64_t id) override;
  void stop(uint64_t id) override;  // the decode phase's stop(); a prefill phase is cancelled
  void shutdown() override;         // both pools
  // Sums of both pools (the kv_* fields of each side: pinned on prefill, imports on decode).
  engine::EngineStats stats() const override;
  int max_context() const override;
  int num_slots() const override { return decode_->num_slots(); }
  int block_size() const override { return decode_->block_size(); }

  DisaggStats disagg_stats() const;
  engine::AsyncEngine& prefill_pool() { return *prefill_; }
  engine::AsyncEngine& decode_pool() { return *decode_; }

 private:
  void end_request(uint64_t id, bool stop);
  struct Request;
  void on_prefill_output(const std::shared_ptr<Request>& r, engine::EngineOutput&& out);
  void on_decode_output(const std::shared_ptr<Request>& r, engine::EngineOutput&& out);
  // Submits r's decode phase (import may be null: local prefill). Caller holds r->mu.
  Status submit_decode(const std::shared_ptr<Request>& r,
                       std::shared_ptr<const engine::KvTransferMeta> import);
  void finish(const std::shared_ptr<Request>& r, engine::EngineOutput&& out);  // holds r->mu
  void release(const std::shared_ptr<const engine::KvTransferMeta>& meta);
  bool prefill_capacity_free() const;

  const DisaggOptions options_;
  std::shared_ptr<engine::AsyncEngine> prefill_;
  std::shared_ptr<engine::AsyncEngine> decode_;
  std::shared_ptr<engine::KvTransfer> transfer_;
  CachedTokensFn decode_cached_;
  std::atomic<uint64_t> next_id_{1};

  mutable std::mutex mu_;
  std::unordered_map<uint64_t, std::shared_ptr<Request>> requests_;  // by caller id
  bool stopping_ = false;

  std::atomic<uint64_t> remote_prefills_{0};
  std::atomic<uint64_t> local_prefills_{0};
  std::atomic<uint64_t> prefill_failures_{0};
  std::atomic<int> inflight_prefills_{0};
};

}  // namespace turbine::disagg
