#include "api/openai.h"

#include <gtest/gtest.h>
#include <boost/json.hpp>

namespace turbine::api {
namespace {

namespace json = boost::json;

// Expects a 400 naming `param` whose message contains `needle`.
template <typename T>
void expect_invalid(const Result<T>& r, std::string_view param, std::string_view needle = {}) {
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().to_string();
  EXPECT_EQ(r.status().field(), param) << r.status().to_string();
  EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().message();
}

Result<CompletionRequest> completion(std::string_view extra) {
  return parse_completion_request(R"({"model":"m","prompt":"hi")" + std::string(extra) + "}");
}
Result<ChatRequest> chat(std::string_view extra) {
  return parse_chat_request(R"({"model":"m","messages":[{"role":"user","content":"hi"}])" +
                            std::string(extra) + "}");
}

TEST(CompletionParseTest, MinimalDefaults) {
  auto r = completion("");
  ASSERT_TRUE(r.has_value()) << r.status().to_string();
  EXPECT_EQ(r->model, "m");
  ASSERT_EQ(r->prompts.size(), 1u);
  EXPECT_EQ(r->prompts[0].text, "hi");
  EXPECT_FALSE(r->prompts[0].is_tokens);
  const SamplingOptions& s = r->sampling;
  EXPECT_FALSE(s.max_tokens.has_value());
  EXPECT_EQ(s.temperature, 1.0f);
  EXPECT_EQ(s.top_p, 1.0f);
  EXPECT_EQ(s.top_k, -1);
  EXPECT_FALSE(s.logprobs.has_value());
  EXPECT_FALSE(s.stream);
  EXPECT_EQ(s.n, 1);
}

TEST(CompletionParseTest, AllFields) {
  auto r = completion(
      R"(,"max_tokens":10.0,"temperature":0,"top_p":0.5,"top_k":40,"min_p":0.1,"seed":-1,)"
      R"("presence_penalty":-2,"frequency_penalty":2,"repetition_penalty":1.1,"stop":["a","","b"],)"
      R"("stop_token_ids":[2,7],"ignore_eos":true,"n":1,"logprobs":5,"echo":true,"stream":true,)"
      R"("stream_options":{"include_usage":true},"user":"u","best_of":1,"suffix":null)");
  ASSERT_TRUE(r.has_value()) << r.status().to_string();
  const SamplingOptions& s = r->sampling;
  EXPECT_EQ(s.max_tokens, 10);
  EXPECT_EQ(s.temperature, 0.0f);
  EXPECT_FLOAT_EQ(s.top_p, 0.5f);
  EXPECT_EQ(s.top_k, 40);
  EXPECT_FLOAT_EQ(s.min_p, 0.1f);
  EXPECT_EQ(s.seed, std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(s.presence_penalty, -2.0f);
  EXPECT_EQ(s.frequency_penalty, 2.0f);
  EXPECT_FLOAT_EQ(s.repetition_penalty, 1.1f);
  EXPECT_EQ(s.stop, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(s.stop_token_ids, (std::vector<int32_t>{2, 7}));
  EXPECT_TRUE(s.ignore_eos);
  EXPECT_EQ(s.logprobs, 5);
  EXPECT_TRUE(s.echo);
  EXPECT_TRUE(s.stream);
  EXPECT_TRUE(s.include_usage);
}

TEST(CompletionParseTest, NullMeansDefault) {
  auto r = completion(R"(,"max_tokens":null,"temperature":null,"stop":null,"logprobs":null)");
  ASSERT_TRUE(r.has_value()) << r.status().to_string();
  EXPECT_FALSE(r->sampling.max_tokens.has_value());
  EXPECT_EQ(r->sampling.temperature, 1.0f);
}

TEST(CompletionParseTest, PromptShapes) {
  auto batch = parse_completion_request(R"({"model":"m","prompt":["a","b","c"]})");
  ASSERT_TRUE(batch.has_value());
  ASSERT_EQ(batch->prompts.size(), 3u);
  EXPECT_EQ(batch->prompts[2].text, "c");

  auto tokens = parse_completion_request(R"({"model":"m","prompt":[1,2,3]})");
  ASSERT_TRUE(tokens.has_value());
  ASSERT_EQ(tokens->prompts.size(), 1u);
  EXPECT_TRUE(tokens->prompts[0].is_tokens);
  EXPECT_EQ(tokens->prompts[0].tokens, (std::vector<int32_t>{1, 2, 3}));

  auto token_batch = parse_completion_request(R"({"model":"m","prompt":[[1,2],[3]]})");
  ASSERT_TRUE(token_batch.has_value());
  ASSERT_EQ(token_batch->prompts.size(), 2u);
  EXPECT_EQ(token_batch->prompts[1].tokens, (std::vector<int32_t>{3}));

  expect_invalid(parse_completion_request(R"({"model":"m","prompt":[]})"), "prompt", "empty");
  expect_invalid(parse_completion_request(R"({"model":"m","prompt":["a",1]})"), "prompt", "mixes");
  expect_invalid(parse_completion_request(R"({"model":"m","prompt":[[1],[]]})"), "prompt", "empty");
  expect_invalid(parse_completion_request(R"({"model":"m","prompt":[1,-2]})"), "prompt");
  expect_invalid(parse_completion_request(R"({"model":"m","prompt":[1,"a"]})"), "prompt");
  expect_invalid(parse_completion_request(R"({"model":"m","prompt":5})"), "prompt");
  expect_invalid(parse_completion_request(R"({"model":"m"})"), "prompt", "required");
}

TEST(CompletionParseTest, BodyErrors) {
  auto bad = parse_completion_request(R"({"model":"m",)");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message().rfind("invalid JSON: ", 0), 0u) << bad.status().message();
  expect_invalid(parse_completion_request("[1,2]"), "", "JSON object");
  expect_invalid(parse_completion_request(""), "", "invalid JSON");
  expect_invalid(parse_completion_request(R"({"prompt":"x"})"), "model", "required");
  expect_invalid(parse_completion_request(R"({"model":3,"prompt":"x"})"), "model", "string");
  // Invalid UTF-8 inside a string must be rejected, not passed to the tokenizer.
  expect_invalid(parse_completion_request("{\"model\":\"m\",\"prompt\":\"\xC3\x28\"}"), "",
                 "invalid JSON");
}

TEST(CompletionParseTest, RangeAndTypeErrors) {
  expect_invalid(completion(R"(,"max_tokens":"ten")"), "max_tokens", "integer");
  expect_invalid(completion(R"(,"max_tokens":0)"), "max_tokens");
  expect_invalid(completion(R"(,"max_tokens":10.5)"), "max_tokens", "integer");
  expect_invalid(completion(R"(,"max_tokens":1e30)"), "max_tokens");
  expect_invalid(completion(R"(,"temperature":-0.1)"), "temperature");
  expect_invalid(completion(R"(,"temperature":2.5)"), "temperature");
  expect_invalid(completion(R"(,"temperature":"hot")"), "temperature", "number");
  expect_invalid(completion(R"(,"top_p":0)"), "top_p");
  expect_invalid(completion(R"(,"top_p":1.01)"), "top_p");
  expect_invalid(completion(R"(,"min_p":1.5)"), "min_p");
  expect_invalid(completion(R"(,"top_k":-2)"), "top_k");
  expect_invalid(completion(R"(,"presence_penalty":2.1)"), "presence_penalty");
  expect_invalid(completion(R"(,"frequency_penalty":-3)"), "frequency_penalty");
  expect_invalid(completion(R"(,"repetition_penalty":0)"), "repetition_penalty");
  expect_invalid(completion(R"(,"n":17)"), "n", "[1, 16], got 17");
  expect_invalid(completion(R"(,"n":0)"), "n");
  expect_invalid(completion(R"(,"n":3,"best_of":2)"), "best_of", "at least n");
  expect_invalid(completion(R"(,"best_of":17)"), "best_of");
  expect_invalid(completion(R"(,"best_of":3,"stream":true)"), "best_of", "stream");
  expect_invalid(completion(R"(,"logprobs":21)"), "logprobs");
  expect_invalid(completion(R"(,"logprobs":true)"), "logprobs", "integer");
  expect_invalid(completion(R"(,"stop":[1])"), "stop");
  expect_invalid(completion(R"(,"stop":{})"), "stop");
  expect_invalid(
      completion(
          R"(,"stop":["1","2","3","4","5","6","7","8","9","10","11","12","13","14","15","16","17"])"),
      "stop", "at most 16");
  expect_invalid(completion(R"(,"stop_token_ids":[-1])"), "stop_token_ids");
  expect_invalid(completion(R"(,"stream":"yes")"), "stream", "boolean");
  expect_invalid(completion(R"(,"stream_options":{"include_usage":true})"), "stream_options");
  expect_invalid(completion(R"(,"suffix":"tail")"), "suffix", "not supported");
  expect_invalid(completion(R"(,"logit_bias":{"x":1})"), "logit_bias", "token ids");
  expect_invalid(completion(R"(,"logit_bias":{"-1":1})"), "logit_bias", "token ids");
  expect_invalid(completion(R"(,"logit_bias":{"5":101})"), "logit_bias.5", "[-100, 100]");
  expect_invalid(completion(R"(,"logit_bias":{"5":"a"})"), "logit_bias.5", "number");
  expect_invalid(completion(R"(,"logit_bias":{"5":1,"05":2})"), "logit_bias", "twice");
  expect_invalid(completion(R"(,"logit_bias":[1])"), "logit_bias", "object");
  expect_invalid(completion(R"(,"echo":1)"), "echo");
}

TEST(ChatParseTest, Valid) {
  auto r = parse_chat_request(R"({"model":"m","messages":[
      {"role":"system","content":"be brief"},
      {"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}],"name":"bob"},
      {"role":"assistant","content":null},
      {"role":"tool","content":"42","tool_call_id":"call_1"},
      {"role":"developer","content":"d"}],
      "max_completion_tokens":7,"max_tokens":3,"logprobs":true,"top_logprobs":3,
      "add_generation_prompt":false,"tools":[],"response_format":{"type":"text"}})");
  ASSERT_TRUE(r.has_value()) << r.status().to_string();
  ASSERT_EQ(r->messages.size(), 5u);
  EXPECT_EQ(r->messages[0].role, "system");
  EXPECT_EQ(r->messages[1].content, "a\nb");
  EXPECT_EQ(r->messages[1].name, "bob");
  EXPECT_EQ(r->messages[2].content, "");
  EXPECT_EQ(r->messages[3].tool_call_id, "call_1");
  EXPECT_EQ(r->sampling.max_tokens, 7);  // max_completion_tokens wins
  EXPECT_EQ(r->sampling.logprobs, 3);
  EXPECT_FALSE(r->add_generation_prompt);

  auto plain = chat(R"(,"logprobs":false)");
  ASSERT_TRUE(plain.has_value());
  EXPECT_FALSE(plain->sampling.logprobs.has_value());
  EXPECT_TRUE(plain->add_generation_prompt);
  auto lp = chat(R"(,"logprobs":true)");
  ASSERT_TRUE(lp.has_value());
  EXPECT_EQ(lp->sampling.logprobs, 0);
}

TEST(ChatParseTest, Errors) {
  expect_invalid(parse_chat_request(R"({"model":"m"})"), "messages", "required");
  expect_invalid(parse_chat_request(R"({"model":"m","messages":[]})"), "messages", "at least one");
  expect_invalid(parse_chat_request(R"({"model":"m","messages":"hi"})"), "messages");
  expect_invalid(parse_chat_request(R"({"messages":[{"role":"user","content":"x"}]})"), "model");
  expect_invalid(parse_chat_request(R"({"model":"m","messages":[1]})"), "messages[0]");
  expect_invalid(parse_chat_request(R"({"model":"m","messages":[{"content":"x"}]})"),
                 "messages[0].role", "required");
  expect_invalid(parse_chat_request(R"({"model":"m","messages":[{"role":"robot","content":"x"}]})"),
                 "messages[0].role", "robot");
  expect_invalid(parse_chat_request(R"({"model":"m","messages":[{"role":"user"}]})"),
                 "messages[0].content", "required");
  expect_invalid(parse_chat_request(R"({"model":"m","messages":[{"role":"user","content":5}]})"),
                 "messages[0].content");
  expect_invalid(
      parse_chat_request(
          R"({"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]})"),
      "messages[0].content[0].type", "not supported");
  expect_invalid(parse_chat_request(
                     R"({"model":"m","messages":[{"role":"user","content":[{"type":"text"}]}]})"),
                 "messages[0].content[0].text");
  expect_invalid(chat(R"(,"top_logprobs":2)"), "top_logprobs", "requires logprobs");
  expect_invalid(chat(R"(,"logprobs":true,"top_logprobs":21)"), "top_logprobs");
  expect_invalid(chat(R"(,"logprobs":3)"), "logprobs", "boolean");
  expect_invalid(chat(R"(,"max_completion_tokens":0)"), "max_completion_tokens");
  expect_invalid(chat(R"(,"n":17)"), "n");
  expect_invalid(chat(R"(,"best_of":2)"), "best_of", "only supported on /v1/completions");
  expect_invalid(chat(R"(,"reasoning_effort":"max")"), "reasoning_effort");
  expect_invalid(chat(R"(,"tools":[{"type":"function"}])"), "tools[0].function", "required");
  expect_invalid(chat(R"(,"response_format":{"type":"xml"})"), "response_format");
  EXPECT_TRUE(chat(R"(,"echo":"x","user":7)").has_value());  // unknown to chat: ignored
}

