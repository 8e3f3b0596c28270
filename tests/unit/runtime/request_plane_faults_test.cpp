// The TCP request plane against peers that misbehave (issue 18): clients without the shared token,
// first frames that are not a Hello, and a worker that keeps its socket but stops answering (what
// SIGSTOP or a wedged GPU look like from the frontend). No model: a fake engine answers.
#include <sys/socket.h>

#include <gtest/gtest.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <future>
#include <mutex>
#include <thread>

#include "router/routed_engine.h"
#include "runtime/io_threads.h"
#include "runtime/request_plane.h"
#include "runtime/wire.h"

namespace turbine::runtime {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

// Answers every request with tokens 1..max_tokens from its own thread (never inside submit()).
class FakeEngine final : public engine::AsyncEngine {
 public:
  FakeEngine() : thread_([this] { loop(); }) {}
  ~FakeEngine() override {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  Status submit(engine::EngineRequest r) override {
    submits++;
    {
      std::lock_guard lock(mu_);
      queue_.push_back(std::move(r));
    }
    cv_.notify_all();
    return Status::ok();
  }
  void cancel(uint64_t) override {}
  void shutdown() override {}
  engine::EngineStats stats() const override { return {}; }
  int max_context() const override { return 1024; }
  int num_slots() const override { return 8; }
  int block_size() const override { return 16; }

  std::atomic<int> submits{0};

 private:
  void loop() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      engine::EngineRequest r = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      engine::EngineOutput out;
      for (int i = 1; i <= r.params.max_tokens; ++i) out.tokens.push_back({i, -0.5f, {}});
      out.finish = engine::FinishReason::kLength;
      out.prompt_tokens = static_cast<int>(r.prompt.size());
      out.completion_tokens = r.params.max_tokens;
      r.on_output(std::move(out));
      lock.lock();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<engine::EngineRequest> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

struct Result1 {
  engine::FinishReason finish = engine::FinishReason::kNone;
  Status error;
  std::vector<int32_t> tokens;
};

std::future<Result1> run(engine::AsyncEngine& e, uint64_t id, int max_tokens,
                         Status* submit = nullptr) {
  auto promise = std::make_shared<std::promise<Result1>>();
  auto acc = std::make_shared<Result1>();
  auto fut = promise->get_future();
  engine::EngineRequest r;
  r.id = id;
  r.prompt = {1, 2, 3};
  r.params.max_tokens = max_tokens;
  r.params.temperature = 0;
  r.on_output = [promise, acc](engine::EngineOutput&& out) {
    for (const auto& t : out.tokens) acc->tokens.push_back(t.token);
    if (out.finish != engine::FinishReason::kNone) {
      acc->finish = out.finish;
      acc->error = out.error;
      promise->set_value(*acc);
    }
  };
  Status st = e.submit(std::move(r));
  if (submit) *submit = st;
  if (!st.is_ok()) {
    Result1 c;
    c.finish = engine::FinishReason::kError;
    c.error = st;
    promise->set_value(c);
  }
  return fut;
}

// A blocking raw client that speaks frames.
class RawPeer {
 public:
  explicit RawPeer(uint16_t port) : socket_(ioc_) {
    socket_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    struct timeval tv {
      3, 0
    };
    setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  void send(const std::string& bytes) { asio::write(socket_, asio::buffer(bytes)); }
  // Every frame until EOF (or a 3 s silence).
  std::vector<Frame> read_all(bool* eof = nullptr) {
    std::string buf;
    std::vector<Frame> frames;
    for (;;) {
      // recv(2) itself: Asio's blocking read polls again after SO_RCVTIMEO and never times out.
      char chunk[4096];
      const ssize_t n = ::recv(socket_.native_handle(), chunk, sizeof chunk, 0);
      if (n <= 0) {
        if (eof) *eof = n == 0 || errno == ECONNRESET;
        break;
      }
      buf.append(chunk, static_cast<size_t>(n));
      EXPECT_TRUE(take_frames(buf, frames).is_ok());
    }
    return frames;
  }

 private:
  asio::io_context ioc_;
  tcp::socket socket_;
};

std::string request_frame(uint64_t id) {
  RequestFrame r;
  r.id = id;
  r.prompt = {1, 2, 3};
  r.params.max_tokens = 4;
  std::string out;
  encode(r, out);
  return out;
}

struct Worker {
  explicit Worker(std::string token) {
    WorkerServerOptions o;
    o.host = "127.0.0.1";
    o.token = std::move(token);
    o.hello_timeout = 500ms;
    server = std::make_unique<WorkerServer>(o, engine);
    EXPECT_TRUE(server->start().is_ok());
  }
  ~Worker() { server->stop(); }
  std::string address() const { return "127.0.0.1:" + std::to_string(server->port()); }
  std::shared_ptr<FakeEngine> engine = std::make_shared<FakeEngine>();
  std::unique_ptr<WorkerServer> server;
};

TEST(RequestPlaneAuthTest, WrongOrMissingTokenGetsACloseAndRunsNothing) {
  Worker w("s3cret");
  for (const std::string& first : {[] {
                                     std::string s;
                                     encode(HelloFrame{"wrong"}, s);
                                     return s;
                                   }(),
                                   [] {
                                     std::string s;
                                     encode(HelloFrame{""}, s);
                                     return s;
                                   }(),
                                   std::string()}) {
    RawPeer p(w.server->port());
    p.send(first + request_frame(1));  // a request right behind the (bad or missing) Hello
    bool eof = false;
    const std::vector<Frame> frames = p.read_all(&eof);
    ASSERT_EQ(frames.size(), 1u);
    const auto* close = std::get_if<CloseFrame>(&frames[0]);
    ASSERT_NE(close, nullptr);
    EXPECT_EQ(close->status.code(), StatusCode::kUnauthenticated);
    EXPECT_TRUE(eof);
  }
  EXPECT_EQ(w.engine->submits.load(), 0);
}

TEST(RequestPlaneAuthTest, RightTokenIsServedAndPingsAreAnswered) {
  Worker w("s3cret");
  RawPeer p(w.server->port());
  std::string bytes;
  encode(HelloFrame{"s3cret"}, bytes);
  encode(PingFrame{42}, bytes);
  bytes += request_frame(7);
  p.send(bytes);
  std::string buf;
  std::vector<Frame> frames = p.read_all();
  bool pong = false, output = false;
  for (const Frame& f : frames) {
    if (const auto* po = std::get_if<PongFrame>(&f)) pong = po->nonce == 42;
    if (const auto* o = std::get_if<OutputFrame>(&f)) output = o->id == 7;
  }
  EXPECT_TRUE(pong);
  EXPECT_TRUE(output);
  EXPECT_EQ(w.engine->submits.load(), 1);
}

TEST(RequestPlaneAuthTest, OversizedFirstFrameAndSilentPeersAreDropped) {
  Worker w("s3cret");
  {
    RawPeer p(w.server->port());
    const uint32_t len = kMaxFrameBytes;  // what a 32 MiB frame announces
    p.send(std::string(reinterpret_cast<const char*>(&len), 4));
    bool eof = false;
    EXPECT_TRUE(p.read_all(&eof).empty());
    EXPECT_TRUE(eof) << "the server waited for a 32 MiB frame from an unauthenticated peer";
  }
  {
    RawPeer p(w.server->port());  // says nothing: closed after hello_timeout
    bool eof = false;
    EXPECT_TRUE(p.read_all(&eof).empty());
    EXPECT_TRUE(eof);
  }
}

TEST(RequestPlaneAuthTest, RemoteEngineWithAndWithoutTheToken) {
  Worker w("s3cret");
  IoThreads io(1);
  RemoteEngineOptions o;
  o.address = w.address();
  o.token = "s3cret";
  RemoteEngine good(o, io.executor());
  Result1 r = run(good, 1, 3).get();
  EXPECT_EQ(r.finish, engine::FinishReason::kLength) << r.error.to_string();
  EXPECT_EQ(r.tokens, (std::vector<int32_t>{1, 2, 3}));
  o.token = "";
  RemoteEngine bad(o, io.executor());
  r = run(bad, 2, 3).get();
  EXPECT_EQ(r.finish, engine::FinishReason::kError);
  EXPECT_EQ(r.error.code(), StatusCode::kUnavailable);
  EXPECT_NE(r.error.message().find("token"), std::string::npos) << r.error.message();
  good.shutdown();
  bad.shutdown();
  io.stop();
}

// A "worker" that accepts connections and reads everything, but answers nothing while hung (the
// kernel still completes connections to a SIGSTOPped process); awake, it answers Hellos silently,
// Pings with Pongs and requests with one token.
class HungWorker {
 public:
  HungWorker() : acceptor_(ioc_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { accept_loop(); });
  }
  ~HungWorker() {
    stopping_ = true;
    // shutdown(2) wakes the threads blocked in accept and read; close alone does not.
    ::shutdown(acceptor_.native_handle(), SHUT_RDWR);
    {
      std::lock_guard lock(mu_);
      for (auto& s : sockets_) ::shutdown(s->native_handle(), SHUT_RDWR);
    }
    thread_.join();
    for (auto& t : readers_) t.join();
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  std::atomic<bool> hung{true};
  std::atomic<int> connections{0};
  std::atomic<int> requests{0};  // request frames received, hung or not

 private:
  void accept_loop() {
    while (!stopping_) {
      auto s = std::make_shared<tcp::socket>(ioc_);
      boost::system::error_code ec;
      acceptor_.accept(*s, ec);
      if (ec) return;
      connections++;
      std::lock_guard lock(mu_);
      sockets_.push_back(s);
      readers_.emplace_back([this, s] { serve(s); });
    }
  }
  void serve(const std::shared_ptr<tcp::socket>& s) {
    std::string buf;
    for (;;) {
      char chunk[4096];
      boost::system::error_code ec;
      const size_t n = s->read_some(asio::buffer(chunk), ec);
      if (ec) return;
      buf.append(chunk, n);
      std::vector<Frame> frames;
      if (!take_frames(buf, frames).is_ok()) return;
      for (const Frame& f : frames) requests += std::holds_alternative<RequestFrame>(f) ? 1 : 0;
      if (hung) continue;
      std::string out;
      for (const Frame& f : frames) {
        if (const auto* p = std::get_if<PingFrame>(&f)) encode(PongFrame{p->nonce}, out);
        if (const auto* r = std::get_if<RequestFrame>(&f)) {
          OutputFrame o{r->id, {}};
          o.output.tokens.push_back({9, 0.0f, {}});
          o.output.finish = engine::FinishReason::kLength;
          encode(o, out);
        }
      }
      asio::write(*s, asio::buffer(out), ec);
    }
  }
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  std::vector<std::shared_ptr<tcp::socket>> sockets_;
  std::vector<std::thread> readers_;
  std::thread thread_;
};

RemoteEngineOptions silence_options(const std::string& address) {
  RemoteEngineOptions o;
  o.address = address;
  o.pool_size = 1;
  o.ping_interval = 50ms;
  o.silence_timeout = 400ms;
  o.connect_timeout = 500ms;
  return o;
}

TEST(RequestPlaneSilenceTest, AHungWorkerFailsItsRequestsAndIsRefusedUntilItAnswers) {
  HungWorker hung;
  IoThreads io(1);
  RemoteEngine remote(silence_options(hung.address()), io.executor());
  // The request hangs until the silence is noticed, then fails as unavailable (migratable).
  auto fut = run(remote, 1, 5);
  ASSERT_EQ(fut.wait_for(10s), std::future_status::ready) << "the request hung";
  Result1 r = fut.get();
  EXPECT_EQ(r.finish, engine::FinishReason::kError);
  EXPECT_EQ(r.error.code(), StatusCode::kUnavailable);
  EXPECT_NE(r.error.message().find("did not answer"), std::string::npos) << r.error.message();
  EXPECT_TRUE(remote.silent());
  // Nothing new goes to it: refused at submit, not queued behind a hung socket.
  Status st;
  r = run(remote, 2, 5, &st).get();
  EXPECT_EQ(st.code(), StatusCode::kUnavailable);
  // It keeps being probed; once it answers, it is used again.
  hung.hung = false;
  for (int i = 0; i < 200 && remote.silent(); ++i) std::this_thread::sleep_for(20ms);
  EXPECT_FALSE(remote.silent());
  EXPECT_GE(hung.connections.load(), 2) << "no probe reconnected";
  r = run(remote, 3, 5).get();
  EXPECT_EQ(r.finish, engine::FinishReason::kLength) << r.error.to_string();
  EXPECT_EQ(r.tokens, (std::vector<int32_t>{9}));
  remote.shutdown();
  io.stop();
}

TEST(RequestPlaneSilenceTest, TheRouterMovesRequestsOffAHungWorker) {
  HungWorker hung;
  Worker healthy("");
  IoThreads io(1);
  router::RouterOptions ro;
  ro.mode = router::RouterMode::kRoundRobin;
  router::RoutedEngine routed(ro);
  routed.add_worker({1, 16, 1000},
                    std::make_shared<RemoteEngine>(silence_options(hung.address()), io.executor()));
  routed.add_worker({2, 16, 1000}, std::make_shared<RemoteEngine>(
                                       silence_options(healthy.address()), io.executor()));
  std::vector<std::future<Result1>> futs;
  for (uint64_t id = 1; id <= 4; ++id) futs.push_back(run(routed, id, 6));
  for (auto& f : futs) {
    ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
    Result1 r = f.get();
    EXPECT_EQ(r.finish, engine::FinishReason::kLength) << r.error.to_string();
    EXPECT_EQ(r.tokens, (std::vector<int32_t>{1, 2, 3, 4, 5, 6}));
  }
  EXPECT_GE(routed.router_stats().migrations, 1u);
  // While it stays silent, new requests go to the healthy worker only.
  const int sent_to_hung = hung.requests.load();
  for (uint64_t id = 10; id < 14; ++id) {
    EXPECT_EQ(run(routed, id, 2).get().finish, engine::FinishReason::kLength);
  }
  EXPECT_EQ(hung.requests.load(), sent_to_hung);
  routed.shutdown();
  io.stop();
}

}  // namespace
}  // namespace turbine::runtime
