// The TCP request plane over loopback with the real engine on stories260K.
#include "runtime/request_plane.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <mutex>
#include <thread>

#include "engine/backend.h"
#include "engine/engine.h"
#include "model/model.h"
#include "runtime/io_threads.h"
#include "structured/compiler_registry.h"
#include "test_support/missing_dependency.h"
#include "tokenizer/tokenizer.h"

namespace turbine::runtime {
namespace {

std::filesystem::path model_path() {
  const char* env = std::getenv("TURBINE_SHARED");
  return std::filesystem::path(env ? env : TURBINE_SHARED_DEFAULT) /
         "models/stories260K/stories260K.gguf";
}

std::shared_ptr<engine::Engine> make_engine(const model::Model& m) {
  engine::CpuBackendOptions b;
  b.n_threads = 1;
  b.max_num_seqs = 16;
  auto backend = engine::make_cpu_backend(m, b);
  EXPECT_TRUE(backend.has_value());
  engine::EngineOptions o;
  o.max_num_seqs = 16;
  return std::make_shared<engine::Engine>(std::move(*backend), m.config().n_vocab, o);
}

struct Collected {
  std::vector<int32_t> tokens;
  std::vector<float> logprobs;
  engine::FinishReason finish = engine::FinishReason::kNone;
  Status error;
  int outputs = 0;
};

// Submits and returns a future of everything the request produced.
std::future<Collected> run(engine::AsyncEngine& e, uint64_t id, std::vector<int32_t> prompt,
                           engine::SamplingParams p) {
  auto promise = std::make_shared<std::promise<Collected>>();
  auto acc = std::make_shared<Collected>();
  auto fut = promise->get_future();
  engine::EngineRequest r;
  r.id = id;
  r.prompt = std::move(prompt);
  r.params = p;
  r.on_output = [promise, acc](engine::EngineOutput&& out) {
    acc->outputs++;
    for (const auto& t : out.tokens) {
      acc->tokens.push_back(t.token);
      acc->logprobs.push_back(t.logprob);
    }
    if (out.finish != engine::FinishReason::kNone) {
      acc->finish = out.finish;
      acc->error = out.error;
      promise->set_value(*acc);
    }
  };
  Status st = e.submit(std::move(r));
  if (!st.is_ok()) {
    Collected c;
    c.finish = engine::FinishReason::kError;
    c.error = st;
    promise->set_value(c);
  }
  return fut;
}

class RequestPlaneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(model_path())) TURBINE_MISSING_DEPENDENCY("no stories260K");
    auto m = model::load_model(model_path());
    ASSERT_TRUE(m.has_value());
    model_ = std::move(*m);
    engine_ = make_engine(*model_);
    WorkerServerOptions so;
    so.host = "127.0.0.1";
    server_ = std::make_unique<WorkerServer>(so, engine_);
    ASSERT_TRUE(server_->start().is_ok());
    ASSERT_GT(server_->port(), 0);
    remote_ = make_remote("127.0.0.1:" + std::to_string(server_->port()));
  }
  void TearDown() override {
    remote_.reset();
    if (server_) server_->stop();
    if (engine_) engine_->shutdown();
  }
  std::unique_ptr<RemoteEngine> make_remote(const std::string& address, int pool = 2) {
    RemoteEngineOptions ro;
    ro.address = address;
    ro.pool_size = pool;
    ro.max_context = engine_->max_context();
    ro.block_size = engine_->block_size();
    ro.connect_timeout = std::chrono::milliseconds(1000);
    return std::make_unique<RemoteEngine>(ro, io_.executor());
  }
  static engine::SamplingParams greedy(int max_tokens) {
    engine::SamplingParams p;
    p.temperature = 0.0f;
    p.max_tokens = max_tokens;
    p.ignore_eos = true;
    p.n_logprobs = 2;
    return p;
  }

  IoThreads io_{1};
  std::unique_ptr<model::Model> model_;
  std::shared_ptr<engine::Engine> engine_;
  std::unique_ptr<WorkerServer> server_;
  std::unique_ptr<RemoteEngine> remote_;
};

TEST_F(RequestPlaneTest, RemoteMatchesLocalTokenForToken) {
  const std::vector<int32_t> prompt = {1, 403, 407, 261, 378};
  auto local = run(*engine_, 1000, prompt, greedy(40)).get();
  auto remote = run(*remote_, 1, prompt, greedy(40)).get();
  EXPECT_EQ(remote.finish, engine::FinishReason::kLength);
  EXPECT_EQ(remote.tokens, local.tokens);
  EXPECT_EQ(remote.logprobs, local.logprobs);  // bit-exact floats on the wire
  EXPECT_EQ(remote.tokens.size(), 40u);
  EXPECT_EQ(server_->open_requests(), 0u);
}

