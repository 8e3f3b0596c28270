// Parser conformance: every fixture's unary result, and the same text streamed split at every
// byte boundary (and byte by byte, and at random points) assembles to exactly the unary result.
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "common/utf8.h"
#include "fixtures.h"

namespace turbine::parsers {
namespace {

using testing::Fixture;
using testing::fixtures;

std::unique_ptr<StreamParser> make_parser(const Fixture& f) {
  OutputParserConfig cfg;
  cfg.tool_format = f.tools;
  cfg.reasoning_format = f.reasoning;
  cfg.prompt_in_reasoning = f.prompt_in_reasoning;
  cfg.tool_options.tool_names = f.tool_names;
  cfg.tool_options.make_id = [n = 0]() mutable { return "call_" + std::to_string(n++); };
  return make_output_parser(cfg);
}

// Feeds `pieces` and checks what every streaming consumer relies on: each delta holds one kind
// of output, every string is valid UTF-8, call i starts (id + name, once) before its arguments
// and after call i-1.
Deltas stream(const Fixture& f, const std::vector<std::string_view>& pieces, int* calls) {
  std::unique_ptr<StreamParser> parser = make_parser(f);
  Deltas out;
  for (std::string_view p : pieces) {
    if (parser) {
      parser->feed(p, out);
    } else if (!p.empty()) {
      out.emplace_back().content = std::string(p);
    }
  }
  if (parser) parser->finish(out);
  *calls = parser ? parser->tool_calls() : 0;

  int started = 0;
  for (const api::ChoiceDelta& d : out) {
    const int kinds = !d.content.empty() + !d.reasoning.empty() + !d.tool_calls.empty();
    EXPECT_EQ(kinds, 1) << f.name << ": a piece must hold exactly one kind";
    EXPECT_TRUE(is_valid_utf8(d.content)) << f.name;
    EXPECT_TRUE(is_valid_utf8(d.reasoning)) << f.name;
    EXPECT_LE(d.tool_calls.size(), 1u) << f.name;
    for (const api::ToolCallDelta& t : d.tool_calls) {
      EXPECT_TRUE(is_valid_utf8(t.arguments)) << f.name;
      if (!t.id.empty()) {
        EXPECT_EQ(t.index, started) << f.name << ": calls start in index order";
        EXPECT_FALSE(t.name.empty()) << f.name;
        ++started;
      } else {
        EXPECT_TRUE(t.name.empty()) << f.name << ": the name comes once, with the id";
        EXPECT_EQ(t.index, started - 1) << f.name << ": arguments of the open call only";
        EXPECT_FALSE(t.arguments.empty()) << f.name;
      }
    }
  }
  return out;
}

void expect_same(const ParsedOutput& a, const ParsedOutput& b, const std::string& where) {
  EXPECT_EQ(a.content, b.content) << where;
  EXPECT_EQ(a.reasoning, b.reasoning) << where;
  ASSERT_EQ(a.tool_calls.size(), b.tool_calls.size()) << where;
  for (size_t i = 0; i < a.tool_calls.size(); ++i) {
    EXPECT_EQ(a.tool_calls[i].id, b.tool_calls[i].id) << where;
    EXPECT_EQ(a.tool_calls[i].name, b.tool_calls[i].name) << where;
    EXPECT_EQ(a.tool_calls[i].arguments, b.tool_calls[i].arguments) << where;
  }
}

ParsedOutput unary(const Fixture& f, int* calls) {
  return assemble(stream(f, {f.text}, calls));
}

class FixtureTest : public ::testing::TestWithParam<size_t> {
 protected:
  const Fixture& fixture() const { return fixtures()[GetParam()]; }
};

TEST_P(FixtureTest, UnaryGivesExpectedOutput) {
  const Fixture& f = fixture();
  int calls = 0;
  const ParsedOutput got = unary(f, &calls);
  EXPECT_EQ(got.content, f.content);
  EXPECT_EQ(got.reasoning, f.reasoning_text);
  ASSERT_EQ(got.tool_calls.size(), f.calls.size());
  EXPECT_EQ(calls, static_cast<int>(f.calls.size()));
  for (size_t i = 0; i < f.calls.size(); ++i) {
    EXPECT_EQ(got.tool_calls[i].id, "call_" + std::to_string(i));
    EXPECT_EQ(got.tool_calls[i].name, f.calls[i].name);
    EXPECT_EQ(got.tool_calls[i].arguments, f.calls[i].arguments);
  }
}

TEST_P(FixtureTest, EverySplitPointAssemblesToUnary) {
  const Fixture& f = fixture();
  int calls = 0;
  const ParsedOutput want = unary(f, &calls);
  const std::string_view text = f.text;
  for (size_t k = 0; k <= text.size(); ++k) {
    int split_calls = 0;
    const ParsedOutput got = assemble(stream(f, {text.substr(0, k), text.substr(k)}, &split_calls));
    expect_same(got, want, "split at byte " + std::to_string(k));
    EXPECT_EQ(split_calls, calls);
    if (::testing::Test::HasFailure()) return;  // one report per fixture is enough
  }
}

TEST_P(FixtureTest, ByteByByteAssemblesToUnary) {
  const Fixture& f = fixture();
  int calls = 0;
  const ParsedOutput want = unary(f, &calls);
  std::vector<std::string_view> bytes;
  const std::string_view text = f.text;
  for (size_t i = 0; i < text.size(); ++i) bytes.push_back(text.substr(i, 1));
  int stream_calls = 0;
  expect_same(assemble(stream(f, bytes, &stream_calls)), want, "byte by byte");
  EXPECT_EQ(stream_calls, calls);
}

TEST_P(FixtureTest, RandomPiecesAssembleToUnary) {
  const Fixture& f = fixture();
  int calls = 0;
  const ParsedOutput want = unary(f, &calls);
  std::mt19937 rng(1234 + static_cast<unsigned>(GetParam()));
  const std::string_view text = f.text;
  for (int round = 0; round < 50; ++round) {
    std::vector<std::string_view> pieces;
    size_t pos = 0;
    while (pos < text.size()) {
      const size_t n = std::min<size_t>(text.size() - pos, rng() % 7);  // empty pieces too
      pieces.push_back(text.substr(pos, n));
      pos += n;
    }
    int stream_calls = 0;
    expect_same(assemble(stream(f, pieces, &stream_calls)), want,
                "random round " + std::to_string(round));
    if (::testing::Test::HasFailure()) return;
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, FixtureTest, ::testing::Range<size_t>(0, fixtures().size()),
                         [](const ::testing::TestParamInfo<size_t>& info) {
                           return fixtures()[info.param].name;
                         });

TEST(FixtureSet, CoversEveryFamilyAndCase) {
  std::set<std::string> names;
  for (const Fixture& f : fixtures()) EXPECT_TRUE(names.insert(f.name).second) << f.name;
  for (ToolCallFormat fmt :
       {ToolCallFormat::kHermes, ToolCallFormat::kLlama3Json, ToolCallFormat::kMistral,
        ToolCallFormat::kDeepSeek, ToolCallFormat::kJson}) {
    int single = 0, parallel = 0, malformed = 0, with_text = 0;
    for (const Fixture& f : fixtures()) {
      if (f.tools != fmt) continue;
      single += f.calls.size() == 1;
      parallel += f.calls.size() > 1;
      malformed += f.calls.empty() && !f.content.empty();
      with_text += !f.calls.empty() && !f.content.empty();
    }
    EXPECT_GT(single, 0) << tool_call_format_name(fmt);
    EXPECT_GT(parallel, 0) << tool_call_format_name(fmt);
    EXPECT_GT(malformed, 0) << tool_call_format_name(fmt);
    EXPECT_GT(with_text, 0) << tool_call_format_name(fmt);
  }
}

// Streaming emits as soon as the text cannot be markup: content before a tag arrives before the
// tag is complete, and arguments arrive while the call is still open.
TEST(Streaming, ContentAndArgumentsArriveEarly) {
  ToolParserOptions opts;
  opts.make_id = [] { return std::string("call_x"); };
  auto parser = make_tool_call_parser(ToolCallFormat::kHermes, opts);
  Deltas out;
  parser->feed("Checking <to", out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].content, "Checking");  // the space waits: it may precede markup
  out.clear();
  parser->feed("ol_call>\n{\"name\": \"f\", \"arguments\": {\"a\": \"xy", out);
  ASSERT_EQ(out.size(), 1u);
  ASSERT_EQ(out[0].tool_calls.size(), 1u);
  EXPECT_EQ(out[0].tool_calls[0].id, "call_x");
  EXPECT_EQ(out[0].tool_calls[0].name, "f");
  EXPECT_EQ(out[0].tool_calls[0].arguments, "{\"a\": \"xy");
  out.clear();
  parser->feed("z\"}}\n</tool_call>", out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].tool_calls[0].arguments, "z\"}");
  EXPECT_EQ(parser->tool_calls(), 1);
}

TEST(Streaming, SplitUtf8IsHeldUntilComplete) {
  auto parser = make_output_parser({.reasoning_format = ReasoningFormat::kThink});
  ASSERT_NE(parser, nullptr);
  Deltas out;
  const std::string text = "<think>é</think>ü";  // é = C3 A9, ü = C3 BC
  parser->feed(text.substr(0, 8), out);          // "<think>" + C3
  EXPECT_TRUE(out.empty());
  parser->feed(text.substr(8, 10), out);  // A9 "</think>" C3
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].reasoning, "é");
  parser->feed(text.substr(18), out);
  parser->finish(out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].content, "ü");
}

