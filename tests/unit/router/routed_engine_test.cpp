#include "router/routed_engine.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <numeric>
#include <thread>

#include "mock/mock_engine.h"
#include "router/approx_indexer.h"

namespace turbine::router {
namespace {

using engine::EngineOutput;
using engine::EngineRequest;
using engine::FinishReason;

constexpr int kBs = 4;

// A worker the test drives by hand: it records requests and emits what the test says.
class FakeEngine final : public engine::AsyncEngine {
 public:
  Status submit(EngineRequest r) override {
    std::lock_guard lock(mu);
    if (!submit_status.is_ok()) return submit_status;
    submitted.push_back(std::move(r));
    return Status::ok();
  }
  void cancel(uint64_t id) override {
    std::lock_guard lock(mu);
    cancelled.push_back(id);
  }
  void shutdown() override { shut = true; }
  engine::EngineStats stats() const override { return {}; }
  int max_context() const override { return 4096; }
  int num_slots() const override { return 8; }
  int block_size() const override { return kBs; }

  size_t count() {
    std::lock_guard lock(mu);
    return submitted.size();
  }
  EngineRequest& last() {
    std::lock_guard lock(mu);
    return submitted.back();
  }
  // Emits tokens (completion_tokens counted per request) and an optional finish.
  void emit(size_t i, std::vector<int32_t> toks, FinishReason finish = FinishReason::kNone,
            Status error = Status::ok()) {
    EngineRequest* r;
    {
      std::lock_guard lock(mu);
      r = &submitted.at(i);
    }
    produced[i] += static_cast<int>(toks.size());
    EngineOutput out;
    for (int32_t t : toks) out.tokens.push_back({t, 0.0f, {}});
    out.finish = finish;
    out.error = std::move(error);
    out.prompt_tokens = static_cast<int>(r->prompt.size());
    out.completion_tokens = produced[i];
    out.cached_tokens = 8;
    r->on_output(std::move(out));
  }

  std::mutex mu;
  std::vector<EngineRequest> submitted;
  std::vector<uint64_t> cancelled;
  Status submit_status;
  bool shut = false;
  std::map<size_t, int> produced;
};

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
  std::vector<int32_t> tokens() {
    std::lock_guard lock(mu);
    std::vector<int32_t> t;
    for (const auto& o : outputs)
      for (const auto& s : o.tokens) t.push_back(s.token);
    return t;
  }
  bool finished() {
    std::lock_guard lock(mu);
    return !outputs.empty() && outputs.back().finish != FinishReason::kNone;
  }
  bool wait_finished(std::chrono::seconds timeout = std::chrono::seconds(30)) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, timeout, [&] {
      return !outputs.empty() && outputs.back().finish != FinishReason::kNone;
    });
  }
};

EngineRequest request(uint64_t id, std::vector<int32_t> prompt, Collector& c, int max_tokens = 10) {
  EngineRequest r;
  r.id = id;
  r.prompt = std::move(prompt);
  r.params.max_tokens = max_tokens;
  r.on_output = c.callback();
  return r;
}

std::vector<int32_t> seq(int n, int start = 0) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  std::iota(t.begin(), t.end(), start);
  return t;
}

// Tells the router that `worker` caches the full blocks of `tokens`.
void cache(RoutedEngine& router, uint64_t worker, const std::vector<int32_t>& tokens,
           uint64_t event_id = 0) {
  const auto h = kv::block_hashes(tokens, kBs);
  kv::BlockStored s;
  for (size_t i = 0; i < h.local.size(); ++i) s.blocks.push_back({h.sequence[i], h.local[i]});
  s.block_size = kBs;
  router.on_kv_event(worker, kv::KvEvent{kv::kKvEventsVersion, event_id, s});
}

