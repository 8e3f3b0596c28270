// The FP8 projections of the CUDA backend's layers (issue 28): input quantization into the step's
// E4M3 buffer and the choice between the E4M3 and the dense weights (see cuda/fp8.h).
#include "cuda/cuda_backend_impl.h"
#include "cuda/fp8.h"
#include "cuda/kernels.h"

namespace turbine::cuda {

Status CudaBackend::quantize_input(cudaStream_t s, const Fp8Weight& w, const void* src, int n,
                                   int cols) {
  if (!w.on() || w8a16(n, cols)) return Status::ok();  // W8A16 reads src itself
  return quantize_fp8_rows(s, dtype_, xq_.as<uint8_t>(), xs_.as<float>(), src, n, cols, cols,
                           w.input_scale, pdl_);
}

Status CudaBackend::project(cudaStream_t s, const DeviceBuffer& dense, const Fp8Weight& f8,
                            const void* x, void* y, int n, int out, int in) {
  if (f8.on() && w8a16(n, in)) {
    return gemv_w8a16(s, dtype_, x, f8.w.as<uint8_t>(), f8.scales.as<float>(), y, n, out, in, pdl_);
  }
  if (f8.on()) {
    return gemm_->matmul_fp8(s, dtype_, xq_.as<uint8_t>(), xs_.as<float>(), f8.w.as<uint8_t>(),
                             f8.scales.as<float>(), y, n, out, in);
  }
  return gemm_->matmul(s, dtype_, x, dense.data(), y, n, out, in);
}

Status CudaBackend::gate_up_w8a16(cudaStream_t s, const LayerDev& L, int n) {
  const int dim = cfg_.dim, ffn = cfg_.ffn_dim;
  if (fused_swiglu_) {
    TURBINE_RETURN_IF_ERROR(gemv_w8a16_swiglu(s, dtype_, xb_.data(), L.gu8.w.as<uint8_t>(),
                                              L.gu8.scales.as<float>(), h_.data(), n, ffn, dim,
                                              pdl_));
  } else {
    auto* gu = static_cast<uint8_t*>(gu_.data());
    TURBINE_RETURN_IF_ERROR(project(s, L.wgu, L.gu8, xb_.data(), gu, n, 2 * ffn, dim));
    TURBINE_RETURN_IF_ERROR(swiglu(s, dtype_, h_.data(), gu, gu + static_cast<size_t>(ffn) * eb_, n,
                                   ffn, 2 * ffn, pdl_));
  }
  return quantize_input(s, L.down8, h_.data(), n, ffn);  // none when down is W8A16 too
}

}  // namespace turbine::cuda
