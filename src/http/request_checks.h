// Checks on a request's head that the Beast parser leaves to the application, and CORS.
//
// Beast frames a message by Content-Length or a final `chunked` coding; anything else it treats as
// a message without a body, which lets a `Transfer-Encoding: gzip` request smuggle its "body" in
// as the next request. RFC 9112 says what to do instead (6.1, 6.3, 3.2); check_head() does it.
// Pure functions; any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/router.h"

namespace turbine::http {

// What the server answers instead of calling a handler. `close`: the connection cannot be reused
// (framing unknown), so the server closes it after the answer (and its lingering drain).
struct EarlyAnswer {
  int status = 400;
  std::string message;
  Headers headers;
  bool close = false;
};

// Transfer-Encoding (every field, in order) must end with exactly one `chunked` and carry no
// other coding: a last coding that is not chunked, or chunked twice, is 400 + close (RFC 9112
// 6.3: the length cannot be determined); another coding before chunked is 501 + close (we decode
// none). HTTP/1.0 with Transfer-Encoding is 400 + close (6.1). HTTP/1.1 needs exactly one Host
// (3.2): none or several is 400.
std::optional<EarlyAnswer> check_head(const Request& head);

// The origin form (path[?query]) of a request target: absolute-form targets
// ("http://host:port/v1/models?x") lose their scheme and authority ("/v1/models?x"; "/" when
// they have no path). Other targets are returned unchanged.
std::string_view origin_form(std::string_view target);

// Cross-origin resource sharing, vLLM's flag semantics (--allowed-origins/-methods/-headers,
// --allow-credentials). No allowed origin (the default): CORS is off, responses carry no
// Access-Control-* headers, and browsers keep pages of other origins out.
struct CorsOptions {
  std::vector<std::string> allowed_origins;       // "*": any origin
  std::vector<std::string> allowed_methods{"*"};  // "*": the requested one
  std::vector<std::string> allowed_headers{"*"};  // "*": the requested ones
  bool allow_credentials = false;
  int max_age_s = 600;  // how long a browser may cache a preflight answer

  bool enabled() const { return !allowed_origins.empty(); }
};

class Cors {
 public:
  explicit Cors(CorsOptions options) : options_(std::move(options)) {}

  bool enabled() const { return options_.enabled(); }
  // An OPTIONS request with Origin and Access-Control-Request-Method (only when enabled).
  bool is_preflight(const Request& head) const;
  // The answer to a preflight: 204 with the Access-Control-Allow-* headers when the origin,
  // method and headers are allowed, else 403.
  EarlyAnswer preflight(const Request& head) const;
  // Headers for any other response: Access-Control-Allow-Origin (+ credentials) and
  // `Vary: Origin` when the request's Origin is allowed; none otherwise.
  Headers response_headers(const Request& head) const;

 private:
  bool origin_allowed(std::string_view origin) const;
  // The Access-Control-Allow-Origin value for an allowed origin.
  std::string allow_origin_value(std::string_view origin) const;

  const CorsOptions options_;
};

}  // namespace turbine::http
