#include "kv/block_hash.h"

#include <xxhash.h>

namespace turbine::kv {
namespace {

void put_le32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
void put_le64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

}  // namespace

uint64_t hash_bytes(std::span<const uint8_t> bytes) {
  return XXH3_64bits_withSeed(bytes.data(), bytes.size(), kBlockHashSeed);
}

uint64_t local_block_hash(std::span<const int32_t> tokens) {
  // Blocks are small (16-64 tokens): a stack buffer covers them; larger ones take the heap.
  constexpr size_t kStackTokens = 256;
  uint8_t stack[kStackTokens * 4];
  std::vector<uint8_t> heap;
  uint8_t* buf = stack;
  if (tokens.size() > kStackTokens) {
    heap.resize(tokens.size() * 4);
    buf = heap.data();
  }
  for (size_t i = 0; i < tokens.size(); ++i)
    put_le32(buf + 4 * i, static_cast<uint32_t>(tokens[i]));
  return hash_bytes(std::span<const uint8_t>(buf, tokens.size() * 4));
}

uint64_t chain_block_hash(uint64_t parent_seq_hash, uint64_t local_hash) {
  uint8_t buf[16];
  put_le64(buf, parent_seq_hash);
  put_le64(buf + 8, local_hash);
  return hash_bytes(buf);
}

void extend_block_hashes(BlockHashes& h, std::span<const int32_t> tokens, int block_size) {
  if (block_size <= 0) return;
  const size_t bs = static_cast<size_t>(block_size);
  const size_t n_full = tokens.size() / bs;
  for (size_t i = h.local.size(); i < n_full; ++i) {
    const uint64_t local = local_block_hash(tokens.subspan(i * bs, bs));
    h.local.push_back(local);
    h.sequence.push_back(i == 0 ? local : chain_block_hash(h.sequence[i - 1], local));
  }
}

BlockHashes block_hashes(std::span<const int32_t> tokens, int block_size) {
  BlockHashes h;
  extend_block_hashes(h, tokens, block_size);
  return h;
}

}  // namespace turbine::kv
