// Skinny GEMM (m <= 8 rows of activations) for F16/BF16 weights: decode steps of a few sequences
// are bound by reading W once, which cuBLASLt's general kernels do not always do at full speed.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <type_traits>

#include "cuda/dtype_util.cuh"
#include "cuda/gemm.h"
#include "cuda/launch.cuh"

namespace turbine::cuda {
namespace {

constexpr int kWarps = 8;  // warps per block (16 with 16 warps per row)

// Warps per block for SPLIT warps per row: 8, or one row of SPLIT warps when SPLIT is larger.
template <int SPLIT>
constexpr int block_warps() {
  return SPLIT > kWarps ? SPLIT : kWarps;
}
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

// SPLIT warps per row of W (split-K: more loads in flight and shorter warps for shapes with few
// rows): warp part p of a row has lane l read the 16-byte chunks 32 p + l, 32 (p + SPLIT) + l, ...
// of the row (and of the M activation rows, which stay in L1/L2), kUnroll chunks per batch with
// the next batch's loads issued before the current one is multiplied (2 x kUnroll chunks in
// flight per lane, so a row's stream never waits on its own arithmetic); warp reduction, then the
// SPLIT partial sums of a row through shared memory.
template <typename T, typename TOut, int M, int SPLIT>
__global__ void __launch_bounds__(block_warps<SPLIT>() * 32)
    gemv_kernel(TOut* __restrict__ y, const T* __restrict__ x, const T* __restrict__ w, int n,
                int k) {
  constexpr int kBlockWarps = block_warps<SPLIT>();
  static_assert(kBlockWarps % SPLIT == 0);
  pdl_trigger();
  const int warp = threadIdx.x >> 5;
  const int row = blockIdx.x * (kBlockWarps / SPLIT) + warp / SPLIT;
  const int part = warp % SPLIT;
  const int lane = threadIdx.x & 31;
  if (SPLIT == 1 && row >= n) {
    pdl_wait();
    return;
  }
  const int chunks = row < n ? k / 8 : 0;  // a row past the end only joins the block's reduction
  const uint4* wr = reinterpret_cast<const uint4*>(w + static_cast<int64_t>(row < n ? row : 0) * k);
  float acc[M];
#pragma unroll
  for (int m = 0; m < M; ++m) acc[m] = 0.0f;
  constexpr int kStride = 32 * SPLIT;  // chunks between a lane's consecutive loads
  uint4 cur[kUnroll], nxt[kUnroll];
  auto load_w = [&](uint4(&raw)[kUnroll], int c0) {
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int c = c0 + u * kStride;
      raw[u] = c < chunks ? __ldg(wr + c) : make_uint4(0, 0, 0, 0);
    }
  };
  const int first = part * 32 + lane;
  // The first weights do not depend on earlier kernels: with PDL they load while the kernel
  // before (which wrote x) is still finishing.
  load_w(cur, first);
  pdl_wait();
  for (int c0 = first; c0 < chunks; c0 += kStride * kUnroll) {
    const int next = c0 + kStride * kUnroll;
    if (next < chunks) load_w(nxt, next);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int c = c0 + u * kStride;
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
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) acc[m] += __shfl_xor_sync(0xffffffffu, acc[m], o);
  }
  if constexpr (SPLIT == 1) {
    if (lane == 0) {
#pragma unroll
      for (int m = 0; m < M; ++m) store_out(y + static_cast<int64_t>(m) * n + row, acc[m]);
    }
  } else {
    __shared__ float partial[kBlockWarps][M];
    if (lane == 0) {
#pragma unroll
      for (int m = 0; m < M; ++m) partial[warp][m] = acc[m];
    }
    __syncthreads();
    if (part == 0 && lane < M && row < n) {
      float s = 0.0f;
#pragma unroll
      for (int p = 0; p < SPLIT; ++p) s += partial[warp + p][lane];
      store_out(y + static_cast<int64_t>(lane) * n + row, s);
    }
  }
}

