#include "cuda/encoder_kernels.h"

#include <cstdint>
#include <type_traits>

#include "cuda/device.h"
#include "cuda/dtype_util.cuh"

namespace turbine::cuda {
namespace {

// Row kernels: one warp per row, the row's values held in registers (element lane + 32 j), so
// a row is read once and written once; kPer elements per lane cover dim <= 32 kPer.
constexpr int kRowWarps = 4;

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float activate(float x, Act act) {
  switch (act) {
    case Act::kGelu: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    case Act::kGeluTanh:
      return 0.5f * x * (1.0f + tanhf(0.79788456080286536f * (x + 0.044715f * x * x * x)));
    case Act::kRelu: return fmaxf(0.0f, x);
    case Act::kSilu: return x / (1.0f + __expf(-x));
    case Act::kTanh: return tanhf(x);
  }
  return x;
}

// LayerNorm of the kPer values a lane holds (two passes over registers: mean, then variance),
// written to `out`.
template <typename T, int kPer>
__device__ __forceinline__ void layernorm_store(T* __restrict__ out, const float (&v)[kPer],
                                                const float* __restrict__ w,
                                                const float* __restrict__ b, int dim, float eps,
                                                int lane) {
  float sum = 0.0f;
#pragma unroll
  for (int j = 0; j < kPer; ++j) {
    if (lane + 32 * j < dim) sum += v[j];
  }
  const float mean = warp_sum(sum) / static_cast<float>(dim);
  float var = 0.0f;
#pragma unroll
  for (int j = 0; j < kPer; ++j) {
    const float d = v[j] - mean;
    if (lane + 32 * j < dim) var += d * d;
  }
  const float inv = rsqrtf(warp_sum(var) / static_cast<float>(dim) + eps);
#pragma unroll
  for (int j = 0; j < kPer; ++j) {
    const int i = lane + 32 * j;
    if (i < dim) {
      float y = (v[j] - mean) * inv * w[i];
      if (b != nullptr) y += b[i];
      out[i] = from_float<T>(y);
    }
  }
}

template <typename T, int kPer>
__global__ void __launch_bounds__(kRowWarps * 32)
    embed_layernorm_kernel(T* __restrict__ out, const T* __restrict__ word,
                           const T* __restrict__ pos, const T* __restrict__ type, int pos_offset,
                           const int32_t* __restrict__ ids, const int32_t* __restrict__ type_ids,
                           const int32_t* __restrict__ positions, const float* __restrict__ w,
                           const float* __restrict__ b, int n, int dim, float eps) {
  const int row = blockIdx.x * kRowWarps + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (row >= n) return;
  const T* wr = word + static_cast<int64_t>(ids[row]) * dim;
  const T* pr =
      pos != nullptr ? pos + static_cast<int64_t>(positions[row] + pos_offset) * dim : nullptr;
  const T* tr = type != nullptr ? type + static_cast<int64_t>(type_ids[row]) * dim : nullptr;
  float v[kPer];
#pragma unroll
  for (int j = 0; j < kPer; ++j) {
    const int i = lane + 32 * j;
    float x = 0.0f;
    if (i < dim) {
      x = to_float(wr[i]);
      if (pr != nullptr) x += to_float(pr[i]);
      if (tr != nullptr) x += to_float(tr[i]);
    }
    v[j] = x;
  }
  layernorm_store<T, kPer>(out + static_cast<int64_t>(row) * dim, v, w, b, dim, eps, lane);
}

template <typename T, int kPer>
__global__ void __launch_bounds__(kRowWarps * 32)
    add_layernorm_kernel(T* out, T* residual, const T* __restrict__ x, const T* __restrict__ bias,
                         bool write_residual, const float* __restrict__ w,
                         const float* __restrict__ b, int n, int dim, float eps) {
  const int row = blockIdx.x * kRowWarps + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (row >= n) return;
  const int64_t off = static_cast<int64_t>(row) * dim;
  float v[kPer];
#pragma unroll
  for (int j = 0; j < kPer; ++j) {
    const int i = lane + 32 * j;
    float s = 0.0f;
    if (i < dim) {
      s = to_float(residual[off + i]);
      if (x != nullptr) s += to_float(x[off + i]);
      if (bias != nullptr) s += to_float(bias[i]);
      // The residual stream is stored in T: normalise what is stored.
      const T st = from_float<T>(s);
      s = to_float(st);
      if (write_residual) residual[off + i] = st;
    }
    v[j] = s;
  }
  layernorm_store<T, kPer>(out + off, v, w, b, dim, eps, lane);
}

template <typename T>
__global__ void bias_activation_kernel(T* __restrict__ x, const T* __restrict__ bias, int64_t n,
                                       int width, Act act) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += stride) {
    float v = to_float(x[i]);
    if (bias != nullptr) v += to_float(bias[i % width]);
    x[i] = from_float<T>(activate(v, act));
  }
}

