// Responses API request parsing and errors (the encoder is responses_encoder.cpp).
#include "api/responses.h"

#include <boost/json/serialize.hpp>

#include <limits>

#include "api/errors.h"
#include "api/json_writer.h"

namespace turbine::api {
namespace json = boost::json;
namespace {

constexpr size_t kMaxToolName = 64;
constexpr size_t kMaxMetadataKeys = 16;
constexpr size_t kMaxMetadataValue = 512;

std::string at(const std::string& base, size_t i) {
  return base + "[" + std::to_string(i) + "]";
}

Result<std::string> required_string(const json::object& obj, std::string_view key,
                                    const std::string& param, bool non_empty) {
  const json::value* v = find_field(obj, key);
  if (v == nullptr) return invalid_argument(param + " is required", param);
  TURBINE_ASSIGN_OR_RETURN(std::string s, read_string(*v, param));
  if (non_empty && s.empty()) return invalid_argument(param + " must not be empty", param);
  return s;
}

// A message's content: a string, or text parts joined by "\n". Images, files and audio are a
// 400: the engine takes text only.
Result<std::string> read_content(const json::value& v, const std::string& param) {
  if (v.is_string()) return std::string(v.get_string().data(), v.get_string().size());
  if (!v.is_array()) return type_error(param, "a string or an array of content parts", v);
  std::string out;
  const json::array& parts = v.get_array();
  for (size_t i = 0; i < parts.size(); ++i) {
    const std::string pparam = at(param, i);
    if (!parts[i].is_object()) return type_error(pparam, "an object", parts[i]);
    const json::object& part = parts[i].get_object();
    TURBINE_ASSIGN_OR_RETURN(std::string type,
                             required_string(part, "type", pparam + ".type", true));
    std::string text;
    if (type == "input_text" || type == "output_text" || type == "text") {
      TURBINE_ASSIGN_OR_RETURN(text, required_string(part, "text", pparam + ".text", false));
    } else if (type == "refusal") {
      TURBINE_ASSIGN_OR_RETURN(text, required_string(part, "refusal", pparam + ".refusal", false));
    } else if (type == "input_image" || type == "input_file" || type == "input_audio") {
      return invalid_argument(
          pparam + ".type '" + type + "' is not supported: this server takes text input only",
          pparam + ".type");
    } else {
      return invalid_argument(pparam + ".type '" + type + "' is not a known content part type",
                              pparam + ".type");
    }
    if (i > 0) out.push_back('\n');
    out += text;
  }
  return out;
}

bool is_message_role(std::string_view r) {
  return r == "user" || r == "assistant" || r == "system" || r == "developer";
}

Result<std::vector<ChatMessage>> read_input(const json::value& input) {
  std::vector<ChatMessage> out;
  if (input.is_string()) {
    ChatMessage m;
    m.role = "user";
    m.content.assign(input.get_string().data(), input.get_string().size());
    out.push_back(std::move(m));
    return out;
  }
  if (!input.is_array()) return type_error("input", "a string or an array of input items", input);
  const json::array& items = input.get_array();
  if (items.empty()) return invalid_argument("input must not be empty", "input");
  std::optional<std::string> reasoning;  // a reasoning item waiting for its assistant message
  bool last_was_call = false;
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string param = at("input", i);
    if (!items[i].is_object()) return type_error(param, "an object", items[i]);
    const json::object& item = items[i].get_object();
    std::string type = "message";
    if (const json::value* t = find_field(item, "type")) {
      TURBINE_ASSIGN_OR_RETURN(type, read_string(*t, param + ".type"));
    }
    bool is_call = false;
    if (type == "message") {
      ChatMessage m;
      TURBINE_ASSIGN_OR_RETURN(m.role, required_string(item, "role", param + ".role", true));
      if (!is_message_role(m.role)) {
        return invalid_argument(
            param + ".role must be one of user, assistant, system, developer; got '" + m.role + "'",
            param + ".role");
      }
      const json::value* content = find_field(item, "content");
      if (content == nullptr) return invalid_argument(param + ".content is required", param);
      TURBINE_ASSIGN_OR_RETURN(m.content, read_content(*content, param + ".content"));
      if (m.role == "assistant" && reasoning) {
        m.reasoning_content = std::move(reasoning);
        reasoning.reset();
      }
      out.push_back(std::move(m));
    } else if (type == "function_call") {
      TURBINE_ASSIGN_OR_RETURN(std::string call_id,
                               required_string(item, "call_id", param + ".call_id", true));
      TURBINE_ASSIGN_OR_RETURN(std::string name,
                               required_string(item, "name", param + ".name", true));
      TURBINE_ASSIGN_OR_RETURN(std::string args,
                               required_string(item, "arguments", param + ".arguments", false));
      // Calls of one turn share an assistant message (with its text, when it came first).
      if (out.empty() || out.back().role != "assistant" || (reasoning && !last_was_call)) {
        ChatMessage m;
        m.role = "assistant";
        out.push_back(std::move(m));
      }
      if (reasoning) {
        out.back().reasoning_content = std::move(reasoning);
        reasoning.reset();
      }
      append_tool_call_json(out.back().tool_calls_json, call_id, name, args);
      is_call = true;
    } else if (type == "function_call_output") {
      ChatMessage m;
      m.role = "tool";
      TURBINE_ASSIGN_OR_RETURN(std::string call_id,
                               required_string(item, "call_id", param + ".call_id", true));
      m.tool_call_id = std::move(call_id);
      const json::value* output = find_field(item, "output");
      if (output == nullptr) return invalid_argument(param + ".output is required", param);
      TURBINE_ASSIGN_OR_RETURN(m.content, read_content(*output, param + ".output"));
      out.push_back(std::move(m));
    } else if (type == "reasoning") {
      // Open-weight reasoning comes back as content [reasoning_text]; summaries otherwise.
      std::string text;
      for (const char* key : {"content", "summary"}) {
        const json::value* parts = find_field(item, key);
        if (parts == nullptr || !text.empty()) continue;
        if (!parts->is_array()) return type_error(param + "." + key, "an array", *parts);
        for (const json::value& p : parts->get_array()) {
          if (!p.is_object()) return type_error(param + "." + key, "an array of objects", p);
          const json::value* t = find_field(p.get_object(), "text");
          if (t == nullptr || !t->is_string()) {
            return invalid_argument(param + "." + key + "[].text must be a string",
                                    param + "." + key);
          }
          if (!text.empty()) text += "\n";
          text.append(t->get_string().data(), t->get_string().size());
        }
      }
      reasoning = std::move(text);
    } else if (type == "item_reference") {
      return invalid_argument(param + ": item references are not supported (send the items)",
                              param + ".type");
    } else {
      return invalid_argument(param + ".type '" + type + "' is not supported", param + ".type");
    }
    last_was_call = is_call;
  }
  return out;
}

Result<std::vector<ToolSpec>> read_tools(const json::value& v) {
  if (!v.is_array()) return type_error("tools", "an array", v);
  std::vector<ToolSpec> out;
  const json::array& arr = v.get_array();
  for (size_t i = 0; i < arr.size(); ++i) {
    const std::string param = at("tools", i);
    if (!arr[i].is_object()) return type_error(param, "an object", arr[i]);
    const json::object& tool = arr[i].get_object();
    TURBINE_ASSIGN_OR_RETURN(std::string type,
                             required_string(tool, "type", param + ".type", true));
    if (type != "function") {
      return invalid_argument(
          param + ".type '" + type + "' is not supported (only 'function' tools)", param + ".type");
    }
    ToolSpec spec;
    TURBINE_ASSIGN_OR_RETURN(spec.name, required_string(tool, "name", param + ".name", true));
    TURBINE_RETURN_IF_ERROR(check_tool_name(spec.name, kMaxToolName, param + ".name"));
    for (const ToolSpec& other : out) {
      if (other.name == spec.name) {
        return invalid_argument(param + ".name '" + spec.name + "' is given twice",
                                param + ".name");
      }
    }
    if (const json::value* d = find_field(tool, "description")) {
      TURBINE_ASSIGN_OR_RETURN(spec.description, read_string(*d, param + ".description"));
    }
    if (const json::value* p = find_field(tool, "parameters")) {
      TURBINE_RETURN_IF_ERROR(check_parameters_schema(*p, param + ".parameters"));
      spec.parameters_json = json::serialize(*p);
    }
    if (const json::value* s = find_field(tool, "strict")) {
      TURBINE_ASSIGN_OR_RETURN(spec.strict, read_bool(*s, param + ".strict"));
    }
    out.push_back(std::move(spec));
  }
  return out;
}

Result<ToolChoice> read_tool_choice(const json::value& v) {
  if (v.is_string()) {
    return tool_choice_from_string(std::string_view(v.get_string().data(), v.get_string().size()),
                                   "{\"type\": \"function\", \"name\": ...}");
  }
  ToolChoice choice;
  if (!v.is_object()) return type_error("tool_choice", "a string or an object", v);
  TURBINE_ASSIGN_OR_RETURN(std::string type,
                           required_string(v.get_object(), "type", "tool_choice.type", true));
  if (type != "function") {
    return invalid_argument("tool_choice.type '" + type + "' is not supported (only 'function')",
                            "tool_choice.type");
  }
  choice.mode = ToolChoice::Mode::kFunction;
  TURBINE_ASSIGN_OR_RETURN(choice.function,
                           required_string(v.get_object(), "name", "tool_choice.name", true));
  return choice;
}

Result<OutputFormat> read_text_format(const json::value& text) {
  OutputFormat out;
  if (!text.is_object()) return type_error("text", "an object", text);
  if (const json::value* verbosity = find_field(text.get_object(), "verbosity")) {
    TURBINE_ASSIGN_OR_RETURN(std::string v, read_string(*verbosity, "text.verbosity"));
    if (v != "low" && v != "medium" && v != "high") {
      return invalid_argument("text.verbosity must be low, medium or high", "text.verbosity");
    }
  }
  const json::value* fv = find_field(text.get_object(), "format");
  if (fv == nullptr) return out;
  if (!fv->is_object()) return type_error("text.format", "an object", *fv);
  const json::object& format = fv->get_object();
  TURBINE_ASSIGN_OR_RETURN(std::string type,
                           required_string(format, "type", "text.format.type", true));
  if (type == "text") return out;
  if (type == "json_object") {
    out.type = OutputFormat::Type::kJsonObject;
    return out;
  }
  if (type != "json_schema") {
    return invalid_argument(
        "text.format.type must be text, json_object or json_schema, got '" + type + "'",
        "text.format.type");
  }
  out.type = OutputFormat::Type::kJsonSchema;
  TURBINE_ASSIGN_OR_RETURN(out.name, required_string(format, "name", "text.format.name", true));
  TURBINE_RETURN_IF_ERROR(check_tool_name(out.name, kMaxToolName, "text.format.name"));
  const json::value* schema = find_field(format, "schema");
  if (schema == nullptr) {
    return invalid_argument("text.format.schema is required", "text.format.schema");
  }
  if (!schema->is_object()) return type_error("text.format.schema", "an object", *schema);
  out.schema_json = json::serialize(*schema);
  if (const json::value* s = find_field(format, "strict")) {
    TURBINE_ASSIGN_OR_RETURN(out.strict, read_bool(*s, "text.format.strict"));
  }
  return out;
}

Status read_reasoning(const json::value& v, ChatExtras& extras) {
  if (!v.is_object()) return type_error("reasoning", "an object", v);
  if (const json::value* e = find_field(v.get_object(), "effort")) {
    TURBINE_ASSIGN_OR_RETURN(std::string effort, read_string(*e, "reasoning.effort"));
    if (effort != "none" && effort != "minimal" && effort != "low" && effort != "medium" &&
        effort != "high") {
      return invalid_argument(
          "reasoning.effort must be none, minimal, low, medium or high, got '" + effort + "'",
          "reasoning.effort");
    }
    extras.reasoning_effort = std::move(effort);
  }
  for (const char* key : {"summary", "generate_summary"}) {
    if (const json::value* s = find_field(v.get_object(), key)) {
      TURBINE_ASSIGN_OR_RETURN(std::string summary,
                               read_string(*s, std::string("reasoning.") + key));
      if (summary != "auto" && summary != "concise" && summary != "detailed") {
        return invalid_argument(
            std::string("reasoning.") + key + " must be auto, concise or detailed",
            std::string("reasoning.") + key);
      }
    }
  }
  return Status::ok();
}

Result<std::string> read_metadata(const json::value& v) {
  if (!v.is_object()) return type_error("metadata", "an object", v);
  if (v.get_object().size() > kMaxMetadataKeys) {
    return invalid_argument(
        "metadata may have at most " + std::to_string(kMaxMetadataKeys) + " keys", "metadata");
  }
  for (const auto& kv : v.get_object()) {
    const std::string param = "metadata." + std::string(kv.key());
    if (!kv.value().is_string()) return type_error(param, "a string", kv.value());
    if (kv.value().get_string().size() > kMaxMetadataValue) {
      return invalid_argument(
          param + " must be at most " + std::to_string(kMaxMetadataValue) + " characters", param);
    }
  }
  return json::serialize(v);
}

// Fields we do not implement are refused rather than silently ignored.
Status reject_unsupported(const json::object& obj) {
  if (const json::value* b = find_field(obj, "background")) {
    TURBINE_ASSIGN_OR_RETURN(bool background, read_bool(*b, "background"));
    if (background) return invalid_argument("background responses are not supported", "background");
  }
  if (find_field(obj, "conversation") != nullptr) {
    return invalid_argument("conversation is not supported (use previous_response_id)",
                            "conversation");
  }
  if (find_field(obj, "prompt") != nullptr) {
    return invalid_argument("prompt templates are not supported", "prompt");
  }
  if (const json::value* t = find_field(obj, "top_logprobs")) {
    TURBINE_ASSIGN_OR_RETURN(int64_t n, read_int(*t, "top_logprobs", 0, 20));
    if (n > 0) return invalid_argument("top_logprobs is not supported", "top_logprobs");
  }
  if (const json::value* t = find_field(obj, "truncation")) {
    TURBINE_ASSIGN_OR_RETURN(std::string mode, read_string(*t, "truncation"));
    if (mode != "auto" && mode != "disabled") {
      return invalid_argument("truncation must be auto or disabled", "truncation");
    }
  }
  if (const json::value* inc = find_field(obj, "include")) {
    if (!inc->is_array()) return type_error("include", "an array of strings", *inc);
    for (const json::value& e : inc->get_array()) {
      if (!e.is_string()) return type_error("include", "an array of strings", e);
    }
  }
  return Status::ok();
}

}  // namespace

