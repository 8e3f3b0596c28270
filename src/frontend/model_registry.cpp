#include "frontend/model_registry.h"

#include <algorithm>

namespace turbine::frontend {

size_t longest_token_bytes(const tokenizer::Tokenizer& tokenizer) {
  size_t longest = 1;
  for (int32_t id = 0; id < tokenizer.vocab_size(); ++id) {
    // Specials render as their piece when not skipped, and appear as such in templated text.
    longest = std::max({longest, tokenizer.token_bytes(id).size(), tokenizer.piece(id).size()});
  }
  return longest;
}

ModelRegistry::ModelRegistry(std::chrono::seconds retention, std::function<Clock::time_point()> now)
    : retention_(retention), now_(std::move(now)) {}

void ModelRegistry::add(ModelPtr model) {
  std::lock_guard lock(mu_);
  const std::string& name = model->name;
  removed_.erase(name);
  if (std::find(order_.begin(), order_.end(), name) == order_.end()) order_.push_back(name);
  models_[name] = std::move(model);
}

void ModelRegistry::remove(const std::string& name) {
  std::lock_guard lock(mu_);
  if (models_.erase(name) > 0) removed_[name] = now_();
}

Result<ModelPtr> ModelRegistry::find(const std::string& name) const {
  std::lock_guard lock(mu_);
  if (name.empty()) {
    for (const std::string& n : order_) {
      auto it = models_.find(n);
      if (it != models_.end()) return it->second;
    }
    return not_found("no model is served", "model");
  }
  if (auto it = models_.find(name); it != models_.end()) return it->second;
  if (auto it = removed_.find(name); it != removed_.end()) {
    if (now_() - it->second < retention_) {
      return Status(StatusCode::kUnavailable,
                    "The model `" + name + "` has no available workers right now; retry later.",
                    "model");
    }
    removed_.erase(it);  // forgotten: a 404 from now on
  }
  return not_found("The model `" + name + "` does not exist.", "model");
}

Result<ModelPtr> ModelRegistry::find_served(const std::string& name) const {
  std::lock_guard lock(mu_);
  if (auto it = models_.find(name); it != models_.end()) return it->second;
  return not_found("The model `" + name + "` does not exist.", "model");
}

std::vector<ModelPtr> ModelRegistry::models() const {
  std::lock_guard lock(mu_);
  std::vector<ModelPtr> out;
  out.reserve(models_.size());
  for (const auto& [name, m] : models_) out.push_back(m);
  return out;
}

std::vector<std::string> ModelRegistry::names() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  out.reserve(models_.size());
  for (const auto& [name, m] : models_) out.push_back(name);
  return out;
}

}  // namespace turbine::frontend
