// Asynchronous KV offload through the real engine and the CPU backend (issue 24): offers beyond
// the tiers' in-flight budget are dropped and counted while outputs stay equal, and copies that
// complete late (a fake of the CUDA copy stream) are offered only once done, with the bytes the
// blocks held when the copy was enqueued, however soon their device slots are reused; onboarded
// blocks written only when the next pass comes still give the same outputs.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <deque>
#include <thread>

#include "../model/model_test_util.h"
#include "engine/engine.h"
#include "kv_tiers_test_util.h"
#include "kvtier/tier_manager.h"
#include "model/model.h"

namespace turbine::engine {
namespace {

using testing::cpu_block_bytes;
using testing::generate_greedy;

// The CPU backend behind the asynchronous copy contract of a device with a copy stream: a copy
// reads its blocks at the latest before the next forward pass or KV write (the compute stream
// waits on the copy's event), and reports done only after `polls` more polls (the host sees the
// event late). Until then its destination holds garbage, so a copy offered before it is done
// would store garbage in the tiers and change the outputs.
class DelayedCopyBackend final : public Backend {
 public:
  DelayedCopyBackend(std::unique_ptr<Backend> inner, int polls)
      : inner_(std::move(inner)), polls_(polls) {}

  std::string_view name() const override { return inner_->name(); }
  int max_context() const override { return inner_->max_context(); }
  int num_blocks() const override { return inner_->num_blocks(); }
  int block_size() const override { return inner_->block_size(); }
  bool supports_all_logits() const override { return inner_->supports_all_logits(); }
  Status forward(std::span<const SeqChunk> chunks, std::vector<float>& logits) override {
    fence();
    return inner_->forward(chunks, logits);
  }
  KvLayout kv_layout() const override { return inner_->kv_layout(); }
  Status read_kv_blocks(std::span<const int32_t> blocks, std::string& out) override {
    fence();
    return inner_->read_kv_blocks(blocks, out);
  }
  Status write_kv_blocks(std::span<const int32_t> blocks, std::string_view bytes,
                         int n_positions) override {
    fence();
    return inner_->write_kv_blocks(blocks, bytes, n_positions);
  }
  // Onboarding: the bytes are taken now, written when the next pass or KV access comes.
  Status write_kv_blocks_async(std::span<const int32_t> blocks, std::string_view bytes,
                               int n_positions) override {
    fence();
    writes_.push_back(
        {std::vector<int32_t>(blocks.begin(), blocks.end()), std::string(bytes), n_positions});
    ++deferred_writes_;
    return Status::ok();
  }
  Result<uint64_t> read_kv_blocks_async(std::span<const int32_t> blocks,
                                        std::span<uint8_t* const> dst) override {
    apply_writes();  // written before this copy in stream order
    const auto per_block = static_cast<size_t>(kv_layout().bytes_per_block);
    for (uint8_t* d : dst) std::memset(d, 0xab, per_block);
    Copy c;
    c.ticket = next_ticket_++;
    c.blocks.assign(blocks.begin(), blocks.end());
    c.dst.assign(dst.begin(), dst.end());
    c.polls_left = polls_;
    copies_.push_back(std::move(c));
    ++enqueued_;
    return copies_.back().ticket;
  }
  std::optional<Status> poll_kv_copy(uint64_t ticket) override {
    for (auto it = copies_.begin(); it != copies_.end(); ++it) {
      if (it->ticket != ticket) continue;
      if (it->polls_left-- > 0) return std::nullopt;
      return finish(it);
    }
    return Status(StatusCode::kNotFound, "unknown copy");
  }
  Status wait_kv_copy(uint64_t ticket) override {
    for (auto it = copies_.begin(); it != copies_.end(); ++it)
      if (it->ticket == ticket) return finish(it);
    return Status(StatusCode::kNotFound, "unknown copy");
  }

  int enqueued() const { return enqueued_; }
  int deferred_writes() const { return deferred_writes_; }

