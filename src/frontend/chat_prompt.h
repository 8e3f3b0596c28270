// Chat messages -> prompt text, with the model's template or the documented plain fallback.
//
// Immutable after construction; render() is safe from any thread.
#pragma once

#include <string>
#include <vector>

#include "api/openai.h"
#include "common/status.h"
#include "model/model.h"

namespace turbine::frontend {

struct RenderedPrompt {
  std::string text;
  // Whether the tokenizer should add BOS/EOS: false when the template writes them itself.
  bool add_special_tokens = true;
};

class ChatPrompt {
 public:
  // The fallback template (docs/ARCHITECTURE.md, "Chat templates"):
  //   "{role}: {content}\n" per message, then "assistant:" when add_generation_prompt.
  static std::string render_fallback(const std::vector<api::ChatMessage>& messages,
                                     bool add_generation_prompt);

  Result<RenderedPrompt> render(const std::vector<api::ChatMessage>& messages,
                                bool add_generation_prompt) const;
};

ChatPrompt make_chat_prompt(const model::VocabSpec& vocab);

}  // namespace turbine::frontend
