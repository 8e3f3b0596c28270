// Asynchronous offload's side of the tiers (issue 24): staging slots within the in-flight budget,
// staged offers adopted by the host tier without a copy (its free slot becomes the staging slot),
// budget exhaustion while the worker is behind, and the disk-only path that gives slots back.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <random>
#include <set>

#include "kvtier/host_pool.h"
#include "kvtier/tier_manager.h"

namespace turbine::kvtier {
namespace {

constexpr int64_t kBlock = 1000;  // not a multiple of 64 on purpose

void fill(uint8_t* p, uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (int64_t i = 0; i < kBlock; ++i) p[i] = static_cast<uint8_t>(rng());
}

std::string expected(uint64_t seed) {
  std::string b(kBlock, '\0');
  fill(reinterpret_cast<uint8_t*>(b.data()), seed);
  return b;
}

std::string load_one(TierManager& m, uint64_t hash) {
  static uint64_t next_id = 1000;
  const uint64_t id = next_id++;
  m.onboard(id, {hash});
  m.drain();
  for (auto& l : m.take_loads()) {
    if (l.load_id == id && l.n_ok == 1) return std::string(l.bytes.view());
  }
  return {};
}

TEST(HostPool, AdoptKeepsTheSlotAndGivesOneBack) {
  auto pool = HostPool::create(2 * kBlock + 200, kBlock, nullptr);
  ASSERT_TRUE(pool.has_value()) << pool.status().to_string();
  HostPool& p = **pool;
  ASSERT_EQ(p.capacity_blocks(), 2);
  const size_t slot = HostPool::slot_bytes_for(kBlock);
  EXPECT_EQ(slot % 64, 0u);
  std::vector<uint8_t> mine(slot);
  fill(mine.data(), 1);
  uint8_t* back = p.adopt(7, mine.data());
  ASSERT_NE(back, mine.data());  // the pool kept ours and gave one of its own
  EXPECT_EQ(p.peek(7).data(), mine.data());
  std::vector<uint8_t> out(kBlock);
  ASSERT_TRUE(p.get(7, out).is_ok());
  EXPECT_EQ(std::string(out.begin(), out.end()), expected(1));
  // Held already: nothing stored, the caller keeps its slot.
  std::vector<uint8_t> again(slot);
  EXPECT_EQ(p.adopt(7, again.data()), again.data());
  // A corrupt adopted block is caught like any other (the checksum is of the adopted bytes).
  p.corrupt_for_test(7);
  EXPECT_EQ(p.get(7, out).code(), StatusCode::kDataLoss);
  EXPECT_EQ(p.size_blocks(), 0);
}

TEST(TierManager, StagedOffersLandInTheHostTierWithinTheBudget) {
  TierOptions o;
  o.host_bytes = 4 * HostPool::slot_bytes_for(kBlock);
  o.offload_inflight_bytes = 3 * HostPool::slot_bytes_for(kBlock);  // three staging slots
  auto made = TierManager::create(o, kBlock);
  ASSERT_TRUE(made.has_value()) << made.status().to_string();
  TierManager& m = **made;
  std::set<uint8_t*> seen;
  // Ten rounds of two blocks through three staging slots and a host tier of four: slots come
  // back after each offer (host slots swapped in), and the LRU keeps the last four blocks.
  for (uint64_t round = 0; round < 10; ++round) {
    std::vector<uint8_t*> slots = m.reserve_staging(2);
    ASSERT_EQ(slots.size(), 2u);
    for (size_t i = 0; i < 2; ++i) {
      fill(slots[i], 100 + 2 * round + i);
      seen.insert(slots[i]);
    }
    m.offer_staged({100 + 2 * round, 101 + 2 * round}, slots);
    m.drain();
    EXPECT_EQ(m.stats().offload_inflight_blocks, 0);
  }
  EXPECT_GT(seen.size(), 3u);  // slots of the host arena became staging slots
  const TierStats s = m.stats();
  EXPECT_EQ(s.offload_staging_blocks, 3);
  EXPECT_EQ(s.host.offloaded_blocks, 20u);
  EXPECT_EQ(s.host.blocks, 4);
  for (uint64_t h = 116; h < 120; ++h) EXPECT_EQ(load_one(m, h), expected(h)) << h;
  EXPECT_EQ(load_one(m, 100), "");
}

TEST(TierManager, BudgetRunsOutWhileTheWorkerIsBehind) {
  TierOptions o;
  o.host_bytes = 16 * HostPool::slot_bytes_for(kBlock);
  o.offload_inflight_bytes = 4 * HostPool::slot_bytes_for(kBlock);
  auto made = TierManager::create(o, kBlock);
  ASSERT_TRUE(made.has_value()) << made.status().to_string();
  TierManager& m = **made;
  m.pause_for_test(true);
  std::vector<uint8_t*> a = m.reserve_staging(3);
  ASSERT_EQ(a.size(), 3u);
  for (size_t i = 0; i < a.size(); ++i) fill(a[i], 10 + i);
  m.offer_staged({10, 11, 12}, a);
  std::vector<uint8_t*> b = m.reserve_staging(3);  // one slot left: the rest is dropped
  ASSERT_EQ(b.size(), 1u);
  m.count_dropped(2);
  EXPECT_EQ(m.reserve_staging(1).size(), 0u);
  m.count_dropped(1);
  // A failed copy gives its slot back.
  m.release_staging(b);
  EXPECT_EQ(m.stats().offload_inflight_blocks, 3);
  EXPECT_EQ(m.stats().offload_dropped_blocks, 3u);
  m.pause_for_test(false);
  m.drain();
  EXPECT_EQ(m.stats().offload_inflight_blocks, 0);
  EXPECT_EQ(m.reserve_staging(8).size(), 4u);
  for (uint64_t h = 10; h < 13; ++h) EXPECT_EQ(load_one(m, h), expected(h)) << h;
}

TEST(TierManager, DiskOnlyStagedOffersGiveTheirSlotsBack) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("turbine_kvtier_staged_" + std::to_string(std::random_device{}()));
  TierOptions o;
  o.disk_path = dir.string();
  o.disk_bytes = 32 * (kBlock + 4096);
  o.disk_min_hits = 1;
  o.offload_inflight_bytes = 2 * HostPool::slot_bytes_for(kBlock);
  auto made = TierManager::create(o, kBlock);
  ASSERT_TRUE(made.has_value()) << made.status().to_string();
  TierManager& m = **made;
  std::vector<uint8_t*> slots = m.reserve_staging(2);
  ASSERT_EQ(slots.size(), 2u);
  fill(slots[0], 1);
  fill(slots[1], 2);
  m.offer_staged({1, 2}, slots);
  m.drain();
  EXPECT_EQ(m.stats().offload_inflight_blocks, 0);
  EXPECT_EQ(m.stats().disk.offloaded_blocks, 2u);
  EXPECT_EQ(load_one(m, 1), expected(1));
  EXPECT_EQ(load_one(m, 2), expected(2));
  made->reset();
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace
}  // namespace turbine::kvtier
