#include "cuda/encoder_attention.h"

#include <cfloat>
#include <type_traits>

#include "cuda/device.h"
#include "cuda/dtype_util.cuh"

namespace turbine::cuda {
namespace {

// ---- tensor cores: FlashAttention-2 over packed sequences ----------------------------------
//
// A warp owns 16 query rows; this thread's rows are g = lane / 4 and g + 8, its columns of an n8
// tile 2 (lane % 4) and + 1 (the m16n8k16 accumulator layout).

constexpr int kWarps = 4;
constexpr int kBM = 16 * kWarps;  // queries per CTA
constexpr int kBN = 64;           // keys per tile
constexpr int kPad = 8;           // elements of padding per shared row: conflict-free ldmatrix

template <int kHeadDim>
constexpr size_t tc_smem_bytes() {
  return size_t{2} * (kHeadDim + kPad) * (kBM + 4 * kBN);  // Q + 2 stages of K and V
}

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16 bytes global -> shared, asynchronously; zero-filled when !valid (src is then not read).
__device__ __forceinline__ void copy16_async(uint32_t dst, const void* src, bool valid) {
  const int n = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(n)
               : "memory");
}
__device__ __forceinline__ void async_commit() {
  asm volatile("cp.async.commit_group;\n" ::: "memory");
}
template <int kN>
__device__ __forceinline__ void async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kN) : "memory");
}

__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr)
               : "memory");
}
__device__ __forceinline__ void ldsm_x4_trans(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr)
               : "memory");
}

