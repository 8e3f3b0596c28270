#include "cuda/attention.h"

#include <algorithm>
#include <cfloat>
#include <map>
#include <mutex>
#include <string>
#include <type_traits>

#include "cuda/device.h"
#include "cuda/dtype_util.cuh"
#include "cuda/launch.cuh"

namespace turbine::cuda {
namespace {

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

// ---- decode -------------------------------------------------------------------------------

constexpr int kDecodeWarps = 4;
constexpr int kDecodeThreads = kDecodeWarps * 32;
constexpr int kDecodeUnroll = 4;

// One block per (group of kGroup q heads sharing one kv head, sequence, partition of
// part_tokens <= kDecodePartitionTokens). A token's head_dim row is read by kLanes lanes with
// 16-byte loads; each warp covers 32 / kLanes tokens per step. Pass 1 writes scaled logits to
// shared memory, pass 2 accumulates softmax-weighted V. With one partition the block writes the
// final output; otherwise (max, sum, normalised partial output) go to the workspace for the
// reduction.
// Tokens a decode block covers in one step of its loops (kDecodeUnroll loads in flight per lane).
template <typename T, int kHeadDim>
constexpr int decode_step_tokens() {
  return 32 / (kHeadDim / Vec<T>::kN) * kDecodeWarps * kDecodeUnroll;
}

// kOneShot: the partition fits one step (part_tokens <= decode_step_tokens), so V is loaded
// together with K (one round trip to memory instead of two). A separate instantiation: the
// prefetch registers would otherwise lower the occupancy of the long-partition kernel (96 vs 64
// registers on sm_90a, ~16% slower at 32 x 2,048 tokens).
template <typename T, int kHeadDim, int kGroup, bool kOneShot>
__global__ void __launch_bounds__(kDecodeThreads)
    decode_kernel(T* __restrict__ out, const T* __restrict__ q, int64_t q_row_stride,
                  const T* __restrict__ k_cache, const T* __restrict__ v_cache,
                  const int32_t* __restrict__ block_tables, int max_blocks_per_seq,
                  const int32_t* __restrict__ context_lens, int block_size, int n_kv_heads,
                  int n_q_heads, float scale, int part_tokens, int n_parts,
                  float* __restrict__ part_out, float* __restrict__ part_ml) {
  constexpr int kVec = Vec<T>::kN;
  constexpr int kLanes = kHeadDim / kVec;
  static_assert(kLanes <= 32 && 32 % kLanes == 0, "head row must fit a warp");
  constexpr int kTokPerWarp = 32 / kLanes;
  constexpr int kTokPerStep = kTokPerWarp * kDecodeWarps;
  constexpr int kP = kDecodePartitionTokens;

  __shared__ float logits[kGroup][kP];
  __shared__ float red[kDecodeWarps][kGroup][kHeadDim];
  __shared__ float stat_max[kGroup], stat_sum[kGroup];

  pdl_trigger();
  pdl_wait();
  const int seq = blockIdx.y, part = blockIdx.z;
  const int h0 = blockIdx.x * kGroup;
  const int kvh = h0 / (n_q_heads / n_kv_heads);
  const int ctx = context_lens[seq];
  const int p_start = part * part_tokens;
  const int p_end = min(ctx, p_start + part_tokens);
  const int n_tok = p_end - p_start;
  const int64_t out_base = (static_cast<int64_t>(seq) * n_q_heads + h0) * kHeadDim;

  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int sub = lane / kLanes, l = lane % kLanes;

  if (n_tok <= 0) {  // sequence shorter than this partition (or empty)
    if (n_parts == 1) {
      for (int i = threadIdx.x; i < kGroup * kHeadDim; i += blockDim.x)
        out[out_base + i] = from_float<T>(0.0f);
    } else if (threadIdx.x < kGroup) {
      const int64_t r = (static_cast<int64_t>(seq) * n_q_heads + h0 + threadIdx.x) * n_parts + part;
      part_ml[2 * r] = -FLT_MAX;
      part_ml[2 * r + 1] = 0.0f;
    }
    return;
  }

  const int32_t* table = block_tables + static_cast<int64_t>(seq) * max_blocks_per_seq;
  const int64_t tok_stride = static_cast<int64_t>(n_kv_heads) * kHeadDim;
  auto row_offset = [&](int t) -> int64_t {
    const int64_t blk = table[t / block_size];
    return (blk * block_size + t % block_size) * tok_stride + kvh * kHeadDim + l * kVec;
  };

  // Pass 1: logits.
  float qv[kGroup][kVec];
#pragma unroll
  for (int g = 0; g < kGroup; ++g) {
    float tmp[kVec];
    unpack<T>(load16(q + seq * q_row_stride + (h0 + g) * kHeadDim + l * kVec), tmp);
#pragma unroll
    for (int j = 0; j < kVec; ++j) qv[g][j] = tmp[j] * scale;
  }
  static_assert(decode_step_tokens<T, kHeadDim>() == kTokPerStep * kDecodeUnroll);
  uint4 vpre[kOneShot ? kDecodeUnroll : 1];
  for (int base = p_start + warp * kTokPerWarp; base < p_end; base += kTokPerStep * kDecodeUnroll) {
    uint4 raw[kDecodeUnroll];
#pragma unroll
    for (int u = 0; u < kDecodeUnroll; ++u) {
      const int t = base + u * kTokPerStep + sub;
      raw[u] = t < p_end ? load16(k_cache + row_offset(t)) : make_uint4(0, 0, 0, 0);
    }
    if constexpr (kOneShot) {
#pragma unroll
      for (int u = 0; u < kDecodeUnroll; ++u) {
        const int t = base + u * kTokPerStep + sub;
        vpre[u] = t < p_end ? load16(v_cache + row_offset(t)) : make_uint4(0, 0, 0, 0);
      }
    }
#pragma unroll
    for (int u = 0; u < kDecodeUnroll; ++u) {
      const int t = base + u * kTokPerStep + sub;
      float kf[kVec];
      unpack<T>(raw[u], kf);
      float dot[kGroup];
#pragma unroll
      for (int g = 0; g < kGroup; ++g) {
        float s = 0.0f;
#pragma unroll
        for (int j = 0; j < kVec; ++j) s += qv[g][j] * kf[j];
#pragma unroll
        for (int o = kLanes / 2; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
        dot[g] = s;
      }
      if (l == 0 && t < p_end) {
#pragma unroll
        for (int g = 0; g < kGroup; ++g) logits[g][t - p_start] = dot[g];
      }
    }
  }
  __syncthreads();

  // Softmax within the partition: one warp per head of the group.
  for (int g = warp; g < kGroup; g += kDecodeWarps) {
    float m = -FLT_MAX;
    for (int i = lane; i < n_tok; i += 32) m = fmaxf(m, logits[g][i]);
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
    float s = 0.0f;
    for (int i = lane; i < n_tok; i += 32) {
      const float e = __expf(logits[g][i] - m);
      logits[g][i] = e;
      s += e;
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    if (lane == 0) {
      stat_max[g] = m;
      stat_sum[g] = s;
    }
  }
  __syncthreads();

  // Pass 2: weighted sum of V.
  float acc[kGroup][kVec];
#pragma unroll
  for (int g = 0; g < kGroup; ++g)
#pragma unroll
    for (int j = 0; j < kVec; ++j) acc[g][j] = 0.0f;
  for (int base = p_start + warp * kTokPerWarp; base < p_end; base += kTokPerStep * kDecodeUnroll) {
    uint4 raw[kDecodeUnroll];
#pragma unroll
    for (int u = 0; u < kDecodeUnroll; ++u) {
      if constexpr (kOneShot) {
        raw[u] = vpre[u];
      } else {
        const int t = base + u * kTokPerStep + sub;
        raw[u] = t < p_end ? load16(v_cache + row_offset(t)) : make_uint4(0, 0, 0, 0);
      }
    }
#pragma unroll
    for (int u = 0; u < kDecodeUnroll; ++u) {
      const int t = base + u * kTokPerStep + sub;
      if (t < p_end) {
        float vf[kVec];
        unpack<T>(raw[u], vf);
#pragma unroll
        for (int g = 0; g < kGroup; ++g) {
          const float p = logits[g][t - p_start];
#pragma unroll
          for (int j = 0; j < kVec; ++j) acc[g][j] += p * vf[j];
        }
      }
    }
  }
  // Sum the token slots of the warp, then the warps.
#pragma unroll
  for (int g = 0; g < kGroup; ++g)
#pragma unroll
    for (int j = 0; j < kVec; ++j)
#pragma unroll
      for (int o = kLanes; o < 32; o <<= 1) acc[g][j] += __shfl_xor_sync(0xffffffffu, acc[g][j], o);
  if (sub == 0) {
#pragma unroll
    for (int g = 0; g < kGroup; ++g)
#pragma unroll
      for (int j = 0; j < kVec; ++j) red[warp][g][l * kVec + j] = acc[g][j];
  }
  __syncthreads();
  for (int i = threadIdx.x; i < kGroup * kHeadDim; i += blockDim.x) {
    const int g = i / kHeadDim, d = i % kHeadDim;
    float s = 0.0f;
#pragma unroll
    for (int w = 0; w < kDecodeWarps; ++w) s += red[w][g][d];
    s /= stat_sum[g];
    if (n_parts == 1) {
      out[out_base + i] = from_float<T>(s);
    } else {
      const int64_t r = (static_cast<int64_t>(seq) * n_q_heads + h0 + g) * n_parts + part;
      part_out[r * kHeadDim + d] = s;
      if (d == 0) {
        part_ml[2 * r] = stat_max[g];
        part_ml[2 * r + 1] = stat_sum[g];
      }
    }
  }
}

// Combines the partitions of one (sequence, q head): block of head_dim threads.
template <typename T>
__global__ void decode_reduce_kernel(T* __restrict__ out, const float* __restrict__ part_out,
                                     const float* __restrict__ part_ml,
                                     const int32_t* __restrict__ context_lens, int n_q_heads,
                                     int head_dim, int part_tokens, int n_parts) {
  pdl_trigger();
  pdl_wait();
  const int seq = blockIdx.y, h = blockIdx.x, d = threadIdx.x;
  const int64_t r0 = (static_cast<int64_t>(seq) * n_q_heads + h) * n_parts;
  // Partitions past the end of this sequence were skipped by the decode kernel.
  const int used = min(n_parts, (context_lens[seq] + part_tokens - 1) / part_tokens);
  float m = -FLT_MAX;
  for (int p = 0; p < used; ++p) m = fmaxf(m, part_ml[2 * (r0 + p)]);
  float num = 0.0f, den = 0.0f;
  for (int p = 0; p < used; ++p) {
    const float w = part_ml[2 * (r0 + p) + 1] * __expf(part_ml[2 * (r0 + p)] - m);
    num += w * part_out[(r0 + p) * head_dim + d];
    den += w;
  }
  out[(static_cast<int64_t>(seq) * n_q_heads + h) * head_dim + d] =
      from_float<T>(den > 0.0f ? num / den : 0.0f);
}

// Combines the partitions of a split decode call (both decode kernels write the same format).
template <typename T>
void launch_decode_reduce(cudaStream_t stream, const PagedKv& kv, const DecodeAttentionArgs& a,
                          int part_tokens, int n_parts, const float* part_out,
                          const float* part_ml) {
  if (n_parts <= 1) return;
  launch_kernel(a.pdl, decode_reduce_kernel<T>, dim3(a.n_q_heads, a.n_seqs), dim3(kv.head_dim), 0,
                stream, static_cast<T*>(a.out), part_out, part_ml, kv.context_lens, a.n_q_heads,
                kv.head_dim, part_tokens, n_parts);
}

template <typename T, int kHeadDim, int kGroup>
void launch_decode(cudaStream_t stream, const PagedKv& kv, const DecodeAttentionArgs& a,
                   int64_t q_stride, int part_tokens, int n_parts, float* part_out,
                   float* part_ml) {
  const dim3 grid(a.n_q_heads / kGroup, a.n_seqs, n_parts);
  auto* kernel = part_tokens <= decode_step_tokens<T, kHeadDim>()
                     ? decode_kernel<T, kHeadDim, kGroup, true>
                     : decode_kernel<T, kHeadDim, kGroup, false>;
  launch_kernel(a.pdl, kernel, grid, dim3(kDecodeThreads), 0, stream, static_cast<T*>(a.out),
                static_cast<const T*>(a.q), q_stride, static_cast<const T*>(kv.k_cache),
                static_cast<const T*>(kv.v_cache), kv.block_tables, kv.max_blocks_per_seq,
                kv.context_lens, kv.block_size, kv.n_kv_heads, a.n_q_heads, a.scale, part_tokens,
                n_parts, part_out, part_ml);
  launch_decode_reduce<T>(stream, kv, a, part_tokens, n_parts, part_out, part_ml);
}

template <typename T, int kHeadDim>
void launch_decode_group(cudaStream_t stream, const PagedKv& kv, const DecodeAttentionArgs& a,
                         int64_t q_stride, int part_tokens, int n_parts, float* po, float* pml) {
  const int group = a.n_q_heads / kv.n_kv_heads;
  if (group % 8 == 0) {
    launch_decode<T, kHeadDim, 8>(stream, kv, a, q_stride, part_tokens, n_parts, po, pml);
  } else if (group % 4 == 0) {
    launch_decode<T, kHeadDim, 4>(stream, kv, a, q_stride, part_tokens, n_parts, po, pml);
  } else if (group % 2 == 0) {
    launch_decode<T, kHeadDim, 2>(stream, kv, a, q_stride, part_tokens, n_parts, po, pml);
  } else {
    launch_decode<T, kHeadDim, 1>(stream, kv, a, q_stride, part_tokens, n_parts, po, pml);
  }
}

// ---- prefill ------------------------------------------------------------------------------

constexpr int kPrefillWarps = 4;
constexpr int kPrefillRowsPerWarp = 8;
constexpr int kPrefillBM = kPrefillWarps * kPrefillRowsPerWarp;  // query rows per block
constexpr int kPrefillBN = 32;                                   // keys per tile = warp width

size_t prefill_smem_bytes(int head_dim) {
  return sizeof(float) * (static_cast<size_t>(kPrefillBM) * head_dim +
                          static_cast<size_t>(kPrefillBN) * (head_dim + 1) +
                          static_cast<size_t>(kPrefillBN) * head_dim);
}

// Flash-attention style, SIMT: one block per (tile of kPrefillBM query rows, q head, sequence).
// K/V tiles of 32 cached tokens are staged in shared memory as f32; lane j scores key j for each
// of its warp's rows, and the running (max, sum, output) is rescaled per tile (online softmax).
// Tiles past the last row's position are never loaded (causal).
template <typename T, int kHeadDim>
__global__ void __launch_bounds__(kPrefillWarps * 32)
    prefill_kernel(T* __restrict__ out, const T* __restrict__ q, int64_t q_row_stride,
                   const T* __restrict__ k_cache, const T* __restrict__ v_cache,
                   const int32_t* __restrict__ block_tables, int max_blocks_per_seq,
                   const int32_t* __restrict__ context_lens, const int32_t* __restrict__ cu_q_lens,
                   int block_size, int n_kv_heads, int n_q_heads, float scale) {
  constexpr int kVec = Vec<T>::kN;
  constexpr int kPerLane = kHeadDim / 32;
  constexpr int kKStride = kHeadDim + 1;  // padding: lane j reads row j without bank conflicts
  extern __shared__ float smem[];
  float* qs = smem;                        // [BM][D]
  float* ks = qs + kPrefillBM * kHeadDim;  // [BN][D + 1]
  float* vs = ks + kPrefillBN * kKStride;  // [BN][D]

  const int seq = blockIdx.z, h = blockIdx.y;
  const int q_begin = cu_q_lens[seq];
  const int q_len = cu_q_lens[seq + 1] - q_begin;
  const int tile = blockIdx.x * kPrefillBM;
  if (tile >= q_len) return;
  const int ctx = context_lens[seq];
  const int prefix = ctx - q_len;
  const int kvh = h / (n_q_heads / n_kv_heads);
  const int rows = min(kPrefillBM, q_len - tile);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;

  for (int i = threadIdx.x; i < kPrefillBM * (kHeadDim / kVec); i += blockDim.x) {
    const int r = i / (kHeadDim / kVec), c = (i % (kHeadDim / kVec)) * kVec;
    float f[kVec];
    if (r < rows) {
      unpack<T>(
          load16(q + static_cast<int64_t>(q_begin + tile + r) * q_row_stride + h * kHeadDim + c),
          f);
    } else {
#pragma unroll
      for (int j = 0; j < kVec; ++j) f[j] = 0.0f;
    }
#pragma unroll
    for (int j = 0; j < kVec; ++j) qs[r * kHeadDim + c + j] = f[j] * scale;
  }

  float m[kPrefillRowsPerWarp], lsum[kPrefillRowsPerWarp], o[kPrefillRowsPerWarp][kPerLane];
#pragma unroll
  for (int r = 0; r < kPrefillRowsPerWarp; ++r) {
    m[r] = -FLT_MAX;
    lsum[r] = 0.0f;
#pragma unroll
    for (int c = 0; c < kPerLane; ++c) o[r][c] = 0.0f;
  }

  const int32_t* table = block_tables + static_cast<int64_t>(seq) * max_blocks_per_seq;
  const int64_t tok_stride = static_cast<int64_t>(n_kv_heads) * kHeadDim;
  const int kv_end = prefix + tile + rows;  // keys [0, kv_end) are visible to some row
  for (int kb = 0; kb < kv_end; kb += kPrefillBN) {
    __syncthreads();  // previous tile fully consumed (and qs written, first time round)
    for (int i = threadIdx.x; i < kPrefillBN * (kHeadDim / kVec); i += blockDim.x) {
      const int r = i / (kHeadDim / kVec), c = (i % (kHeadDim / kVec)) * kVec;
      const int t = kb + r;
      float kf[kVec], vf[kVec];
      if (t < kv_end) {
        const int64_t off =
            (static_cast<int64_t>(table[t / block_size]) * block_size + t % block_size) *
                tok_stride +
            kvh * kHeadDim + c;
        unpack<T>(load16(k_cache + off), kf);
        unpack<T>(load16(v_cache + off), vf);
      } else {
#pragma unroll
        for (int j = 0; j < kVec; ++j) kf[j] = vf[j] = 0.0f;
      }
#pragma unroll
      for (int j = 0; j < kVec; ++j) {
        ks[r * kKStride + c + j] = kf[j];
        vs[r * kHeadDim + c + j] = vf[j];
      }
    }
    __syncthreads();

#pragma unroll
    for (int r = 0; r < kPrefillRowsPerWarp; ++r) {
      const int row = warp * kPrefillRowsPerWarp + r;
      if (row >= rows) break;  // uniform across the warp
      const int pos = prefix + tile + row;
      if (kb > pos) continue;  // whole tile is in this row's future
      const float* qr = qs + row * kHeadDim;
      const float* kr = ks + lane * kKStride;
      float s = 0.0f;
#pragma unroll 16
      for (int d = 0; d < kHeadDim; ++d) s += qr[d] * kr[d];
      if (kb + lane > pos) s = -FLT_MAX;
      float mx = s;
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
      const float m_new = fmaxf(m[r], mx);
      const float p = kb + lane > pos ? 0.0f : __expf(s - m_new);
      const float corr = __expf(m[r] - m_new);
      float ps = p;
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) ps += __shfl_xor_sync(0xffffffffu, ps, off);
      lsum[r] = lsum[r] * corr + ps;
      m[r] = m_new;
#pragma unroll
      for (int c = 0; c < kPerLane; ++c) o[r][c] *= corr;
      const int n_keys = min(kPrefillBN, pos - kb + 1);
      for (int j = 0; j < n_keys; ++j) {
        const float pj = __shfl_sync(0xffffffffu, p, j);
#pragma unroll
        for (int c = 0; c < kPerLane; ++c) o[r][c] += pj * vs[j * kHeadDim + c * 32 + lane];
      }
    }
  }

#pragma unroll
  for (int r = 0; r < kPrefillRowsPerWarp; ++r) {
    const int row = warp * kPrefillRowsPerWarp + r;
    if (row >= rows) break;
    T* orow = out + (static_cast<int64_t>(q_begin + tile + row) * n_q_heads + h) * kHeadDim;
    const float inv = 1.0f / lsum[r];
#pragma unroll
    for (int c = 0; c < kPerLane; ++c) orow[c * 32 + lane] = from_float<T>(o[r][c] * inv);
  }
}

// Both prefill launchers return the error of raising the kernel's shared-memory limit (nothing is
// launched then).
template <typename T, int kHeadDim>
cudaError_t launch_prefill(cudaStream_t stream, const PagedKv& kv, const PrefillAttentionArgs& a,
                           int64_t q_stride) {
  const size_t smem = prefill_smem_bytes(kHeadDim);
  auto* fn = prefill_kernel<T, kHeadDim>;
  const cudaError_t e =
      cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
  if (e != cudaSuccess) return e;
  const dim3 grid((a.max_q_len + kPrefillBM - 1) / kPrefillBM, a.n_q_heads, a.n_seqs);
  fn<<<grid, kPrefillWarps * 32, smem, stream>>>(
      static_cast<T*>(a.out), static_cast<const T*>(a.q), q_stride,
      static_cast<const T*>(kv.k_cache), static_cast<const T*>(kv.v_cache), kv.block_tables,
      kv.max_blocks_per_seq, kv.context_lens, a.cu_q_lens, kv.block_size, kv.n_kv_heads,
      a.n_q_heads, a.scale);
  return cudaSuccess;
}

// ---- prefill on tensor cores (F16 / BF16) --------------------------------------------------

// FlashAttention-2 style: one CTA of kTcWarps warps per (q head, tile of kTcBM query rows,
// sequence); each warp owns 16 query rows. K/V tiles of kTcBN cached tokens are gathered through
// the block table with cp.async into shared memory (two stages: the next tile loads while this one
// is used). S = Q·Kᵀ and O += P·V run on mma.sync m16n8k16 (F16/BF16 inputs, F32 accumulators);
// operands come from shared memory through ldmatrix (V transposed by ldmatrix.trans); P goes from
// the S accumulators to the A operand in registers. Online softmax in the exp2 domain; per-thread
// partial row sums are reduced over the quad at the end. Causal: a tile is skipped by the warps
// whose rows all precede it, and masked only where it crosses a row's position.
constexpr int kTcWarps = 4;
constexpr int kTcBM = 16 * kTcWarps;  // query rows per CTA
constexpr int kTcBN = 64;             // keys per tile
constexpr int kTcPad = 8;             // elements of padding per shared row: conflict-free ldmatrix

template <int kHeadDim>
constexpr size_t tc_smem_bytes() {
  // Q tile + two stages of (K tile, V tile), 2-byte elements.
  return size_t{2} * (kHeadDim + kTcPad) * (kTcBM + 4 * kTcBN);
}

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

template <typename T, int kHeadDim>
__global__ void __launch_bounds__(kTcWarps * 32, 2)
    prefill_tc_kernel(T* __restrict__ out, const T* __restrict__ q, int64_t q_row_stride,
                      const T* __restrict__ k_cache, const T* __restrict__ v_cache,
                      const int32_t* __restrict__ block_tables, int max_blocks_per_seq,
                      const int32_t* __restrict__ context_lens,
                      const int32_t* __restrict__ cu_q_lens, int block_size, int n_kv_heads,
                      int n_q_heads, float scale_log2) {
  constexpr int kStride = kHeadDim + kTcPad;  // elements per shared row
  constexpr int kChunks = kHeadDim / 8;       // 16-byte chunks per row
  constexpr int kKSteps = kHeadDim / 16;      // k steps of Q·Kᵀ
  constexpr int kSTiles = kTcBN / 8;          // n tiles of S
  constexpr int kOTiles = kHeadDim / 8;       // n tiles of O
  constexpr int kThreads = kTcWarps * 32;
  extern __shared__ uint4 tc_smem[];  // uint4: 16-byte aligned
  T* qs = reinterpret_cast<T*>(tc_smem);
  T* ks = qs + kTcBM * kStride;      // [2][kTcBN][kStride]
  T* vs = ks + 2 * kTcBN * kStride;  // [2][kTcBN][kStride]

  const int h = blockIdx.x, seq = blockIdx.z;
  const int q_begin = cu_q_lens[seq];
  const int q_len = cu_q_lens[seq + 1] - q_begin;
  const int tile = (gridDim.y - 1 - blockIdx.y) * kTcBM;  // longest tiles first
  if (tile >= q_len) return;
  const int prefix = context_lens[seq] - q_len;
  const int kvh = h / (n_q_heads / n_kv_heads);
  const int rows = min(kTcBM, q_len - tile);
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int kv_end = prefix + tile + rows;  // keys [0, kv_end) are visible to some row
  const int n_tiles = (kv_end + kTcBN - 1) / kTcBN;
  const int32_t* table = block_tables + static_cast<int64_t>(seq) * max_blocks_per_seq;
  const int64_t tok_stride = static_cast<int64_t>(n_kv_heads) * kHeadDim;

  for (int i = tid; i < kTcBM * kChunks; i += kThreads) {
    const int r = i / kChunks, c = (i % kChunks) * 8;
    const bool valid = r < rows;
    const T* src = q + static_cast<int64_t>(q_begin + tile + (valid ? r : 0)) * q_row_stride +
                   h * kHeadDim + c;
    cp_async16(smem_u32(qs + r * kStride + c), src, valid);
  }
  auto load_kv = [&](int j) {
    T* kd = ks + (j & 1) * kTcBN * kStride;
    T* vd = vs + (j & 1) * kTcBN * kStride;
    for (int i = tid; i < kTcBN * kChunks; i += kThreads) {
      const int r = i / kChunks, c = (i % kChunks) * 8;
      const int t = j * kTcBN + r;
      const bool valid = t < kv_end;
      int64_t off = 0;
      if (valid)
        off = (static_cast<int64_t>(table[t / block_size]) * block_size + t % block_size) *
                  tok_stride +
              kvh * kHeadDim + c;
      cp_async16(smem_u32(kd + r * kStride + c), k_cache + off, valid);
      cp_async16(smem_u32(vd + r * kStride + c), v_cache + off, valid);
    }
  };
  load_kv(0);
  cp_async_commit();

  // This thread's rows within the warp's 16: g and g + 8; its columns in a tile: 2t, 2t + 1.
  const int g = lane >> 2, t4 = lane & 3;
  const int row0 = warp * 16;
  const bool warp_active = row0 < rows;
  const int pos_lo = prefix + tile + row0;                      // the warp's first row
  const int pos_hi = prefix + tile + min(row0 + 15, rows - 1);  // its last valid row
  const int pos_g = pos_lo + g;                                 // row g (row g + 8: + 8)

  uint32_t qf[kKSteps][4];
  float o[kOTiles][4];
#pragma unroll
  for (int d = 0; d < kOTiles; ++d) o[d][0] = o[d][1] = o[d][2] = o[d][3] = 0.0f;
  float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.0f, 0.0f};

  for (int j = 0; j < n_tiles; ++j) {
    if (j + 1 < n_tiles) load_kv(j + 1);  // its stage was released by the barrier ending j - 1
    cp_async_commit();
    cp_async_wait<1>();  // everything but the newest group: Q and tile j are in
    __syncthreads();
    const int kb = j * kTcBN;
    if (j == 0 && warp_active) load_q_fragments<T, kKSteps>(qf, qs, kStride, row0, lane);
    if (warp_active && kb <= pos_hi) {
      const T* kt = ks + (j & 1) * kTcBN * kStride;
      const T* vt = vs + (j & 1) * kTcBN * kStride;
      float s[kSTiles][4];
#pragma unroll
      for (int n = 0; n < kSTiles; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
#pragma unroll
      for (int n = 0; n < kSTiles; n += 2)
        mma_qk16<T, kKSteps>(s[n], s[n + 1], qf, kt + n * 8 * kStride, kStride, lane);
      // Scale into the exp2 domain, mask the future (only tiles crossing the diagonal), row max.
      const bool masked = kb + kTcBN - 1 > pos_lo;
      float mx[2] = {m_run[0], m_run[1]};
#pragma unroll
      for (int n = 0; n < kSTiles; ++n) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          float v = s[n][e] * scale_log2;
          if (masked && kb + n * 8 + 2 * t4 + (e & 1) > pos_g + (e >> 1) * 8) v = -INFINITY;
          s[n][e] = v;
          mx[e >> 1] = fmaxf(mx[e >> 1], v);
        }
      }
      online_softmax<kSTiles, kOTiles>(s, mx, m_run, l_run, o);
      // O += P·V: the S accumulators of key tiles 2kk and 2kk + 1 are the A fragment of keys
      // 16kk .. 16kk + 15.
#pragma unroll
      for (int kk = 0; kk < kTcBN / 16; ++kk)
        mma_pv16<T, kOTiles>(o, s[2 * kk], s[2 * kk + 1], vt + kk * 16 * kStride, kStride, lane);
    }
    __syncthreads();  // stage j & 1 is free for tile j + 2
  }
  if (!warp_active) return;
  quad_sum(l_run);
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int row = row0 + g + r * 8;
    if (row >= rows) continue;
    const float inv = 1.0f / l_run[r];
    T* orow = out + (static_cast<int64_t>(q_begin + tile + row) * n_q_heads + h) * kHeadDim;
#pragma unroll
    for (int d = 0; d < kOTiles; ++d)
      *reinterpret_cast<uint32_t*>(orow + d * 8 + 2 * t4) =
          pack2<T>(o[d][2 * r] * inv, o[d][2 * r + 1] * inv);
  }
}

