#include "api/anthropic.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <regex>

#include "api/errors.h"

namespace turbine::api {
namespace {

namespace json = boost::json;

template <typename T>
void expect_invalid(const Result<T>& r, std::string_view field, std::string_view needle = {}) {
  ASSERT_FALSE(r.has_value()) << "expected an error on " << field;
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().to_string();
  EXPECT_EQ(r.status().field(), field) << r.status().to_string();
  EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().message();
}

Result<ChatRequest> parse(std::string_view fields) {
  return parse_anthropic_request(R"({"model":"m","max_tokens":4096,)" + std::string(fields) + "}");
}
Result<ChatRequest> parse_msgs(std::string_view messages, std::string_view extra = {}) {
  return parse(R"("messages":)" + std::string(messages) + std::string(extra));
}

TEST(AnthropicParse, Minimal) {
  auto r = parse_msgs(R"([{"role":"user","content":"Hello"}])");
  ASSERT_TRUE(r.has_value()) << r.status().to_string();
  EXPECT_EQ(r->model, "m");
  EXPECT_EQ(r->sampling.max_tokens, 4096);
  ASSERT_EQ(r->messages.size(), 1u);
  EXPECT_EQ(r->messages[0].role, "user");
  EXPECT_EQ(r->messages[0].content, "Hello");
  EXPECT_TRUE(r->add_generation_prompt);
  EXPECT_FALSE(r->template_fields.continue_final_message);
  EXPECT_FALSE(r->extras.thinking.has_value());
}

TEST(AnthropicParse, Conversation) {
  auto r = parse(R"(
    "system":[{"type":"text","text":"You are terse."},{"type":"text","text":"Use tools.","cache_control":{"type":"ephemeral"}}],
    "messages":[
      {"role":"user","content":[{"type":"text","text":"Weather in Paris and Rome?"}]},
      {"role":"assistant","content":[
        {"type":"thinking","thinking":"two calls","signature":"sig"},
        {"type":"text","text":"Checking."},
        {"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Paris"}},
        {"type":"tool_use","id":"toolu_2","name":"get_weather","input":{"city":"Rome"}}]},
      {"role":"user","content":[
        {"type":"tool_result","tool_use_id":"toolu_1","content":"sunny"},
        {"type":"tool_result","tool_use_id":"toolu_2","content":[{"type":"text","text":"rain"}],"is_error":false},
        {"type":"text","text":"Thanks!"}]}],
    "tools":[{"name":"get_weather","description":"Weather by city","input_schema":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}],
    "tool_choice":{"type":"tool","name":"get_weather","disable_parallel_tool_use":true},
    "stop_sequences":["END",""],
    "thinking":{"type":"enabled","budget_tokens":1024},
    "temperature":0.2,"top_p":0.8,"top_k":5,"stream":true,
    "metadata":{"user_id":"u-7"},"service_tier":"auto")");
  ASSERT_TRUE(r.has_value()) << r.status().to_string();
  const std::vector<ChatMessage>& m = r->messages;
  ASSERT_EQ(m.size(), 6u);
  EXPECT_EQ(m[0].role, "system");
  EXPECT_EQ(m[0].content, "You are terse.\nUse tools.");
  EXPECT_EQ(m[1].role, "user");
  EXPECT_EQ(m[2].role, "assistant");
  EXPECT_EQ(m[2].content, "Checking.");
  EXPECT_EQ(m[2].reasoning_content, "two calls");
  json::value calls = json::parse(m[2].tool_calls_json);
  ASSERT_EQ(calls.as_array().size(), 2u);
  EXPECT_EQ(calls.at(0).at("id"), "toolu_1");
  EXPECT_EQ(calls.at(0).at("function").at("name"), "get_weather");
  EXPECT_EQ(json::parse(calls.at(1).at("function").at("arguments").as_string()).at("city"), "Rome");
  EXPECT_EQ(m[3].role, "tool");
  EXPECT_EQ(m[3].tool_call_id, "toolu_1");
  EXPECT_EQ(m[3].content, "sunny");
  EXPECT_EQ(m[4].role, "tool");
  EXPECT_EQ(m[4].content, "rain");
  EXPECT_EQ(m[5].role, "user");
  EXPECT_EQ(m[5].content, "Thanks!");

