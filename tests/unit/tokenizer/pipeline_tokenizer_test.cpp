// PipelineTokenizer (WordPiece, Unigram, and BPE with offsets) against Hugging Face:
//   * the Rust `tokenizers` library through Python (tests/fixtures/encoders/tokenizers/*/
//     expected.json, written by tests/tools/make_encoder_fixtures.py): ids, type ids, offsets
//     (code points, as Python reports them) and decode(skip_special_tokens) for single texts and
//     pairs;
//   * tokenizers.js over the generated multilingual corpus (as hf_parity_test.cpp does for BPE):
//     ids with and without special tokens, 100% except the documented places where tokenizers.js
//     and the Rust crate disagree (then we follow Rust; see kJsDivergences below);
//   * the BPE path gives the same ids as HfTokenizer over the corpus.
// Needs node and `npm ci` in tests/tools for the corpus tests; they skip without it, except under
// CI=true where they fail.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <utf8proc.h>
#include <nlohmann/json.hpp>

#include "test_vocab.h"
#include "tokenizer/hf_tokenizer.h"
#include "tokenizer/pipeline_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace turbine::tokenizer {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kFixtures = fs::path(TURBINE_SOURCE_DIR) / "tests" / "fixtures" / "encoders";
const fs::path kTools = fs::path(TURBINE_SOURCE_DIR) / "tests" / "tools";

bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::vector<std::string> read_lines(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

json read_json(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return json::parse(ss.str());
}

std::unique_ptr<PipelineTokenizer> load(const fs::path& tokenizer_json) {
  auto tok = PipelineTokenizer::from_files(tokenizer_json, {});
  EXPECT_TRUE(tok.has_value()) << tok.status().to_string();
  return tok.has_value() ? std::move(tok).value() : nullptr;
}

class PythonReferenceTest : public ::testing::TestWithParam<std::string> {};

TEST_P(PythonReferenceTest, IdsTypeIdsOffsetsAndDecodeMatchTokenizers) {
  const fs::path dir = kFixtures / "tokenizers" / GetParam();
  auto tok = load(dir / "tokenizer.json");
  ASSERT_NE(tok, nullptr);
  const json cases = read_json(dir / "expected.json")["cases"];
  ASSERT_GE(cases.size(), 30u);
  size_t failures = 0;
  for (const json& c : cases) {
    const std::string text = c["text"].get<std::string>();
    std::optional<std::string> pair;
    if (c.contains("pair")) pair = c["pair"].get<std::string>();
    const Encoding e = tok->encode(
        text, pair ? std::optional<std::string_view>(*pair) : std::optional<std::string_view>(),
        EncodeOptions{});
    std::vector<std::vector<uint32_t>> offsets;
    // Offsets of the pair's tokens are into the pair text.
    for (size_t i = 0; i < e.size(); ++i) {
      const std::string& src = e.sequence_ids[i] == 1 ? *pair : text;
      const ByteSpan chars = to_char_offsets(src, {e.offsets[i]})[0];
      offsets.push_back({chars.begin, chars.end});
    }
    std::vector<int> seq_ids;
    for (int8_t s : e.sequence_ids) seq_ids.push_back(s);
    std::vector<int> want_seq;
    for (const json& s : c["sequence_ids"]) want_seq.push_back(s.is_null() ? -1 : s.get<int>());
    const std::string decoded = tok->decode(e.ids, true);
    const bool ok = e.ids == c["ids"].get<std::vector<int32_t>>() &&
                    e.type_ids == c["type_ids"].get<std::vector<int32_t>>() &&
                    offsets == c["offsets"].get<std::vector<std::vector<uint32_t>>>() &&
                    seq_ids == want_seq && decoded == c["decoded"].get<std::string>();
    if (!ok && ++failures <= 8) {
      ADD_FAILURE() << GetParam() << " mismatch for " << json(text).dump()
                    << (pair ? " / " + json(*pair).dump() : "") << "\n  ids " << json(e.ids).dump()
                    << "\n want " << c["ids"].dump() << "\n  types " << json(e.type_ids).dump()
                    << "\n want " << c["type_ids"].dump() << "\n  offsets " << json(offsets).dump()
                    << "\n want " << c["offsets"].dump() << "\n  decoded " << json(decoded).dump()
                    << "\n want " << c["decoded"].dump();
    }
  }
  EXPECT_EQ(failures, 0u) << "of " << cases.size();
}

INSTANTIATE_TEST_SUITE_P(Fixtures, PythonReferenceTest,
                         ::testing::Values("wordpiece", "unigram", "unigram_bytes"),
                         [](const auto& info) { return info.param; });

// The generated corpus and tokenizers.js's ids for `tokenizer_json`, or why they are missing.
struct JsReference {
  std::vector<std::string> texts;
  std::vector<json> expected;
  std::string missing;
};

JsReference js_reference(const fs::path& tokenizer_json, const std::string& name) {
  JsReference r;
  if (std::system("node --version > /dev/null 2>&1") != 0) {
    r.missing = "node is not installed";
    return r;
  }
  if (!fs::exists(kTools / "node_modules" / "@huggingface" / "tokenizers" / "package.json")) {
    r.missing = "@huggingface/tokenizers is not installed (run `npm ci` in tests/tools)";
    return r;
  }
  char tmpl[] = "/tmp/turbine_pipeline_parity_XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    r.missing = "mkdtemp failed";
    return r;
  }
  const fs::path tmp = tmpl;
  const fs::path corpus = tmp / "corpus.jsonl";
  const fs::path expected = tmp / (name + ".jsonl");
  const int rc1 =
      std::system(("node " + shell_quote((kTools / "make_tokenizer_corpus.mjs").string()) + " > " +
                   shell_quote(corpus.string()))
                      .c_str());
  const int rc2 =
      std::system(("cd " + shell_quote(kTools.string()) + " && node hf_tokenize.mjs " +
                   shell_quote(tokenizer_json.string()) + " < " + shell_quote(corpus.string()) +
                   " > " + shell_quote(expected.string()))
                      .c_str());
  if (rc1 != 0 || rc2 != 0) {
    r.missing = "running the node reference failed";
  } else {
    r.texts = read_lines(corpus);
    for (const std::string& line : read_lines(expected)) r.expected.push_back(json::parse(line));
  }
  std::error_code ec;
  fs::remove_all(tmp, ec);
  return r;
}

