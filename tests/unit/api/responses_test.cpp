#include "api/responses.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <regex>

#include "api/errors.h"
#include "api/response_store.h"

namespace turbine::api {
namespace {

namespace json = boost::json;

template <typename T>
void expect_invalid(const Result<T>& r, std::string_view param, std::string_view needle = {}) {
  ASSERT_FALSE(r.has_value()) << "expected an error on " << param;
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().to_string();
  EXPECT_EQ(r.status().field(), param) << r.status().to_string();
  EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().message();
}

Result<ResponsesRequest> parse(std::string_view fields) {
  return parse_responses_request(R"({"model":"m",)" + std::string(fields) + "}");
}

TEST(ResponsesParse, StringInput) {
  auto r = parse(R"("input":"hello")");
  ASSERT_TRUE(r.has_value()) << r.status().to_string();
  EXPECT_EQ(r->chat.model, "m");
  ASSERT_EQ(r->chat.messages.size(), 1u);
  EXPECT_EQ(r->chat.messages[0].role, "user");
  EXPECT_EQ(r->chat.messages[0].content, "hello");
  EXPECT_TRUE(r->store);
  EXPECT_FALSE(r->chat.sampling.stream);
  EXPECT_FALSE(r->chat.sampling.max_tokens.has_value());
  EXPECT_EQ(r->chat.extras.tool_choice.mode, ToolChoice::Mode::kAuto);
  EXPECT_TRUE(r->chat.template_fields.tools_json.empty());
}

TEST(ResponsesParse, AllFields) {
  auto r = parse(R"("instructions":"Be brief.",
    "input":[
      {"role":"user","content":[{"type":"input_text","text":"Weather in"},{"type":"input_text","text":"Paris?"}]},
      {"type":"reasoning","id":"rs_1","summary":[],"content":[{"type":"reasoning_text","text":"use the tool"}]},
      {"type":"function_call","id":"fc_1","call_id":"call_1","name":"get_weather","arguments":"{\"city\":\"Paris\"}"},
      {"type":"function_call","call_id":"call_2","name":"get_time","arguments":"{}"},
      {"type":"function_call_output","call_id":"call_1","output":"sunny"},
      {"type":"function_call_output","call_id":"call_2","output":[{"type":"input_text","text":"noon"}]},
      {"type":"message","role":"assistant","content":[{"type":"output_text","text":"Sunny at noon.","annotations":[]}]},
      {"role":"developer","content":"stay polite"}],
    "tools":[{"type":"function","name":"get_weather","description":"Weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]},"strict":true},
             {"type":"function","name":"get_time","parameters":{"type":"object","properties":{}}}],
    "tool_choice":{"type":"function","name":"get_weather"},
    "parallel_tool_calls":false,
    "text":{"format":{"type":"json_schema","name":"answer","schema":{"type":"object"},"strict":true},"verbosity":"low"},
    "reasoning":{"effort":"low","summary":"auto"},
    "max_output_tokens":64,"temperature":0.5,"top_p":0.9,"stream":true,"store":false,
    "previous_response_id":"resp_prev","metadata":{"k":"v"},"user":"u1",
    "include":["reasoning.encrypted_content"],"truncation":"disabled","service_tier":"auto")");
  ASSERT_TRUE(r.has_value()) << r.status().to_string();
  const ChatRequest& c = r->chat;
  EXPECT_EQ(r->instructions, "Be brief.");
  ASSERT_EQ(c.messages.size(), 7u);
  EXPECT_EQ(c.messages[0].role, "system");
  EXPECT_EQ(c.messages[0].content, "Be brief.");
  EXPECT_EQ(c.messages[1].role, "user");
  EXPECT_EQ(c.messages[1].content, "Weather in\nParis?");
  // The reasoning item and both calls form one assistant message.
  EXPECT_EQ(c.messages[2].role, "assistant");
  EXPECT_EQ(c.messages[2].content, "");
  EXPECT_EQ(c.messages[2].reasoning_content, "use the tool");
  json::value calls = json::parse(c.messages[2].tool_calls_json);
  ASSERT_EQ(calls.as_array().size(), 2u);
  EXPECT_EQ(calls.at(0).at("id"), "call_1");
  EXPECT_EQ(calls.at(0).at("type"), "function");
  EXPECT_EQ(calls.at(0).at("function").at("name"), "get_weather");
  EXPECT_EQ(calls.at(0).at("function").at("arguments"), "{\"city\":\"Paris\"}");
  EXPECT_EQ(calls.at(1).at("function").at("name"), "get_time");
  EXPECT_EQ(c.messages[3].role, "tool");
  EXPECT_EQ(c.messages[3].tool_call_id, "call_1");
  EXPECT_EQ(c.messages[3].content, "sunny");
  EXPECT_EQ(c.messages[4].content, "noon");
  EXPECT_EQ(c.messages[5].role, "assistant");
  EXPECT_EQ(c.messages[5].content, "Sunny at noon.");
  EXPECT_EQ(c.messages[6].role, "developer");
  EXPECT_EQ(r->input_messages.size(), 6u);  // without the instructions

  ASSERT_EQ(c.extras.tools.size(), 2u);
  EXPECT_EQ(c.extras.tools[0].name, "get_weather");
  EXPECT_EQ(c.extras.tools[0].description, "Weather");
  EXPECT_TRUE(c.extras.tools[0].strict);
  EXPECT_EQ(json::parse(c.extras.tools[0].parameters_json).at("required").at(0), "city");
  EXPECT_EQ(c.extras.tool_choice.mode, ToolChoice::Mode::kFunction);
  EXPECT_EQ(c.extras.tool_choice.function, "get_weather");
  EXPECT_FALSE(c.extras.parallel_tool_calls);
  EXPECT_EQ(c.extras.output_format.type, OutputFormat::Type::kJsonSchema);
  EXPECT_EQ(c.extras.output_format.name, "answer");
  EXPECT_EQ(c.extras.output_format.schema_json, R"({"type":"object"})");
  EXPECT_TRUE(c.extras.output_format.strict);
  EXPECT_EQ(c.extras.reasoning_effort, "low");
  EXPECT_EQ(c.extras.metadata_json, R"({"k":"v"})");
  EXPECT_EQ(c.extras.user, "u1");
  EXPECT_EQ(c.sampling.max_tokens, 64);
  EXPECT_FLOAT_EQ(c.sampling.temperature, 0.5f);
  EXPECT_FLOAT_EQ(c.sampling.top_p, 0.9f);
  EXPECT_TRUE(c.sampling.stream);
  EXPECT_FALSE(r->store);
  EXPECT_EQ(r->previous_response_id, "resp_prev");
  // The template sees the tools in the chat-completions shape.
  json::value tools = json::parse(c.template_fields.tools_json);
  EXPECT_EQ(tools.at(0).at("type"), "function");
  EXPECT_EQ(tools.at(0).at("function").at("name"), "get_weather");
  EXPECT_EQ(tools.at(0).at("function").at("parameters").at("type"), "object");
}

TEST(ResponsesParse, FunctionCallJoinsPrecedingAssistantText) {
  auto r = parse(R"("input":[{"role":"user","content":"hi"},
      {"role":"assistant","content":"Let me check."},
      {"type":"function_call","call_id":"c1","name":"f","arguments":"{}"}])");
  ASSERT_TRUE(r.has_value()) << r.status().to_string();
  ASSERT_EQ(r->chat.messages.size(), 2u);
  EXPECT_EQ(r->chat.messages[1].content, "Let me check.");
  EXPECT_FALSE(r->chat.messages[1].tool_calls_json.empty());
}

// vLLM's Responses API takes `priority` as chat and completions do (issue 29).
TEST(ResponsesParse, PriorityIsAnInteger) {
  auto r = parse(R"("input":"x","priority":-3)");
  ASSERT_TRUE(r.has_value()) << r.status().to_string();
  EXPECT_EQ(r->chat.sampling.priority, -3);
  r = parse(R"("input":"x","priority":null)");
  ASSERT_TRUE(r.has_value()) << r.status().to_string();
  EXPECT_EQ(r->chat.sampling.priority, 0);
  expect_invalid(parse(R"("input":"x","priority":"high")"), "priority");
  expect_invalid(parse(R"("input":"x","priority":1.5)"), "priority");
}

TEST(ResponsesParse, BadInput) {
  expect_invalid(parse_responses_request(R"({"input":"x"})"), "model", "required");
  expect_invalid(parse_responses_request("{"), "", "invalid JSON");
  expect_invalid(parse(R"("x":1)"), "input", "required");
  expect_invalid(parse(R"("input":[])"), "input", "empty");
  expect_invalid(parse(R"("input":5)"), "input", "a string or an array");
  expect_invalid(
      parse(
          R"("input":[{"role":"user","content":[{"type":"input_text","text":"a"},{"type":"input_image","image_url":"x"}]}])"),
      "input[0].content[1].type", "text input only");
  expect_invalid(parse(R"("input":[{"role":"user","content":[{"type":"magic"}]}])"),
                 "input[0].content[0].type", "not a known");
  expect_invalid(parse(R"("input":[{"role":"robot","content":"x"}])"), "input[0].role");
  expect_invalid(parse(R"("input":[{"type":"web_search_call","id":"x"}])"), "input[0].type",
                 "not supported");
  expect_invalid(parse(R"("input":[{"type":"item_reference","id":"x"}])"), "input[0].type",
                 "references");
  expect_invalid(parse(R"("input":[{"type":"function_call","name":"f","arguments":"{}"}])"),
                 "input[0].call_id", "required");
  expect_invalid(parse(R"("input":[{"type":"function_call_output","call_id":"c"}])"), "input[0]",
                 "output is required");
  expect_invalid(parse(R"("input":"x","tools":[{"type":"web_search"}])"), "tools[0].type",
                 "only 'function'");
  expect_invalid(parse(R"("input":"x","tools":[{"type":"function","name":"get weather"}])"),
                 "tools[0].name", "letters, digits");
  expect_invalid(parse(R"("input":"x","tools":[{"type":"function","name":"f","parameters":[1]}])"),
                 "tools[0].parameters", "JSON Schema object");
  expect_invalid(
      parse(
          R"("input":"x","tools":[{"type":"function","name":"f","parameters":{"type":"array"}}])"),
      "tools[0].parameters.type", "'object'");
  expect_invalid(
      parse(
          R"("input":"x","tools":[{"type":"function","name":"f","parameters":{"type":"object","properties":{"a":{}},"required":["b"]}}])"),
      "tools[0].parameters.required", "'b'");
  expect_invalid(
      parse(
          R"("input":"x","tools":[{"type":"function","name":"f"},{"type":"function","name":"f"}])"),
      "tools[1].name", "twice");
  expect_invalid(
      parse(
          R"("input":"x","tools":[{"type":"function","name":"f"}],"tool_choice":{"type":"function","name":"g"})"),
      "tool_choice", "'g', which is not in tools");
  expect_invalid(parse(R"("input":"x","tool_choice":"required")"), "tool_choice", "requires tools");
  expect_invalid(parse(R"("input":"x","tool_choice":"sometimes")"), "tool_choice");
  expect_invalid(parse(R"("input":"x","tool_choice":{"type":"file_search"})"), "tool_choice.type");
  expect_invalid(parse(R"("input":"x","text":{"format":{"type":"json_schema","name":"a"}})"),
                 "text.format.schema", "required");
  expect_invalid(parse(R"("input":"x","text":{"format":{"type":"yaml"}})"), "text.format.type");
  expect_invalid(parse(R"("input":"x","reasoning":{"effort":"extreme"})"), "reasoning.effort");
  expect_invalid(parse(R"("input":"x","max_output_tokens":0)"), "max_output_tokens");
  expect_invalid(parse(R"("input":"x","temperature":3)"), "temperature");
  expect_invalid(parse(R"("input":"x","top_p":0)"), "top_p");
  expect_invalid(parse(R"("input":"x","background":true)"), "background", "not supported");
  expect_invalid(parse(R"("input":"x","conversation":"conv_1")"), "conversation");
  expect_invalid(parse(R"("input":"x","prompt":{"id":"p"})"), "prompt");
  expect_invalid(parse(R"("input":"x","top_logprobs":3)"), "top_logprobs");
  expect_invalid(parse(R"("input":"x","metadata":{"k":1})"), "metadata.k", "a string");
  expect_invalid(parse(R"("input":"x","previous_response_id":"")"), "previous_response_id");
  expect_invalid(parse(R"("input":"x","store":"yes")"), "store", "a boolean");
}

TEST(ResponsesErrors, Shape) {
  json::value v = json::parse(responses_error_json(invalid_argument("bad", "tools[0].type")));
  EXPECT_EQ(v.at("error").at("message"), "bad");
  EXPECT_EQ(v.at("error").at("type"), "invalid_request_error");
  EXPECT_EQ(v.at("error").at("param"), "tools[0].type");
  EXPECT_TRUE(v.at("error").at("code").is_null());
  v = json::parse(responses_error_json(response_not_found("resp_x")));
  EXPECT_EQ(v.at("error").at("type"), "not_found_error");
  EXPECT_EQ(http_status(response_not_found("resp_x").code()), 404);
}

// ---------------------------------------------------------------------------------------------
// Encoder

ResponsesRequest request_with_tool() {
  auto r = parse(R"("input":"weather?","instructions":"sys","max_output_tokens":50,
      "tools":[{"type":"function","name":"get_weather","parameters":{"type":"object"}}],
      "metadata":{"a":"b"})");
  EXPECT_TRUE(r.has_value()) << r.status().to_string();
  return *r;
}

std::function<std::string(std::string_view)> counter_ids() {
  return [n = 0](std::string_view prefix) mutable {
    return std::string(prefix) + "_" + std::to_string(n++);
  };
}

std::vector<ChoiceDelta> sample_deltas() {
  std::vector<ChoiceDelta> d(6);
  d[0].reasoning = "Need ";
  d[1].reasoning = "weather.";
  d[2].content = "Checking";
  d[3].content = " now.";
  d[4].tool_calls.push_back({0, "call_a", "get_weather", ""});
  d[5].tool_calls.push_back({0, "", "", "{\"city\": \"Paris\"}"});
  return d;
}

TEST(ResponsesEncoder, UnaryResponseObject) {
  const ResponsesRequest req = request_with_tool();
  ResponsesEncoder enc(response_header(req, "resp_1", 1700000000), /*streaming=*/false,
                       counter_ids());
  std::vector<SseEvent> events;
  enc.start(events);
  for (const ChoiceDelta& d : sample_deltas()) enc.delta(d, events);
  enc.finish(FinishReason::kToolCalls,
             {.input_tokens = 10, .cached_tokens = 4, .output_tokens = 7, .reasoning_tokens = 3},
             events);
  EXPECT_TRUE(events.empty());
  json::value v = json::parse(enc.response_json());
  EXPECT_EQ(v.at("id"), "resp_1");
  EXPECT_EQ(v.at("object"), "response");
  EXPECT_EQ(v.at("created_at"), 1700000000);
  EXPECT_EQ(v.at("status"), "completed");
  EXPECT_TRUE(v.at("error").is_null());
  EXPECT_TRUE(v.at("incomplete_details").is_null());
  EXPECT_EQ(v.at("instructions"), "sys");
  EXPECT_EQ(v.at("max_output_tokens"), 50);
  EXPECT_EQ(v.at("model"), "m");
  const json::array& out = v.at("output").as_array();
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].at("type"), "reasoning");
  EXPECT_EQ(out[0].at("id"), "rs_0");
  EXPECT_EQ(out[0].at("content").at(0).at("type"), "reasoning_text");
  EXPECT_EQ(out[0].at("content").at(0).at("text"), "Need weather.");
  EXPECT_EQ(out[1].at("type"), "message");
  EXPECT_EQ(out[1].at("role"), "assistant");
  EXPECT_EQ(out[1].at("status"), "completed");
  EXPECT_EQ(out[1].at("content").at(0).at("type"), "output_text");
  EXPECT_EQ(out[1].at("content").at(0).at("text"), "Checking now.");
  EXPECT_EQ(out[2].at("type"), "function_call");
  EXPECT_EQ(out[2].at("id"), "fc_2");
  EXPECT_EQ(out[2].at("call_id"), "call_a");
  EXPECT_EQ(out[2].at("name"), "get_weather");
  EXPECT_EQ(out[2].at("arguments"), "{\"city\": \"Paris\"}");
  EXPECT_EQ(out[2].at("status"), "completed");
  EXPECT_EQ(v.at("tools").at(0).at("name"), "get_weather");
  EXPECT_EQ(v.at("tool_choice"), "auto");
  EXPECT_EQ(v.at("text").at("format").at("type"), "text");
  EXPECT_EQ(v.at("usage").at("input_tokens"), 10);
  EXPECT_EQ(v.at("usage").at("input_tokens_details").at("cached_tokens"), 4);
  EXPECT_EQ(v.at("usage").at("output_tokens"), 7);
  EXPECT_EQ(v.at("usage").at("output_tokens_details").at("reasoning_tokens"), 3);
  EXPECT_EQ(v.at("usage").at("total_tokens"), 17);
  EXPECT_EQ(v.at("metadata").at("a"), "b");
  EXPECT_EQ(v.at("store"), true);
}

