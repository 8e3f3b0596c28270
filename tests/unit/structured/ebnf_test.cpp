// GBNF grammars: the llama.cpp-style JSON grammar, repetition forms, classes, comments and
// multi-line bodies, recursion.
#include <gtest/gtest.h>

#include "structured/ebnf.h"
#include "test_util.h"

namespace turbine::structured {
namespace {

using test_util::byte_vocab;
using test_util::compile_or_die;
using test_util::full_match;

std::shared_ptr<const CompiledGrammar> gbnf(const std::string& text) {
  return compile_or_die(ebnf_to_grammar(text, CompileLimits{}), byte_vocab());
}

// The shape of llama.cpp's grammars/json.gbnf (written here from the JSON spec).
const char* kJsonGbnf = R"g(
root   ::= object
value  ::= object | array | string | number | ("true" | "false" | "null") ws

object ::=
  "{" ws (
            string ":" ws value
    ("," ws string ":" ws value)*
  )? "}" ws

array  ::=
  "[" ws (
            value
    ("," ws value)*
  )? "]" ws

string ::=
  "\"" (
    [^"\\\x7F\x00-\x1F] |
    "\\" (["\\bfnrt] | "u" [0-9a-fA-F]{4}) # escapes
  )* "\"" ws

number ::= ("-"? ([0-9] | [1-9] [0-9]{0,15})) ("." [0-9]+)? ([eE] [-+]? [0-9] [1-9]{0,15})? ws

# Optional space: by convention, applied in this grammar after literal chars when allowed
ws ::= | " " | "\n" [ \t]{0,20}
)g";

TEST(EbnfTest, JsonGrammarInLlamaCppStyle) {
  auto g = gbnf(kJsonGbnf);
  ASSERT_NE(g, nullptr);
  EXPECT_TRUE(full_match(g, R"({"a": [1, 2.5e3, "x\n", true, null], "b": {}})"));
  EXPECT_TRUE(full_match(g, "{}"));
  EXPECT_TRUE(full_match(g, "{\n  \"k\": \"\\u00e9\"}"));
  EXPECT_FALSE(full_match(g, "[1]"));  // root is an object
  EXPECT_FALSE(full_match(g, R"({"a": })"));
  EXPECT_FALSE(full_match(g, R"({"a": 01x})"));
}

TEST(EbnfTest, RepetitionClassesAndAny) {
  auto g = gbnf(R"(root ::= "id-" [0-9]{2,3} ("/" [a-z]+){,2} [^a-z]? .)");
  ASSERT_NE(g, nullptr);
  EXPECT_TRUE(full_match(g, "id-12x"));
  EXPECT_TRUE(full_match(g, "id-123/ab/c!é"));
  EXPECT_FALSE(full_match(g, "id-1x"));
  EXPECT_FALSE(full_match(g, "id-12/a/b/cx"));
  auto u = gbnf("root ::= \"\\u00e9\\x41\" [\\u0100-\\U0001F600]+");
  ASSERT_NE(u, nullptr);
  EXPECT_TRUE(full_match(u, "éAĀ😀"));
  EXPECT_FALSE(full_match(u, "éA"));
}

TEST(EbnfTest, RecursionAndRulesOnOneLine) {
  auto g = gbnf("root ::= expr\nexpr ::= term (\"+\" term)*\nterm ::= [0-9]+ | \"(\" expr \")\"");
  ASSERT_NE(g, nullptr);
  EXPECT_TRUE(full_match(g, "1+(2+(3+4))+5"));
  EXPECT_FALSE(full_match(g, "1+(2+3"));
  EXPECT_FALSE(full_match(g, "+1"));
  // Rules may follow each other on one line, names may hold - and _.
  auto h = gbnf("root ::= a-b c_d a-b ::= \"x\" c_d ::= \"y\"");
  ASSERT_NE(h, nullptr);
  EXPECT_TRUE(full_match(h, "xy"));
}

TEST(EbnfTest, EmptyAlternativesAndUnusedRules) {
  auto g = gbnf("root ::= \"a\" opt\nopt ::= \"b\" |\nunused ::= \"zzz\"");
  ASSERT_NE(g, nullptr);
  EXPECT_TRUE(full_match(g, "a"));
  EXPECT_TRUE(full_match(g, "ab"));
  EXPECT_FALSE(full_match(g, "azzz"));
}

TEST(EbnfTest, ManyAlternativeRules) {
  // 300 rules reachable at the same point: closures past the small linear set.
  std::string text = "root ::= (";
  for (int i = 0; i < 300; ++i) text += (i ? " | r" : "r") + std::to_string(i);
  text += ")+\n";
  for (int i = 0; i < 300; ++i) {
    text += "r" + std::to_string(i) + " ::= \"<" + std::to_string(i) + ">\"\n";
  }
  auto g = gbnf(text);
  ASSERT_NE(g, nullptr);
  EXPECT_TRUE(full_match(g, "<7><299><0>"));
  EXPECT_FALSE(full_match(g, "<300>"));
  Matcher m(g);
  std::string first;
  EXPECT_EQ(test_util::mask_disagreements(m, g->vocab(), &first), 0u) << first;
}

}  // namespace
}  // namespace turbine::structured