template <typename T>
__device__ __forceinline__ void mma_16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                          uint32_t b1);
template <>
__device__ __forceinline__ void mma_16816<__nv_bfloat16>(float (&c)[4], const uint32_t (&a)[4],
                                                         uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <>
__device__ __forceinline__ void mma_16816<__half>(float (&c)[4], const uint32_t (&a)[4],
                                                  uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

template <typename T>
__device__ __forceinline__ uint32_t pack_pair(float lo, float hi);
template <>
__device__ __forceinline__ uint32_t pack_pair<__nv_bfloat16>(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}
template <>
__device__ __forceinline__ uint32_t pack_pair<__half>(float lo, float hi) {
  const __half2 v = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

template <typename T, int kHeadDim>
__global__ void __launch_bounds__(kWarps * 32, 2)
    varlen_tc_kernel(T* __restrict__ out, int64_t out_stride, const T* __restrict__ q,
                     const T* __restrict__ k, const T* __restrict__ v, int64_t qkv_stride,
                     const T* __restrict__ q_bias, const T* __restrict__ v_bias,
                     const int32_t* __restrict__ seq_begin, int half_window, float scale_log2) {
  constexpr int kStride = kHeadDim + kPad;  // elements per shared row
  constexpr int kChunks = kHeadDim / 8;     // 16-byte chunks per row
  constexpr int kKSteps = kHeadDim / 16;    // k steps of Q·Kᵀ
  constexpr int kSTiles = kBN / 8;          // n8 tiles of S
  constexpr int kOTiles = kHeadDim / 8;     // n8 tiles of O
  constexpr int kThreads = kWarps * 32;
  extern __shared__ uint4 smem[];  // uint4: 16-byte aligned
  T* qs = reinterpret_cast<T*>(smem);
  T* ks = qs + kBM * kStride;      // [2][kBN][kStride]
  T* vs = ks + 2 * kBN * kStride;  // [2][kBN][kStride]

  const int h = blockIdx.x, seq = blockIdx.z;
  const int base = seq_begin[seq];
  const int len = seq_begin[seq + 1] - base;
  const int tile = blockIdx.y * kBM;
  if (tile >= len) return;
  const int rows = min(kBM, len - tile);
  const bool local = half_window >= 0;
  // Keys [kv_lo, kv_hi) are visible to some row of the tile.
  const int kv_lo = local ? max(0, tile - half_window) : 0;
  const int kv_hi = local ? min(len, tile + rows + half_window) : len;
  const int j_first = kv_lo / kBN, j_end = (kv_hi + kBN - 1) / kBN;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int64_t head_off = static_cast<int64_t>(h) * kHeadDim;

  for (int i = tid; i < kBM * kChunks; i += kThreads) {
    const int r = i / kChunks, c = (i % kChunks) * 8;
    const bool valid = r < rows;
    const T* src =
        q + static_cast<int64_t>(base + tile + (valid ? r : 0)) * qkv_stride + head_off + c;
    copy16_async(smem_addr(qs + r * kStride + c), src, valid);
  }
  auto load_kv = [&](int j) {
    T* kd = ks + (j & 1) * kBN * kStride;
    T* vd = vs + (j & 1) * kBN * kStride;
    for (int i = tid; i < kBN * kChunks; i += kThreads) {
      const int r = i / kChunks, c = (i % kChunks) * 8;
      const int t = j * kBN + r;
      const bool valid = t < len;
      const int64_t off = static_cast<int64_t>(base + (valid ? t : 0)) * qkv_stride + head_off + c;
      copy16_async(smem_addr(kd + r * kStride + c), k + off, valid);
      copy16_async(smem_addr(vd + r * kStride + c), v + off, valid);
    }
  };
  load_kv(j_first);
  async_commit();

  const int g = lane >> 2, t4 = lane & 3;
  const int row0 = warp * 16;
  const bool warp_active = row0 < rows;
  const int pos_lo = tile + row0;                      // the warp's first row
  const int pos_hi = tile + min(row0 + 15, rows - 1);  // its last valid row
  const int pos_g = pos_lo + g;                        // row g (row g + 8: + 8)
  // Keys this warp's rows can see.
  const int see_lo = local ? pos_lo - half_window : 0;
  const int see_hi = local ? pos_hi + half_window : len - 1;

  uint32_t qf[kKSteps][4];
  float o[kOTiles][4];
#pragma unroll
  for (int d = 0; d < kOTiles; ++d) o[d][0] = o[d][1] = o[d][2] = o[d][3] = 0.0f;
  float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.0f, 0.0f};

  for (int j = j_first; j < j_end; ++j) {
    if (j + 1 < j_end) load_kv(j + 1);  // its stage was released by the barrier ending j - 1
    async_commit();
    async_wait<1>();  // all but the newest group: Q and tile j are in
    __syncthreads();
    const int kb = j * kBN;
    if (j == j_first && warp_active) {
#pragma unroll
      for (int kk = 0; kk < kKSteps; ++kk) {
        const int r = row0 + (lane & 7) + ((lane >> 3) & 1) * 8, c = kk * 16 + (lane >> 4) * 8;
        ldsm_x4(qf[kk], smem_addr(qs + r * kStride + c));
      }
      if (q_bias != nullptr) {
        // Fragment register e holds columns kk 16 + (e / 2) 8 + 2 t4 and + 1 (rows g, g + 8).
#pragma unroll
        for (int kk = 0; kk < kKSteps; ++kk) {
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const T* b = q_bias + head_off + kk * 16 + (e >> 1) * 8 + 2 * t4;
            const T* x = reinterpret_cast<const T*>(&qf[kk][e]);
            qf[kk][e] =
                pack_pair<T>(to_float(x[0]) + to_float(b[0]), to_float(x[1]) + to_float(b[1]));
          }
        }
      }
    }
    if (warp_active && kb <= see_hi && kb + kBN - 1 >= see_lo) {
      const T* kt = ks + (j & 1) * kBN * kStride;
      const T* vt = vs + (j & 1) * kBN * kStride;
      float s[kSTiles][4];
#pragma unroll
      for (int n = 0; n < kSTiles; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
#pragma unroll
      for (int n = 0; n < kSTiles; n += 2) {
#pragma unroll
        for (int kk = 0; kk < kKSteps; ++kk) {
          uint32_t b[4];
          const int key = n * 8 + (lane & 7) + (lane >> 4) * 8;
          const int c = kk * 16 + ((lane >> 3) & 1) * 8;
          ldsm_x4(b, smem_addr(kt + key * kStride + c));
          mma_16816<T>(s[n], qf[kk], b[0], b[1]);
          mma_16816<T>(s[n + 1], qf[kk], b[2], b[3]);
        }
      }
      // Scale into the exp2 domain; mask keys past the sequence and outside a local window.
      const bool masked = local || kb + kBN > len;
      float mx[2] = {m_run[0], m_run[1]};
#pragma unroll
      for (int n = 0; n < kSTiles; ++n) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          float val = s[n][e] * scale_log2;
          if (masked) {
            const int key = kb + n * 8 + 2 * t4 + (e & 1);
            const int qpos = pos_g + (e >> 1) * 8;
            if (key >= len || (local && abs(key - qpos) > half_window)) val = -INFINITY;
          }
          s[n][e] = val;
          mx[e >> 1] = fmaxf(mx[e >> 1], val);
        }
      }
      // Online softmax: the quad's max is the rows' new running max.
      float corr[2], shift[2];
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
        mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
        shift[r] = mx[r] == -INFINITY ? 0.0f : mx[r];  // a row with nothing visible yet
        corr[r] = exp2f(m_run[r] - shift[r]);
        m_run[r] = mx[r];
      }
      float sum[2] = {0.0f, 0.0f};
#pragma unroll
      for (int n = 0; n < kSTiles; ++n) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          s[n][e] = exp2f(s[n][e] - shift[e >> 1]);
          sum[e >> 1] += s[n][e];
        }
      }
