// Issue 18 items 2 and 3: no accepted-but-ignored request field; "usage": null in stream chunks
// before the usage chunk. Also the chat builders' reasoning and tool-call fields.
#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "api/openai.h"

namespace turbine::api {
namespace {

namespace json = boost::json;

Result<CompletionRequest> completion(std::string_view extra) {
  return parse_completion_request(R"({"model":"m","prompt":"hi")" + std::string(extra) + "}");
}
Result<ChatRequest> chat(std::string_view extra) {
  return parse_chat_request(R"({"model":"m","messages":[{"role":"user","content":"hi"}])" +
                            std::string(extra) + "}");
}

template <typename T>
void expect_rejected(const Result<T>& r, std::string_view param) {
  ASSERT_FALSE(r.has_value()) << param;
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().field(), param) << r.status().to_string();
  EXPECT_NE(r.status().message().find(param), std::string::npos) << r.status().message();
}

TEST(RequestFieldsTest, ConstraintFieldsAreRejectedOnBothEndpoints) {
  const std::pair<const char*, const char*> cases[] = {
      {"guided_json", R"({"type":"object"})"},      {"guided_regex", R"("[a-z]+")"},
      {"guided_choice", R"(["yes","no"])"},         {"guided_grammar", R"("root ::= \"a\"")"},
      {"guided_decoding_backend", R"("xgrammar")"}, {"structured_outputs", R"({"json":{}})"},
  };
  for (const auto& [field, value] : cases) {
    const std::string extra = std::string(",\"") + field + "\":" + value;
    expect_rejected(completion(extra), field);
    expect_rejected(chat(extra), field);
  }
  // null means absent.
  EXPECT_TRUE(chat(R"(,"guided_json":null)").has_value());
}

TEST(RequestFieldsTest, ResponseFormat) {
  expect_rejected(completion(R"(,"response_format":{"type":"text"})"), "response_format");
  expect_rejected(completion(R"(,"response_format":{"type":"json_object"})"), "response_format");
  expect_rejected(chat(R"(,"response_format":{"type":"json_object"})"), "response_format");
  expect_rejected(chat(R"(,"response_format":{"type":"json_schema","json_schema":{}})"),
                  "response_format");
  EXPECT_TRUE(chat(R"(,"response_format":{"type":"text"})").has_value());
}

TEST(RequestFieldsTest, UnsupportedOptionsAreRejectedUnlessEmpty) {
  const std::pair<const char*, const char*> cases[] = {
      {"prompt_logprobs", "1"},
      {"use_beam_search", "true"},
      {"include_stop_str_in_output", "true"},
      {"allowed_token_ids", "[1]"},
      {"bad_words", "[\"x\"]"},
      {"reasoning_effort", "\"low\""},
      {"functions", "[{\"name\":\"f\"}]"},
  };
  for (const auto& [field, value] : cases) {
    expect_rejected(chat(std::string(",\"") + field + "\":" + value), field);
    EXPECT_TRUE(chat(std::string(",\"") + field + "\":null").has_value()) << field;
  }
  EXPECT_TRUE(
      chat(R"(,"use_beam_search":false,"bad_words":[],"prompt_logprobs":null)").has_value());
  expect_rejected(chat(R"(,"parallel_tool_calls":false)"), "parallel_tool_calls");
  EXPECT_TRUE(chat(R"(,"parallel_tool_calls":true)").has_value());
  expect_rejected(chat(R"(,"modalities":["text","audio"])"), "modalities");
  EXPECT_TRUE(chat(R"(,"modalities":["text"])").has_value());
  expect_rejected(chat(R"(,"echo":true)"), "echo");
  expect_rejected(chat(R"(,"stream":true,"stream_options":{"continuous_usage_stats":true})"),
                  "stream_options");
  // Informational fields stay accepted.
  EXPECT_TRUE(
      chat(R"(,"user":"u","metadata":{"a":"b"},"store":false,"service_tier":"auto")").has_value());
}

TEST(RequestFieldsTest, MinTokensAndSkipSpecialTokensAreHonoured) {
  auto r = completion(R"(,"max_tokens":5,"min_tokens":3,"skip_special_tokens":false)");
  ASSERT_TRUE(r.has_value()) << r.status().to_string();
  EXPECT_EQ(r->sampling.min_tokens, 3);
  EXPECT_FALSE(r->sampling.skip_special_tokens);
  auto d = chat("");
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->sampling.min_tokens, 0);
  EXPECT_TRUE(d->sampling.skip_special_tokens);
  expect_rejected(completion(R"(,"max_tokens":2,"min_tokens":3)"), "min_tokens");
  expect_rejected(completion(R"(,"min_tokens":-1)"), "min_tokens");
}

TEST(StreamUsageTest, ChunksCarryNullUsageWhenTheStreamEndsWithUsage) {
  ResponseMeta meta{"id", 1, "m"};
  meta.null_usage_in_chunks = true;
  for (const std::string& chunk :
       {chat_role_chunk(meta, 0), chat_chunk(meta, {.index = 0, .content = "a"}),
        chat_chunk(meta, {.index = 0, .finish_reason = FinishReason::kStop}),
        completion_chunk(meta, {.index = 0, .text = "a"})}) {
    const json::value v = json::parse(chunk);
    ASSERT_TRUE(v.as_object().contains("usage")) << chunk;
    EXPECT_TRUE(v.at("usage").is_null()) << chunk;
  }
  const json::value u = json::parse(chat_usage_chunk(meta, {1, 2, std::nullopt}));
  EXPECT_EQ(u.at("usage").at("total_tokens").as_int64(), 3);
  meta.null_usage_in_chunks = false;
  EXPECT_FALSE(json::parse(chat_role_chunk(meta, 0)).as_object().contains("usage"));
}

TEST(ChatBuildersTest, ReasoningAndToolCalls) {
  const ResponseMeta meta{"id", 1, "m"};
  const json::value r = json::parse(chat_chunk(meta, {.index = 0, .reasoning = "think"}));
  const auto& delta = r.at("choices").at(0).at("delta").as_object();
  EXPECT_EQ(delta.at("reasoning_content").as_string(), "think");
  EXPECT_FALSE(delta.contains("content"));
  const json::value both =
      json::parse(chat_chunk(meta, {.index = 0, .content = "a", .reasoning = "b"}));
  EXPECT_EQ(both.at("choices").at(0).at("delta").at("content").as_string(), "a");
  EXPECT_EQ(both.at("choices").at(0).at("delta").at("reasoning_content").as_string(), "b");
  const ChatChoice call{.index = 0,
                        .tool_calls_json = R"([{"id":"c","type":"function"}])",
                        .finish_reason = FinishReason::kToolCalls};
  const json::value msg = json::parse(chat_response(meta, {&call, 1}, {}));
  const auto& m = msg.at("choices").at(0).at("message");
  EXPECT_TRUE(m.at("content").is_null());
  EXPECT_EQ(m.at("tool_calls").at(0).at("id").as_string(), "c");
  EXPECT_FALSE(m.as_object().contains("reasoning_content"));
}

}  // namespace
}  // namespace turbine::api
