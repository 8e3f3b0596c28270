// Bidirectional attention over a padding-free batch of sequences (encoder models, issue 27).
//
// The batch's tokens are packed: sequence s owns rows [seq_begin[s], seq_begin[s + 1]) of Q, K
// and V (one fused projection's output: rows `qkv_stride` elements apart, heads contiguous in
// each), and each query attends to every key of its own sequence (global layers) or to the keys
// within `half_window` positions of it (ModernBERT's local layers: |i - j| <= local_window / 2).
// No KV cache, no padding, no mask tensor: the offsets are the only per-sequence data.
//
// F16/BF16 with head_dim 64 or 128 run a FlashAttention-2 style kernel on tensor cores (mma.sync
// m16n8k16, F32 accumulation, online softmax in the exp2 domain): one CTA of 4 warps per (head,
// tile of 64 queries, sequence), K/V tiles of 64 keys staged through shared memory by cp.async,
// two stages deep; key tiles wholly outside a local layer's window are never loaded. Other head
// sizes (even, up to 256) and F32 run a one-warp-per-query kernel on CUDA cores (tiny test models
// and parity runs). Larger head sizes: kUnimplemented before anything is enqueued.
//
// Enqueues on `stream` only; the host never waits.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "common/status.h"
#include "model/model.h"

namespace turbine::cuda {

struct VarlenAttentionArgs {
  model::DType dtype = model::DType::kBF16;  // of q, k, v and out
  void* out = nullptr;                       // [n_tokens][out_stride], heads contiguous
  int64_t out_stride = 0;                    // elements; 0: n_heads * head_dim
  const void* q = nullptr;                   // [n_tokens][qkv_stride]
  const void* k = nullptr;
  const void* v = nullptr;
  int64_t qkv_stride = 0;  // elements between a token's rows
  // Optional, [3][n_heads * head_dim] in dtype: the Q, K and V projections' biases, not yet added
  // to q, k and v (BERT's QKV GEMM without a bias epilogue). Q's is added as the GEMM's epilogue
  // would (q + b rounded to dtype); on tensor cores K's is not needed at all (it adds q·b_k, the
  // same to every key of a query's row, to which softmax is invariant) and V's is added to the
  // output (each row of probabilities sums to one); the CUDA-core kernel adds all three on load.
  const void* qkv_bias = nullptr;
  const int32_t* seq_begin = nullptr;  // device, [n_seqs + 1]
  int n_seqs = 0;
  int max_seq_len = 0;  // host-side upper bound of the sequences' lengths (sizes the grid)
  int n_heads = 0;
  int head_dim = 0;
  int half_window = -1;  // < 0: global attention
  float scale = 0.0f;    // softmax scale, usually 1/sqrt(head_dim)
  // F16/BF16 with head_dim 64 or 128: the tensor-core kernel; false: the CUDA-core kernel (for
  // tests that compare the two).
  bool tensor_cores = true;
};

Status varlen_attention(cudaStream_t stream, const VarlenAttentionArgs& args);

// Whether args would run on tensor cores.
bool varlen_attention_uses_tensor_cores(const VarlenAttentionArgs& args);

}  // namespace turbine::cuda