TEST_F(RequestPlaneTest, ManyConcurrentStreamsAreMultiplexed) {
  const std::vector<int32_t> prompt = {1, 403, 407};
  auto want = run(*engine_, 5000, prompt, greedy(24)).get();
  std::vector<std::future<Collected>> futs;
  for (uint64_t i = 0; i < 48; ++i) futs.push_back(run(*remote_, 10 + i, prompt, greedy(24)));
  for (auto& f : futs) {
    auto got = f.get();
    EXPECT_EQ(got.finish, engine::FinishReason::kLength);
    EXPECT_EQ(got.tokens, want.tokens);
  }
  EXPECT_LE(server_->connections(), 2u);  // the pool, not one connection per request
  EXPECT_EQ(server_->open_requests(), 0u);
}

TEST_F(RequestPlaneTest, CancelStopsTheRemoteRequest) {
  // Long enough (stories260K's whole context) that the engine cannot finish before the cancel.
  constexpr int kMaxTokens = 2000;
  auto fut = run(*remote_, 7, {1, 403}, greedy(kMaxTokens));
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  remote_->cancel(7);
  auto got = fut.get();
  EXPECT_EQ(got.finish, engine::FinishReason::kCancelled);
  EXPECT_LT(got.tokens.size(), static_cast<size_t>(kMaxTokens));
  // The worker side settles asynchronously: its request closes, then the engine counts it.
  for (int i = 0; i < 400 && (server_->open_requests() > 0 || engine_->stats().cancelled == 0);
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(server_->open_requests(), 0u);
  EXPECT_GE(engine_->stats().cancelled, 1u);
}

TEST_F(RequestPlaneTest, WorkerRejectionsComeBackAsErrors) {
  // Only the worker knows the vocabulary: its engine refuses the token.
  auto got = run(*remote_, 3, {1, 999999, 3}, greedy(10)).get();
  EXPECT_EQ(got.finish, engine::FinishReason::kError);
  EXPECT_EQ(got.error.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(got.error.field(), "prompt");
  // The connection stays usable.
  EXPECT_EQ(run(*remote_, 4, {1, 2, 3}, greedy(3)).get().tokens.size(), 3u);
}

TEST_F(RequestPlaneTest, ServerGoneMidStreamGivesUnavailablePromptly) {
  std::vector<std::future<Collected>> futs;
  for (uint64_t i = 0; i < 6; ++i) futs.push_back(run(*remote_, 100 + i, {1, 403}, greedy(400)));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const auto t0 = std::chrono::steady_clock::now();
  server_->stop();
  for (auto& f : futs) {
    ASSERT_EQ(f.wait_for(std::chrono::seconds(5)), std::future_status::ready);
    auto got = f.get();
    EXPECT_EQ(got.finish, engine::FinishReason::kError);
    EXPECT_EQ(got.error.code(), StatusCode::kUnavailable) << got.error.to_string();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(6));
  // A new request on the dead address fails the same way (connection refused), not a hang.
  auto again = run(*remote_, 200, {1, 403}, greedy(4));
  ASSERT_EQ(again.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(again.get().error.code(), StatusCode::kUnavailable);
}

TEST_F(RequestPlaneTest, ClientGoneCancelsItsRequests) {
  auto other = make_remote("127.0.0.1:" + std::to_string(server_->port()), 1);
  std::vector<std::future<Collected>> futs;
  for (uint64_t i = 0; i < 4; ++i) futs.push_back(run(*other, 300 + i, {1, 403}, greedy(400)));
  for (int i = 0; i < 200 && server_->open_requests() < 4; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(server_->open_requests(), 4u);
  other.reset();  // shutdown closes the sockets
  for (auto& f : futs) EXPECT_EQ(f.get().finish, engine::FinishReason::kCancelled);
  for (int i = 0; i < 400 && server_->open_requests() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(server_->open_requests(), 0u);
}

// Structured outputs (issue 19): a worker compiles a cold constraint off its request-plane I/O
// thread. The compile is held back (a parked job) for as long as the test wants: meanwhile the
// same connection, on the server's one I/O thread, carries another request to its end.
struct ParkedCompiles {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::function<void()>> jobs;
  void add(std::function<void()> job) {
    {
      std::lock_guard lock(mu);
      jobs.push_back(std::move(job));
    }
    cv.notify_all();
  }
  void wait_for(size_t n) {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return jobs.size() >= n; });
  }
  void run_all() {
    std::vector<std::function<void()>> take;
    {
      std::lock_guard lock(mu);
      take.swap(jobs);
    }
    for (auto& j : take) j();
  }
};

TEST(RequestPlaneCompile, AColdCompileDoesNotBlockTheConnectionsOtherRequests) {
  if (!std::filesystem::exists(model_path())) TURBINE_MISSING_DEPENDENCY("no stories260K");
  auto m = model::load_model(model_path());
  ASSERT_TRUE(m.has_value());
  auto tok = tokenizer::make_tokenizer((*m)->vocab());
  ASSERT_TRUE(tok.has_value());
  auto compiler = structured::shared_compiler_for_model(**tok, (*m)->config().n_vocab);
  ASSERT_TRUE(compiler.has_value());
  auto parked = std::make_shared<ParkedCompiles>();
  engine::CpuBackendOptions b;
  b.n_threads = 1;
  auto backend = engine::make_cpu_backend(**m, b);
  ASSERT_TRUE(backend.has_value());
  engine::EngineOptions o;
  o.grammar_compiler = *compiler;
  o.compile_executor = [parked](std::function<void()> job) { parked->add(std::move(job)); };
  auto eng = std::make_shared<engine::Engine>(std::move(*backend), (*m)->config().n_vocab, o);
  WorkerServerOptions so;
  so.host = "127.0.0.1";
  so.n_threads = 1;  // one I/O thread: a compile on it would hold up everything
  WorkerServer server(so, eng);
  ASSERT_TRUE(server.start().is_ok());
  IoThreads io(1);
  RemoteEngineOptions ro;
  ro.address = "127.0.0.1:" + std::to_string(server.port());
  ro.pool_size = 1;  // one connection
  ro.max_context = eng->max_context();
  ro.block_size = eng->block_size();
  RemoteEngine remote(ro, io.executor());

  engine::SamplingParams digits;
  digits.temperature = 1.0f;
  digits.seed = 3;
  digits.max_tokens = 16;
  digits.constraint = {structured::ConstraintSpec::Kind::kRegex, "[0-9]{3}( [0-9]{3})?"};
  engine::SamplingParams bad = digits;
  bad.constraint.text = "([0-9]";
  auto constrained = run(remote, 1, {1, 403}, digits);
  auto refused = run(remote, 2, {1, 403}, bad);
  parked->wait_for(2);  // both compiles are waiting; the I/O thread is free
  engine::SamplingParams six;
  six.temperature = 0.0f;
  six.max_tokens = 6;
  six.ignore_eos = true;
  auto plain = run(remote, 3, {1, 403, 407}, six).get();
  EXPECT_EQ(plain.finish, engine::FinishReason::kLength) << plain.error.to_string();
  EXPECT_EQ(plain.tokens.size(), 6u);
  EXPECT_EQ(constrained.wait_for(std::chrono::seconds(0)), std::future_status::timeout);

  parked->run_all();
  auto got = constrained.get();
  EXPECT_EQ(got.finish, engine::FinishReason::kStop) << got.error.to_string();
  const std::string text = (*tok)->decode(got.tokens, true);
  EXPECT_TRUE(text.size() == 3 || text.size() == 7) << text;
  EXPECT_EQ(text.find_first_not_of("0123456789 "), std::string::npos) << text;
  // A bad constraint is still a 400-class error naming the field, as a refused submit was.
  auto no = refused.get();
  EXPECT_EQ(no.finish, engine::FinishReason::kError);
  EXPECT_EQ(no.error.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(no.error.field(), "constraint.regex");
  server.stop();
  eng->shutdown();
}

TEST(RemoteEngine, ConnectRefusedIsUnavailable) {
  IoThreads io(1);
  RemoteEngineOptions ro;
  ro.address = "127.0.0.1:1";  // nothing listens on port 1
  RemoteEngine remote(ro, io.executor());
  engine::SamplingParams p;
  p.max_tokens = 3;
  auto got = run(remote, 1, {1, 2}, p);
  ASSERT_EQ(got.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  auto c = got.get();
  EXPECT_EQ(c.finish, engine::FinishReason::kError);
  EXPECT_EQ(c.error.code(), StatusCode::kUnavailable);
  EXPECT_FALSE(split_host_port("nohost").has_value());
  EXPECT_FALSE(split_host_port("h:0").has_value());
  EXPECT_EQ(split_host_port("[::1]:80")->first, "::1");
}

}  // namespace
}  // namespace turbine::runtime