  const ChatExtras& x = r->extras;
  ASSERT_EQ(x.tools.size(), 1u);
  EXPECT_EQ(x.tools[0].name, "get_weather");
  EXPECT_EQ(x.tools[0].description, "Weather by city");
  EXPECT_EQ(json::parse(x.tools[0].parameters_json).at("type"), "object");
  EXPECT_EQ(x.tool_choice.mode, ToolChoice::Mode::kFunction);
  EXPECT_EQ(x.tool_choice.function, "get_weather");
  EXPECT_FALSE(x.parallel_tool_calls);
  EXPECT_EQ(x.thinking, true);
  EXPECT_EQ(x.thinking_budget_tokens, 1024);
  EXPECT_EQ(x.user, "u-7");
  EXPECT_EQ(r->sampling.stop, std::vector<std::string>{"END"});
  EXPECT_FLOAT_EQ(r->sampling.temperature, 0.2f);
  EXPECT_FLOAT_EQ(r->sampling.top_p, 0.8f);
  EXPECT_EQ(r->sampling.top_k, 5);
  EXPECT_TRUE(r->sampling.stream);
  json::value tools = json::parse(r->template_fields.tools_json);
  EXPECT_EQ(tools.at(0).at("function").at("name"), "get_weather");
  EXPECT_EQ(tools.at(0).at("function").at("parameters").at("required").at(0), "city");
}

TEST(AnthropicParse, ChoiceModesAndPrefill) {
  const std::string tools = R"(,"tools":[{"name":"f","input_schema":{"type":"object"}}])";
  auto any =
      parse_msgs(R"([{"role":"user","content":"x"}])", tools + R"(,"tool_choice":{"type":"any"})");
  ASSERT_TRUE(any.has_value()) << any.status().to_string();
  EXPECT_EQ(any->extras.tool_choice.mode, ToolChoice::Mode::kRequired);
  auto none =
      parse_msgs(R"([{"role":"user","content":"x"}])", tools + R"(,"tool_choice":{"type":"none"})");
  ASSERT_TRUE(none.has_value());
  EXPECT_EQ(none->extras.tool_choice.mode, ToolChoice::Mode::kNone);
  auto off = parse_msgs(R"([{"role":"user","content":"x"}])", R"(,"thinking":{"type":"disabled"})");
  ASSERT_TRUE(off.has_value());
  EXPECT_EQ(off->extras.thinking, false);
  // A final assistant message is continued, not answered.
  auto prefill = parse_msgs(
      R"([{"role":"user","content":"JSON please"},{"role":"assistant","content":"{\"a\":"}])");
  ASSERT_TRUE(prefill.has_value());
  EXPECT_FALSE(prefill->add_generation_prompt);
  EXPECT_TRUE(prefill->template_fields.continue_final_message);
}

