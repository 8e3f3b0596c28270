// The semantic stage's model interfaces (semantic/models.h) over the encoder module's in-process
// EncoderService: embeddings for embedding signals and the semantic cache, sequence
// classification for domain signals and the jailbreak classifier, token classification for the
// PII model. The folders come from the config's `encoder_models` section.
//
// Thread ownership: each adapter may be called from any thread at once (EncoderService queues
// the work on its engine thread and blocks the caller until it is done).
#pragma once

#include <filesystem>
#include <functional>
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

// Loads one encoder folder as a service; the CLI passes one for `--semantic-encoder-device cuda`
// (the CUDA encoder backend lives outside this module). Errors are reported under the config key.
using EncoderLoader =
    std::function<Result<std::shared_ptr<encoder::EncoderService>>(const std::filesystem::path&)>;

// The models named by `config` (a folder named twice is loaded once), each through `loader`, or
// without one on the CPU backend with `config.threads`. A missing folder or a model of the wrong
// task is an error naming the key.
Result<semantic::Models> load_encoder_models(const semantic::EncoderModelsConfig& config,
                                             const EncoderLoader& loader = {});

}  // namespace turbine::semantic_hook
