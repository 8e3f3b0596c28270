#include "api/errors.h"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "api/json_writer.h"

namespace turbine::api {
namespace {

namespace json = boost::json;

TEST(ErrorsTest, HttpStatusMapping) {
  EXPECT_EQ(http_status(StatusCode::kInvalidArgument), 400);
  EXPECT_EQ(http_status(StatusCode::kUnauthenticated), 401);
  EXPECT_EQ(http_status(StatusCode::kPermissionDenied), 403);
  EXPECT_EQ(http_status(StatusCode::kNotFound), 404);
  EXPECT_EQ(http_status(StatusCode::kMethodNotAllowed), 405);
  EXPECT_EQ(http_status(StatusCode::kPayloadTooLarge), 413);
  EXPECT_EQ(http_status(StatusCode::kResourceExhausted), 429);
  EXPECT_EQ(http_status(StatusCode::kCancelled), 499);
  EXPECT_EQ(http_status(StatusCode::kInternal), 500);
  EXPECT_EQ(http_status(StatusCode::kUnimplemented), 501);
  EXPECT_EQ(http_status(StatusCode::kUnavailable), 503);
  EXPECT_EQ(http_status(StatusCode::kDataLoss), 500);
  EXPECT_EQ(status_code_from_http(413), StatusCode::kPayloadTooLarge);
  EXPECT_EQ(status_code_from_http(431), StatusCode::kInvalidArgument);
  EXPECT_EQ(status_code_from_http(502), StatusCode::kInternal);
}

TEST(ErrorsTest, ErrorJsonShape) {
  const json::value v =
      json::parse(error_json(invalid_argument("max_tokens must be >= 1", "max_tokens")));
  const json::object& e = v.at("error").as_object();
  EXPECT_EQ(e.at("message").as_string(), "max_tokens must be >= 1");
  EXPECT_EQ(e.at("type").as_string(), "invalid_request_error");
  EXPECT_EQ(e.at("param").as_string(), "max_tokens");
  EXPECT_TRUE(e.at("code").is_null());
  EXPECT_EQ(e.size(), 4u);
}

TEST(ErrorsTest, ModelNotFoundHasCode) {
  const json::value v = json::parse(error_json(not_found("The model `x` does not exist", "model")));
  const json::object& e = v.at("error").as_object();
  EXPECT_EQ(e.at("type").as_string(), "not_found_error");
  EXPECT_EQ(e.at("code").as_string(), "model_not_found");
  const json::value v2 = json::parse(error_json(internal_error("boom")));
  EXPECT_TRUE(v2.at("error").at("param").is_null());
  EXPECT_EQ(v2.at("error").at("type").as_string(), "server_error");
}

TEST(ErrorsTest, ErrorJsonForHttpAndEscaping) {
  const json::value v = json::parse(error_json_for_http(405, "method \"PUT\"\n not allowed"));
  EXPECT_EQ(v.at("error").at("message").as_string(), "method \"PUT\"\n not allowed");
  EXPECT_EQ(v.at("error").at("type").as_string(), "invalid_request_error");
  EXPECT_EQ(json::parse(error_json_for_http(503, "x")).at("error").at("type").as_string(),
            "service_unavailable_error");
}

TEST(JsonWriterTest, InvalidUtf8IsReplaced) {
  std::string out;
  append_json_string(out, std::string_view("a\xE2\x82", 3));  // truncated euro sign
  EXPECT_EQ(out, "\"a\xEF\xBF\xBD\xEF\xBF\xBD\"");
  EXPECT_NO_THROW(json::parse(out));
  out.clear();
  append_json_string(out, "\xE2\x82\xAC \x01");
  EXPECT_EQ(out, "\"\xE2\x82\xAC \\u0001\"");
  EXPECT_TRUE(is_valid_utf8("h\xC3\xA9llo"));
  EXPECT_FALSE(is_valid_utf8("\xC0\xAF"));          // overlong
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));  // > U+10FFFF
}

TEST(JsonWriterTest, Floats) {
  std::string out;
  append_json_float(out, -0.5f);
  out += ',';
  append_json_float(out, 3.0f);
  out += ',';
  append_json_float(out, -std::numeric_limits<float>::infinity());
  EXPECT_EQ(out, "-0.5,3.0,-9999.0");
}

}  // namespace
}  // namespace turbine::api
