// The whole frontend over real HTTP (port 0) with a fake engine: the stages wired together, the
// request hook, the model registry's 404/503, and preprocessing off the I/O thread.
#include "frontend/frontend.h"

#include <chrono>
#include <filesystem>
#include <future>
#include <thread>

#include <gtest/gtest.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include "fakes.h"
#include "model/model.h"
#include "model/model_info.h"
#include "tokenizer/tokenizer.h"

namespace turbine::frontend {
namespace {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using Response = bhttp::response<bhttp::string_body>;
using testing::FakeEngine;

// One blocking HTTP/1.1 request on a fresh connection.
Response http(uint16_t port, bhttp::verb method, std::string target, std::string body = {}) {
  asio::io_context io;
  tcp::socket socket(io);
  socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  bhttp::request<bhttp::string_body> req{method, target, 11};
  req.set(bhttp::field::host, "localhost");
  req.set(bhttp::field::content_type, "application/json");
  req.body() = std::move(body);
  req.prepare_payload();
  bhttp::write(socket, req);
  boost::beast::flat_buffer buffer;
  Response res;
  bhttp::read(socket, buffer, res);
  return res;
}

std::string chat_body(std::string model, std::string content) {
  return R"({"model":")" + model + R"(","max_tokens":4,"messages":[{"role":"user","content":")" +
         content + R"("}]})";
}

// Blocks every request in the hook until the test opens the gate.
class GateHook final : public RequestHook {
 public:
  Result<HookOutcome> on_request(ParsedRequest&, const HookContext&) override {
    if (!entered_flag_.exchange(true)) entered_.set_value();
    open_.wait();
    return HookOutcome{};
  }
  void wait_entered() { entered_.get_future().wait(); }
  void open() { gate_.set_value(); }

 private:
  std::atomic<bool> entered_flag_{false};
  std::promise<void> entered_;
  std::promise<void> gate_;
  std::shared_future<void> open_ = gate_.get_future().share();
};

// A semantic-layer stand-in: "auto" -> "m" with a header; "blocked" content gets a canned answer.
class AliasHook final : public RequestHook {
 public:
  Result<HookOutcome> on_request(ParsedRequest& request, const HookContext& ctx) override {
    HookOutcome out;
    EXPECT_EQ(ctx.endpoint, "chat_completions");
    auto& chat = std::get<api::ChatRequest>(request);
    if (chat.model == "auto") {
      chat.model = "m";
      out.headers.emplace_back("x-vsr-selected-model", "m");
    }
    if (chat.messages.back().content == "blocked") {
      CannedResponse canned;
      api::ChoiceDelta d;
      d.content = "Request blocked.";
      d.finish = api::FinishReason::kContentFilter;
      canned.choices.push_back(d);
      out.respond = std::move(canned);
      out.headers.emplace_back("x-vsr-jailbreak-blocked", "true");
    }
    return out;
  }
};