// Where tokenizers.js differs from the Rust crate (which transformers uses), we follow Rust:
//   * BertNormalizer's clean_text: Rust removes unassigned code points and noncharacters
//     (category Cn) as control characters, tokenizers.js keeps them (they become [UNK]);
//   * tokenizers.js pads CJK ideographs with spaces only inside the BMP (it walks UTF-16 units)
//     and lowercases with final-sigma context (Rust maps each character alone).
bool js_divergence(const std::string& text) {
  for (size_t i = 0; i < text.size();) {
    const uint32_t cp = next_code_point(text, i);
    if (cp >= 0x20000 || cp == 0x3A3) return true;
    if (utf8proc_category(static_cast<utf8proc_int32_t>(cp)) == UTF8PROC_CATEGORY_CN) return true;
  }
  return false;
}

class JsCorpusTest : public ::testing::TestWithParam<std::string> {};

TEST_P(JsCorpusTest, IdsMatchTokenizersJs) {
  const std::string name = GetParam();
  const fs::path tokenizer_json = kFixtures / "tokenizers" / name / "tokenizer.json";
  const JsReference ref = js_reference(tokenizer_json, name);
  if (!ref.missing.empty()) {
    if (in_ci()) FAIL() << "parity reference unavailable under CI: " << ref.missing;
    GTEST_SKIP() << ref.missing;
  }
  auto tok = load(tokenizer_json);
  ASSERT_NE(tok, nullptr);
  ASSERT_GE(ref.texts.size(), 2000u);
  ASSERT_EQ(ref.texts.size(), ref.expected.size());
  size_t mismatches = 0, divergent = 0;
  for (size_t i = 0; i < ref.texts.size(); ++i) {
    const std::string text = json::parse(ref.texts[i]).get<std::string>();
    const json& want = ref.expected[i];
    const auto ids = tok->encode(text, false);
    const auto ids_special = tok->encode(text, true);
    if (ids == want["ids"].get<std::vector<int32_t>>() &&
        ids_special == want["ids_special"].get<std::vector<int32_t>>())
      continue;
    if (js_divergence(text)) {
      ++divergent;
      continue;
    }
    if (++mismatches <= 6) {
      ADD_FAILURE() << name << " mismatch for " << ref.texts[i] << "\n  got  "
                    << json(ids_special).dump() << "\n  want " << want["ids_special"].dump();
    }
  }
  EXPECT_EQ(mismatches, 0u) << "of " << ref.texts.size();
  // The documented divergences stay a small minority of the corpus.
  EXPECT_LT(divergent, ref.texts.size() / 10);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, JsCorpusTest, ::testing::Values("wordpiece", "unigram"),
                         [](const auto& info) { return info.param; });

