// Device-side E4M3 (float8_e4m3fn) conversions shared by the FP8 kernels (fp8_kernels.cu,
// fp8_gemv.cu) and the attention kernels' FP8 KV cache. cuda_fp8.h converts with the hardware
// instructions on sm_89+ and in software before, so these also compile for sm_80 (the backend
// refuses FP8 there; see cuda/fp8.h).
#pragma once

#include <cuda_fp8.h>

#include <cstdint>

namespace turbine::cuda {

// Round to nearest even, saturating to ±448 (NaN stays NaN): model::f32_to_e4m3 on the device.
__device__ __forceinline__ uint8_t float_to_e4m3(float v) {
  return static_cast<uint8_t>(__nv_cvt_float_to_fp8(v, __NV_SATFINITE, __NV_E4M3));
}

__device__ __forceinline__ float2 e4m3x2_to_float2(uint16_t pair) {
  const __half2_raw h =
      __nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(pair), __NV_E4M3);
  return __half22float2(__half2(h));
}

__device__ __forceinline__ float e4m3_to_float(uint8_t b) {
  return e4m3x2_to_float2(b).x;
}

// 4 bytes (e4m3) -> 4 floats, exact (every E4M3 value is an F16 value).
__device__ __forceinline__ void e4m3x4_to_float(uint32_t w, float* f) {
  const float2 a = e4m3x2_to_float2(static_cast<uint16_t>(w & 0xffffu));
  const float2 b = e4m3x2_to_float2(static_cast<uint16_t>(w >> 16));
  f[0] = a.x;
  f[1] = a.y;
  f[2] = b.x;
  f[3] = b.y;
}

__device__ __forceinline__ void e4m3x16_to_float(const uint4& raw, float (&f)[16]) {
  e4m3x4_to_float(raw.x, f);
  e4m3x4_to_float(raw.y, f + 4);
  e4m3x4_to_float(raw.z, f + 8);
  e4m3x4_to_float(raw.w, f + 12);
}

}  // namespace turbine::cuda
