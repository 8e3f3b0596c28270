// Scalar conversions between F32 and the 16-bit/8-bit storage types weights come in.
//
// Header-only and branch-light so kernels in src/engine can inline them; pure functions, any
// thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "model/model.h"

namespace turbine::model {

// Q8_0 (ggml): blocks of 32 weights, each an f16 scale followed by 32 int8 values.
inline constexpr int kQ8BlockSize = 32;
inline constexpr size_t kQ8BlockBytes = 2 + kQ8BlockSize;

inline float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);  // inf / nan
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;
  } else {
    // Subnormal: renormalise.
    exp = 113;
    while ((mant & 0x400u) == 0) {
      mant <<= 1;
      --exp;
    }
    bits = sign | (exp << 23) | ((mant & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// Round to nearest even; overflow goes to inf, NaN stays NaN.
inline uint16_t f32_to_f16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, sizeof x);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t abs = x & 0x7fffffffu;
  if (abs >= 0x7f800000u)
    return static_cast<uint16_t>(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0));
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds past 65504
  if (abs < 0x38800000u) {
    // Result is subnormal (or zero) in f16.
    if (abs < 0x33000000u) return static_cast<uint16_t>(sign);
    const uint32_t e = abs >> 23;
    const uint32_t m = (abs & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - e;  // 14..24
    uint32_t r = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1u))) ++r;
    return static_cast<uint16_t>(sign | r);
  }
  uint32_t r = ((abs >> 13) - (112u << 10));
  const uint32_t rem = abs & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) ++r;
  return static_cast<uint16_t>(sign | r);
}

inline float bf16_to_f32(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

inline uint16_t f32_to_bf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, sizeof x);
  if ((x & 0x7fffffffu) > 0x7f800000u)
    return static_cast<uint16_t>((x >> 16) | 0x40u);  // quiet NaN
  x += 0x7fffu + ((x >> 16) & 1u);
  return static_cast<uint16_t>(x >> 16);
}

// float8_e4m3fn (the FP8 of weights and of the FP8 KV cache): no infinities, 0x7f/0xff are NaN,
// the largest finite value is 448.
inline constexpr float kE4M3Max = 448.0f;

inline float e4m3_to_f32(uint8_t b) {
  const uint32_t exp = (b >> 3) & 0xfu, mant = b & 0x7u;
  float v;
  if (exp == 0xf && mant == 0x7) {
    v = __builtin_nanf("");
  } else if (exp == 0) {
    v = static_cast<float>(mant) * (1.0f / 512.0f);  // subnormal: mant * 2^-9
  } else {
    const uint32_t bits = ((exp + 120u) << 23) | (mant << 20);  // exponent bias 7 -> 127
    std::memcpy(&v, &bits, sizeof v);
  }
  return (b & 0x80u) ? -v : v;
}

// The 256 values of e4m3 as f32 (filled once, thread-safe): the dequantization loops' table.
inline const float* e4m3_table() {
  static const auto* table = [] {
    static float t[256];
    for (int i = 0; i < 256; ++i) t[i] = e4m3_to_f32(static_cast<uint8_t>(i));
    return t;
  }();
  return table;
}

// Round to nearest even, saturating: |f| >= 448 gives ±448 (the checkpoint formats clamp to the
// finite range before casting); NaN stays NaN.
inline uint8_t f32_to_e4m3(float f) {
  uint32_t x;
  std::memcpy(&x, &f, sizeof x);
  const auto sign = static_cast<uint8_t>((x >> 24) & 0x80u);
  const uint32_t abs = x & 0x7fffffffu;
  if (abs > 0x7f800000u) return static_cast<uint8_t>(sign | 0x7fu);
  if (abs >= 0x43e00000u) return static_cast<uint8_t>(sign | 0x7eu);  // >= 448
  if (abs < 0x3c800000u) {
    // Below 2^-6: subnormal steps of 2^-9. Scaling by 512 is exact, so rounding the product
    // rounds the value; 8 steps is the smallest normal (code 0x08), which the sum encodes.
    float a;
    std::memcpy(&a, &abs, sizeof a);
    const float m = a * 512.0f;
    auto r = static_cast<uint32_t>(m);
    const float frac = m - static_cast<float>(r);
    if (frac > 0.5f || (frac == 0.5f && (r & 1u))) ++r;
    return static_cast<uint8_t>(sign | r);
  }
  uint32_t e = (abs >> 23) - 120u;  // biased e4m3 exponent, 1..15
  uint32_t m = (abs >> 20) & 0x7u;
  const uint32_t rem = abs & 0xfffffu;
  if (rem > 0x80000u || (rem == 0x80000u && (m & 1u))) {
    if (++m == 8) {
      m = 0;
      ++e;
    }
  }
  return static_cast<uint8_t>(sign | (e << 3) | m);
}

