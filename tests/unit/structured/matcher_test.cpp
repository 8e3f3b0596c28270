// The matcher on real vocabularies (llama3, qwen3, gpt2, llama2, stories260K): on seeded random
// walks through JSON schemas, regexes and grammars, every step's bitmask must equal the one
// computed without the token-mask cache and agree with accept_token for every token of the
// vocabulary, and the walk must end in a complete output.
// Adversarial tokenizations: escapes and quotes inside tokens, multi-byte characters split across
// byte tokens, tokens that close one string and open the next key, numbers glued to punctuation.
#include <gtest/gtest.h>

#include <random>

#include "structured/compiler.h"
#include "structured/ebnf.h"
#include "structured/json_schema.h"
#include "structured/regex.h"
#include "test_util.h"
#include "walk.h"

namespace turbine::structured {
namespace {

using test_util::mask_disagreements;
using test_util::real_tokenizer;

const char* kSchema = R"({
  "type": "object",
  "properties": {
    "name": {"type": "string"},
    "tag": {"type": "string", "maxLength": 6},
    "when": {"type": "string", "format": "date"},
    "score": {"type": "number"},
    "n": {"type": "integer", "minimum": -3, "maximum": 250},
    "kind": {"enum": ["a\"b", "é", null]},
    "tree": {"$ref": "#/$defs/tree"},
    "list": {"type": "array", "items": {"type": "string", "pattern": "^[a-z]{1,3}$"}, "maxItems": 3}
  },
  "required": ["name", "n", "tree"],
  "$defs": {"tree": {"type": "object", "properties": {
      "v": {"type": "boolean"}, "kids": {"type": "array", "items": {"$ref": "#/$defs/tree"}}},
      "required": ["v"]}}
})";

class RealVocabTest : public ::testing::TestWithParam<std::string> {
 protected:
  std::shared_ptr<const Vocabulary> vocab() {
    auto tok = real_tokenizer(GetParam());
    if (tok == nullptr) return nullptr;
    auto v = Vocabulary::from_tokenizer(*tok);
    EXPECT_TRUE(v.has_value()) << v.status().to_string();
    return v.has_value() ? *v : nullptr;
  }

  // Walks `g` with a few seeds, checking masks on the first steps and every 7th after.
  void walk_and_check(const std::shared_ptr<const CompiledGrammar>& g, int seeds) {
    ASSERT_NE(g, nullptr);
    const Vocabulary& v = g->vocab();
    for (int seed = 0; seed < seeds; ++seed) {
      std::mt19937_64 rng(static_cast<uint64_t>(seed) * 7919 + 1);
      Matcher m(g);
      const test_util::Walker walker(v);
      size_t step = 0;
      std::string text;
      test_util::WalkOptions o;
      o.max_tokens = 1;
      o.soft_tokens = 40;
      while (!m.is_terminated() && step < 600) {
        {
          std::vector<uint32_t> cached(v.mask_words()), reference(v.mask_words());
          m.fill_next_token_bitmask(cached.data());
          m.fill_next_token_bitmask_reference(reference.data());
          ASSERT_EQ(cached, reference) << GetParam() << " seed " << seed << " step " << step;
        }
        if (step < 12 || step % 7 == 0) {
          std::string first;
          ASSERT_EQ(mask_disagreements(m, v, &first), 0u)
              << GetParam() << " seed " << seed << " step " << step << ": " << first;
        }
        o.soft_tokens = step >= 40 ? 0 : 40;
        auto r = walker.walk(m, rng, o);
        ASSERT_EQ(r.tokens.size(), 1u) << "walk stuck at step " << step;
        text += r.text;
        ++step;
      }
      EXPECT_TRUE(m.is_terminated())
          << GetParam() << " seed " << seed << " did not finish: " << m.min_completion_bytes()
          << " " << text.substr(0, 2000);
    }
  }
};

TEST_P(RealVocabTest, MasksAgreeWithAcceptOnJsonSchemaWalks) {
  auto v = vocab();
  if (v == nullptr) {
    if (test_util::in_ci()) FAIL() << "missing tokenizer " << GetParam();
    GTEST_SKIP() << "missing tokenizer " << GetParam();
  }
  walk_and_check(test_util::compile_or_die(json_schema_to_grammar(kSchema, {}, CompileLimits{}), v),
                 2);
}

