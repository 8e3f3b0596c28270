// FP8 activation quantization (plain, fused into RMSNorm and SwiGLU) and the scale epilogue of
// the FP8 GEMM; see cuda/fp8.h.
#include <cfloat>
#include <cstdint>

#include "cuda/device.h"
#include "cuda/dtype_util.cuh"
#include "cuda/fp8.h"
#include "cuda/fp8_util.cuh"
#include "cuda/launch.cuh"
#include "model/dtype.h"

namespace turbine::cuda {
namespace {

// One block per row, as wide as a block gets: at decode (one row) a row's loads are spread over
// 32 warps instead of a long dependent chain per thread (a SwiGLU row of 14,336 elements is 14
// per thread).
constexpr int kRowThreads = 1024;
constexpr float kE4M3Max = model::kE4M3Max;
constexpr float kMinScale = model::kFp8MinScale;

// Reduction over the block (kRowThreads threads); every thread gets the result. Callable several
// times in a row: the result is read before any thread can pass the next call's first barrier.
template <bool kMax>
__device__ float block_reduce(float v) {
  __shared__ float partial[kRowThreads / 32];
  __shared__ float total;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float w = __shfl_xor_sync(0xffffffffu, v, o);
    v = kMax ? fmaxf(v, w) : v + w;
  }
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  if (warp == 0) {
    float s = lane < kRowThreads / 32 ? partial[lane] : 0.0f;  // |values| and sums: 0 is neutral
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      const float w = __shfl_xor_sync(0xffffffffu, s, o);
      s = kMax ? fmaxf(s, w) : s + w;
    }
    if (lane == 0) total = s;
  }
  __syncthreads();
  return total;
}

// The row's scale (dynamic from its absolute maximum unless static_scale > 0), stored by thread 0.
__device__ __forceinline__ float row_scale(float amax, float static_scale, float* scales,
                                           int64_t row) {
  const float s = static_scale > 0.0f ? static_scale : fmaxf(amax / kE4M3Max, kMinScale);
  if (threadIdx.x == 0) scales[row] = s;
  return s;
}

template <typename T>
__global__ void __launch_bounds__(kRowThreads)
    quantize_rows_kernel(uint8_t* __restrict__ q, float* __restrict__ scales,
                         const T* __restrict__ x, int cols, int64_t x_stride, float static_scale) {
  pdl_trigger();
  pdl_wait();
  const int64_t row = blockIdx.x;
  const T* xr = x + row * x_stride;
  float amax = 0.0f;
  if (static_scale <= 0.0f) {
    for (int i = threadIdx.x; i < cols; i += kRowThreads)
      amax = fmaxf(amax, fabsf(to_float(xr[i])));
    amax = block_reduce<true>(amax);
  }
  const float s = row_scale(amax, static_scale, scales, row);
  uint8_t* qr = q + row * cols;
  for (int i = threadIdx.x; i < cols; i += kRowThreads) qr[i] = float_to_e4m3(to_float(xr[i]) / s);
}

// Three passes over the row (the second and third re-read what this thread wrote or read: L1/L2
// hits): residual add + sum of squares, the normalised values' maximum, the quantized values.
template <typename T, bool kResidual>
__global__ void __launch_bounds__(kRowThreads)
    rmsnorm_fp8_kernel(uint8_t* __restrict__ q, float* __restrict__ scales,
                       T* __restrict__ residual, const T* __restrict__ x,
                       const T* __restrict__ weight, int dim, float eps, float static_scale) {
  pdl_trigger();
  pdl_wait();
  const int64_t row = blockIdx.x;
  T* rr = residual + row * dim;
  float ss = 0.0f;
  for (int i = threadIdx.x; i < dim; i += kRowThreads) {
    float v;
    if constexpr (kResidual) {
      const T s = from_float<T>(to_float(rr[i]) + to_float(x[row * dim + i]));
      rr[i] = s;
      v = to_float(s);
    } else {
      v = to_float(rr[i]);
    }
    ss += v * v;
  }
  ss = block_reduce<false>(ss);
  const float inv = rsqrtf(ss / static_cast<float>(dim) + eps);
  float amax = 0.0f;
  if (static_scale <= 0.0f) {
    for (int i = threadIdx.x; i < dim; i += kRowThreads)
      amax = fmaxf(amax, fabsf(to_float(weight[i]) * (inv * to_float(rr[i]))));
    amax = block_reduce<true>(amax);
  }
  const float s = row_scale(amax, static_scale, scales, row);
  uint8_t* qr = q + row * dim;
  for (int i = threadIdx.x; i < dim; i += kRowThreads)
    qr[i] = float_to_e4m3(to_float(weight[i]) * (inv * to_float(rr[i])) / s);
}

