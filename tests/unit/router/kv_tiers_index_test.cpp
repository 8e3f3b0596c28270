// Storage tiers in the router's index (issue 24): blocks a worker holds in its host or disk tier
// still count in the leading run, reported apart so the router can weigh them less.
#include <gtest/gtest.h>

#include "kv/block_hash.h"
#include "router/kv_indexer.h"
#include "router/selector.h"

namespace turbine::router {
namespace {

constexpr int kBs = 4;

std::vector<int32_t> tokens(int n_blocks) {
  std::vector<int32_t> t;
  for (int i = 0; i < n_blocks * kBs; ++i) t.push_back(100 + i);
  return t;
}

kv::BlockStored stored(const kv::BlockHashes& h, size_t first, size_t end, uint8_t tier) {
  kv::BlockStored s;
  if (first > 0) s.parent_hash = h.sequence[first - 1];
  for (size_t i = first; i < end; ++i) s.blocks.push_back({h.sequence[i], h.local[i]});
  s.block_size = kBs;
  s.storage_tier = tier;
  return s;
}

WorkerMatch match(KvIndexer& idx, const kv::BlockHashes& h, uint64_t worker) {
  for (const WorkerMatch& m : idx.find_matches(h.local))
    if (m.worker_id == worker) return m;
  return {};
}

TEST(KvTiersIndex, BlocksMoveBetweenTiersAndStayInTheRun) {
  KvIndexer idx;
  const auto h = kv::block_hashes(tokens(4), kBs);
  uint64_t id = 0;
  auto apply = [&](kv::KvEventData d) {
    kv::KvEvent e;
    e.version =
        kv::storage_tier(d) == kv::kStorageDevice ? kv::kKvEventsVersion : kv::kKvTierEventsVersion;
    e.event_id = id++;
    e.data = std::move(d);
    idx.apply(7, e);
  };
  apply(stored(h, 0, 4, kv::kStorageDevice));
  WorkerMatch m = match(idx, h, 7);
  EXPECT_EQ(m.blocks, 4u);
  EXPECT_EQ(m.host_blocks, 0u);
  // Blocks 2 and 3 are evicted from the device after the host tier took them (the tier's event
  // can also come second: see below).
  apply(stored(h, 2, 3, kv::kStorageHost));
  apply(stored(h, 3, 4, kv::kStorageHost));
  apply(kv::BlockRemoved{{h.sequence[2], h.sequence[3]}, kv::kStorageDevice});
  m = match(idx, h, 7);
  EXPECT_EQ(m.blocks, 4u);
  EXPECT_EQ(m.host_blocks, 2u);
  EXPECT_EQ(m.disk_blocks, 0u);
  // Block 3 moves on to disk.
  apply(stored(h, 3, 4, kv::kStorageDisk));
  apply(kv::BlockRemoved{{h.sequence[3]}, kv::kStorageHost});
  m = match(idx, h, 7);
  EXPECT_EQ(m.blocks, 4u);
  EXPECT_EQ(m.host_blocks, 1u);
  EXPECT_EQ(m.disk_blocks, 1u);
  // Block 2 leaves every tier: the run ends before it.
  apply(kv::BlockRemoved{{h.sequence[2]}, kv::kStorageHost});
  m = match(idx, h, 7);
  EXPECT_EQ(m.blocks, 2u);
  EXPECT_EQ(m.host_blocks, 0u);
  EXPECT_EQ(idx.stats().unknown_version, 0u);
}

TEST(KvTiersIndex, TierStoreAfterTheDeviceRemovalReattaches) {
  KvIndexer idx;
  const auto h = kv::block_hashes(tokens(3), kBs);
  idx.store(1, stored(h, 0, 3, kv::kStorageDevice));
  idx.remove(1, std::vector<uint64_t>{h.sequence[2]}, kv::kStorageDevice);  // pruned
  EXPECT_EQ(match(idx, h, 1).blocks, 2u);
  EXPECT_TRUE(idx.store(1, stored(h, 2, 3, kv::kStorageHost)));
  const WorkerMatch m = match(idx, h, 1);
  EXPECT_EQ(m.blocks, 3u);
  EXPECT_EQ(m.host_blocks, 1u);
}

TEST(KvTiersIndex, VersionsBothWays) {
  KvIndexer idx;
  const auto h = kv::block_hashes(tokens(1), kBs);
  kv::KvEvent tier{kv::kKvTierEventsVersion, 0, stored(h, 0, 1, kv::kStorageHost)};
  idx.apply(3, tier);
  EXPECT_EQ(idx.stats().unknown_version, 0u);
  EXPECT_EQ(match(idx, h, 3).host_blocks, 1u);
  kv::KvEvent future{kv::kKvTierEventsVersion + 1, 1, kv::AllBlocksCleared{}};
  idx.apply(3, future);
  EXPECT_EQ(idx.stats().unknown_version, 1u);
  // The publisher stamps device events version 1 (older routers keep reading them), tier
  // events version 2.
  auto sink = std::make_shared<kv::InProcessKvEventSink>();
  kv::KvEventPublisher pub(sink);
  pub.publish(stored(h, 0, 1, kv::kStorageDevice));
  pub.publish(kv::BlockRemoved{{h.sequence[0]}, kv::kStorageDisk});
  const auto events = sink->take();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].version, kv::kKvEventsVersion);
  EXPECT_EQ(events[1].version, kv::kKvTierEventsVersion);
}

// The router's weighing (RoutedEngine: cached = blocks - (1 - w_host) host - (1 - w_disk) disk):
// with Dynamo's weights, 4 blocks on a worker's disk count less than 2 on another's device.
TEST(KvTiersIndex, LowerTierHitsCostMore) {
  Candidate device{1, 2.0};
  Candidate disk{2, 4.0 - (1.0 - 0.25) * 4.0};
  Candidate host{3, 4.0 - (1.0 - 0.75) * 4.0};
  std::vector<Candidate> c{device, disk, host};
  kv_costs(c, 4 * kBs, kBs, 1.0);
  EXPECT_LT(c[2].cost, c[0].cost);  // 3 weighted host blocks beat 2 device blocks
  EXPECT_LT(c[0].cost, c[1].cost);  // 1 weighted disk block loses to 2 device blocks
}

}  // namespace
}  // namespace turbine::router
