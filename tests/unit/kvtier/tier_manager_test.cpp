// The tiers alone: LRU and byte budgets, the frequency filter, checksums that catch corruption,
// io_uring and the pread/pwrite fallback, start-up errors for impossible configurations.
#include "kvtier/tier_manager.h"

#include <gtest/gtest.h>
#include <sys/statvfs.h>

#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>

#include "kvtier/disk_tier.h"
#include "kvtier/frequency_filter.h"
#include "kvtier/host_pool.h"
#include "test_support/missing_dependency.h"

namespace turbine::kvtier {
namespace {

namespace fs = std::filesystem;
constexpr int64_t kBlock = 1000;  // not a multiple of 64 or 4096 on purpose

std::string block_bytes(uint64_t seed) {
  std::string b(kBlock, '\0');
  std::mt19937_64 rng(seed);
  for (char& c : b) c = static_cast<char>(rng());
  return b;
}

class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = fs::temp_directory_path() / ("turbine_kvtier_" + std::to_string(rd()));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string str() const { return path_.string(); }

 private:
  fs::path path_;
};

// Loads `hashes` and waits for the result.
TierLoad load(TierManager& m, std::vector<uint64_t> hashes) {
  static uint64_t next_id = 1;
  const uint64_t id = next_id++;
  m.onboard(id, std::move(hashes));
  m.drain();
  for (auto& l : m.take_loads())
    if (l.load_id == id) return std::move(l);
  ADD_FAILURE() << "load " << id << " did not finish";
  return {};
}

TEST(HostPool, LruWithinBudget) {
  auto pool = HostPool::create(3 * 1024, kBlock, nullptr);  // slots of 1024 bytes
  ASSERT_TRUE(pool.has_value()) << pool.status().to_string();
  HostPool& p = **pool;
  EXPECT_EQ(p.capacity_blocks(), 3);
  for (uint64_t h = 1; h <= 3; ++h) {
    const std::string b = block_bytes(h);
    p.put(h, {reinterpret_cast<const uint8_t*>(b.data()), b.size()});
  }
  EXPECT_TRUE(p.full());
  EXPECT_EQ(p.lru(), 1u);
  std::string out(kBlock, '\0');
  ASSERT_TRUE(p.get(1, {reinterpret_cast<uint8_t*>(out.data()), out.size()}).is_ok());
  EXPECT_EQ(out, block_bytes(1));
  EXPECT_EQ(p.lru(), 2u);  // 1 was used last
  p.corrupt_for_test(3);
  EXPECT_EQ(p.get(3, {reinterpret_cast<uint8_t*>(out.data()), out.size()}).code(),
            StatusCode::kDataLoss);
  EXPECT_FALSE(p.contains(3));
}

TEST(HostPool, BudgetErrors) {
  auto none = HostPool::create(100, kBlock, nullptr);
  ASSERT_FALSE(none.has_value());
  EXPECT_NE(none.status().message().find("holds no KV block"), std::string::npos);
  auto huge = HostPool::create(int64_t{1} << 60, kBlock, nullptr);  // more than any host has
  ASSERT_FALSE(huge.has_value());
  EXPECT_NE(huge.status().message().find("available memory"), std::string::npos)
      << huge.status().message();
  EXPECT_EQ(huge.status().field(), "kv_offload_host_bytes");
}

TEST(FrequencyFilter, AdmitsAfterMinHitsAndAges) {
  FrequencyFilter f(2, 4);
  f.see(1);
  EXPECT_FALSE(f.admits(1));
  f.see(1);
  EXPECT_TRUE(f.admits(1));
  for (uint64_t h = 10; h < 13; ++h) f.see(h);
  f.see(99);  // full: counts halve, the ones seen once go
  EXPECT_EQ(f.count(1), 1u);
  EXPECT_EQ(f.count(10), 0u);
  EXPECT_EQ(f.count(99), 1u);
}

class DiskTierModes : public ::testing::TestWithParam<std::pair<bool, bool>> {};

TEST_P(DiskTierModes, RoundTripEvictionAndCorruption) {
  TempDir dir;
  DiskTierOptions o;
  o.dir = dir.str();
  o.block_bytes = kBlock;
  o.budget_bytes = 4 * 4096;  // a slot is 4 KiB: 64-byte header + 1000 bytes, padded
  o.use_io_uring = GetParam().first;
  o.use_direct_io = GetParam().second;
  auto disk = DiskTier::open(o);
  ASSERT_TRUE(disk.has_value()) << disk.status().to_string();
  DiskTier& d = **disk;
  EXPECT_EQ(d.capacity_blocks(), 4);
  if (!o.use_io_uring) {
    EXPECT_FALSE(d.uses_io_uring());
  }
#ifdef TURBINE_HAVE_LIBURING
  // The kernel may refuse io_uring (seccomp); the tier then falls back and says so.
  if (o.use_io_uring && !d.uses_io_uring()) {
    GTEST_LOG_(INFO) << "io_uring refused by this kernel";
  }
#else
  if (turbine::testing::in_ci()) {
    ADD_FAILURE() << "built without liburing (scripts/install-deps installs liburing-dev)";
  }
#endif
  std::vector<std::string> blocks;
  std::vector<DiskBlock> in;
  for (uint64_t h = 1; h <= 6; ++h) blocks.push_back(block_bytes(h));
  for (uint64_t h = 1; h <= 6; ++h)
    in.push_back({h, {reinterpret_cast<const uint8_t*>(blocks[h - 1].data()), size_t{kBlock}}});
  EXPECT_EQ(d.store(in), 6);  // 6 blocks into 4 slots: 1 and 2 evicted
  EXPECT_EQ(d.size_blocks(), 4);
  EXPECT_FALSE(d.contains(1));
  EXPECT_FALSE(d.contains(2));
  EXPECT_EQ(d.evicted(), 2u);
  const std::vector<uint64_t> want = {3, 4, 5, 6, 1};
  std::vector<std::string> out(want.size(), std::string(kBlock, '\0'));
  std::vector<std::span<uint8_t>> dst;
  for (auto& s : out) dst.push_back({reinterpret_cast<uint8_t*>(s.data()), s.size()});
  std::vector<Status> st = d.load(want, dst);
  for (size_t i = 0; i < 4; ++i) {
    ASSERT_TRUE(st[i].is_ok()) << st[i].to_string();
    EXPECT_EQ(out[i], blocks[want[i] - 1]);
  }
  EXPECT_EQ(st[4].code(), StatusCode::kNotFound);
  // One flipped byte in block 5's slot: detected, the slot freed.
  {
    std::fstream f(d.file_path(), std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(d.slot_offset_for_test(5) + 100);
    char c = 0;
    f.get(c);
    f.seekp(d.slot_offset_for_test(5) + 100);
    f.put(static_cast<char>(c ^ 1));
  }
  st = d.load(std::vector<uint64_t>{5}, std::span(dst).first(1));
  EXPECT_EQ(st[0].code(), StatusCode::kDataLoss);
  EXPECT_FALSE(d.contains(5));
  EXPECT_EQ(d.corrupt(), 1u);
}

INSTANTIATE_TEST_SUITE_P(IoPaths, DiskTierModes,
                         ::testing::Values(std::pair{true, true}, std::pair{true, false},
                                           std::pair{false, true}, std::pair{false, false}));

TEST(DiskTier, StartUpErrors) {
  TempDir dir;
  DiskTierOptions o;
  o.block_bytes = kBlock;
  // A path under a regular file cannot be created (root ignores permission bits; this it cannot).
  const fs::path file = fs::path(dir.str()) / "a_file";
  std::ofstream(file) << "x";
  o.dir = (file / "kv").string();
  o.budget_bytes = 1 << 20;
  auto bad = DiskTier::open(o);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.status().field(), "kv_offload_disk_path");
  EXPECT_NE(bad.status().message().find("cannot create"), std::string::npos);
  // A budget beyond the file system's free space: refused before anything is written.
  o.dir = dir.str();
  struct statvfs vfs {};
  ASSERT_EQ(::statvfs(o.dir.c_str(), &vfs), 0);
  o.budget_bytes = static_cast<int64_t>(vfs.f_bavail * vfs.f_frsize) + (int64_t{1} << 40);
  auto full = DiskTier::open(o);
  ASSERT_FALSE(full.has_value());
  EXPECT_EQ(full.status().field(), "kv_offload_disk_bytes");
  EXPECT_NE(full.status().message().find("free space"), std::string::npos);
  // A budget smaller than one slot.
  o.budget_bytes = 100;
  EXPECT_FALSE(DiskTier::open(o).has_value());
}

TEST(TierOptions, Validate) {
  TierOptions o;
  EXPECT_TRUE(o.validate().is_ok());
  EXPECT_FALSE(o.enabled());
  o.disk_path = "/tmp/x";
  EXPECT_EQ(o.validate().field(), "kv_offload_disk_bytes");
  o.disk_bytes = 1 << 20;
  EXPECT_TRUE(o.validate().is_ok());
  o.disk_min_hits = 0;
  EXPECT_FALSE(o.validate().is_ok());
  o = {};
  o.host_bytes = -1;
  EXPECT_FALSE(o.validate().is_ok());
}

std::vector<uint64_t> range(uint64_t a, uint64_t b) {
  std::vector<uint64_t> v;
  for (uint64_t h = a; h < b; ++h) v.push_back(h);
  return v;
}

std::string concat(const std::vector<uint64_t>& hashes) {
  std::string s;
  for (uint64_t h : hashes) s += block_bytes(h);
  return s;
}

TEST(TierManager, HostThenDiskWithFrequencyFilter) {
  TempDir dir;
  TierOptions o;
  o.host_bytes = 2 * 1024;  // two blocks
  o.disk_path = dir.str();
  o.disk_bytes = 8 * 4096;
  o.disk_min_hits = 2;
  auto m = TierManager::create(o, kBlock);
  ASSERT_TRUE(m.has_value()) << m.status().to_string();
  TierManager& t = **m;
  // 1 and 2 are offered twice (seen twice), 3 and 4 once: when 1..4 pass through a two-block
  // host tier, only 1 and 2 are admitted to disk.
  t.offer({1, 2}, concat({1, 2}));
  t.offer({1, 2}, concat({1, 2}));
  t.offer({3, 4}, concat({3, 4}));
  t.offer({5, 6}, concat({5, 6}));  // pushes 3 and 4 out of the host tier: seen once, dropped
  t.drain();
  EXPECT_EQ(t.lookup(range(1, 3)), (std::vector<Tier>{Tier::kDisk, Tier::kDisk}));
  EXPECT_TRUE(t.lookup(range(3, 5)).empty());
  EXPECT_EQ(t.lookup(range(5, 7)), (std::vector<Tier>{Tier::kHost, Tier::kHost}));
  TierStats s = t.stats();
  EXPECT_EQ(s.disk.filtered_blocks, 2u);
  EXPECT_EQ(s.disk.offloaded_blocks, 2u);
  EXPECT_EQ(s.host.evicted_blocks, 4u);
  // A load across both tiers returns every block intact, in order.
  TierLoad l = load(t, {5, 6, 7});  // 7 was never offered: the load stops there
  EXPECT_EQ(l.n_ok, 2);
  EXPECT_EQ(l.bytes.view(), concat({5, 6}));
  l = load(t, {1, 2});
  EXPECT_EQ(l.n_ok, 2);
  EXPECT_EQ(l.bytes.view(), concat({1, 2}));
  // Disk hits move up to the host tier; 5 and 6, now seen twice, move down to disk.
  EXPECT_EQ(t.lookup(range(1, 3)), (std::vector<Tier>{Tier::kHost, Tier::kHost}));
  EXPECT_EQ(t.lookup(range(5, 7)), (std::vector<Tier>{Tier::kDisk, Tier::kDisk}));
  s = t.stats();
  EXPECT_EQ(s.disk.onboarded_blocks, 2u);
  EXPECT_EQ(s.host.onboarded_blocks, 2u);
  EXPECT_GT(s.host.hits, 0u);
}

TEST(TierManager, CorruptBlockStopsTheLoad) {
  for (bool on_disk : {false, true}) {
    TempDir dir;
    TierOptions o;
    if (on_disk) {
      o.disk_path = dir.str();
      o.disk_bytes = 8 * 4096;
      o.disk_min_hits = 1;
    } else {
      o.host_bytes = 8 * 1024;
    }
    auto m = TierManager::create(o, kBlock);
    ASSERT_TRUE(m.has_value()) << m.status().to_string();
    TierManager& t = **m;
    t.offer(range(1, 5), concat(range(1, 5)));
    t.drain();
    ASSERT_EQ(t.lookup(range(1, 5)).size(), 4u);
    ASSERT_TRUE(t.corrupt_for_test(3).is_ok());
    TierLoad l = load(t, range(1, 5));
    EXPECT_EQ(l.n_ok, 2) << (on_disk ? "disk" : "host");
    EXPECT_EQ(l.bytes.view(), concat({1, 2}));
    EXPECT_EQ(l.error.code(), StatusCode::kDataLoss);
    EXPECT_EQ(t.lookup(range(1, 5)).size(), 2u);  // 3 is gone: the next lookup stops before it
    const TierStats s = t.stats();
    EXPECT_EQ((on_disk ? s.disk : s.host).corrupt_blocks, 1u);
    EXPECT_EQ(s.loads_short, 1u);
  }
}

TEST(TierManager, DiskOnlyAndNotify) {
  TempDir dir;
  TierOptions o;
  o.disk_path = dir.str();
  o.disk_bytes = 2 * 4096;
  o.disk_min_hits = 1;
  auto m = TierManager::create(o, kBlock);
  ASSERT_TRUE(m.has_value()) << m.status().to_string();
  TierManager& t = **m;
  std::mutex mu;
  std::condition_variable cv;
  int notified = 0;
  t.set_notify([&] {
    std::lock_guard lock(mu);
    ++notified;
    cv.notify_all();
  });
  t.offer(range(1, 4), concat(range(1, 4)));  // three blocks, two slots
  t.drain();
  EXPECT_TRUE(t.lookup(range(1, 2)).empty());
  EXPECT_EQ(t.lookup(range(2, 4)).size(), 2u);
  {
    std::lock_guard lock(mu);
    EXPECT_GT(notified, 0);  // the offer changed what the tiers hold: the owner publishes events
    notified = 0;
  }
  t.onboard(42, {2, 3});
  std::unique_lock lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(30), [&] { return notified > 0; }));
  auto loads = t.take_loads();
  ASSERT_EQ(loads.size(), 1u);
  EXPECT_EQ(loads[0].load_id, 42u);
  EXPECT_EQ(loads[0].bytes.view(), concat({2, 3}));
  const fs::path file = t.disk_file_for_test();
  EXPECT_TRUE(fs::exists(file));
  m->reset();
  EXPECT_FALSE(fs::exists(file));  // the tier's file goes with it
}

TEST(TierManager, StartUpErrors) {
  TierOptions o;
  o.host_bytes = int64_t{1} << 60;
  auto m = TierManager::create(o, kBlock);
  ASSERT_FALSE(m.has_value());
  EXPECT_EQ(m.status().field(), "kv_offload_host_bytes");
  o.host_bytes = 1 << 20;
  EXPECT_FALSE(TierManager::create(o, 0).has_value());  // a backend that exports nothing
  EXPECT_FALSE(TierManager::create(TierOptions{}, kBlock).has_value());
}

}  // namespace
}  // namespace turbine::kvtier
