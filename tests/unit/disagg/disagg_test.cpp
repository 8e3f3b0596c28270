// Disaggregated prefill/decode (issue 8), in process: the policy, CPU KV block export/import, the
// prefill engine's transfer table, and greedy parity between aggregated and disaggregated serving
// on stories260K, with prefix reuse and faults.
#include <gtest/gtest.h>

#include "disagg/disagg_engine.h"
#include "disagg/in_process_transfer.h"
#include "disagg_test_util.h"
#include "router/routed_engine.h"

namespace turbine::disagg {
namespace {

using namespace testing;  // NOLINT
using engine::FinishReason;

TEST(DisaggPolicy, RemoteOnlyForLongUncachedPromptsWithCapacity) {
  EXPECT_TRUE(should_prefill_remotely(1001, 1000, true));
  EXPECT_FALSE(should_prefill_remotely(1000, 1000, true));   // at the limit: local
  EXPECT_FALSE(should_prefill_remotely(5000, 1000, false));  // no prefill capacity: local
  EXPECT_TRUE(should_prefill_remotely(1, 0, true));
  EXPECT_FALSE(should_prefill_remotely(0, 0, true));  // everything cached on the decoder
}

// Blocks read from one CPU backend and written into another (other block ids) give the second
// the same next-token logits, bit for bit.
TEST(CpuKvBlocks, ReadWriteRoundTripGivesIdenticalLogits) {
  REQUIRE_STORIES();
  engine::CpuBackendOptions bo;
  bo.n_threads = 1;
  bo.max_num_seqs = 2;
  bo.block_size = 4;
  auto a = engine::make_cpu_backend(*stories()->model, bo);
  auto b = engine::make_cpu_backend(*stories()->model, bo);
  ASSERT_TRUE(a.has_value() && b.has_value());
  const engine::KvLayout layout = (*a)->kv_layout();
  EXPECT_EQ(layout, (*b)->kv_layout());
  EXPECT_EQ(layout.dtype, "f32");
  const auto& c = stories()->model->config();
  EXPECT_EQ(layout.bytes_per_block, int64_t{2} * c.n_layers * 4 * c.n_kv_heads * c.head_dim * 4);

  const std::vector<int32_t> prompt = stories()->tok->encode("Once upon a time, there", true);
  ASSERT_GT(prompt.size(), 5u);
  const int n = static_cast<int>(prompt.size());  // positions 0..n-2 go over, n-1 is computed
  const int n_blocks = (n - 1 + 3) / 4;
  std::vector<int32_t> table_a, table_b;
  for (int i = 0; i < n_blocks + 1; ++i) {
    table_a.push_back(i);
    table_b.push_back(20 + 2 * i);  // different ids on the receiver
  }
  std::vector<float> logits_a, logits_b, unused;
  engine::SeqChunk pre{table_a, 0, std::span<const int32_t>(prompt).first(n - 1), false};
  ASSERT_TRUE((*a)->forward({&pre, 1}, unused).is_ok());

  std::string bytes;
  ASSERT_TRUE(
      (*a)->read_kv_blocks(std::span<const int32_t>(table_a).first(n_blocks), bytes).is_ok());
  EXPECT_EQ(static_cast<int64_t>(bytes.size()), n_blocks * layout.bytes_per_block);
  // Before the import the receiver refuses to read positions nobody wrote.
  engine::SeqChunk last_b{table_b, n - 1, std::span<const int32_t>(prompt).subspan(n - 1), true};
  EXPECT_FALSE((*b)->forward({&last_b, 1}, logits_b).is_ok());
  // Wrong sizes and positions are refused.
  EXPECT_FALSE((*b)->write_kv_blocks(std::span<const int32_t>(table_b).first(n_blocks),
                                     std::string_view(bytes).substr(1), n - 1)
                   .is_ok());
  EXPECT_FALSE(
      (*b)->write_kv_blocks(std::span<const int32_t>(table_b).first(n_blocks), bytes, n + 8)
          .is_ok());
  ASSERT_TRUE((*b)->write_kv_blocks(std::span<const int32_t>(table_b).first(n_blocks), bytes, n - 1)
                  .is_ok());

  engine::SeqChunk last_a{table_a, n - 1, std::span<const int32_t>(prompt).subspan(n - 1), true};
  ASSERT_TRUE((*a)->forward({&last_a, 1}, logits_a).is_ok());
  ASSERT_TRUE((*b)->forward({&last_b, 1}, logits_b).is_ok());
  ASSERT_EQ(logits_a.size(), logits_b.size());
  EXPECT_EQ(0, std::memcmp(logits_a.data(), logits_b.data(), logits_a.size() * sizeof(float)));
}

// A prefill-only request pins its blocks; release, the TTL and shutdown free them.
TEST(TransferTable, PinReleaseAndTtl) {
  REQUIRE_STORIES();
  EngineSetup s;
  s.instance_id = 7;
  s.ttl = std::chrono::milliseconds(1500);
  auto e = make_engine(s);
  ASSERT_TRUE(e);
  const std::vector<int32_t> prompt = prompt_suite().back();
  engine::KvDisagg d;
  d.prefill_only = true;
  Collected c = wait(submit(*e, 1, prompt, greedy(50), d));
  EXPECT_EQ(c.finish, FinishReason::kLength);
  EXPECT_EQ(c.tokens.size(), 1u);  // prefill-only: one token whatever max_tokens says
  ASSERT_TRUE(c.kv_transfer);
  const auto& m = *c.kv_transfer;
  const int n = static_cast<int>(prompt.size());
  EXPECT_EQ(m.instance_id, 7u);
  EXPECT_EQ(m.num_tokens, n);
  EXPECT_EQ(m.block_ids.size(), static_cast<size_t>((n + 15) / 16));
  EXPECT_EQ(m.block_hashes.size(), static_cast<size_t>(n / 16));
  EXPECT_EQ(m.layout, e->kv_layout());
  // Stats are published after the step whose callback delivered the output.
  ASSERT_TRUE(eventually([&] { return e->stats().kv_transfers_pinned == 1; }));
  auto st = e->stats();
  EXPECT_EQ(st.kv_transfers_pinned, 1);
  EXPECT_EQ(st.kv_transfer_pinned_blocks, static_cast<int>(m.block_ids.size()));
  EXPECT_EQ(st.kv_used_blocks, static_cast<int>(m.block_ids.size()));

  // read_transfer serves the pinned blocks; unknown ids are NotFound.
  std::promise<Result<std::string>> read;
  e->read_transfer(m.transfer_id, 0, static_cast<int>(m.block_ids.size()),
                   [&](Result<std::string> r) { read.set_value(std::move(r)); });
  auto bytes = read.get_future().get();
  ASSERT_TRUE(bytes.has_value()) << bytes.status().to_string();
  EXPECT_EQ(static_cast<int64_t>(bytes->size()),
            static_cast<int64_t>(m.block_ids.size()) * m.layout.bytes_per_block);
  std::promise<Result<std::string>> missing;
  e->read_transfer(m.transfer_id + 100, 0, 1,
                   [&](Result<std::string> r) { missing.set_value(std::move(r)); });
  EXPECT_EQ(missing.get_future().get().status().code(), StatusCode::kNotFound);

  e->release_transfer(m.transfer_id);
  EXPECT_TRUE(eventually([&] { return e->stats().kv_used_blocks == 0; }));
  EXPECT_EQ(e->stats().kv_transfers_pinned, 0);
  EXPECT_EQ(e->stats().kv_transfers_expired, 0u);

  // Never released: the TTL frees it.
  Collected c2 = wait(submit(*e, 2, prompt, greedy(1), d));
  ASSERT_TRUE(c2.kv_transfer);
  EXPECT_TRUE(eventually([&] { return e->stats().kv_transfers_pinned == 1; }));
  EXPECT_GT(e->stats().kv_used_blocks, 0);
  EXPECT_TRUE(eventually([&] { return e->stats().kv_used_blocks == 0; }));
  EXPECT_EQ(e->stats().kv_transfers_expired, 1u);
  EXPECT_EQ(e->stats().kv_transfers_pinned, 0);
}

// An aggregated (one engine) and a disaggregated (prefill pool -> decode pool) deployment.
struct Disagg {
  std::shared_ptr<InProcessKvTransfer> in_process = std::make_shared<InProcessKvTransfer>();
  std::shared_ptr<FaultyTransfer> transfer = std::make_shared<FaultyTransfer>(in_process);
  std::shared_ptr<engine::Engine> prefill, decode;
  std::shared_ptr<router::RoutedEngine> prefill_pool, decode_pool;
  std::unique_ptr<DisaggEngine> engine;

