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
  // Keeps buffers made at load (FP8 scales as f32, weights quantized at load) alive for as long
  // as the model; the returned pointer stays valid (a moved vector keeps its storage).
  const float* own(std::vector<float> v) {
    floats_.push_back(std::move(v));
    return floats_.back().data();
  }
  const uint8_t* own(std::vector<uint8_t> v) {
    bytes_.push_back(std::move(v));
    return bytes_.back().data();
  }

 private:
  std::vector<MappedFile> files_;
  std::vector<std::vector<float>> floats_;
  std::vector<std::vector<uint8_t>> bytes_;
};

// `--quantization fp8`: every linear layer's weights (q, k, v, o, gate, up, down) not already in
// FP8 become FP8 E4M3 with per-channel scales and per-token dynamic input quantization
// (model::Quantization::kFp8). Runs on the loader thread, over all cores.
Status quantize_linear_fp8(LoadedModel& model);

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
