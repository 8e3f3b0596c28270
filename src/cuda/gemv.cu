// Skinny GEMM (m <= 8 rows of activations) for F16/BF16 weights: decode steps of a few sequences
// are bound by reading W once, which cuBLASLt's general kernels do not always do at full speed.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "cuda/dtype_util.cuh"
#include "cuda/gemm.h"
#include "cuda/launch.cuh"

namespace turbine::cuda {
namespace {

constexpr int kWarps = 8;  // rows of W per block
constexpr int kUnroll = 4;

template <typename T>
__device__ __forceinline__ void unpack8(const uint4& raw, float (&f)[8]) {
  if constexpr (sizeof(T) == 2) {
    const T* h = reinterpret_cast<const T*>(&raw);
#pragma unroll
    for (int i = 0; i < 8; ++i) f[i] = to_float(h[i]);
  }
}

template <typename T>
__device__ __forceinline__ void store_out(T* y, float v) {
  *y = from_float<T>(v);
}
__device__ __forceinline__ void store_out(float* y, float v) {
  *y = v;
}

// One warp per row of W: lane l reads the 16-byte chunks l, l + 32, ... of the row (and of the
// M activation rows, which stay in L1/L2), kUnroll chunks per batch with the next batch's loads
// issued before the current one is multiplied (2 x kUnroll chunks in flight per lane, so a row's
// stream never waits on its own arithmetic); warp reduction at the end.
template <typename T, typename TOut, int M>
__global__ void __launch_bounds__(kWarps * 32)
    gemv_kernel(TOut* __restrict__ y, const T* __restrict__ x, const T* __restrict__ w, int n,
                int k) {
  pdl_trigger();
  const int row = blockIdx.x * kWarps + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (row >= n) {
    pdl_wait();
    return;
  }
  const int chunks = k / 8;
  const uint4* wr = reinterpret_cast<const uint4*>(w + static_cast<int64_t>(row) * k);
  float acc[M];
#pragma unroll
  for (int m = 0; m < M; ++m) acc[m] = 0.0f;
  uint4 cur[kUnroll], nxt[kUnroll];
  auto load_w = [&](uint4(&raw)[kUnroll], int c0) {
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int c = c0 + u * 32;
      raw[u] = c < chunks ? __ldg(wr + c) : make_uint4(0, 0, 0, 0);
    }
  };
  // The first weights do not depend on earlier kernels: with PDL they load while the kernel
  // before (which wrote x) is still finishing.
  load_w(cur, lane);
  pdl_wait();
  for (int c0 = lane; c0 < chunks; c0 += 32 * kUnroll) {
    const int next = c0 + 32 * kUnroll;
    if (next < chunks) load_w(nxt, next);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int c = c0 + u * 32;
      if (c < chunks) {
        float wf[8];
        unpack8<T>(cur[u], wf);
#pragma unroll
        for (int m = 0; m < M; ++m) {
          float xf[8];
          unpack8<T>(__ldg(reinterpret_cast<const uint4*>(x + static_cast<int64_t>(m) * k) + c),
                     xf);
#pragma unroll
          for (int j = 0; j < 8; ++j) acc[m] += wf[j] * xf[j];
        }
      }
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) cur[u] = nxt[u];
  }
#pragma unroll
  for (int m = 0; m < M; ++m) {
    float s = acc[m];
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    if (lane == 0) store_out(y + static_cast<int64_t>(m) * n + row, s);
  }
}

// The gate|up projection with SwiGLU applied: W is [2 * ffn][k] (gate rows, then up rows); the
// warp of output i reads gate row i and up row ffn + i and writes silu(g) * u, g and u rounded
// to T first (as the separate GEMM + swiglu would store them).
template <typename T, int M>
__global__ void __launch_bounds__(kWarps * 32)
    gemv_swiglu_kernel(T* __restrict__ y, const T* __restrict__ x, const T* __restrict__ w, int ffn,
                       int k) {
  pdl_trigger();
  const int row = blockIdx.x * kWarps + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (row >= ffn) {
    pdl_wait();
    return;
  }
  const int chunks = k / 8;
  const uint4* wg = reinterpret_cast<const uint4*>(w + static_cast<int64_t>(row) * k);
  const uint4* wu = reinterpret_cast<const uint4*>(w + (static_cast<int64_t>(row) + ffn) * k);
  float ag[M], au[M];
#pragma unroll
  for (int m = 0; m < M; ++m) ag[m] = au[m] = 0.0f;
  uint4 rg[kUnroll], ru[kUnroll];
  auto load_w = [&](int c0) {
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int c = c0 + u * 32;
      rg[u] = c < chunks ? __ldg(wg + c) : make_uint4(0, 0, 0, 0);
      ru[u] = c < chunks ? __ldg(wu + c) : make_uint4(0, 0, 0, 0);
    }
  };
  load_w(lane);
  pdl_wait();
  for (int c0 = lane; c0 < chunks; c0 += 32 * kUnroll) {
    if (c0 != lane) load_w(c0);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int c = c0 + u * 32;
      if (c < chunks) {
        float gf[8], uf[8];
        unpack8<T>(rg[u], gf);
        unpack8<T>(ru[u], uf);
#pragma unroll
        for (int m = 0; m < M; ++m) {
          float xf[8];
          unpack8<T>(reinterpret_cast<const uint4*>(x + static_cast<int64_t>(m) * k)[c], xf);
#pragma unroll
          for (int j = 0; j < 8; ++j) {
            ag[m] += gf[j] * xf[j];
            au[m] += uf[j] * xf[j];
          }
        }
      }
    }
  }
