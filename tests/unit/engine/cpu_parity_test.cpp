// The same stories260K weights through other containers and dtypes must give the same model:
// Hugging Face folder (halves RoPE layout) F32/F16/BF16/sharded, and a Q8_0 GGUF.
#include <gtest/gtest.h>

#include <cmath>

#include "../model/model_test_util.h"
#include "block_tables.h"
#include "engine/backend.h"
#include "model/model.h"
#include "test_support/missing_dependency.h"

namespace turbine::engine {
namespace {

using turbine::testing::stories_gguf;
using turbine::testing::TempDir;

struct GreedyRun {
  std::vector<int32_t> tokens;
  std::vector<std::vector<float>> logits;
};

GreedyRun greedy_run(const model::Model& m, int steps) {
  auto b = make_cpu_backend(m, CpuBackendOptions{2, 1, 0});
  EXPECT_TRUE(b.has_value());
  if (!b.has_value()) return {};
  testing::SlotTables tables(**b);
  const auto table = tables(0);
  GreedyRun r;
  int32_t tok = 1;
  std::vector<float> logits;
  for (int pos = 0; pos < steps; ++pos) {
    SeqChunk ch{table, pos, std::span<const int32_t>(&tok, 1), true};
    EXPECT_TRUE((*b)->forward(std::span<const SeqChunk>(&ch, 1), logits).is_ok());
    r.logits.push_back(logits);
    tok = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    r.tokens.push_back(tok);
  }
  return r;
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  float d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::fabs(a[i] - b[i]));
  return d;
}

class Parity : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(stories_gguf()))
      TURBINE_MISSING_DEPENDENCY("missing asset " << stories_gguf());
    auto m = model::load_model(stories_gguf());
    ASSERT_TRUE(m.has_value());
    gguf_ = std::move(m).value();
    ref_ = greedy_run(*gguf_, 20);
  }
  std::unique_ptr<model::Model> load(const std::filesystem::path& p) {
    auto m = model::load_model(p);
    EXPECT_TRUE(m.has_value()) << m.status().to_string();
    return m.has_value() ? std::move(m).value() : nullptr;
  }
  std::unique_ptr<model::Model> gguf_;
  GreedyRun ref_;
  TempDir tmp_;
};

TEST_F(Parity, HfFolderF32MatchesGguf) {
  turbine::testing::write_hf_folder(*gguf_, tmp_.path() / "hf32", "F32");
  auto hf = load(tmp_.path() / "hf32");
  ASSERT_NE(hf, nullptr);
  EXPECT_EQ(hf->config().rope_layout, model::RopeLayout::kHalves);
  GreedyRun r = greedy_run(*hf, 20);
  EXPECT_EQ(r.tokens, ref_.tokens);
  for (size_t s = 0; s < r.logits.size(); ++s)
    EXPECT_LT(max_abs_diff(r.logits[s], ref_.logits[s]), 1e-4f) << s;
}

TEST_F(Parity, HfFolderShardedMatchesGguf) {
  turbine::testing::write_hf_folder(*gguf_, tmp_.path() / "sharded", "F32", 2);
  ASSERT_TRUE(std::filesystem::exists(tmp_.path() / "sharded/model.safetensors.index.json"));
  auto hf = load(tmp_.path() / "sharded");
  ASSERT_NE(hf, nullptr);
  GreedyRun r = greedy_run(*hf, 20);
  EXPECT_EQ(r.tokens, ref_.tokens);
  for (size_t s = 0; s < r.logits.size(); ++s)
    EXPECT_LT(max_abs_diff(r.logits[s], ref_.logits[s]), 1e-4f) << s;
}

TEST_F(Parity, HfFolderF16AndBF16) {
  // Tolerances: the weights themselves are rounded (f16: 11-bit, bf16: 8-bit mantissa); the
  // logits of this model span about +-15.
  for (const auto& [dtype, tol] : {std::pair<std::string, float>{"F16", 0.05f}, {"BF16", 0.5f}}) {
    turbine::testing::write_hf_folder(*gguf_, tmp_.path() / dtype, dtype);
    auto hf = load(tmp_.path() / dtype);
    ASSERT_NE(hf, nullptr);
    EXPECT_EQ(hf->weights().layers[0].wq.dtype,
              dtype == "F16" ? model::DType::kF16 : model::DType::kBF16);
    GreedyRun r = greedy_run(*hf, 20);
    EXPECT_EQ(r.tokens, ref_.tokens) << dtype;
    for (size_t s = 0; s < r.logits.size(); ++s)
      EXPECT_LT(max_abs_diff(r.logits[s], ref_.logits[s]), tol) << dtype << s;
  }
}

TEST_F(Parity, Q8_0Gguf) {
  turbine::testing::write_q8_gguf(stories_gguf(), tmp_.path() / "q8.gguf");
  auto q8 = load(tmp_.path() / "q8.gguf");
  ASSERT_NE(q8, nullptr);
  EXPECT_EQ(q8->weights().layers[0].wq.dtype, model::DType::kQ8_0);
  EXPECT_EQ(q8->weights().tok_embeddings.dtype, model::DType::kQ8_0);
  GreedyRun r = greedy_run(*q8, 10);
  EXPECT_EQ(r.tokens, std::vector<int32_t>(ref_.tokens.begin(), ref_.tokens.begin() + 10));
  // Q8_0 keeps ~2 decimal digits per weight; stated tolerance on logits.
  for (size_t s = 0; s < r.logits.size(); ++s)
    EXPECT_LT(max_abs_diff(r.logits[s], ref_.logits[s]), 0.5f) << s;
}

}  // namespace
}  // namespace turbine::engine
