// Regex front end: what matches and what does not (full match and JSON Schema search mode), and
// the syntax errors. Matching runs through the real Matcher over a byte vocabulary.
#include <gtest/gtest.h>

#include "structured/regex.h"
#include "test_util.h"

namespace turbine::structured {
namespace {

using test_util::byte_vocab;
using test_util::compile_or_die;
using test_util::full_match;

std::shared_ptr<const CompiledGrammar> re(const std::string& pattern) {
  return compile_or_die(regex_to_grammar(pattern, CompileLimits{}), byte_vocab());
}

TEST(RegexTest, LiteralsClassesAndQuantifiers) {
  auto g = re("ab[0-9]{2,3}c?");
  ASSERT_NE(g, nullptr);
  EXPECT_TRUE(full_match(g, "ab12"));
  EXPECT_TRUE(full_match(g, "ab123c"));
  EXPECT_FALSE(full_match(g, "ab1"));
  EXPECT_FALSE(full_match(g, "ab1234"));
  EXPECT_FALSE(full_match(g, "xab12"));
}

TEST(RegexTest, AlternationGroupsAndEscapes) {
  auto g = re(R"(^(?:cat|dog)s?\.\d+$)");
  ASSERT_NE(g, nullptr);
  EXPECT_TRUE(full_match(g, "cats.1"));
  EXPECT_TRUE(full_match(g, "dog.42"));
  EXPECT_FALSE(full_match(g, "cow.1"));
  EXPECT_FALSE(full_match(g, "cat1"));
  auto w = re(R"(\w+\s\W)");
  ASSERT_NE(w, nullptr);
  EXPECT_TRUE(full_match(w, "a_9 !"));
  EXPECT_FALSE(full_match(w, "a_9 b"));
}

TEST(RegexTest, UnicodeClassesMatchWholeCharacters) {
  auto g = re("[à-ÿ]+é");
  ASSERT_NE(g, nullptr);
  EXPECT_TRUE(full_match(g, "àÿé"));
  EXPECT_FALSE(full_match(g, "aé"));
  auto dot = re("a.b");
  ASSERT_NE(dot, nullptr);
  EXPECT_TRUE(full_match(dot,
                         "a\xE2\x82\xAC"
                         "b"));  // U+20AC
  EXPECT_FALSE(full_match(dot, "a\nb"));
  EXPECT_FALSE(full_match(dot,
                          "a\xE2\x82"
                          "b"));  // a truncated character
  auto neg = re("[^a]");
  ASSERT_NE(neg, nullptr);
  EXPECT_TRUE(full_match(neg, "\xF0\x9F\x98\x80"));
  EXPECT_FALSE(full_match(neg, "a"));
}

TEST(RegexTest, CountedRepetition) {
  auto g = re("x{3}y{2,}z{0,1}");
  ASSERT_NE(g, nullptr);
  EXPECT_TRUE(full_match(g, "xxxyy"));
  EXPECT_TRUE(full_match(g, "xxxyyyyyz"));
  EXPECT_FALSE(full_match(g, "xxyy"));
  EXPECT_FALSE(full_match(g, "xxxy"));
}

TEST(RegexTest, SyntaxErrorsAreInvalidArgument) {
  for (const char* bad :
       {"(a", "a)", "[a-", "[z-a]", "*a", "a**", "a{3,2}", R"(\1)", "(?=a)", "(?<!a)b", R"(\bword)",
        "a^b", "a$b", R"(\p{L})", "(?i)a", "[]", R"(\q)", "a++", "a{99999}"}) {
    auto g = regex_to_grammar(bad, CompileLimits{});
    ASSERT_FALSE(g.has_value()) << bad;
    EXPECT_EQ(g.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(g.status().message().find("regex"), std::string::npos) << g.status().message();
  }
}

}  // namespace
}  // namespace turbine::structured
