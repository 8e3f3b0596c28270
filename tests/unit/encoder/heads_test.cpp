// Heads (entity grouping with input offsets, label scores), sentence-transformers pooling
// configs, config.json parsing and load errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "encoder/encoder_config.h"
#include "encoder/encoder_math.h"
#include "encoder/encoder_model.h"
#include "encoder/heads.h"
#include "encoder/pooling.h"

namespace turbine::encoder {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kFixtures = fs::path(TURBINE_SOURCE_DIR) / "tests" / "fixtures" / "encoders";

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/turbine_encoder_test_XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  void write(const std::string& rel, const std::string& text) const {
    fs::create_directories((path_ / rel).parent_path());
    std::ofstream(path_ / rel) << text;
  }

 private:
  fs::path path_;
};

json ner_config() {
  return json{
      {"architectures", {"BertForTokenClassification"}},
      {"model_type", "bert"},
      {"vocab_size", 574},
      {"hidden_size", 32},
      {"num_hidden_layers", 2},
      {"num_attention_heads", 4},
      {"intermediate_size", 64},
      {"id2label", {{"0", "O"}, {"1", "B-PER"}, {"2", "I-PER"}, {"3", "B-LOC"}, {"4", "I-LOC"}}}};
}

class EntityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tok = tokenizer::PipelineTokenizer::from_files(
        kFixtures / "tokenizers" / "wordpiece" / "tokenizer.json", {});
    ASSERT_TRUE(tok.has_value());
    tok_ = std::move(tok).value();
    auto c = parse_encoder_config(ner_config());
    ASSERT_TRUE(c.has_value()) << c.status().to_string();
    config_ = *c;
    auto h = Heads::create(config_, weights_);
    // No classifier weights: create() refuses a head without them.
    EXPECT_FALSE(h.has_value());
    config_.head = HeadKind::kNone;
    auto h2 = Heads::create(config_, weights_);
    ASSERT_TRUE(h2.has_value());
    heads_ = std::move(h2).value();
  }
  // Predictions for `text`'s tokens with the given label ids.
  std::vector<TokenPrediction> predict(const std::string& text, const std::vector<int>& labels) {
    const tokenizer::Encoding e = tok_->encode(text, std::nullopt, tokenizer::EncodeOptions{});
    std::vector<TokenPrediction> out;
    size_t k = 0;
    for (size_t i = 0; i < e.size(); ++i) {
      if (e.sequence_ids[i] < 0) continue;
      EXPECT_LT(k, labels.size()) << "more tokens than labels";
      out.push_back({e.ids[i], labels[k], 0.5f + 0.1f * static_cast<float>(k % 3), e.offsets[i]});
      ++k;
    }
    EXPECT_EQ(k, labels.size()) << "fewer tokens than labels";
    return out;
  }

  std::unique_ptr<tokenizer::PipelineTokenizer> tok_;
  EncoderConfig config_;
  EncoderWeights weights_;
  Heads heads_;
};

