// Unit tests of the tokenizer.json components on small in-memory tokenizers (the full-size
// tokenizers are compared with tokenizers.js in hf_parity_test.cpp).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tokenizer/byte_level.h"
#include "tokenizer/detokenizer.h"
#include "tokenizer/hf_pre_tokenizer.h"
#include "tokenizer/hf_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode_regex.h"

namespace turbine::tokenizer {
namespace {

using nlohmann::json;

// Byte-level vocabulary (ids 0..255) plus `extra` pieces, with merges.
json byte_level_tokenizer(const std::vector<std::string>& extra, const json& merges) {
  json vocab = json::object();
  int id = 0;
  for (int b = 0; b < 256; ++b) vocab[std::string(byte_level_char(static_cast<uint8_t>(b)))] = id++;
  for (const std::string& e : extra) vocab[e] = id++;
  return {
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}},
      {"added_tokens", json::array()},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
      {"post_processor", nullptr},
      {"decoder", {{"type", "ByteLevel"}}}};
}

std::unique_ptr<HfTokenizer> load(const json& j, const json& config = json::object()) {
  auto t = HfTokenizer::from_json(j.dump(), config.dump());
  EXPECT_TRUE(t.has_value()) << t.status().to_string();
  return t.has_value() ? std::move(*t) : nullptr;
}

TEST(HfTokenizer, BothMergeFormatsAndRankOrder) {
  const std::vector<std::string> extra = {"Ġt", "he", "Ġthe", "Ġth"};
  auto a = load(byte_level_tokenizer(extra, json{"Ġ t", "h e", "Ġt he", "Ġt h"}));
  auto b = load(byte_level_tokenizer(
      extra, json::array({json::array({"Ġ", "t"}), json::array({"h", "e"}),
                          json::array({"Ġt", "he"}), json::array({"Ġt", "h"})})));
  ASSERT_TRUE(a && b);
  const auto ids = a->encode("the the", false);
  EXPECT_EQ(ids, b->encode("the the", false));
  // Byte ids equal byte values here. "the" has no leading space: t + (h+e); " the" merges Ġ+t,
  // h+e, then Ġt+he (rank 2 beats Ġt+h).
  EXPECT_EQ(ids, (std::vector<int32_t>{'t', 256 + 1, 256 + 2}));
  EXPECT_EQ(a->decode(ids, false), "the the");
  EXPECT_EQ(a->piece(256 + 2), "Ġthe");
  EXPECT_EQ(a->token_bytes(256 + 2), " the");
}

TEST(HfTokenizer, AddedTokensSplitFirstWithStripFlags) {
  json j = byte_level_tokenizer({}, json::array());
  j["added_tokens"] = json::array({
      {{"id", 300}, {"content", "<|im_start|>"}, {"special", true}},
      {{"id", 301},
       {"content", "<tool>"},
       {"special", false},
       {"normalized", false},
       {"lstrip", true},
       {"rstrip", true}},
  });
  auto t = load(j, {{"eos_token", "<|im_start|>"}});
  ASSERT_TRUE(t);
  EXPECT_EQ(t->encode("<|im_start|>", false), (std::vector<int32_t>{300}));
  EXPECT_EQ(t->encode("a  <tool>  b", false), (std::vector<int32_t>{'a', 301, 'b'}));
  EXPECT_TRUE(t->is_special(300));
  EXPECT_FALSE(t->is_special(301));
  EXPECT_EQ(t->eos_id(), 300);
  EXPECT_EQ(t->decode({300, 'a'}, true), "a");
  EXPECT_EQ(t->decode({300, 'a'}, false), "<|im_start|>a");
  EXPECT_EQ(t->vocab_size(), 302);
}

TEST(HfTokenizer, ByteFallbackUnknownAndMetaspaceDecoding) {
  // A llama2-style tokenizer: Prepend + Replace normalizer, byte fallback, Strip decoder.
  json vocab = {{"<unk>", 0},
                {"<s>", 1},
                {"</s>", 2},
                {"\xE2\x96\x81", 3},
                {"a", 4},
                {"\xE2\x96\x81"
                 "a",
                 5}};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    vocab[name] = 6 + b;
  }
  json j = {
      {"model",
       {{"type", "BPE"},
        {"vocab", vocab},
        {"merges", {"\xE2\x96\x81 a"}},
        {"unk_token", "<unk>"},
        {"byte_fallback", true},
        {"fuse_unk", true}}},
      {"added_tokens", json::array({{{"id", 1}, {"content", "<s>"}, {"special", true}},
                                    {{"id", 2}, {"content", "</s>"}, {"special", true}}})},
      {"normalizer",
       {{"type", "Sequence"},
        {"normalizers", json::array({{{"type", "Prepend"}, {"prepend", "\xE2\x96\x81"}},
                                     {{"type", "Replace"},
                                      {"pattern", {{"String", " "}}},
                                      {"content", "\xE2\x96\x81"}}})}}},
      {"pre_tokenizer", nullptr},
      {"post_processor",
       {{"type", "TemplateProcessing"},
        {"single", json::array({{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                                {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
        {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {1}}, {"tokens", {"<s>"}}}}}}}},
      {"decoder",
       {{"type", "Sequence"},
        {"decoders",
         json::array(
             {{{"type", "Replace"}, {"pattern", {{"String", "\xE2\x96\x81"}}}, {"content", " "}},
              {{"type", "ByteFallback"}},
              {{"type", "Fuse"}},
              {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}})}}}};
  auto t = load(j);
  ASSERT_TRUE(t);
  const auto ids = t->encode("a é", true);
  EXPECT_EQ(ids, (std::vector<int32_t>{1, 5, 3, 6 + 0xC3, 6 + 0xA9}));
  EXPECT_EQ(t->decode(ids, true), "a é");
  EXPECT_EQ(t->decode(ids, false), "<s> a é");
  EXPECT_EQ(t->bos_id(), 1);
  // Streaming gives the same text, byte tokens included.
  for (bool skip : {true, false}) {
    IncrementalDetokenizer d(*t, -1, {}, skip);
    for (int32_t id : ids) (void)d.push(id);
    (void)d.flush();
    EXPECT_EQ(d.text(), t->decode(ids, skip));
  }
}