TEST(Ids, DefaultIdsAreCallPrefixedAndUnique) {
  auto parser = make_tool_call_parser(ToolCallFormat::kHermes);
  const ParsedOutput out =
      parse_all(*parser,
                "<tool_call>{\"name\": \"a\", \"arguments\": {}}</tool_call><tool_call>{\"name\": "
                "\"b\", \"arguments\": {}}</tool_call>");
  ASSERT_EQ(out.tool_calls.size(), 2u);
  for (const api::ToolCall& c : out.tool_calls) {
    ASSERT_EQ(c.id.size(), 5u + 24u) << c.id;
    EXPECT_EQ(c.id.substr(0, 5), "call_");
    for (char ch : c.id.substr(5)) EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(ch)));
  }
  EXPECT_NE(out.tool_calls[0].id, out.tool_calls[1].id);
}

TEST(Forced, WholeOutputIsTheNamedFunctionsArguments) {
  ToolParserOptions opts;
  opts.make_id = [] { return std::string("call_1"); };
  auto parser = make_output_parser({.forced_function = "get_weather",
                                    .reasoning_format = ReasoningFormat::kThink,
                                    .tool_options = opts});
  const ParsedOutput out =
      parse_all(*parser, "<think>pick Paris</think>\n {\"city\": \"Paris\", \"days\": [1, 2]}\n");
  EXPECT_EQ(out.reasoning, "pick Paris");
  EXPECT_EQ(out.content, "");
  ASSERT_EQ(out.tool_calls.size(), 1u);
  EXPECT_EQ(out.tool_calls[0].name, "get_weather");
  EXPECT_EQ(out.tool_calls[0].arguments, R"({"city": "Paris", "days": [1, 2]})");
}

TEST(Forced, NonJsonOutputIsContent) {
  auto parser = make_forced_call_parser("f");
  const ParsedOutput out = parse_all(*parser, "sorry, no");
  EXPECT_EQ(out.content, "sorry, no");
  EXPECT_TRUE(out.tool_calls.empty());
  EXPECT_EQ(parser->tool_calls(), 0);
}

TEST(NoParsers, NothingToDo) {
  EXPECT_EQ(make_output_parser({}), nullptr);
  EXPECT_EQ(make_tool_call_parser(ToolCallFormat::kNone), nullptr);
  EXPECT_EQ(make_reasoning_parser(ReasoningFormat::kNone, true), nullptr);
}

}  // namespace
}  // namespace turbine::parsers
