// Paged decode and prefill attention against a float64 CPU reference over the same block tables.
#include "cuda/attention.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "cuda_test_util.h"

namespace turbine::cuda {
namespace {

using testing::CudaTest;
using testing::download;
using testing::dtype_label;
using testing::kAllDTypes;
using testing::poisoned;
using testing::random_values;
using testing::rel_error;
using testing::tolerance;
using testing::upload;
using testing::upload_raw;

constexpr int kBlockSize = 16;

// A cache with each sequence's blocks scattered over a shuffled pool.
struct PagedFixture {
  int n_kv, hd, max_blocks;
  std::vector<int> ctx;
  std::vector<int32_t> tables;  // [n_seqs][max_blocks]
  std::vector<float> k, v;      // [num_blocks][bs][n_kv][hd]
  DeviceBuffer dk, dv, dtables, dctx;

  PagedFixture(std::mt19937& rng, model::DType d, std::vector<int> ctx_lens, int n_kv_heads,
               int head_dim)
      : n_kv(n_kv_heads), hd(head_dim), ctx(std::move(ctx_lens)) {
    max_blocks = 1;
    int total = 0;
    for (int c : ctx) {
      max_blocks = std::max(max_blocks, (c + kBlockSize - 1) / kBlockSize);
      total += (c + kBlockSize - 1) / kBlockSize;
    }
    const int num_blocks = total + 3;  // a few blocks nobody owns
    std::vector<int32_t> pool(num_blocks);
    std::iota(pool.begin(), pool.end(), 0);
    std::shuffle(pool.begin(), pool.end(), rng);
    tables.assign(ctx.size() * max_blocks, 0);
    size_t next = 0;
    for (size_t s = 0; s < ctx.size(); ++s)
      for (int b = 0; b < (ctx[s] + kBlockSize - 1) / kBlockSize; ++b)
        tables[s * max_blocks + b] = pool[next++];
    const size_t n = static_cast<size_t>(num_blocks) * kBlockSize * n_kv * hd;
    k = random_values(rng, n, d);
    v = random_values(rng, n, d);
    dk = upload(d, k);
    dv = upload(d, v);
    dtables = upload_raw(tables);
    std::vector<int32_t> c32(ctx.begin(), ctx.end());
    dctx = upload_raw(c32);
  }

  PagedKv view() const {
    PagedKv kv;
    kv.k_cache = dk.data();
    kv.v_cache = dv.data();
    kv.block_size = kBlockSize;
    kv.n_kv_heads = n_kv;
    kv.head_dim = hd;
    kv.block_tables = dtables.as<int32_t>();
    kv.max_blocks_per_seq = max_blocks;
    kv.context_lens = dctx.as<int32_t>();
    return kv;
  }

  const float* row(const std::vector<float>& cache, int seq, int t, int kvh) const {
    const int blk = tables[seq * max_blocks + t / kBlockSize];
    return &cache[((static_cast<size_t>(blk) * kBlockSize + t % kBlockSize) * n_kv + kvh) * hd];
  }

