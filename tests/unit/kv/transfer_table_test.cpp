// kv::TransferTable: pinned prefill results for disaggregated serving — ids, ranges, release,
// TTL, and the pinned-block count kept without walking the table.
#include "kv/transfer_table.h"

#include <gtest/gtest.h>

#include "kv/block_pool.h"

namespace turbine::kv {
namespace {

using Clock = TransferTable::Clock;

TEST(TransferTable, PinRangeReleaseAndExpiry) {
  BlockPool pool(8, 4, /*enable_prefix_caching=*/false, nullptr);
  TransferTable t;
  const auto now = Clock::now();
  auto oa = pool.allocate(3);
  auto ob = pool.allocate(2);
  ASSERT_TRUE(oa && ob);
  std::vector<BlockRef> a = std::move(*oa), b = std::move(*ob);
  const int32_t a1 = a[1].id(), a2 = a[2].id();
  const uint64_t ta = t.pin(std::move(a), now + std::chrono::seconds(60));
  const uint64_t tb = t.pin(std::move(b), now + std::chrono::milliseconds(5));
  EXPECT_NE(ta, tb);
  EXPECT_EQ(t.size(), 2);
  EXPECT_EQ(t.pinned_blocks(), 5);
  EXPECT_EQ(pool.num_free(), 3);

  auto ids = t.block_ids(ta, 1, 2);
  ASSERT_TRUE(ids.has_value());
  EXPECT_EQ(*ids, (std::vector<int32_t>{a1, a2}));
  EXPECT_EQ(t.block_ids(ta, 2, 2).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(t.block_ids(ta, -1, 1).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(t.block_ids(999, 0, 1).status().code(), StatusCode::kNotFound);

  EXPECT_EQ(t.next_expiry(), now + std::chrono::milliseconds(5));
  EXPECT_EQ(t.expire(now), 0);
  EXPECT_EQ(t.expire(now + std::chrono::milliseconds(5)), 1);  // tb
  EXPECT_EQ(t.block_ids(tb, 0, 1).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(t.pinned_blocks(), 3);
  EXPECT_EQ(pool.num_free(), 5);

  t.release(999);  // unknown: ignored
  t.release(ta);
  EXPECT_TRUE(t.empty());
  EXPECT_EQ(t.pinned_blocks(), 0);
  EXPECT_EQ(pool.num_free(), 8);
  EXPECT_FALSE(t.next_expiry().has_value());

  t.pin(std::move(*pool.allocate(4)), now);
  t.clear();
  EXPECT_EQ(pool.num_free(), 8);
  EXPECT_EQ(t.pinned_blocks(), 0);
}

}  // namespace
}  // namespace turbine::kv