// add_layernorm with 16-byte accesses: lane l of a row's warp holds chunks l, l + 32, ... of
// kVec elements (dim % kVec == 0, rows 16-byte aligned). Same arithmetic per element as
// add_layernorm_kernel; only the order of the mean/variance partial sums differs.
template <typename T, int kChunks>
__global__ void __launch_bounds__(kRowWarps * 32)
    add_layernorm_vec_kernel(T* out, T* residual, const T* __restrict__ x,
                             const T* __restrict__ bias, bool write_residual,
                             const float* __restrict__ w, const float* __restrict__ b, int n,
                             int dim, float eps) {
  constexpr int kVec = 16 / sizeof(T);
  const int row = blockIdx.x * kRowWarps + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (row >= n) return;
  const int chunks = dim / kVec;
  const int64_t off = static_cast<int64_t>(row) * dim;
  uint4* res = reinterpret_cast<uint4*>(residual + off);
  const uint4* xr = x != nullptr ? reinterpret_cast<const uint4*>(x + off) : nullptr;
  const uint4* br = reinterpret_cast<const uint4*>(bias);
  float v[kChunks * kVec];
  float sum = 0.0f;
#pragma unroll
  for (int c = 0; c < kChunks; ++c) {
    const int ci = lane + 32 * c;
#pragma unroll
    for (int j = 0; j < kVec; ++j) v[c * kVec + j] = 0.0f;
    if (ci >= chunks) continue;
    uint4 rv = res[ci];
    T* re = reinterpret_cast<T*>(&rv);
    uint4 xv{}, bv{};
    if (xr != nullptr) xv = xr[ci];
    if (br != nullptr) bv = br[ci];
    const T* xe = reinterpret_cast<const T*>(&xv);
    const T* be = reinterpret_cast<const T*>(&bv);
#pragma unroll
    for (int j = 0; j < kVec; ++j) {
      float s = to_float(re[j]);
      if (xr != nullptr) s += to_float(xe[j]);
      if (br != nullptr) s += to_float(be[j]);
      // The residual stream is stored in T: normalise what is stored.
      re[j] = from_float<T>(s);
      s = to_float(re[j]);
      v[c * kVec + j] = s;
      sum += s;
    }
    if (write_residual) res[ci] = rv;
  }
  const float mean = warp_sum(sum) / static_cast<float>(dim);
  float var = 0.0f;
#pragma unroll
  for (int c = 0; c < kChunks; ++c) {
    if (lane + 32 * c >= chunks) continue;
#pragma unroll
    for (int j = 0; j < kVec; ++j) {
      const float d = v[c * kVec + j] - mean;
      var += d * d;
    }
  }
  const float inv = rsqrtf(warp_sum(var) / static_cast<float>(dim) + eps);
  uint4* o = reinterpret_cast<uint4*>(out + off);
#pragma unroll
  for (int c = 0; c < kChunks; ++c) {
    const int ci = lane + 32 * c;
    if (ci >= chunks) continue;
    uint4 ov;
    T* oe = reinterpret_cast<T*>(&ov);
#pragma unroll
    for (int j = 0; j < kVec; ++j) {
      const int i = ci * kVec + j;
      float y = (v[c * kVec + j] - mean) * inv * w[i];
      if (b != nullptr) y += b[i];
      oe[j] = from_float<T>(y);
    }
    o[ci] = ov;
  }
}

// One block per row, each thread over 16-byte chunks of kVec elements: no per-element index
// division, full-width memory transactions. The activation is a template argument so that the
// chunk's loop has no switch.
template <typename T, Act kAct>
__global__ void __launch_bounds__(128)
    bias_activation_vec_kernel(T* __restrict__ x, const T* __restrict__ bias, int width) {
  constexpr int kVec = 16 / sizeof(T);
  const int chunks = width / kVec;
  uint4* row = reinterpret_cast<uint4*>(x + static_cast<int64_t>(blockIdx.x) * width);
  const uint4* b = reinterpret_cast<const uint4*>(bias);
  for (int c = threadIdx.x; c < chunks; c += blockDim.x) {
    uint4 v = row[c];
    T* e = reinterpret_cast<T*>(&v);
    if (b != nullptr) {
      const uint4 bv = b[c];
      const T* be = reinterpret_cast<const T*>(&bv);
#pragma unroll
      for (int j = 0; j < kVec; ++j)
        e[j] = from_float<T>(activate(to_float(e[j]) + to_float(be[j]), kAct));
    } else {
#pragma unroll
      for (int j = 0; j < kVec; ++j) e[j] = from_float<T>(activate(to_float(e[j]), kAct));
    }
    row[c] = v;
  }
}

