// The concrete Model the loaders build: owns the memory maps the weight views point into.
//
// Internal to src/model (and tests). Filled by one loader thread, then immutable.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "model/mapped_file.h"
#include "model/model.h"
#include "model/model_info.h"

namespace turbine::model {

class LoadedModel final : public Model {
 public:
  ModelConfig& mutable_config() { return config_; }
  Weights& mutable_weights() { return weights_; }
  VocabSpec& mutable_vocab() { return vocab_; }
  void set_path(std::filesystem::path p) { path_ = std::move(p); }
  void set_name(std::string n) { name_ = std::move(n); }
  // Keeps a mapping alive for as long as the model; views may point into it.
  void own(MappedFile file) { files_.push_back(std::move(file)); }

 private:
  std::vector<MappedFile> files_;
};

// Checks every tensor shape against the config and that required tensors are present.
// `source` names the file or folder for error messages.
Status validate_weights(const ModelConfig& config, const Weights& weights,
                        const std::string& source);
// Checks the hyper-parameters are positive and consistent.
Status validate_config(const ModelConfig& config, const std::string& source);

Result<std::unique_ptr<Model>> load_gguf(const std::filesystem::path& path,
                                         MappedFile::Mode mode = MappedFile::Mode::kMap);
Result<std::unique_ptr<Model>> load_hf_folder(const std::filesystem::path& dir,
                                              MappedFile::Mode mode = MappedFile::Mode::kMap);
// Metadata only (model/model_info.h).
Result<ModelInfo> load_gguf_info(const std::filesystem::path& path);
Result<ModelInfo> load_hf_info(const std::filesystem::path& dir);
Result<ModelInfo> load_llama2c_info(const std::filesystem::path& path);

}  // namespace turbine::model
