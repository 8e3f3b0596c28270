#include "api/anthropic.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <limits>

#include "api/json_writer.h"

namespace turbine::api {
namespace json = boost::json;
namespace {

constexpr size_t kMaxToolName = 128;
constexpr int64_t kMinThinkingBudget = 1024;

// Anthropic writes paths with dots: messages.0.content.1.type.
std::string at(const std::string& base, size_t i) {
  return base + "." + std::to_string(i);
}

Status field_required(const std::string& param) {
  return invalid_argument(param + ": field required", param);
}

Result<std::string> required_string(const json::object& obj, std::string_view key,
                                    const std::string& param, bool non_empty) {
  const json::value* v = find_field(obj, key);
  if (v == nullptr) return field_required(param);
  TURBINE_ASSIGN_OR_RETURN(std::string s, read_string(*v, param));
  if (non_empty && s.empty()) return invalid_argument(param + ": must not be empty", param);
  return s;
}

bool is_media_block(std::string_view type) {
  return type == "image" || type == "document" || type == "search_result";
}

Status media_error(const std::string& param, std::string_view type) {
  return invalid_argument(
      param + ": '" + std::string(type) + "' content is not supported: this server takes text only",
      param);
}

// Text blocks (a tool_result's or the system prompt's content): a string or [{type: text}].
Result<std::string> read_text_blocks(const json::value& v, const std::string& param) {
  if (v.is_string()) return std::string(v.get_string().data(), v.get_string().size());
  if (!v.is_array()) return type_error(param, "a string or an array of text blocks", v);
  std::string out;
  const json::array& blocks = v.get_array();
  for (size_t i = 0; i < blocks.size(); ++i) {
    const std::string bparam = at(param, i);
    if (!blocks[i].is_object()) return type_error(bparam, "an object", blocks[i]);
    const json::object& b = blocks[i].get_object();
    TURBINE_ASSIGN_OR_RETURN(std::string type, required_string(b, "type", bparam + ".type", true));
    if (is_media_block(type)) return media_error(bparam + ".type", type);
    if (type != "text") {
      return invalid_argument(bparam + ".type: expected 'text', got '" + type + "'",
                              bparam + ".type");
    }
    TURBINE_ASSIGN_OR_RETURN(std::string text, required_string(b, "text", bparam + ".text", false));
    if (i > 0) out += "\n";
    out += text;
  }
  return out;
}

Status read_user_blocks(const json::array& blocks, const std::string& param,
                        std::vector<ChatMessage>& out) {
  std::string text;
  bool has_text = false;
  const auto flush_text = [&] {
    if (!has_text) return;
    ChatMessage m;
    m.role = "user";
    m.content = std::move(text);
    out.push_back(std::move(m));
    text.clear();
    has_text = false;
  };
  for (size_t i = 0; i < blocks.size(); ++i) {
    const std::string bparam = at(param, i);
    if (!blocks[i].is_object()) return type_error(bparam, "an object", blocks[i]);
    const json::object& b = blocks[i].get_object();
    TURBINE_ASSIGN_OR_RETURN(std::string type, required_string(b, "type", bparam + ".type", true));
    if (type == "text") {
      TURBINE_ASSIGN_OR_RETURN(std::string t, required_string(b, "text", bparam + ".text", false));
      if (has_text) text += "\n";
      text += t;
      has_text = true;
    } else if (type == "tool_result") {
      flush_text();
      ChatMessage m;
      m.role = "tool";
      TURBINE_ASSIGN_OR_RETURN(std::string id,
                               required_string(b, "tool_use_id", bparam + ".tool_use_id", true));
      m.tool_call_id = std::move(id);
      if (const json::value* c = find_field(b, "content")) {
        TURBINE_ASSIGN_OR_RETURN(m.content, read_text_blocks(*c, bparam + ".content"));
      }
      if (const json::value* e = find_field(b, "is_error")) {
        TURBINE_RETURN_IF_ERROR(read_bool(*e, bparam + ".is_error").status());
      }
      out.push_back(std::move(m));
    } else if (is_media_block(type)) {
      return media_error(bparam + ".type", type);
    } else if (type == "tool_use" || type == "thinking" || type == "redacted_thinking") {
      return invalid_argument(bparam + ".type: '" + type + "' blocks belong in assistant messages",
                              bparam + ".type");
    } else {
      return invalid_argument(bparam + ".type: unknown content block type '" + type + "'",
                              bparam + ".type");
    }
  }
  flush_text();
  return Status::ok();
}

Result<ChatMessage> read_assistant_blocks(const json::array& blocks, const std::string& param) {
  ChatMessage m;
  m.role = "assistant";
  bool has_text = false;
  for (size_t i = 0; i < blocks.size(); ++i) {
    const std::string bparam = at(param, i);
    if (!blocks[i].is_object()) return type_error(bparam, "an object", blocks[i]);
    const json::object& b = blocks[i].get_object();
    TURBINE_ASSIGN_OR_RETURN(std::string type, required_string(b, "type", bparam + ".type", true));
    if (type == "text") {
      TURBINE_ASSIGN_OR_RETURN(std::string t, required_string(b, "text", bparam + ".text", false));
      if (has_text) m.content += "\n";
      m.content += t;
      has_text = true;
    } else if (type == "tool_use") {
      TURBINE_ASSIGN_OR_RETURN(std::string id, required_string(b, "id", bparam + ".id", true));
      TURBINE_ASSIGN_OR_RETURN(std::string name,
                               required_string(b, "name", bparam + ".name", true));
      const json::value* input = find_field(b, "input");
      if (input == nullptr) return field_required(bparam + ".input");
      if (!input->is_object()) return type_error(bparam + ".input", "an object", *input);
      append_tool_call_json(m.tool_calls_json, id, name, json::serialize(*input));
    } else if (type == "thinking") {
      TURBINE_ASSIGN_OR_RETURN(std::string t,
                               required_string(b, "thinking", bparam + ".thinking", false));
      m.reasoning_content = m.reasoning_content ? *m.reasoning_content + "\n" + t : t;
    } else if (type == "redacted_thinking") {
      continue;  // encrypted reasoning of another model: nothing to render
    } else if (is_media_block(type)) {
      return media_error(bparam + ".type", type);
    } else if (type == "tool_result") {
      return invalid_argument(bparam + ".type: 'tool_result' blocks belong in user messages",
                              bparam + ".type");
    } else {
      return invalid_argument(bparam + ".type: unknown content block type '" + type + "'",
                              bparam + ".type");
    }
  }
  return m;
}

Status read_messages(const json::object& obj, ChatRequest& req) {
  const json::value* v = find_field(obj, "messages");
  if (v == nullptr) return field_required("messages");
  if (!v->is_array()) return type_error("messages", "an array", *v);
  const json::array& arr = v->get_array();
  if (arr.empty())
    return invalid_argument("messages: at least one message is required", "messages");
  for (size_t i = 0; i < arr.size(); ++i) {
    const std::string param = at("messages", i);
    if (!arr[i].is_object()) return type_error(param, "an object", arr[i]);
    const json::object& m = arr[i].get_object();
    TURBINE_ASSIGN_OR_RETURN(std::string role, required_string(m, "role", param + ".role", true));
    if (role != "user" && role != "assistant") {
      return invalid_argument(param + ".role: must be 'user' or 'assistant', got '" + role + "'",
                              param + ".role");
    }
    const json::value* content = find_field(m, "content");
    if (content == nullptr) return field_required(param + ".content");
    if (content->is_string()) {
      ChatMessage msg;
      msg.role = role;
      msg.content.assign(content->get_string().data(), content->get_string().size());
      req.messages.push_back(std::move(msg));
      continue;
    }
    if (!content->is_array()) {
      return type_error(param + ".content", "a string or an array of content blocks", *content);
    }
    if (content->get_array().empty()) {
      return invalid_argument(param + ".content: must not be empty", param + ".content");
    }
    if (role == "user") {
      TURBINE_RETURN_IF_ERROR(
          read_user_blocks(content->get_array(), param + ".content", req.messages));
    } else {
      TURBINE_ASSIGN_OR_RETURN(ChatMessage msg,
                               read_assistant_blocks(content->get_array(), param + ".content"));
      req.messages.push_back(std::move(msg));
    }
  }
  // A final assistant message is a prefill the model continues.
  if (req.messages.back().role == "assistant") {
    req.add_generation_prompt = false;
    req.template_fields.continue_final_message = true;
  }
  return Status::ok();
}

Result<std::vector<ToolSpec>> read_tools(const json::value& v) {
  if (!v.is_array()) return type_error("tools", "an array", v);
  std::vector<ToolSpec> out;
  const json::array& arr = v.get_array();
  for (size_t i = 0; i < arr.size(); ++i) {
    const std::string param = at("tools", i);
    if (!arr[i].is_object()) return type_error(param, "an object", arr[i]);
    const json::object& tool = arr[i].get_object();
    if (const json::value* t = find_field(tool, "type")) {
      TURBINE_ASSIGN_OR_RETURN(std::string type, read_string(*t, param + ".type"));
      if (type != "custom") {
        return invalid_argument(param + ".type: server tool '" + type +
                                    "' is not supported (only custom tools with an input_schema)",
                                param + ".type");
      }
    }
    ToolSpec spec;
    TURBINE_ASSIGN_OR_RETURN(spec.name, required_string(tool, "name", param + ".name", true));
    TURBINE_RETURN_IF_ERROR(check_tool_name(spec.name, kMaxToolName, param + ".name"));
    for (const ToolSpec& other : out) {
      if (other.name == spec.name) {
        return invalid_argument(
            param + ".name: tool names must be unique ('" + spec.name + "' is given twice)",
            param + ".name");
      }
    }
    if (const json::value* d = find_field(tool, "description")) {
      TURBINE_ASSIGN_OR_RETURN(spec.description, read_string(*d, param + ".description"));
    }
    const json::value* schema = find_field(tool, "input_schema");
    if (schema == nullptr) return field_required(param + ".input_schema");
    TURBINE_RETURN_IF_ERROR(check_parameters_schema(*schema, param + ".input_schema"));
    if (find_field(schema->get_object(), "type") == nullptr) {
      return field_required(param + ".input_schema.type");
    }
    spec.parameters_json = json::serialize(*schema);
    out.push_back(std::move(spec));
  }
  return out;
}

Status read_tool_choice(const json::value& v, ChatExtras& x) {
  if (!v.is_object()) return type_error("tool_choice", "an object", v);
  const json::object& obj = v.get_object();
  TURBINE_ASSIGN_OR_RETURN(std::string type,
                           required_string(obj, "type", "tool_choice.type", true));
  if (type == "auto") {
    x.tool_choice.mode = ToolChoice::Mode::kAuto;
  } else if (type == "any") {
    x.tool_choice.mode = ToolChoice::Mode::kRequired;
  } else if (type == "none") {
    x.tool_choice.mode = ToolChoice::Mode::kNone;
  } else if (type == "tool") {
    x.tool_choice.mode = ToolChoice::Mode::kFunction;
    TURBINE_ASSIGN_OR_RETURN(x.tool_choice.function,
                             required_string(obj, "name", "tool_choice.name", true));
  } else {
    return invalid_argument(
        "tool_choice.type: must be 'auto', 'any', 'tool' or 'none', got '" + type + "'",
        "tool_choice.type");
  }
  if (const json::value* d = find_field(obj, "disable_parallel_tool_use")) {
    TURBINE_ASSIGN_OR_RETURN(bool disable, read_bool(*d, "tool_choice.disable_parallel_tool_use"));
    x.parallel_tool_calls = !disable;
  }
  return Status::ok();
}

Status read_thinking(const json::value& v, const std::optional<int>& max_tokens, ChatExtras& x) {
  if (!v.is_object()) return type_error("thinking", "an object", v);
  const json::object& obj = v.get_object();
  TURBINE_ASSIGN_OR_RETURN(std::string type, required_string(obj, "type", "thinking.type", true));
  if (type == "disabled") {
    x.thinking = false;
    return Status::ok();
  }
  if (type != "enabled") {
    return invalid_argument("thinking.type: must be 'enabled' or 'disabled', got '" + type + "'",
                            "thinking.type");
  }
  const json::value* b = find_field(obj, "budget_tokens");
  if (b == nullptr) return field_required("thinking.budget_tokens");
  TURBINE_ASSIGN_OR_RETURN(int64_t budget,
                           read_int(*b, "thinking.budget_tokens", kMinThinkingBudget,
                                    std::numeric_limits<int32_t>::max()));
  if (max_tokens && budget >= *max_tokens) {
    return invalid_argument("thinking.budget_tokens: must be less than max_tokens (" +
                                std::to_string(*max_tokens) + ")",
                            "thinking.budget_tokens");
  }
  x.thinking = true;
  x.thinking_budget_tokens = static_cast<int>(budget);
  return Status::ok();
}

Result<ChatRequest> parse(std::string_view body, bool count_tokens) {
  TURBINE_ASSIGN_OR_RETURN(json::object obj, parse_json_object(body));
  ChatRequest req;
  TURBINE_ASSIGN_OR_RETURN(req.model, required_string(obj, "model", "model", true));
  SamplingOptions& s = req.sampling;
  if (!count_tokens) {
    const json::value* v = find_field(obj, "max_tokens");
    if (v == nullptr) return field_required("max_tokens");
    TURBINE_ASSIGN_OR_RETURN(int64_t n,
                             read_int(*v, "max_tokens", 1, std::numeric_limits<int32_t>::max()));
    s.max_tokens = static_cast<int>(n);
  }
  for (const char* key : {"mcp_servers", "container"}) {
    if (find_field(obj, key) != nullptr) {
      return invalid_argument(std::string(key) + ": not supported by this server", key);
    }
  }
  if (const json::value* v = find_field(obj, "system")) {
    ChatMessage system;
    system.role = "system";
    TURBINE_ASSIGN_OR_RETURN(system.content, read_text_blocks(*v, "system"));
    req.messages.push_back(std::move(system));
  }
  TURBINE_RETURN_IF_ERROR(read_messages(obj, req));

  ChatExtras& x = req.extras;
  if (const json::value* v = find_field(obj, "tools")) {
    TURBINE_ASSIGN_OR_RETURN(x.tools, read_tools(*v));
  }
  if (const json::value* v = find_field(obj, "tool_choice")) {
    TURBINE_RETURN_IF_ERROR(read_tool_choice(*v, x));
  }
  TURBINE_RETURN_IF_ERROR(check_tool_choice(x, "tool_choice"));
  req.template_fields.tools_json = tools_template_json(x.tools);
  if (const json::value* v = find_field(obj, "thinking")) {
    TURBINE_RETURN_IF_ERROR(read_thinking(*v, s.max_tokens, x));
  }
  if (const json::value* v = find_field(obj, "stop_sequences")) {
    if (!v->is_array()) return type_error("stop_sequences", "an array of strings", *v);
    if (v->get_array().size() > kMaxStopStrings) {
      return invalid_argument(
          "stop_sequences: at most " + std::to_string(kMaxStopStrings) + " are supported",
          "stop_sequences");
    }
    for (const json::value& e : v->get_array()) {
      TURBINE_ASSIGN_OR_RETURN(std::string stop, read_string(e, "stop_sequences"));
      if (!stop.empty()) s.stop.push_back(std::move(stop));
    }
  }
  if (const json::value* v = find_field(obj, "temperature")) {
    TURBINE_ASSIGN_OR_RETURN(double t, read_number(*v, "temperature", 0.0, 1.0));
    s.temperature = static_cast<float>(t);
  }
  if (const json::value* v = find_field(obj, "top_p")) {
    TURBINE_ASSIGN_OR_RETURN(double p, read_number(*v, "top_p", 0.0, 1.0, /*lo_open=*/true));
    s.top_p = static_cast<float>(p);
  }
  if (const json::value* v = find_field(obj, "top_k")) {
    TURBINE_ASSIGN_OR_RETURN(int64_t k,
                             read_int(*v, "top_k", 0, std::numeric_limits<int32_t>::max()));
    s.top_k = static_cast<int>(k);
  }
  if (!count_tokens) {
    if (const json::value* v = find_field(obj, "stream")) {
      TURBINE_ASSIGN_OR_RETURN(s.stream, read_bool(*v, "stream"));
    }
  }
  if (const json::value* v = find_field(obj, "metadata")) {
    if (!v->is_object()) return type_error("metadata", "an object", *v);
    if (const json::value* u = find_field(v->get_object(), "user_id")) {
      TURBINE_ASSIGN_OR_RETURN(x.user, read_string(*u, "metadata.user_id"));
    }
    x.metadata_json = json::serialize(*v);
  }
  if (const json::value* v = find_field(obj, "service_tier")) {
    TURBINE_RETURN_IF_ERROR(read_string(*v, "service_tier").status());
  }
  return req;
}

std::string tool_use_id(const std::string& call_id) {
  if (call_id.starts_with("call_")) return "toolu_" + call_id.substr(5);
  return "toolu_" + call_id;
}

}  // namespace

Result<ChatRequest> parse_anthropic_request(std::string_view body) {
  return parse(body, /*count_tokens=*/false);
}

Result<ChatRequest> parse_anthropic_count_tokens_request(std::string_view body) {
  return parse(body, /*count_tokens=*/true);
}

std::string anthropic_count_tokens_response(int64_t input_tokens) {
  std::string out = R"({"input_tokens":)";
  append_json_int(out, input_tokens);
  out += "}";
  return out;
}

const char* anthropic_error_type(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
    case StatusCode::kInvalidArgument:
    case StatusCode::kMethodNotAllowed:
    case StatusCode::kCancelled: return "invalid_request_error";
    case StatusCode::kUnauthenticated: return "authentication_error";
    case StatusCode::kPermissionDenied: return "permission_error";
    case StatusCode::kNotFound: return "not_found_error";
    case StatusCode::kPayloadTooLarge: return "request_too_large";
    case StatusCode::kResourceExhausted: return "rate_limit_error";
    case StatusCode::kUnavailable: return "overloaded_error";
    case StatusCode::kInternal:
    case StatusCode::kUnimplemented:
    case StatusCode::kDataLoss: return "api_error";
  }
  return "api_error";
}

