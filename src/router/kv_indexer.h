// KvIndexer: which worker caches which prefix, from the workers' KV events.
//
// A radix tree whose edges are per-block LOCAL token hashes (kv/block_hash.h local_block_hash,
// the events' `tokens_hash`): the path from the root spells a prefix, so chaining is structural
// and a router finds a request's cached prefix by recomputing the local hashes of its prompt.
// Nodes are found by their path's chained hash (kv::chain_block_hash over the local hashes, i.e.
// the router-side sequence hash) in one flat hash map, so the lookups of a query's blocks do not
// depend on each other and their cache misses overlap.
// Each node holds the set of workers caching that block. Per worker, a map from the engine's
// chained block hash (the events' `block_hash`, opaque here) to the node makes BlockRemoved
// O(1) and gives BlockStored its parent. Layout after NVIDIA Dynamo's RadixTree (facts only).
//
// Semantics:
//  - BlockStored attaches its blocks under the worker's node for parent_hash (the root when
//    absent). A parent the worker does not hold (lost or reordered events) drops the event and
//    counts it in `dropped_stored`: attaching elsewhere would invent a wrong prefix.
//  - BlockRemoved takes the worker off those nodes; AllBlocksCleared and remove_worker take it
//    off every node. Nodes left without workers and children are pruned (and their parents,
//    recursively); a node without workers but with children stays as structure.
//  - find_matches(local hashes) gives, per worker, the number of LEADING blocks it holds.
//  - Event gaps (event_id not the previous + 1) are counted and logged; indexing goes on.
//  - Storage tiers (kv/protocol.h version 2): a worker holds a block in a set of tiers (device,
//    host, disk); BlockStored adds its tier, BlockRemoved takes its tier away, and the block
//    leaves the worker's index when no tier is left. A BlockStored of a lower tier for a block
//    the index still holds (the common case: the device copy is still there) only adds the tier.
//    find_matches counts the leading run over every tier and says how much of it lies below the
//    device, so the router can weigh those blocks less. AllBlocksCleared forgets every tier.
//
// Thread ownership: none. One owner serialises every call (RoutedEngine holds its mutex;
// measured in docs/PERFORMANCE.md).
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "kv/protocol.h"
#include "router/flat_map.h"

namespace turbine::router {

struct WorkerMatch {
  uint64_t worker_id = 0;
  uint32_t blocks = 0;  // leading blocks of the query held by this worker (>= 1), in any tier
  // Of those, blocks held only below the device (issue 24): in the host tier (and maybe on disk),
  // and on disk alone. blocks - host_blocks - disk_blocks are on the device.
  uint32_t host_blocks = 0;
  uint32_t disk_blocks = 0;
};

struct IndexerStats {
  uint64_t events = 0;
  uint64_t event_gaps = 0;      // event_id jumps (events lost upstream)
  uint64_t dropped_stored = 0;  // BlockStored whose parent the worker did not hold
  uint64_t stored_blocks = 0;
  uint64_t removed_blocks = 0;
  uint64_t cleared = 0;
  uint64_t unknown_version = 0;  // events of another kKvEventsVersion, skipped
  size_t nodes = 0;              // tree nodes (root excluded)
  size_t indexed_blocks = 0;     // (worker, block) pairs
  size_t workers = 0;
};

class KvIndexer {
 public:
  KvIndexer();

  // Applies one event of `worker_id` (a worker not seen before is added).
  void apply(uint64_t worker_id, const kv::KvEvent& event);
  // The event kinds, also usable directly (the approximate mode stores its own decisions).
  // store() returns false when the event was dropped (unknown parent).
  bool store(uint64_t worker_id, const kv::BlockStored& stored);
  bool store(uint64_t worker_id, std::optional<uint64_t> parent_hash,
             std::span<const kv::StoredBlock> blocks, uint8_t tier = kv::kStorageDevice);
  void remove(uint64_t worker_id, std::span<const uint64_t> block_hashes,
              uint8_t tier = kv::kStorageDevice);
  void clear(uint64_t worker_id);
  // Forgets the worker entirely (its blocks and its event-id history).
  void remove_worker(uint64_t worker_id);

