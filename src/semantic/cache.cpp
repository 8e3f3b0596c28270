#include "semantic/cache.h"

#include <chrono>

namespace turbine::semantic {
namespace {

int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Tenant and model are length-prefixed so ("ab","c") and ("a","bc") differ.
std::string partition_key(const CacheKey& k) {
  return std::to_string(k.tenant.size()) + ":" + k.tenant + "|" + k.model;
}

// Semantic candidates examined per lookup before giving up.
constexpr size_t kCandidates = 8;

}  // namespace

SemanticCache::SemanticCache(const CacheConfig& config, Clock clock, BuildExecutor executor)
    : clock_(clock ? std::move(clock) : Clock(steady_ms)),
      executor_(executor ? std::move(executor) : builder_.executor()),
      config_(config) {}

void SemanticCache::reconfigure(const CacheConfig& config) {
  std::lock_guard<std::mutex> lock(mu_);
  config_ = config;
  while (lru_.size() > static_cast<size_t>(config_.max_entries)) {
    erase_locked(std::prev(lru_.end()));
    ++stats_.evictions;
  }
}

void SemanticCache::erase_locked(Lru::iterator it) {
  auto p = partitions_.find(it->partition);
  if (p != partitions_.end()) {
    if (it->indexed && p->second.index) p->second.index->remove(it->id);
    if (--p->second.entries == 0) partitions_.erase(p);
  }
  by_exact_.erase(it->partition + it->exact);
  by_id_.erase(it->id);
  lru_.erase(it);
}

void SemanticCache::expire_locked(int64_t now) {
  while (!expiry_.empty() && expiry_.front().first <= now) {
    auto it = by_id_.find(expiry_.front().second);
    expiry_.pop_front();
    if (it == by_id_.end()) continue;  // already evicted or replaced
    erase_locked(it->second);
    ++stats_.expirations;
  }
}

void SemanticCache::touch_locked(Lru::iterator it) {
  lru_.splice(lru_.begin(), lru_, it);
}

CacheLookup SemanticCache::lookup(const CacheKey& key, const std::vector<float>* embedding,
                                  float threshold) {
  CacheLookup out;
  const std::string part = partition_key(key);
  std::shared_ptr<VectorIndex> index;
  {
    std::lock_guard<std::mutex> lock(mu_);
    int64_t now = clock_();
    expire_locked(now);
    auto ex = by_exact_.find(part + key.exact);
    // (The expiry queue is in insertion order; a TTL shortened by a reload can leave an expired
    // entry behind a live one, so each entry's own deadline is checked as well.)
    if (ex != by_exact_.end() && ex->second->expires_ms <= now) {
      erase_locked(ex->second);
      ++stats_.expirations;
      ex = by_exact_.end();
    }
    if (ex != by_exact_.end()) {
      touch_locked(ex->second);
      ++stats_.exact_hits;
      out.hit = CacheHit{ex->second->response, true, 1.0f};
      out.best_similarity = 1.0f;
      return out;
    }
    auto p = partitions_.find(part);
    if (embedding != nullptr && config_.semantic && p != partitions_.end() && p->second.index &&
        p->second.index->dim() == embedding->size()) {
      index = p->second.index;
    }
    if (!index) {
      ++stats_.misses;
      return out;
    }
  }
  // The search runs without mu_: inserts, evictions and other lookups go on meanwhile. A
  // candidate evicted in between is simply not found below.
  const auto candidates = index->search(embedding->data(), kCandidates);
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t now = clock_();
  bool literal_rejected = false;
  for (const auto& [id, sim] : candidates) {
    if (!out.best_similarity || sim > *out.best_similarity) out.best_similarity = sim;
    if (sim < threshold) break;  // most similar first
    auto it = by_id_.find(id);
    if (it == by_id_.end()) continue;
    const Entry& e = *it->second;
    if (e.partition != part || e.expires_ms <= now || e.compat != key.compat) continue;
    if (config_.literal_guard && e.literals != key.literals) {
      literal_rejected = true;
      continue;
    }
    touch_locked(it->second);
    ++stats_.semantic_hits;
    out.hit = CacheHit{e.response, false, sim};
    return out;
  }
  if (literal_rejected) ++stats_.literal_rejections;
  ++stats_.misses;
  return out;
}

void SemanticCache::insert(const CacheKey& key, const std::vector<float>* embedding,
                           CachedResponse response) {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t now = clock_();
  expire_locked(now);
  std::string part = partition_key(key);
  auto old = by_exact_.find(part + key.exact);
  if (old != by_exact_.end()) erase_locked(old->second);
  while (!lru_.empty() && lru_.size() >= static_cast<size_t>(config_.max_entries)) {
    erase_locked(std::prev(lru_.end()));
    ++stats_.evictions;
  }
  Entry e;
  e.id = next_id_++;
  e.partition = part;
  e.exact = key.exact;
  e.compat = key.compat;
  e.literals = key.literals;
  e.response = std::move(response);
  e.expires_ms = now + config_.ttl_seconds * 1000;
  Partition& p = partitions_[part];
  ++p.entries;
  if (embedding != nullptr && config_.semantic && !embedding->empty()) {
    if (!p.index) {
      p.index = std::make_shared<VectorIndex>(
          embedding->size(), static_cast<size_t>(config_.exact_search_max_entries),
          HnswParams{static_cast<size_t>(config_.hnsw_m),
                     static_cast<size_t>(config_.hnsw_ef_construction),
                     static_cast<size_t>(config_.hnsw_ef_search)},
          executor_);
    }
    // A vector of another dimension (the embedder changed across a reload) stays exact-only.
    // (add() copies a row; a graph build it triggers runs on executor_, not here.)
    if (p.index->dim() == embedding->size()) {
      p.index->add(e.id, embedding->data());
      e.indexed = true;
    }
  }
  expiry_.emplace_back(e.expires_ms, e.id);
  lru_.push_front(std::move(e));
  by_id_[lru_.front().id] = lru_.begin();
  by_exact_[part + key.exact] = lru_.begin();
}

void SemanticCache::clear() {
  std::lock_guard<std::mutex> lock(mu_);
  lru_.clear();
  by_id_.clear();
  by_exact_.clear();
  partitions_.clear();
  expiry_.clear();
}

CacheStats SemanticCache::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  CacheStats s = stats_;
  s.entries = lru_.size();
  return s;
}

}  // namespace turbine::semantic