template <typename T, int kHeadDim>
cudaError_t launch_prefill_tc(cudaStream_t stream, const PagedKv& kv, const PrefillAttentionArgs& a,
                              int64_t q_stride) {
  constexpr size_t smem = tc_smem_bytes<kHeadDim>();
  auto* fn = prefill_tc_kernel<T, kHeadDim>;
  const cudaError_t e =
      cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
  if (e != cudaSuccess) return e;
  const dim3 grid(a.n_q_heads, (a.max_q_len + kTcBM - 1) / kTcBM, a.n_seqs);
  fn<<<grid, kTcWarps * 32, smem, stream>>>(
      static_cast<T*>(a.out), static_cast<const T*>(a.q), q_stride,
      static_cast<const T*>(kv.k_cache), static_cast<const T*>(kv.v_cache), kv.block_tables,
      kv.max_blocks_per_seq, kv.context_lens, a.cu_q_lens, kv.block_size, kv.n_kv_heads,
      a.n_q_heads, a.scale * 1.4426950408889634f);
  return cudaSuccess;
}

// ---- decode on tensor cores (F16 / BF16) ---------------------------------------------------

// Flash-decoding with the q heads of one kv head as the rows of an MMA tile: one CTA of kWarps
// warps per (kv head, sequence, partition). The group's q heads (up to 16; rows past the group
// are zero) are the A operand of mma.sync m16n8k16; K/V tiles of 16 kWarps tokens are gathered
// through the block table with cp.async into shared memory, kStages deep (the next kStages - 1
// tiles load while this one is used). Each warp takes 16 tokens of every tile and keeps its own
// online softmax (exp2 domain) and output; the warps are combined through shared memory at the end.
// The partition's result goes to `out` (one partition) or to the workspace in the SIMT kernel's
// format (natural-log max, sum, normalised output), so decode_reduce_kernel combines either.
// The default shape (kDtDefaultWarps, kDtDefaultStages) and the others DecodeAttentionArgs can
// ask for are instantiated below; shared memory above 48 KB is enabled for each once, before the
// first launch (prepare_decode_tc_all, also outside any graph capture through the backend).
constexpr int kDtMaxGroup = 16;  // q heads per kv head the 16 MMA rows hold
constexpr int kDtDefaultWarps = 2, kDtDefaultStages = 2;

