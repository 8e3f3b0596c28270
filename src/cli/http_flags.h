// Flags of the OpenAI-facing HTTP server, shared by `turbine run` and `turbine frontend`: the API
// key, CORS (vLLM's flag names) and the connection cap.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "common/status.h"
#include "frontend/frontend.h"

namespace turbine::cli {

struct HttpFlags {
  std::string api_key;
  std::vector<std::string> allowed_origins;
  std::vector<std::string> allowed_methods;
  std::vector<std::string> allowed_headers;
  bool allow_credentials = false;
  size_t max_connections = 0;

  void add_to(CLI::App& cmd);
  // Fills `http` (api_key, cors, max_connections) and logs whether a key is required. An empty
  // key, from --api-key "" or a TURBINE_API_KEY set to "" (an unset secret), is an error: it
  // would otherwise turn authentication off without a word.
  Status apply(frontend::FrontendOptions& http) const;

 private:
  CLI::Option* api_key_option_ = nullptr;
};

// A list flag's values: vLLM's JSON form ('["a","b"]') or comma-separated ("a,b"), either
// repeated. InvalidArgument for malformed JSON.
Result<std::vector<std::string>> parse_list_flag(const std::vector<std::string>& values,
                                                 const char* flag);

}  // namespace turbine::cli