TEST(AnthropicParse, BadInput) {
  const std::string user = R"([{"role":"user","content":"x"}])";
  auto missing =
      parse_anthropic_request(R"({"model":"m","messages":[{"role":"user","content":"x"}]})");
  expect_invalid(missing, "max_tokens", "field required");
  expect_invalid(parse_anthropic_request(R"({"model":"m","max_tokens":0,"messages":[]})"),
                 "max_tokens");
  expect_invalid(parse_anthropic_request(R"({"max_tokens":5,"messages":[]})"), "model");
  expect_invalid(parse_msgs("[]"), "messages", "at least one");
  expect_invalid(parse_msgs(R"([{"role":"system","content":"x"}])"), "messages.0.role");
  expect_invalid(parse_msgs(R"([{"role":"user"}])"), "messages.0.content", "field required");
  expect_invalid(parse_msgs(R"([{"role":"user","content":[]}])"), "messages.0.content");
  expect_invalid(
      parse_msgs(
          R"([{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AA=="}}]}])"),
      "messages.0.content.0.type", "text only");
  expect_invalid(parse_msgs(R"([{"role":"user","content":[{"type":"document","source":{}}]}])"),
                 "messages.0.content.0.type", "text only");
  expect_invalid(parse_msgs(R"([{"role":"user","content":[{"type":"hologram"}]}])"),
                 "messages.0.content.0.type", "unknown content block type");
  expect_invalid(
      parse_msgs(
          R"([{"role":"user","content":[{"type":"tool_use","id":"a","name":"f","input":{}}]}])"),
      "messages.0.content.0.type", "assistant messages");
  expect_invalid(
      parse_msgs(R"([{"role":"assistant","content":[{"type":"tool_result","tool_use_id":"a"}]}])"),
      "messages.0.content.0.type", "user messages");
  expect_invalid(
      parse_msgs(
          R"([{"role":"assistant","content":[{"type":"tool_use","id":"a","name":"f","input":"x"}]}])"),
      "messages.0.content.0.input", "an object");
  expect_invalid(parse_msgs(R"([{"role":"user","content":[{"type":"tool_result"}]}])"),
                 "messages.0.content.0.tool_use_id", "field required");
  expect_invalid(
      parse_msgs(
          R"([{"role":"user","content":[{"type":"tool_result","tool_use_id":"a","content":[{"type":"image"}]}]}])"),
      "messages.0.content.0.content.0.type", "text only");
  // Tools and tool choice.
  expect_invalid(parse_msgs(user, R"(,"tools":[{"name":"f"}])"), "tools.0.input_schema",
                 "field required");
  expect_invalid(parse_msgs(user, R"(,"tools":[{"name":"f","input_schema":{"type":"string"}}])"),
                 "tools.0.input_schema.type", "'object'");
  expect_invalid(parse_msgs(user, R"(,"tools":[{"name":"f","input_schema":{"properties":{}}}])"),
                 "tools.0.input_schema.type", "field required");
  expect_invalid(
      parse_msgs(user,
                 R"(,"tools":[{"name":"f","input_schema":{"type":"object","properties":[]}}])"),
      "tools.0.input_schema.properties", "an object");
  expect_invalid(
      parse_msgs(user, R"(,"tools":[{"type":"web_search_20250305","name":"web_search"}])"),
      "tools.0.type", "server tool");
  expect_invalid(parse_msgs(user, R"(,"tools":[{"name":"a b","input_schema":{"type":"object"}}])"),
                 "tools.0.name");
  expect_invalid(
      parse_msgs(
          user,
          R"(,"tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"tool","name":"g"})"),
      "tool_choice", "'g', which is not in tools");
  expect_invalid(parse_msgs(user, R"(,"tool_choice":{"type":"any"})"), "tool_choice",
                 "requires tools");
  expect_invalid(parse_msgs(user, R"(,"tool_choice":{"type":"sometimes"})"), "tool_choice.type");
  expect_invalid(parse_msgs(user, R"(,"tool_choice":"auto")"), "tool_choice", "an object");
  // Thinking and sampling.
  expect_invalid(parse_msgs(user, R"(,"thinking":{"type":"enabled","budget_tokens":512})"),
                 "thinking.budget_tokens");
  expect_invalid(parse_msgs(user, R"(,"thinking":{"type":"enabled","budget_tokens":4096})"),
                 "thinking.budget_tokens", "less than max_tokens");
  expect_invalid(parse_msgs(user, R"(,"thinking":{"type":"enabled"})"), "thinking.budget_tokens");
  expect_invalid(parse_msgs(user, R"(,"temperature":1.5)"), "temperature");
  expect_invalid(parse_msgs(user, R"(,"top_k":-1)"), "top_k");
  expect_invalid(parse_msgs(user, R"(,"stop_sequences":"END")"), "stop_sequences");
  expect_invalid(parse_msgs(user, R"(,"mcp_servers":[{"url":"x"}])"), "mcp_servers");
  expect_invalid(parse_msgs(user, R"(,"system":[{"type":"image"}])"), "system.0.type", "text only");
}

