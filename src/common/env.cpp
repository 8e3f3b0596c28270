#include "common/env.h"

#include <cstdlib>

namespace turbine {

std::optional<std::string> get_env(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}

std::filesystem::path shared_dir() {
  if (auto v = get_env("TURBINE_SHARED")) return *v;
  return std::filesystem::path("..") / "shared";
}

}  // namespace turbine
