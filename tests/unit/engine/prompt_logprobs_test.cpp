// Prompt logprobs (SamplingParams::prompt_logprobs) on stories260K: the engine's scores equal the
// log-softmax of a token-by-token forward at every prompt position, with chunked prefill, after a
// prefix-cache hit, and with max_tokens 0 (prompt scoring only).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <future>
#include <numeric>

#include "../model/model_test_util.h"
#include "engine/block_tables.h"
#include "engine/engine.h"
#include "model/model.h"

namespace turbine::engine {
namespace {

constexpr int kTop = 3;

std::vector<int32_t> test_prompt() {
  std::vector<int32_t> p = {1};
  for (int i = 0; i < 40; ++i) p.push_back(static_cast<int32_t>(20 + (i * 37) % 400));
  return p;
}

// Logits of every prompt position, one decode step at a time (the plain last-token path).
std::vector<std::vector<float>> reference_logits(const model::Model& m,
                                                 const std::vector<int32_t>& prompt) {
  auto backend = make_cpu_backend(m, CpuBackendOptions{2, 1, 0});
  EXPECT_TRUE(backend.has_value()) << backend.status().to_string();
  if (!backend.has_value()) return {};
  testing::SlotTables tables(**backend);
  const auto table = tables(0);
  std::vector<std::vector<float>> rows;
  for (size_t p = 0; p < prompt.size(); ++p) {
    const SeqChunk chunk{table, static_cast<int>(p), std::span<const int32_t>(&prompt[p], 1), true};
    std::vector<float> logits;
    const Status st = (*backend)->forward(std::span<const SeqChunk>(&chunk, 1), logits);
    EXPECT_TRUE(st.is_ok()) << st.to_string();
    rows.push_back(std::move(logits));
  }
  return rows;
}

double ref_logprob(const std::vector<float>& row, int32_t token) {
  const float mx = *std::max_element(row.begin(), row.end());
  double z = 0.0;
  for (float v : row) z += std::exp(static_cast<double>(v - mx));
  return static_cast<double>(row[static_cast<size_t>(token)] - mx) - std::log(z);
}

// Submits one request and collects its outputs.
std::vector<EngineOutput> run(Engine& engine, uint64_t id, const std::vector<int32_t>& prompt,
                              SamplingParams params) {
  auto done = std::make_shared<std::promise<void>>();
  auto outs = std::make_shared<std::vector<EngineOutput>>();
  EngineRequest req;
  req.id = id;
  req.prompt = prompt;
  req.params = std::move(params);
  req.on_output = [done, outs](EngineOutput&& out) {
    const bool last = out.finish != FinishReason::kNone;
    outs->push_back(std::move(out));
    if (last) done->set_value();
  };
  const Status st = engine.submit(std::move(req));
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  if (!st.is_ok()) return {};
  done->get_future().wait();
  return *outs;
}

class PromptLogprobs : public ::testing::Test {
 protected:
  void SetUp() override {
    TURBINE_REQUIRE_ASSET(turbine::testing::stories_gguf());
    auto m = model::load_model(turbine::testing::stories_gguf());
    ASSERT_TRUE(m.has_value()) << m.status().to_string();
    model_ = std::move(m).value();
    prompt_ = test_prompt();
    ref_ = reference_logits(*model_, prompt_);
    ASSERT_EQ(ref_.size(), prompt_.size());
  }

  std::unique_ptr<Engine> make_engine(int max_batched_tokens) {
    auto backend = make_cpu_backend(*model_, CpuBackendOptions{2, 4, 0});
    EXPECT_TRUE(backend.has_value()) << backend.status().to_string();
    EngineOptions eo;
    eo.max_num_seqs = 4;
    eo.max_num_batched_tokens = max_batched_tokens;
    return std::make_unique<Engine>(std::move(backend).value(), model_->config().n_vocab, eo);
  }

  static SamplingParams scoring(int max_tokens) {
    SamplingParams p;
    p.temperature = 0.0f;
    p.max_tokens = max_tokens;
    p.prompt_logprobs = kTop;
    return p;
  }

  // Every prompt token after the first, scored like the reference.
  void expect_matches(const std::vector<SampledToken>& got) {
    ASSERT_EQ(got.size(), prompt_.size() - 1);
    for (size_t i = 0; i + 1 < prompt_.size(); ++i) {
      const std::vector<float>& row = ref_[i];
      EXPECT_EQ(got[i].token, prompt_[i + 1]) << "position " << i;
      EXPECT_NEAR(got[i].logprob, ref_logprob(row, prompt_[i + 1]), 1e-3) << "position " << i;
      std::vector<int32_t> ids(row.size());
      std::iota(ids.begin(), ids.end(), 0);
      std::partial_sort(ids.begin(), ids.begin() + kTop, ids.end(), [&](int32_t a, int32_t b) {
        return row[static_cast<size_t>(a)] > row[static_cast<size_t>(b)];
      });
      ASSERT_EQ(got[i].top_logprobs.size(), static_cast<size_t>(kTop)) << "position " << i;
      for (int k = 0; k < kTop; ++k) {
        // Near-ties may order differently between the two paths; compare the values.
        EXPECT_NEAR(got[i].top_logprobs[static_cast<size_t>(k)].second,
                    ref_logprob(row, ids[static_cast<size_t>(k)]), 1e-3)
            << "position " << i << " rank " << k;
      }
      EXPECT_LE(got[i].logprob, got[i].top_logprobs[0].second + 1e-6);
    }
  }

