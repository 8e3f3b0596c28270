// Parity with transformers 5.17 / sentence-transformers 6.0 on the CPU backend, for the tiny
// random checkpoints in tests/fixtures/encoders (written by tests/tools/make_encoder_fixtures.py):
// final hidden states, classification logits, token-classification logits and entities (the
// token-classification pipeline with aggregation_strategy="simple"), cross-encoder scores and
// sentence-transformers embeddings (pooling + normalisation). Tolerance: 1e-4 of the reference
// tensor's largest magnitude.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "encoder/encoder_model.h"
#include "encoder/encoder_service.h"

namespace turbine::encoder {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kFixtures = fs::path(TURBINE_SOURCE_DIR) / "tests" / "fixtures" / "encoders";
constexpr double kRelTol = 1e-4;

json read_json(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return json::parse(ss.str());
}

std::vector<float> flatten(const json& j) {
  std::vector<float> out;
  if (j.is_number()) {
    out.push_back(j.get<float>());
    return out;
  }
  for (const json& e : j) {
    const std::vector<float> part = flatten(e);
    out.insert(out.end(), part.begin(), part.end());
  }
  return out;
}

// max |got - want| <= kRelTol * max |want|.
void expect_close(const std::vector<float>& got, const std::vector<float>& want,
                  const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double scale = 1e-6, worst = 0.0;
  size_t at = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    scale = std::max(scale, static_cast<double>(std::fabs(want[i])));
    const double d = std::fabs(static_cast<double>(got[i]) - want[i]);
    if (d > worst) {
      worst = d;
      at = i;
    }
  }
  EXPECT_LE(worst, kRelTol * scale) << what << ": worst at " << at << ": got " << got[at]
                                    << ", want " << want[at] << " (scale " << scale << ")";
}

struct Fixture {
  std::unique_ptr<EncoderModel> model;
  std::unique_ptr<EncoderBackend> backend;
  json expected;
};

Fixture load(const std::string& name) {
  Fixture f;
  auto m = EncoderModel::load(kFixtures / name);
  EXPECT_TRUE(m.has_value()) << m.status().to_string();
  if (!m.has_value()) return f;
  f.model = std::move(m).value();
  EncoderBackendOptions o;
  o.n_threads = 2;
  auto b = make_encoder_backend(*f.model, o);
  EXPECT_TRUE(b.has_value()) << b.status().to_string();
  if (b.has_value()) f.backend = std::move(b).value();
  f.expected = read_json(kFixtures / name / "expected.json");
  return f;
}

// The tokenizer's encoding of one expected input, checked against the reference ids.
tokenizer::Encoding encode_input(const EncoderModel& model, const json& input) {
  std::optional<std::string> pair;
  if (input.contains("pair")) pair = input["pair"].get<std::string>();
  const std::string text = input["text"].get<std::string>();
  tokenizer::Encoding e =
      model.tokenizer().encode(text, pair ? std::optional<std::string_view>(*pair) : std::nullopt,
                               tokenizer::EncodeOptions{});
  EXPECT_EQ(e.ids, input["ids"].get<std::vector<int32_t>>()) << text;
  EXPECT_EQ(e.type_ids, input["type_ids"].get<std::vector<int32_t>>()) << text;
  return e;
}

// Runs every expected input alone (one sequence per batch) and all of them in one padding-free
// batch; both must match the reference (the batch must not leak between sequences).
std::vector<std::vector<float>> run_inputs(Fixture& f, Output output) {
  const json& inputs = f.expected["inputs"];
  EncoderBatch all;
  all.clear();
  std::vector<std::vector<float>> alone;
  for (const json& input : inputs) {
    const tokenizer::Encoding e = encode_input(*f.model, input);
    EncoderBatch one;
    one.clear();
    one.ids = e.ids;
    one.type_ids =
        f.model->config().type_vocab_size > 1 ? e.type_ids : std::vector<int32_t>(e.ids.size(), 0);
    one.seq_begin.push_back(static_cast<int32_t>(e.ids.size()));
    one.outputs.push_back(output);
    std::vector<float> out;
    const Status st = f.backend->forward(one, out);
    EXPECT_TRUE(st.is_ok()) << st.to_string();
    alone.push_back(out);
    all.ids.insert(all.ids.end(), one.ids.begin(), one.ids.end());
    all.type_ids.insert(all.type_ids.end(), one.type_ids.begin(), one.type_ids.end());
    all.seq_begin.push_back(static_cast<int32_t>(all.ids.size()));
    all.outputs.push_back(output);
  }
  std::vector<float> batched;
  const Status st = f.backend->forward(all, batched);
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  size_t at = 0;
  for (const auto& a : alone) {
    if (at + a.size() > batched.size()) {
      ADD_FAILURE() << "batched output too short";
      break;
    }
    expect_close(std::vector<float>(batched.begin() + static_cast<std::ptrdiff_t>(at),
                                    batched.begin() + static_cast<std::ptrdiff_t>(at + a.size())),
                 a, "batched vs alone");
    at += a.size();
  }
  return alone;
}

