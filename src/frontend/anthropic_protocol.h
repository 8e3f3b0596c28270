// The Anthropic Messages adapter: POST /v1/messages through the same pipeline as chat.
//
// parse: api::parse_anthropic_request (max_tokens required). The encoder is
// api::AnthropicEncoder: message_start (with the prompt's input tokens), ping, content blocks
// (thinking, text, tool_use) and message_delta/message_stop when streaming, the `message` object
// otherwise; stop_reason "stop_sequence" names the stop string that matched. Errors are
// Anthropic's {"type":"error","error":{"type","message"}} with the mapped status. POST
// /v1/messages/count_tokens is answered by the frontend with this adapter's parsing and errors.
// Thread rules: protocol.h.
#pragma once

#include <memory>

#include "frontend/protocol.h"

namespace turbine::frontend {

std::unique_ptr<ProtocolAdapter> make_anthropic_adapter();

// An error in Anthropic's shape (503s get Retry-After).
ErrorReply anthropic_error(const Status& status);

}  // namespace turbine::frontend
