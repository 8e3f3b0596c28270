// Where `turbine run` finds its model: a local path, a Hub repo id, or the default.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "common/status.h"

namespace turbine::cli {

inline constexpr std::string_view kDefaultHubModel = "HuggingFaceTB/SmolLM2-135M-Instruct";

// `spec` empty: $TURBINE_SHARED/models/stories260K/stories260K.gguf if present, else the default
// Hub model. A path that exists is used as is; "org/name" is downloaded into the Hugging Face
// cache (HF_HOME, HF_TOKEN, HF_HUB_OFFLINE honoured) with a progress bar on a terminal.
Result<std::filesystem::path> resolve_model(const std::string& spec, const std::string& revision);

// What clients call the model when --served-model-name is not given: the Hub repo id as typed,
// else the file's stem or the folder's name (GGUF `general.name` is often just "llama").
std::string default_served_name(const std::string& spec, const std::filesystem::path& path);

}  // namespace turbine::cli
