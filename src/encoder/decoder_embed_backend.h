// An EncoderBackend over the engine's decoder backend (engine/backend.h forward_hidden): decoder
// models used as embedders (Qwen3-Embedding) run their usual causal forward pass, and the final
// normed hidden state of each sequence's last token is its embedding. The KV arena only holds
// the batch being encoded; every sequence starts at position 0 in fresh blocks.
//
// Thread ownership: the encoder engine thread calls forward(). The model must outlive it.
#pragma once

#include <memory>

#include "common/status.h"
#include "encoder/encoder_backend.h"
#include "model/model.h"

namespace turbine::encoder {

Result<std::unique_ptr<EncoderBackend>> make_decoder_embed_backend(const model::Model& model,
                                                                   int n_threads,
                                                                   int max_batch_tokens);

}  // namespace turbine::encoder
