#include "model/model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <system_error>

#include "model/dtype.h"
#include "model/llama2c.h"
#include "model/loaded_model.h"

namespace turbine::model {

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kF32: return "F32";
    case DType::kF16: return "F16";
    case DType::kBF16: return "BF16";
    case DType::kQ8_0: return "Q8_0";
    case DType::kF8E4M3: return "F8_E4M3";
  }
  return "?";
}

void quantize_row_q8_0(const float* src, int64_t n, uint8_t* dst) {
  for (int64_t b = 0; b < n / kQ8BlockSize; ++b) {
    const float* x = src + b * kQ8BlockSize;
    float amax = 0.0f;
    for (int j = 0; j < kQ8BlockSize; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    uint8_t* blk = dst + b * kQ8BlockBytes;
    const uint16_t d16 = f32_to_f16(d);
    std::memcpy(blk, &d16, 2);
    auto* q = reinterpret_cast<int8_t*>(blk + 2);
    for (int j = 0; j < kQ8BlockSize; ++j) q[j] = static_cast<int8_t>(std::lround(x[j] * id));
  }
}

Status validate_config(const ModelConfig& c, const std::string& source) {
  auto bad = [&](const char* field, const std::string& why) {
    return data_loss(source + ": " + field + ": " + why, field);
  };
  constexpr int kMaxDim = 1 << 20;
  if (c.dim <= 0 || c.dim > kMaxDim) return bad("dim", "must be in (0, 2^20]");
  if (c.n_layers <= 0 || c.n_layers > 4096) return bad("n_layers", "must be in (0, 4096]");
  if (c.n_heads <= 0 || c.n_heads > 4096) return bad("n_heads", "must be in (0, 4096]");
  if (c.n_kv_heads <= 0 || c.n_kv_heads > c.n_heads || c.n_heads % c.n_kv_heads != 0) {
    return bad("n_kv_heads", "must divide n_heads");
  }
  if (c.head_dim <= 0 || c.head_dim % 2 != 0 || c.head_dim > 4096)
    return bad("head_dim", "must be positive and even");
  if (c.ffn_dim <= 0 || c.ffn_dim > (1 << 22)) return bad("ffn_dim", "must be positive");
  if (c.n_vocab <= 0) return bad("n_vocab", "must be positive");
  if (c.max_context <= 0) return bad("max_context", "must be positive");
  if (!(c.norm_eps >= 0.0f) || !std::isfinite(c.norm_eps))
    return bad("norm_eps", "must be finite and >= 0");
  if (!(c.rope_theta > 0.0f) || !std::isfinite(c.rope_theta))
    return bad("rope_theta", "must be positive");
  if (c.rope_scaling.type == RopeScaling::Type::kLlama3) {
    const RopeScaling& s = c.rope_scaling;
    if (!(s.factor > 0.0f) || !(s.low_freq_factor > 0.0f) ||
        !(s.high_freq_factor > s.low_freq_factor) || s.original_max_position <= 0) {
      return bad("rope_scaling",
                 "llama3 scaling needs factor > 0, high_freq_factor > low_freq_factor > 0");
    }
  }
  return Status::ok();
}

namespace {

Status check_shape(const TensorView& t, int64_t rows, int64_t cols, const std::string& role,
                   const std::string& source) {
  if (!t.present()) return not_found(source + ": missing tensor " + role, role);
  const std::string& name = t.name.empty() ? role : t.name;
  // Norms and biases may be stored as [n] or [1, n].
  if (t.rows != rows || t.cols != cols) {
    return data_loss(source + ": tensor " + name + ": shape [" + std::to_string(t.rows) + ", " +
                         std::to_string(t.cols) + "], expected [" + std::to_string(rows) + ", " +
                         std::to_string(cols) + "]",
                     name);
  }
  const size_t rb = row_bytes(t.dtype, t.cols);
  if (rb == 0 || t.size_bytes != rb * static_cast<size_t>(t.rows)) {
    return data_loss(source + ": tensor " + name + ": size " + std::to_string(t.size_bytes) +
                         " bytes does not match shape",
                     name);
  }
  if (t.dtype != DType::kQ8_0 && t.dtype != DType::kF8E4M3) {
    const size_t align = t.dtype == DType::kF32 ? 4 : 2;
    if (reinterpret_cast<uintptr_t>(t.data) % align != 0) {
      return data_loss(source + ": tensor " + name + ": data not aligned", name);
    }
  }
  return Status::ok();
}

Status check_vector(const TensorView& t, int64_t n, const std::string& role,
                    const std::string& source) {
  TURBINE_RETURN_IF_ERROR(check_shape(t, 1, n, role, source));
  const std::string& name = t.name.empty() ? role : t.name;
  if (t.dtype == DType::kQ8_0 || t.dtype == DType::kF8E4M3)
    return unimplemented(
        source + ": tensor " + name + ": " + dtype_name(t.dtype) + " vectors are not supported",
        name);
  return Status::ok();
}

}  // namespace

Status validate_weights(const ModelConfig& c, const Weights& w, const std::string& source) {
  const int64_t dim = c.dim, q_dim = int64_t{c.n_heads} * c.head_dim,
                kv_dim = int64_t{c.n_kv_heads} * c.head_dim;
  TURBINE_RETURN_IF_ERROR(
      check_shape(w.tok_embeddings, c.n_vocab, dim, "token embeddings", source));
  TURBINE_RETURN_IF_ERROR(check_vector(w.output_norm, dim, "output norm", source));
  TURBINE_RETURN_IF_ERROR(check_shape(w.output, c.n_vocab, dim, "output", source));
  if (w.layers.size() != static_cast<size_t>(c.n_layers))
    return internal_error(source + ": layer count mismatch");
  for (int l = 0; l < c.n_layers; ++l) {
    const LayerWeights& L = w.layers[static_cast<size_t>(l)];
    const std::string p = "layer " + std::to_string(l) + " ";
    TURBINE_RETURN_IF_ERROR(check_vector(L.attn_norm, dim, p + "attn_norm", source));
    TURBINE_RETURN_IF_ERROR(check_shape(L.wq, q_dim, dim, p + "q_proj", source));
    TURBINE_RETURN_IF_ERROR(check_shape(L.wk, kv_dim, dim, p + "k_proj", source));
    TURBINE_RETURN_IF_ERROR(check_shape(L.wv, kv_dim, dim, p + "v_proj", source));
    TURBINE_RETURN_IF_ERROR(check_shape(L.wo, dim, q_dim, p + "o_proj", source));
    if (c.qkv_bias) {
      TURBINE_RETURN_IF_ERROR(check_vector(L.bq, q_dim, p + "q_proj bias", source));
      TURBINE_RETURN_IF_ERROR(check_vector(L.bk, kv_dim, p + "k_proj bias", source));
      TURBINE_RETURN_IF_ERROR(check_vector(L.bv, kv_dim, p + "v_proj bias", source));
    }
    if (c.qk_norm) {
      TURBINE_RETURN_IF_ERROR(check_vector(L.q_norm, c.head_dim, p + "q_norm", source));
      TURBINE_RETURN_IF_ERROR(check_vector(L.k_norm, c.head_dim, p + "k_norm", source));
    }
    TURBINE_RETURN_IF_ERROR(check_vector(L.ffn_norm, dim, p + "ffn_norm", source));
    TURBINE_RETURN_IF_ERROR(check_shape(L.w_gate, c.ffn_dim, dim, p + "gate_proj", source));
    TURBINE_RETURN_IF_ERROR(check_shape(L.w_up, c.ffn_dim, dim, p + "up_proj", source));
    TURBINE_RETURN_IF_ERROR(check_shape(L.w_down, dim, c.ffn_dim, p + "down_proj", source));
  }
  return Status::ok();
}

Result<Quantization> parse_quantization(std::string_view name) {
  if (name.empty() || name == "none") return Quantization::kNone;
  if (name == "fp8") return Quantization::kFp8;
  return invalid_argument("quantization '" + std::string(name) + "' is not supported (none, fp8)",
                          "quantization");
}

namespace {

Result<std::unique_ptr<Model>> load_any(const std::filesystem::path& path, MappedFile::Mode mode) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return load_hf_folder(path, mode);
  if (!std::filesystem::exists(path, ec))
    return not_found(path.string() + ": no such file or directory");
  if (path.filename() == "config.json") return load_hf_folder(path.parent_path(), mode);
  // GGUF files say so in their first bytes; llama2.c checkpoints (.bin) have no magic.
  char magic[4] = {};
  std::ifstream(path, std::ios::binary).read(magic, sizeof magic);
  if (std::memcmp(magic, "GGUF", 4) != 0 && path.extension() == ".bin")
    return load_llama2c(path, mode);
  return load_gguf(path, mode);
}

}  // namespace

Result<std::unique_ptr<Model>> load_model(const std::filesystem::path& path,
                                          const LoadOptions& options) {
  const MappedFile::Mode mode = options.mmap ? MappedFile::Mode::kMap : MappedFile::Mode::kRead;
  TURBINE_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, load_any(path, mode));
  if (options.quantization == Quantization::kFp8) {
    auto* loaded = dynamic_cast<LoadedModel*>(model.get());
    if (loaded == nullptr) return internal_error("--quantization fp8: not a loaded model");
    TURBINE_RETURN_IF_ERROR(quantize_linear_fp8(*loaded));
  }
  return model;
}

}  // namespace turbine::model
