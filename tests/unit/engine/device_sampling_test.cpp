// The engine's use of Backend::forward_sample (sampling on the backend's device): which rows it
// delegates, which it samples itself from downloaded logits, and that EOS, stop ids, min_tokens
// and max_tokens behave as with the CPU sampler.
#include <gtest/gtest.h>

#include <condition_variable>
#include <future>
#include <map>
#include <mutex>

#include "engine/engine.h"

namespace turbine::engine {
namespace {

constexpr int32_t kVocab = 32;

// Logits of a chunk: 10 at (last token + 1) % kVocab, 9 at (last token + 2) % kVocab, 0 elsewhere.
// Its "device sampler" draws the argmax (lowest index on ties) when greedy and otherwise returns
// (seed + step) % kVocab, so that tests see the seed and step the engine passed.
class SamplingBackend : public Backend {
 public:
  explicit SamplingBackend(bool offer, int seqs = 8, int ctx = 64)
      : offer_(offer), ctx_(ctx), n_blocks_(seqs * ((ctx + 3) / 4)) {}
  std::string_view name() const override { return "sampling"; }
  int max_context() const override { return ctx_; }
  int num_blocks() const override { return n_blocks_; }
  int block_size() const override { return 4; }
  Status forward(std::span<const SeqChunk> chunks, std::vector<float>& logits) override {
    std::unique_lock lock(mu_);
    released_.wait(lock, [&] { return !held_; });
    ++n_forward_;
    logits.clear();
    for (const auto& c : chunks) {
      if (c.want_logits) append_row(c, logits);
    }
    return Status::ok();
  }
  bool supports_sampling() const override { return offer_; }
  Status forward_sample(std::span<const SeqChunk> chunks, std::span<const RowSampling> rows,
                        std::vector<int32_t>& tokens, std::vector<float>& logits) override {
    std::unique_lock lock(mu_);
    released_.wait(lock, [&] { return !held_; });
    if (!offer_) return internal_error("forward_sample called on a backend that does not offer it");
    ++n_forward_sample_;
    if (wrong_count_) {  // one token more than the rows asked for, whatever the batch
      tokens.assign(rows.size() + 1, 0);
      return Status::ok();
    }
    tokens.clear();
    logits.clear();
    size_t r = 0;
    for (const auto& c : chunks) {
      if (!c.want_logits) continue;
      if (r >= rows.size()) return internal_error("too few rows");
      const RowSampling& p = rows[r++];
      seen_.push_back(p);
      if (p.on_host) {
        append_row(c, logits);
        tokens.push_back(-1);
        ++n_host_rows_;
        continue;
      }
      ++n_device_rows_;
      if (p.temperature <= 0.0f) {
        std::vector<float> row;
        append_row(c, row);
        tokens.push_back(
            static_cast<int32_t>(std::max_element(row.begin(), row.end()) - row.begin()));
      } else {
        tokens.push_back(static_cast<int32_t>((p.seed + p.step) % kVocab));
      }
    }
    if (r != rows.size()) return internal_error("too many rows");
    return Status::ok();
  }

  void set_wrong_count() { wrong_count_ = true; }
  // While held, steps wait at the start of forward / forward_sample: requests submitted in the
  // meantime all join the steps after release() (batch composition independent of timing).
  void hold() {
    std::lock_guard lock(mu_);
    held_ = true;
  }
  void release() {
    {
      std::lock_guard lock(mu_);
      held_ = false;
    }
    released_.notify_all();
  }
  int n_forward() {
    std::lock_guard lock(mu_);
    return n_forward_;
  }
  int n_forward_sample() {
    std::lock_guard lock(mu_);
    return n_forward_sample_;
  }
  int n_host_rows() {
    std::lock_guard lock(mu_);
    return n_host_rows_;
  }
  int n_device_rows() {
    std::lock_guard lock(mu_);
    return n_device_rows_;
  }
  std::vector<RowSampling> seen() {
    std::lock_guard lock(mu_);
    return seen_;
  }