template <typename T>
__global__ void gated_activation_kernel(T* __restrict__ out, const T* __restrict__ in,
                                        const T* __restrict__ bias, int64_t n, int ffn, Act act) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += stride) {
    const int64_t t = i / ffn;
    const int c = static_cast<int>(i - t * ffn);
    const T* row = in + t * 2 * ffn;
    float a = to_float(row[c]), g = to_float(row[ffn + c]);
    if (bias != nullptr) {
      a += to_float(bias[c]);
      g += to_float(bias[ffn + c]);
    }
    // As PyTorch: the activation's input and the gate are the GEMM's stored values.
    a = to_float(from_float<T>(a));
    g = to_float(from_float<T>(g));
    out[i] = from_float<T>(to_float(from_float<T>(activate(a, act))) * g);
  }
}

// One block per token; threads over the pairs of every q/k head (and the v columns for the
// bias).
template <typename T>
__global__ void qkv_bias_rope_kernel(T* __restrict__ qkv, const T* __restrict__ bias,
                                     const int32_t* __restrict__ positions,
                                     const float* __restrict__ inv_freq, int n_heads,
                                     int head_dim) {
  const int t = blockIdx.x;
  const int d = n_heads * head_dim;
  T* row = qkv + static_cast<int64_t>(t) * 3 * d;
  const int half = head_dim / 2;
  if (inv_freq == nullptr) {
    if (bias == nullptr) return;
    for (int i = threadIdx.x; i < 3 * d; i += blockDim.x)
      row[i] = from_float<T>(to_float(row[i]) + to_float(bias[i]));
    return;
  }
  const float p = static_cast<float>(positions[t]);
  // q and k: 2 n_heads heads of `half` pairs each.
  for (int i = threadIdx.x; i < 2 * n_heads * half; i += blockDim.x) {
    const int head = i / half, k = i - head * half;
    const int c0 = head * head_dim + k, c1 = c0 + half;
    float x0 = to_float(row[c0]), x1 = to_float(row[c1]);
    if (bias != nullptr) {
      x0 = to_float(from_float<T>(x0 + to_float(bias[c0])));
      x1 = to_float(from_float<T>(x1 + to_float(bias[c1])));
    }
    float s, c;
    sincosf(p * inv_freq[k], &s, &c);
    row[c0] = from_float<T>(x0 * c - x1 * s);
    row[c1] = from_float<T>(x1 * c + x0 * s);
  }
  if (bias != nullptr) {
    for (int i = 2 * d + threadIdx.x; i < 3 * d; i += blockDim.x)
      row[i] = from_float<T>(to_float(row[i]) + to_float(bias[i]));
  }
}

// One block per output row; threads over its columns.
template <typename T>
__global__ void gather_rows_kernel(T* __restrict__ out, const T* __restrict__ in,
                                   const int32_t* __restrict__ rows, int dim) {
  const T* src = in + static_cast<int64_t>(rows[blockIdx.x]) * dim;
  T* dst = out + static_cast<int64_t>(blockIdx.x) * dim;
  for (int i = threadIdx.x; i < dim; i += blockDim.x) dst[i] = src[i];
}

// One block per sequence; threads over the columns.
template <typename T>
__global__ void pool_kernel(float* __restrict__ out, const T* __restrict__ x,
                            const int32_t* __restrict__ seq_begin, const int32_t* __restrict__ desc,
                            int dim) {
  const int s = blockIdx.x;
  const int b = seq_begin[s], len = seq_begin[s + 1] - b;
  const auto mode = static_cast<PoolMode>(desc[2 * s]);
  float* o = out + static_cast<int64_t>(desc[2 * s + 1]) * dim;
  const T* rows = x + static_cast<int64_t>(b) * dim;
  if (mode == PoolMode::kAllTokens) {
    for (int64_t i = threadIdx.x; i < static_cast<int64_t>(len) * dim; i += blockDim.x)
      o[i] = to_float(rows[i]);
    return;
  }
  for (int c = threadIdx.x; c < dim; c += blockDim.x) {
    float v = 0.0f;
    switch (mode) {
      case PoolMode::kCls: v = to_float(rows[c]); break;
      case PoolMode::kLastToken: v = to_float(rows[static_cast<int64_t>(len - 1) * dim + c]); break;
      case PoolMode::kMean:
        for (int r = 0; r < len; ++r) v += to_float(rows[static_cast<int64_t>(r) * dim + c]);
        v /= static_cast<float>(len > 0 ? len : 1);
        break;
      case PoolMode::kMax:
        v = to_float(rows[c]);
        for (int r = 1; r < len; ++r)
          v = fmaxf(v, to_float(rows[static_cast<int64_t>(r) * dim + c]));
        break;
      default: break;
    }
    o[c] = v;
  }
}