template <int kHeadDim, int kWarps, int kStages>
constexpr size_t dt_stage_bytes() {  // kStages stages of K and V tiles
  return size_t{kStages} * 2 * (16 * kWarps) * (kHeadDim + kTcPad) * 2;
}
template <int kHeadDim, int kWarps, int kStages>
constexpr size_t dt_smem_bytes() {  // + the Q tile
  return dt_stage_bytes<kHeadDim, kWarps, kStages>() + size_t{16} * (kHeadDim + kTcPad) * 2;
}

template <typename T, int kHeadDim, int kWarps, int kStages>
__global__ void __launch_bounds__(kWarps * 32)
    decode_tc_kernel(T* __restrict__ out, const T* __restrict__ q, int64_t q_row_stride,
                     const T* __restrict__ k_cache, const T* __restrict__ v_cache,
                     const int32_t* __restrict__ block_tables, int max_blocks_per_seq,
                     const int32_t* __restrict__ context_lens, int block_size, int n_kv_heads,
                     int n_q_heads, float scale_log2, int part_tokens, int n_parts,
                     float* __restrict__ part_out, float* __restrict__ part_ml) {
  constexpr int kStride = kHeadDim + kTcPad;  // elements per shared row
  constexpr int kChunks = kHeadDim / 8;       // 16-byte chunks per row
  constexpr int kKSteps = kHeadDim / 16;      // k steps of Q·Kᵀ
  constexpr int kOTiles = kHeadDim / 8;       // n tiles of O
  constexpr int kThreads = kWarps * 32;
  constexpr int kBN = 16 * kWarps;  // tokens per tile
  constexpr int kP = kDecodePartitionTokens;
  static_assert(
      sizeof(float) * kWarps * 16 * kHeadDim <= dt_stage_bytes<kHeadDim, kWarps, kStages>(),
      "the warps' outputs are combined in the stage buffers");
  extern __shared__ uint4 dt_smem[];  // uint4: 16-byte aligned
  uint8_t* stage_raw = reinterpret_cast<uint8_t*>(dt_smem);
  T* ks = reinterpret_cast<T*>(stage_raw);  // [kStages][kBN][kStride]
  T* vs = ks + kStages * kBN * kStride;     // [kStages][kBN][kStride]
  T* qs = vs + kStages * kBN * kStride;     // [16][kStride]
  __shared__ int32_t blocks[kP + 1];
  __shared__ float red_m[kWarps][16], red_l[kWarps][16];

  pdl_trigger();
  pdl_wait();
  const int kvh = blockIdx.x, seq = blockIdx.y, part = blockIdx.z;
  const int group = n_q_heads / n_kv_heads, h0 = kvh * group;
  const int ctx = context_lens[seq];
  const int p_start = part * part_tokens;
  const int p_end = min(ctx, p_start + part_tokens);
  const int n_tok = p_end - p_start;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  if (n_tok <= 0) {  // sequence shorter than this partition (or empty)
    if (n_parts == 1) {
      for (int i = tid; i < group * kHeadDim; i += kThreads)
        out[(static_cast<int64_t>(seq) * n_q_heads + h0) * kHeadDim + i] = from_float<T>(0.0f);
    } else if (tid < group) {
      const int64_t r = (static_cast<int64_t>(seq) * n_q_heads + h0 + tid) * n_parts + part;
      part_ml[2 * r] = -FLT_MAX;
      part_ml[2 * r + 1] = 0.0f;
    }
    return;
  }

  for (int i = tid; i < 16 * kChunks; i += kThreads) {
    const int r = i / kChunks, c = (i % kChunks) * 8;
    const bool valid = r < group;
    cp_async16(smem_u32(qs + r * kStride + c),
               q + seq * q_row_stride + (h0 + (valid ? r : 0)) * kHeadDim + c, valid);
  }
  const int32_t* table = block_tables + static_cast<int64_t>(seq) * max_blocks_per_seq;
  const int b_first = p_start / block_size;
  for (int i = tid; i <= (p_end - 1) / block_size - b_first; i += kThreads)
    blocks[i] = table[b_first + i];
  __syncthreads();

  const int64_t tok_stride = static_cast<int64_t>(n_kv_heads) * kHeadDim;
  const int n_tiles = (n_tok + kBN - 1) / kBN;
  auto load_kv = [&](int j) {
    T* kd = ks + (j % kStages) * kBN * kStride;
    T* vd = vs + (j % kStages) * kBN * kStride;
    for (int i = tid; i < kBN * kChunks; i += kThreads) {
      const int r = i / kChunks, c = (i % kChunks) * 8;
      const int t = p_start + j * kBN + r;
      const bool valid = t < p_end;
      int64_t off = 0;
      if (valid)
        off =
            (static_cast<int64_t>(blocks[t / block_size - b_first]) * block_size + t % block_size) *
                tok_stride +
            kvh * kHeadDim + c;
      cp_async16(smem_u32(kd + r * kStride + c), k_cache + off, valid);
      cp_async16(smem_u32(vd + r * kStride + c), v_cache + off, valid);
    }
  };
  // Tiles 0 .. kStages - 2 in flight (one commit group each; Q is in the first).
#pragma unroll
  for (int j = 0; j < kStages - 1; ++j) {
    if (j < n_tiles) load_kv(j);
    cp_async_commit();
  }

  // This thread's rows: g and g + 8; its columns of an n tile: 2 t4, 2 t4 + 1.
  const int g = lane >> 2, t4 = lane & 3;
  uint32_t qf[kKSteps][4];
  float o[kOTiles][4];
#pragma unroll
  for (int d = 0; d < kOTiles; ++d) o[d][0] = o[d][1] = o[d][2] = o[d][3] = 0.0f;
  float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.0f, 0.0f};

  for (int j = 0; j < n_tiles; ++j) {
    // Its stage was released by the barrier ending iteration j - 1.
    if (j + kStages - 1 < n_tiles) load_kv(j + kStages - 1);
    cp_async_commit();
    cp_async_wait<kStages - 1>();  // all but the newest kStages - 1 groups: Q and tile j are in
    __syncthreads();
    if (j == 0) load_q_fragments<T, kKSteps>(qf, qs, kStride, 0, lane);
    const int kb = p_start + j * kBN + warp * 16;  // this warp's first token
    if (kb < p_end) {
      const T* kt = ks + (j % kStages) * kBN * kStride + warp * 16 * kStride;
      const T* vt = vs + (j % kStages) * kBN * kStride + warp * 16 * kStride;
      float s[2][4] = {};
      mma_qk16<T, kKSteps>(s[0], s[1], qf, kt, kStride, lane);
      float mx[2] = {m_run[0], m_run[1]};
#pragma unroll
      for (int n = 0; n < 2; ++n) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          float v = s[n][e] * scale_log2;
          if (kb + n * 8 + 2 * t4 + (e & 1) >= p_end) v = -INFINITY;
          s[n][e] = v;
          mx[e >> 1] = fmaxf(mx[e >> 1], v);
        }
      }
      online_softmax<2, kOTiles>(s, mx, m_run, l_run, o);
      mma_pv16<T, kOTiles>(o, s[0], s[1], vt, kStride, lane);
    }
    __syncthreads();  // stage j % kStages is free for tile j + kStages
  }
  cp_async_wait<0>();  // nothing may still land in the stage buffers reused below

  // Combine the warps: each row's max over the warps, then the rescaled sums and outputs.
  quad_sum(l_run);
  if (t4 == 0) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      red_m[warp][g + 8 * r] = m_run[r];
      red_l[warp][g + 8 * r] = l_run[r];
    }
  }
  float* red_o = reinterpret_cast<float*>(stage_raw);  // [kWarps][16][kHeadDim]
