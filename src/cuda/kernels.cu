#include "cuda/kernels.h"

#include <cstdint>
#include <type_traits>

#include "cuda/dtype_util.cuh"
#include "cuda/fp8_util.cuh"
#include "cuda/launch.cuh"

namespace turbine::cuda {
namespace {

constexpr int kRowThreads = 256;

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the total.
__device__ float block_sum(float v) {
  __shared__ float partial[32];
  __shared__ float total;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_sum(v);
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  if (warp == 0) {
    const int n_warps = blockDim.x >> 5;
    float s = lane < n_warps ? partial[lane] : 0.0f;
    s = warp_sum(s);
    if (lane == 0) total = s;
  }
  __syncthreads();
  return total;
}

// One block per row. With a residual, residual += x first (rounded to T) and the sum is
// normalised.
template <typename T, bool kResidual>
__global__ void rmsnorm_kernel(T* __restrict__ out, T* __restrict__ residual,
                               const T* __restrict__ x, const T* __restrict__ weight, int dim,
                               float eps) {
  pdl_trigger();
  pdl_wait();
  const int64_t row = blockIdx.x;
  const T* xr = x + row * dim;
  T* rr = kResidual ? residual + row * dim : nullptr;
  float ss = 0.0f;
  for (int i = threadIdx.x; i < dim; i += blockDim.x) {
    float v;
    if constexpr (kResidual) {
      const T s = from_float<T>(to_float(rr[i]) + to_float(xr[i]));
      rr[i] = s;
      v = to_float(s);
    } else {
      v = to_float(xr[i]);
    }
    ss += v * v;
  }
  ss = block_sum(ss);
  const float scale = rsqrtf(ss / static_cast<float>(dim) + eps);
  const T* src = kResidual ? rr : xr;
  T* o = out + row * dim;
  for (int i = threadIdx.x; i < dim; i += blockDim.x) {
    o[i] = from_float<T>(to_float(weight[i]) * (scale * to_float(src[i])));
  }
}

// Rows that fit the block's registers (dim / (16 / sizeof(T)) <= kVecThreads * kMaxVec): every
// 16-byte chunk of x (and of the residual) is loaded once, up front, so a row costs one memory
// round trip instead of a dependent chain of scalar loads; the output is written from registers.
constexpr int kVecThreads = 256;
constexpr int kMaxVec = 4;

template <typename T, bool kResidual>
__global__ void __launch_bounds__(kVecThreads)
    rmsnorm_vec_kernel(T* __restrict__ out, T* __restrict__ residual, const T* __restrict__ x,
                       const T* __restrict__ weight, int dim, float eps) {
  pdl_trigger();
  pdl_wait();
  constexpr int kE = 16 / sizeof(T);
  const int64_t row = blockIdx.x;
  const int n_vec = dim / kE;
  const uint4* xr = reinterpret_cast<const uint4*>(x + row * dim);
  uint4 v[kMaxVec], r[kMaxVec];
#pragma unroll
  for (int j = 0; j < kMaxVec; ++j) {
    const int c = threadIdx.x + j * kVecThreads;
    if (c < n_vec) {
      v[j] = xr[c];
      if constexpr (kResidual) r[j] = reinterpret_cast<const uint4*>(residual + row * dim)[c];
    }
  }
  float ss = 0.0f;
#pragma unroll
  for (int j = 0; j < kMaxVec; ++j) {
    const int c = threadIdx.x + j * kVecThreads;
    if (c < n_vec) {
      T* e = reinterpret_cast<T*>(&v[j]);
      if constexpr (kResidual) {
        const T* re = reinterpret_cast<const T*>(&r[j]);
#pragma unroll
        for (int i = 0; i < kE; ++i) e[i] = from_float<T>(to_float(re[i]) + to_float(e[i]));
        reinterpret_cast<uint4*>(residual + row * dim)[c] = v[j];
      }
#pragma unroll
      for (int i = 0; i < kE; ++i) ss += to_float(e[i]) * to_float(e[i]);
    }
  }
  ss = block_sum(ss);
  const float scale = rsqrtf(ss / static_cast<float>(dim) + eps);
  uint4* orow = reinterpret_cast<uint4*>(out + row * dim);
#pragma unroll
  for (int j = 0; j < kMaxVec; ++j) {
    const int c = threadIdx.x + j * kVecThreads;
    if (c < n_vec) {
      uint4 wv = reinterpret_cast<const uint4*>(weight)[c];
      const T* we = reinterpret_cast<const T*>(&wv);
      const T* e = reinterpret_cast<const T*>(&v[j]);
      uint4 o;
      T* oe = reinterpret_cast<T*>(&o);
#pragma unroll
      for (int i = 0; i < kE; ++i)
        oe[i] = from_float<T>(to_float(we[i]) * (scale * to_float(e[i])));
      orow[c] = o;
    }
  }
}

template <typename T>
bool use_vec_rmsnorm(int dim, const void* a, const void* b, const void* c, const void* d) {
  constexpr int kE = 16 / sizeof(T);
  const auto addr = reinterpret_cast<uintptr_t>(a) | reinterpret_cast<uintptr_t>(b) |
                    reinterpret_cast<uintptr_t>(c) | reinterpret_cast<uintptr_t>(d);
  return dim % kE == 0 && dim / kE <= kVecThreads * kMaxVec && addr % 16 == 0;
}

// One warp per (token, head).
template <typename T>
__global__ void head_rmsnorm_kernel(T* __restrict__ x, const T* __restrict__ weight, int n_rows,
                                    int n_heads, int head_dim, int64_t row_stride, float eps) {
  pdl_trigger();
  pdl_wait();
  const int warps_per_block = blockDim.x >> 5;
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * warps_per_block + (threadIdx.x >> 5);
  if (idx >= static_cast<int64_t>(n_rows) * n_heads) return;
  const int lane = threadIdx.x & 31;
  T* h = x + (idx / n_heads) * row_stride + (idx % n_heads) * head_dim;
  float ss = 0.0f;
  for (int i = lane; i < head_dim; i += 32) {
    const float v = to_float(h[i]);
    ss += v * v;
  }
  ss = warp_sum(ss);
  const float scale = rsqrtf(ss / static_cast<float>(head_dim) + eps);
  for (int i = lane; i < head_dim; i += 32) {
    h[i] = from_float<T>(to_float(weight[i]) * (scale * to_float(h[i])));
  }
}

// One thread per rotated pair; grid.y is the token.
template <typename T>
__global__ void rope_kernel(T* __restrict__ x, const int32_t* __restrict__ positions,
                            const float* __restrict__ inv_freq, int n_heads, int head_dim,
                            int64_t row_stride, bool interleaved) {
  pdl_trigger();
  pdl_wait();
  const int half = head_dim / 2;
  const int pair = blockIdx.x * blockDim.x + threadIdx.x;
  if (pair >= n_heads * half) return;
  const int t = blockIdx.y;
  const int h = pair / half, i = pair % half;
  const float angle = static_cast<float>(positions[t]) * inv_freq[i];
  float s, c;
  sincosf(angle, &s, &c);
  T* hv = x + static_cast<int64_t>(t) * row_stride + static_cast<int64_t>(h) * head_dim;
  const int a = interleaved ? 2 * i : i;
  const int b = interleaved ? 2 * i + 1 : i + half;
  const float x0 = to_float(hv[a]), x1 = to_float(hv[b]);
  hv[a] = from_float<T>(x0 * c - x1 * s);
  hv[b] = from_float<T>(x0 * s + x1 * c);
}

// rope_kernel over the q and k heads of fused QKV rows, plus the paged-cache write of the
// rotated k and of v: threads past the rotated pairs copy v two elements at a time.
// The cache element of value v: v itself, or e4m3(v / scale) for an FP8 cache (KT = uint8_t).
template <typename KT, typename T>
__device__ __forceinline__ KT to_cache(T v, float scale) {
  if constexpr (std::is_same_v<KT, uint8_t>) {
    return float_to_e4m3(to_float(v) / scale);
  } else {
    return v;
  }
}

template <typename T, typename KT>
__global__ void rope_kv_kernel(T* __restrict__ x, const int32_t* __restrict__ positions,
                               const float* __restrict__ inv_freq, int n_q_heads, int n_kv_heads,
                               int head_dim, int64_t row_stride, bool interleaved,
                               KT* __restrict__ k_cache, KT* __restrict__ v_cache,
                               const int32_t* __restrict__ slots, float k_scale, float v_scale) {
  pdl_trigger();
  pdl_wait();
  const int half = head_dim / 2;
  const int rot_pairs = (n_q_heads + n_kv_heads) * half;
  const int pair = blockIdx.x * blockDim.x + threadIdx.x;
  if (pair >= rot_pairs + n_kv_heads * half) return;
  const int t = blockIdx.y;
  T* row = x + static_cast<int64_t>(t) * row_stride;
  const int32_t slot = slots[t];
  const int64_t kv_width = static_cast<int64_t>(n_kv_heads) * head_dim;
  if (pair >= rot_pairs) {  // v
    if (slot < 0) return;
    const int j = 2 * (pair - rot_pairs);
    const T* v = row + static_cast<int64_t>(n_q_heads + n_kv_heads) * head_dim;
    v_cache[slot * kv_width + j] = to_cache<KT>(v[j], v_scale);
    v_cache[slot * kv_width + j + 1] = to_cache<KT>(v[j + 1], v_scale);
    return;
  }
  const int h = pair / half, i = pair % half;
  const float angle = static_cast<float>(positions[t]) * inv_freq[i];
  float sn, cs;
  sincosf(angle, &sn, &cs);
  T* hv = row + static_cast<int64_t>(h) * head_dim;
  const int a = interleaved ? 2 * i : i;
  const int b = interleaved ? 2 * i + 1 : i + half;
  const float x0 = to_float(hv[a]), x1 = to_float(hv[b]);
  const T ra = from_float<T>(x0 * cs - x1 * sn), rb = from_float<T>(x0 * sn + x1 * cs);
  hv[a] = ra;
  hv[b] = rb;
  if (h >= n_q_heads && slot >= 0) {
    KT* kc = k_cache + slot * kv_width + static_cast<int64_t>(h - n_q_heads) * head_dim;
    kc[a] = to_cache<KT>(ra, k_scale);
    kc[b] = to_cache<KT>(rb, k_scale);
  }
}

template <typename T>
__global__ void swiglu_kernel(T* __restrict__ out, const T* __restrict__ gate,
                              const T* __restrict__ up, int ffn, int64_t in_stride) {
  pdl_trigger();
  pdl_wait();
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= ffn) return;
  const int64_t t = blockIdx.y;
  const float g = to_float(gate[t * in_stride + i]);
  const float u = to_float(up[t * in_stride + i]);
  out[t * ffn + i] = from_float<T>(g / (1.0f + expf(-g)) * u);
}

template <typename T>
__global__ void add_bias_kernel(T* __restrict__ x, const T* __restrict__ bias, int width,
                                int64_t row_stride) {
  pdl_trigger();
  pdl_wait();
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= width) return;
  T* p = x + static_cast<int64_t>(blockIdx.y) * row_stride + i;
  *p = from_float<T>(to_float(*p) + to_float(bias[i]));
}

