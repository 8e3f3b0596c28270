#include "semantic/keyword.h"

#include <gtest/gtest.h>

#include "semantic/metrics.h"

namespace turbine::semantic {
namespace {

KeywordMatcher make(KeywordOperator op, std::vector<std::string> kws,
                    std::vector<std::string> regex = {}, bool case_sensitive = false) {
  KeywordSignal s;
  s.name = "k";
  s.op = op;
  s.keywords = std::move(kws);
  s.regex = std::move(regex);
  s.case_sensitive = case_sensitive;
  auto m = KeywordMatcher::compile(s);
  EXPECT_TRUE(m.has_value()) << m.status().to_string();
  return std::move(m).value();
}

TEST(Keywords, WordsPhrasesAndBoundaries) {
  auto m = make(KeywordOperator::kOr, {"integral", "solve for", "C++"});
  EXPECT_TRUE(m.matches("Compute the INTEGRAL of x"));
  EXPECT_TRUE(m.matches("please solve   for x"));
  EXPECT_TRUE(m.matches("I write C++ daily"));
  EXPECT_FALSE(m.matches("integrals are fun"));  // word boundary
  EXPECT_FALSE(m.matches("resolve form"));
  EXPECT_TRUE(make(KeywordOperator::kOr, {"café"}).matches("un CAFÉ noir"));  // Unicode case
}

TEST(Keywords, Operators) {
  auto all = make(KeywordOperator::kAnd, {"python", "function"});
  EXPECT_TRUE(all.matches("a Python function"));
  EXPECT_FALSE(all.matches("a python class"));
  auto none = make(KeywordOperator::kNor, {"python", "java"});
  EXPECT_TRUE(none.matches("rust please"));
  EXPECT_FALSE(none.matches("java please"));
  auto re = make(KeywordOperator::kOr, {}, {"\\b\\d+\\s*[+*/-]\\s*\\d+\\b"});
  EXPECT_TRUE(re.matches("what is 12 * 7"));
  EXPECT_FALSE(re.matches("what is twelve"));
  auto cs = make(KeywordOperator::kOr, {"AWS"}, {}, true);
  EXPECT_TRUE(cs.matches("deploy on AWS"));
  EXPECT_FALSE(cs.matches("deploy on aws"));
}

TEST(Keywords, RegexErrorsAndInvalidUtf8) {
  EXPECT_TRUE(regex_error("a(b").find("offset") != std::string::npos);
  EXPECT_EQ(regex_error("a(b)"), "");
  auto m = make(KeywordOperator::kOr, {"x"});
  EXPECT_FALSE(m.matches("\xff\xfe invalid"));
  EXPECT_TRUE(m.matches("\xff x \xfe"));
  auto r = Regex::compile("a");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->find_all("banana").size(), 3u);
}

TEST(SemanticMetrics, ExpositionNames) {
  SemanticMetrics m;
  m.decision("math", "qwen3");
  m.block("pii", "B-US_SSN");
  m.signal_latency("keyword", 2e-6);
  m.reload(true);
  std::string text = prometheus_text(m.snapshot());
  EXPECT_NE(text.find("turbine_semantic_decisions_total{decision=\"math\",model=\"qwen3\"} 1"),
            std::string::npos);
  EXPECT_NE(text.find("turbine_semantic_blocks_total{guard=\"pii\",type=\"B-US_SSN\"} 1"),
            std::string::npos);
  EXPECT_NE(
      text.find(
          "turbine_semantic_signal_latency_seconds_bucket{signal=\"keyword\",le=\"1e-05\"} 1"),
      std::string::npos);
  EXPECT_NE(text.find("turbine_semantic_config_reloads_total{result=\"ok\"} 1"), std::string::npos);
  EXPECT_NE(text.find("# TYPE turbine_semantic_cache_entries gauge"), std::string::npos);
}

}  // namespace
}  // namespace turbine::semantic