  explicit Disagg(std::chrono::milliseconds fetch_timeout = std::chrono::seconds(10),
                  int max_local_prefill_length = 0) {
    EngineSetup p;
    p.instance_id = 0x11;
    prefill = make_engine(p);
    in_process->add_source(p.instance_id, prefill);
    EngineSetup d;
    d.instance_id = 0x22;
    d.transfer = transfer;
    d.fetch_timeout = fetch_timeout;
    decode = make_engine(d);
    prefill_pool = std::make_shared<router::RoutedEngine>(router::RouterOptions{});
    prefill_pool->add_worker({p.instance_id, 16, prefill->stats().kv_total_blocks}, prefill);
    decode_pool = std::make_shared<router::RoutedEngine>(router::RouterOptions{});
    decode_pool->add_worker({d.instance_id, 16, decode->stats().kv_total_blocks}, decode);
    DisaggOptions o;
    o.max_local_prefill_length = max_local_prefill_length;
    o.max_inflight_prefills = 64;  // more than the tests submit at once: always remote
    engine = std::make_unique<DisaggEngine>(o, prefill_pool, decode_pool, transfer);
  }
  ~Disagg() { engine->shutdown(); }
};

TEST(DisaggEngineTest, GreedyOutputsMatchAggregatedServing) {
  REQUIRE_STORIES();
  const int kMax = 40;
  const auto expected = aggregated_outputs(kMax);
  Disagg d;
  const auto prompts = prompt_suite();
  auto futs = submit_all(*d.engine, prompts, kMax);
  const std::vector<Collected> outputs = expect_length_outputs(futs, expected);
  for (size_t i = 0; i < outputs.size(); ++i) {
    EXPECT_EQ(outputs[i].completion_tokens, kMax);
    EXPECT_EQ(outputs[i].prompt_tokens, static_cast<int>(prompts[i].size()));
  }
  const DisaggStats ds = d.engine->disagg_stats();
  EXPECT_EQ(ds.remote_prefills, prompts.size());
  EXPECT_EQ(ds.local_prefills, 0u);
  EXPECT_EQ(ds.inflight_prefills, 0);
  const auto dec = d.decode->stats();
  EXPECT_EQ(dec.kv_imports, prompts.size());
  EXPECT_EQ(dec.kv_import_fallbacks, 0u);
  EXPECT_GT(dec.kv_import_bytes, 0u);
  // The transport's own counters: every byte the engine imported came over it.
  ASSERT_EQ(dec.kv_transports.size(), 1u);
  EXPECT_EQ(dec.kv_transports[0].transport, "in_process");
  EXPECT_EQ(dec.kv_transports[0].fetches, prompts.size());
  EXPECT_EQ(dec.kv_transports[0].failures, 0u);
  EXPECT_EQ(dec.kv_transports[0].bytes, dec.kv_import_bytes);
  EXPECT_GT(dec.kv_transports[0].seconds, 0.0);
  EXPECT_EQ(d.engine->stats().kv_transports.size(), 1u);  // the sum keeps them
  EXPECT_EQ(d.engine->stats().disagg_prefill_inflight, 0);
  // Every transfer was released: nothing stays pinned on the prefill worker.
  EXPECT_TRUE(eventually([&] { return d.prefill->stats().kv_used_blocks == 0; }));
  EXPECT_EQ(d.prefill->stats().kv_transfers_pinned, 0);
  EXPECT_TRUE(eventually([&] { return d.decode->stats().kv_used_blocks == 0; }));
}

TEST(DisaggEngineTest, ShortPromptsAndMaxTokensOneStayCorrect) {
  REQUIRE_STORIES();
  const auto prompts = prompt_suite();
  auto agg = make_engine(EngineSetup{});
  const auto one = wait(submit(*agg, 1, prompts[2], greedy(1)));
  const auto twelve = wait(submit(*agg, 2, prompts[1], greedy(12)));
  Disagg d(std::chrono::seconds(10), /*max_local_prefill_length=*/8);
  // max_tokens 1: the prefill's token is the answer, the transfer is released.
  Collected c1 = wait(submit(*d.engine, 1, prompts[2], greedy(1)));
  EXPECT_EQ(c1.tokens, one.tokens);
  EXPECT_EQ(c1.finish, FinishReason::kLength);
  // A prompt within max_local_prefill_length (5 tokens <= 8) is prefilled on the decoder.
  ASSERT_LE(prompts[1].size(), 8u);
  Collected c2 = wait(submit(*d.engine, 2, prompts[1], greedy(12)));
  EXPECT_EQ(c2.tokens, twelve.tokens);
  EXPECT_EQ(d.engine->disagg_stats().local_prefills, 1u);
  EXPECT_EQ(d.engine->disagg_stats().remote_prefills, 1u);
  EXPECT_TRUE(eventually([&] { return d.prefill->stats().kv_used_blocks == 0; }));
}

// The second time, the decoder has the prompt's full blocks cached: only the rest moves.
TEST(DisaggEngineTest, RepeatedLongPromptMovesOnlyMissingBlocks) {
  REQUIRE_STORIES();
  const auto prompt = prompt_suite().back();
  const int n = static_cast<int>(prompt.size());
  ASSERT_NE(n % 16, 0);
  const uint64_t n_blocks = static_cast<uint64_t>((n + 15) / 16);
  Disagg d;
  const Collected a = wait(submit(*d.engine, 1, prompt, greedy(8)));
  auto s1 = d.decode->stats();
  EXPECT_EQ(s1.kv_import_fetched_blocks, n_blocks);
  EXPECT_EQ(s1.kv_import_reused_blocks, 0u);
  const Collected b = wait(submit(*d.engine, 2, prompt, greedy(8)));
  EXPECT_EQ(a.tokens, b.tokens);
  auto s2 = d.decode->stats();
  EXPECT_EQ(s2.kv_imports, 2u);
  EXPECT_EQ(s2.kv_import_fetched_blocks - s1.kv_import_fetched_blocks, 1u);  // the partial tail
  EXPECT_EQ(s2.kv_import_reused_blocks, n_blocks - 1);
  EXPECT_EQ(s2.kv_import_bytes,
            (n_blocks + 1) * static_cast<uint64_t>(d.decode->kv_layout().bytes_per_block));
}

// A prefill worker that vanished (fetch fails) and a fetch that never answers (timeout): the
// decoder prefills locally, the text is the same, no blocks leak.
TEST(DisaggEngineTest, FailedAndTimedOutTransfersFallBackToLocalPrefill) {
  REQUIRE_STORIES();
  const int kMax = 24;
  const auto expected = aggregated_outputs(kMax);
  const auto prompts = prompt_suite();
  Disagg d(std::chrono::milliseconds(300));
  for (auto mode : {FaultyTransfer::Mode::kFail, FaultyTransfer::Mode::kHang}) {
    d.transfer->set_mode(mode);
    const uint64_t fallbacks0 = d.decode->stats().kv_import_fallbacks;
    auto futs =
        submit_all(*d.engine, prompts, kMax, mode == FaultyTransfer::Mode::kFail ? 100 : 200);
    expect_length_outputs(futs, expected);
    // Every import fell back (a prompt whose blocks the decoder caches from an earlier round may
    // need no fetch at all).
    EXPECT_GE(d.decode->stats().kv_import_fallbacks - fallbacks0, 1u);
    EXPECT_TRUE(eventually([&] { return d.decode->stats().kv_used_blocks == 0; }));
    EXPECT_TRUE(eventually([&] { return d.prefill->stats().kv_used_blocks == 0; }));
  }
  EXPECT_EQ(d.transfer->fetches(), static_cast<int>(d.decode->stats().kv_import_fallbacks));
}

// Cancelling a request while its KV is being fetched frees its blocks and releases the transfer.
TEST(DisaggEngineTest, CancelWhileFetchingFreesBlocks) {
  REQUIRE_STORIES();
  Disagg d;
  d.transfer->set_mode(FaultyTransfer::Mode::kHang);
  auto fut = submit(*d.engine, 1, prompt_suite().back(), greedy(20));
  ASSERT_TRUE(eventually([&] { return d.transfer->fetches() == 1; }));
  EXPECT_GT(d.decode->stats().kv_used_blocks, 0);
  EXPECT_EQ(d.decode->stats().waiting, 1);  // fetching counts as waiting
  d.engine->cancel(1);
  Collected c = wait(std::move(fut));
  EXPECT_EQ(c.finish, FinishReason::kCancelled);
  EXPECT_EQ(c.tokens.size(), 1u);  // the prefill's first token was already streamed
  EXPECT_TRUE(eventually([&] { return d.decode->stats().kv_used_blocks == 0; }));
  EXPECT_TRUE(eventually([&] { return d.prefill->stats().kv_used_blocks == 0; }));
  EXPECT_EQ(d.transfer->releases(), 1);
}

// A prefill pool with no worker: every request is served by the decode pool.
TEST(DisaggEngineTest, NoPrefillWorkerMeansAggregated) {
  REQUIRE_STORIES();
  const auto expected = aggregated_outputs(10);
  auto decode = make_engine(EngineSetup{});
  auto prefill_pool = std::make_shared<router::RoutedEngine>(router::RouterOptions{});
  auto decode_pool = std::make_shared<router::RoutedEngine>(router::RouterOptions{});
  decode_pool->add_worker({0x22, 16, decode->stats().kv_total_blocks}, decode);
  DisaggEngine e(DisaggOptions{0, 0}, prefill_pool, decode_pool, nullptr);
  const auto prompts = prompt_suite();
  for (size_t i = 0; i < prompts.size(); ++i)
    EXPECT_EQ(wait(submit(e, i + 1, prompts[i], greedy(10))).tokens, expected[i]);
  EXPECT_EQ(e.disagg_stats().remote_prefills, 0u);
  EXPECT_EQ(e.disagg_stats().local_prefills, prompts.size());
  e.shutdown();
}

// A prefill pool that holds every request until told to answer, with `slots` sequence slots:
// the rest count as waiting, as on a prefill worker whose slots are full.
class HeldPrefillPool final : public engine::AsyncEngine {
 public:
  explicit HeldPrefillPool(int slots) : slots_(slots) {}
  Status submit(engine::EngineRequest r) override {
    std::lock_guard lock(mu_);
    held_.push_back(std::move(r));
    return Status::ok();
  }
  void cancel(uint64_t) override {}
  void shutdown() override { fail_all(); }
  engine::EngineStats stats() const override {
    std::lock_guard lock(mu_);
    engine::EngineStats s;
    const int n = static_cast<int>(held_.size());
    s.running = std::min(n, slots_);
    s.waiting = n - s.running;
    return s;
  }
  int max_context() const override { return 0; }
  int num_slots() const override { return slots_; }
  int block_size() const override { return 16; }
  // Every held prefill fails (its worker lost): the orchestrator prefills on the decode side.
  void fail_all() {
    std::vector<engine::EngineRequest> held;
    {
      std::lock_guard lock(mu_);
      held.swap(held_);
    }
    for (auto& r : held) {
      engine::EngineOutput o;
      o.finish = FinishReason::kError;
      o.error = Status{StatusCode::kUnavailable, "injected: prefill worker lost"};
      r.on_output(std::move(o));
    }
  }

