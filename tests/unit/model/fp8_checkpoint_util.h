// FP8 checkpoints for the model and engine tests: turbine gen-model's compressed-tensors folders
// and edits of them (config keys, tensors), plus an e4m3 codec written independently of
// model/dtype.h (a table of the 127 non-negative values, nearest by search, ties to the even code)
// for reference computations.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "model/mapped_file.h"
#include "model/model_writer.h"
#include "model/random_model.h"
#include "model/safetensors.h"

namespace turbine::testing {

// e4m3fn value of code b by its definition (not model::e4m3_to_f32).
inline double ref_e4m3_value(uint8_t b) {
  const int e = (b >> 3) & 15, m = b & 7;
  if (e == 15 && m == 7) return std::nan("");
  const double v = e == 0 ? std::ldexp(m, -9) : std::ldexp(8 + m, e - 10);
  return (b & 0x80) ? -v : v;
}

// Nearest e4m3 code to x (|x| clamped to 448), ties to the even code.
inline uint8_t ref_e4m3_code(double x) {
  static const std::vector<double> pos = [] {
    std::vector<double> v;
    for (int b = 0; b < 127; ++b) v.push_back(ref_e4m3_value(static_cast<uint8_t>(b)));
    return v;
  }();
  const double a = std::min(std::fabs(x), 448.0);
  auto it = std::lower_bound(pos.begin(), pos.end(), a);
  int code = static_cast<int>(it - pos.begin());
  if (code == 127) code = 126;
  if (code > 0) {
    const double lo = pos[static_cast<size_t>(code - 1)], hi = pos[static_cast<size_t>(code)];
    if (a - lo < hi - a || (a - lo == hi - a && (code - 1) % 2 == 0)) --code;
  }
  return static_cast<uint8_t>(code | (x < 0 ? 0x80 : 0));
}

inline double ref_fp8_round(double x, double s) {
  return ref_e4m3_value(ref_e4m3_code(x / s)) * s;
}

inline std::string slurp_text(const std::filesystem::path& p) {
  std::stringstream ss;
  ss << std::ifstream(p, std::ios::binary).rdbuf();
  return ss.str();
}

inline nlohmann::json read_config(const std::filesystem::path& dir) {
  return nlohmann::json::parse(slurp_text(dir / "config.json"));
}

inline void write_config(const std::filesystem::path& dir, const nlohmann::json& j) {
  std::ofstream(dir / "config.json") << j.dump(2);
}

// A random tiny Llama (turbine gen-model) in `dir`: 16-bit, or compressed-tensors FP8.
inline void write_tiny(const std::filesystem::path& dir, bool fp8, uint64_t seed = 7,
                       model::DType dtype = model::DType::kBF16,
                       const std::string& shape = "tiny") {
  model::RandomModelOptions o;
  o.shape = shape;
  o.dtype = dtype;
  o.seed = seed;
  o.quantization = fp8 ? model::Quantization::kFp8 : model::Quantization::kNone;
  auto r = model::write_random_model(o, dir);
  ASSERT_TRUE(r.has_value()) << r.status().to_string();
}

// The tensors of a one-file folder as writable entries.
inline std::map<std::string, model::SafetensorsEntry> read_entries(
    const std::filesystem::path& dir) {
  std::map<std::string, model::SafetensorsEntry> out;
  auto f = model::MappedFile::open(dir / "model.safetensors", model::MappedFile::Mode::kRead);
  EXPECT_TRUE(f.has_value());
  if (!f) return out;
  auto ts = model::parse_safetensors(*f);
  EXPECT_TRUE(ts.has_value());
  if (!ts) return out;
  for (const auto& [name, t] : *ts)
    out[name] = model::SafetensorsEntry{name, t.dtype, t.shape,
                                        std::vector<uint8_t>(t.data, t.data + t.size_bytes)};
  return out;
}

inline void write_entries(const std::filesystem::path& dir,
                          const std::map<std::string, model::SafetensorsEntry>& m) {
  std::vector<model::SafetensorsEntry> v;
  for (const auto& [name, e] : m) v.push_back(e);
  ASSERT_TRUE(model::write_safetensors(dir / "model.safetensors", v).is_ok());
}

inline void edit_entries(
    const std::filesystem::path& dir,
    const std::function<void(std::map<std::string, model::SafetensorsEntry>&)>& fn) {
  auto m = read_entries(dir);
  fn(m);
  write_entries(dir, m);
}

// Values of an F32/F16/BF16/F8_E4M3 entry as doubles (F8: the stored values, unscaled).
inline std::vector<double> entry_values(const model::SafetensorsEntry& e) {
  std::vector<double> v;
  if (e.dtype == "F8_E4M3") {
    for (uint8_t b : e.bytes) v.push_back(ref_e4m3_value(b));
  } else if (e.dtype == "F32") {
    for (size_t i = 0; i < e.bytes.size(); i += 4) {
      float f;
      std::memcpy(&f, e.bytes.data() + i, 4);
      v.push_back(f);
    }
  } else {
    for (size_t i = 0; i < e.bytes.size(); i += 2) {
      uint16_t h;
      std::memcpy(&h, e.bytes.data() + i, 2);
      if (e.dtype == "BF16") {
        const uint32_t bits = static_cast<uint32_t>(h) << 16;
        float f;
        std::memcpy(&f, &bits, 4);
        v.push_back(f);
      } else {
        // F16 by its definition.
        const int ex = (h >> 10) & 31, m = h & 1023;
        double x = ex == 0 ? std::ldexp(m, -24) : std::ldexp(1024 + m, ex - 25);
        v.push_back((h & 0x8000) ? -x : x);
      }
    }
  }
  return v;
}

inline model::SafetensorsEntry f32_entry(const std::string& name, const std::vector<float>& v,
                                         std::vector<int64_t> shape) {
  model::SafetensorsEntry e{name, "F32", std::move(shape), std::vector<uint8_t>(v.size() * 4)};
  std::memcpy(e.bytes.data(), v.data(), e.bytes.size());
  return e;
}

// The seven linear modules of layer l ("model.layers.l.self_attn.q_proj", ...).
inline std::vector<std::string> linear_modules(int n_layers) {
  std::vector<std::string> out;
  for (int l = 0; l < n_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    for (const char* m : {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                          "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"})
      out.push_back(p + m);
  }
  return out;
}

// Rewrites a 16-bit folder as a quant_method "fp8" checkpoint with 128x128 block scales
// (`weight_scale_inv`, F32), as DeepSeek-style fp8 checkpoints store them.
inline void make_block_fp8(const std::filesystem::path& dir, int n_layers) {
  edit_entries(dir, [&](std::map<std::string, model::SafetensorsEntry>& m) {
    for (const std::string& mod : linear_modules(n_layers)) {
      model::SafetensorsEntry& w = m[mod + ".weight"];
      const std::vector<double> v = entry_values(w);
      const int64_t rows = w.shape[0], cols = w.shape[1];
      const int64_t br = (rows + 127) / 128, bc = (cols + 127) / 128;
      std::vector<float> scales(static_cast<size_t>(br * bc));
      for (int64_t i = 0; i < br; ++i)
        for (int64_t j = 0; j < bc; ++j) {
          double amax = 0;
          for (int64_t r = i * 128; r < std::min(rows, i * 128 + 128); ++r)
            for (int64_t c = j * 128; c < std::min(cols, j * 128 + 128); ++c)
              amax = std::max(amax, std::fabs(v[static_cast<size_t>(r * cols + c)]));
          scales[static_cast<size_t>(i * bc + j)] = static_cast<float>(amax / 448.0);
        }
      std::vector<uint8_t> q(static_cast<size_t>(rows * cols));
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c)
          q[static_cast<size_t>(r * cols + c)] =
              ref_e4m3_code(v[static_cast<size_t>(r * cols + c)] /
                            scales[static_cast<size_t>((r / 128) * bc + c / 128)]);
      w.dtype = "F8_E4M3";
      w.bytes = q;
      m[mod + ".weight_scale_inv"] = f32_entry(mod + ".weight_scale_inv", scales, {br, bc});
    }
  });
  nlohmann::json c = read_config(dir);
  c["quantization_config"] = {{"quant_method", "fp8"},
                              {"activation_scheme", "dynamic"},
                              {"fmt", "e4m3"},
                              {"weight_block_size", {128, 128}}};
  write_config(dir, c);
}

}  // namespace turbine::testing
