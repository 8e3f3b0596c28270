// The bridge from runtime::ModelWatcher to the HTTP frontend's model registry, shared by
// `turbine run` and `turbine frontend`: a model that appears is added with the vocabulary and
// chat template read from its card's tokenizer location (the weights are mapped, not read), or
// with a model this process has loaded already (`turbine run`).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "frontend/frontend.h"
#include "frontend/output_parsers.h"
#include "model/model.h"
#include "runtime/model_watcher.h"
#include "tokenizer/tokenizer.h"

namespace turbine::cli {

class FrontendModels {
 public:
  // `parsers`: the --tool-call-parser / --reasoning-parser choice, applied to every model added.
  explicit FrontendModels(frontend::Frontend& front, frontend::ParserChoice parsers = {})
      : front_(front), parsers_(std::move(parsers)) {}
  // A model already loaded, for cards whose tokenizer_location is `location`.
  void preload(const std::string& location, std::shared_ptr<const model::Model> model,
               std::shared_ptr<tokenizer::Tokenizer> tokenizer);
  // Callbacks for a ModelWatcher; `this` must outlive it.
  runtime::ModelEvents events();

 private:
  struct Loaded {
    std::shared_ptr<const model::Model> model;
    std::shared_ptr<tokenizer::Tokenizer> tokenizer;
  };
  Status add(const runtime::ModelCard& card, std::shared_ptr<engine::AsyncEngine> engine);

  frontend::Frontend& front_;
  const frontend::ParserChoice parsers_;
  std::mutex mu_;
  std::map<std::string, Loaded> preloaded_;
};

}  // namespace turbine::cli
