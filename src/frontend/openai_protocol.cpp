#include "frontend/openai_protocol.h"

#include <map>

#include "api/errors.h"
#include "api/json_writer.h"

namespace turbine::frontend {
namespace {

class ChatEncoder final : public ResponseEncoder {
 public:
  ChatEncoder(api::ResponseMeta meta, const api::SamplingOptions& s)
      : meta_(std::move(meta)), include_usage_(s.include_usage), logprobs_(s.logprobs) {}

  void stream_start(std::span<const int> indices, std::string& out) override {
    for (int index : indices) append_sse(out, api::chat_role_chunk(meta_, index));
  }

  void stream_delta(const api::ChoiceDelta& d, std::string& out) override {
    if (!d.content.empty() || !d.reasoning.empty() || !d.tool_calls.empty() ||
        !d.logprobs.empty()) {
      const std::string calls = openai_tool_call_deltas_json(d.tool_calls);
      api::ChatChoice cc;
      cc.index = d.index;
      cc.content = d.content;
      cc.reasoning = d.reasoning;
      cc.tool_calls_json = calls;
      cc.has_logprobs = !d.logprobs.empty();
      cc.logprobs = d.logprobs;
      append_sse(out, api::chat_chunk(meta_, cc));
    }
    if (d.finish != api::FinishReason::kNone) {
      api::ChatChoice fin;
      fin.index = d.index;
      fin.finish_reason = d.finish;
      append_sse(out, api::chat_chunk(meta_, fin));
    }
  }

  void stream_end(const api::Usage& usage, std::string& out) override {
    if (include_usage_) append_sse(out, api::chat_usage_chunk(meta_, usage));
    out += api::kSseDone;
  }

  std::string unary(std::span<const ChoiceOutput> choices, const api::Usage& usage) override {
    std::vector<std::string> calls;
    calls.reserve(choices.size());
    std::vector<api::ChatChoice> out;
    out.reserve(choices.size());
    for (const ChoiceOutput& c : choices) {
      calls.push_back(openai_tool_calls_json(c.tool_calls));
      api::ChatChoice cc;
      cc.index = c.index;
      cc.content = c.content;
      cc.reasoning = c.reasoning;
      cc.tool_calls_json = calls.back();
      cc.finish_reason = c.finish;
      cc.has_logprobs = logprobs_.has_value();
      cc.logprobs = c.logprobs;
      out.push_back(cc);
    }
    return api::chat_response(meta_, out, usage);
  }

 private:
  const api::ResponseMeta meta_;
  const bool include_usage_;
  const std::optional<int> logprobs_;
};

class CompletionEncoder final : public ResponseEncoder {
 public:
  CompletionEncoder(api::ResponseMeta meta, const api::SamplingOptions& s)
      : meta_(std::move(meta)), include_usage_(s.include_usage), logprobs_(s.logprobs) {}

  // Completions streams have no opening event; an echoed prompt arrives as the first delta.
  void stream_start(std::span<const int>, std::string&) override {}

  void stream_delta(const api::ChoiceDelta& d, std::string& out) override {
    size_t& offset = text_offsets_[d.index];
    api::CompletionChoice cc;
    cc.index = d.index;
    cc.text = d.content;
    cc.finish_reason = d.finish;
    cc.has_logprobs = !d.logprobs.empty();
    cc.logprobs = d.logprobs;
    cc.text_offset_start = offset;
    append_sse(out, api::completion_chunk(meta_, cc));
    offset += d.content.size();
  }

  void stream_end(const api::Usage& usage, std::string& out) override {
    if (include_usage_) append_sse(out, api::completion_usage_chunk(meta_, usage));
    out += api::kSseDone;
  }

  std::string unary(std::span<const ChoiceOutput> choices, const api::Usage& usage) override {
    std::vector<api::CompletionChoice> out;
    out.reserve(choices.size());
    for (const ChoiceOutput& c : choices) {
      api::CompletionChoice cc;
      cc.index = c.index;
      cc.text = c.content;
      cc.finish_reason = c.finish;
      cc.has_logprobs = logprobs_.has_value();
      cc.logprobs = c.logprobs;
      cc.text_offset_start = c.logprobs_text_offset;
      out.push_back(cc);
    }
    return api::completion_response(meta_, out, usage);
  }