 private:
  struct Copy {
    uint64_t ticket = 0;
    std::vector<int32_t> blocks;
    std::vector<uint8_t*> dst;
    std::string bytes;  // read from the blocks (the copy engine's view); empty: not yet
    bool read = false;
    int polls_left = 0;
  };
  // The compute stream waits for every copy enqueued before it: their reads happen now, then
  // the deferred writes (a copy enqueued before a write read the blocks before it).
  void fence() {
    for (Copy& c : copies_) read(c);
    apply_writes();
  }
  void apply_writes() {
    for (Write& w : writes_)
      EXPECT_TRUE(inner_->write_kv_blocks(w.blocks, w.bytes, w.n_positions).is_ok());
    writes_.clear();
  }
  void read(Copy& c) {
    if (c.read) return;
    EXPECT_TRUE(inner_->read_kv_blocks(c.blocks, c.bytes).is_ok());
    c.read = true;
  }
  Status finish(std::deque<Copy>::iterator it) {
    read(*it);
    const size_t per_block = it->bytes.size() / it->blocks.size();
    for (size_t i = 0; i < it->dst.size(); ++i)
      std::memcpy(it->dst[i], it->bytes.data() + i * per_block, per_block);
    copies_.erase(it);
    return Status::ok();
  }

  struct Write {
    std::vector<int32_t> blocks;
    std::string bytes;
    int n_positions = 0;
  };
  std::unique_ptr<Backend> inner_;
  const int polls_;
  std::deque<Copy> copies_;    // engine thread only
  std::vector<Write> writes_;  // onboarded blocks not written yet
  int deferred_writes_ = 0;
  uint64_t next_ticket_ = 1;
  int enqueued_ = 0;
};

struct PassResult {
  std::vector<std::vector<int32_t>> outputs;
  EngineStats stats;
  int copies = 0;
  int deferred_writes = 0;
};

// Waits (bounded) until no staging slot is out: every copy done and stored by the tier worker.
void settle(kvtier::TierManager& tiers) {
  for (int i = 0; i < 5000 && tiers.stats().offload_inflight_blocks != 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(tiers.stats().offload_inflight_blocks, 0);
  tiers.drain();
}

// Two passes over the shared-prefix prompts, one request at a time, through a pool of
// `num_blocks`; `delay_polls` >= 0 puts the DelayedCopyBackend in front of the CPU backend.
// `before_pass(p)` runs before pass p.
PassResult run_passes(const model::Model& m, int num_blocks,
                      std::shared_ptr<kvtier::TierManager> tiers, int delay_polls,
                      const std::function<void(int)>& before_pass = {}) {
  CpuBackendOptions bo;
  bo.n_threads = 2;
  bo.max_num_seqs = 2;
  bo.block_size = 16;
  bo.num_blocks = num_blocks;
  auto made = make_cpu_backend(m, bo);
  EXPECT_TRUE(made.has_value()) << made.status().to_string();
  if (!made.has_value()) return {};
  std::unique_ptr<Backend> backend = std::move(made).value();
  DelayedCopyBackend* delayed = nullptr;
  if (delay_polls >= 0) {
    auto d = std::make_unique<DelayedCopyBackend>(std::move(backend), delay_polls);
    delayed = d.get();
    backend = std::move(d);
  }
  EngineOptions eo;
  eo.max_num_seqs = 2;
  eo.kv_tiers = tiers;
  Engine engine(std::move(backend), m.config().n_vocab, eo);
  PassResult r;
  uint64_t id = 1;
  const auto ps = testing::kv_tier_prompts(m.config().n_vocab, 7);
  for (int pass = 0; pass < 2; ++pass) {
    if (before_pass) before_pass(pass);
    for (const auto& p : ps) r.outputs.push_back(generate_greedy(engine, id++, p));
  }
  r.stats = engine.stats();
  engine.shutdown();
  if (delayed != nullptr) {  // the engine thread has ended
    r.copies = delayed->enqueued();
    r.deferred_writes = delayed->deferred_writes();
  }
  return r;
}

class KvTiersAsync : public ::testing::Test {
 protected:
  void SetUp() override {
    TURBINE_REQUIRE_ASSET(turbine::testing::stories_gguf());
    auto loaded = model::load_model(turbine::testing::stories_gguf());
    ASSERT_TRUE(loaded.has_value()) << loaded.status().to_string();
    model_ = std::move(loaded).value();
    reference_ = run_passes(*model_, 256, nullptr, -1).outputs;  // nothing is evicted
    ASSERT_EQ(reference_.size(), 8u);
    for (const auto& o : reference_) ASSERT_EQ(o.size(), 8u);
  }
  std::shared_ptr<kvtier::TierManager> host_tiers(int64_t inflight_blocks) {
    kvtier::TierOptions o;
    o.host_bytes = 64 * (cpu_block_bytes(*model_) + 64);
    o.offload_inflight_bytes = inflight_blocks * (cpu_block_bytes(*model_) + 64);
    auto made = kvtier::TierManager::create(o, cpu_block_bytes(*model_));
    EXPECT_TRUE(made.has_value()) << made.status().to_string();
    if (!made.has_value()) return nullptr;
    return std::shared_ptr<kvtier::TierManager>(std::move(*made));
  }
  std::unique_ptr<model::Model> model_;
  std::vector<std::vector<int32_t>> reference_;
};

// 10 blocks hold one prompt and a half: each prompt evicts most of the one before.
constexpr int kSmallPool = 10;

TEST_F(KvTiersAsync, OffersBeyondTheBudgetAreDroppedAndCounted) {
  auto tiers = host_tiers(2);
  ASSERT_TRUE(tiers);
  // The tier worker stalls through the first pass: its two staging slots stay queued, so every
  // later eviction finds the budget used up and is dropped (not waited for).
  const PassResult r = run_passes(*model_, kSmallPool, tiers, -1, [&](int pass) {
    tiers->pause_for_test(pass == 0);
    if (pass == 1) settle(*tiers);
  });
  EXPECT_EQ(r.outputs, reference_);
  EXPECT_GT(r.stats.kv_tier_offload_dropped_blocks, 0u);
  EXPECT_GT(r.stats.kv_tier_host_offloaded_blocks, 0u);
  const kvtier::TierStats t = tiers->stats();
  EXPECT_EQ(t.offload_staging_blocks, 2);
  EXPECT_EQ(t.offload_inflight_blocks, 0);
  // Without the stall the same run drops nothing and onboards from the host tier.
  auto roomy = host_tiers(64);
  ASSERT_TRUE(roomy);
  const PassResult ok = run_passes(*model_, kSmallPool, roomy, -1, [&](int pass) {
    if (pass == 1) settle(*roomy);
  });
  EXPECT_EQ(ok.outputs, reference_);
  EXPECT_EQ(ok.stats.kv_tier_offload_dropped_blocks, 0u);
  EXPECT_GT(ok.stats.kv_tier_host_onboarded_blocks, 0u);
  EXPECT_GT(r.stats.kv_tier_offload_dropped_blocks + r.stats.kv_tier_host_offloaded_blocks,
            r.stats.kv_tier_host_offloaded_blocks);
}

TEST_F(KvTiersAsync, LateCopiesAreOfferedOnlyWhenDone) {
  auto tiers = host_tiers(64);
  ASSERT_TRUE(tiers);
  // Each copy is done only after three polls; its blocks' slots are reused by the very next
  // step. The host tier must hold their bytes as of the eviction: the second pass onboards them.
  const PassResult r = run_passes(*model_, kSmallPool, tiers, 3, [&](int pass) {
    if (pass == 1) settle(*tiers);
  });
  EXPECT_EQ(r.outputs, reference_);
  EXPECT_GT(r.copies, 0);
  EXPECT_GT(r.deferred_writes, 0);  // onboarded blocks written only before the pass that reads them
  EXPECT_GT(r.stats.kv_tier_host_offloaded_blocks, 0u);
  EXPECT_GT(r.stats.kv_tier_host_onboarded_blocks, 0u);
  EXPECT_EQ(r.stats.kv_tier_host_corrupt_blocks, 0u);
  EXPECT_EQ(r.stats.kv_tier_offload_dropped_blocks, 0u);
}

}  // namespace
}  // namespace turbine::engine
