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

constexpr int kDefaultBlockSize = 16;

// A cache with each sequence's blocks scattered over a shuffled pool.
struct PagedFixture {
  int n_kv, hd, bs, max_blocks;
  std::vector<int> ctx;
  std::vector<int32_t> tables;  // [n_seqs][max_blocks]
  std::vector<float> k, v;      // [num_blocks][bs][n_kv][hd]
  DeviceBuffer dk, dv, dtables, dctx;

  PagedFixture(std::mt19937& rng, model::DType d, std::vector<int> ctx_lens, int n_kv_heads,
               int head_dim, int block_size = kDefaultBlockSize)
      : n_kv(n_kv_heads), hd(head_dim), bs(block_size), ctx(std::move(ctx_lens)) {
    max_blocks = 1;
    int total = 0;
    for (int c : ctx) {
      max_blocks = std::max(max_blocks, (c + bs - 1) / bs);
      total += (c + bs - 1) / bs;
    }
    const int num_blocks = total + 3;  // a few blocks nobody owns
    std::vector<int32_t> pool(num_blocks);
    std::iota(pool.begin(), pool.end(), 0);
    std::shuffle(pool.begin(), pool.end(), rng);
    tables.assign(ctx.size() * max_blocks, 0);
    size_t next = 0;
    for (size_t s = 0; s < ctx.size(); ++s)
      for (int b = 0; b < (ctx[s] + bs - 1) / bs; ++b) tables[s * max_blocks + b] = pool[next++];
    const size_t n = static_cast<size_t>(num_blocks) * bs * n_kv * hd;
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
    kv.block_size = bs;
    kv.n_kv_heads = n_kv;
    kv.head_dim = hd;
    kv.block_tables = dtables.as<int32_t>();
    kv.max_blocks_per_seq = max_blocks;
    kv.context_lens = dctx.as<int32_t>();
    return kv;
  }

