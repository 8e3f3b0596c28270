// The engine core on the real CPU backend (stories260K): paged KV, prefix caching, preemption,
// batch invariance and seeded sampling across batch compositions.
#include <gtest/gtest.h>

#include <future>
#include <mutex>
#include <random>
#include <thread>

#include "../model/model_test_util.h"
#include "engine/engine.h"
#include "model/model.h"
#include "test_support/missing_dependency.h"

namespace turbine::engine {
namespace {

using turbine::testing::stories_gguf;

// Forwards to a real backend and records every chunk (position, token count).
class RecordingBackend : public Backend {
 public:
  explicit RecordingBackend(std::unique_ptr<Backend> inner) : inner_(std::move(inner)) {}
  std::string_view name() const override { return inner_->name(); }
  int max_context() const override { return inner_->max_context(); }
  int num_blocks() const override { return inner_->num_blocks(); }
  int block_size() const override { return inner_->block_size(); }
  Status forward(std::span<const SeqChunk> chunks, std::vector<float>& logits) override {
    {
      std::lock_guard lock(mu_);
      for (const auto& c : chunks) chunks_.push_back({c.pos, static_cast<int>(c.tokens.size())});
    }
    return inner_->forward(chunks, logits);
  }
  std::vector<std::pair<int, int>> take_chunks() {
    std::lock_guard lock(mu_);
    return std::exchange(chunks_, {});
  }

 private:
  std::unique_ptr<Backend> inner_;
  std::mutex mu_;
  std::vector<std::pair<int, int>> chunks_;
};

struct Outcome {
  std::vector<int32_t> tokens;
  FinishReason finish = FinishReason::kNone;
  int cached_tokens = -1;
};

std::future<Outcome> submit(Engine& engine, uint64_t id, std::vector<int32_t> prompt,
                            SamplingParams params) {
  auto promise = std::make_shared<std::promise<Outcome>>();
  auto acc = std::make_shared<Outcome>();
  EngineRequest req;
  req.id = id;
  req.prompt = std::move(prompt);
  req.params = params;
  req.on_output = [promise, acc](EngineOutput&& out) {
    for (auto& t : out.tokens) acc->tokens.push_back(t.token);
    acc->cached_tokens = out.cached_tokens;
    if (out.finish != FinishReason::kNone) {
      acc->finish = out.finish;
      promise->set_value(*acc);
    }
  };
  Status st = engine.submit(std::move(req));
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  if (!st.is_ok()) promise->set_value({});
  return promise->get_future();
}

// Stats are published after the step that delivered the last output: wait for them to settle.
EngineStats settled_stats(const Engine& e) {
  EngineStats s = e.stats();
  for (int i = 0; i < 1000 && (s.running != 0 || s.kv_used_blocks != 0); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    s = e.stats();
  }
  return s;
}

SamplingParams greedy(int max_tokens) {
  SamplingParams p;
  p.temperature = 0.0f;
  p.max_tokens = max_tokens;
  return p;
}

class SchedulerStories : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(stories_gguf()))
      TURBINE_MISSING_DEPENDENCY("missing asset " << stories_gguf());
    auto m = model::load_model(stories_gguf());
    ASSERT_TRUE(m.has_value()) << m.status().to_string();
    model_ = std::move(m).value();
  }
  // kv_blocks 0: the default budget.
  std::unique_ptr<Engine> engine(int max_num_seqs, int block_size = 16, int kv_blocks = 0,
                                 bool prefix_caching = true, int batched_tokens = 2048,
                                 RecordingBackend** recorder = nullptr,
                                 std::shared_ptr<kv::KvEventSink> sink = nullptr) {
    CpuBackendOptions bo;
    bo.n_threads = 2;
    bo.max_num_seqs = max_num_seqs;
    bo.block_size = block_size;
    bo.kv_cache_memory_bytes =
        int64_t{kv_blocks} * block_size * cpu_kv_bytes_per_token(model_->config());
    auto b = make_cpu_backend(*model_, bo);
    EXPECT_TRUE(b.has_value()) << b.status().to_string();
    auto rec = std::make_unique<RecordingBackend>(std::move(b).value());
    if (recorder) *recorder = rec.get();
    EngineOptions eo;
    eo.max_num_seqs = max_num_seqs;
    eo.enable_prefix_caching = prefix_caching;
    eo.max_num_batched_tokens = batched_tokens;
    eo.kv_event_sink = std::move(sink);
    return std::make_unique<Engine>(std::move(rec), model_->config().n_vocab, eo);
  }
  std::vector<int32_t> random_prompt(std::mt19937& rng, int len) {
    std::uniform_int_distribution<int32_t> tok(3, model_->config().n_vocab - 1);
    std::vector<int32_t> p = {1};
    while (static_cast<int>(p.size()) < len) p.push_back(tok(rng));
    return p;
  }
  std::unique_ptr<model::Model> model_;
};