int elementwise_blocks(int64_t n) {
  const int64_t blocks = (n + 255) / 256;
  return static_cast<int>(blocks < 65535 * 8 ? blocks : 65535 * 8);
}

// Calls f(std::integral_constant<int, kPer>) with the smallest kPer that covers dim, or false.
template <typename F>
bool dispatch_per_lane(int dim, F&& f) {
  if (dim <= 32 * 8) {
    f(std::integral_constant<int, 8>{});
  } else if (dim <= 32 * 32) {
    f(std::integral_constant<int, 32>{});
  } else if (dim <= 32 * 64) {
    f(std::integral_constant<int, 64>{});
  } else {
    return false;
  }
  return true;
}

constexpr int kMaxRowDim = 32 * 64;

}  // namespace

Status embed_layernorm(cudaStream_t stream, model::DType dtype, void* out, const EmbedArgs& a,
                       int n_tokens, int dim, float eps) {
  if (n_tokens <= 0) return Status::ok();
  if (dim <= 0 || dim > kMaxRowDim) return unimplemented("embed_layernorm: dim too large");
  if (!a.word || !a.ids || !a.norm_w || (a.pos && !a.positions) || (a.type && !a.type_ids))
    return invalid_argument("embed_layernorm: missing arguments");
  const bool ok = dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    dispatch_per_lane(dim, [&](auto per) {
      constexpr int kPer = decltype(per)::value;
      const int blocks = (n_tokens + kRowWarps - 1) / kRowWarps;
      embed_layernorm_kernel<T, kPer><<<blocks, kRowWarps * 32, 0, stream>>>(
          static_cast<T*>(out), static_cast<const T*>(a.word), static_cast<const T*>(a.pos),
          static_cast<const T*>(a.type), a.pos_offset, a.ids, a.type_ids, a.positions, a.norm_w,
          a.norm_b, n_tokens, dim, eps);
    });
  });
  if (!ok) return invalid_argument("embed_layernorm: unsupported dtype");
  return check_launch("embed_layernorm");
}

Status add_layernorm(cudaStream_t stream, model::DType dtype, void* out, void* residual,
                     const void* x, const void* bias, bool write_residual, const float* norm_w,
                     const float* norm_b, int n_tokens, int dim, float eps, bool vectorized) {
  if (n_tokens <= 0) return Status::ok();
  if (dim <= 0 || dim > kMaxRowDim) return unimplemented("add_layernorm: dim too large");
  if (!out || !residual || !norm_w) return invalid_argument("add_layernorm: missing arguments");
  const bool ok = dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    const int blocks = (n_tokens + kRowWarps - 1) / kRowWarps;
    constexpr int kVec = 16 / sizeof(T);
    const uintptr_t ptrs = reinterpret_cast<uintptr_t>(out) |
                           reinterpret_cast<uintptr_t>(residual) | reinterpret_cast<uintptr_t>(x) |
                           reinterpret_cast<uintptr_t>(bias);
    const int chunks = dim / kVec;
    if (vectorized && dim % kVec == 0 && ptrs % 16 == 0 && chunks <= 32 * 8) {
      auto launch = [&](auto kc) {
        add_layernorm_vec_kernel<T, decltype(kc)::value><<<blocks, kRowWarps * 32, 0, stream>>>(
            static_cast<T*>(out), static_cast<T*>(residual), static_cast<const T*>(x),
            static_cast<const T*>(bias), write_residual, norm_w, norm_b, n_tokens, dim, eps);
      };
      if (chunks <= 32) {
        launch(std::integral_constant<int, 1>{});
      } else if (chunks <= 64) {
        launch(std::integral_constant<int, 2>{});
      } else if (chunks <= 96) {
        launch(std::integral_constant<int, 3>{});
      } else if (chunks <= 128) {
        launch(std::integral_constant<int, 4>{});
      } else {
        launch(std::integral_constant<int, 8>{});
      }
      return;
    }
    dispatch_per_lane(dim, [&](auto per) {
      constexpr int kPer = decltype(per)::value;
      add_layernorm_kernel<T, kPer><<<blocks, kRowWarps * 32, 0, stream>>>(
          static_cast<T*>(out), static_cast<T*>(residual), static_cast<const T*>(x),
          static_cast<const T*>(bias), write_residual, norm_w, norm_b, n_tokens, dim, eps);
    });
  });
  if (!ok) return invalid_argument("add_layernorm: unsupported dtype");
  return check_launch("add_layernorm");
}

