// Which files of a Hub repository Turbine downloads, and in what order.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace turbine::hub {

inline constexpr std::string_view kConfigFile = "config.json";
inline constexpr std::string_view kSafetensorsIndexFile = "model.safetensors.index.json";

// Top-level configs, tokenizer files and *.safetensors. Files in sub-folders are skipped: repos
// keep alternative copies of the weights there (original/, onnx/, gguf/...) that Turbine never
// reads. Other weight formats (.bin, .pt, .h5, .msgpack, .onnx) are skipped as well.
bool is_wanted_file(std::string_view rfilename);

// The distinct shard file names of a safetensors index (`weight_map` values).
Result<std::vector<std::string>> shards_from_index(std::string_view index_json);

// The files to download from `siblings`, in download order. `index_shards` is the content of
// model.safetensors.index.json when the repo has one: only the shards it names are kept, which
// skips duplicates such as a consolidated.safetensors next to the sharded weights.
// config.json comes last, so its presence in a snapshot means every other file is there too.
std::vector<std::string> select_files(const std::vector<std::string>& siblings,
                                      const std::vector<std::string>* index_shards);

}  // namespace turbine::hub