// The documented order of a Responses stream, as a regular expression over event names.
const std::regex& responses_order() {
  static const std::regex re(
      "^response\\.created response\\.in_progress"
      "("
      " response\\.output_item\\.added response\\.content_part\\.added"
      "( response\\.output_text\\.delta)* response\\.output_text\\.done"
      " response\\.content_part\\.done response\\.output_item\\.done"
      "|"
      " response\\.output_item\\.added response\\.content_part\\.added"
      "( response\\.reasoning_text\\.delta)* response\\.reasoning_text\\.done"
      " response\\.content_part\\.done response\\.output_item\\.done"
      "|"
      " response\\.output_item\\.added( response\\.function_call_arguments\\.delta)*"
      " response\\.function_call_arguments\\.done response\\.output_item\\.done"
      ")*"
      " response\\.(completed|incomplete)$");
  return re;
}

std::string names(const std::vector<SseEvent>& events) {
  std::string s;
  for (const SseEvent& e : events) s += (s.empty() ? "" : " ") + e.event;
  return s;
}

TEST(ResponsesEncoder, StreamFollowsDocumentedOrderAndRebuildsTheResponse) {
  const ResponsesRequest req = request_with_tool();
  ResponsesEncoder stream(response_header(req, "resp_1", 1), /*streaming=*/true, counter_ids());
  ResponsesEncoder unary(response_header(req, "resp_1", 1), /*streaming=*/false, counter_ids());
  std::vector<SseEvent> events, none;
  stream.start(events);
  for (const ChoiceDelta& d : sample_deltas()) {
    stream.delta(d, events);
    unary.delta(d, none);
  }
  const ResponsesUsage usage{.input_tokens = 3, .output_tokens = 5};
  stream.finish(FinishReason::kToolCalls, usage, events);
  unary.finish(FinishReason::kToolCalls, usage, none);

  EXPECT_TRUE(std::regex_match(names(events), responses_order())) << names(events);
  // Every event: its data's type is the event name; sequence numbers count from 0.
  std::map<std::string, std::string> text_by_item;  // item id -> accumulated deltas
  for (size_t i = 0; i < events.size(); ++i) {
    json::value v = json::parse(events[i].data);
    EXPECT_EQ(v.at("type"), events[i].event.c_str());
    EXPECT_EQ(v.at("sequence_number"), static_cast<int64_t>(i));
    const std::string& type = events[i].event;
    if (type.ends_with(".delta")) {
      text_by_item[std::string(v.at("item_id").as_string())] += v.at("delta").as_string();
    }
    if (type == "response.output_text.done" || type == "response.reasoning_text.done") {
      EXPECT_EQ(text_by_item[std::string(v.at("item_id").as_string())], v.at("text").as_string());
    }
    if (type == "response.function_call_arguments.done") {
      EXPECT_EQ(text_by_item[std::string(v.at("item_id").as_string())],
                v.at("arguments").as_string());
      EXPECT_EQ(v.at("name"), "get_weather");
    }
    if (type == "response.output_item.added") {
      EXPECT_TRUE(v.at("item").at("id").is_string());
    }
  }
  EXPECT_EQ(text_by_item["rs_0"], "Need weather.");
  EXPECT_EQ(text_by_item["msg_1"], "Checking now.");
  EXPECT_EQ(text_by_item["fc_2"], "{\"city\": \"Paris\"}");
  // created carries an empty in-progress response; completed the final one, as unary.
  json::value created = json::parse(events.front().data);
  EXPECT_EQ(created.at("response").at("status"), "in_progress");
  EXPECT_TRUE(created.at("response").at("output").as_array().empty());
  json::value completed = json::parse(events.back().data);
  EXPECT_EQ(completed.at("response"), json::parse(unary.response_json()));
}

