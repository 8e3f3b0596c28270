// Chat messages -> prompt text, with the model's chat template or the documented plain fallback.
//
// Immutable after construction; render() is safe from any thread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/openai.h"
#include "chat/chat_template.h"
#include "common/status.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace turbine::frontend {

// What transformers' apply_chat_template takes, as JSON. Messages go to the template as they are.
struct ChatTemplateInputs {
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  nlohmann::ordered_json tools;                                      // null: none
  nlohmann::ordered_json kwargs = nlohmann::ordered_json::object();  // e.g. enable_thinking
  bool add_generation_prompt = true;
  // Cut the text right after the last message's content so the model continues it (transformers'
  // continue_final_message: the content, stripped, must appear in the output).
  bool continue_final_message = false;
};

// Renders `tmpl`. Errors (the template's raise_exception included) are kInvalidArgument; the field
// is the input at fault ("chat_template_kwargs", "messages").
Result<std::string> render_chat_template(const chat::ChatTemplate& tmpl,
                                         const ChatTemplateInputs& inputs,
                                         const std::string& bos_token,
                                         const std::string& eos_token);

struct RenderedPrompt {
  std::string text;
  // Whether the tokenizer should add BOS/EOS: false when a template writes them itself.
  bool add_special_tokens = true;
};

class ChatPrompt {
 public:
  // The fallback template (docs/ARCHITECTURE.md, "Chat templates"):
  //   "{role}: {content}\n" per message, then "assistant:" when add_generation_prompt.
  static std::string render_fallback(const std::vector<api::ChatMessage>& messages,
                                     bool add_generation_prompt);

  // The model's template (Jinja, as in tokenizer_config.json or GGUF tokenizer.chat_template);
  // none: the fallback.
  ChatPrompt(std::shared_ptr<const chat::ChatTemplate> tmpl, std::string bos_token,
             std::string eos_token)
      : template_(std::move(tmpl)), bos_(std::move(bos_token)), eos_(std::move(eos_token)) {}
  ChatPrompt() = default;

  bool has_template() const { return template_ != nullptr; }

  // Template errors (including the template's own raise_exception) are kInvalidArgument: a 400.
  // `fields` are the request's template fields: its own template (parsed here; errors name
  // `chat_template`), kwargs, tools and continue_final_message. Messages are given to the template
  // as vLLM does: tool_calls as JSON with their `arguments` text parsed into an object.
  Result<RenderedPrompt> render(const std::vector<api::ChatMessage>& messages,
                                bool add_generation_prompt,
                                const api::ChatTemplateFields& fields = {}) const;

 private:
  std::shared_ptr<const chat::ChatTemplate> template_;
  std::string bos_;
  std::string eos_;
};

// Uses the vocabulary's chat template when it parses; logs and falls back otherwise.
ChatPrompt make_chat_prompt(const model::VocabSpec& vocab, const tokenizer::Tokenizer& tokenizer);

}  // namespace turbine::frontend
