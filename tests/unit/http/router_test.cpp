#include "http/router.h"

#include <gtest/gtest.h>

namespace turbine::http {
namespace {

Handler noop() {
  return [](const Request&, ResponseWriter&) -> boost::asio::awaitable<void> { co_return; };
}

TEST(RouterTest, PrefixRoutesMatchLongerPathsOnly) {
  Router r;
  r.add("GET", "/v1/models", noop());
  r.add_prefix("GET", "/v1/models/", noop());
  EXPECT_EQ(r.match("GET", "/v1/models").outcome, Router::Outcome::kFound);
  const Router::Match id = r.match("GET", "/v1/models/org/some-model");
  EXPECT_EQ(id.outcome, Router::Outcome::kFound);
  EXPECT_NE(id.handler, r.match("GET", "/v1/models").handler);
  // The bare prefix is not an id.
  EXPECT_EQ(r.match("GET", "/v1/models/").outcome, Router::Outcome::kNotFound);
  EXPECT_EQ(r.match("GET", "/v1/modelsx").outcome, Router::Outcome::kNotFound);
  const Router::Match post = r.match("POST", "/v1/models/x");
  EXPECT_EQ(post.outcome, Router::Outcome::kMethodNotAllowed);
  EXPECT_EQ(post.allow, "GET");
}

TEST(RouterTest, ExactPathsWinAndTheLongestPrefixWins) {
  Router r;
  r.add_prefix("GET", "/a/", noop());
  r.add_prefix("GET", "/a/b/", noop());
  r.add("GET", "/a/b/c", noop());
  const Handler* shorter = r.match("GET", "/a/x").handler;
  const Handler* longer = r.match("GET", "/a/b/x").handler;
  const Handler* exact = r.match("GET", "/a/b/c").handler;
  ASSERT_NE(shorter, nullptr);
  ASSERT_NE(longer, nullptr);
  ASSERT_NE(exact, nullptr);
  EXPECT_NE(shorter, longer);
  EXPECT_NE(longer, exact);
  // A method the longest prefix lacks is a 405 there, not the shorter prefix's handler.
  r.add_prefix("POST", "/a/", noop());
  EXPECT_EQ(r.match("POST", "/a/b/x").outcome, Router::Outcome::kMethodNotAllowed);
  EXPECT_EQ(r.match("POST", "/a/x").outcome, Router::Outcome::kFound);
}

}  // namespace
}  // namespace turbine::http