Result<ResponsesRequest> parse_responses_request(std::string_view body) {
  TURBINE_ASSIGN_OR_RETURN(json::object obj, parse_json_object(body));
  ResponsesRequest req;
  ChatRequest& chat = req.chat;
  TURBINE_ASSIGN_OR_RETURN(chat.model, required_string(obj, "model", "model", true));
  TURBINE_RETURN_IF_ERROR(reject_unsupported(obj));

  const json::value* input = find_field(obj, "input");
  if (input == nullptr) return invalid_argument("input is required", "input");
  TURBINE_ASSIGN_OR_RETURN(req.input_messages, read_input(*input));
  if (const json::value* v = find_field(obj, "instructions")) {
    TURBINE_ASSIGN_OR_RETURN(std::string instructions, read_string(*v, "instructions"));
    req.instructions = std::move(instructions);
  }
  if (req.instructions) {
    ChatMessage system;
    system.role = "system";
    system.content = *req.instructions;
    chat.messages.push_back(std::move(system));
  }
  chat.messages.insert(chat.messages.end(), req.input_messages.begin(), req.input_messages.end());

  SamplingOptions& s = chat.sampling;
  if (const json::value* v = find_field(obj, "max_output_tokens")) {
    TURBINE_ASSIGN_OR_RETURN(
        int64_t n, read_int(*v, "max_output_tokens", 1, std::numeric_limits<int32_t>::max()));
    s.max_tokens = static_cast<int>(n);
  }
  if (const json::value* v = find_field(obj, "temperature")) {
    TURBINE_ASSIGN_OR_RETURN(double t, read_number(*v, "temperature", 0.0, 2.0));
    s.temperature = static_cast<float>(t);
  }
  if (const json::value* v = find_field(obj, "top_p")) {
    TURBINE_ASSIGN_OR_RETURN(double p, read_number(*v, "top_p", 0.0, 1.0, /*lo_open=*/true));
    s.top_p = static_cast<float>(p);
  }
  if (const json::value* v = find_field(obj, "stream")) {
    TURBINE_ASSIGN_OR_RETURN(s.stream, read_bool(*v, "stream"));
  }
  // vLLM's priority class, as on chat and completions (the engine's policy decides if non-zero
  // values are accepted).
  if (const json::value* v = find_field(obj, "priority"); v != nullptr && !v->is_null()) {
    TURBINE_ASSIGN_OR_RETURN(int64_t prio,
                             read_int(*v, "priority", std::numeric_limits<int32_t>::min(),
                                      std::numeric_limits<int32_t>::max()));
    s.priority = static_cast<int>(prio);
  }
  if (const json::value* v = find_field(obj, "store")) {
    TURBINE_ASSIGN_OR_RETURN(req.store, read_bool(*v, "store"));
  }
  if (const json::value* v = find_field(obj, "previous_response_id")) {
    TURBINE_ASSIGN_OR_RETURN(std::string id, read_string(*v, "previous_response_id"));
    if (id.empty()) {
      return invalid_argument("previous_response_id must not be empty", "previous_response_id");
    }
    req.previous_response_id = std::move(id);
  }

  ChatExtras& x = chat.extras;
  if (const json::value* v = find_field(obj, "tools")) {
    TURBINE_ASSIGN_OR_RETURN(x.tools, read_tools(*v));
  }
  if (const json::value* v = find_field(obj, "tool_choice")) {
    TURBINE_ASSIGN_OR_RETURN(x.tool_choice, read_tool_choice(*v));
  }
  TURBINE_RETURN_IF_ERROR(check_tool_choice(x, "tool_choice"));
  if (const json::value* v = find_field(obj, "parallel_tool_calls")) {
    TURBINE_ASSIGN_OR_RETURN(x.parallel_tool_calls, read_bool(*v, "parallel_tool_calls"));
  }
  if (const json::value* v = find_field(obj, "text")) {
    TURBINE_ASSIGN_OR_RETURN(x.output_format, read_text_format(*v));
  }
  if (const json::value* v = find_field(obj, "reasoning")) {
    TURBINE_RETURN_IF_ERROR(read_reasoning(*v, x));
  }
  if (const json::value* v = find_field(obj, "metadata")) {
    TURBINE_ASSIGN_OR_RETURN(x.metadata_json, read_metadata(*v));
  }
  if (const json::value* v = find_field(obj, "user")) {
    TURBINE_ASSIGN_OR_RETURN(x.user, read_string(*v, "user"));
  }
  chat.template_fields.tools_json = tools_template_json(x.tools);
  return req;
}

