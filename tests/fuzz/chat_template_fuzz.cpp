// libFuzzer target: chat templates come from model files, so any bytes must parse or fail with a
// Status, and any template that parses must render or fail with a Status, never crash, hang or
// leak. Renders with small limits so that slow inputs fail fast instead of timing out.
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <string_view>

#include <nlohmann/json.hpp>

#include "chat/chat_template.h"

namespace {

const nlohmann::ordered_json& fixed_context() {
  static const nlohmann::ordered_json kContext = nlohmann::ordered_json::parse(R"({
    "messages": [
      {"role": "system", "content": "You are helpful."},
      {"role": "user", "content": "Hi \u00e9 \ud83d\ude00"},
      {"role": "assistant", "content": "<think>\nhm\n</think>\n\nHello",
       "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": {"x": 1.5, "y": [1, "2"]}}}]},
      {"role": "tool", "content": "{\"ok\": true}"},
      {"role": "user", "content": ""}
    ],
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"x": {"type": "number"}}}}}],
    "add_generation_prompt": true,
    "bos_token": "<s>",
    "eos_token": "</s>",
    "enable_thinking": false
  })");
  return kContext;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace turbine::chat;
  const std::string_view source(reinterpret_cast<const char*>(data), size);
  ChatTemplateOptions options;
  options.render_limits.max_output_bytes = 1 << 20;
  options.render_limits.max_loop_iterations = 10'000;
  options.render_limits.max_steps = 200'000;
  options.render_limits.max_string_work_bytes = 16 << 20;
  options.local_time = [] {
    std::tm t{};
    t.tm_year = 124;
    t.tm_mday = 1;
    return t;
  };
  auto tmpl = ChatTemplate::parse(source, options);
  if (!tmpl) return 0;
  (void)tmpl->render(fixed_context());
  return 0;
}
