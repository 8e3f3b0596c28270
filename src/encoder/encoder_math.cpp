#include "encoder/encoder_math.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace turbine::encoder {

void layer_norm(float* out, const float* x, const float* w, const float* b, int n, float eps) {
  float mean = 0.0f;
  for (int i = 0; i < n; ++i) mean += x[i];
  mean /= static_cast<float>(n);
  float var = 0.0f;
  for (int i = 0; i < n; ++i) {
    const float d = x[i] - mean;
    var += d * d;
  }
  var /= static_cast<float>(n);
  const float inv = 1.0f / std::sqrt(var + eps);
  if (b != nullptr) {
    for (int i = 0; i < n; ++i) out[i] = (x[i] - mean) * inv * w[i] + b[i];
  } else {
    for (int i = 0; i < n; ++i) out[i] = (x[i] - mean) * inv * w[i];
  }
}

void activate(float* x, int64_t n, Activation act) {
  switch (act) {
    case Activation::kGelu:
      for (int64_t i = 0; i < n; ++i)
        x[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * 0.70710678118654752f));
      return;
    case Activation::kGeluTanh:
      for (int64_t i = 0; i < n; ++i) {
        const float v = x[i];
        x[i] = 0.5f * v * (1.0f + std::tanh(0.79788456080286536f * (v + 0.044715f * v * v * v)));
      }
      return;
    case Activation::kRelu:
      for (int64_t i = 0; i < n; ++i) x[i] = std::max(0.0f, x[i]);
      return;
    case Activation::kSilu:
      for (int64_t i = 0; i < n; ++i) x[i] = x[i] / (1.0f + std::exp(-x[i]));
      return;
    case Activation::kTanh:
      for (int64_t i = 0; i < n; ++i) x[i] = std::tanh(x[i]);
      return;
  }
}

void pool_rows(const float* rows, int n_rows, int dim, Output mode, float* out) {
  const auto d = static_cast<size_t>(dim);
  switch (mode) {
    case Output::kAllTokens:
    case Output::kCls: std::memcpy(out, rows, d * sizeof(float)); return;
    case Output::kLastToken:
      std::memcpy(out, rows + static_cast<size_t>(n_rows - 1) * d, d * sizeof(float));
      return;
    case Output::kMean: {
      std::fill(out, out + d, 0.0f);
      for (int r = 0; r < n_rows; ++r) {
        const float* row = rows + static_cast<size_t>(r) * d;
        for (size_t j = 0; j < d; ++j) out[j] += row[j];
      }
      const float inv = 1.0f / static_cast<float>(std::max(1, n_rows));
      for (size_t j = 0; j < d; ++j) out[j] *= inv;
      return;
    }
    case Output::kMax: {
      std::memcpy(out, rows, d * sizeof(float));
      for (int r = 1; r < n_rows; ++r) {
        const float* row = rows + static_cast<size_t>(r) * d;
        for (size_t j = 0; j < d; ++j) out[j] = std::max(out[j], row[j]);
      }
      return;
    }
  }
}

void l2_normalize(float* v, int n) {
  double ss = 0.0;
  for (int i = 0; i < n; ++i) ss += static_cast<double>(v[i]) * v[i];
  const double norm = std::max(std::sqrt(ss), 1e-12);
  for (int i = 0; i < n; ++i) v[i] = static_cast<float>(v[i] / norm);
}

}  // namespace turbine::encoder
