// Attention over the paged KV cache: decode (one new query token per sequence) and prefill
// (a chunk of new query tokens per sequence that also attends to the cached prefix).
//
// KV cache layout, per layer, one tensor each for K and V:
//   [num_blocks][block_size][n_kv_heads][head_dim]
// A sequence's token i lives in block block_table[i / block_size] at offset i % block_size.
// The new tokens' K and V must already be in the cache (write_kv_cache) before these run.
// The cache is in the call's dtype, or E4M3 (PagedKv::fp8) for any dtype and kernel.
// GQA: q head h reads kv head h / (n_q_heads / n_kv_heads).
//
// Both functions only enqueue work on `stream`; the host never waits. head_dim 64 and 128 have
// tuned kernels (prefill in F16/BF16 on tensor cores, mma.sync m16n8k16 with F32 accumulation;
// F32 on CUDA cores); other even sizes up to 256 run a simple one-warp-per-query kernel (tiny test
// models); larger or odd sizes return kUnimplemented before anything is enqueued.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "common/status.h"
#include "model/model.h"

namespace turbine::cuda {

struct PagedKv {
  const void* k_cache = nullptr;
  const void* v_cache = nullptr;
  int block_size = 16;
  int n_kv_heads = 0;
  int head_dim = 0;
  const int32_t* block_tables = nullptr;  // device, [n_seqs][max_blocks_per_seq]
  int max_blocks_per_seq = 0;
  const int32_t* context_lens = nullptr;  // device, [n_seqs]: cached tokens incl. the new ones
  // E4M3 cache (--kv-cache-dtype fp8, issue 28): one byte per element, stored = e4m3(k /
  // k_scale) (rope_write_kv_fp8); the kernels read stored · k_scale (folded into the softmax
  // scale) and stored · v_scale (folded into the output). false: the cache is in the call's dtype.
  bool fp8 = false;
  float k_scale = 1.0f, v_scale = 1.0f;
};

// Tokens one decode block reads before its partial result goes to the reduction kernel: at most
// kDecodePartitionTokens (the context bucket unit of the backend's CUDA graphs), at least
// kDecodeMinPartitionTokens. decode_partition_tokens() picks the size from the call's shape alone
// (sequences x kv heads x the host-side context bound): long partitions when the batch fills the
// GPU, short ones for small batches so that a single sequence is still read by many blocks. The
// number of partitions a sequence actually uses is derived on the device from its context length
// (partitions past its end exit at once), so a grid sized for a CUDA graph's context bucket costs
// only what the actual context needs.
inline constexpr int kDecodePartitionTokens = 512;
inline constexpr int kDecodeMinPartitionTokens = 32;
int decode_partition_tokens(int n_seqs, int n_kv_heads, int max_context_len);

struct DecodeAttentionArgs {
  model::DType dtype = model::DType::kBF16;  // of q, out and the cache
  void* out = nullptr;                       // [n_seqs][n_q_heads][head_dim]
  const void* q = nullptr;                   // [n_seqs][q_row_stride], heads contiguous
  int64_t q_row_stride = 0;                  // elements; 0 means n_q_heads * head_dim
  int n_seqs = 0;
  int n_q_heads = 0;
  // Host-side upper bound of context_lens (the scheduler knows it); sizes the split.
  int max_context_len = 0;
  float scale = 0.0f;  // softmax scale, usually 1/sqrt(head_dim)
  // Scratch for split contexts: decode_attention_workspace_bytes(); may be null when
  // max_context_len <= kDecodePartitionTokens.
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
  bool pdl = false;  // programmatic dependent launch (launch.cuh; sm_90+ only, the caller checks)
  // Tokens per partition, 1 to kDecodePartitionTokens; 0: decode_partition_tokens() (for
  // benchmarks that compare partition sizes).
  int part_tokens = 0;
  // F16/BF16 with up to 16 q heads per kv head: the tensor-core kernel (the group's q heads as
  // the rows of an MMA tile, K/V staged by cp.async); false, or F32: the SIMT kernel.
  bool tensor_cores = true;
  // The tensor-core kernel's warps per CTA (2 or 4; 16 tokens each per tile) and cp.async stages
  // (2 to 4; built: 2x2, 2x3, 2x4, 4x2, 4x3); 0 or another pair: the default, 2 warps and 2
  // stages (the most CTAs per SM: the fastest on the H100 where it matters, CudaAttentionBench).
  // For benchmarks.
  int tc_warps = 0;
  int tc_stages = 0;
};

// Raises the tensor-core decode kernels' shared-memory limit on the current device (once per
// device; later calls return the first result). paged_decode_attention calls it itself; a backend
// calls it at start-up so that the first call never happens inside a CUDA graph capture.
Status prepare_decode_attention();

// `part_tokens` as in DecodeAttentionArgs.
size_t decode_attention_workspace_bytes(int n_seqs, int n_q_heads, int n_kv_heads, int head_dim,
                                        int max_context_len, int part_tokens = 0);
// An upper bound of decode_attention_workspace_bytes() over every n_seqs <= max_seqs and
// max_context_len <= max_context (what a backend reserves once).
size_t decode_attention_workspace_bound(int max_seqs, int n_q_heads, int n_kv_heads, int head_dim,
                                        int max_context);

Status paged_decode_attention(cudaStream_t stream, const PagedKv& kv,
                              const DecodeAttentionArgs& args);

struct PrefillAttentionArgs {
  model::DType dtype = model::DType::kBF16;
  void* out = nullptr;       // [n_tokens][n_q_heads][head_dim]
  const void* q = nullptr;   // [n_tokens][q_row_stride]
  int64_t q_row_stride = 0;  // elements; 0 means n_q_heads * head_dim
  // device, [n_seqs + 1]: the chunk's query rows of sequence s are cu_q_lens[s] .. [s + 1].
  // Query i of s sits at position context_lens[s] - q_len(s) + i and attends causally.
  const int32_t* cu_q_lens = nullptr;
  int n_seqs = 0;
  int n_q_heads = 0;
  int max_q_len = 0;  // host-side upper bound of the per-sequence query lengths
  float scale = 0.0f;
};

Status prefill_attention(cudaStream_t stream, const PagedKv& kv, const PrefillAttentionArgs& args);

}  // namespace turbine::cuda
