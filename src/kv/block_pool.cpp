#include "kv/block_pool.h"

#include <algorithm>

namespace turbine::kv {

void BlockRef::reset() {
  if (pool_ != nullptr) pool_->unref(id_);
  pool_ = nullptr;
  id_ = -1;
}

BlockPool::BlockPool(int num_blocks, int block_size, bool enable_prefix_caching,
                     std::shared_ptr<KvEventSink> sink)
    : block_size_(std::max(1, block_size)),
      prefix_caching_(enable_prefix_caching),
      blocks_(static_cast<size_t>(std::max(0, num_blocks))),
      events_(std::move(sink)) {
  free_.reserve(blocks_.size());
  for (int b = num_blocks - 1; b >= 0; --b) free_.push_back(b);
}

BlockPoolStats BlockPool::stats() const {
  BlockPoolStats s;
  s.total = num_blocks();
  s.used = num_blocks() - num_free();
  s.cached = static_cast<int>(cached_.size());
  s.evicted = evicted_;
  return s;
}

std::vector<BlockRef> BlockPool::match_prefix(std::span<const uint64_t> sequence_hashes) {
  std::vector<BlockRef> out;
  if (!prefix_caching_) return out;
  for (uint64_t h : sequence_hashes) {
    auto it = cached_.find(h);
    if (it == cached_.end()) break;
    Block& b = blocks_[static_cast<size_t>(it->second)];
    if (b.ref++ == 0) evictable_.erase(b.lru);
    out.push_back(BlockRef(this, it->second));
  }
  return out;
}

std::optional<std::vector<BlockRef>> BlockPool::allocate(int n) {
  if (n < 0 || n > num_free()) return std::nullopt;
  std::vector<BlockRef> out;
  out.reserve(static_cast<size_t>(n));
  std::vector<uint64_t> removed;
  for (int i = 0; i < n; ++i) {
    int id;
    if (!free_.empty()) {
      id = free_.back();
      free_.pop_back();
    } else {
      id = evictable_.front();
      evictable_.pop_front();
      if (const Block& b = blocks_[static_cast<size_t>(id)]; record_evictions_ && b.hash)
        evicted_log_.push_back({id, *b.hash, b.local_hash, b.parent_hash});
      uncache(id, removed);
      ++evicted_;
    }
    blocks_[static_cast<size_t>(id)].ref = 1;
    out.push_back(BlockRef(this, id));
  }
  if (!removed.empty()) events_.publish(BlockRemoved{std::move(removed)});
  return out;
}

void BlockPool::uncache(int id, std::vector<uint64_t>& removed) {
  Block& b = blocks_[static_cast<size_t>(id)];
  if (!b.hash) return;
  auto it = cached_.find(*b.hash);
  if (it != cached_.end() && it->second == id) cached_.erase(it);
  removed.push_back(*b.hash);
  b.hash.reset();
}

void BlockPool::cache_full_blocks(std::span<const BlockRef> table, size_t first,
                                  const BlockHashes& h, std::span<const int32_t> tokens) {
  if (!prefix_caching_) return;
  const size_t end = std::min({table.size(), h.sequence.size(), h.local.size(),
                               tokens.size() / static_cast<size_t>(block_size_)});
  const size_t bs = static_cast<size_t>(block_size_);
  BlockStored run;
  auto flush = [&] {
    if (run.blocks.empty()) return;
    run.block_size = block_size_;
    events_.publish(std::move(run));
    run = BlockStored{};
  };
  for (size_t i = first; i < end; ++i) {
    const int id = table[i].id();
    if (!table[i].valid() || id < 0 || id >= num_blocks()) {
      flush();
      continue;
    }
    Block& b = blocks_[static_cast<size_t>(id)];
    const uint64_t hash = h.sequence[i];
    if (b.hash || cached_.count(hash) != 0) {
      flush();  // already registered, or the same data is cached in another block
      continue;
    }
    b.hash = hash;
    b.local_hash = h.local[i];
    b.parent_hash = i > 0 ? std::optional<uint64_t>(h.sequence[i - 1]) : std::nullopt;
    cached_.emplace(hash, id);
    if (record_stores_) stored_log_.push_back({id, hash, b.local_hash, b.parent_hash});
    if (run.blocks.empty() && i > 0) run.parent_hash = h.sequence[i - 1];
    run.blocks.push_back({hash, h.local[i]});
    run.token_ids.insert(run.token_ids.end(), tokens.begin() + static_cast<ptrdiff_t>(i * bs),
                         tokens.begin() + static_cast<ptrdiff_t>((i + 1) * bs));
  }
  flush();
}

void BlockPool::clear_cache() {
  for (int id : evictable_) {
    blocks_[static_cast<size_t>(id)].hash.reset();
    free_.push_back(id);
  }
  evictable_.clear();
  for (Block& b : blocks_) b.hash.reset();
  cached_.clear();
  events_.publish(AllBlocksCleared{});
}

void BlockPool::release(std::vector<BlockRef>& table) {
  while (!table.empty()) table.pop_back();
}

void BlockPool::unref(int id) {
  Block& b = blocks_[static_cast<size_t>(id)];
  if (--b.ref > 0) return;
  if (b.hash) {
    evictable_.push_back(id);
    b.lru = std::prev(evictable_.end());
  } else {
    free_.push_back(id);
  }
}

}  // namespace turbine::kv
