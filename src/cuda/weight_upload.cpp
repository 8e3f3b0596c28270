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

}  // namespace

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

Result<DeviceWeights> upload_weights(const model::Weights& w, DType dtype) {
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
    TURBINE_ASSIGN_OR_RETURN(d.wqkv, upload_concat({&L.wq, &L.wk, &L.wv}, dtype));
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
    TURBINE_ASSIGN_OR_RETURN(d.wo, upload_concat({&L.wo}, dtype));
    TURBINE_ASSIGN_OR_RETURN(d.wgu, upload_concat({&L.w_gate, &L.w_up}, dtype));
    TURBINE_ASSIGN_OR_RETURN(d.wdown, upload_concat({&L.w_down}, dtype));
  }
  return out;
}

}  // namespace turbine::cuda
