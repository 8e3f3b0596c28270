// Weight-only FP8 GEMV (W8A16) for decode steps of m <= 8 rows: E4M3 weights are dequantized in
// registers against the BF16/F32 activations themselves, so no activation quantization kernel
// runs before the projection and the only rounding beyond the BF16 path's is the weights' own.
// See cuda/fp8.h.
//
// Layout of the work: a warp owns R output rows (a "row group") and SPLIT warps share a group's k
// range (split-K inside a block). Lane l of part p reads the 16-weight chunks 32 p + l,
// 32 (p + SPLIT) + l, ... of every row of its group: R 16-byte weight loads per chunk that share
// the chunk's activations, which are loaded once (L1-resident: x is at most 8 x 14,336 elements)
// and reused for the R rows. The reuse matters more than the weight-load width at m = 4..8: with
// one row per warp each 16-byte weight load needs 2 m 16-byte activation loads, which at m = 8
// asks more of L1 than the SM can give while HBM streams at full rate.
//
// Weights are read with ld.global.nc.L1::no_allocate (they are streamed once and must not evict
// the activations from L1); 2 x kLoads chunks per lane are in flight (the next batch is issued
// before the current one is multiplied).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <string>
#include <type_traits>

#include "cuda/device.h"
#include "cuda/dtype_util.cuh"
#include "cuda/fp8.h"
#include "cuda/fp8_util.cuh"
#include "cuda/gemm.h"
#include "cuda/launch.cuh"

namespace turbine::cuda {
namespace {

constexpr int kWarps = 8;  // warps per block; SPLIT warps per row group, kWarps / SPLIT groups
constexpr int kLoads = 4;  // weight loads per lane per batch (R rows x kLoads / R chunks)

__device__ __forceinline__ uint4 load_stream(const uint4* p) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}

// 8 weights (two 32-bit words of E4M3) -> floats (exact: every E4M3 value is an F16 value).
__device__ __forceinline__ void e4m3x8_to_float(uint32_t lo, uint32_t hi, float (&f)[8]) {
  e4m3x4_to_float(lo, f);
  e4m3x4_to_float(hi, f + 4);
}

// 8 activations starting at p (16-byte aligned: k % 16 == 0 and x aligned).
__device__ __forceinline__ void load_x8(const __nv_bfloat16* p, float (&f)[8]) {
  const uint4 raw = __ldg(reinterpret_cast<const uint4*>(p));
  const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&raw);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 v = __bfloat1622float2(h[i]);
    f[2 * i] = v.x;
    f[2 * i + 1] = v.y;
  }
}
__device__ __forceinline__ void load_x8(const float* p, float (&f)[8]) {
  const float4 a = __ldg(reinterpret_cast<const float4*>(p));
  const float4 b = __ldg(reinterpret_cast<const float4*>(p) + 1);
  f[0] = a.x, f[1] = a.y, f[2] = a.z, f[3] = a.w;
  f[4] = b.x, f[5] = b.y, f[6] = b.z, f[7] = b.w;
}

