// Test helpers shared by the model and engine (cpu_*) tests: asset paths, temp folders, and
// writers that turn stories260K into other formats (HF folder, other dtypes, Q8_0 GGUF).
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "model/dtype.h"
#include "model/gguf.h"
#include "model/mapped_file.h"
#include "model/model.h"
#include "model/model_writer.h"
#include "test_support/missing_dependency.h"

namespace turbine::testing {

inline std::filesystem::path shared_assets() {
  if (const char* v = std::getenv("TURBINE_SHARED"); v != nullptr && *v != '\0') return v;
  return TURBINE_SHARED_DEFAULT;
}

inline std::filesystem::path stories_gguf() {
  return shared_assets() / "models/stories260K/stories260K.gguf";
}

#define TURBINE_REQUIRE_ASSET(path)                                                             \
  do {                                                                                          \
    if (!std::filesystem::exists(path)) TURBINE_MISSING_DEPENDENCY("missing asset " << (path)); \
  } while (0)

// A fresh directory under the system temp dir, removed on destruction.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            ("turbine_model_test_" + std::to_string(rd()) + "_" + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline std::vector<uint8_t> read_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

inline void write_bytes(const std::filesystem::path& p, const std::vector<uint8_t>& b) {
  std::ofstream out(p, std::ios::binary);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

inline std::vector<float> tensor_f32(const model::TensorView& t) {
  std::vector<float> out(static_cast<size_t>(t.rows * t.cols));
  for (int64_t r = 0; r < t.rows; ++r) model::dequantize_row(t, r, out.data() + r * t.cols);
  return out;
}

// Undoes llama.cpp's Q/K permutation: GGUF row (2i + a) of a head is HF row (a * hd/2 + i).
inline std::vector<float> unpermute_rows(const std::vector<float>& w, int64_t rows, int64_t cols,
                                         int head_dim) {
  std::vector<float> out(w.size());
  const int half = head_dim / 2;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t head = r / head_dim, j = r % head_dim;
    const int64_t i = j / 2, a = j % 2;
    const int64_t dst = head * head_dim + a * half + i;
    std::copy(w.begin() + r * cols, w.begin() + (r + 1) * cols, out.begin() + dst * cols);
  }
  return out;
}

inline model::SafetensorsEntry make_entry(const std::string& name, const std::vector<float>& v,
                                          std::vector<int64_t> shape, const std::string& dtype) {
  model::SafetensorsEntry e{name, dtype, std::move(shape), {}};
  if (dtype == "F32") {
    e.bytes.resize(v.size() * 4);
    std::memcpy(e.bytes.data(), v.data(), e.bytes.size());
  } else {
    e.bytes.resize(v.size() * 2);
    for (size_t i = 0; i < v.size(); ++i) {
      const uint16_t h = dtype == "F16" ? model::f32_to_f16(v[i]) : model::f32_to_bf16(v[i]);
      std::memcpy(e.bytes.data() + 2 * i, &h, 2);
    }
  }
  return e;
}

// Writes a Hugging Face folder (config.json + safetensors) equivalent to a loaded llama GGUF.
// n_shards > 1 writes model-0000k-of-0000n.safetensors + model.safetensors.index.json.
inline void write_hf_folder(const model::Model& m, const std::filesystem::path& dir,
                            const std::string& dtype, int n_shards = 1) {
  std::filesystem::create_directories(dir);
  const auto& c = m.config();
  const auto& w = m.weights();
  nlohmann::json cfg = {{"architectures", {"LlamaForCausalLM"}},
                        {"hidden_size", c.dim},
                        {"intermediate_size", c.ffn_dim},
                        {"num_hidden_layers", c.n_layers},
                        {"num_attention_heads", c.n_heads},
                        {"num_key_value_heads", c.n_kv_heads},
                        {"rms_norm_eps", c.norm_eps},
                        {"rope_theta", c.rope_theta},
                        {"max_position_embeddings", c.max_context},
                        {"vocab_size", c.n_vocab},
                        {"tie_word_embeddings", c.tie_embeddings},
                        {"bos_token_id", m.vocab().bos_id},
                        {"eos_token_id", m.vocab().eos_id},
                        {"hidden_act", "silu"},
                        {"rope_scaling", nullptr}};
  std::ofstream(dir / "config.json") << cfg.dump(2);
  std::vector<model::SafetensorsEntry> all;
  auto add2d = [&](const std::string& name, const model::TensorView& t, bool permute) {
    std::vector<float> v = tensor_f32(t);
    if (permute) v = unpermute_rows(v, t.rows, t.cols, c.head_dim);
    all.push_back(make_entry(name, v, {t.rows, t.cols}, dtype));
  };
  auto add1d = [&](const std::string& name, const model::TensorView& t) {
    all.push_back(make_entry(name, tensor_f32(t), {t.cols}, dtype));
  };
  add2d("model.embed_tokens.weight", w.tok_embeddings, false);
  add1d("model.norm.weight", w.output_norm);
  if (!c.tie_embeddings) add2d("lm_head.weight", w.output, false);
  for (int l = 0; l < c.n_layers; ++l) {
    const auto& L = w.layers[static_cast<size_t>(l)];
    const std::string p = "model.layers." + std::to_string(l) + ".";
    add1d(p + "input_layernorm.weight", L.attn_norm);
    add2d(p + "self_attn.q_proj.weight", L.wq, true);
    add2d(p + "self_attn.k_proj.weight", L.wk, true);
    add2d(p + "self_attn.v_proj.weight", L.wv, false);
    add2d(p + "self_attn.o_proj.weight", L.wo, false);
    add1d(p + "post_attention_layernorm.weight", L.ffn_norm);
    add2d(p + "mlp.gate_proj.weight", L.w_gate, false);
    add2d(p + "mlp.up_proj.weight", L.w_up, false);
    add2d(p + "mlp.down_proj.weight", L.w_down, false);
  }
  if (n_shards <= 1) {
    ASSERT_TRUE(model::write_safetensors(dir / "model.safetensors", all).is_ok());
    return;
  }
  nlohmann::json index = {{"metadata", {{"total_size", 0}}},
                          {"weight_map", nlohmann::json::object()}};
  std::vector<std::vector<model::SafetensorsEntry>> shards(static_cast<size_t>(n_shards));
  for (size_t k = 0; k < all.size(); ++k) shards[k % shards.size()].push_back(std::move(all[k]));
  for (int s = 0; s < n_shards; ++s) {
    char name[64];
    std::snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", s + 1, n_shards);
    for (const auto& e : shards[static_cast<size_t>(s)]) index["weight_map"][e.name] = name;
    ASSERT_TRUE(model::write_safetensors(dir / name, shards[static_cast<size_t>(s)]).is_ok());
  }
  std::ofstream(dir / "model.safetensors.index.json") << index.dump(2);
}

// Copies a GGUF (all metadata) with every 2-D weight quantized to Q8_0.
inline void write_q8_gguf(const std::filesystem::path& src, const std::filesystem::path& dst) {
  auto file = model::MappedFile::open(src);
  ASSERT_TRUE(file.has_value());
  auto g = model::GgufFile::parse(*file);
  ASSERT_TRUE(g.has_value()) << g.status().to_string();
  model::GgufWriter wr;
  for (const auto& [k, v] : g->metadata()) {
    if (k != "general.alignment") wr.add_value(k, v);
  }
  for (const auto& t : g->tensors()) {
    ASSERT_EQ(t.ggml_type, model::kGgmlF32) << t.name;
    std::vector<uint8_t> bytes(t.data, t.data + t.size_bytes);
    if (t.dims.size() == 2 && t.dims[0] % 32 == 0) {
      std::vector<float> f(t.size_bytes / 4);
      std::memcpy(f.data(), t.data, t.size_bytes);
      const auto cols = static_cast<int64_t>(t.dims[0]);
      const auto rows = static_cast<int64_t>(t.dims[1]);
      bytes.assign(static_cast<size_t>(rows * cols / 32) * model::kQ8BlockBytes, 0);
      for (int64_t r = 0; r < rows; ++r) {
        model::quantize_row_q8_0(f.data() + r * cols, cols,
                                 bytes.data() + r * (cols / 32) * model::kQ8BlockBytes);
      }
      wr.add_tensor(t.name, model::kGgmlQ8_0, t.dims, std::move(bytes));
    } else {
      wr.add_tensor(t.name, t.ggml_type, t.dims, std::move(bytes));
    }
  }
  ASSERT_TRUE(wr.write(dst).is_ok());
}

}  // namespace turbine::testing
