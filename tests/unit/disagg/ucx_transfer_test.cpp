// The UCX KV transport (runtime/kv_transfer_ucx.h) over loopback (UCX_TLS=tcp unless the
// environment says otherwise): multi-chunk pulls reassemble the exact bytes, release unpins, an
// unknown transfer is NotFound, a dead server is an error (not a hang), ucx:// addresses are
// dispatched to UCX and the rest to TCP, and stories260K greedy outputs are identical between
// aggregated serving and disaggregated serving whose KV moves over UCX. Skips (with the reason)
// when UCX is not built in or cannot initialise on this machine.
#include <gtest/gtest.h>

#include <cstdlib>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "disagg/disagg_engine.h"
#include "disagg_test_util.h"
#include "router/routed_engine.h"
#include "runtime/io_threads.h"
#include "runtime/kv_transfer_tcp.h"
#include "runtime/kv_transfer_ucx.h"
#include "runtime/request_plane.h"
#include "test_support/missing_dependency.h"

namespace turbine::disagg {
namespace {

using namespace testing;  // NOLINT
using engine::FinishReason;
using runtime::UcxKvServer;
using runtime::UcxKvTransfer;
using runtime::UcxKvTransferOptions;

constexpr int kBlocks = 20;
constexpr int64_t kBlockBytes = 100'003;  // odd: chunks split at unaligned offsets

// Transfer 7 of kBlocks blocks; byte i of block b is (b * 131 + i) % 251. Records releases.
// Transfer 9 never answers (its callbacks are parked, answered at destruction).
class PatternSource final : public engine::KvTransferSource {
 public:
  ~PatternSource() override {
    for (auto& cb : parked_) cb(Status{StatusCode::kUnavailable, "gone"});
  }
  void read_transfer(uint64_t id, int first, int n, engine::KvBytesCallback done) override {
    if (id == 9) {
      std::lock_guard lock(mu_);
      parked_.push_back(std::move(done));
      return;
    }
    if (id != 7 || first < 0 || n < 0 || first + n > kBlocks)
      return done(Status{StatusCode::kNotFound, "no such transfer"});
    done(expected(first, n));
  }
  void release_transfer(uint64_t id) override {
    std::lock_guard lock(mu_);
    released_.push_back(id);
  }
  engine::KvLayout kv_layout() const override { return {"f32", 16, 1, 1, 1, kBlockBytes}; }
  std::vector<uint64_t> released() const {
    std::lock_guard lock(mu_);
    return released_;
  }
  static std::string expected(int first, int n) {
    std::string s;
    for (int b = first; b < first + n; ++b)
      for (int64_t i = 0; i < kBlockBytes; ++i) s.push_back(static_cast<char>((b * 131 + i) % 251));
    return s;
  }

