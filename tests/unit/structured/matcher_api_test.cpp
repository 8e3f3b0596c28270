// Matcher semantics on small hand-made vocabularies: stop tokens only where the output is
// complete, excluded (special) tokens never, tokens that span terminals, UTF-8 characters split
// across tokens, replay, rollback, reset, termination, padded masks.
#include <gtest/gtest.h>

#include "structured/ebnf.h"
#include "structured/json_schema.h"
#include "structured/regex.h"
#include "test_util.h"

namespace turbine::structured {
namespace {

using test_util::allowed_ids;
using test_util::byte_vocab;
using test_util::compile_or_die;
using test_util::mask_disagreements;

// Token id of a single byte in byte_vocab().
int32_t byte_id(char c) {
  return 1 + static_cast<uint8_t>(c);
}

std::vector<int32_t> mask_of(Matcher& m) {
  std::vector<uint32_t> words(m.mask_words());
  m.fill_next_token_bitmask(words.data());
  return allowed_ids(words, static_cast<int32_t>(words.size() * 32));
}

TEST(MatcherTest, StopOnlyWhereComplete) {
  auto g = compile_or_die(regex_to_grammar("ab?", CompileLimits{}), byte_vocab());
  ASSERT_NE(g, nullptr);
  Matcher m(g);
  EXPECT_EQ(mask_of(m), std::vector<int32_t>{byte_id('a')});
  EXPECT_FALSE(m.can_terminate());
  EXPECT_FALSE(m.accept_token(0));
  ASSERT_TRUE(m.accept_token(byte_id('a')));
  EXPECT_TRUE(m.can_terminate());
  EXPECT_EQ(mask_of(m), (std::vector<int32_t>{0, byte_id('b')}));
  ASSERT_TRUE(m.accept_token(byte_id('b')));
  EXPECT_TRUE(m.is_terminated());  // only the stop token can follow
  EXPECT_EQ(mask_of(m), std::vector<int32_t>{0});
  ASSERT_TRUE(m.accept_token(0));
  EXPECT_TRUE(m.is_terminated());
  EXPECT_FALSE(m.can_terminate());
  EXPECT_FALSE(m.accept_token(byte_id('b')));
  EXPECT_EQ(mask_of(m), std::vector<int32_t>{0});  // after the end: only stop ids
}

TEST(MatcherTest, ExcludedTokensAreNeverAllowed) {
  // Id 1 is "a" but excluded (a special token whose text happens to be plain bytes).
  auto v = Vocabulary::from_tokens({"", "a", "a", "<|x|>"}, {0, 1, 0, 1}, {0});
  ASSERT_TRUE(v.has_value());
  auto g = compile_or_die(regex_to_grammar("a|<\\|x\\|>", CompileLimits{}), *v);
  ASSERT_NE(g, nullptr);
  Matcher m(g);
  EXPECT_EQ(mask_of(m), std::vector<int32_t>{2});
  EXPECT_FALSE(m.accept_token(1));
  EXPECT_FALSE(m.accept_token(3));
  EXPECT_FALSE(m.accept_token(99));
  EXPECT_FALSE(m.accept_token(-1));
}

TEST(MatcherTest, TokensSpanningTerminalsAndRules) {
  auto v = byte_vocab({"{\"", "\":", "\":\"", "\",\"", "\"}", "\"},{\"", "12,", "true}", "]}",
                       "\\\"", "\\u00", "ab\"", "a\\"});
  const char* schema = R"({"type":"array","items":{"type":"object","properties":{
      "k":{"type":"string"},"n":{"type":"integer"},"b":{"type":"boolean"}},"required":["k"]}})";
  JsonGrammarOptions compact;
  compact.whitespace = JsonGrammarOptions::Whitespace::kCompact;
  auto g = compile_or_die(json_schema_to_grammar(schema, compact, CompileLimits{}), v);
  ASSERT_NE(g, nullptr);
  Matcher m(g);
  // [{"k":"ab\"\u00e9","n":12,"b":true},{"k":""}]
  const std::vector<std::string> pieces = {
      "[",   "{\"", "k",  "\":\"", "a",   "b",     "\\\"", "\\u00", "e", "9",     "\",\"", "n",
      "\":", "12,", "\"", "b",     "\":", "true}", ",",    "{\"",   "k", "\":\"", "\"}",   "]"};
  for (const std::string& p : pieces) {
    int32_t id = -1;
    for (int32_t t = 0; t < v->size(); ++t) {
      if (v->bytes(t) == p) id = t;
    }
    ASSERT_GE(id, 0) << p;
    std::string first;
    ASSERT_EQ(mask_disagreements(m, *v, &first), 0u) << "before '" << p << "': " << first;
    ASSERT_TRUE(m.accept_token(id)) << p;
  }
  EXPECT_TRUE(m.can_terminate());
}