TEST(AnthropicErrors, ShapeAndStatus) {
  auto r = parse_anthropic_request(R"({"model":"m","messages":[{"role":"user","content":"x"}]})");
  ASSERT_FALSE(r.has_value());
  json::value v = json::parse(anthropic_error_json(r.status()));
  EXPECT_EQ(v.at("type"), "error");
  EXPECT_EQ(v.at("error").at("type"), "invalid_request_error");
  EXPECT_EQ(v.at("error").at("message"), "max_tokens: field required");
  EXPECT_EQ(http_status(r.status().code()), 400);
  EXPECT_STREQ(anthropic_error_type(StatusCode::kUnauthenticated), "authentication_error");
  EXPECT_STREQ(anthropic_error_type(StatusCode::kPermissionDenied), "permission_error");
  EXPECT_STREQ(anthropic_error_type(StatusCode::kNotFound), "not_found_error");
  EXPECT_STREQ(anthropic_error_type(StatusCode::kPayloadTooLarge), "request_too_large");
  EXPECT_STREQ(anthropic_error_type(StatusCode::kResourceExhausted), "rate_limit_error");
  EXPECT_STREQ(anthropic_error_type(StatusCode::kUnavailable), "overloaded_error");
  EXPECT_STREQ(anthropic_error_type(StatusCode::kInternal), "api_error");
}

TEST(AnthropicCountTokens, NoMaxTokensNeeded) {
  auto r = parse_anthropic_count_tokens_request(
      R"({"model":"m","system":"s","messages":[{"role":"user","content":"hi"}],"tools":[{"name":"f","input_schema":{"type":"object"}}]})");
  ASSERT_TRUE(r.has_value()) << r.status().to_string();
  EXPECT_EQ(r->messages.size(), 2u);
  EXPECT_FALSE(r->sampling.max_tokens.has_value());
  EXPECT_FALSE(r->template_fields.tools_json.empty());
  EXPECT_EQ(json::parse(anthropic_count_tokens_response(42)).at("input_tokens"), 42);
  expect_invalid(parse_anthropic_count_tokens_request(R"({"model":"m"})"), "messages");
}

// ---------------------------------------------------------------------------------------------
// Encoder

std::vector<ChoiceDelta> sample_deltas() {
  std::vector<ChoiceDelta> d(7);
  d[0].reasoning = "Two ";
  d[1].reasoning = "cities.";
  d[2].content = "Checking";
  d[3].content = " both.";
  d[4].tool_calls.push_back({0, "call_abc", "get_weather", "{\"city\":"});
  d[5].tool_calls.push_back({0, "", "", " \"Paris\"}"});
  d[6].tool_calls.push_back({1, "call_def", "get_weather", "{\"city\": \"Rome\"}"});
  return d;
}

const std::regex& anthropic_order() {
  static const std::regex re(
      "^message_start( ping)*"
      "( content_block_start( content_block_delta| ping)* content_block_stop)*"
      " message_delta message_stop$");
  return re;
}

std::string names(const std::vector<SseEvent>& events) {
  std::string s;
  for (const SseEvent& e : events) s += (s.empty() ? "" : " ") + e.event;
  return s;
}

