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

// Submits `request` to the source's model; `convert` turns its response into the answer.
template <typename T, typename Convert>
void call(const EncoderSource& source, const std::string& what, encoder::EncoderRequest request,
          semantic::ModelDone<T> done, Convert convert) {
  std::shared_ptr<encoder::AsyncEncoder> enc = source();
  if (!enc) {
    done(Status(StatusCode::kUnavailable, "no encoder worker serves " + what + " right now"));
    return;
  }
  const size_t n = request.texts.size();
  enc->submit(std::move(request), [done = std::move(done), convert = std::move(convert), n,
                                   what](Result<encoder::EncoderResponse> r) {
    if (!r.has_value()) {
      done(Status(r.status().code(), what + ": " + r.status().message(), r.status().field()));
      return;
    }
    Result<T> out = convert(std::move(r).value());
    if (out.has_value() && out->size() != n) {
      done(internal_error(what + " answered " + std::to_string(out->size()) + " results for " +
                          std::to_string(n) + " texts"));
      return;
    }
    done(std::move(out));
  });
}

encoder::EncoderRequest request_of(encoder::EncoderOp op, std::vector<std::string> texts,
                                   const encoder::EncodeOptions& options) {
  encoder::EncoderRequest r;
  r.op = op;
  r.texts = std::move(texts);
  r.options = options;
  return r;
}

}  // namespace

void RemoteEncoders::bind(Lookup lookup) {
  std::lock_guard<std::mutex> lock(mu_);
  lookup_ = std::move(lookup);
}

std::shared_ptr<encoder::AsyncEncoder> RemoteEncoders::find(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  return lookup_ ? lookup_(name) : nullptr;
}

EncoderEmbedder::EncoderEmbedder(EncoderSource source, std::string what, int max_tokens)
    : source_(std::move(source)), what_(std::move(what)), options_(truncating(max_tokens)) {}

void EncoderEmbedder::embed(std::vector<std::string> texts,
                            semantic::ModelDone<std::vector<std::vector<float>>> done) {
  using Out = std::vector<std::vector<float>>;
  call<Out>(source_, what_, request_of(encoder::EncoderOp::kEmbed, std::move(texts), options_),
            std::move(done), [](encoder::EncoderResponse r) -> Result<Out> {
              Out out;
              out.reserve(r.embeddings.size());
              for (encoder::Embedding& e : r.embeddings) out.push_back(std::move(e.vector));
              return out;
            });
}

EncoderSequenceClassifier::EncoderSequenceClassifier(EncoderSource source, std::string what,
                                                     int max_tokens)
    : source_(std::move(source)), what_(std::move(what)), options_(truncating(max_tokens)) {}

void EncoderSequenceClassifier::classify(
    std::vector<std::string> texts,
    semantic::ModelDone<std::vector<std::vector<semantic::LabelScore>>> done) {
  using Out = std::vector<std::vector<semantic::LabelScore>>;
  call<Out>(source_, what_, request_of(encoder::EncoderOp::kClassify, std::move(texts), options_),
            std::move(done), [](encoder::EncoderResponse r) -> Result<Out> {
              Out out;
              out.reserve(r.classifications.size());
              for (const encoder::Classification& c : r.classifications) {
                std::vector<semantic::LabelScore> labels;
                labels.reserve(c.labels.size());
                for (const encoder::LabelScore& l : c.labels) {
                  labels.push_back({l.label, l.probability});
                }
                out.push_back(std::move(labels));
              }
              return out;
            });
}

EncoderTokenClassifier::EncoderTokenClassifier(EncoderSource source, std::string what,
                                               int max_tokens)
    : source_(std::move(source)), what_(std::move(what)), options_(truncating(max_tokens)) {}

void EncoderTokenClassifier::classify(
    std::vector<std::string> texts,
    semantic::ModelDone<std::vector<std::vector<semantic::Entity>>> done) {
  using Out = std::vector<std::vector<semantic::Entity>>;
  call<Out>(source_, what_,
            request_of(encoder::EncoderOp::kClassifyTokens, std::move(texts), options_),
            std::move(done), [](encoder::EncoderResponse r) -> Result<Out> {
              Out out;
              out.reserve(r.token_classifications.size());
              for (const encoder::TokenClassification& t : r.token_classifications) {
                std::vector<semantic::Entity> ents;
                ents.reserve(t.entities.size());
                for (const encoder::Entity& e : t.entities) {
                  ents.push_back({"B-" + e.label, e.byte_start, e.byte_end, e.score});
                }
                out.push_back(std::move(ents));
              }
              return out;
            });
}

Result<LoadedEncoderModels> load_encoder_models(const semantic::EncoderModelsConfig& config,
                                                const EncoderLoader& loader,
                                                std::shared_ptr<RemoteEncoders> remote) {
  struct Want {
    const char* key;
    const semantic::EncoderModelRef* ref;
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
  LoadedEncoderModels out;
  for (const Want& w : wants) {
    if (w.ref->empty()) continue;
    const std::string& name = w.ref->model;
    EncoderModelEntry entry{w.key, name, w.ref->remote, w.task, {}};
    if (w.ref->remote) {
      if (!remote) {
        return bad(w.key,
                   "source: remote needs encoder workers, which only `turbine frontend` "
                   "discovers; use a local folder here");
      }
      entry.source = [remote, name] { return remote->find(name); };
      spdlog::info("semantic: {} is model '{}' on encoder workers (found through discovery)", w.key,
                   name);
    } else {
      std::shared_ptr<encoder::EncoderService>& service = loaded[name];
      if (!service) {
        std::error_code ec;
        if (!std::filesystem::is_directory(name, ec)) {
          return bad(w.key, "no model folder at " + name);
        }
        Result<std::shared_ptr<encoder::EncoderService>> made =
            Status(StatusCode::kInternal, "not loaded");
        if (loader) {
          made = loader(name);
        } else if (auto direct = encoder::EncoderService::load(name, opts); direct.has_value()) {
          made = std::shared_ptr<encoder::EncoderService>(std::move(direct).value());
        } else {
          made = direct.status();
        }
        if (!made.has_value()) {
          return bad(w.key, "cannot load " + name + ": " + made.status().message());
        }
        service = std::move(made).value();
        spdlog::info("semantic: {} model from {} ({}, up to {} tokens)", w.key, name,
                     encoder::task_name(service->task()), service->max_tokens());
      }
      if (service->task() != w.task) {
        return bad(w.key, name + " is a " + encoder::task_name(service->task()) +
                              " model; this key needs a " + encoder::task_name(w.task) + " model");
      }
      entry.source = [service] { return std::shared_ptr<encoder::AsyncEncoder>(service); };
    }
    const std::string what = "model '" + name + "' (" + w.key + ")";
    switch (w.task) {
      case encoder::EncoderTask::kEmbedding:
        out.models.embedder = std::make_shared<EncoderEmbedder>(entry.source, what, max_tokens);
        break;
      case encoder::EncoderTask::kClassification:
        if (w.ref == &config.domain_classifier) {
          out.models.domain_classifier =
              std::make_shared<EncoderSequenceClassifier>(entry.source, what, max_tokens);
        } else {
          out.models.jailbreak_classifier =
              std::make_shared<EncoderSequenceClassifier>(entry.source, what, max_tokens);
        }
        break;
      case encoder::EncoderTask::kTokenClassification:
        out.models.pii_classifier =
            std::make_shared<EncoderTokenClassifier>(entry.source, what, max_tokens);
        break;
      case encoder::EncoderTask::kScore: break;
    }
    out.entries.push_back(std::move(entry));
  }
  return out;
}

}  // namespace turbine::semantic_hook
