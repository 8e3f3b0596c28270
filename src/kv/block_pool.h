// The paged KV block pool and prefix cache.
//
// A fixed number of equal blocks (block_size token positions each; the backend holds their
// memory, this pool only does the bookkeeping). Sequences hold blocks through move-only BlockRef
// handles (DuckDB BufferHandle style): a block is referenced while any handle to it lives, and a
// block whose last handle goes away becomes free.
//
// Prefix cache: a full block can be registered under its chained sequence hash
// (kv/block_hash.h). A registered block that becomes free stays cached ("evictable") until a
// fresh block is needed; free never-registered blocks are handed out first, then evictable ones
// in LRU order. release() drops a sequence's blocks last-first, so among blocks freed together
// the leaves are evicted before their parents. Store and evict emit KV events (kv/protocol.h).
//
// Thread ownership: one thread (the engine thread) owns the pool and every BlockRef; no locking.
// Invariants: ref == 0 <=> the block is in free_ or in evictable_; a block is in evictable_ iff
// it has a hash and ref == 0; cached_[h] == b <=> blocks_[b].hash == h. Handles must not outlive
// the pool.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <span>
#include <unordered_map>
#include <utility>
#include <vector>

#include "kv/block_hash.h"
#include "kv/protocol.h"

namespace turbine::kv {

class BlockPool;

// A reference to one block; move-only; gives the reference back when destroyed or reset.
class BlockRef {
 public:
  BlockRef() = default;
  BlockRef(BlockRef&& other) noexcept
      : pool_(std::exchange(other.pool_, nullptr)), id_(std::exchange(other.id_, -1)) {}
  BlockRef& operator=(BlockRef&& other) noexcept {
    if (this != &other) {
      reset();
      pool_ = std::exchange(other.pool_, nullptr);
      id_ = std::exchange(other.id_, -1);
    }
    return *this;
  }
  BlockRef(const BlockRef&) = delete;
  BlockRef& operator=(const BlockRef&) = delete;
  ~BlockRef() { reset(); }

  int id() const { return id_; }
  bool valid() const { return pool_ != nullptr; }
  void reset();

 private:
  friend class BlockPool;
  BlockRef(BlockPool* pool, int id) : pool_(pool), id_(id) {}
  BlockPool* pool_ = nullptr;
  int id_ = -1;
};

struct BlockPoolStats {
  int total = 0;         // blocks in the pool
  int used = 0;          // referenced by at least one sequence
  int cached = 0;        // registered in the prefix cache (used or evictable)
  uint64_t evicted = 0;  // cached blocks reused for other data, since start
};

class BlockPool {
 public:
  // num_blocks >= 0, block_size >= 1 (the engine validates its options before building one).
  // `sink` may be null: no events.
  BlockPool(int num_blocks, int block_size, bool enable_prefix_caching,
            std::shared_ptr<KvEventSink> sink = nullptr);
  BlockPool(const BlockPool&) = delete;
  BlockPool& operator=(const BlockPool&) = delete;

  int num_blocks() const { return static_cast<int>(blocks_.size()); }
  int block_size() const { return block_size_; }
  bool prefix_caching() const { return prefix_caching_; }
  // Blocks allocate() can hand out now (free plus evictable).
  int num_free() const { return static_cast<int>(free_.size() + evictable_.size()); }
  BlockPoolStats stats() const;

  // The cached blocks for the longest prefix of `sequence_hashes` (chained hashes of a sequence's
  // full blocks), each with a new reference. Empty when prefix caching is off.
  std::vector<BlockRef> match_prefix(std::span<const uint64_t> sequence_hashes);

  // `n` fresh blocks, all or nothing: nullopt when fewer than n can be had. May evict (one
  // BlockRemoved event for all the blocks evicted by this call).
  std::optional<std::vector<BlockRef>> allocate(int n);

  // Registers table[i] under h.sequence[i] for i in [first, min(table.size(), h.size)); the
  // blocks must hold the tokens h was computed from. Blocks whose hash is already cached (the same
  // data computed twice) stay unregistered. One BlockStored event per run of registered blocks.
  void cache_full_blocks(std::span<const BlockRef> table, size_t first, const BlockHashes& h,
                         std::span<const int32_t> tokens);

  // KV tiers (kvtier/): while on, allocate() records each cached block it evicts (its id and
  // hash) so that the engine can copy its bytes to a lower tier before anything overwrites them
  // (the next forward step); take_evicted() hands them over and forgets them.
  void set_record_evictions(bool on) { record_evictions_ = on; }
  struct Evicted {
    int id = -1;
    uint64_t hash = 0;                    // chained sequence hash
    uint64_t local_hash = 0;              // the block's tokens' local hash (kv/block_hash.h)
    std::optional<uint64_t> parent_hash;  // the previous block's chained hash; none for the first
  };
  std::vector<Evicted> take_evicted() { return std::exchange(evicted_log_, {}); }
  // --kv-offload-all-completed: while on, cache_full_blocks() records each block it registers
  // (same fields as Evicted) so that the engine copies every completed block to the tiers once,
  // not only those evicted later; take_stored() hands them over and forgets them.
  void set_record_stores(bool on) { record_stores_ = on; }
  std::vector<Evicted> take_stored() { return std::exchange(stored_log_, {}); }
  // Publishes an event of this worker (a lower tier's), numbered with the pool's own events.
  void publish_event(KvEventData data) { events_.publish(std::move(data)); }

  // Forgets every cached hash (blocks in use stay in use); emits AllBlocksCleared.
  void clear_cache();

  // Drops a sequence's references last block first (see the LRU note above) and empties `table`.
  static void release(std::vector<BlockRef>& table);

 private:
  friend class BlockRef;
  void unref(int id);
  void uncache(int id, std::vector<uint64_t>& removed);

  struct Block {
    int ref = 0;
    std::optional<uint64_t> hash;
    uint64_t local_hash = 0;              // with hash: for the KV tiers' events
    std::optional<uint64_t> parent_hash;  // with hash
    std::list<int>::iterator lru;         // valid while in evictable_
  };

  const int block_size_;
  const bool prefix_caching_;
  std::vector<Block> blocks_;
  std::vector<int> free_;     // unregistered, ref 0; a stack (lowest ids handed out first)
  std::list<int> evictable_;  // registered, ref 0; front = least recently used
  std::unordered_map<uint64_t, int> cached_;  // sequence hash -> block
  KvEventPublisher events_;
  uint64_t evicted_ = 0;
  bool record_evictions_ = false;
  std::vector<Evicted> evicted_log_;  // see take_evicted()
  bool record_stores_ = false;
  std::vector<Evicted> stored_log_;  // see take_stored()
};

}  // namespace turbine::kv