 private:
  static void append_row(const SeqChunk& c, std::vector<float>& logits) {
    std::vector<float> row(kVocab, 0.0f);
    row[static_cast<size_t>((c.tokens.back() + 1) % kVocab)] = 10.0f;
    row[static_cast<size_t>((c.tokens.back() + 2) % kVocab)] = 9.0f;
    logits.insert(logits.end(), row.begin(), row.end());
  }

  const bool offer_;
  const int ctx_, n_blocks_;
  bool wrong_count_ = false;
  std::mutex mu_;
  std::condition_variable released_;
  bool held_ = false;
  int n_forward_ = 0, n_forward_sample_ = 0, n_host_rows_ = 0, n_device_rows_ = 0;
  std::vector<RowSampling> seen_;
};

struct Collected {
  std::vector<int32_t> tokens;
  FinishReason finish = FinishReason::kNone;
};

std::future<Collected> run(Engine& engine, uint64_t id, std::vector<int32_t> prompt,
                           SamplingParams params) {
  auto promise = std::make_shared<std::promise<Collected>>();
  auto acc = std::make_shared<Collected>();
  EngineRequest req;
  req.id = id;
  req.prompt = std::move(prompt);
  req.params = std::move(params);
  req.on_output = [promise, acc](EngineOutput&& out) {
    for (auto& t : out.tokens) acc->tokens.push_back(t.token);
    if (out.finish != FinishReason::kNone) {
      acc->finish = out.finish;
      promise->set_value(*acc);
    }
  };
  EXPECT_TRUE(engine.submit(std::move(req)).is_ok());
  return promise->get_future();
}

SamplingParams greedy(int max_tokens) {
  SamplingParams p;
  p.temperature = 0.0f;
  p.max_tokens = max_tokens;
  return p;
}

// Runs requests (prompt i: {3i + 1, 5}) concurrently on a fresh engine; `device_rows` gets the
// number of rows the backend sampled.
std::vector<Collected> run_all(bool offer, const std::vector<SamplingParams>& params,
                               EngineOptions opts = {}, int* device_rows = nullptr) {
  auto backend = std::make_unique<SamplingBackend>(offer);
  SamplingBackend* b = backend.get();
  Engine engine(std::move(backend), kVocab, std::move(opts));
  std::vector<std::future<Collected>> futures;
  for (size_t i = 0; i < params.size(); ++i)
    futures.push_back(run(engine, i + 1, {static_cast<int32_t>(3 * i + 1), 5}, params[i]));
  std::vector<Collected> res;
  for (auto& f : futures) res.push_back(f.get());
  if (device_rows != nullptr) *device_rows = b->n_device_rows();
  return res;
}

TEST(DeviceSamplingTest, GreedyIsDelegatedAndMatchesTheCpuSampler) {
  const std::vector<SamplingParams> ps = {greedy(6), greedy(3), greedy(9)};
  int on_device = -1, on_device_off = -1;
  const auto a = run_all(true, ps, {}, &on_device);
  const auto b = run_all(false, ps, {}, &on_device_off);
  EXPECT_EQ(on_device, 6 + 3 + 9);
  EXPECT_EQ(on_device_off, 0);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].tokens, b[i].tokens) << i;
    EXPECT_EQ(a[i].finish, FinishReason::kLength);
  }
  EXPECT_EQ(a[0].tokens, (std::vector<int32_t>{6, 7, 8, 9, 10, 11}));
}

