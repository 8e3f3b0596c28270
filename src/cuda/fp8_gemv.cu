// Skinny FP8 GEMM (m <= 8 rows of quantized activations) for E4M3 weights: a decode step reads
// each weight byte once; see cuda/fp8.h. The structure is gemv.cu's (SPLIT warps per output row,
// 16-byte loads, the next batch of loads issued before the current one is used), with 16 weights
// per load dequantized in registers and the two scales applied to the F32 sum.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <type_traits>

#include "cuda/device.h"
#include "cuda/dtype_util.cuh"
#include "cuda/fp8.h"
#include "cuda/fp8_util.cuh"
#include "cuda/gemm.h"
#include "cuda/launch.cuh"

namespace turbine::cuda {
namespace {

constexpr int kWarps = 8;
constexpr int kUnroll = 4;

template <int SPLIT>
constexpr int block_warps() {
  return SPLIT > kWarps ? SPLIT : kWarps;
}

template <typename TOut, int M, int SPLIT>
__global__ void __launch_bounds__(block_warps<SPLIT>() * 32)
    gemv_fp8_kernel(TOut* __restrict__ y, const uint8_t* __restrict__ x,
                    const float* __restrict__ x_scale, const uint8_t* __restrict__ w,
                    const float* __restrict__ w_scale, int n, int k) {
  constexpr int kBlockWarps = block_warps<SPLIT>();
  static_assert(kBlockWarps % SPLIT == 0);
  pdl_trigger();
  const int warp = threadIdx.x >> 5;
  const int row = blockIdx.x * (kBlockWarps / SPLIT) + warp / SPLIT;
  const int part = warp % SPLIT;
  const int lane = threadIdx.x & 31;
  const int chunks = row < n ? k / 16 : 0;  // a row past the end only joins the reduction
  const uint4* wr = reinterpret_cast<const uint4*>(w + static_cast<int64_t>(row < n ? row : 0) * k);
  float acc[M];
#pragma unroll
  for (int m = 0; m < M; ++m) acc[m] = 0.0f;
  constexpr int kStride = 32 * SPLIT;
  uint4 cur[kUnroll], nxt[kUnroll];
  auto load_w = [&](uint4(&raw)[kUnroll], int c0) {
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int c = c0 + u * kStride;
      raw[u] = c < chunks ? __ldg(wr + c) : make_uint4(0, 0, 0, 0);
    }
  };
  const int first = part * 32 + lane;
  load_w(cur, first);  // weights do not depend on the kernel before (PDL)
  pdl_wait();
  for (int c0 = first; c0 < chunks; c0 += kStride * kUnroll) {
    const int next = c0 + kStride * kUnroll;
    if (next < chunks) load_w(nxt, next);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int c = c0 + u * kStride;
      if (c < chunks) {
        float wf[16];
        e4m3x16_to_float(cur[u], wf);
#pragma unroll
        for (int m = 0; m < M; ++m) {
          float xf[16];
          e4m3x16_to_float(
              __ldg(reinterpret_cast<const uint4*>(x + static_cast<int64_t>(m) * k) + c), xf);
#pragma unroll
          for (int j = 0; j < 16; ++j) acc[m] += wf[j] * xf[j];
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
    y[static_cast<int64_t>(lane) * n + row] = from_float<TOut>(s * (x_scale[lane] * w_scale[row]));
  }
}

template <typename TOut, int SPLIT>
void launch(cudaStream_t stream, TOut* y, const uint8_t* x, const float* xs, const uint8_t* w,
            const float* ws, int m, int n, int k, bool pdl) {
  constexpr int kRowsPerBlock = block_warps<SPLIT>() / SPLIT;
  const dim3 grid((n + kRowsPerBlock - 1) / kRowsPerBlock);
  with_rows(m, [&](auto r) {
    launch_kernel(pdl, gemv_fp8_kernel<TOut, decltype(r)::value, SPLIT>, grid,
                  dim3(block_warps<SPLIT>() * 32), 0, stream, y, x, xs, w, ws, n, k);
  });
}

}  // namespace

Status gemv_fp8(cudaStream_t stream, model::DType out_dtype, const uint8_t* x, const float* x_scale,
                const uint8_t* w, const float* w_scale, void* y, int m, int n, int k, bool pdl,
                int split) {
  if (m < 1 || m > kGemvMaxRows || n <= 0 || k <= 0 || k % 16 != 0)
    return invalid_argument("gemv_fp8: needs 1 <= m <= 8, k % 16 == 0");
  if ((reinterpret_cast<uintptr_t>(x) | reinterpret_cast<uintptr_t>(w)) % 16 != 0)
    return invalid_argument("gemv_fp8: x and w must be 16-byte aligned");
  if (split == 0) split = gemv_split(n, k) >= 16 ? 16 : 4;
  if (split != 4 && split != 16) return invalid_argument("gemv_fp8: split is 4 or 16");
  const bool ok = dispatch_dtype(out_dtype, [&](auto tag) {
    using T = decltype(tag);
    if (split == 16)
      launch<T, 16>(stream, static_cast<T*>(y), x, x_scale, w, w_scale, m, n, k, pdl);
    else
      launch<T, 4>(stream, static_cast<T*>(y), x, x_scale, w, w_scale, m, n, k, pdl);
  });
  if (!ok) return invalid_argument("gemv_fp8: output dtype f32, f16 or bf16");
  return check_launch("gemv_fp8");
}

}  // namespace turbine::cuda
