// Protocol adapters: the edges of the frontend's pipeline.
//
// A request is parsed by its endpoint's ProtocolAdapter into a protocol-neutral request
// (api::ChatRequest or api::CompletionRequest), runs through the stages that know no protocol
// (preprocessor, engine call, postprocessors), and its output, a sequence of api::ChoiceDelta
// per choice, is written back by the adapter's ResponseEncoder: a unary body, stream events, or
// an error in the protocol's own shape. OpenAI chat and completions are openai_protocol.h; the
// Responses and Anthropic Messages adapters plug in the same way.
//
// Threads: adapters are immutable and shared by every request (any thread). An encoder belongs to
// one response and is used on that request's strand only.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "api/delta.h"
#include "api/openai.h"
#include "common/status.h"
#include "http/router.h"

namespace turbine::frontend {

// What every protocol parses into. Responses and Anthropic Messages requests become ChatRequests.
using ParsedRequest = std::variant<api::ChatRequest, api::CompletionRequest>;

inline bool is_chat(const ParsedRequest& r) {
  return std::holds_alternative<api::ChatRequest>(r);
}
inline const std::string& model_of(const ParsedRequest& r) {
  return is_chat(r) ? std::get<api::ChatRequest>(r).model
                    : std::get<api::CompletionRequest>(r).model;
}
inline std::string& model_of(ParsedRequest& r) {
  return is_chat(r) ? std::get<api::ChatRequest>(r).model
                    : std::get<api::CompletionRequest>(r).model;
}
inline const api::SamplingOptions& sampling_of(const ParsedRequest& r) {
  return is_chat(r) ? std::get<api::ChatRequest>(r).sampling
                    : std::get<api::CompletionRequest>(r).sampling;
}

// Everything one choice produced, the sum of its deltas: unary responses are built from it.
struct ChoiceOutput {
  int index = 0;
  std::string content;
  std::string reasoning;
  std::vector<api::ToolCall> tool_calls;
  std::vector<api::TokenLogprob> logprobs;
  // Byte offset in `content` where the text behind `logprobs` starts (after a completions echo).
  size_t logprobs_text_offset = 0;
  api::FinishReason finish = api::FinishReason::kNone;

  // Appends a delta: text is concatenated, a tool-call delta either opens call `index` (id and
  // name) or appends to its arguments.
  void add(const api::ChoiceDelta& delta);
};

// An error as the protocol sends it: status code, JSON body, extra headers (Retry-After).
struct ErrorReply {
  int status = 500;
  std::string body;
  http::Headers headers;
};

// SSE framing. `data` must not contain a blank line (compact JSON never does).
// "data: <data>\n\n"
void append_sse(std::string& out, std::string_view data);
// "event: <event>\ndata: <data>\n\n" (typed events, as Responses and Anthropic streams use).
void append_sse(std::string& out, std::string_view event, std::string_view data);

// Writes one response in one protocol. Created per request, after the request was accepted.
// Stream methods append complete SSE events to `out`; the caller writes `out` to the socket when
// it has collected a batch (one write per engine wake-up, not per event).
class ResponseEncoder {
 public:
  virtual ~ResponseEncoder() = default;

  // The first events, before any output: e.g. a role chunk per choice (OpenAI chat) or
  // message_start (Anthropic). `indices` are the response's choice indices.
  virtual void stream_start(std::span<const int> indices, std::string& out) = 0;
  // One choice's new output (never empty). Deltas of different choices interleave.
  virtual void stream_delta(const api::ChoiceDelta& delta, std::string& out) = 0;
  // A choice failed after the stream started (engine error). Default: nothing beyond the
  // choice's final delta (finish "abort"), which is what OpenAI clients understand.
  virtual void stream_error(const Status& error, std::string& out) {
    (void)error;
    (void)out;
  }
  // The last events: the usage (when asked for) and the end marker ([DONE], message_stop, ...).
  virtual void stream_end(const api::Usage& usage, std::string& out) = 0;

  // The whole response at once.
  virtual std::string unary(std::span<const ChoiceOutput> choices, const api::Usage& usage) = 0;
};

// One endpoint's protocol: parsing, the encoder for an accepted request, and errors.
class ProtocolAdapter {
 public:
  virtual ~ProtocolAdapter() = default;
  // Metrics and span label: "chat_completions", "completions", "responses", "messages".
  virtual std::string_view endpoint() const = 0;
  // The request's HTTP route, for span names ("POST /v1/chat/completions").
  virtual std::string_view route() const = 0;
  // Where the prompt is in the request, for length errors: "messages", "prompt", "input".
  virtual std::string_view prompt_field() const = 0;
  // Body -> protocol-neutral request (kInvalidArgument naming the field on bad input).
  virtual Result<ParsedRequest> parse(std::string_view body) const = 0;
  // A fresh response id ("chatcmpl-...", "msg_...").
  virtual std::string make_id() const = 0;
  // The encoder of one accepted request. `request` is the request as it runs (after the hook), so
  // an encoder can echo what its protocol repeats in responses (Responses: instructions, tools,
  // metadata); it outlives the encoder.
  virtual std::unique_ptr<ResponseEncoder> encoder(const api::ResponseMeta& meta,
                                                   const ParsedRequest& request) const = 0;
  // `status` in the protocol's error shape; 503s carry Retry-After.
  virtual ErrorReply error(const Status& status) const = 0;
};

// Seconds a client is told to wait (Retry-After) on a 503: a model without workers for now, a
// server shutting down.
inline constexpr int kRetryAfterSeconds = 5;

}  // namespace turbine::frontend