class FrontendServerTest : public ::testing::Test {
 protected:
  void start(std::shared_ptr<RequestHook> hook = nullptr) {
    const char* env = std::getenv("TURBINE_SHARED");
    const auto path = std::filesystem::path(env ? env : TURBINE_SHARED_DEFAULT) /
                      "models/stories260K/stories260K.gguf";
    auto model = model::load_model(path);
    ASSERT_TRUE(model.has_value()) << model.status().to_string();
    model_ = std::move(*model);
    info_ = std::make_shared<const model::ModelInfo>(model::model_info(*model_));
    auto tok = tokenizer::make_tokenizer(model_->vocab());
    ASSERT_TRUE(tok.has_value());
    tokenizer_ = std::move(*tok);
    engine_->context = 512;
    FrontendOptions opts;
    opts.host = "127.0.0.1";
    opts.port = 0;
    opts.http_threads = 1;  // one I/O thread: any blocking on it would stall /health
    opts.preprocess_threads = 1;
    opts.request_hook = std::move(hook);
    auto front = Frontend::create(opts);
    ASSERT_TRUE(front.has_value());
    front_ = std::move(*front);
    ASSERT_TRUE(front_->add_model({"m", info_, tokenizer_, engine_, {}}).is_ok());
    ASSERT_TRUE(front_->start().is_ok());
  }
  void TearDown() override {
    if (front_) front_->shutdown(std::chrono::milliseconds(0));
  }
  // Waits until the engine has `n` requests (the server submits on its I/O thread).
  void wait_submitted(size_t n) {
    for (int i = 0; i < 5000 && engine_->submitted_count() < n; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ASSERT_GE(engine_->submitted_count(), n);
  }
  uint16_t port() const { return front_->port(); }

  std::shared_ptr<const model::Model> model_;
  std::shared_ptr<const model::ModelInfo> info_;
  std::shared_ptr<tokenizer::Tokenizer> tokenizer_;
  std::shared_ptr<FakeEngine> engine_ = std::make_shared<FakeEngine>();
  std::unique_ptr<Frontend> front_;
};

TEST_F(FrontendServerTest, HealthAnswersWhileARequestIsBeingPreprocessed) {
  auto gate = std::make_shared<GateHook>();
  start(gate);
  auto chat = std::async(std::launch::async, [this] {
    return http(port(), bhttp::verb::post, "/v1/chat/completions", chat_body("m", "hi"));
  });
  gate->wait_entered();
  // The request is stuck in preprocessing (the hook) on the pool; the single I/O thread is free.
  auto health =
      std::async(std::launch::async, [this] { return http(port(), bhttp::verb::get, "/health"); });
  const bool answered = health.wait_for(std::chrono::seconds(60)) == std::future_status::ready;
  gate->open();
  ASSERT_TRUE(answered) << "/health blocked behind a request's preprocessing";
  EXPECT_EQ(health.get().result_int(), 200);
  wait_submitted(1);
  engine_->emit(0, {tokenizer_->encode(" Hello", false).back()}, engine::FinishReason::kLength);
  const Response r = chat.get();
  EXPECT_EQ(r.result_int(), 200) << r.body();
  EXPECT_EQ(json::parse(r.body()).at("choices").at(0).at("finish_reason").as_string(), "length");
}

TEST_F(FrontendServerTest, HookRewritesTheModelAddsHeadersAndAnswersItself) {
  start(std::make_shared<AliasHook>());
  auto chat = std::async(std::launch::async, [this] {
    return http(port(), bhttp::verb::post, "/v1/chat/completions", chat_body("auto", "hi"));
  });
  wait_submitted(1);
  engine_->emit(0, {tokenizer_->encode(" Hello", false).back()}, engine::FinishReason::kLength);
  const Response r = chat.get();
  EXPECT_EQ(r.result_int(), 200) << r.body();
  EXPECT_EQ(r["x-vsr-selected-model"], "m");
  EXPECT_EQ(json::parse(r.body()).at("model").as_string(), "m");

  const Response blocked =
      http(port(), bhttp::verb::post, "/v1/chat/completions", chat_body("auto", "blocked"));
  EXPECT_EQ(blocked.result_int(), 200);
  EXPECT_EQ(blocked["x-vsr-jailbreak-blocked"], "true");
  const json::value b = json::parse(blocked.body());
  EXPECT_EQ(b.at("choices").at(0).at("message").at("content").as_string(), "Request blocked.");
  EXPECT_EQ(b.at("choices").at(0).at("finish_reason").as_string(), "content_filter");
  EXPECT_EQ(engine_->submitted_count(), 1u);  // the canned answer never reached the engine
}

TEST_F(FrontendServerTest, ModelRoutesAndRemovedModels) {
  start();
  EXPECT_EQ(http(port(), bhttp::verb::get, "/v1/models/m").result_int(), 200);
  const Response unknown = http(port(), bhttp::verb::get, "/v1/models/org%2Fnope");
  EXPECT_EQ(unknown.result_int(), 404);
  const json::value e = json::parse(unknown.body());
  EXPECT_EQ(e.at("error").at("code").as_string(), "model_not_found");
  EXPECT_NE(e.at("error").at("message").as_string().find("org/nope"), std::string::npos);

  front_->remove_model("m");
  const Response gone =
      http(port(), bhttp::verb::post, "/v1/chat/completions", chat_body("m", "x"));
  EXPECT_EQ(gone.result_int(), 503) << gone.body();
  EXPECT_FALSE(gone["Retry-After"].empty());
  EXPECT_EQ(json::parse(gone.body()).at("error").at("param").as_string(), "model");
  EXPECT_EQ(http(port(), bhttp::verb::get, "/v1/models/m").result_int(), 404);
  const Response never =
      http(port(), bhttp::verb::post, "/v1/chat/completions", chat_body("other", "x"));
  EXPECT_EQ(never.result_int(), 404);

  // Back: a model added after start is routed by id.
  ASSERT_TRUE(front_->add_model({"m", info_, tokenizer_, engine_, {}}).is_ok());
  EXPECT_EQ(http(port(), bhttp::verb::get, "/v1/models/m").result_int(), 200);
  EXPECT_EQ(engine_->submitted_count(), 0u);
}

TEST_F(FrontendServerTest, HugePromptIsRefusedBeforeTokenizingAndTokenizeRunsOnThePool) {
  start();
  const std::string big(2 << 20, 'a');
  const Response r = http(port(), bhttp::verb::post, "/v1/completions",
                          R"({"model":"m","prompt":")" + big + R"("})");
  EXPECT_EQ(r.result_int(), 400);
  const json::value e = json::parse(r.body());
  EXPECT_EQ(e.at("error").at("param").as_string(), "prompt");
  EXPECT_NE(e.at("error").at("message").as_string().find("at least"), std::string::npos);
  const Response t =
      http(port(), bhttp::verb::post, "/tokenize", R"({"model":"m","prompt":"Hello"})");
  EXPECT_EQ(t.result_int(), 200);
  EXPECT_GE(json::parse(t.body()).at("count").as_int64(), 1);
}

}  // namespace
}  // namespace turbine::frontend
