// OpenAI request fields beyond plain sampling, shared by /v1/chat/completions and
// /v1/completions (api/openai.cpp calls these):
// - chat: `tools` as ChatExtras (names and parameter schemas checked), `tool_choice` ("none",
//   "auto", "required", {"type": "function", "function": {"name"}} naming one of the tools),
//   `parallel_tool_calls`, `reasoning_effort` (passed to the chat template);
// - both: `logit_bias` ({"token id": bias in [-100, 100]}, at most kMaxLogitBias entries), `n`
//   ([1, kMaxChoices]) and `best_of` (completions; n <= best_of, not with stream).
// Pure; safe on any thread.
#pragma once

#include <boost/json/object.hpp>

#include "api/openai.h"
#include "common/status.h"

namespace turbine::api {

// Fills req.extras from the request body (tools must already be in req.template_fields).
Status read_chat_extras(const boost::json::object& body, ChatRequest& req);

// n, best_of and logit_bias into `s` (after stream has been read).
Status read_choice_fields(const boost::json::object& body, bool chat, SamplingOptions& s);

}  // namespace turbine::api
