// What every Backend checks before a step and records after it: which leading positions of each
// KV block hold data. Shared by the CPU and CUDA backends so both refuse the same bad chunks with
// the same errors (kv-invalid input never reaches a kernel).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "common/status.h"
#include "engine/backend.h"

namespace turbine::engine {

class KvWriteTracker {
 public:
  KvWriteTracker() = default;
  KvWriteTracker(int n_blocks, int block_size, int max_context, int32_t n_vocab);

  // InvalidArgument (with the chunk index) for: no tokens, a negative position, positions past
  // the context, a block table too short or naming blocks out of range, positions before `pos`
  // not yet written, a block written by two chunks of the step, token ids outside the vocabulary.
  Status validate(std::span<const SeqChunk> chunks);
  // After a successful step: each chunk's blocks hold exactly the positions up to its end.
  void commit(std::span<const SeqChunk> chunks);
  // KV imported from elsewhere: `blocks` hold n_positions positions from the first block's slot
  // 0 (all but the last full). InvalidArgument for blocks out of range or too few blocks.
  Status record_import(std::span<const int32_t> blocks, int n_positions);

 private:
  int n_blocks_ = 0;
  int block_size_ = 1;
  int max_context_ = 0;
  int32_t n_vocab_ = 0;
  std::vector<int> block_len_;       // per block: leading positions written
  std::vector<uint8_t> write_mark_;  // validate() scratch, all zero between calls
};

}  // namespace turbine::engine
