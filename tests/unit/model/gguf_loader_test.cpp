#include <gtest/gtest.h>

#include <cstring>

#include "model/dtype.h"
#include "model/gguf.h"
#include "model/loaded_model.h"
#include "model/model.h"
#include "model_test_util.h"

namespace turbine::model {
namespace {

using turbine::testing::stories_gguf;
using turbine::testing::TempDir;

TEST(GgufLoader, Stories260KConfigAndVocab) {
  TURBINE_REQUIRE_ASSET(stories_gguf());
  auto m = load_model(stories_gguf());
  ASSERT_TRUE(m.has_value()) << m.status().to_string();
  const ModelConfig& c = (*m)->config();
  EXPECT_EQ(c.arch, Arch::kLlama);
  EXPECT_EQ(c.arch_name, "llama");
  EXPECT_EQ(c.dim, 64);
  EXPECT_EQ(c.n_layers, 5);
  EXPECT_EQ(c.n_heads, 8);
  EXPECT_EQ(c.n_kv_heads, 4);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.n_vocab, 512);
  EXPECT_EQ(c.ffn_dim, 172);
  EXPECT_EQ(c.max_context, 2048);  // as written by llama.cpp conversion (trained at 512)
  EXPECT_FLOAT_EQ(c.norm_eps, 1e-5f);
  EXPECT_FLOAT_EQ(c.rope_theta, 10000.0f);
  EXPECT_EQ(c.rope_layout, RopeLayout::kInterleaved);
  EXPECT_FALSE(c.qkv_bias);
  EXPECT_FALSE(c.qk_norm);

  const Weights& w = (*m)->weights();
  EXPECT_EQ(w.tok_embeddings.dtype, DType::kF32);
  EXPECT_EQ(w.tok_embeddings.rows, 512);
  EXPECT_EQ(w.tok_embeddings.cols, 64);
  ASSERT_EQ(w.layers.size(), 5u);
  EXPECT_EQ(w.layers[3].wk.rows, 32);
  EXPECT_EQ(w.layers[3].wk.cols, 64);
  EXPECT_EQ(w.layers[3].w_down.rows, 64);
  EXPECT_EQ(w.layers[3].w_down.cols, 172);
  EXPECT_EQ(w.layers[0].wq.name, "blk.0.attn_q.weight");
  // Weights are views into the mapping, not copies: the bytes sit inside the file.
  auto bytes = turbine::testing::read_bytes(stories_gguf());
  const auto* tok = static_cast<const uint8_t*>(w.tok_embeddings.data);
  const size_t n = static_cast<size_t>(w.tok_embeddings.size_bytes);
  ASSERT_EQ(n, 512u * 64u * 4u);
  bool found = false;
  for (size_t off = 0; off + n <= bytes.size(); off += 32) {
    if (std::memcmp(bytes.data() + off, tok, 256) == 0 &&
        std::memcmp(bytes.data() + off, tok, n) == 0) {
      found = true;
      break;
    }
  }
  EXPECT_TRUE(found);

