#include "http/router.h"

#include "common/strings.h"

#include <cctype>

namespace turbine::http {
namespace {

void append_escaped(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(ch);
    } else if (c < 0x20 || c >= 0x80) {
      // Non-ASCII is escaped byte-wise as \u00XX: always valid JSON, whatever the input bytes.
      out += "\\u00";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    } else {
      out.push_back(ch);
    }
  }
}

}  // namespace

std::string_view Request::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (iequals(key, name)) return value;
  }
  return {};
}

std::string default_error_body(int status, std::string_view message) {
  std::string out = R"({"error":{"message":")";
  append_escaped(out, message);
  out += "\"}}";
  return out;
}

Router::Router() : error_body_(default_error_body) {}

void Router::add(std::string method, std::string path, Handler handler) {
  for (Route& r : routes_) {
    if (!r.prefix && r.method == method && r.path == path) {
      r.handler = std::move(handler);
      return;
    }
  }
  routes_.push_back({std::move(method), std::move(path), std::move(handler)});
}

void Router::add_prefix(std::string method, std::string prefix, Handler handler) {
  for (Route& r : routes_) {
    if (r.prefix && r.method == method && r.path == prefix) {
      r.handler = std::move(handler);
      return;
    }
  }
  routes_.push_back({std::move(method), std::move(prefix), std::move(handler), true});
}

void Router::set_error_body(ErrorBodyFn fn, std::string content_type) {
  error_body_ = fn ? std::move(fn) : ErrorBodyFn(default_error_body);
  error_content_type_ = std::move(content_type);
}

Router::Match Router::match(std::string_view method, std::string_view path) const {
  Match m = match_routes(method, path, /*prefix=*/false);
  if (m.outcome == Outcome::kNotFound) m = match_routes(method, path, /*prefix=*/true);
  return m;
}

Router::Match Router::match_routes(std::string_view method, std::string_view path,
                                   bool prefix) const {
  // Prefix routes: only the longest prefix of `path` that has routes takes part.
  std::string_view key = path;
  if (prefix) {
    key = {};
    for (const Route& r : routes_) {
      if (r.prefix && path.size() > r.path.size() && path.starts_with(r.path) &&
          r.path.size() > key.size()) {
        key = r.path;
      }
    }
    if (key.empty()) return {};
  }
  Match m;
  const Route* get = nullptr;  // HEAD falls back to the GET route (RFC 9110 9.3.2)
  for (const Route& r : routes_) {
    if (r.prefix != prefix || r.path != key) continue;
    if (r.method == method) {
      m.outcome = Outcome::kFound;
      m.handler = &r.handler;
      m.allow.clear();
      return m;
    }
    if (r.method == "GET") get = &r;
    m.outcome = Outcome::kMethodNotAllowed;
    if (!m.allow.empty()) m.allow += ", ";
    m.allow += r.method;
  }
  if (get != nullptr && method == "HEAD") {
    m.outcome = Outcome::kFound;
    m.handler = &get->handler;
    m.allow.clear();
    return m;
  }
  if (get != nullptr && m.allow.find("HEAD") == std::string::npos) m.allow += ", HEAD";
  return m;
}

std::string Router::error_body(int status, std::string_view message) const {
  try {
    return error_body_(status, message);
  } catch (...) {
    return default_error_body(status, message);  // a throwing formatter must not kill the server
  }
}

}  // namespace turbine::http
