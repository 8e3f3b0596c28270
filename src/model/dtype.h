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
  }
}

// Quantizes `n` floats (n % 32 == 0) to Q8_0 blocks at `dst` (n / 32 * 34 bytes), as ggml does:
// scale = max|x| / 127, q = round(x / scale).
void quantize_row_q8_0(const float* src, int64_t n, uint8_t* dst);

}  // namespace turbine::model
