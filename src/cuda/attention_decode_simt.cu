#include "cuda/attention_common.cuh"

#include <cfloat>

namespace turbine::cuda {
namespace {

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
template <typename KT, int kHeadDim>
constexpr int decode_step_tokens() {
  return 32 / (kHeadDim / KvVec<KT>::kN) * kDecodeWarps * kDecodeUnroll;
}

// kOneShot: the partition fits one step (part_tokens <= decode_step_tokens), so V is loaded
// together with K (one round trip to memory instead of two). A separate instantiation: the
// prefetch registers would otherwise lower the occupancy of the long-partition kernel (96 vs 64
// registers on sm_90a, ~16% slower at 32 x 2,048 tokens).
template <typename T, typename KT, int kHeadDim, int kGroup, bool kOneShot>
__global__ void __launch_bounds__(kDecodeThreads)
    decode_kernel(T* __restrict__ out, const T* __restrict__ q, int64_t q_row_stride,
                  const KT* __restrict__ k_cache, const KT* __restrict__ v_cache,
                  const int32_t* __restrict__ block_tables, int max_blocks_per_seq,
                  const int32_t* __restrict__ context_lens, int block_size, int n_kv_heads,
                  int n_q_heads, float scale, int part_tokens, int n_parts,
                  float* __restrict__ part_out, float* __restrict__ part_ml, float v_scale) {
  using KRaw = typename KvVec<KT>::Raw;
  constexpr int kVec = KvVec<KT>::kN;
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
    const T* qg = q + seq * q_row_stride + (h0 + g) * kHeadDim + l * kVec;
    if constexpr (Vec<T>::kN == kVec) {
      unpack<T>(load16(qg), tmp);
    } else {  // an E4M3 cache with F32 queries: 8 elements per lane
#pragma unroll
      for (int j = 0; j < kVec; ++j) tmp[j] = to_float(qg[j]);
    }
#pragma unroll
    for (int j = 0; j < kVec; ++j) qv[g][j] = tmp[j] * scale;
  }
  static_assert(decode_step_tokens<KT, kHeadDim>() == kTokPerStep * kDecodeUnroll);
  KRaw vpre[kOneShot ? kDecodeUnroll : 1];
  for (int base = p_start + warp * kTokPerWarp; base < p_end; base += kTokPerStep * kDecodeUnroll) {
    KRaw raw[kDecodeUnroll];
#pragma unroll
    for (int u = 0; u < kDecodeUnroll; ++u) {
      const int t = base + u * kTokPerStep + sub;
      raw[u] = t < p_end ? kv_load(k_cache + row_offset(t)) : KRaw{};
    }
    if constexpr (kOneShot) {
#pragma unroll
      for (int u = 0; u < kDecodeUnroll; ++u) {
        const int t = base + u * kTokPerStep + sub;
        vpre[u] = t < p_end ? kv_load(v_cache + row_offset(t)) : KRaw{};
      }
    }
#pragma unroll
    for (int u = 0; u < kDecodeUnroll; ++u) {
      const int t = base + u * kTokPerStep + sub;
      float kf[kVec];
      kv_unpack<KT>(raw[u], kf);
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
    KRaw raw[kDecodeUnroll];
#pragma unroll
    for (int u = 0; u < kDecodeUnroll; ++u) {
      if constexpr (kOneShot) {
        raw[u] = vpre[u];
      } else {
        const int t = base + u * kTokPerStep + sub;
        raw[u] = t < p_end ? kv_load(v_cache + row_offset(t)) : KRaw{};
      }
    }
#pragma unroll
    for (int u = 0; u < kDecodeUnroll; ++u) {
      const int t = base + u * kTokPerStep + sub;
      if (t < p_end) {
        float vf[kVec];
        kv_unpack<KT>(raw[u], vf);
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
    s = s / stat_sum[g] * v_scale;
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

template <typename T, typename KT, int kHeadDim, int kGroup>
void launch_decode(cudaStream_t stream, const PagedKv& kv, const DecodeAttentionArgs& a,
                   int64_t q_stride, int part_tokens, int n_parts, float* part_out,
                   float* part_ml) {
  const dim3 grid(a.n_q_heads / kGroup, a.n_seqs, n_parts);
  auto* kernel = part_tokens <= decode_step_tokens<KT, kHeadDim>()
                     ? decode_kernel<T, KT, kHeadDim, kGroup, true>
                     : decode_kernel<T, KT, kHeadDim, kGroup, false>;
  // An E4M3 cache's scales: k_scale folds into the softmax scale, v_scale into the output.
  const float k_scale = kv.fp8 ? kv.k_scale : 1.0f, v_scale = kv.fp8 ? kv.v_scale : 1.0f;
  launch_kernel(a.pdl, kernel, grid, dim3(kDecodeThreads), 0, stream, static_cast<T*>(a.out),
                static_cast<const T*>(a.q), q_stride, static_cast<const KT*>(kv.k_cache),
                static_cast<const KT*>(kv.v_cache), kv.block_tables, kv.max_blocks_per_seq,
                kv.context_lens, kv.block_size, kv.n_kv_heads, a.n_q_heads, a.scale * k_scale,
                part_tokens, n_parts, part_out, part_ml, v_scale);
  launch_decode_reduce<T>(stream, kv, a, part_tokens, n_parts, part_out, part_ml);
}

}  // namespace

template <typename T, typename KT, int kHeadDim>
void launch_decode_group(cudaStream_t stream, const PagedKv& kv, const DecodeAttentionArgs& a,
                         int64_t q_stride, int part_tokens, int n_parts, float* po, float* pml) {
  const int group = a.n_q_heads / kv.n_kv_heads;
  if (group % 8 == 0) {
    launch_decode<T, KT, kHeadDim, 8>(stream, kv, a, q_stride, part_tokens, n_parts, po, pml);
  } else if (group % 4 == 0) {
    launch_decode<T, KT, kHeadDim, 4>(stream, kv, a, q_stride, part_tokens, n_parts, po, pml);
  } else if (group % 2 == 0) {
    launch_decode<T, KT, kHeadDim, 2>(stream, kv, a, q_stride, part_tokens, n_parts, po, pml);
  } else {
    launch_decode<T, KT, kHeadDim, 1>(stream, kv, a, q_stride, part_tokens, n_parts, po, pml);
  }
}

#define TURBINE_DECODE_GROUP(T, KT, D)                                                       \
  template void launch_decode_group<T, KT, D>(cudaStream_t, const PagedKv&,                  \
                                              const DecodeAttentionArgs&, int64_t, int, int, \
                                              float*, float*);
TURBINE_DECODE_GROUP(float, float, 64)
TURBINE_DECODE_GROUP(float, float, 128)
TURBINE_DECODE_GROUP(__half, __half, 64)
TURBINE_DECODE_GROUP(__half, __half, 128)
TURBINE_DECODE_GROUP(__nv_bfloat16, __nv_bfloat16, 64)
TURBINE_DECODE_GROUP(__nv_bfloat16, __nv_bfloat16, 128)
TURBINE_DECODE_GROUP(float, uint8_t, 64)
TURBINE_DECODE_GROUP(float, uint8_t, 128)
TURBINE_DECODE_GROUP(__half, uint8_t, 64)
TURBINE_DECODE_GROUP(__half, uint8_t, 128)
TURBINE_DECODE_GROUP(__nv_bfloat16, uint8_t, 64)
TURBINE_DECODE_GROUP(__nv_bfloat16, uint8_t, 128)
#undef TURBINE_DECODE_GROUP

}  // namespace turbine::cuda
