#include "mock/mock_engine.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <numeric>
#include <thread>
#include <variant>

namespace turbine::mock {
namespace {

using engine::EngineOutput;
using engine::EngineRequest;
using engine::FinishReason;

struct Collector {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<EngineOutput> outputs;
  engine::OutputCallback callback() {
    return [this](EngineOutput&& o) {
      std::lock_guard lock(mu);
      outputs.push_back(std::move(o));
      cv.notify_all();
    };
  }
  bool wait() {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(30), [&] {
      return !outputs.empty() && outputs.back().finish != FinishReason::kNone;
    });
  }
  std::vector<int32_t> tokens() {
    std::lock_guard lock(mu);
    std::vector<int32_t> t;
    for (const auto& o : outputs)
      for (const auto& s : o.tokens) t.push_back(s.token);
    return t;
  }
};

std::vector<int32_t> seq(int n, int start = 0) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  std::iota(t.begin(), t.end(), start);
  return t;
}

EngineRequest req(uint64_t id, std::vector<int32_t> prompt, Collector& c, int max_tokens) {
  EngineRequest r;
  r.id = id;
  r.prompt = std::move(prompt);
  r.params.max_tokens = max_tokens;
  r.params.ignore_eos = true;
  r.on_output = c.callback();
  return r;
}

MockEngineOptions small() {
  MockEngineOptions o;
  o.n_vocab = 5000;
  o.block_size = 16;
  o.num_blocks = 1024;
  o.speedup = 50;
  return o;
}

TEST(MockEngineTest, SimulatedTimeFollowsTheTimingModel) {
  MockEngineOptions o = small();
  o.max_num_batched_tokens = 8192;
  MockEngine e(o);
  Collector c;
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(e.submit(req(1, seq(4000), c, 3)).is_ok());
  ASSERT_TRUE(c.wait());
  const double wall_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  const MockTiming& t = o.timing;
  // One prefill step of 4000 tokens, then two decode steps at context 4001 and 4002.
  const double prefill = t.step_ms(1, 4000, 4000, 4000.0 * 2000.0);
  const double decode = t.step_ms(1, 4001, 0, 0) + t.step_ms(1, 4002, 0, 0);
  EXPECT_NEAR(e.simulated_ms(), prefill + decode, 1e-6);
  EXPECT_GT(prefill, 100);  // an 8B model's 4k prefill: ~150 ms
  EXPECT_LT(prefill, 250);
  EXPECT_GE(wall_ms, (prefill + decode) / o.speedup * 0.95);
  EXPECT_EQ(e.stats().steps, 3u);
  // Chunked prefill: a budget of 1024 tokens makes 4 prefill steps, and a longer time.
  o.max_num_batched_tokens = 1024;
  MockEngine chunked(o);
  Collector d;
  ASSERT_TRUE(chunked.submit(req(1, seq(4000), d, 1)).is_ok());
  ASSERT_TRUE(d.wait());
  EXPECT_EQ(chunked.stats().steps, 4u);
  EXPECT_GT(chunked.simulated_ms(), prefill);
}

TEST(MockEngineTest, DecodeStepTimeGrowsWithBatchAndKv) {
  const MockTiming t;
  EXPECT_LT(t.step_ms(1, 1000, 0, 0), t.step_ms(64, 1000, 0, 0));
  EXPECT_LT(t.step_ms(8, 1000, 0, 0), t.step_ms(8, 100000, 0, 0));
  EXPECT_NEAR(t.step_ms(1, 4096, 0, 0), 5.0 + 0.02 + 4096 * 4e-5, 1e-9);
}

TEST(MockEngineTest, PublishesKvEventsAndReusesThePrefixCache) {
  auto sink = std::make_shared<kv::InProcessKvEventSink>();
  MockEngineOptions o = small();
  o.kv_event_sink = sink;
  MockEngine e(o);
  Collector a;
  ASSERT_TRUE(e.submit(req(1, seq(100), a, 2)).is_ok());
  ASSERT_TRUE(a.wait());
  size_t stored = 0;
  uint64_t next_id = 0;
  for (const auto& ev : sink->take()) {
    EXPECT_EQ(ev.event_id, next_id++);
    if (const auto* s = std::get_if<kv::BlockStored>(&ev.data)) {
      stored += s->blocks.size();
      EXPECT_EQ(s->token_ids.size(), s->blocks.size() * 16);
    }
  }
  EXPECT_EQ(stored, 6u);  // 100 prompt + 1 computed generated token: 6 full blocks
  Collector b;
  auto p = seq(100);
  p.push_back(7);
  ASSERT_TRUE(e.submit(req(2, p, b, 1)).is_ok());
  ASSERT_TRUE(b.wait());
  EXPECT_EQ(b.outputs.back().cached_tokens, 96);
  EXPECT_EQ(e.stats().prefix_cache_hit_tokens, 96u);
}

