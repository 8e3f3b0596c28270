// Approximate KV index for workers that publish no KV events: the router records its own
// decisions ("this worker now caches this request's full prompt blocks") in a KvIndexer and
// forgets them after a TTL (Dynamo's ApproxKvIndexer, default 120 s). Routing the same prefix
// again refreshes its blocks' expiry.
//
// Block names are the router's own chained hashes (kv/block_hash.h), so a prefix is stored as
// one chain from the root. Time is passed in (seconds on any monotonic clock) so tests control
// it. Thread ownership: none; the owner serialises calls (RoutedEngine, under its mutex).
#pragma once

#include <cstdint>
#include <deque>

#include "kv/block_hash.h"
#include "router/flat_map.h"
#include "router/kv_indexer.h"

namespace turbine::router {

class ApproxIndexer {
 public:
  explicit ApproxIndexer(double ttl_s) : ttl_s_(ttl_s) {}

  // `worker_id` will hold the blocks of `hashes` until now_s + ttl.
  void record(KvIndexer& index, uint64_t worker_id, const kv::BlockHashes& hashes, double now_s);
  // Removes from `index` the blocks whose TTL ran out at now_s.
  void expire(KvIndexer& index, double now_s);
  // Forgets a worker's entries (after KvIndexer::remove_worker).
  void remove_worker(uint64_t worker_id);
  size_t tracked() const { return latest_.size(); }

 private:
  struct Key {
    uint64_t worker_id;
    uint64_t block_hash;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    uint64_t operator()(const Key& k) const {
      return mix64(k.block_hash ^ (k.worker_id * 0x9e3779b97f4a7c15ULL));
    }
  };
  struct Entry {
    double expires_s;
    Key key;
  };

  double ttl_s_;
  std::deque<Entry> queue_;               // expiry order (one TTL, so recording order)
  FlatMap<Key, double, KeyHash> latest_;  // the latest expiry of each (worker, block)
};

}  // namespace turbine::router