template <typename T>
__global__ void embedding_kernel(T* __restrict__ out, const T* __restrict__ table,
                                 const int32_t* __restrict__ ids, int dim, int n_vocab) {
  pdl_trigger();
  pdl_wait();
  const int64_t t = blockIdx.y;
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= dim) return;
  const int32_t id = ids[t];
  out[t * dim + i] =
      (id >= 0 && id < n_vocab) ? table[static_cast<int64_t>(id) * dim + i] : from_float<T>(0.0f);
}

template <typename T>
__global__ void write_kv_kernel(T* __restrict__ k_cache, T* __restrict__ v_cache,
                                const T* __restrict__ k, const T* __restrict__ v,
                                const int32_t* __restrict__ slots, int width,
                                int64_t kv_row_stride) {
  pdl_trigger();
  pdl_wait();
  const int64_t t = blockIdx.y;
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= width) return;
  const int32_t slot = slots[t];
  if (slot < 0) return;
  k_cache[static_cast<int64_t>(slot) * width + i] = k[t * kv_row_stride + i];
  v_cache[static_cast<int64_t>(slot) * width + i] = v[t * kv_row_stride + i];
}

template <typename T>
__global__ void gather_rows_kernel(T* __restrict__ out, const T* __restrict__ in,
                                   const int32_t* __restrict__ rows, int dim) {
  pdl_trigger();
  pdl_wait();
  const int64_t r = blockIdx.y;
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= dim) return;
  out[r * dim + i] = in[static_cast<int64_t>(rows[r]) * dim + i];
}