TEST(ChatParseTest, TemplateFields) {
  auto plain = chat("");
  ASSERT_TRUE(plain.has_value());
  EXPECT_FALSE(plain->template_fields.chat_template.has_value());
  EXPECT_EQ(plain->template_fields.tools_json, "");
  EXPECT_EQ(plain->template_fields.kwargs_json, "");
  EXPECT_FALSE(plain->template_fields.continue_final_message);

  // Keys keep the order they were sent in (a template's tojson shows it).
  auto r = chat(R"(,"chat_template":"{{ messages[0].content }}",
      "chat_template_kwargs":{"enable_thinking":false,"a":[1,2]},
      "tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object",
        "properties":{"city":{"type":"string"}},"required":["city"]},"description":"d"}}],
      "tool_choice":"auto","add_generation_prompt":false,"continue_final_message":true)");
  ASSERT_TRUE(r.has_value()) << r.status().to_string();
  const ChatTemplateFields& f = r->template_fields;
  EXPECT_EQ(f.chat_template, "{{ messages[0].content }}");
  EXPECT_EQ(f.kwargs_json, R"({"enable_thinking":false,"a":[1,2]})");
  EXPECT_EQ(f.tools_json,
            R"([{"type":"function","function":{"name":"get_weather","parameters":{"type":"object",)"
            R"("properties":{"city":{"type":"string"}},"required":["city"]},"description":"d"}}])");
  EXPECT_TRUE(f.continue_final_message);
  EXPECT_TRUE(chat(R"(,"tools":[],"tool_choice":"none")").has_value());
  EXPECT_EQ(chat(R"(,"tools":[])")->template_fields.tools_json, "");

  auto calls = parse_chat_request(R"({"model":"m","messages":[
      {"role":"user","content":"weather?"},
      {"role":"assistant","content":null,"reasoning_content":"think","tool_calls":[{"id":"c1",
        "type":"function","function":{"name":"get_weather","arguments":"{\"city\": \"Paris\"}"}}]},
      {"role":"tool","content":"sunny","tool_call_id":"c1"}]})");
  ASSERT_TRUE(calls.has_value()) << calls.status().to_string();
  EXPECT_EQ(calls->messages[1].tool_calls_json,
            R"([{"id":"c1","type":"function","function":{"name":"get_weather",)"
            R"("arguments":"{\"city\": \"Paris\"}"}}])");
  EXPECT_EQ(calls->messages[1].reasoning_content, "think");
  EXPECT_EQ(calls->messages[0].tool_calls_json, "");

  expect_invalid(chat(R"(,"chat_template":1)"), "chat_template");
  expect_invalid(chat(R"(,"chat_template_kwargs":[1])"), "chat_template_kwargs");
  expect_invalid(chat(R"(,"tools":{})"), "tools");
  expect_invalid(chat(R"(,"tools":[1])"), "tools[0]");
  expect_invalid(chat(R"(,"tools":[{"type":"code_interpreter"}])"), "tools[0].type");
  expect_invalid(chat(R"(,"tools":[{"type":"function","function":{"name":""}}])"),
                 "tools[0].function.name");
  expect_invalid(chat(R"(,"tools":[{"type":"function","function":{"name":"f","parameters":1}}])"),
                 "tools[0].function.parameters");
  expect_invalid(chat(R"(,"tool_choice":"required")"), "tool_choice", "requires tools");
  expect_invalid(chat(R"(,"tool_choice":{"type":"function","function":{"name":"f"}})"),
                 "tool_choice", "not in tools");
  expect_invalid(chat(R"(,"tool_choice":"sometimes")"), "tool_choice");
  expect_invalid(chat(R"(,"tool_choice":{"type":"function"})"), "tool_choice.function");
  expect_invalid(chat(R"(,"tools":[{"type":"function","function":{"name":"f",
      "parameters":{"type":"object","required":["x"],"properties":{}}}}])"),
                 "tools[0].function.parameters.required", "not in properties");
  expect_invalid(chat(R"(,"tools":[{"type":"function","function":{"name":"a b"}}])"),
                 "tools[0].function.name", "letters");
  expect_invalid(chat(R"(,"continue_final_message":true)"), "continue_final_message",
                 "add_generation_prompt");
  expect_invalid(
      parse_chat_request(
          R"({"model":"m","messages":[{"role":"user","content":"x","tool_calls":[{"function":{"name":"f"}}]}]})"),
      "messages[0].tool_calls", "assistant");
  expect_invalid(
      parse_chat_request(
          R"({"model":"m","messages":[{"role":"assistant","content":"x","tool_calls":[{"function":{}}]}]})"),
      "messages[0].tool_calls[0].function.name");
  expect_invalid(
      parse_chat_request(
          R"({"model":"m","messages":[{"role":"assistant","content":"x","tool_calls":[{"function":{"name":"f","arguments":3}}]}]})"),
      "messages[0].tool_calls[0].function.arguments");
}

