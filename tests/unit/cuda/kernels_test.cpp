// CPU-vs-CUDA parity of the element-wise and row-wise kernels.
#include "cuda/kernels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "cuda_test_util.h"
#include "engine/cpu_kernels.h"

namespace turbine::cuda {
namespace {

using testing::CudaTest;
using testing::download;
using testing::dtype_label;
using testing::kAllDTypes;
using testing::poisoned;
using testing::random_values;
using testing::rel_error;
using testing::round_to;
using testing::tolerance;
using testing::upload;
using testing::upload_raw;

class CudaKernelsTest : public CudaTest {};

TEST_F(CudaKernelsTest, RmsNormMatchesCpu) {
  std::mt19937 rng(1);
  for (model::DType d : kAllDTypes) {
    for (int dim : {64, 1000, 4096}) {
      SCOPED_TRACE(std::string(dtype_label(d)) + " dim=" + std::to_string(dim));
      const int rows = 7;
      auto x = random_values(rng, rows * dim, d, -2, 2);
      auto w = random_values(rng, dim, d, 0.5, 1.5);
      auto dx = upload(d, x), dw = upload(d, w);
      auto dout = poisoned(d, rows * dim);
      ASSERT_TRUE(
          rmsnorm(stream(), d, dout.data(), dx.data(), dw.data(), rows, dim, 1e-5f).is_ok());
      auto out = download(d, dout, rows * dim);
      std::vector<double> ref(out.size());
      std::vector<float> row(dim);
      for (int r = 0; r < rows; ++r) {
        engine::rmsnorm(row.data(), &x[r * dim], w.data(), dim, 1e-5f);
        for (int i = 0; i < dim; ++i) ref[r * dim + i] = row[i];
      }
      EXPECT_LT(rel_error(out, ref), tolerance(d));
    }
  }
}

TEST_F(CudaKernelsTest, AddRmsNormUpdatesResidualAndNormalises) {
  std::mt19937 rng(2);
  for (model::DType d : kAllDTypes) {
    SCOPED_TRACE(dtype_label(d));
    const int rows = 5, dim = 2048;
    auto x = random_values(rng, rows * dim, d);
    auto res = random_values(rng, rows * dim, d);
    auto w = random_values(rng, dim, d, 0.5, 1.5);
    auto dx = upload(d, x), dres = upload(d, res), dw = upload(d, w);
    auto dout = poisoned(d, rows * dim);
    ASSERT_TRUE(
        add_rmsnorm(stream(), d, dout.data(), dres.data(), dx.data(), dw.data(), rows, dim, 1e-6f)
            .is_ok());
    auto out = download(d, dout, rows * dim);
    auto new_res = download(d, dres, rows * dim);
    std::vector<double> ref(out.size()), ref_res(out.size());
    std::vector<float> sum(dim), row(dim);
    for (int r = 0; r < rows; ++r) {
      for (int i = 0; i < dim; ++i) sum[i] = round_to(d, res[r * dim + i] + x[r * dim + i]);
      engine::rmsnorm(row.data(), sum.data(), w.data(), dim, 1e-6f);
      for (int i = 0; i < dim; ++i) {
        ref[r * dim + i] = row[i];
        ref_res[r * dim + i] = sum[i];
      }
    }
    EXPECT_LT(rel_error(new_res, ref_res), tolerance(d));
    EXPECT_LT(rel_error(out, ref), tolerance(d));
  }
}

TEST_F(CudaKernelsTest, HeadRmsNormMatchesCpuPerHead) {
  std::mt19937 rng(3);
  for (model::DType d : kAllDTypes) {
    for (int hd : {64, 128}) {
      SCOPED_TRACE(std::string(dtype_label(d)) + " hd=" + std::to_string(hd));
      const int tokens = 9, heads = 6;
      const int64_t stride = heads * hd + 2 * hd;  // q rows inside a fused qkv projection
      auto x = random_values(rng, tokens * stride, d, -3, 3);
      auto w = random_values(rng, hd, d, 0.5, 1.5);
      auto dx = upload(d, x), dw = upload(d, w);
      ASSERT_TRUE(head_rmsnorm(stream(), d, dx.data(), dw.data(), tokens, heads, hd, stride, 1e-6f)
                      .is_ok());
      auto out = download(d, dx, x.size());
      std::vector<double> ref(x.begin(), x.end());
      std::vector<float> row(hd);
      for (int t = 0; t < tokens; ++t)
        for (int h = 0; h < heads; ++h) {
          engine::rmsnorm(row.data(), &x[t * stride + h * hd], w.data(), hd, 1e-6f);
          for (int i = 0; i < hd; ++i) ref[t * stride + h * hd + i] = row[i];
        }
      EXPECT_LT(rel_error(out, ref), tolerance(d));
    }
  }
}

TEST_F(CudaKernelsTest, RopeMatchesCpuBothLayoutsAndLlama3Scaling) {
  std::mt19937 rng(4);
  model::RopeScaling llama3;
  llama3.type = model::RopeScaling::Type::kLlama3;
  llama3.factor = 8.0f;
  llama3.low_freq_factor = 1.0f;
  llama3.high_freq_factor = 4.0f;
  llama3.original_max_position = 8192;
  for (model::DType d : kAllDTypes) {
    for (int hd : {64, 128}) {
      for (auto layout : {model::RopeLayout::kInterleaved, model::RopeLayout::kHalves}) {
        for (const model::RopeScaling& scaling : {model::RopeScaling{}, llama3}) {
          SCOPED_TRACE(std::string(dtype_label(d)) + " hd=" + std::to_string(hd) +
                       " layout=" + std::to_string(static_cast<int>(layout)) +
                       " scaling=" + std::to_string(static_cast<int>(scaling.type)));
          const int tokens = 6, heads = 4;
          const float theta = 500000.0f;
          auto x = random_values(rng, tokens * heads * hd, d);
          std::vector<int32_t> pos = {0, 1, 17, 1000, 4095, 131071};
          auto table = upload_rope_inv_freq(hd, theta, scaling, stream());
          ASSERT_TRUE(table.has_value()) << table.status().to_string();
          auto dx = upload(d, x);
          auto dpos = upload_raw(pos);
          ASSERT_TRUE(rope(stream(), d, dx.data(), dpos.as<int32_t>(), table->as<float>(), tokens,
                           heads, hd, heads * hd, layout)
                          .is_ok());
          auto out = download(d, dx, x.size());
          const auto inv = engine::rope_inv_freq(hd, theta, scaling);
          std::vector<float> ref_f = x;
          for (int t = 0; t < tokens; ++t)
            engine::apply_rope(&ref_f[t * heads * hd], heads, hd, pos[t], inv, layout);
          // Angles up to ~1e5 rad: the f32 argument itself carries ~1e-2 rad of rounding, which
          // both sides share; the rest is cos/sin accuracy.
          EXPECT_LT(rel_error(out, testing::to_double(ref_f)),
                    d == model::DType::kF32 ? 1e-5 : tolerance(d));
        }
      }
    }
  }
}

TEST_F(CudaKernelsTest, SwiGluAndBiasMatchCpu) {
  std::mt19937 rng(5);
  for (model::DType d : kAllDTypes) {
    SCOPED_TRACE(dtype_label(d));
    const int tokens = 5, ffn = 1376;
    auto gu = random_values(rng, tokens * 2 * ffn, d, -6, 6);  // fused [gate | up]
    auto dgu = upload(d, gu);
    auto dout = poisoned(d, tokens * ffn);
    ASSERT_TRUE(swiglu(stream(), d, dout.data(), dgu.data(),
                       static_cast<char*>(dgu.data()) + ffn * dtype_bytes(d), tokens, ffn, 2 * ffn)
                    .is_ok());
    auto out = download(d, dout, tokens * ffn);
    std::vector<double> ref(out.size());
    for (int t = 0; t < tokens; ++t)
      for (int i = 0; i < ffn; ++i) {
        const double g = gu[t * 2 * ffn + i], u = gu[t * 2 * ffn + ffn + i];
        ref[t * ffn + i] = g / (1.0 + std::exp(-g)) * u;
      }
    EXPECT_LT(rel_error(out, ref), tolerance(d));

    const int width = 896;
    auto x = random_values(rng, tokens * width, d);
    auto b = random_values(rng, width, d);
    auto dx = upload(d, x), db = upload(d, b);
    ASSERT_TRUE(add_bias(stream(), d, dx.data(), db.data(), tokens, width, width).is_ok());
    auto xb = download(d, dx, x.size());
    std::vector<double> ref_b(x.size());
    for (int t = 0; t < tokens; ++t)
      for (int i = 0; i < width; ++i) ref_b[t * width + i] = double{x[t * width + i]} + b[i];
    EXPECT_LT(rel_error(xb, ref_b), tolerance(d));
  }
}

TEST_F(CudaKernelsTest, EmbeddingGathersRowsAndZeroesBadIds) {
  std::mt19937 rng(6);
  for (model::DType d : kAllDTypes) {
    SCOPED_TRACE(dtype_label(d));
    const int vocab = 300, dim = 96;
    auto table = random_values(rng, vocab * dim, d);
    std::vector<int32_t> ids = {0, 299, 17, 17, -1, 300, 5};
    auto dt = upload(d, table);
    auto dids = upload_raw(ids);
    auto dout = poisoned(d, ids.size() * dim);
    ASSERT_TRUE(embedding(stream(), d, dout.data(), dt.data(), dids.as<int32_t>(),
                          static_cast<int>(ids.size()), dim, vocab)
                    .is_ok());
    auto out = download(d, dout, ids.size() * dim);
    for (size_t t = 0; t < ids.size(); ++t)
      for (int i = 0; i < dim; ++i) {
        const float want = ids[t] >= 0 && ids[t] < vocab ? table[ids[t] * dim + i] : 0.0f;
        ASSERT_EQ(out[t * dim + i], want) << "token " << t << " dim " << i;
      }
  }
}

TEST_F(CudaKernelsTest, WriteKvCachePlacesTokensAtSlots) {
  std::mt19937 rng(7);
  const model::DType d = model::DType::kBF16;
  const int n_kv = 2, hd = 64, blocks = 4, bs = 16, tokens = 5;
  const int width = n_kv * hd;
  auto k = random_values(rng, tokens * width, d);
  auto v = random_values(rng, tokens * width, d);
  std::vector<int32_t> slots = {3 * bs + 0, 0, 1 * bs + 15, -1, 2 * bs + 7};
  auto dk = upload(d, k), dv = upload(d, v), ds = upload_raw(slots);
  auto kc = upload(d, std::vector<float>(blocks * bs * width, 0.5f));
  auto vc = upload(d, std::vector<float>(blocks * bs * width, 0.5f));
  ASSERT_TRUE(write_kv_cache(stream(), d, kc.data(), vc.data(), dk.data(), dv.data(),
                             ds.as<int32_t>(), tokens, n_kv, hd, width)
                  .is_ok());
  auto kco = download(d, kc, blocks * bs * width), vco = download(d, vc, blocks * bs * width);
  for (int t = 0; t < tokens; ++t) {
    if (slots[t] < 0) continue;
    for (int i = 0; i < width; ++i) {
      ASSERT_EQ(kco[slots[t] * width + i], k[t * width + i]);
      ASSERT_EQ(vco[slots[t] * width + i], v[t * width + i]);
    }
  }
  EXPECT_EQ(kco[1 * width], 0.5f);  // untouched slot
}

// The fused RoPE + cache write equals rope() then write_kv_cache() on fused QKV rows, bit for
// bit, for both layouts, GQA, a skipped (negative) slot and PDL launches.
TEST_F(CudaKernelsTest, RopeWriteKvEqualsRopeThenWriteKvCache) {
  std::mt19937 rng(8);
  for (model::DType d : kAllDTypes) {
    for (auto layout : {model::RopeLayout::kInterleaved, model::RopeLayout::kHalves}) {
      SCOPED_TRACE(std::string(dtype_label(d)) + " layout " +
                   std::to_string(static_cast<int>(layout)));
      const int n_q = 8, n_kv = 2, hd = 64, blocks = 4, bs = 16, tokens = 5;
      const int row = (n_q + 2 * n_kv) * hd + 8;  // padded row stride
      const int width = n_kv * hd;
      auto qkv = random_values(rng, static_cast<size_t>(tokens) * row, d);
      std::vector<int32_t> pos = {0, 5, 17, 1000, 4095};
      std::vector<int32_t> slots = {3 * bs + 0, 0, 1 * bs + 15, -1, 2 * bs + 7};
      auto table = upload_rope_inv_freq(hd, 10000.0f, model::RopeScaling{}, stream());
      ASSERT_TRUE(table.has_value()) << table.status().to_string();
      auto a = upload(d, qkv), b = upload(d, qkv);
      auto dpos = upload_raw(pos), ds = upload_raw(slots);
      const std::vector<float> init(static_cast<size_t>(blocks) * bs * width, 0.5f);
      auto kca = upload(d, init), vca = upload(d, init), kcb = upload(d, init),
           vcb = upload(d, init);
      ASSERT_TRUE(rope(stream(), d, a.data(), dpos.as<int32_t>(), table->as<float>(), tokens,
                       n_q + n_kv, hd, row, layout)
                      .is_ok());
      const size_t eb = dtype_bytes(d);
      auto* base = static_cast<uint8_t*>(a.data());
      ASSERT_TRUE(write_kv_cache(stream(), d, kca.data(), vca.data(), base + n_q * hd * eb,
                                 base + (n_q + n_kv) * hd * eb, ds.as<int32_t>(), tokens, n_kv, hd,
                                 row)
                      .is_ok());
      ASSERT_TRUE(rope_write_kv(stream(), d, b.data(), dpos.as<int32_t>(), table->as<float>(),
                                tokens, n_q, n_kv, hd, row, layout, kcb.data(), vcb.data(),
                                ds.as<int32_t>(), true)
                      .is_ok());
      EXPECT_EQ(download(d, a, qkv.size()), download(d, b, qkv.size()));
      const auto kb = download(d, kcb, init.size());
      EXPECT_EQ(download(d, kca, init.size()), kb);
      EXPECT_EQ(download(d, vca, init.size()), download(d, vcb, init.size()));
      EXPECT_NE(kb[3 * bs * width], 0.5f);  // written
      EXPECT_EQ(kb[1 * width], 0.5f);       // untouched slot
    }
  }
  EXPECT_EQ(rope_write_kv(stream(), model::DType::kBF16, nullptr, nullptr, nullptr, 1, 4, 2, 64,
                          7 * 64, model::RopeLayout::kHalves, nullptr, nullptr, nullptr)
                .code(),
            StatusCode::kInvalidArgument);  // row shorter than q + k + v heads
}

TEST_F(CudaKernelsTest, RejectsBadArguments) {
  EXPECT_EQ(rmsnorm(stream(), model::DType::kQ8_0, nullptr, nullptr, nullptr, 1, 8, 1e-5f).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(rope(stream(), model::DType::kF32, nullptr, nullptr, nullptr, 1, 1, 7, 7,
                 model::RopeLayout::kHalves)
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(
      rmsnorm(stream(), model::DType::kF32, nullptr, nullptr, nullptr, 0, 8, 1e-5f).is_ok());
}

}  // namespace
}  // namespace turbine::cuda
