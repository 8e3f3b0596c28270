#include "serving/frontend_models.h"

namespace turbine::serving {

void FrontendModels::preload(const std::string& location,
                             std::shared_ptr<const model::ModelInfo> info,
                             std::shared_ptr<tokenizer::Tokenizer> tokenizer) {
  std::lock_guard lock(mu_);
  preloaded_[location] = {std::move(info), std::move(tokenizer)};
}

ModelEvents FrontendModels::events() {
  return {[this](const runtime::ModelCard& card, ModelEngine engine) {
            return add(card, std::move(engine.engine));
          },
          [this](const std::string& name) { front_.remove_model(name); }};
}

Status FrontendModels::add(const runtime::ModelCard& card,
                           std::shared_ptr<engine::AsyncEngine> engine) {
  Loaded l;
  {
    std::lock_guard lock(mu_);
    auto it = preloaded_.find(card.tokenizer_location);
    if (it != preloaded_.end()) l = it->second;
  }
  if (!l.info) {
    auto info = model::load_model_info(card.tokenizer_location);
    if (!info) {
      return Status{info.status().code(), "cannot load the tokenizer from " +
                                              card.tokenizer_location + ": " +
                                              info.status().message()};
    }
    l.info = std::make_shared<const model::ModelInfo>(std::move(*info));
    TURBINE_ASSIGN_OR_RETURN(auto tok, tokenizer::make_tokenizer(l.info->vocab));
    l.tokenizer = std::move(tok);
  }
  return front_.add_model({card.served_name, l.info, l.tokenizer, std::move(engine), {}});
}

}  // namespace turbine::serving
