// Process environment lookups used by several modules (TURBINE_SHARED, HF_HOME...).
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace turbine {

std::optional<std::string> get_env(const char* name);

// Directory of shared assets: $TURBINE_SHARED, else `../shared` relative to the working directory.
std::filesystem::path shared_dir();

}  // namespace turbine
