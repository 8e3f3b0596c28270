// libFuzzer target: Responses and Anthropic request bodies from untrusted clients must never
// crash the parsers, and whatever parses must encode to valid JSON (unary objects, stream
// events, errors) with its messages' text as output.
#include <boost/json/parse.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "api/anthropic.h"
#include "api/responses.h"

namespace {

using namespace turbine;

void check_json(std::string_view s) {
  std::error_code ec;
  (void)boost::json::parse(boost::json::string_view(s.data(), s.size()), ec);
  if (ec) __builtin_trap();
}

// The request's messages fed back as output: text, reasoning and a call per message.
std::vector<api::ChoiceDelta> deltas_of(const api::ChatRequest& req) {
  std::vector<api::ChoiceDelta> out;
  for (size_t i = 0; i < req.messages.size(); ++i) {
    api::ChoiceDelta d;
    d.content = req.messages[i].content;
    if (req.messages[i].reasoning_content) d.reasoning = *req.messages[i].reasoning_content;
    d.tool_calls.push_back({static_cast<int>(i), "call_" + std::to_string(i), req.messages[i].role,
                            req.messages[i].tool_calls_json});
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<api::SseEvent> events;

  if (auto r = api::parse_responses_request(input); r.has_value()) {
    api::ResponsesEncoder enc(api::response_header(*r, "resp_1", 1), /*streaming=*/true);
    enc.start(events);
    for (const api::ChoiceDelta& d : deltas_of(r->chat)) enc.delta(d, events);
    enc.finish(api::FinishReason::kLength, {}, events);
    check_json(enc.response_json());
    for (const api::ChatMessage& m : enc.output_messages()) {
      if (!m.tool_calls_json.empty()) check_json(m.tool_calls_json);
    }
  } else {
    check_json(api::responses_error_json(r.status()));
  }

  for (bool count : {false, true}) {
    auto r = count ? api::parse_anthropic_count_tokens_request(input)
                   : api::parse_anthropic_request(input);
    if (!r.has_value()) {
      check_json(api::anthropic_error_json(r.status()));
      continue;
    }
    if (!r->template_fields.tools_json.empty()) check_json(r->template_fields.tools_json);
    api::AnthropicEncoder enc("msg_1", r->model, 1, /*streaming=*/true);
    enc.start(events);
    for (const api::ChoiceDelta& d : deltas_of(*r)) enc.delta(d, events);
    enc.finish(api::FinishReason::kStop, std::nullopt, {}, events);
    check_json(enc.message_json());
  }
  for (const api::SseEvent& e : events) check_json(e.data);
  return 0;
}
