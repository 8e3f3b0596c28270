// How embeddings are pooled, as sentence-transformers configures it: modules.json lists the
// modules (Transformer, Pooling, Normalize, ...); the Pooling module's config.json names the mode
// (ST >= 5: "pooling_mode": "mean"; older: pooling_mode_mean_tokens: true, ...). Without
// modules.json: CLS pooling for encoders, last-token pooling for decoders, L2-normalised
// (what vLLM does for such models).
//
// A plain value, read once at load.
#pragma once

#include <filesystem>

#include "common/status.h"
#include "encoder/encoder_backend.h"
#include "encoder/encoder_config.h"

namespace turbine::encoder {

struct PoolingConfig {
  Output mode = Output::kCls;
  bool normalize = true;
  bool from_sentence_transformers = false;
  // sentence_bert_config.json max_seq_length (0: none): longer inputs are truncated by
  // sentence-transformers, so the limit applies here too.
  int max_seq_length = 0;
};

// Errors: kUnimplemented for modules we cannot run (Dense, a pooling mode we lack, prompts
// excluded from pooling), kInvalidArgument for malformed files.
Result<PoolingConfig> read_pooling_config(const std::filesystem::path& dir,
                                          const EncoderConfig& config);

}  // namespace turbine::encoder