TEST(TokenizeParseTest, PromptAndMessages) {
  auto p = parse_tokenize_request(R"({"prompt":"hello"})");
  ASSERT_TRUE(p.has_value());
  EXPECT_FALSE(p->is_chat);
  EXPECT_EQ(p->prompt, "hello");
  EXPECT_TRUE(p->add_special_tokens);
  auto c = parse_tokenize_request(
      R"({"model":"m","messages":[{"role":"user","content":"x"}],"add_generation_prompt":false})");
  ASSERT_TRUE(c.has_value());
  EXPECT_TRUE(c->is_chat);
  EXPECT_EQ(c->model, "m");
  EXPECT_FALSE(c->add_special_tokens);
  EXPECT_FALSE(c->add_generation_prompt);
  auto t = parse_tokenize_request(
      R"({"messages":[{"role":"user","content":"x"}],"chat_template":"t","tools":[{"type":"function",)"
      R"("function":{"name":"f"}}],"chat_template_kwargs":{"k":1}})");
  ASSERT_TRUE(t.has_value()) << t.status().to_string();
  EXPECT_EQ(t->template_fields.chat_template, "t");
  EXPECT_EQ(t->template_fields.tools_json, R"([{"type":"function","function":{"name":"f"}}])");
  EXPECT_EQ(t->template_fields.kwargs_json, R"({"k":1})");
  expect_invalid(
      parse_tokenize_request(R"({"messages":[{"role":"user","content":"x"}],"tools":3})"), "tools");
  expect_invalid(parse_tokenize_request(R"({"model":"m"})"), "prompt", "required");
  expect_invalid(parse_tokenize_request(R"({"prompt":[1]})"), "prompt");
  expect_invalid(parse_tokenize_request(R"({"prompt":"x","add_special_tokens":"no"})"),
                 "add_special_tokens");

  auto d = parse_detokenize_request(R"({"model":"m","tokens":[1,2,3.0]})");
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->tokens, (std::vector<int32_t>{1, 2, 3}));
  expect_invalid(parse_detokenize_request(R"({"model":"m"})"), "tokens", "required");
  expect_invalid(parse_detokenize_request(R"({"tokens":[1,2147483648]})"), "tokens");
}