class HiddenStateParity : public ::testing::TestWithParam<std::string> {};

TEST_P(HiddenStateParity, FinalHiddenStatesMatchTransformers) {
  Fixture f = load(GetParam());
  ASSERT_NE(f.backend, nullptr);
  const auto hidden = run_inputs(f, Output::kAllTokens);
  const json& want = f.expected["hidden"];
  ASSERT_EQ(hidden.size(), want.size());
  for (size_t i = 0; i < hidden.size(); ++i)
    expect_close(hidden[i], flatten(want[i]), GetParam() + " hidden[" + std::to_string(i) + "]");
}

INSTANTIATE_TEST_SUITE_P(Fixtures, HiddenStateParity,
                         ::testing::Values("bert", "bert_cls", "bert_ner", "xlmr_rerank",
                                           "modernbert", "modernbert_cls", "modernbert_ner"),
                         [](const auto& info) { return info.param; });

TEST(EncoderParity, DecoderEmbedderLastTokenMatchesTransformers) {
  Fixture f = load("qwen3_embed");
  ASSERT_NE(f.backend, nullptr);
  EXPECT_EQ(f.model->task(), EncoderTask::kEmbedding);
  EXPECT_EQ(f.model->pooling().mode, Output::kLastToken);
  const auto last = run_inputs(f, Output::kLastToken);
  const json& want = f.expected["hidden"];
  for (size_t i = 0; i < last.size(); ++i) {
    expect_close(last[i], flatten(want[i].back()), "qwen3 last hidden " + std::to_string(i));
  }
}

class SequenceLogitsParity : public ::testing::TestWithParam<std::string> {};

TEST_P(SequenceLogitsParity, LogitsMatchTransformers) {
  Fixture f = load(GetParam());
  ASSERT_NE(f.backend, nullptr);
  const auto pooled = run_inputs(f, f.model->heads().sequence_output());
  const json& want = f.expected["logits"];
  ASSERT_EQ(pooled.size(), want.size());
  // One tensor [inputs x labels], as transformers returns for a batch: a one-label model's
  // logits are compared at the scale of all of them (a logit near zero is a cancellation).
  std::vector<float> got;
  for (const auto& p : pooled) {
    const std::vector<float> l = f.model->heads().sequence_logits(p.data());
    got.insert(got.end(), l.begin(), l.end());
  }
  expect_close(got, flatten(want), GetParam() + " logits");
}

INSTANTIATE_TEST_SUITE_P(Fixtures, SequenceLogitsParity,
                         ::testing::Values("bert_cls", "xlmr_rerank", "modernbert_cls"),
                         [](const auto& info) { return info.param; });

class TokenClassificationParity : public ::testing::TestWithParam<std::string> {};

