// Out-of-range numbers are quoted as the client sent them (issue 18, item 18): a value beyond a
// float's range used to print the JSON writer's sentinel ("got -9999").
#include <gtest/gtest.h>

#include "api/openai.h"

namespace turbine::api {
namespace {

std::string message_for(std::string_view field_and_value) {
  auto r = parse_completion_request(R"({"model":"m","prompt":"hi",)" +
                                    std::string(field_and_value) + "}");
  EXPECT_FALSE(r.has_value());
  return r.has_value() ? std::string() : r.status().message();
}

TEST(RangeMessageTest, QuotesTheValueSent) {
  std::string m = message_for(R"("temperature":1e308)");
  EXPECT_NE(m.find("got 1e+308"), std::string::npos) << m;
  EXPECT_EQ(m.find("9999"), std::string::npos) << m;
  m = message_for(R"("temperature":-1e300)");
  EXPECT_NE(m.find("got -1e+300"), std::string::npos) << m;
  m = message_for(R"("top_p":1.5)");
  EXPECT_NE(m.find("got 1.5"), std::string::npos) << m;
  EXPECT_NE(m.find("(0, 1]"), std::string::npos) << m;
}

}  // namespace
}  // namespace turbine::api
