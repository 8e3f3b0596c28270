// The NATS request plane (MessageWorkerServer / MessageRemoteEngine) against a real nats-server
// with the real engine on stories260K (skipped without the binary or the model).
#include "runtime/message_request_plane.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <future>

#include "engine/backend.h"
#include "engine/engine.h"
#include "model/model.h"
#include "runtime/component.h"
#include "test_processes.h"
#include "test_support/missing_dependency.h"

namespace turbine::runtime {
namespace {

using namespace std::chrono_literals;
using test_support::wait_until;

TEST(MessageEnvelope, RoundTripsAndRejectsGarbage) {
  const std::string m = encode_envelope("_INBOX.ns.1f", "frame-bytes");
  auto d = decode_envelope(m);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->first, "_INBOX.ns.1f");
  EXPECT_EQ(d->second, "frame-bytes");
  EXPECT_FALSE(decode_envelope("").has_value());
  EXPECT_FALSE(decode_envelope(std::string("\x05\x00"
                                           "ab",
                                           4))
                   .has_value());
  EXPECT_FALSE(decode_envelope(std::string("\x00\x00"
                                           "ab",
                                           4))
                   .has_value());
  EXPECT_EQ(request_subject({"ns", "backend", "generate"}, 0xab), "ns.backend.generate.ab");
}

#ifdef TURBINE_HAVE_NATS
std::filesystem::path model_path() {
  const char* env = std::getenv("TURBINE_SHARED");
  return std::filesystem::path(env ? env : TURBINE_SHARED_DEFAULT) /
         "models/stories260K/stories260K.gguf";
}

struct Result_ {
  std::vector<int32_t> tokens;
  engine::FinishReason finish = engine::FinishReason::kNone;
  Status error;
};

std::future<Result_> run(engine::AsyncEngine& e, uint64_t id, int max_tokens,
                         std::shared_ptr<std::atomic<int>> seen = nullptr) {
  auto promise = std::make_shared<std::promise<Result_>>();
  auto acc = std::make_shared<Result_>();
  auto fut = promise->get_future();
  engine::EngineRequest r;
  r.id = id;
  r.prompt = {1, 300, 410, 260};
  r.params.temperature = 0;
  r.params.max_tokens = max_tokens;
  r.params.ignore_eos = true;
  r.on_output = [promise, acc, seen](engine::EngineOutput&& out) {
    for (const auto& t : out.tokens) acc->tokens.push_back(t.token);
    if (seen) *seen += static_cast<int>(out.tokens.size());
    if (out.finish != engine::FinishReason::kNone) {
      acc->finish = out.finish;
      acc->error = out.error;
      promise->set_value(*acc);
    }
  };
  Status st = e.submit(std::move(r));
  if (!st.is_ok()) promise->set_value({{}, engine::FinishReason::kError, st});
  return fut;
}

class MessageRequestPlaneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string bin = test_support::find_nats_server();
    if (bin.empty()) TURBINE_MISSING_DEPENDENCY("nats-server is not installed");
    if (!std::filesystem::exists(model_path())) TURBINE_MISSING_DEPENDENCY("no stories260K");
    port_ = test_support::free_port();
    pid_ = test_support::start_nats(bin, port_);
    auto m = model::load_model(model_path());
    ASSERT_TRUE(m.has_value());
    model_ = std::move(*m);
    engine::CpuBackendOptions b;
    b.n_threads = 1;
    auto backend = engine::make_cpu_backend(*model_, b);
    ASSERT_TRUE(backend.has_value());
    engine_ = std::make_shared<engine::Engine>(std::move(*backend), model_->config().n_vocab,
                                               engine::EngineOptions{});
    worker_plane_ = plane();
    client_plane_ = plane();
    ASSERT_TRUE(worker_plane_ && client_plane_);
    const std::string subject = request_subject({"ns", "backend", "generate"}, 0x42);
    MessageWorkerOptions wo;
    wo.heartbeat = 100ms;
    server_ = std::make_unique<MessageWorkerServer>(worker_plane_, subject, engine_, wo);
    ASSERT_TRUE(server_->start().is_ok());
    MessageRemoteOptions ro;
    ro.subject = subject;
    ro.ns = "ns";
    ro.silence_timeout = 500ms;
    ro.max_context = engine_->max_context();
    client_ = std::make_unique<MessageRemoteEngine>(client_plane_, ro);
    ASSERT_TRUE(client_->status().is_ok());
  }
  void TearDown() override {
    client_.reset();
    server_.reset();
    if (engine_) engine_->shutdown();
    client_plane_.reset();
    worker_plane_.reset();
    test_support::stop_process(pid_);
  }
  std::shared_ptr<EventPlane> plane() {
    NatsOptions o;
    o.url = "nats://127.0.0.1:" + std::to_string(port_);
    auto p = make_nats_event_plane(o);
    if (!p) return nullptr;
    std::shared_ptr<EventPlane> out = std::move(*p);
    if (!wait_until([&] { return out->subscribe("probe", [](std::string_view) {}).has_value(); },
                    5s))
      return nullptr;
    return out;
  }

  uint16_t port_ = 0;
  pid_t pid_ = -1;
  std::shared_ptr<const model::Model> model_;
  std::shared_ptr<engine::Engine> engine_;
  std::shared_ptr<EventPlane> worker_plane_, client_plane_;
  std::unique_ptr<MessageWorkerServer> server_;
  std::unique_ptr<MessageRemoteEngine> client_;
};

