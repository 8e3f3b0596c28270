// Task heads over the backend's hidden states (host side, f32):
//   * sequence classification: BERT (pooler dense + tanh, classifier), RoBERTa / XLM-R
//     (classifier.dense + tanh, out_proj), ModernBERT (CLS or mean pooling, head dense + act +
//     norm, classifier); labels from id2label, scores by softmax; with one label the model is a
//     cross-encoder and its logit the relevance score;
//   * token classification: per-token classifier (ModernBERT through its head first), softmax
//     per token, and Hugging Face's "simple" aggregation of BIO labels into entities whose spans
//     are offsets in the input text;
//   * sentence-transformers pooling and L2 normalisation (pooling.h) are applied by the service.
//
// Immutable after create(); methods are const and safe from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "encoder/encoder_backend.h"
#include "encoder/encoder_config.h"
#include "encoder/encoder_weights.h"
#include "tokenizer/pipeline_tokenizer.h"

namespace turbine::encoder {

struct LabelScore {
  int32_t id = 0;
  std::string label;
  float probability = 0.0f;  // softmax over the labels
  float logit = 0.0f;
};

// A span of the input labelled as one entity.
struct Entity {
  std::string label;   // the entity type ("PER" for B-PER / I-PER tokens)
  float score = 0.0f;  // mean of its tokens' top probabilities
  std::string word;    // its tokens decoded
  uint32_t start = 0;  // code-point offsets into the input (as Python indexes it)
  uint32_t end = 0;
  uint32_t byte_start = 0;  // byte offsets into the input
  uint32_t byte_end = 0;
};

// One token's prediction, before aggregation.
struct TokenPrediction {
  int32_t token_id = 0;
  int32_t label_id = 0;
  float score = 0.0f;  // its probability
  tokenizer::ByteSpan bytes;
};

class Heads {
 public:
  static Result<Heads> create(const EncoderConfig& config, const EncoderWeights& weights);

  // What the backend must return for sequence classification (kCls, or kMean for ModernBERT
  // with classifier_pooling "mean").
  Output sequence_output() const { return sequence_output_; }
  // Logits of one sequence from its pooled row (dim floats).
  std::vector<float> sequence_logits(const float* pooled) const;
  // Logits [n x n_labels] of n tokens' hidden rows.
  std::vector<float> token_logits(const float* rows, int n) const;
  int n_labels() const { return static_cast<int>(labels_.size()); }
  const std::vector<std::string>& labels() const { return labels_; }

  // Labels with softmax probabilities, in label-id order.
  std::vector<LabelScore> label_scores(const std::vector<float>& logits) const;
  // Per-token predictions of `encoding`'s text tokens (special tokens skipped).
  std::vector<TokenPrediction> token_predictions(const tokenizer::Encoding& encoding,
                                                 const std::vector<float>& logits,
                                                 const tokenizer::Tokenizer& tok) const;
  // Hugging Face's "simple" aggregation: consecutive tokens of one entity type (an I- tag, or a
  // tag without prefix, continues the previous token's type; B- starts a new one) form one
  // entity; "O" entities are dropped.
  std::vector<Entity> group_entities(const std::vector<TokenPrediction>& tokens,
                                     std::string_view text, const tokenizer::Tokenizer& tok) const;

 private:
  struct Dense {
    std::vector<float> w;  // [out x in], f32
    std::vector<float> b;  // [out] or empty
    int out = 0, in = 0;
    bool present() const { return !w.empty(); }
    void apply(const float* x, int n, float* y) const;  // y [n x out]
  };
  static Dense dense(const Linear& l);

  EncoderArch arch_ = EncoderArch::kBert;
  Activation act_ = Activation::kGelu;
  float norm_eps_ = 1e-5f;
  Output sequence_output_ = Output::kCls;
  Dense pooler_, head_dense_, classifier_;
  std::vector<float> head_norm_w_, head_norm_b_;
  std::vector<std::string> labels_;
};

// Softmax over n floats.
std::vector<float> softmax(const float* logits, int n);

}  // namespace turbine::encoder