class BpeCorpusTest : public ::testing::TestWithParam<std::string> {};

TEST_P(BpeCorpusTest, BpePathMatchesHfTokenizerOverCorpus) {
  const fs::path dir = test_util::shared_assets() / "tokenizers" / GetParam();
  fs::path tokenizer_json = dir / "tokenizer.json";
  const fs::path unpacked =
      fs::temp_directory_path() / ("turbine_pipeline_" + GetParam() + ".json");
  if (!fs::exists(tokenizer_json) && fs::exists(dir / "tokenizer.json.gz")) {
    ASSERT_EQ(std::system(("gzip -dc " + shell_quote((dir / "tokenizer.json.gz").string()) + " > " +
                           shell_quote(unpacked.string()))
                              .c_str()),
              0);
    tokenizer_json = unpacked;
  }
  if (!fs::exists(tokenizer_json)) {
    if (in_ci()) FAIL() << "missing " << tokenizer_json;
    GTEST_SKIP() << "missing " << tokenizer_json;
  }
  const JsReference ref = js_reference(tokenizer_json, GetParam());
  if (!ref.missing.empty()) {
    if (in_ci()) FAIL() << ref.missing;
    GTEST_SKIP() << ref.missing;
  }
  auto pipeline = load(tokenizer_json);
  auto hf = HfTokenizer::from_files(tokenizer_json, {});
  ASSERT_NE(pipeline, nullptr);
  ASSERT_TRUE(hf.has_value());
  size_t mismatches = 0;
  for (const std::string& line : ref.texts) {
    const std::string text = json::parse(line).get<std::string>();
    const Encoding e = pipeline->encode(text, std::nullopt, EncodeOptions{});
    if (e.ids != (*hf)->encode(text, true) && ++mismatches <= 5)
      ADD_FAILURE() << "mismatch for " << line;
    // Byte-level offsets cover the text in order.
    for (size_t i = 0; i < e.size(); ++i) {
      ASSERT_LE(e.offsets[i].begin, e.offsets[i].end);
      ASSERT_LE(e.offsets[i].end, text.size());
    }
  }
  EXPECT_EQ(mismatches, 0u);
  std::error_code ec;
  fs::remove(unpacked, ec);
}

INSTANTIATE_TEST_SUITE_P(SharedTokenizers, BpeCorpusTest, ::testing::Values("gpt2", "qwen3"),
                         [](const auto& info) { return info.param; });

TEST(PipelineTokenizerTest, MakeTokenizerDispatchesWordPieceAndUnigram) {
  for (const char* name : {"wordpiece", "unigram"}) {
    model::VocabSpec vocab;
    vocab.model = "hf";
    vocab.tokenizer_json = kFixtures / "tokenizers" / name / "tokenizer.json";
    auto tok = make_tokenizer(vocab);
    ASSERT_TRUE(tok.has_value()) << tok.status().to_string();
    EXPECT_NE(dynamic_cast<const PipelineTokenizer*>(tok->get()), nullptr);
    EXPECT_FALSE((*tok)->encode("Hello world", true).empty());
  }
}

TEST(PipelineTokenizerTest, LongWordsBecomeOneUnknownAndUnknownCharactersToo) {
  auto tok = load(kFixtures / "tokenizers" / "wordpiece" / "tokenizer.json");
  ASSERT_NE(tok, nullptr);
  const int32_t unk = tok->token_to_id("[UNK]");
  const std::string long_word(101, 'a');
  const Encoding e = tok->encode(long_word + " hello", std::nullopt, EncodeOptions{false, 0});
  ASSERT_GE(e.size(), 2u);
  EXPECT_EQ(e.ids[0], unk);
  EXPECT_EQ(e.offsets[0], (ByteSpan{0, 101}));
  EXPECT_NE(e.ids[1], unk);
  // An emoji matches no piece: the whole word is unknown, its span is the word's bytes.
  const Encoding f = tok->encode("x\xF0\x9F\x8D\x95y", std::nullopt, EncodeOptions{false, 0});
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f.ids[0], unk);
  EXPECT_EQ(f.offsets[0], (ByteSpan{0, 6}));
}

