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

TEST(RequestFieldsTest, ConstraintFieldsAreHonouredOnBothEndpoints) {
  using K = OutputConstraint::Kind;
  struct Case {
    const char* extra;
    K kind;
    const char* text;
    const char* param;
  };
  const Case cases[] = {
      {R"(,"guided_json":{"type":"object"})", K::kJsonSchema, R"({"type":"object"})",
       "guided_json"},
      {R"(,"guided_json":"{\"type\": \"integer\"}")", K::kJsonSchema, R"({"type": "integer"})",
       "guided_json"},
      {R"(,"guided_regex":"[a-z]+")", K::kRegex, "[a-z]+", "guided_regex"},
      {R"(,"guided_choice":["yes","no"])", K::kChoice, R"(["yes","no"])", "guided_choice"},
      {R"(,"guided_grammar":"root ::= \"a\"")", K::kGrammar, R"(root ::= "a")", "guided_grammar"},
      {R"(,"structured_outputs":{"json":{"type":"string"}})", K::kJsonSchema,
       R"({"type":"string"})", "structured_outputs.json"},
      {R"(,"structured_outputs":{"regex":"a+","disable_fallback":true})", K::kRegex, "a+",
       "structured_outputs.regex"},
      {R"(,"structured_outputs":{"choice":["a"]})", K::kChoice, R"(["a"])",
       "structured_outputs.choice"},
      {R"(,"structured_outputs":{"grammar":"root ::= \"b\""})", K::kGrammar, R"(root ::= "b")",
       "structured_outputs.grammar"},
      {R"(,"structured_outputs":{"json_object":true})", K::kJsonObject, "",
       "structured_outputs.json_object"},
      {R"(,"response_format":{"type":"json_object"})", K::kJsonObject, "", "response_format"},
      {R"(,"response_format":{"type":"json_schema","json_schema":{"name":"n","strict":true,"schema":{"type":"object"}}})",
       K::kJsonSchema, R"({"type":"object"})", "response_format"},
      {R"(,"response_format":{"type":"text"},"guided_decoding_backend":"xgrammar")", K::kNone, "",
       ""},
  };
  for (const Case& c : cases) {
    for (bool is_chat : {false, true}) {
      const OutputConstraint got =
          is_chat ? chat(c.extra)->sampling.constraint : completion(c.extra)->sampling.constraint;
      EXPECT_EQ(got.kind, c.kind) << c.extra;
      EXPECT_EQ(got.text, c.text) << c.extra;
      EXPECT_EQ(got.param, c.param) << c.extra;
    }
  }
  // null means absent.
  EXPECT_FALSE(chat(R"(,"guided_json":null)")->sampling.constraint.active());
}

TEST(RequestFieldsTest, BadConstraintFieldsAreRejected) {
  const std::pair<const char*, const char*> cases[] = {
      {R"(,"guided_json":{"type":"object"},"guided_regex":"a")", "guided_regex"},
      {R"(,"response_format":{"type":"json_object"},"structured_outputs":{"regex":"a"})",
       "structured_outputs.regex"},
      {R"(,"structured_outputs":{"json":{},"choice":["a"]})", "structured_outputs.choice"},
      {R"(,"guided_json":3)", "guided_json"},
      {R"(,"guided_regex":["a"])", "guided_regex"},
      {R"(,"guided_choice":[])", "guided_choice"},
      {R"(,"guided_choice":["a",1])", "guided_choice[]"},
      {R"(,"guided_grammar":{})", "guided_grammar"},
      {R"(,"guided_whitespace_pattern":" *")", "guided_whitespace_pattern"},
      {R"(,"structured_outputs":{"structural_tag":"{}"})", "structured_outputs.structural_tag"},
      {R"(,"structured_outputs":"a")", "structured_outputs"},
      {R"(,"response_format":{"type":"yaml"})", "response_format"},
      {R"(,"response_format":{})", "response_format"},
      {R"(,"response_format":{"type":"json_schema"})", "response_format.json_schema"},
      {R"(,"response_format":{"type":"json_schema","json_schema":{}})",
       "response_format.json_schema.schema"},
      {R"(,"response_format":{"type":"json_schema","json_schema":{"schema":{},"strict":1}})",
       "response_format.json_schema.strict"},
  };
  for (const auto& [extra, param] : cases) {
    for (bool is_chat : {false, true}) {
      const Status st = is_chat ? chat(extra).status() : completion(extra).status();
      EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << extra;
      EXPECT_EQ(st.field(), param) << extra << ": " << st.to_string();
    }
  }
}

TEST(RequestFieldsTest, UnsupportedOptionsAreRejectedUnlessEmpty) {
  const std::pair<const char*, const char*> cases[] = {
      {"prompt_logprobs", "1"},
      {"use_beam_search", "true"},
      {"include_stop_str_in_output", "true"},
      {"allowed_token_ids", "[1]"},
      {"bad_words", "[\"x\"]"},
      {"functions", "[{\"name\":\"f\"}]"},
  };
  for (const auto& [field, value] : cases) {
    expect_rejected(chat(std::string(",\"") + field + "\":" + value), field);
    EXPECT_TRUE(chat(std::string(",\"") + field + "\":null").has_value()) << field;
  }
  EXPECT_TRUE(
      chat(R"(,"use_beam_search":false,"bad_words":[],"prompt_logprobs":null)").has_value());
  EXPECT_FALSE(chat(R"(,"parallel_tool_calls":false)")->extras.parallel_tool_calls);
  EXPECT_TRUE(chat(R"(,"parallel_tool_calls":true)")->extras.parallel_tool_calls);
  expect_rejected(chat(R"(,"parallel_tool_calls":"no")"), "parallel_tool_calls");
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

// vLLM's `priority` (issue 29): any integer on both endpoints (integral floats too), null or
// absent = 0; other types are a 400 naming it. Whether a non-zero value is served is the engine's
// scheduling policy's call (engine_test.cpp).
TEST(RequestFieldsTest, PriorityIsAnIntegerOnBothEndpoints) {
  const std::pair<const char*, int> ok[] = {{R"(,"priority":3)", 3},
                                            {R"(,"priority":-7)", -7},
                                            {R"(,"priority":2.0)", 2},
                                            {R"(,"priority":null)", 0},
                                            {"", 0},
                                            {R"(,"priority":-2147483648)", -2147483648}};
  for (const auto& [extra, want] : ok) {
    auto c = completion(extra);
    ASSERT_TRUE(c.has_value()) << extra << ": " << c.status().to_string();
    EXPECT_EQ(c->sampling.priority, want) << extra;
    auto h = chat(extra);
    ASSERT_TRUE(h.has_value()) << extra << ": " << h.status().to_string();
    EXPECT_EQ(h->sampling.priority, want) << extra;
  }
  for (const char* bad :
       {R"(,"priority":"high")", R"(,"priority":1.5)", R"(,"priority":true)", R"(,"priority":[1])",
        R"(,"priority":{"a":1})", R"(,"priority":2147483648)", R"(,"priority":-2147483649)"}) {
    expect_rejected(completion(bad), "priority");
    expect_rejected(chat(bad), "priority");
  }
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
