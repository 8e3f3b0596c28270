#include "parsers/json_scan.h"

#include <gtest/gtest.h>

#include "parsers/call_object.h"

namespace turbine::parsers {
namespace {

// "done@N": the value ended with byte N; "before@N": it ended before byte N; "error@N";
// "open": input ran out (then "open+complete" when complete_at_end()).
std::string scan(std::string_view text) {
  JsonScanner s;
  for (size_t i = 0; i < text.size(); ++i) {
    switch (s.feed(text[i])) {
      case JsonScanner::Step::kMore: break;
      case JsonScanner::Step::kDone: return "done@" + std::to_string(i);
      case JsonScanner::Step::kDoneBefore: return "before@" + std::to_string(i);
      case JsonScanner::Step::kError: return "error@" + std::to_string(i);
    }
  }
  return s.complete_at_end() ? "open+complete" : "open";
}

TEST(JsonScanner, AcceptsValues) {
  EXPECT_EQ(scan(R"({})"), "done@1");
  EXPECT_EQ(scan(R"(  {"a": [1, -2.5e+3, 0, true, false, null, "x\"}\u00e9"], "b": {}}  )"),
            "done@65");
  EXPECT_EQ(scan(R"([[[]], {"k": [{}]}])"), "done@18");
  EXPECT_EQ(scan(R"("str")"), "done@4");
  EXPECT_EQ(scan("true"), "done@3");
  EXPECT_EQ(scan("12,"), "before@2");
  EXPECT_EQ(scan("-0.5E-2"), "open+complete");
  EXPECT_EQ(scan(R"({"a": 1)"), "open");
  EXPECT_EQ(scan("\"line\nbreak\""), "done@11");  // raw control characters are tolerated
}

TEST(JsonScanner, RejectsMalformed) {
  EXPECT_EQ(scan(R"({"a":})"), "error@5");
  EXPECT_EQ(scan("[1,]"), "error@3");
  EXPECT_EQ(scan("01"), "before@1");  // a complete 0, then a stray byte
  EXPECT_EQ(scan("[01]"), "error@2");
  EXPECT_EQ(scan("[1.]"), "error@3");
  EXPECT_EQ(scan("[-]"), "error@2");
  EXPECT_EQ(scan(R"({"a" 1})"), "error@5");
  EXPECT_EQ(scan("[tru]"), "error@4");
  EXPECT_EQ(scan(R"(["\x"])"), "error@3");
  EXPECT_EQ(scan(R"(["\u12g4"])"), "error@6");
  EXPECT_EQ(scan("{,}"), "error@1");
  EXPECT_EQ(scan("[1}"), "error@2");
  EXPECT_EQ(scan("{'a': 1}"), "error@1");
  EXPECT_EQ(scan("]"), "error@0");
  const std::string deep(JsonScanner::kMaxDepth + 1, '[');
  EXPECT_EQ(scan(deep), "error@" + std::to_string(JsonScanner::kMaxDepth));
}

std::string decode(std::string_view body, bool* done = nullptr) {
  JsonStringDecoder d;
  std::string out;
  for (char c : body) {
    const auto s = d.feed(c, out);
    if (s == JsonStringDecoder::Step::kError) return "<error>";
    if (s == JsonStringDecoder::Step::kDone && done) *done = true;
  }
  return out;
}

TEST(JsonStringDecoder, Escapes) {
  bool done = false;
  EXPECT_EQ(decode(R"(a\"b\\c\/d\n\t\u00e9\ud83d\ude00")", &done), "a\"b\\c/d\n\té😀");
  EXPECT_TRUE(done);
  EXPECT_EQ(decode(R"(\ud83dx")"), "\xEF\xBF\xBDx");  // lone high surrogate
  EXPECT_EQ(decode(R"(\ude00")"), "\xEF\xBF\xBD");    // lone low surrogate
  EXPECT_EQ(decode(R"(\q")"), "<error>");
}

std::string arguments(std::string_view text, std::string* status = nullptr) {
  ArgumentsScanner a;
  std::string out;
  for (char c : text) {
    const auto s = a.feed(c, out);
    if (s == ArgumentsScanner::Step::kError) {
      if (status) *status = "error";
      return out;
    }
    if (s == ArgumentsScanner::Step::kDone && status) *status = "done";
  }
  return out;
}

TEST(ArgumentsScanner, ObjectStringAndOthers) {
  std::string status;
  EXPECT_EQ(arguments(" {\"a\": [1, {\"b\": \"}\"}]}", &status), "{\"a\": [1, {\"b\": \"}\"}]}");
  EXPECT_EQ(status, "done");
  EXPECT_EQ(arguments("{\"code\": \"a\nb\x01\"}", &status), "{\"code\": \"a\\nb\\u0001\"}");
  EXPECT_EQ(arguments(R"("{\"a\": 1}")", &status), R"({"a": 1})");
  EXPECT_EQ(status, "done");
  status.clear();
  EXPECT_EQ(arguments("[1]", &status), "");
  EXPECT_EQ(status, "error");
  status.clear();
  EXPECT_EQ(arguments("null", &status), "");
  EXPECT_EQ(status, "error");
}

struct CallResult {
  std::string step;  // "done", "error@N" or "open"
  std::string name;
  std::string arguments;
  bool ready = false;
};

CallResult call(std::string_view text, bool require_arguments = true) {
  CallObjectParser p(require_arguments);
  CallResult r;
  for (size_t i = 0; i < text.size(); ++i) {
    const auto s = p.feed(text[i]);
    if (s == CallObjectParser::Step::kError) {
      r.step = "error@" + std::to_string(i);
      break;
    }
    if (s == CallObjectParser::Step::kDone) r.step = "done";
  }
  if (r.step.empty()) r.step = "open";
  r.ready = p.ready();
  r.name = p.name();
  r.arguments = p.take_arguments();
  return r;
}

TEST(CallObjectParser, Shapes) {
  CallResult r = call(R"({"name": "f", "arguments": {"x": 1}})");
  EXPECT_EQ(r.step, "done");
  EXPECT_EQ(r.name, "f");
  EXPECT_EQ(r.arguments, R"({"x": 1})");
  r = call(R"({"type": "function", "id": 7, "parameters": {}, "name": "g", "extra": [null]})");
  EXPECT_EQ(r.step, "done");
  EXPECT_EQ(r.name, "g");
  EXPECT_EQ(r.arguments, "{}");
  r = call(R"({"name": "h"})", /*require_arguments=*/false);
  EXPECT_EQ(r.step, "done");
  EXPECT_EQ(r.arguments, "{}");
  EXPECT_EQ(call(R"({"name": "h"})").step, "error@12");
  EXPECT_EQ(call(R"({"name": ""})").step, "error@10");
  EXPECT_EQ(call(R"({"name": 3})").step, "error@9");
  EXPECT_EQ(call(R"({"name": "a", "name": "b"})").step, "error@22");
  EXPECT_EQ(call(R"({"name": "a", "arguments": {}, "parameters": {}})").step, "error@45");
  EXPECT_EQ(call(R"({"name": "a", "arguments": 5})").step, "error@27");
  r = call(R"({"name": "a", "arguments": {"x")");
  EXPECT_EQ(r.step, "open");
  EXPECT_TRUE(r.ready);
  EXPECT_EQ(r.arguments, R"({"x")");
  r = call(R"({"arguments": {"x": 2})");
  EXPECT_FALSE(r.ready);  // no name yet: nothing can be announced
}

}  // namespace
}  // namespace turbine::parsers
