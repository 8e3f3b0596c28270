// Element-wise and row-wise kernels of the transformer forward pass, on device memory.
//
// Every function enqueues work on `stream` and returns without waiting; a non-ok Status means
// an argument was rejected (nothing enqueued) or the launch failed. Activations and weights are
// F32, F16 or BF16 (`dtype`, the same for all tensor arguments of one call); reductions and
// transcendental math run in F32. Tensors are row-major and contiguous unless a stride is given.
// `pdl`: launch with programmatic dependent launch (launch.cuh; sm_90+ only, the caller checks).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "common/status.h"
#include "cuda/device.h"
#include "model/model.h"

namespace turbine::cuda {

// out[r] = x[r] / rms(x[r]) * weight, for n_rows rows of `dim`. `out` may alias `x`.
Status rmsnorm(cudaStream_t stream, model::DType dtype, void* out, const void* x,
               const void* weight, int n_rows, int dim, float eps, bool pdl = false);

// residual[r] += x[r] (stored in dtype), then out[r] = rmsnorm(residual[r]): the pre-norm
// block's "add the sublayer output, normalise for the next sublayer" in one pass.
Status add_rmsnorm(cudaStream_t stream, model::DType dtype, void* out, void* residual,
                   const void* x, const void* weight, int n_rows, int dim, float eps,
                   bool pdl = false);

// In place: RMSNorm over each head of x [n_tokens][n_heads][head_dim] with one weight
// [head_dim] shared by all heads (Qwen3 q_norm / k_norm). Rows are `row_stride` elements apart.
Status head_rmsnorm(cudaStream_t stream, model::DType dtype, void* x, const void* weight,
                    int n_tokens, int n_heads, int head_dim, int64_t row_stride, float eps,
                    bool pdl = false);

// In place: rotates each head of x [n_tokens][n_heads][head_dim] (rows `row_stride` elements
// apart) by positions[t] * inv_freq[i]. `positions` (int32) and `inv_freq` (f32, head_dim/2,
// from engine::rope_inv_freq) are device pointers.
Status rope(cudaStream_t stream, model::DType dtype, void* x, const int32_t* positions,
            const float* inv_freq, int n_tokens, int n_heads, int head_dim, int64_t row_stride,
            model::RopeLayout layout, bool pdl = false);

// rope() over the q and k heads of fused QKV rows [n_tokens][row_stride] (n_q_heads q heads, then
// n_kv_heads k heads, then n_kv_heads v heads), then write_kv_cache() of the rotated k and of v,
// in one launch: the same results as the two calls.
Status rope_write_kv(cudaStream_t stream, model::DType dtype, void* qkv, const int32_t* positions,
                     const float* inv_freq, int n_tokens, int n_q_heads, int n_kv_heads,
                     int head_dim, int64_t row_stride, model::RopeLayout layout, void* k_cache,
                     void* v_cache, const int32_t* slot_mapping, bool pdl = false);

// rope_write_kv with an E4M3 cache (--kv-cache-dtype fp8): k and v are stored as
// e4m3(value / k_scale) and e4m3(value / v_scale) (rounded to nearest even, saturating), as the
// CPU backend stores them.
Status rope_write_kv_fp8(cudaStream_t stream, model::DType dtype, void* qkv,
                         const int32_t* positions, const float* inv_freq, int n_tokens,
                         int n_q_heads, int n_kv_heads, int head_dim, int64_t row_stride,
                         model::RopeLayout layout, void* k_cache, void* v_cache,
                         const int32_t* slot_mapping, float k_scale, float v_scale,
                         bool pdl = false);

// Uploads engine::rope_inv_freq(head_dim, theta, scaling): the same table the CPU backend uses.
Result<DeviceBuffer> upload_rope_inv_freq(int head_dim, float theta,
                                          const model::RopeScaling& scaling, cudaStream_t stream);

// out[t][i] = silu(gate[t][i]) * up[t][i], i < ffn. gate and up rows are `in_stride` elements
// apart (a fused [gate | up] projection passes up = gate + ffn, in_stride = 2 * ffn).
Status swiglu(cudaStream_t stream, model::DType dtype, void* out, const void* gate, const void* up,
              int n_tokens, int ffn, int64_t in_stride, bool pdl = false);

// x[t][i] += bias[i], rows `row_stride` elements apart.
Status add_bias(cudaStream_t stream, model::DType dtype, void* x, const void* bias, int n_tokens,
                int width, int64_t row_stride, bool pdl = false);

// out[t] = table[ids[t]] for ids on the device. An id outside [0, n_vocab) gives a zero row:
// ids are validated before they reach the engine, and a kernel cannot return an error.
Status embedding(cudaStream_t stream, model::DType dtype, void* out, const void* table,
                 const int32_t* ids, int n_tokens, int dim, int n_vocab, bool pdl = false);

// Writes new keys and values [n_tokens][n_kv_heads][head_dim] into the paged cache
// [num_blocks][block_size][n_kv_heads][head_dim] at slot_mapping[t] = block * block_size + offset;
// a negative slot skips the token (padding).
Status write_kv_cache(cudaStream_t stream, model::DType dtype, void* k_cache, void* v_cache,
                      const void* k, const void* v, const int32_t* slot_mapping, int n_tokens,
                      int n_kv_heads, int head_dim, int64_t kv_row_stride, bool pdl = false);

// out[r] = in[rows[r]] for n_rows rows of `dim` elements (rows: device int32 indices into `in`);
// picks the rows whose logits a step returns.
Status gather_rows(cudaStream_t stream, model::DType dtype, void* out, const void* in,
                   const int32_t* rows, int n_rows, int dim, bool pdl = false);

}  // namespace turbine::cuda