TEST(MatcherTest, Utf8SplitAcrossTokens) {
  // é = C3 A9, 😀 = F0 9F 98 80; the byte vocabulary has only single bytes.
  auto g = compile_or_die(regex_to_grammar("[é😀]+", CompileLimits{}), byte_vocab());
  ASSERT_NE(g, nullptr);
  Matcher m(g);
  EXPECT_EQ(mask_of(m), (std::vector<int32_t>{1 + 0xC3, 1 + 0xF0}));
  ASSERT_TRUE(m.accept_token(1 + 0xF0));
  EXPECT_EQ(mask_of(m), std::vector<int32_t>{1 + 0x9F});
  EXPECT_FALSE(m.can_terminate());
  for (int b : {0x9F, 0x98, 0x80}) ASSERT_TRUE(m.accept_token(1 + b));
  EXPECT_TRUE(m.can_terminate());
  ASSERT_TRUE(m.accept_token(1 + 0xC3));
  EXPECT_EQ(mask_of(m), std::vector<int32_t>{1 + 0xA9});
}

TEST(MatcherTest, ReplayRollbackReset) {
  auto g = compile_or_die(regex_to_grammar("abc(de)*", CompileLimits{}), byte_vocab());
  ASSERT_NE(g, nullptr);
  Matcher m(g);
  const std::vector<int32_t> ok = {byte_id('a'), byte_id('b'), byte_id('c'), byte_id('d')};
  EXPECT_TRUE(m.accept_tokens(ok).is_ok());
  EXPECT_EQ(m.num_accepted(), 4u);
  EXPECT_FALSE(m.can_terminate());
  EXPECT_EQ(m.min_completion_bytes(), 1);
  ASSERT_TRUE(m.rollback(1));
  EXPECT_TRUE(m.can_terminate());
  EXPECT_FALSE(m.rollback(4));
  m.reset();
  EXPECT_EQ(m.num_accepted(), 0u);
  const std::vector<int32_t> bad = {byte_id('a'), byte_id('b'), byte_id('x')};
  const Status s = m.accept_tokens(bad);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("position 2"), std::string::npos) << s.message();
  EXPECT_EQ(m.num_accepted(), 2u);  // the matching prefix stays accepted
  EXPECT_EQ(m.min_completion_bytes(), 1);
}

TEST(MatcherTest, CompletionBytesFinishTheOutput) {
  auto g = compile_or_die(
      ebnf_to_grammar("root ::= \"{\" item (\",\" item)* \"}\"\nitem ::= [a-z]+ \"=\" [0-9]{2}",
                      CompileLimits{}),
      byte_vocab());
  ASSERT_NE(g, nullptr);
  Matcher m(g);
  ASSERT_TRUE(m.accept_bytes("{ab=1"));
  EXPECT_EQ(m.min_completion_bytes(), 2);
  const std::string c = m.completion_bytes(100);
  EXPECT_EQ(c.size(), 2u);
  EXPECT_TRUE(m.accept_bytes(c));
  EXPECT_TRUE(m.can_terminate());
  EXPECT_EQ(m.completion_bytes(100), "");
  m.reset();
  EXPECT_EQ(m.completion_bytes(3).size(), 3u);  // cut at max_bytes
  const std::string full = m.completion_bytes(100);
  EXPECT_EQ(static_cast<int64_t>(full.size()), m.min_completion_bytes());
  EXPECT_TRUE(test_util::full_match(g, full)) << full;
}

TEST(MatcherTest, PaddedMaskSize) {
  std::vector<std::string> toks = {"", "a", "b"};
  auto v = Vocabulary::from_tokens(toks, {}, {0}, /*mask_size=*/70);
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ((*v)->mask_words(), 3u);
  auto g = compile_or_die(regex_to_grammar("[ab]*", CompileLimits{}), *v);
  ASSERT_NE(g, nullptr);
  Matcher m(g);
  std::vector<uint32_t> words(3, 0xFFFFFFFFu);
  m.fill_next_token_bitmask(words.data());
  EXPECT_EQ(words[0], 0b111u);
  EXPECT_EQ(words[1], 0u);
  EXPECT_EQ(words[2], 0u);
  EXPECT_FALSE(Vocabulary::from_tokens(toks, {}, {0}, 2).has_value());
  EXPECT_FALSE(Vocabulary::from_tokens(toks, {}, {7}).has_value());
}

TEST(MatcherTest, AmbiguousGrammarsKeepEveryParse) {
  // "a" can end `x` or start `y`: both continuations must stay allowed.
  auto g = compile_or_die(
      ebnf_to_grammar("root ::= x y\nx ::= \"a\"+\ny ::= \"a\" \"b\" | \"c\"", CompileLimits{}),
      byte_vocab({"aab", "ac", "aaa"}));
  ASSERT_NE(g, nullptr);
  Matcher m(g);
  std::string first;
  EXPECT_EQ(mask_disagreements(m, g->vocab(), &first), 0u) << first;
  ASSERT_TRUE(m.accept_token(byte_id('a')));
  EXPECT_EQ(mask_disagreements(m, g->vocab(), &first), 0u) << first;
  ASSERT_TRUE(m.accept_token(257));  // "aab"
  EXPECT_TRUE(m.can_terminate());
}

}  // namespace
}  // namespace turbine::structured
