#include "model/model_writer.h"

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

namespace turbine::model {
namespace {

template <typename T>
void put(std::vector<uint8_t>& out, T v) {
  const auto* p = reinterpret_cast<const uint8_t*>(&v);
  out.insert(out.end(), p, p + sizeof(T));
}

void put_string(std::vector<uint8_t>& out, const std::string& s) {
  put<uint64_t>(out, s.size());
  out.insert(out.end(), s.begin(), s.end());
}

void put_key(std::vector<uint8_t>& out, const std::string& key, GgufType t) {
  put_string(out, key);
  put<uint32_t>(out, static_cast<uint32_t>(t));
}

void put_scalar(std::vector<uint8_t>& out, GgufType t, int64_t i, double f) {
  switch (t) {
    case GgufType::kUint8:
    case GgufType::kBool: put<uint8_t>(out, static_cast<uint8_t>(i)); break;
    case GgufType::kInt8: put<int8_t>(out, static_cast<int8_t>(i)); break;
    case GgufType::kUint16: put<uint16_t>(out, static_cast<uint16_t>(i)); break;
    case GgufType::kInt16: put<int16_t>(out, static_cast<int16_t>(i)); break;
    case GgufType::kUint32: put<uint32_t>(out, static_cast<uint32_t>(i)); break;
    case GgufType::kInt32: put<int32_t>(out, static_cast<int32_t>(i)); break;
    case GgufType::kUint64: put<uint64_t>(out, static_cast<uint64_t>(i)); break;
    case GgufType::kInt64: put<int64_t>(out, i); break;
    case GgufType::kFloat32: put<float>(out, static_cast<float>(f)); break;
    case GgufType::kFloat64: put<double>(out, f); break;
    default: break;
  }
}

}  // namespace

void GgufWriter::add_string(const std::string& key, const std::string& v) {
  put_key(kv_bytes_, key, GgufType::kString);
  put_string(kv_bytes_, v);
  ++n_kv_;
}
void GgufWriter::add_u32(const std::string& key, uint32_t v) {
  put_key(kv_bytes_, key, GgufType::kUint32);
  put(kv_bytes_, v);
  ++n_kv_;
}
void GgufWriter::add_i32(const std::string& key, int32_t v) {
  put_key(kv_bytes_, key, GgufType::kInt32);
  put(kv_bytes_, v);
  ++n_kv_;
}
void GgufWriter::add_f32(const std::string& key, float v) {
  put_key(kv_bytes_, key, GgufType::kFloat32);
  put(kv_bytes_, v);
  ++n_kv_;
}
void GgufWriter::add_bool(const std::string& key, bool v) {
  put_key(kv_bytes_, key, GgufType::kBool);
  put<uint8_t>(kv_bytes_, v ? 1 : 0);
  ++n_kv_;
}
void GgufWriter::add_string_array(const std::string& key, const std::vector<std::string>& v) {
  put_key(kv_bytes_, key, GgufType::kArray);
  put<uint32_t>(kv_bytes_, static_cast<uint32_t>(GgufType::kString));
  put<uint64_t>(kv_bytes_, v.size());
  for (const auto& s : v) put_string(kv_bytes_, s);
  ++n_kv_;
}
void GgufWriter::add_f32_array(const std::string& key, const std::vector<float>& v) {
  put_key(kv_bytes_, key, GgufType::kArray);
  put<uint32_t>(kv_bytes_, static_cast<uint32_t>(GgufType::kFloat32));
  put<uint64_t>(kv_bytes_, v.size());
  for (float x : v) put(kv_bytes_, x);
  ++n_kv_;
}
void GgufWriter::add_i32_array(const std::string& key, const std::vector<int32_t>& v) {
  put_key(kv_bytes_, key, GgufType::kArray);
  put<uint32_t>(kv_bytes_, static_cast<uint32_t>(GgufType::kInt32));
  put<uint64_t>(kv_bytes_, v.size());
  for (int32_t x : v) put(kv_bytes_, x);
  ++n_kv_;
}

void GgufWriter::add_value(const std::string& key, const GgufValue& v) {
  if (v.type == GgufType::kString) return add_string(key, v.str);
  if (v.type != GgufType::kArray) {
    put_key(kv_bytes_, key, v.type);
    put_scalar(kv_bytes_, v.type, v.i, v.f);
    ++n_kv_;
    return;
  }
  if (v.elem_type == GgufType::kArray) return;
  put_key(kv_bytes_, key, GgufType::kArray);
  put<uint32_t>(kv_bytes_, static_cast<uint32_t>(v.elem_type));
  put<uint64_t>(kv_bytes_, v.array_len);
  if (v.elem_type == GgufType::kString) {
    for (const auto& s : v.strings) put_string(kv_bytes_, s);
  } else if (v.elem_type == GgufType::kFloat32 || v.elem_type == GgufType::kFloat64) {
    for (double f : v.floats) put_scalar(kv_bytes_, v.elem_type, 0, f);
  } else {
    for (int64_t i : v.ints) put_scalar(kv_bytes_, v.elem_type, i, 0);
  }
  ++n_kv_;
}

void GgufWriter::add_tensor(const std::string& name, uint32_t ggml_type, std::vector<uint64_t> dims,
                            std::vector<uint8_t> bytes) {
  tensors_.push_back(Tensor{name, ggml_type, std::move(dims), std::move(bytes)});
}

std::vector<uint8_t> GgufWriter::serialize(uint32_t version, uint64_t alignment) const {
  std::vector<uint8_t> out;
  put<uint32_t>(out, 0x46554747);
  put<uint32_t>(out, version);
  put<uint64_t>(out, tensors_.size());
  put<uint64_t>(out, n_kv_);
  out.insert(out.end(), kv_bytes_.begin(), kv_bytes_.end());
  uint64_t offset = 0;
  std::vector<uint64_t> offsets;
  for (const Tensor& t : tensors_) {
    put_string(out, t.name);
    put<uint32_t>(out, static_cast<uint32_t>(t.dims.size()));
    for (uint64_t d : t.dims) put(out, d);
    put<uint32_t>(out, t.type);
    put<uint64_t>(out, offset);
    offsets.push_back(offset);
    offset += (t.bytes.size() + alignment - 1) / alignment * alignment;
  }
  out.resize((out.size() + alignment - 1) / alignment * alignment, 0);
  const size_t data_start = out.size();
  for (size_t k = 0; k < tensors_.size(); ++k) {
    out.resize(data_start + offsets[k], 0);
    out.insert(out.end(), tensors_[k].bytes.begin(), tensors_[k].bytes.end());
  }
  return out;
}

Status write_file(const std::filesystem::path& path, const void* data, size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return invalid_argument(path.string() + ": cannot create");
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
  if (!out) return internal_error(path.string() + ": write failed");
  return Status::ok();
}

Status GgufWriter::write(const std::filesystem::path& path, uint32_t version,
                         uint64_t alignment) const {
  const std::vector<uint8_t> bytes = serialize(version, alignment);
  return write_file(path, bytes.data(), bytes.size());
}

Status write_safetensors(const std::filesystem::path& path,
                         const std::vector<SafetensorsEntry>& tensors) {
  nlohmann::json header = nlohmann::json::object();
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    header[t.name] = {{"dtype", t.dtype},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
  }
  header["__metadata__"] = {{"format", "pt"}};
  std::string h = header.dump();
  h.resize((h.size() + 7) / 8 * 8, ' ');  // keeps tensor data 8-byte aligned
  std::vector<uint8_t> out;
  put<uint64_t>(out, h.size());
  out.insert(out.end(), h.begin(), h.end());
  for (const auto& t : tensors) out.insert(out.end(), t.bytes.begin(), t.bytes.end());
  return write_file(path, out.data(), out.size());
}

}  // namespace turbine::model
