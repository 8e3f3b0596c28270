// JSON Schema front end: for every supported keyword, texts that must match and texts that must
// not (the whole output, through the Matcher over a byte vocabulary).
#include <gtest/gtest.h>

#include "structured/json_schema.h"
#include "test_util.h"

namespace turbine::structured {
namespace {

using test_util::byte_vocab;
using test_util::compile_or_die;
using test_util::full_match;

std::shared_ptr<const CompiledGrammar> schema(const std::string& text, JsonGrammarOptions o = {}) {
  return compile_or_die(json_schema_to_grammar(text, o, CompileLimits{}), byte_vocab());
}

struct Case {
  const char* schema;
  std::vector<std::string> good;
  std::vector<std::string> bad;
};

void run(const Case& c) {
  auto g = schema(c.schema);
  ASSERT_NE(g, nullptr) << c.schema;
  for (const auto& t : c.good) EXPECT_TRUE(full_match(g, t)) << c.schema << "  should match  " << t;
  for (const auto& t : c.bad) {
    EXPECT_FALSE(full_match(g, t)) << c.schema << "  should not match  " << t;
  }
}

TEST(JsonSchemaTest, Types) {
  run({R"({"type":"null"})", {"null"}, {"nul", "0", "\"null\""}});
  run({R"({"type":"boolean"})", {"true", "false"}, {"True", "1"}});
  run({R"({"type":"integer"})", {"0", "-7", "123456789012345"}, {"01", "1.5", "-", "1e3", "+1"}});
  run({R"({"type":"number"})", {"0", "-0.5", "1.25e-10", "3E+2", "12"}, {".5", "1.", "1e", "01"}});
  run({R"({"type":"string"})",
       {R"("")", R"("a b")", R"("\" \\ \/ \b \f \n \r \t")", R"("\u00e9")", "\"é😀\""},
       {R"("a)", R"("\x")", R"("\ud800")", "\"a\nb\"", R"("\u12")"}});
  run({R"({"type":["string","null"]})", {"null", R"("x")"}, {"1"}});
}

TEST(JsonSchemaTest, ObjectsKeepPropertyOrderAndRequired) {
  run({R"({"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"string"}},
          "required":["a","b"]})",
       {R"({"a":1,"b":"x"})", "{\n  \"a\": 1,\n  \"b\": \"x\"\n}"},
       {R"({"b":"x","a":1})", R"({"a":1})", R"({"a":1,"b":"x","c":2})", R"({"a":1 ,"b":"x"})"}});
  run({R"({"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"integer"},
          "c":{"type":"integer"}},"required":["b"]})",
       {R"({"b":1})", R"({"a":1,"b":2})", R"({"b":2,"c":3})", R"({"a":1,"b":2,"c":3})"},
       {R"({})", R"({"a":1})", R"({"a":1,"c":3})", R"({,"b":1})", R"({"b":1,})"}});
  run({R"({"type":"object","properties":{"a":{"type":"integer"}}})",
       {R"({})", R"({ })", R"({"a":5})"},
       {R"({"b":5})"}});
}

TEST(JsonSchemaTest, AdditionalProperties) {
  run({R"({"type":"object","properties":{"id":{"type":"integer"}},
          "additionalProperties":{"type":"boolean"}})",
       {R"({"id":1,"x":true})", R"({"x":true,"y":false})", R"({"id":1})", R"({"i":true})",
        R"({"idx":false})", R"({})"},
       {R"({"id":true})", R"({"x":1})", R"({"id":1,"id":true})"}});
  run({R"({"type":"object","additionalProperties":false})", {"{}"}, {R"({"a":1})"}});
  run({R"({"type":"object","additionalProperties":true})",
       {R"({"a":[1,{"b":null}],"c":"d"})", "{}"},
       {R"({"a":})"}});
  // Required names outside `properties` take additionalProperties' schema.
  run({R"({"type":"object","required":["k"],"additionalProperties":{"type":"string"}})",
       {R"({"k":"v"})", R"({"k":"v","z":"w"})"},
       {R"({})", R"({"k":1})"}});
}

