#include "frontend/anthropic_protocol.h"

#include <optional>
#include <vector>

#include "api/anthropic.h"
#include "api/errors.h"

namespace turbine::frontend {
namespace {

void append_events(std::string& out, const std::vector<api::SseEvent>& events) {
  for (const api::SseEvent& e : events) append_sse(out, e.event, e.data);
}

api::AnthropicUsage anthropic_usage(const api::Usage& u) {
  return {u.prompt_tokens, u.cached_tokens.value_or(0), u.completion_tokens};
}

std::optional<std::string> stop_sequence_of(const std::string& s) {
  if (s.empty()) return std::nullopt;
  return s;
}

class Encoder final : public ResponseEncoder {
 public:
  Encoder(const api::ResponseMeta& meta, bool streaming)
      : enc_(meta.id, meta.model, meta.prompt_tokens, streaming) {}

  void stream_start(std::span<const int>, std::string& out) override {
    std::vector<api::SseEvent> events;
    enc_.start(events);
    append_events(out, events);
  }

  void stream_delta(const api::ChoiceDelta& d, std::string& out) override {
    std::vector<api::SseEvent> events;
    enc_.delta(d, events);
    if (d.finish != api::FinishReason::kNone) {
      finish_ = d.finish;
      stop_sequence_ = d.stop_sequence;
    }
    append_events(out, events);
  }

  void stream_error(const Status& error, std::string& out) override {
    std::vector<api::SseEvent> events;
    enc_.fail(error, events);
    failed_ = true;
    append_events(out, events);
  }

  void stream_end(const api::Usage& usage, std::string& out) override {
    if (failed_) return;  // the error event ends an Anthropic stream
    std::vector<api::SseEvent> events;
    enc_.finish(finish_, stop_sequence_of(stop_sequence_), anthropic_usage(usage), events);
    append_events(out, events);
  }

  std::string unary(std::span<const ChoiceOutput> choices, const api::Usage& usage) override {
    std::vector<api::SseEvent> none;
    api::FinishReason finish = api::FinishReason::kStop;
    std::string stop;
    if (!choices.empty()) {
      enc_.delta(choices.front().as_delta(), none);
      finish = choices.front().finish;
      stop = choices.front().stop_sequence;
    }
    enc_.finish(finish, stop_sequence_of(stop), anthropic_usage(usage), none);
    return enc_.message_json();
  }

 private:
  api::AnthropicEncoder enc_;
  api::FinishReason finish_ = api::FinishReason::kStop;
  std::string stop_sequence_;
  bool failed_ = false;
};

class AnthropicAdapter final : public ProtocolAdapter {
 public:
  std::string_view endpoint() const override { return "messages"; }
  std::string_view route() const override { return "POST /v1/messages"; }
  std::string_view prompt_field() const override { return "messages"; }
  Result<ParsedRequest> parse(std::string_view body) const override {
    TURBINE_ASSIGN_OR_RETURN(api::ChatRequest r, api::parse_anthropic_request(body));
    return ParsedRequest(std::move(r));
  }
  std::string make_id() const override { return api::make_api_id("msg"); }
  std::unique_ptr<ResponseEncoder> encoder(const api::ResponseMeta& meta,
                                           const ParsedRequest& request) const override {
    return std::make_unique<Encoder>(meta, sampling_of(request).stream);
  }
  ErrorReply error(const Status& status) const override { return anthropic_error(status); }
};

}  // namespace

std::unique_ptr<ProtocolAdapter> make_anthropic_adapter() {
  return std::make_unique<AnthropicAdapter>();
}

ErrorReply anthropic_error(const Status& status) {
  ErrorReply r;
  r.status = api::http_status(status.code());
  r.body = api::anthropic_error_json(status);
  if (status.code() == StatusCode::kUnavailable) {
    r.headers.emplace_back("Retry-After", std::to_string(kRetryAfterSeconds));
  }
  return r;
}

}  // namespace turbine::frontend