struct Fleet {
  RoutedEngine router;
  std::map<uint64_t, std::shared_ptr<FakeEngine>> workers;
  explicit Fleet(RouterOptions o, int n = 3) : router(o) {
    for (int i = 1; i <= n; ++i) {
      auto w = std::make_shared<FakeEngine>();
      router.add_worker({static_cast<uint64_t>(i), kBs, 1000}, w);
      workers[static_cast<uint64_t>(i)] = w;
    }
  }
  // The worker that got the most recent request.
  uint64_t owner_of_last() {
    uint64_t best = 0;
    uint64_t best_id = 0;
    for (auto& [id, w] : workers) {
      std::lock_guard lock(w->mu);
      if (!w->submitted.empty() && w->submitted.back().id > best_id) {
        best_id = w->submitted.back().id;
        best = id;
      }
    }
    return best;
  }
};

TEST(RoutedEngineTest, KvModeFollowsTheCacheAndBalancesLoad) {
  Fleet f(RouterOptions{});
  const auto prompt = seq(40);  // 10 blocks
  cache(f.router, 2, seq(32));  // worker 2 holds 8 of them
  Collector c1;
  ASSERT_TRUE(f.router.submit(request(1, prompt, c1)).is_ok());
  EXPECT_EQ(f.owner_of_last(), 2u);
  auto st = f.router.router_stats();
  EXPECT_EQ(st.decisions, 1u);
  EXPECT_EQ(st.queried_blocks, 10u);
  EXPECT_EQ(st.hit_blocks, 8u);
  // Worker 2 now has 10 decode blocks and 8 tokens of pending prefill: an uncached request of
  // 10 blocks costs 20 on it and 20 elsewhere -> ties go to the smaller caches (1 or 3).
  Collector c2;
  ASSERT_TRUE(f.router.submit(request(2, seq(40, 1000), c2)).is_ok());
  EXPECT_NE(f.owner_of_last(), 2u);
  st = f.router.router_stats();
  ASSERT_EQ(st.workers.size(), 3u);
  EXPECT_DOUBLE_EQ(st.workers[1].active_decode_blocks, 10);
  EXPECT_DOUBLE_EQ(st.workers[1].pending_prefill_tokens, 8);
  // First token: prefill done; finish: load released; the caller saw both.
  f.workers[2]->emit(0, {5});
  EXPECT_DOUBLE_EQ(f.router.router_stats().workers[1].pending_prefill_tokens, 0);
  f.workers[2]->emit(0, {6}, FinishReason::kLength);
  EXPECT_DOUBLE_EQ(f.router.router_stats().workers[1].active_decode_blocks, 0);
  EXPECT_EQ(c1.tokens(), (std::vector<int32_t>{5, 6}));
  EXPECT_TRUE(c1.finished());
  EXPECT_EQ(c1.outputs.back().completion_tokens, 2);
  EXPECT_EQ(c1.outputs.back().prompt_tokens, 40);
}

// Decode load as Dynamo counts it: the unique blocks of a worker's active requests (a shared
// prefix once), plus one per request whose last block is partial.
TEST(RoutedEngineTest, DecodeLoadCountsSharedPrefixBlocksOnce) {
  Fleet f(RouterOptions{}, 2);
  auto pinned = [&](uint64_t id, std::vector<int32_t> prompt, Collector& c) {
    auto r = request(id, std::move(prompt), c);
    r.routing.instance_id = 1;
    return f.router.submit(std::move(r));
  };
  auto decode = [&] { return f.router.router_stats().workers[0].active_decode_blocks; };
  Collector a, b, c;
  ASSERT_TRUE(pinned(1, seq(40), a).is_ok());  // 10 blocks
  EXPECT_DOUBLE_EQ(decode(), 10);
  std::vector<int32_t> branch = seq(32);  // 8 shared blocks, then 2 of its own
  for (int32_t t : seq(8, 5000)) branch.push_back(t);
  ASSERT_TRUE(pinned(2, branch, b).is_ok());
  EXPECT_DOUBLE_EQ(decode(), 12);
  ASSERT_TRUE(pinned(3, seq(42), c).is_ok());  // a's 10 blocks again + a partial one
  EXPECT_DOUBLE_EQ(decode(), 13);
  f.workers[1]->emit(0, {1}, FinishReason::kLength);  // a finishes: its blocks are still used
  EXPECT_DOUBLE_EQ(decode(), 13);
  f.workers[1]->emit(2, {1}, FinishReason::kLength);  // c finishes: b's 10 are left
  EXPECT_DOUBLE_EQ(decode(), 10);
  f.workers[1]->emit(1, {1}, FinishReason::kLength);
  EXPECT_DOUBLE_EQ(decode(), 0);
  EXPECT_EQ(f.router.router_stats().workers[0].active_requests, 0);
}