std::string anthropic_error_json(const Status& status) {
  std::string out = R"({"type":"error","error":{"type":)";
  append_json_string(out, anthropic_error_type(status.code()));
  out += R"(,"message":)";
  append_json_string(out, status.message());
  out += "}}";
  return out;
}

// ---------------------------------------------------------------------------------------------
// Encoder

AnthropicEncoder::AnthropicEncoder(std::string id, std::string model, int64_t input_tokens,
                                   bool streaming)
    : id_(std::move(id)),
      model_(std::move(model)),
      streaming_(streaming),
      input_tokens_(input_tokens) {
  usage_.input_tokens = input_tokens;
}

SseEvent AnthropicEncoder::ping() {
  return {"ping", R"({"type":"ping"})"};
}

void AnthropicEncoder::append_usage(std::string& out) const {
  out += R"({"input_tokens":)";
  append_json_int(out, usage_.input_tokens - usage_.cached_tokens);
  out += R"(,"cache_creation_input_tokens":0,"cache_read_input_tokens":)";
  append_json_int(out, usage_.cached_tokens);
  out += R"(,"output_tokens":)";
  append_json_int(out, usage_.output_tokens);
  out += "}";
}

void AnthropicEncoder::start(std::vector<SseEvent>& out) {
  if (!streaming_) return;
  std::string data = R"({"type":"message_start","message":{"id":)";
  append_json_string(data, id_);
  data += R"(,"type":"message","role":"assistant","model":)";
  append_json_string(data, model_);
  data += R"(,"content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":)";
  append_json_int(data, input_tokens_);
  data += R"(,"output_tokens":0}}})";
  out.push_back({"message_start", std::move(data)});
  out.push_back(ping());
}

