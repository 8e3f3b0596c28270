#include "cuda/attention_common.cuh"

#include <cfloat>

namespace turbine::cuda {
namespace {

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

}  // namespace

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

template void launch_decode_reduce<float>(cudaStream_t, const PagedKv&, const DecodeAttentionArgs&,
                                          int, int, const float*, const float*);
template void launch_decode_reduce<__half>(cudaStream_t, const PagedKv&, const DecodeAttentionArgs&,
                                           int, int, const float*, const float*);
template void launch_decode_reduce<__nv_bfloat16>(cudaStream_t, const PagedKv&,
                                                  const DecodeAttentionArgs&, int, int,
                                                  const float*, const float*);

}  // namespace turbine::cuda