Status bias_activation(cudaStream_t stream, model::DType dtype, void* x, const void* bias,
                       int n_tokens, int width, Act act, bool vectorized) {
  const int64_t n = static_cast<int64_t>(n_tokens) * width;
  if (n <= 0) return Status::ok();
  const bool ok = dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    constexpr int kVec = 16 / sizeof(T);
    const bool vec = vectorized && width % kVec == 0 &&
                     (reinterpret_cast<uintptr_t>(x) | reinterpret_cast<uintptr_t>(bias)) % 16 == 0;
    if (!vec) {
      bias_activation_kernel<T><<<elementwise_blocks(n), 256, 0, stream>>>(
          static_cast<T*>(x), static_cast<const T*>(bias), n, width, act);
      return;
    }
    auto launch = [&](auto act_tag) {
      bias_activation_vec_kernel<T, decltype(act_tag)::value>
          <<<n_tokens, 128, 0, stream>>>(static_cast<T*>(x), static_cast<const T*>(bias), width);
    };
    switch (act) {
      case Act::kGelu: launch(std::integral_constant<Act, Act::kGelu>{}); break;
      case Act::kGeluTanh: launch(std::integral_constant<Act, Act::kGeluTanh>{}); break;
      case Act::kRelu: launch(std::integral_constant<Act, Act::kRelu>{}); break;
      case Act::kSilu: launch(std::integral_constant<Act, Act::kSilu>{}); break;
      case Act::kTanh: launch(std::integral_constant<Act, Act::kTanh>{}); break;
    }
  });
  if (!ok) return invalid_argument("bias_activation: unsupported dtype");
  return check_launch("bias_activation");
}

Status gated_activation(cudaStream_t stream, model::DType dtype, void* out, const void* in,
                        const void* bias, int n_tokens, int ffn, Act act) {
  const int64_t n = static_cast<int64_t>(n_tokens) * ffn;
  if (n <= 0) return Status::ok();
  const bool ok = dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    gated_activation_kernel<T><<<elementwise_blocks(n), 256, 0, stream>>>(
        static_cast<T*>(out), static_cast<const T*>(in), static_cast<const T*>(bias), n, ffn, act);
  });
  if (!ok) return invalid_argument("gated_activation: unsupported dtype");
  return check_launch("gated_activation");
}

Status qkv_bias_rope(cudaStream_t stream, model::DType dtype, void* qkv, const void* bias,
                     const int32_t* positions, const float* inv_freq, int n_tokens, int n_heads,
                     int head_dim) {
  if (n_tokens <= 0 || (bias == nullptr && inv_freq == nullptr)) return Status::ok();
  if (inv_freq != nullptr && (positions == nullptr || head_dim % 2 != 0))
    return invalid_argument("qkv_bias_rope: rotation needs positions and an even head_dim");
  const bool ok = dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    qkv_bias_rope_kernel<T><<<n_tokens, 128, 0, stream>>>(
        static_cast<T*>(qkv), static_cast<const T*>(bias), positions, inv_freq, n_heads, head_dim);
  });
  if (!ok) return invalid_argument("qkv_bias_rope: unsupported dtype");
  return check_launch("qkv_bias_rope");
}

Status gather_rows(cudaStream_t stream, model::DType dtype, void* out, const void* in,
                   const int32_t* rows, int n_rows, int dim) {
  if (n_rows <= 0) return Status::ok();
  if (!out || !in || !rows || dim <= 0) return invalid_argument("gather_rows: missing arguments");
  const bool ok = dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    gather_rows_kernel<T>
        <<<n_rows, 256, 0, stream>>>(static_cast<T*>(out), static_cast<const T*>(in), rows, dim);
  });
  if (!ok) return invalid_argument("gather_rows: unsupported dtype");
  return check_launch("gather_rows");
}

Status pool_sequences(cudaStream_t stream, model::DType dtype, float* out, const void* x,
                      const int32_t* seq_begin, const int32_t* desc, int n_seqs, int dim) {
  if (n_seqs <= 0) return Status::ok();
  const bool ok = dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    pool_kernel<T><<<n_seqs, 256, 0, stream>>>(out, static_cast<const T*>(x), seq_begin, desc, dim);
  });
  if (!ok) return invalid_argument("pool_sequences: unsupported dtype");
  return check_launch("pool_sequences");
}

}  // namespace turbine::cuda