TEST(PipelineTokenizerTest, TruncatesLongestFirstAndKeepsSpecialTokens) {
  auto tok = load(kFixtures / "tokenizers" / "wordpiece" / "tokenizer.json");
  ASSERT_NE(tok, nullptr);
  const std::string a = "the the the the the the the the";  // 8 tokens
  const std::string b = "river river";                      // 2 tokens
  EXPECT_EQ(tok->num_special_tokens(false), 2u);
  EXPECT_EQ(tok->num_special_tokens(true), 3u);
  const Encoding full = tok->encode(a, b, EncodeOptions{});
  ASSERT_EQ(full.size(), 13u);
  const Encoding cut = tok->encode(a, b, EncodeOptions{true, 9});
  ASSERT_EQ(cut.size(), 9u);
  // 6 text tokens left: the longer text gave up 4, then they alternate: 4 + 2.
  int first = 0, second = 0;
  for (int8_t s : cut.sequence_ids) {
    if (s == 0) ++first;
    if (s == 1) ++second;
  }
  EXPECT_EQ(first, 4);
  EXPECT_EQ(second, 2);
  EXPECT_EQ(cut.ids.front(), tok->token_to_id("[CLS]"));
  EXPECT_EQ(cut.ids.back(), tok->token_to_id("[SEP]"));
  const Encoding single = tok->encode(a, std::nullopt, EncodeOptions{true, 4});
  ASSERT_EQ(single.size(), 4u);
  EXPECT_EQ(single.ids.back(), tok->token_to_id("[SEP]"));
}

TEST(PipelineTokenizerTest, EmptyTextGivesOnlySpecialTokens) {
  auto tok = load(kFixtures / "tokenizers" / "unigram" / "tokenizer.json");
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->encode("", true), (std::vector<int32_t>{0, 2}));
  EXPECT_TRUE(tok->encode("", false).empty());
  // Ill-formed UTF-8 is read as U+FFFD, never a crash.
  EXPECT_FALSE(tok->encode(std::string("a\xC3(b\xFF", 5), true).empty());
}

}  // namespace
}  // namespace turbine::tokenizer