#pragma unroll
      for (int r = 0; r < 2; ++r) l_run[r] = l_run[r] * corr[r] + sum[r];
#pragma unroll
      for (int d = 0; d < kOTiles; ++d) {
        o[d][0] *= corr[0];
        o[d][1] *= corr[0];
        o[d][2] *= corr[1];
        o[d][3] *= corr[1];
      }
      // O += P·V: the S accumulators of key tiles 2kk and 2kk + 1 are the A fragment of keys
      // 16kk .. 16kk + 15; V rows through ldmatrix.trans are the B fragments.
#pragma unroll
      for (int kk = 0; kk < kBN / 16; ++kk) {
        const uint32_t a[4] = {pack_pair<T>(s[2 * kk][0], s[2 * kk][1]),
                               pack_pair<T>(s[2 * kk][2], s[2 * kk][3]),
                               pack_pair<T>(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                               pack_pair<T>(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
        for (int d = 0; d < kOTiles; d += 2) {
          uint32_t b[4];
          const int key = kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8;
          const int c = d * 8 + (lane >> 4) * 8;
          ldsm_x4_trans(b, smem_addr(vt + key * kStride + c));
          mma_16816<T>(o[d], a, b[0], b[1]);
          mma_16816<T>(o[d + 1], a, b[2], b[3]);
        }
      }
    }
    __syncthreads();  // stage j & 1 is free for tile j + 2
  }
  if (!warp_active) return;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    l_run[r] += __shfl_xor_sync(0xffffffffu, l_run[r], 1);
    l_run[r] += __shfl_xor_sync(0xffffffffu, l_run[r], 2);
  }
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int row = row0 + g + r * 8;
    if (row >= rows) continue;
    const float inv = 1.0f / l_run[r];
    T* orow = out + static_cast<int64_t>(base + tile + row) * out_stride + head_off;
#pragma unroll
    for (int d = 0; d < kOTiles; ++d) {
      float y0 = o[d][2 * r] * inv, y1 = o[d][2 * r + 1] * inv;
      if (v_bias != nullptr) {
        y0 += to_float(v_bias[head_off + d * 8 + 2 * t4]);
        y1 += to_float(v_bias[head_off + d * 8 + 2 * t4 + 1]);
      }
      *reinterpret_cast<uint32_t*>(orow + d * 8 + 2 * t4) = pack_pair<T>(y0, y1);
    }
  }
}

template <typename T, int kHeadDim>
cudaError_t launch_tc(cudaStream_t stream, const VarlenAttentionArgs& a, int64_t out_stride) {
  constexpr size_t smem = tc_smem_bytes<kHeadDim>();
  auto* fn = varlen_tc_kernel<T, kHeadDim>;
  const cudaError_t e =
      cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
  if (e != cudaSuccess) return e;
  const dim3 grid(a.n_heads, (a.max_seq_len + kBM - 1) / kBM, a.n_seqs);
  const T* bias = static_cast<const T*>(a.qkv_bias);
  const int64_t d = static_cast<int64_t>(a.n_heads) * a.head_dim;
  fn<<<grid, kWarps * 32, smem, stream>>>(
      static_cast<T*>(a.out), out_stride, static_cast<const T*>(a.q), static_cast<const T*>(a.k),
      static_cast<const T*>(a.v), a.qkv_stride, bias, bias != nullptr ? bias + 2 * d : nullptr,
      a.seq_begin, a.half_window, a.scale * 1.4426950408889634f);
  return cudaSuccess;
}

// ---- CUDA cores: one warp per (query, head) ------------------------------------------------

constexpr int kSimtWarps = 4;
constexpr int kSimtMaxPerLane = 8;  // head_dim <= 256