// A candidate's added decode blocks are the request's blocks not already active there: a
// follow-up turn goes to the worker still decoding the earlier turn even though nothing is in
// its KV index yet (counting all 11 blocks again, as before, sends it to worker 2).
TEST(RoutedEngineTest, RequestBlocksActiveOnAWorkerAreNotAddedTwice) {
  Fleet f(RouterOptions{}, 2);
  Collector a, d, e;
  auto ra = request(1, seq(40), a);  // 10 blocks on worker 1
  ra.routing.instance_id = 1;
  ASSERT_TRUE(f.router.submit(std::move(ra)).is_ok());
  auto rd = request(2, seq(8, 7000), d);  // 2 blocks on worker 2
  rd.routing.instance_id = 2;
  ASSERT_TRUE(f.router.submit(std::move(rd)).is_ok());
  f.workers[1]->emit(0, {1});  // prefills done
  f.workers[2]->emit(0, {1});
  std::vector<int32_t> turn2 = seq(40);
  for (int32_t t : seq(4, 900)) turn2.push_back(t);  // 11 blocks, 10 active on worker 1
  // worker 1: 1 * 11 + (10 + 1) = 22; worker 2: 1 * 11 + (2 + 11) = 24.
  ASSERT_TRUE(f.router.submit(request(3, turn2, e)).is_ok());
  EXPECT_EQ(f.owner_of_last(), 1u);
  auto st = f.router.router_stats();
  EXPECT_DOUBLE_EQ(st.workers[0].active_decode_blocks, 11);
  EXPECT_DOUBLE_EQ(st.workers[1].active_decode_blocks, 2);
}

TEST(RoutedEngineTest, OverrideHeaderAndUnknownWorker) {
  Fleet f(RouterOptions{});
  cache(f.router, 2, seq(32));
  Collector c;
  auto r = request(1, seq(40), c);
  r.routing.instance_id = 3;
  ASSERT_TRUE(f.router.submit(std::move(r)).is_ok());
  EXPECT_EQ(f.owner_of_last(), 3u);
  auto bad = request(2, seq(40), c);
  bad.routing.instance_id = 0xdead;
  EXPECT_EQ(f.router.submit(std::move(bad)).code(), StatusCode::kNotFound);
  EXPECT_EQ(f.router.router_stats().overrides, 1u);
  // Duplicate caller ids are refused.
  EXPECT_EQ(f.router.submit(request(1, seq(8), c)).code(), StatusCode::kInvalidArgument);
}

TEST(RoutedEngineTest, RoundRobinRandomAndLeastLoaded) {
  RouterOptions o;
  o.mode = RouterMode::kRoundRobin;
  Fleet rr(o);
  Collector c;
  std::vector<uint64_t> order;
  for (uint64_t i = 1; i <= 6; ++i) {
    ASSERT_TRUE(rr.router.submit(request(i, seq(8), c)).is_ok());
    order.push_back(rr.owner_of_last());
  }
  EXPECT_EQ(order, (std::vector<uint64_t>{1, 2, 3, 1, 2, 3}));

  o.mode = RouterMode::kLeastLoaded;
  Fleet ll(o);
  std::map<uint64_t, int> n;
  for (uint64_t i = 1; i <= 6; ++i) {
    ASSERT_TRUE(ll.router.submit(request(i, seq(8), c)).is_ok());
    n[ll.owner_of_last()]++;
  }
  EXPECT_EQ(n, (std::map<uint64_t, int>{{1, 2}, {2, 2}, {3, 2}}));

  o.mode = RouterMode::kRandom;
  Fleet rnd(o);
  std::map<uint64_t, int> m;
  for (uint64_t i = 1; i <= 300; ++i) {
    ASSERT_TRUE(rnd.router.submit(request(i, seq(8), c)).is_ok());
    m[rnd.owner_of_last()]++;
  }
  ASSERT_EQ(m.size(), 3u);
  for (auto& [id, k] : m) EXPECT_GT(k, 60) << id;
}

