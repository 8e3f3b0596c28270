// GBNF grammars: the llama.cpp-style JSON grammar, repetition forms, classes, comments and
// multi-line bodies, recursion.
#include <gtest/gtest.h>

#include "structured/ebnf.h"
#include "test_util.h"

namespace turbine::structured {
namespace {

using test_util::byte_vocab;
using test_util::compile_or_die;
using test_util::expect_full_matches;

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
  expect_full_matches(
      gbnf(kJsonGbnf),
      {R"({"a": [1, 2.5e3, "x\n", true, null], "b": {}})", "{}", "{\n  \"k\": \"\\u00e9\"}"},
      {"[1]" /* root is an object */, R"({"a": })", R"({"a": 01x})"});
}

TEST(EbnfTest, RepetitionClassesAndAny) {
  expect_full_matches(gbnf(R"(root ::= "id-" [0-9]{2,3} ("/" [a-z]+){,2} [^a-z]? .)"),
                      {"id-12x", "id-123/ab/c!é"}, {"id-1x", "id-12/a/b/cx"});
  expect_full_matches(gbnf("root ::= \"\\u00e9\\x41\" [\\u0100-\\U0001F600]+"), {"éAĀ😀"}, {"éA"});
}

TEST(EbnfTest, RecursionAndRulesOnOneLine) {
  expect_full_matches(
      gbnf("root ::= expr\nexpr ::= term (\"+\" term)*\nterm ::= [0-9]+ | \"(\" expr \")\""),
      {"1+(2+(3+4))+5"}, {"1+(2+3", "+1"});
  // Rules may follow each other on one line, names may hold - and _.
  expect_full_matches(gbnf("root ::= a-b c_d a-b ::= \"x\" c_d ::= \"y\""), {"xy"}, {});
}

TEST(EbnfTest, EmptyAlternativesAndUnusedRules) {
  expect_full_matches(gbnf("root ::= \"a\" opt\nopt ::= \"b\" |\nunused ::= \"zzz\""), {"a", "ab"},
                      {"azzz"});
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
  expect_full_matches(g, {"<7><299><0>"}, {"<300>"});
  ASSERT_NE(g, nullptr);
  Matcher m(g);
  std::string first;
  EXPECT_EQ(test_util::mask_disagreements(m, g->vocab(), &first), 0u) << first;
}

}  // namespace
}  // namespace turbine::structured