TEST(MockEngineTest, DeterministicTokensAndStopConditions) {
  MockEngineOptions o = small();
  o.enable_prefix_caching = false;
  o.eos_token_ids = {3};
  MockEngine e(o);
  Collector a, b;
  ASSERT_TRUE(e.submit(req(1, seq(20), a, 12)).is_ok());
  ASSERT_TRUE(e.submit(req(2, seq(20), b, 12)).is_ok());
  ASSERT_TRUE(a.wait());
  ASSERT_TRUE(b.wait());
  const auto ta = a.tokens();
  EXPECT_EQ(ta.size(), 12u);
  EXPECT_EQ(ta, b.tokens());
  EXPECT_EQ(a.outputs.back().finish, FinishReason::kLength);
  EXPECT_EQ(a.outputs.back().completion_tokens, 12);
  for (int32_t t : ta) {
    EXPECT_GE(t, 0);
    EXPECT_LT(t, o.n_vocab);
  }
  // A stop id equal to the 5th token ends the sequence there...
  Collector s;
  auto r = req(3, seq(20), s, 12);
  r.params.stop_token_ids = {ta[4]};
  ASSERT_TRUE(e.submit(std::move(r)).is_ok());
  ASSERT_TRUE(s.wait());
  EXPECT_EQ(s.tokens(), std::vector<int32_t>(ta.begin(), ta.begin() + 5));
  EXPECT_EQ(s.outputs.back().finish, FinishReason::kStop);
  // ...unless min_tokens forbids it.
  Collector m;
  auto r2 = req(4, seq(20), m, 8);
  r2.params.stop_token_ids = {ta[4]};
  r2.params.min_tokens = 8;
  ASSERT_TRUE(e.submit(std::move(r2)).is_ok());
  ASSERT_TRUE(m.wait());
  EXPECT_EQ(m.tokens().size(), 8u);
  EXPECT_EQ(m.outputs.back().finish, FinishReason::kLength);
}

TEST(MockEngineTest, PreemptsWhenBlocksRunOutAndFinishesEverything) {
  MockEngineOptions o = small();
  o.num_blocks = 40;  // 640 positions for 6 requests of up to 200
  o.enable_prefix_caching = false;
  MockEngine e(o);
  std::vector<std::unique_ptr<Collector>> cs;
  for (uint64_t i = 0; i < 6; ++i) {
    cs.push_back(std::make_unique<Collector>());
    ASSERT_TRUE(e.submit(req(i, seq(100, static_cast<int>(i) * 200), *cs.back(), 100)).is_ok());
  }
  for (auto& c : cs) {
    ASSERT_TRUE(c->wait());
    EXPECT_EQ(c->tokens().size(), 100u);
  }
  EXPECT_GT(e.stats().preemptions, 0u);
  // Stats are published after the step whose outputs were just delivered.
  for (int i = 0; i < 1000 && e.stats().kv_used_blocks != 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(e.stats().kv_used_blocks, 0);
}

// Issue 29: the mock engine takes --scheduling-policy like a real one (the same Engine).
TEST(MockEngineTest, PriorityFollowsTheSchedulingPolicy) {
  for (const auto policy : {engine::SchedulingPolicy::kFcfs, engine::SchedulingPolicy::kPriority}) {
    MockEngineOptions o = small();
    o.scheduling_policy = policy;
    MockEngine e(o);
    Collector c;
    EngineRequest r = req(1, seq(20), c, 2);
    r.params.priority = -4;
    const Status st = e.submit(std::move(r));
    if (policy == engine::SchedulingPolicy::kFcfs) {
      EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
      EXPECT_EQ(st.field(), "priority");
      continue;
    }
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    ASSERT_TRUE(c.wait());
    EXPECT_EQ(c.tokens().size(), 2u);
  }
}

// Issue 29: outputs stamped with the engine's simulated clock (the callback runs on the engine
// thread right after the step that made the token, so the gap between two tokens of a decoding
// sequence is the simulated time of the step that made the later one).
struct Timed {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<double> at_ms;
  bool done = false;

  bool wait(size_t outputs) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(60),
                       [&] { return done || at_ms.size() >= outputs; });
  }
  std::vector<double> times() {
    std::lock_guard lock(mu);
    return at_ms;
  }
};

// Distinct prompts (no shared prefix blocks) within the small() vocabulary.
std::vector<int32_t> spread_prompt(int n, int start) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) t[static_cast<size_t>(i)] = (start + i * 7) % 4999;
  return t;
}

void submit_timed(MockEngine& e, Timed& t, uint64_t id, std::vector<int32_t> prompt,
                  int max_tokens) {
  EngineRequest r;
  r.id = id;
  r.prompt = std::move(prompt);
  r.params.max_tokens = max_tokens;
  r.params.ignore_eos = true;
  r.on_output = [&t, &e](EngineOutput&& out) {
    std::lock_guard lock(t.mu);
    t.at_ms.push_back(e.simulated_ms());
    t.done = out.finish != FinishReason::kNone;
    t.cv.notify_all();
  };
  ASSERT_TRUE(e.submit(std::move(r)).is_ok());
}

std::vector<std::unique_ptr<Timed>> make_timed(size_t n) {
  std::vector<std::unique_ptr<Timed>> v;
  for (size_t i = 0; i < n; ++i) v.push_back(std::make_unique<Timed>());
  return v;
}