 private:
  mutable std::mutex mu_;
  std::vector<uint64_t> released_;
  std::vector<engine::KvBytesCallback> parked_;
};

// UCX on loopback, or the reason it cannot run here.
Status ucx_usable() {
  ::setenv("UCX_TLS", "tcp", 0);  // loopback between two workers of one process
  if (!runtime::ucx_built()) return unimplemented("built without UCX (libucx-dev)");
  auto t = UcxKvTransfer::create();
  if (!t.has_value()) return t.status();
  return Status::ok();
}

#define REQUIRE_UCX()                                                                   \
  do {                                                                                  \
    if (Status ucx_st = ucx_usable(); !ucx_st.is_ok())                                  \
      TURBINE_MISSING_DEPENDENCY("UCX cannot initialise here: " << ucx_st.to_string()); \
  } while (0)

Result<std::string> fetch(engine::KvTransfer& t, const engine::KvTransferMeta& m, int first, int n,
                          std::chrono::seconds limit = std::chrono::seconds(15)) {
  std::promise<Result<std::string>> p;
  t.fetch(m, first, n, [&](Result<std::string> r) { p.set_value(std::move(r)); });
  auto f = p.get_future();
  if (f.wait_for(limit) != std::future_status::ready)
    return Status{StatusCode::kInternal, "no answer in time"};
  return f.get();
}

engine::KvTransferMeta meta_for(uint16_t port, uint64_t transfer_id = 7) {
  engine::KvTransferMeta m;
  m.transfer_id = transfer_id;
  m.address = "ucx://127.0.0.1:" + std::to_string(port);
  m.layout = PatternSource().kv_layout();
  return m;
}

TEST(UcxKvTransferTest, MultiChunkPullsReassembleTheExactBytes) {
  REQUIRE_UCX();
  auto source = std::make_shared<PatternSource>();
  auto server = UcxKvServer::start(source, {"127.0.0.1", 0, ""});
  ASSERT_TRUE(server.has_value()) << server.status().to_string();
  ASSERT_GT((*server)->port(), 0);
  UcxKvTransferOptions o;
  o.max_pull_bytes = 3 * kBlockBytes;  // 3 blocks per reply, 2 in flight
  auto t = UcxKvTransfer::create(o);
  ASSERT_TRUE(t.has_value()) << t.status().to_string();
  const auto m = meta_for((*server)->port());
  for (auto [first, n] : {std::pair{0, kBlocks}, std::pair{5, 7}, std::pair{19, 1}}) {
    auto got = fetch(**t, m, first, n);
    ASSERT_TRUE(got.has_value()) << got.status().to_string();
    ASSERT_EQ(got->size(), static_cast<size_t>(n * kBlockBytes));
    EXPECT_TRUE(*got == PatternSource::expected(first, n)) << "blocks " << first << "+" << n;
  }
  // Several fetches at once share the cached endpoint.
  std::vector<std::future<Result<std::string>>> futs;
  for (int i = 0; i < 4; ++i)
    futs.push_back(std::async(std::launch::async, [&, i] { return fetch(**t, m, i, 10); }));
  for (int i = 0; i < 4; ++i) {
    auto got = futs[i].get();
    ASSERT_TRUE(got.has_value()) << got.status().to_string();
    EXPECT_TRUE(*got == PatternSource::expected(i, 10));
  }
  const auto s = (*t)->stats();
  EXPECT_EQ(s.fetches, 7u);
  EXPECT_EQ(s.failures, 0u);
  EXPECT_EQ(s.bytes, static_cast<uint64_t>((kBlocks + 7 + 1 + 40) * kBlockBytes));
  EXPECT_EQ(s.connects, 1u);
}

TEST(UcxKvTransferTest, ReleaseUnpinsAndUnknownTransferIsNotFound) {
  REQUIRE_UCX();
  auto source = std::make_shared<PatternSource>();
  auto server = UcxKvServer::start(source, {"127.0.0.1", 0, ""});
  ASSERT_TRUE(server.has_value()) << server.status().to_string();
  auto t = UcxKvTransfer::create();
  ASSERT_TRUE(t.has_value()) << t.status().to_string();
  auto unknown = fetch(**t, meta_for((*server)->port(), 8), 0, 2);
  ASSERT_FALSE(unknown.has_value());
  EXPECT_EQ(unknown.status().code(), StatusCode::kNotFound) << unknown.status().to_string();
  EXPECT_EQ((*t)->stats().failures, 1u);
  (*t)->release(meta_for((*server)->port(), 7));
  EXPECT_TRUE(eventually([&] { return source->released() == std::vector<uint64_t>{7}; }));
}

// The UCX listener refuses pullers without the request-plane token (issue 18, item 9).
TEST(UcxKvTransferTest, PullersWithoutTheTokenAreRefused) {
  REQUIRE_UCX();
  auto source = std::make_shared<PatternSource>();
  auto server = UcxKvServer::start(source, {"127.0.0.1", 0, "kv-token"});
  ASSERT_TRUE(server.has_value()) << server.status().to_string();
  const auto m = meta_for((*server)->port());
  for (const char* token : {"", "other"}) {
    UcxKvTransferOptions o;
    o.token = token;
    auto t = UcxKvTransfer::create(o);
    ASSERT_TRUE(t.has_value()) << t.status().to_string();
    auto got = fetch(**t, m, 0, 2);
    ASSERT_FALSE(got.has_value()) << "token `" << token << "` was served";
    EXPECT_EQ(got.status().code(), StatusCode::kUnauthenticated) << got.status().to_string();
  }
  UcxKvTransferOptions o;
  o.token = "kv-token";
  auto t = UcxKvTransfer::create(o);
  ASSERT_TRUE(t.has_value()) << t.status().to_string();
  auto got = fetch(**t, m, 0, 2);
  ASSERT_TRUE(got.has_value()) << got.status().to_string();
  EXPECT_TRUE(*got == PatternSource::expected(0, 2));
}

TEST(UcxKvTransferTest, DeadServerIsAnErrorNotAHang) {
  REQUIRE_UCX();
  auto source = std::make_shared<PatternSource>();
  auto server = UcxKvServer::start(source, {"127.0.0.1", 0, ""});
  ASSERT_TRUE(server.has_value()) << server.status().to_string();
  const auto m = meta_for((*server)->port());
  UcxKvTransferOptions o;
  o.timeout = std::chrono::milliseconds(3000);
  auto t = UcxKvTransfer::create(o);
  ASSERT_TRUE(t.has_value()) << t.status().to_string();
  ASSERT_TRUE(fetch(**t, m, 0, 2).has_value());
  {
    // A source that never answers: the fetch times out (and a late answer is dropped).
    UcxKvTransferOptions quick;
    quick.timeout = std::chrono::milliseconds(300);
    auto q = UcxKvTransfer::create(quick);
    ASSERT_TRUE(q.has_value()) << q.status().to_string();
    auto hung = fetch(**q, meta_for((*server)->port(), 9), 0, 1, std::chrono::seconds(10));
    ASSERT_FALSE(hung.has_value());
    EXPECT_NE(hung.status().message().find("timed out"), std::string::npos)
        << hung.status().to_string();
  }
  server->reset();  // the server goes away; the client's cached endpoint now points at nothing
  const auto t0 = std::chrono::steady_clock::now();
  auto got = fetch(**t, m, 0, 2, std::chrono::seconds(10));
  ASSERT_FALSE(got.has_value());
  EXPECT_EQ(got.status().code(), StatusCode::kUnavailable) << got.status().to_string();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  // A port nobody listens on.
  auto never = fetch(**t, meta_for(1), 0, 1, std::chrono::seconds(10));
  ASSERT_FALSE(never.has_value());
  EXPECT_EQ(never.status().code(), StatusCode::kUnavailable) << never.status().to_string();
  EXPECT_GE((*t)->stats().failures, 2u);
}

TEST(UcxKvTransferTest, DispatchSendsUcxAddressesToUcxAndTheRestToTcp) {
  REQUIRE_UCX();
  auto source = std::make_shared<PatternSource>();
  auto server = UcxKvServer::start(source, {"127.0.0.1", 0, ""});
  ASSERT_TRUE(server.has_value()) << server.status().to_string();
  auto tcp = std::make_shared<runtime::TcpKvTransfer>();
  runtime::DispatchKvTransfer d(tcp);
  auto got = fetch(d, meta_for((*server)->port()), 2, 3);
  ASSERT_TRUE(got.has_value()) << got.status().to_string();
  EXPECT_TRUE(*got == PatternSource::expected(2, 3));
  auto plain = meta_for(1);
  plain.address = "127.0.0.1:1";  // TCP, nobody there
  EXPECT_FALSE(fetch(d, plain, 0, 1).has_value());
  EXPECT_EQ(tcp->stats().failures, 1u);
  // Counters per transport: the UCX success and the TCP failure, each under its own name.
  const auto per = d.transport_stats();
  ASSERT_EQ(per.size(), 2u);
  EXPECT_EQ(per[0].transport, "tcp");
  EXPECT_EQ(per[0].fetches, 1u);
  EXPECT_EQ(per[0].failures, 1u);
  EXPECT_EQ(per[1].transport, "ucx");
  EXPECT_EQ(per[1].fetches, 1u);
  EXPECT_EQ(per[1].failures, 0u);
  EXPECT_EQ(per[1].bytes, PatternSource::expected(2, 3).size());
  EXPECT_EQ(runtime::ucx_host_port("ucx://h:5").value_or(""), "h:5");
  EXPECT_FALSE(runtime::ucx_host_port("h:5").has_value());
}

// Disaggregated serving with the prefill worker's KV served over UCX: a WorkerServer for requests
// (stamping ucx:// addresses) plus a UcxKvServer; the decode worker pulls through a dispatcher.
struct Worker {
  std::shared_ptr<engine::Engine> engine;
  std::unique_ptr<runtime::WorkerServer> server;
  std::unique_ptr<UcxKvServer> ucx;
  std::shared_ptr<runtime::RemoteEngine> remote;

