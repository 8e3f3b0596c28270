// The Responses and Anthropic endpoints over real HTTP (port 0) with a fake engine: routes,
// x-api-key, the response store behind GET/DELETE, count_tokens, and each protocol's errors.
#include <chrono>
#include <filesystem>
#include <future>
#include <thread>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include "fakes.h"
#include "frontend/frontend.h"
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

Response http(uint16_t port, bhttp::verb method, std::string target, std::string body = {},
              std::vector<std::pair<std::string, std::string>> headers = {}) {
  asio::io_context io;
  tcp::socket socket(io);
  socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  bhttp::request<bhttp::string_body> req{method, target, 11};
  req.set(bhttp::field::host, "localhost");
  req.set(bhttp::field::content_type, "application/json");
  for (const auto& [k, v] : headers) req.set(k, v);
  req.body() = std::move(body);
  req.prepare_payload();
  bhttp::write(socket, req);
  boost::beast::flat_buffer buffer;
  Response res;
  bhttp::read(socket, buffer, res);
  return res;
}

class AgentEndpointsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* env = std::getenv("TURBINE_SHARED");
    const auto path = std::filesystem::path(env ? env : TURBINE_SHARED_DEFAULT) /
                      "models/stories260K/stories260K.gguf";
    auto model = model::load_model(path);
    ASSERT_TRUE(model.has_value()) << model.status().to_string();
    model_ = std::move(*model);
    auto tok = tokenizer::make_tokenizer(model_->vocab());
    ASSERT_TRUE(tok.has_value());
    tokenizer_ = std::move(*tok);
    engine_->context = 512;
    FrontendOptions opts;
    opts.host = "127.0.0.1";
    opts.port = 0;
    opts.api_key = "k";
    auto front = Frontend::create(opts);
    ASSERT_TRUE(front.has_value());
    front_ = std::move(*front);
    ASSERT_TRUE(
        front_
            ->add_model({"m",
                         std::make_shared<const model::ModelInfo>(model::model_info(*model_)),
                         tokenizer_,
                         engine_,
                         {}})
            .is_ok());
    ASSERT_TRUE(front_->start().is_ok());
  }
  void TearDown() override {
    if (front_) front_->shutdown(std::chrono::milliseconds(0));
  }
  void wait_submitted(size_t n) {
    for (int i = 0; i < 5000 && engine_->submitted_count() < n; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ASSERT_GE(engine_->submitted_count(), n);
  }
  Response post(std::string target, std::string body,
                std::vector<std::pair<std::string, std::string>> h = {{"x-api-key", "k"}}) {
    return http(front_->port(), bhttp::verb::post, std::move(target), std::move(body),
                std::move(h));
  }
  int32_t token(std::string_view text) { return tokenizer_->encode(text, false).back(); }

  std::shared_ptr<const model::Model> model_;
  std::shared_ptr<tokenizer::Tokenizer> tokenizer_;
  std::shared_ptr<testing::FakeEngine> engine_ = std::make_shared<testing::FakeEngine>();
  std::unique_ptr<Frontend> front_;
};

TEST_F(AgentEndpointsTest, ApiKeyAsBearerOrXApiKey) {
  const std::string body =
      R"({"model":"m","max_tokens":4,"messages":[{"role":"user","content":"x"}]})";
  Response none = post("/v1/messages", body, {});
  EXPECT_EQ(none.result_int(), 401);
  const json::value e = json::parse(none.body());
  EXPECT_EQ(e.at("type").as_string(), "error");
  EXPECT_EQ(e.at("error").at("type").as_string(), "authentication_error");
  EXPECT_EQ(post("/v1/messages/count_tokens", body, {{"x-api-key", "wrong"}}).result_int(), 401);
  const Response bearer = post("/v1/messages/count_tokens", body, {{"authorization", "Bearer k"}});
  EXPECT_EQ(bearer.result_int(), 200) << bearer.body();
  const Response counted = post("/v1/messages/count_tokens", body);
  ASSERT_EQ(counted.result_int(), 200) << counted.body();
  EXPECT_GT(json::parse(counted.body()).at("input_tokens").as_int64(), 1);
  EXPECT_EQ(engine_->submitted_count(), 0u);  // counting needs no engine
  const Response chat =
      http(front_->port(), bhttp::verb::get, "/v1/models", {}, {{"x-api-key", "k"}});
  EXPECT_EQ(chat.result_int(), 200);
}

