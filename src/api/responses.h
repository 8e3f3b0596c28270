// OpenAI Responses API (POST /v1/responses): request parsing into the protocol-neutral
// ChatRequest, the `response` object, its typed stream events, and errors in its shape.
//
// Parsing: `input` is a string (one user message) or items: messages (roles user, assistant,
// system, developer; content a string or input_text/output_text parts), `function_call`
// (assistant tool calls; consecutive ones form one assistant message), `function_call_output`
// (tool messages) and `reasoning` (kept as the next assistant message's reasoning_content).
// `instructions` becomes the first (system) message. Function `tools`, `tool_choice`,
// `parallel_tool_calls`, `text.format`, `reasoning.effort`, `max_output_tokens`, `temperature`,
// `top_p`, `stream`, `store`, `previous_response_id`, `metadata`, `user` are honoured; `include`,
// `truncation`, `service_tier`, `prompt_cache_key`, `safety_identifier` are accepted and have no
// effect here. Unsupported features are a 400 naming the field: non-function tools, images and
// files, `background: true`, `conversation`, `prompt`, item references. Unknown fields are
// ignored, as in api/openai.h.
//
// Encoding: ResponsesEncoder turns a choice's ChoiceDeltas into output items in order —
// reasoning (type "reasoning", content [reasoning_text]), message (output_text), function_call —
// and, when streaming, into the documented event sequence, each with a sequence_number:
//   response.created, response.in_progress,
//   per item: response.output_item.added,
//     message:   response.content_part.added, response.output_text.delta*,
//                response.output_text.done, response.content_part.done
//     reasoning: response.content_part.added, response.reasoning_text.delta*,
//                response.reasoning_text.done, response.content_part.done
//     function_call: response.function_call_arguments.delta*,
//                response.function_call_arguments.done
//   response.output_item.done,
//   response.completed (status "completed"), or response.incomplete (status "incomplete",
//   incomplete_details.reason "max_output_tokens" / "content_filter").
// Everything here is pure; an encoder is used by one thread at a time. The store for
// previous_response_id and GET/DELETE is api/response_store.h.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/codec_util.h"
#include "api/delta.h"
#include "api/openai.h"

namespace turbine::api {

struct ResponsesRequest {
  // model, messages ([instructions] + input; previous turns added by apply_previous_response),
  // sampling (max_output_tokens -> max_tokens, temperature, top_p, stream) and extras.
  ChatRequest chat;
  std::optional<std::string> instructions;
  std::optional<std::string> previous_response_id;
  bool store = true;
  // The input as conversation messages (no instructions, no previous turns): what this turn
  // adds to the stored conversation.
  std::vector<ChatMessage> input_messages;
  // The stored conversation of previous_response_id (apply_previous_response in
  // api/response_store.h); already part of chat.messages.
  std::vector<ChatMessage> previous_messages;
};

Result<ResponsesRequest> parse_responses_request(std::string_view body);

// OpenAI's error object; `code` is "previous_response_not_found" for an unknown
// previous_response_id, "model_not_found" for an unknown model, otherwise null.
std::string responses_error_json(const Status& status);

// ---------------------------------------------------------------------------------------------
// Encoding

struct ResponsesUsage {
  int64_t input_tokens = 0;
  int64_t cached_tokens = 0;
  int64_t output_tokens = 0;
  int64_t reasoning_tokens = 0;  // output tokens spent in reasoning (0 when not counted)
};

// Identity of one response and the request settings it echoes.
struct ResponseHeader {
  std::string id;  // "resp_…"
  int64_t created_at = 0;
  std::string model;
  std::optional<std::string> instructions;
  std::optional<int> max_output_tokens;
  std::optional<std::string> previous_response_id;
  float temperature = 1.0f;
  float top_p = 1.0f;
  bool parallel_tool_calls = true;
  bool store = true;
  ToolChoice tool_choice;
  std::vector<ToolSpec> tools;
  OutputFormat output_format;
  std::optional<std::string> reasoning_effort;
  std::string metadata_json;  // "" -> {}
  std::string user;
};
ResponseHeader response_header(const ResponsesRequest& request, std::string id, int64_t created_at);

class ResponsesEncoder {
 public:
  // make_id(prefix) makes item ids ("msg", "rs", "fc"); default make_api_id.
  explicit ResponsesEncoder(ResponseHeader header, bool streaming,
                            std::function<std::string(std::string_view)> make_id = {});

  // response.created and response.in_progress.
  void start(std::vector<SseEvent>& out);
  // The events this delta adds (nothing when not streaming; the items are built either way).
  void delta(const ChoiceDelta& delta, std::vector<SseEvent>& out);
  // Closes the open item and ends the response: response.completed, or response.incomplete for
  // kLength / kContentFilter ("cancelled" status for kAbort, no terminal event).
  void finish(FinishReason reason, const ResponsesUsage& usage, std::vector<SseEvent>& out);
  // The response object (after finish(): final; before: status "in_progress").
  std::string response_json() const;
  const std::string& id() const { return header_.id; }
  // The output as conversation messages (assistant text, reasoning and tool calls), for the
  // store.
  std::vector<ChatMessage> output_messages() const;
  // A failure after the stream started: {"type":"error","code","message","param",
  // "sequence_number"} then response.failed.
  void fail(const Status& status, std::vector<SseEvent>& out);

 private:
  struct Item {
    enum class Kind { kMessage, kReasoning, kFunctionCall };
    Kind kind;
    std::string id;
    std::string text;  // message / reasoning text, or function arguments
    std::string call_id;
    std::string name;
    bool done = false;
  };
  void open_item(Item::Kind kind, std::vector<SseEvent>& out, std::string call_id = {},
                 std::string name = {});
  void close_item(std::vector<SseEvent>& out);
  void emit(std::string_view type, std::string json_tail, std::vector<SseEvent>& out);
  void append_item_json(std::string& out, const Item& item) const;

  ResponseHeader header_;
  bool streaming_;
  std::function<std::string(std::string_view)> make_id_;
  std::vector<Item> items_;
  bool open_ = false;  // items_.back() is still receiving deltas
  int64_t sequence_ = 0;
  std::string status_ = "in_progress";
  std::string incomplete_reason_;
  std::optional<ResponsesUsage> usage_;
  std::optional<Status> error_;
};

}  // namespace turbine::api
