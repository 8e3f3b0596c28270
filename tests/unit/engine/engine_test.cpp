#include "engine/engine.h"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <map>
#include <mutex>

namespace turbine::engine {
namespace {

constexpr int32_t kVocab = 32;

// A deterministic backend: the next token is (last token + 1) % kVocab. Records the shape of
// every step so tests can check batching and chunked prefill.
class CountingBackend : public Backend {
 public:
  CountingBackend(int slots, int ctx) : slots_(slots), ctx_(ctx), pos_(slots, 0) {}
  std::string_view name() const override { return "counting"; }
  int num_slots() const override { return slots_; }
  int max_context() const override { return ctx_; }
  Status forward(std::span<const SeqChunk> chunks, std::vector<float>& logits) override {
    logits.clear();
    std::lock_guard lock(mu_);
    int n_tokens = 0;
    for (const auto& c : chunks) {
      if (c.pos != pos_[static_cast<size_t>(c.slot)]) return internal_error("position gap");
      pos_[static_cast<size_t>(c.slot)] += static_cast<int>(c.tokens.size());
      n_tokens += static_cast<int>(c.tokens.size());
      if (!c.want_logits) continue;
      std::vector<float> row(kVocab, 0.0f);
      row[static_cast<size_t>((c.tokens.back() + 1) % kVocab)] = 10.0f;
      logits.insert(logits.end(), row.begin(), row.end());
    }
    step_tokens_.push_back(n_tokens);
    max_batch_ = std::max(max_batch_, static_cast<int>(chunks.size()));
    return Status::ok();
  }
  void release_slot(int slot) override {
    std::lock_guard lock(mu_);
    pos_[static_cast<size_t>(slot)] = 0;
  }
  std::vector<int> step_tokens() {
    std::lock_guard lock(mu_);
    return step_tokens_;
  }
  int max_batch() {
    std::lock_guard lock(mu_);
    return max_batch_;
  }