TEST_F(EntityTest, BioTagsGroupIntoEntitiesWithCharacterOffsets) {
  // "jöhn smith lives in zürich": 5 words, one token each in the fixture vocabulary or split
  // into pieces; label every piece of a word alike.
  const std::string text = "Paris London John Smith in Berlin.";
  const tokenizer::Encoding e = tok_->encode(text, std::nullopt, tokenizer::EncodeOptions{});
  // Label by word: Paris=B-LOC London=B-LOC John=B-PER Smith=I-PER in=O Berlin=B-LOC .=O
  std::vector<int> labels;
  for (size_t i = 0; i < e.size(); ++i) {
    if (e.sequence_ids[i] < 0) continue;
    const std::string word = text.substr(e.offsets[i].begin, e.offsets[i].end - e.offsets[i].begin);
    const bool continuation = !labels.empty() && e.offsets[i].begin == e.offsets[i - 1].end &&
                              std::isalpha(static_cast<unsigned char>(word[0]));
    int l = 0;
    const size_t b = e.offsets[i].begin;
    if (b < 6)
      l = continuation ? 4 : 3;  // Paris
    else if (b < 13)
      l = continuation ? 4 : 3;  // London
    else if (b < 18)
      l = continuation ? 2 : 1;  // John
    else if (b < 24)
      l = 2;  // Smith
    else if (b < 27)
      l = 0;  // in
    else if (b < 33)
      l = continuation ? 4 : 3;  // Berlin
    labels.push_back(l);
  }
  const auto ents = heads_.group_entities(predict(text, labels), text, *tok_);
  ASSERT_EQ(ents.size(), 4u);
  EXPECT_EQ(ents[0].label, "LOC");
  EXPECT_EQ(ents[0].word, "paris");
  EXPECT_EQ(ents[0].start, 0u);
  EXPECT_EQ(ents[0].end, 5u);
  EXPECT_EQ(ents[1].label, "LOC");  // B- after B- starts a new entity
  EXPECT_EQ(ents[1].start, 6u);
  EXPECT_EQ(ents[2].label, "PER");
  EXPECT_EQ(ents[2].word, "john smith");
  EXPECT_EQ(ents[2].start, 13u);
  EXPECT_EQ(ents[2].end, 23u);
  EXPECT_EQ(ents[3].label, "LOC");
  EXPECT_EQ(ents[3].start, 27u);
  EXPECT_EQ(ents[3].end, 33u);
}

TEST_F(EntityTest, OffsetsCountCharactersNotBytes) {
  const std::string text = "café naïve Zürich";  // é, ï, ü are two bytes each
  const tokenizer::Encoding e = tok_->encode(text, std::nullopt, tokenizer::EncodeOptions{});
  std::vector<int> labels;
  for (size_t i = 0; i < e.size(); ++i) {
    if (e.sequence_ids[i] < 0) continue;
    labels.push_back(e.offsets[i].begin >= 13 ? (e.offsets[i].begin == 13 ? 3 : 4) : 0);
  }
  const auto ents = heads_.group_entities(predict(text, labels), text, *tok_);
  ASSERT_EQ(ents.size(), 1u);
  EXPECT_EQ(ents[0].label, "LOC");
  EXPECT_EQ(ents[0].byte_start, 13u);
  EXPECT_EQ(ents[0].byte_end, 20u);
  EXPECT_EQ(ents[0].start, 11u);
  EXPECT_EQ(ents[0].end, 17u);
  // The score is the mean of its tokens' scores.
  EXPECT_GT(ents[0].score, 0.4f);
  EXPECT_LT(ents[0].score, 0.8f);
}

TEST(HeadsMathTest, LabelScoresAreASoftmaxAndNormalizeGivesUnitVectors) {
  const std::vector<float> p = softmax(std::vector<float>{1.0f, 2.0f, 3.0f}.data(), 3);
  EXPECT_NEAR(p[0] + p[1] + p[2], 1.0f, 1e-6);
  EXPECT_NEAR(p[2] / p[1], std::exp(1.0f), 1e-4);
  std::vector<float> v{3.0f, 4.0f};
  l2_normalize(v.data(), 2);
  EXPECT_FLOAT_EQ(v[0], 0.6f);
  EXPECT_FLOAT_EQ(v[1], 0.8f);
  std::vector<float> zero{0.0f, 0.0f};
  l2_normalize(zero.data(), 2);
  EXPECT_EQ(zero[0], 0.0f);
  const float rows[] = {1, 2, 3, 4, 5, 0};
  float out[2];
  pool_rows(rows, 3, 2, Output::kMean, out);
  EXPECT_FLOAT_EQ(out[0], 3.0f);
  EXPECT_FLOAT_EQ(out[1], 2.0f);
  pool_rows(rows, 3, 2, Output::kMax, out);
  EXPECT_FLOAT_EQ(out[1], 4.0f);
  pool_rows(rows, 3, 2, Output::kLastToken, out);
  EXPECT_FLOAT_EQ(out[0], 5.0f);
}