TEST(JsonSchemaTest, EnumAndConst) {
  run({R"({"enum":["red","green",3,null,{"a":[1]}]})",
       {R"("red")", R"("green")", "3", "null", R"({"a":[1]})"},
       {R"("blue")", "4", R"("Red")"}});
  run({R"({"const":"a\"b\u00e9"})", {"\"a\\\"bé\""}, {R"("a\"b\u00e9")"}});
  run({R"({"type":"string","enum":["x",1]})", {R"("x")"}, {"1"}});
}

TEST(JsonSchemaTest, AnyOfOneOfAllOf) {
  run({R"({"anyOf":[{"type":"integer"},{"type":"string","maxLength":2}]})",
       {"12", R"("ab")"},
       {R"("abc")", "true"}});
  run({R"({"oneOf":[{"type":"integer"},{"type":"boolean"}]})", {"1", "false"}, {R"("1")"}});
  run({R"({"oneOf":[{"type":"object","properties":{"kind":{"const":"a"},"x":{"type":"integer"}},
          "required":["kind","x"]},{"type":"object","properties":{"kind":{"const":"b"}},
          "required":["kind"]}]})",
       {R"({"kind":"a","x":1})", R"({"kind":"b"})"},
       {R"({"kind":"c"})", R"({"kind":"a"})"}});
  run({R"({"allOf":[{"type":"boolean"}],"description":"d"})", {"true"}, {"1"}});
}

TEST(JsonSchemaTest, RefsAndRecursion) {
  run({R"({"$defs":{"node":{"type":"object","properties":{"v":{"type":"integer"},
          "kids":{"type":"array","items":{"$ref":"#/$defs/node"}}},"required":["v"]}},
          "$ref":"#/$defs/node"})",
       {R"({"v":1})", R"({"v":1,"kids":[]})",
        R"({"v":1,"kids":[{"v":2,"kids":[{"v":3}]},{"v":4}]})"},
       {R"({"v":1,"kids":[{}]})", R"({"kids":[]})"}});
  run({R"({"definitions":{"s":{"type":"string"}},"type":"array","items":{"$ref":"#/definitions/s"}})",
       {R"(["a","b"])", "[]"},
       {"[1]"}});
  // The root itself, recursively.
  run({R"({"type":"array","items":{"anyOf":[{"type":"integer"},{"$ref":"#"}]}})",
       {"[1,[2,[3]],[]]"},
       {"[1,[2,]]"}});
}

TEST(JsonSchemaTest, Arrays) {
  run({R"({"type":"array","items":{"type":"integer"},"minItems":2,"maxItems":3})",
       {"[1,2]", "[1, 2, 3]", "[\n  1,\n  2\n]"},
       {"[1]", "[1,2,3,4]", "[1,,2]", "[]"}});
  run({R"({"type":"array","prefixItems":[{"type":"string"},{"type":"integer"}],"items":false})",
       {"[]", R"(["a"])", R"(["a",1])"},
       {R"(["a",1,2])", R"([1])"}});
  run({R"({"type":"array","prefixItems":[{"type":"string"}],"items":{"type":"boolean"},
          "minItems":2})",
       {R"(["a",true])", R"(["a",true,false])"},
       {R"(["a"])", R"(["a",1])"}});
  run({R"({"type":"array"})", {"[]", R"([1,"a",null,[],{}])"}, {"[", "[1,]"}});
  run({R"({"type":"array","items":{"type":"integer"},"uniqueItems":false})", {"[1,1]"}, {}});
}

TEST(JsonSchemaTest, StringKeywords) {
  run({R"({"type":"string","minLength":2,"maxLength":3})",
       {R"("ab")", R"("abc")", R"("éé")", R"("\n\"")"},
       {R"("a")", R"("abcd")"}});
  run({R"({"type":"string","pattern":"^[a-z]+\\d$"})", {R"("abc1")"}, {R"("abc")", R"("Abc1")"}});
  // Unanchored patterns search, as JSON Schema defines.
  run({R"({"type":"string","pattern":"ab"})", {R"("ab")", R"("xxabyy")"}, {R"("a b")"}});
  // Pattern characters that need escaping in JSON.
  run({R"({"type":"string","pattern":"^a\"b\\\\c\n$"})", {R"("a\"b\\c\n")"}, {R"("a"b")"}});
}