TEST(DeviceSamplingTest, CountsRowsOnDeviceAndHost) {
  auto backend = std::make_unique<SamplingBackend>(true);
  SamplingBackend* b = backend.get();
  Engine engine(std::move(backend), kVocab, EngineOptions{});
  EXPECT_EQ(run(engine, 1, {1}, greedy(5)).get().tokens, (std::vector<int32_t>{2, 3, 4, 5, 6}));
  EXPECT_EQ(b->n_forward(), 0);
  EXPECT_EQ(b->n_forward_sample(), 5);
  EXPECT_EQ(b->n_device_rows(), 5);
  EXPECT_EQ(b->n_host_rows(), 0);
  // Each row asks for what the CPU cannot be bypassed for: the engine samples them itself.
  std::vector<SamplingParams> host_only(5, greedy(3));
  host_only[0].n_logprobs = 0;
  host_only[1].presence_penalty = 0.5f;
  host_only[2].frequency_penalty = 0.5f;
  host_only[3].repetition_penalty = 1.2f;
  host_only[4].temperature = 1.0f;
  host_only[4].min_p = 0.5f;
  for (size_t i = 0; i < host_only.size(); ++i) {
    const auto r = run(engine, 10 + i, {1}, host_only[i]).get();
    EXPECT_EQ(r.tokens.size(), 3u) << i;
  }
  EXPECT_EQ(b->n_forward(), 15);  // no row delegable: the plain forward()
  EXPECT_EQ(b->n_forward_sample(), 5);
  EXPECT_EQ(b->n_host_rows(), 0);
}

TEST(DeviceSamplingTest, MixedBatchSamplesHostRowsFromReturnedLogits) {
  auto backend = std::make_unique<SamplingBackend>(true);
  SamplingBackend* b = backend.get();
  Engine engine(std::move(backend), kVocab, EngineOptions{});
  auto lp = greedy(4);
  lp.n_logprobs = 2;
  auto pen = greedy(4);
  pen.repetition_penalty = 1000.0f;
  // Held until all three are submitted: at most the first step runs without the others, so the
  // device rows (1) and the host rows (2, 3) share the later steps.
  b->hold();
  auto f1 = run(engine, 1, {1}, greedy(4));
  auto f2 = run(engine, 2, {1}, lp);
  auto f3 = run(engine, 3, {8, 7}, pen);
  b->release();
  EXPECT_EQ(f1.get().tokens, (std::vector<int32_t>{2, 3, 4, 5}));
  EXPECT_EQ(f2.get().tokens, (std::vector<int32_t>{2, 3, 4, 5}));
  // The penalty needs the host: after 7 the prompt's 8 (score 10) is penalised and 9 (score 9)
  // wins; then 10, 11, 12 are new.
  EXPECT_EQ(f3.get().tokens, (std::vector<int32_t>{9, 10, 11, 12}));
  EXPECT_GT(b->n_host_rows(), 0);
  EXPECT_GT(b->n_device_rows(), 0);
  for (const RowSampling& r : b->seen()) EXPECT_TRUE(r.on_host || r.temperature == 0.0f);
}

TEST(DeviceSamplingTest, MinTokensMasksOnTheHostThenDelegates) {
  EngineOptions opts;
  opts.eos_token_ids = {10};
  auto p = greedy(6);
  p.min_tokens = 4;
  SamplingBackend* b = nullptr;
  auto backend = std::make_unique<SamplingBackend>(true);
  b = backend.get();
  Engine engine(std::move(backend), kVocab, opts);
  // 8, 9, then EOS (10) is masked on the host and 11 (score 9) wins, then 12; from the fifth
  // token (4 generated) on the device samples: 13, 14. The CPU-only engine agrees.
  const auto r = run(engine, 1, {7}, p).get();
  EXPECT_EQ(r.tokens, (std::vector<int32_t>{8, 9, 11, 12, 13, 14}));
  EXPECT_EQ(r.finish, FinishReason::kLength);
  // The first four steps have no delegable row: plain forward(); then steps 4 and 5 sampled.
  EXPECT_EQ(b->n_forward(), 4);
  const auto seen = b->seen();
  ASSERT_EQ(seen.size(), 2u);
  for (size_t i = 0; i < seen.size(); ++i) {
    EXPECT_FALSE(seen[i].on_host) << i;
    EXPECT_EQ(seen[i].step, i + 4);
  }
  Engine cpu(std::make_unique<SamplingBackend>(false), kVocab, opts);
  EXPECT_EQ(run(cpu, 1, {7}, p).get().tokens, r.tokens);
  // With ignore_eos and no stop ids there is nothing to mask: the device samples from the start.
  auto q = p;
  q.ignore_eos = true;
  const size_t before = b->seen().size();
  EXPECT_EQ(run(engine, 2, {7}, q).get().tokens, (std::vector<int32_t>{8, 9, 10, 11, 12, 13}));
  const auto seen2 = b->seen();
  for (size_t i = before; i < seen2.size(); ++i) EXPECT_FALSE(seen2[i].on_host) << i;
}

