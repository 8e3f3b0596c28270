// CPU backend end to end on stories260K: the llama2.c golden, batching and prefill equivalence,
// and input errors.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>

#include "../model/model_test_util.h"
#include "block_tables.h"
#include "engine/backend.h"
#include "model/model.h"
#include "test_support/missing_dependency.h"

namespace turbine::engine {
namespace {

using turbine::testing::stories_gguf;

int argmax(const float* x, int n) {
  int best = 0;
  for (int i = 1; i < n; ++i) {
    if (x[i] > x[best]) best = i;  // first index wins ties
  }
  return best;
}

// Greedy decode from BOS in slot 0, one token per step; stops after `max_new` or at BOS.
std::vector<int32_t> greedy(Backend& b, int n_vocab, int max_new,
                            std::vector<std::vector<float>>* all_logits = nullptr) {
  std::vector<int32_t> out;
  int32_t tok = 1;
  std::vector<float> logits;
  testing::SlotTables tables(b);
  const auto table = tables(0);
  for (int pos = 0; pos < max_new; ++pos) {
    SeqChunk ch{table, pos, std::span<const int32_t>(&tok, 1), true};
    Status s = b.forward(std::span<const SeqChunk>(&ch, 1), logits);
    EXPECT_TRUE(s.is_ok()) << s.to_string();
    if (!s.is_ok()) break;
    if (all_logits) all_logits->push_back(logits);
    tok = argmax(logits.data(), n_vocab);
    if (tok == 1) break;
    out.push_back(tok);
  }
  return out;
}

// llama2.c's decode: piece after BOS drops its leading space; <0xXX> is a raw byte.
std::string decode_llama2c(const model::VocabSpec& v, const std::vector<int32_t>& ids) {
  std::string text;
  int32_t prev = 1;
  for (int32_t id : ids) {
    std::string piece = v.tokens[static_cast<size_t>(id)];
    for (size_t p; (p = piece.find("\xE2\x96\x81")) != std::string::npos;) piece.replace(p, 3, " ");
    if (prev == 1 && !piece.empty() && piece[0] == ' ') piece.erase(0, 1);
    unsigned byte = 0;
    if (piece.size() == 6 && std::sscanf(piece.c_str(), "<0x%02X>", &byte) == 1)
      piece = std::string(1, static_cast<char>(byte));
    text += piece;
    prev = id;
  }
  return text;
}

class CpuBackendStories : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(stories_gguf()))
      TURBINE_MISSING_DEPENDENCY("missing asset " << stories_gguf());
    auto m = model::load_model(stories_gguf());
    ASSERT_TRUE(m.has_value()) << m.status().to_string();
    model_ = std::move(m).value();
  }
  std::unique_ptr<Backend> backend(int threads = 2, int slots = 4) {
    auto b = make_cpu_backend(*model_, CpuBackendOptions{threads, slots, 0});
    if (b.has_value()) tables_ = std::make_unique<testing::SlotTables>(**b);
    EXPECT_TRUE(b.has_value()) << b.status().to_string();
    return b.has_value() ? std::move(b).value() : nullptr;
  }
  std::span<const int32_t> slot(int s) { return (*tables_)(s); }
  std::unique_ptr<model::Model> model_;
  std::unique_ptr<testing::SlotTables> tables_;
};

TEST_F(CpuBackendStories, GreedyMatchesLlama2cGolden) {
  const auto golden_path =
      turbine::testing::shared_assets() / "models/stories260K/stories260K_greedy_golden.txt";
  if (!std::filesystem::exists(golden_path))
    TURBINE_MISSING_DEPENDENCY("missing asset " << golden_path);
  std::stringstream ss;
  ss << std::ifstream(golden_path, std::ios::binary).rdbuf();
  auto b = backend();
  const auto t0 = std::chrono::steady_clock::now();
  // run.c `-n 256` runs forward at positions 0..255 and prints the token sampled at each, so 256
  // new tokens (the last one is never fed back), stopping early only if it samples BOS.
  const std::vector<int32_t> ids = greedy(*b, model_->config().n_vocab, 256);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("[ stories260K ] %zu tokens, %.1f tok/s single-stream greedy (2 threads)\n",
              ids.size(), static_cast<double>(ids.size()) / secs);
  // run.c prints a newline after generation.
  EXPECT_EQ(decode_llama2c(model_->vocab(), ids) + "\n", ss.str());
}

TEST_F(CpuBackendStories, ThreadCountDoesNotChangeResults) {
  auto b1 = backend(1);
  auto b3 = backend(3);
  std::vector<std::vector<float>> l1, l3;
  auto t1 = greedy(*b1, 512, 20, &l1);
  auto t3 = greedy(*b3, 512, 20, &l3);
  EXPECT_EQ(t1, t3);
  ASSERT_EQ(l1.size(), l3.size());
  for (size_t s = 0; s < l1.size(); ++s) {
    for (size_t i = 0; i < l1[s].size(); ++i) ASSERT_EQ(l1[s][i], l3[s][i]);
  }
}

