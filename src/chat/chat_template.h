// Chat templates: the Jinja programs in Hugging Face `tokenizer_config.json` (`chat_template`)
// that turn an OpenAI-style message list into the prompt text.
//
// Rendering matches @huggingface/jinja (the renderer of transformers.js) byte for byte; the
// parity test in tests/unit/chat runs both on the same conversations. Where that renderer
// differs from Python Jinja, we follow it:
//   * `true`/`false` print as "true"/"false"; a float with no fraction prints "2.0", but JSON
//     input numbers with no fraction (2.0) are integers, as after JSON.parse;
//   * `str.strip/lstrip/rstrip(chars)` ignore `chars` and strip white space;
//   * an iteration cut short by `break`/`continue` contributes no output;
//   * `==` is JavaScript loose equality (lists and dicts compare by identity);
//   * `int` on a float floors; macros see the caller's variables.
// Strings are UTF-8: `length` counts UTF-16 units like JavaScript, but indexing and slicing count
// code points, and upper/lower/title change ASCII letters only. `{% call %}` blocks are not
// supported.
//
// Templates come from model files and variables from users, so neither can crash the process:
// every failure is a kInvalidArgument Status (raise_exception's message is the template's own),
// nesting and work are bounded (see RenderLimits), and no exception escapes.
//
// Thread safety: a ChatTemplate is immutable after parse(); render() may run concurrently.
#pragma once

#include <ctime>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "chat/template_eval.h"
#include "chat/template_parser.h"
#include "common/status.h"

namespace turbine::chat {

struct ChatTemplateOptions {
  ParseLimits parse_limits;
  RenderLimits render_limits;
  // Local wall-clock time for strftime_now(); the system clock when empty.
  std::function<std::tm()> local_time;
};

class ChatTemplate {
 public:
  static Result<ChatTemplate> parse(std::string_view source, ChatTemplateOptions options = {});

  // `context` is a JSON object of template variables. Objects keep the order of their keys
  // (ordered_json), which `tojson` reproduces; the nlohmann::json overload has sorted keys.
  Result<std::string> render(const nlohmann::ordered_json& context) const;
  Result<std::string> render(const nlohmann::json& context) const;

 private:
  struct Compiled {
    std::unique_ptr<Program> program;
    ChatTemplateOptions options;
  };
  explicit ChatTemplate(std::shared_ptr<const Compiled> compiled)
      : compiled_(std::move(compiled)) {}

  template <typename Json>
  Result<std::string> render_impl(const Json& context) const;

  std::shared_ptr<const Compiled> compiled_;
};

// What transformers passes to a chat template: messages, tools (null when there are none),
// add_generation_prompt, bos_token, eos_token, then `extra_kwargs` (e.g. enable_thinking), which
// must be a JSON object (or null) and may not repeat those names.
Result<std::string> apply_chat_template(const ChatTemplate& tmpl,
                                        const nlohmann::ordered_json& messages,
                                        const nlohmann::ordered_json& tools,
                                        bool add_generation_prompt, const std::string& bos_token,
                                        const std::string& eos_token,
                                        const nlohmann::ordered_json& extra_kwargs);

}  // namespace turbine::chat