 private:
  int slots_, ctx_;
  std::mutex mu_;
  std::vector<int> pos_;
  std::vector<int> step_tokens_;
  int max_batch_ = 0;
};

struct Collected {
  std::vector<int32_t> tokens;
  FinishReason finish = FinishReason::kNone;
  int prompt_tokens = 0;
  int completion_tokens = 0;
};

// Submits a request and returns a future of everything it produced.
std::future<Collected> run(Engine& engine, uint64_t id, std::vector<int32_t> prompt,
                           SamplingParams params, Status* submit_status = nullptr) {
  auto promise = std::make_shared<std::promise<Collected>>();
  auto acc = std::make_shared<Collected>();
  EngineRequest req;
  req.id = id;
  req.prompt = std::move(prompt);
  req.params = params;
  req.on_output = [promise, acc](EngineOutput&& out) {
    for (auto& t : out.tokens) acc->tokens.push_back(t.token);
    acc->prompt_tokens = out.prompt_tokens;
    acc->completion_tokens = out.completion_tokens;
    if (out.finish != FinishReason::kNone) {
      acc->finish = out.finish;
      promise->set_value(*acc);
    }
  };
  Status st = engine.submit(std::move(req));
  if (submit_status) *submit_status = st;
  return promise->get_future();
}

SamplingParams greedy(int max_tokens) {
  SamplingParams p;
  p.temperature = 0.0f;
  p.max_tokens = max_tokens;
  return p;
}

TEST(EngineTest, GeneratesUntilMaxTokens) {
  auto backend = std::make_unique<CountingBackend>(2, 64);
  Engine engine(std::move(backend), kVocab, EngineOptions{});
  auto r = run(engine, 1, {3, 4, 5}, greedy(4)).get();
  EXPECT_EQ(r.tokens, (std::vector<int32_t>{6, 7, 8, 9}));
  EXPECT_EQ(r.finish, FinishReason::kLength);
  EXPECT_EQ(r.prompt_tokens, 3);
  EXPECT_EQ(r.completion_tokens, 4);
}

TEST(EngineTest, StopsOnEosUnlessIgnored) {
  EngineOptions opts;
  opts.eos_token_ids = {10};
  Engine engine(std::make_unique<CountingBackend>(2, 64), kVocab, opts);
  auto r = run(engine, 1, {7}, greedy(20)).get();
  EXPECT_EQ(r.tokens, (std::vector<int32_t>{8, 9, 10}));
  EXPECT_EQ(r.finish, FinishReason::kStop);
  auto p = greedy(5);
  p.ignore_eos = true;
  auto r2 = run(engine, 2, {7}, p).get();
  EXPECT_EQ(r2.tokens.size(), 5u);
  EXPECT_EQ(r2.finish, FinishReason::kLength);
  auto p3 = greedy(20);
  p3.stop_token_ids = {9};
  EXPECT_EQ(run(engine, 3, {7}, p3).get().tokens, (std::vector<int32_t>{8, 9}));
}

TEST(EngineTest, StopsAtContextLength) {
  Engine engine(std::make_unique<CountingBackend>(1, 8), kVocab, EngineOptions{});
  auto r = run(engine, 1, {1, 2, 3, 4, 5}, greedy(100)).get();
  EXPECT_EQ(r.tokens.size(), 3u);  // 5 prompt + 3 generated = context of 8
  EXPECT_EQ(r.finish, FinishReason::kLength);
}

TEST(EngineTest, RejectsBadRequests) {
  Engine engine(std::make_unique<CountingBackend>(1, 8), kVocab, EngineOptions{});
  Status st;
  run(engine, 1, {}, greedy(1), &st);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  run(engine, 2, {1, 2, 3, 4, 5, 6, 7, 8}, greedy(1), &st);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  run(engine, 3, {kVocab}, greedy(1), &st);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  run(engine, 4, {-1}, greedy(1), &st);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  run(engine, 5, {1}, greedy(0), &st);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  // The engine still serves after refusing.
  EXPECT_EQ(run(engine, 6, {1}, greedy(2)).get().tokens, (std::vector<int32_t>{2, 3}));
}

TEST(EngineTest, BatchesConcurrentRequestsAndQueuesBeyondSlots) {
  auto backend = std::make_unique<CountingBackend>(4, 256);
  CountingBackend* b = backend.get();
  Engine engine(std::move(backend), kVocab, EngineOptions{});
  std::vector<std::future<Collected>> futures;
  for (int i = 0; i < 10; ++i) {
    futures.push_back(run(engine, static_cast<uint64_t>(i), {i}, greedy(20)));
  }
  for (int i = 0; i < 10; ++i) {
    auto r = futures[static_cast<size_t>(i)].get();
    ASSERT_EQ(r.tokens.size(), 20u);
    for (int j = 0; j < 20; ++j) EXPECT_EQ(r.tokens[static_cast<size_t>(j)], (i + 1 + j) % kVocab);
  }
  EXPECT_GE(b->max_batch(), 2);  // sequences shared steps
  EXPECT_LE(b->max_batch(), 4);  // never more than the slots
}

TEST(EngineTest, ChunkedPrefillRespectsTokenBudget) {
  auto backend = std::make_unique<CountingBackend>(2, 512);
  CountingBackend* b = backend.get();
  EngineOptions opts;
  opts.max_num_batched_tokens = 16;
  Engine engine(std::move(backend), kVocab, opts);
  std::vector<int32_t> prompt(100, 1);
  auto r = run(engine, 1, prompt, greedy(3)).get();
  EXPECT_EQ(r.tokens, (std::vector<int32_t>{2, 3, 4}));
  for (int n : b->step_tokens()) EXPECT_LE(n, 16);
}

TEST(EngineTest, CancelStopsGenerationAndFreesSlot) {
  Engine engine(std::make_unique<CountingBackend>(1, 1 << 20), kVocab, EngineOptions{});
  auto long_run = run(engine, 1, {1}, greedy(1 << 19));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  engine.cancel(1);
  ASSERT_EQ(long_run.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  auto r = long_run.get();
  EXPECT_EQ(r.finish, FinishReason::kCancelled);
  EXPECT_LT(r.tokens.size(), static_cast<size_t>(1 << 19));
  // The only slot is free again.
  EXPECT_EQ(run(engine, 2, {1}, greedy(2)).get().finish, FinishReason::kLength);
  EXPECT_EQ(engine.stats().cancelled, 1u);
}

TEST(EngineTest, ShutdownCancelsEverything) {
  auto engine = std::make_unique<Engine>(std::make_unique<CountingBackend>(1, 1 << 20), kVocab,
                                         EngineOptions{});
  auto a = run(*engine, 1, {1}, greedy(1 << 19));
  auto b = run(*engine, 2, {1}, greedy(1 << 19));  // waits for the slot
  engine->shutdown();
  EXPECT_EQ(a.get().finish, FinishReason::kCancelled);
  EXPECT_EQ(b.get().finish, FinishReason::kCancelled);
  Status st;
  run(*engine, 3, {1}, greedy(1), &st);
  EXPECT_EQ(st.code(), StatusCode::kUnavailable);
}

TEST(SamplerTest, GreedyAndSeededSampling) {
  std::vector<int32_t> prompt = {1};
  SamplingParams g = greedy(1);
  g.n_logprobs = 2;
  Sampler s(g, prompt, 4);
  std::vector<float> logits = {0.0f, 2.0f, 1.0f, 2.0f};
  auto t = s.sample(logits);
  EXPECT_EQ(t.token, 1);  // lowest id among ties
  ASSERT_EQ(t.top_logprobs.size(), 2u);
  EXPECT_EQ(t.top_logprobs[0].first, 1);
  EXPECT_EQ(t.top_logprobs[1].first, 3);
  EXPECT_NEAR(t.logprob, 2.0 - std::log(1 + std::exp(2.0) * 2 + std::exp(1.0)), 1e-5);

  SamplingParams p;
  p.seed = 42;
  p.temperature = 1.0f;
  auto draw = [&](SamplingParams params) {
    Sampler sampler(params, prompt, 8);
    std::vector<int32_t> out;
    for (int i = 0; i < 50; ++i) {
      std::vector<float> l = {1, 1, 1, 1, 1, 1, 1, 1};
      out.push_back(sampler.sample(l).token);
    }
    return out;
  };
  EXPECT_EQ(draw(p), draw(p));  // same seed, same draws
  auto q = p;
  q.seed = 43;
  EXPECT_NE(draw(p), draw(q));
  auto k = p;
  k.top_k = 1;  // only the first (lowest id among equal logits) survives
  for (int32_t tok : draw(k)) EXPECT_EQ(tok, 0);
}

TEST(SamplerTest, TopPMinPAndPenalties) {
  std::vector<int32_t> prompt = {3};
  SamplingParams p;
  p.seed = 7;
  p.top_p = 0.5f;
  Sampler s(p, prompt, 4);
  for (int i = 0; i < 20; ++i) {
    std::vector<float> l = {5.0f, 0.0f, 0.0f, 0.0f};  // token 0 holds > 95% of the mass
    EXPECT_EQ(s.sample(l).token, 0);
  }
  SamplingParams m;
  m.seed = 7;
  m.min_p = 0.5f;
  Sampler sm(m, prompt, 3);
  for (int i = 0; i < 20; ++i) {
    std::vector<float> l = {1.0f, 0.9f, -5.0f};  // token 2 is far below min_p x p(0)
    EXPECT_NE(sm.sample(l).token, 2);
  }
  SamplingParams rep = greedy(1);
  rep.repetition_penalty = 4.0f;  // token 3 (in the prompt) loses its lead
  Sampler sr(rep, prompt, 4);
  std::vector<float> l = {0.0f, 0.0f, 1.0f, 2.0f};
  EXPECT_EQ(sr.sample(l).token, 2);
  SamplingParams freq = greedy(1);
  freq.frequency_penalty = 2.0f;
  Sampler sf(freq, prompt, 2);
  std::vector<float> a = {1.0f, 0.5f};
  EXPECT_EQ(sf.sample(a).token, 0);
  std::vector<float> b = {1.0f, 0.5f};
  EXPECT_EQ(sf.sample(b).token, 1);  // token 0 was generated once: 1 - 2 < 0.5
}

}  // namespace
}  // namespace turbine::engine