// 32 sequences decode when 16 prompts of 2,048 tokens arrive at once. With a 30 ms ITL target
// every decode step stays within it and the burst is still prefilled; without the target the
// steps that carry the burst's 8,192-token chunks take ~250 ms.
TEST(MockEngineTest, ItlTargetHoldsUnderAPrefillBurst) {
  for (double target : {0.0, 30.0}) {
    SCOPED_TRACE(target);
    MockEngineOptions o = small();
    o.num_blocks = 8192;
    o.max_num_seqs = 64;
    o.max_num_batched_tokens = 8192;
    o.target_itl_ms = target;
    auto decoders = make_timed(32), burst = make_timed(16);  // outlive the engine's callbacks
    MockEngine e(o);
    for (int i = 0; i < 32; ++i) submit_timed(e, *decoders[i], i, spread_prompt(64, i * 131), 400);
    for (auto& d : decoders) ASSERT_TRUE(d->wait(2));
    for (int i = 0; i < 16; ++i)
      submit_timed(e, *burst[i], 100 + i, spread_prompt(2048, 17 + i * 997), 4);
    for (auto& b : burst) ASSERT_TRUE(b->wait(1000));
    for (auto& d : decoders) ASSERT_TRUE(d->wait(1000));
    double worst_gap = 0;
    for (auto& d : decoders) {
      const std::vector<double> at = d->times();
      ASSERT_EQ(at.size(), 400u);
      for (size_t k = 1; k < at.size(); ++k) worst_gap = std::max(worst_gap, at[k] - at[k - 1]);
    }
    for (auto& b : burst) EXPECT_EQ(b->times().size(), 4u);
    const engine::EngineStats st = e.stats();
    EXPECT_EQ(st.prefill_tokens, 16u * 2048 + 32u * 64);
    EXPECT_EQ(st.queue_admissions, 48u);
    EXPECT_EQ(st.boosted_steps, 0u);  // no TTFT target
    ASSERT_GT(st.step_model_samples, 0u);
    // The model starts at the simulated backend's own timing: it predicts every step exactly.
    EXPECT_LT(st.step_model_relative_error / static_cast<double>(st.step_model_samples), 1e-6);
    if (target > 0) {
      EXPECT_LE(worst_gap, target + 1e-6);
    } else {
      EXPECT_GT(worst_gap, 200.0);
    }
  }
}

// With a TTFT target too, requests that have waited half of it make steps run past the ITL
// target, but only on time the decoding sequences banked: each one's mean inter-token latency
// since its first token stays within the ITL target after every step, and no step exceeds
// kMaxItlBoost x the target. (8 decoders bank ~25 ms per 5 ms step; 24 prompts of 2,048 tokens
// need ~2 s of prefill at the ITL target's rate, more than their 1 s TTFT target.)
TEST(MockEngineTest, TtftTargetSpendsOnlyBankedTime) {
  constexpr double kItl = 30, kTtft = 1000;
  MockEngineOptions o = small();
  o.num_blocks = 8192;
  o.max_num_seqs = 64;
  o.max_num_batched_tokens = 8192;
  o.target_itl_ms = kItl;
  o.target_ttft_ms = kTtft;
  auto decoders = make_timed(8), burst = make_timed(24);
  MockEngine e(o);
  for (int i = 0; i < 8; ++i) submit_timed(e, *decoders[i], i, spread_prompt(64, i * 131), 700);
  for (auto& d : decoders) ASSERT_TRUE(d->wait(100));
  for (int i = 0; i < 24; ++i)
    submit_timed(e, *burst[i], 100 + i, spread_prompt(2048, 17 + i * 997), 2);
  for (auto& b : burst) ASSERT_TRUE(b->wait(1000));
  for (auto& d : decoders) ASSERT_TRUE(d->wait(1000));
  double worst_gap = 0;
  for (auto& d : decoders) {
    const std::vector<double> at = d->times();
    ASSERT_EQ(at.size(), 700u);
    for (size_t k = 1; k < at.size(); ++k) {
      worst_gap = std::max(worst_gap, at[k] - at[k - 1]);
      EXPECT_LE((at[k] - at[0]) / static_cast<double>(k), kItl + 1e-6) << k;
    }
  }
  EXPECT_GT(e.stats().boosted_steps, 0u);
  EXPECT_GT(worst_gap, kItl);
  EXPECT_LE(worst_gap, engine::EngineOptions::kMaxItlBoost * kItl + 1e-6);
}

TEST(MockEngineTest, CancelAndShutdown) {
  MockEngineOptions o = small();
  o.speedup = 1;
  MockEngine e(o);
  Collector c;
  ASSERT_TRUE(e.submit(req(1, seq(10), c, 100000 - 11)).is_ok());
  e.cancel(1);
  ASSERT_TRUE(c.wait());
  EXPECT_EQ(c.outputs.back().finish, FinishReason::kCancelled);
  e.shutdown();
  Collector d;
  EXPECT_EQ(e.submit(req(2, seq(10), d, 1)).code(), StatusCode::kUnavailable);
  EXPECT_FALSE(e.submit(req(3, {}, d, 1)).is_ok());
}

}  // namespace
}  // namespace turbine::mock
