// SentencePiece ("llama") tokenizer: encodings against llama2.c's run.c, round trips, decode
// rules, and the priority-queue merge against a straightforward rescanning reference.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "test_support/missing_dependency.h"
#include "test_vocab.h"
#include "tokenizer/spm_tokenizer.h"
#include "tokenizer/tokenizer.h"

namespace turbine::tokenizer {
namespace {

using test_util::make_small_vocab;
using test_util::read_llama2c_vocab;
using test_util::shared_assets;

std::filesystem::path tok512_path() {
  return shared_assets() / "models/stories260K/tok512.bin";
}

class StoriesTokenizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto vocab = read_llama2c_vocab(tok512_path(), 512);
    if (!vocab) TURBINE_MISSING_DEPENDENCY("stories260K vocabulary not found at " << tok512_path());
    vocab_ = *vocab;
    auto tok = make_tokenizer(vocab_);
    ASSERT_TRUE(tok.has_value()) << tok.status().to_string();
    tok_ = std::move(tok).value();
  }
  model::VocabSpec vocab_;
  std::unique_ptr<Tokenizer> tok_;
};

struct EncodeCase {
  std::string text;
  std::vector<int32_t> ids;
};

std::vector<EncodeCase> load_fixture() {
  std::ifstream in(std::filesystem::path(TURBINE_SOURCE_DIR) /
                   "tests/fixtures/tokenizer/stories260k_encode.json");
  std::vector<EncodeCase> cases;
  if (!in) return cases;
  const auto doc = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return cases;
  for (const auto& c : doc.at("cases"))
    cases.push_back({c.at("text").get<std::string>(), c.at("ids").get<std::vector<int32_t>>()});
  return cases;
}

TEST_F(StoriesTokenizerTest, MatchesLlama2cEncodings) {
  const auto cases = load_fixture();
  ASSERT_GE(cases.size(), 25u)
      << "fixture tests/fixtures/tokenizer/stories260k_encode.json missing or short";
  for (const auto& c : cases) {
    EXPECT_EQ(tok_->encode(c.text, /*add_special=*/false), c.ids) << "text: " << c.text;
    // run.c generate mode: BOS first, no EOS.
    std::vector<int32_t> with_bos = {1};
    with_bos.insert(with_bos.end(), c.ids.begin(), c.ids.end());
    EXPECT_EQ(tok_->encode(c.text, /*add_special=*/true), with_bos) << "text: " << c.text;
  }
}

TEST_F(StoriesTokenizerTest, RoundTrips) {
  const std::vector<std::string> texts = {
      "Once upon a time, there was a little girl named Lily.",
      " leading space",
      "   three leading, two trailing  ",
      "tabs\tand\nnewlines\r\n",
      "\n",
      " ",
      "caf\u00e9 na\u00efve",
      "\u65e5\u672c\u8a9e",
      "emoji \U0001F600\U0001F44D\U0001F3FD end",
      "mixed: 3.14 <s> </s> <0x41> \\ % | ~",
      "\xE2\x96\x81",  // a literal "▁" decodes as a space (SentencePiece does the same)
  };
  for (const std::string& s : texts) {
    const std::string expected = s == "\xE2\x96\x81" ? " " : s;
    EXPECT_EQ(tok_->decode(tok_->encode(s, false), true), expected) << "text: " << s;
    EXPECT_EQ(tok_->decode(tok_->encode(s, true), true), expected) << "text with BOS: " << s;
  }
  EXPECT_TRUE(tok_->encode("", false).empty());
  EXPECT_EQ(tok_->encode("", true), std::vector<int32_t>{1});
  EXPECT_EQ(tok_->decode({}, true), "");
}

TEST_F(StoriesTokenizerTest, PiecesBytesAndSpecials) {
  EXPECT_EQ(tok_->vocab_size(), 512);
  EXPECT_EQ(tok_->bos_id(), 1);
  EXPECT_EQ(tok_->eos_id(), 2);
  EXPECT_EQ(tok_->piece(265), "\xE2\x96\x81the");
  EXPECT_EQ(tok_->token_bytes(265), " the");
  EXPECT_EQ(tok_->piece(13), "<0x0A>");
  EXPECT_EQ(tok_->token_bytes(13), "\n");
  EXPECT_EQ(tok_->token_bytes(3 + 0xE6), std::string(1, '\xE6'));
  EXPECT_TRUE(tok_->is_special(0));
  EXPECT_TRUE(tok_->is_special(1));
  EXPECT_TRUE(tok_->is_special(2));
  EXPECT_FALSE(tok_->is_special(13));
  EXPECT_FALSE(tok_->is_special(265));
  EXPECT_EQ(tok_->token_bytes(1), "");
  EXPECT_EQ(tok_->piece(-1), "");
  EXPECT_EQ(tok_->piece(512), "");
  EXPECT_EQ(tok_->token_bytes(100000), "");
}

