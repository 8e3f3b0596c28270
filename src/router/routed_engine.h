// RoutedEngine: the AsyncEngine the frontend talks to when several workers serve one model. It
// picks a worker per request (KV-cache-aware or a plain policy), forwards the request under its
// own id, tracks each worker's load from the outputs, and migrates requests whose worker is lost.
//
// Workers are any AsyncEngine: in-process Engines/MockEngines (`turbine run --workers N`) or
// remote workers (the distributed runtime adds them with add_worker and feeds on_kv_event from
// the event plane).
//
// Routing (see router/selector.h for the cost): the prompt's full blocks are hashed with the
// workers' block size (kv/block_hash.h local hashes), the KvIndexer gives each worker's cached
// leading blocks, and the cheapest worker wins. Load per worker (kept by the router, not
// reported by workers): active decode blocks = the UNIQUE prompt blocks of its unfinished
// requests (chained block hashes, reference-counted: requests sharing a prefix count its blocks
// once; a partial last block counts once per request), and a candidate's added decode blocks are
// the request's blocks not already active there (as Dynamo's ActiveSequences); pending prefill
// tokens = uncached prompt tokens of its requests whose first token has not come back.
// Without KV events (use_kv_events = false) the router indexes its own decisions with a TTL.
// A request's routing.instance_id (the `x-worker-instance-id` header) overrides the choice;
// an unknown id is kNotFound.
//
// Migration: when a worker ends a request with FinishReason::kError and StatusCode::kUnavailable
// ("worker lost"), or the worker is removed, the request is re-submitted to another worker with
// prompt + the tokens generated so far and max_tokens/min_tokens reduced by them, at most
// migration_limit times; the caller sees one stream (completion_tokens keep counting,
// prompt_tokens and cached_tokens stay those of the original prompt). Sampling restarts its RNG
// on the new worker.
//
// Threads: every public method may be called from any thread. mu_ guards the worker table, the
// indexer, the load counters and the request maps; it is held only for bookkeeping (never while
// calling a worker or a caller's callback). Each request also has its own mutex, taken before
// mu_, that orders the outputs delivered to its caller across a migration. Worker callbacks run
// on the workers' threads; the caller's callback runs on them too.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <span>
#include <unordered_map>
#include <vector>

#include "engine/async_engine.h"
#include "kv/block_hash.h"
#include "kv/protocol.h"
#include "router/approx_indexer.h"
#include "router/flat_map.h"
#include "router/kv_indexer.h"
#include "router/router_observer.h"
#include "router/selector.h"

namespace turbine::router {

struct WorkerInfo {
  uint64_t instance_id = 0;  // non-zero, unique
  int block_size = 0;        // KV block size in tokens (0: ask the engine)
  int64_t kv_total_blocks = 0;
};

struct RouterOptions {
  RouterMode mode = RouterMode::kKv;
  double overlap_weight = 1.0;  // Dynamo's default overlap_score_weight
  // KV tiers (issue 24): a cached block a worker holds only in its host (disk) tier counts as
  // this much of a device block in the overlap (it must be onboarded first); Dynamo's defaults.
  double host_tier_weight = 0.75;
  double disk_tier_weight = 0.25;
  double temperature = 0.0;   // 0: argmin
  bool use_kv_events = true;  // false: approximate index of the router's own decisions
  double approx_ttl_s = 120;
  int migration_limit = 3;
  uint64_t seed = 0x7572626f75746572ULL;
  // Told about every decision, load change, migration and KV event (metrics); may be null.
  std::shared_ptr<RouterObserver> observer;
  // Makes a "route" span per decision under the caller's span; may be null (no tracing).
  std::shared_ptr<trace::Tracer> tracer;

  Status validate() const;
};

// Per worker in RouterStats: the router's estimates and what the worker reports of itself.
using WorkerLoad = engine::WorkerLoad;

struct RouterStats {
  uint64_t decisions = 0;       // workers chosen (migrations included)
  uint64_t overrides = 0;       // decisions made by routing.instance_id
  uint64_t queried_blocks = 0;  // full prompt blocks of routed requests
  uint64_t hit_blocks = 0;      // of those, cached on the chosen worker per the index
  uint64_t migrations = 0;
  uint64_t migration_failures = 0;  // requests ended because no worker was left
  uint64_t kv_events = 0;
  IndexerStats indexer;
  std::vector<WorkerLoad> workers;
};

class RoutedEngine final : public engine::AsyncEngine {
 public:
  explicit RoutedEngine(RouterOptions options);
  ~RoutedEngine() override;
  RoutedEngine(const RoutedEngine&) = delete;
  RoutedEngine& operator=(const RoutedEngine&) = delete;

