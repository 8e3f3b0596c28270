// Shared helpers of the CUDA parity tests: a fixture that skips without a GPU, typed uploads
// and downloads through the CPU's dtype conversions, and error norms.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "cuda/device.h"
#include "model/dtype.h"

namespace turbine::cuda::testing {

// Every CUDA test derives from this: CI machines without a GPU build the suite and skip it.
class CudaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (device_count() == 0) GTEST_SKIP() << "no CUDA device";
    auto s = Stream::create();
    ASSERT_TRUE(s.has_value()) << s.status().to_string();
    stream_ = std::move(s).value();
  }
  cudaStream_t stream() const { return stream_.get(); }
  Stream stream_;
};

inline const char* dtype_label(model::DType d) {
  return d == model::DType::kF32 ? "f32" : d == model::DType::kF16 ? "f16" : "bf16";
}

// Relative tolerance of ||out - ref|| / ||ref|| for results stored in `d`.
inline double tolerance(model::DType d) {
  return d == model::DType::kF32 ? 1e-5 : d == model::DType::kF16 ? 5e-3 : 2e-2;
}

inline float round_to(model::DType d, float x) {
  switch (d) {
    case model::DType::kF16: return model::f16_to_f32(model::f32_to_f16(x));
    case model::DType::kBF16: return model::bf16_to_f32(model::f32_to_bf16(x));
    default: return x;
  }
}

// Uniform random values in [lo, hi), already rounded to `d` so that the CPU reference sees
// exactly what the device sees.
inline std::vector<float> random_values(std::mt19937& rng, size_t n, model::DType d,
                                        float lo = -1.0f, float hi = 1.0f) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = round_to(d, dist(rng));
  return v;
}

inline DeviceBuffer upload(model::DType d, const std::vector<float>& v) {
  const size_t eb = dtype_bytes(d);
  std::vector<uint8_t> bytes(v.size() * eb);
  for (size_t i = 0; i < v.size(); ++i) {
    if (d == model::DType::kF32) {
      std::memcpy(&bytes[i * 4], &v[i], 4);
    } else {
      const uint16_t h =
          d == model::DType::kF16 ? model::f32_to_f16(v[i]) : model::f32_to_bf16(v[i]);
      std::memcpy(&bytes[i * 2], &h, 2);
    }
  }
  auto buf = DeviceBuffer::allocate(bytes.size());
  EXPECT_TRUE(buf.has_value());
  if (!bytes.empty()) {
    EXPECT_EQ(cudaMemcpy(buf->data(), bytes.data(), bytes.size(), cudaMemcpyHostToDevice),
              cudaSuccess);
  }
  return std::move(buf).value();
}

template <typename I>
DeviceBuffer upload_raw(const std::vector<I>& v) {
  auto buf = DeviceBuffer::allocate(v.size() * sizeof(I));
  EXPECT_TRUE(buf.has_value());
  if (!v.empty()) {
    EXPECT_EQ(cudaMemcpy(buf->data(), v.data(), v.size() * sizeof(I), cudaMemcpyHostToDevice),
              cudaSuccess);
  }
  return std::move(buf).value();
}

// A buffer of n elements filled with NaN (0xFF bytes), so unwritten outputs fail the checks.
inline DeviceBuffer poisoned(model::DType d, size_t n) {
  auto buf = DeviceBuffer::allocate(std::max<size_t>(1, n * dtype_bytes(d)));
  EXPECT_TRUE(buf.has_value());
  EXPECT_EQ(cudaMemset(buf->data(), 0xFF, buf->size_bytes()), cudaSuccess);
  return std::move(buf).value();
}

inline std::vector<float> download(model::DType d, const DeviceBuffer& buf, size_t n) {
  const size_t eb = dtype_bytes(d);
  std::vector<uint8_t> bytes(n * eb);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  if (n > 0) {
    EXPECT_EQ(cudaMemcpy(bytes.data(), buf.data(), bytes.size(), cudaMemcpyDeviceToHost),
              cudaSuccess);
  }
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) {
    if (d == model::DType::kF32) {
      std::memcpy(&v[i], &bytes[i * 4], 4);
    } else {
      uint16_t h;
      std::memcpy(&h, &bytes[i * 2], 2);
      v[i] = d == model::DType::kF16 ? model::f16_to_f32(h) : model::bf16_to_f32(h);
    }
  }
  return v;
}

// ||out - ref|| / ||ref||; infinity when any output is not finite.
inline double rel_error(const std::vector<float>& out, const std::vector<double>& ref) {
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < out.size(); ++i) {
    if (!std::isfinite(out[i])) return INFINITY;
    const double e = out[i] - ref[i];
    num += e * e;
    den += ref[i] * ref[i];
  }
  return den == 0.0 ? std::sqrt(num) : std::sqrt(num / den);
}

inline std::vector<double> to_double(const std::vector<float>& v) {
  return {v.begin(), v.end()};
}

inline constexpr model::DType kAllDTypes[] = {model::DType::kF32, model::DType::kF16,
                                              model::DType::kBF16};

}  // namespace turbine::cuda::testing
