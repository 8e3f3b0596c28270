#include "cuda/attention_common.cuh"

#include <cfloat>
#include <map>
#include <mutex>
#include <type_traits>

namespace turbine::cuda {
namespace {

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
constexpr int kDtDefaultWarps = 2, kDtDefaultStages = 2;

template <int kHeadDim, int kWarps, int kStages>
constexpr size_t dt_stage_bytes() {  // kStages stages of K and V tiles
  return size_t{kStages} * 2 * (16 * kWarps) * (kHeadDim + kTcPad) * 2;
}
template <int kHeadDim, int kWarps, int kStages>
constexpr size_t dt_smem_bytes() {  // + the Q tile
  return dt_stage_bytes<kHeadDim, kWarps, kStages>() + size_t{16} * (kHeadDim + kTcPad) * 2;
}

// KT = uint8_t: an E4M3 cache, staged as bytes and expanded to T in shared memory
// (expand_fp8_tile); its k_scale is in scale_log2 and its v_scale multiplies the output.
template <typename T, typename KT, int kHeadDim, int kWarps, int kStages>
__global__ void __launch_bounds__(kWarps * 32)
    decode_tc_kernel(T* __restrict__ out, const T* __restrict__ q, int64_t q_row_stride,
                     const KT* __restrict__ k_cache, const KT* __restrict__ v_cache,
                     const int32_t* __restrict__ block_tables, int max_blocks_per_seq,
                     const int32_t* __restrict__ context_lens, int block_size, int n_kv_heads,
                     int n_q_heads, float scale_log2, int part_tokens, int n_parts,
                     float* __restrict__ part_out, float* __restrict__ part_ml, float v_scale) {
  constexpr bool kFp8 = std::is_same_v<KT, uint8_t>;
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
    // 16-byte pieces of a row: 8 elements of T, or 16 E4M3 bytes into the row's upper half.
    constexpr int kPieces = kFp8 ? kHeadDim / 16 : kChunks;
    constexpr int kPieceElems = kFp8 ? 16 : 8;
    for (int i = tid; i < kBN * kPieces; i += kThreads) {
      const int r = i / kPieces, c = (i % kPieces) * kPieceElems;
      const int t = p_start + j * kBN + r;
      const bool valid = t < p_end;
      int64_t off = 0;
      if (valid)
        off =
            (static_cast<int64_t>(blocks[t / block_size - b_first]) * block_size + t % block_size) *
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
    if constexpr (kFp8)
      expand_fp8_tile<T, kHeadDim, kBN, kThreads>(ks + (j % kStages) * kBN * kStride,
                                                  vs + (j % kStages) * kBN * kStride, kStride, tid);
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
    const float v = acc / l * v_scale;
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
template <typename T, typename KT, int kHeadDim, int kWarps, int kStages>
void prepare_decode_tc_kernel(cudaError_t& e) {
  const cudaError_t r =
      cudaFuncSetAttribute(decode_tc_kernel<T, KT, kHeadDim, kWarps, kStages>,
                           cudaFuncAttributeMaxDynamicSharedMemorySize,
                           static_cast<int>(dt_smem_bytes<kHeadDim, kWarps, kStages>()));
  if (e == cudaSuccess) e = r;
}
template <typename T, int kHeadDim, int kWarps, int kStages>
void prepare_decode_tc_one(cudaError_t& e) {
  prepare_decode_tc_kernel<T, T, kHeadDim, kWarps, kStages>(e);
  prepare_decode_tc_kernel<T, uint8_t, kHeadDim, kWarps, kStages>(e);  // E4M3 cache
}
template <typename T, int kHeadDim>
void prepare_decode_tc_shapes(cudaError_t& e) {
  prepare_decode_tc_one<T, kHeadDim, 2, 2>(e);
  prepare_decode_tc_one<T, kHeadDim, 2, 3>(e);
  prepare_decode_tc_one<T, kHeadDim, 2, 4>(e);
  prepare_decode_tc_one<T, kHeadDim, 4, 2>(e);
  prepare_decode_tc_one<T, kHeadDim, 4, 3>(e);
}

template <typename T, typename KT, int kHeadDim, int kWarps, int kStages>
void launch_decode_tc_shape(cudaStream_t stream, const PagedKv& kv, const DecodeAttentionArgs& a,
                            int64_t q_stride, int part_tokens, int n_parts, float* part_out,
                            float* part_ml) {
  const dim3 grid(kv.n_kv_heads, a.n_seqs, n_parts);
  const float k_scale = kv.fp8 ? kv.k_scale : 1.0f, v_scale = kv.fp8 ? kv.v_scale : 1.0f;
  launch_kernel(a.pdl, decode_tc_kernel<T, KT, kHeadDim, kWarps, kStages>, grid, dim3(kWarps * 32),
                dt_smem_bytes<kHeadDim, kWarps, kStages>(), stream, static_cast<T*>(a.out),
                static_cast<const T*>(a.q), q_stride, static_cast<const KT*>(kv.k_cache),
                static_cast<const KT*>(kv.v_cache), kv.block_tables, kv.max_blocks_per_seq,
                kv.context_lens, kv.block_size, kv.n_kv_heads, a.n_q_heads,
                a.scale * k_scale * 1.4426950408889634f, part_tokens, n_parts, part_out, part_ml,
                v_scale);
}

}  // namespace

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

// (warps, stages) as DecodeAttentionArgs::tc_warps / tc_stages; anything else: the default.
template <typename T, typename KT, int kHeadDim>
void launch_decode_tc(cudaStream_t stream, const PagedKv& kv, const DecodeAttentionArgs& a,
                      int64_t q_stride, int part_tokens, int n_parts, float* part_out,
                      float* part_ml, int warps, int stages) {
  auto* launch = launch_decode_tc_shape<T, KT, kHeadDim, kDtDefaultWarps, kDtDefaultStages>;
  if (warps == 2 && stages == 3) launch = launch_decode_tc_shape<T, KT, kHeadDim, 2, 3>;
  if (warps == 2 && stages == 4) launch = launch_decode_tc_shape<T, KT, kHeadDim, 2, 4>;
  if (warps == 4 && stages == 2) launch = launch_decode_tc_shape<T, KT, kHeadDim, 4, 2>;
  if (warps == 4 && stages == 3) launch = launch_decode_tc_shape<T, KT, kHeadDim, 4, 3>;
  launch(stream, kv, a, q_stride, part_tokens, n_parts, part_out, part_ml);
  launch_decode_reduce<T>(stream, kv, a, part_tokens, n_parts, part_out, part_ml);
}

#define TURBINE_DECODE_TC(T, KT, D)                                                               \
  template void launch_decode_tc<T, KT, D>(cudaStream_t, const PagedKv&,                          \
                                           const DecodeAttentionArgs&, int64_t, int, int, float*, \
                                           float*, int, int);
TURBINE_DECODE_TC(__half, __half, 64)
TURBINE_DECODE_TC(__half, __half, 128)
TURBINE_DECODE_TC(__nv_bfloat16, __nv_bfloat16, 64)
TURBINE_DECODE_TC(__nv_bfloat16, __nv_bfloat16, 128)
TURBINE_DECODE_TC(__half, uint8_t, 64)
TURBINE_DECODE_TC(__half, uint8_t, 128)
TURBINE_DECODE_TC(__nv_bfloat16, uint8_t, 64)
TURBINE_DECODE_TC(__nv_bfloat16, uint8_t, 128)
#undef TURBINE_DECODE_TC

}  // namespace turbine::cuda
