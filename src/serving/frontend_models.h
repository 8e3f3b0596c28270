// The bridge from a ModelWatcher to the HTTP frontend's model registry, shared by `turbine run`
// and `turbine frontend`: a model that appears is added with the vocabulary, chat template and
// context length read from its card's tokenizer location (metadata only, model/model_info.h: no
// weights are mapped), or with what this process has loaded already (`turbine run`).
//
// Threads: events() runs on the watcher's discovery callbacks; preload() on any thread. mu_
// guards preloaded_.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "frontend/frontend.h"
#include "model/model_info.h"
#include "serving/model_watcher.h"
#include "tokenizer/tokenizer.h"

namespace turbine::serving {

class FrontendModels {
 public:
  explicit FrontendModels(frontend::Frontend& front) : front_(front) {}
  // What to use for cards whose tokenizer_location is `location` instead of reading it.
  void preload(const std::string& location, std::shared_ptr<const model::ModelInfo> info,
               std::shared_ptr<tokenizer::Tokenizer> tokenizer);
  // Callbacks for a ModelWatcher; `this` must outlive it.
  ModelEvents events();

 private:
  struct Loaded {
    std::shared_ptr<const model::ModelInfo> info;
    std::shared_ptr<tokenizer::Tokenizer> tokenizer;
  };
  Status add(const runtime::ModelCard& card, std::shared_ptr<engine::AsyncEngine> engine);

  frontend::Frontend& front_;
  std::mutex mu_;
  std::map<std::string, Loaded> preloaded_;
};

}  // namespace turbine::serving