TEST(ResponsesEncoder, MaxTokensIsIncomplete) {
  const ResponsesRequest req = request_with_tool();
  ResponsesEncoder enc(response_header(req, "resp_1", 1), /*streaming=*/true, counter_ids());
  std::vector<SseEvent> events;
  enc.start(events);
  ChoiceDelta d;
  d.content = "partial";
  enc.delta(d, events);
  enc.finish(FinishReason::kLength, {}, events);
  EXPECT_TRUE(std::regex_match(names(events), responses_order())) << names(events);
  EXPECT_EQ(events.back().event, "response.incomplete");
  json::value v = json::parse(enc.response_json());
  EXPECT_EQ(v.at("status"), "incomplete");
  EXPECT_EQ(v.at("incomplete_details").at("reason"), "max_output_tokens");
}

TEST(ResponsesEncoder, FailureMidStream) {
  const ResponsesRequest req = request_with_tool();
  ResponsesEncoder enc(response_header(req, "resp_1", 1), /*streaming=*/true, counter_ids());
  std::vector<SseEvent> events;
  enc.start(events);
  ChoiceDelta d;
  d.content = "x";
  enc.delta(d, events);
  enc.fail(Status(StatusCode::kUnavailable, "worker lost"), events);
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events[events.size() - 2].event, "error");
  json::value err = json::parse(events[events.size() - 2].data);
  EXPECT_EQ(err.at("message"), "worker lost");
  EXPECT_EQ(events.back().event, "response.failed");
  EXPECT_EQ(json::parse(events.back().data).at("response").at("status"), "failed");
}