TEST(RoutedEngineTest, MigratesAStreamWhenTheWorkerIsLost) {
  Fleet f(RouterOptions{}, 2);
  cache(f.router, 1, seq(16));
  Collector c;
  auto r = request(7, seq(16), c, /*max_tokens=*/10);
  r.params.min_tokens = 5;
  ASSERT_TRUE(f.router.submit(std::move(r)).is_ok());
  ASSERT_EQ(f.workers[1]->count(), 1u);
  f.workers[1]->emit(0, {100, 101, 102});
  f.workers[1]->emit(0, {}, FinishReason::kError, {StatusCode::kUnavailable, "worker lost"});
  // Re-submitted to worker 2 with the generated tokens appended and the limits reduced.
  ASSERT_EQ(f.workers[2]->count(), 1u);
  EngineRequest& again = f.workers[2]->last();
  std::vector<int32_t> want = seq(16);
  want.insert(want.end(), {100, 101, 102});
  EXPECT_EQ(again.prompt, want);
  EXPECT_EQ(again.params.max_tokens, 7);
  EXPECT_EQ(again.params.min_tokens, 2);
  EXPECT_FALSE(c.finished());
  f.workers[2]->emit(0, {103});
  f.workers[2]->emit(0, {104}, FinishReason::kStop);
  EXPECT_EQ(c.tokens(), (std::vector<int32_t>{100, 101, 102, 103, 104}));
  ASSERT_TRUE(c.finished());
  EXPECT_EQ(c.outputs.back().completion_tokens, 5);
  EXPECT_EQ(c.outputs.back().prompt_tokens, 16);
  EXPECT_EQ(c.outputs.back().finish, FinishReason::kStop);
  int finals = 0;
  for (const auto& o : c.outputs) finals += o.finish != FinishReason::kNone;
  EXPECT_EQ(finals, 1);
  EXPECT_EQ(f.router.router_stats().migrations, 1u);
  // Late outputs of the lost attempt are ignored.
  f.workers[1]->emit(0, {999});
  EXPECT_EQ(c.tokens().size(), 5u);
}

TEST(RoutedEngineTest, MigrationWithNoWorkerLeftEndsWithAClearError) {
  Fleet f(RouterOptions{}, 2);
  Collector c;
  ASSERT_TRUE(f.router.submit(request(1, seq(8), c)).is_ok());
  const uint64_t first = f.owner_of_last();
  const uint64_t other = first == 1 ? 2 : 1;
  f.workers[first]->emit(0, {1});
  f.workers[first]->emit(0, {}, FinishReason::kError, {StatusCode::kUnavailable, "lost"});
  ASSERT_EQ(f.workers[other]->count(), 1u);
  f.workers[other]->emit(0, {}, FinishReason::kError, {StatusCode::kUnavailable, "lost too"});
  ASSERT_TRUE(c.finished());
  EXPECT_EQ(c.outputs.back().finish, FinishReason::kError);
  EXPECT_EQ(c.outputs.back().error.code(), StatusCode::kUnavailable);
  EXPECT_NE(c.outputs.back().error.message().find("no other worker"), std::string::npos);
  EXPECT_EQ(c.outputs.back().completion_tokens, 1);
  EXPECT_EQ(f.router.router_stats().migration_failures, 1u);
}

