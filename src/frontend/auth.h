// API-key authentication of the frontend's routes, checked from the request's headers.
//
// A request carries the key as `Authorization: Bearer <key>` (the scheme compared
// case-insensitively, RFC 9110 11.1, as OpenAI clients send it) or as `x-api-key: <key>` (as
// Anthropic clients send it). Keys are compared in constant time. Every route needs the key except
// the operational ones (/health, /live, /metrics), so a route added later is protected by default.
//
// The check runs as the HTTP server's head check (http::ServerOptions::head_check): a request
// without a valid key is answered 401 before its body is read, so unauthenticated uploads cost
// neither memory nor a `100 Continue`.
//
// Pure functions; any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "http/router.h"
#include "http/server.h"

namespace turbine::frontend::auth {

// Whether `path` is served without a key.
bool is_open_path(std::string_view path);

// Ok when no key is configured, the path is open, or the request carries `key`; otherwise
// kUnauthenticated with a message that says how to send it.
Status check_api_key(const http::Request& head, const std::optional<std::string>& key);

// The head check for http::ServerOptions: 401 (with `WWW-Authenticate: Bearer`) where
// check_api_key fails. Empty when no key is configured.
http::HeadCheck make_head_check(std::optional<std::string> key);

}  // namespace turbine::frontend::auth