template <typename T>
__global__ void __launch_bounds__(kSimtWarps * 32)
    varlen_simt_kernel(T* __restrict__ out, int64_t out_stride, const T* __restrict__ q,
                       const T* __restrict__ k, const T* __restrict__ v, int64_t qkv_stride,
                       const T* __restrict__ bias, const int32_t* __restrict__ seq_begin,
                       int head_dim, int half_window, float scale) {
  const int seq = blockIdx.z, h = blockIdx.y;
  const int i = blockIdx.x * kSimtWarps + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  const int base = seq_begin[seq];
  const int len = seq_begin[seq + 1] - base;
  if (i >= len) return;
  const int lo = half_window < 0 ? 0 : max(0, i - half_window);
  const int hi = half_window < 0 ? len : min(len, i + half_window + 1);
  const int64_t head_off = static_cast<int64_t>(h) * head_dim;
  const T* qr = q + static_cast<int64_t>(base + i) * qkv_stride + head_off;
  // The biases are added as the projection's epilogue would have: x + b rounded to T.
  const int64_t dim = static_cast<int64_t>(gridDim.y) * head_dim;
  const T* bq = bias != nullptr ? bias + head_off : nullptr;
  const T* bk = bias != nullptr ? bq + dim : nullptr;
  const T* bv = bias != nullptr ? bq + 2 * dim : nullptr;
  auto load = [](const T* x, const T* b, int d) {
    return b == nullptr ? to_float(x[d]) : to_float(from_float<T>(to_float(x[d]) + to_float(b[d])));
  };
  float qv[kSimtMaxPerLane], o[kSimtMaxPerLane];
#pragma unroll
  for (int j = 0; j < kSimtMaxPerLane; ++j) {
    const int d = lane + 32 * j;
    qv[j] = d < head_dim ? load(qr, bq, d) * scale : 0.0f;
    o[j] = 0.0f;
  }
  float m = -FLT_MAX, l = 0.0f;
  for (int t = lo; t < hi; ++t) {
    const int64_t off = static_cast<int64_t>(base + t) * qkv_stride + head_off;
    float s = 0.0f;
#pragma unroll
    for (int j = 0; j < kSimtMaxPerLane; ++j) {
      const int d = lane + 32 * j;
      if (d < head_dim) s += qv[j] * load(k + off, bk, d);
    }
#pragma unroll
    for (int x = 16; x > 0; x >>= 1) s += __shfl_xor_sync(0xffffffffu, s, x);
    const float m_new = fmaxf(m, s);
    const float corr = __expf(m - m_new), p = __expf(s - m_new);
    l = l * corr + p;
#pragma unroll
    for (int j = 0; j < kSimtMaxPerLane; ++j) {
      const int d = lane + 32 * j;
      if (d < head_dim) o[j] = o[j] * corr + p * load(v + off, bv, d);
    }
    m = m_new;
  }
  T* orow = out + static_cast<int64_t>(base + i) * out_stride + head_off;
#pragma unroll
  for (int j = 0; j < kSimtMaxPerLane; ++j) {
    const int d = lane + 32 * j;
    if (d < head_dim) orow[d] = from_float<T>(o[j] / l);
  }
}

bool tc_shape(const VarlenAttentionArgs& a) {
  return a.tensor_cores && a.dtype != model::DType::kF32 &&
         (a.head_dim == 64 || a.head_dim == 128) && a.qkv_stride % 8 == 0;
}

}  // namespace

bool varlen_attention_uses_tensor_cores(const VarlenAttentionArgs& args) {
  return tc_shape(args);
}

Status varlen_attention(cudaStream_t stream, const VarlenAttentionArgs& a) {
  if (a.n_seqs <= 0 || a.max_seq_len <= 0) return Status::ok();
  if (a.head_dim <= 0 || a.head_dim > 32 * kSimtMaxPerLane || a.head_dim % 2 != 0) {
    return unimplemented("encoder attention: head_dim " + std::to_string(a.head_dim) +
                         " is not supported (even sizes up to 256)");
  }
  if (a.n_heads <= 0 || a.qkv_stride <= 0 || a.seq_begin == nullptr || !a.q || !a.k || !a.v ||
      !a.out) {
    return invalid_argument("encoder attention: missing arguments");
  }
  const int64_t out_stride =
      a.out_stride > 0 ? a.out_stride : static_cast<int64_t>(a.n_heads) * a.head_dim;
  cudaError_t err = cudaSuccess;
  const bool ok = dispatch_dtype(a.dtype, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (!std::is_same_v<T, float>) {
      if (tc_shape(a)) {
        err = a.head_dim == 64 ? launch_tc<T, 64>(stream, a, out_stride)
                               : launch_tc<T, 128>(stream, a, out_stride);
        return;
      }
    }
    const dim3 grid((a.max_seq_len + kSimtWarps - 1) / kSimtWarps, a.n_heads, a.n_seqs);
    varlen_simt_kernel<T><<<grid, kSimtWarps * 32, 0, stream>>>(
        static_cast<T*>(a.out), out_stride, static_cast<const T*>(a.q), static_cast<const T*>(a.k),
        static_cast<const T*>(a.v), a.qkv_stride, static_cast<const T*>(a.qkv_bias), a.seq_begin,
        a.head_dim, a.half_window, a.scale);
  });
  if (!ok) return invalid_argument("encoder attention: unsupported dtype");
  if (err != cudaSuccess) return check(err, "encoder attention setup");
  return check_launch("varlen_attention");
}

}  // namespace turbine::cuda