TEST_P(TokenClassificationParity, LogitsAndEntitiesMatchTransformersPipeline) {
  Fixture f = load(GetParam());
  ASSERT_NE(f.backend, nullptr);
  const auto rows = run_inputs(f, Output::kAllTokens);
  const json& want = f.expected["logits"];
  const json& inputs = f.expected["inputs"];
  for (size_t i = 0; i < rows.size(); ++i) {
    const int n = static_cast<int>(rows[i].size() / static_cast<size_t>(f.model->hidden_dim()));
    expect_close(f.model->heads().token_logits(rows[i].data(), n), flatten(want[i]),
                 GetParam() + " token logits[" + std::to_string(i) + "]");
  }
  // Entities through the service, against the pipeline's.
  EncoderServiceOptions so;
  so.backend.n_threads = 2;
  auto service = EncoderService::load(kFixtures / GetParam(), so);
  ASSERT_TRUE(service.has_value()) << service.status().to_string();
  const json& entities = f.expected["entities"];
  ASSERT_EQ(entities.size(), inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    const std::string text = inputs[i]["text"].get<std::string>();
    auto got = (*service)->classify_tokens(text);
    ASSERT_TRUE(got.has_value()) << got.status().to_string();
    ASSERT_EQ(got->entities.size(), entities[i].size()) << text;
    for (size_t k = 0; k < entities[i].size(); ++k) {
      const json& w = entities[i][k];
      const Entity& e = got->entities[k];
      EXPECT_EQ(e.label, w["entity_group"].get<std::string>()) << text << " #" << k;
      EXPECT_EQ(e.start, w["start"].get<uint32_t>()) << text << " #" << k;
      EXPECT_EQ(e.end, w["end"].get<uint32_t>()) << text << " #" << k;
      EXPECT_EQ(e.word, w["word"].get<std::string>()) << text << " #" << k;
      EXPECT_NEAR(e.score, w["score"].get<float>(), 1e-4) << text << " #" << k;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, TokenClassificationParity,
                         ::testing::Values("bert_ner", "modernbert_ner"),
                         [](const auto& info) { return info.param; });

class SentenceTransformersParity : public ::testing::TestWithParam<std::string> {};

TEST_P(SentenceTransformersParity, EmbeddingsMatchSentenceTransformers) {
  const json expected = read_json(kFixtures / GetParam() / "expected.json");
  EncoderServiceOptions so;
  so.backend.n_threads = 2;
  auto service = EncoderService::load(kFixtures / GetParam(), so);
  ASSERT_TRUE(service.has_value()) << service.status().to_string();
  const EncoderModel& m = (*service)->model();
  EXPECT_TRUE(m.pooling().from_sentence_transformers);
  EXPECT_EQ(m.pooling().normalize, expected["st_normalize"].get<bool>());
  EXPECT_STREQ(output_name(m.pooling().mode),
               expected["st_pooling"].get<std::string>() == "lasttoken"
                   ? "last_token"
                   : expected["st_pooling"].get<std::string>().c_str());
  std::vector<std::string> texts;
  for (const json& input : expected["inputs"]) {
    if (!input.contains("pair")) texts.push_back(input["text"].get<std::string>());
  }
  auto got = (*service)->embed(texts);
  ASSERT_TRUE(got.has_value()) << got.status().to_string();
  const json& want = expected["st_embeddings"];
  ASSERT_EQ(got->size(), want.size());
  for (size_t i = 0; i < got->size(); ++i) {
    expect_close((*got)[i].vector, flatten(want[i]),
                 GetParam() + " embedding " + std::to_string(i));
    EXPECT_EQ((*got)[i].n_tokens, static_cast<int>(expected["inputs"][i]["ids"].size()));
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, SentenceTransformersParity,
                         ::testing::Values("bert", "modernbert", "qwen3_embed"),
                         [](const auto& info) { return info.param; });

TEST(EncoderParity, CrossEncoderScoresMatchTransformers) {
  const json expected = read_json(kFixtures / "xlmr_rerank" / "expected.json");
  EncoderServiceOptions so;
  so.backend.n_threads = 2;
  auto service = EncoderService::load(kFixtures / "xlmr_rerank", so);
  ASSERT_TRUE(service.has_value()) << service.status().to_string();
  EXPECT_EQ((*service)->task(), EncoderTask::kScore);
  std::string query;
  std::vector<std::string> docs;
  std::vector<float> want;
  for (size_t i = 0; i < expected["inputs"].size(); ++i) {
    const json& input = expected["inputs"][i];
    if (!input.contains("pair")) continue;
    query = input["text"].get<std::string>();
    docs.push_back(input["pair"].get<std::string>());
    want.push_back(expected["logits"][i][0].get<float>());
  }
  ASSERT_EQ(docs.size(), 2u);
  auto got = (*service)->score(query, docs);
  ASSERT_TRUE(got.has_value()) << got.status().to_string();
  for (size_t i = 0; i < docs.size(); ++i) {
    EXPECT_NEAR((*got)[i].logit, want[i], kRelTol * std::max(1.0f, std::fabs(want[i])));
    EXPECT_NEAR((*got)[i].score, 1.0f / (1.0f + std::exp(-want[i])), 1e-5);
  }
}

}  // namespace
}  // namespace turbine::encoder
