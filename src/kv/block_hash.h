// Block hashing, bit-compatible with NVIDIA Dynamo's KV router (lib/kv-router protocols).
//
// local (per-block, not chained): XXH3-64, seed 1337, over the block's token ids as little-endian
//   u32 (4 bytes each).
// sequence (chained): seq[0] = local[0];
//   seq[i] = XXH3-64(seed 1337, LE u64 seq[i-1] || LE u64 local[i]) (16 bytes).
// Only full blocks are hashed. Pure functions; safe from any thread.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace turbine::kv {

inline constexpr uint64_t kBlockHashSeed = 1337;

// XXH3-64 with kBlockHashSeed over raw bytes (Dynamo's compute_block_hash).
uint64_t hash_bytes(std::span<const uint8_t> bytes);
// The block's local hash (Dynamo LocalBlockHash): token ids as LE u32.
uint64_t local_block_hash(std::span<const int32_t> tokens);
// One link of the chain (Dynamo SequenceHash): hash of LE u64 parent || LE u64 local.
uint64_t chain_block_hash(uint64_t parent_seq_hash, uint64_t local_hash);

struct BlockHashes {
  std::vector<uint64_t> local;     // per full block
  std::vector<uint64_t> sequence;  // chained, same length
};

// Hashes of every full block of `tokens` (a trailing partial block is ignored).
BlockHashes block_hashes(std::span<const int32_t> tokens, int block_size);

// Extends `h` (hashes of the first h.local.size() full blocks of `tokens`) to every full block.
void extend_block_hashes(BlockHashes& h, std::span<const int32_t> tokens, int block_size);

}  // namespace turbine::kv
