// The FP8 projections of the CUDA backend's layers (issue 28): input quantization into the step's
// E4M3 buffer and the choice between the E4M3 and the dense weights (see cuda/fp8.h).
#include "cuda/cuda_backend_impl.h"
#include "cuda/fp8.h"

namespace turbine::cuda {

Status CudaBackend::quantize_input(cudaStream_t s, const Fp8Weight& w, const void* src, int n,
                                   int cols) {
  if (!w.on()) return Status::ok();
  return quantize_fp8_rows(s, dtype_, xq_.as<uint8_t>(), xs_.as<float>(), src, n, cols, cols,
                           w.input_scale, pdl_);
}

Status CudaBackend::project(cudaStream_t s, const DeviceBuffer& dense, const Fp8Weight& f8,
                            const void* x, void* y, int n, int out, int in) {
  if (f8.on()) {
    return gemm_->matmul_fp8(s, dtype_, xq_.as<uint8_t>(), xs_.as<float>(), f8.w.as<uint8_t>(),
                             f8.scales.as<float>(), y, n, out, in);
  }
  return gemm_->matmul(s, dtype_, x, dense.data(), y, n, out, in);
}

}  // namespace turbine::cuda
