#include "cuda/attention_common.cuh"

#include <cfloat>

namespace turbine::cuda {
namespace {

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
template <typename T, typename KT, int kHeadDim>
__global__ void __launch_bounds__(kPrefillWarps * 32)
    prefill_kernel(T* __restrict__ out, const T* __restrict__ q, int64_t q_row_stride,
                   const KT* __restrict__ k_cache, const KT* __restrict__ v_cache,
                   const int32_t* __restrict__ block_tables, int max_blocks_per_seq,
                   const int32_t* __restrict__ context_lens, const int32_t* __restrict__ cu_q_lens,
                   int block_size, int n_kv_heads, int n_q_heads, float scale, float v_scale) {
  constexpr int kVec = Vec<T>::kN;
  constexpr int kKvVec = KvVec<KT>::kN;  // cache elements per vector load
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
    for (int i = threadIdx.x; i < kPrefillBN * (kHeadDim / kKvVec); i += blockDim.x) {
      const int r = i / (kHeadDim / kKvVec), c = (i % (kHeadDim / kKvVec)) * kKvVec;
      const int t = kb + r;
      float kf[kKvVec], vf[kKvVec];
      if (t < kv_end) {
        const int64_t off =
            (static_cast<int64_t>(table[t / block_size]) * block_size + t % block_size) *
                tok_stride +
            kvh * kHeadDim + c;
        kv_unpack<KT>(kv_load(k_cache + off), kf);
        kv_unpack<KT>(kv_load(v_cache + off), vf);
      } else {
#pragma unroll
        for (int j = 0; j < kKvVec; ++j) kf[j] = vf[j] = 0.0f;
      }
#pragma unroll
      for (int j = 0; j < kKvVec; ++j) {
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
    const float inv = 1.0f / lsum[r] * v_scale;
#pragma unroll
    for (int c = 0; c < kPerLane; ++c) orow[c * 32 + lane] = from_float<T>(o[r][c] * inv);
  }
}

}  // namespace

template <typename T, typename KT, int kHeadDim>
cudaError_t launch_prefill(cudaStream_t stream, const PagedKv& kv, const PrefillAttentionArgs& a,
                           int64_t q_stride) {
  const size_t smem = prefill_smem_bytes(kHeadDim);
  auto* fn = prefill_kernel<T, KT, kHeadDim>;
  const cudaError_t e =
      cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
  if (e != cudaSuccess) return e;
  const dim3 grid((a.max_q_len + kPrefillBM - 1) / kPrefillBM, a.n_q_heads, a.n_seqs);
  const float k_scale = kv.fp8 ? kv.k_scale : 1.0f, v_scale = kv.fp8 ? kv.v_scale : 1.0f;
  fn<<<grid, kPrefillWarps * 32, smem, stream>>>(
      static_cast<T*>(a.out), static_cast<const T*>(a.q), q_stride,
      static_cast<const KT*>(kv.k_cache), static_cast<const KT*>(kv.v_cache), kv.block_tables,
      kv.max_blocks_per_seq, kv.context_lens, a.cu_q_lens, kv.block_size, kv.n_kv_heads,
      a.n_q_heads, a.scale * k_scale, v_scale);
  return cudaSuccess;
}

template cudaError_t launch_prefill<float, float, 64>(cudaStream_t, const PagedKv&,
                                                      const PrefillAttentionArgs&, int64_t);
template cudaError_t launch_prefill<float, float, 128>(cudaStream_t, const PagedKv&,
                                                       const PrefillAttentionArgs&, int64_t);
template cudaError_t launch_prefill<float, uint8_t, 64>(cudaStream_t, const PagedKv&,
                                                        const PrefillAttentionArgs&, int64_t);
template cudaError_t launch_prefill<float, uint8_t, 128>(cudaStream_t, const PagedKv&,
                                                         const PrefillAttentionArgs&, int64_t);

}  // namespace turbine::cuda