namespace turbine::tokenizer {
namespace {

TEST(AlignedNormalizerTest, NmtRemovesControlsAndMapsSpacesKeepingOffsets) {
  auto n = AlignedNormalizer::parse(nlohmann::json{{"type", "Nmt"}});
  ASSERT_TRUE(n.has_value());
  AlignedText t = AlignedText::from_original(
      "a\x01"
      "b\tc\xE2\x80\x8B"
      "d");
  n->normalize(t);
  EXPECT_EQ(t.text, "ab c d");
  EXPECT_EQ(t.original(0, 1), (ByteSpan{0, 1}));
  EXPECT_EQ(t.original(1, 2), (ByteSpan{2, 3}));
  EXPECT_EQ(t.original(2, 3), (ByteSpan{3, 4}));  // the tab
  EXPECT_EQ(t.original(4, 5), (ByteSpan{5, 8}));  // U+200B became a space
  EXPECT_EQ(t.original(5, 6), (ByteSpan{8, 9}));
}

TEST(AlignedNormalizerTest, ComposedAndExpandedCharactersMapToTheirSources) {
  auto nfkc = AlignedNormalizer::parse(nlohmann::json{{"type", "NFKC"}});
  ASSERT_TRUE(nfkc.has_value());
  // "e" + combining acute composes to one character with the span of "e"; the ligature "ﬁ"
  // expands to "fi", both with its span.
  AlignedText t = AlignedText::from_original("e\xCC\x81 \xEF\xAC\x81");
  nfkc->normalize(t);
  EXPECT_EQ(t.text, "\xC3\xA9 fi");
  EXPECT_EQ(t.original(0, 2), (ByteSpan{0, 1}));
  EXPECT_EQ(t.original(3, 4), (ByteSpan{4, 7}));
  EXPECT_EQ(t.original(4, 5), (ByteSpan{4, 7}));
  // Unknown types are refused by name.
  auto bad = AlignedNormalizer::parse(nlohmann::json{{"type", "Whatever"}});
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.status().code(), StatusCode::kUnimplemented);
}

TEST(PrecompiledCharsmapTest, RejectsMalformedBlobsAndBase64) {
  EXPECT_FALSE(base64_decode("ab$c").has_value());
  EXPECT_EQ(*base64_decode("aGVsbG8="), "hello");
  EXPECT_FALSE(PrecompiledCharsmap::parse(std::string_view("\x10\x00\x00\x00", 4)).has_value());
  auto empty = PrecompiledCharsmap::parse("");
  ASSERT_TRUE(empty.has_value());
  EXPECT_FALSE(empty->transform("a").has_value());
}

// A hand-built darts-clone array with one key, "a" -> "b": the root (unit 0, offset 0) leads to
// unit 97 (label 'a', has-leaf bit, offset 1), whose value unit 97 ^ 1 = 96 (MSB set) holds
// index 0 of the replacement strings "b\0".
std::string one_key_charsmap() {
  std::vector<uint32_t> units(128, 0);
  units[97] = (1u << 10) | (1u << 8) | 97u;
  units[96] = (1u << 31) | 0u;
  std::string blob;
  const auto put = [&](uint32_t v) {
    for (int b = 0; b < 4; ++b) blob.push_back(static_cast<char>((v >> (8 * b)) & 0xFF));
  };
  put(static_cast<uint32_t>(units.size() * 4));
  for (uint32_t u : units) put(u);
  blob += std::string("b\0", 2);
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string b64;
  for (size_t i = 0; i < blob.size(); i += 3) {
    uint32_t v = static_cast<uint8_t>(blob[i]) << 16;
    if (i + 1 < blob.size()) v |= static_cast<uint8_t>(blob[i + 1]) << 8;
    if (i + 2 < blob.size()) v |= static_cast<uint8_t>(blob[i + 2]);
    b64 += kAlphabet[(v >> 18) & 63];
    b64 += kAlphabet[(v >> 12) & 63];
    b64 += i + 1 < blob.size() ? kAlphabet[(v >> 6) & 63] : '=';
    b64 += i + 2 < blob.size() ? kAlphabet[v & 63] : '=';
  }
  return b64;
}

TEST(PrecompiledCharsmapTest, LooksUpPrefixesAndReplacesGraphemesWithOffsets) {
  const std::string b64 = one_key_charsmap();
  auto blob = base64_decode(b64);
  ASSERT_TRUE(blob.has_value());
  auto map = PrecompiledCharsmap::parse(*blob);
  ASSERT_TRUE(map.has_value()) << map.status().to_string();
  EXPECT_EQ(map->transform("a"), std::optional<std::string_view>("b"));
  EXPECT_EQ(map->transform("ab"), std::optional<std::string_view>("b"));  // first prefix wins
  EXPECT_FALSE(map->transform("x").has_value());
  EXPECT_FALSE(map->transform("").has_value());

  auto n = AlignedNormalizer::parse(
      nlohmann::json{{"type", "Precompiled"}, {"precompiled_charsmap", b64}});
  ASSERT_TRUE(n.has_value()) << n.status().to_string();
  // "x" stays; "a" becomes "b"; "a" + U+0301 is one grapheme under 6 bytes whose lookup matches
  // its prefix "a", so the whole cluster becomes "b" (spm_precompiled's behaviour), with the
  // span of the whole cluster's first character.
  AlignedText t = AlignedText::from_original("xa a\xCC\x81y");
  n->normalize(t);
  EXPECT_EQ(t.text, "xb by");
  EXPECT_EQ(t.original(1, 2), (ByteSpan{1, 2}));
  EXPECT_EQ(t.original(3, 4), (ByteSpan{3, 4}));
  EXPECT_EQ(t.original(4, 5), (ByteSpan{6, 7}));
  // A null charsmap (some exports write one) normalizes nothing.
  auto null_map = AlignedNormalizer::parse(
      nlohmann::json{{"type", "Precompiled"}, {"precompiled_charsmap", nullptr}});
  ASSERT_TRUE(null_map.has_value());
  AlignedText u = AlignedText::from_original("abc");
  null_map->normalize(u);
  EXPECT_EQ(u.text, "abc");
}

}  // namespace
}  // namespace turbine::tokenizer
