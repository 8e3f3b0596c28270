// The encoder forward pass's element-wise and row-wise kernels (issue 27), fused where one pass
// over the activations can do two steps: embeddings + LayerNorm, residual + bias + LayerNorm,
// bias + activation, GeGLU, Q/K/V bias + RoPE, pooling.
//
// Activations are F32, F16 or BF16 (`dtype`, the same for every tensor argument of one call,
// row-major, `dim`/`width` elements per row unless a stride is given); LayerNorm weights and
// biases are F32 device arrays; reductions and activations run in F32. Every function enqueues on
// `stream` and returns at once; a non-ok Status means an argument was refused (nothing enqueued)
// or the launch failed.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "common/status.h"
#include "model/model.h"

namespace turbine::cuda {

// encoder::Activation's values (kept apart so that nvcc never parses the config's JSON headers).
enum class Act : int32_t { kGelu = 0, kGeluTanh = 1, kRelu = 2, kSilu = 3, kTanh = 4 };

// out[t] = LayerNorm(word[ids[t]] + pos[positions[t] + pos_offset] + type[type_ids[t]]) * w + b.
// `pos`, `type` and `b` may be null (ModernBERT: the word embedding alone, no bias). Tables are
// in dtype. Ids are validated on the host.
struct EmbedArgs {
  const void* word = nullptr;
  const void* pos = nullptr;
  const void* type = nullptr;
  int pos_offset = 0;
  const int32_t* ids = nullptr;
  const int32_t* type_ids = nullptr;
  const int32_t* positions = nullptr;
  const float* norm_w = nullptr;
  const float* norm_b = nullptr;
};
Status embed_layernorm(cudaStream_t stream, model::DType dtype, void* out, const EmbedArgs& args,
                       int n_tokens, int dim, float eps);

// v = residual[t] + x[t] + bias (x and bias may be null); residual[t] = v when `write_residual`;
// out[t] = LayerNorm(v) * w + b (b may be null). `out` may alias `residual` (BERT's post-norm:
// residual = LN(residual + sublayer + bias)). `vectorized`: 16-byte accesses where dim and the
// pointers allow (the same per-element arithmetic; the mean and variance sum in another order).
Status add_layernorm(cudaStream_t stream, model::DType dtype, void* out, void* residual,
                     const void* x, const void* bias, bool write_residual, const float* norm_w,
                     const float* norm_b, int n_tokens, int dim, float eps,
                     bool vectorized = false);

// In place: x[t][i] = act(x[t][i] + bias[i]) (bias may be null). `vectorized`: one block per
// row with 16-byte loads and stores where width and pointers allow (the same arithmetic per
// element); otherwise, or when false, a scalar grid-stride loop.
Status bias_activation(cudaStream_t stream, model::DType dtype, void* x, const void* bias,
                       int n_tokens, int width, Act act, bool vectorized = true);

// out[t][i] = act(in[t][i] + b[i]) * (in[t][ffn + i] + b[ffn + i]) for i < ffn: ModernBERT's
// GeGLU over the fused [input | gate] projection (in rows 2 ffn wide; bias [2 ffn] or null).
Status gated_activation(cudaStream_t stream, model::DType dtype, void* out, const void* in,
                        const void* bias, int n_tokens, int ffn, Act act);

// In place over fused QKV rows [n_tokens][3 n_heads head_dim]: adds bias [3 n_heads head_dim]
// (may be null), then with `inv_freq` (device f32 [head_dim / 2]; may be null: no rotation)
// rotates every q and k head by positions[t] (GPT-NeoX halves layout).
Status qkv_bias_rope(cudaStream_t stream, model::DType dtype, void* qkv, const void* bias,
                     const int32_t* positions, const float* inv_freq, int n_tokens, int n_heads,
                     int head_dim);

// out[i] = in[rows[i]] for i < n_rows (rows: a device array of row indices into `in`).
Status gather_rows(cudaStream_t stream, model::DType dtype, void* out, const void* in,
                   const int32_t* rows, int n_rows, int dim);

// Pooling codes (the order of encoder::Output).
enum class PoolMode : int32_t { kAllTokens = 0, kCls = 1, kMean = 2, kLastToken = 3, kMax = 4 };

// For sequence s (rows [seq_begin[s], seq_begin[s + 1]) of x): desc[2 s] is its PoolMode and
// desc[2 s + 1] its first output row in `out` (F32 [rows][dim]): one pooled row, or every token's
// row for kAllTokens. seq_begin and desc are device arrays.
Status pool_sequences(cudaStream_t stream, model::DType dtype, float* out, const void* x,
                      const int32_t* seq_begin, const int32_t* desc, int n_seqs, int dim);

}  // namespace turbine::cuda
