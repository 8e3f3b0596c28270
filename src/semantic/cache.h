// SemanticCache: responses of earlier requests, answered again for the same or a similar request.
//
// Two tiers, both inside one partition per (tenant, served model) — a hit never crosses tenants
// or models (the semantic router's cross-tenant leak, its #2134, came from soft scoping):
//  1. exact: a 128-bit fingerprint of the canonical request (endpoint, model, every message,
//     the parameters that shape the output);
//  2. semantic: cosine similarity of the last user message's embedding to stored ones, at or
//     above the threshold, AND the same compatibility fingerprint (everything but that last user
//     message: history, system prompt, parameters) AND, with the literal guard, the same numbers
//     and quoted literals ("2+2" vs "2+3" scores ~0.96 with MiniLM and must not hit).
// Entries expire after ttl_seconds; at max_entries the least recently used one goes.
// Each partition's vectors sit in a VectorIndex (exact scan below a size, HNSW above, built aside
// on the cache's IndexBuilder thread).
//
// Thread-safety: every public call may run on any thread. One internal mutex guards the entries
// (exact map, LRU, TTL queue, partitions); the similarity search runs outside it (the index has
// its own short lock and reads a published HNSW graph lock-free), so a lookup never waits for an
// index build or an HNSW insert. A lookup holds the mutex twice for microseconds: the exact tier,
// then the candidates' checks.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "semantic/config.h"
#include "semantic/vector_index.h"

namespace turbine::semantic {

// What is needed to replay a response as a unary body or as a stream (semantic/responses.h).
struct CachedResponse {
  std::string model;          // the served model that produced it
  std::string content;        // assistant message (chat) or completion text
  std::string finish_reason;  // "stop", "length", ...
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
};

// A request's identity for the cache; built by the stage (SemanticStage::process).
struct CacheKey {
  std::string tenant;
  std::string model;   // served model
  std::string exact;   // Fingerprint digest of the whole canonical request
  std::string compat;  // Fingerprint digest of the request minus its last user message
  std::vector<std::string> literals;  // extract_literals(last user message)
};

struct CacheHit {
  CachedResponse response;
  bool exact = false;
  float similarity = 1.0f;
};

struct CacheLookup {
  std::optional<CacheHit> hit;
  // Best cosine among the semantic candidates looked at (hit or not): x-vsr-cache-similarity.
  std::optional<float> best_similarity;
};

struct CacheStats {
  uint64_t exact_hits = 0;
  uint64_t semantic_hits = 0;
  uint64_t misses = 0;
  uint64_t literal_rejections = 0;  // similar enough, but the literals differed
  uint64_t evictions = 0;           // LRU, at max_entries
  uint64_t expirations = 0;         // TTL
  uint64_t entries = 0;
};

class SemanticCache {
 public:
  using Clock = std::function<int64_t()>;  // monotonic milliseconds
  // `executor`: where HNSW graphs are built; empty: the cache's own background thread.
  explicit SemanticCache(const CacheConfig& config, Clock clock = {}, BuildExecutor executor = {});

  // Applies a reloaded config: TTL and max_entries take effect now (evicting if needed); index
  // parameters for partitions created afterwards.
  void reconfigure(const CacheConfig& config);

  // `embedding`: unit vector of the last user message, or null for exact-only. `threshold`: the
  // decision's similarity threshold.
  CacheLookup lookup(const CacheKey& key, const std::vector<float>* embedding, float threshold);
  void insert(const CacheKey& key, const std::vector<float>* embedding, CachedResponse response);
  void clear();
  CacheStats stats() const;
  // Blocks until no index build is queued or running (tests, benchmarks).
  void wait_for_index_builds() { builder_.drain(); }

 private:
  struct Entry {
    uint64_t id = 0;
    std::string partition;
    std::string exact;
    std::string compat;
    std::vector<std::string> literals;
    bool indexed = false;
    CachedResponse response;
    int64_t expires_ms = 0;
  };
  struct Partition {
    // Created at the first embedding (fixes the dimension); shared so that a lookup can search
    // it after releasing mu_ while the partition goes away.
    std::shared_ptr<VectorIndex> index;
    size_t entries = 0;
  };
  using Lru = std::list<Entry>;

  void erase_locked(Lru::iterator it);
  void expire_locked(int64_t now);
  void touch_locked(Lru::iterator it);

  Clock clock_;
  IndexBuilder builder_;  // before the partitions: outlives their indexes' build jobs
  BuildExecutor executor_;
  mutable std::mutex mu_;  // guards everything below
  CacheConfig config_;
  Lru lru_;  // front = most recently used
  std::unordered_map<uint64_t, Lru::iterator> by_id_;
  std::unordered_map<std::string, Lru::iterator> by_exact_;  // partition + exact digest
  std::unordered_map<std::string, Partition> partitions_;
  std::deque<std::pair<int64_t, uint64_t>> expiry_;  // (expires_ms, id), insertion order
  uint64_t next_id_ = 1;
  CacheStats stats_;
};

}  // namespace turbine::semantic