#pragma unroll
  for (int d = 0; d < kOTiles; ++d)
#pragma unroll
    for (int e = 0; e < 4; ++e)
      red_o[(warp * 16 + g + 8 * (e >> 1)) * kHeadDim + d * 8 + 2 * t4 + (e & 1)] = o[d][e];
  __syncthreads();
  constexpr float kLn2 = 0.69314718055994531f;
  for (int i = tid; i < group * kHeadDim; i += kThreads) {
    const int row = i / kHeadDim, d = i % kHeadDim;
    float m = -INFINITY;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) m = fmaxf(m, red_m[w][row]);
    float l = 0.0f, acc = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) {
      const float f = red_m[w][row] == -INFINITY ? 0.0f : exp2f(red_m[w][row] - m);
      l += red_l[w][row] * f;
      acc += red_o[(w * 16 + row) * kHeadDim + d] * f;
    }
    const float v = acc / l;
    if (n_parts == 1) {
      out[(static_cast<int64_t>(seq) * n_q_heads + h0 + row) * kHeadDim + d] = from_float<T>(v);
    } else {
      const int64_t r = (static_cast<int64_t>(seq) * n_q_heads + h0 + row) * n_parts + part;
      part_out[r * kHeadDim + d] = v;
      if (d == 0) {
        part_ml[2 * r] = m * kLn2;  // natural-log domain, as decode_reduce_kernel reads it
        part_ml[2 * r + 1] = l;
      }
    }
  }
}

