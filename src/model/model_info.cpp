#include "model/model_info.h"

#include <cstring>
#include <fstream>
#include <system_error>

#include "model/loaded_model.h"

namespace turbine::model {

Result<ModelInfo> load_model_info(const std::filesystem::path& path) {
  // The same dispatch as load_model.
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return load_hf_info(path);
  if (!std::filesystem::exists(path, ec))
    return not_found(path.string() + ": no such file or directory");
  if (path.filename() == "config.json") return load_hf_info(path.parent_path());
  char magic[4] = {};
  std::ifstream(path, std::ios::binary).read(magic, sizeof magic);
  if (std::memcmp(magic, "GGUF", 4) != 0 && path.extension() == ".bin")
    return load_llama2c_info(path);
  return load_gguf_info(path);
}

ModelInfo model_info(const Model& model) {
  ModelInfo info;
  info.name = model.name();
  info.path = model.path();
  info.arch_name = model.config().arch_name;
  info.n_vocab = model.config().n_vocab;
  info.max_context = model.config().max_context;
  info.vocab = model.vocab();
  return info;
}

}  // namespace turbine::model