Status bad_dtype(model::DType dtype) {
  return invalid_argument(std::string("CUDA kernels take f32, f16 or bf16, not ") +
                          model::dtype_name(dtype));
}

unsigned blocks_for(int64_t n, int threads) {
  return static_cast<unsigned>((n + threads - 1) / threads);
}

}  // namespace

Status rmsnorm(cudaStream_t stream, model::DType dtype, void* out, const void* x,
               const void* weight, int n_rows, int dim, float eps, bool pdl) {
  if (n_rows < 0 || dim <= 0) return invalid_argument("rmsnorm: bad shape");
  if (n_rows == 0) return Status::ok();
  const bool ok = dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    if (use_vec_rmsnorm<T>(dim, out, x, weight, nullptr)) {
      launch_kernel(pdl, rmsnorm_vec_kernel<T, false>, dim3(n_rows), dim3(kVecThreads), 0, stream,
                    static_cast<T*>(out), nullptr, static_cast<const T*>(x),
                    static_cast<const T*>(weight), dim, eps);
      return;
    }
    launch_kernel(pdl, rmsnorm_kernel<T, false>, dim3(n_rows), dim3(kRowThreads), 0, stream,
                  static_cast<T*>(out), nullptr, static_cast<const T*>(x),
                  static_cast<const T*>(weight), dim, eps);
  });
  if (!ok) return bad_dtype(dtype);
  return check_launch("rmsnorm");
}

