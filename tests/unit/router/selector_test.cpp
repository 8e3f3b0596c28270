#include "router/selector.h"

#include <gtest/gtest.h>

#include <map>

namespace turbine::router {
namespace {

TEST(SelectorTest, CostIsOverlapWeightTimesPrefillPlusDecodeBlocks) {
  std::vector<Candidate> c(3);
  c[0].cached_blocks = 8;  // request of 10 blocks (160 tokens, block 16)
  c[0].active_decode_blocks = 10;
  c[1].cached_blocks = 5;
  c[1].active_decode_blocks = 5;
  c[2].cached_blocks = 0;
  c[2].pending_prefill_tokens = 32;  // 2 blocks of queued prefill
  kv_costs(c, 160, 16, 1.0);
  EXPECT_DOUBLE_EQ(c[0].cost, 1.0 * 2 + (10 + 10));
  EXPECT_DOUBLE_EQ(c[1].cost, 1.0 * 5 + (5 + 10));
  EXPECT_DOUBLE_EQ(c[2].cost, 1.0 * (2 + 10) + 10);
  kv_costs(c, 160, 16, 2.0);
  EXPECT_DOUBLE_EQ(c[0].cost, 2.0 * 2 + 20);
  EXPECT_DOUBLE_EQ(c[2].cost, 2.0 * 12 + 10);
  // Cached blocks beyond the request (a longer cached prefix) give no negative prefill.
  c[0].cached_blocks = 50;
  kv_costs(c, 160, 16, 1.0);
  EXPECT_DOUBLE_EQ(c[0].cost, 20);
}

TEST(SelectorTest, DecodeBlocksAddOnlyTheRequestBlocksNotActiveOnTheWorker) {
  std::vector<Candidate> c(2);
  c[0].active_decode_blocks = 30;  // 8 of the request's 10 blocks are active here
  c[0].new_decode_blocks = 2;
  c[1].active_decode_blocks = 24;  // none here: all 10 are added
  c[1].new_decode_blocks = 10;
  kv_costs(c, 160, 16, 1.0);
  EXPECT_DOUBLE_EQ(c[0].cost, 10 + (30 + 2));
  EXPECT_DOUBLE_EQ(c[1].cost, 10 + (24 + 10));
  std::mt19937_64 rng(3);
  EXPECT_EQ(select_by_cost(c, 0.0, rng), 0u);
  // Equal costs: the smaller cache wins the tie.
  c[0].new_decode_blocks = 4;
  c[0].tree_blocks = 500;
  c[1].tree_blocks = 100;
  kv_costs(c, 160, 16, 1.0);
  ASSERT_DOUBLE_EQ(c[0].cost, c[1].cost);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(select_by_cost(c, 0.0, rng), 1u);
}

TEST(SelectorTest, ArgminThenSmallestCacheThenRandom) {
  std::mt19937_64 rng(1);
  std::vector<Candidate> c(4);
  c[0].cost = 3;
  c[1].cost = 2;
  c[1].tree_blocks = 100;
  c[2].cost = 2;
  c[2].tree_blocks = 50;
  c[3].cost = 2;
  c[3].tree_blocks = 50;
  std::map<size_t, int> picks;
  for (int i = 0; i < 400; ++i) picks[select_by_cost(c, 0.0, rng)]++;
  EXPECT_EQ(picks.count(0), 0u);
  EXPECT_EQ(picks.count(1), 0u);  // larger cache loses the tie
  EXPECT_GT(picks[2], 100);       // the two equal ones share it
  EXPECT_GT(picks[3], 100);
  c[3].cost = 1;
  EXPECT_EQ(select_by_cost(c, 0.0, rng), 3u);
}

TEST(SelectorTest, SoftmaxSamplingFollowsNormalisedCosts) {
  std::mt19937_64 rng(2);
  std::vector<Candidate> c(2);
  c[0].cost = 10;
  c[1].cost = 20;
  // T = 1: weights exp(0) : exp(-1) -> P(0) = 0.731.
  int zero = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) zero += select_by_cost(c, 1.0, rng) == 0;
  EXPECT_NEAR(zero / double(n), 0.731, 0.02);
  // Low temperature approaches argmin; equal costs are uniform.
  zero = 0;
  for (int i = 0; i < 2000; ++i) zero += select_by_cost(c, 0.05, rng) == 0;
  EXPECT_EQ(zero, 2000);
  c[1].cost = 10;
  zero = 0;
  for (int i = 0; i < n; ++i) zero += select_by_cost(c, 1.0, rng) == 0;
  EXPECT_NEAR(zero / double(n), 0.5, 0.02);
}

TEST(SelectorTest, ParsesModes) {
  EXPECT_EQ(*parse_router_mode("kv"), RouterMode::kKv);
  EXPECT_EQ(*parse_router_mode("round-robin"), RouterMode::kRoundRobin);
  EXPECT_EQ(*parse_router_mode("random"), RouterMode::kRandom);
  EXPECT_EQ(*parse_router_mode("least-loaded"), RouterMode::kLeastLoaded);
  EXPECT_FALSE(parse_router_mode("fastest").has_value());
}

}  // namespace
}  // namespace turbine::router