TEST_P(RealVocabTest, MasksAgreeOnRegexAndGrammarWalks) {
  auto v = vocab();
  if (v == nullptr) {
    if (test_util::in_ci()) FAIL() << "missing tokenizer " << GetParam();
    GTEST_SKIP() << "missing tokenizer " << GetParam();
  }
  walk_and_check(
      test_util::compile_or_die(
          regex_to_grammar(R"((\d{1,3}\.){3}\d{1,3}|[A-Z][a-zé]+( [a-z]+)*!)", CompileLimits{}), v),
      2);
  walk_and_check(test_util::compile_or_die(ebnf_to_grammar(R"g(
      root ::= expr
      expr ::= term (("+" | "-") term)*
      term ::= [0-9]+ | "(" expr ")" | "\"" [^"\\]* "\""
    )g",
                                                           CompileLimits{}),
                                           v),
                 2);
}

// Valid instances as the model's own tokenizer splits them (escapes inside tokens, quotes glued to
// punctuation, byte-fallback pieces of rare characters) must replay, with masks that agree.
TEST_P(RealVocabTest, ReplaysTokenizedInstances) {
  auto v = vocab();
  if (v == nullptr) {
    if (test_util::in_ci()) FAIL() << "missing tokenizer " << GetParam();
    GTEST_SKIP() << "missing tokenizer " << GetParam();
  }
  auto tok = real_tokenizer(GetParam());
  auto g = test_util::compile_or_die(json_schema_to_grammar(kSchema, {}, CompileLimits{}), v);
  ASSERT_NE(g, nullptr);
  const std::vector<std::string> docs = {
      R"({"name": "He said \"hi\"\n\tand left \\ \/ \u00e9\ud7ff", "n": 250, "tree": {"v": true}})",
      "{\"name\": \"日本語のテキスト é 😀 𝄞 ꙮ\", \"tag\": \"ñandú\", \"n\": -3, \"tree\": "
      "{\"v\": false, \"kids\": [{\"v\": true}, {\"v\": false, \"kids\": []}]}}",
      R"({"name":"","when":"2024-02-29","score":-12.5e-3,"n":0,"kind":"a\"b","tree":{"v":true},"list":["ab","c"]})",
      "{\n  \"name\": \"x\",\n  \"score\": 1E+22,\n  \"n\": 17,\n  \"kind\": null,\n  \"tree\": "
      "{\"v\": true}\n}",
  };
  size_t replayed = 0;
  for (const std::string& doc : docs) {
    // Tokenize behind an anchor so SentencePiece's dummy-prefix space stays out of the output.
    std::vector<int32_t> ids = tok->encode("a" + doc, false);
    std::string bytes;
    size_t skip = 0;
    while (skip < ids.size() && bytes.size() < 2) bytes += v->bytes(ids[skip++]);
    if (bytes != "a" && bytes != " a") {
      ids = tok->encode(doc, false);
      skip = 0;
    }
    ids.erase(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(skip));
    std::string joined;
    for (int32_t id : ids) joined += v->bytes(id);
    if (joined != doc) continue;  // a normalizing tokenizer changed the text
    ++replayed;
    Matcher m(g);
    for (size_t i = 0; i < ids.size(); ++i) {
      if (i % 5 == 0) {
        std::string first;
        ASSERT_EQ(mask_disagreements(m, *v, &first), 0u)
            << GetParam() << " at " << i << ": " << first;
      }
      ASSERT_TRUE(m.accept_token(ids[i]))
          << GetParam() << " rejected token " << i << " '" << v->bytes(ids[i]) << "' of " << doc;
    }
    EXPECT_TRUE(m.can_terminate()) << GetParam() << ": " << doc;
    EXPECT_TRUE(m.accept_token(v->stop_ids().front()));
  }
  EXPECT_GE(replayed, 3u) << GetParam();
}

INSTANTIATE_TEST_SUITE_P(Vocabularies, RealVocabTest,
                         ::testing::Values("llama3", "qwen3", "gpt2", "llama2", "stories260K"));

}  // namespace
}  // namespace turbine::structured
