#include "frontend/chat_prompt.h"

#include <spdlog/spdlog.h>

namespace turbine::frontend {

std::string ChatPrompt::render_fallback(const std::vector<api::ChatMessage>& messages,
                                        bool add_generation_prompt) {
  std::string out;
  for (const auto& m : messages) {
    out += m.role;
    out += ": ";
    out += m.content;
    out += '\n';
  }
  if (add_generation_prompt) out += "assistant:";
  return out;
}

Result<RenderedPrompt> ChatPrompt::render(const std::vector<api::ChatMessage>& messages,
                                          bool add_generation_prompt) const {
  if (messages.empty()) return invalid_argument("messages must not be empty", "messages");
  return RenderedPrompt{render_fallback(messages, add_generation_prompt), true};
}

ChatPrompt make_chat_prompt(const model::VocabSpec& vocab) {
  if (!vocab.chat_template.empty()) {
    spdlog::warn("the model's chat template is not supported yet; using the plain fallback");
  }
  return ChatPrompt{};
}

}  // namespace turbine::frontend