template <typename T>
__global__ void __launch_bounds__(kRowThreads)
    swiglu_fp8_kernel(uint8_t* __restrict__ q, float* __restrict__ scales,
                      const T* __restrict__ gate, const T* __restrict__ up, int ffn,
                      int64_t in_stride, float static_scale) {
  pdl_trigger();
  pdl_wait();
  const int64_t row = blockIdx.x;
  const T* g = gate + row * in_stride;
  const T* u = up + row * in_stride;
  auto value = [&](int i) {
    const float gv = to_float(g[i]);
    return gv / (1.0f + expf(-gv)) * to_float(u[i]);
  };
  float amax = 0.0f;
  if (static_scale <= 0.0f) {
    for (int i = threadIdx.x; i < ffn; i += kRowThreads) amax = fmaxf(amax, fabsf(value(i)));
    amax = block_reduce<true>(amax);
  }
  const float s = row_scale(amax, static_scale, scales, row);
  uint8_t* qr = q + row * ffn;
  for (int i = threadIdx.x; i < ffn; i += kRowThreads) qr[i] = float_to_e4m3(value(i) / s);
}

template <typename T>
__global__ void scale_rows_cols_kernel(T* __restrict__ y, int cols,
                                       const float* __restrict__ row_scale,
                                       const float* __restrict__ col_scale) {
  pdl_trigger();
  pdl_wait();
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  const int64_t r = blockIdx.y;
  T* p = y + r * cols + c;
  *p = from_float<T>(to_float(*p) * (row_scale[r] * col_scale[c]));
}

// The same with 16-byte loads and stores (8 values of a 2-byte T per thread; cols % 8 == 0 and y
// 16-byte aligned): the pass reads and writes a prefill's whole GEMM output, so it runs at the
// memory's rate only with wide accesses (the scalar kernel reached ~0.85 TB/s on the H100).
template <typename T>
__global__ void scale_rows_cols_vec8_kernel(T* __restrict__ y, int cols,
                                            const float* __restrict__ row_scale,
                                            const float* __restrict__ col_scale) {
  static_assert(sizeof(T) == 2, "8 values per 16 bytes");
  pdl_trigger();
  pdl_wait();
  const int c = (blockIdx.x * blockDim.x + threadIdx.x) * 8;
  if (c >= cols) return;
  const int64_t r = blockIdx.y;
  const float rs = row_scale[r];
  auto* p = reinterpret_cast<uint4*>(y + r * cols + c);
  uint4 v = *p;
  T* e = reinterpret_cast<T*>(&v);
  const float4 s0 = *reinterpret_cast<const float4*>(col_scale + c);
  const float4 s1 = *reinterpret_cast<const float4*>(col_scale + c + 4);
  const float cs[8] = {s0.x, s0.y, s0.z, s0.w, s1.x, s1.y, s1.z, s1.w};
#pragma unroll
  for (int i = 0; i < 8; ++i) e[i] = from_float<T>(to_float(e[i]) * (rs * cs[i]));
  *p = v;
}

Status bad_dtype(model::DType dtype) {
  return invalid_argument(std::string("FP8 kernels take f32, f16 or bf16 activations, not ") +
                          model::dtype_name(dtype));
}

}  // namespace

bool fp8_device(int device) {
  int major = 0, minor = 0;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device) != cudaSuccess)
    return false;
  return major * 10 + minor >= 89;
}