TEST(HfTokenizer, RejectsMalformedInput) {
  EXPECT_EQ(HfTokenizer::from_json("{", "").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(
      HfTokenizer::from_json(R"({"model": {"type": "Unigram", "vocab": []}})", "").status().code(),
      StatusCode::kUnimplemented);
  json j = byte_level_tokenizer({}, json::array());
  j["model"]["merges"] = json::array({42});
  EXPECT_EQ(HfTokenizer::from_json(j.dump(), "").status().field(), "model.merges");
  j = byte_level_tokenizer({}, json::array());
  j["pre_tokenizer"] = {
      {"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}};
  EXPECT_EQ(HfTokenizer::from_json(j.dump(), "").status().code(), StatusCode::kInvalidArgument);
}

TEST(HfTokenizer, IllFormedUtf8IsReadAsReplacementCharacters) {
  auto t = load(byte_level_tokenizer({}, json::array()));
  ASSERT_TRUE(t);
  EXPECT_EQ(t->decode(t->encode("a\xFF"
                                "b",
                                false),
                      false),
            "a\xEF\xBF\xBD"
            "b");
}

TEST(HfTokenizer, GgufGpt2Vocabulary) {
  model::VocabSpec v;
  v.model = "gpt2";
  for (int b = 0; b < 256; ++b) v.tokens.emplace_back(byte_level_char(static_cast<uint8_t>(b)));
  v.tokens.push_back("Ġa");
  v.tokens.push_back("<|bos|>");
  v.token_types.assign(v.tokens.size(), 1);
  v.token_types.back() = 3;
  v.merges = {"Ġ a"};
  v.bos_id = 257;
  v.add_bos = true;
  v.pre = "llama-bpe";
  auto t = make_tokenizer(v);
  ASSERT_TRUE(t.has_value()) << t.status().to_string();
  EXPECT_EQ((*t)->encode("<|bos|> a", true), (std::vector<int32_t>{257, 257, 256}));
  v.pre = "something-new";
  EXPECT_EQ(make_tokenizer(v).status().field(), "tokenizer.ggml.pre");
}

TEST(UnicodeRegex, OnigurumaTranslation) {
  EXPECT_EQ(translate_oniguruma_pattern("(?i:'s|'t)"), "(?:'[sS]|'[tT])");
  EXPECT_EQ(translate_oniguruma_pattern("\\s+(?!\\S)"),
            "[\\x{9}-\\x{D}\\x{85}\\p{Z}]+(?![^\\x{9}-\\x{D}\\x{85}\\p{Z}])");
  EXPECT_EQ(translate_oniguruma_pattern("[^\\s\\p{L}]"), "[^\\x{9}-\\x{D}\\x{85}\\p{Z}\\p{L}]");
  auto re = UnicodeRegex::compile("(?i:'s)|\\p{N}{1,3}");
  ASSERT_TRUE(re.has_value());
  std::vector<std::pair<size_t, size_t>> spans;
  ASSERT_TRUE(re->find_all("'S 12345 '\xC5\xBF", spans));  // U+017F is not folded to 's'
  EXPECT_EQ(spans, (std::vector<std::pair<size_t, size_t>>{{0, 2}, {3, 6}, {6, 8}}));
}

TEST(HfPreTokenizer, SplitBehaviorsAndMetaspace) {
  const std::vector<std::pair<size_t, size_t>> spans = {{1, 2}, {3, 4}};  // "a-b-c", the dashes
  const auto split = [&](HfPreTokenizer::Behavior b, bool invert) {
    std::vector<std::string_view> out;
    split_by_spans("a-b-c", spans, b, invert, out);
    return std::vector<std::string>(out.begin(), out.end());
  };
  using B = HfPreTokenizer::Behavior;
  EXPECT_EQ(split(B::kRemoved, false), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(split(B::kIsolated, false), (std::vector<std::string>{"a", "-", "b", "-", "c"}));
  EXPECT_EQ(split(B::kMergedWithPrevious, false), (std::vector<std::string>{"a-", "b-", "c"}));
  EXPECT_EQ(split(B::kMergedWithNext, false), (std::vector<std::string>{"a", "-b", "-c"}));
  EXPECT_EQ(split(B::kRemoved, true), (std::vector<std::string>{"-", "-"}));

  auto meta = HfPreTokenizer::parse(json{{"type", "Metaspace"},
                                         {"replacement", "\xE2\x96\x81"},
                                         {"prepend_scheme", "first"},
                                         {"split", true}});
  ASSERT_TRUE(meta.has_value());
  PreTokens out;
  meta->pre_tokenize("hi there", 0, out);
  EXPECT_EQ(std::vector<std::string>(out.pieces.begin(), out.pieces.end()),
            (std::vector<std::string>{"\xE2\x96\x81hi", "\xE2\x96\x81there"}));
  out.clear();
  meta->pre_tokenize("x", 1, out);  // not the first section: no prefix
  EXPECT_EQ(std::vector<std::string>(out.pieces.begin(), out.pieces.end()),
            (std::vector<std::string>{"x"}));
}

}  // namespace
}  // namespace turbine::tokenizer