  const VocabSpec& v = (*m)->vocab();
  EXPECT_EQ(v.model, "llama");
  ASSERT_EQ(v.tokens.size(), 512u);
  ASSERT_EQ(v.scores.size(), 512u);
  ASSERT_EQ(v.token_types.size(), 512u);
  EXPECT_EQ(v.bos_id, 1);
  EXPECT_EQ(v.eos_id, 2);
  EXPECT_EQ(v.tokens[1], "<s>");
  EXPECT_EQ(v.tokens[2], "</s>");
  EXPECT_EQ(v.tokens[3], "<0x00>");
  EXPECT_EQ(v.token_types[3], 6);  // byte token
  EXPECT_TRUE(v.add_bos);
  EXPECT_FALSE((*m)->name().empty());
  EXPECT_EQ((*m)->path(), stories_gguf());
}

TEST(GgufLoader, ParsesMetadataOfAllTypes) {
  TempDir tmp;
  GgufWriter w;
  w.add_u32("a.u32", 7);
  w.add_i32("a.i32", -3);
  w.add_f32("a.f32", 1.5f);
  w.add_bool("a.bool", true);
  w.add_string("a.str", "hello");
  w.add_string_array("a.strs", {"x", "yz"});
  w.add_f32_array("a.floats", {0.5f, -1.0f});
  w.add_i32_array("a.ints", {1, -2, 3});
  GgufValue u64;
  u64.type = GgufType::kUint64;
  u64.i = 1234567890123;
  w.add_value("a.u64", u64);
  GgufValue f64;
  f64.type = GgufType::kFloat64;
  f64.f = 2.25;
  w.add_value("a.f64", f64);
  w.add_u32("general.alignment", 64);
  std::vector<uint8_t> data(4 * 8);
  for (int i = 0; i < 8; ++i) {
    float f = static_cast<float>(i);
    std::memcpy(data.data() + 4 * i, &f, 4);
  }
  w.add_tensor("t0", kGgmlF32, {4, 2}, data);
  w.add_tensor("t1", kGgmlF32, {8}, data);
  for (uint32_t version : {2u, 3u}) {
    ASSERT_TRUE(w.write(tmp.path() / "m.gguf", version, 64).is_ok());
    auto f = MappedFile::open(tmp.path() / "m.gguf");
    ASSERT_TRUE(f.has_value());
    auto g = GgufFile::parse(*f);
    ASSERT_TRUE(g.has_value()) << g.status().to_string();
    EXPECT_EQ(g->version(), version);
    EXPECT_EQ(g->alignment(), 64u);
    EXPECT_EQ(g->data_offset() % 64, 0u);
    EXPECT_EQ(g->find("a.u32")->i, 7);
    EXPECT_EQ(g->find("a.i32")->i, -3);
    EXPECT_DOUBLE_EQ(g->find("a.f32")->f, 1.5);
    EXPECT_EQ(g->find("a.bool")->i, 1);
    EXPECT_EQ(g->find("a.str")->str, "hello");
    EXPECT_EQ(g->find("a.strs")->strings, (std::vector<std::string>{"x", "yz"}));
    EXPECT_EQ(g->find("a.floats")->floats, (std::vector<double>{0.5, -1.0}));
    EXPECT_EQ(g->find("a.ints")->ints, (std::vector<int64_t>{1, -2, 3}));
    EXPECT_EQ(g->find("a.u64")->i, 1234567890123);
    EXPECT_DOUBLE_EQ(g->find("a.f64")->f, 2.25);
    ASSERT_EQ(g->tensors().size(), 2u);
    const GgufTensorInfo* t1 = g->find_tensor("t1");
    ASSERT_NE(t1, nullptr);
    EXPECT_EQ(t1->offset % 64, 0u);
    float last;
    std::memcpy(&last, t1->data + 28, 4);
    EXPECT_EQ(last, 7.0f);
  }
}

TEST(Dtype, HalfAndBfloatRoundTrip) {
  for (float f : {0.0f, 1.0f, -2.5f, 65504.0f, 6.1035156e-05f, 5.9604645e-08f, 0.333251953125f}) {
    EXPECT_EQ(f16_to_f32(f32_to_f16(f)), f) << f;
  }
  EXPECT_EQ(f32_to_f16(1.0f), 0x3c00);
  EXPECT_EQ(f32_to_f16(-2.0f), 0xc000);
  EXPECT_EQ(f16_to_f32(0x0001), 5.9604645e-08f);         // smallest subnormal
  EXPECT_EQ(f32_to_f16(1e6f), 0x7c00);                   // overflow -> inf
  EXPECT_EQ(f32_to_f16(1.0f + 1.0f / 4096.0f), 0x3c00);  // tie rounds to even
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(3.140625f)), 3.140625f);
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_NEAR(bf16_to_f32(f32_to_bf16(3.14159f)), 3.14159f, 0.01f);
}

TEST(Dtype, Q8RoundTrip) {
  std::vector<float> x(64);
  for (int i = 0; i < 64; ++i)
    x[static_cast<size_t>(i)] = std::sin(static_cast<float>(i)) * (i < 32 ? 1.0f : 100.0f);
  std::vector<uint8_t> q(2 * kQ8BlockBytes);
  quantize_row_q8_0(x.data(), 64, q.data());
  TensorView t{DType::kQ8_0, 1, 64, q.data(), q.size(), "q", {}, {}};
  std::vector<float> y(64);
  dequantize_row(t, 0, y.data());
  for (int i = 0; i < 64; ++i) {
    const float amax = i < 32 ? 1.0f : 100.0f;
    EXPECT_NEAR(y[static_cast<size_t>(i)], x[static_cast<size_t>(i)], amax / 127.0f) << i;
  }
  EXPECT_EQ(row_bytes(DType::kQ8_0, 33), 0u);
  EXPECT_EQ(row_bytes(DType::kQ8_0, 64), 68u);
}

}  // namespace
}  // namespace turbine::model