// ---------------------------------------------------------------------------------------------

const ResponseMeta kMeta{"cmpl-abc", 1700000000, "my-model"};

TEST(ResponseTest, CompletionUnary) {
  std::vector<TokenLogprob> lps = {{"Hel", -0.5f, {{"Hel", -0.5f}, {"He", -1.25f}}},
                                   {"lo", -0.25f, {{"lo", -0.25f}}}};
  CompletionChoice c0{.index = 0,
                      .text = "Hello",
                      .finish_reason = FinishReason::kLength,
                      .logprobs = lps,
                      .has_logprobs = true,
                      .text_offset_start = 3};
  CompletionChoice c1{.index = 1, .text = "x\"y", .finish_reason = FinishReason::kStop};
  std::vector<CompletionChoice> choices = {c0, c1};
  const json::value v = json::parse(completion_response(kMeta, choices, {5, 2, std::nullopt}));
  EXPECT_EQ(v.at("id").as_string(), "cmpl-abc");
  EXPECT_EQ(v.at("object").as_string(), "text_completion");
  EXPECT_EQ(v.at("created").as_int64(), 1700000000);
  EXPECT_EQ(v.at("model").as_string(), "my-model");
  const json::array& ch = v.at("choices").as_array();
  ASSERT_EQ(ch.size(), 2u);
  EXPECT_EQ(ch[0].at("index").as_int64(), 0);
  EXPECT_EQ(ch[0].at("text").as_string(), "Hello");
  EXPECT_EQ(ch[0].at("finish_reason").as_string(), "length");
  const json::object& lp = ch[0].at("logprobs").as_object();
  EXPECT_EQ(lp.at("tokens").as_array(), (json::array{"Hel", "lo"}));
  EXPECT_DOUBLE_EQ(lp.at("token_logprobs").as_array()[1].as_double(), -0.25);
  EXPECT_DOUBLE_EQ(lp.at("top_logprobs").as_array()[0].at("He").as_double(), -1.25);
  EXPECT_EQ(lp.at("text_offset").as_array(), (json::array{3, 6}));
  EXPECT_EQ(ch[1].at("text").as_string(), "x\"y");
  EXPECT_TRUE(ch[1].at("logprobs").is_null());
  EXPECT_EQ(ch[1].at("finish_reason").as_string(), "stop");
  EXPECT_EQ(v.at("usage").at("prompt_tokens").as_int64(), 5);
  EXPECT_EQ(v.at("usage").at("completion_tokens").as_int64(), 2);
  EXPECT_EQ(v.at("usage").at("total_tokens").as_int64(), 7);
}

