// Chat messages -> prompt text, with the model's chat template or the documented plain fallback.
//
// Immutable after construction; render() is safe from any thread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "api/openai.h"
#include "chat/chat_template.h"
#include "common/status.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace turbine::frontend {

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
  Result<RenderedPrompt> render(const std::vector<api::ChatMessage>& messages,
                                bool add_generation_prompt) const;

 private:
  std::shared_ptr<const chat::ChatTemplate> template_;
  std::string bos_;
  std::string eos_;
};

// Uses the vocabulary's chat template when it parses; logs and falls back otherwise.
ChatPrompt make_chat_prompt(const model::VocabSpec& vocab, const tokenizer::Tokenizer& tokenizer);

}  // namespace turbine::frontend