TEST(AnthropicEncoder, UnaryMessage) {
  AnthropicEncoder enc("msg_1", "m", 20, /*streaming=*/false);
  std::vector<SseEvent> events;
  enc.start(events);
  for (const ChoiceDelta& d : sample_deltas()) enc.delta(d, events);
  enc.finish(FinishReason::kToolCalls, std::nullopt,
             {.input_tokens = 20, .cached_tokens = 8, .output_tokens = 12}, events);
  EXPECT_TRUE(events.empty());
  json::value v = json::parse(enc.message_json());
  EXPECT_EQ(v.at("id"), "msg_1");
  EXPECT_EQ(v.at("type"), "message");
  EXPECT_EQ(v.at("role"), "assistant");
  EXPECT_EQ(v.at("model"), "m");
  const json::array& c = v.at("content").as_array();
  ASSERT_EQ(c.size(), 4u);
  EXPECT_EQ(c[0].at("type"), "thinking");
  EXPECT_EQ(c[0].at("thinking"), "Two cities.");
  EXPECT_TRUE(c[0].at("signature").is_string());
  EXPECT_EQ(c[1].at("type"), "text");
  EXPECT_EQ(c[1].at("text"), "Checking both.");
  EXPECT_EQ(c[2].at("type"), "tool_use");
  EXPECT_EQ(c[2].at("id"), "toolu_abc");
  EXPECT_EQ(c[2].at("name"), "get_weather");
  EXPECT_EQ(c[2].at("input").at("city"), "Paris");
  EXPECT_EQ(c[3].at("id"), "toolu_def");
  EXPECT_EQ(c[3].at("input").at("city"), "Rome");
  EXPECT_EQ(v.at("stop_reason"), "tool_use");
  EXPECT_TRUE(v.at("stop_sequence").is_null());
  EXPECT_EQ(v.at("usage").at("input_tokens"), 12);  // uncached part
  EXPECT_EQ(v.at("usage").at("cache_read_input_tokens"), 8);
  EXPECT_EQ(v.at("usage").at("output_tokens"), 12);
}

TEST(AnthropicEncoder, StopReasons) {
  struct Case {
    FinishReason reason;
    std::optional<std::string> stop;
    bool call;
    const char* want;
  };
  for (const Case& c : {Case{FinishReason::kStop, std::nullopt, false, "end_turn"},
                        Case{FinishReason::kStop, "END", false, "stop_sequence"},
                        Case{FinishReason::kLength, std::nullopt, false, "max_tokens"},
                        Case{FinishReason::kLength, std::nullopt, true, "max_tokens"},
                        Case{FinishReason::kStop, std::nullopt, true, "tool_use"},
                        Case{FinishReason::kContentFilter, std::nullopt, false, "refusal"}}) {
    AnthropicEncoder enc("msg_1", "m", 1, false);
    std::vector<SseEvent> none;
    ChoiceDelta d;
    if (c.call) {
      d.tool_calls.push_back({0, "call_1", "f", "{\"a\": tr"});  // cut off
    } else {
      d.content = "hi";
    }
    enc.delta(d, none);
    enc.finish(c.reason, c.stop, {}, none);
    json::value v = json::parse(enc.message_json());
    EXPECT_EQ(v.at("stop_reason"), c.want);
    if (c.stop) {
      EXPECT_EQ(v.at("stop_sequence"), c.stop->c_str());
    }
    if (c.call) {  // the cut-off arguments are not an object: input {}
      EXPECT_TRUE(v.at("content").at(0).at("input").as_object().empty());
    }
  }
}

