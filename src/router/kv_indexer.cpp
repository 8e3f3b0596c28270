#include "router/kv_indexer.h"

#include <algorithm>
#include <variant>

#include <spdlog/spdlog.h>

#include "kv/block_hash.h"

namespace turbine::router {

KvIndexer::KvIndexer() {
  nodes_.emplace_back();  // the root
}

uint32_t KvIndexer::slot_for(uint64_t worker_id) {
  if (const uint32_t* s = slot_of_.find(worker_id)) return *s;
  uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    slot = static_cast<uint32_t>(workers_.size());
    workers_.emplace_back();
    depth_.push_back(0);
    host_run_.push_back(0);
    disk_run_.push_back(0);
  }
  Worker& w = workers_[slot];
  w = Worker{};
  w.id = worker_id;
  w.live = true;
  slot_of_.insert(worker_id, slot);
  return slot;
}

const KvIndexer::Worker* KvIndexer::find_worker(uint64_t worker_id) const {
  const uint32_t* s = slot_of_.find(worker_id);
  return s ? &workers_[*s] : nullptr;
}

uint32_t KvIndexer::new_node(uint32_t parent, uint64_t path_hash) {
  uint32_t id;
  if (!free_nodes_.empty()) {
    id = free_nodes_.back();
    free_nodes_.pop_back();
  } else {
    id = static_cast<uint32_t>(nodes_.size());
    nodes_.emplace_back();
  }
  Node& n = nodes_[id];
  n.path_hash = path_hash;
  n.parent = parent;
  n.n_children = 0;
  n.workers.reset();
  nodes_[parent].n_children++;
  children_.insert(path_hash, id);
  return id;
}

void KvIndexer::apply(uint64_t worker_id, const kv::KvEvent& event) {
  if (event.version < kv::kKvEventsVersion || event.version > kv::kKvTierEventsVersion) {
    if (stats_.unknown_version++ == 0) {
      spdlog::warn("kv indexer: skipping events of version {} (this router speaks {})",
                   event.version, kv::kKvTierEventsVersion);
    }
    return;
  }
  const uint32_t slot = slot_for(worker_id);
  Worker& w = workers_[slot];
  if (w.seen_event && event.event_id != w.next_event_id) {
    stats_.event_gaps++;
    spdlog::warn("kv indexer: worker {:x} event id {} after {}: {} events lost; index may be stale",
                 worker_id, event.event_id, w.next_event_id - 1,
                 event.event_id > w.next_event_id ? event.event_id - w.next_event_id : 0);
  }
  w.seen_event = true;
  w.next_event_id = event.event_id + 1;
  stats_.events++;
  std::visit(
      [&](const auto& data) {
        using T = std::decay_t<decltype(data)>;
        if constexpr (std::is_same_v<T, kv::BlockStored>) {
          store(worker_id, data);
        } else if constexpr (std::is_same_v<T, kv::BlockRemoved>) {
          remove(worker_id, data.block_hashes, data.storage_tier);
        } else {
          clear(worker_id);
        }
      },
      event.data);
}

bool KvIndexer::store(uint64_t worker_id, const kv::BlockStored& stored) {
  return store(worker_id, stored.parent_hash, stored.blocks, stored.storage_tier);
}

