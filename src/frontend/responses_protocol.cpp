#include "frontend/responses_protocol.h"

#include <vector>

#include "api/errors.h"
#include "api/responses.h"

namespace turbine::frontend {
namespace {

// What the adapter keeps with a parsed request (ChatRequest::protocol_state).
struct ResponsesState final : api::ProtocolState {
  api::ResponsesRequest request;
};

void append_events(std::string& out, const std::vector<api::SseEvent>& events) {
  for (const api::SseEvent& e : events) append_sse(out, e.event, e.data);
}

api::ResponsesUsage responses_usage(const api::Usage& u) {
  api::ResponsesUsage r;
  r.input_tokens = u.prompt_tokens;
  r.cached_tokens = u.cached_tokens.value_or(0);
  r.output_tokens = u.completion_tokens;
  return r;
}

class Encoder final : public ResponseEncoder {
 public:
  Encoder(api::ResponseStore& store, std::shared_ptr<const ResponsesState> state,
          api::ResponseHeader header, bool streaming)
      : store_(store), state_(std::move(state)), enc_(std::move(header), streaming) {}

  void stream_start(std::span<const int>, std::string& out) override {
    std::vector<api::SseEvent> events;
    enc_.start(events);
    append_events(out, events);
  }

  void stream_delta(const api::ChoiceDelta& d, std::string& out) override {
    std::vector<api::SseEvent> events;
    enc_.delta(d, events);
    if (d.finish != api::FinishReason::kNone) finish_ = d.finish;
    append_events(out, events);
  }

  void stream_error(const Status& error, std::string& out) override {
    std::vector<api::SseEvent> events;
    enc_.fail(error, events);
    failed_ = true;
    append_events(out, events);
  }

  void stream_end(const api::Usage& usage, std::string& out) override {
    if (failed_) return;
    std::vector<api::SseEvent> events;
    enc_.finish(finish_, responses_usage(usage), events);
    append_events(out, events);
    api::remember_response(store_, state_->request, enc_);
  }

  std::string unary(std::span<const ChoiceOutput> choices, const api::Usage& usage) override {
    std::vector<api::SseEvent> none;
    api::FinishReason finish = api::FinishReason::kStop;
    if (!choices.empty()) {
      enc_.delta(choices.front().as_delta(), none);
      finish = choices.front().finish;
    }
    enc_.finish(finish, responses_usage(usage), none);
    api::remember_response(store_, state_->request, enc_);
    return enc_.response_json();
  }

 private:
  api::ResponseStore& store_;
  const std::shared_ptr<const ResponsesState> state_;
  api::ResponsesEncoder enc_;
  api::FinishReason finish_ = api::FinishReason::kStop;
  bool failed_ = false;
};

class ResponsesAdapter final : public ProtocolAdapter {
 public:
  explicit ResponsesAdapter(api::ResponseStore& store) : store_(store) {}

  std::string_view endpoint() const override { return "responses"; }
  std::string_view route() const override { return "POST /v1/responses"; }
  std::string_view prompt_field() const override { return "input"; }

  Result<ParsedRequest> parse(std::string_view body) const override {
    TURBINE_ASSIGN_OR_RETURN(api::ResponsesRequest r, api::parse_responses_request(body));
    TURBINE_RETURN_IF_ERROR(api::apply_previous_response(r, store_));
    auto state = std::make_shared<ResponsesState>();
    api::ChatRequest chat = r.chat;
    state->request = std::move(r);
    chat.protocol_state = std::move(state);
    return ParsedRequest(std::move(chat));
  }

  std::string make_id() const override { return api::make_api_id("resp"); }

  std::unique_ptr<ResponseEncoder> encoder(const api::ResponseMeta& meta,
                                           const ParsedRequest& request) const override {
    const auto& chat = std::get<api::ChatRequest>(request);
    auto state = std::dynamic_pointer_cast<const ResponsesState>(chat.protocol_state);
    if (!state) {
      // A request hook replaced the request: rebuild the state from what runs.
      auto made = std::make_shared<ResponsesState>();
      made->request.chat = chat;
      made->request.input_messages = chat.messages;
      state = std::move(made);
    }
    api::ResponseHeader header = api::response_header(state->request, meta.id, meta.created);
    header.model = meta.model;
    return std::make_unique<Encoder>(store_, std::move(state), std::move(header),
                                     chat.sampling.stream);
  }

  ErrorReply error(const Status& status) const override {
    ErrorReply r;
    r.status = api::http_status(status.code());
    r.body = api::responses_error_json(status);
    if (status.code() == StatusCode::kUnavailable) {
      r.headers.emplace_back("Retry-After", std::to_string(kRetryAfterSeconds));
    }
    return r;
  }

 private:
  api::ResponseStore& store_;
};

}  // namespace

std::unique_ptr<ProtocolAdapter> make_responses_adapter(api::ResponseStore& store) {
  return std::make_unique<ResponsesAdapter>(store);
}

}  // namespace turbine::frontend
