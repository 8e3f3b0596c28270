#include "model/safetensors.h"

#include <cstring>
#include <nlohmann/json.hpp>

namespace turbine::model {
namespace {

size_t dtype_bytes(const std::string& d) {
  if (d == "F64" || d == "I64" || d == "U64") return 8;
  if (d == "F32" || d == "I32" || d == "U32") return 4;
  if (d == "F16" || d == "BF16" || d == "I16" || d == "U16") return 2;
  if (d == "I8" || d == "U8" || d == "BOOL" || d == "F8_E4M3" || d == "F8_E5M2") return 1;
  return 0;
}

}  // namespace

Result<std::map<std::string, SafetensorsTensor>> parse_safetensors(const MappedFile& file) {
  const std::string fname = file.path().filename().string();
  if (file.size() < 8) return data_loss(fname + ": truncated safetensors header", "header");
  uint64_t header_len = 0;
  std::memcpy(&header_len, file.data(), 8);
  if (header_len > file.size() - 8 || header_len > (uint64_t{100} << 20)) {
    return data_loss(fname + ": header length " + std::to_string(header_len) + " exceeds file size",
                     "header");
  }
  const size_t data_start = 8 + static_cast<size_t>(header_len);
  const size_t data_size = file.size() - data_start;
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(file.data() + 8, file.data() + data_start);
  } catch (const std::exception& e) {
    return data_loss(fname + ": header is not valid JSON: " + e.what(), "header");
  }
  if (!header.is_object()) return data_loss(fname + ": header is not a JSON object", "header");
  std::map<std::string, SafetensorsTensor> out;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    if (name == "__metadata__") continue;
    const std::string where = fname + ": tensor " + name;
    const nlohmann::json& j = it.value();
    if (!j.is_object() || !j.contains("dtype") || !j["dtype"].is_string() || !j.contains("shape") ||
        !j["shape"].is_array() || !j.contains("data_offsets") || !j["data_offsets"].is_array() ||
        j["data_offsets"].size() != 2) {
      return data_loss(where + ": malformed header entry", name);
    }
    SafetensorsTensor t;
    t.dtype = j["dtype"].get<std::string>();
    uint64_t n_elems = 1;
    for (const auto& d : j["shape"]) {
      if (!d.is_number_unsigned()) return data_loss(where + ": bad shape", name);
      const uint64_t v = d.get<uint64_t>();
      if (__builtin_mul_overflow(n_elems, v, &n_elems) || n_elems > (uint64_t{1} << 40)) {
        return data_loss(where + ": shape too large", name);
      }
      t.shape.push_back(static_cast<int64_t>(v));
    }
    const auto& offs = j["data_offsets"];
    if (!offs[0].is_number_unsigned() || !offs[1].is_number_unsigned())
      return data_loss(where + ": bad data_offsets", name);
    const uint64_t begin = offs[0].get<uint64_t>(), end = offs[1].get<uint64_t>();
    if (begin > end || end > data_size)
      return data_loss(where + ": data extends past end of file", name);
    const size_t eb = dtype_bytes(t.dtype);
    if (eb != 0 && (end - begin) != n_elems * eb) {
      return data_loss(where + ": " + std::to_string(end - begin) +
                           " bytes do not match shape and dtype " + t.dtype,
                       name);
    }
    t.data = file.data() + data_start + begin;
    t.size_bytes = static_cast<size_t>(end - begin);
    out.emplace(name, std::move(t));
  }
  return out;
}

}  // namespace turbine::model