TEST_F(StoriesTokenizerTest, DecodeSpecialAndLeadingSpaceRules) {
  const std::vector<int32_t> ids = tok_->encode("the end", true);  // BOS ▁the ▁end
  EXPECT_EQ(tok_->decode(ids, true), "the end");
  EXPECT_EQ(tok_->decode(ids, false), "<s>the end");
  std::vector<int32_t> with_eos = ids;
  with_eos.push_back(2);
  EXPECT_EQ(tok_->decode(with_eos, true), "the end");
  EXPECT_EQ(tok_->decode(with_eos, false), "<s>the end</s>");
  // Only the piece right after BOS (or at the start) loses its space.
  EXPECT_EQ(tok_->decode({265, 265}, true), "the the");
  EXPECT_EQ(tok_->decode({1, 265, 1, 265}, true), "thethe");
  EXPECT_EQ(tok_->token_text(1, 265, true), "the");
  EXPECT_EQ(tok_->token_text(265, 265, true), " the");
  // A byte token for ' ' after BOS is kept (llama2.c only strips pieces).
  EXPECT_EQ(tok_->token_text(1, 3 + ' ', true), " ");
  // Out-of-range ids decode to nothing rather than failing.
  EXPECT_EQ(tok_->decode({-5, 265, 9999}, true), "the");
}

// llama2.c's encode(), written plainly: O(n^2) rescanning over the current token list.
std::vector<int32_t> reference_encode(const model::VocabSpec& vocab, const std::string& text) {
  std::map<std::string, int32_t> ids;
  for (size_t i = 0; i < vocab.tokens.size(); ++i)
    ids.emplace(vocab.tokens[i], static_cast<int32_t>(i));
  const std::string marker = "\xE2\x96\x81";
  std::vector<int32_t> tokens;
  if (!text.empty()) tokens.push_back(ids.at(marker));
  std::string norm;
  for (char c : text) norm += c == ' ' ? marker : std::string(1, c);
  // The prefix was pushed already; skip nothing else (spaces in the text are in `norm`).
  for (size_t i = 0; i < norm.size();) {
    size_t len = 1;
    while (i + len < norm.size() && len < 4 &&
           (static_cast<unsigned char>(norm[i + len]) & 0xC0) == 0x80)
      ++len;
    auto it = ids.find(norm.substr(i, len));
    if (it != ids.end()) {
      tokens.push_back(it->second);
    } else {
      for (size_t k = 0; k < len; ++k)
        tokens.push_back(static_cast<unsigned char>(norm[i + k]) + 3);
    }
    i += len;
  }
  while (true) {
    float best = -1e10f;
    int best_idx = -1, best_id = -1;
    for (size_t i = 0; i + 1 < tokens.size(); ++i) {
      auto it = ids.find(vocab.tokens[tokens[i]] + vocab.tokens[tokens[i + 1]]);
      if (it != ids.end() && vocab.scores[it->second] > best) {
        best = vocab.scores[it->second];
        best_idx = static_cast<int>(i);
        best_id = it->second;
      }
    }
    if (best_idx < 0) break;
    tokens[best_idx] = best_id;
    tokens.erase(tokens.begin() + best_idx + 1);
  }
  return tokens;
}

TEST_F(StoriesTokenizerTest, PriorityQueueMergeMatchesRescanningReference) {
  const std::vector<std::string> alphabet = {" ", " ", " ", "e", "t",  "a",      "o",      "h", "n",
                                             "s", "i", "r", "d", "l",  "y",      "w",      "T", "L",
                                             ".", ",", "!", "'", "\n", "\u00e9", "\u65e5", "1"};
  std::mt19937 rng(1234);
  std::uniform_int_distribution<size_t> pick(0, alphabet.size() - 1);
  std::uniform_int_distribution<int> length(0, 60);
  for (int iter = 0; iter < 300; ++iter) {
    std::string s;
    for (int n = length(rng); n > 0; --n) s += alphabet[pick(rng)];
    ASSERT_EQ(tok_->encode(s, false), reference_encode(vocab_, s)) << "text: " << s;
  }
}

TEST_F(StoriesTokenizerTest, LongInputEncodesAndRoundTrips) {
  std::string story;
  while (story.size() < 200000)
    story += "Lily's mom said, \"Let's go to the park!\" They played all day.\n";
  const auto ids = tok_->encode(story, true);
  EXPECT_LT(ids.size(), story.size() / 2);  // merges happened
  EXPECT_EQ(tok_->decode(ids, true), story);
}

TEST_F(StoriesTokenizerTest, IllFormedUtf8FallsBackToBytes) {
  const std::string bad = "a\xFF\xC3(\xE6\x97";
  const auto ids = tok_->encode(bad, false);
  EXPECT_EQ(ids, reference_encode(vocab_, bad));
  EXPECT_EQ(tok_->decode(ids, true),
            bad);  // bytes come back unchanged; sanitising is the caller's choice
}

int32_t id_of(const model::VocabSpec& vocab, const std::string& piece) {
  for (size_t i = 0; i < vocab.tokens.size(); ++i) {
    if (vocab.tokens[i] == piece) return static_cast<int32_t>(i);
  }
  return -1;
}

