// Hyper-parameters of an encoder model, read from a Hugging Face config.json.
//
// Architectures: BERT (absolute positions, token types, post-norm LayerNorm, GELU), its
// RoBERTa / XLM-RoBERTa variant (positions offset by padding_idx + 1, one token type),
// ModernBERT (RoPE, GeGLU, pre-norm LayerNorm without biases, alternating global and
// sliding-window attention, final norm) and decoder models used as embedders (Qwen3-Embedding and
// other Llama-family models: run through the engine's decoder backend, pooled on their last
// token). The head comes from architectures[0]: *Model / *ForMaskedLM give hidden states (for
// pooling), *ForSequenceClassification labels (or one relevance score: a cross-encoder),
// *ForTokenClassification per-token labels.
//
// A plain value, immutable once parsed.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/status.h"

namespace turbine::encoder {

enum class EncoderArch { kBert, kRoberta, kModernBert, kDecoder };
enum class HeadKind { kNone, kSequenceClassification, kTokenClassification };
enum class Activation { kGelu, kGeluTanh, kRelu, kSilu, kTanh };

struct EncoderConfig {
  EncoderArch arch = EncoderArch::kBert;
  std::string arch_name;   // architectures[0] as written
  std::string model_type;  // "bert", "xlm-roberta", "modernbert", "qwen3", ...
  HeadKind head = HeadKind::kNone;
  int vocab_size = 0;
  int dim = 0;
  int n_layers = 0;
  int n_heads = 0;
  int head_dim = 0;
  int ffn_dim = 0;
  int max_positions = 0;  // max_position_embeddings
  int type_vocab_size = 0;
  float norm_eps = 1e-12f;
  Activation act = Activation::kGelu;
  int pad_id = -1;
  int position_offset = 0;  // RoBERTa: padding_idx + 1

  // ModernBERT.
  std::vector<bool> layer_local;  // per layer: sliding-window attention
  int local_window = 0;           // a token attends to keys within local_window / 2 of it
  float global_rope_theta = 160000.0f;
  float local_rope_theta = 10000.0f;
  bool norm_bias = true;
  bool attention_bias = true;
  bool mlp_bias = true;
  bool classifier_bias = true;
  bool mean_pool_classifier = false;  // classifier_pooling "mean" (else "cls")
  Activation classifier_act = Activation::kGelu;

  // Heads.
  std::vector<std::string> labels;  // id2label in id order; "LABEL_<i>" when absent

  // The longest sequence (special tokens included) the positions allow.
  int max_tokens() const;
};

// Parses config.json. Unknown architectures and unsupported settings give kUnimplemented
// naming the field; malformed values kInvalidArgument.
Result<EncoderConfig> parse_encoder_config(const nlohmann::json& config);

const char* activation_name(Activation act);

}  // namespace turbine::encoder
