// The FP8 projections of the CUDA backend's layers (issue 28): input quantization into the step's
// E4M3 buffer and the choice between the E4M3 and the dense weights (see cuda/fp8.h).
#include "cuda/cuda_backend_impl.h"
#include "cuda/fp8.h"
#include "cuda/kernels.h"

namespace turbine::cuda {

Status CudaBackend::quantize_input(cudaStream_t s, const Fp8Weight& w, const void* src, int n,
                                   int cols) {
  if (!w.on() || w8a16(n, cols)) return Status::ok();  // W8A16 reads src itself
  return timed(pk_.quant, 0.0, double(n) * cols * (double(eb_) + 1.0), [&] {
    return quantize_fp8_rows(s, dtype_, xq_.as<uint8_t>(), xs_.as<float>(), src, n, cols, cols,
                             w.input_scale, pdl_);
  });
}

Status CudaBackend::project(cudaStream_t s, const DeviceBuffer& dense, const Fp8Weight& f8,
                            const void* x, void* y, int n, int out, int in, int kind) {
  const double flops = 2.0 * n * out * in;
  const double act = double(n) * (double(out) + double(in)) * double(eb_);
  if (f8.on() && w8a16(n, in)) {
    return timed(kind, flops, weight_bytes(f8, out, in) + act, [&] {
      return gemv_w8a16(s, dtype_, x, f8.w.as<uint8_t>(), f8.scales.as<float>(), y, n, out, in,
                        pdl_);
    });
  }
  if (f8.on()) {
    // The product and the scale epilogue (when cuBLASLt did not apply the scales) apart, so that
    // the profile shows what the epilogue costs.
    bool needs_scales = false;
    TURBINE_RETURN_IF_ERROR(timed(
        kind, flops, weight_bytes(f8, out, in) + double(n) * (in + double(out) * eb_),
        [&]() -> Status {
          TURBINE_ASSIGN_OR_RETURN(
              needs_scales,
              gemm_->matmul_fp8_product(s, dtype_, xq_.as<uint8_t>(), xs_.as<float>(),
                                        f8.w.as<uint8_t>(), f8.scales.as<float>(), y, n, out, in));
          return Status::ok();
        }));
    if (!needs_scales) return Status::ok();
    return timed(pk_.scales, 0.0, 2.0 * n * out * double(eb_), [&] {
      return scale_rows_cols(s, dtype_, y, n, out, xs_.as<float>(), f8.scales.as<float>(), pdl_);
    });
  }
  return timed(kind, flops, weight_bytes(f8, out, in) + act,
               [&] { return gemm_->matmul(s, dtype_, x, dense.data(), y, n, out, in); });
}

Status CudaBackend::gate_up_w8a16(cudaStream_t s, const LayerDev& L, int n) {
  const int dim = cfg_.dim, ffn = cfg_.ffn_dim;
  if (fused_swiglu_) {
    TURBINE_RETURN_IF_ERROR(
        timed(pk_.gate_up_swiglu, 2.0 * n * 2 * ffn * dim,
              weight_bytes(L.gu8, 2 * ffn, dim) + double(n) * (dim + ffn) * double(eb_), [&] {
                return gemv_w8a16_swiglu(s, dtype_, xb_.data(), L.gu8.w.as<uint8_t>(),
                                         L.gu8.scales.as<float>(), h_.data(), n, ffn, dim, pdl_);
              }));
  } else {
    auto* gu = static_cast<uint8_t*>(gu_.data());
    TURBINE_RETURN_IF_ERROR(project(s, L.wgu, L.gu8, xb_.data(), gu, n, 2 * ffn, dim, pk_.gate_up));
    TURBINE_RETURN_IF_ERROR(timed(pk_.swiglu, 0.0, 3.0 * n * ffn * double(eb_), [&] {
      return swiglu(s, dtype_, h_.data(), gu, gu + static_cast<size_t>(ffn) * eb_, n, ffn, 2 * ffn,
                    pdl_);
    }));
  }
  return quantize_input(s, L.down8, h_.data(), n, ffn);  // none when down is W8A16 too
}

}  // namespace turbine::cuda