  // Attention of one query vector over keys [0, n_keys) of `seq`, kv head kvh.
  void reference(const float* q, int seq, int kvh, int n_keys, float scale, double* out) const {
    std::vector<double> s(n_keys);
    double mx = -1e300;
    for (int t = 0; t < n_keys; ++t) {
      const float* kr = row(k, seq, t, kvh);
      double dot = 0.0;
      for (int i = 0; i < hd; ++i) dot += double{q[i]} * kr[i];
      s[t] = dot * scale;
      mx = std::max(mx, s[t]);
    }
    double sum = 0.0;
    for (double& x : s) sum += (x = std::exp(x - mx));
    for (int i = 0; i < hd; ++i) out[i] = 0.0;
    for (int t = 0; t < n_keys; ++t) {
      const float* vr = row(v, seq, t, kvh);
      for (int i = 0; i < hd; ++i) out[i] += s[t] / sum * vr[i];
    }
  }
};

class CudaAttentionTest : public CudaTest {};

TEST_F(CudaAttentionTest, PagedDecodeMatchesReference) {
  std::mt19937 rng(11);
  const std::vector<int> ctx = {1, 17, 1000, 4096};
  for (model::DType d : kAllDTypes) {
    for (int hd : {8, 64, 96, 128}) {  // 8 and 96: the generic kernel
      for (int ratio : {1, 4, 8}) {
        SCOPED_TRACE(std::string(dtype_label(d)) + " hd=" + std::to_string(hd) +
                     " gqa=" + std::to_string(ratio));
        const int n_kv = 2, n_q = n_kv * ratio, n_seqs = static_cast<int>(ctx.size());
        PagedFixture f(rng, d, ctx, n_kv, hd);
        auto q = random_values(rng, n_seqs * n_q * hd, d);
        auto dq = upload(d, q);
        auto dout = poisoned(d, n_seqs * n_q * hd);
        DecodeAttentionArgs a;
        a.dtype = d;
        a.out = dout.data();
        a.q = dq.data();
        a.n_seqs = n_seqs;
        a.n_q_heads = n_q;
        a.max_context_len = 4096;
        a.scale = 1.0f / std::sqrt(static_cast<float>(hd));
        a.workspace_bytes = decode_attention_workspace_bytes(n_seqs, n_q, hd, a.max_context_len);
        auto ws = DeviceBuffer::allocate(a.workspace_bytes);
        ASSERT_TRUE(ws.has_value());
        a.workspace = ws->data();
        ASSERT_TRUE(paged_decode_attention(stream(), f.view(), a).is_ok());
        auto out = download(d, dout, q.size());
        std::vector<double> ref(q.size());
        for (int s = 0; s < n_seqs; ++s)
          for (int h = 0; h < n_q; ++h)
            f.reference(&q[(s * n_q + h) * hd], s, h / ratio, ctx[s], a.scale,
                        &ref[(s * n_q + h) * hd]);
        // Per-sequence check so a short context is not drowned out by the long ones.
        for (int s = 0; s < n_seqs; ++s) {
          const size_t b = static_cast<size_t>(s) * n_q * hd, e = b + static_cast<size_t>(n_q) * hd;
          EXPECT_LT(
              rel_error({out.begin() + b, out.begin() + e}, {ref.begin() + b, ref.begin() + e}),
              tolerance(d))
              << "ctx " << ctx[s];
        }
      }
    }
  }
}

TEST_F(CudaAttentionTest, PagedDecodeSinglePartitionNeedsNoWorkspace) {
  std::mt19937 rng(12);
  const model::DType d = model::DType::kBF16;
  PagedFixture f(rng, d, {300, 5}, 1, 128);
  auto q = random_values(rng, 2 * 2 * 128, d);
  auto dq = upload(d, q);
  auto dout = poisoned(d, q.size());
  DecodeAttentionArgs a;
  a.dtype = d;
  a.out = dout.data();
  a.q = dq.data();
  a.n_seqs = 2;
  a.n_q_heads = 2;
  a.max_context_len = 300;
  a.scale = 0.1f;
  EXPECT_EQ(decode_attention_workspace_bytes(2, 2, 128, 300), 0u);
  ASSERT_TRUE(paged_decode_attention(stream(), f.view(), a).is_ok());
  auto out = download(d, dout, q.size());
  std::vector<double> ref(q.size());
  for (int s = 0; s < 2; ++s)
    for (int h = 0; h < 2; ++h)
      f.reference(&q[(s * 2 + h) * 128], s, 0, f.ctx[s], 0.1f, &ref[(s * 2 + h) * 128]);
  EXPECT_LT(rel_error(out, ref), tolerance(d));

  a.max_context_len = 600;  // needs a workspace now
  EXPECT_EQ(paged_decode_attention(stream(), f.view(), a).code(), StatusCode::kInvalidArgument);
  PagedKv bad = f.view();
  bad.head_dim = 258;
  EXPECT_EQ(paged_decode_attention(stream(), bad, a).code(), StatusCode::kUnimplemented);
}

// Sequences with a cached prefix and a chunk of new tokens: (prefix, chunk) pairs.
TEST_F(CudaAttentionTest, PrefillWithCachedPrefixMatchesReference) {
  std::mt19937 rng(13);
  const std::vector<std::pair<int, int>> seqs = {{0, 1},    {0, 17},   {5, 40},
                                                 {960, 64}, {16, 100}, {0, 300}};
  for (model::DType d : kAllDTypes) {
    for (int hd : {8, 64, 96, 128}) {  // 8 and 96: the generic kernel
      for (int ratio : {1, 4, 8}) {
        SCOPED_TRACE(std::string(dtype_label(d)) + " hd=" + std::to_string(hd) +
                     " gqa=" + std::to_string(ratio));
        const int n_kv = 2, n_q = n_kv * ratio;
        std::vector<int> ctx;
        std::vector<int32_t> cu = {0};
        int max_q = 0;
        for (auto [prefix, chunk] : seqs) {
          ctx.push_back(prefix + chunk);
          cu.push_back(cu.back() + chunk);
          max_q = std::max(max_q, chunk);
        }
        const int n_tokens = cu.back();
        PagedFixture f(rng, d, ctx, n_kv, hd);
        auto q = random_values(rng, static_cast<size_t>(n_tokens) * n_q * hd, d);
        auto dq = upload(d, q);
        auto dcu = upload_raw(cu);
        auto dout = poisoned(d, q.size());
        PrefillAttentionArgs a;
        a.dtype = d;
        a.out = dout.data();
        a.q = dq.data();
        a.cu_q_lens = dcu.as<int32_t>();
        a.n_seqs = static_cast<int>(seqs.size());
        a.n_q_heads = n_q;
        a.max_q_len = max_q;
        a.scale = 1.0f / std::sqrt(static_cast<float>(hd));
        ASSERT_TRUE(prefill_attention(stream(), f.view(), a).is_ok());
        auto out = download(d, dout, q.size());
        std::vector<double> ref(q.size());
        for (size_t s = 0; s < seqs.size(); ++s) {
          const int prefix = seqs[s].first;
          for (int i = 0; i < seqs[s].second; ++i) {
            const size_t row = static_cast<size_t>(cu[s] + i) * n_q * hd;
            for (int h = 0; h < n_q; ++h)
              f.reference(&q[row + h * hd], static_cast<int>(s), h / ratio, prefix + i + 1, a.scale,
                          &ref[row + h * hd]);
          }
        }
        for (size_t s = 0; s < seqs.size(); ++s) {
          const size_t b = static_cast<size_t>(cu[s]) * n_q * hd,
                       e = static_cast<size_t>(cu[s + 1]) * n_q * hd;
          EXPECT_LT(
              rel_error({out.begin() + b, out.begin() + e}, {ref.begin() + b, ref.begin() + e}),
              tolerance(d))
              << "prefix " << seqs[s].first << " chunk " << seqs[s].second;
        }
      }
    }
  }
}

}  // namespace
}  // namespace turbine::cuda