TEST(ResponsesEncoder, OutputMessagesForTheStore) {
  ResponsesEncoder enc(response_header(request_with_tool(), "resp_1", 1), false, counter_ids());
  std::vector<SseEvent> none;
  for (const ChoiceDelta& d : sample_deltas()) enc.delta(d, none);
  enc.finish(FinishReason::kToolCalls, {}, none);
  const std::vector<ChatMessage> msgs = enc.output_messages();
  ASSERT_EQ(msgs.size(), 1u);  // text and call are one assistant turn
  EXPECT_EQ(msgs[0].role, "assistant");
  EXPECT_EQ(msgs[0].content, "Checking now.");
  EXPECT_EQ(msgs[0].reasoning_content, "Need weather.");
  json::value calls = json::parse(msgs[0].tool_calls_json);
  EXPECT_EQ(calls.at(0).at("id"), "call_a");
  EXPECT_EQ(calls.at(0).at("function").at("arguments"), "{\"city\": \"Paris\"}");
}

// ---------------------------------------------------------------------------------------------
// Store

struct FakeClock {
  std::chrono::steady_clock::time_point now{};
  ResponseStore::Clock fn() {
    return [this] { return now; };
  }
};

StoredResponse stored(std::string id, size_t payload = 10) {
  StoredResponse r;
  r.id = std::move(id);
  r.response_json = std::string(payload, 'x');
  return r;
}