// SWIGLU: W is [2 * n][k] (gate rows, then up rows); a group's first R / 2 rows are gate rows
// g R/2 + i, its last R / 2 the matching up rows n + g R/2 + i; y [m][n] = silu(g) * u with g and
// u scaled and rounded to T first (as the projection would store them before swiglu). Otherwise
// the group's rows are g R + i and y [m][n] = w_scale[row] * sum, stored as TY (T, or F32: the
// LM head's logits).
template <typename T, typename TY, int M, int R, bool SWIGLU>
__global__ void __launch_bounds__(kWarps * 32)
    w8a16_kernel(TY* __restrict__ y, const T* __restrict__ x, const uint8_t* __restrict__ w,
                 const float* __restrict__ w_scale, int n, int k, int split) {
  static_assert(!SWIGLU || std::is_same_v<T, TY>);
  static_assert(!SWIGLU || R % 2 == 0);
  constexpr int kU = kLoads / R > 0 ? kLoads / R : 1;  // chunks per lane per batch
  constexpr int kOut = SWIGLU ? R / 2 : R;             // outputs per group and activation row
  pdl_trigger();
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int group = blockIdx.x * (kWarps / split) + warp / split;
  const int part = warp % split;
  const int chunks = k / 16;
  const uint4* wr[R];
  bool valid[R];
  int rows[R];
#pragma unroll
  for (int r = 0; r < R; ++r) {
    int out, row;
    if constexpr (SWIGLU) {
      out = group * kOut + (r % kOut);
      row = r < kOut ? out : n + out;
    } else {
      out = group * R + r;
      row = out;
    }
    valid[r] = out < n;
    rows[r] = valid[r] ? row : 0;
    wr[r] = reinterpret_cast<const uint4*>(w + static_cast<int64_t>(rows[r]) * k);
  }
  float acc[M][R];
#pragma unroll
  for (int m = 0; m < M; ++m)
#pragma unroll
    for (int r = 0; r < R; ++r) acc[m][r] = 0.0f;
  const int stride = 32 * split;
  uint4 cur[kU][R], nxt[kU][R];
  auto load_w = [&](uint4(&raw)[kU][R], int c0) {
#pragma unroll
    for (int u = 0; u < kU; ++u) {
      const int c = c0 + u * stride;
#pragma unroll
      for (int r = 0; r < R; ++r)
        raw[u][r] = valid[r] && c < chunks ? load_stream(wr[r] + c) : make_uint4(0, 0, 0, 0);
    }
  };
  const int first = part * 32 + lane;
  load_w(cur, first);  // weights do not depend on the kernel before (PDL)
  pdl_wait();
  for (int c0 = first; c0 < chunks; c0 += stride * kU) {
    const int next = c0 + stride * kU;
    if (next < chunks) load_w(nxt, next);
#pragma unroll
    for (int u = 0; u < kU; ++u) {
      const int c = c0 + u * stride;
      if (c < chunks) {
#pragma unroll
        for (int half = 0; half < 2; ++half) {
          float wf[R][8];
#pragma unroll
          for (int r = 0; r < R; ++r) {
            const uint32_t lo = half == 0 ? cur[u][r].x : cur[u][r].z;
            const uint32_t hi = half == 0 ? cur[u][r].y : cur[u][r].w;
            e4m3x8_to_float(lo, hi, wf[r]);
          }
#pragma unroll
          for (int m = 0; m < M; ++m) {
            float xf[8];
            load_x8(x + static_cast<int64_t>(m) * k + static_cast<int64_t>(c) * 16 + half * 8, xf);
#pragma unroll
            for (int r = 0; r < R; ++r)
#pragma unroll
              for (int j = 0; j < 8; ++j) acc[m][r] += wf[r][j] * xf[j];
          }
        }
      }
    }
#pragma unroll
    for (int u = 0; u < kU; ++u)
#pragma unroll
      for (int r = 0; r < R; ++r) cur[u][r] = nxt[u][r];
  }
#pragma unroll
  for (int m = 0; m < M; ++m)
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) acc[m][r] += __shfl_xor_sync(0xffffffffu, acc[m][r], o);
  __shared__ float partial[kWarps][M * R];
  if (lane == 0) {
#pragma unroll
    for (int m = 0; m < M; ++m)
#pragma unroll
      for (int r = 0; r < R; ++r) partial[warp][m * R + r] = acc[m][r];
  }
  __syncthreads();
  // The group's first warp writes its M x kOut outputs, one per lane (M * R <= 32).
  if (part != 0 || lane >= M * kOut) return;
  const int m = lane / kOut, i = lane % kOut;
  auto sum = [&](int r) {
    float s = 0.0f;
    for (int p = 0; p < split; ++p) s += partial[warp + p][m * R + r];
    return s;
  };
  const int out = group * kOut + i;
  if (out >= n) return;
  if constexpr (SWIGLU) {
    const float g = to_float(from_float<T>(sum(i) * w_scale[out]));
    const float u = to_float(from_float<T>(sum(i + kOut) * w_scale[n + out]));
    y[static_cast<int64_t>(m) * n + out] = from_float<T>(g / (1.0f + expf(-g)) * u);
  } else {
    y[static_cast<int64_t>(m) * n + out] = from_float<TY>(sum(i) * w_scale[out]);
  }
}

template <bool SWIGLU, typename F>
void with_group(int rows, F&& f) {
  if (rows == 4) return f(std::integral_constant<int, 4>{});
  if constexpr (!SWIGLU) {
    if (rows == 1) return f(std::integral_constant<int, 1>{});
  }
  f(std::integral_constant<int, 2>{});
}