TEST(ResponseTest, CompletionChunks) {
  const json::value v = json::parse(completion_chunk(kMeta, {.index = 2, .text = "tok"}));
  EXPECT_EQ(v.at("object").as_string(), "text_completion");
  EXPECT_EQ(v.at("choices").at(0).at("index").as_int64(), 2);
  EXPECT_EQ(v.at("choices").at(0).at("text").as_string(), "tok");
  EXPECT_TRUE(v.at("choices").at(0).at("finish_reason").is_null());
  EXPECT_EQ(v.as_object().count("usage"), 0u);
  const json::value u = json::parse(completion_usage_chunk(kMeta, {3, 4, std::nullopt}));
  EXPECT_TRUE(u.at("choices").as_array().empty());
  EXPECT_EQ(u.at("usage").at("total_tokens").as_int64(), 7);
}

TEST(OpenAiResponses, UsageReportsCachedPromptTokensWhenSet) {
  const json::value with = json::parse(completion_usage_chunk(kMeta, {30, 4, 16}));
  EXPECT_EQ(with.at("usage").at("prompt_tokens_details").at("cached_tokens").as_int64(), 16);
  EXPECT_EQ(with.at("usage").at("total_tokens").as_int64(), 34);
  const json::value without = json::parse(completion_usage_chunk(kMeta, {30, 4, std::nullopt}));
  EXPECT_EQ(without.at("usage").as_object().count("prompt_tokens_details"), 0u);
}