void AnthropicEncoder::append_block_json(std::string& out, const Block& b, bool for_start) const {
  switch (b.kind) {
    case Block::Kind::kThinking:
      out += R"({"type":"thinking","thinking":)";
      append_json_string(out, for_start ? std::string() : b.text);
      out += R"(,"signature":""})";
      return;
    case Block::Kind::kText:
      out += R"({"type":"text","text":)";
      append_json_string(out, for_start ? std::string() : b.text);
      out += "}";
      return;
    case Block::Kind::kToolUse: {
      out += R"({"type":"tool_use","id":)";
      append_json_string(out, b.id);
      out += R"(,"name":)";
      append_json_string(out, b.name);
      out += R"(,"input":)";
      // `input` must be an object: arguments that are not one (cut off at max_tokens) give {}.
      bool object = false;
      if (!for_start) {
        std::error_code ec;
        const json::value v = json::parse(b.text, ec);
        object = !ec && v.is_object();
      }
      out += object ? b.text : "{}";
      out += "}";
      return;
    }
  }
}

void AnthropicEncoder::open_block(Block::Kind kind, std::vector<SseEvent>& out, std::string id,
                                  std::string name) {
  close_block(out);
  blocks_.push_back({kind, {}, std::move(id), std::move(name)});
  open_ = true;
  if (!streaming_) return;
  std::string data = R"({"type":"content_block_start","index":)";
  append_json_int(data, static_cast<int64_t>(blocks_.size() - 1));
  data += R"(,"content_block":)";
  append_block_json(data, blocks_.back(), /*for_start=*/true);
  data += "}";
  out.push_back({"content_block_start", std::move(data)});
}

