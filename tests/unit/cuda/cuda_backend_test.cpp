// The CUDA backend end to end against the CPU backend: random-weight tiny models of the three
// architectures (F32 to 1e-4, BF16 to BF16 tolerance) over batches that mix prefill chunks,
// cached prefixes and decode tokens, and stories260K greedy against the llama2.c golden.
#include "cuda/cuda_backend.h"

#include <gtest/gtest.h>

#include <unistd.h>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "../engine/block_tables.h"
#include "../model/model_test_util.h"
#include "cuda/device.h"
#include "engine/backend.h"
#include "model/model.h"
#include "model/random_model.h"

namespace turbine::cuda {
namespace {

namespace fs = std::filesystem;
using engine::SeqChunk;

double rel_error(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (double{a[i]} - b[i]) * (double{a[i]} - b[i]);
    den += double{b[i]} * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

class CudaBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (device_count() == 0) GTEST_SKIP() << "no CUDA device";
  }
  void TearDown() override {
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }
  std::unique_ptr<model::Model> tiny(model::Arch arch) {
    dir_ = fs::temp_directory_path() / ("turbine_cuda_backend_test_" + std::to_string(::getpid()) +
                                        "_" + std::to_string(static_cast<int>(arch)));
    model::RandomModelOptions o;
    o.arch = arch;
    o.shape = "tiny";
    o.dtype = model::DType::kF32;
    o.seed = 7;
    auto bytes = model::write_random_model(o, dir_);
    EXPECT_TRUE(bytes.has_value()) << bytes.status().to_string();
    auto m = model::load_model(dir_);
    EXPECT_TRUE(m.has_value()) << m.status().to_string();
    return m.has_value() ? std::move(m).value() : nullptr;
  }
  fs::path dir_;
};

// Three steps over four sequences: prefills of different lengths, a chunk continuing a cached
// prefix that ends mid-block, decode tokens batched with prefill chunks, a chunk without logits.
// Returns the logits of every step, concatenated.
std::vector<float> run_steps(engine::Backend& b) {
  engine::testing::SlotTables tables(b);
  std::vector<std::span<const int32_t>> t;
  for (int s = 0; s < 4; ++s) t.push_back(tables(s));
  std::vector<int32_t> p0, p1, p2, p3;
  for (int i = 0; i < 37; ++i) p0.push_back((i * 37 + 11) % 500 + 3);
  for (int i = 0; i < 9; ++i) p1.push_back((i * 91 + 5) % 500 + 3);
  for (int i = 0; i < 70; ++i) p2.push_back((i * 13 + 1) % 500 + 3);
  for (int i = 0; i < 3; ++i) p3.push_back(100 + i);
  std::vector<float> all, logits;
  const std::vector<SeqChunk> step1 = {{t[0], 0, p0, true}, {t[1], 0, p1, true}};
  EXPECT_TRUE(b.forward(step1, logits).is_ok());
  all.insert(all.end(), logits.begin(), logits.end());
  const int32_t d0 = 42, d1 = 17;
  const std::vector<SeqChunk> step2 = {{t[0], 37, {&d0, 1}, true},
                                       {t[2], 0, std::span<const int32_t>(p2).first(40), false},
                                       {t[1], 9, {&d1, 1}, true},
                                       {t[3], 0, p3, true}};
  EXPECT_TRUE(b.forward(step2, logits).is_ok());
  all.insert(all.end(), logits.begin(), logits.end());
  const int32_t d2 = 7;
  const std::vector<SeqChunk> step3 = {{t[2], 40, std::span<const int32_t>(p2).subspan(40), true},
                                       {t[3], 3, {&d2, 1}, true},
                                       {t[0], 38, {&d2, 1}, true}};
  EXPECT_TRUE(b.forward(step3, logits).is_ok());
  all.insert(all.end(), logits.begin(), logits.end());
  // Decode only (the CUDA graph path, padded to a bucket of 4).
  const std::vector<SeqChunk> step4 = {
      {t[0], 39, {&d0, 1}, true}, {t[1], 10, {&d2, 1}, true}, {t[3], 4, {&d1, 1}, true}};
  EXPECT_TRUE(b.forward(step4, logits).is_ok());
  all.insert(all.end(), logits.begin(), logits.end());
  return all;
}

TEST_F(CudaBackendTest, TinyModelsMatchCpuBackend) {
  for (model::Arch arch : {model::Arch::kLlama, model::Arch::kQwen2, model::Arch::kQwen3}) {
    SCOPED_TRACE(static_cast<int>(arch));
    auto m = tiny(arch);
    ASSERT_NE(m, nullptr);
    engine::CpuBackendOptions copts;
    copts.n_threads = 2;
    copts.max_num_seqs = 4;
    copts.max_context = 256;
    auto cpu = engine::make_cpu_backend(*m, copts);
    ASSERT_TRUE(cpu.has_value()) << cpu.status().to_string();
    const std::vector<float> ref = run_steps(**cpu);
    ASSERT_EQ(ref.size(), 11u * 512u);  // 2 + 3 + 3 + 3 rows
    for (int variant = 0; variant < 6; ++variant) {
      // f32 with and without CUDA graphs, then bf16 and f16; then bf16 and f16 with every
      // projection of <= 8 rows on the skinny gemv and gate|up + SwiGLU fused, the f16 one
      // without PDL.
      const model::DType d = variant < 2                    ? model::DType::kF32
                             : variant == 2 || variant == 4 ? model::DType::kBF16
                                                            : model::DType::kF16;
      CudaBackendOptions o;
      o.dtype = d;
      o.cuda_graphs = variant != 1;
      o.gemv_all = variant >= 4;
      o.fused_swiglu = variant >= 4;
      o.pdl = variant != 5;
      o.max_context = 256;
      o.max_num_seqs = 4;
      o.max_num_batched_tokens = 256;
      o.kv_cache_memory_bytes = int64_t{64} << 20;
      auto gpu = make_cuda_backend(*m, o);
      ASSERT_TRUE(gpu.has_value()) << gpu.status().to_string();
      EXPECT_EQ((*gpu)->name(), "cuda");
      const std::vector<float> out = run_steps(**gpu);
      ASSERT_EQ(out.size(), ref.size());
      const double tol = d == model::DType::kF32 ? 1e-4 : d == model::DType::kF16 ? 1e-2 : 4e-2;
      EXPECT_LT(rel_error(out, ref), tol) << model::dtype_name(d) << " variant " << variant;
    }
    TearDown();
  }
}

// Decode steps past one decode partition (512 positions) replay graphs whose attention splits
// the context and reduces the partitions.
TEST_F(CudaBackendTest, LongContextDecodeMatchesCpuBackend) {
  auto m = tiny(model::Arch::kLlama);
  ASSERT_NE(m, nullptr);
  engine::CpuBackendOptions copts;
  copts.n_threads = 2;
  copts.max_num_seqs = 2;
  copts.max_context = 2048;
  auto cpu = engine::make_cpu_backend(*m, copts);
  ASSERT_TRUE(cpu.has_value()) << cpu.status().to_string();
  CudaBackendOptions o;
  o.dtype = model::DType::kF32;
  o.max_context = 2048;
  o.max_num_seqs = 2;
  o.max_num_batched_tokens = 1024;
  o.kv_cache_memory_bytes = int64_t{64} << 20;
  auto gpu = make_cuda_backend(*m, o);
  ASSERT_TRUE(gpu.has_value()) << gpu.status().to_string();
  auto run = [](engine::Backend& b) {
    engine::testing::SlotTables tables(b);
    const auto t0 = tables(0), t1 = tables(1);
    std::vector<int32_t> p0, p1;
    for (int i = 0; i < 700; ++i) p0.push_back((i * 31 + 7) % 500 + 3);
    for (int i = 0; i < 1030; ++i) p1.push_back((i * 17 + 2) % 500 + 3);
    std::vector<float> all, logits;
    EXPECT_TRUE(b.forward(std::vector<SeqChunk>{{t0, 0, p0, true}}, logits).is_ok());
    EXPECT_TRUE(b.forward(std::vector<SeqChunk>{{t1, 0, p1, false}}, logits).is_ok());
    for (int step = 0; step < 3; ++step) {
      const int32_t a = 11 + step, c = 300 - step;
      EXPECT_TRUE(b.forward(std::vector<SeqChunk>{{t0, 700 + step, {&a, 1}, true},
                                                  {t1, 1030 + step, {&c, 1}, true}},
                            logits)
                      .is_ok());
      all.insert(all.end(), logits.begin(), logits.end());
    }
    return all;
  };
  const std::vector<float> ref = run(**cpu), out = run(**gpu);
  ASSERT_EQ(ref.size(), 6u * 512u);
  EXPECT_LT(rel_error(out, ref), 1e-4);
}

TEST_F(CudaBackendTest, RejectsBadChunksBeforeTouchingTheDevice) {
  auto m = tiny(model::Arch::kLlama);
  ASSERT_NE(m, nullptr);
  CudaBackendOptions o;
  o.dtype = model::DType::kF32;
  o.max_context = 64;
  o.max_num_seqs = 2;
  o.kv_cache_memory_bytes = int64_t{1} << 20;
  auto b = make_cuda_backend(*m, o);
  ASSERT_TRUE(b.has_value()) << b.status().to_string();
  std::vector<float> logits;
  const std::vector<int32_t> bad_table = {(*b)->num_blocks()}, good_table = {0, 1, 2, 3};
  const int32_t tok = 5, bad_tok = 512;
  EXPECT_EQ((*b)->forward(std::vector<SeqChunk>{{bad_table, 0, {&tok, 1}, true}}, logits).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(
      (*b)->forward(std::vector<SeqChunk>{{good_table, 0, {&bad_tok, 1}, true}}, logits).code(),
      StatusCode::kInvalidArgument);
  // Position 3 before positions 0..2 were written.
  EXPECT_EQ((*b)->forward(std::vector<SeqChunk>{{good_table, 3, {&tok, 1}, true}}, logits).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ((*b)->forward(std::vector<SeqChunk>{{good_table, 60, {&tok, 1}, true},
                                                {good_table, 61, {&tok, 1}, true}},
                          logits)
                .code(),
            StatusCode::kInvalidArgument);
  ASSERT_TRUE(
      (*b)->forward(std::vector<SeqChunk>{{good_table, 0, {&tok, 1}, false}}, logits).is_ok());
  EXPECT_TRUE(logits.empty());
}

// llama2.c's decode: piece after BOS drops its leading space; <0xXX> is a raw byte.
std::string decode_llama2c(const model::VocabSpec& v, const std::vector<int32_t>& ids) {
  std::string text;
  int32_t prev = 1;
  for (int32_t id : ids) {
    std::string piece = v.tokens[static_cast<size_t>(id)];
    for (size_t p; (p = piece.find("\xE2\x96\x81")) != std::string::npos;) piece.replace(p, 3, " ");
    if (prev == 1 && !piece.empty() && piece[0] == ' ') piece.erase(0, 1);
    unsigned byte = 0;
    if (piece.size() == 6 && std::sscanf(piece.c_str(), "<0x%02X>", &byte) == 1)
      piece = std::string(1, static_cast<char>(byte));
    text += piece;
    prev = id;
  }
  return text;
}

TEST_F(CudaBackendTest, Stories260kGreedyMatchesGolden) {
  const fs::path gguf = turbine::testing::stories_gguf();
  const fs::path golden = gguf.parent_path() / "stories260K_greedy_golden.txt";
  TURBINE_REQUIRE_ASSET(gguf);
  TURBINE_REQUIRE_ASSET(golden);
  auto m = model::load_model(gguf);
  ASSERT_TRUE(m.has_value()) << m.status().to_string();
  std::stringstream ss;
  ss << std::ifstream(golden, std::ios::binary).rdbuf();
  CudaBackendOptions o;
  o.dtype = model::DType::kF32;
  o.max_num_seqs = 2;
  o.kv_cache_memory_bytes = int64_t{16} << 20;
  auto b = make_cuda_backend(**m, o);
  ASSERT_TRUE(b.has_value()) << b.status().to_string();
  engine::testing::SlotTables tables(**b);
  const auto table = tables(0);
  std::vector<int32_t> ids;
  std::vector<float> logits;
  int32_t tok = 1;
  const int n_vocab = (*m)->config().n_vocab;
  for (int pos = 0; pos < 256; ++pos) {
    ASSERT_TRUE(
        (*b)->forward(std::vector<SeqChunk>{{table, pos, {&tok, 1}, true}}, logits).is_ok());
    tok = static_cast<int32_t>(std::max_element(logits.begin(), logits.begin() + n_vocab) -
                               logits.begin());
    if (tok == 1) break;
    ids.push_back(tok);
  }
  EXPECT_EQ(decode_llama2c((*m)->vocab(), ids) + "\n", ss.str());
}

}  // namespace
}  // namespace turbine::cuda
