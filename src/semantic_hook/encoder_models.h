// The semantic stage's model interfaces (semantic/models.h) over the encoder module's
// AsyncEncoder: embeddings for embedding signals and the semantic cache, sequence classification
// for domain signals and the jailbreak classifier, token classification for the PII model.
//
// Each `encoder_models` key names a local folder (loaded here into an in-process EncoderService)
// or, with `source: remote`, the served name of a model that encoder workers serve: its adapter
// looks the name up in RemoteEncoders on every call (the RoutedEncoder of `turbine frontend`'s
// EncoderWatcher: least-loaded over the workers, retried on a lost one), so a model whose workers
// come later, leave or come back is used whenever it is there. Not there: the call answers
// kUnavailable at once and the stage treats the signal as absent.
//
// Thread ownership: the adapters may be called from any thread at once; they submit and return
// (answers come on the model's engine thread or a connection's strand). RemoteEncoders is
// thread-safe; its lookup is bound and unbound by the CLI's main thread.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"
#include "encoder/async_encoder.h"
#include "encoder/encoder_service.h"
#include "semantic/config.h"
#include "semantic/models.h"

namespace turbine::semantic_hook {

// The encoder models served elsewhere, by served name. `turbine frontend` binds it to its
// EncoderWatcher once that runs and unbinds it before the watcher stops; unbound, nothing is
// found.
class RemoteEncoders {
 public:
  using Lookup = std::function<std::shared_ptr<encoder::AsyncEncoder>(const std::string& name)>;
  // Replaces the lookup (empty: unbind). Returns once no call runs the previous one.
  void bind(Lookup lookup);
  // The model's encoder, or null while nobody serves it.
  std::shared_ptr<encoder::AsyncEncoder> find(const std::string& name) const;

 private:
  mutable std::mutex mu_;  // guards lookup_; held while it runs, so unbind() waits for callers
  Lookup lookup_;
};

// Where an adapter finds its model at each call (null: not available now).
using EncoderSource = std::function<std::shared_ptr<encoder::AsyncEncoder>()>;

class EncoderEmbedder final : public semantic::Embedder {
 public:
  // `what` names the model in errors ("model 'x' (encoder_models.embedding)").
  EncoderEmbedder(EncoderSource source, std::string what, int max_tokens);
  void embed(std::vector<std::string> texts,
             semantic::ModelDone<std::vector<std::vector<float>>> done) override;

 private:
  EncoderSource source_;
  std::string what_;
  encoder::EncodeOptions options_;
};

// Labels are the model's id2label names, scores its softmax probabilities.
class EncoderSequenceClassifier final : public semantic::SequenceClassifier {
 public:
  EncoderSequenceClassifier(EncoderSource source, std::string what, int max_tokens);
  void classify(std::vector<std::string> texts,
                semantic::ModelDone<std::vector<std::vector<semantic::LabelScore>>> done) override;

 private:
  EncoderSource source_;
  std::string what_;
  encoder::EncodeOptions options_;
};

// Entities as "B-<type>" labels (the encoder groups BIO tags into typed spans) with byte offsets
// into the text.
class EncoderTokenClassifier final : public semantic::TokenClassifier {
 public:
  EncoderTokenClassifier(EncoderSource source, std::string what, int max_tokens);
  void classify(std::vector<std::string> texts,
                semantic::ModelDone<std::vector<std::vector<semantic::Entity>>> done) override;

 private:
  EncoderSource source_;
  std::string what_;
  encoder::EncodeOptions options_;
};

// Loads one encoder folder as a service; the CLI passes one for `--semantic-encoder-device cuda`
// (the CUDA encoder backend lives outside this module). Errors are reported under the config key.
using EncoderLoader =
    std::function<Result<std::shared_ptr<encoder::EncoderService>>(const std::filesystem::path&)>;

// One configured model: its key, what it names, and how to reach it.
struct EncoderModelEntry {
  std::string key;    // "encoder_models.embedding", ...
  std::string model;  // the folder or the served name
  bool remote = false;
  encoder::EncoderTask task = encoder::EncoderTask::kEmbedding;  // what the key needs
  EncoderSource source;
};

struct LoadedEncoderModels {
  semantic::Models models;
  std::vector<EncoderModelEntry> entries;  // in key order
};

// The models named by `config`: local folders loaded once each (a folder named by two keys is
// shared) through `loader`, or without one on the CPU backend with `config.threads`; remote names
// found through `remote` at call time (no remote model without it: an error naming the key). A
// missing folder or a local model of the wrong task is an error naming the key; a remote model's
// task is checked when it appears (SemanticLayer).
Result<LoadedEncoderModels> load_encoder_models(const semantic::EncoderModelsConfig& config,
                                                const EncoderLoader& loader = {},
                                                std::shared_ptr<RemoteEncoders> remote = nullptr);

}  // namespace turbine::semantic_hook
