// Profile, predictors and the SLA capacity model.
#include <cmath>
#include <limits>

#include <gtest/gtest.h>

#include "planner/capacity.h"
#include "planner/predictor.h"
#include "planner/profile.h"
#include "planner_test_util.h"

namespace turbine::planner {
namespace {

using testing::test_profile;

TEST(Profile, JsonRoundTripAndValidation) {
  Profile p = test_profile();
  p.time_scale = 4;
  p.source = "test";
  auto back = profile_from_json(to_json(p));
  ASSERT_TRUE(back.has_value()) << back.status().message();
  EXPECT_EQ(back->time_scale, 4);
  ASSERT_EQ(back->prefill.size(), 3u);
  EXPECT_DOUBLE_EQ(back->prefill[1].ttft_ms, p.prefill[1].ttft_ms);
  ASSERT_EQ(back->decode.size(), 2u);
  EXPECT_DOUBLE_EQ(back->decode[1].points[3].itl_ms, p.decode[1].points[3].itl_ms);

  auto bad = profile_from_json(
      R"({"version":1,"prefill":[{"isl":2000,"ttft_ms":60},{"isl":1000,"ttft_ms":30}],"decode":[]})");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.status().field(), "prefill[1]");
  auto unknown = profile_from_json(R"({"version":1,"prefill":[],"decode":[],"extra":1})");
  ASSERT_FALSE(unknown.has_value());
  EXPECT_EQ(unknown.status().field(), "extra");
  EXPECT_FALSE(profile_from_json(R"({"version":2,"prefill":[],"decode":[]})").has_value());
  EXPECT_FALSE(profile_from_json("[1,2]").has_value());
}

TEST(Profile, Interpolation) {
  const Profile p = test_profile();
  EXPECT_NEAR(p.prefill_seconds(1000), 0.035, 1e-9);
  EXPECT_NEAR(p.prefill_seconds(2500), (5 + 0.03 * 2500) / 1000, 1e-9);    // linear between
  EXPECT_NEAR(p.prefill_seconds(500), 0.035, 1e-9);                        // first value below
  EXPECT_NEAR(p.prefill_seconds(32000), (5 + 0.03 * 32000) / 1000, 1e-9);  // last slope beyond
  // Exact on the measured grid, linear between contexts (the test model is linear in both).
  EXPECT_NEAR(p.decode_itl_seconds(16, 1000), (5 + 0.32 + 0.64) / 1000, 1e-9);
  EXPECT_NEAR(p.decode_itl_seconds(64, 4500), (5 + 1.28 + 4e-5 * 64 * 4500) / 1000, 1e-6);
  // Max concurrency under a target: ITL = 5 + k (0.02 + 0.32) ms at 8k context.
  const double k = p.max_decode_concurrency(0.015, 8000);
  EXPECT_NEAR(p.decode_itl_seconds(k, 8000), 0.015, 1e-6);
  EXPECT_NEAR(k, 10.0 / 0.34, 0.05);
  EXPECT_EQ(p.max_decode_concurrency(0.004, 8000), 0);   // even one sequence is slower
  EXPECT_EQ(p.max_decode_concurrency(10.0, 1000), 256);  // capped at the measured range
  EXPECT_NEAR(p.decode_tokens_per_s(0.015, 8000), k / 0.015, 1);
}

TEST(Predictor, ConstantLinearKalman) {
  PredictorOptions o;
  o.kind = PredictorKind::kConstant;
  auto c = make_predictor(o);
  EXPECT_FALSE(c->predict().has_value());
  c->observe(3);
  c->observe(5);
  EXPECT_EQ(*c->predict(), 5);

  o.kind = PredictorKind::kLinear;
  o.window = 4;
  auto l = make_predictor(o);
  for (double v : {100.0, 1.0, 2.0, 3.0, 4.0}) l->observe(v);  // the 100 left the window
  EXPECT_NEAR(*l->predict(), 5.0, 1e-9);
  for (double v : {3.0, 2.0, 1.0, 0.0}) l->observe(v);
  EXPECT_EQ(*l->predict(), 0.0);  // never negative

  o.kind = PredictorKind::kKalman;
  auto k = make_predictor(o);
  for (int i = 0; i < 50; ++i) k->observe(10.0);
  EXPECT_NEAR(*k->predict(), 10.0, 1e-3);
  // A steady ramp: the trend is learnt, the prediction runs ahead of the last value.
  auto ramp = make_predictor(o);
  for (int i = 0; i < 40; ++i) ramp->observe(2.0 * i);
  EXPECT_NEAR(*ramp->predict(), 80.0, 1.0);
  EXPECT_GT(*ramp->predict(), 78.0);

  PredictorOptions bad;
  bad.r = 0;
  EXPECT_FALSE(bad.validate().is_ok());
  EXPECT_FALSE(parse_predictor_kind("arima").has_value());
}

TEST(Capacity, HeavyTailedPromptsWaitLonger) {
  const Profile p = test_profile();
  // 9 prompts around 1k tokens and one around 16k: same mean length as 10 prompts of ~2.4k.
  const std::vector<std::pair<double, double>> buckets = {{1448, 9}, {22627, 1}};
  const auto [s1, s2] = prefill_moments(p, buckets);
  const double small = p.prefill_seconds(1448.0 / 2),  // the first bucket: half its bound
      big = p.prefill_seconds(std::sqrt(1448.0 * 22627));
  EXPECT_NEAR(s1, (9 * small + big) / 10, 1e-12);
  EXPECT_NEAR(s2, (9 * small * small + big * big) / 10, 1e-12);
  Load spread{4.0, 0, 200, s1, s2};
  Load even{4.0, 0, 200, s1, s1 * s1};
  // Same utilisation, longer wait (Pollaczek-Khinchine).
  EXPECT_GT(estimate_prefill_ttft(p, spread, 1), estimate_prefill_ttft(p, even, 1));
  EXPECT_EQ(prefill_moments(p, {}).first, 0);
  // The overflow bucket counts at 1.5x the last bound.
  const auto [o1, o2] =
      prefill_moments(p, {{16384, 0}, {std::numeric_limits<double>::infinity(), 2}});
  EXPECT_NEAR(o1, p.prefill_seconds(1.5 * 16384), 1e-12);
}

TEST(Capacity, PrefillQueueAndDecodeThroughput) {
  const Profile p = test_profile();
  const Load load{10.0, 4000, 200};  // s = 0.125 s per prompt
  // One worker: rho = 1.25, overloaded. Two behind one router: M/D/2, whose wait is M/M/2's
  // (P(wait) = 2 rho^2 / (1 + rho)) halved (deterministic service, Cs^2 = 0).
  EXPECT_TRUE(std::isinf(estimate_prefill_ttft(p, load, 1)));
  const double rho = 0.625;
  EXPECT_NEAR(estimate_prefill_ttft(p, load, 2),
              0.125 + 2 * rho * rho / (1 + rho) * 0.125 / (2 - 1.25) * 0.5, 1e-9);
  // One worker at rho 0.5: Pollaczek-Khinchine, lambda E[S^2] / (2 (1 - rho)).
  EXPECT_NEAR(estimate_prefill_ttft(p, Load{4.0, 4000, 200}, 1), 0.125 + 4 * 0.125 * 0.125 / 1.0,
              1e-9);
  EXPECT_LT(estimate_prefill_ttft(p, load, 4), estimate_prefill_ttft(p, load, 2));
  EXPECT_GE(estimate_prefill_ttft(p, load, 100), 0.125);  // never below the prompt's own time

  // Decode: 2000 tokens/s in all. ITL falls as workers are added, and the steady concurrency
  // per worker satisfies k / itl(k) = share of the tokens.
  const double ctx = load.isl + load.osl / 2;
  const double itl1 = estimate_decode_itl(p, load, 1);
  const double itl4 = estimate_decode_itl(p, load, 4);
  EXPECT_LT(itl4, itl1);
  const double itl_at_2000 = itl_at_throughput(p, 2000, ctx);
  EXPECT_NEAR(itl_at_2000, itl1, 1e-9);
  // Beyond what 256 sequences produce: infinite.
  EXPECT_TRUE(std::isinf(itl_at_throughput(p, 1e6, ctx)));

  // Aggregated: prompts take a share of each worker and stretch its ITL.
  const LatencyEstimate agg4 = estimate_aggregated(p, load, 4);
  const double f = 10.0 / 4 * 0.125;
  EXPECT_NEAR(agg4.itl_s, itl_at_throughput(p, 10.0 / 4 * 200 / (1 - f), ctx) / (1 - f), 1e-9);
  EXPECT_GT(agg4.itl_s, estimate_decode_itl(p, load, 4));
  EXPECT_TRUE(std::isinf(estimate_aggregated(p, load, 1).itl_s));
}

}  // namespace
}  // namespace turbine::planner
