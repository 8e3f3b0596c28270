// Device-side element conversions and dtype dispatch shared by the .cu files.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "model/model.h"

namespace turbine::cuda {

__device__ __forceinline__ float to_float(float x) {
  return x;
}
__device__ __forceinline__ float to_float(__half x) {
  return __half2float(x);
}
__device__ __forceinline__ float to_float(__nv_bfloat16 x) {
  return __bfloat162float(x);
}

template <typename T>
__device__ __forceinline__ T from_float(float x);
template <>
__device__ __forceinline__ float from_float<float>(float x) {
  return x;
}
template <>
__device__ __forceinline__ __half from_float<__half>(float x) {
  return __float2half_rn(x);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}

// Calls f(T{}) with T the device type for dtype; false for dtypes kernels do not take.
template <typename F>
bool dispatch_dtype(model::DType dtype, F&& f) {
  switch (dtype) {
    case model::DType::kF32: f(float{}); return true;
    case model::DType::kF16: f(__half{}); return true;
    case model::DType::kBF16: f(__nv_bfloat16{}); return true;
    default: return false;
  }
}

}  // namespace turbine::cuda
