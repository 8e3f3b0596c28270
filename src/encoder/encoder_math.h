// Small f32 helpers shared by the CPU backend and the heads: LayerNorm, activations, pooling.
//
// Pure functions; any thread.
#pragma once

#include <cstdint>
#include <vector>

#include "encoder/encoder_backend.h"
#include "encoder/encoder_config.h"

namespace turbine::encoder {

// out = (x - mean) / sqrt(var + eps) * w (+ b): over n floats; `b` may be null. out may be x.
void layer_norm(float* out, const float* x, const float* w, const float* b, int n, float eps);

// x[i] = act(x[i]) for i < n.
void activate(float* x, int64_t n, Activation act);

// Pools rows [0, n_rows) of `rows` (each `dim` wide) into `out` (dim floats). kAllTokens is not a
// pooling (the caller copies).
void pool_rows(const float* rows, int n_rows, int dim, Output mode, float* out);

// Scales v to unit L2 norm (a zero vector stays zero), as torch.nn.functional.normalize does
// (norm clamped below at 1e-12).
void l2_normalize(float* v, int n);

}  // namespace turbine::encoder