 private:
  const int slots_;
  mutable std::mutex mu_;
  std::vector<engine::EngineRequest> held_;
};

// The prefill queue: remote prefills in flight and, of those, waiting for a prefill slot; both
// back to zero once the prefills end (here by failing over to the decode side).
TEST(DisaggEngineTest, PrefillQueueIsCountedAndDrains) {
  REQUIRE_STORIES();
  const auto expected = aggregated_outputs(6);
  auto decode = make_engine(EngineSetup{});
  auto decode_pool = std::make_shared<router::RoutedEngine>(router::RouterOptions{});
  decode_pool->add_worker({0x22, 16, decode->stats().kv_total_blocks}, decode);
  auto prefill = std::make_shared<HeldPrefillPool>(2);
  DisaggOptions o;
  o.max_local_prefill_length = 0;
  o.max_inflight_prefills = 16;
  DisaggEngine e(o, prefill, decode_pool, nullptr);
  const auto prompts = prompt_suite();
  ASSERT_GE(prompts.size(), 3u);
  std::vector<std::future<Collected>> futs;
  for (size_t i = 0; i < prompts.size(); ++i)
    futs.push_back(submit(e, i + 1, prompts[i], greedy(6)));
  engine::EngineStats s = e.stats();
  EXPECT_EQ(s.disagg_prefill_inflight, static_cast<int>(prompts.size()));
  EXPECT_EQ(s.disagg_prefill_queue, static_cast<int>(prompts.size()) - 2);
  prefill->fail_all();
  for (size_t i = 0; i < prompts.size(); ++i)
    EXPECT_EQ(wait(std::move(futs[i])).tokens, expected[i]);
  s = e.stats();
  EXPECT_EQ(s.disagg_prefill_inflight, 0);
  EXPECT_EQ(s.disagg_prefill_queue, 0);
  EXPECT_EQ(s.disagg_prefill_failures, prompts.size());
  e.shutdown();
}

// Layouts that differ (another block size) are never imported: local prefill, same text.
TEST(DisaggEngineTest, IncompatibleLayoutFallsBack) {
  REQUIRE_STORIES();
  const auto expected = aggregated_outputs(10);
  auto in_process = std::make_shared<InProcessKvTransfer>();
  EngineSetup p;
  p.instance_id = 1;
  p.block_size = 8;
  auto prefill = make_engine(p);
  in_process->add_source(1, prefill);
  EngineSetup ds;
  ds.instance_id = 2;
  ds.transfer = in_process;
  auto decode = make_engine(ds);
  auto prefill_pool = std::make_shared<router::RoutedEngine>(router::RouterOptions{});
  prefill_pool->add_worker({1, 8, prefill->stats().kv_total_blocks}, prefill);
  auto decode_pool = std::make_shared<router::RoutedEngine>(router::RouterOptions{});
  decode_pool->add_worker({2, 16, decode->stats().kv_total_blocks}, decode);
  DisaggEngine e(DisaggOptions{0, 0}, prefill_pool, decode_pool, in_process);
  const auto prompts = prompt_suite();
  for (size_t i = 0; i < prompts.size(); ++i)
    EXPECT_EQ(wait(submit(e, i + 1, prompts[i], greedy(10))).tokens, expected[i]);
  EXPECT_EQ(decode->stats().kv_imports, 0u);
  EXPECT_EQ(decode->stats().kv_import_fallbacks, prompts.size());
  EXPECT_TRUE(eventually([&] { return prefill->stats().kv_used_blocks == 0; }));
  e.shutdown();
}

}  // namespace
}  // namespace turbine::disagg
