// The in-process C++ interface to an encoder model: text (or token ids) in, vectors, labels,
// entities or relevance scores out. It is the local AsyncEncoder (async_encoder.h): the frontend's
// HTTP endpoints (/v1/embeddings, /classify, /v1/rerank, /v1/score), a worker's request plane
// and the frontend's other stages (semantic cache, guards, routing classifiers) call submit();
// the blocking methods below wrap it for callers that may wait.
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
// Thread ownership: any thread may call any method concurrently. submit() tokenizes on the
// calling thread and queues one job per input on the EncoderEngine (whose thread owns the
// backend); the heads (classifiers, entity grouping, normalisation) run on the engine thread when
// the request's last job is done, then `done` is called there. The blocking methods wait for it.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "encoder/async_encoder.h"
#include "encoder/encoder_engine.h"
#include "encoder/encoder_model.h"
#include "encoder/heads.h"

namespace turbine::encoder {

struct EncoderServiceOptions {
  EncoderBackendOptions backend;
  EncoderEngineOptions engine;
  size_t max_inputs = 2048;  // texts per call
};

class EncoderService final : public AsyncEncoder {
 public:
  // Loads the folder and starts the engine thread.
  static Result<std::unique_ptr<EncoderService>> load(const std::filesystem::path& dir,
                                                      const EncoderServiceOptions& options);
  // Over a loaded model and a backend made from it.
  EncoderService(std::shared_ptr<const EncoderModel> model, std::unique_ptr<EncoderBackend> backend,
                 const EncoderServiceOptions& options);
  ~EncoderService() override;  // shutdown()

  const EncoderModel& model() const { return *model_; }
  std::shared_ptr<const EncoderModel> shared_model() const { return model_; }
  EncoderTask task() const { return model_->task(); }
  // Longest input in tokens.
  int max_tokens() const { return max_tokens_; }
  EncoderEngineStats stats() const { return engine_.stats(); }

  // AsyncEncoder.
  void submit(EncoderRequest request, EncoderCallback done) override;
  EncoderInfo info() const override;
  int in_flight() const override { return in_flight_.load(); }
  void shutdown() override;

  // Blocking: submit() and wait.
  Result<EncoderResponse> run(EncoderRequest request);
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
  struct Call;
  // Tokenizes with the limits applied; errors name the input (`name`) and the request `field`.
  Result<tokenizer::Encoding> encode(std::string_view text, std::optional<std::string_view> pair,
                                     const EncodeOptions& options, const std::string& name,
                                     const char* field = "input") const;
  Status check_count(size_t n, const std::string& field) const;
  EncodeJob job(const tokenizer::Encoding& e, Output output) const;
  // The request's jobs (and what finish() needs of them) into `call`.
  Status prepare(Call& call) const;
  Result<EncodeJob> token_job(const std::vector<int32_t>& ids, const EncodeOptions& options,
                              const std::string& name) const;
  // Every job is done: the heads over the rows, then `done`.
  void finish(Call& call);
  Result<EncoderResponse> respond(Call& call) const;
  Embedding pooled(std::vector<float> row, int n_tokens, const EncodeOptions& options) const;

  std::shared_ptr<const EncoderModel> model_;
  EncoderServiceOptions options_;
  EncoderEngine engine_;
  int max_tokens_;
  std::atomic<int> in_flight_{0};
  std::atomic<bool> shut_down_{false};
};

}  // namespace turbine::encoder
