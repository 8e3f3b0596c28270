#include "router/approx_indexer.h"

#include <algorithm>
#include <vector>

namespace turbine::router {

void ApproxIndexer::record(KvIndexer& index, uint64_t worker_id, const kv::BlockHashes& hashes,
                           double now_s) {
  const size_t n = std::min(hashes.local.size(), hashes.sequence.size());
  if (n == 0) return;
  std::vector<kv::StoredBlock> blocks(n);
  for (size_t i = 0; i < n; ++i) blocks[i] = {hashes.sequence[i], hashes.local[i]};
  index.store(worker_id, std::nullopt, blocks);
  const double expires = now_s + ttl_s_;
  for (size_t i = 0; i < n; ++i) {
    const Key key{worker_id, hashes.sequence[i]};
    auto [where, inserted] = latest_.insert(key, expires);
    if (!inserted) *where = expires;
    queue_.push_back({expires, key});
  }
}

void ApproxIndexer::expire(KvIndexer& index, double now_s) {
  while (!queue_.empty() && queue_.front().expires_s <= now_s) {
    const Entry e = queue_.front();
    queue_.pop_front();
    const double* latest = latest_.find(e.key);
    if (latest == nullptr || *latest != e.expires_s) continue;  // refreshed later, or gone
    latest_.erase(e.key);
    const uint64_t h = e.key.block_hash;
    index.remove(e.key.worker_id, std::span<const uint64_t>(&h, 1));
  }
}

void ApproxIndexer::remove_worker(uint64_t worker_id) {
  std::vector<Key> keys;
  latest_.for_each([&](const Key& k, double) {
    if (k.worker_id == worker_id) keys.push_back(k);
  });
  for (const Key& k : keys) latest_.erase(k);
}

}  // namespace turbine::router
