#include "cuda/attention_common.cuh"

#include <type_traits>

namespace turbine::cuda {
namespace {

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

template <int kHeadDim>
constexpr size_t tc_smem_bytes() {
  // Q tile + two stages of (K tile, V tile), 2-byte elements.
  return size_t{2} * (kHeadDim + kTcPad) * (kTcBM + 4 * kTcBN);
}

// KT = uint8_t: an E4M3 cache, staged as bytes and expanded to T in shared memory
// (expand_fp8_tile); its k_scale is in scale_log2 and its v_scale multiplies the output.
template <typename T, typename KT, int kHeadDim>
__global__ void __launch_bounds__(kTcWarps * 32, 2)
    prefill_tc_kernel(T* __restrict__ out, const T* __restrict__ q, int64_t q_row_stride,
                      const KT* __restrict__ k_cache, const KT* __restrict__ v_cache,
                      const int32_t* __restrict__ block_tables, int max_blocks_per_seq,
                      const int32_t* __restrict__ context_lens,
                      const int32_t* __restrict__ cu_q_lens, int block_size, int n_kv_heads,
                      int n_q_heads, float scale_log2, float v_scale) {
  constexpr bool kFp8 = std::is_same_v<KT, uint8_t>;
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
    // 16-byte pieces of a row: 8 elements of T, or 16 E4M3 bytes into the row's upper half.
    constexpr int kPieces = kFp8 ? kHeadDim / 16 : kChunks;
    constexpr int kPieceElems = kFp8 ? 16 : 8;
    for (int i = tid; i < kTcBN * kPieces; i += kThreads) {
      const int r = i / kPieces, c = (i % kPieces) * kPieceElems;
      const int t = j * kTcBN + r;
      const bool valid = t < kv_end;
      int64_t off = 0;
      if (valid)
        off = (static_cast<int64_t>(table[t / block_size]) * block_size + t % block_size) *
                  tok_stride +
              kvh * kHeadDim + c;
      uint32_t kdst = smem_u32(kd + r * kStride), vdst = smem_u32(vd + r * kStride);
      if constexpr (kFp8) {
        kdst += fp8_stage_offset<kHeadDim>() + c;
        vdst += fp8_stage_offset<kHeadDim>() + c;
      } else {
        kdst += c * sizeof(T);
        vdst += c * sizeof(T);
      }
      cp_async16(kdst, k_cache + off, valid);
      cp_async16(vdst, v_cache + off, valid);
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
    if constexpr (kFp8)
      expand_fp8_tile<T, kHeadDim, kTcBN, kThreads>(ks + (j & 1) * kTcBN * kStride,
                                                    vs + (j & 1) * kTcBN * kStride, kStride, tid);
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
    const float inv = 1.0f / l_run[r] * v_scale;
    T* orow = out + (static_cast<int64_t>(q_begin + tile + row) * n_q_heads + h) * kHeadDim;
#pragma unroll
    for (int d = 0; d < kOTiles; ++d)
      *reinterpret_cast<uint32_t*>(orow + d * 8 + 2 * t4) =
          pack2<T>(o[d][2 * r] * inv, o[d][2 * r + 1] * inv);
  }
}

}  // namespace

template <typename T, typename KT, int kHeadDim>
cudaError_t launch_prefill_tc(cudaStream_t stream, const PagedKv& kv, const PrefillAttentionArgs& a,
                              int64_t q_stride) {
  constexpr size_t smem = tc_smem_bytes<kHeadDim>();
  auto* fn = prefill_tc_kernel<T, KT, kHeadDim>;
  const cudaError_t e =
      cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
  if (e != cudaSuccess) return e;
  const dim3 grid(a.n_q_heads, (a.max_q_len + kTcBM - 1) / kTcBM, a.n_seqs);
  const float k_scale = kv.fp8 ? kv.k_scale : 1.0f, v_scale = kv.fp8 ? kv.v_scale : 1.0f;
  fn<<<grid, kTcWarps * 32, smem, stream>>>(
      static_cast<T*>(a.out), static_cast<const T*>(a.q), q_stride,
      static_cast<const KT*>(kv.k_cache), static_cast<const KT*>(kv.v_cache), kv.block_tables,
      kv.max_blocks_per_seq, kv.context_lens, a.cu_q_lens, kv.block_size, kv.n_kv_heads,
      a.n_q_heads, a.scale * k_scale * 1.4426950408889634f, v_scale);
  return cudaSuccess;
}

#define TURBINE_PREFILL_TC(T, KT, D)                                             \
  template cudaError_t launch_prefill_tc<T, KT, D>(cudaStream_t, const PagedKv&, \
                                                   const PrefillAttentionArgs&, int64_t);
TURBINE_PREFILL_TC(__half, __half, 64)
TURBINE_PREFILL_TC(__half, __half, 128)
TURBINE_PREFILL_TC(__nv_bfloat16, __nv_bfloat16, 64)
TURBINE_PREFILL_TC(__nv_bfloat16, __nv_bfloat16, 128)
TURBINE_PREFILL_TC(__half, uint8_t, 64)
TURBINE_PREFILL_TC(__half, uint8_t, 128)
TURBINE_PREFILL_TC(__nv_bfloat16, uint8_t, 64)
TURBINE_PREFILL_TC(__nv_bfloat16, uint8_t, 128)
#undef TURBINE_PREFILL_TC

}  // namespace turbine::cuda