TEST(AnthropicEncoder, StreamFollowsDocumentedOrderAndAccumulatesToUnary) {
  AnthropicEncoder stream("msg_1", "m", 20, /*streaming=*/true);
  AnthropicEncoder unary("msg_1", "m", 20, /*streaming=*/false);
  std::vector<SseEvent> events, none;
  stream.start(events);
  for (const ChoiceDelta& d : sample_deltas()) {
    stream.delta(d, events);
    unary.delta(d, none);
  }
  const AnthropicUsage usage{.input_tokens = 20, .output_tokens = 12};
  stream.finish(FinishReason::kToolCalls, std::nullopt, usage, events);
  unary.finish(FinishReason::kToolCalls, std::nullopt, usage, none);
  EXPECT_TRUE(std::regex_match(names(events), anthropic_order())) << names(events);

  // Accumulate the stream the way the SDKs do and compare with the unary message.
  json::object message;
  json::array content;
  std::vector<std::string> partial_json;
  int64_t open_index = -1;
  for (const SseEvent& e : events) {
    json::value v = json::parse(e.data);
    EXPECT_EQ(v.at("type"), e.event.c_str());
    if (e.event == "message_start") {
      message = v.at("message").as_object();
      EXPECT_EQ(message.at("usage").at("input_tokens"), 20);
    } else if (e.event == "content_block_start") {
      EXPECT_EQ(v.at("index"), static_cast<int64_t>(content.size()));
      open_index = v.at("index").as_int64();
      content.push_back(v.at("content_block"));
      partial_json.emplace_back();
    } else if (e.event == "content_block_delta") {
      EXPECT_EQ(v.at("index"), open_index);
      json::object& block = content.at(open_index).as_object();
      const json::object& delta = v.at("delta").as_object();
      const std::string type(delta.at("type").as_string());
      if (type == "text_delta") {
        EXPECT_EQ(block.at("type"), "text");
        block["text"] =
            std::string(block.at("text").as_string()) + std::string(delta.at("text").as_string());
      } else if (type == "thinking_delta") {
        EXPECT_EQ(block.at("type"), "thinking");
        block["thinking"] = std::string(block.at("thinking").as_string()) +
                            std::string(delta.at("thinking").as_string());
      } else {
        EXPECT_EQ(type, "input_json_delta");
        EXPECT_EQ(block.at("type"), "tool_use");
        partial_json[open_index] += delta.at("partial_json").as_string();
      }
    } else if (e.event == "content_block_stop") {
      EXPECT_EQ(v.at("index"), open_index);
      if (!partial_json[open_index].empty()) {
        content.at(open_index).as_object()["input"] = json::parse(partial_json[open_index]);
      }
      open_index = -1;
    } else if (e.event == "message_delta") {
      message["stop_reason"] = v.at("delta").at("stop_reason");
      message["stop_sequence"] = v.at("delta").at("stop_sequence");
      message["usage"] = v.at("usage");
    }
  }
  message["content"] = content;
  EXPECT_EQ(json::value(message), json::parse(unary.message_json()));
}

TEST(AnthropicEncoder, TextOnlyStreamAndFailure) {
  AnthropicEncoder enc("msg_1", "m", 3, true);
  std::vector<SseEvent> events;
  enc.start(events);
  ChoiceDelta d;
  d.content = "Hello";
  enc.delta(d, events);
  enc.finish(FinishReason::kStop, "STOP", {.input_tokens = 3, .output_tokens = 1}, events);
  EXPECT_EQ(names(events),
            "message_start ping content_block_start content_block_delta content_block_stop "
            "message_delta message_stop");
  json::value delta = json::parse(events[5].data);
  EXPECT_EQ(delta.at("delta").at("stop_reason"), "stop_sequence");
  EXPECT_EQ(delta.at("delta").at("stop_sequence"), "STOP");
  EXPECT_EQ(delta.at("usage").at("output_tokens"), 1);

  AnthropicEncoder failing("msg_2", "m", 3, true);
  events.clear();
  failing.start(events);
  failing.fail(Status(StatusCode::kUnavailable, "worker lost"), events);
  json::value err = json::parse(events.back().data);
  EXPECT_EQ(events.back().event, "error");
  EXPECT_EQ(err.at("error").at("type"), "overloaded_error");
  EXPECT_EQ(AnthropicEncoder::ping().data, R"({"type":"ping"})");
}

}  // namespace
}  // namespace turbine::api