TEST(ResponseTest, ChatUnaryWithLogprobs) {
  std::vector<TokenLogprob> lps = {{"\xC3", -0.125f, {{"\xC3", -0.125f}, {"a", -3.0f}}}};
  ChatChoice c{.index = 0,
               .content = "h\xC3\xA9",
               .finish_reason = FinishReason::kStop,
               .logprobs = lps,
               .has_logprobs = true};
  const json::value v =
      json::parse(chat_response({"chatcmpl-1", 1, "m"}, {&c, 1}, {1, 1, std::nullopt}));
  EXPECT_EQ(v.at("object").as_string(), "chat.completion");
  const json::object& ch = v.at("choices").at(0).as_object();
  EXPECT_EQ(ch.at("message").at("role").as_string(), "assistant");
  EXPECT_EQ(ch.at("message").at("content").as_string(), "h\xC3\xA9");
  EXPECT_EQ(ch.at("finish_reason").as_string(), "stop");
  const json::object& t = ch.at("logprobs").at("content").at(0).as_object();
  EXPECT_EQ(t.at("token").as_string(), "\xEF\xBF\xBD");      // partial UTF-8 made valid
  EXPECT_EQ(t.at("bytes").as_array(), (json::array{0xC3}));  // raw bytes kept
  EXPECT_DOUBLE_EQ(t.at("logprob").as_double(), -0.125);
  EXPECT_EQ(t.at("top_logprobs").as_array().size(), 2u);
  EXPECT_EQ(t.at("top_logprobs").at(1).at("token").as_string(), "a");
  EXPECT_EQ(t.at("top_logprobs").at(1).at("bytes").as_array(), (json::array{97}));
  EXPECT_EQ(v.at("usage").at("total_tokens").as_int64(), 2);
}

