// The bridge from runtime::ModelWatcher to the HTTP frontend's model registry, shared by
// `turbine run` and `turbine frontend`: a model that appears is added with the vocabulary and
// chat template read from its card's tokenizer location (the weights are mapped, not read), or
// with a model this process has loaded already (`turbine run`).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "frontend/frontend.h"
#include "model/model.h"
#include "runtime/model_watcher.h"
#include "tokenizer/tokenizer.h"

namespace turbine::cli {

class FrontendModels {
 public:
  explicit FrontendModels(frontend::Frontend& front) : front_(front) {}
  // A model already loaded, for cards whose tokenizer_location is `location`.
  void preload(const std::string& location, std::shared_ptr<const model::Model> model,
               std::shared_ptr<tokenizer::Tokenizer> tokenizer);
  // Every card named `name` is also served under `aliases` (`--served-model-name a b`, as
  // vLLM's: the first name is the one workers announce; all route to the same engine).
  void set_aliases(const std::string& name, std::vector<std::string> aliases);
  // Callbacks for a ModelWatcher; `this` must outlive it.
  runtime::ModelEvents events();

 private:
  struct Loaded {
    std::shared_ptr<const model::Model> model;
    std::shared_ptr<tokenizer::Tokenizer> tokenizer;
  };
  Status add(const runtime::ModelCard& card, std::shared_ptr<engine::AsyncEngine> engine);

  frontend::Frontend& front_;
  std::mutex mu_;
  std::map<std::string, Loaded> preloaded_;
  std::map<std::string, std::vector<std::string>> aliases_;  // served name -> more names
};

}  // namespace turbine::cli
