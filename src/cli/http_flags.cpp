#include "cli/http_flags.h"

#include <cstdlib>

#include <spdlog/spdlog.h>
#include <boost/json.hpp>

namespace turbine::cli {
namespace {

constexpr const char* kApiKeyEnv = "TURBINE_API_KEY";

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return std::string(s);
}

}  // namespace

Result<std::vector<std::string>> parse_list_flag(const std::vector<std::string>& values,
                                                 const char* flag) {
  std::vector<std::string> out;
  for (const std::string& v : values) {
    const std::string t = trim(v);
    if (!t.empty() && t.front() == '[') {
      boost::system::error_code ec;
      const boost::json::value j = boost::json::parse(t, ec);
      if (ec || !j.is_array()) {
        return invalid_argument(std::string(flag) + ": `" + t + "` is not a JSON list of strings");
      }
      for (const boost::json::value& e : j.as_array()) {
        if (!e.is_string()) {
          return invalid_argument(std::string(flag) + ": `" + t +
                                  "` is not a JSON list of strings");
        }
        out.emplace_back(e.as_string().c_str());
      }
      continue;
    }
    size_t start = 0;
    while (start <= t.size()) {
      const size_t comma = t.find(',', start);
      const std::string item = trim(std::string_view(t).substr(start, comma - start));
      if (!item.empty()) out.push_back(item);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  return out;
}

void HttpFlags::add_to(CLI::App& cmd) {
  api_key_option_ = cmd.add_option("--api-key", api_key,
                                   "Require this key (`Authorization: Bearer KEY` or `x-api-key: "
                                   "KEY`) on every route but /health, /live and /metrics")
                        ->envname(kApiKeyEnv);
  cmd.add_option("--allowed-origins", allowed_origins,
                 "CORS: origins allowed to call the API from a browser, comma-separated or a "
                 "JSON list; \"*\" for any (default: none, CORS off)")
      ->envname("TURBINE_ALLOWED_ORIGINS");
  cmd.add_option("--allowed-methods", allowed_methods,
                 "CORS: methods allowed (default: \"*\", whatever a preflight asks)");
  cmd.add_option("--allowed-headers", allowed_headers,
                 "CORS: request headers allowed (default: \"*\", whatever a preflight asks)");
  cmd.add_flag("--allow-credentials", allow_credentials, "CORS: allow credentials (cookies)");
  cmd.add_option("--max-connections", max_connections,
                 "Open HTTP connections at most; more get 503 (0: the descriptor limit less 256)")
      ->envname("TURBINE_MAX_CONNECTIONS")
      ->capture_default_str();
}

Status HttpFlags::apply(frontend::FrontendOptions& http) const {
  // CLI11 skips an environment variable set to "": look at it directly.
  const char* env_key = std::getenv(kApiKeyEnv);
  const bool given =
      (api_key_option_ != nullptr && api_key_option_->count() > 0) || (env_key != nullptr);
  if (given && api_key.empty()) {
    return invalid_argument(std::string("the API key is empty (--api-key \"\" or ") + kApiKeyEnv +
                                " set to \"\"): refusing to start without authentication; unset "
                                "it to serve without a key",
                            "api_key");
  }
  if (given) http.api_key = api_key;
  TURBINE_ASSIGN_OR_RETURN(http.cors.allowed_origins,
                           parse_list_flag(allowed_origins, "--allowed-origins"));
  if (!allowed_methods.empty()) {
    TURBINE_ASSIGN_OR_RETURN(http.cors.allowed_methods,
                             parse_list_flag(allowed_methods, "--allowed-methods"));
  }
  if (!allowed_headers.empty()) {
    TURBINE_ASSIGN_OR_RETURN(http.cors.allowed_headers,
                             parse_list_flag(allowed_headers, "--allowed-headers"));
  }
  http.cors.allow_credentials = allow_credentials;
  http.max_connections = max_connections;
  if (http.api_key) {
    spdlog::info("API key required on every route but /health, /live and /metrics");
  } else {
    spdlog::warn("no API key: anyone who can reach the server may use it (--api-key or {})",
                 kApiKeyEnv);
  }
  if (http.cors.enabled()) {
    std::string origins;
    for (const std::string& o : http.cors.allowed_origins)
      origins += (origins.empty() ? "" : ", ") + o;
    spdlog::info("CORS: allowed origins {}", origins);
  }
  return Status::ok();
}

}  // namespace turbine::cli
