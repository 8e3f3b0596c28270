// Anthropic Messages API (POST /v1/messages, POST /v1/messages/count_tokens): request parsing
// into the protocol-neutral ChatRequest, the `message` object, its stream events, and errors in
// Anthropic's shape. Pure; an encoder is used by one thread at a time.
//
// Parsing (into ChatRequest):
// - `system` (a string or text blocks) becomes the first message (role "system").
// - user messages: text blocks join into one user message; each `tool_result` block becomes a
//   "tool" message (tool_call_id = tool_use_id; content a string or text blocks; `is_error` is
//   accepted and does not change the text). assistant messages: text blocks join into the
//   content, `tool_use` blocks become tool_calls (arguments = the input object as JSON text),
//   `thinking` blocks become reasoning_content, `redacted_thinking` is dropped. A final
//   assistant message is a prefill: the model continues it (continue_final_message).
// - image/document/search_result blocks: 400 (text-only engine); unknown block types: 400.
// - `tools` [{name, description, input_schema}] (server tools such as web_search: 400),
//   `tool_choice` auto/any/tool/none (+ disable_parallel_tool_use), `stop_sequences`,
//   `thinking` {type: enabled, budget_tokens >= 1024 and < max_tokens} or {type: disabled},
//   `max_tokens` (required), `temperature` [0, 1], `top_p`, `top_k`, `stream`,
//   `metadata.user_id`. `service_tier` is accepted without effect; `mcp_servers` and
//   `container` are a 400. Unknown fields are ignored.
//
// Encoding: AnthropicEncoder turns ChoiceDeltas into content blocks in order — thinking
// (reasoning), text (content), tool_use (tool calls; ids "call_x" become "toolu_x") — and, when
// streaming, into: message_start, ping, then per block content_block_start,
// content_block_delta* (thinking_delta / text_delta / input_json_delta), content_block_stop, and
// finally message_delta (stop_reason, stop_sequence, usage) and message_stop.
// stop_reason: "tool_use" when the output made calls, "max_tokens" for kLength,
// "stop_sequence" when a stop sequence ended it, "refusal" for kContentFilter, else "end_turn".
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

// /v1/messages: max_tokens is required.
Result<ChatRequest> parse_anthropic_request(std::string_view body);
// /v1/messages/count_tokens: the same body without max_tokens (and without stream).
Result<ChatRequest> parse_anthropic_count_tokens_request(std::string_view body);
// {"input_tokens": N}
std::string anthropic_count_tokens_response(int64_t input_tokens);

// {"type":"error","error":{"type","message"}}; send it with api::http_status(code). Types:
// invalid_request_error (400, 405), authentication_error (401), permission_error (403),
// not_found_error (404), request_too_large (413), rate_limit_error (429), overloaded_error
// (503: Anthropic's own servers say 529), api_error (other 5xx).
std::string anthropic_error_json(const Status& status);
const char* anthropic_error_type(StatusCode code);

struct AnthropicUsage {
  int64_t input_tokens = 0;   // all prompt tokens (cached ones included)
  int64_t cached_tokens = 0;  // of which served from the prefix cache
  int64_t output_tokens = 0;
};

class AnthropicEncoder {
 public:
  // id "msg_…"; input_tokens as known when the stream starts (message_start's usage).
  AnthropicEncoder(std::string id, std::string model, int64_t input_tokens, bool streaming);

  // message_start and a ping.
  void start(std::vector<SseEvent>& out);
  void delta(const ChoiceDelta& delta, std::vector<SseEvent>& out);
  // Closes the open block; message_delta and message_stop. `stop_sequence`: the stop sequence
  // that ended the output, if one did.
  void finish(FinishReason reason, const std::optional<std::string>& stop_sequence,
              const AnthropicUsage& usage, std::vector<SseEvent>& out);
  // The message object (unary; complete after finish()).
  std::string message_json() const;
  // A failure after the stream started: an `error` event in Anthropic's shape.
  void fail(const Status& status, std::vector<SseEvent>& out);
  // {"type": "ping"} (keep-alive while waiting for tokens).
  static SseEvent ping();

 private:
  struct Block {
    enum class Kind { kThinking, kText, kToolUse };
    Kind kind;
    std::string text;  // thinking / text, or the tool input's JSON text
    std::string id;    // tool_use
    std::string name;  // tool_use
  };
  void open_block(Block::Kind kind, std::vector<SseEvent>& out, std::string id = {},
                  std::string name = {});
  void close_block(std::vector<SseEvent>& out);
  void append_block_json(std::string& out, const Block& block, bool for_start) const;
  void append_usage(std::string& out) const;

  std::string id_;
  std::string model_;
  bool streaming_;
  std::vector<Block> blocks_;
  bool open_ = false;
  int64_t input_tokens_ = 0;
  AnthropicUsage usage_;
  std::string stop_reason_;  // "" until finish()
  std::optional<std::string> stop_sequence_;
};

}  // namespace turbine::api
