#include "cuda/attention.h"

#include <algorithm>
#include <string>
#include <type_traits>

#include "cuda/attention_common.cuh"
#include "cuda/device.h"

namespace turbine::cuda {
namespace {

bool tuned_head_dim(int head_dim) {
  return head_dim == 64 || head_dim == 128;
}

// Calls f(KT{}) with the cache's element type: T, or uint8_t for an E4M3 cache.
template <typename T, typename F>
void with_cache_type(const PagedKv& kv, F&& f) {
  if (kv.fp8) {
    f(uint8_t{});
  } else {
    f(T{});
  }
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
  if (kv.fp8 && !(kv.k_scale > 0.0f && kv.v_scale > 0.0f))
    return invalid_argument("attention: FP8 KV scales must be positive");
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
      with_cache_type<T>(kv, [&](auto kt) {
        launch_generic<T, decltype(kt)>(stream, kv, static_cast<T*>(a.out), a.q, q_stride, nullptr,
                                        a.n_seqs, a.n_q_heads, 1, a.scale);
      });
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
    with_cache_type<T>(kv, [&](auto kt) {
      using KT = decltype(kt);
      if constexpr (!std::is_same_v<T, float>) {
        if (tc) {
          if (kv.head_dim == 64)
            launch_decode_tc<T, KT, 64>(stream, kv, a, q_stride, part_tokens, n_parts, part_out,
                                        part_ml, a.tc_warps, a.tc_stages);
          else
            launch_decode_tc<T, KT, 128>(stream, kv, a, q_stride, part_tokens, n_parts, part_out,
                                         part_ml, a.tc_warps, a.tc_stages);
          return;
        }
      }
      if (kv.head_dim == 64) {
        launch_decode_group<T, KT, 64>(stream, kv, a, q_stride, part_tokens, n_parts, part_out,
                                       part_ml);
      } else {
        launch_decode_group<T, KT, 128>(stream, kv, a, q_stride, part_tokens, n_parts, part_out,
                                        part_ml);
      }
    });
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
      with_cache_type<T>(kv, [&](auto kt) {
        launch_generic<T, decltype(kt)>(stream, kv, static_cast<T*>(a.out), a.q, q_stride,
                                        a.cu_q_lens, a.n_seqs, a.n_q_heads, a.max_q_len, a.scale);
      });
    });
    return check_launch("prefill_attention (generic)");
  }
  cudaError_t e = cudaSuccess;
  dispatch_dtype(a.dtype, [&](auto tag) {
    using T = decltype(tag);
    with_cache_type<T>(kv, [&](auto kt) {
      using KT = decltype(kt);
      if constexpr (std::is_same_v<T, float>) {  // F32 (parity tests): CUDA cores
        e = kv.head_dim == 64 ? launch_prefill<T, KT, 64>(stream, kv, a, q_stride)
                              : launch_prefill<T, KT, 128>(stream, kv, a, q_stride);
      } else {  // F16 / BF16: tensor cores
        e = kv.head_dim == 64 ? launch_prefill_tc<T, KT, 64>(stream, kv, a, q_stride)
                              : launch_prefill_tc<T, KT, 128>(stream, kv, a, q_stride);
      }
    });
  });
  TURBINE_RETURN_IF_ERROR(check(e, "prefill smem attribute"));
  return check_launch("prefill_attention");
}

}  // namespace turbine::cuda
