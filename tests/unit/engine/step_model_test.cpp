// The step-time model (engine/step_model.h): features of a step, the prior, online fitting with
// forgetting, clipping of outliers, non-negative coefficients, and the chunk size solve the
// scheduler uses.
#include "engine/step_model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "engine/backend.h"

namespace turbine::engine {
namespace {

// A step of `decodes` sequences at context `ctx` and optionally one prefill chunk.
StepShape shape(int decodes, int ctx, int prefill_pos, int prefill_n) {
  StepShape s;
  for (int i = 0; i < decodes; ++i) s.add_chunk(ctx, 1, true);
  if (prefill_n > 0) s.add_chunk(prefill_pos, prefill_n, false);
  return s;
}

StepShape random_shape(std::mt19937_64& rng, bool with_prefill = true) {
  std::uniform_int_distribution<int> decodes(0, 256), ctx(16, 4096), pos(0, 4096), n(1, 4096);
  const int d = decodes(rng);
  const bool prefill = with_prefill && (d == 0 || rng() % 2 == 0);
  return shape(d, ctx(rng), pos(rng), prefill ? n(rng) : 0);
}

TEST(StepModelTest, ShapeOfChunks) {
  const std::vector<int32_t> table = {0, 1, 2};
  const std::vector<int32_t> one = {7};
  const std::vector<int32_t> ten(10, 7);
  const SeqChunk chunks[] = {
      {table, 20, one, true},  // a decode at context 20
      {table, 0, ten, true},   // a whole 10-token prompt
      {table, 5, one, false},  // one prompt position that wants no logits: prefill
  };
  const StepShape s = step_shape(chunks);
  EXPECT_EQ(s.n_seqs, 3);
  EXPECT_EQ(s.kv_tokens, 21 + 10 + 6);
  EXPECT_EQ(s.prefill_tokens, 11);
  EXPECT_DOUBLE_EQ(s.prefill_attention, 10 * 5.0 + 1 * 5.5);
}

TEST(StepModelTest, PredictsThePriorBeforeAnySample) {
  const StepCoefficients prior{4.0, 0.1, 1e-4, 0.05, 2e-6};
  StepModelOptions o;
  o.prior = prior;
  const StepTimeModel m(o);
  const StepShape s = shape(64, 1000, 0, 512);
  EXPECT_DOUBLE_EQ(m.predict_ms(s), prior.predict_ms(s));
  EXPECT_EQ(m.samples(), 0u);
}

// Steps timed by a linear truth unlike the prior: the fit finds it and predicts unseen shapes.
TEST(StepModelTest, LearnsALinearBackendFromItsSteps) {
  const StepCoefficients truth{9.0, 0.05, 2.0e-5, 0.06, 0.5e-6};
  StepTimeModel m;  // prior: the H100 defaults
  std::mt19937_64 rng(1);
  for (int i = 0; i < 400; ++i) {
    const StepShape s = random_shape(rng);
    m.observe(s, truth.predict_ms(s));
  }
  EXPECT_EQ(m.samples(), 400u);
  for (int i = 0; i < 100; ++i) {
    const StepShape s = random_shape(rng);
    EXPECT_NEAR(m.predict_ms(s), truth.predict_ms(s), 0.02 * truth.predict_ms(s));
  }
  EXPECT_NEAR(m.coefficients().per_prefill_token_ms, truth.per_prefill_token_ms, 0.003);
  EXPECT_NEAR(m.coefficients().base_ms, truth.base_ms, 0.5);
}

// Exponential forgetting: when the backend becomes slower (another tenant, clocks), the fit
// follows within a few hundred steps.
TEST(StepModelTest, ForgetsOldSteps) {
  const StepCoefficients before{5.0, 0.02, 4.0e-5, 0.03, 1.3e-6};
  StepCoefficients after = before;
  after.base_ms *= 2;
  after.per_prefill_token_ms *= 2;
  StepTimeModel m;
  std::mt19937_64 rng(2);
  for (int i = 0; i < 300; ++i) {
    const StepShape s = random_shape(rng);
    m.observe(s, before.predict_ms(s));
  }
  for (int i = 0; i < 500; ++i) {
    const StepShape s = random_shape(rng);
    m.observe(s, after.predict_ms(s));
  }
  for (int i = 0; i < 50; ++i) {
    const StepShape s = random_shape(rng);
    EXPECT_NEAR(m.predict_ms(s), after.predict_ms(s), 0.05 * after.predict_ms(s));
  }
}

// Only decode steps seen: the prefill coefficient, which they do not excite, stays at its prior
// instead of drifting, while decode steps are predicted from the data.
TEST(StepModelTest, UnexcitedDirectionsKeepThePrior) {
  const StepCoefficients truth{7.0, 0.03, 5.0e-5, 0.03, 1.3e-6};
  StepTimeModel m;
  std::mt19937_64 rng(3);
  for (int i = 0; i < 1000; ++i) {
    const StepShape s = random_shape(rng, false);
    if (s.n_seqs == 0) continue;
    m.observe(s, truth.predict_ms(s));
  }
  const StepCoefficients prior = default_step_prior();
  EXPECT_NEAR(m.coefficients().per_prefill_token_ms, prior.per_prefill_token_ms, 1e-9);
  EXPECT_NEAR(m.coefficients().attention_ms, prior.attention_ms, 1e-12);
  const StepShape d = shape(128, 2000, 0, 0);
  EXPECT_NEAR(m.predict_ms(d), truth.predict_ms(d), 0.02 * truth.predict_ms(d));
}

// A step 100x slower than predicted (a CUDA graph capture) moves the fit as a 4x one would; the
// fit recovers from it.
TEST(StepModelTest, ClipsOutliers) {
  const StepCoefficients truth = default_step_prior();
  StepTimeModel m;
  std::mt19937_64 rng(4);
  for (int i = 0; i < 200; ++i) {
    const StepShape s = random_shape(rng);
    m.observe(s, truth.predict_ms(s));
  }
  const StepShape s = shape(32, 512, 0, 0);
  StepTimeModel clipped = m;
  StepTimeModel at_ratio = m;
  clipped.observe(s, 100 * truth.predict_ms(s));
  at_ratio.observe(s, 4 * m.predict_ms(s));
  EXPECT_DOUBLE_EQ(clipped.predict_ms(s), at_ratio.predict_ms(s));
  EXPECT_LT(clipped.predict_ms(s), 2 * truth.predict_ms(s));
  for (int i = 0; i < 300; ++i) {
    const StepShape r = random_shape(rng);
    clipped.observe(r, truth.predict_ms(r));
  }
  EXPECT_NEAR(clipped.predict_ms(s), truth.predict_ms(s), 0.02 * truth.predict_ms(s));
}

// Times that fall as prefill grows (noise, or a backend that overlaps work) never make a negative
// coefficient: more work is never predicted to be faster.
TEST(StepModelTest, CoefficientsStayNonNegative) {
  StepTimeModel m;
  std::mt19937_64 rng(5);
  for (int i = 0; i < 300; ++i) {
    const StepShape s = random_shape(rng);
    m.observe(s, std::max(1.0, 200.0 - 0.04 * static_cast<double>(s.prefill_tokens)));
  }
  const StepCoefficients& c = m.coefficients();
  for (double v :
       {c.base_ms, c.per_seq_ms, c.per_kv_token_ms, c.per_prefill_token_ms, c.attention_ms}) {
    EXPECT_GE(v, 0.0);
    EXPECT_TRUE(std::isfinite(v));
  }
  EXPECT_LE(m.predict_ms(shape(8, 100, 0, 10)), m.predict_ms(shape(8, 100, 0, 4000)));
}

// The chunk the scheduler takes: the largest that fits the time left, at most what is asked.
TEST(StepModelTest, MaxPrefillTokensIsTheLargestChunkThatFits) {
  const StepCoefficients c = default_step_prior();
  for (int pos : {0, 100, 4000, 30000}) {
    for (double allowance : {0.01, 0.2, 1.0, 7.5, 45.0, 400.0}) {
      const int k = c.max_prefill_tokens(pos, allowance, 100000);
      if (k > 0) {
        EXPECT_LE(c.chunk_ms(pos, k, false), allowance) << pos << " " << allowance;
      }
      EXPECT_GT(c.chunk_ms(pos, k + 1, false), allowance) << pos << " " << allowance;
    }
  }
  EXPECT_EQ(c.max_prefill_tokens(0, 1e9, 512), 512);
  EXPECT_EQ(c.max_prefill_tokens(0, 0.0, 512), 0);
  EXPECT_EQ(c.max_prefill_tokens(0, 1.0, 0), 0);
  // Without an attention term the solve is linear.
  const StepCoefficients flat{10.0, 1.0, 0.0, 0.5, 0.0};
  EXPECT_EQ(flat.max_prefill_tokens(7, 9.0, 100), 16);
}

TEST(StepModelTest, OptionsAreChecked) {
  StepModelOptions o;
  EXPECT_TRUE(o.valid());
  o.forgetting = 0;
  EXPECT_FALSE(o.valid());
  o = {};
  o.prior.per_seq_ms = -1;
  EXPECT_FALSE(o.valid());
  o = {};
  o.outlier_ratio = 1;
  EXPECT_FALSE(o.valid());
}

}  // namespace
}  // namespace turbine::engine
