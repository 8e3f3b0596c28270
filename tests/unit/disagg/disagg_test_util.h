// Shared by the disaggregation tests: stories260K engines, request collection, prompts, and
// KvTransfer wrappers that inject faults.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "../model/model_test_util.h"
#include "engine/engine.h"
#include "model/model.h"
#include "test_support/missing_dependency.h"
#include "tokenizer/tokenizer.h"

namespace turbine::disagg::testing {

inline std::filesystem::path stories_bin() {
  return turbine::testing::shared_assets() / "models/stories260K/stories260K.bin";
}

// The model and tokenizer, loaded once per test binary (immutable afterwards).
struct Stories {
  std::unique_ptr<model::Model> model;
  std::unique_ptr<tokenizer::Tokenizer> tok;
};
inline const Stories* stories() {
  static const Stories* s = [] {
    auto* out = new Stories;
    if (!std::filesystem::exists(stories_bin())) return out;
    auto m = model::load_model(stories_bin());
    if (!m.has_value()) return out;
    out->model = std::move(m).value();
    auto t = tokenizer::make_tokenizer(out->model->vocab());
    if (t.has_value()) out->tok = std::move(t).value();
    return out;
  }();
  return s;
}

#define REQUIRE_STORIES()                                                                        \
  do {                                                                                           \
    if (!stories()->model || !stories()->tok) TURBINE_MISSING_DEPENDENCY("missing stories260K"); \
  } while (0)

struct EngineSetup {
  int block_size = 16;
  int max_num_seqs = 4;
  uint64_t instance_id = 0;
  std::shared_ptr<engine::KvTransfer> transfer;
  std::chrono::milliseconds ttl{60'000};
  std::chrono::milliseconds fetch_timeout{10'000};
};

inline std::shared_ptr<engine::Engine> make_engine(const EngineSetup& s) {
  engine::CpuBackendOptions bo;
  bo.n_threads = 1;
  bo.max_num_seqs = s.max_num_seqs;
  bo.block_size = s.block_size;
  auto backend = engine::make_cpu_backend(*stories()->model, bo);
  EXPECT_TRUE(backend.has_value()) << backend.status().to_string();
  if (!backend.has_value()) return nullptr;
  engine::EngineOptions eo;
  eo.max_num_seqs = s.max_num_seqs;
  eo.instance_id = s.instance_id;
  eo.kv_transfer = s.transfer;
  eo.kv_transfer_ttl = s.ttl;
  eo.kv_fetch_timeout = s.fetch_timeout;
  return std::make_shared<engine::Engine>(std::move(backend).value(),
                                          stories()->model->config().n_vocab, eo);
}

struct Collected {
  std::vector<int32_t> tokens;
  engine::FinishReason finish = engine::FinishReason::kNone;
  Status error;
  int prompt_tokens = 0;
  int completion_tokens = 0;
  int outputs = 0;
  std::shared_ptr<const engine::KvTransferMeta> kv_transfer;
};

// Submits and returns a future of everything the request produced.
inline std::future<Collected> submit(engine::AsyncEngine& e, uint64_t id,
                                     std::vector<int32_t> prompt, engine::SamplingParams params,
                                     engine::KvDisagg disagg = {}) {
  auto prom = std::make_shared<std::promise<Collected>>();
  auto acc = std::make_shared<Collected>();
  engine::EngineRequest r;
  r.id = id;
  r.prompt = std::move(prompt);
  r.params = params;
  r.disagg = std::move(disagg);
  r.on_output = [prom, acc](engine::EngineOutput&& out) {
    for (const auto& t : out.tokens) acc->tokens.push_back(t.token);
    acc->outputs++;
    acc->prompt_tokens = out.prompt_tokens;
    acc->completion_tokens = out.completion_tokens;
    if (out.finish != engine::FinishReason::kNone) {
      acc->finish = out.finish;
      acc->error = out.error;
      acc->kv_transfer = out.kv_transfer;
      prom->set_value(*acc);
    }
  };
  auto fut = prom->get_future();
  const Status st = e.submit(std::move(r));
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  if (!st.is_ok()) {
    Collected c;
    c.finish = engine::FinishReason::kError;
    c.error = st;
    std::promise<Collected> p;
    p.set_value(c);
    return p.get_future();
  }
  return fut;
}

inline Collected wait(std::future<Collected> f) {
  if (f.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
    ADD_FAILURE() << "request did not finish within 60 s";
    return {};
  }
  return f.get();
}

inline engine::SamplingParams greedy(int max_tokens) {
  engine::SamplingParams p;
  p.temperature = 0.0f;
  p.max_tokens = max_tokens;
  p.ignore_eos = true;
  return p;
}

// Prompts of several lengths around the block size (1 token, < 1 block, exact blocks, many).
inline std::vector<std::vector<int32_t>> prompt_suite() {
  const auto& tok = *stories()->tok;
  std::vector<std::vector<int32_t>> out;
  out.push_back({1});
  out.push_back(tok.encode("Once upon a time", true));
  out.push_back(tok.encode("Lily and Ben went to the park. They saw a big dog.", true));
  std::vector<int32_t> exact = tok.encode(
      "The little bird sang a song in the tall tree, and the sun was warm and bright.", true);
  exact.resize(32);  // exactly two blocks of 16
  out.push_back(exact);
  out.push_back(tok.encode(
      "One day, a little girl named Lily found a needle in her room. She knew it was difficult "
      "to play with it because it was sharp. Lily wanted to share the needle with her mom, so "
      "she could sew a button on her shirt.",
      true));
  return out;
}

// Greedy outputs of `prompts` on one aggregated engine (ids 1, 2, ...): what disaggregated
// serving must reproduce token for token.
inline std::vector<std::vector<int32_t>> aggregated_outputs(
    const std::vector<std::vector<int32_t>>& prompts, int max_tokens) {
  auto agg = make_engine(EngineSetup{});
  std::vector<std::vector<int32_t>> out;
  uint64_t id = 1;
  for (const auto& p : prompts)
    out.push_back(wait(submit(*agg, id++, p, greedy(max_tokens))).tokens);
  return out;
}
inline std::vector<std::vector<int32_t>> aggregated_outputs(int max_tokens) {
  return aggregated_outputs(prompt_suite(), max_tokens);
}

// Submits every prompt greedily, with ids first_id, first_id + 1, ...
inline std::vector<std::future<Collected>> submit_all(
    engine::AsyncEngine& e, const std::vector<std::vector<int32_t>>& prompts, int max_tokens,
    uint64_t first_id = 1) {
  std::vector<std::future<Collected>> futs;
  uint64_t id = first_id;
  for (const auto& p : prompts) futs.push_back(submit(e, id++, p, greedy(max_tokens)));
  return futs;
}

// Waits for each request: it ran to its token limit and produced expected[i].
inline std::vector<Collected> expect_length_outputs(
    std::vector<std::future<Collected>>& futs, const std::vector<std::vector<int32_t>>& expected) {
  std::vector<Collected> out;
  for (size_t i = 0; i < futs.size(); ++i) {
    Collected c = wait(std::move(futs[i]));
    EXPECT_EQ(c.finish, engine::FinishReason::kLength) << c.error.to_string();
    EXPECT_EQ(c.tokens, expected[i]) << "prompt " << i;
    out.push_back(std::move(c));
  }
  return out;
}

// Waits until pred() or the timeout; returns pred().
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return pred();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

// A transport wrapper: counts calls, can fail every fetch or hold them forever (a timeout).
class FaultyTransfer final : public engine::KvTransfer {
 public:
  enum class Mode { kPass, kFail, kHang, kHold };  // kHold: until resume_held()
  explicit FaultyTransfer(std::shared_ptr<engine::KvTransfer> inner) : inner_(std::move(inner)) {}
  ~FaultyTransfer() override {
    for (auto& d : held_) d(Status{StatusCode::kCancelled, "test over"});
  }
  void set_mode(Mode m) {
    std::lock_guard lock(mu_);
    mode_ = m;
  }
  void fetch(const engine::KvTransferMeta& meta, int first, int n,
             engine::KvBytesCallback done) override {
    Mode m;
    {
      std::lock_guard lock(mu_);
      fetches_++;
      m = mode_;
      if (m == Mode::kHang) {
        held_.push_back(std::move(done));
        return;
      }
      if (m == Mode::kHold) {
        parked_.push_back({meta, first, n, std::move(done)});
        return;
      }
    }
    if (m == Mode::kFail) return done(Status{StatusCode::kUnavailable, "injected: peer gone"});
    inner_->fetch(meta, first, n, std::move(done));
  }
  void release(const engine::KvTransferMeta& meta) override {
    {
      std::lock_guard lock(mu_);
      releases_++;
    }
    inner_->release(meta);
  }
  std::string_view name() const override { return "faulty"; }
  std::vector<engine::KvTransportStats> transport_stats() const override {
    return inner_->transport_stats();
  }
  // Sends the fetches held in kHold mode on to the real transport (and passes from now on).
  void resume_held() {
    std::vector<Parked> p;
    {
      std::lock_guard lock(mu_);
      p.swap(parked_);
      mode_ = Mode::kPass;
    }
    for (auto& f : p) inner_->fetch(f.meta, f.first, f.n, std::move(f.done));
  }
  int parked() const {
    std::lock_guard lock(mu_);
    return static_cast<int>(parked_.size());
  }
  int fetches() const {
    std::lock_guard lock(mu_);
    return fetches_;
  }
  int releases() const {
    std::lock_guard lock(mu_);
    return releases_;
  }

 private:
  std::shared_ptr<engine::KvTransfer> inner_;
  mutable std::mutex mu_;
  Mode mode_ = Mode::kPass;
  int fetches_ = 0;
  int releases_ = 0;
  std::vector<engine::KvBytesCallback> held_;
  struct Parked {
    engine::KvTransferMeta meta;
    int first = 0, n = 0;
    engine::KvBytesCallback done;
  };
  std::vector<Parked> parked_;
};

}  // namespace turbine::disagg::testing