void AnthropicEncoder::close_block(std::vector<SseEvent>& out) {
  if (!open_) return;
  open_ = false;
  if (!streaming_) return;
  std::string data = R"({"type":"content_block_stop","index":)";
  append_json_int(data, static_cast<int64_t>(blocks_.size() - 1));
  data += "}";
  out.push_back({"content_block_stop", std::move(data)});
}

void AnthropicEncoder::delta(const ChoiceDelta& d, std::vector<SseEvent>& out) {
  const auto block_delta = [&](std::string_view type, std::string_view key,
                               const std::string& text) {
    if (!streaming_) return;
    std::string data = R"({"type":"content_block_delta","index":)";
    append_json_int(data, static_cast<int64_t>(blocks_.size() - 1));
    data += R"(,"delta":{"type":)";
    append_json_string(data, type);
    data += ",";
    append_json_string(data, key);
    data += ":";
    append_json_string(data, text);
    data += "}}";
    out.push_back({"content_block_delta", std::move(data)});
  };
  if (!d.reasoning.empty()) {
    if (!open_ || blocks_.back().kind != Block::Kind::kThinking) {
      open_block(Block::Kind::kThinking, out);
    }
    blocks_.back().text += d.reasoning;
    block_delta("thinking_delta", "thinking", d.reasoning);
  }
  if (!d.content.empty()) {
    if (!open_ || blocks_.back().kind != Block::Kind::kText) open_block(Block::Kind::kText, out);
    blocks_.back().text += d.content;
    block_delta("text_delta", "text", d.content);
  }
  for (const ToolCallDelta& t : d.tool_calls) {
    if (!t.id.empty() || !t.name.empty()) {
      open_block(Block::Kind::kToolUse, out, tool_use_id(t.id.empty() ? make_api_id("call") : t.id),
                 t.name);
    }
    if (t.arguments.empty() || !open_ || blocks_.back().kind != Block::Kind::kToolUse) continue;
    blocks_.back().text += t.arguments;
    block_delta("input_json_delta", "partial_json", t.arguments);
  }
}