template <bool SWIGLU>
Status run(cudaStream_t stream, model::DType dtype, model::DType out_dtype, const void* x,
           const uint8_t* w, const float* w_scale, void* y, int m, int n, int k, bool pdl,
           int split, int rows) {
  const char* what = SWIGLU ? "gemv_w8a16_swiglu" : "gemv_w8a16";
  if (out_dtype != dtype && (SWIGLU || out_dtype != model::DType::kF32))
    return invalid_argument(std::string(what) + ": output in the activations' dtype or f32");
  const bool f32_out = out_dtype == model::DType::kF32;
  (void)f32_out;  // read by the non-SwiGLU instantiations only
  if (m < 1 || m > kGemvMaxRows || n <= 0 || k <= 0 || k % 16 != 0)
    return invalid_argument(std::string(what) + ": needs 1 <= m <= 8, n > 0, k % 16 == 0");
  if ((reinterpret_cast<uintptr_t>(x) | reinterpret_cast<uintptr_t>(w)) % 16 != 0)
    return invalid_argument(std::string(what) + ": x and w must be 16-byte aligned");
  if (dtype != model::DType::kBF16 && dtype != model::DType::kF32)
    return invalid_argument(std::string(what) + ": activations bf16 or f32");
  if (split == 0) split = w8a16_default_split(n, k);
  if (rows == 0) rows = w8a16_default_rows(m, SWIGLU);
  if (split != 1 && split != 2 && split != 4 && split != 8)
    return invalid_argument(std::string(what) + ": split is 1, 2, 4 or 8");
  if (!(rows == 2 || rows == 4 || (!SWIGLU && rows == 1)))
    return invalid_argument(std::string(what) +
                            (SWIGLU ? ": rows is 2 or 4" : ": rows is 1, 2 or 4"));
  dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (!std::is_same_v<T, __half>) {
      with_group<SWIGLU>(rows, [&](auto rg) {
        constexpr int kR = decltype(rg)::value;
        constexpr int kOut = SWIGLU ? kR / 2 : kR;
        const int groups = (n + kOut - 1) / kOut;
        const int per_block = kWarps / split;
        const dim3 grid((groups + per_block - 1) / per_block);
        with_rows(m, [&](auto mr) {
          constexpr int kM = decltype(mr)::value;
          if constexpr (!SWIGLU && !std::is_same_v<T, float>) {
            if (f32_out) {
              launch_kernel(pdl, w8a16_kernel<T, float, kM, kR, false>, grid, dim3(kWarps * 32), 0,
                            stream, static_cast<float*>(y), static_cast<const T*>(x), w, w_scale, n,
                            k, split);
              return;
            }
          }
          launch_kernel(pdl, w8a16_kernel<T, T, kM, kR, SWIGLU>, grid, dim3(kWarps * 32), 0, stream,
                        static_cast<T*>(y), static_cast<const T*>(x), w, w_scale, n, k, split);
        });
      });
    }
  });
  return check_launch(what);
}

}  // namespace

int w8a16_default_split(int n, int k) {
  // Long rows (k >= 2n: down) get 8 warps per group, as gemv's 16 for BF16 rows of twice the
  // bytes; the rest 4 (gemv_split's choice for BF16).
  return k >= 2 * n ? 8 : 4;
}

int w8a16_default_rows(int m, bool swiglu) {
  // One activation row: 2 rows per warp halve the activation loads per weight load; from m = 2
  // on 4 rows keep L1 traffic per weight byte at 2 m / 4 x the BF16 gemv's one row's.
  (void)swiglu;
  return m == 1 ? 2 : 4;
}

Status gemv_w8a16(cudaStream_t stream, model::DType dtype, const void* x, const uint8_t* w,
                  const float* w_scale, void* y, int m, int n, int k, bool pdl, int split,
                  int rows) {
  return run<false>(stream, dtype, dtype, x, w, w_scale, y, m, n, k, pdl, split, rows);
}

Status gemv_w8a16_out(cudaStream_t stream, model::DType dtype, model::DType out_dtype,
                      const void* x, const uint8_t* w, const float* w_scale, void* y, int m, int n,
                      int k, bool pdl, int split, int rows) {
  return run<false>(stream, dtype, out_dtype, x, w, w_scale, y, m, n, k, pdl, split, rows);
}

Status gemv_w8a16_swiglu(cudaStream_t stream, model::DType dtype, const void* x, const uint8_t* w,
                         const float* w_scale, void* y, int m, int ffn, int k, bool pdl, int split,
                         int rows) {
  return run<true>(stream, dtype, dtype, x, w, w_scale, y, m, ffn, k, pdl, split, rows);
}

}  // namespace turbine::cuda
