// The OpenAI protocol adapters: /v1/chat/completions and /v1/completions.
//
// Parsing is api/openai.h; the encoders here turn ChoiceDeltas into OpenAI's chunks and bodies:
// chat streams open each choice with a role chunk, send content / reasoning_content / tool_calls
// deltas, close each choice with a finish chunk, then the usage chunk (stream_options) and
// `data: [DONE]`; with include_usage every earlier chunk carries "usage": null. Completions
// streams send text chunks with the completion's logprobs and byte offsets. Errors are
// {"error": {...}} with the mapped status (api/errors.h). Thread rules: protocol.h.
#pragma once

#include <memory>

#include "frontend/protocol.h"

namespace turbine::frontend {

std::unique_ptr<ProtocolAdapter> make_openai_chat_adapter();
std::unique_ptr<ProtocolAdapter> make_openai_completions_adapter();

// The tool_calls JSON of a chat chunk (deltas: the first piece of a call has id, type and name)
// and of a chat message (whole calls). "" for none.
std::string openai_tool_call_deltas_json(std::span<const api::ToolCallDelta> calls);
std::string openai_tool_calls_json(std::span<const api::ToolCall> calls);

// An OpenAI error reply for `status` (503s get Retry-After), used by every OpenAI route.
ErrorReply openai_error(const Status& status);

}  // namespace turbine::frontend
