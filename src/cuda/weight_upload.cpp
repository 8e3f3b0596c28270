#include "cuda/weight_upload.h"

#include <cstring>
#include <string>

#include "model/dtype.h"

namespace turbine::cuda {
namespace {

using model::DType;
using model::TensorView;

// Writes `t` (any loader dtype) as rows of `dst` into host memory at `out`.
void convert_tensor(const TensorView& t, DType dst, uint8_t* out) {
  const size_t eb = dtype_bytes(dst);
  const auto cols = static_cast<size_t>(t.cols);
  std::vector<float> row(cols);
  for (int64_t r = 0; r < t.rows; ++r) {
    model::dequantize_row(t, r, row.data());
    uint8_t* o = out + static_cast<size_t>(r) * cols * eb;
    switch (dst) {
      case DType::kF32: std::memcpy(o, row.data(), cols * sizeof(float)); break;
      case DType::kF16:
        for (size_t i = 0; i < cols; ++i) {
          const uint16_t h = model::f32_to_f16(row[i]);
          std::memcpy(o + 2 * i, &h, 2);
        }
        break;
      default:
        for (size_t i = 0; i < cols; ++i) {
          const uint16_t h = model::f32_to_bf16(row[i]);
          std::memcpy(o + 2 * i, &h, 2);
        }
        break;
    }
  }
}

bool is_fp8(const TensorView& t) {
  return t.present() && t.dtype == DType::kF8E4M3;
}

// The E4M3 bytes of `parts` row-wise concatenated, and one scale per row.
Result<Fp8Weight> upload_fp8(std::initializer_list<const TensorView*> parts) {
  Fp8Weight out;
  size_t bytes = 0, rows = 0;
  for (const TensorView* t : parts) {
    bytes += static_cast<size_t>(t->rows * t->cols);
    rows += static_cast<size_t>(t->rows);
  }
  std::vector<uint8_t> host;
  host.reserve(bytes);
  std::vector<float> scales;
  scales.reserve(rows);
  for (const TensorView* t : parts) {
    const size_t n = static_cast<size_t>(t->rows * t->cols);
    if (t->size_bytes < n) return data_loss("cuda backend: tensor " + t->name + " too short");
    const auto* p = static_cast<const uint8_t*>(t->data);
    host.insert(host.end(), p, p + n);
    for (int64_t r = 0; r < t->rows; ++r)
      scales.push_back(model::fp8_scale_at(t->scales, t->cols, r, 0));
  }
  out.input_scale = parts.begin()[0]->input_quant.kind == model::InputQuant::Kind::kStatic
                        ? parts.begin()[0]->input_quant.scale
                        : 0.0f;
  TURBINE_ASSIGN_OR_RETURN(out.w, DeviceBuffer::allocate(bytes));
  TURBINE_ASSIGN_OR_RETURN(out.scales, DeviceBuffer::allocate(rows * sizeof(float)));
  TURBINE_RETURN_IF_ERROR(
      check(cudaMemcpy(out.w.data(), host.data(), bytes, cudaMemcpyHostToDevice), "upload fp8"));
  TURBINE_RETURN_IF_ERROR(check(
      cudaMemcpy(out.scales.data(), scales.data(), rows * sizeof(float), cudaMemcpyHostToDevice),
      "upload fp8 scales"));
  return out;
}

// One projection group: E4M3 when `fp8` and eligible, else converted to `dtype`.
Status upload_group(std::initializer_list<const TensorView*> parts, DType dtype, bool fp8,
                    DeviceBuffer& dense, Fp8Weight& f8, DeviceWeights& out) {
  if (!is_fp8(*parts.begin()[0])) {
    TURBINE_ASSIGN_OR_RETURN(dense, upload_concat(parts, dtype));
    return Status::ok();
  }
  std::string why = fp8 ? fp8_ineligible(parts) : "FP8 weights are off for this device or dtype";
  if (why.empty()) {
    TURBINE_ASSIGN_OR_RETURN(f8, upload_fp8(parts));
    ++out.fp8_groups;
    return Status::ok();
  }
  if (out.fp8_fallback.empty()) out.fp8_fallback = parts.begin()[0]->name + ": " + why;
  ++out.fp8_dequantized;
  TURBINE_ASSIGN_OR_RETURN(dense, upload_concat(parts, dtype));
  return Status::ok();
}

}  // namespace

std::string fp8_ineligible(std::initializer_list<const TensorView*> parts) {
  const TensorView& first = *parts.begin()[0];
  int64_t rows = 0;
  for (const TensorView* t : parts) rows += t->rows;
  // cuBLASLt's E4M3 GEMM wants k and n multiples of 16 (16-byte leading dimensions of A and B;
  // PyTorch's scaled_mm checks the same), the number of tokens is free.
  if (rows % 16 != 0) return "output size is not a multiple of 16";
  for (const TensorView* t : parts) {
    if (!is_fp8(*t)) return "the group mixes FP8 and other weights";
    if (t->cols % 16 != 0) return "input size is not a multiple of 16";
    const model::Fp8Scales& s = t->scales;
    if (!s.present()) return "no scales";
    const bool per_tensor = s.block_rows >= t->rows && s.block_cols >= t->cols;
    const bool per_channel = s.block_rows == 1 && s.block_cols >= t->cols;
    if (!per_tensor && !per_channel)
      return "block-wise scales (" + std::to_string(s.block_rows) + "x" +
             std::to_string(s.block_cols) + ") have no FP8 kernel on CUDA yet";
    const model::InputQuant& q = t->input_quant;
    if (q.kind != model::InputQuant::Kind::kDynamicPerToken &&
        q.kind != model::InputQuant::Kind::kStatic)
      return q.kind == model::InputQuant::Kind::kNone ? "weight-only FP8 (no input quantization)"
                                                      : "per-group input quantization";
    if (q.kind != first.input_quant.kind ||
        (q.kind == model::InputQuant::Kind::kStatic && q.scale != first.input_quant.scale))
      return "the fused projections quantize their inputs differently";
    if (q.kind == model::InputQuant::Kind::kStatic && !(q.scale > 0.0f))
      return "static input scale is not positive";
  }
  return {};
}

Result<DeviceBuffer> upload_concat(std::initializer_list<const TensorView*> parts, DType dst) {
  const size_t eb = dtype_bytes(dst);
  size_t total = 0;
  for (const TensorView* t : parts) total += static_cast<size_t>(t->rows * t->cols) * eb;
  TURBINE_ASSIGN_OR_RETURN(DeviceBuffer buf, DeviceBuffer::allocate(total));
  size_t off = 0;
  std::vector<uint8_t> host;
  for (const TensorView* t : parts) {
    const size_t bytes = static_cast<size_t>(t->rows * t->cols) * eb;
    auto* dst_ptr = static_cast<uint8_t*>(buf.data()) + off;
    if (t->dtype == dst) {
      if (t->size_bytes < bytes) return data_loss("cuda backend: tensor " + t->name + " too short");
      TURBINE_RETURN_IF_ERROR(
          check(cudaMemcpy(dst_ptr, t->data, bytes, cudaMemcpyHostToDevice), "upload weights"));
    } else {
      host.resize(bytes);
      convert_tensor(*t, dst, host.data());
      TURBINE_RETURN_IF_ERROR(
          check(cudaMemcpy(dst_ptr, host.data(), bytes, cudaMemcpyHostToDevice), "upload weights"));
    }
    off += bytes;
  }
  return buf;
}

Result<DeviceWeights> upload_weights(const model::Weights& w, DType dtype, bool fp8) {
  DeviceWeights out;
  TURBINE_ASSIGN_OR_RETURN(out.embed, upload_concat({&w.tok_embeddings}, dtype));
  TURBINE_ASSIGN_OR_RETURN(out.output_norm, upload_concat({&w.output_norm}, dtype));
  if (w.output.data == w.tok_embeddings.data && w.output.dtype == w.tok_embeddings.dtype) {
    out.lm_head_ptr = out.embed.data();
  } else {
    TURBINE_ASSIGN_OR_RETURN(out.lm_head, upload_concat({&w.output}, dtype));
    out.lm_head_ptr = out.lm_head.data();
  }
  out.layers.resize(w.layers.size());
  for (size_t l = 0; l < w.layers.size(); ++l) {
    const model::LayerWeights& L = w.layers[l];
    LayerDev& d = out.layers[l];
    TURBINE_ASSIGN_OR_RETURN(d.attn_norm, upload_concat({&L.attn_norm}, dtype));
    TURBINE_ASSIGN_OR_RETURN(d.ffn_norm, upload_concat({&L.ffn_norm}, dtype));
    TURBINE_RETURN_IF_ERROR(upload_group({&L.wq, &L.wk, &L.wv}, dtype, fp8, d.wqkv, d.qkv8, out));
    if (L.bq.present()) {
      if (!L.bk.present() || !L.bv.present())
        return invalid_argument("cuda backend: q bias without k/v bias in layer " +
                                std::to_string(l));
      TURBINE_ASSIGN_OR_RETURN(d.bqkv, upload_concat({&L.bq, &L.bk, &L.bv}, dtype));
    }
    if (L.q_norm.present()) {
      TURBINE_ASSIGN_OR_RETURN(d.q_norm, upload_concat({&L.q_norm}, dtype));
      TURBINE_ASSIGN_OR_RETURN(d.k_norm, upload_concat({&L.k_norm}, dtype));
    }
    TURBINE_RETURN_IF_ERROR(upload_group({&L.wo}, dtype, fp8, d.wo, d.o8, out));
    TURBINE_RETURN_IF_ERROR(upload_group({&L.w_gate, &L.w_up}, dtype, fp8, d.wgu, d.gu8, out));
    TURBINE_RETURN_IF_ERROR(upload_group({&L.w_down}, dtype, fp8, d.wdown, d.down8, out));
  }
  return out;
}

}  // namespace turbine::cuda
