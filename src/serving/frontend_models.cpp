#include "serving/frontend_models.h"

namespace turbine::serving {

void FrontendModels::preload(const std::string& location,
                             std::shared_ptr<const model::ModelInfo> info,
                             std::shared_ptr<tokenizer::Tokenizer> tokenizer) {
  std::lock_guard lock(mu_);
  preloaded_[location] = {std::move(info), std::move(tokenizer)};
}

void FrontendModels::set_aliases(const std::string& name, std::vector<std::string> aliases) {
  std::lock_guard lock(mu_);
  aliases_[name] = std::move(aliases);
}

std::vector<std::string> FrontendModels::aliases_of(const std::string& name) {
  std::lock_guard lock(mu_);
  auto it = aliases_.find(name);
  return it == aliases_.end() ? std::vector<std::string>{} : it->second;
}

ModelEvents FrontendModels::events() {
  return {[this](const runtime::ModelCard& card, ModelEngine engine) {
            return add(card, std::move(engine.engine));
          },
          [this](const std::string& name) {
            front_.remove_model(name);
            for (const std::string& a : aliases_of(name)) front_.remove_model(a);
          }};
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
  frontend::ModelParsers resolved;
  frontend::TextProcessorFactory parsers =
      frontend::parsers_for_model(parsers_, card.served_name, *l.info, *l.tokenizer, &resolved);
  const auto reasoning = resolved.reasoning_format;
  for (const std::string& a : aliases_of(card.served_name)) {
    TURBINE_RETURN_IF_ERROR(front_.add_model({a, l.info, l.tokenizer, engine, parsers, reasoning}));
  }
  return front_.add_model(
      {card.served_name, l.info, l.tokenizer, std::move(engine), std::move(parsers), reasoning});
}

}  // namespace turbine::serving