// Every (dtype, head_dim, warps, stages) the launcher below can pick, with its shared memory
// raised above the 48 KB default before the first launch.
template <typename T, int kHeadDim, int kWarps, int kStages>
void prepare_decode_tc_one(cudaError_t& e) {
  const cudaError_t r = cudaFuncSetAttribute(
      decode_tc_kernel<T, kHeadDim, kWarps, kStages>, cudaFuncAttributeMaxDynamicSharedMemorySize,
      static_cast<int>(dt_smem_bytes<kHeadDim, kWarps, kStages>()));
  if (e == cudaSuccess) e = r;
}
template <typename T, int kHeadDim>
void prepare_decode_tc_shapes(cudaError_t& e) {
  prepare_decode_tc_one<T, kHeadDim, 2, 2>(e);
  prepare_decode_tc_one<T, kHeadDim, 2, 3>(e);
  prepare_decode_tc_one<T, kHeadDim, 2, 4>(e);
  prepare_decode_tc_one<T, kHeadDim, 4, 2>(e);
  prepare_decode_tc_one<T, kHeadDim, 4, 3>(e);
}
// Function attributes belong to the device the call is made on: once per device.
cudaError_t prepare_decode_tc_all() {
  int device = 0;
  if (const cudaError_t e = cudaGetDevice(&device); e != cudaSuccess) return e;
  static std::mutex mu;
  static std::map<int, cudaError_t> done;
  std::lock_guard<std::mutex> lock(mu);
  if (auto it = done.find(device); it != done.end()) return it->second;
  cudaError_t e = cudaSuccess;
  prepare_decode_tc_shapes<__nv_bfloat16, 64>(e);
  prepare_decode_tc_shapes<__nv_bfloat16, 128>(e);
  prepare_decode_tc_shapes<__half, 64>(e);
  prepare_decode_tc_shapes<__half, 128>(e);
  done.emplace(device, e);
  return e;
}

