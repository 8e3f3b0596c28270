// The backend interface: one forward pass over a batch of sequence chunks.
//
// CPU now, CUDA later, both behind these calls. A backend owns the KV cache for a fixed number of
// sequence slots; the engine thread is the only caller (backends need no locking of their own).
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
// the sequence in `slot`. Positions before `pos` must already be in that slot's KV cache.
struct SeqChunk {
  int slot = 0;
  int pos = 0;
  std::span<const int32_t> tokens;
  bool want_logits = true;  // logits of the chunk's last token are returned
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;
  virtual int num_slots() const = 0;
  virtual int max_context() const = 0;
  // Runs all chunks as one step. `logits` is resized to (number of chunks with want_logits) x
  // n_vocab, in chunk order.
  virtual Status forward(std::span<const SeqChunk> chunks, std::vector<float>& logits) = 0;
  // The slot's sequence is finished; its KV cache may be reused.
  virtual void release_slot(int slot) = 0;
};

struct CpuBackendOptions {
  int n_threads = 0;    // 0: all hardware threads
  int n_slots = 8;      // concurrent sequences
  int max_context = 0;  // 0: the model's context length
};

Result<std::unique_ptr<Backend>> make_cpu_backend(const model::Model& model,
                                                  const CpuBackendOptions& options);

}  // namespace turbine::engine