TEST_F(MessageRequestPlaneTest, StreamsTheSameTokensAsTheEngineItself) {
  auto direct = run(*engine_, 100, 24).get();
  // The worker may not have its subscription at the server yet: retry until it answers.
  Result_ via;
  uint64_t id = 1;
  ASSERT_TRUE(wait_until(
      [&] {
        auto f = run(*client_, id++, 24);
        if (f.wait_for(3s) != std::future_status::ready) return false;
        via = f.get();
        return via.finish == engine::FinishReason::kLength;
      },
      10s));
  EXPECT_EQ(via.tokens, direct.tokens);
  // Several at once, ids unique per client only.
  std::vector<std::future<Result_>> fs;
  for (uint64_t i = 0; i < 6; ++i) fs.push_back(run(*client_, 1000 + i, 24));
  for (auto& f : fs) {
    auto r = f.get();
    EXPECT_EQ(r.finish, engine::FinishReason::kLength);
    EXPECT_EQ(r.tokens, direct.tokens);
  }
  EXPECT_TRUE(wait_until([&] { return server_->open_requests() == 0; }, 2s));
}

TEST_F(MessageRequestPlaneTest, CancelReachesTheWorkerAndSilenceIsUnavailable) {
  uint64_t id = 1;
  ASSERT_TRUE(wait_until(
      [&] {
        auto f = run(*client_, id++, 2);
        return f.wait_for(3s) == std::future_status::ready &&
               f.get().finish == engine::FinishReason::kLength;
      },
      10s));
  // Long enough (the whole context) that it cannot finish before the cancel.
  auto seen = std::make_shared<std::atomic<int>>(0);
  auto f = run(*client_, 500, engine_->max_context() - 8, seen);
  ASSERT_TRUE(wait_until([&] { return *seen > 0; }, 5s));
  client_->cancel(500);
  auto r = f.get();
  EXPECT_EQ(r.finish, engine::FinishReason::kCancelled);
  EXPECT_TRUE(wait_until([&] { return server_->open_requests() == 0; }, 2s));

  // Heartbeats keep a slow request alive; a worker that goes silent ends it with kUnavailable.
  *seen = 0;
  auto g = run(*client_, 501, engine_->max_context() - 8, seen);
  ASSERT_TRUE(wait_until([&] { return *seen > 0; }, 5s));
  server_->stop();
  const auto t0 = std::chrono::steady_clock::now();
  auto lost = g.get();
  EXPECT_EQ(lost.finish, engine::FinishReason::kError);
  EXPECT_EQ(lost.error.code(), StatusCode::kUnavailable) << lost.error.to_string();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
}
#endif

}  // namespace
}  // namespace turbine::runtime
