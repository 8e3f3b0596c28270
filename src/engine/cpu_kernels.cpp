#include "engine/cpu_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "model/dtype.h"

// Multi-versioned hot loops: AVX2 where the CPU has it, baseline x86-64 otherwise; the build
// itself stays generic (no -march=native).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define TURBINE_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define TURBINE_CLONES
#endif

// V8 values never cross a non-inlined call, so the AVX-vs-SSE argument ABI note does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace turbine::engine {
namespace {

using V8 = float __attribute__((vector_size(32)));

__attribute__((always_inline)) inline V8 load8(const float* p) {
  V8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Eight independent vector accumulators keep the loop free of a serial dependency chain; the
// compiler may not reorder float sums itself (no -ffast-math).
__attribute__((always_inline)) inline float dot_inline(const float* a, const float* b, int64_t n) {
  V8 acc0 = {}, acc1 = {}, acc2 = {}, acc3 = {};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    acc0 += load8(a + i) * load8(b + i);
    acc1 += load8(a + i + 8) * load8(b + i + 8);
    acc2 += load8(a + i + 16) * load8(b + i + 16);
    acc3 += load8(a + i + 24) * load8(b + i + 24);
  }
  for (; i + 8 <= n; i += 8) acc0 += load8(a + i) * load8(b + i);
  const V8 acc = (acc0 + acc1) + (acc2 + acc3);
  float s = 0.0f;
  for (int k = 0; k < 8; ++k) s += acc[k];
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

// Computes one weight row against every token: y[t * y_stride] = x_t . w.
TURBINE_CLONES
void row_times_tokens(const float* x, int n_tokens, int64_t k, const float* w, float* y,
                      int64_t y_stride) {
  for (int t = 0; t < n_tokens; ++t) y[t * y_stride] = dot_inline(x + t * k, w, k);
}

}  // namespace

TURBINE_CLONES
float dot_f32(const float* a, const float* b, int64_t n) {
  return dot_inline(a, b, n);
}

void matmul(CpuThreadPool& pool, const float* x, int n_tokens, const model::TensorView& w, float* y,
            std::vector<std::vector<float>>& scratch) {
  const int64_t rows = w.rows, k = w.cols;
  // Enough tasks for load balance, each big enough to amortise the scheduling.
  const int64_t per_task = std::max<int64_t>(1, std::min<int64_t>(64, rows / (pool.size() * 4)));
  const int n_tasks = static_cast<int>((rows + per_task - 1) / per_task);
  const bool is_f32 = w.dtype == model::DType::kF32;
  const auto* base = static_cast<const float*>(w.data);
  pool.run(n_tasks, [&](int task, int thread) {
    const int64_t r0 = task * per_task, r1 = std::min(rows, r0 + per_task);
    float* buf = is_f32 ? nullptr : scratch[static_cast<size_t>(thread)].data();
    for (int64_t r = r0; r < r1; ++r) {
      const float* wr;
      if (is_f32) {
        wr = base + r * k;
      } else {
        model::dequantize_row(w, r, buf);
        wr = buf;
      }
      row_times_tokens(x, n_tokens, k, wr, y + r, rows);
    }
  });
}

void rmsnorm(float* out, const float* x, const float* weight, int n, float eps) {
  float ss = 0.0f;
  for (int i = 0; i < n; ++i) ss += x[i] * x[i];
  const float scale = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
  for (int i = 0; i < n; ++i) out[i] = weight[i] * (scale * x[i]);
}

std::vector<float> rope_inv_freq(int head_dim, float theta, const model::RopeScaling& scaling) {
  std::vector<float> inv(static_cast<size_t>(head_dim / 2));
  for (int i = 0; i < head_dim / 2; ++i) {
    inv[static_cast<size_t>(i)] =
        1.0f / std::pow(theta, static_cast<float>(2 * i) / static_cast<float>(head_dim));
  }
  if (scaling.type == model::RopeScaling::Type::kLlama3) {
    // Meta's llama3 scaling: long wavelengths are slowed by `factor`, short ones kept, and the
    // band in between interpolated smoothly.
    const float old_ctx = static_cast<float>(scaling.original_max_position);
    const float low_wavelen = old_ctx / scaling.low_freq_factor;
    const float high_wavelen = old_ctx / scaling.high_freq_factor;
    constexpr float kPi = 3.14159265358979323846f;
    for (float& f : inv) {
      const float wavelen = 2.0f * kPi / f;
      if (wavelen < high_wavelen) continue;
      if (wavelen > low_wavelen) {
        f = f / scaling.factor;
      } else {
        const float smooth = (old_ctx / wavelen - scaling.low_freq_factor) /
                             (scaling.high_freq_factor - scaling.low_freq_factor);
        f = (1.0f - smooth) * f / scaling.factor + smooth * f;
      }
    }
  }
  return inv;
}

void apply_rope(float* vec, int n_heads, int head_dim, int pos, const std::vector<float>& inv_freq,
                model::RopeLayout layout) {
  const int half = head_dim / 2;
  for (int i = 0; i < half; ++i) {
    const float angle = static_cast<float>(pos) * inv_freq[static_cast<size_t>(i)];
    const float c = std::cos(angle), s = std::sin(angle);
    for (int h = 0; h < n_heads; ++h) {
      float* hv = vec + h * head_dim;
      const int a = layout == model::RopeLayout::kInterleaved ? 2 * i : i;
      const int b = layout == model::RopeLayout::kInterleaved ? 2 * i + 1 : i + half;
      const float x0 = hv[a], x1 = hv[b];
      hv[a] = x0 * c - x1 * s;
      hv[b] = x0 * s + x1 * c;
    }
  }
}

void softmax(float* x, int n) {
  float mx = x[0];
  for (int i = 1; i < n; ++i) mx = std::max(mx, x[i]);
  float sum = 0.0f;
  for (int i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  const float inv = 1.0f / sum;
  for (int i = 0; i < n; ++i) x[i] *= inv;
}

std::vector<float> to_f32(const model::TensorView& t) {
  if (!t.present()) return {};
  std::vector<float> out(static_cast<size_t>(t.rows * t.cols));
  for (int64_t r = 0; r < t.rows; ++r) model::dequantize_row(t, r, out.data() + r * t.cols);
  return out;
}

}  // namespace turbine::engine