TEST(ResponseTest, ChatChunks) {
  const ResponseMeta meta{"chatcmpl-1", 1, "m"};
  const json::value role = json::parse(chat_role_chunk(meta, 0));
  EXPECT_EQ(role.at("object").as_string(), "chat.completion.chunk");
  EXPECT_EQ(role.at("choices").at(0).at("delta").at("role").as_string(), "assistant");
  EXPECT_EQ(role.at("choices").at(0).at("delta").at("content").as_string(), "");
  EXPECT_TRUE(role.at("choices").at(0).at("finish_reason").is_null());

  const json::value content = json::parse(chat_chunk(meta, {.index = 0, .content = "Hi"}));
  EXPECT_EQ(content.at("choices").at(0).at("delta").at("content").as_string(), "Hi");
  EXPECT_EQ(content.at("choices").at(0).at("delta").as_object().count("role"), 0u);
  EXPECT_TRUE(content.at("choices").at(0).at("finish_reason").is_null());

  const json::value last =
      json::parse(chat_chunk(meta, {.index = 0, .finish_reason = FinishReason::kLength}));
  EXPECT_TRUE(last.at("choices").at(0).at("delta").as_object().empty());
  EXPECT_EQ(last.at("choices").at(0).at("finish_reason").as_string(), "length");

  const json::value usage = json::parse(chat_usage_chunk(meta, {2, 3, std::nullopt}));
  EXPECT_TRUE(usage.at("choices").as_array().empty());
  EXPECT_EQ(usage.at("usage").at("completion_tokens").as_int64(), 3);
}

TEST(ResponseTest, ModelsTokenizeSse) {
  std::vector<ModelCard> models = {{"a", 10, 4096}, {"b", 11, 8192, "me"}};
  const json::value v = json::parse(models_response(models));
  EXPECT_EQ(v.at("object").as_string(), "list");
  ASSERT_EQ(v.at("data").as_array().size(), 2u);
  const json::object& m = v.at("data").at(0).as_object();
  EXPECT_EQ(m.at("id").as_string(), "a");
  EXPECT_EQ(m.at("object").as_string(), "model");
  EXPECT_EQ(m.at("created").as_int64(), 10);
  EXPECT_EQ(m.at("owned_by").as_string(), "turbine");
  EXPECT_EQ(m.at("max_model_len").as_int64(), 4096);
  EXPECT_EQ(json::parse(model_response(models[1])).at("owned_by").as_string(), "me");

  const std::vector<int32_t> tokens = {5, 6};
  const json::value t = json::parse(tokenize_response(tokens, 2048));
  EXPECT_EQ(t.at("count").as_int64(), 2);
  EXPECT_EQ(t.at("max_model_len").as_int64(), 2048);
  EXPECT_EQ(t.at("tokens").as_array(), (json::array{5, 6}));
  EXPECT_EQ(json::parse(detokenize_response("a\nb")).at("prompt").as_string(), "a\nb");

  EXPECT_EQ(sse_event("{}"), "data: {}\n\n");
  EXPECT_EQ(kSseDone, "data: [DONE]\n\n");
  const std::string id = make_request_id("cmpl");
  EXPECT_EQ(id.size(), 5u + 32u);
  EXPECT_EQ(id.rfind("cmpl-", 0), 0u);
  EXPECT_NE(id, make_request_id("cmpl"));
}

}  // namespace
}  // namespace turbine::api