Status quantize_fp8_rows(cudaStream_t stream, model::DType dtype, uint8_t* q, float* scales,
                         const void* x, int rows, int cols, int64_t x_stride, float static_scale,
                         bool pdl) {
  if (rows < 0 || cols <= 0 || x_stride < cols || !(static_scale >= 0.0f))
    return invalid_argument("quantize_fp8_rows: bad shape or scale");
  if (rows == 0) return Status::ok();
  const bool ok = dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    launch_kernel(pdl, quantize_rows_kernel<T>, dim3(rows), dim3(kRowThreads), 0, stream, q, scales,
                  static_cast<const T*>(x), cols, x_stride, static_scale);
  });
  if (!ok) return bad_dtype(dtype);
  return check_launch("quantize_fp8_rows");
}

Status rmsnorm_fp8(cudaStream_t stream, model::DType dtype, uint8_t* q, float* scales,
                   void* residual, const void* x, const void* weight, int rows, int dim, float eps,
                   float static_scale, bool pdl) {
  if (rows < 0 || dim <= 0 || !(static_scale >= 0.0f))
    return invalid_argument("rmsnorm_fp8: bad shape or scale");
  if (rows == 0) return Status::ok();
  const bool ok = dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    auto* kernel = x != nullptr ? rmsnorm_fp8_kernel<T, true> : rmsnorm_fp8_kernel<T, false>;
    launch_kernel(pdl, kernel, dim3(rows), dim3(kRowThreads), 0, stream, q, scales,
                  static_cast<T*>(residual), static_cast<const T*>(x),
                  static_cast<const T*>(weight), dim, eps, static_scale);
  });
  if (!ok) return bad_dtype(dtype);
  return check_launch("rmsnorm_fp8");
}

Status swiglu_fp8(cudaStream_t stream, model::DType dtype, uint8_t* q, float* scales,
                  const void* gate, const void* up, int rows, int ffn, int64_t in_stride,
                  float static_scale, bool pdl) {
  if (rows < 0 || ffn <= 0 || in_stride < ffn || !(static_scale >= 0.0f))
    return invalid_argument("swiglu_fp8: bad shape or scale");
  if (rows == 0) return Status::ok();
  const bool ok = dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    launch_kernel(pdl, swiglu_fp8_kernel<T>, dim3(rows), dim3(kRowThreads), 0, stream, q, scales,
                  static_cast<const T*>(gate), static_cast<const T*>(up), ffn, in_stride,
                  static_scale);
  });
  if (!ok) return bad_dtype(dtype);
  return check_launch("swiglu_fp8");
}

Status scale_rows_cols(cudaStream_t stream, model::DType dtype, void* y, int rows, int cols,
                       const float* row_scale, const float* col_scale, bool pdl) {
  if (rows < 0 || rows > 65535 || cols <= 0) return invalid_argument("scale_rows_cols: bad shape");
  if (rows == 0) return Status::ok();
  constexpr int kThreads = 256;
  // col_scale + c with c % 8 == 0 stays 16-byte aligned when col_scale is.
  const bool vec8 = cols % 8 == 0 && reinterpret_cast<uintptr_t>(y) % 16 == 0 &&
                    reinterpret_cast<uintptr_t>(col_scale) % 16 == 0;
  const bool ok = dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (sizeof(T) == 2) {
      if (vec8) {
        const dim3 grid((cols / 8 + kThreads - 1) / kThreads, rows);
        launch_kernel(pdl, scale_rows_cols_vec8_kernel<T>, grid, dim3(kThreads), 0, stream,
                      static_cast<T*>(y), cols, row_scale, col_scale);
        return;
      }
    }
    const dim3 grid((cols + kThreads - 1) / kThreads, rows);
    launch_kernel(pdl, scale_rows_cols_kernel<T>, grid, dim3(kThreads), 0, stream,
                  static_cast<T*>(y), cols, row_scale, col_scale);
  });
  if (!ok) return bad_dtype(dtype);
  return check_launch("scale_rows_cols");
}

}  // namespace turbine::cuda
