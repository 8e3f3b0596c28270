#include "frontend/auth.h"

#include "api/anthropic.h"
#include "common/strings.h"

namespace turbine::frontend::auth {
namespace {

// Equal strings in time that depends only on their lengths, so the key cannot be guessed byte by
// byte from response times.
bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  }
  return diff == 0;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The token of `Authorization: Bearer <token>`; empty for another scheme or none.
std::string_view bearer_token(std::string_view authorization) {
  authorization = trim(authorization);
  constexpr std::string_view kScheme = "bearer";
  if (authorization.size() <= kScheme.size() ||
      !iequals(authorization.substr(0, kScheme.size()), kScheme)) {
    return {};
  }
  const char sep = authorization[kScheme.size()];
  if (sep != ' ' && sep != '\t') return {};
  return trim(authorization.substr(kScheme.size() + 1));
}

}  // namespace

bool is_open_path(std::string_view path) {
  // "/": the playground page, which holds no data and asks for the key itself.
  return path == "/health" || path == "/live" || path == "/metrics" || path == "/";
}

Status check_api_key(const http::Request& head, const std::optional<std::string>& key) {
  if (!key || is_open_path(head.target)) return Status::ok();
  const std::string_view bearer = bearer_token(head.header("authorization"));
  if (!bearer.empty() && constant_time_equal(bearer, *key)) return Status::ok();
  const std::string_view x_api_key = trim(head.header("x-api-key"));
  if (!x_api_key.empty() && constant_time_equal(x_api_key, *key)) return Status::ok();
  return {StatusCode::kUnauthenticated,
          "Incorrect API key provided. Send it as `Authorization: Bearer <key>` (or `x-api-key: "
          "<key>`)."};
}

http::HeadCheck make_head_check(std::optional<std::string> key) {
  if (!key) return {};
  return [key = std::move(key)](const http::Request& head) -> std::optional<http::EarlyAnswer> {
    Status st = check_api_key(head, key);
    if (st.is_ok()) return std::nullopt;
    http::EarlyAnswer a{401, st.message(), {}, false};
    // Anthropic clients read errors in their own shape (api/anthropic.h).
    if (head.target.starts_with("/v1/messages")) a.body = api::anthropic_error_json(st);
    a.headers.emplace_back("WWW-Authenticate", "Bearer");
    return a;
  };
}

}  // namespace turbine::frontend::auth
