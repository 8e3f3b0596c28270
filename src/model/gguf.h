// GGUF (v2, v3) container parsing: header, metadata key/values, tensor infos, data section.
//
// Parsing never trusts a count or offset from the file: every read is bounds-checked against the
// mapping, so a corrupt file gives a Status naming the file and the key or tensor. Parsed objects
// are immutable; the tensor data pointers point into the MappedFile the caller keeps alive.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "model/mapped_file.h"
#include "model/model.h"

namespace turbine::model {

enum class GgufType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

// ggml tensor types we load (others are reported by number).
inline constexpr uint32_t kGgmlF32 = 0;
inline constexpr uint32_t kGgmlF16 = 1;
inline constexpr uint32_t kGgmlQ8_0 = 8;
inline constexpr uint32_t kGgmlBF16 = 30;

// One metadata value. Scalars use the field matching `type`; arrays keep their element type and
// fill exactly one of the vectors (integers of any width in `ints`, floats in `floats`, strings in
// `strings`); arrays of arrays keep only their length.
struct GgufValue {
  GgufType type = GgufType::kUint8;
  GgufType elem_type = GgufType::kUint8;
  int64_t i = 0;  // all integer types (uint64 above INT64_MAX wraps), bool
  double f = 0;
  std::string str;
  uint64_t array_len = 0;
  std::vector<int64_t> ints;
  std::vector<double> floats;
  std::vector<std::string> strings;

  bool is_integer() const;
  bool is_float() const { return type == GgufType::kFloat32 || type == GgufType::kFloat64; }
};

struct GgufTensorInfo {
  std::string name;
  std::vector<uint64_t> dims;  // ne[0] is the contiguous dimension
  uint32_t ggml_type = 0;
  uint64_t offset = 0;  // relative to the data section
  const uint8_t* data = nullptr;
  size_t size_bytes = 0;
};

class GgufFile {
 public:
  // Parses and validates the container; `file` must outlive the result's data pointers.
  static Result<GgufFile> parse(const MappedFile& file);

  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  const std::map<std::string, GgufValue>& metadata() const { return kv_; }
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufValue* find(const std::string& key) const;
  const GgufTensorInfo* find_tensor(const std::string& name) const;

 private:
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::map<std::string, GgufValue> kv_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t> tensor_index_;
};

}  // namespace turbine::model