TEST_F(AgentEndpointsTest, AnthropicErrorsHaveAnthropicsShape) {
  const Response missing =
      post("/v1/messages", R"({"model":"m","messages":[{"role":"user","content":"x"}]})");
  EXPECT_EQ(missing.result_int(), 400);
  const json::value e = json::parse(missing.body());
  EXPECT_EQ(e.at("type").as_string(), "error");
  EXPECT_EQ(e.at("error").at("type").as_string(), "invalid_request_error");
  EXPECT_NE(e.at("error").at("message").as_string().find("max_tokens"), std::string::npos);
  const Response unknown =
      post("/v1/messages",
           R"({"model":"nope","max_tokens":4,"messages":[{"role":"user","content":"x"}]})");
  EXPECT_EQ(unknown.result_int(), 404);
  EXPECT_EQ(json::parse(unknown.body()).at("error").at("type").as_string(), "not_found_error");
  // The server keeps serving: a good request goes through.
  auto ok = std::async(std::launch::async, [&] {
    return post("/v1/messages",
                R"({"model":"m","max_tokens":4,"messages":[{"role":"user","content":"x"}]})");
  });
  wait_submitted(1);
  engine_->emit(0, {token(" Hello")}, engine::FinishReason::kLength);
  const Response r = ok.get();
  EXPECT_EQ(r.result_int(), 200) << r.body();
  const json::value m = json::parse(r.body());
  EXPECT_FALSE(m.at("content").at(0).at("text").as_string().empty());
  EXPECT_EQ(m.at("stop_reason").as_string(), "max_tokens");
}

TEST_F(AgentEndpointsTest, ResponsesAreStoredAndServedByIdUntilDeleted) {
  auto created = std::async(std::launch::async, [&] {
    return post("/v1/responses", R"({"model":"m","input":"hi","max_output_tokens":4})",
                {{"authorization", "Bearer k"}});
  });
  wait_submitted(1);
  engine_->emit(0, {token(" Hello")}, engine::FinishReason::kStop);
  const Response r = created.get();
  ASSERT_EQ(r.result_int(), 200) << r.body();
  const json::value resp = json::parse(r.body());
  const std::string id(resp.at("id").as_string());
  EXPECT_EQ(resp.at("status").as_string(), "completed");
  const std::vector<std::pair<std::string, std::string>> auth = {{"authorization", "Bearer k"}};
  const Response got = http(front_->port(), bhttp::verb::get, "/v1/responses/" + id, {}, auth);
  ASSERT_EQ(got.result_int(), 200);
  EXPECT_EQ(json::parse(got.body()), resp);
  const Response del = http(front_->port(), bhttp::verb::delete_, "/v1/responses/" + id, {}, auth);
  ASSERT_EQ(del.result_int(), 200);
  EXPECT_TRUE(json::parse(del.body()).at("deleted").as_bool());
  const Response gone = http(front_->port(), bhttp::verb::get, "/v1/responses/" + id, {}, auth);
  EXPECT_EQ(gone.result_int(), 404);
  EXPECT_NE(json::parse(gone.body()).at("error").at("message").as_string().find(id),
            json::string::npos);
  EXPECT_EQ(
      http(front_->port(), bhttp::verb::delete_, "/v1/responses/" + id, {}, auth).result_int(),
      404);

  const Response prev = post(
      "/v1/responses", R"({"model":"m","input":"x","previous_response_id":")" + id + R"("})", auth);
  EXPECT_EQ(prev.result_int(), 400);
  const json::value pe = json::parse(prev.body());
  EXPECT_EQ(pe.at("error").at("code").as_string(), "previous_response_not_found");
  EXPECT_EQ(pe.at("error").at("param").as_string(), "previous_response_id");
}

TEST_F(AgentEndpointsTest, NAboveTheLimitAndUnenforceableToolChoice) {
  const std::vector<std::pair<std::string, std::string>> auth = {{"authorization", "Bearer k"}};
  const Response n =
      post("/v1/chat/completions",
           R"({"model":"m","n":17,"messages":[{"role":"user","content":"x"}]})", auth);
  EXPECT_EQ(n.result_int(), 400);
  EXPECT_EQ(json::parse(n.body()).at("error").at("param").as_string(), "n");
  const Response bias =
      post("/v1/completions", R"({"model":"m","prompt":"x","logit_bias":{"100000":5}})", auth);
  EXPECT_EQ(bias.result_int(), 400);
  EXPECT_EQ(json::parse(bias.body()).at("error").at("param").as_string(), "logit_bias");
  EXPECT_EQ(engine_->submitted_count(), 0u);
}

}  // namespace
}  // namespace turbine::frontend
