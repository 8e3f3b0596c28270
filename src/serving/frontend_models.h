// The bridge from a ModelWatcher to the HTTP frontend's model registry, shared by `turbine run`
// and `turbine frontend`: a model that appears is added with the vocabulary, chat template and
// context length read from its card's tokenizer location (metadata only, model/model_info.h: no
// weights are mapped), or with what this process has loaded already (`turbine run`).
//
// Threads: events() runs on the watcher's discovery callbacks; preload() and set_aliases() on any
// thread. mu_ guards preloaded_ and aliases_.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "frontend/frontend.h"
#include "frontend/output_parsers.h"
#include "model/model_info.h"
#include "serving/model_watcher.h"
#include "tokenizer/tokenizer.h"

namespace turbine::serving {

class FrontendModels {
 public:
  // `parsers`: the --tool-call-parser / --reasoning-parser choice, applied to every model added
  // (frontend::parsers_for_model).
  explicit FrontendModels(frontend::Frontend& front, frontend::ParserChoice parsers = {})
      : front_(front), parsers_(std::move(parsers)) {}
  // What to use for cards whose tokenizer_location is `location` instead of reading it.
  void preload(const std::string& location, std::shared_ptr<const model::ModelInfo> info,
               std::shared_ptr<tokenizer::Tokenizer> tokenizer);
  // Every card named `name` is also served under `aliases` (`--served-model-name a b`, as
  // vLLM's: the first name is the one workers announce; all route to the same engine).
  void set_aliases(const std::string& name, std::vector<std::string> aliases);
  // Callbacks for a ModelWatcher; `this` must outlive it.
  ModelEvents events();

 private:
  struct Loaded {
    std::shared_ptr<const model::ModelInfo> info;
    std::shared_ptr<tokenizer::Tokenizer> tokenizer;
  };
  Status add(const runtime::ModelCard& card, std::shared_ptr<engine::AsyncEngine> engine);
  std::vector<std::string> aliases_of(const std::string& name);

  frontend::Frontend& front_;
  const frontend::ParserChoice parsers_;
  std::mutex mu_;
  std::map<std::string, Loaded> preloaded_;
  std::map<std::string, std::vector<std::string>> aliases_;  // served name -> more names
};

}  // namespace turbine::serving
