#include "engine/cpu_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "model/dtype.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define TURBINE_X86_SIMD 1
#include <immintrin.h>
#endif

// Vector values never cross a non-inlined call, so the AVX-vs-SSE argument ABI note does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace turbine::engine {
namespace {

// The build stays generic (no -march=native): the SIMD bodies in cpu_kernels_simd.h are compiled
// once per instruction set below and the widest one the CPU supports is picked at run time.

namespace generic {
// Portable GCC vector extension of 16 bytes (SSE2 on baseline x86-64, NEON on arm64), so that
// no vector is wider than the baseline ABI passes in registers.
#define TURBINE_INLINE __attribute__((always_inline)) inline
struct S {
  using V = float __attribute__((vector_size(16)));
  static constexpr int kWidth = 4;
  static constexpr int kTokBlock = 2;
  static constexpr int kRowBlock = 4;
  static TURBINE_INLINE V zero() { return V{}; }
  static TURBINE_INLINE V load(const float* p) {
    V v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
  static TURBINE_INLINE V load_part(const float* p, int n) {
    V v = {};
    std::memcpy(&v, p, static_cast<size_t>(n) * sizeof(float));
    return v;
  }
  static TURBINE_INLINE V fma(V a, V b, V c) { return a * b + c; }
  static TURBINE_INLINE V splat(float f) { return V{} + f; }
  static TURBINE_INLINE void store(float* p, V v) { std::memcpy(p, &v, sizeof v); }
  static TURBINE_INLINE void store_part(float* p, V v, int n) {
    std::memcpy(p, &v, static_cast<size_t>(n) * sizeof(float));
  }
  static TURBINE_INLINE float sum(V v) { return (v[0] + v[2]) + (v[1] + v[3]); }
};
#undef TURBINE_INLINE
#include "engine/cpu_kernels_simd.h"
}  // namespace generic

#ifdef TURBINE_X86_SIMD
#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace avx2 {
struct S {
  using V = __m256;
  static constexpr int kWidth = 8;
  static constexpr int kTokBlock = 2;  // 2 x 4 accumulators + operands fit 16 ymm registers
  static constexpr int kRowBlock = 4;
  static __m256i mask(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static V zero() { return _mm256_setzero_ps(); }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static V load_part(const float* p, int n) { return _mm256_maskload_ps(p, mask(n)); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V splat(float f) { return _mm256_set1_ps(f); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static void store_part(float* p, V v, int n) { _mm256_maskstore_ps(p, mask(n), v); }
  static float sum(V v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
};
#include "engine/cpu_kernels_simd.h"
}  // namespace avx2
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,avx512dq,avx2,fma")
// GCC 12's AVX-512 headers self-initialise their "undefined" pass-through operands, which
// -Wuninitialized reports inside the intrinsics (GCC PR 105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
namespace avx512 {
struct S {
  using V = __m512;
  static constexpr int kWidth = 16;
  static constexpr int kTokBlock = 6;  // 6 x 4 accumulators + operands in 32 zmm registers
  static constexpr int kRowBlock = 4;
  static __mmask16 mask(int n) { return static_cast<__mmask16>((1u << n) - 1u); }
  static V zero() { return _mm512_setzero_ps(); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static V load_part(const float* p, int n) { return _mm512_maskz_loadu_ps(mask(n), p); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V splat(float f) { return _mm512_set1_ps(f); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static void store_part(float* p, V v, int n) { _mm512_mask_storeu_ps(p, mask(n), v); }
  static float sum(V v) {
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
};
#include "engine/cpu_kernels_simd.h"
}  // namespace avx512
#pragma GCC diagnostic pop
#pragma GCC pop_options
#endif

struct Simd {
  const char* name;
  void (*gemm)(const float*, int, int64_t, const float*, int64_t, int64_t, float*, int64_t);
  float (*dot)(const float*, const float*, int64_t);
  void (*axpy)(float, const float*, float*, int64_t);
  void (*weighted_sum)(const float*, const float* const*, int, int64_t, float*);
};

// The variants this CPU can run, widest first.
std::vector<Simd> available_simd() {
  std::vector<Simd> out;
#ifdef TURBINE_X86_SIMD
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512vl")) {
    out.push_back(Simd{"avx512", avx512::gemm, avx512::dot, avx512::axpy, avx512::weighted_sum});
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    out.push_back(Simd{"avx2", avx2::gemm, avx2::dot, avx2::axpy, avx2::weighted_sum});
#endif
  out.push_back(Simd{"generic", generic::gemm, generic::dot, generic::axpy, generic::weighted_sum});
  return out;
}

// Chosen once per process (the CPU does not change); immutable afterwards.
const Simd& simd() {
  static const Simd s = available_simd().front();
  return s;
}

// Tokens per cache tile: a tile of x stays in L2 while a task's weight rows pass over it.
constexpr int kTokTile = 64;
// Weight rows per task at most (a multiple of the register block).
constexpr int64_t kMaxRowsPerTask = 64;

}  // namespace

const char* cpu_simd_level() {
  return simd().name;
}

float dot_f32(const float* a, const float* b, int64_t n) {
  return simd().dot(a, b, n);
}

void axpy_f32(float a, const float* x, float* y, int64_t n) {
  simd().axpy(a, x, y, n);
}

void weighted_sum_f32(const float* a, const float* const* v_rows, int n, int64_t hd, float* out) {
  simd().weighted_sum(a, v_rows, n, hd, out);
}

void gemm_f32(const float* x, int n_tokens, int64_t k, const float* w, int64_t rows, float* y,
              int64_t ldy) {
  simd().gemm(x, n_tokens, k, w, k, rows, y, ldy);
}

std::vector<std::string> cpu_simd_levels() {
  std::vector<std::string> out;
  for (const Simd& s : available_simd()) out.emplace_back(s.name);
  return out;
}

bool gemm_f32_at_level(const std::string& level, const float* x, int n_tokens, int64_t k,
                       const float* w, int64_t rows, float* y, int64_t ldy) {
  for (const Simd& s : available_simd()) {
    if (level == s.name) {
      s.gemm(x, n_tokens, k, w, k, rows, y, ldy);
      return true;
    }
  }
  return false;
}

void matmul(CpuThreadPool& pool, const float* x, int n_tokens, const model::TensorView& w, float* y,
            std::vector<std::vector<float>>& scratch) {
  const MatmulOut out{&w, y};
  matmul(pool, x, n_tokens, std::span<const MatmulOut>(&out, 1), scratch);
}

void matmul(CpuThreadPool& pool, const float* x, int n_tokens, std::span<const MatmulOut> outs,
            std::vector<std::vector<float>>& scratch) {
  if (outs.empty()) return;
  // All outputs share one job (one pool hand-over instead of one per matrix). Tasks: whole
  // register blocks of rows, enough of them for load balance, each big enough to amortise the
  // scheduling.
  int64_t total_rows = 0;
  for (const MatmulOut& o : outs) total_rows += o.w->rows;
  int64_t per_task = std::min<int64_t>(kMaxRowsPerTask, total_rows / (pool.size() * 4));
  per_task = std::max<int64_t>(4, per_task / 4 * 4);
  std::vector<int> first_task(outs.size() + 1, 0);
  int64_t max_cols = 0;
  bool all_f32 = true;
  for (size_t i = 0; i < outs.size(); ++i) {
    const int64_t rows = outs[i].w->rows;
    first_task[i + 1] = first_task[i] + static_cast<int>((rows + per_task - 1) / per_task);
    max_cols = std::max(max_cols, outs[i].w->cols);
    all_f32 = all_f32 && outs[i].w->dtype == model::DType::kF32;
  }
  if (!all_f32) {
    if (scratch.size() < static_cast<size_t>(pool.size()))
      scratch.resize(static_cast<size_t>(pool.size()));
    for (auto& s : scratch) {
      if (s.size() < static_cast<size_t>(per_task * max_cols))
        s.resize(static_cast<size_t>(per_task * max_cols));
    }
  }
  // FP8 checkpoints quantize a linear layer's input as the format says (per token, per group, or
  // with a static scale) before the product: one quantized copy of x per distinct scheme among
  // the outputs (Q, K and V share one unless their static scales differ). Engine thread only.
  std::vector<const float*> xs(outs.size(), x);
  thread_local std::vector<std::vector<float>> quantized;
  std::vector<const model::InputQuant*> schemes;
  const auto k_in = static_cast<size_t>(outs[0].w->cols);
  for (size_t i = 0; i < outs.size(); ++i) {
    const model::InputQuant& q = outs[i].w->input_quant;
    if (q.kind == model::InputQuant::Kind::kNone) continue;
    size_t j = 0;
    while (j < schemes.size() && !(schemes[j]->kind == q.kind && schemes[j]->group == q.group &&
                                   schemes[j]->scale == q.scale))
      ++j;
    if (j == schemes.size()) {
      schemes.push_back(&q);
      if (quantized.size() < schemes.size()) quantized.resize(schemes.size());
      std::vector<float>& buf = quantized[j];
      buf.assign(x, x + static_cast<size_t>(n_tokens) * k_in);
      for (int t = 0; t < n_tokens; ++t)
        model::quantize_input_row(q, buf.data() + static_cast<size_t>(t) * k_in,
                                  static_cast<int64_t>(k_in));
    }
    xs[i] = quantized[j].data();
  }
  const Simd& s = simd();
  pool.run(first_task.back(), [&](int task, int thread) {
    size_t i = 0;
    while (task >= first_task[i + 1]) ++i;
    const model::TensorView& w = *outs[i].w;
    const float* xi = xs[i];
    float* y = outs[i].y;
    const int64_t rows = w.rows, k = w.cols;
    const int64_t r0 = (task - first_task[i]) * per_task, r1 = std::min(rows, r0 + per_task);
    const float* wr = static_cast<const float*>(w.data) + r0 * k;
    if (w.dtype != model::DType::kF32) {
      float* buf = scratch[static_cast<size_t>(thread)].data();
      for (int64_t r = r0; r < r1; ++r) model::dequantize_row(w, r, buf + (r - r0) * k);
      wr = buf;
    }
    for (int t0 = 0; t0 < n_tokens; t0 += kTokTile) {
      const int m = std::min(kTokTile, n_tokens - t0);
      s.gemm(xi + static_cast<int64_t>(t0) * k, m, k, wr, k, r1 - r0,
             y + static_cast<int64_t>(t0) * rows + r0, rows);
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

void rope_cos_sin(int pos, const std::vector<float>& inv_freq, float* cos_out, float* sin_out) {
  for (size_t i = 0; i < inv_freq.size(); ++i) {
    const float angle = static_cast<float>(pos) * inv_freq[i];
    cos_out[i] = std::cos(angle);
    sin_out[i] = std::sin(angle);
  }
}

void apply_rope(float* vec, int n_heads, int head_dim, const float* cos_t, const float* sin_t,
                model::RopeLayout layout) {
  const int half = head_dim / 2;
  for (int h = 0; h < n_heads; ++h) {
    float* hv = vec + h * head_dim;
    for (int i = 0; i < half; ++i) {
      const float c = cos_t[i], s = sin_t[i];
      const int a = layout == model::RopeLayout::kInterleaved ? 2 * i : i;
      const int b = layout == model::RopeLayout::kInterleaved ? 2 * i + 1 : i + half;
      const float x0 = hv[a], x1 = hv[b];
      hv[a] = x0 * c - x1 * s;
      hv[b] = x0 * s + x1 * c;
    }
  }
}

void apply_rope(float* vec, int n_heads, int head_dim, int pos, const std::vector<float>& inv_freq,
                model::RopeLayout layout) {
  std::vector<float> cs(inv_freq.size() * 2);
  rope_cos_sin(pos, inv_freq, cs.data(), cs.data() + inv_freq.size());
  apply_rope(vec, n_heads, head_dim, cs.data(), cs.data() + inv_freq.size(), layout);
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

void swiglu(float* gate, const float* up, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    const float g = gate[j];
    gate[j] = g / (1.0f + std::exp(-g)) * up[j];
  }
}

std::vector<float> to_f32(const model::TensorView& t) {
  if (!t.present()) return {};
  std::vector<float> out(static_cast<size_t>(t.rows * t.cols));
  for (int64_t r = 0; r < t.rows; ++r) model::dequantize_row(t, r, out.data() + r * t.cols);
  return out;
}

}  // namespace turbine::engine
