// Weights of an encoder model from a Hugging Face folder (model.safetensors or a sharded index),
// memory-mapped through src/model's safetensors reader. Tensor names may carry the base-model
// prefix of a task model ("bert.", "roberta.", "model.") or none (a bare *Model / a
// sentence-transformers folder). ModernBERT's fused Wqkv and Wi matrices are exposed as row
// ranges (views into the same memory), so every backend sees separate Q/K/V and input/gate
// matrices.
//
// Immutable after load; the views point into the MappedFiles this object owns.
#pragma once

#include <filesystem>
#include <memory>
#include <vector>

#include "common/status.h"
#include "encoder/encoder_config.h"
#include "model/mapped_file.h"
#include "model/model.h"

namespace turbine::encoder {

// A linear layer y = x W^T + b; `b` absent when the model has no bias there.
struct Linear {
  model::TensorView w;  // [out, in]
  model::TensorView b;  // [1, out] or absent
};

// LayerNorm: weight and optional bias.
struct Norm {
  model::TensorView w;
  model::TensorView b;
  bool present() const { return w.present(); }
};

struct EncoderLayer {
  Linear q, k, v, o;
  // BERT: LayerNorm after the attention residual; ModernBERT: before attention (absent in
  // layer 0, which reads the embedding norm's output directly).
  Norm attn_norm;
  Linear up;    // BERT intermediate.dense; ModernBERT the input half of Wi
  Linear gate;  // ModernBERT the gate half of Wi (absent for BERT)
  Linear down;
  // BERT: LayerNorm after the FFN residual; ModernBERT: before the MLP.
  Norm ffn_norm;
};

struct EncoderWeights {
  model::TensorView word_emb;  // [vocab, dim]
  model::TensorView pos_emb;   // [max_positions, dim] (BERT / RoBERTa)
  model::TensorView type_emb;  // [type_vocab, dim] (BERT / RoBERTa)
  Norm emb_norm;
  std::vector<EncoderLayer> layers;
  Norm final_norm;  // ModernBERT

  // Heads (present as the architecture has them).
  Linear pooler;      // BERT pooler (tanh), used by BertForSequenceClassification
  Linear head_dense;  // ModernBERT head.dense (+ act + head.norm); RoBERTa classifier.dense (tanh)
  Norm head_norm;     // ModernBERT head.norm
  Linear classifier;  // [n_labels, dim]
};

class EncoderWeightFiles {
 public:
  // Loads and checks every tensor the config needs (names and shapes); errors name the tensor.
  static Result<std::unique_ptr<EncoderWeightFiles>> load(const std::filesystem::path& dir,
                                                          const EncoderConfig& config);
  const EncoderWeights& weights() const { return weights_; }

 private:
  std::vector<model::MappedFile> files_;
  EncoderWeights weights_;
};

}  // namespace turbine::encoder
