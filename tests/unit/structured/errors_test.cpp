// Every class of bad constraint is kInvalidArgument with a message that says what and where:
// invalid JSON, invalid schemas, unsupported keywords (named), unsatisfiable schemas, regex and
// grammar syntax errors, and the size limits.
#include <gtest/gtest.h>

#include "structured/compiler.h"
#include "test_util.h"

namespace turbine::structured {
namespace {

// Compiles against a byte vocabulary; expects kInvalidArgument mentioning every `needles`.
void expect_error(ConstraintSpec::Kind kind, const std::string& text,
                  const std::vector<std::string>& needles, CompilerOptions options = {}) {
  GrammarCompiler compiler(test_util::byte_vocab(), options);
  auto r = compiler.compile({kind, text});
  ASSERT_FALSE(r.has_value()) << "compiled: " << text;
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << text;
  for (const std::string& n : needles) {
    EXPECT_NE(r.status().message().find(n), std::string::npos)
        << "message for " << text << " lacks '" << n << "': " << r.status().message();
  }
}

constexpr auto kSchema = ConstraintSpec::Kind::kJsonSchema;

TEST(ErrorsTest, InvalidJson) {
  expect_error(kSchema, R"({"type": "object")", {"not valid JSON"});
  expect_error(kSchema, "", {"not valid JSON"});
  expect_error(ConstraintSpec::Kind::kChoice, "[\"a\",", {"not valid JSON"});
}

TEST(ErrorsTest, InvalidSchemas) {
  expect_error(kSchema, "42", {"must be an object or a boolean"});
  expect_error(kSchema, R"({"type": 5})", {"type must be"});
  expect_error(kSchema, R"({"type": "strin"})", {"unknown type 'strin'"});
  expect_error(kSchema, R"({"type":"object","properties":{"a":{"type":"string","minLength":-1}}})",
               {"/properties/a", "minLength must be a non-negative integer"});
  expect_error(kSchema, R"({"type":"object","required":"a"})", {"required must be an array"});
  expect_error(kSchema, R"({"$ref":"#/$defs/missing"})", {"does not resolve"});
  expect_error(kSchema, R"({"$ref":"https://example.com/s.json"})", {"only local references"});
  expect_error(kSchema, R"({"anyOf":[]})", {"anyOf must be a non-empty array"});
  expect_error(kSchema, R"({"type":"string","pattern":"(a"})", {"/pattern", "missing ')'"});
}

TEST(ErrorsTest, UnsupportedKeywordsAreNamed) {
  for (const char* kw : {"multipleOf", "minProperties", "maxProperties", "patternProperties",
                         "propertyNames", "if", "not", "contains", "dependentRequired",
                         "unevaluatedProperties", "$dynamicRef", "nullable"}) {
    const std::string schema =
        std::string(R"({"type":"object","properties":{"x":{"type":"integer",")") + kw +
        R"(": 2}}})";
    expect_error(kSchema, schema,
                 {std::string("unsupported keyword '") + kw + "'", "/properties/x"});
  }
  expect_error(kSchema, R"({"type":"array","uniqueItems":true})", {"uniqueItems"});
  expect_error(kSchema, R"({"type":"string","format":"hostname"})", {"format 'hostname'"});
  expect_error(kSchema, R"({"type":"string","pattern":"^a$","maxLength":3})", {"combining"});
  expect_error(kSchema, R"({"allOf":[{"type":"string"},{"maxLength":3}]})", {"allOf"});
  expect_error(kSchema, R"({"type":"object","anyOf":[{"required":["a"]}]})",
               {"'type' next to anyOf"});
  expect_error(kSchema, R"({"$ref":"#/$defs/a","maxLength":2,"$defs":{"a":{"type":"string"}}})",
               {"'maxLength' next to $ref"});
  expect_error(kSchema, R"({"enum":["a","b"],"maxLength":1})", {"'maxLength' next to enum"});
  expect_error(kSchema, R"({"oneOf":[{"type":"string"},{"type":"string","maxLength":3}]})",
               {"oneOf branches may overlap"});
  expect_error(kSchema, R"({"oneOf":[{"type":"integer"},{"type":"number"}]})", {"oneOf"});
  expect_error(kSchema, R"({"type":"string","pattern":"(\\w)\\1"})", {"backreferences"});
}

TEST(ErrorsTest, UnsatisfiableSchemas) {
  expect_error(kSchema, "false", {"no value can match"});
  expect_error(kSchema, R"({"enum":[]})", {"enum must be a non-empty array"});
  expect_error(kSchema, R"({"type":"array","minItems":3,"maxItems":2})", {"minItems"});
  expect_error(kSchema, R"({"type":"array","prefixItems":[{}],"items":false,"minItems":2})",
               {"minItems"});
  expect_error(kSchema, R"({"type":"string","minLength":5,"maxLength":2})", {"minLength"});
  expect_error(kSchema, R"({"type":"integer","minimum":5,"maximum":4})", {"minimum is above"});
  expect_error(kSchema, R"({"type":"integer","minimum":1e30})", {"above 1e18"});
  expect_error(kSchema, R"({"type":"number","maximum":-1e300})", {"beyond 1e18"});
  expect_error(kSchema, R"({"type":"integer","exclusiveMinimum":4,"exclusiveMaximum":5})",
               {"range", "empty"});
  expect_error(kSchema, R"({"type":"number","minimum":0.2,"maximum":0.8})",
               {"no number can be generated"});
  expect_error(kSchema, R"({"type":"string","enum":[1,2]})", {"no enum/const value"});
  expect_error(kSchema, R"({"type":"object","required":["a"],"additionalProperties":false})",
               {"required property 'a'", "additionalProperties: false"});
  expect_error(kSchema, R"({"type":"object","properties":{"a":false},"required":["a"]})",
               {"'a' has the schema false"});
  // A recursive definition with no base case matches nothing.
  expect_error(kSchema,
               R"({"$defs":{"n":{"type":"object","properties":{"c":{"$ref":"#/$defs/n"}},
                  "required":["c"]}},"$ref":"#/$defs/n"})",
               {"matches no complete output"});
}

