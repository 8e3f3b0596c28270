// The in-process C++ interface to an encoder model: text (or token ids) in, vectors, labels,
// entities or relevance scores out. The frontend's HTTP endpoints (/v1/embeddings, /classify,
// /v1/rerank) and its other stages (semantic cache, guards, routing classifiers) call this.
//
//   embed(texts)              sentence-transformers pooling + normalisation, one vector each
//   classify(texts)           id2label labels with softmax probabilities
//   classify_tokens(text)     per-token BIO labels grouped into entities with input offsets
//   score(query, documents)   cross-encoders: the (query, document) logit and its sigmoid;
//                             embedding models: cosine similarity of the two embeddings
//
// Inputs are checked before anything runs: no inputs, too many, an empty text, or an input
// longer than the model's maximum (unless truncation is asked for) give kInvalidArgument naming
// the input; a task the model does not do gives kInvalidArgument saying what it does.
//
// Thread ownership: any thread may call any method concurrently; each call tokenizes on the
// calling thread, queues its jobs on the EncoderEngine (whose thread owns the backend) and blocks
// until they are done.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "encoder/encoder_engine.h"
#include "encoder/encoder_model.h"
#include "encoder/heads.h"

namespace turbine::encoder {

struct EncodeOptions {
  // Cut inputs longer than the model's maximum to fit (special tokens kept; pairs longest
  // first) instead of refusing them.
  bool truncate = false;
  // > 0: keep at most this many tokens (vLLM's truncate_prompt_tokens); implies truncation.
  int truncate_tokens = 0;
  // Override the model's L2 normalisation of embeddings.
  std::optional<bool> normalize;
};

struct Embedding {
  std::vector<float> vector;
  int n_tokens = 0;
};

struct Classification {
  std::vector<LabelScore> labels;  // in label-id order
  int32_t top = 0;                 // id of the most probable label
  int n_tokens = 0;
};

struct TokenClassification {
  std::vector<Entity> entities;
  std::vector<TokenPrediction> tokens;  // the text's tokens, special tokens left out
  int n_tokens = 0;
};

struct Relevance {
  float score = 0.0f;  // cross-encoder: sigmoid(logit); embeddings: cosine similarity
  float logit = 0.0f;  // cross-encoder logit (embeddings: the cosine again)
  int n_tokens = 0;
};

struct EncoderServiceOptions {
  EncoderBackendOptions backend;
  EncoderEngineOptions engine;
  size_t max_inputs = 2048;  // texts per call
};

class EncoderService {
 public:
  // Loads the folder and starts the engine thread.
  static Result<std::unique_ptr<EncoderService>> load(const std::filesystem::path& dir,
                                                      const EncoderServiceOptions& options);
  // Over a loaded model and a backend made from it.
  EncoderService(std::shared_ptr<const EncoderModel> model, std::unique_ptr<EncoderBackend> backend,
                 const EncoderServiceOptions& options);

  const EncoderModel& model() const { return *model_; }
  EncoderTask task() const { return model_->task(); }
  // Longest input in tokens.
  int max_tokens() const { return max_tokens_; }
  EncoderEngineStats stats() const { return engine_.stats(); }
  void shutdown() { engine_.shutdown(); }

  Result<std::vector<Embedding>> embed(const std::vector<std::string>& texts,
                                       const EncodeOptions& options = {});
  // Token ids as given (no special tokens are added).
  Result<std::vector<Embedding>> embed_tokens(const std::vector<std::vector<int32_t>>& inputs,
                                              const EncodeOptions& options = {});
  Result<std::vector<Classification>> classify(const std::vector<std::string>& texts,
                                               const EncodeOptions& options = {});
  Result<TokenClassification> classify_tokens(std::string_view text,
                                              const EncodeOptions& options = {});
  Result<std::vector<Relevance>> score(std::string_view query,
                                       const std::vector<std::string>& documents,
                                       const EncodeOptions& options = {});

 private:
  // Tokenizes with the limits applied; `index` names the input in errors.
  Result<tokenizer::Encoding> encode(std::string_view text, std::optional<std::string_view> pair,
                                     const EncodeOptions& options, size_t index) const;
  Status check_count(size_t n) const;
  Status require(EncoderTask task, const char* what) const;
  EncodeJob job(const tokenizer::Encoding& e, Output output) const;
  Result<std::vector<Embedding>> pool(std::vector<EncodeJob> jobs, const EncodeOptions& options);

  std::shared_ptr<const EncoderModel> model_;
  EncoderServiceOptions options_;
  EncoderEngine engine_;
  int max_tokens_;
};

}  // namespace turbine::encoder
