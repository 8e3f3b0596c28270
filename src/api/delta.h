// What one choice produced, in protocol-neutral form: the frontend's postprocessor chain
// (detokenizer, stop strings, reasoning and tool-call parsers) emits ChoiceDeltas, and each
// protocol's encoder (OpenAI chat/completions, Responses, Anthropic Messages) turns them into its
// own JSON and stream events. Pure data; safe on any thread.
#pragma once

#include <string>
#include <vector>

#include "api/openai.h"

namespace turbine::api {

// One piece of a tool call, as OpenAI streams it: the first piece of call `index` carries its
// `id` and `name`; later pieces only append to `arguments` (JSON text, possibly partial).
struct ToolCallDelta {
  int index = 0;  // position of the call within the choice (0, 1, ... for parallel calls)
  std::string id;
  std::string name;
  std::string arguments;
};

// A complete tool call (unary responses; the sum of its deltas).
struct ToolCall {
  std::string id;         // "call_..." (unique per response)
  std::string name;       // the function's name
  std::string arguments;  // JSON text of the arguments object
};

// New output of one choice since its previous delta. Empty strings/vectors: nothing new.
struct ChoiceDelta {
  int index = 0;          // the choice's index in the response
  std::string content;    // user-visible text
  std::string reasoning;  // reasoning text (reasoning_content / thinking), never in content
  std::vector<ToolCallDelta> tool_calls;
  std::vector<TokenLogprob> logprobs;         // logprobs of the tokens behind this delta
  FinishReason finish = FinishReason::kNone;  // set on the choice's last delta
  // With finish: the stop string that ended the choice, "" when none did (Anthropic's
  // stop_sequence).
  std::string stop_sequence;

  bool empty() const {
    return content.empty() && reasoning.empty() && tool_calls.empty() && logprobs.empty() &&
           finish == FinishReason::kNone;
  }
};

}  // namespace turbine::api
