// Y = X · Wᵀ through cuBLASLt, the projection of every linear layer.
//
// X is [m][k] row-major activations, W is [n][k] row-major weights (the layout GGUF and
// safetensors store), Y is [m][n]. F16/BF16 inputs accumulate in F32; F32 inputs use plain F32
// math (no TF32) so that parity tests can hold F32 to 1e-5. The descriptors and the heuristic's
// algorithm are cached per (m, n, k, dtype): a decode step repeats the same few shapes.
//
// Thread ownership: one Gemm per engine stream, used by the engine thread only.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <memory>
#include <tuple>

#include "common/status.h"
#include "cuda/device.h"
#include "model/model.h"

namespace turbine::cuda {

class Gemm {
 public:
  static constexpr size_t kWorkspaceBytes = 32u << 20;

  static Result<Gemm> create();
  Gemm(Gemm&&) noexcept;
  Gemm& operator=(Gemm&&) noexcept;
  ~Gemm();

  // Enqueues y = x · wᵀ on `stream` (beta = 0: y is overwritten).
  Status matmul(cudaStream_t stream, model::DType dtype, const void* x, const void* w, void* y,
                int m, int n, int k);

  size_t cached_plans() const;

 private:
  struct Plan;
  struct State;
  Gemm() = default;
  Result<Plan*> plan_for(model::DType dtype, int m, int n, int k);

  std::unique_ptr<State> state_;
};

}  // namespace turbine::cuda
