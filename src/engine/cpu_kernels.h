// CPU math kernels for the forward pass. All activations are f32, row-major [n_tokens x width].
//
// Stateless; the matmul spreads output rows over the pool it is given (engine thread calls).
// The vector kernels are compiled for several instruction sets (baseline, AVX2+FMA, AVX-512) and
// the widest the CPU has is picked once at run time; the build itself stays generic.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "engine/cpu_thread_pool.h"
#include "model/model.h"

namespace turbine::engine {

// The instruction set the kernels run with: "avx512", "avx2" or "generic".
const char* cpu_simd_level();

float dot_f32(const float* a, const float* b, int64_t n);
// y += a * x over n floats.
void axpy_f32(float a, const float* x, float* y, int64_t n);

// out[0, hd) = sum over p < n of a[p] * v_rows[p][0, hd), accumulated in order of p.
void weighted_sum_f32(const float* a, const float* const* v_rows, int n, int64_t hd, float* out);

// y[t * ldy + r] = x_t . w_r for t < n_tokens, r < rows; x rows and w rows are both k floats.
// Single-threaded. Each output element is computed by the same operations whatever n_tokens is
// (results are batch-invariant bit for bit).
void gemm_f32(const float* x, int n_tokens, int64_t k, const float* w, int64_t rows, float* y,
              int64_t ldy);

// For tests: the levels this CPU can run (widest first), and gemm_f32 forced to one of them
// (false when the CPU cannot run it).
std::vector<std::string> cpu_simd_levels();
bool gemm_f32_at_level(const std::string& level, const float* x, int n_tokens, int64_t k,
                       const float* w, int64_t rows, float* y, int64_t ldy);

// y[t * w.rows + r] = dot(x[t * w.cols ...], row r of w) for t < n_tokens, over the pool, split
// by weight rows. F32 weights are read in place (each weight row once per call, register-blocked
// against several tokens); other dtypes are converted to f32 a few rows at a time into
// `scratch[thread]` (resized here as needed), accumulation is f32. FP8 weights are dequantized
// with their scales the same way, and x is first quantized as w.input_quant says (the format's
// reference maths: e4m3(x / s) · s per token, group or static scale; x itself is not changed).
// The outputs of one call must share w.cols.
void matmul(CpuThreadPool& pool, const float* x, int n_tokens, const model::TensorView& w, float* y,
            std::vector<std::vector<float>>& scratch);

// Several matmuls of the same input (Q, K and V; gate and up) as one pool job; outs[i].y gets
// x times outs[i].w as above. Same results as separate calls.
struct MatmulOut {
  const model::TensorView* w;
  float* y;
};
void matmul(CpuThreadPool& pool, const float* x, int n_tokens, std::span<const MatmulOut> outs,
            std::vector<std::vector<float>>& scratch);

// out = x / rms(x) * weight, over n elements.
void rmsnorm(float* out, const float* x, const float* weight, int n, float eps);

// Inverse frequencies (one per rotated pair) for a head of `head_dim`, including llama3 scaling.
std::vector<float> rope_inv_freq(int head_dim, float theta, const model::RopeScaling& scaling);

// cos and sin of pos * inv_freq[i], one per rotated pair.
void rope_cos_sin(int pos, const std::vector<float>& inv_freq, float* cos_out, float* sin_out);

// Rotates each of `n_heads` heads of `vec` (n_heads * head_dim floats) by precomputed angles.
void apply_rope(float* vec, int n_heads, int head_dim, const float* cos_t, const float* sin_t,
                model::RopeLayout layout);
// The same for position `pos`.
void apply_rope(float* vec, int n_heads, int head_dim, int pos, const std::vector<float>& inv_freq,
                model::RopeLayout layout);

void softmax(float* x, int n);

// gate[j] = silu(gate[j]) * up[j].
void swiglu(float* gate, const float* up, int64_t n);

// Loads a small tensor (norm weight, bias) as f32.
std::vector<float> to_f32(const model::TensorView& t);

}  // namespace turbine::engine