template <typename T, int kHeadDim, int kWarps, int kStages>
void launch_decode_tc_shape(cudaStream_t stream, const PagedKv& kv, const DecodeAttentionArgs& a,
                            int64_t q_stride, int part_tokens, int n_parts, float* part_out,
                            float* part_ml) {
  const dim3 grid(kv.n_kv_heads, a.n_seqs, n_parts);
  launch_kernel(a.pdl, decode_tc_kernel<T, kHeadDim, kWarps, kStages>, grid, dim3(kWarps * 32),
                dt_smem_bytes<kHeadDim, kWarps, kStages>(), stream, static_cast<T*>(a.out),
                static_cast<const T*>(a.q), q_stride, static_cast<const T*>(kv.k_cache),
                static_cast<const T*>(kv.v_cache), kv.block_tables, kv.max_blocks_per_seq,
                kv.context_lens, kv.block_size, kv.n_kv_heads, a.n_q_heads,
                a.scale * 1.4426950408889634f, part_tokens, n_parts, part_out, part_ml);
}

// (warps, stages) as DecodeAttentionArgs::tc_warps / tc_stages; anything else: the default.
template <typename T, int kHeadDim>
void launch_decode_tc(cudaStream_t stream, const PagedKv& kv, const DecodeAttentionArgs& a,
                      int64_t q_stride, int part_tokens, int n_parts, float* part_out,
                      float* part_ml, int warps, int stages) {
  auto* launch = launch_decode_tc_shape<T, kHeadDim, kDtDefaultWarps, kDtDefaultStages>;
  if (warps == 2 && stages == 2) launch = launch_decode_tc_shape<T, kHeadDim, 2, 2>;
  if (warps == 2 && stages == 3) launch = launch_decode_tc_shape<T, kHeadDim, 2, 3>;
  if (warps == 2 && stages == 4) launch = launch_decode_tc_shape<T, kHeadDim, 2, 4>;
  if (warps == 4 && stages == 2) launch = launch_decode_tc_shape<T, kHeadDim, 4, 2>;
  if (warps == 4 && stages == 3) launch = launch_decode_tc_shape<T, kHeadDim, 4, 3>;
  launch(stream, kv, a, q_stride, part_tokens, n_parts, part_out, part_ml);
  launch_decode_reduce<T>(stream, kv, a, part_tokens, n_parts, part_out, part_ml);
}