// The gate|up projection with SwiGLU applied: W is [2 * ffn][k] (gate rows, then up rows); the
// SPLIT warps of output i read gate row i and up row ffn + i (chunks split as in gemv_kernel) and
// write silu(g) * u, g and u rounded to T first (as the separate GEMM + swiglu would store them;
// with the same SPLIT the sums are gemv_kernel's, bit for bit).
template <typename T, int M, int SPLIT>
__global__ void __launch_bounds__(kWarps * 32)
    gemv_swiglu_kernel(T* __restrict__ y, const T* __restrict__ x, const T* __restrict__ w, int ffn,
                       int k) {
  static_assert(kWarps % SPLIT == 0);
  pdl_trigger();
  const int warp = threadIdx.x >> 5;
  const int row = blockIdx.x * (kWarps / SPLIT) + warp / SPLIT;
  const int part = warp % SPLIT;
  const int lane = threadIdx.x & 31;
  if (SPLIT == 1 && row >= ffn) {
    pdl_wait();
    return;
  }
  const int chunks = row < ffn ? k / 8 : 0;
  const int64_t r = row < ffn ? row : 0;
  const uint4* wg = reinterpret_cast<const uint4*>(w + r * k);
  const uint4* wu = reinterpret_cast<const uint4*>(w + (r + ffn) * k);
  float ag[M], au[M];
#pragma unroll
  for (int m = 0; m < M; ++m) ag[m] = au[m] = 0.0f;
  constexpr int kStride = 32 * SPLIT;
  uint4 rg[kUnroll], ru[kUnroll];
  auto load_w = [&](int c0) {
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int c = c0 + u * kStride;
      rg[u] = c < chunks ? __ldg(wg + c) : make_uint4(0, 0, 0, 0);
      ru[u] = c < chunks ? __ldg(wu + c) : make_uint4(0, 0, 0, 0);
    }
  };
  const int first = part * 32 + lane;
  load_w(first);
  pdl_wait();
  for (int c0 = first; c0 < chunks; c0 += kStride * kUnroll) {
    if (c0 != first) load_w(c0);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int c = c0 + u * kStride;
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
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      ag[m] += __shfl_xor_sync(0xffffffffu, ag[m], o);
      au[m] += __shfl_xor_sync(0xffffffffu, au[m], o);
    }
  }
  auto write = [&](int m, float g, float u) {
    g = to_float(from_float<T>(g));
    u = to_float(from_float<T>(u));
    y[static_cast<int64_t>(m) * ffn + row] = from_float<T>(g / (1.0f + expf(-g)) * u);
  };
  if constexpr (SPLIT == 1) {
    if (lane == 0) {
#pragma unroll
      for (int m = 0; m < M; ++m) write(m, ag[m], au[m]);
    }
  } else {
    __shared__ float partial[2][kWarps][M];
    if (lane == 0) {
#pragma unroll
      for (int m = 0; m < M; ++m) {
        partial[0][warp][m] = ag[m];
        partial[1][warp][m] = au[m];
      }
    }
    __syncthreads();
    if (part == 0 && lane < M && row < ffn) {
      float g = 0.0f, u = 0.0f;
#pragma unroll
      for (int p = 0; p < SPLIT; ++p) {
        g += partial[0][warp + p][lane];
        u += partial[1][warp + p][lane];
      }
      write(lane, g, u);
    }
  }
}

// Calls f(std::integral_constant<int, SPLIT>{}) for warps per row 1, 2, 4, 8 (and 16 when
// kMaxSplit is 16); callers validate `split` first.
template <int kMaxSplit, typename F>
void with_split(int split, F&& f) {
  if constexpr (kMaxSplit >= 16) {
    if (split == 16) return f(std::integral_constant<int, 16>{});
  }
  if (split == 8) return f(std::integral_constant<int, 8>{});
  if (split == 4) return f(std::integral_constant<int, 4>{});
  if (split == 2) return f(std::integral_constant<int, 2>{});
  f(std::integral_constant<int, 1>{});
}

// Blocks of block_warps<SPLIT>() warps, each covering block_warps / SPLIT rows of `rows`.
template <int SPLIT>
unsigned blocks_for(int rows) {
  constexpr int kRowsPerBlock = block_warps<SPLIT>() / SPLIT;
  return static_cast<unsigned>((rows + kRowsPerBlock - 1) / kRowsPerBlock);
}

template <typename T, typename TOut>
void launch(cudaStream_t stream, TOut* y, const T* x, const T* w, int m, int n, int k, int split,
            bool pdl) {
  with_split<16>(split, [&](auto s) {
    constexpr int kSplit = decltype(s)::value;
    with_rows(m, [&](auto r) {
      launch_kernel(pdl, gemv_kernel<T, TOut, decltype(r)::value, kSplit>,
                    dim3(blocks_for<kSplit>(n)), dim3(block_warps<kSplit>() * 32), 0, stream, y, x,
                    w, n, k);
    });
  });
}