  const float* row(const std::vector<float>& cache, int seq, int t, int kvh) const {
    const int blk = tables[seq * max_blocks + t / bs];
    return &cache[((static_cast<size_t>(blk) * bs + t % bs) * n_kv + kvh) * hd];
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

// F16/BF16 run the tensor-core kernel (up to 16 q heads per kv head) and, with tensor_cores
// off, the SIMT kernel that F32 and larger groups use.
TEST_F(CudaAttentionTest, PagedDecodeMatchesReference) {
  std::mt19937 rng(11);
  const std::vector<int> ctx = {1, 17, 1000, 4096};
  for (model::DType d : kAllDTypes) {
    for (int hd : {8, 64, 96, 128}) {  // 8 and 96: the generic kernel
      for (auto [ratio, tc] : {std::pair{1, true}, std::pair{4, true}, std::pair{8, true},
                               std::pair{16, true}, std::pair{4, false}, std::pair{8, false}}) {
        if (!tc && d == model::DType::kF32) continue;  // F32 is SIMT either way
        SCOPED_TRACE(std::string(dtype_label(d)) + " hd=" + std::to_string(hd) +
                     " gqa=" + std::to_string(ratio) + (tc ? "" : " simt"));
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
        a.tensor_cores = tc;
        a.workspace_bytes =
            decode_attention_workspace_bytes(n_seqs, n_q, n_kv, hd, a.max_context_len);
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
  PagedFixture f(rng, d, {30, 5, 80}, 1, 128);  // the third only widens the block tables
  auto q = random_values(rng, 2 * 2 * 128, d);
  auto dq = upload(d, q);
  auto dout = poisoned(d, q.size());
  DecodeAttentionArgs a;
  a.dtype = d;
  a.out = dout.data();
  a.q = dq.data();
  a.n_seqs = 2;
  a.n_q_heads = 2;
  a.max_context_len = 30;
  a.scale = 0.1f;
  EXPECT_EQ(decode_attention_workspace_bytes(2, 2, 1, 128, 30), 0u);
  ASSERT_TRUE(paged_decode_attention(stream(), f.view(), a).is_ok());
  auto out = download(d, dout, q.size());
  std::vector<double> ref(q.size());
  for (int s = 0; s < 2; ++s)
    for (int h = 0; h < 2; ++h)
      f.reference(&q[(s * 2 + h) * 128], s, 0, f.ctx[s], 0.1f, &ref[(s * 2 + h) * 128]);
  EXPECT_LT(rel_error(out, ref), tolerance(d));

  a.max_context_len = 33;  // two partitions: needs a workspace now
  EXPECT_EQ(paged_decode_attention(stream(), f.view(), a).code(), StatusCode::kInvalidArgument);
  PagedKv bad = f.view();
  bad.head_dim = 258;
  EXPECT_EQ(paged_decode_attention(stream(), bad, a).code(), StatusCode::kUnimplemented);
}

// The split follows the call's shape: long partitions when the batch fills the GPU, short ones
// (down to kDecodeMinPartitionTokens) for small batches; the backend's one-off reservation
// covers every smaller call.
TEST(CudaDecodePartitionTest, SizeFollowsTheBatchAndTheBoundCoversEveryCall) {
  // Llama-3-8B: 8 kv heads.
  EXPECT_EQ(decode_partition_tokens(64, 8, 1024), kDecodePartitionTokens);
  EXPECT_EQ(decode_partition_tokens(128, 8, 512), kDecodePartitionTokens);
  EXPECT_EQ(decode_partition_tokens(1, 8, 1024), kDecodeMinPartitionTokens);
  EXPECT_EQ(decode_partition_tokens(1, 8, 32768), kDecodePartitionTokens);  // fills the GPU
  EXPECT_EQ(decode_partition_tokens(1, 8, 4096), 64);
  int prev = kDecodePartitionTokens;
  for (int n : {1, 2, 4, 8, 16, 32, 64, 128, 256}) {
    const int p = decode_partition_tokens(n, 8, 2048);
    EXPECT_GE(p, kDecodeMinPartitionTokens);
    EXPECT_LE(p, kDecodePartitionTokens);
    EXPECT_EQ(p & (p - 1), 0) << p;
    if (n > 1) {
      EXPECT_GE(p, prev) << "n " << n;  // more sequences, longer partitions
    }
    prev = p;
  }
  for (auto [n_q, n_kv] : {std::pair{32, 8}, std::pair{28, 4}, std::pair{16, 16}})
    for (int max_seqs : {1, 3, 64, 256})
      for (int max_ctx : {1, 64, 513, 4096, 131072}) {
        const size_t bound = decode_attention_workspace_bound(max_seqs, n_q, n_kv, 128, max_ctx);
        for (int n = 1; n <= max_seqs; n = n * 2 + 1)
          for (int c = 1; c <= max_ctx; c = c * 3 + 5)
            EXPECT_LE(decode_attention_workspace_bytes(n, n_q, n_kv, 128, c), bound)
                << "n " << n << " ctx " << c << " of " << max_seqs << " x " << max_ctx << " q "
                << n_q << " kv " << n_kv;
      }
}

// A CUDA graph's decode step: the grid is sized for a context bucket far above the actual
// contexts; partitions past each sequence's end must not change the result. Also a batch large
// enough for the longest partitions (Llama-3-8B heads). Every partition size gives the same
// result: automatic, one step of the kernel's loop (16), and sizes that do not divide a block.
TEST_F(CudaAttentionTest, PagedDecodeBucketWiderThanContexts) {
  std::mt19937 rng(14);
  struct Case {
    int n_seqs, n_kv, ratio, bucket;
  };
  for (const Case c : {Case{1, 8, 4, 4096}, Case{3, 2, 4, 1024}, Case{48, 8, 4, 2048}}) {
    for (model::DType d : {model::DType::kBF16, model::DType::kF16}) {
      SCOPED_TRACE(std::string(dtype_label(d)) + " seqs=" + std::to_string(c.n_seqs) +
                   " bucket=" + std::to_string(c.bucket));
      std::uniform_int_distribution<int> len(1, std::min(1500, c.bucket));
      std::vector<int> ctx(static_cast<size_t>(c.n_seqs));
      for (int& x : ctx) x = len(rng);
      ctx[0] = 600;  // past the first 512-token partition
      const int hd = 128, n_q = c.n_kv * c.ratio;
      PagedFixture f(rng, d, ctx, c.n_kv, hd);
      // The graph's block tables are full width for the bucket (unused entries 0).
      PagedKv kv = f.view();
      std::vector<int32_t> wide(static_cast<size_t>(c.n_seqs) * (c.bucket / f.bs), 0);
      for (int s = 0; s < c.n_seqs; ++s)
        for (int b = 0; b < f.max_blocks; ++b)
          wide[static_cast<size_t>(s) * (c.bucket / f.bs) + b] = f.tables[s * f.max_blocks + b];
      auto dwide = upload_raw(wide);
      kv.block_tables = dwide.as<int32_t>();
      kv.max_blocks_per_seq = c.bucket / f.bs;
      auto q = random_values(rng, static_cast<size_t>(c.n_seqs) * n_q * hd, d);
      auto dq = upload(d, q);
      std::vector<std::vector<double>> refs(static_cast<size_t>(c.n_seqs));
      for (int s = 0; s < c.n_seqs; ++s) {
        refs[static_cast<size_t>(s)].resize(static_cast<size_t>(n_q) * hd);
        for (int h = 0; h < n_q; ++h)
          f.reference(&q[(static_cast<size_t>(s) * n_q + h) * hd], s, h / c.ratio, ctx[s],
                      1.0f / std::sqrt(static_cast<float>(hd)),
                      &refs[static_cast<size_t>(s)][static_cast<size_t>(h) * hd]);
      }
      struct Variant {
        int part;
        bool tc;
        int warps, stages;  // of the tensor-core kernel; 0: its default
      };
      for (const Variant v :
           {Variant{0, true, 0, 0}, Variant{16, true, 0, 0}, Variant{200, true, 0, 0},
            Variant{kDecodePartitionTokens, true, 0, 0}, Variant{0, true, 2, 3},
            Variant{200, true, 2, 4}, Variant{0, true, 4, 2}, Variant{200, true, 4, 3},
            Variant{0, false, 0, 0}, Variant{16, false, 0, 0}, Variant{200, false, 0, 0}}) {
        const int part = v.part;
        SCOPED_TRACE("part_tokens " + std::to_string(part) + (v.tc ? " tc " : " simt ") +
                     std::to_string(v.warps) + "x" + std::to_string(v.stages));
        auto dout = poisoned(d, q.size());
        DecodeAttentionArgs a;
        a.dtype = d;
        a.out = dout.data();
        a.q = dq.data();
        a.n_seqs = c.n_seqs;
        a.n_q_heads = n_q;
        a.max_context_len = c.bucket;
        a.scale = 1.0f / std::sqrt(static_cast<float>(hd));
        a.part_tokens = part;
        a.tensor_cores = v.tc;
        a.tc_warps = v.warps;
        a.tc_stages = v.stages;
        a.workspace_bytes =
            decode_attention_workspace_bytes(c.n_seqs, n_q, c.n_kv, hd, c.bucket, part);
        ASSERT_GT(a.workspace_bytes, 0u);
        auto ws = DeviceBuffer::allocate(a.workspace_bytes);
        ASSERT_TRUE(ws.has_value());
        a.workspace = ws->data();
        ASSERT_TRUE(paged_decode_attention(stream(), kv, a).is_ok());
        auto out = download(d, dout, q.size());
        for (int s = 0; s < c.n_seqs; ++s) {
          const auto& ref = refs[static_cast<size_t>(s)];
          const size_t b = static_cast<size_t>(s) * n_q * hd;
          EXPECT_LT(rel_error({out.begin() + b, out.begin() + b + ref.size()}, ref), tolerance(d))
              << "ctx " << ctx[s];
        }
      }
    }
  }
}

// Prefill on tensor cores (F16/BF16; F32 keeps the CUDA-core kernel and is checked too): odd
// chunk lengths around the 64-row query tiles and 64-key K/V tiles, chunks continuing a cached
// prefix (chunked prefill), single-token chunks, GQA ratios 1/4/8, head_dim 64 and 128, and a
// block size that does not divide the tiles.
TEST_F(CudaAttentionTest, PrefillTensorCoresOddLengthsAndChunks) {
  std::mt19937 rng(15);
  const std::vector<std::pair<int, int>> seqs = {{0, 1},   {0, 63},    {0, 65},  {7, 130},
                                                 {64, 64}, {1000, 77}, {0, 257}, {333, 1}};
  struct Heads {
    int n_kv, ratio;
  };
  for (model::DType d : kAllDTypes) {
    for (int hd : {64, 128}) {
      for (const Heads hh : {Heads{3, 1}, Heads{2, 4}, Heads{1, 8}}) {
        for (int bs : {16, 7}) {
          if (bs == 7 && (hh.ratio != 4 || hd != 128)) continue;  // one odd block size is enough
          SCOPED_TRACE(std::string(dtype_label(d)) + " hd=" + std::to_string(hd) +
                       " gqa=" + std::to_string(hh.ratio) + " bs=" + std::to_string(bs));
          const int n_q = hh.n_kv * hh.ratio;
          std::vector<int> ctx;
          std::vector<int32_t> cu = {0};
          int max_q = 0;
          for (auto [prefix, chunk] : seqs) {
            ctx.push_back(prefix + chunk);
            cu.push_back(cu.back() + chunk);
            max_q = std::max(max_q, chunk);
          }
          const int n_tokens = cu.back();
          PagedFixture f(rng, d, ctx, hh.n_kv, hd, bs);
          // Rows wider than the heads (a fused QKV row): q_row_stride > n_q * hd.
          const int64_t stride = static_cast<int64_t>(n_q + 2 * hh.n_kv) * hd;
          auto qrows = random_values(rng, static_cast<size_t>(n_tokens) * stride, d);
          auto dq = upload(d, qrows);
          auto dcu = upload_raw(cu);
          auto dout = poisoned(d, static_cast<size_t>(n_tokens) * n_q * hd);
          PrefillAttentionArgs a;
          a.dtype = d;
          a.out = dout.data();
          a.q = dq.data();
          a.q_row_stride = stride;
          a.cu_q_lens = dcu.as<int32_t>();
          a.n_seqs = static_cast<int>(seqs.size());
          a.n_q_heads = n_q;
          a.max_q_len = max_q;
          a.scale = 1.0f / std::sqrt(static_cast<float>(hd));
          ASSERT_TRUE(prefill_attention(stream(), f.view(), a).is_ok());
          auto out = download(d, dout, static_cast<size_t>(n_tokens) * n_q * hd);
          for (size_t s = 0; s < seqs.size(); ++s) {
            const int prefix = seqs[s].first;
            std::vector<double> ref(static_cast<size_t>(seqs[s].second) * n_q * hd);
            for (int i = 0; i < seqs[s].second; ++i)
              for (int h = 0; h < n_q; ++h)
                f.reference(&qrows[static_cast<size_t>(cu[s] + i) * stride + h * hd],
                            static_cast<int>(s), h / hh.ratio, prefix + i + 1, a.scale,
                            &ref[(static_cast<size_t>(i) * n_q + h) * hd]);
            const size_t b = static_cast<size_t>(cu[s]) * n_q * hd;
            EXPECT_LT(rel_error({out.begin() + b, out.begin() + b + ref.size()}, ref), tolerance(d))
                << "prefix " << prefix << " chunk " << seqs[s].second;
          }
        }
      }
    }
  }
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
