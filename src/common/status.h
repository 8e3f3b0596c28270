// Status and Result<T>: the error path for everything a request can reach.
//
// No exceptions cross module boundaries on the request path; libraries that throw are wrapped at
// the module edge. Codes map one-to-one to HTTP/OpenAI errors (see api/errors.h).
#pragma once

#include <cassert>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

namespace turbine {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,    // 400: malformed or out-of-range input
  kUnauthenticated,    // 401
  kPermissionDenied,   // 403
  kNotFound,           // 404
  kMethodNotAllowed,   // 405
  kPayloadTooLarge,    // 413
  kResourceExhausted,  // 429: queue full, over capacity
  kCancelled,          // 499: client went away
  kInternal,           // 500
  kUnimplemented,      // 501
  kUnavailable,        // 503: shutting down, no worker
  kDataLoss,           // corrupt or truncated file
};

const char* status_code_name(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message, std::string field = {})
      : code_(code), message_(std::move(message)), field_(std::move(field)) {}

  static Status ok() { return {}; }
  bool is_ok() const { return code_ == StatusCode::kOk; }
  explicit operator bool() const { return is_ok(); }

  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // The input field the error is about (an OpenAI `param`, a GGUF key, a JSON path); may be empty.
  const std::string& field() const { return field_; }
  std::string to_string() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
  std::string field_;
};

inline Status invalid_argument(std::string msg, std::string field = {}) {
  return {StatusCode::kInvalidArgument, std::move(msg), std::move(field)};
}
inline Status not_found(std::string msg, std::string field = {}) {
  return {StatusCode::kNotFound, std::move(msg), std::move(field)};
}
inline Status internal_error(std::string msg) {
  return {StatusCode::kInternal, std::move(msg)};
}
inline Status data_loss(std::string msg, std::string field = {}) {
  return {StatusCode::kDataLoss, std::move(msg), std::move(field)};
}
inline Status unimplemented(std::string msg, std::string field = {}) {
  return {StatusCode::kUnimplemented, std::move(msg), std::move(field)};
}

// A value or the Status that explains why there is none.
template <typename T>
class [[nodiscard]] Result {
  static_assert(!std::is_same_v<T, Status>, "use Status directly");

 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(implicit)
  Result(Status status) : v_(std::move(status)) {
    assert(!std::get<Status>(v_).is_ok());
  }  // NOLINT

  bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  // Status::ok() when a value is held.
  Status status() const { return has_value() ? Status::ok() : std::get<1>(v_); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace turbine

#define TURBINE_CONCAT_INNER(a, b) a##b
#define TURBINE_CONCAT(a, b) TURBINE_CONCAT_INNER(a, b)

// Returns the Status from the enclosing function if `expr` (a Status) is not ok.
#define TURBINE_RETURN_IF_ERROR(expr)                     \
  do {                                                    \
    ::turbine::Status turbine_status_ = (expr);           \
    if (!turbine_status_.is_ok()) return turbine_status_; \
  } while (0)

// `TURBINE_ASSIGN_OR_RETURN(auto x, make_x());` unwraps a Result or returns its Status.
#define TURBINE_ASSIGN_OR_RETURN(lhs, expr) \
  TURBINE_ASSIGN_OR_RETURN_IMPL(TURBINE_CONCAT(turbine_result_, __LINE__), lhs, expr)
#define TURBINE_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.has_value()) return tmp.status();          \
  lhs = std::move(tmp).value()