  void add_worker(WorkerInfo info, std::shared_ptr<engine::AsyncEngine> worker);
  // Drops the worker and its index entries; its in-flight requests migrate.
  void remove_worker(uint64_t instance_id);
  // The worker is leaving (it deregistered to drain): no new request is routed to it, its
  // in-flight requests keep running there (a lost connection still migrates them), and it is
  // dropped when the last one finishes. Adding it again ends the drain (keeping the engine it
  // had, on which its requests run).
  void drain_worker(uint64_t instance_id);
  void on_kv_event(uint64_t instance_id, const kv::KvEvent& event);
  std::vector<uint64_t> worker_ids() const;
  RouterStats router_stats() const;
  // Leading tokens of `prompt` cached on the (non-draining) worker that holds the most of them,
  // per the index (KV events, or the router's own decisions in approximate mode); in whole
  // blocks. The decode side's cached prefix for disaggregation's policy (disagg::CachedTokensFn).
  int cached_prefix_tokens(std::span<const int32_t> prompt);

  Status submit(engine::EngineRequest request) override;
  void cancel(uint64_t id) override;
  void stop(uint64_t id) override;
  void shutdown() override;
  engine::EngineStats stats() const override;
  int max_context() const override;
  int num_slots() const override;
  int block_size() const override;

 private:
  struct Worker {
    WorkerInfo info;
    std::shared_ptr<engine::AsyncEngine> engine;
    int active_requests = 0;
    FlatMap<uint64_t, uint32_t> active_blocks;  // chained block hash -> active requests using it
    int partial_blocks = 0;                     // requests whose last block is not full
    double prefill_tokens = 0;
    uint64_t routed = 0;
    bool draining = false;  // drain_worker: routed nothing new, dropped when idle
    double decode_blocks() const {
      return static_cast<double>(active_blocks.size()) + partial_blocks;
    }
    // Leading blocks of `sequence` active here: a chained hash is active only with all its
    // predecessors, so this is a prefix and binary search finds it.
    size_t active_prefix(std::span<const uint64_t> sequence) const;
  };
  struct Request;
  struct Choice {
    uint64_t worker_id = 0;
    std::shared_ptr<engine::AsyncEngine> engine;
    uint64_t attempt_id = 0;
  };

  // Chooses a worker for `r` (under mu_), records the load, the attempt and the decision.
  Result<Choice> route_locked(Request& r, const kv::BlockHashes& hashes, uint64_t override_id);
  // Submits `r` to a worker, excluding r.excluded; on failure ends the request. Holds r.mu.
  void resubmit(const std::shared_ptr<Request>& r);
  Status submit_attempt(const std::shared_ptr<Request>& r, const Choice& c);
  void on_worker_output(uint64_t attempt_id, engine::EngineOutput&& out);
  // cancel() and stop(): marks the request cancelled (no migration) and tells its worker.
  void end_request(uint64_t id, bool stop);
  void release_load_locked(Request& r);
  // Drops a draining worker without requests left (its engine goes to retired_).
  void retire_if_drained_locked(uint64_t worker_id);
  // Releases the engines of drained workers; never from a worker's callback.
  void release_retired();
  void report_load_locked(uint64_t worker_id, const Worker& w);
  void finish_migration_failure(const std::shared_ptr<Request>& r, engine::FinishReason reason,
                                Status error);
  double now_s() const;

  const RouterOptions options_;
  mutable std::mutex mu_;
  std::map<uint64_t, Worker> workers_;  // ordered: round-robin visits them in id order
  // Engines of drained or replaced workers, released by the next add/drain/remove/shutdown
  // call rather than on the worker callback that ended their last request (an in-process
  // engine joins its own thread when released).
  std::vector<std::shared_ptr<engine::AsyncEngine>> retired_;
  int block_size_ = 0;  // the first worker's; hashes use it
  KvIndexer index_;
  ApproxIndexer approx_;
  std::unordered_map<uint64_t, std::shared_ptr<Request>> requests_;  // by caller id
  std::unordered_map<uint64_t, uint64_t> attempts_;                  // attempt id -> caller id
  // Prompt groups (SamplingParams::prompt_group, the n choices of one prompt) go to one worker,
  // which computes their prompt once: group -> (worker, attempts routed there and not released).
  std::unordered_map<uint64_t, std::pair<uint64_t, int>> groups_;
  uint64_t next_attempt_id_ = 1;
  uint64_t round_robin_ = 0;
  std::mt19937_64 rng_;
  std::vector<WorkerMatch> matches_;  // scratch
  RouterStats stats_;
  bool stopping_ = false;
};

// Feeds one in-process worker's KV events to a router (tagged with the worker's instance id).
// publish() runs on the worker's thread and takes the router's mutex briefly. The router must
// outlive the worker's last event (RoutedEngine::shutdown() stops its workers).
class RouterKvEventSink final : public kv::KvEventSink {
 public:
  RouterKvEventSink(RoutedEngine* router, uint64_t instance_id)
      : router_(router), instance_id_(instance_id) {}
  void publish(kv::KvEvent event) override { router_->on_kv_event(instance_id_, event); }

 private:
  RoutedEngine* router_;
  uint64_t instance_id_;
};

}  // namespace turbine::router
