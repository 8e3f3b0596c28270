#include "http/request_checks.h"

#include <algorithm>

#include "common/strings.h"

namespace turbine::http {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Calls fn on every non-empty element of a comma-separated header list.
template <typename Fn>
void for_each_token(std::string_view list, Fn fn) {
  while (!list.empty()) {
    const size_t comma = list.find(',');
    const std::string_view item = trim(list.substr(0, comma));
    if (!item.empty()) fn(item);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
}

// A transfer coding without its parameters ("gzip;q=1" -> "gzip").
std::string_view coding_name(std::string_view coding) {
  return trim(coding.substr(0, coding.find(';')));
}

bool contains_ci(const std::vector<std::string>& list, std::string_view v) {
  return std::any_of(list.begin(), list.end(), [&](const std::string& s) { return iequals(s, v); });
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const std::string& s : v) {
    if (!out.empty()) out += ", ";
    out += s;
  }
  return out;
}

}  // namespace

std::optional<EarlyAnswer> check_head(const Request& head) {
  std::vector<std::string_view> codings;
  bool has_te = false;
  int hosts = 0;
  for (const auto& [name, value] : head.headers) {
    if (iequals(name, "transfer-encoding")) {
      has_te = true;
      for_each_token(value, [&](std::string_view c) { codings.push_back(coding_name(c)); });
    } else if (iequals(name, "host")) {
      ++hosts;
    }
  }
  if (has_te) {
    if (head.version < 11) {
      return EarlyAnswer{400, "Transfer-Encoding is not allowed in an HTTP/1.0 request", {}, true};
    }
    const auto n_chunked = std::count_if(codings.begin(), codings.end(),
                                         [](std::string_view c) { return iequals(c, "chunked"); });
    if (codings.empty() || !iequals(codings.back(), "chunked") || n_chunked != 1) {
      return EarlyAnswer{400,
                         "Transfer-Encoding must end with a single `chunked` coding (RFC 9112 6.3)",
                         {},
                         true};
    }
    if (codings.size() > 1) {
      return EarlyAnswer{
          501, "transfer coding `" + std::string(codings.front()) + "` is not supported", {}, true};
    }
  }
  if (hosts > 1) return EarlyAnswer{400, "more than one Host header", {}, false};
  if (hosts == 0 && head.version >= 11) {
    return EarlyAnswer{400, "an HTTP/1.1 request needs a Host header", {}, false};
  }
  return std::nullopt;
}

std::string_view origin_form(std::string_view target) {
  size_t scheme = 0;
  if (target.size() >= 7 && iequals(target.substr(0, 7), "http://")) {
    scheme = 7;
  } else if (target.size() >= 8 && iequals(target.substr(0, 8), "https://")) {
    scheme = 8;
  } else {
    return target;
  }
  const std::string_view rest = target.substr(scheme);
  const size_t path = rest.find_first_of("/?");
  if (path == std::string_view::npos) return "/";
  if (rest[path] == '?') return "/";  // "http://h?q": no path; the query of "/" is not kept
  return rest.substr(path);
}

bool Cors::is_preflight(const Request& head) const {
  return enabled() && head.method == "OPTIONS" && !head.header("origin").empty() &&
         !head.header("access-control-request-method").empty();
}

bool Cors::origin_allowed(std::string_view origin) const {
  if (origin.empty()) return false;
  for (const std::string& o : options_.allowed_origins) {
    if (o == "*" || o == origin) return true;  // origins are compared exactly, as browsers send
  }
  return false;
}

std::string Cors::allow_origin_value(std::string_view origin) const {
  // A wildcard cannot carry credentials (Fetch standard): echo the origin then.
  const bool any = std::find(options_.allowed_origins.begin(), options_.allowed_origins.end(),
                             "*") != options_.allowed_origins.end();
  return any && !options_.allow_credentials ? "*" : std::string(origin);
}

EarlyAnswer Cors::preflight(const Request& head) const {
  const std::string_view origin = head.header("origin");
  const std::string_view method = trim(head.header("access-control-request-method"));
  const std::string_view requested = head.header("access-control-request-headers");
  if (!origin_allowed(origin)) {
    return {403, "CORS: origin " + std::string(origin) + " is not allowed", {}, false};
  }
  const bool any_method = contains_ci(options_.allowed_methods, "*");
  if (!any_method && !contains_ci(options_.allowed_methods, method)) {
    return {403, "CORS: method " + std::string(method) + " is not allowed", {}, false};
  }
  const bool any_header = contains_ci(options_.allowed_headers, "*");
  std::string bad;
  if (!any_header) {
    for_each_token(requested, [&](std::string_view h) {
      if (bad.empty() && !contains_ci(options_.allowed_headers, h)) bad = h;
    });
  }
  if (!bad.empty()) return {403, "CORS: header " + bad + " is not allowed", {}, false};

  EarlyAnswer a{204, {}, {}, false};
  a.headers.emplace_back("Access-Control-Allow-Origin", allow_origin_value(origin));
  // The wildcards are answered with what was asked: a literal "*" does not cover Authorization.
  a.headers.emplace_back("Access-Control-Allow-Methods",
                         any_method ? std::string(method) : join(options_.allowed_methods));
  if (!requested.empty() || !any_header) {
    a.headers.emplace_back("Access-Control-Allow-Headers", any_header
                                                               ? std::string(trim(requested))
                                                               : join(options_.allowed_headers));
  }
  if (options_.allow_credentials)
    a.headers.emplace_back("Access-Control-Allow-Credentials", "true");
  a.headers.emplace_back("Access-Control-Max-Age", std::to_string(options_.max_age_s));
  a.headers.emplace_back("Vary",
                         "Origin, Access-Control-Request-Method, Access-Control-Request-Headers");
  return a;
}

Headers Cors::response_headers(const Request& head) const {
  Headers h;
  if (!enabled()) return h;
  const std::string_view origin = head.header("origin");
  if (!origin_allowed(origin)) return h;
  h.emplace_back("Access-Control-Allow-Origin", allow_origin_value(origin));
  if (options_.allow_credentials) h.emplace_back("Access-Control-Allow-Credentials", "true");
  h.emplace_back("Vary", "Origin");
  return h;
}

}  // namespace turbine::http
