// Helpers shared by the Responses and Anthropic codecs: typed SSE events, ids, and strict JSON
// readers that turn bad input into kInvalidArgument naming the field. Pure; safe on any thread.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "api/chat_extras.h"
#include "common/status.h"

namespace turbine::api {

// One server-sent event with a type: "event: NAME\ndata: JSON\n\n" (Responses and Anthropic
// streams; OpenAI chat uses bare `data:` lines, see sse_event() in api/openai.h).
struct SseEvent {
  std::string event;
  std::string data;  // compact JSON
};
std::string format_sse_event(const SseEvent& event);

// prefix + "_" + 32 random hex digits (thread-local generator): "resp_…", "msg_…", "toolu_…".
std::string make_api_id(std::string_view prefix);

// The body as a JSON object (max depth 64); kInvalidArgument otherwise.
Result<boost::json::object> parse_json_object(std::string_view body);
// nullptr when absent or null.
const boost::json::value* find_field(const boost::json::object& obj, std::string_view key);
Status type_error(std::string_view param, std::string_view expected, const boost::json::value& got);
// An integer (or an integral double) in [lo, hi].
Result<int64_t> read_int(const boost::json::value& v, std::string_view param, int64_t lo,
                         int64_t hi);
// A finite number in [lo, hi] ((lo, hi] when lo_open).
Result<double> read_number(const boost::json::value& v, const std::string& param, double lo,
                           double hi, bool lo_open = false);
Result<std::string> read_string(const boost::json::value& v, const std::string& param);
Result<bool> read_bool(const boost::json::value& v, const std::string& param);

// A function tool's name: 1..max_len characters of [A-Za-z0-9_-] (OpenAI allows 64, Anthropic
// 128).
Status check_tool_name(std::string_view name, size_t max_len, const std::string& param);
// A tool's parameter schema (checked, not compiled): a JSON object whose `type`, when given, is
// "object", whose `properties` is an object of schemas (objects or booleans) and whose
// `required` is an array of strings naming properties.
Status check_parameters_schema(const boost::json::value& schema, const std::string& param);

// The ToolSpecs of an OpenAI chat `tools` array already checked by parse_chat_request
// (ChatTemplateFields::tools_json), so chat requests can fill ChatRequest::extras like the
// Responses and Anthropic parsers do.
Result<std::vector<ToolSpec>> tool_specs_from_chat_tools(std::string_view tools_json);

// tool_choice's string forms, "auto" / "none" / "required" (chat, Responses); any other string is a
// 400 on tool_choice that shows `object_form`, the protocol's object spelling.
Result<ToolChoice> tool_choice_from_string(std::string_view s, std::string_view object_form);

}  // namespace turbine::api