TEST(ResponseStore, PutGetEraseAndTtl) {
  FakeClock clock;
  ResponseStore store({.max_entries = 10, .max_bytes = 1 << 20, .ttl = std::chrono::seconds(60)},
                      clock.fn());
  store.put(stored("a"));
  ASSERT_NE(store.get("a"), nullptr);
  EXPECT_EQ(store.get("a")->id, "a");
  EXPECT_EQ(store.get("b"), nullptr);
  clock.now += std::chrono::seconds(59);
  EXPECT_NE(store.get("a"), nullptr);
  clock.now += std::chrono::seconds(1);
  EXPECT_EQ(store.get("a"), nullptr);  // expired
  EXPECT_EQ(store.size(), 0u);
  EXPECT_EQ(store.bytes(), 0u);
  store.put(stored("c"));
  EXPECT_TRUE(store.erase("c"));
  EXPECT_FALSE(store.erase("c"));
}

TEST(ResponseStore, BoundsEvictOldestFirst) {
  FakeClock clock;
  ResponseStore store({.max_entries = 3, .max_bytes = 1 << 20, .ttl = std::chrono::hours(1)},
                      clock.fn());
  for (const char* id : {"a", "b", "c", "d"}) store.put(stored(id));
  EXPECT_EQ(store.size(), 3u);
  EXPECT_EQ(store.get("a"), nullptr);
  EXPECT_NE(store.get("d"), nullptr);

  ResponseStore small({.max_entries = 100, .max_bytes = 5000, .ttl = std::chrono::hours(1)},
                      clock.fn());
  small.put(stored("a", 2000));
  small.put(stored("b", 2000));
  small.put(stored("c", 2000));
  EXPECT_EQ(small.get("a"), nullptr);
  EXPECT_NE(small.get("c"), nullptr);
  EXPECT_LE(small.bytes(), 5000u);
  small.put(stored("huge", 100000));  // larger than the bound: not kept, nothing evicted
  EXPECT_EQ(small.get("huge"), nullptr);
  EXPECT_NE(small.get("c"), nullptr);
}