TEST(RoutedEngineTest, OtherErrorsAndTheMigrationLimitAreFinal) {
  RouterOptions o;
  o.migration_limit = 1;
  Fleet f(o, 3);
  Collector c;
  ASSERT_TRUE(f.router.submit(request(1, seq(8), c)).is_ok());
  uint64_t w = f.owner_of_last();
  f.workers[w]->emit(0, {}, FinishReason::kError, {StatusCode::kUnavailable, "lost"});
  w = f.owner_of_last();
  f.workers[w]->emit(f.workers[w]->count() - 1, {}, FinishReason::kError,
                     {StatusCode::kUnavailable, "lost"});
  ASSERT_TRUE(c.finished());
  EXPECT_NE(c.outputs.back().error.message().find("migration limit"), std::string::npos);

  Collector d;
  ASSERT_TRUE(f.router.submit(request(2, seq(8), d)).is_ok());
  w = f.owner_of_last();
  f.workers[w]->emit(f.workers[w]->count() - 1, {}, FinishReason::kError,
                     {StatusCode::kInternal, "kernel failed"});
  ASSERT_TRUE(d.finished());
  EXPECT_EQ(d.outputs.back().error.code(), StatusCode::kInternal);
  EXPECT_EQ(f.router.router_stats().migrations, 1u);
}

TEST(RoutedEngineTest, RemovingAWorkerMigratesItsRequestsAndCancelForwards) {
  Fleet f(RouterOptions{}, 2);
  cache(f.router, 1, seq(16));
  Collector c;
  ASSERT_TRUE(f.router.submit(request(1, seq(16), c)).is_ok());
  ASSERT_EQ(f.workers[1]->count(), 1u);
  const uint64_t attempt = f.workers[1]->last().id;
  f.workers[1]->emit(0, {42});
  f.router.remove_worker(1);
  EXPECT_EQ(f.router.worker_ids(), (std::vector<uint64_t>{2}));
  EXPECT_EQ(f.workers[1]->cancelled, (std::vector<uint64_t>{attempt}));
  ASSERT_EQ(f.workers[2]->count(), 1u);
  EXPECT_EQ(f.workers[2]->last().prompt.back(), 42);
  EXPECT_EQ(f.router.router_stats().indexer.indexed_blocks, 0u);
  f.router.cancel(1);
  EXPECT_EQ(f.workers[2]->cancelled, (std::vector<uint64_t>{f.workers[2]->last().id}));
  f.workers[2]->emit(0, {}, FinishReason::kCancelled);
  EXPECT_EQ(c.outputs.back().finish, FinishReason::kCancelled);
  EXPECT_EQ(c.tokens(), (std::vector<int32_t>{42}));
}

TEST(ApproxIndexerTest, RecordsDecisionsUntilTheTtlRunsOut) {
  KvIndexer idx;
  ApproxIndexer approx(120);
  const auto a = kv::block_hashes(seq(16), kBs);
  const auto ab = kv::block_hashes(seq(24), kBs);
  approx.record(idx, 1, a, 0.0);
  approx.record(idx, 2, ab, 50.0);
  auto m = idx.find_matches(ab.local);
  EXPECT_EQ(m.size(), 2u);
  approx.expire(idx, 119.0);
  EXPECT_EQ(idx.find_matches(a.local).size(), 2u);
  approx.expire(idx, 120.0);  // worker 1's entries expire
  m = idx.find_matches(ab.local);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].worker_id, 2u);
  EXPECT_EQ(m[0].blocks, 6u);
  // Routing the prefix again to worker 2 refreshes its first 4 blocks only.
  approx.record(idx, 2, a, 100.0);
  approx.expire(idx, 170.0);
  m = idx.find_matches(ab.local);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].blocks, 4u);
  approx.expire(idx, 220.0);
  EXPECT_TRUE(idx.find_matches(ab.local).empty());
  EXPECT_EQ(idx.stats().nodes, 0u);
}

