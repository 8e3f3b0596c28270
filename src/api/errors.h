// Status -> HTTP status and OpenAI-style error bodies.
//
// The body shape matches what OpenAI and vLLM return, so the official clients raise the right
// exception class (they dispatch on the HTTP status) with a readable message:
//   {"error":{"message":"...","type":"invalid_request_error","param":"max_tokens","code":null}}
// Pure functions; safe on any thread.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace turbine::api {

// HTTP status for a code: InvalidArgument 400, Unauthenticated 401, PermissionDenied 403,
// NotFound 404, MethodNotAllowed 405, PayloadTooLarge 413, ResourceExhausted 429, Cancelled 499,
// Internal/DataLoss 500, Unimplemented 501, Unavailable 503 (kOk: 200).
int http_status(StatusCode code);

// The inverse, for errors produced below the API layer (e.g. the HTTP server's 404/413): the
// closest code; unknown 4xx -> kInvalidArgument, unknown 5xx -> kInternal.
StatusCode status_code_from_http(int http_status);

// OpenAI `type` for a code: "invalid_request_error", "authentication_error", "permission_error",
// "not_found_error", "rate_limit_error", "request_cancelled", "server_error",
// "not_implemented_error", "service_unavailable_error".
const char* error_type(StatusCode code);

// {"error":{"message","type","param","code"}}. `param` is status.field() or null. `code` is
// "model_not_found" for kNotFound on field "model", otherwise null.
std::string error_json(const Status& status);

// For the HTTP server's injectable error body: error_json of the status mapped from `http_status`.
std::string error_json_for_http(int http_status, std::string_view message);

}  // namespace turbine::api
