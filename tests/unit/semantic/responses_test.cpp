#include "semantic/responses.h"

#include <gtest/gtest.h>

#include "semantic/text.h"

namespace turbine::semantic {
namespace {

std::string header_value(const ImmediateResponse& r, const std::string& name) {
  for (const Header& h : r.headers) {
    if (h.name == name) return h.value;
  }
  return "<absent>";
}

// The contract's bodies, byte for byte (legacy vLLM Semantic Router; the stream chunk is a Go
// map, marshalled with sorted keys).
TEST(BlockResponses, PiiUnaryIsByteExact) {
  auto r = pii_block_response("qwen3-8b", {"B-US_SSN"}, false, 1700000000);
  EXPECT_EQ(r.http_status, 200);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(
      r.body,
      R"({"id":"chatcmpl-pii-violation-1700000000","object":"chat.completion","created":1700000000,)"
      R"("model":"qwen3-8b","choices":[{"index":0,"message":{"role":"assistant","content":"I )"
      R"(cannot process this request as it contains personally identifiable information )"
      R"(([B-US_SSN]) that is not allowed for the 'qwen3-8b' model according to the configured )"
      R"(privacy policy. Please remove any sensitive information and try again."},)"
      R"("finish_reason":"content_filter"}],"usage":{"prompt_tokens":0,"completion_tokens":0,)"
      R"("total_tokens":0}})");
  EXPECT_EQ(header_value(r, "content-type"), "application/json");
  EXPECT_EQ(header_value(r, "x-vsr-pii-violation"), "true");
  EXPECT_EQ(header_value(r, "x-vsr-pii-types"), "B-US_SSN");
}

TEST(BlockResponses, PiiSeveralTypes) {
  auto r = pii_block_response("m", {"B-US_SSN", "B-EMAIL_ADDRESS"}, false, 1);
  EXPECT_NE(r.body.find("information ([B-US_SSN B-EMAIL_ADDRESS]) that"), std::string::npos);
  EXPECT_EQ(header_value(r, "x-vsr-pii-types"), "B-US_SSN,B-EMAIL_ADDRESS");
}

TEST(BlockResponses, PiiStreamIsOneChunkAndDone) {
  auto r = pii_block_response("qwen3-8b", {"B-US_SSN"}, true, 1700000000);
  EXPECT_EQ(r.content_type, "text/event-stream");
  ASSERT_EQ(r.frames.size(), 2u);
  EXPECT_EQ(
      r.frames[0],
      R"(data: {"choices":[{"delta":{"content":"I cannot process this request as it contains )"
      R"(personally identifiable information ([B-US_SSN]) that is not allowed for the )"
      R"('qwen3-8b' model according to the configured privacy policy. Please remove any )"
      R"(sensitive information and try again.","role":"assistant"},"finish_reason":)"
      R"("content_filter","index":0}],"created":1700000000,"id":)"
      R"("chatcmpl-pii-violation-1700000000","model":"qwen3-8b","object":"chat.completion.chunk"})"
      "\n\n");
  EXPECT_EQ(r.frames[1], "data: [DONE]\n\n");
  EXPECT_EQ(r.body, r.frames[0] + r.frames[1]);
}

TEST(BlockResponses, JailbreakUnaryAndStream) {
  auto r = jailbreak_block_response("jailbreak", 0.9234f, false, 42);
  EXPECT_EQ(
      r.body,
      R"({"id":"chatcmpl-jailbreak-blocked-42","object":"chat.completion","created":42,)"
      R"("model":"security-filter","choices":[{"index":0,"message":{"role":"assistant",)"
      R"("content":"I cannot process this request as it appears to contain a potential )"
      R"(jailbreak attempt (type: jailbreak, confidence: 0.923). Please rephrase your request )"
      R"(in a way that complies with our usage policies."},"finish_reason":"content_filter"}],)"
      R"("usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}})");
  EXPECT_EQ(header_value(r, "x-vsr-jailbreak-blocked"), "true");
  EXPECT_EQ(header_value(r, "x-vsr-jailbreak-type"), "jailbreak");
  EXPECT_EQ(header_value(r, "x-vsr-jailbreak-confidence"), "0.923");
  auto s = jailbreak_block_response("jailbreak", 0.9234f, true, 42);
  ASSERT_EQ(s.frames.size(), 2u);
  EXPECT_EQ(s.frames[0].rfind(R"(data: {"choices":[{"delta":{"content":"I cannot)", 0), 0u);
  EXPECT_NE(s.frames[0].find(R"("id":"chatcmpl-jailbreak-blocked-42","model":"security-filter",)"
                             R"("object":"chat.completion.chunk"})"),
            std::string::npos);
}

TEST(GoJson, EscapesLikeEncodingJson) {
  EXPECT_EQ(go_json_string("a\"b\\c\n\t\r"), R"("a\"b\\c\n\t\r")");
  EXPECT_EQ(go_json_string("<b>&"), R"("\u003cb\u003e\u0026")");
  EXPECT_EQ(go_json_string(std::string("\x01", 1)), R"("\u0001")");
  EXPECT_EQ(go_json_string("\xe2\x80\xa8"), R"("\u2028")");
  EXPECT_EQ(go_json_string("caf\xc3\xa9"), "\"caf\xc3\xa9\"");
  EXPECT_EQ(go_json_string("bad\xff"), R"("bad\ufffd")");
}

TEST(CacheReplay, UnaryLooksLive) {
  CachedResponse c{"llama", "Paris is the capital.", "stop", 12, 5};
  auto r = cache_replay_response(c, Endpoint::kChat, false, false, "chatcmpl-abc", 100);
  EXPECT_EQ(r.body,
            R"({"id":"chatcmpl-abc","object":"chat.completion","created":100,"model":"llama",)"
            R"("choices":[{"index":0,"message":{"role":"assistant","content":"Paris is the )"
            R"(capital."},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":12,)"
            R"("completion_tokens":5,"total_tokens":17}})");
  auto t = cache_replay_response(c, Endpoint::kCompletions, false, false, "cmpl-abc", 100);
  EXPECT_NE(t.body.find(R"("object":"text_completion")"), std::string::npos);
  EXPECT_NE(t.body.find(R"("text":"Paris is the capital.")"), std::string::npos);
}

TEST(CacheReplay, StreamHasRoleContentFinishUsageDone) {
  CachedResponse c{"llama", "Paris is big.", "stop", 12, 5};
  auto r = cache_replay_response(c, Endpoint::kChat, true, true, "chatcmpl-abc", 100);
  ASSERT_EQ(r.frames.size(), 7u);  // role, 3 words, finish, usage, [DONE]
  EXPECT_NE(r.frames[0].find(R"("delta":{"role":"assistant","content":""})"), std::string::npos);
  std::string text;
  for (size_t i = 1; i <= 3; ++i) {
    size_t p = r.frames[i].find(R"("content":")");
    ASSERT_NE(p, std::string::npos);
    size_t e = r.frames[i].find('"', p + 11);
    text += r.frames[i].substr(p + 11, e - p - 11);
  }
  EXPECT_EQ(text, "Paris is big.");
  EXPECT_NE(r.frames[4].find(R"("delta":{},"logprobs":null,"finish_reason":"stop")"),
            std::string::npos);
  EXPECT_NE(r.frames[5].find(R"("choices":[],"usage":{"prompt_tokens":12)"), std::string::npos);
  EXPECT_EQ(r.frames[6], "data: [DONE]\n\n");
}

}  // namespace
}  // namespace turbine::semantic
