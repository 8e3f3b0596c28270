#include "common/status.h"

#include <gtest/gtest.h>

namespace turbine {
namespace {

Result<int> parse_positive(int v) {
  if (v <= 0) return invalid_argument("must be positive", "v");
  return v;
}

Result<int> doubled(int v) {
  TURBINE_ASSIGN_OR_RETURN(int x, parse_positive(v));
  return 2 * x;
}

TEST(StatusTest, OkAndErrors) {
  EXPECT_TRUE(Status::ok().is_ok());
  Status s = invalid_argument("bad", "max_tokens");
  EXPECT_FALSE(s.is_ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.to_string(), "invalid_argument: bad (max_tokens)");
}

TEST(StatusTest, ResultPropagates) {
  auto ok = doubled(4);
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(*ok, 8);
  auto bad = doubled(-1);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.status().field(), "v");
}

}  // namespace
}  // namespace turbine