std::string responses_error_json(const Status& status) {
  std::string out = R"({"error":{"message":)";
  append_json_string(out, status.message());
  out += R"(,"type":)";
  append_json_string(out, error_type(status.code()));
  out += R"(,"param":)";
  if (status.field().empty()) {
    out += "null";
  } else {
    append_json_string(out, status.field());
  }
  out += R"(,"code":)";
  if (status.field() == "previous_response_id" &&
      status.message().find("not found") != std::string::npos) {
    out += R"("previous_response_not_found")";
  } else if (status.code() == StatusCode::kNotFound && status.field() == "model") {
    out += R"("model_not_found")";
  } else {
    out += "null";
  }
  out += "}}";
  return out;
}

ResponseHeader response_header(const ResponsesRequest& request, std::string id,
                               int64_t created_at) {
  ResponseHeader h;
  h.id = std::move(id);
  h.created_at = created_at;
  h.model = request.chat.model;
  h.instructions = request.instructions;
  h.max_output_tokens = request.chat.sampling.max_tokens;
  h.previous_response_id = request.previous_response_id;
  h.temperature = request.chat.sampling.temperature;
  h.top_p = request.chat.sampling.top_p;
  h.parallel_tool_calls = request.chat.extras.parallel_tool_calls;
  h.store = request.store;
  h.tool_choice = request.chat.extras.tool_choice;
  h.tools = request.chat.extras.tools;
  h.output_format = request.chat.extras.output_format;
  h.reasoning_effort = request.chat.extras.reasoning_effort;
  h.metadata_json = request.chat.extras.metadata_json;
  h.user = request.chat.extras.user;
  return h;
}

}  // namespace turbine::api