TEST(DeviceSamplingTest, EosAndStopIdsFromTheDeviceFinish) {
  EngineOptions opts;
  opts.eos_token_ids = {10};
  const auto a = run_all(true, {greedy(20)}, opts);
  EXPECT_EQ(a[0].tokens, (std::vector<int32_t>{6, 7, 8, 9, 10}));
  EXPECT_EQ(a[0].finish, FinishReason::kStop);
  auto s = greedy(20);
  s.stop_token_ids = {8};
  const auto b = run_all(true, {s}, opts);
  EXPECT_EQ(b[0].tokens, (std::vector<int32_t>{6, 7, 8}));
  EXPECT_EQ(b[0].finish, FinishReason::kStop);
}

TEST(DeviceSamplingTest, SeededDrawsDependOnSeedAndStepOnly) {
  SamplingParams p;
  p.temperature = 0.7f;
  p.top_k = 5;
  p.top_p = 0.9f;
  p.seed = 1234;
  p.max_tokens = 5;
  auto backend = std::make_unique<SamplingBackend>(true);
  SamplingBackend* b = backend.get();
  Engine engine(std::move(backend), kVocab, EngineOptions{});
  const std::vector<int32_t> expected = {18, 19, 20, 21, 22};  // (1234 + step) % 32
  EXPECT_EQ(run(engine, 1, {3}, p).get().tokens, expected);
  for (const RowSampling& r : b->seen()) {
    EXPECT_EQ(r.seed, 1234u);
    EXPECT_FLOAT_EQ(r.temperature, 0.7f);
    EXPECT_EQ(r.top_k, 5);
    EXPECT_FLOAT_EQ(r.top_p, 0.9f);
  }
  // The same draws next to a row the host samples (logprobs) and an unseeded one.
  auto lp = greedy(7);
  lp.n_logprobs = 0;
  SamplingParams unseeded = p;
  unseeded.seed.reset();
  auto f1 = run(engine, 2, {9, 9, 9}, lp);
  auto f2 = run(engine, 3, {4}, p);
  auto f3 = run(engine, 4, {4}, unseeded);
  auto f4 = run(engine, 5, {4}, unseeded);
  EXPECT_EQ(f2.get().tokens, expected);
  EXPECT_EQ(f1.get().tokens.size(), 7u);
  f3.get();
  f4.get();
  // Unseeded requests get a seed each (from the engine's own generator).
  std::map<uint64_t, int> seeds;
  for (const RowSampling& r : b->seen()) {
    if (!r.on_host) seeds[r.seed]++;
  }
  EXPECT_EQ(seeds.size(), 3u);
}

TEST(DeviceSamplingTest, MalformedBackendAnswerFailsTheStep) {
  auto backend = std::make_unique<SamplingBackend>(true);
  backend->set_wrong_count();
  Engine engine(std::move(backend), kVocab, EngineOptions{});
  auto f1 = run(engine, 1, {1}, greedy(3));
  auto f2 = run(engine, 2, {2}, greedy(3));
  EXPECT_EQ(f1.get().finish, FinishReason::kError);
  EXPECT_EQ(f2.get().finish, FinishReason::kError);
}

}  // namespace
}  // namespace turbine::engine
