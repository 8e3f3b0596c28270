// The semantic stage's model interfaces (semantic/models.h) over the encoder module's in-process
// EncoderService: embeddings for embedding signals and the semantic cache, sequence
// classification for domain signals and the jailbreak classifier, token classification for the
// PII model. The folders come from the config's `encoder_models` section.
//
// Thread ownership: each adapter may be called from any thread at once (EncoderService queues
// the work on its engine thread and blocks the caller until it is done).
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "encoder/encoder_service.h"
#include "semantic/config.h"
#include "semantic/models.h"

namespace turbine::semantic_hook {

class EncoderEmbedder final : public semantic::Embedder {
 public:
  EncoderEmbedder(std::shared_ptr<encoder::EncoderService> service, int max_tokens);
  Result<std::vector<std::vector<float>>> embed(std::span<const std::string> texts) override;

 private:
  std::shared_ptr<encoder::EncoderService> service_;
  encoder::EncodeOptions options_;
};

// Labels are the model's id2label names, scores its softmax probabilities.
class EncoderSequenceClassifier final : public semantic::SequenceClassifier {
 public:
  EncoderSequenceClassifier(std::shared_ptr<encoder::EncoderService> service, int max_tokens);
  Result<std::vector<semantic::LabelScore>> classify(std::string_view text) override;

 private:
  std::shared_ptr<encoder::EncoderService> service_;
  encoder::EncodeOptions options_;
};

// Entities as "B-<type>" labels (the encoder groups BIO tags into typed spans) with byte offsets
// into the text.
class EncoderTokenClassifier final : public semantic::TokenClassifier {
 public:
  EncoderTokenClassifier(std::shared_ptr<encoder::EncoderService> service, int max_tokens);
  Result<std::vector<semantic::Entity>> classify(std::string_view text) override;

 private:
  std::shared_ptr<encoder::EncoderService> service_;
  encoder::EncodeOptions options_;
};

// Loads every folder `config` names (a folder named by two keys is loaded once) and checks that
// each model does the task its key needs. Errors are invalid_argument naming the key
// ("semantic config: encoder_models.embedding: ..."), so a bad folder refuses the start.
Result<semantic::Models> load_encoder_models(const semantic::EncoderModelsConfig& config);

}  // namespace turbine::semantic_hook
