// ResponsesEncoder: ChoiceDeltas -> output items, the response object and its stream events.
#include "api/errors.h"
#include "api/json_writer.h"
#include "api/responses.h"

namespace turbine::api {
namespace {

void append_optional_string(std::string& out, const std::optional<std::string>& s) {
  if (s) {
    append_json_string(out, *s);
  } else {
    out += "null";
  }
}

void append_tool_choice(std::string& out, const ToolChoice& choice) {
  switch (choice.mode) {
    case ToolChoice::Mode::kAuto: out += R"("auto")"; return;
    case ToolChoice::Mode::kNone: out += R"("none")"; return;
    case ToolChoice::Mode::kRequired: out += R"("required")"; return;
    case ToolChoice::Mode::kFunction:
      out += R"({"type":"function","name":)";
      append_json_string(out, choice.function);
      out += "}";
      return;
  }
}

void append_tools(std::string& out, const std::vector<ToolSpec>& tools) {
  out += "[";
  for (size_t i = 0; i < tools.size(); ++i) {
    const ToolSpec& t = tools[i];
    if (i > 0) out += ",";
    out += R"({"type":"function","name":)";
    append_json_string(out, t.name);
    out += R"(,"description":)";
    if (t.description.empty()) {
      out += "null";
    } else {
      append_json_string(out, t.description);
    }
    out += R"(,"parameters":)";
    out += t.parameters_json.empty() ? "null" : t.parameters_json;
    out += R"(,"strict":)";
    out += t.strict ? "true" : "false";
    out += "}";
  }
  out += "]";
}

void append_format(std::string& out, const OutputFormat& f) {
  switch (f.type) {
    case OutputFormat::Type::kText: out += R"({"type":"text"})"; return;
    case OutputFormat::Type::kJsonObject: out += R"({"type":"json_object"})"; return;
    case OutputFormat::Type::kJsonSchema:
      out += R"({"type":"json_schema","name":)";
      append_json_string(out, f.name);
      out += R"(,"schema":)";
      out += f.schema_json;
      out += R"(,"strict":)";
      out += f.strict ? "true" : "false";
      out += "}";
      return;
  }
}

const char* item_prefix(int kind) {
  switch (kind) {
    case 0: return "msg";
    case 1: return "rs";
    default: return "fc";
  }
}

}  // namespace

ResponsesEncoder::ResponsesEncoder(ResponseHeader header, bool streaming,
                                   std::function<std::string(std::string_view)> make_id)
    : header_(std::move(header)), streaming_(streaming), make_id_(std::move(make_id)) {
  if (!make_id_) make_id_ = [](std::string_view prefix) { return make_api_id(prefix); };
}

void ResponsesEncoder::emit(std::string_view type, std::string json_tail,
                            std::vector<SseEvent>& out) {
  std::string data = R"({"type":)";
  append_json_string(data, type);
  data += json_tail;
  data += R"(,"sequence_number":)";
  append_json_int(data, sequence_++);
  data += "}";
  out.push_back({std::string(type), std::move(data)});
}

void ResponsesEncoder::start(std::vector<SseEvent>& out) {
  if (!streaming_) return;
  emit("response.created", R"(,"response":)" + response_json(), out);
  emit("response.in_progress", R"(,"response":)" + response_json(), out);
}

void ResponsesEncoder::append_item_json(std::string& out, const Item& item) const {
  out += R"({"id":)";
  append_json_string(out, item.id);
  switch (item.kind) {
    case Item::Kind::kMessage:
      out += R"(,"type":"message","status":)";
      out += item.done ? R"("completed")" : R"("in_progress")";
      out += R"(,"content":[)";
      if (item.done) {
        out += R"({"type":"output_text","text":)";
        append_json_string(out, item.text);
        out += R"(,"annotations":[],"logprobs":[]})";
      }
      out += R"(],"role":"assistant"})";
      return;
    case Item::Kind::kReasoning:
      out += R"(,"type":"reasoning","summary":[],"content":[)";
      if (item.done) {
        out += R"({"type":"reasoning_text","text":)";
        append_json_string(out, item.text);
        out += "}";
      }
      out += "]}";
      return;
    case Item::Kind::kFunctionCall:
      out += R"(,"type":"function_call","status":)";
      out += item.done ? R"("completed")" : R"("in_progress")";
      out += R"(,"arguments":)";
      append_json_string(out, item.done ? item.text : std::string());
      out += R"(,"call_id":)";
      append_json_string(out, item.call_id);
      out += R"(,"name":)";
      append_json_string(out, item.name);
      out += "}";
      return;
  }
}

void ResponsesEncoder::open_item(Item::Kind kind, std::vector<SseEvent>& out, std::string call_id,
                                 std::string name) {
  close_item(out);
  Item item{
      kind, make_id_(item_prefix(static_cast<int>(kind))), {}, std::move(call_id), std::move(name)};
  items_.push_back(std::move(item));
  open_ = true;
  if (!streaming_) return;
  const Item& it = items_.back();
  const std::string index = std::to_string(items_.size() - 1);
  std::string tail = R"(,"output_index":)" + index + R"(,"item":)";
  append_item_json(tail, it);
  emit("response.output_item.added", std::move(tail), out);
  if (kind == Item::Kind::kFunctionCall) return;
  tail = R"(,"item_id":)";
  append_json_string(tail, it.id);
  tail += R"(,"output_index":)" + index + R"(,"content_index":0,"part":)";
  tail += kind == Item::Kind::kMessage ? R"({"type":"output_text","text":"","annotations":[]})"
                                       : R"({"type":"reasoning_text","text":""})";
  emit("response.content_part.added", std::move(tail), out);
}

void ResponsesEncoder::close_item(std::vector<SseEvent>& out) {
  if (!open_) return;
  open_ = false;
  Item& it = items_.back();
  it.done = true;
  if (!streaming_) return;
  const std::string index = std::to_string(items_.size() - 1);
  std::string head = R"(,"item_id":)";
  append_json_string(head, it.id);
  head += R"(,"output_index":)" + index;
  if (it.kind == Item::Kind::kFunctionCall) {
    std::string tail = head + R"(,"name":)";
    append_json_string(tail, it.name);
    tail += R"(,"arguments":)";
    append_json_string(tail, it.text);
    emit("response.function_call_arguments.done", std::move(tail), out);
  } else {
    const bool message = it.kind == Item::Kind::kMessage;
    std::string tail = head + R"(,"content_index":0,"text":)";
    append_json_string(tail, it.text);
    if (message) tail += R"(,"logprobs":[])";
    emit(message ? "response.output_text.done" : "response.reasoning_text.done", std::move(tail),
         out);
    tail = head + R"(,"content_index":0,"part":)";
    tail += message ? R"({"type":"output_text","text":)" : R"({"type":"reasoning_text","text":)";
    append_json_string(tail, it.text);
    tail += message ? R"(,"annotations":[]})" : "}";
    emit("response.content_part.done", std::move(tail), out);
  }
  std::string tail = R"(,"output_index":)" + index + R"(,"item":)";
  append_item_json(tail, it);
  emit("response.output_item.done", std::move(tail), out);
}

void ResponsesEncoder::delta(const ChoiceDelta& d, std::vector<SseEvent>& out) {
  const auto text_delta = [&](std::string_view type, const std::string& text) {
    std::string tail = R"(,"item_id":)";
    append_json_string(tail, items_.back().id);
    tail += R"(,"output_index":)" + std::to_string(items_.size() - 1);
    tail += R"(,"content_index":0,"delta":)";
    append_json_string(tail, text);
    if (type == "response.output_text.delta") tail += R"(,"logprobs":[])";
    emit(type, std::move(tail), out);
  };
  if (!d.reasoning.empty()) {
    if (!open_ || items_.back().kind != Item::Kind::kReasoning) {
      open_item(Item::Kind::kReasoning, out);
    }
    items_.back().text += d.reasoning;
    if (streaming_) text_delta("response.reasoning_text.delta", d.reasoning);
  }
  if (!d.content.empty()) {
    if (!open_ || items_.back().kind != Item::Kind::kMessage) open_item(Item::Kind::kMessage, out);
    items_.back().text += d.content;
    if (streaming_) text_delta("response.output_text.delta", d.content);
  }
  for (const ToolCallDelta& t : d.tool_calls) {
    if (!t.id.empty() || !t.name.empty()) {
      open_item(Item::Kind::kFunctionCall, out, t.id.empty() ? make_id_("call") : t.id, t.name);
    }
    if (t.arguments.empty()) continue;
    if (!open_ || items_.back().kind != Item::Kind::kFunctionCall) continue;  // no call open
    items_.back().text += t.arguments;
    if (!streaming_) continue;
    std::string tail = R"(,"item_id":)";
    append_json_string(tail, items_.back().id);
    tail += R"(,"output_index":)" + std::to_string(items_.size() - 1) + R"(,"delta":)";
    append_json_string(tail, t.arguments);
    emit("response.function_call_arguments.delta", std::move(tail), out);
  }
}

void ResponsesEncoder::finish(FinishReason reason, const ResponsesUsage& usage,
                              std::vector<SseEvent>& out) {
  close_item(out);
  usage_ = usage;
  switch (reason) {
    case FinishReason::kLength:
      status_ = "incomplete";
      incomplete_reason_ = "max_output_tokens";
      break;
    case FinishReason::kContentFilter:
      status_ = "incomplete";
      incomplete_reason_ = "content_filter";
      break;
    case FinishReason::kAbort: status_ = "cancelled"; break;
    default: status_ = "completed"; break;
  }
  if (!streaming_ || status_ == "cancelled") return;
  emit(status_ == "completed" ? "response.completed" : "response.incomplete",
       R"(,"response":)" + response_json(), out);
}

void ResponsesEncoder::fail(const Status& status, std::vector<SseEvent>& out) {
  close_item(out);
  status_ = "failed";
  error_ = status;
  if (!streaming_) return;
  std::string tail = R"(,"code":)";
  append_json_string(tail, error_type(status.code()));
  tail += R"(,"message":)";
  append_json_string(tail, status.message());
  tail += R"(,"param":)";
  if (status.field().empty()) {
    tail += "null";
  } else {
    append_json_string(tail, status.field());
  }
  emit("error", std::move(tail), out);
  emit("response.failed", R"(,"response":)" + response_json(), out);
}

std::string ResponsesEncoder::response_json() const {
  const ResponseHeader& h = header_;
  std::string out = R"({"id":)";
  append_json_string(out, h.id);
  out += R"(,"object":"response","created_at":)";
  append_json_int(out, h.created_at);
  out += R"(,"status":)";
  append_json_string(out, status_);
  out += R"(,"error":)";
  if (error_) {
    out += R"({"code":)";
    append_json_string(out, error_type(error_->code()));
    out += R"(,"message":)";
    append_json_string(out, error_->message());
    out += "}";
  } else {
    out += "null";
  }
  out += R"(,"incomplete_details":)";
  if (incomplete_reason_.empty()) {
    out += "null";
  } else {
    out += R"({"reason":)";
    append_json_string(out, incomplete_reason_);
    out += "}";
  }
  out += R"(,"instructions":)";
  append_optional_string(out, h.instructions);
  out += R"(,"max_output_tokens":)";
  if (h.max_output_tokens) {
    append_json_int(out, *h.max_output_tokens);
  } else {
    out += "null";
  }
  out += R"(,"model":)";
  append_json_string(out, h.model);
  out += R"(,"output":[)";
  for (size_t i = 0; i < items_.size(); ++i) {
    if (i > 0) out += ",";
    append_item_json(out, items_[i]);
  }
  out += R"(],"parallel_tool_calls":)";
  out += h.parallel_tool_calls ? "true" : "false";
  out += R"(,"previous_response_id":)";
  append_optional_string(out, h.previous_response_id);
  out += R"(,"reasoning":{"effort":)";
  append_optional_string(out, h.reasoning_effort);
  out += R"(,"summary":null},"store":)";
  out += h.store ? "true" : "false";
  out += R"(,"temperature":)";
  append_json_float(out, h.temperature);
  out += R"(,"text":{"format":)";
  append_format(out, h.output_format);
  out += R"(},"tool_choice":)";
  append_tool_choice(out, h.tool_choice);
  out += R"(,"tools":)";
  append_tools(out, h.tools);
  out += R"(,"top_p":)";
  append_json_float(out, h.top_p);
  out += R"(,"truncation":"disabled","usage":)";
  if (usage_) {
    const ResponsesUsage& u = *usage_;
    out += R"({"input_tokens":)";
    append_json_int(out, u.input_tokens);
    out += R"(,"input_tokens_details":{"cached_tokens":)";
    append_json_int(out, u.cached_tokens);
    out += R"(},"output_tokens":)";
    append_json_int(out, u.output_tokens);
    out += R"(,"output_tokens_details":{"reasoning_tokens":)";
    append_json_int(out, u.reasoning_tokens);
    out += R"(},"total_tokens":)";
    append_json_int(out, u.input_tokens + u.output_tokens);
    out += "}";
  } else {
    out += "null";
  }
  out += R"(,"user":)";
  if (h.user.empty()) {
    out += "null";
  } else {
    append_json_string(out, h.user);
  }
  out += R"(,"metadata":)";
  out += h.metadata_json.empty() ? "{}" : h.metadata_json;
  out += "}";
  return out;
}

std::vector<ChatMessage> ResponsesEncoder::output_messages() const {
  std::vector<ChatMessage> out;
  std::optional<std::string> reasoning;
  bool last_is_ours = false;  // out.back() is an assistant message built here
  for (const Item& it : items_) {
    switch (it.kind) {
      case Item::Kind::kReasoning: reasoning = reasoning ? *reasoning + it.text : it.text; break;
      case Item::Kind::kMessage: {
        ChatMessage m;
        m.role = "assistant";
        m.content = it.text;
        m.reasoning_content = std::move(reasoning);
        reasoning.reset();
        out.push_back(std::move(m));
        last_is_ours = true;
        break;
      }
      case Item::Kind::kFunctionCall: {
        if (!last_is_ours || reasoning) {
          ChatMessage m;
          m.role = "assistant";
          m.reasoning_content = std::move(reasoning);
          reasoning.reset();
          out.push_back(std::move(m));
          last_is_ours = true;
        }
        append_tool_call_json(out.back().tool_calls_json, it.call_id, it.name, it.text);
        break;
      }
    }
  }
  if (reasoning) {  // reasoning with nothing after it (cut off)
    ChatMessage m;
    m.role = "assistant";
    m.reasoning_content = std::move(reasoning);
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace turbine::api