  std::unique_ptr<model::Model> model_;
  std::vector<int32_t> prompt_;
  std::vector<std::vector<float>> ref_;
};

TEST_F(PromptLogprobs, ScoringOnlyMatchesTokenByTokenForward) {
  auto engine = make_engine(2048);
  const std::vector<EngineOutput> outs = run(*engine, 1, prompt_, scoring(0));
  ASSERT_EQ(outs.size(), 1u);
  EXPECT_EQ(outs[0].finish, FinishReason::kLength);
  EXPECT_TRUE(outs[0].tokens.empty());
  EXPECT_EQ(outs[0].completion_tokens, 0);
  EXPECT_EQ(outs[0].prompt_tokens, static_cast<int>(prompt_.size()));
  expect_matches(outs[0].prompt_logprobs);
}

TEST_F(PromptLogprobs, ChunkedPrefillMatches) {
  auto engine = make_engine(7);  // the 41-token prompt in 6 chunks
  const std::vector<EngineOutput> outs = run(*engine, 1, prompt_, scoring(3));
  ASSERT_FALSE(outs.empty());
  expect_matches(outs[0].prompt_logprobs);
  // Only the first output carries them, and the first token is the reference's greedy choice.
  for (size_t i = 1; i < outs.size(); ++i) EXPECT_TRUE(outs[i].prompt_logprobs.empty());
  ASSERT_FALSE(outs[0].tokens.empty());
  const std::vector<float>& last = ref_.back();
  EXPECT_EQ(outs[0].tokens[0].token, std::max_element(last.begin(), last.end()) - last.begin());
  int generated = 0;
  for (const EngineOutput& o : outs) generated += static_cast<int>(o.tokens.size());
  EXPECT_EQ(generated, outs.back().completion_tokens);
}

TEST_F(PromptLogprobs, PrefixCacheHitIsRecomputed) {
  auto engine = make_engine(2048);
  SamplingParams plain;
  plain.temperature = 0.0f;
  plain.max_tokens = 1;
  const std::vector<EngineOutput> warm = run(*engine, 1, prompt_, plain);
  ASSERT_FALSE(warm.empty());
  EXPECT_TRUE(warm[0].prompt_logprobs.empty());
  // The same prompt again hits the cache without prompt logprobs...
  const std::vector<EngineOutput> hit = run(*engine, 2, prompt_, plain);
  ASSERT_FALSE(hit.empty());
  EXPECT_GT(hit.back().cached_tokens, 0);
  // ...and is computed in full with them.
  const std::vector<EngineOutput> scored = run(*engine, 3, prompt_, scoring(0));
  ASSERT_EQ(scored.size(), 1u);
  EXPECT_EQ(scored[0].cached_tokens, 0);
  expect_matches(scored[0].prompt_logprobs);
}

TEST_F(PromptLogprobs, MaxTokensZeroWithoutThemOnlyPrefills) {
  auto engine = make_engine(2048);
  SamplingParams p;
  p.max_tokens = 0;
  const std::vector<EngineOutput> outs = run(*engine, 1, prompt_, p);
  ASSERT_EQ(outs.size(), 1u);
  EXPECT_EQ(outs[0].finish, FinishReason::kLength);
  EXPECT_TRUE(outs[0].tokens.empty());
  EXPECT_TRUE(outs[0].prompt_logprobs.empty());
  EngineRequest bad;
  bad.id = 2;
  bad.prompt = prompt_;
  bad.params.max_tokens = -1;
  bad.on_output = [](EngineOutput&&) {};
  EXPECT_EQ(engine->submit(std::move(bad)).code(), StatusCode::kInvalidArgument);
}

TEST(PromptLogprobsScore, TopKIsBestFirstWithLowestIdOnTies) {
  const std::vector<float> logits = {1.0f, 3.0f, 3.0f, -2.0f, 0.5f};
  const SampledToken t = score_token(logits, 3, 3);
  EXPECT_EQ(t.token, 3);
  ASSERT_EQ(t.top_logprobs.size(), 3u);
  EXPECT_EQ(t.top_logprobs[0].first, 1);
  EXPECT_EQ(t.top_logprobs[1].first, 2);
  EXPECT_EQ(t.top_logprobs[2].first, 0);
  double z = 0.0;
  for (float v : logits) z += std::exp(static_cast<double>(v));
  EXPECT_NEAR(t.logprob, -2.0 - std::log(z), 1e-5);
  EXPECT_NEAR(t.top_logprobs[0].second, 3.0 - std::log(z), 1e-5);
  EXPECT_TRUE(score_token(logits, 0, 0).top_logprobs.empty());
}

}  // namespace
}  // namespace turbine::engine