TEST_F(SchedulerStories, BatchInvariance64Concurrent) {
  std::mt19937 rng(123);
  std::vector<std::vector<int32_t>> prompts;
  std::vector<int> max_tokens;
  for (int i = 0; i < 64; ++i) {
    prompts.push_back(random_prompt(rng, 1 + static_cast<int>(rng() % 70)));
    max_tokens.push_back(4 + static_cast<int>(rng() % 20));
  }
  // Alone: one sequence at a time, no prefix caching.
  std::vector<std::vector<int32_t>> alone;
  {
    auto e = engine(1, 16, 0, false);
    for (int i = 0; i < 64; ++i)
      alone.push_back(submit(*e, static_cast<uint64_t>(i), prompts[static_cast<size_t>(i)],
                             greedy(max_tokens[static_cast<size_t>(i)]))
                          .get()
                          .tokens);
  }
  // Together: 64 at once, chunked prefill mixed with decodes (small token budget).
  auto e = engine(64, 16, 0, true, 96);
  std::vector<std::future<Outcome>> fs;
  for (int i = 0; i < 64; ++i)
    fs.push_back(submit(*e, static_cast<uint64_t>(i), prompts[static_cast<size_t>(i)],
                        greedy(max_tokens[static_cast<size_t>(i)])));
  int max_batch = 0;
  for (int i = 0; i < 64; ++i) {
    auto r = fs[static_cast<size_t>(i)].get();
    EXPECT_EQ(r.tokens, alone[static_cast<size_t>(i)]) << "request " << i;
    max_batch = std::max(max_batch, e->stats().last_step_batch_size);
  }
  EXPECT_GT(e->stats().steps, 0u);
  EXPECT_EQ(e->stats().preemptions, 0u);
}

TEST_F(SchedulerStories, PrefixCacheHitSkipsCachedBlocks) {
  auto sink = std::make_shared<kv::InProcessKvEventSink>();
  RecordingBackend* rec = nullptr;
  auto e = engine(4, 16, 0, true, 2048, &rec, sink);
  std::mt19937 rng(7);
  const std::vector<int32_t> prompt = random_prompt(rng, 40);  // 2 full blocks + 8 tokens
  auto first = submit(*e, 1, prompt, greedy(8)).get();
  EXPECT_EQ(first.cached_tokens, 0);
  auto c1 = rec->take_chunks();
  ASSERT_FALSE(c1.empty());
  EXPECT_EQ(c1[0], std::make_pair(0, 40));

  auto second = submit(*e, 2, prompt, greedy(8)).get();
  EXPECT_EQ(second.tokens, first.tokens);
  EXPECT_EQ(second.cached_tokens, 32);
  auto c2 = rec->take_chunks();
  ASSERT_FALSE(c2.empty());
  EXPECT_EQ(c2[0], std::make_pair(32, 8));  // only the uncached tail is computed
  const EngineStats s = settled_stats(*e);
  EXPECT_EQ(s.prefix_cache_queried_tokens, 80u);
  EXPECT_EQ(s.prefix_cache_hit_tokens, 32u);
  EXPECT_EQ(s.kv_used_blocks, 0);

  // Events: the first request stored its two full prompt blocks (47 positions were computed);
  // the second stored nothing new.
  const kv::BlockHashes h = kv::block_hashes(prompt, 16);
  std::vector<kv::KvEvent> want = {
      {kv::kKvEventsVersion, 0,
       kv::BlockStored{std::nullopt,
                       {{h.sequence[0], h.local[0]}, {h.sequence[1], h.local[1]}},
                       std::vector<int32_t>(prompt.begin(), prompt.begin() + 32),
                       16}}};
  EXPECT_EQ(sink->take(), want);

  // A prompt that is exactly two blocks still computes its last token.
  const std::vector<int32_t> exact(prompt.begin(), prompt.begin() + 32);
  auto third = submit(*e, 3, exact, greedy(3)).get();
  EXPECT_EQ(third.cached_tokens, 16);
  EXPECT_EQ(rec->take_chunks()[0], std::make_pair(16, 16));
  auto e_off = engine(4, 16, 0, false);
  EXPECT_EQ(submit(*e_off, 1, exact, greedy(3)).get().tokens, third.tokens);
}

TEST_F(SchedulerStories, PreemptionUnderTinyKvBudgetKeepsOutputs) {
  std::mt19937 rng(99);
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 6; ++i) prompts.push_back(random_prompt(rng, 5 + i));
  std::vector<std::vector<int32_t>> alone;
  {
    auto e = engine(1, 4, 0, false);
    for (size_t i = 0; i < prompts.size(); ++i)
      alone.push_back(submit(*e, i, prompts[i], greedy(10)).get().tokens);
  }
  // 6 blocks of 4 positions: one sequence of up to 20 positions needs 5; six need ~24.
  auto e = engine(6, 4, 6, true, 64);
  EXPECT_EQ(e->stats().kv_total_blocks, 6);
  std::vector<std::future<Outcome>> fs;
  for (size_t i = 0; i < prompts.size(); ++i) fs.push_back(submit(*e, i, prompts[i], greedy(10)));
  for (size_t i = 0; i < prompts.size(); ++i) {
    auto r = fs[i].get();
    EXPECT_EQ(r.finish, FinishReason::kLength);
    EXPECT_EQ(r.tokens, alone[i]) << "request " << i;
  }
  EXPECT_GT(e->stats().preemptions, 0u);
  EXPECT_EQ(settled_stats(*e).kv_used_blocks, 0);
}

TEST_F(SchedulerStories, SeededSamplingIndependentOfBatch) {
  std::mt19937 rng(5);
  const std::vector<int32_t> prompt = random_prompt(rng, 12);
  SamplingParams p;
  p.temperature = 0.9f;
  p.top_p = 0.95f;
  p.seed = 1234;
  p.max_tokens = 20;
  auto e1 = engine(1);
  const auto alone = submit(*e1, 1, prompt, p).get().tokens;
  auto e2 = engine(16, 16, 0, true, 64);
  std::vector<std::future<Outcome>> others;
  for (int i = 0; i < 10; ++i) {
    SamplingParams q = p;
    q.seed = 100 + static_cast<uint64_t>(i);
    others.push_back(submit(*e2, 10 + static_cast<uint64_t>(i), random_prompt(rng, 3 + 7 * i), q));
  }
  auto mine = submit(*e2, 2, prompt, p);
  EXPECT_EQ(mine.get().tokens, alone);
  for (auto& f : others) f.get();
}

}  // namespace
}  // namespace turbine::engine