template <typename T>
void launch_swiglu(cudaStream_t stream, T* y, const T* x, const T* w, int m, int ffn, int k,
                   int split, bool pdl) {
  with_split<8>(split, [&](auto s) {
    constexpr int kSplit = decltype(s)::value;
    with_rows(m, [&](auto r) {
      launch_kernel(pdl, gemv_swiglu_kernel<T, decltype(r)::value, kSplit>,
                    dim3(blocks_for<kSplit>(ffn)), dim3(kWarps * 32), 0, stream, y, x, w, ffn, k);
    });
  });
}

}  // namespace

Status gemv_swiglu(cudaStream_t stream, model::DType dtype, const void* x, const void* w, void* y,
                   int m, int ffn, int k, bool pdl, int split) {
  if (!gemv_applies(dtype, dtype, m, k) || ffn <= 0)
    return invalid_argument("gemv_swiglu: needs f16/bf16, 1 <= m <= 8, k % 8 == 0");
  // Measured (bench/gemv_bench.cpp): 8 warps per row at m = 1 (3.0 TB/s), 4 from m = 2 on.
  if (split == 0) split = m == 1 ? 8 : gemv_split(2 * ffn, k);
  if (split != 1 && split != 2 && split != 4 && split != 8)
    return invalid_argument("gemv_swiglu: split is 1, 2, 4 or 8");
  if ((reinterpret_cast<uintptr_t>(x) | reinterpret_cast<uintptr_t>(w)) % 16 != 0)
    return invalid_argument("gemv_swiglu: x and w must be 16-byte aligned");
  dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (sizeof(T) == 2) {
      launch_swiglu<T>(stream, static_cast<T*>(y), static_cast<const T*>(x),
                       static_cast<const T*>(w), m, ffn, k, split, pdl);
    }
  });
  return check_launch("gemv_swiglu");
}

bool gemv_applies(model::DType dtype, model::DType out_dtype, int m, int k) {
  return (dtype == model::DType::kBF16 || dtype == model::DType::kF16) &&
         (out_dtype == dtype || out_dtype == model::DType::kF32) && m >= 1 && m <= kGemvMaxRows &&
         k % 8 == 0;
}

bool gemv_preferred(int m) {
  // Measured on the H100 (bench/gemv_bench.cpp, Llama-3.1-8B shapes, docs/PERFORMANCE.md): at
  // m <= 2 gemv with gemv_split's warps per row matches or beats cuBLASLt on every projection
  // (m = 1: Q|K|V 21.1 vs 21.8 µs, O 15.0 vs 16.7, down 42.7 vs 44.8, gate|up 78.6 vs 82.8, LM
  // head 333 vs 377); from m = 4 on cuBLASLt wins (gemv re-reads x for every row).
  return m <= kGemvFastRows;
}

int gemv_split(int n, int k) {
  // Warps per row: 4 (split-K within a block: more loads in flight and shorter warps than one
  // warp per row, 1.6-8% faster at m = 1 on the H100), 16 for long rows (k >= 2n: down, one row
  // per 512-thread block: 42.7 µs vs 43.8 with 8 and 44.8 for cuBLASLt).
  return k >= 2 * n ? 16 : 4;
}

Status gemv(cudaStream_t stream, model::DType dtype, const void* x, const void* w, void* y, int m,
            int n, int k, model::DType out_dtype, bool pdl, int split) {
  if (!gemv_applies(dtype, out_dtype, m, k) || n <= 0)
    return invalid_argument("gemv: needs f16/bf16, 1 <= m <= 8, k % 8 == 0");
  if (split == 0) split = gemv_split(n, k);
  if (split != 1 && split != 2 && split != 4 && split != 8 && split != 16)
    return invalid_argument("gemv: split is 1, 2, 4, 8 or 16");
  if ((reinterpret_cast<uintptr_t>(x) | reinterpret_cast<uintptr_t>(w)) % 16 != 0)
    return invalid_argument("gemv: x and w must be 16-byte aligned");
  dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (sizeof(T) == 2) {
      if (out_dtype == model::DType::kF32) {
        launch<T, float>(stream, static_cast<float*>(y), static_cast<const T*>(x),
                         static_cast<const T*>(w), m, n, k, split, pdl);
      } else {
        launch<T, T>(stream, static_cast<T*>(y), static_cast<const T*>(x), static_cast<const T*>(w),
                     m, n, k, split, pdl);
      }
    }
  });
  return check_launch("gemv");
}

}  // namespace turbine::cuda
