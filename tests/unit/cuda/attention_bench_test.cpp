// Timing of decode/prefill attention against the device's copy bandwidth. Runs only with
// TURBINE_CUDA_BENCH=1 (slow; not a parity test). Prints one line per measurement.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <random>

#include "cuda/attention.h"
#include "cuda_test_util.h"

namespace turbine::cuda {
namespace {

using testing::CudaTest;

// Median milliseconds of `iters` runs of f, timed with events, after warm-up.
template <typename F>
float median_ms(cudaStream_t s, int iters, F&& f) {
  for (int i = 0; i < 5; ++i) f();
  std::vector<float> ms;
  auto e0 = Event::create(), e1 = Event::create();
  for (int i = 0; i < iters; ++i) {
    EXPECT_TRUE(e0->record(s).is_ok());
    f();
    EXPECT_TRUE(e1->record(s).is_ok());
    EXPECT_EQ(cudaEventSynchronize(e1->get()), cudaSuccess);
    float t = 0;
    EXPECT_EQ(cudaEventElapsedTime(&t, e0->get(), e1->get()), cudaSuccess);
    ms.push_back(t);
  }
  std::nth_element(ms.begin(), ms.begin() + iters / 2, ms.end());
  return ms[iters / 2];
}

class CudaAttentionBench : public CudaTest {
 protected:
  void SetUp() override {
    const char* env = std::getenv("TURBINE_CUDA_BENCH");
    if (env == nullptr || std::string(env) != "1") GTEST_SKIP() << "set TURBINE_CUDA_BENCH=1";
    CudaTest::SetUp();
  }
};

TEST_F(CudaAttentionBench, DecodeLlama3_8B) {
  const model::DType d = model::DType::kBF16;
  const int n_kv = 8, n_q = 32, hd = 128, bs = 16;
  // Copy bandwidth: 1 GiB device-to-device, bytes read + written.
  const size_t copy_bytes = size_t{1} << 30;
  auto src = DeviceBuffer::allocate(copy_bytes), dst = DeviceBuffer::allocate(copy_bytes);
  ASSERT_TRUE(src.has_value() && dst.has_value());
  ASSERT_EQ(cudaMemset(src->data(), 1, copy_bytes), cudaSuccess);
  const float copy_ms = median_ms(stream(), 20, [&] {
    (void)cudaMemcpyAsync(dst->data(), src->data(), copy_bytes, cudaMemcpyDeviceToDevice, stream());
  });
  const double copy_gbs = 2.0 * copy_bytes / (copy_ms * 1e-3) / 1e9;
  std::printf("BENCH copy: %.3f ms, %.0f GB/s (read+write)\n", copy_ms, copy_gbs);

  // n_seqs sequences of ctx tokens each; the grid sized for max_ctx (a CUDA graph's context
  // bucket, block tables that wide); part 0: the automatic partition size.
  auto run = [&](int n_seqs, int ctx, int max_ctx, int part, bool tc, int warps = 0,
                 int stages = 0) {
    const int blocks_per_seq = (ctx + bs - 1) / bs, num_blocks = n_seqs * blocks_per_seq;
    const int width = (max_ctx + bs - 1) / bs;
    const size_t cache_elems = static_cast<size_t>(num_blocks) * bs * n_kv * hd;
    std::mt19937 rng(7);
    std::vector<int32_t> ids(static_cast<size_t>(num_blocks));
    std::iota(ids.begin(), ids.end(), 0);
    std::shuffle(ids.begin(), ids.end(), rng);
    std::vector<int32_t> tables(static_cast<size_t>(n_seqs) * width, 0);
    for (int q = 0; q < n_seqs; ++q)
      std::copy_n(ids.begin() + static_cast<ptrdiff_t>(q) * blocks_per_seq, blocks_per_seq,
                  tables.begin() + static_cast<ptrdiff_t>(q) * width);
    // The caches repeat one random chunk (generating gigabytes on the host is slow).
    auto fill = [&](size_t elems) {
      const size_t chunk_elems = std::min<size_t>(elems, size_t{1} << 22);
      auto chunk = testing::upload(d, testing::random_values(rng, chunk_elems, d));
      auto buf = DeviceBuffer::allocate(elems * 2);
      EXPECT_TRUE(buf.has_value());
      for (size_t at = 0; at < elems; at += chunk_elems)
        EXPECT_EQ(cudaMemcpy(buf->as<uint8_t>() + at * 2, chunk.data(),
                             std::min(chunk_elems, elems - at) * 2, cudaMemcpyDeviceToDevice),
                  cudaSuccess);
      return std::move(*buf);
    };
    auto dk = fill(cache_elems);
    auto dv = fill(cache_elems);
    auto dt = testing::upload_raw(tables);
    auto dc = testing::upload_raw(std::vector<int32_t>(n_seqs, ctx));
    auto dq =
        testing::upload(d, testing::random_values(rng, static_cast<size_t>(n_seqs) * n_q * hd, d));
    auto dout = testing::poisoned(d, static_cast<size_t>(n_seqs) * n_q * hd);
    PagedKv kv{dk.data(), dv.data(), bs, n_kv, hd, dt.as<int32_t>(), width, dc.as<int32_t>()};
    DecodeAttentionArgs a;
    a.dtype = d;
    a.out = dout.data();
    a.q = dq.data();
    a.n_seqs = n_seqs;
    a.n_q_heads = n_q;
    a.max_context_len = max_ctx;
    a.scale = 1.0f / std::sqrt(128.0f);
    a.part_tokens = part;
    a.tensor_cores = tc;
    a.tc_warps = warps;
    a.tc_stages = stages;
    a.workspace_bytes = decode_attention_workspace_bytes(n_seqs, n_q, n_kv, hd, max_ctx, part);
    auto ws = DeviceBuffer::allocate(std::max<size_t>(a.workspace_bytes, 1));
    a.workspace = ws->data();
    const float ms = median_ms(
        stream(), 100, [&] { ASSERT_TRUE(paged_decode_attention(stream(), kv, a).is_ok()); });
    const double kv_bytes = 2.0 * static_cast<double>(n_seqs) * ctx * n_kv * hd * 2;
    const int used_part = part > 0 ? part : decode_partition_tokens(n_seqs, n_kv, max_ctx);
    std::printf(
        "BENCH decode bf16 %s %dx%d seqs=%d ctx=%d grid_ctx=%d part=%d%s q=%d kv=%d hd=%d: %.1f "
        "us, KV read %.0f GB/s = %.0f%% of copy\n",
        tc ? "tc  " : "simt", warps, stages, n_seqs, ctx, max_ctx, used_part,
        part > 0 ? "" : " (auto)", n_q, n_kv, hd, ms * 1e3, kv_bytes / (ms * 1e-3) / 1e9,
        100.0 * kv_bytes / (ms * 1e-3) / 1e9 / copy_gbs);
  };
  // Both kernels at every partition size: the shapes of earlier measurements, batch-1 decode in
  // the graph's 1,024 and 4,096 buckets, and a 64-sequence step of 512-token prompts (the issue's
  // batch benchmark: contexts 513 to 640 in the 1,024 bucket).
  struct Shape {
    int n_seqs, ctx, grid_ctx;
  };
  for (const Shape sh :
       {Shape{32, 2048, 2048}, Shape{8, 8192, 8192}, Shape{128, 512, 512}, Shape{1, 32768, 32768},
        Shape{1, 600, 1024}, Shape{1, 2000, 4096}, Shape{64, 515, 1024}, Shape{64, 576, 1024},
        Shape{64, 640, 1024}, Shape{256, 600, 1024}}) {
    for (int part : {0, 128, 256, 512}) run(sh.n_seqs, sh.ctx, sh.grid_ctx, part, false);
    // The tensor-core kernel's (warps, stages) shapes; 0x0: its default.
    for (auto [warps, stages] :
         {std::pair{0, 0}, std::pair{2, 2}, std::pair{2, 4}, std::pair{4, 2}, std::pair{4, 3}})
      for (int part : {0, 128, 256, 512})
        run(sh.n_seqs, sh.ctx, sh.grid_ctx, part, true, warps, stages);
  }
}

TEST_F(CudaAttentionBench, PrefillLlama3_8B) {
  const model::DType d = model::DType::kBF16;
  const int n_kv = 8, n_q = 32, hd = 128, bs = 16;
  for (int len : {512, 2048}) {
    const int blocks = len / bs;
    const size_t cache_elems = static_cast<size_t>(blocks) * bs * n_kv * hd;
    std::mt19937 rng(8);
    std::vector<int32_t> tables(static_cast<size_t>(blocks));
    std::iota(tables.begin(), tables.end(), 0);
    auto dk = testing::upload(d, testing::random_values(rng, cache_elems, d));
    auto dv = testing::upload(d, testing::random_values(rng, cache_elems, d));
    auto dt = testing::upload_raw(tables);
    auto dc = testing::upload_raw(std::vector<int32_t>{len});
    auto dcu = testing::upload_raw(std::vector<int32_t>{0, len});
    auto dq =
        testing::upload(d, testing::random_values(rng, static_cast<size_t>(len) * n_q * hd, d));
    auto dout = testing::poisoned(d, static_cast<size_t>(len) * n_q * hd);
    PagedKv kv{dk.data(), dv.data(), bs, n_kv, hd, dt.as<int32_t>(), blocks, dc.as<int32_t>()};
    PrefillAttentionArgs a;
    a.dtype = d;
    a.out = dout.data();
    a.q = dq.data();
    a.cu_q_lens = dcu.as<int32_t>();
    a.n_seqs = 1;
    a.n_q_heads = n_q;
    a.max_q_len = len;
    a.scale = 1.0f / std::sqrt(128.0f);
    const float ms =
        median_ms(stream(), 20, [&] { ASSERT_TRUE(prefill_attention(stream(), kv, a).is_ok()); });
    const double flops = 4.0 * n_q * hd * (static_cast<double>(len) * (len + 1) / 2);  // causal
    std::printf("BENCH prefill bf16 len=%d q=%d kv=%d hd=%d: %.3f ms, %.1f TFLOP/s\n", len, n_q,
                n_kv, hd, ms, flops / (ms * 1e-3) / 1e12);
  }
}

}  // namespace
}  // namespace turbine::cuda
