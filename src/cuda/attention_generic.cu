#include "cuda/attention_common.cuh"

#include <cfloat>

namespace turbine::cuda {
namespace {

// ---- any other head_dim (even, up to 256) ---------------------------------------------------

constexpr int kGenericWarps = 4;

// Correctness path for head sizes the tuned kernels are not built for (tiny test models, 80, 96,
// ...): one warp per (query row, q head) walks the keys one at a time with an online softmax;
// lane j owns dimensions j, j + 32, ... `cu_q_lens == nullptr` means one query per sequence at
// row `seq` (decode).
template <typename T, typename KT>
__global__ void __launch_bounds__(kGenericWarps * 32)
    generic_attention_kernel(T* __restrict__ out, const T* __restrict__ q, int64_t q_row_stride,
                             const KT* __restrict__ k_cache, const KT* __restrict__ v_cache,
                             const int32_t* __restrict__ block_tables, int max_blocks_per_seq,
                             const int32_t* __restrict__ context_lens,
                             const int32_t* __restrict__ cu_q_lens, int block_size, int n_kv_heads,
                             int n_q_heads, int head_dim, float scale, float v_scale) {
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
      if (d < head_dim) s += qv[j] * kv_to_float(k_cache[off + d]);
    }
#pragma unroll
    for (int o2 = 16; o2 > 0; o2 >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o2);
    const float m_new = fmaxf(m, s);
    const float corr = __expf(m - m_new), p = __expf(s - m_new);
    l = l * corr + p;
#pragma unroll
    for (int j = 0; j < kGenericMaxPerLane; ++j) {
      const int d = lane + 32 * j;
      if (d < head_dim) o[j] = o[j] * corr + p * kv_to_float(v_cache[off + d]);
    }
    m = m_new;
  }
  T* orow = out + (static_cast<int64_t>(q_begin + i) * n_q_heads + h) * head_dim;
#pragma unroll
  for (int j = 0; j < kGenericMaxPerLane; ++j) {
    const int d = lane + 32 * j;
    if (d < head_dim) orow[d] = from_float<T>(o[j] / l * v_scale);
  }
}

}  // namespace

template <typename T, typename KT>
void launch_generic(cudaStream_t stream, const PagedKv& kv, T* out, const void* q, int64_t q_stride,
                    const int32_t* cu_q_lens, int n_seqs, int n_q_heads, int max_q_len,
                    float scale) {
  const dim3 grid((max_q_len + kGenericWarps - 1) / kGenericWarps, n_q_heads, n_seqs);
  // An E4M3 cache's scales: k_scale folds into the softmax scale, v_scale into the output.
  const float k_scale = kv.fp8 ? kv.k_scale : 1.0f, v_scale = kv.fp8 ? kv.v_scale : 1.0f;
  generic_attention_kernel<T, KT><<<grid, kGenericWarps * 32, 0, stream>>>(
      out, static_cast<const T*>(q), q_stride, static_cast<const KT*>(kv.k_cache),
      static_cast<const KT*>(kv.v_cache), kv.block_tables, kv.max_blocks_per_seq, kv.context_lens,
      cu_q_lens, kv.block_size, kv.n_kv_heads, n_q_heads, kv.head_dim, scale * k_scale, v_scale);
}

#define TURBINE_GENERIC(T, KT)                                                                \
  template void launch_generic<T, KT>(cudaStream_t, const PagedKv&, T*, const void*, int64_t, \
                                      const int32_t*, int, int, int, float);
TURBINE_GENERIC(float, float)
TURBINE_GENERIC(__half, __half)
TURBINE_GENERIC(__nv_bfloat16, __nv_bfloat16)
TURBINE_GENERIC(float, uint8_t)
TURBINE_GENERIC(__half, uint8_t)
TURBINE_GENERIC(__nv_bfloat16, uint8_t)
#undef TURBINE_GENERIC

}  // namespace turbine::cuda