TEST_F(CpuBackendStories, PrefillEqualsOneByOne) {
  const std::vector<int32_t> prompt = {1, 403, 407, 261, 378, 66, 95, 300, 302, 270, 261};
  auto b = backend();
  std::vector<float> batched, single;
  SeqChunk ch{slot(0), 0, prompt, true};
  ASSERT_TRUE(b->forward(std::span<const SeqChunk>(&ch, 1), batched).is_ok());
  ASSERT_EQ(batched.size(), 512u);
  for (size_t i = 0; i < prompt.size(); ++i) {
    SeqChunk one{slot(1), static_cast<int>(i), std::span<const int32_t>(&prompt[i], 1),
                 i + 1 == prompt.size()};
    ASSERT_TRUE(b->forward(std::span<const SeqChunk>(&one, 1), single).is_ok());
    if (i + 1 < prompt.size()) {
      EXPECT_TRUE(single.empty());
    }
  }
  ASSERT_EQ(single.size(), 512u);
  for (size_t i = 0; i < 512; ++i) EXPECT_NEAR(batched[i], single[i], 1e-4f) << i;
  // Continuing both slots by one token gives the same logits too (the caches agree).
  const int32_t next = 300;
  std::vector<SeqChunk> both = {
      {slot(0), static_cast<int>(prompt.size()), std::span<const int32_t>(&next, 1), true},
      {slot(1), static_cast<int>(prompt.size()), std::span<const int32_t>(&next, 1), true}};
  std::vector<float> two;
  ASSERT_TRUE(b->forward(both, two).is_ok());
  ASSERT_EQ(two.size(), 1024u);
  for (size_t i = 0; i < 512; ++i) EXPECT_NEAR(two[i], two[512 + i], 1e-4f) << i;
}

TEST_F(CpuBackendStories, TwoSequencesInOneStepEqualSeparateRuns) {
  const std::vector<int32_t> a = {1, 403, 407, 261, 378};
  const std::vector<int32_t> c = {1, 66, 95, 300};
  auto b = backend();
  std::vector<float> la, lc, lboth;
  SeqChunk ca{slot(0), 0, a, true};
  ASSERT_TRUE(b->forward(std::span<const SeqChunk>(&ca, 1), la).is_ok());
  SeqChunk cc{slot(1), 0, c, true};
  ASSERT_TRUE(b->forward(std::span<const SeqChunk>(&cc, 1), lc).is_ok());
  // Same sequences in the other slots, together, with a logits-less chunk in between.
  const std::vector<int32_t> filler = {1, 7, 8};
  std::vector<SeqChunk> chunks = {
      {slot(2), 0, a, true}, {slot(0), 0, filler, false}, {slot(3), 0, c, true}};
  ASSERT_TRUE(b->forward(chunks, lboth).is_ok());
  ASSERT_EQ(lboth.size(), 1024u);
  for (size_t i = 0; i < 512; ++i) {
    EXPECT_NEAR(lboth[i], la[i], 1e-4f) << i;
    EXPECT_NEAR(lboth[512 + i], lc[i], 1e-4f) << i;
  }
}

TEST_F(CpuBackendStories, BadInputsGiveStatus) {
  auto b = backend(2, 2);
  std::vector<float> logits;
  const int32_t tok = 1, bad_tok = 512, neg_tok = -1;
  SeqChunk slot_oob{slot(2), 0, std::span<const int32_t>(&tok, 1), true};
  EXPECT_EQ(b->forward(std::span<const SeqChunk>(&slot_oob, 1), logits).code(),
            StatusCode::kInvalidArgument);
  SeqChunk vocab_oob{slot(0), 0, std::span<const int32_t>(&bad_tok, 1), true};
  EXPECT_EQ(b->forward(std::span<const SeqChunk>(&vocab_oob, 1), logits).code(),
            StatusCode::kInvalidArgument);
  SeqChunk neg{slot(0), 0, std::span<const int32_t>(&neg_tok, 1), true};
  EXPECT_EQ(b->forward(std::span<const SeqChunk>(&neg, 1), logits).code(),
            StatusCode::kInvalidArgument);
  SeqChunk gap{slot(0), 5, std::span<const int32_t>(&tok, 1),
               true};  // positions 0..4 not in the cache
  EXPECT_EQ(b->forward(std::span<const SeqChunk>(&gap, 1), logits).code(),
            StatusCode::kInvalidArgument);
  SeqChunk empty{slot(0), 0, {}, true};
  EXPECT_EQ(b->forward(std::span<const SeqChunk>(&empty, 1), logits).code(),
            StatusCode::kInvalidArgument);

  auto small = make_cpu_backend(*model_, CpuBackendOptions{1, 1, 4});
  ASSERT_TRUE(small.has_value());
  EXPECT_EQ((*small)->max_context(), 4);
  std::vector<int32_t> five(5, 1);
  testing::SlotTables small_tables(**small);
  SeqChunk too_long{small_tables(0), 0, five, true};
  Status s = (*small)->forward(std::span<const SeqChunk>(&too_long, 1), logits);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("max context"), std::string::npos) << s.message();
  std::vector<int32_t> four(4, 1);
  SeqChunk fits{small_tables(0), 0, four, true};
  EXPECT_TRUE((*small)->forward(std::span<const SeqChunk>(&fits, 1), logits).is_ok());

  EXPECT_FALSE(make_cpu_backend(*model_, CpuBackendOptions{1, 0, 0}).has_value());
}

}  // namespace
}  // namespace turbine::engine