// ---- any other head_dim (even, up to 256) ---------------------------------------------------

constexpr int kGenericWarps = 4;
constexpr int kGenericMaxPerLane = 8;  // head_dim <= 256

// Correctness path for head sizes the tuned kernels are not built for (tiny test models, 80, 96,
// ...): one warp per (query row, q head) walks the keys one at a time with an online softmax;
// lane j owns dimensions j, j + 32, ... `cu_q_lens == nullptr` means one query per sequence at
// row `seq` (decode).
template <typename T>
__global__ void __launch_bounds__(kGenericWarps * 32)
    generic_attention_kernel(T* __restrict__ out, const T* __restrict__ q, int64_t q_row_stride,
                             const T* __restrict__ k_cache, const T* __restrict__ v_cache,
                             const int32_t* __restrict__ block_tables, int max_blocks_per_seq,
                             const int32_t* __restrict__ context_lens,
                             const int32_t* __restrict__ cu_q_lens, int block_size, int n_kv_heads,
                             int n_q_heads, int head_dim, float scale) {
  const int seq = blockIdx.z, h = blockIdx.y;
  const int i = blockIdx.x * kGenericWarps + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  int q_begin = seq, q_len = 1;
  if (cu_q_lens != nullptr) {
    q_begin = cu_q_lens[seq];
    q_len = cu_q_lens[seq + 1] - q_begin;
  }
  if (i >= q_len) return;
  const int pos = context_lens[seq] - q_len + i;
  const int kvh = h / (n_q_heads / n_kv_heads);
  const T* qr = q + static_cast<int64_t>(q_begin + i) * q_row_stride + h * head_dim;
  float qv[kGenericMaxPerLane], o[kGenericMaxPerLane];
#pragma unroll
  for (int j = 0; j < kGenericMaxPerLane; ++j) {
    const int d = lane + 32 * j;
    qv[j] = d < head_dim ? to_float(qr[d]) * scale : 0.0f;
    o[j] = 0.0f;
  }
  float m = -FLT_MAX, l = 0.0f;
  const int32_t* table = block_tables + static_cast<int64_t>(seq) * max_blocks_per_seq;
  const int64_t tok_stride = static_cast<int64_t>(n_kv_heads) * head_dim;
  for (int t = 0; t <= pos; ++t) {
    const int64_t off =
        (static_cast<int64_t>(table[t / block_size]) * block_size + t % block_size) * tok_stride +
        kvh * head_dim;
    float s = 0.0f;
#pragma unroll
    for (int j = 0; j < kGenericMaxPerLane; ++j) {
      const int d = lane + 32 * j;
      if (d < head_dim) s += qv[j] * to_float(k_cache[off + d]);
    }
#pragma unroll
    for (int o2 = 16; o2 > 0; o2 >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o2);
    const float m_new = fmaxf(m, s);
    const float corr = __expf(m - m_new), p = __expf(s - m_new);
    l = l * corr + p;
#pragma unroll
    for (int j = 0; j < kGenericMaxPerLane; ++j) {
      const int d = lane + 32 * j;
      if (d < head_dim) o[j] = o[j] * corr + p * to_float(v_cache[off + d]);
    }
    m = m_new;
  }
  T* orow = out + (static_cast<int64_t>(q_begin + i) * n_q_heads + h) * head_dim;
#pragma unroll
  for (int j = 0; j < kGenericMaxPerLane; ++j) {
    const int d = lane + 32 * j;
    if (d < head_dim) orow[d] = from_float<T>(o[j] / l);
  }
}

template <typename T>
void launch_generic(cudaStream_t stream, const PagedKv& kv, T* out, const void* q, int64_t q_stride,
                    const int32_t* cu_q_lens, int n_seqs, int n_q_heads, int max_q_len,
                    float scale) {
  const dim3 grid((max_q_len + kGenericWarps - 1) / kGenericWarps, n_q_heads, n_seqs);
  generic_attention_kernel<T><<<grid, kGenericWarps * 32, 0, stream>>>(
      out, static_cast<const T*>(q), q_stride, static_cast<const T*>(kv.k_cache),
      static_cast<const T*>(kv.v_cache), kv.block_tables, kv.max_blocks_per_seq, kv.context_lens,
      cu_q_lens, kv.block_size, kv.n_kv_heads, n_q_heads, kv.head_dim, scale);
}

bool tuned_head_dim(int head_dim) {
  return head_dim == 64 || head_dim == 128;
}

Status check_common(const PagedKv& kv, model::DType dtype, int n_q_heads, int64_t q_stride) {
  if (dtype_bytes(dtype) == 0) return invalid_argument("attention: dtype must be f32, f16 or bf16");
  if (kv.head_dim <= 0 || kv.head_dim % 2 != 0 || kv.head_dim > 32 * kGenericMaxPerLane)
    return unimplemented("attention: head_dim " + std::to_string(kv.head_dim) +
                         " (even sizes up to 256; 64 and 128 have tuned kernels)");
  if (kv.n_kv_heads <= 0 || n_q_heads <= 0 || n_q_heads % kv.n_kv_heads != 0)
    return invalid_argument("attention: n_q_heads must be a positive multiple of n_kv_heads");
  if (kv.block_size <= 0 || kv.max_blocks_per_seq <= 0)
    return invalid_argument("attention: bad block table shape");
  if (q_stride < static_cast<int64_t>(n_q_heads) * kv.head_dim ||
      q_stride % static_cast<int64_t>(16 / dtype_bytes(dtype)) != 0)
    return invalid_argument("attention: q row stride too small or not 16-byte aligned");
  if (kv.k_cache == nullptr || kv.v_cache == nullptr || kv.block_tables == nullptr ||
      kv.context_lens == nullptr)
    return invalid_argument("attention: null cache pointer");
  return Status::ok();
}

// (kv head, sequence, partition) items a decode call aims for before it stops shortening the
// partitions: one tensor-core CTA each, ~4 per SM of an H100 (five fit). Measured on the H100
// (CudaAttentionBench): longer partitions win once this many run (64 x 515..640 tokens: 71-79 µs
// at 512 tokens vs 75-87 µs at 128; 1 x 32,768: 71 vs 93 µs at 256).
constexpr int64_t kDecodeTargetCtas = 512;

