// Prompt groups (n > 1: SamplingParams::prompt_group) compute their prompt once, and logit_bias
// in the host sampler.
#include <gtest/gtest.h>

#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "engine/engine.h"

namespace turbine::engine {
namespace {

constexpr int32_t kVocab = 32;

// Next token = (last token + 1) % kVocab; counts the prompt positions computed per step and can
// hold every step until released (so that requests submitted meanwhile arrive together).
class StepBackend : public Backend {
 public:
  std::string_view name() const override { return "step"; }
  int max_context() const override { return 256; }
  int num_blocks() const override { return 256; }
  int block_size() const override { return 4; }
  Status forward(std::span<const SeqChunk> chunks, std::vector<float>& logits) override {
    {
      std::unique_lock gate(mu_);
      cv_.wait(gate, [this] { return !held_; });
      for (const SeqChunk& c : chunks) computed_ += static_cast<int>(c.tokens.size());
    }
    logits.clear();
    for (const SeqChunk& c : chunks) {
      if (!c.want_logits) continue;
      std::vector<float> row(kVocab, 0.0f);
      row[static_cast<size_t>((c.tokens.back() + 1) % kVocab)] = 10.0f;
      logits.insert(logits.end(), row.begin(), row.end());
    }
    return Status::ok();
  }
  void hold() {
    std::lock_guard lock(mu_);
    held_ = true;
  }
  void release() {
    {
      std::lock_guard lock(mu_);
      held_ = false;
    }
    cv_.notify_all();
  }
  int computed() {
    std::lock_guard lock(mu_);
    return computed_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool held_ = false;
  int computed_ = 0;  // positions computed over all steps
};

struct Result {
  std::vector<int32_t> tokens;
  FinishReason finish = FinishReason::kNone;
  int cached_tokens = 0;
};

std::future<Result> submit(Engine& engine, uint64_t id, std::vector<int32_t> prompt,
                           SamplingParams params) {
  auto promise = std::make_shared<std::promise<Result>>();
  auto acc = std::make_shared<Result>();
  EngineRequest req;
  req.id = id;
  req.prompt = std::move(prompt);
  req.params = std::move(params);
  req.on_output = [promise, acc](EngineOutput&& out) {
    for (const SampledToken& t : out.tokens) acc->tokens.push_back(t.token);
    acc->cached_tokens = out.cached_tokens;
    if (out.finish != FinishReason::kNone) {
      acc->finish = out.finish;
      promise->set_value(*acc);
    }
  };
  EXPECT_TRUE(engine.submit(std::move(req)).is_ok());
  return promise->get_future();
}

SamplingParams greedy(int max_tokens, uint64_t group) {
  SamplingParams p;
  p.temperature = 0.0f;
  p.max_tokens = max_tokens;
  p.prompt_group = group;
  return p;
}

// Four choices of a 22-token prompt, submitted together: the first computes the prompt, the
// other three start on its 5 cached blocks (20 positions) and recompute only the last 2.
TEST(PromptGroupTest, ComputesTheSharedPromptOnce) {
  for (uint64_t group : {uint64_t{0}, uint64_t{77}}) {
    SCOPED_TRACE("group " + std::to_string(group));
    auto backend = std::make_unique<StepBackend>();
    StepBackend& b = *backend;
    Engine engine(std::move(backend), kVocab, EngineOptions{});
    std::vector<int32_t> prompt(22);
    for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>(i % 7);
    // A first request parks the engine thread in a held step, so the four arrive together.
    b.hold();
    auto first = submit(engine, 100, {9}, greedy(1, 0));
    while (engine.stats().waiting == 0) std::this_thread::yield();  // queued: next is the step
    std::vector<std::future<Result>> runs;
    for (uint64_t k = 0; k < 4; ++k)
      runs.push_back(submit(engine, k + 1, prompt, greedy(3, group)));
    b.release();
    first.get();
    std::vector<Result> results;
    for (auto& r : runs) results.push_back(r.get());
    for (const Result& r : results) {
      EXPECT_EQ(r.finish, FinishReason::kLength);
      EXPECT_EQ(r.tokens, (std::vector<int32_t>{1, 2, 3}));
    }
    const EngineStats stats = engine.stats();
    if (group == 0) {
      // Admitted in one step: nobody's blocks were cached yet, every choice computes the prompt.
      EXPECT_EQ(stats.prefix_cache_hit_tokens, 0u);
      EXPECT_EQ(b.computed(), 1 + 4 * 22 + 4 * 2);
    } else {
      EXPECT_EQ(stats.prefix_cache_hit_tokens, 3u * 20u);
      EXPECT_EQ(results[0].cached_tokens, 0);
      for (size_t k = 1; k < 4; ++k) EXPECT_EQ(results[k].cached_tokens, 20);
      EXPECT_EQ(b.computed(), 1 + 22 + 3 * 2 + 4 * 2);
    }
  }
}

// A leader that goes away before its prompt is done releases the others: they compute it.
TEST(PromptGroupTest, CancelledLeaderReleasesItsGroup) {
  auto backend = std::make_unique<StepBackend>();
  StepBackend& b = *backend;
  Engine engine(std::move(backend), kVocab, EngineOptions{});
  const std::vector<int32_t> prompt(30, 3);
  b.hold();
  auto first = submit(engine, 100, {9}, greedy(1, 0));
  while (engine.stats().waiting == 0) std::this_thread::yield();  // queued: next is the step
  auto leader = submit(engine, 1, prompt, greedy(4, 5));
  auto member = submit(engine, 2, prompt, greedy(4, 5));
  engine.cancel(1);  // in the same wake-up as the arrivals: the leader never starts
  b.release();
  first.get();
  EXPECT_EQ(leader.get().finish, FinishReason::kCancelled);
  const Result m = member.get();
  EXPECT_EQ(m.finish, FinishReason::kLength);
  EXPECT_EQ(m.tokens, (std::vector<int32_t>{4, 5, 6, 7}));
}

// Members of different groups and ungrouped requests do not wait for each other.
TEST(PromptGroupTest, OtherGroupsAndShortPromptsDoNotWait) {
  Engine engine(std::make_unique<StepBackend>(), kVocab, EngineOptions{});
  auto a = submit(engine, 1, std::vector<int32_t>(12, 1), greedy(2, 9));
  auto c = submit(engine, 2, std::vector<int32_t>(12, 2), greedy(2, 10));
  auto d = submit(engine, 3, {5, 6}, greedy(2, 10));  // one block at most: never held
  auto e = submit(engine, 4, {5, 6}, greedy(2, 10));
  EXPECT_EQ(a.get().tokens, (std::vector<int32_t>{2, 3}));
  EXPECT_EQ(c.get().tokens, (std::vector<int32_t>{3, 4}));
  EXPECT_EQ(d.get().tokens, (std::vector<int32_t>{7, 8}));
  EXPECT_EQ(e.get().tokens, (std::vector<int32_t>{7, 8}));
}

TEST(LogitBiasTest, HostSamplerAddsTheBias) {
  SamplingParams p;
  p.temperature = 0.0f;
  p.logit_bias = {{1, -100.0f}, {3, 2.5f}};
  ASSERT_TRUE(p.validate().is_ok());
  Sampler s(p, std::vector<int32_t>{}, 4);
  std::vector<float> logits = {0.0f, 5.0f, 1.0f, 0.0f};  // 1 is banned, 3 gets +2.5
  EXPECT_EQ(s.sample(logits).token, 3);
  // Seeded sampling: +100 makes a token certain.
  SamplingParams q;
  q.seed = 3;
  q.logit_bias = {{2, 100.0f}};
  Sampler t(q, std::vector<int32_t>{}, 4);
  for (int i = 0; i < 20; ++i) {
    std::vector<float> l = {3.0f, 3.0f, 0.0f, 3.0f};
    EXPECT_EQ(t.sample(l).token, 2);
  }
  // Unsorted, duplicated or out-of-range entries are refused.
  SamplingParams bad;
  bad.logit_bias = {{3, 1.0f}, {1, 1.0f}};
  EXPECT_FALSE(bad.validate().is_ok());
  bad.logit_bias = {{1, 101.0f}};
  EXPECT_FALSE(bad.validate().is_ok());
}

TEST(LogitBiasTest, EngineRefusesIdsOutsideTheVocabulary) {
  Engine engine(std::make_unique<StepBackend>(), kVocab, EngineOptions{});
  EngineRequest req;
  req.id = 1;
  req.prompt = {1, 2};
  req.params.logit_bias = {{kVocab, 1.0f}};
  req.on_output = [](EngineOutput&&) {};
  const Status st = engine.submit(std::move(req));
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.field(), "logit_bias");
}

}  // namespace
}  // namespace turbine::engine
