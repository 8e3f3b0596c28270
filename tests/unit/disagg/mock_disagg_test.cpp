// Disaggregated serving on the mock engine (simulated KV transfer) and the policy's input from the
// decode router's index.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <numeric>
#include <vector>

#include "disagg/disagg_engine.h"
#include "disagg/in_process_transfer.h"
#include "disagg_test_util.h"
#include "mock/mock_engine.h"
#include "router/routed_engine.h"

namespace turbine::disagg {
namespace {

using testing::Collected;
using testing::eventually;
using testing::greedy;
using testing::submit;
using testing::wait;

constexpr uint64_t kPrefillId = 0x70;
constexpr uint64_t kDecodeId = 0xd0;

std::vector<int32_t> tokens(int n, int start = 1) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  std::iota(t.begin(), t.end(), start);
  return t;
}

mock::MockEngineOptions mock_options(uint64_t id, std::shared_ptr<engine::KvTransfer> transfer) {
  mock::MockEngineOptions o;
  o.n_vocab = 5000;
  o.block_size = 16;
  o.num_blocks = 512;
  o.speedup = 20;
  o.instance_id = id;
  o.kv_transfer = std::move(transfer);
  return o;
}

engine::KvDisagg prefill_only() {
  engine::KvDisagg d;
  d.prefill_only = true;
  return d;
}

engine::KvDisagg import_of(std::shared_ptr<const engine::KvTransferMeta> meta) {
  engine::KvDisagg d;
  d.import = std::move(meta);
  return d;
}

TEST(MockDisagg, PrefillOnlyPinsBlocksUntilReleased) {
  mock::MockEngine p(mock_options(kPrefillId, nullptr));
  ASSERT_EQ(p.stats().kv_used_blocks, 0);
  const Collected c = wait(submit(p, 1, tokens(100), greedy(50), prefill_only()));
  EXPECT_EQ(c.finish, engine::FinishReason::kLength);
  EXPECT_EQ(c.tokens.size(), 1u);  // the first token only
  ASSERT_NE(c.kv_transfer, nullptr);
  const engine::KvTransferMeta& m = *c.kv_transfer;
  EXPECT_EQ(m.instance_id, kPrefillId);
  EXPECT_EQ(m.num_tokens, 100);
  EXPECT_EQ(m.block_ids.size(), 7u);     // ceil(100 / 16)
  EXPECT_EQ(m.block_hashes.size(), 6u);  // the full ones
  EXPECT_EQ(m.layout.block_size, 16);
  EXPECT_EQ(m.layout.bytes_per_block, (int64_t{128} << 10) * 16);  // Llama-3-8B BF16 default
  EXPECT_TRUE(m.layout == p.kv_layout());
  // Pinned: the blocks stay in use after the request finished.
  ASSERT_TRUE(eventually([&] { return p.stats().kv_transfers_pinned == 1; }));
  EXPECT_EQ(p.stats().kv_transfer_pinned_blocks, 7);
  EXPECT_EQ(p.stats().kv_used_blocks, 7);
  p.release_transfer(m.transfer_id);
  ASSERT_TRUE(eventually([&] { return p.stats().kv_used_blocks == 0; }));
  EXPECT_EQ(p.stats().kv_transfers_pinned, 0);
  EXPECT_EQ(p.stats().kv_transfers_expired, 0u);
  // A released transfer is gone: reading it is NotFound.
  std::promise<Status> read;
  p.read_transfer(m.transfer_id, 0, 1, [&](Result<std::string> r) {
    read.set_value(r.has_value() ? Status::ok() : r.status());
  });
  EXPECT_EQ(read.get_future().get().code(), StatusCode::kNotFound);
}

TEST(MockDisagg, UnreleasedTransfersExpireAfterTheirTtl) {
  mock::MockEngineOptions o = mock_options(kPrefillId, nullptr);
  o.kv_transfer_ttl = std::chrono::milliseconds(150);
  mock::MockEngine p(o);
  const Collected c = wait(submit(p, 1, tokens(64), greedy(8), prefill_only()));
  ASSERT_NE(c.kv_transfer, nullptr);
  // Stats are published after the step whose output finished the request: wait for the pin.
  ASSERT_TRUE(eventually([&] { return p.stats().kv_transfers_pinned == 1; }));
  EXPECT_EQ(p.stats().kv_used_blocks, 4);
  ASSERT_TRUE(eventually([&] { return p.stats().kv_transfers_expired == 1; }));
  ASSERT_TRUE(eventually([&] { return p.stats().kv_used_blocks == 0; }));
  EXPECT_EQ(p.stats().kv_transfers_pinned, 0);
}

struct MockPair {
  std::shared_ptr<InProcessKvTransfer> transfer = std::make_shared<InProcessKvTransfer>();
  std::shared_ptr<mock::MockEngine> prefill, decode;
  explicit MockPair(mock::MockEngineOptions decode_options = mock_options(kDecodeId, nullptr)) {
    prefill = std::make_shared<mock::MockEngine>(mock_options(kPrefillId, nullptr));
    decode_options.kv_transfer = transfer;
    decode = std::make_shared<mock::MockEngine>(decode_options);
    transfer->add_source(kPrefillId, prefill);
  }
};

TEST(MockDisagg, ImportReusesTheLocalPrefixAndFetchesOnlyMissingBlocks) {
  MockPair m;
  // The decode side has the first 64 tokens (4 blocks) of the prompt cached already.
  const std::vector<int32_t> prompt = tokens(160);  // 10 blocks
  std::vector<int32_t> head(prompt.begin(), prompt.begin() + 70);
  ASSERT_EQ(wait(submit(*m.decode, 1, head, greedy(1))).finish, engine::FinishReason::kLength);

  const Collected pre = wait(submit(*m.prefill, 2, prompt, greedy(10), prefill_only()));
  ASSERT_NE(pre.kv_transfer, nullptr);
  std::vector<int32_t> cont = prompt;
  cont.push_back(pre.tokens.at(0));
  const Collected dec = wait(submit(*m.decode, 3, cont, greedy(9), import_of(pre.kv_transfer)));
  EXPECT_EQ(dec.finish, engine::FinishReason::kLength);
  EXPECT_EQ(dec.tokens.size(), 9u);
  const engine::EngineStats d = m.decode->stats();
  EXPECT_EQ(d.kv_imports, 1u);
  EXPECT_EQ(d.kv_import_fallbacks, 0u);
  EXPECT_EQ(d.kv_import_reused_blocks, 4u);
  EXPECT_EQ(d.kv_import_fetched_blocks, 6u);
  EXPECT_EQ(d.kv_import_bytes, 6u * 16u * (128u << 10));
  EXPECT_GT(d.kv_import_seconds, 0.0);
  // The decoder released the transfer; both sides are back at their baseline.
  ASSERT_TRUE(eventually([&] { return m.prefill->stats().kv_used_blocks == 0; }));
  EXPECT_EQ(m.prefill->stats().kv_transfers_pinned, 0);
  ASSERT_TRUE(eventually([&] { return m.decode->stats().kv_used_blocks == 0; }));

  // The same prompt again: everything is cached on the decode side now, nothing moves.
  const Collected pre2 = wait(submit(*m.prefill, 4, prompt, greedy(10), prefill_only()));
  ASSERT_NE(pre2.kv_transfer, nullptr);
  const Collected dec2 = wait(submit(*m.decode, 5, cont, greedy(9), import_of(pre2.kv_transfer)));
  EXPECT_EQ(dec2.finish, engine::FinishReason::kLength);
  EXPECT_EQ(m.decode->stats().kv_imports, 2u);
  EXPECT_EQ(m.decode->stats().kv_import_fetched_blocks, 6u);
  EXPECT_EQ(m.decode->stats().kv_import_reused_blocks, 14u);
  ASSERT_TRUE(eventually([&] { return m.prefill->stats().kv_used_blocks == 0; }));
}

TEST(MockDisagg, TransferTakesBytesOverBandwidthWithoutStallingOtherSequences) {
  // 10 blocks x 16 tokens x 1 MB = 160 MB at 8 Gb/s = 160 ms simulated = 160 ms wall (speedup 1).
  mock::MockEngineOptions dopt = mock_options(kDecodeId, nullptr);
  dopt.speedup = 1.0;
  dopt.kv_bytes_per_token = 1'000'000;
  dopt.kv_transfer_gbps = 8.0;
  dopt.timing.base_ms = 1.0;
  MockPair m(dopt);
  mock::MockEngineOptions popt = mock_options(kPrefillId, nullptr);
  popt.kv_bytes_per_token = dopt.kv_bytes_per_token;  // layouts must match
  m.prefill = std::make_shared<mock::MockEngine>(popt);
  m.transfer->add_source(kPrefillId, m.prefill);

  const std::vector<int32_t> prompt = tokens(160);
  const Collected pre = wait(submit(*m.prefill, 1, prompt, greedy(10), prefill_only()));
  ASSERT_NE(pre.kv_transfer, nullptr);
  // A sequence decoding on the decode side meanwhile (about 1 ms per step).
  auto other = submit(*m.decode, 2, tokens(20, 3000), greedy(5000));
  ASSERT_TRUE(eventually([&] { return m.decode->stats().generated_tokens >= 5; }));
  const uint64_t before = m.decode->stats().generated_tokens;
  std::vector<int32_t> cont = prompt;
  cont.push_back(pre.tokens.at(0));
  const auto t0 = std::chrono::steady_clock::now();
  const Collected dec = wait(submit(*m.decode, 3, cont, greedy(1), import_of(pre.kv_transfer)));
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  const uint64_t during = m.decode->stats().generated_tokens - before;
  m.decode->cancel(2);
  wait(std::move(other));
  EXPECT_EQ(dec.finish, engine::FinishReason::kLength);
  EXPECT_EQ(m.decode->stats().kv_imports, 1u);
  EXPECT_NEAR(m.decode->stats().kv_import_seconds, 0.160, 1e-6);
  EXPECT_GE(ms, 160.0);  // the bytes' time, at least
  // The step loop kept running: the other sequence decoded through the transfer (~1 ms steps;
  // a loaded machine only sleeps longer, so a loose lower bound).
  EXPECT_GE(during, 20u);
}

TEST(MockDisagg, MissingSourceFallsBackToLocalPrefill) {
  MockPair m;
  const std::vector<int32_t> prompt = tokens(80);
  const Collected pre = wait(submit(*m.prefill, 1, prompt, greedy(4), prefill_only()));
  ASSERT_NE(pre.kv_transfer, nullptr);
  m.prefill->release_transfer(pre.kv_transfer->transfer_id);  // gone before the fetch
  ASSERT_TRUE(eventually([&] { return m.prefill->stats().kv_used_blocks == 0; }));
  std::vector<int32_t> cont = prompt;
  cont.push_back(pre.tokens.at(0));
  const Collected dec = wait(submit(*m.decode, 2, cont, greedy(3), import_of(pre.kv_transfer)));
  EXPECT_EQ(dec.finish, engine::FinishReason::kLength);
  EXPECT_EQ(dec.tokens.size(), 3u);
  EXPECT_EQ(m.decode->stats().kv_import_fallbacks, 1u);
  EXPECT_EQ(m.decode->stats().kv_imports, 0u);
  ASSERT_TRUE(eventually([&] { return m.decode->stats().kv_used_blocks == 0; }));
}

TEST(MockDisagg, PrefillInStepSlowsEveryRunningSequence) {
  // The timing model charges a step's prefill tokens to the whole step: a decode stream's
  // inter-token gap grows when a long prompt is prefilled beside it.
  mock::MockEngineOptions o = mock_options(kDecodeId, nullptr);
  o.speedup = 10;
  o.num_blocks = 2048;
  o.n_vocab = 32000;
  mock::MockEngine e(o);
  std::mutex mu;
  std::vector<std::chrono::steady_clock::time_point> times;
  engine::EngineRequest r;
  r.id = 1;
  r.prompt = tokens(32, 4000);
  r.params = greedy(400);
  r.on_output = [&](engine::EngineOutput&&) {
    std::lock_guard lock(mu);
    times.push_back(std::chrono::steady_clock::now());
  };
  auto done = std::make_shared<std::promise<void>>();
  auto cb = r.on_output;
  r.on_output = [cb, done](engine::EngineOutput&& out) {
    const bool last = out.finish != engine::FinishReason::kNone;
    cb(std::move(out));
    if (last) done->set_value();
  };
  ASSERT_TRUE(e.submit(std::move(r)).is_ok());
  ASSERT_TRUE(eventually([&] { return e.stats().generated_tokens >= 20; }));
  // 6000 prompt tokens in one step: >= 0.03 ms x 6000 = 180 ms simulated, 18 ms wall.
  auto big = submit(e, 2, tokens(6000, 1), greedy(1));
  done->get_future().wait();
  wait(std::move(big));
  std::lock_guard lock(mu);
  double max_gap = 0, median_gap = 0;
  std::vector<double> gaps;
  for (size_t i = 1; i < times.size(); ++i)
    gaps.push_back(std::chrono::duration<double, std::milli>(times[i] - times[i - 1]).count());
  ASSERT_FALSE(gaps.empty());
  max_gap = *std::max_element(gaps.begin(), gaps.end());
  std::nth_element(gaps.begin(), gaps.begin() + static_cast<ptrdiff_t>(gaps.size() / 2),
                   gaps.end());
  median_gap = gaps[gaps.size() / 2];
  EXPECT_GE(max_gap, 18.0);
  EXPECT_LT(median_gap, max_gap / 4);
  const double decode_ms = o.timing.step_ms(1, 500, 0, 0);
  const double mixed_ms = o.timing.step_ms(2, 6500, 6000, 6000.0 * 3000);
  EXPECT_GT(mixed_ms, 30 * decode_ms);
}

// A DisaggEngine over routed mock pools: prompts long enough go remote, pinned blocks return.
struct MockFleet {
  std::shared_ptr<InProcessKvTransfer> transfer = std::make_shared<InProcessKvTransfer>();
  std::shared_ptr<router::RoutedEngine> prefill_pool =
      std::make_shared<router::RoutedEngine>(router::RouterOptions{});
  std::shared_ptr<router::RoutedEngine> decode_pool =
      std::make_shared<router::RoutedEngine>(router::RouterOptions{});
  std::vector<std::shared_ptr<mock::MockEngine>> prefills, decodes;
  MockFleet(int n_prefill, int n_decode) {
    for (int i = 0; i < n_prefill; ++i) {
      const uint64_t id = kPrefillId + static_cast<uint64_t>(i);
      mock::MockEngineOptions o = mock_options(id, nullptr);
      o.kv_event_sink = std::make_shared<router::RouterKvEventSink>(prefill_pool.get(), id);
      prefills.push_back(std::make_shared<mock::MockEngine>(o));
      transfer->add_source(id, prefills.back());
      prefill_pool->add_worker({id, 16, o.num_blocks}, prefills.back());
    }
    for (int i = 0; i < n_decode; ++i) {
      const uint64_t id = kDecodeId + static_cast<uint64_t>(i);
      mock::MockEngineOptions o = mock_options(id, transfer);
      o.kv_event_sink = std::make_shared<router::RouterKvEventSink>(decode_pool.get(), id);
      decodes.push_back(std::make_shared<mock::MockEngine>(o));
      decode_pool->add_worker({id, 16, o.num_blocks}, decodes.back());
    }
  }
  ~MockFleet() {
    decode_pool->shutdown();
    prefill_pool->shutdown();
  }
  CachedTokensFn cached() {
    return [p = decode_pool.get()](std::span<const int32_t> prompt) {
      return p->cached_prefix_tokens(prompt);
    };
  }
};

TEST(MockDisagg, DisaggEngineOverMockPoolsServesAndUnpins) {
  MockFleet f(2, 2);
  DisaggOptions o;
  o.max_local_prefill_length = 32;
  DisaggEngine d(o, f.prefill_pool, f.decode_pool, f.transfer, f.cached());
  std::vector<std::future<Collected>> futs;
  for (int i = 0; i < 8; ++i)
    futs.push_back(submit(d, 100 + i, tokens(200 + 10 * i, 7 * i + 1), greedy(12)));
  futs.push_back(submit(d, 200, tokens(20), greedy(12)));  // short: local
  for (auto& fu : futs) {
    const Collected c = wait(std::move(fu));
    EXPECT_EQ(c.finish, engine::FinishReason::kLength);
    EXPECT_EQ(c.tokens.size(), 12u);
    EXPECT_EQ(c.completion_tokens, 12);
  }
  const DisaggStats s = d.disagg_stats();
  EXPECT_EQ(s.remote_prefills, 8u);
  EXPECT_EQ(s.local_prefills, 1u);
  EXPECT_EQ(s.prefill_failures, 0u);
  const engine::EngineStats st = d.stats();
  EXPECT_EQ(st.kv_imports, 8u);
  EXPECT_EQ(st.kv_import_fallbacks, 0u);
  for (auto& p : f.prefills)
    EXPECT_TRUE(eventually([&] { return p->stats().kv_used_blocks == 0; }));
}

TEST(MockDisagg, PromptCachedOnTheDecodeSideIsPrefilledLocally) {
  MockFleet f(1, 2);
  DisaggOptions o;
  o.max_local_prefill_length = 64;
  const std::vector<int32_t> prompt = tokens(400);
  // Without the router's answer the whole prompt counts as uncached: remote. (Both engines live
  // to the end: destroying one shuts the pools down.)
  DisaggEngine blind(o, f.prefill_pool, f.decode_pool, f.transfer);
  ASSERT_EQ(wait(submit(blind, 1, prompt, greedy(4))).finish, engine::FinishReason::kLength);
  EXPECT_EQ(blind.disagg_stats().remote_prefills, 1u);
  // The import registered the prompt's blocks on one decode worker; its KV events reach the
  // decode router's index.
  ASSERT_TRUE(eventually([&] { return f.decode_pool->cached_prefix_tokens(prompt) >= 384; }));
  DisaggEngine d(o, f.prefill_pool, f.decode_pool, f.transfer, f.cached());
  ASSERT_EQ(wait(submit(d, 2, prompt, greedy(4))).finish, engine::FinishReason::kLength);
  EXPECT_EQ(d.disagg_stats().remote_prefills, 0u);
  EXPECT_EQ(d.disagg_stats().local_prefills, 1u);
  // A prompt sharing only 96 tokens with it: 304 uncached > 64, remote.
  std::vector<int32_t> other = tokens(96);
  const std::vector<int32_t> tail = tokens(304, 3000);
  other.insert(other.end(), tail.begin(), tail.end());
  EXPECT_EQ(f.decode_pool->cached_prefix_tokens(other), 96);
  ASSERT_EQ(wait(submit(d, 3, other, greedy(4))).finish, engine::FinishReason::kLength);
  EXPECT_EQ(d.disagg_stats().remote_prefills, 1u);
  // A prompt with 384 cached tokens and a short uncached tail stays local too.
  std::vector<int32_t> longer = prompt;
  const std::vector<int32_t> tail2 = tokens(40, 4000);
  longer.insert(longer.end(), tail2.begin(), tail2.end());
  ASSERT_EQ(wait(submit(d, 4, longer, greedy(4))).finish, engine::FinishReason::kLength);
  EXPECT_EQ(d.disagg_stats().local_prefills, 2u);
}

}  // namespace
}  // namespace turbine::disagg