 private:
  const api::ResponseMeta meta_;
  const bool include_usage_;
  const std::optional<int> logprobs_;
  std::map<int, size_t> text_offsets_;  // per choice: bytes of text streamed so far
};

class ChatAdapter final : public ProtocolAdapter {
 public:
  std::string_view endpoint() const override { return "chat_completions"; }
  std::string_view route() const override { return "POST /v1/chat/completions"; }
  std::string_view prompt_field() const override { return "messages"; }
  Result<ParsedRequest> parse(std::string_view body) const override {
    TURBINE_ASSIGN_OR_RETURN(api::ChatRequest r, api::parse_chat_request(body));
    return ParsedRequest(std::move(r));
  }
  std::string make_id() const override { return api::make_request_id("chatcmpl"); }
  std::unique_ptr<ResponseEncoder> encoder(const api::ResponseMeta& meta,
                                           const ParsedRequest& request) const override {
    const api::SamplingOptions& s = sampling_of(request);
    api::ResponseMeta m = meta;
    m.null_usage_in_chunks = s.include_usage;
    return std::make_unique<ChatEncoder>(std::move(m), s);
  }
  ErrorReply error(const Status& status) const override { return openai_error(status); }
};

class CompletionsAdapter final : public ProtocolAdapter {
 public:
  std::string_view endpoint() const override { return "completions"; }
  std::string_view route() const override { return "POST /v1/completions"; }
  std::string_view prompt_field() const override { return "prompt"; }
  Result<ParsedRequest> parse(std::string_view body) const override {
    TURBINE_ASSIGN_OR_RETURN(api::CompletionRequest r, api::parse_completion_request(body));
    return ParsedRequest(std::move(r));
  }
  std::string make_id() const override { return api::make_request_id("cmpl"); }
  std::unique_ptr<ResponseEncoder> encoder(const api::ResponseMeta& meta,
                                           const ParsedRequest& request) const override {
    const api::SamplingOptions& s = sampling_of(request);
    api::ResponseMeta m = meta;
    m.null_usage_in_chunks = s.include_usage;
    return std::make_unique<CompletionEncoder>(std::move(m), s);
  }
  ErrorReply error(const Status& status) const override { return openai_error(status); }
};

void append_function(std::string& out, std::string_view name, std::string_view arguments,
                     bool with_name) {
  out += "\"function\":{";
  if (with_name) {
    out += "\"name\":";
    api::append_json_string(out, name);
    out += ',';
  }
  out += "\"arguments\":";
  api::append_json_string(out, arguments);
  out += '}';
}

}  // namespace

std::unique_ptr<ProtocolAdapter> make_openai_chat_adapter() {
  return std::make_unique<ChatAdapter>();
}

std::unique_ptr<ProtocolAdapter> make_openai_completions_adapter() {
  return std::make_unique<CompletionsAdapter>();
}

std::string openai_tool_call_deltas_json(std::span<const api::ToolCallDelta> calls) {
  if (calls.empty()) return {};
  std::string out = "[";
  for (size_t i = 0; i < calls.size(); ++i) {
    const api::ToolCallDelta& c = calls[i];
    if (i > 0) out += ',';
    out += "{\"index\":";
    api::append_json_int(out, c.index);
    const bool opens = !c.id.empty() || !c.name.empty();
    if (opens) {
      out += ",\"id\":";
      api::append_json_string(out, c.id);
      out += ",\"type\":\"function\"";
    }
    out += ',';
    append_function(out, c.name, c.arguments, opens);
    out += '}';
  }
  out += ']';
  return out;
}

std::string openai_tool_calls_json(std::span<const api::ToolCall> calls) {
  if (calls.empty()) return {};
  std::string out = "[";
  for (size_t i = 0; i < calls.size(); ++i) {
    if (i > 0) out += ',';
    out += "{\"id\":";
    api::append_json_string(out, calls[i].id);
    out += ",\"type\":\"function\",";
    append_function(out, calls[i].name, calls[i].arguments, true);
    out += '}';
  }
  out += ']';
  return out;
}

ErrorReply openai_error(const Status& status) {
  ErrorReply r;
  r.status = api::http_status(status.code());
  r.body = api::error_json(status);
  if (status.code() == StatusCode::kUnavailable) {
    r.headers.emplace_back("Retry-After", std::to_string(kRetryAfterSeconds));
  }
  return r;
}

}  // namespace turbine::frontend
