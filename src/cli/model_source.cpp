#include "cli/model_source.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>

#include <spdlog/spdlog.h>

#include "cli/progress_bar.h"
#include "common/env.h"
#include "hub/hub.h"

namespace turbine::cli {
Result<std::filesystem::path> resolve_model(const std::string& spec, const std::string& revision) {
  namespace fs = std::filesystem;
  if (spec.empty()) {
    const fs::path def = shared_dir() / "models" / "stories260K" / "stories260K.gguf";
    std::error_code ec;
    if (fs::exists(def, ec)) return def;
    spdlog::info("{} not found; using {} from the Hugging Face Hub", def.string(),
                 kDefaultHubModel);
    auto path = resolve_model(std::string(kDefaultHubModel), revision);
    if (!path) {
      return Status(path.status().code(),
                    "no model given and the default model is unavailable (" +
                        path.status().message() +
                        "). Pass one with --model PATH (a GGUF file or a Hugging Face folder) "
                        "or --model org/name, or set TURBINE_SHARED to the folder holding "
                        "models/stories260K/stories260K.gguf.",
                    "model");
    }
    return path;
  }
  std::error_code ec;
  if (fs::exists(spec, ec)) return fs::path(spec);
  if (!hub::looks_like_repo_id(spec)) {
    return not_found(spec + ": no such file or directory (and not a Hub repo id org/name)",
                     "model");
  }
  hub::HubOptions opts = hub::hub_options_from_env();
  opts.revision = revision;
  ProgressBar bar(true);
  if (isatty(STDERR_FILENO)) opts.on_progress = [&bar](const hub::Progress& p) { bar.update(p); };
  const auto t0 = std::chrono::steady_clock::now();
  auto path = hub::snapshot_download(spec, opts);
  if (!path) return path.status();
  spdlog::info("{}@{} ready in {} ({:.1f} s)", spec, revision, path->string(),
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return path;
}

std::string default_served_name(const std::string& spec, const std::filesystem::path& path) {
  if (!spec.empty() && !std::filesystem::exists(spec)) return spec;
  std::filesystem::path p = path;
  if (p.filename().empty()) p = p.parent_path();
  return std::filesystem::is_directory(p) ? p.filename().string() : p.stem().string();
}

}  // namespace turbine::cli