bool KvIndexer::store(uint64_t worker_id, std::optional<uint64_t> parent_hash,
                      std::span<const kv::StoredBlock> blocks, uint8_t tier) {
  const uint32_t bit = tier_bit(tier);
  const uint32_t slot = slot_for(worker_id);
  Worker& w = workers_[slot];
  uint32_t node = kRoot;
  if (parent_hash) {
    const uint32_t* p = w.blocks.find(*parent_hash);
    if (p == nullptr) {
      stats_.dropped_stored++;
      return false;
    }
    node = *p;
  }
  // The blocks' path hashes follow from the parent's by hashing alone, so every map slot this
  // event touches can be requested before the first one is needed.
  path_hashes_.resize(blocks.size());
  for (size_t i = 0; i < blocks.size(); ++i) {
    const uint64_t prev = i > 0 ? path_hashes_[i - 1] : node == kRoot ? 0 : nodes_[node].path_hash;
    path_hashes_[i] = i == 0 && node == kRoot ? blocks[i].tokens_hash
                                              : kv::chain_block_hash(prev, blocks[i].tokens_hash);
    children_.prefetch(path_hashes_[i]);
    w.blocks.prefetch(blocks[i].block_hash);
  }
  for (size_t i = 0; i < blocks.size(); ++i) {
    const kv::StoredBlock& b = blocks[i];
    const uint64_t path = path_hashes_[i];
    uint32_t child;
    if (const uint32_t* c = children_.find(path)) {
      child = *c;
    } else {
      child = new_node(node, path);
    }
    auto [where, inserted] = w.blocks.insert(b.block_hash, child);
    if (inserted) {
      nodes_[child].workers.add(slot | bit);
      stats_.stored_blocks++;
    } else if (*where != child) {
      // The same block name under another prefix: the newer event wins.
      const uint32_t old = *where;
      *where = child;
      nodes_[child].workers.add(slot | bit);
      drop_worker_from_node(old, slot);
      prune(old);
    } else {
      // Held already (in another tier): add this one.
      WorkerSet& ws = nodes_[child].workers;
      if (const uint32_t i = ws.find(slot); i < ws.n) ws.at(i) |= bit;
    }
    node = child;
  }
  return true;
}

void KvIndexer::drop_worker_from_node(uint32_t node, uint32_t slot) {
  nodes_[node].workers.remove(slot);
}

void KvIndexer::prune(uint32_t node) {
  while (node != kRoot && nodes_[node].parent != kNone && nodes_[node].workers.empty() &&
         nodes_[node].n_children == 0) {
    Node& n = nodes_[node];
    const uint32_t parent = n.parent;
    children_.erase(n.path_hash);
    nodes_[parent].n_children--;
    n.parent = kNone;  // marks the node free
    n.workers.reset();
    free_nodes_.push_back(node);
    node = parent;
  }
}

void KvIndexer::remove(uint64_t worker_id, std::span<const uint64_t> block_hashes, uint8_t tier) {
  const uint32_t* s = slot_of_.find(worker_id);
  if (s == nullptr) return;
  const uint32_t slot = *s;
  Worker& w = workers_[slot];
  const uint32_t bit = tier_bit(tier);
  for (uint64_t h : block_hashes) {
    const uint32_t* n = w.blocks.find(h);
    if (n == nullptr) continue;
    const uint32_t node = *n;
    WorkerSet& ws = nodes_[node].workers;
    if (const uint32_t i = ws.find(slot); i < ws.n) {
      ws.at(i) &= ~bit;
      if ((ws.at(i) & ~kSlotMask) != 0) continue;  // still held in another tier
    }
    w.blocks.erase(h);
    drop_worker_from_node(node, slot);
    prune(node);
    stats_.removed_blocks++;
  }
}

void KvIndexer::clear_slot(uint32_t slot) {
  Worker& w = workers_[slot];
  std::vector<uint32_t> nodes;
  nodes.reserve(w.blocks.size());
  w.blocks.for_each([&](uint64_t, uint32_t node) { nodes.push_back(node); });
  stats_.removed_blocks += nodes.size();
  w.blocks.clear();
  for (uint32_t n : nodes) drop_worker_from_node(n, slot);
  for (uint32_t n : nodes) prune(n);
}

void KvIndexer::clear(uint64_t worker_id) {
  const uint32_t* s = slot_of_.find(worker_id);
  if (s == nullptr) return;
  stats_.cleared++;
  clear_slot(*s);
}

void KvIndexer::remove_worker(uint64_t worker_id) {
  const uint32_t* s = slot_of_.find(worker_id);
  if (s == nullptr) return;
  const uint32_t slot = *s;
  clear_slot(slot);
  slot_of_.erase(worker_id);
  workers_[slot] = Worker{};
  free_slots_.push_back(slot);
}

