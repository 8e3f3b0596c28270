// Regex front end: what matches and what does not (full match and JSON Schema search mode), and
// the syntax errors. Matching runs through the real Matcher over a byte vocabulary.
#include <gtest/gtest.h>

#include "structured/regex.h"
#include "test_util.h"

namespace turbine::structured {
namespace {

using test_util::byte_vocab;
using test_util::compile_or_die;
using test_util::expect_full_matches;

std::shared_ptr<const CompiledGrammar> re(const std::string& pattern) {
  return compile_or_die(regex_to_grammar(pattern, CompileLimits{}), byte_vocab());
}

TEST(RegexTest, LiteralsClassesAndQuantifiers) {
  expect_full_matches(re("ab[0-9]{2,3}c?"), {"ab12", "ab123c"}, {"ab1", "ab1234", "xab12"});
}

TEST(RegexTest, AlternationGroupsAndEscapes) {
  expect_full_matches(re(R"(^(?:cat|dog)s?\.\d+$)"), {"cats.1", "dog.42"}, {"cow.1", "cat1"});
  expect_full_matches(re(R"(\w+\s\W)"), {"a_9 !"}, {"a_9 b"});
}

TEST(RegexTest, UnicodeClassesMatchWholeCharacters) {
  expect_full_matches(re("[à-ÿ]+é"), {"àÿé"}, {"aé"});
  expect_full_matches(re("a.b"),
                      {"a\xE2\x82\xAC"
                       "b"},  // U+20AC
                      {"a\nb",
                       "a\xE2\x82"
                       "b"});  // a truncated character
  expect_full_matches(re("[^a]"), {"\xF0\x9F\x98\x80"}, {"a"});
}

TEST(RegexTest, CountedRepetition) {
  expect_full_matches(re("x{3}y{2,}z{0,1}"), {"xxxyy", "xxxyyyyyz"}, {"xxyy", "xxxy"});
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