  Worker(uint64_t instance_id, std::shared_ptr<engine::KvTransfer> transfer, bool serve_ucx,
         boost::asio::any_io_executor frontend_executor) {
    EngineSetup s;
    s.instance_id = instance_id;
    s.transfer = std::move(transfer);
    s.max_num_seqs = 8;
    engine = make_engine(s);
    runtime::WorkerServerOptions wo;
    wo.host = "127.0.0.1";
    server = std::make_unique<runtime::WorkerServer>(wo, engine);
    server->set_kv_source(engine, "127.0.0.1");
    if (serve_ucx) {
      auto u = UcxKvServer::start(engine, {"127.0.0.1", 0, ""});
      EXPECT_TRUE(u.has_value()) << u.status().to_string();
      if (u.has_value()) {
        ucx = std::move(u).value();
        server->set_kv_address("ucx://127.0.0.1:" + std::to_string(ucx->port()));
      }
    }
    EXPECT_TRUE(server->start().is_ok());
    runtime::RemoteEngineOptions ro;
    ro.address = "127.0.0.1:" + std::to_string(server->port());
    ro.max_context = engine->max_context();
    ro.block_size = engine->block_size();
    ro.num_slots = engine->num_slots();
    ro.kv_total_blocks = engine->stats().kv_total_blocks;
    remote = std::make_shared<runtime::RemoteEngine>(ro, frontend_executor);
  }
  ~Worker() {
    server->stop();
    if (ucx) ucx->stop();
    engine->shutdown();
  }
};

TEST(UcxDisaggTest, GreedyOutputsMatchAggregated) {
  REQUIRE_STORIES();
  REQUIRE_UCX();
  const int kMax = 24;
  const std::vector<std::vector<int32_t>> expected = aggregated_outputs(kMax);
  runtime::IoThreads frontend_io{1};
  auto made = UcxKvTransfer::create();
  ASSERT_TRUE(made.has_value()) << made.status().to_string();
  std::shared_ptr<UcxKvTransfer> ucx = std::move(made).value();
  Worker prefill(0x11, nullptr, true, frontend_io.executor());
  Worker decode(0x22, ucx, false, frontend_io.executor());
  auto prefill_pool = std::make_shared<router::RoutedEngine>(router::RouterOptions{});
  prefill_pool->add_worker({0x11, 16, prefill.engine->stats().kv_total_blocks}, prefill.remote);
  auto decode_pool = std::make_shared<router::RoutedEngine>(router::RouterOptions{});
  decode_pool->add_worker({0x22, 16, decode.engine->stats().kv_total_blocks}, decode.remote);
  DisaggOptions o;
  o.max_local_prefill_length = 0;
  o.max_inflight_prefills = 64;
  // The frontend releases transfers it does not continue with: ucx:// through the dispatcher.
  auto frontend_transfer =
      std::make_shared<runtime::DispatchKvTransfer>(std::make_shared<runtime::TcpKvTransfer>());
  DisaggEngine engine(o, prefill_pool, decode_pool, frontend_transfer);

  const auto prompts = prompt_suite();
  std::vector<std::future<Collected>> futs;
  uint64_t id = 1;
  for (const auto& p : prompts) futs.push_back(submit(engine, id++, p, greedy(kMax)));
  for (size_t i = 0; i < prompts.size(); ++i) {
    Collected c = wait(std::move(futs[i]));
    EXPECT_EQ(c.finish, FinishReason::kLength) << c.error.to_string();
    EXPECT_EQ(c.tokens, expected[i]) << "prompt " << i;
  }
  const auto s = decode.engine->stats();
  EXPECT_EQ(s.kv_imports, prompts.size());
  EXPECT_EQ(s.kv_import_fallbacks, 0u);
  const auto u = ucx->stats();
  EXPECT_EQ(u.failures, 0u);
  EXPECT_GT(u.bytes, 0u);
  EXPECT_EQ(u.bytes, s.kv_import_bytes);
  ASSERT_EQ(s.kv_transports.size(), 1u);
  EXPECT_EQ(s.kv_transports[0].transport, "ucx");
  EXPECT_EQ(s.kv_transports[0].bytes, u.bytes);
  EXPECT_TRUE(eventually([&] { return prefill.engine->stats().kv_used_blocks == 0; }));
  EXPECT_TRUE(eventually([&] { return decode.engine->stats().kv_used_blocks == 0; }));
  engine.shutdown();
}

}  // namespace
}  // namespace turbine::disagg