TEST(ResponseStore, ConcurrentUse) {
  ResponseStore store({.max_entries = 50, .max_bytes = 1 << 20, .ttl = std::chrono::hours(1)});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&store, t] {
      for (int i = 0; i < 500; ++i) {
        const std::string id = std::to_string(t) + "_" + std::to_string(i);
        store.put(stored(id));
        auto got = store.get(id);
        if (got != nullptr) {
          EXPECT_EQ(got->id, id);
        }
        if (i % 3 == 0) store.erase(id);
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_LE(store.size(), 50u);
}

TEST(ResponseStore, PreviousResponseContinuesTheConversation) {
  ResponseStore store({});
  // Turn 1: the model calls a tool.
  auto first = parse(R"("input":"weather in Paris?","instructions":"sys",
      "tools":[{"type":"function","name":"get_weather"}])");
  ASSERT_TRUE(first.has_value());
  ASSERT_TRUE(apply_previous_response(*first, store).is_ok());
  ResponsesEncoder enc(response_header(*first, "resp_1", 1), false, counter_ids());
  std::vector<SseEvent> none;
  ChoiceDelta call;
  call.tool_calls.push_back({0, "call_a", "get_weather", "{\"city\":\"Paris\"}"});
  enc.delta(call, none);
  enc.finish(FinishReason::kToolCalls, {}, none);
  store.put(stored_response(*first, enc));

  // Turn 2: the tool's output, continuing from resp_1 with new instructions.
  auto second = parse(R"("previous_response_id":"resp_1","instructions":"new sys",
      "input":[{"type":"function_call_output","call_id":"call_a","output":"sunny"}])");
  ASSERT_TRUE(second.has_value());
  ASSERT_TRUE(apply_previous_response(*second, store).is_ok());
  const std::vector<ChatMessage>& m = second->chat.messages;
  ASSERT_EQ(m.size(), 4u);
  EXPECT_EQ(m[0].role, "system");
  EXPECT_EQ(m[0].content, "new sys");  // instructions do not carry over
  EXPECT_EQ(m[1].role, "user");
  EXPECT_EQ(m[1].content, "weather in Paris?");
  EXPECT_EQ(m[2].role, "assistant");
  EXPECT_EQ(json::parse(m[2].tool_calls_json).at(0).at("id"), "call_a");
  EXPECT_EQ(m[3].role, "tool");
  EXPECT_EQ(m[3].tool_call_id, "call_a");

  // GET returns the stored object; an unknown previous id is OpenAI's 400.
  EXPECT_EQ(json::parse(store.get("resp_1")->response_json).at("id"), "resp_1");
  auto third = parse(R"("previous_response_id":"resp_nope","input":"x")");
  ASSERT_TRUE(third.has_value());
  const Status s = apply_previous_response(*third, store);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(http_status(s.code()), 400);
  json::value err = json::parse(responses_error_json(s));
  EXPECT_EQ(err.at("error").at("code"), "previous_response_not_found");
  EXPECT_EQ(err.at("error").at("param"), "previous_response_id");
  EXPECT_EQ(json::parse(response_deleted_json("resp_1")).at("deleted"), true);
}

TEST(ResponseStore, StoreFalseIsHonoured) {
  ResponseStore store({});
  auto kept = parse(R"("input":"a")");
  auto not_kept = parse(R"("input":"b","store":false)");
  ASSERT_TRUE(kept.has_value() && not_kept.has_value());
  ResponsesEncoder a(response_header(*kept, "resp_a", 1), false);
  ResponsesEncoder b(response_header(*not_kept, "resp_b", 1), false);
  std::vector<SseEvent> none;
  a.finish(FinishReason::kStop, {}, none);
  b.finish(FinishReason::kStop, {}, none);
  EXPECT_TRUE(remember_response(store, *kept, a));
  EXPECT_FALSE(remember_response(store, *not_kept, b));
  EXPECT_NE(store.get("resp_a"), nullptr);
  EXPECT_EQ(store.get("resp_b"), nullptr);
  EXPECT_EQ(json::parse(b.response_json()).at("store"), false);
}

TEST(ChatTools, SpecsFromChatToolsJson) {
  auto chat = parse_chat_request(
      R"({"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f","description":"d","parameters":{"type":"object","properties":{"a":{"type":"integer"}}},"strict":true}}]})");
  ASSERT_TRUE(chat.has_value()) << chat.status().to_string();
  auto specs = tool_specs_from_chat_tools(chat->template_fields.tools_json);
  ASSERT_TRUE(specs.has_value()) << specs.status().to_string();
  ASSERT_EQ(specs->size(), 1u);
  EXPECT_EQ((*specs)[0].name, "f");
  EXPECT_EQ((*specs)[0].description, "d");
  EXPECT_TRUE((*specs)[0].strict);
  EXPECT_EQ(json::parse((*specs)[0].parameters_json).at("properties").at("a").at("type"),
            "integer");
  // The template view made from specs names the same function.
  EXPECT_EQ(json::parse(tools_template_json(*specs)).at(0).at("function").at("name"), "f");
  EXPECT_TRUE(tool_specs_from_chat_tools("")->empty());
  EXPECT_FALSE(tool_specs_from_chat_tools(R"([{"type":"function"}])").has_value());
}

}  // namespace
}  // namespace turbine::api