Status add_rmsnorm(cudaStream_t stream, model::DType dtype, void* out, void* residual,
                   const void* x, const void* weight, int n_rows, int dim, float eps, bool pdl) {
  if (n_rows < 0 || dim <= 0) return invalid_argument("add_rmsnorm: bad shape");
  if (n_rows == 0) return Status::ok();
  const bool ok = dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    if (use_vec_rmsnorm<T>(dim, out, x, weight, residual)) {
      launch_kernel(pdl, rmsnorm_vec_kernel<T, true>, dim3(n_rows), dim3(kVecThreads), 0, stream,
                    static_cast<T*>(out), static_cast<T*>(residual), static_cast<const T*>(x),
                    static_cast<const T*>(weight), dim, eps);
      return;
    }
    launch_kernel(pdl, rmsnorm_kernel<T, true>, dim3(n_rows), dim3(kRowThreads), 0, stream,
                  static_cast<T*>(out), static_cast<T*>(residual), static_cast<const T*>(x),
                  static_cast<const T*>(weight), dim, eps);
  });
  if (!ok) return bad_dtype(dtype);
  return check_launch("add_rmsnorm");
}

Status head_rmsnorm(cudaStream_t stream, model::DType dtype, void* x, const void* weight,
                    int n_tokens, int n_heads, int head_dim, int64_t row_stride, float eps,
                    bool pdl) {
  if (n_tokens < 0 || n_heads <= 0 || head_dim <= 0 || row_stride < int64_t{n_heads} * head_dim)
    return invalid_argument("head_rmsnorm: bad shape");
  if (n_tokens == 0) return Status::ok();
  constexpr int kThreads = 256;
  const int64_t n = static_cast<int64_t>(n_tokens) * n_heads;
  const bool ok = dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    head_rmsnorm_kernel<T><<<blocks_for(n, kThreads / 32), kThreads, 0, stream>>>(
        static_cast<T*>(x), static_cast<const T*>(weight), n_tokens, n_heads, head_dim, row_stride,
        eps);
  });
  if (!ok) return bad_dtype(dtype);
  return check_launch("head_rmsnorm");
}

Status rope(cudaStream_t stream, model::DType dtype, void* x, const int32_t* positions,
            const float* inv_freq, int n_tokens, int n_heads, int head_dim, int64_t row_stride,
            model::RopeLayout layout, bool pdl) {
  if (n_tokens < 0 || n_tokens > 65535 || n_heads <= 0 || head_dim <= 0 || head_dim % 2 != 0 ||
      row_stride < int64_t{n_heads} * head_dim)
    return invalid_argument("rope: bad shape");
  if (n_tokens == 0) return Status::ok();
  constexpr int kThreads = 128;
  const dim3 grid(blocks_for(int64_t{n_heads} * head_dim / 2, kThreads), n_tokens);
  const bool ok = dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    launch_kernel(pdl, rope_kernel<T>, dim3(grid), dim3(kThreads), 0, stream, static_cast<T*>(x),
                  positions, inv_freq, n_heads, head_dim, row_stride,
                  layout == model::RopeLayout::kInterleaved);
  });
  if (!ok) return bad_dtype(dtype);
  return check_launch("rope");
}