TEST(ErrorsTest, RegexSyntax) {
  expect_error(ConstraintSpec::Kind::kRegex, "a(b", {"invalid regex at offset", "missing ')'"});
  expect_error(ConstraintSpec::Kind::kRegex, "(?=x)y", {"lookaround"});
  expect_error(ConstraintSpec::Kind::kRegex, "x{5,1}", {"min > max"});
}

TEST(ErrorsTest, GrammarSyntax) {
  const auto kG = ConstraintSpec::Kind::kGrammar;
  expect_error(kG, "rot ::= \"a\"", {"no 'root' rule"});
  expect_error(kG, "root ::= \"a\" b", {"line 1", "undefined rule 'b'"});
  expect_error(kG, "root ::= \"a\"\nroot ::= \"b\"", {"line 2", "defined twice"});
  expect_error(kG, "root ::= \"abc", {"unterminated string"});
  expect_error(kG, "root ::= [a-", {"missing ']'"});
  expect_error(kG, "root ::= (\"a\"", {"missing ')'"});
  expect_error(kG, "root ::= \"a\" ::=", {"unexpected character"});
  expect_error(kG, "root ::= root \"a\" | \"b\"", {"'root' is left-recursive"});
  expect_error(kG, "root ::= x\nx ::= y \"a\"\ny ::= \"\" | x", {"left-recursive"});
  expect_error(kG, "root ::= \"a\"{3,1}", {"min > max"});
  expect_error(kG, "root ::= [z-a]", {"out of order"});
}

TEST(ErrorsTest, ChoiceShape) {
  expect_error(ConstraintSpec::Kind::kChoice, "[]", {"non-empty array of strings"});
  expect_error(ConstraintSpec::Kind::kChoice, "[\"a\", 1]", {"non-empty array of strings"});
  expect_error(ConstraintSpec::Kind::kChoice, "{\"a\":1}", {"non-empty array of strings"});
}

TEST(ErrorsTest, SizeLimits) {
  CompilerOptions small;
  small.limits.max_input_bytes = 64;
  expect_error(kSchema,
               std::string(R"({"type":"string","description":")") + std::string(100, 'x') + "\"}",
               {"longer than 64 bytes"}, small);
  CompilerOptions states;
  states.limits.max_nfa_states = 500;
  expect_error(kSchema, R"({"type":"string","maxLength":400})", {"too large"}, states);
  CompilerOptions dfa;
  dfa.limits.max_dfa_states = 50;
  expect_error(ConstraintSpec::Kind::kRegex, "[a-z]{60}", {"too large"}, dfa);
  // Nesting depth.
  std::string deep;
  for (int i = 0; i < 80; ++i) deep += R"({"type":"array","items":)";
  deep += "{}";
  for (int i = 0; i < 80; ++i) deep += "}";
  expect_error(kSchema, deep, {"nested deeper than"});
  std::string groups(100, '(');
  groups += "a" + std::string(100, ')');
  expect_error(ConstraintSpec::Kind::kRegex, groups, {"nested deeper than"});
  // Repetition counts.
  expect_error(kSchema, R"({"type":"string","maxLength":1000000})", {"above the limit"});
  expect_error(ConstraintSpec::Kind::kGrammar, "root ::= \"a\"{100000}", {"above the limit"});
  // Mask precomputation work.
  CompilerOptions work;
  work.limits.max_mask_work = 1000;
  expect_error(kSchema, R"({"type":"object","properties":{"a":{"type":"string"}}})", {"work limit"},
               work);
  CompilerOptions memory;
  memory.limits.max_mask_bytes = 2000;
  expect_error(kSchema, R"({"type":"object","properties":{"a":{"type":"string"}}})",
               {"memory limit"}, memory);
}

TEST(ErrorsTest, ErrorsAreCachedAndTheCompilerStaysUsable) {
  GrammarCompiler compiler(test_util::byte_vocab());
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(compiler.compile({kSchema, R"({"type":"nope"})"}).has_value());
  }
  EXPECT_TRUE(compiler.compile({kSchema, R"({"type":"string"})"}).has_value());
  const CompilerStats s = compiler.stats();
  EXPECT_EQ(s.misses, 2u);
  EXPECT_EQ(s.hits, 2u);
  EXPECT_EQ(s.errors, 1u);
  EXPECT_FALSE(compiler.compile({ConstraintSpec::Kind::kNone, ""}).has_value());
}

}  // namespace
}  // namespace turbine::structured