namespace turbine::api {
namespace {

TEST(ChoiceFieldsTest, NBestOfAndLogitBias) {
  auto c = parse_completion_request(
      R"({"model":"m","prompt":"x","n":3,"best_of":5,"logit_bias":{"17":-100,"3":2.5,"9":null}})");
  ASSERT_TRUE(c.has_value()) << c.status().to_string();
  EXPECT_EQ(c->sampling.n, 3);
  EXPECT_EQ(c->sampling.best_of, 5);
  const std::vector<std::pair<int32_t, float>> bias = {{3, 2.5f}, {17, -100.0f}};
  EXPECT_EQ(c->sampling.logit_bias, bias);  // sorted by id; null entries dropped
  auto s = parse_completion_request(R"({"model":"m","prompt":"x","n":2,"stream":true})");
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->sampling.best_of, 2);  // best_of defaults to n
  auto ch = parse_chat_request(
      R"({"model":"m","messages":[{"role":"user","content":"hi"}],"n":16,"logit_bias":{}})");
  ASSERT_TRUE(ch.has_value()) << ch.status().to_string();
  EXPECT_EQ(ch->sampling.n, 16);
  EXPECT_TRUE(ch->sampling.logit_bias.empty());
}

TEST(ChoiceFieldsTest, ChatToolFieldsFillTheExtras) {
  const std::string tools =
      R"("tools":[{"type":"function","function":{"name":"get_weather","description":"d",)"
      R"("parameters":{"type":"object","properties":{"city":{"type":"string"}}}}},)"
      R"({"type":"function","function":{"name":"noop"}}])";
  auto req = [&](const std::string& extra) {
    return parse_chat_request(R"({"model":"m","messages":[{"role":"user","content":"hi"}],)" +
                              tools + extra + "}");
  };
  auto a = req("");
  ASSERT_TRUE(a.has_value()) << a.status().to_string();
  ASSERT_EQ(a->extras.tools.size(), 2u);
  EXPECT_EQ(a->extras.tools[0].name, "get_weather");
  EXPECT_EQ(a->extras.tools[0].parameters_json,
            R"({"type":"object","properties":{"city":{"type":"string"}}})");
  EXPECT_EQ(a->extras.tool_choice.mode, ToolChoice::Mode::kAuto);
  EXPECT_TRUE(a->extras.parallel_tool_calls);
  auto r = req(R"(,"tool_choice":"required","parallel_tool_calls":false)");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->extras.tool_choice.mode, ToolChoice::Mode::kRequired);
  EXPECT_FALSE(r->extras.parallel_tool_calls);
  auto f = req(R"(,"tool_choice":{"type":"function","function":{"name":"noop"}})");
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->extras.tool_choice.mode, ToolChoice::Mode::kFunction);
  EXPECT_EQ(f->extras.tool_choice.function, "noop");
  auto n = req(R"(,"tool_choice":"none","reasoning_effort":"high")");
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(n->extras.tool_choice.mode, ToolChoice::Mode::kNone);
  EXPECT_EQ(n->extras.reasoning_effort, "high");
  expect_invalid(req(R"(,"tool_choice":{"type":"function","function":{"name":"other"}})"),
                 "tool_choice", "'other', which is not in tools");
  // Without tools the default is "none".
  auto plain = parse_chat_request(R"({"model":"m","messages":[{"role":"user","content":"hi"}]})");
  ASSERT_TRUE(plain.has_value());
  EXPECT_EQ(plain->extras.tool_choice.mode, ToolChoice::Mode::kNone);
}

// Echo with prompt logprobs (issue 18 item 4): max_tokens 0 only with echo, and the echoed first
// token's logprob and alternatives are null.
TEST(CompletionParseTest, MaxTokensZeroOnlyWithEcho) {
  auto ok = completion(R"(,"echo":true,"max_tokens":0,"logprobs":1)");
  ASSERT_TRUE(ok.has_value()) << ok.status().to_string();
  EXPECT_EQ(ok->sampling.max_tokens, 0);
  EXPECT_TRUE(ok->sampling.echo);
  // Field order does not matter.
  EXPECT_TRUE(completion(R"(,"max_tokens":0,"echo":true)").has_value());
  expect_invalid(completion(R"(,"max_tokens":0)"), "max_tokens", "allowed with echo");
  expect_invalid(completion(R"(,"max_tokens":0,"echo":false)"), "max_tokens");
  expect_invalid(completion(R"(,"max_tokens":-1,"echo":true)"), "max_tokens");
  expect_invalid(chat(R"(,"max_tokens":0)"), "max_tokens");
}

TEST(ResponseTest, EchoedPromptLogprobsStartWithNull) {
  std::vector<TokenLogprob> lps = {{"<s>", 0.0f, {}, true},
                                   {"Hi", -2.5f, {{"He", -1.0f}}},
                                   {" there", -0.5f, {{" there", -0.5f}}}};
  CompletionChoice c{.index = 0,
                     .text = "Hi there",
                     .finish_reason = FinishReason::kLength,
                     .logprobs = lps,
                     .has_logprobs = true};
  const json::value v = json::parse(completion_response(kMeta, {&c, 1}, {3, 0, std::nullopt}));
  const json::object& lp = v.at("choices").at(0).at("logprobs").as_object();
  const json::array& tl = lp.at("token_logprobs").as_array();
  ASSERT_EQ(tl.size(), 3u);
  EXPECT_TRUE(tl[0].is_null());
  EXPECT_DOUBLE_EQ(tl[1].to_number<double>(), -2.5);
  const json::array& top = lp.at("top_logprobs").as_array();
  EXPECT_TRUE(top[0].is_null());
  EXPECT_DOUBLE_EQ(top[1].at("He").to_number<double>(), -1.0);
  const json::array& off = lp.at("text_offset").as_array();
  EXPECT_EQ(off[0].as_int64(), 0);
  EXPECT_EQ(off[1].as_int64(), 3);
  EXPECT_EQ(off[2].as_int64(), 5);
  EXPECT_EQ(lp.at("tokens").at(2).as_string(), " there");
}

}  // namespace
}  // namespace turbine::api
