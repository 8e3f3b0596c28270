// Protocol-neutral request fields beyond plain chat: function tools, tool choice, the output
// format, reasoning controls and metadata. The Responses and Anthropic parsers fill them
// (api/responses.h, api/anthropic.h); ChatRequest carries them as `extras`. The chat template
// keeps its own view of the tools (ChatTemplateFields::tools_json, OpenAI chat shape), which
// tools_template_json() produces from these. Pure data; safe on any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace turbine::api {

struct ToolSpec {
  std::string name;             // unique within the request
  std::string description;      // "" when absent
  std::string parameters_json;  // JSON Schema of the arguments (an object); "" when absent
  bool strict = false;          // OpenAI `strict` (Anthropic tools: false)
};

struct ToolChoice {
  enum class Mode {
    kAuto,      // the model decides (OpenAI "auto", Anthropic "auto")
    kNone,      // no calls (OpenAI "none", Anthropic "none")
    kRequired,  // at least one call (OpenAI "required", Anthropic "any")
    kFunction,  // exactly this function (OpenAI {"type":"function"}, Anthropic "tool")
  };
  Mode mode = Mode::kAuto;
  std::string function;  // kFunction: a name in `tools`
};

struct OutputFormat {
  enum class Type { kText, kJsonObject, kJsonSchema };
  Type type = Type::kText;
  std::string name;         // kJsonSchema: the schema's name
  std::string schema_json;  // kJsonSchema: the JSON Schema text
  bool strict = false;
};

struct ChatExtras {
  std::vector<ToolSpec> tools;
  ToolChoice tool_choice;
  bool parallel_tool_calls = true;  // false: at most one call
  OutputFormat output_format;
  // Responses `reasoning.effort`: "minimal", "low", "medium" or "high".
  std::optional<std::string> reasoning_effort;
  // Anthropic `thinking`: enabled (true) / disabled (false); absent when not given.
  std::optional<bool> thinking;
  std::optional<int> thinking_budget_tokens;  // Anthropic thinking.budget_tokens
  std::string metadata_json;                  // the `metadata` object as sent; "" when absent
  std::string user;  // end-user id (Responses `user`, Anthropic metadata.user_id)
};

// A protocol adapter's own state for a request (ChatRequest::protocol_state), e.g. what the
// Responses API stores once the response is complete. Immutable once parsed.
struct ProtocolState {
  virtual ~ProtocolState() = default;
};

// The OpenAI chat `tools` array for chat templates:
// [{"type":"function","function":{"name","description","parameters"}}] ("" for no tools).
std::string tools_template_json(const std::vector<ToolSpec>& tools);

// Appends {"id","type":"function","function":{"name","arguments"}} to a ChatMessage's
// tool_calls_json array ("" starts one), the OpenAI wire shape chat templates receive.
void append_tool_call_json(std::string& tool_calls_json, std::string_view id, std::string_view name,
                           std::string_view arguments);

// Checks a tool choice against the tools: a named function must be one of them; "required"
// and a named function need tools. `param` names the field in the error.
Status check_tool_choice(const ChatExtras& extras, const std::string& param);

}  // namespace turbine::api
