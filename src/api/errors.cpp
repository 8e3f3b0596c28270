#include "api/errors.h"

#include "api/json_writer.h"

namespace turbine::api {

int http_status(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return 200;
    case StatusCode::kInvalidArgument: return 400;
    case StatusCode::kUnauthenticated: return 401;
    case StatusCode::kPermissionDenied: return 403;
    case StatusCode::kNotFound: return 404;
    case StatusCode::kMethodNotAllowed: return 405;
    case StatusCode::kPayloadTooLarge: return 413;
    case StatusCode::kResourceExhausted: return 429;
    case StatusCode::kCancelled: return 499;
    case StatusCode::kInternal: return 500;
    case StatusCode::kUnimplemented: return 501;
    case StatusCode::kUnavailable: return 503;
    case StatusCode::kDataLoss: return 500;
  }
  return 500;
}

StatusCode status_code_from_http(int http_status) {
  switch (http_status) {
    case 200: return StatusCode::kOk;
    case 400: return StatusCode::kInvalidArgument;
    case 401: return StatusCode::kUnauthenticated;
    case 403: return StatusCode::kPermissionDenied;
    case 404: return StatusCode::kNotFound;
    case 405: return StatusCode::kMethodNotAllowed;
    case 413: return StatusCode::kPayloadTooLarge;
    case 429: return StatusCode::kResourceExhausted;
    case 499: return StatusCode::kCancelled;
    case 500: return StatusCode::kInternal;
    case 501: return StatusCode::kUnimplemented;
    case 503: return StatusCode::kUnavailable;
    default: break;
  }
  return http_status >= 400 && http_status < 500 ? StatusCode::kInvalidArgument
                                                 : StatusCode::kInternal;
}

const char* error_type(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "ok";
    case StatusCode::kInvalidArgument:
    case StatusCode::kMethodNotAllowed:
    case StatusCode::kPayloadTooLarge: return "invalid_request_error";
    case StatusCode::kUnauthenticated: return "authentication_error";
    case StatusCode::kPermissionDenied: return "permission_error";
    case StatusCode::kNotFound: return "not_found_error";
    case StatusCode::kResourceExhausted: return "rate_limit_error";
    case StatusCode::kCancelled: return "request_cancelled";
    case StatusCode::kUnimplemented: return "not_implemented_error";
    case StatusCode::kUnavailable: return "service_unavailable_error";
    case StatusCode::kInternal:
    case StatusCode::kDataLoss: return "server_error";
  }
  return "server_error";
}

std::string error_json(const Status& status) {
  std::string out;
  out.reserve(96 + status.message().size());
  out += R"({"error":{"message":)";
  append_json_string(out, status.message());
  out += R"(,"type":)";
  append_json_string(out, error_type(status.code()));
  out += R"(,"param":)";
  if (status.field().empty()) {
    out += "null";
  } else {
    append_json_string(out, status.field());
  }
  out += R"(,"code":)";
  if (status.code() == StatusCode::kNotFound && status.field() == "model") {
    out += R"("model_not_found")";
  } else {
    out += "null";
  }
  out += "}}";
  return out;
}

std::string error_json_for_http(int http_status, std::string_view message) {
  StatusCode code = status_code_from_http(http_status);
  if (code == StatusCode::kOk) code = StatusCode::kInternal;  // an error body for 200 is a bug
  return error_json(Status(code, std::string(message)));
}

}  // namespace turbine::api