  // Per worker holding at least the first block: how many leading blocks of `local_hashes` it
  // holds. Workers in no particular order.
  std::vector<WorkerMatch> find_matches(std::span<const uint64_t> local_hashes);
  void find_matches(std::span<const uint64_t> local_hashes, std::vector<WorkerMatch>& out);
  // The same with the chained hashes precomputed (kv::block_hashes(...).sequence, same length).
  void find_matches(std::span<const uint64_t> local_hashes,
                    std::span<const uint64_t> sequence_hashes, std::vector<WorkerMatch>& out);

  // Blocks indexed for a worker (0 when unknown): the tie-breaker "smallest cache".
  size_t worker_blocks(uint64_t worker_id) const;
  bool holds(uint64_t worker_id, uint64_t block_hash) const;
  IndexerStats stats() const;
  // Heap bytes of the index structures (capacity, not just size).
  size_t memory_bytes() const;

 private:
  static constexpr uint32_t kRoot = 0;
  static constexpr uint32_t kNone = UINT32_MAX;

  // An entry of a node's WorkerSet: the worker's slot and, in the top bits, the storage tiers it
  // holds the block in (bit 1 << kv::kStorage*).
  static constexpr uint32_t kTierShift = 29;
  static constexpr uint32_t kSlotMask = (1u << kTierShift) - 1;
  static uint32_t tier_bit(uint8_t tier) { return 1u << (kTierShift + std::min<uint8_t>(tier, 2)); }

  // Worker slots holding a node: the first kInline in the node, the rest on the heap (most
  // nodes are held by one or two workers). Unordered; duplicates possible only if a worker names
  // the same block twice. Entries are slot | tier bits.
  struct WorkerSet {
    static constexpr uint32_t kInline = 3;
    uint32_t n = 0;
    uint32_t inline_slots[kInline] = {};
    std::vector<uint32_t> more;
    void add(uint32_t slot) {
      if (n < kInline) {
        inline_slots[n] = slot;
      } else {
        more.push_back(slot);
      }
      ++n;
    }
    uint32_t& at(uint32_t i) { return i < kInline ? inline_slots[i] : more[i - kInline]; }
    // The index of `slot`'s entry, n when absent.
    uint32_t find(uint32_t slot) {
      for (uint32_t i = 0; i < n; ++i)
        if ((at(i) & kSlotMask) == slot) return i;
      return n;
    }
    void remove(uint32_t slot) {
      for (uint32_t i = 0; i < n; ++i) {
        if ((at(i) & kSlotMask) != slot) continue;
        at(i) = at(n - 1);
        if (n > kInline) more.pop_back();
        --n;
        return;
      }
    }
    bool empty() const { return n == 0; }
    void reset() {
      n = 0;
      std::vector<uint32_t>().swap(more);
    }
  };
  struct Node {
    uint64_t path_hash = 0;  // chained hash of the local hashes from the root
    uint32_t parent = kNone;
    uint32_t n_children = 0;
    WorkerSet workers;
  };
  struct Worker {
    uint64_t id = 0;
    bool live = false;
    bool seen_event = false;
    uint64_t next_event_id = 0;
    FlatMap<uint64_t, uint32_t> blocks;  // chained block hash -> node
  };

  uint32_t slot_for(uint64_t worker_id);  // adds the worker when unknown
  const Worker* find_worker(uint64_t worker_id) const;
  uint32_t new_node(uint32_t parent, uint64_t path_hash);
  void drop_worker_from_node(uint32_t node, uint32_t slot);
  void prune(uint32_t node);
  void clear_slot(uint32_t slot);

  std::vector<Node> nodes_;  // nodes_[0] is the root
  std::vector<uint32_t> free_nodes_;
  FlatMap<uint64_t, uint32_t> children_;  // path hash -> node
  std::vector<Worker> workers_;           // by slot
  std::vector<uint32_t> free_slots_;
  FlatMap<uint64_t, uint32_t> slot_of_;  // worker id -> slot
  std::vector<uint32_t> depth_;          // find_matches scratch, by slot
  std::vector<uint32_t> host_run_;       // find_matches scratch, by slot: run blocks on host
  std::vector<uint32_t> disk_run_;       // find_matches scratch, by slot: run blocks on disk
  std::vector<uint32_t> touched_;        // find_matches scratch
  std::vector<uint32_t> path_;           // find_matches scratch
  std::vector<uint64_t> seq_;            // find_matches scratch
  std::vector<uint64_t> path_hashes_;    // store scratch
  IndexerStats stats_;
};

}  // namespace turbine::router
