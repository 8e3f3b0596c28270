#include "engine/engine.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <thread>

namespace turbine::engine {
namespace {

constexpr int32_t kVocab = 32;

// A deterministic backend: the next token is (last token + 1) % kVocab. Checks that block tables
// cover the chunk and that earlier positions were written, and records the shape of every step so
// tests can check batching and chunked prefill.
class CountingBackend : public Backend {
 public:
  CountingBackend(int seqs, int ctx, int block_size = 4)
      : bs_(block_size),
        ctx_(ctx),
        written_(static_cast<size_t>(seqs * ((ctx + block_size - 1) / block_size)), 0) {}
  std::string_view name() const override { return "counting"; }
  int max_context() const override { return ctx_; }
  int num_blocks() const override { return static_cast<int>(written_.size()); }
  int block_size() const override { return bs_; }
  Status forward(std::span<const SeqChunk> chunks, std::vector<float>& logits) override {
    logits.clear();
    {
      std::unique_lock gate(gate_mu_);
      gate_cv_.wait(gate, [this] { return !held_; });
    }
    std::lock_guard lock(mu_);
    int n_tokens = 0;
    for (const auto& c : chunks) {
      const int end = c.pos + static_cast<int>(c.tokens.size());
      if (static_cast<int>(c.block_table.size()) * bs_ < end) return internal_error("short table");
      for (int p = 0; p < c.pos; ++p) {
        if (written_[static_cast<size_t>(c.block_table[static_cast<size_t>(p / bs_)])] <= p % bs_)
          return internal_error("position gap");
      }
      for (int j = c.pos / bs_; j * bs_ < end; ++j)
        written_[static_cast<size_t>(c.block_table[static_cast<size_t>(j)])] =
            std::min(bs_, end - j * bs_);
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
  std::vector<int> step_tokens() {
    std::lock_guard lock(mu_);
    return step_tokens_;
  }
  int max_batch() {
    std::lock_guard lock(mu_);
    return max_batch_;
  }
  // While held, every step waits: requests submitted meanwhile are all queued when it resumes.
  void hold() {
    std::lock_guard gate(gate_mu_);
    held_ = true;
  }
  void release() {
    {
      std::lock_guard gate(gate_mu_);
      held_ = false;
    }
    gate_cv_.notify_all();
  }

 private:
  int bs_, ctx_;
  std::mutex gate_mu_;
  std::condition_variable gate_cv_;
  bool held_ = false;
  std::mutex mu_;
  std::vector<int> written_;  // per block: leading positions written
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
  run(engine, 5, {1}, greedy(-1), &st);  // max_tokens 0 is a scoring request (echo)
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  // The engine still serves after refusing.
  EXPECT_EQ(run(engine, 6, {1}, greedy(2)).get().tokens, (std::vector<int32_t>{2, 3}));
}

TEST(EngineTest, BatchesConcurrentRequestsAndQueuesBeyondSlots) {
  auto backend = std::make_unique<CountingBackend>(4, 256);
  CountingBackend* b = backend.get();
  EngineOptions opts;
  opts.max_num_seqs = 4;
  Engine engine(std::move(backend), kVocab, opts);
  // Without the hold, a fast engine thread could finish each request before the next arrives.
  b->hold();
  std::vector<std::future<Collected>> futures;
  for (int i = 0; i < 10; ++i) {
    futures.push_back(run(engine, static_cast<uint64_t>(i), {i}, greedy(20)));
  }
  b->release();
  for (int i = 0; i < 10; ++i) {
    auto r = futures[static_cast<size_t>(i)].get();
    ASSERT_EQ(r.tokens.size(), 20u);
    for (int j = 0; j < 20; ++j) EXPECT_EQ(r.tokens[static_cast<size_t>(j)], (i + 1 + j) % kVocab);
  }
  EXPECT_EQ(b->max_batch(), 4);  // queued sequences share steps, never more than max_num_seqs
}

// Priority classes (issue 29): without --scheduling-policy priority a priority is refused, as
// vLLM does; with it, queued requests start by (priority, arrival).
TEST(EngineTest, PriorityNeedsThePriorityPolicy) {
  Engine engine(std::make_unique<CountingBackend>(1, 64), kVocab, EngineOptions{});
  Status st;
  auto p = greedy(2);
  p.priority = 1;
  run(engine, 1, {1}, p, &st);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.field(), "priority");
  EXPECT_NE(st.message().find("--scheduling-policy priority"), std::string::npos) << st.message();
  p.priority = 0;  // the default is fine under fcfs
  EXPECT_EQ(run(engine, 2, {1}, p).get().tokens, (std::vector<int32_t>{2, 3}));
}

TEST(EngineTest, PriorityPolicyStartsTheQueueByClassThenArrival) {
  for (const SchedulingPolicy policy : {SchedulingPolicy::kPriority, SchedulingPolicy::kFcfs}) {
    auto backend = std::make_unique<CountingBackend>(2, 64);
    CountingBackend* b = backend.get();
    EngineOptions opts;
    opts.max_num_seqs = 1;  // one at a time: the finish order is the start order
    opts.scheduling_policy = policy;
    Engine engine(std::move(backend), kVocab, opts);
    std::mutex mu;
    std::vector<uint64_t> order;
    std::vector<std::future<Collected>> futures;
    b->hold();
    const int priorities[] = {0, 3, 1, 2, 1, -1};
    for (uint64_t id = 0; id < 6; ++id) {
      EngineRequest req;
      req.id = id;
      req.prompt = {static_cast<int32_t>(id)};
      req.params = greedy(2);
      if (policy == SchedulingPolicy::kPriority) req.params.priority = priorities[id];
      auto promise = std::make_shared<std::promise<Collected>>();
      futures.push_back(promise->get_future());
      req.on_output = [&mu, &order, id, promise](EngineOutput&& out) {
        if (out.finish == FinishReason::kNone) return;
        {
          std::lock_guard lock(mu);
          order.push_back(id);
        }
        promise->set_value({});
      };
      ASSERT_TRUE(engine.submit(std::move(req)).is_ok());
    }
    b->release();
    for (auto& f : futures) f.get();
    // Request 0 may have started before the others arrived; it has the smallest non-negative
    // class, so it is first either way unless -1 (request 5) was queued with it.
    std::vector<uint64_t> want = {0, 5, 2, 4, 3, 1};
    if (policy == SchedulingPolicy::kFcfs) want = {0, 1, 2, 3, 4, 5};
    if (policy == SchedulingPolicy::kPriority && order.front() == 5) want = {5, 0, 2, 4, 3, 1};
    EXPECT_EQ(order, want) << scheduling_policy_name(policy);
  }
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

namespace turbine::engine {
namespace {

TEST(EngineKvTest, MinTokensSuppressesEosAndStops) {
  EngineOptions opts;
  opts.eos_token_ids = {10};
  Engine engine(std::make_unique<CountingBackend>(2, 64), kVocab, opts);
  auto p = greedy(6);
  p.min_tokens = 4;
  auto r = run(engine, 1, {7}, p).get();  // 8, 9, then 10 (EOS) is masked: argmax falls to 0
  EXPECT_EQ(r.tokens, (std::vector<int32_t>{8, 9, 0, 1, 2, 3}));
  auto q = greedy(6);
  q.min_tokens = 7;
  Status st;
  run(engine, 2, {7}, q, &st);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);  // min_tokens > max_tokens
}

TEST(EngineKvTest, CancelFreesBlocksAtOnce) {
  Engine engine(std::make_unique<CountingBackend>(1, 1 << 16), kVocab, EngineOptions{});
  auto long_run = run(engine, 1, std::vector<int32_t>(40, 1), greedy(1 << 15));
  for (int i = 0; i < 500 && engine.stats().kv_used_blocks == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_GE(engine.stats().kv_used_blocks, 10);  // 40 prompt positions in blocks of 4
  engine.cancel(1);
  EXPECT_EQ(long_run.get().finish, FinishReason::kCancelled);
  int used = -1;
  for (int i = 0; i < 500 && used != 0; ++i) {
    used = engine.stats().kv_used_blocks;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(used, 0);
}

TEST(SamplerTest, TruncationSamplesOnlyFromTheAllowedSet) {
  // Probabilities 0.4, 0.3, 0.2, 0.1 (then negligible): logits are their logs.
  const std::vector<float> base = {std::log(0.4f), std::log(0.3f), std::log(0.2f),
                                   std::log(0.1f), -30.0f,         -30.0f};
  auto freqs = [&](SamplingParams p, int n) {
    p.seed = 2024;
    Sampler s(p, std::vector<int32_t>{}, static_cast<int32_t>(base.size()));
    std::vector<double> f(base.size(), 0.0);
    for (int i = 0; i < n; ++i) {
      std::vector<float> l = base;
      f[static_cast<size_t>(s.sample(l).token)] += 1.0 / n;
    }
    return f;
  };
  constexpr int kN = 8000;
  constexpr double kTol = 0.03;  // > 4 sigma for these frequencies at n = 8000
  auto check = [&](const std::vector<double>& f, std::vector<double> want_unnorm) {
    double z = 0;
    for (double w : want_unnorm) z += w;
    for (size_t i = 0; i < f.size(); ++i) {
      const double want = i < want_unnorm.size() ? want_unnorm[i] / z : 0.0;
      if (want == 0.0) {
        EXPECT_EQ(f[i], 0.0) << "token " << i << " is outside the allowed set";
      } else {
        EXPECT_NEAR(f[i], want, kTol) << "token " << i;
      }
    }
  };
  SamplingParams k;
  k.top_k = 2;
  check(freqs(k, kN), {0.4, 0.3});
  SamplingParams tp;
  tp.top_p = 0.6f;  // 0.4 < 0.6 <= 0.7: the two most likely
  check(freqs(tp, kN), {0.4, 0.3});
  SamplingParams mp;
  mp.min_p = 0.3f;  // floor 0.12: drops 0.1 and below
  check(freqs(mp, kN), {0.4, 0.3, 0.2});
  SamplingParams all;
  check(freqs(all, kN), {0.4, 0.3, 0.2, 0.1});
}

}  // namespace
}  // namespace turbine::engine