std::vector<WorkerMatch> KvIndexer::find_matches(std::span<const uint64_t> local_hashes) {
  std::vector<WorkerMatch> out;
  find_matches(local_hashes, out);
  return out;
}

void KvIndexer::find_matches(std::span<const uint64_t> local_hashes,
                             std::vector<WorkerMatch>& out) {
  // A first block nobody holds (the common miss) costs no hashing of the rest.
  seq_.clear();
  if (local_hashes.empty() || children_.find(local_hashes[0]) == nullptr) {
    out.clear();
    return;
  }
  for (size_t i = 0; i < local_hashes.size(); ++i)
    seq_.push_back(i == 0 ? local_hashes[0] : kv::chain_block_hash(seq_[i - 1], local_hashes[i]));
  find_matches(local_hashes, seq_, out);
}

void KvIndexer::find_matches(std::span<const uint64_t> local_hashes,
                             std::span<const uint64_t> sequence_hashes,
                             std::vector<WorkerMatch>& out) {
  out.clear();
  touched_.clear();
  path_.clear();
  // 1. The nodes of the longest indexed prefix: independent lookups, so their misses overlap.
  const size_t n = std::min(local_hashes.size(), sequence_hashes.size());
  for (size_t d = 0; d < n; ++d) {
    const uint32_t* c = children_.find(sequence_hashes[d]);
    if (c == nullptr) break;
    path_.push_back(*c);
  }
  // 2. Per worker, the depth up to which it holds every block.
  for (size_t d = 0; d < path_.size(); ++d) {
    if (d + 4 < path_.size()) __builtin_prefetch(&nodes_[path_[d + 4]]);
    WorkerSet& ws = nodes_[path_[d]].workers;
    const auto depth = static_cast<uint32_t>(d);
    bool advanced = false;
    for (uint32_t i = 0; i < ws.n; ++i) {
      const uint32_t entry = ws.at(i);
      const uint32_t slot = entry & kSlotMask;
      if (depth_[slot] != depth) continue;  // missed an earlier block (or a duplicate entry)
      depth_[slot] = depth + 1;
      if ((entry & tier_bit(kv::kStorageDevice)) == 0) {
        if ((entry & tier_bit(kv::kStorageHost)) != 0)
          host_run_[slot]++;
        else
          disk_run_[slot]++;
      }
      if (depth == 0) touched_.push_back(slot);
      advanced = true;
    }
    if (!advanced) break;
  }
  out.reserve(touched_.size());
  for (uint32_t slot : touched_) {
    out.push_back({workers_[slot].id, depth_[slot], host_run_[slot], disk_run_[slot]});
    depth_[slot] = 0;
    host_run_[slot] = 0;
    disk_run_[slot] = 0;
  }
}

size_t KvIndexer::worker_blocks(uint64_t worker_id) const {
  const Worker* w = find_worker(worker_id);
  return w ? w->blocks.size() : 0;
}

bool KvIndexer::holds(uint64_t worker_id, uint64_t block_hash) const {
  const Worker* w = find_worker(worker_id);
  return w != nullptr && w->blocks.find(block_hash) != nullptr;
}

IndexerStats KvIndexer::stats() const {
  IndexerStats s = stats_;
  s.nodes = nodes_.size() - 1 - free_nodes_.size();
  s.workers = slot_of_.size();
  for (const Worker& w : workers_) s.indexed_blocks += w.blocks.size();
  return s;
}

size_t KvIndexer::memory_bytes() const {
  size_t bytes = nodes_.capacity() * sizeof(Node) + free_nodes_.capacity() * sizeof(uint32_t) +
                 children_.memory_bytes() + slot_of_.memory_bytes() +
                 workers_.capacity() * sizeof(Worker) + depth_.capacity() * sizeof(uint32_t);
  for (const Node& n : nodes_) bytes += n.workers.more.capacity() * sizeof(uint32_t);
  for (const Worker& w : workers_) bytes += w.blocks.memory_bytes();
  return bytes;
}

}  // namespace turbine::router
