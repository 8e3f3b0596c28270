// GrammarCompiler: every constraint kind, the cache (hits on canonical text, LRU eviction by
// count and bytes), one compile for concurrent requests of the same constraint, the spec's names,
// ready() (whether compile() would answer without compiling).
#include <gtest/gtest.h>

#include <thread>

#include "structured/compiler.h"
#include "structured/constraint_spec.h"
#include "test_util.h"

namespace turbine::structured {
namespace {

using Kind = ConstraintSpec::Kind;

TEST(CompilerTest, EveryKindCompiles) {
  GrammarCompiler c(test_util::byte_vocab());
  for (const ConstraintSpec& spec :
       {ConstraintSpec{Kind::kJsonSchema, R"({"type":"integer"})"},
        ConstraintSpec{Kind::kJsonObject, ""}, ConstraintSpec{Kind::kRegex, "[0-9]+"},
        ConstraintSpec{Kind::kChoice, R"(["a","b"])"},
        ConstraintSpec{Kind::kGrammar, "root ::= \"x\""}}) {
    auto g = c.compile(spec);
    ASSERT_TRUE(g.has_value()) << constraint_kind_name(spec.kind) << ": " << g.status().to_string();
  }
  EXPECT_TRUE(test_util::full_match(*c.compile({Kind::kChoice, R"(["a","b"])"}), "b"));
}

TEST(CompilerTest, CacheKeyIsCanonicalJson) {
  GrammarCompiler c(test_util::byte_vocab());
  auto a = c.compile({Kind::kJsonSchema, R"({"type": "object", "properties": {"a": {}}})"});
  auto b = c.compile({Kind::kJsonSchema, "{\"type\":\"object\",\n \"properties\":{\"a\":{}}}"});
  ASSERT_TRUE(a.has_value() && b.has_value());
  EXPECT_EQ(a->get(), b->get());
  // Property order is meaningful (it is the generated order): a different key.
  auto d = c.compile({Kind::kJsonSchema, R"({"properties": {"a": {}}, "type": "object"})"});
  ASSERT_TRUE(d.has_value());
  EXPECT_NE(a->get(), d->get());
  // Same text under another kind is another constraint.
  auto r1 = c.compile({Kind::kRegex, "x"});
  auto r2 = c.compile({Kind::kGrammar, "root ::= \"x\""});
  ASSERT_TRUE(r1.has_value() && r2.has_value());
  EXPECT_NE(r1->get(), r2->get());
  EXPECT_EQ(c.stats().hits, 1u);
}

TEST(CompilerTest, ReadyMeansCompileAnswersAtOnce) {
  GrammarCompiler c(test_util::byte_vocab());
  const ConstraintSpec good{Kind::kJsonSchema, R"({"type": "integer"})"};
  const ConstraintSpec bad{Kind::kRegex, "(ab"};
  EXPECT_FALSE(c.ready(good));
  EXPECT_FALSE(c.ready(bad));
  EXPECT_EQ(c.stats().misses, 0u);  // asking compiles nothing
  ASSERT_TRUE(c.compile(good).has_value());
  ASSERT_FALSE(c.compile(bad).has_value());
  EXPECT_TRUE(c.ready(good));
  EXPECT_TRUE(c.ready({Kind::kJsonSchema, "{\"type\":\"integer\"}"}));  // the canonical key
  EXPECT_TRUE(c.ready(bad));                                            // errors are cached too
  EXPECT_FALSE(c.ready({Kind::kRegex, "ab"}));
}

TEST(CompilerTest, EvictsLeastRecentlyUsed) {
  CompilerOptions o;
  o.cache_entries = 2;
  GrammarCompiler c(test_util::byte_vocab(), o);
  auto a = c.compile({Kind::kRegex, "a"});
  auto b = c.compile({Kind::kRegex, "b"});
  (void)c.compile({Kind::kRegex, "a"});  // a is now the most recent
  (void)c.compile({Kind::kRegex, "c"});  // evicts b
  EXPECT_EQ(c.stats().evictions, 1u);
  EXPECT_EQ(c.stats().entries, 2u);
  auto a2 = c.compile({Kind::kRegex, "a"});
  EXPECT_EQ(a->get(), a2->get());
  auto b2 = c.compile({Kind::kRegex, "b"});
  EXPECT_NE(b->get(), b2->get());  // recompiled
  // Matchers keep their grammar alive after eviction.
  Matcher m(*b);
  EXPECT_TRUE(m.accept_bytes("b"));

  CompilerOptions tiny;
  tiny.cache_bytes = 1;
  GrammarCompiler t(test_util::byte_vocab(), tiny);
  (void)t.compile({Kind::kRegex, "a"});
  (void)t.compile({Kind::kRegex, "b"});
  EXPECT_EQ(t.stats().entries, 1u);  // the newest entry always stays
}

TEST(CompilerTest, ConcurrentRequestsShareOneCompile) {
  auto v = test_util::byte_vocab();
  GrammarCompiler c(v);
  const ConstraintSpec spec{Kind::kJsonSchema,
                            R"({"type":"array","items":{"type":"string","maxLength":40}})"};
  std::vector<std::shared_ptr<const CompiledGrammar>> out(6);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < out.size(); ++i) {
    threads.emplace_back([&, i] {
      auto r = c.compile(spec);
      if (r.has_value()) out[i] = *r;
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& g : out) {
    ASSERT_NE(g, nullptr);
    EXPECT_EQ(g.get(), out[0].get());
  }
  EXPECT_EQ(c.stats().misses, 1u);
  EXPECT_EQ(c.stats().hits, out.size() - 1);
}

TEST(CompilerTest, SpecNamesRoundTrip) {
  for (Kind k : {Kind::kNone, Kind::kJsonSchema, Kind::kJsonObject, Kind::kRegex, Kind::kChoice,
                 Kind::kGrammar}) {
    EXPECT_EQ(parse_constraint_kind(constraint_kind_name(k)), k);
  }
  EXPECT_FALSE(parse_constraint_kind("json").has_value());
  EXPECT_FALSE(ConstraintSpec{}.active());
  EXPECT_TRUE((ConstraintSpec{Kind::kRegex, "a"}).active());
}

TEST(CompilerTest, OptionsValidate) {
  CompilerOptions o;
  EXPECT_TRUE(o.validate().is_ok());
  o.cache_entries = 0;
  EXPECT_FALSE(o.validate().is_ok());
  o = {};
  o.limits.max_dfa_states = 0;
  EXPECT_FALSE(o.validate().is_ok());
}

}  // namespace
}  // namespace turbine::structured
