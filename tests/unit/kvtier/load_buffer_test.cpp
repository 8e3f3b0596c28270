// The load path's buffers and copies (issue 24): pooled load buffers (reused, bounded, safe to
// outlive their pool), the one-pass checksummed copy, and the TierManager's use of both; the
// dedupe query the engine asks before it copies blocks out.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "kvtier/load_buffer.h"
#include "kvtier/tier.h"
#include "kvtier/tier_manager.h"

namespace turbine::kvtier {
namespace {

constexpr int64_t kBlock = 1000;

std::string bytes_of(uint64_t seed, size_t n) {
  std::string b(n, '\0');
  std::mt19937_64 rng(seed);
  for (char& c : b) c = static_cast<char>(rng());
  return b;
}

std::span<const uint8_t> u8(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

TEST(ChecksumCopier, CopiesAndMatchesTheOneShotChecksum) {
  ChecksumCopier c;
  // Empty, tiny, one piece, several pieces with a tail, and a 2 MiB block.
  for (size_t n :
       {size_t{0}, size_t{1}, size_t{1000}, size_t{(64 << 10) * 3 + 17}, size_t{2} << 20}) {
    const std::string src = bytes_of(n + 1, n);
    std::string dst(n, '\0');
    const uint64_t sum = c.copy(u8(src), {reinterpret_cast<uint8_t*>(dst.data()), n});
    EXPECT_EQ(dst, src) << n;
    EXPECT_EQ(sum, block_checksum(u8(src))) << n;
  }
  // A different byte gives a different checksum (the copier's state is reset per copy).
  std::string a = bytes_of(5, 4096), b = a;
  b[4000] ^= 1;
  std::string out(4096, '\0');
  const uint64_t sa = c.copy(u8(a), {reinterpret_cast<uint8_t*>(out.data()), out.size()});
  const uint64_t sb = c.copy(u8(b), {reinterpret_cast<uint8_t*>(out.data()), out.size()});
  EXPECT_NE(sa, sb);
  EXPECT_EQ(sa, block_checksum(u8(a)));
}

TEST(LoadBufferPool, ReusesFreeBuffersWithinItsBudget) {
  auto pool = std::make_shared<LoadBufferPool>(10000);
  const uint8_t* first = nullptr;
  {
    LoadBuffer b = pool->take(3000);
    ASSERT_EQ(b.size(), 3000u);
    EXPECT_GE(b.capacity(), 3000u);
    first = b.data();
    b.data()[2999] = 7;
  }  // back to the pool
  EXPECT_EQ(pool->stats().allocations, 1u);
  EXPECT_GE(pool->stats().retained_bytes, 3000u);
  {
    LoadBuffer b = pool->take(2000);  // the free 3000-byte buffer fits
    EXPECT_EQ(b.data(), first);
    EXPECT_EQ(b.size(), 2000u);
    b.truncate(500);
    EXPECT_EQ(b.size(), 500u);
    b.truncate(900);  // never grows
    EXPECT_EQ(b.size(), 500u);
    EXPECT_EQ(pool->stats().retained_bytes, 0u);
    LoadBuffer c = pool->take(2000);  // nothing free: new memory
    EXPECT_NE(c.data(), first);
    LoadBuffer moved = std::move(c);
    EXPECT_EQ(c.data(), nullptr);  // NOLINT(bugprone-use-after-move): moved-from is empty
    EXPECT_EQ(moved.size(), 2000u);
  }
  LoadBufferPool::Stats s = pool->stats();
  EXPECT_EQ(s.allocations, 2u);
  EXPECT_EQ(s.reuses, 1u);
  EXPECT_LE(s.retained_bytes, 10000u);
  // Larger than the budget: never kept.
  { LoadBuffer big = pool->take(20000); }
  EXPECT_LE(pool->stats().retained_bytes, 10000u);
  {
    LoadBuffer big = pool->take(20000);
    EXPECT_EQ(pool->stats().allocations, 4u);
  }
  // A larger buffer pushes smaller free ones out rather than being dropped.
  { LoadBuffer b = pool->take(9000); }
  s = pool->stats();
  EXPECT_GE(s.retained_bytes, 9000u);
  EXPECT_LE(s.retained_bytes, 10000u);
  // A buffer that outlives its pool frees its own memory (ASan checks the rest).
  LoadBuffer orphan = pool->take(100);
  pool.reset();
  orphan.data()[99] = 1;
  orphan.reset();
  EXPECT_EQ(orphan.size(), 0u);
}

TEST(TierManager, LoadsReusePooledBuffers) {
  TierOptions o;
  o.host_bytes = 16 * 1024;
  auto m = TierManager::create(o, kBlock);
  ASSERT_TRUE(m.has_value()) << m.status().to_string();
  TierManager& t = **m;
  std::string all;
  for (uint64_t h = 1; h <= 4; ++h) all += bytes_of(h, kBlock);
  t.offer({1, 2, 3, 4}, all);
  t.drain();
  for (int round = 0; round < 3; ++round) {
    t.onboard(100 + round, {1, 2, 3, 4});
    t.drain();
    auto loads = t.take_loads();
    ASSERT_EQ(loads.size(), 1u);
    EXPECT_EQ(loads[0].n_ok, 4);
    EXPECT_EQ(loads[0].bytes.view(), all) << "round " << round;
  }  // each round's buffer goes back before the next load
  const TierStats s = t.stats();
  EXPECT_EQ(s.load_buffer_allocations, 1u);
  EXPECT_EQ(s.load_buffer_reuses, 2u);
  // A short load (block 9 was never offered) returns only the blocks read.
  t.onboard(7, {1, 2, 9});
  t.drain();
  auto loads = t.take_loads();
  ASSERT_EQ(loads.size(), 1u);
  EXPECT_EQ(loads[0].n_ok, 2);
  EXPECT_EQ(loads[0].bytes.view(), all.substr(0, 2 * kBlock));
}

TEST(TierManager, HoldsAnswersWithoutCounting) {
  TierOptions o;
  o.host_bytes = 4 * 1024;
  auto m = TierManager::create(o, kBlock);
  ASSERT_TRUE(m.has_value()) << m.status().to_string();
  TierManager& t = **m;
  t.offer({1, 2}, bytes_of(1, kBlock) + bytes_of(2, kBlock));
  // Indexed at once: an offer on its way counts as held (the engine does not copy it again).
  const std::vector<uint64_t> q{1, 3, 2};
  EXPECT_EQ(t.holds(q), (std::vector<bool>{true, false, true}));
  t.drain();
  EXPECT_EQ(t.holds(q), (std::vector<bool>{true, false, true}));
  const TierStats s = t.stats();
  EXPECT_EQ(s.host.lookups, 0u);
  EXPECT_EQ(s.offered_blocks, 2u);
}

}  // namespace
}  // namespace turbine::kvtier