TEST(JsonSchemaTest, Formats) {
  run({R"({"type":"string","format":"date"})",
       {R"("2024-02-29")", R"("2023-12-31")", R"("2000-02-29")"},
       {R"("2023-02-29")", R"("1900-02-29")", R"("2023-04-31")", R"("2023-13-01")",
        R"("2023-1-01")"}});
  run({R"({"type":"string","format":"time"})",
       {R"("23:59:59Z")", R"("08:30:00.123+05:30")"},
       {R"("24:00:00Z")", R"("08:30:00")", R"("08:60:00Z")"}});
  run({R"({"type":"string","format":"date-time"})",
       {R"("2024-01-31T10:00:00Z")"},
       {R"("2024-01-31 10:00:00Z")", R"("2024-01-32T10:00:00Z")"}});
  run({R"({"type":"string","format":"uuid"})",
       {R"("123e4567-e89b-12d3-a456-426614174000")"},
       {R"("123e4567e89b12d3a456426614174000")", R"("123e4567-e89b-12d3-a456-42661417400g")"}});
  run({R"({"type":"string","format":"email"})",
       {R"("a.b+c@example.co.uk")", R"("x@y.z")"},
       {R"("a@b")", R"("a..b@c.d")", R"("@c.d")", R"("a@-c.d")"}});
}

TEST(JsonSchemaTest, IntegerRanges) {
  run({R"({"type":"integer","minimum":-15,"maximum":120})",
       {"-15", "-9", "0", "7", "99", "100", "120"},
       {"-16", "121", "200", "-0x", "1000"}});
  run({R"({"type":"integer","exclusiveMinimum":0,"exclusiveMaximum":10})",
       {"1", "9"},
       {"0", "10"}});
  run({R"({"type":"integer","minimum":1000})", {"1000", "99999"}, {"999", "-1000"}});
  run({R"({"type":"integer","maximum":-5})", {"-5", "-100000"}, {"-4", "0", "5"}});
  run({R"({"type":"integer","minimum":-1e30,"maximum":3})", {"3", "-999999999999999"}, {"4"}});
  run({R"({"type":"integer","maximum":1e300})", {"0", "999999999999999"}, {"1.5"}});
}

TEST(JsonSchemaTest, NumberRanges) {
  run({R"({"type":"number","minimum":0,"maximum":1})",
       {"0", "1", "0.5", "0.999"},
       {"1.5", "-0.5", "2", "1e0"}});
  run({R"({"type":"number","minimum":-2.5,"exclusiveMaximum":3})",
       {"-2", "-1.75", "2.9", "0"},
       {"3", "3.5", "-3"}});
}

TEST(JsonSchemaTest, WhitespacePolicy) {
  JsonGrammarOptions compact;
  compact.whitespace = JsonGrammarOptions::Whitespace::kCompact;
  auto g =
      schema(R"({"type":"object","properties":{"a":{"type":"array"}},"required":["a"]})", compact);
  ASSERT_NE(g, nullptr);
  EXPECT_TRUE(full_match(g, R"({"a":[1,2]})"));
  EXPECT_FALSE(full_match(g, R"({"a": [1,2]})"));
  JsonGrammarOptions bounded;
  bounded.max_whitespace = 2;
  g = schema(R"({"type":"array","items":{"type":"integer"}})", bounded);
  ASSERT_NE(g, nullptr);
  EXPECT_TRUE(full_match(g, "[  1,\n\t2  ]"));
  EXPECT_FALSE(full_match(g, "[   1]"));
  EXPECT_FALSE(full_match(g, " [1]"));  // nothing before or after the value
}

TEST(JsonSchemaTest, AnyJsonObjectAndChoices) {
  auto g = compile_or_die(json_object_grammar({}, CompileLimits{}), byte_vocab());
  ASSERT_NE(g, nullptr);
  EXPECT_TRUE(full_match(g, R"({"a":{"b":[1,2.5,"x",true,null]}})"));
  EXPECT_FALSE(full_match(g, "[1]"));
  EXPECT_FALSE(full_match(g, R"("x")"));
  auto c = compile_or_die(choice_to_grammar(R"(["yes","no","maybe so"])", CompileLimits{}),
                          byte_vocab());
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(full_match(c, "yes"));
  EXPECT_TRUE(full_match(c, "maybe so"));
  EXPECT_FALSE(full_match(c, "ye"));
  EXPECT_FALSE(full_match(c, "\"yes\""));
}

}  // namespace
}  // namespace turbine::structured
