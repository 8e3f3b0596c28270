#include "api/chat_extras.h"

#include "api/json_writer.h"

namespace turbine::api {

std::string tools_template_json(const std::vector<ToolSpec>& tools) {
  if (tools.empty()) return {};
  std::string out = "[";
  for (size_t i = 0; i < tools.size(); ++i) {
    const ToolSpec& t = tools[i];
    if (i > 0) out.push_back(',');
    out += R"({"type":"function","function":{"name":)";
    append_json_string(out, t.name);
    if (!t.description.empty()) {
      out += R"(,"description":)";
      append_json_string(out, t.description);
    }
    if (!t.parameters_json.empty()) {
      out += R"(,"parameters":)";
      out += t.parameters_json;
    }
    out += "}}";
  }
  out.push_back(']');
  return out;
}

void append_tool_call_json(std::string& tool_calls_json, std::string_view id, std::string_view name,
                           std::string_view arguments) {
  std::string call = R"({"id":)";
  append_json_string(call, id);
  call += R"(,"type":"function","function":{"name":)";
  append_json_string(call, name);
  call += R"(,"arguments":)";
  append_json_string(call, arguments);
  call += "}}";
  if (tool_calls_json.empty()) {
    tool_calls_json = "[" + call + "]";
  } else {
    tool_calls_json.pop_back();  // ']'
    tool_calls_json += "," + call + "]";
  }
}

Status check_tool_choice(const ChatExtras& extras, const std::string& param) {
  switch (extras.tool_choice.mode) {
    case ToolChoice::Mode::kAuto:
    case ToolChoice::Mode::kNone: return Status::ok();
    case ToolChoice::Mode::kRequired:
      if (extras.tools.empty()) {
        return invalid_argument(param + " requires tools, but none were given", param);
      }
      return Status::ok();
    case ToolChoice::Mode::kFunction:
      for (const ToolSpec& t : extras.tools) {
        if (t.name == extras.tool_choice.function) return Status::ok();
      }
      return invalid_argument(
          param + " names tool '" + extras.tool_choice.function + "', which is not in tools",
          param);
  }
  return Status::ok();
}

}  // namespace turbine::api
