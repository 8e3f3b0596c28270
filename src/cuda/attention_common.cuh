// Device helpers and launcher declarations shared by the attention kernel families (the public
// interface is cuda/attention.h; llama.cpp's fattn-common.cuh is the model for this layout):
//   attention.cu               argument checks, partition sizing, workspace, dispatch
//   attention_decode_simt.cu   paged decode on CUDA cores (F32, or groups over 16, or no MMA)
//   attention_decode_tc.cu     paged flash-decoding on tensor cores (F16/BF16)
//   attention_reduce.cu        combines the partitions of a split decode call (both decoders)
//   attention_prefill.cu       paged prefill on CUDA cores (F32)
//   attention_prefill_tc.cu    paged prefill on tensor cores, FlashAttention-2 on mma.sync
//   attention_generic.cu       any other even head_dim up to 256 (decode and prefill)
// Each launcher is a template instantiated in its own file for the (dtype, head_dim) pairs the
// dispatch in attention.cu reaches; it only enqueues work on `stream`.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include <type_traits>
#include "cuda/attention.h"

#include "cuda/dtype_util.cuh"
#include "cuda/fp8_util.cuh"
#include "cuda/launch.cuh"

namespace turbine::cuda {

// ---- 16-byte vector loads converted to f32 -------------------------------------------------

template <typename T>
struct Vec {
  static constexpr int kN = 16 / sizeof(T);
};

template <typename T>
__device__ __forceinline__ void unpack(const uint4& raw, float (&out)[Vec<T>::kN]);

template <>
__device__ __forceinline__ void unpack<float>(const uint4& raw, float (&out)[4]) {
  out[0] = __uint_as_float(raw.x);
  out[1] = __uint_as_float(raw.y);
  out[2] = __uint_as_float(raw.z);
  out[3] = __uint_as_float(raw.w);
}

template <>
__device__ __forceinline__ void unpack<__nv_bfloat16>(const uint4& raw, float (&out)[8]) {
  const auto* h = reinterpret_cast<const __nv_bfloat162*>(&raw);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 f = __bfloat1622float2(h[i]);
    out[2 * i] = f.x;
    out[2 * i + 1] = f.y;
  }
}

template <>
__device__ __forceinline__ void unpack<__half>(const uint4& raw, float (&out)[8]) {
  const auto* h = reinterpret_cast<const __half2*>(&raw);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 f = __half22float2(h[i]);
    out[2 * i] = f.x;
    out[2 * i + 1] = f.y;
  }
}

__device__ __forceinline__ uint4 load16(const void* p) {
  return __ldg(static_cast<const uint4*>(p));
}

// ---- KV cache elements: the call's dtype, or E4M3 bytes (KT = uint8_t, PagedKv::fp8) ---------

__device__ __forceinline__ float kv_to_float(uint8_t b) {
  return e4m3_to_float(b);
}
template <typename KT>
__device__ __forceinline__ float kv_to_float(KT v) {
  return to_float(v);
}

// The SIMT kernels' vector loads of cache rows: 16 bytes of a 16/32-bit cache; 8 bytes (8
// elements, the lane layout of a 16-bit cache) of an E4M3 one.
template <typename KT>
struct KvVec {
  using Raw = uint4;
  static constexpr int kN = 16 / sizeof(KT);
};
template <>
struct KvVec<uint8_t> {
  using Raw = uint2;
  static constexpr int kN = 8;
};

template <typename KT>
__device__ __forceinline__ typename KvVec<KT>::Raw kv_load(const KT* p) {
  if constexpr (std::is_same_v<KT, uint8_t>) {
    return __ldg(reinterpret_cast<const uint2*>(p));
  } else {
    return load16(p);
  }
}

template <typename KT>
__device__ __forceinline__ void kv_unpack(const typename KvVec<KT>::Raw& raw,
                                          float (&out)[KvVec<KT>::kN]) {
  if constexpr (std::is_same_v<KT, uint8_t>) {
    e4m3x4_to_float(raw.x, out);
    e4m3x4_to_float(raw.y, out + 4);
  } else {
    unpack<KT>(raw, out);
  }
}

// ---- tensor-core helpers (prefill_tc, decode_tc) ---------------------------------------------

constexpr int kTcPad = 8;  // elements of padding per shared row: conflict-free ldmatrix

__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16 bytes global -> shared, asynchronously; zero-filled when !valid (src is then not read).
__device__ __forceinline__ void cp_async16(uint32_t dst, const void* src, bool valid) {
  const int n = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(n)
               : "memory");
}
__device__ __forceinline__ void cp_async_commit() {
  asm volatile("cp.async.commit_group;\n" ::: "memory");
}
template <int kN>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kN) : "memory");
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr)
               : "memory");
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr)
               : "memory");
}

