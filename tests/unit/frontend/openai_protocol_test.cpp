#include "frontend/openai_protocol.h"

#include <gtest/gtest.h>
#include <boost/json.hpp>

namespace turbine::frontend {
namespace {

namespace json = boost::json;

// The JSON payloads of "data: ..." events; "[DONE]" is kept as a string.
std::vector<json::value> events(const std::string& sse) {
  std::vector<json::value> out;
  size_t at = 0;
  while (at < sse.size()) {
    const size_t end = sse.find("\n\n", at);
    EXPECT_NE(end, std::string::npos) << "unterminated event: " << sse.substr(at);
    if (end == std::string::npos) break;
    const std::string_view ev = std::string_view(sse).substr(at, end - at);
    EXPECT_EQ(ev.substr(0, 6), "data: ") << ev;
    const std::string_view data = ev.substr(6);
    out.push_back(data == "[DONE]" ? json::value(json::string("[DONE]")) : json::parse(data));
    at = end + 2;
  }
  return out;
}

api::ResponseMeta meta() {
  return {"id-1", 1700000000, "m"};
}

// The OpenAI encoders only look at the request's sampling options.
std::unique_ptr<ResponseEncoder> make(const ProtocolAdapter& adapter,
                                      const api::SamplingOptions& s) {
  api::ChatRequest r;
  r.sampling = s;
  return adapter.encoder(meta(), ParsedRequest(std::move(r)));
}

api::ChoiceDelta delta(int index, std::string content,
                       api::FinishReason finish = api::FinishReason::kNone) {
  api::ChoiceDelta d;
  d.index = index;
  d.content = std::move(content);
  d.finish = finish;
  return d;
}

TEST(OpenAiChatEncoderTest, InterleavedChoicesStreamPerChoice) {
  auto adapter = make_openai_chat_adapter();
  api::SamplingOptions s;
  s.stream = true;
  auto enc = make(*adapter, s);
  std::string out;
  const int indices[] = {0, 1};
  enc->stream_start(indices, out);
  enc->stream_delta(delta(1, "b"), out);
  enc->stream_delta(delta(0, "a"), out);
  enc->stream_delta(delta(1, "", api::FinishReason::kLength), out);
  enc->stream_delta(delta(0, "!", api::FinishReason::kStop), out);
  enc->stream_end({3, 4, std::nullopt}, out);
  auto ev = events(out);
  ASSERT_EQ(ev.size(), 8u);
  for (int i = 0; i < 2; ++i) {
    const auto& c = ev[i].at("choices").at(0);
    EXPECT_EQ(c.at("index").as_int64(), i);
    EXPECT_EQ(c.at("delta").at("role").as_string(), "assistant");
  }
  EXPECT_EQ(ev[2].at("choices").at(0).at("index").as_int64(), 1);
  EXPECT_EQ(ev[2].at("choices").at(0).at("delta").at("content").as_string(), "b");
  EXPECT_EQ(ev[3].at("choices").at(0).at("delta").at("content").as_string(), "a");
  // A finish with no text is one chunk with an empty delta.
  EXPECT_TRUE(ev[4].at("choices").at(0).at("delta").as_object().empty());
  EXPECT_EQ(ev[4].at("choices").at(0).at("finish_reason").as_string(), "length");
  // Text and finish together: the text chunk, then the finish chunk.
  EXPECT_EQ(ev[5].at("choices").at(0).at("delta").at("content").as_string(), "!");
  EXPECT_TRUE(ev[5].at("choices").at(0).at("finish_reason").is_null());
  EXPECT_EQ(ev[6].at("choices").at(0).at("finish_reason").as_string(), "stop");
  EXPECT_EQ(ev[7].as_string(), "[DONE]");  // no usage chunk unless asked for
  for (size_t i = 0; i < 7; ++i) {
    EXPECT_EQ(ev[i].at("id").as_string(), "id-1");
    EXPECT_EQ(ev[i].at("object").as_string(), "chat.completion.chunk");
    EXPECT_FALSE(ev[i].as_object().contains("usage")) << i;
  }
}

TEST(OpenAiChatEncoderTest, IncludeUsageNullsUsageInEveryEarlierChunk) {
  auto adapter = make_openai_chat_adapter();
  api::SamplingOptions s;
  s.stream = true;
  s.include_usage = true;
  auto enc = make(*adapter, s);
  std::string out;
  const int indices[] = {0};
  enc->stream_start(indices, out);
  enc->stream_delta(delta(0, "hi", api::FinishReason::kStop), out);
  enc->stream_end({5, 2, 4}, out);
  auto ev = events(out);
  ASSERT_EQ(ev.size(), 5u);
  for (size_t i = 0; i < 3; ++i) {
    ASSERT_TRUE(ev[i].as_object().contains("usage")) << i;
    EXPECT_TRUE(ev[i].at("usage").is_null()) << i;
  }
  const auto& usage = ev[3].at("usage");
  EXPECT_TRUE(ev[3].at("choices").as_array().empty());
  EXPECT_EQ(usage.at("prompt_tokens").as_int64(), 5);
  EXPECT_EQ(usage.at("completion_tokens").as_int64(), 2);
  EXPECT_EQ(usage.at("total_tokens").as_int64(), 7);
  EXPECT_EQ(usage.at("prompt_tokens_details").at("cached_tokens").as_int64(), 4);
  EXPECT_EQ(ev[4].as_string(), "[DONE]");
}

TEST(OpenAiChatEncoderTest, ReasoningAndToolCallDeltas) {
  auto adapter = make_openai_chat_adapter();
  api::SamplingOptions s;
  s.stream = true;
  auto enc = make(*adapter, s);
  std::string out;
  api::ChoiceDelta think;
  think.reasoning = "hmm";
  enc->stream_delta(think, out);
  api::ChoiceDelta call;
  call.tool_calls.push_back({0, "call_1", "get_weather", ""});
  enc->stream_delta(call, out);
  api::ChoiceDelta args;
  args.tool_calls.push_back({0, "", "", "{\"city\":\"Paris\"}"});
  args.finish = api::FinishReason::kToolCalls;
  enc->stream_delta(args, out);
  auto ev = events(out);
  ASSERT_EQ(ev.size(), 4u);
  const auto& d0 = ev[0].at("choices").at(0).at("delta");
  EXPECT_EQ(d0.at("reasoning_content").as_string(), "hmm");
  EXPECT_FALSE(d0.as_object().contains("content"));
  const auto& c1 = ev[1].at("choices").at(0).at("delta").at("tool_calls").at(0);
  EXPECT_EQ(c1.at("index").as_int64(), 0);
  EXPECT_EQ(c1.at("id").as_string(), "call_1");
  EXPECT_EQ(c1.at("type").as_string(), "function");
  EXPECT_EQ(c1.at("function").at("name").as_string(), "get_weather");
  const auto& c2 = ev[2].at("choices").at(0).at("delta").at("tool_calls").at(0);
  EXPECT_FALSE(c2.as_object().contains("id"));
  EXPECT_EQ(c2.at("function").at("arguments").as_string(), "{\"city\":\"Paris\"}");
  EXPECT_EQ(ev[3].at("choices").at(0).at("finish_reason").as_string(), "tool_calls");
}

TEST(OpenAiChatEncoderTest, UnaryMessageWithToolCallsHasNullContent) {
  auto adapter = make_openai_chat_adapter();
  api::SamplingOptions s;
  auto enc = make(*adapter, s);
  ChoiceOutput c;
  c.add(delta(0, ""));
  api::ChoiceDelta call;
  call.reasoning = "because";
  call.tool_calls.push_back({0, "call_9", "f", "{\"a\":"});
  c.add(call);
  api::ChoiceDelta more;
  more.tool_calls.push_back({0, "", "", "1}"});
  more.finish = api::FinishReason::kToolCalls;
  c.add(more);
  const ChoiceOutput outs[] = {c};
  json::value body = json::parse(enc->unary(outs, {1, 2, std::nullopt}));
  const auto& msg = body.at("choices").at(0).at("message");
  EXPECT_TRUE(msg.at("content").is_null());
  EXPECT_EQ(msg.at("reasoning_content").as_string(), "because");
  EXPECT_EQ(msg.at("tool_calls").at(0).at("id").as_string(), "call_9");
  EXPECT_EQ(msg.at("tool_calls").at(0).at("function").at("arguments").as_string(), "{\"a\":1}");
  EXPECT_EQ(body.at("choices").at(0).at("finish_reason").as_string(), "tool_calls");
  EXPECT_TRUE(body.at("choices").at(0).at("logprobs").is_null());
  EXPECT_EQ(body.at("usage").at("total_tokens").as_int64(), 3);
}

TEST(OpenAiCompletionEncoderTest, OffsetsFollowEachChoiceText) {
  auto adapter = make_openai_completions_adapter();
  api::SamplingOptions s;
  s.stream = true;
  s.logprobs = 0;
  auto enc = make(*adapter, s);
  std::string out;
  enc->stream_start({}, out);
  EXPECT_TRUE(out.empty());
  enc->stream_delta(delta(0, "echo "), out);  // an echoed prompt
  api::ChoiceDelta d = delta(0, "ab");
  d.logprobs = {{"a", -0.5f, {}}, {"b", -0.25f, {}}};
  enc->stream_delta(d, out);
  api::ChoiceDelta other = delta(1, "zz", api::FinishReason::kLength);
  other.logprobs = {{"zz", -1.0f, {}}};
  enc->stream_delta(other, out);
  enc->stream_end({}, out);
  auto ev = events(out);
  ASSERT_EQ(ev.size(), 4u);
  EXPECT_EQ(ev[0].at("choices").at(0).at("text").as_string(), "echo ");
  EXPECT_TRUE(ev[0].at("choices").at(0).at("logprobs").is_null());
  const auto& lp = ev[1].at("choices").at(0).at("logprobs");
  EXPECT_EQ(lp.at("text_offset").at(0).as_int64(), 5);
  EXPECT_EQ(lp.at("text_offset").at(1).as_int64(), 6);
  EXPECT_EQ(ev[2].at("choices").at(0).at("logprobs").at("text_offset").at(0).as_int64(), 0);
  EXPECT_EQ(ev[2].at("choices").at(0).at("finish_reason").as_string(), "length");
  EXPECT_EQ(ev[3].as_string(), "[DONE]");
}

TEST(OpenAiCompletionEncoderTest, UnaryKeepsEchoAndLogprobOffsets) {
  auto adapter = make_openai_completions_adapter();
  api::SamplingOptions s;
  s.logprobs = 1;
  auto enc = make(*adapter, s);
  ChoiceOutput c;
  c.add(delta(0, "echo "));
  api::ChoiceDelta d = delta(0, "ab", api::FinishReason::kStop);
  d.logprobs = {{"a", -0.5f, {}}, {"b", -0.25f, {}}};
  c.add(d);
  const ChoiceOutput outs[] = {c};
  json::value body = json::parse(enc->unary(outs, {2, 2, std::nullopt}));
  const auto& choice = body.at("choices").at(0);
  EXPECT_EQ(choice.at("text").as_string(), "echo ab");
  EXPECT_EQ(choice.at("logprobs").at("text_offset").at(0).as_int64(), 5);
  EXPECT_EQ(choice.at("finish_reason").as_string(), "stop");
  EXPECT_EQ(body.at("object").as_string(), "text_completion");
}

TEST(OpenAiProtocolTest, ErrorsInOpenAiShapeAndRetryAfterOn503) {
  auto adapter = make_openai_chat_adapter();
  ErrorReply bad = adapter->error(invalid_argument("temperature must be in [0, 2]", "temperature"));
  EXPECT_EQ(bad.status, 400);
  EXPECT_TRUE(bad.headers.empty());
  json::value b = json::parse(bad.body);
  EXPECT_EQ(b.at("error").at("param").as_string(), "temperature");
  EXPECT_EQ(b.at("error").at("type").as_string(), "invalid_request_error");

  ErrorReply gone = adapter->error(Status(StatusCode::kUnavailable, "no workers", "model"));
  EXPECT_EQ(gone.status, 503);
  ASSERT_EQ(gone.headers.size(), 1u);
  EXPECT_EQ(gone.headers[0].first, "Retry-After");
  EXPECT_EQ(gone.headers[0].second, std::to_string(kRetryAfterSeconds));

  ErrorReply missing = adapter->error(not_found("The model `x` does not exist.", "model"));
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(json::parse(missing.body).at("error").at("code").as_string(), "model_not_found");
}

TEST(OpenAiProtocolTest, AdaptersParseIntoNeutralRequests) {
  auto chat = make_openai_chat_adapter();
  auto parsed = chat->parse(R"({"model":"m","messages":[{"role":"user","content":"hi"}]})");
  ASSERT_TRUE(parsed.has_value());
  EXPECT_TRUE(is_chat(*parsed));
  EXPECT_EQ(model_of(*parsed), "m");
  EXPECT_EQ(chat->endpoint(), "chat_completions");
  EXPECT_EQ(chat->make_id().rfind("chatcmpl-", 0), 0u);
  auto completions = make_openai_completions_adapter();
  auto c = completions->parse(R"({"model":"m","prompt":"x","guided_regex":"a+"})");
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.status().field(), "guided_regex");
}

TEST(SseTest, DataAndTypedEvents) {
  std::string out;
  append_sse(out, "{}");
  append_sse(out, "message_start", "{\"a\":1}");
  EXPECT_EQ(out, "data: {}\n\nevent: message_start\ndata: {\"a\":1}\n\n");
}

}  // namespace
}  // namespace turbine::frontend
