// The backend interface: one forward pass over a batch of sequence chunks.
//
// CPU now, CUDA later, both behind these calls. A backend owns the memory of a paged KV cache (a
// fixed number of blocks); the engine thread is the only caller (backends need no locking of their
// own) and decides which blocks each sequence uses.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "model/model.h"

namespace turbine::engine {

// One sequence's contribution to a step: `tokens` occupy positions [pos, pos + tokens.size()) of
// the sequence whose KV lives in `block_table`: position p is slot p % block_size() of block
// block_table[p / block_size()]. Positions before `pos` must already be in those blocks. Blocks a
// chunk writes must not be written by another chunk of the same step; full blocks may be shared
// (read) by several chunks (prefix caching).
struct SeqChunk {
  std::span<const int32_t> block_table;
  int pos = 0;
  std::span<const int32_t> tokens;
  bool want_logits = true;  // logits of the chunk's last token are returned
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;
  virtual int max_context() const = 0;
  // The paged KV cache: num_blocks() blocks of block_size() positions each. Which block holds what
  // is the caller's business (kv::BlockPool); the backend only stores and reads them.
  virtual int num_blocks() const = 0;
  virtual int block_size() const = 0;
  // Runs all chunks as one step. `logits` is resized to (number of chunks with want_logits) x
  // n_vocab, in chunk order. On error nothing the caller relies on has changed except the
  // contents of the blocks the chunks write.
  virtual Status forward(std::span<const SeqChunk> chunks, std::vector<float>& logits) = 0;
};

// Default KV budget: max_num_seqs full contexts, capped here (but always at least one context).
inline constexpr int64_t kDefaultKvCacheCapBytes = int64_t{2} << 30;

struct CpuBackendOptions {
  int n_threads = 0;                  // 0: all hardware threads
  int max_num_seqs = 8;               // sizes the default KV budget
  int max_context = 0;                // 0: the model's context length
  int block_size = 16;                // positions per KV block
  int64_t kv_cache_memory_bytes = 0;  // 0: the default budget above
};

// Bytes of K and V for one position across all layers (f32).
int64_t cpu_kv_bytes_per_token(const model::ModelConfig& config);

Result<std::unique_ptr<Backend>> make_cpu_backend(const model::Model& model,
                                                  const CpuBackendOptions& options);

}  // namespace turbine::engine