int decode_parts(int part_tokens, int max_context_len) {
  return std::max(1, (max_context_len + part_tokens - 1) / part_tokens);
}

size_t workspace_rows_bytes(int64_t rows, int head_dim) {
  return static_cast<size_t>(rows) * (static_cast<size_t>(head_dim) + 2) * sizeof(float);
}

}  // namespace

Status prepare_decode_attention() {
  return check(prepare_decode_tc_all(), "decode attention shared memory attribute");
}

int decode_partition_tokens(int n_seqs, int n_kv_heads, int max_context_len) {
  int p = kDecodePartitionTokens;
  while (p > kDecodeMinPartitionTokens &&
         int64_t{n_seqs} * n_kv_heads * decode_parts(p, max_context_len) < kDecodeTargetCtas)
    p /= 2;
  return p;
}

size_t decode_attention_workspace_bytes(int n_seqs, int n_q_heads, int n_kv_heads, int head_dim,
                                        int max_context_len, int part_tokens) {
  if (part_tokens <= 0) part_tokens = decode_partition_tokens(n_seqs, n_kv_heads, max_context_len);
  const int parts = decode_parts(part_tokens, max_context_len);
  if (parts == 1) return 0;
  return workspace_rows_bytes(int64_t{n_seqs} * n_q_heads * parts, head_dim);
}

size_t decode_attention_workspace_bound(int max_seqs, int n_q_heads, int n_kv_heads, int head_dim,
                                        int max_context) {
  // With the longest partitions the rows grow with both arguments; with shorter ones the
  // partition rule keeps the (kv head, sequence, partition) items below twice the target (halving
  // the partition at most doubles the count of partitions, and it is halved only while the count
  // is below the target), each of them n_q_heads / n_kv_heads rows.
  const int64_t group = (n_q_heads + n_kv_heads - 1) / std::max(n_kv_heads, 1);
  const int64_t rows =
      std::max(int64_t{max_seqs} * n_q_heads * decode_parts(kDecodePartitionTokens, max_context),
               2 * kDecodeTargetCtas * group);
  return workspace_rows_bytes(rows, head_dim);
}

Status paged_decode_attention(cudaStream_t stream, const PagedKv& kv,
                              const DecodeAttentionArgs& a) {
  const int64_t q_stride =
      a.q_row_stride != 0 ? a.q_row_stride : static_cast<int64_t>(a.n_q_heads) * kv.head_dim;
  TURBINE_RETURN_IF_ERROR(check_common(kv, a.dtype, a.n_q_heads, q_stride));
  if (a.n_seqs < 0 || a.n_seqs > 65535 || a.max_context_len < 0)
    return invalid_argument("decode attention: bad n_seqs or max_context_len");
  if (a.max_context_len > kv.max_blocks_per_seq * kv.block_size)
    return invalid_argument("decode attention: max_context_len exceeds the block table");
  if (a.n_seqs == 0) return Status::ok();
  if (!tuned_head_dim(kv.head_dim)) {
    dispatch_dtype(a.dtype, [&](auto tag) {
      using T = decltype(tag);
      launch_generic<T>(stream, kv, static_cast<T*>(a.out), a.q, q_stride, nullptr, a.n_seqs,
                        a.n_q_heads, 1, a.scale);
    });
    return check_launch("paged_decode_attention (generic)");
  }
  if (a.part_tokens < 0 || a.part_tokens > kDecodePartitionTokens)
    return invalid_argument("decode attention: part_tokens must be 0 (automatic) to " +
                            std::to_string(kDecodePartitionTokens));
  const int part_tokens = a.part_tokens > 0
                              ? a.part_tokens
                              : decode_partition_tokens(a.n_seqs, kv.n_kv_heads, a.max_context_len);
  const int n_parts = decode_parts(part_tokens, a.max_context_len);
  float* part_out = nullptr;
  float* part_ml = nullptr;
  if (n_parts > 1) {
    const size_t need = decode_attention_workspace_bytes(
        a.n_seqs, a.n_q_heads, kv.n_kv_heads, kv.head_dim, a.max_context_len, part_tokens);
    if (a.workspace == nullptr || a.workspace_bytes < need)
      return invalid_argument("decode attention: workspace smaller than " + std::to_string(need));
    part_out = static_cast<float*>(a.workspace);
    part_ml = part_out + static_cast<size_t>(a.n_seqs) * a.n_q_heads * n_parts * kv.head_dim;
  }
  const bool tc =
      a.tensor_cores && a.dtype != model::DType::kF32 && a.n_q_heads / kv.n_kv_heads <= kDtMaxGroup;
  if (tc) TURBINE_RETURN_IF_ERROR(prepare_decode_attention());
  dispatch_dtype(a.dtype, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (!std::is_same_v<T, float>) {
      if (tc) {
        if (kv.head_dim == 64)
          launch_decode_tc<T, 64>(stream, kv, a, q_stride, part_tokens, n_parts, part_out, part_ml,
                                  a.tc_warps, a.tc_stages);
        else
          launch_decode_tc<T, 128>(stream, kv, a, q_stride, part_tokens, n_parts, part_out, part_ml,
                                   a.tc_warps, a.tc_stages);
        return;
      }
    }
    if (kv.head_dim == 64) {
      launch_decode_group<T, 64>(stream, kv, a, q_stride, part_tokens, n_parts, part_out, part_ml);
    } else {
      launch_decode_group<T, 128>(stream, kv, a, q_stride, part_tokens, n_parts, part_out, part_ml);
    }
  });
  return check_launch("paged_decode_attention");
}

Status prefill_attention(cudaStream_t stream, const PagedKv& kv, const PrefillAttentionArgs& a) {
  const int64_t q_stride =
      a.q_row_stride != 0 ? a.q_row_stride : static_cast<int64_t>(a.n_q_heads) * kv.head_dim;
  TURBINE_RETURN_IF_ERROR(check_common(kv, a.dtype, a.n_q_heads, q_stride));
  if (a.n_seqs < 0 || a.n_seqs > 65535 || a.max_q_len < 0 || a.cu_q_lens == nullptr)
    return invalid_argument("prefill attention: bad n_seqs, max_q_len or cu_q_lens");
  if (a.n_seqs == 0 || a.max_q_len == 0) return Status::ok();
  if (!tuned_head_dim(kv.head_dim)) {
    dispatch_dtype(a.dtype, [&](auto tag) {
      using T = decltype(tag);
      launch_generic<T>(stream, kv, static_cast<T*>(a.out), a.q, q_stride, a.cu_q_lens, a.n_seqs,
                        a.n_q_heads, a.max_q_len, a.scale);
    });
    return check_launch("prefill_attention (generic)");
  }
  cudaError_t e = cudaSuccess;
  dispatch_dtype(a.dtype, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, float>) {  // F32 (parity tests): CUDA cores
      e = kv.head_dim == 64 ? launch_prefill<T, 64>(stream, kv, a, q_stride)
                            : launch_prefill<T, 128>(stream, kv, a, q_stride);
    } else {  // F16 / BF16: tensor cores
      e = kv.head_dim == 64 ? launch_prefill_tc<T, 64>(stream, kv, a, q_stride)
                            : launch_prefill_tc<T, 128>(stream, kv, a, q_stride);
    }
  });
  TURBINE_RETURN_IF_ERROR(check(e, "prefill smem attribute"));
  return check_launch("prefill_attention");
}

}  // namespace turbine::cuda
