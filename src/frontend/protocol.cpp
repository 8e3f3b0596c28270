#include "frontend/protocol.h"

namespace turbine::frontend {

void ChoiceOutput::add(const api::ChoiceDelta& delta) {
  if (!delta.logprobs.empty()) {
    if (logprobs.empty()) logprobs_text_offset = content.size();
    logprobs.insert(logprobs.end(), delta.logprobs.begin(), delta.logprobs.end());
  }
  content += delta.content;
  reasoning += delta.reasoning;
  for (const api::ToolCallDelta& d : delta.tool_calls) {
    if (d.index < 0) continue;  // a parser bug; never index with it
    const auto i = static_cast<size_t>(d.index);
    if (i >= tool_calls.size()) tool_calls.resize(i + 1);
    api::ToolCall& call = tool_calls[i];
    if (!d.id.empty()) call.id = d.id;
    if (!d.name.empty()) call.name = d.name;
    call.arguments += d.arguments;
  }
  if (delta.finish != api::FinishReason::kNone) finish = delta.finish;
}

void append_sse(std::string& out, std::string_view data) {
  out += "data: ";
  out += data;
  out += "\n\n";
}

void append_sse(std::string& out, std::string_view event, std::string_view data) {
  out += "event: ";
  out += event;
  out += '\n';
  append_sse(out, data);
}

}  // namespace turbine::frontend
