// Environment defaults and repo-id detection; the variable names and precedence follow
// huggingface_hub's constants.py so both tools agree on where the cache is.
#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>
#include <system_error>

#include "common/env.h"
#include "hub/cache_layout.h"
#include "hub/hub.h"

namespace turbine::hub {
namespace fs = std::filesystem;
namespace {

bool env_is_true(const char* name) {
  auto v = get_env(name);
  if (!v) return false;
  std::string s = *v;
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s == "1" || s == "on" || s == "yes" || s == "true";
}

fs::path hf_home() {
  if (auto v = get_env("HF_HOME")) return *v;
  if (auto v = get_env("XDG_CACHE_HOME")) return fs::path(*v) / "huggingface";
  if (auto v = get_env("HOME")) return fs::path(*v) / ".cache" / "huggingface";
  return fs::path(".cache") / "huggingface";
}

std::optional<std::string> read_token_file(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream s;
  s << in.rdbuf();
  std::string token = s.str();
  const auto not_space = [](unsigned char c) { return !std::isspace(c); };
  token.erase(token.begin(), std::find_if(token.begin(), token.end(), not_space));
  token.erase(std::find_if(token.rbegin(), token.rend(), not_space).base(), token.end());
  if (token.empty()) return std::nullopt;
  return token;
}

}  // namespace

HubOptions hub_options_from_env() {
  HubOptions options;
  if (auto v = get_env("HF_ENDPOINT")) {
    std::string endpoint = *v;
    while (!endpoint.empty() && endpoint.back() == '/') endpoint.pop_back();
    if (!endpoint.empty()) options.endpoint = endpoint;
  }
  if (auto v = get_env("HF_HUB_CACHE")) {
    options.cache_dir = *v;
  } else if (auto legacy = get_env("HUGGINGFACE_HUB_CACHE")) {
    options.cache_dir = *legacy;
  } else {
    options.cache_dir = hf_home() / "hub";
  }
  if (auto v = get_env("HF_TOKEN")) {
    options.token = *v;
  } else if (auto legacy = get_env("HUGGING_FACE_HUB_TOKEN")) {
    options.token = *legacy;
  } else {
    // Written by `huggingface-cli login` / `hf auth login`.
    const fs::path token_path = get_env("HF_TOKEN_PATH").value_or((hf_home() / "token").string());
    options.token = read_token_file(token_path);
  }
  options.offline = env_is_true("HF_HUB_OFFLINE");
  return options;
}

bool looks_like_repo_id(std::string_view text) {
  if (text.find('/') == std::string_view::npos) return false;
  if (!validate_repo_id(text).is_ok()) return false;
  std::error_code ec;
  return !fs::exists(fs::path(text), ec);
}

}  // namespace turbine::hub