TEST(PoolingConfigTest, ReadsSentenceTransformersModulesOldAndNew) {
  EncoderConfig bert;
  bert.arch = EncoderArch::kBert;
  TempDir none;
  auto d = read_pooling_config(none.path(), bert);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->mode, Output::kCls);
  EXPECT_TRUE(d->normalize);
  EXPECT_FALSE(d->from_sentence_transformers);
  EncoderConfig decoder;
  decoder.arch = EncoderArch::kDecoder;
  EXPECT_EQ(read_pooling_config(none.path(), decoder)->mode, Output::kLastToken);

  TempDir old;
  old.write("modules.json",
            R"([{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},
                {"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"}])");
  old.write("1_Pooling/config.json",
            R"({"word_embedding_dimension":32,"pooling_mode_cls_token":false,
                "pooling_mode_mean_tokens":true,"pooling_mode_max_tokens":false})");
  old.write("sentence_bert_config.json", R"({"max_seq_length":48,"do_lower_case":false})");
  auto o = read_pooling_config(old.path(), bert);
  ASSERT_TRUE(o.has_value()) << o.status().to_string();
  EXPECT_EQ(o->mode, Output::kMean);
  EXPECT_FALSE(o->normalize);
  EXPECT_EQ(o->max_seq_length, 48);

  TempDir dense;
  dense.write("modules.json",
              R"([{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},
                  {"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"},
                  {"idx":2,"name":"2","path":"2_Dense","type":"sentence_transformers.models.Dense"}])");
  dense.write("1_Pooling/config.json", R"({"pooling_mode":"mean"})");
  auto dn = read_pooling_config(dense.path(), bert);
  ASSERT_FALSE(dn.has_value());
  EXPECT_EQ(dn.status().code(), StatusCode::kUnimplemented);
}

TEST(EncoderConfigTest, ParsesArchitecturesAndRefusesWhatItCannotRun) {
  json c = ner_config();
  auto ok = parse_encoder_config(c);
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(ok->head, HeadKind::kTokenClassification);
  EXPECT_EQ(ok->labels[2], "I-PER");
  EXPECT_EQ(ok->max_tokens(), 512);

  json roberta = c;
  roberta["model_type"] = "xlm-roberta";
  roberta["architectures"] = {"XLMRobertaForSequenceClassification"};
  roberta["max_position_embeddings"] = 514;
  roberta["pad_token_id"] = 1;
  auto r = parse_encoder_config(roberta);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->position_offset, 2);
  EXPECT_EQ(r->max_tokens(), 512);

  json unknown = c;
  unknown["model_type"] = "t5";
  EXPECT_EQ(parse_encoder_config(unknown).status().code(), StatusCode::kUnimplemented);
  json missing = c;
  missing.erase("hidden_size");
  EXPECT_FALSE(parse_encoder_config(missing).has_value());
  json relative = c;
  relative["position_embedding_type"] = "relative_key";
  EXPECT_EQ(parse_encoder_config(relative).status().code(), StatusCode::kUnimplemented);
  json decoder_cls = c;
  decoder_cls["model_type"] = "qwen3";
  decoder_cls["architectures"] = {"Qwen3ForSequenceClassification"};
  EXPECT_FALSE(parse_encoder_config(decoder_cls).has_value());
}

TEST(EncoderModelTest, LoadErrorsNameTheFolderAndTheTensor) {
  TempDir dir;
  for (const char* f : {"model.safetensors", "tokenizer.json"})
    fs::copy_file(kFixtures / "bert" / f, dir.path() / f);
  std::ifstream in(kFixtures / "bert" / "config.json");
  json config = json::parse(in);
  config["num_hidden_layers"] = 3;  // the weights have two
  dir.write("config.json", config.dump());
  auto m = EncoderModel::load(dir.path());
  ASSERT_FALSE(m.has_value());
  EXPECT_NE(m.status().message().find("encoder.layer.2"), std::string::npos)
      << m.status().message();
  EXPECT_NE(m.status().message().find(dir.path().filename().string()), std::string::npos);

  fs::remove(dir.path() / "tokenizer.json");
  config["num_hidden_layers"] = 2;
  dir.write("config.json", config.dump());
  auto no_tok = EncoderModel::load(dir.path());
  ASSERT_FALSE(no_tok.has_value());
  EXPECT_NE(no_tok.status().message().find("tokenizer.json"), std::string::npos);
}

}  // namespace
}  // namespace turbine::encoder