void AnthropicEncoder::finish(FinishReason reason, const std::optional<std::string>& stop_sequence,
                              const AnthropicUsage& usage, std::vector<SseEvent>& out) {
  close_block(out);
  usage_ = usage;
  bool tool_use = false;
  for (const Block& b : blocks_) tool_use = tool_use || b.kind == Block::Kind::kToolUse;
  if (reason == FinishReason::kLength) {
    stop_reason_ = "max_tokens";
  } else if (tool_use || reason == FinishReason::kToolCalls) {
    stop_reason_ = "tool_use";
  } else if (reason == FinishReason::kContentFilter) {
    stop_reason_ = "refusal";
  } else if (reason == FinishReason::kStop && stop_sequence) {
    stop_reason_ = "stop_sequence";
    stop_sequence_ = stop_sequence;
  } else {
    stop_reason_ = "end_turn";
  }
  if (!streaming_) return;
  std::string data = R"({"type":"message_delta","delta":{"stop_reason":)";
  append_json_string(data, stop_reason_);
  data += R"(,"stop_sequence":)";
  if (stop_sequence_) {
    append_json_string(data, *stop_sequence_);
  } else {
    data += "null";
  }
  data += R"(},"usage":)";
  append_usage(data);
  data += "}";
  out.push_back({"message_delta", std::move(data)});
  out.push_back({"message_stop", R"({"type":"message_stop"})"});
}

void AnthropicEncoder::fail(const Status& status, std::vector<SseEvent>& out) {
  open_ = false;
  if (streaming_) out.push_back({"error", anthropic_error_json(status)});
}

std::string AnthropicEncoder::message_json() const {
  std::string out = R"({"id":)";
  append_json_string(out, id_);
  out += R"(,"type":"message","role":"assistant","model":)";
  append_json_string(out, model_);
  out += R"(,"content":[)";
  for (size_t i = 0; i < blocks_.size(); ++i) {
    if (i > 0) out += ",";
    append_block_json(out, blocks_[i], /*for_start=*/false);
  }
  out += R"(],"stop_reason":)";
  if (stop_reason_.empty()) {
    out += "null";
  } else {
    append_json_string(out, stop_reason_);
  }
  out += R"(,"stop_sequence":)";
  if (stop_sequence_) {
    append_json_string(out, *stop_sequence_);
  } else {
    out += "null";
  }
  out += R"(,"usage":)";
  append_usage(out);
  out += "}";
  return out;
}

}  // namespace turbine::api
