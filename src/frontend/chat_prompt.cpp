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
  if (!template_) return RenderedPrompt{render_fallback(messages, add_generation_prompt), true};
  // Key order matters to templates that serialise messages (tojson), so keep insertion order.
  nlohmann::ordered_json msgs = nlohmann::ordered_json::array();
  for (const auto& m : messages) {
    nlohmann::ordered_json j;
    j["role"] = m.role;
    j["content"] = m.content;
    if (m.name) j["name"] = *m.name;
    if (m.tool_call_id) j["tool_call_id"] = *m.tool_call_id;
    msgs.push_back(std::move(j));
  }
  auto text = chat::apply_chat_template(*template_, msgs, nullptr, add_generation_prompt, bos_,
                                        eos_, nlohmann::ordered_json::object());
  if (!text) {
    return invalid_argument("the chat template rejected the messages: " + text.status().message(),
                            "messages");
  }
  // The template writes BOS itself, as in vLLM's chat path (add_special_tokens=false).
  return RenderedPrompt{std::move(*text), false};
}

ChatPrompt make_chat_prompt(const model::VocabSpec& vocab, const tokenizer::Tokenizer& tokenizer) {
  if (vocab.chat_template.empty()) return ChatPrompt{};
  auto parsed = chat::ChatTemplate::parse(vocab.chat_template);
  if (!parsed) {
    spdlog::warn("the model's chat template does not parse ({}); using the plain fallback",
                 parsed.status().message());
    return ChatPrompt{};
  }
  const int32_t bos = tokenizer.bos_id();
  const int32_t eos = tokenizer.eos_id();
  return ChatPrompt(std::make_shared<const chat::ChatTemplate>(std::move(*parsed)),
                    bos >= 0 ? tokenizer.piece(bos) : "", eos >= 0 ? tokenizer.piece(eos) : "");
}

}  // namespace turbine::frontend