// The real value of element `col` of row `row` of an FP8 tensor's stored value `q`.
inline float fp8_scale_at(const Fp8Scales& s, int64_t cols, int64_t row, int64_t col) {
  if (!s.present()) return 1.0f;
  const int64_t scale_cols = (cols + s.block_cols - 1) / s.block_cols;
  return s.data[(row / s.block_rows) * scale_cols + col / s.block_cols];
}

// Bytes of one row of `cols` elements; 0 when `cols` is not valid for the type (Q8_0 needs a
// multiple of 32).
inline size_t row_bytes(DType dtype, int64_t cols) {
  if (cols < 0) return 0;
  const auto c = static_cast<size_t>(cols);
  switch (dtype) {
    case DType::kF32: return c * 4;
    case DType::kF16:
    case DType::kBF16: return c * 2;
    case DType::kQ8_0: return (c % kQ8BlockSize == 0) ? c / kQ8BlockSize * kQ8BlockBytes : 0;
    case DType::kF8E4M3: return c;
  }
  return 0;
}

// Converts row `row` of `t` to f32 into `out` (t.cols floats).
inline void dequantize_row(const TensorView& t, int64_t row, float* out) {
  const size_t rb = row_bytes(t.dtype, t.cols);
  const auto* src = static_cast<const uint8_t*>(t.data) + static_cast<size_t>(row) * rb;
  const int64_t n = t.cols;
  switch (t.dtype) {
    case DType::kF32: std::memcpy(out, src, static_cast<size_t>(n) * 4); break;
    case DType::kF16: {
      const auto* p = reinterpret_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) out[i] = f16_to_f32(p[i]);
      break;
    }
    case DType::kBF16: {
      const auto* p = reinterpret_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) out[i] = bf16_to_f32(p[i]);
      break;
    }
    case DType::kQ8_0: {
      for (int64_t b = 0; b < n / kQ8BlockSize; ++b) {
        const uint8_t* blk = src + static_cast<size_t>(b) * kQ8BlockBytes;
        uint16_t d16;
        std::memcpy(&d16, blk, 2);
        const float d = f16_to_f32(d16);
        const auto* q = reinterpret_cast<const int8_t*>(blk + 2);
        for (int j = 0; j < kQ8BlockSize; ++j)
          out[b * kQ8BlockSize + j] = d * static_cast<float>(q[j]);
      }
      break;
    }
    case DType::kF8E4M3: {
      // Scales are constant along a row over block_cols columns (the whole row per channel).
      const Fp8Scales& s = t.scales;
      const float* lut = e4m3_table();
      const int64_t bc = s.present() ? s.block_cols : n;
      for (int64_t c0 = 0; c0 < n; c0 += bc) {
        const float d = fp8_scale_at(s, n, row, c0);
        const int64_t c1 = c0 + bc < n ? c0 + bc : n;
        for (int64_t i = c0; i < c1; ++i) out[i] = lut[src[i]] * d;
      }
      break;
    }
  }
}

// Quantizes `n` floats (n % 32 == 0) to Q8_0 blocks at `dst` (n / 32 * 34 bytes), as ggml does:
// scale = max|x| / 127, q = round(x / scale).
void quantize_row_q8_0(const float* src, int64_t n, uint8_t* dst);

// The smallest scale dynamic activation quantization uses (a row of zeros stays zeros); vLLM's
// dynamic FP8 quantization has the same floor.
inline constexpr float kFp8MinScale = 1.0f / (kE4M3Max * 512.0f);

// Quantizes `x[0, n)` to FP8 with scale `s` and back, in place: x = e4m3(x / s) · s.
void fp8_quantize_dequantize(float* x, int64_t n, float s);

// Applies `q` to one input row of `n` elements in place (InputQuant: per token, per group or
// static). kNone leaves it unchanged.
void quantize_input_row(const InputQuant& q, float* x, int64_t n);

// FP8 per output channel of `rows` x `cols` floats: scales[r] = max |w[r]| / 448 (1 for a zero
// row), q = e4m3(w / scales[r]). `round_scale` (optional) rounds each scale before it is used,
// for checkpoints that store scales in 16 bits.
void quantize_fp8_per_channel(const float* w, int64_t rows, int64_t cols, uint8_t* q, float* scales,
                              float (*round_scale)(float) = nullptr);

}  // namespace turbine::model
