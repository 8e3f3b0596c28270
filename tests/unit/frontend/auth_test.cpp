// API-key checks from the request head (issue 18, items 10 and 18).
#include "frontend/auth.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace turbine::frontend::auth {
namespace {

http::Request head(std::string path, http::Headers headers) {
  http::Request r;
  r.method = "POST";
  r.target = std::move(path);
  r.headers = std::move(headers);
  return r;
}

TEST(AuthTest, SchemesAndHeaders) {
  const std::optional<std::string> key = "k3y";
  for (const char* ok : {"Bearer k3y", "bearer k3y", "BEARER   k3y", "  Bearer\tk3y  "}) {
    EXPECT_TRUE(check_api_key(head("/v1/completions", {{"Authorization", ok}}), key).is_ok()) << ok;
  }
  EXPECT_TRUE(check_api_key(head("/v1/messages", {{"x-api-key", "k3y"}}), key).is_ok());
  for (const char* bad : {"Bearer k3", "Bearer k3yy", "Basic k3y", "Bearerk3y", "k3y", ""}) {
    const Status st = check_api_key(head("/v1/completions", {{"Authorization", bad}}), key);
    EXPECT_EQ(st.code(), StatusCode::kUnauthenticated) << bad;
  }
  EXPECT_EQ(check_api_key(head("/v1/models", {{"x-api-key", "nope"}}), key).code(),
            StatusCode::kUnauthenticated);
}

TEST(AuthTest, OpenPathsAndNoKey) {
  const std::optional<std::string> key = "k3y";
  for (const char* p : {"/health", "/live", "/metrics", "/"}) {
    EXPECT_TRUE(check_api_key(head(p, {}), key).is_ok()) << p;
  }
  // A route nobody listed is protected by default.
  EXPECT_FALSE(check_api_key(head("/v1/something-new", {}), key).is_ok());
  EXPECT_TRUE(check_api_key(head("/v1/completions", {}), std::nullopt).is_ok());
  EXPECT_FALSE(static_cast<bool>(make_head_check(std::nullopt)));
}

TEST(AuthTest, HeadCheckAnswers401WithChallenge) {
  http::HeadCheck check = make_head_check(std::string("k3y"));
  ASSERT_TRUE(static_cast<bool>(check));
  auto a = check(head("/v1/completions", {}));
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->status, 401);
  EXPECT_FALSE(a->close);
  ASSERT_EQ(a->headers.size(), 1u);
  EXPECT_EQ(a->headers[0].first, "WWW-Authenticate");
  EXPECT_FALSE(check(head("/v1/completions", {{"authorization", "Bearer k3y"}})).has_value());
  EXPECT_TRUE(a->body.empty());  // the router's (OpenAI) error body
}

// Anthropic clients get the 401 in Anthropic's error shape.
TEST(AuthTest, MessagesRoutesAnswerInAnthropicShape) {
  http::HeadCheck check = make_head_check(std::string("k3y"));
  for (const char* path : {"/v1/messages", "/v1/messages/count_tokens"}) {
    auto a = check(head(path, {{"x-api-key", "wrong"}}));
    ASSERT_TRUE(a.has_value());
    EXPECT_EQ(a->status, 401);
    const boost::json::value body = boost::json::parse(a->body);
    EXPECT_EQ(body.at("type").as_string(), "error");
    EXPECT_EQ(body.at("error").at("type").as_string(), "authentication_error");
  }
  EXPECT_FALSE(check(head("/v1/messages", {{"x-api-key", "k3y"}})).has_value());
}

}  // namespace
}  // namespace turbine::frontend::auth
