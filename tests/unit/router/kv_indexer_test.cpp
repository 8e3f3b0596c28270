#include "router/kv_indexer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <numeric>

#include "kv/block_hash.h"
#include "kv/block_pool.h"

namespace turbine::router {
namespace {

constexpr int kBs = 4;

std::vector<int32_t> tokens(std::initializer_list<int> block_starts) {
  // One block of kBs tokens per entry: start, start+1, ...
  std::vector<int32_t> t;
  for (int s : block_starts)
    for (int i = 0; i < kBs; ++i) t.push_back(s + i);
  return t;
}

// A BlockStored for blocks [first, hashes.size()) of a sequence, as a worker would send it.
kv::BlockStored stored(const kv::BlockHashes& h, size_t first, size_t end = SIZE_MAX) {
  kv::BlockStored s;
  if (first > 0) s.parent_hash = h.sequence[first - 1];
  end = std::min(end, h.sequence.size());
  for (size_t i = first; i < end; ++i) s.blocks.push_back({h.sequence[i], h.local[i]});
  s.block_size = kBs;
  return s;
}

std::map<uint64_t, uint32_t> scores(KvIndexer& idx, const std::vector<int32_t>& t) {
  std::map<uint64_t, uint32_t> out;
  for (const WorkerMatch& m : idx.find_matches(kv::block_hashes(t, kBs).local))
    out[m.worker_id] = m.blocks;
  return out;
}

using Scores = std::map<uint64_t, uint32_t>;

TEST(KvIndexerTest, StoreWithParentChainsAndOverlapOnBranchingPrefixes) {
  KvIndexer idx;
  const auto a = tokens({0, 100, 200, 300});  // shared 2-block prefix, then branches
  const auto b = tokens({0, 100, 500, 600});
  const auto ha = kv::block_hashes(a, kBs);
  const auto hb = kv::block_hashes(b, kBs);
  // Worker 1 stores a in two events (the second names its parent); worker 2 stores b.
  EXPECT_TRUE(idx.store(1, stored(ha, 0, 2)));
  EXPECT_TRUE(idx.store(1, stored(ha, 2)));
  EXPECT_TRUE(idx.store(2, stored(hb, 0)));
  EXPECT_EQ(scores(idx, a), (Scores{{1, 4}, {2, 2}}));
  EXPECT_EQ(scores(idx, b), (Scores{{1, 2}, {2, 4}}));
  EXPECT_EQ(scores(idx, tokens({0, 100, 200, 999})), (Scores{{1, 3}, {2, 2}}));
  EXPECT_EQ(scores(idx, tokens({0})), (Scores{{1, 1}, {2, 1}}));
  EXPECT_EQ(scores(idx, tokens({7, 100})), Scores{});
  // Same content at another position is another prefix: no match.
  EXPECT_EQ(scores(idx, tokens({100, 200})), Scores{});
  // Shared nodes: 2 common + 2 + 2 branch nodes.
  EXPECT_EQ(idx.stats().nodes, 6u);
  EXPECT_EQ(idx.stats().indexed_blocks, 8u);
  EXPECT_EQ(idx.worker_blocks(1), 4u);
}

TEST(KvIndexerTest, UnknownParentDropsTheEvent) {
  KvIndexer idx;
  const auto h = kv::block_hashes(tokens({0, 4, 8}), kBs);
  EXPECT_FALSE(idx.store(1, stored(h, 1)));  // parent (block 0) never stored by worker 1
  EXPECT_EQ(idx.stats().dropped_stored, 1u);
  EXPECT_EQ(idx.stats().indexed_blocks, 0u);
}

TEST(KvIndexerTest, RemoveCountsOnlyLeadingBlocksAndPrunes) {
  KvIndexer idx;
  const auto t = tokens({0, 10, 20});
  const auto h = kv::block_hashes(t, kBs);
  idx.store(1, stored(h, 0));
  idx.store(2, stored(h, 0));
  // Worker 1 loses the middle block: it still holds block 0 only as a leading run.
  idx.remove(1, std::vector<uint64_t>{h.sequence[1]});
  EXPECT_EQ(scores(idx, t), (Scores{{1, 1}, {2, 3}}));
  EXPECT_FALSE(idx.holds(1, h.sequence[1]));
  EXPECT_TRUE(idx.holds(1, h.sequence[2]));
  // Unknown hashes are ignored.
  idx.remove(1, std::vector<uint64_t>{12345});
  // Worker 2 removes its leaf: the leaf node still has worker 1.
  idx.remove(2, std::vector<uint64_t>{h.sequence[2]});
  EXPECT_EQ(scores(idx, t), (Scores{{1, 1}, {2, 2}}));
  EXPECT_EQ(idx.stats().nodes, 3u);
  // Worker 1 drops its leaf: the leaf node is pruned.
  idx.remove(1, std::vector<uint64_t>{h.sequence[2]});
  EXPECT_EQ(idx.stats().nodes, 2u);
  idx.remove(2, std::vector<uint64_t>{h.sequence[1], h.sequence[0]});
  idx.remove(1, std::vector<uint64_t>{h.sequence[0]});
  EXPECT_EQ(idx.stats().nodes, 0u);
  EXPECT_EQ(idx.stats().indexed_blocks, 0u);
  EXPECT_EQ(scores(idx, t), Scores{});
}

TEST(KvIndexerTest, ClearAndWorkerRemovalDropAWorkerEverywhere) {
  KvIndexer idx;
  const auto a = tokens({0, 1000, 2000});
  const auto b = tokens({50, 60});
  for (uint64_t w : {1, 2, 3}) idx.store(w, stored(kv::block_hashes(a, kBs), 0));
  idx.store(2, stored(kv::block_hashes(b, kBs), 0));
  kv::KvEvent clear;
  clear.event_id = 0;
  clear.data = kv::AllBlocksCleared{};
  idx.apply(2, clear);
  EXPECT_EQ(scores(idx, a), (Scores{{1, 3}, {3, 3}}));
  EXPECT_EQ(scores(idx, b), Scores{});
  EXPECT_EQ(idx.worker_blocks(2), 0u);
  idx.remove_worker(1);
  EXPECT_EQ(scores(idx, a), (Scores{{3, 3}}));
  EXPECT_EQ(idx.stats().workers, 2u);  // 2 (cleared, still known) and 3
  idx.remove_worker(3);
  EXPECT_EQ(idx.stats().nodes, 0u);
  // A removed worker that comes back starts from nothing.
  idx.store(1, stored(kv::block_hashes(a, kBs), 0, 1));
  EXPECT_EQ(scores(idx, a), (Scores{{1, 1}}));
}

TEST(KvIndexerTest, EventGapsAreCountedAndIndexingGoesOn) {
  KvIndexer idx;
  const auto h = kv::block_hashes(tokens({0, 4}), kBs);
  kv::KvEvent e0{kv::kKvEventsVersion, 0, stored(h, 0, 1)};
  kv::KvEvent e5{kv::kKvEventsVersion, 5, stored(h, 1)};
  idx.apply(9, e0);
  idx.apply(9, e5);
  EXPECT_EQ(idx.stats().event_gaps, 1u);
  EXPECT_EQ(idx.stats().events, 2u);
  EXPECT_EQ(scores(idx, tokens({0, 4})), (Scores{{9, 2}}));
  kv::KvEvent e6{kv::kKvEventsVersion, 6, kv::BlockRemoved{{h.sequence[1]}}};
  idx.apply(9, e6);
  EXPECT_EQ(idx.stats().event_gaps, 1u);
  kv::KvEvent wrong{kv::kKvTierEventsVersion + 1, 7, kv::AllBlocksCleared{}};
  idx.apply(9, wrong);
  EXPECT_EQ(idx.stats().unknown_version, 1u);
  EXPECT_EQ(scores(idx, tokens({0, 4})), (Scores{{9, 1}}));
}

// The real block pool's events keep the index equal to the pool's cache, through evictions.
TEST(KvIndexerTest, FollowsARealBlockPool) {
  auto sink = std::make_shared<kv::InProcessKvEventSink>();
  kv::BlockPool pool(6, kBs, true, sink);
  KvIndexer idx;
  auto run = [&](const std::vector<int32_t>& t) {
    const auto h = kv::block_hashes(t, kBs);
    std::vector<kv::BlockRef> table = pool.match_prefix(h.sequence);
    const size_t hit = table.size();
    auto fresh = pool.allocate(static_cast<int>(h.sequence.size() - hit));
    ASSERT_TRUE(fresh);
    for (auto& b : *fresh) table.push_back(std::move(b));
    pool.cache_full_blocks(table, hit, h, t);
    kv::BlockPool::release(table);
    for (const auto& e : sink->take()) idx.apply(7, e);
  };
  run(tokens({0, 4, 8}));
  run(tokens({0, 4, 100}));  // shares 2 blocks, adds 1
  EXPECT_EQ(scores(idx, tokens({0, 4, 8})), (Scores{{7, 3}}));
  EXPECT_EQ(scores(idx, tokens({0, 4, 100})), (Scores{{7, 3}}));
  run(tokens({500, 504, 508}));  // 6 blocks: evicts 2 LRU leaves (8 and 100 chains)
  EXPECT_EQ(idx.stats().indexed_blocks, static_cast<size_t>(pool.stats().cached));
  EXPECT_EQ(scores(idx, tokens({500, 504, 508})), (Scores{{7, 3}}));
  for (const auto& t : {tokens({0, 4, 8}), tokens({0, 4, 100})}) {
    const auto h = kv::block_hashes(t, kBs);
    size_t cached = 0;
    while (cached < h.sequence.size() &&
           pool.match_prefix(std::span(h.sequence).subspan(cached, 1)).size() == 1)
      ++cached;
    const auto s = scores(idx, t);
    EXPECT_EQ(s.empty() ? 0u : s.at(7), cached);
  }
  EXPECT_EQ(idx.stats().event_gaps, 0u);
}

}  // namespace
}  // namespace turbine::router