#pragma unroll
  for (int m = 0; m < M; ++m) {
    float g = ag[m], u = au[m];
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      g += __shfl_xor_sync(0xffffffffu, g, o);
      u += __shfl_xor_sync(0xffffffffu, u, o);
    }
    if (lane == 0) {
      g = to_float(from_float<T>(g));
      u = to_float(from_float<T>(u));
      y[static_cast<int64_t>(m) * ffn + row] = from_float<T>(g / (1.0f + expf(-g)) * u);
    }
  }
}

template <typename T, typename TOut>
void launch(cudaStream_t stream, TOut* y, const T* x, const T* w, int m, int n, int k, bool pdl) {
  const unsigned blocks = static_cast<unsigned>((n + kWarps - 1) / kWarps);
  switch (m) {
#define TURBINE_GEMV_CASE(M)                                                                      \
  case M:                                                                                         \
    launch_kernel(pdl, gemv_kernel<T, TOut, M>, dim3(blocks), dim3(kWarps * 32), 0, stream, y, x, \
                  w, n, k);                                                                       \
    break;
    TURBINE_GEMV_CASE(1)
    TURBINE_GEMV_CASE(2)
    TURBINE_GEMV_CASE(3)
    TURBINE_GEMV_CASE(4)
    TURBINE_GEMV_CASE(5)
    TURBINE_GEMV_CASE(6)
    TURBINE_GEMV_CASE(7)
    TURBINE_GEMV_CASE(8)
#undef TURBINE_GEMV_CASE
    default: break;
  }
}

template <typename T>
void launch_swiglu(cudaStream_t stream, T* y, const T* x, const T* w, int m, int ffn, int k,
                   bool pdl) {
  const unsigned blocks = static_cast<unsigned>((ffn + kWarps - 1) / kWarps);
  switch (m) {
#define TURBINE_GEMV_CASE(M)                                                                       \
  case M:                                                                                          \
    launch_kernel(pdl, gemv_swiglu_kernel<T, M>, dim3(blocks), dim3(kWarps * 32), 0, stream, y, x, \
                  w, ffn, k);                                                                      \
    break;
    TURBINE_GEMV_CASE(1)
    TURBINE_GEMV_CASE(2)
    TURBINE_GEMV_CASE(3)
    TURBINE_GEMV_CASE(4)
    TURBINE_GEMV_CASE(5)
    TURBINE_GEMV_CASE(6)
    TURBINE_GEMV_CASE(7)
    TURBINE_GEMV_CASE(8)
#undef TURBINE_GEMV_CASE
    default: break;
  }
}

}  // namespace

Status gemv_swiglu(cudaStream_t stream, model::DType dtype, const void* x, const void* w, void* y,
                   int m, int ffn, int k, bool pdl) {
  if (!gemv_applies(dtype, dtype, m, k) || ffn <= 0)
    return invalid_argument("gemv_swiglu: needs f16/bf16, 1 <= m <= 8, k % 8 == 0");
  if ((reinterpret_cast<uintptr_t>(x) | reinterpret_cast<uintptr_t>(w)) % 16 != 0)
    return invalid_argument("gemv_swiglu: x and w must be 16-byte aligned");
  dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (sizeof(T) == 2) {
      launch_swiglu<T>(stream, static_cast<T*>(y), static_cast<const T*>(x),
                       static_cast<const T*>(w), m, ffn, k, pdl);
    }
  });
  return check_launch("gemv_swiglu");
}

bool gemv_applies(model::DType dtype, model::DType out_dtype, int m, int k) {
  return (dtype == model::DType::kBF16 || dtype == model::DType::kF16) &&
         (out_dtype == dtype || out_dtype == model::DType::kF32) && m >= 1 && m <= kGemvMaxRows &&
         k % 8 == 0;
}

bool gemv_preferred(int n, int k) {
  // Measured on the H100 at m = 1 (Llama-3-8B shapes): cuBLASLt's split-K kernels win when the
  // rows are long (down: n 4096, k 14336) and tie up to n ~ 7k; gemv wins on wide outputs (the LM
  // head, n 128256: 3.06 TB/s).
  return n >= 4 * k;
}

Status gemv(cudaStream_t stream, model::DType dtype, const void* x, const void* w, void* y, int m,
            int n, int k, model::DType out_dtype, bool pdl) {
  if (!gemv_applies(dtype, out_dtype, m, k) || n <= 0)
    return invalid_argument("gemv: needs f16/bf16, 1 <= m <= 8, k % 8 == 0");
  if ((reinterpret_cast<uintptr_t>(x) | reinterpret_cast<uintptr_t>(w)) % 16 != 0)
    return invalid_argument("gemv: x and w must be 16-byte aligned");
  dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (sizeof(T) == 2) {
      if (out_dtype == model::DType::kF32) {
        launch<T, float>(stream, static_cast<float*>(y), static_cast<const T*>(x),
                         static_cast<const T*>(w), m, n, k, pdl);
      } else {
        launch<T, T>(stream, static_cast<T*>(y), static_cast<const T*>(x), static_cast<const T*>(w),
                     m, n, k, pdl);
      }
    }
  });
  return check_launch("gemv");
}

}  // namespace turbine::cuda
