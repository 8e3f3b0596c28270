#include "kv/block_pool.h"

#include <gtest/gtest.h>

#include <numeric>

namespace turbine::kv {
namespace {

std::vector<int32_t> iota_tokens(int n, int start) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  std::iota(t.begin(), t.end(), start);
  return t;
}

std::vector<int> ids(const std::vector<BlockRef>& refs) {
  std::vector<int> out;
  for (const auto& r : refs) out.push_back(r.id());
  return out;
}

// What a scheduler does for one request: reuse the cached prefix, allocate the rest, compute,
// register the full blocks.
std::vector<BlockRef> run_request(BlockPool& pool, const std::vector<int32_t>& tokens) {
  const BlockHashes h = block_hashes(tokens, pool.block_size());
  std::vector<BlockRef> table = pool.match_prefix(h.sequence);
  const size_t hit = table.size();
  const int need = static_cast<int>((tokens.size() + static_cast<size_t>(pool.block_size()) - 1) /
                                    static_cast<size_t>(pool.block_size())) -
                   static_cast<int>(table.size());
  auto fresh = pool.allocate(need);
  EXPECT_TRUE(fresh.has_value());
  for (auto& b : *fresh) table.push_back(std::move(b));
  pool.cache_full_blocks(table, hit, h, tokens);
  return table;
}

TEST(BlockPoolTest, RefCountsAndAllOrNothingAllocation) {
  BlockPool pool(4, 2, true);
  EXPECT_EQ(pool.num_free(), 4);
  auto a = pool.allocate(3);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(ids(*a), (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(pool.num_free(), 1);
  EXPECT_FALSE(pool.allocate(2).has_value());  // nothing taken on failure
  EXPECT_EQ(pool.num_free(), 1);
  BlockRef moved = std::move((*a)[0]);
  EXPECT_FALSE((*a)[0].valid());
  EXPECT_EQ(moved.id(), 0);
  BlockPool::release(*a);
  EXPECT_TRUE(a->empty());
  EXPECT_EQ(pool.num_free(), 3);
  moved.reset();
  EXPECT_EQ(pool.num_free(), 4);
  EXPECT_EQ(pool.stats().used, 0);
  EXPECT_FALSE(pool.allocate(-1).has_value());
  EXPECT_FALSE(pool.allocate(5).has_value());
}

TEST(BlockPoolTest, SharedPrefixBlocksAreReferencedTwice) {
  BlockPool pool(8, 4, true);
  const auto tokens = iota_tokens(10, 0);  // 2 full blocks + 2 tokens
  auto first = run_request(pool, tokens);
  EXPECT_EQ(pool.stats().cached, 2);
  const BlockHashes h = block_hashes(tokens, 4);
  auto hit = pool.match_prefix(h.sequence);
  EXPECT_EQ(ids(hit), (std::vector<int>{first[0].id(), first[1].id()}));
  BlockPool::release(first);
  EXPECT_EQ(pool.stats().used, 2);  // still held by `hit`
  BlockPool::release(hit);
  EXPECT_EQ(pool.stats().used, 0);
  EXPECT_EQ(pool.stats().cached, 2);  // evictable, still cached
  BlockPool off(8, 4, false);
  auto t = run_request(off, tokens);
  EXPECT_TRUE(off.match_prefix(h.sequence).empty());
  EXPECT_EQ(off.stats().cached, 0);
}

TEST(BlockPoolTest, EventStreamForScriptedRequests) {
  auto sink = std::make_shared<InProcessKvEventSink>();
  BlockPool pool(4, 2, true, sink);
  const std::vector<int32_t> a = {1, 2, 3, 4, 5};     // blocks [1 2] [3 4] + partial [5]
  const std::vector<int32_t> b = {1, 2, 3, 4, 9, 9};  // shares two blocks, adds [9 9]
  const BlockHashes ha = block_hashes(a, 2), hb = block_hashes(b, 2);

  auto ta = run_request(pool, a);  // blocks 0, 1, 2
  auto tb = run_request(pool, b);  // reuses 0, 1; new block 3 for [9 9]
  BlockPool::release(ta);          // block 2 (uncached partial) free; 0, 1 still used by b
  BlockPool::release(tb);          // 3, 1, 0 become evictable in that order
  auto x = pool.allocate(3);       // takes free block 2, then evicts 3 and 1 (LRU, leaf first)
  ASSERT_TRUE(x.has_value());
  EXPECT_EQ(ids(*x), (std::vector<int>{2, 3, 1}));
  pool.clear_cache();

  std::vector<KvEvent> want;
  want.push_back({kKvEventsVersion, 0,
                  BlockStored{std::nullopt,
                              {{ha.sequence[0], ha.local[0]}, {ha.sequence[1], ha.local[1]}},
                              {1, 2, 3, 4},
                              2}});
  want.push_back({kKvEventsVersion, 1,
                  BlockStored{hb.sequence[1], {{hb.sequence[2], hb.local[2]}}, {9, 9}, 2}});
  want.push_back({kKvEventsVersion, 2, BlockRemoved{{hb.sequence[2], hb.sequence[1]}}});
  want.push_back({kKvEventsVersion, 3, AllBlocksCleared{}});
  EXPECT_EQ(sink->take(), want);
  EXPECT_TRUE(sink->take().empty());
  EXPECT_EQ(pool.stats().cached, 0);
  EXPECT_EQ(pool.stats().evicted, 2u);
}

TEST(BlockPoolTest, LruEvictionOrder) {
  auto sink = std::make_shared<InProcessKvEventSink>();
  BlockPool pool(6, 1, true, sink);
  // Three sequences of two one-token blocks each, finished in the order A, C, B.
  auto ta = run_request(pool, {10, 11});
  auto tb = run_request(pool, {20, 21});
  auto tc = run_request(pool, {30, 31});
  const BlockHashes ha = block_hashes(std::vector<int32_t>{10, 11}, 1);
  const BlockHashes hb = block_hashes(std::vector<int32_t>{20, 21}, 1);
  const BlockHashes hc = block_hashes(std::vector<int32_t>{30, 31}, 1);
  BlockPool::release(ta);
  BlockPool::release(tc);
  BlockPool::release(tb);
  // Touch A's root again: it becomes the most recently used.
  auto again = pool.match_prefix(std::span(ha.sequence).subspan(0, 1));
  ASSERT_EQ(again.size(), 1u);
  BlockPool::release(again);
  (void)sink->take();

  std::vector<uint64_t> evicted;
  std::vector<std::vector<BlockRef>> held;
  for (int i = 0; i < 6; ++i) {
    auto one = pool.allocate(1);
    ASSERT_TRUE(one.has_value());
    held.push_back(std::move(*one));
    for (auto& e : sink->take()) {
      for (uint64_t h : std::get<BlockRemoved>(e.data).block_hashes) evicted.push_back(h);
    }
  }
  // Leaf before root within each sequence; sequences in release order; A's root last.
  EXPECT_EQ(evicted, (std::vector<uint64_t>{ha.sequence[1], hc.sequence[1], hc.sequence[0],
                                            hb.sequence[1], hb.sequence[0], ha.sequence[0]}));
  EXPECT_FALSE(pool.allocate(1).has_value());
}

TEST(BlockPoolTest, DuplicateDataIsNotRegisteredTwice) {
  auto sink = std::make_shared<InProcessKvEventSink>();
  BlockPool pool(4, 2, true, sink);
  const std::vector<int32_t> t = {1, 2};
  const BlockHashes h = block_hashes(t, 2);
  auto a = pool.allocate(1), b = pool.allocate(1);
  pool.cache_full_blocks(*a, 0, h, t);
  pool.cache_full_blocks(*b, 0, h, t);  // computed concurrently: stays a private block
  EXPECT_EQ(sink->take().size(), 1u);
  EXPECT_EQ(pool.stats().cached, 1);
  BlockPool::release(*b);
  EXPECT_EQ(pool.num_free(), 3);
}

}  // namespace
}  // namespace turbine::kv
