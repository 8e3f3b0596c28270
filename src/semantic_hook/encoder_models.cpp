#include "semantic_hook/encoder_models.h"

#include <filesystem>
#include <map>

#include <spdlog/spdlog.h>

namespace turbine::semantic_hook {
namespace {

encoder::EncodeOptions truncating(int max_tokens) {
  encoder::EncodeOptions o;
  o.truncate = true;  // the semantic router caps classifier inputs the same way (512 tokens)
  o.truncate_tokens = max_tokens;
  return o;
}

Status bad(const std::string& key, const std::string& what) {
  return invalid_argument("semantic config: " + key + ": " + what, key);
}

}  // namespace

EncoderEmbedder::EncoderEmbedder(std::shared_ptr<encoder::EncoderService> service, int max_tokens)
    : service_(std::move(service)), options_(truncating(max_tokens)) {}

Result<std::vector<std::vector<float>>> EncoderEmbedder::embed(std::span<const std::string> texts) {
  TURBINE_ASSIGN_OR_RETURN(
      std::vector<encoder::Embedding> e,
      service_->embed(std::vector<std::string>(texts.begin(), texts.end()), options_));
  std::vector<std::vector<float>> out;
  out.reserve(e.size());
  for (encoder::Embedding& v : e) out.push_back(std::move(v.vector));
  return out;
}

EncoderSequenceClassifier::EncoderSequenceClassifier(
    std::shared_ptr<encoder::EncoderService> service, int max_tokens)
    : service_(std::move(service)), options_(truncating(max_tokens)) {}

Result<std::vector<semantic::LabelScore>> EncoderSequenceClassifier::classify(
    std::string_view text) {
  TURBINE_ASSIGN_OR_RETURN(std::vector<encoder::Classification> c,
                           service_->classify({std::string(text)}, options_));
  std::vector<semantic::LabelScore> out;
  if (c.empty()) return out;
  out.reserve(c[0].labels.size());
  for (const encoder::LabelScore& l : c[0].labels) out.push_back({l.label, l.probability});
  return out;
}

EncoderTokenClassifier::EncoderTokenClassifier(std::shared_ptr<encoder::EncoderService> service,
                                               int max_tokens)
    : service_(std::move(service)), options_(truncating(max_tokens)) {}

Result<std::vector<semantic::Entity>> EncoderTokenClassifier::classify(std::string_view text) {
  TURBINE_ASSIGN_OR_RETURN(encoder::TokenClassification t,
                           service_->classify_tokens(text, options_));
  std::vector<semantic::Entity> out;
  out.reserve(t.entities.size());
  for (const encoder::Entity& e : t.entities) {
    out.push_back({"B-" + e.label, e.byte_start, e.byte_end, e.score});
  }
  return out;
}

Result<semantic::Models> load_encoder_models(const semantic::EncoderModelsConfig& config,
                                             const EncoderLoader& loader) {
  struct Want {
    const char* key;
    const std::string* folder;
    encoder::EncoderTask task;
  };
  const Want wants[] = {
      {"encoder_models.embedding", &config.embedding, encoder::EncoderTask::kEmbedding},
      {"encoder_models.domain_classifier", &config.domain_classifier,
       encoder::EncoderTask::kClassification},
      {"encoder_models.jailbreak_classifier", &config.jailbreak_classifier,
       encoder::EncoderTask::kClassification},
      {"encoder_models.pii_classifier", &config.pii_classifier,
       encoder::EncoderTask::kTokenClassification},
  };
  encoder::EncoderServiceOptions opts;
  opts.backend.n_threads = static_cast<int>(config.threads);
  const int max_tokens = static_cast<int>(config.max_tokens);
  std::map<std::string, std::shared_ptr<encoder::EncoderService>> loaded;  // by folder
  semantic::Models models;
  for (const Want& w : wants) {
    if (w.folder->empty()) continue;
    std::shared_ptr<encoder::EncoderService>& service = loaded[*w.folder];
    if (!service) {
      std::error_code ec;
      if (!std::filesystem::is_directory(*w.folder, ec)) {
        return bad(w.key, "no model folder at " + *w.folder);
      }
      if (loader) {
        auto made = loader(*w.folder);
        if (!made.has_value()) {
          return bad(w.key, "cannot load " + *w.folder + ": " + made.status().message());
        }
        service = std::move(*made);
      } else {
        auto made = encoder::EncoderService::load(*w.folder, opts);
        if (!made.has_value()) {
          return bad(w.key, "cannot load " + *w.folder + ": " + made.status().message());
        }
        service = std::move(*made);
      }
      spdlog::info("semantic: {} model from {} ({}, up to {} tokens)", w.key, *w.folder,
                   encoder::task_name(service->task()), service->max_tokens());
    }
    if (service->task() != w.task) {
      return bad(w.key, *w.folder + " is a " + encoder::task_name(service->task()) +
                            " model; this key needs a " + encoder::task_name(w.task) + " model");
    }
    switch (w.task) {
      case encoder::EncoderTask::kEmbedding:
        models.embedder = std::make_shared<EncoderEmbedder>(service, max_tokens);
        break;
      case encoder::EncoderTask::kClassification:
        if (w.folder == &config.domain_classifier) {
          models.domain_classifier =
              std::make_shared<EncoderSequenceClassifier>(service, max_tokens);
        } else {
          models.jailbreak_classifier =
              std::make_shared<EncoderSequenceClassifier>(service, max_tokens);
        }
        break;
      case encoder::EncoderTask::kTokenClassification:
        models.pii_classifier = std::make_shared<EncoderTokenClassifier>(service, max_tokens);
        break;
      case encoder::EncoderTask::kScore: break;
    }
  }
  return models;
}

}  // namespace turbine::semantic_hook
