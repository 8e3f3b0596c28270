// safetensors container parsing: 8-byte header length, JSON header, raw little-endian data.
//
// Bounds-checked like the GGUF parser; views point into the MappedFile the caller keeps alive.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"
#include "model/mapped_file.h"
#include "model/model.h"

namespace turbine::model {

struct SafetensorsTensor {
  std::string dtype;  // as written: "F32", "F16", "BF16", "I64", ...
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  size_t size_bytes = 0;
};

// Tensor name -> tensor. Tensors of dtypes we cannot use are kept (a model may carry them);
// loading rejects them only if they are needed.
Result<std::map<std::string, SafetensorsTensor>> parse_safetensors(const MappedFile& file);

}  // namespace turbine::model