TEST(RoutedEngineTest, ApproximateModeRoutesRepeatsToTheSameWorker) {
  RouterOptions o;
  o.use_kv_events = false;
  Fleet f(o, 4);
  Collector c;
  ASSERT_TRUE(f.router.submit(request(1, seq(64), c)).is_ok());
  const uint64_t first = f.owner_of_last();
  f.workers[first]->emit(0, {1}, FinishReason::kLength);
  ASSERT_TRUE(f.router.submit(request(2, seq(64), c)).is_ok());
  EXPECT_EQ(f.owner_of_last(), first);
  EXPECT_EQ(f.router.router_stats().hit_blocks, 16u);
}

// Two mock workers with real KV events: a repeated prefix goes back to the worker that has it.
TEST(RoutedEngineTest, InProcessMockWorkersWithKvEvents) {
  RoutedEngine router(RouterOptions{});
  for (uint64_t id : {11, 22}) {
    mock::MockEngineOptions mo;
    mo.n_vocab = 1000;
    mo.block_size = kBs;
    mo.num_blocks = 256;
    mo.speedup = 100;
    mo.kv_event_sink = std::make_shared<RouterKvEventSink>(&router, id);
    router.add_worker({id, kBs, mo.num_blocks}, std::make_shared<mock::MockEngine>(mo));
  }
  Collector a;
  ASSERT_TRUE(router.submit(request(1, seq(64), a, 4)).is_ok());
  ASSERT_TRUE(a.wait_finished());
  auto s = router.router_stats();
  uint64_t owner = 0;
  for (const auto& w : s.workers)
    if (w.routed == 1) owner = w.instance_id;
  ASSERT_NE(owner, 0u);
  EXPECT_GE(s.indexer.indexed_blocks, 16u);
  for (uint64_t i = 2; i <= 4; ++i) {
    std::vector<int32_t> p = seq(64);
    p.push_back(static_cast<int32_t>(500 + i));
    Collector b;
    ASSERT_TRUE(router.submit(request(i, p, b, 2)).is_ok());
    ASSERT_TRUE(b.wait_finished());
    EXPECT_GT(b.outputs.back().cached_tokens, 0);
  }
  s = router.router_stats();
  for (const auto& w : s.workers) EXPECT_EQ(w.routed, w.instance_id == owner ? 4u : 0u);
  EXPECT_EQ(s.hit_blocks, 3u * 16u);
  router.shutdown();
}

}  // namespace
}  // namespace turbine::router

namespace turbine::router {
namespace {

// The choices of one prompt (prompt_group) go to one worker, which computes the prompt once;
// the group is forgotten when its last request ends.
TEST(RoutedEngineTest, PromptGroupsStayOnOneWorker) {
  RouterOptions o;
  o.mode = RouterMode::kRoundRobin;
  Fleet f(o);
  Collector c;
  std::vector<uint64_t> owners;
  for (uint64_t i = 1; i <= 4; ++i) {
    EngineRequest r = request(i, seq(12), c);
    r.params.prompt_group = 77;
    ASSERT_TRUE(f.router.submit(std::move(r)).is_ok());
    owners.push_back(f.owner_of_last());
  }
  EXPECT_EQ(owners, (std::vector<uint64_t>{1, 1, 1, 1}));
  EXPECT_EQ(f.workers[1]->last().params.prompt_group, 77u);      // the engine sees the group
  ASSERT_TRUE(f.router.submit(request(5, seq(12), c)).is_ok());  // no group: round robin
  EXPECT_EQ(f.owner_of_last(), 2u);
  for (size_t i = 0; i < 4; ++i) f.workers[1]->emit(i, {1}, FinishReason::kLength);
  EngineRequest again = request(6, seq(12), c);
  again.params.prompt_group = 77;
  ASSERT_TRUE(f.router.submit(std::move(again)).is_ok());
  EXPECT_EQ(f.owner_of_last(), 3u);  // the old group ended: routed afresh
}

}  // namespace
}  // namespace turbine::router
