#include "cli/served_models.h"

namespace turbine::cli {

void FrontendModels::preload(const std::string& location, std::shared_ptr<const model::Model> model,
                             std::shared_ptr<tokenizer::Tokenizer> tokenizer) {
  std::lock_guard lock(mu_);
  preloaded_[location] = {std::move(model), std::move(tokenizer)};
}

void FrontendModels::set_aliases(const std::string& name, std::vector<std::string> aliases) {
  std::lock_guard lock(mu_);
  aliases_[name] = std::move(aliases);
}

runtime::ModelEvents FrontendModels::events() {
  return {[this](const runtime::ModelCard& card, std::shared_ptr<engine::AsyncEngine> engine) {
            return add(card, std::move(engine));
          },
          [this](const std::string& name) {
            std::vector<std::string> aliases;
            {
              std::lock_guard lock(mu_);
              auto it = aliases_.find(name);
              if (it != aliases_.end()) aliases = it->second;
            }
            front_.remove_model(name);
            for (const std::string& a : aliases) front_.remove_model(a);
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
  if (!l.model) {
    auto loaded = model::load_model(card.tokenizer_location);
    if (!loaded) {
      return Status{loaded.status().code(), "cannot load the tokenizer from " +
                                                card.tokenizer_location + ": " +
                                                loaded.status().message()};
    }
    l.model = std::move(*loaded);
    TURBINE_ASSIGN_OR_RETURN(auto tok, tokenizer::make_tokenizer(l.model->vocab()));
    l.tokenizer = std::move(tok);
  }
  std::vector<std::string> aliases;
  {
    std::lock_guard lock(mu_);
    auto it = aliases_.find(card.served_name);
    if (it != aliases_.end()) aliases = it->second;
  }
  for (const std::string& a : aliases) {
    TURBINE_RETURN_IF_ERROR(front_.add_model({a, l.model, l.tokenizer, engine, {}}));
  }
  return front_.add_model({card.served_name, l.model, l.tokenizer, std::move(engine), {}});
}

}  // namespace turbine::cli