TEST(SpmTokenizer, SpacePrefixEosAndMergeOrder) {
  // Scores fall with the position in this list, so "▁a" outranks "ab".
  const std::string sp = "\xE2\x96\x81";
  auto vocab = make_small_vocab({sp, "a", "b", sp + "a", "ab", sp + "ab", "aa"});
  vocab.add_eos = true;
  auto tok = make_tokenizer(vocab);
  ASSERT_TRUE(tok.has_value()) << tok.status().to_string();
  EXPECT_EQ((*tok)->encode("ab", true), (std::vector<int32_t>{1, id_of(vocab, sp + "ab"), 2}));
  // Without the prefix: "ab" merges directly.
  vocab.add_space_prefix = false;
  auto no_prefix = make_tokenizer(vocab);
  ASSERT_TRUE(no_prefix.has_value());
  EXPECT_EQ((*no_prefix)->encode("ab", false), (std::vector<int32_t>{id_of(vocab, "ab")}));
  EXPECT_EQ((*no_prefix)->decode({id_of(vocab, sp + "a")}, true), " a");  // nothing to strip
  // Equal scores: the leftmost pair merges first.
  EXPECT_EQ((*no_prefix)->encode("aaa", false),
            (std::vector<int32_t>{id_of(vocab, "aa"), id_of(vocab, "a")}));
  // A character without a piece becomes its bytes and never merges.
  EXPECT_EQ((*no_prefix)->encode("a\u00e9b", false),
            (std::vector<int32_t>{id_of(vocab, "a"), 3 + 0xC3, 3 + 0xA9, id_of(vocab, "b")}));
}

TEST(SpmTokenizer, HighestScoreWinsOverPosition) {
  // "bc" outranks "ab": a b c -> a bc, even though "ab" is further left.
  auto vocab = make_small_vocab({"bc", "ab", "a", "b", "c"});
  vocab.add_space_prefix = false;
  auto tok = make_tokenizer(vocab);
  ASSERT_TRUE(tok.has_value());
  EXPECT_EQ((*tok)->encode("abc", false),
            (std::vector<int32_t>{id_of(vocab, "a"), id_of(vocab, "bc")}));
}

TEST(SpmTokenizer, UnknownTokenWhenNoByteTokens) {
  model::VocabSpec vocab;
  vocab.model = "llama";
  vocab.tokens = {"<unk>", "<s>", "</s>", "a"};
  vocab.token_types = {2, 3, 3, 1};
  vocab.scores = {0, 0, 0, -1};
  vocab.unk_id = 0;
  vocab.bos_id = 1;
  vocab.eos_id = 2;
  vocab.add_space_prefix = false;
  auto tok = make_tokenizer(vocab);
  ASSERT_TRUE(tok.has_value()) << tok.status().to_string();
  EXPECT_EQ((*tok)->encode("a\u00e9", false), (std::vector<int32_t>{3, 0, 0}));
  EXPECT_EQ((*tok)->decode({3, 0}, false), "a<unk>");
  EXPECT_EQ((*tok)->decode({3, 0}, true), "a");
}

TEST(SpmTokenizer, RejectsMalformedVocabularies) {
  auto vocab = make_small_vocab({"a"});
  {
    auto bad = vocab;
    bad.scores.pop_back();
    auto r = make_tokenizer(bad);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(r.status().field(), "tokenizer.ggml.scores");
  }
  {
    auto bad = vocab;
    bad.bos_id = 100000;
    auto r = make_tokenizer(bad);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.status().field(), "tokenizer.ggml.bos_token_id");
  }
  {
    auto bad = vocab;
    bad.token_types[5] = 42;
    EXPECT_FALSE(make_tokenizer(bad).has_value());
  }
  {
    auto undefined_type = vocab;  // llama.cpp's "undefined" (0) counts as a normal piece
    undefined_type.token_types.back() = 0;
    undefined_type.add_space_prefix = false;
    auto r = make_tokenizer(undefined_type);
    ASSERT_TRUE(r.has_value()) << r.status().to_string();
    EXPECT_EQ((*r)->encode("a", false), std::vector<int32_t>{259});
  }
  {
    auto bad = vocab;
    bad.tokens.clear();
    bad.scores.clear();
    bad.token_types.clear();
    EXPECT_EQ(make_tokenizer(bad).status().code(), StatusCode::kInvalidArgument);
  }
  {
    model::VocabSpec bad;  // neither byte tokens nor UNK: some text could not be encoded
    bad.model = "llama";
    bad.tokens = {"a", "b"};
    auto r = make_tokenizer(bad);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.status().field(), "tokenizer.ggml.unknown_token_id");
  }
}

TEST(SpmTokenizer, OtherModelsAreUnimplemented) {
  model::VocabSpec vocab = make_small_vocab({"a"});
  vocab.model = "bert";
  auto r = make_tokenizer(vocab);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(r.status().message().find("bert"), std::string::npos);

  vocab.model = "hf";  // tokenizer.json vocabularies need the file
  r = make_tokenizer(vocab);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace turbine::tokenizer
