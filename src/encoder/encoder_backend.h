// The encoder backend interface: one forward pass over a padding-free batch.
//
// A batch is several sequences concatenated (no padding): sequence s owns tokens
// [seq_begin[s], seq_begin[s + 1]) and attends only to its own tokens, in both directions
// (ModernBERT's local layers within their window). There is no KV cache and no decode step.
// The backend returns, per sequence, what its Output asks for: every token's final hidden state,
// or one pooled row (CLS, mean, last token). Pooling sits on the backend side of the boundary so
// that a device backend returns one row per sequence instead of every token's state; the heads
// (classifiers, normalisation) run on the host over what comes back (heads.h).
//
// CPU now (cpu_encoder_backend), CUDA later behind the same call. The engine thread is the only
// caller of forward(); backends need no locking of their own.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace turbine::encoder {

enum class Output {
  kAllTokens,  // every token's final hidden state (token classification)
  kCls,        // the first token's
  kMean,       // the mean over the sequence's tokens
  kLastToken,  // the last token's
  kMax,        // the element-wise max over the tokens
};
const char* output_name(Output o);

struct EncoderBatch {
  std::vector<int32_t> ids;        // all sequences' tokens, concatenated
  std::vector<int32_t> type_ids;   // same length (zeros where the model has no token types)
  std::vector<int32_t> seq_begin;  // n_seqs + 1 offsets into ids; seq_begin[0] == 0
  std::vector<Output> outputs;     // one per sequence

  size_t n_seqs() const { return outputs.size(); }
  // Rows of `dim` floats forward() returns for this batch.
  size_t output_rows() const;
  void clear() {
    ids.clear();
    type_ids.clear();
    seq_begin.assign(1, 0);
    outputs.clear();
  }
};

class EncoderBackend {
 public:
  virtual ~EncoderBackend() = default;
  virtual std::string_view name() const = 0;
  // Width of a returned row.
  virtual int hidden_dim() const = 0;
  // Longest sequence it accepts (positions).
  virtual int max_tokens() const = 0;
  // Runs the batch. `out` is resized to output_rows() x hidden_dim(), sequence after sequence
  // (kAllTokens: one row per token). Errors: kInvalidArgument for a malformed batch (ids out of
  // range, a sequence longer than max_tokens(), an output the backend cannot give).
  virtual Status forward(const EncoderBatch& batch, std::vector<float>& out) = 0;
};

// Checks the parts of a batch every backend relies on.
Status validate_batch(const EncoderBatch& batch, int vocab_size, int max_tokens,
                      int type_vocab_size);

}  // namespace turbine::encoder
