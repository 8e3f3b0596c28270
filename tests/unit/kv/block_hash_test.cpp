#include "kv/block_hash.h"

#include <gtest/gtest.h>
#include <xxhash.h>

#include <cstring>
#include <string_view>

namespace turbine::kv {
namespace {

TEST(BlockHashTest, DynamoKnownVector) {
  // lib/kv-router protocols.rs: compute_block_hash(b"test data") == 13226331709069118873.
  constexpr std::string_view kData = "test data";
  EXPECT_EQ(hash_bytes(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(kData.data()),
                                                kData.size())),
            13226331709069118873ull);
}

TEST(BlockHashTest, LocalHashIsLittleEndianU32Tokens) {
  const std::vector<int32_t> tokens = {1, 258, 0x01020304, 7};
  const uint8_t bytes[] = {1, 0, 0, 0, 2, 1, 0, 0, 4, 3, 2, 1, 7, 0, 0, 0};
  EXPECT_EQ(local_block_hash(tokens), XXH3_64bits_withSeed(bytes, sizeof bytes, 1337));
  // Order matters, and the seed is 1337, not 0.
  EXPECT_NE(local_block_hash(std::vector<int32_t>{258, 1, 0x01020304, 7}),
            local_block_hash(tokens));
  EXPECT_NE(local_block_hash(tokens), XXH3_64bits_withSeed(bytes, sizeof bytes, 0));
}

TEST(BlockHashTest, ChainedSequenceHashes) {
  std::vector<int32_t> tokens(10);
  for (int i = 0; i < 10; ++i) tokens[static_cast<size_t>(i)] = 100 + i;
  const BlockHashes h = block_hashes(tokens, 4);  // two full blocks; the last 2 tokens ignored
  ASSERT_EQ(h.local.size(), 2u);
  ASSERT_EQ(h.sequence.size(), 2u);
  EXPECT_EQ(h.local[0], local_block_hash(std::span(tokens).subspan(0, 4)));
  EXPECT_EQ(h.local[1], local_block_hash(std::span(tokens).subspan(4, 4)));
  EXPECT_EQ(h.sequence[0], h.local[0]);  // seq[0] = local[0]
  uint8_t buf[16];
  for (int i = 0; i < 8; ++i) buf[i] = static_cast<uint8_t>(h.sequence[0] >> (8 * i));
  for (int i = 0; i < 8; ++i) buf[8 + i] = static_cast<uint8_t>(h.local[1] >> (8 * i));
  EXPECT_EQ(h.sequence[1], XXH3_64bits_withSeed(buf, 16, 1337));
  EXPECT_EQ(h.sequence[1], chain_block_hash(h.sequence[0], h.local[1]));

  // The same second block after a different first block chains to a different hash.
  std::vector<int32_t> other = tokens;
  other[0] = 1;
  const BlockHashes g = block_hashes(other, 4);
  EXPECT_EQ(g.local[1], h.local[1]);
  EXPECT_NE(g.sequence[1], h.sequence[1]);

  // Extending incrementally gives the same chain.
  BlockHashes inc = block_hashes(std::span(tokens).subspan(0, 5), 4);
  EXPECT_EQ(inc.local.size(), 1u);
  extend_block_hashes(inc, tokens, 4);
  EXPECT_EQ(inc.sequence, h.sequence);
  EXPECT_TRUE(block_hashes(tokens, 0).local.empty());
}

}  // namespace
}  // namespace turbine::kv
