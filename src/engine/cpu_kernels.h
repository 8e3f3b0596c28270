// CPU math kernels for the forward pass. All activations are f32, row-major [n_tokens x width].
//
// Stateless; the matmul spreads output rows over the pool it is given (engine thread calls).
#pragma once

#include <cstdint>
#include <vector>

#include "engine/cpu_thread_pool.h"
#include "model/model.h"

namespace turbine::engine {

float dot_f32(const float* a, const float* b, int64_t n);

// y[t * w.rows + r] = dot(x[t * w.cols ...], row r of w) for t < n_tokens. Weights of any dtype
// are converted to f32 one row at a time (accumulation is f32), so each weight row is read once
// per call whatever n_tokens is. `scratch[thread]` must hold w.cols floats for non-F32 weights.
void matmul(CpuThreadPool& pool, const float* x, int n_tokens, const model::TensorView& w, float* y,
            std::vector<std::vector<float>>& scratch);

// out = x / rms(x) * weight, over n elements.
void rmsnorm(float* out, const float* x, const float* weight, int n, float eps);

// Inverse frequencies (one per rotated pair) for a head of `head_dim`, including llama3 scaling.
std::vector<float> rope_inv_freq(int head_dim, float theta, const model::RopeScaling& scaling);

// Rotates each of `n_heads` heads of `vec` (n_heads * head_dim floats) for position `pos`.
void apply_rope(float* vec, int n_heads, int head_dim, int pos, const std::vector<float>& inv_freq,
                model::RopeLayout layout);

void softmax(float* x, int n);

// Loads a small tensor (norm weight, bias) as f32.
std::vector<float> to_f32(const model::TensorView& t);

}  // namespace turbine::engine
