// Writers for GGUF and safetensors files: used to convert or quantize models and by tests to build
// variants of a model (corrupt files, other dtypes, Hugging Face folders).
//
// Plain value types; a writer is used by one thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "common/status.h"
#include "model/gguf.h"

namespace turbine::model {

class GgufWriter {
 public:
  void add_string(const std::string& key, const std::string& v);
  void add_u32(const std::string& key, uint32_t v);
  void add_i32(const std::string& key, int32_t v);
  void add_f32(const std::string& key, float v);
  void add_bool(const std::string& key, bool v);
  void add_string_array(const std::string& key, const std::vector<std::string>& v);
  void add_f32_array(const std::string& key, const std::vector<float>& v);
  void add_i32_array(const std::string& key, const std::vector<int32_t>& v);
  // Copies a parsed value (arrays of arrays are not supported and are skipped).
  void add_value(const std::string& key, const GgufValue& v);
  // `dims` as GGUF stores them: dims[0] is the contiguous dimension.
  void add_tensor(const std::string& name, uint32_t ggml_type, std::vector<uint64_t> dims,
                  std::vector<uint8_t> bytes);

  std::vector<uint8_t> serialize(uint32_t version = 3, uint64_t alignment = 32) const;
  Status write(const std::filesystem::path& path, uint32_t version = 3,
               uint64_t alignment = 32) const;

 private:
  struct Tensor {
    std::string name;
    uint32_t type;
    std::vector<uint64_t> dims;
    std::vector<uint8_t> bytes;
  };
  std::vector<uint8_t> kv_bytes_;
  uint64_t n_kv_ = 0;
  std::vector<Tensor> tensors_;
};

struct SafetensorsEntry {
  std::string name;
  std::string dtype;  // "F32", "F16", "BF16"
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

Status write_safetensors(const std::filesystem::path& path,
                         const std::vector<SafetensorsEntry>& tensors);

Status write_file(const std::filesystem::path& path, const void* data, size_t size);

}  // namespace turbine::model
