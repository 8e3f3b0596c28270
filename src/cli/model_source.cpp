#include "cli/model_source.h"

#include <unistd.h>

#include <cstdio>

#include <spdlog/spdlog.h>

#include "common/env.h"

namespace turbine::cli {

Result<std::filesystem::path> resolve_model(const std::string& spec, const std::string& revision) {
  namespace fs = std::filesystem;
  if (spec.empty()) {
    const fs::path def = shared_dir() / "models" / "stories260K" / "stories260K.gguf";
    std::error_code ec;
    if (fs::exists(def, ec)) return def;
    return resolve_model(std::string(kDefaultHubModel), revision);
  }
  std::error_code ec;
  if (fs::exists(spec, ec)) return fs::path(spec);
  return not_found(spec + ": no such file or directory", "model");
}

}  // namespace turbine::cli
