// runtime::TcpKvTransfer against a WorkerServer with a KvTransferSource of known bytes:
// pipelined pulls reassemble the exact bytes, connections are reused, a pooled connection whose
// server went away is replaced once, an unknown transfer is an error.
#include <gtest/gtest.h>

#include <future>
#include <memory>
#include <string>

#include "runtime/kv_transfer_tcp.h"
#include "runtime/request_plane.h"

namespace turbine::runtime {
namespace {

constexpr int kBlocks = 20;
constexpr int64_t kBlockBytes = 100'003;  // odd: frames split blocks at unaligned offsets

// Transfer 7 of kBlocks blocks; byte i of block b is (b * 131 + i) % 251.
class PatternSource final : public engine::KvTransferSource {
 public:
  void read_transfer(uint64_t id, int first, int n, engine::KvBytesCallback done) override {
    if (id != 7 || first < 0 || n < 0 || first + n > kBlocks)
      return done(Status{StatusCode::kNotFound, "no such transfer"});
    done(expected(first, n));
  }
  void release_transfer(uint64_t) override {}
  engine::KvLayout kv_layout() const override { return {"f32", 16, 1, 1, 1, kBlockBytes}; }
  static std::string expected(int first, int n) {
    std::string s;
    for (int b = first; b < first + n; ++b)
      for (int64_t i = 0; i < kBlockBytes; ++i) s.push_back(static_cast<char>((b * 131 + i) % 251));
    return s;
  }
};

class NoEngine final : public engine::AsyncEngine {
 public:
  Status submit(engine::EngineRequest) override { return unimplemented("KV only"); }
  void cancel(uint64_t) override {}
  void shutdown() override {}
  engine::EngineStats stats() const override { return {}; }
  int max_context() const override { return 64; }
  int num_slots() const override { return 1; }
  int block_size() const override { return 16; }
};

std::unique_ptr<WorkerServer> serve(uint16_t port, std::string token = "") {
  WorkerServerOptions o;
  o.host = "127.0.0.1";
  o.port = port;
  o.token = std::move(token);
  auto s = std::make_unique<WorkerServer>(o, std::make_shared<NoEngine>());
  s->set_kv_source(std::make_shared<PatternSource>(), "127.0.0.1");
  EXPECT_TRUE(s->start().is_ok());
  return s;
}

Result<std::string> fetch(TcpKvTransfer& t, const engine::KvTransferMeta& m, int first, int n) {
  std::promise<Result<std::string>> p;
  t.fetch(m, first, n, [&](Result<std::string> r) { p.set_value(std::move(r)); });
  auto f = p.get_future();
  if (f.wait_for(std::chrono::seconds(20)) != std::future_status::ready)
    return Status{StatusCode::kInternal, "no answer within 20 s"};
  return f.get();
}

TEST(TcpKvTransferTest, PipelinedPullsReuseOneConnectionAndSurviveAServerRestart) {
  auto server = serve(0);
  const uint16_t port = server->port();
  engine::KvTransferMeta m;
  m.transfer_id = 7;
  m.address = "127.0.0.1:" + std::to_string(port);
  m.layout = PatternSource().kv_layout();
  TcpKvTransferOptions o;
  o.max_pull_bytes = 3 * kBlockBytes;  // 3 blocks per frame, 2 frames in flight
  TcpKvTransfer t(o);

  for (auto [first, n] : {std::pair{0, kBlocks}, std::pair{5, 7}, std::pair{19, 1}}) {
    auto got = fetch(t, m, first, n);
    ASSERT_TRUE(got.has_value()) << got.status().to_string();
    EXPECT_TRUE(*got == PatternSource::expected(first, n)) << "blocks " << first << "+" << n;
  }
  EXPECT_EQ(t.stats().connects, 1u);  // one connection for all three fetches
  EXPECT_EQ(t.stats().fetches, 3u);

  auto bad = fetch(
      t,
      [&] {
        auto x = m;
        x.transfer_id = 8;
        return x;
      }(),
      0, 1);
  EXPECT_EQ(bad.status().code(), StatusCode::kNotFound);

  // The server goes away and comes back on the same port: the pooled connection is dead, the
  // fetch opens a new one once and succeeds.
  server->stop();
  server.reset();
  server = serve(port);
  const uint64_t connects = t.stats().connects;
  auto again = fetch(t, m, 2, 4);
  ASSERT_TRUE(again.has_value()) << again.status().to_string();
  EXPECT_TRUE(*again == PatternSource::expected(2, 4));
  EXPECT_EQ(t.stats().connects, connects + 1);

  // No server at all: an error, not a hang.
  server->stop();
  server.reset();
  auto gone = fetch(t, m, 0, 1);
  EXPECT_EQ(gone.status().code(), StatusCode::kUnavailable);
}

// KV pulls share the request plane's port and its token (issue 18, item 9).
TEST(TcpKvTransferTest, PullsNeedTheRequestPlaneToken) {
  auto server = serve(0, "kv-token");
  engine::KvTransferMeta m;
  m.transfer_id = 7;
  m.address = "127.0.0.1:" + std::to_string(server->port());
  m.layout = PatternSource().kv_layout();
  TcpKvTransferOptions wrong;
  wrong.token = "other";
  TcpKvTransfer bad(wrong);
  auto refused = fetch(bad, m, 0, 2);
  ASSERT_FALSE(refused.has_value());
  EXPECT_NE(refused.status().message().find("token"), std::string::npos)
      << refused.status().to_string();
  TcpKvTransferOptions right;
  right.token = "kv-token";
  TcpKvTransfer good(right);
  auto got = fetch(good, m, 0, 2);
  ASSERT_TRUE(got.has_value()) << got.status().to_string();
  EXPECT_TRUE(*got == PatternSource::expected(0, 2));
}

}  // namespace
}  // namespace turbine::runtime