// c += a·b for one m16n8k16 tile (a: 4 registers of the 16x16 A fragment, b0/b1 the 16x8 B).
template <typename T>
__device__ __forceinline__ void mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                         uint32_t b1);
template <>
__device__ __forceinline__ void mma16816<__nv_bfloat16>(float (&c)[4], const uint32_t (&a)[4],
                                                        uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <>
__device__ __forceinline__ void mma16816<__half>(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                                 uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Two floats as one register of two 16-bit elements, the first in the low half.
template <typename T>
__device__ __forceinline__ uint32_t pack2(float lo, float hi);
template <>
__device__ __forceinline__ uint32_t pack2<__nv_bfloat16>(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}
template <>
__device__ __forceinline__ uint32_t pack2<__half>(float lo, float hi) {
  const __half2 v = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

// E4M3 tiles (FP8 KV cache) in the tensor-core kernels: a tile row is cp.async'ed as kHeadDim
// bytes into the upper half of its 16-bit shared row (fp8_stage_offset), then expanded in place to
// kHeadDim 16-bit elements (exact: every E4M3 value is an F16 and a BF16 value) before ldmatrix
// reads it. All threads of the CTA call expand_fp8_tile; it reads every item of the thread first,
// synchronises, then writes (the output of one item overlaps the input of others).
template <int kHeadDim>
__device__ __forceinline__ int fp8_stage_offset() {
  return kHeadDim;  // bytes from the start of the shared row
}

template <typename T, int kHeadDim, int kRows, int kThreads>
__device__ __forceinline__ void expand_fp8_tile(T* k_tile, T* v_tile, int stride, int tid) {
  constexpr int kRowChunks = kHeadDim / 16;  // 16 E4M3 values per item
  constexpr int kItems = kRows * kRowChunks / kThreads;
  static_assert(kRows * kRowChunks % kThreads == 0, "items divide among the threads");
  uint4 rk[kItems], rv[kItems];
#pragma unroll
  for (int i = 0; i < kItems; ++i) {
    const int item = tid + i * kThreads, r = item / kRowChunks, c = item % kRowChunks;
    const int off = r * stride * 2 + fp8_stage_offset<kHeadDim>() + c * 16;  // bytes
    rk[i] = *reinterpret_cast<const uint4*>(reinterpret_cast<const uint8_t*>(k_tile) + off);
    rv[i] = *reinterpret_cast<const uint4*>(reinterpret_cast<const uint8_t*>(v_tile) + off);
  }
  __syncthreads();
#pragma unroll
  for (int i = 0; i < kItems; ++i) {
    const int item = tid + i * kThreads, r = item / kRowChunks, c = item % kRowChunks;
    float f[16];
    uint4 o[2];
    uint32_t* ow = reinterpret_cast<uint32_t*>(o);
    e4m3x16_to_float(rk[i], f);
#pragma unroll
    for (int j = 0; j < 8; ++j) ow[j] = pack2<T>(f[2 * j], f[2 * j + 1]);
    uint4* kd = reinterpret_cast<uint4*>(k_tile + r * stride + c * 16);
    kd[0] = o[0];
    kd[1] = o[1];
    e4m3x16_to_float(rv[i], f);
#pragma unroll
    for (int j = 0; j < 8; ++j) ow[j] = pack2<T>(f[2 * j], f[2 * j + 1]);
    uint4* vd = reinterpret_cast<uint4*>(v_tile + r * stride + c * 16);
    vd[0] = o[0];
    vd[1] = o[1];
  }
  __syncthreads();
}

// The pieces both tensor-core kernels (prefill, decode) share. A warp holds 16 query rows; this
// thread's rows are g = lane / 4 and g + 8, its columns of an n8 tile 2 (lane % 4) and + 1.

// Q fragments of rows [row0, row0 + 16) for every k step of Q·Kᵀ, from a shared tile.
template <typename T, int kKSteps>
__device__ __forceinline__ void load_q_fragments(uint32_t (&qf)[kKSteps][4], const T* qs,
                                                 int stride, int row0, int lane) {
#pragma unroll
  for (int kk = 0; kk < kKSteps; ++kk) {
    const int r = row0 + (lane & 7) + ((lane >> 3) & 1) * 8, c = kk * 16 + (lane >> 4) * 8;
    ldmatrix_x4(qf[kk], smem_u32(qs + r * stride + c));
  }
}

// s0, s1 += Q·Kᵀ for the 16 keys of `kt` (rows of a shared K tile): two n8 tiles.
template <typename T, int kKSteps>
__device__ __forceinline__ void mma_qk16(float (&s0)[4], float (&s1)[4],
                                         const uint32_t (&qf)[kKSteps][4], const T* kt, int stride,
                                         int lane) {
#pragma unroll
  for (int kk = 0; kk < kKSteps; ++kk) {
    uint32_t b[4];
    const int key = (lane & 7) + (lane >> 4) * 8;
    const int c = kk * 16 + ((lane >> 3) & 1) * 8;
    ldmatrix_x4(b, smem_u32(kt + key * stride + c));
    mma16816<T>(s0, qf[kk], b[0], b[1]);
    mma16816<T>(s1, qf[kk], b[2], b[3]);
  }
}

// Online softmax over one tile of scores (already scaled into the exp2 domain and masked to
// -inf): `mx` holds this thread's max of its rows including m_run; the quad's max becomes the
// new running max, o and l_run are rescaled to it, and s becomes the tile's weights.
template <int kSTiles, int kOTiles>
__device__ __forceinline__ void online_softmax(float (&s)[kSTiles][4], float (&mx)[2],
                                               float (&m_run)[2], float (&l_run)[2],
                                               float (&o)[kOTiles][4]) {
  float corr[2], base[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
    mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
    base[r] = mx[r] == -INFINITY ? 0.0f : mx[r];  // a row with nothing visible yet
    corr[r] = exp2f(m_run[r] - base[r]);
    m_run[r] = mx[r];
  }
  float sum[2] = {0.0f, 0.0f};
#pragma unroll
  for (int n = 0; n < kSTiles; ++n) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      s[n][e] = exp2f(s[n][e] - base[e >> 1]);
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
}

// o += P·V for 16 keys: the weights of their two n8 score tiles (s0, s1) are the A fragment,
// `vt` the keys' rows of a shared V tile (transposed by ldmatrix).
template <typename T, int kOTiles>
__device__ __forceinline__ void mma_pv16(float (&o)[kOTiles][4], const float (&s0)[4],
                                         const float (&s1)[4], const T* vt, int stride, int lane) {
  const uint32_t a[4] = {pack2<T>(s0[0], s0[1]), pack2<T>(s0[2], s0[3]), pack2<T>(s1[0], s1[1]),
                         pack2<T>(s1[2], s1[3])};
#pragma unroll
  for (int d = 0; d < kOTiles; d += 2) {
    uint32_t b[4];
    const int key = (lane & 7) + ((lane >> 3) & 1) * 8;
    const int c = d * 8 + (lane >> 4) * 8;
    ldmatrix_x4_trans(b, smem_u32(vt + key * stride + c));
    mma16816<T>(o[d], a, b[0], b[1]);
    mma16816<T>(o[d + 1], a, b[2], b[3]);
  }
}

// The quad's partial row sums, summed (every lane of the quad gets them).
__device__ __forceinline__ void quad_sum(float (&l)[2]) {
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
  }
}

// ---- shapes the dispatch needs ---------------------------------------------------------------

constexpr int kDtMaxGroup = 16;        // q heads per kv head the 16 MMA rows hold
constexpr int kGenericMaxPerLane = 8;  // head_dim <= 256

// ---- launchers (one family per file) ---------------------------------------------------------

// attention_reduce.cu: combines the partitions of a split decode call (nothing when n_parts <= 1).
template <typename T>
void launch_decode_reduce(cudaStream_t stream, const PagedKv& kv, const DecodeAttentionArgs& a,
                          int part_tokens, int n_parts, const float* part_out,
                          const float* part_ml);

// attention_decode_simt.cu: the SIMT decode kernel for the group size of the call, then the
// reduction. T: float, __half, __nv_bfloat16; KT (the cache's elements): T or uint8_t (E4M3);
// kHeadDim: 64, 128.
template <typename T, typename KT, int kHeadDim>
void launch_decode_group(cudaStream_t stream, const PagedKv& kv, const DecodeAttentionArgs& a,
                         int64_t q_stride, int part_tokens, int n_parts, float* po, float* pml);

// attention_decode_tc.cu: raises the tensor-core decode kernels' shared-memory limit on the
// current device (once per device).
cudaError_t prepare_decode_tc_all();
// (warps, stages) as DecodeAttentionArgs::tc_warps / tc_stages; anything else: the default. Then
// the reduction. T: __half, __nv_bfloat16; KT: T or uint8_t; kHeadDim: 64, 128.
template <typename T, typename KT, int kHeadDim>
void launch_decode_tc(cudaStream_t stream, const PagedKv& kv, const DecodeAttentionArgs& a,
                      int64_t q_stride, int part_tokens, int n_parts, float* part_out,
                      float* part_ml, int warps, int stages);

// attention_prefill.cu (T: float) and attention_prefill_tc.cu (T: __half, __nv_bfloat16); KT: T
// or uint8_t; kHeadDim: 64, 128. Both return the error of raising the kernel's shared-memory
// limit (nothing is launched then).
template <typename T, typename KT, int kHeadDim>
cudaError_t launch_prefill(cudaStream_t stream, const PagedKv& kv, const PrefillAttentionArgs& a,
                           int64_t q_stride);
template <typename T, typename KT, int kHeadDim>
cudaError_t launch_prefill_tc(cudaStream_t stream, const PagedKv& kv, const PrefillAttentionArgs& a,
                              int64_t q_stride);

// attention_generic.cu: one warp per (query row, q head); cu_q_lens == nullptr: decode. KT: T or
// uint8_t.
template <typename T, typename KT>
void launch_generic(cudaStream_t stream, const PagedKv& kv, T* out, const void* q, int64_t q_stride,
                    const int32_t* cu_q_lens, int n_seqs, int n_q_heads, int max_q_len,
                    float scale);

}  // namespace turbine::cuda
