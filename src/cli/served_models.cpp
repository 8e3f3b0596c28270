#include "cli/served_models.h"

#include "cli/parser_flags.h"

namespace turbine::cli {

void FrontendModels::preload(const std::string& location, std::shared_ptr<const model::Model> model,
                             std::shared_ptr<tokenizer::Tokenizer> tokenizer) {
  std::lock_guard lock(mu_);
  preloaded_[location] = {std::move(model), std::move(tokenizer)};
}

runtime::ModelEvents FrontendModels::events() {
  return {[this](const runtime::ModelCard& card, std::shared_ptr<engine::AsyncEngine> engine) {
            return add(card, std::move(engine));
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
  frontend::ServedModel served{card.served_name, l.model, l.tokenizer, std::move(engine), {}};
  attach_parsers(served, parsers_, *l.model, *l.tokenizer);
  return front_.add_model(std::move(served));
}

}  // namespace turbine::cli