namespace {

// fp8_scales == nullptr: the cache is in dtype; else {k_scale, v_scale} of an E4M3 cache.
Status launch_rope_write_kv(cudaStream_t stream, model::DType dtype, void* qkv,
                            const int32_t* positions, const float* inv_freq, int n_tokens,
                            int n_q_heads, int n_kv_heads, int head_dim, int64_t row_stride,
                            model::RopeLayout layout, void* k_cache, void* v_cache,
                            const int32_t* slot_mapping, const float* fp8_scales, bool pdl) {
  if (n_tokens < 0 || n_tokens > 65535 || n_q_heads <= 0 || n_kv_heads <= 0 || head_dim <= 0 ||
      head_dim % 2 != 0 || row_stride < int64_t{n_q_heads + 2 * n_kv_heads} * head_dim)
    return invalid_argument("rope_write_kv: bad shape");
  if (fp8_scales != nullptr && !(fp8_scales[0] > 0.0f && fp8_scales[1] > 0.0f))
    return invalid_argument("rope_write_kv: FP8 KV scales must be positive");
  if (n_tokens == 0) return Status::ok();
  constexpr int kThreads = 128;
  const dim3 grid(blocks_for(int64_t{n_q_heads + 2 * n_kv_heads} * head_dim / 2, kThreads),
                  n_tokens);
  const bool interleaved = layout == model::RopeLayout::kInterleaved;
  const bool ok = dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    if (fp8_scales != nullptr) {
      launch_kernel(pdl, rope_kv_kernel<T, uint8_t>, grid, dim3(kThreads), 0, stream,
                    static_cast<T*>(qkv), positions, inv_freq, n_q_heads, n_kv_heads, head_dim,
                    row_stride, interleaved, static_cast<uint8_t*>(k_cache),
                    static_cast<uint8_t*>(v_cache), slot_mapping, fp8_scales[0], fp8_scales[1]);
    } else {
      launch_kernel(pdl, rope_kv_kernel<T, T>, grid, dim3(kThreads), 0, stream,
                    static_cast<T*>(qkv), positions, inv_freq, n_q_heads, n_kv_heads, head_dim,
                    row_stride, interleaved, static_cast<T*>(k_cache), static_cast<T*>(v_cache),
                    slot_mapping, 1.0f, 1.0f);
    }
  });
  if (!ok) return bad_dtype(dtype);
  return check_launch("rope_write_kv");
}

}  // namespace

Status rope_write_kv(cudaStream_t stream, model::DType dtype, void* qkv, const int32_t* positions,
                     const float* inv_freq, int n_tokens, int n_q_heads, int n_kv_heads,
                     int head_dim, int64_t row_stride, model::RopeLayout layout, void* k_cache,
                     void* v_cache, const int32_t* slot_mapping, bool pdl) {
  return launch_rope_write_kv(stream, dtype, qkv, positions, inv_freq, n_tokens, n_q_heads,
                              n_kv_heads, head_dim, row_stride, layout, k_cache, v_cache,
                              slot_mapping, nullptr, pdl);
}

Status rope_write_kv_fp8(cudaStream_t stream, model::DType dtype, void* qkv,
                         const int32_t* positions, const float* inv_freq, int n_tokens,
                         int n_q_heads, int n_kv_heads, int head_dim, int64_t row_stride,
                         model::RopeLayout layout, void* k_cache, void* v_cache,
                         const int32_t* slot_mapping, float k_scale, float v_scale, bool pdl) {
  const float scales[2] = {k_scale, v_scale};
  return launch_rope_write_kv(stream, dtype, qkv, positions, inv_freq, n_tokens, n_q_heads,
                              n_kv_heads, head_dim, row_stride, layout, k_cache, v_cache,
                              slot_mapping, scales, pdl);
}

Status swiglu(cudaStream_t stream, model::DType dtype, void* out, const void* gate, const void* up,
              int n_tokens, int ffn, int64_t in_stride, bool pdl) {
  if (n_tokens < 0 || n_tokens > 65535 || ffn <= 0 || in_stride < ffn)
    return invalid_argument("swiglu: bad shape");
  if (n_tokens == 0) return Status::ok();
  constexpr int kThreads = 256;
  const dim3 grid(blocks_for(ffn, kThreads), n_tokens);
  const bool ok = dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    launch_kernel(pdl, swiglu_kernel<T>, dim3(grid), dim3(kThreads), 0, stream,
                  static_cast<T*>(out), static_cast<const T*>(gate), static_cast<const T*>(up), ffn,
                  in_stride);
  });
  if (!ok) return bad_dtype(dtype);
  return check_launch("swiglu");
}

Status add_bias(cudaStream_t stream, model::DType dtype, void* x, const void* bias, int n_tokens,
                int width, int64_t row_stride, bool pdl) {
  if (n_tokens < 0 || n_tokens > 65535 || width <= 0 || row_stride < width)
    return invalid_argument("add_bias: bad shape");
  if (n_tokens == 0) return Status::ok();
  constexpr int kThreads = 256;
  const dim3 grid(blocks_for(width, kThreads), n_tokens);
  const bool ok = dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    launch_kernel(pdl, add_bias_kernel<T>, dim3(grid), dim3(kThreads), 0, stream,
                  static_cast<T*>(x), static_cast<const T*>(bias), width, row_stride);
  });
  if (!ok) return bad_dtype(dtype);
  return check_launch("add_bias");
}

Status embedding(cudaStream_t stream, model::DType dtype, void* out, const void* table,
                 const int32_t* ids, int n_tokens, int dim, int n_vocab, bool pdl) {
  if (n_tokens < 0 || n_tokens > 65535 || dim <= 0 || n_vocab <= 0)
    return invalid_argument("embedding: bad shape");
  if (n_tokens == 0) return Status::ok();
  constexpr int kThreads = 256;
  const dim3 grid(blocks_for(dim, kThreads), n_tokens);
  const bool ok = dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    launch_kernel(pdl, embedding_kernel<T>, dim3(grid), dim3(kThreads), 0, stream,
                  static_cast<T*>(out), static_cast<const T*>(table), ids, dim, n_vocab);
  });
  if (!ok) return bad_dtype(dtype);
  return check_launch("embedding");
}

Status write_kv_cache(cudaStream_t stream, model::DType dtype, void* k_cache, void* v_cache,
                      const void* k, const void* v, const int32_t* slot_mapping, int n_tokens,
                      int n_kv_heads, int head_dim, int64_t kv_row_stride, bool pdl) {
  const int64_t width = int64_t{n_kv_heads} * head_dim;
  if (n_tokens < 0 || n_tokens > 65535 || n_kv_heads <= 0 || head_dim <= 0 || kv_row_stride < width)
    return invalid_argument("write_kv_cache: bad shape");
  if (n_tokens == 0) return Status::ok();
  constexpr int kThreads = 256;
  const dim3 grid(blocks_for(width, kThreads), n_tokens);
  const bool ok = dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    launch_kernel(pdl, write_kv_kernel<T>, dim3(grid), dim3(kThreads), 0, stream,
                  static_cast<T*>(k_cache), static_cast<T*>(v_cache), static_cast<const T*>(k),
                  static_cast<const T*>(v), slot_mapping, static_cast<int>(width), kv_row_stride);
  });
  if (!ok) return bad_dtype(dtype);
  return check_launch("write_kv_cache");
}

Status gather_rows(cudaStream_t stream, model::DType dtype, void* out, const void* in,
                   const int32_t* rows, int n_rows, int dim, bool pdl) {
  if (n_rows < 0 || n_rows > 65535 || dim <= 0) return invalid_argument("gather_rows: bad shape");
  if (n_rows == 0) return Status::ok();
  constexpr int kThreads = 256;
  const dim3 grid(blocks_for(dim, kThreads), n_rows);
  const bool ok = dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    launch_kernel(pdl, gather_rows_kernel<T>, dim3(grid), dim3(kThreads), 0, stream,
                  static_cast<T*>(out), static_cast<const T*>(in), rows, dim);
  });
  if (!ok) return bad_dtype(dtype);
  return check_launch("gather_rows");
}

}  // namespace turbine::cuda
