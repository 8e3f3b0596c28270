// llama2.c checkpoints and tokenizers: layout against hand-written files, size/header errors,
// tokenizer discovery, and stories260K.bin against the same weights as GGUF.
#include <gtest/gtest.h>

#include <climits>
#include <cstring>

#include "model/llama2c.h"
#include "model/model.h"
#include "model_test_util.h"

namespace turbine::model {
namespace {

namespace fs = std::filesystem;
using turbine::testing::read_bytes;
using turbine::testing::shared_assets;
using turbine::testing::TempDir;
using turbine::testing::write_bytes;

void put_i32(std::vector<uint8_t>& b, int32_t v) {
  const auto* p = reinterpret_cast<const uint8_t*>(&v);
  b.insert(b.end(), p, p + 4);
}
void put_f32(std::vector<uint8_t>& b, float v) {
  const auto* p = reinterpret_cast<const uint8_t*>(&v);
  b.insert(b.end(), p, p + 4);
}

// A checkpoint whose i-th float (after the header) is i: every view's first element names its
// offset in the file.
std::vector<uint8_t> checkpoint(const Llama2cHeader& h, int64_t extra_floats = 0) {
  std::vector<uint8_t> b;
  for (int32_t v :
       {h.dim, h.hidden_dim, h.n_layers, h.n_heads, h.n_kv_heads, h.vocab_size, h.seq_len})
    put_i32(b, v);
  const int64_t n = static_cast<int64_t>(llama2c_weight_floats(h)) + extra_floats;
  for (int64_t i = 0; i < n; ++i) put_f32(b, static_cast<float>(i));
  return b;
}

std::vector<uint8_t> tokenizer(const std::vector<std::pair<std::string, float>>& pieces) {
  std::vector<uint8_t> b;
  int32_t max_len = 1;
  for (const auto& [s, score] : pieces) max_len = std::max<int32_t>(max_len, s.size());
  put_i32(b, max_len);
  for (const auto& [s, score] : pieces) {
    put_f32(b, score);
    put_i32(b, static_cast<int32_t>(s.size()));
    b.insert(b.end(), s.begin(), s.end());
  }
  return b;
}

// dim 8, hidden 12, 2 layers, 2 heads (head 4), 1 KV head, vocab 5, seq_len 6.
constexpr Llama2cHeader kTiny{8, 12, 2, 2, 1, 5, 6};

const std::vector<std::pair<std::string, float>> kTinyPieces = {
    {"<unk>", 0.0f}, {"\n<s>\n", 0.0f}, {"\n</s>\n", 0.0f}, {"<0x0A>", 0.0f}, {" the", -1.5f}};

float first(const TensorView& t) {
  return *static_cast<const float*>(t.data);
}

TEST(Llama2cLoader, TinyCheckpointLayoutAndVocab) {
  TempDir dir;
  write_bytes(dir.path() / "m.bin", checkpoint(kTiny));
  write_bytes(dir.path() / "tokenizer.bin", tokenizer(kTinyPieces));
  auto m = load_model(dir.path() / "m.bin");
  ASSERT_TRUE(m.has_value()) << m.status().to_string();
  const ModelConfig& c = (*m)->config();
  EXPECT_EQ(c.arch, Arch::kLlama);
  EXPECT_EQ(c.arch_name, "llama2.c");
  EXPECT_EQ(c.dim, 8);
  EXPECT_EQ(c.ffn_dim, 12);
  EXPECT_EQ(c.n_layers, 2);
  EXPECT_EQ(c.n_heads, 2);
  EXPECT_EQ(c.n_kv_heads, 1);
  EXPECT_EQ(c.head_dim, 4);
  EXPECT_EQ(c.n_vocab, 5);
  EXPECT_EQ(c.max_context, 6);
  EXPECT_FLOAT_EQ(c.norm_eps, 1e-5f);
  EXPECT_FLOAT_EQ(c.rope_theta, 10000.0f);
  EXPECT_EQ(c.rope_layout, RopeLayout::kInterleaved);
  EXPECT_TRUE(c.tie_embeddings);
  EXPECT_EQ((*m)->name(), "m");

  // Offsets in floats, following run.c's memory_map_weights by hand.
  const Weights& w = (*m)->weights();
  const float emb = 0, rms_att = 5 * 8, wq = rms_att + 2 * 8, wk = wq + 2 * 8 * 8,
              wv = wk + 2 * 4 * 8, wo = wv + 2 * 4 * 8, rms_ffn = wo + 2 * 8 * 8,
              w1 = rms_ffn + 2 * 8, w2 = w1 + 2 * 12 * 8, w3 = w2 + 2 * 8 * 12,
              rms_final = w3 + 2 * 12 * 8;
  EXPECT_EQ(first(w.tok_embeddings), emb);
  EXPECT_EQ(static_cast<const float*>(w.tok_embeddings.data)[3 * 8 + 2], 26.0f);
  EXPECT_EQ(first(w.layers[0].attn_norm), rms_att);
  EXPECT_EQ(first(w.layers[1].attn_norm), rms_att + 8);
  EXPECT_EQ(first(w.layers[1].wq), wq + 64);
  EXPECT_EQ(first(w.layers[0].wk), wk);
  EXPECT_EQ(first(w.layers[1].wk), wk + 32);
  EXPECT_EQ(w.layers[1].wk.rows, 4);
  EXPECT_EQ(w.layers[1].wk.cols, 8);
  EXPECT_EQ(first(w.layers[1].wv), wv + 32);
  EXPECT_EQ(first(w.layers[1].wo), wo + 64);
  EXPECT_EQ(first(w.layers[1].ffn_norm), rms_ffn + 8);
  EXPECT_EQ(first(w.layers[1].w_gate), w1 + 96);
  EXPECT_EQ(w.layers[1].w_gate.rows, 12);
  EXPECT_EQ(first(w.layers[1].w_down), w2 + 96);
  EXPECT_EQ(w.layers[1].w_down.rows, 8);
  EXPECT_EQ(w.layers[1].w_down.cols, 12);
  EXPECT_EQ(first(w.layers[1].w_up), w3 + 96);
  EXPECT_EQ(first(w.output_norm), rms_final);
  EXPECT_EQ(w.output.data, w.tok_embeddings.data);

  const VocabSpec& v = (*m)->vocab();
  EXPECT_EQ(v.model, "llama");
  EXPECT_EQ(v.tokens,
            (std::vector<std::string>{"<unk>", "<s>", "</s>", "<0x0A>", "\xE2\x96\x81the"}));
  EXPECT_EQ(v.scores, (std::vector<float>{0, 0, 0, 0, -1.5f}));
  EXPECT_EQ(v.token_types, (std::vector<int32_t>{2, 3, 3, 6, 1}));
  EXPECT_EQ(v.bos_id, 1);
  EXPECT_EQ(v.eos_id, 2);
  EXPECT_EQ(v.unk_id, 0);
  EXPECT_TRUE(v.add_bos);
  EXPECT_TRUE(v.add_space_prefix);
}

TEST(Llama2cLoader, UnsharedClassifierSitsAfterTheRopeTables) {
  TempDir dir;
  Llama2cHeader h = kTiny;
  h.vocab_size = -5;
  write_bytes(dir.path() / "m.bin", checkpoint(h));
  auto m = load_model(dir.path() / "m.bin");
  ASSERT_TRUE(m.has_value()) << m.status().to_string();
  EXPECT_FALSE((*m)->config().tie_embeddings);
  EXPECT_EQ((*m)->config().n_vocab, 5);
  const Weights& w = (*m)->weights();
  // rms_final + dim + 2 tables of seq_len * head_size / 2.
  EXPECT_EQ(first(w.output), first(w.output_norm) + 8 + 6 * 4);
  EXPECT_EQ(w.output.rows, 5);
  EXPECT_TRUE((*m)->vocab().tokens.empty());  // no tokenizer in the folder
}

TEST(Llama2cLoader, SizeAndHeaderErrors) {
  TempDir dir;
  const fs::path p = dir.path() / "m.bin";
  auto good = checkpoint(kTiny);

  auto truncated = good;
  truncated.resize(truncated.size() - 4);
  write_bytes(p, truncated);
  auto r = load_model(p);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find("truncated"), std::string::npos) << r.status().message();

  write_bytes(p, checkpoint(kTiny, 3));
  r = load_model(p);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.status().message().find("trailing"), std::string::npos) << r.status().message();

  write_bytes(p, std::vector<uint8_t>(good.begin(), good.begin() + 20));
  r = load_model(p);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.status().message().find("header"), std::string::npos) << r.status().message();

  Llama2cHeader bad = kTiny;
  bad.n_heads = 3;  // does not divide dim
  auto b = checkpoint(kTiny);
  std::memcpy(b.data() + 12, &bad.n_heads, 4);
  write_bytes(p, b);
  r = load_model(p);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find("n_heads=3"), std::string::npos) << r.status().message();

  b = good;
  const int32_t neg = -8;
  std::memcpy(b.data(), &neg, 4);
  write_bytes(p, b);
  EXPECT_FALSE(load_model(p).has_value());

  b = good;
  const int32_t min_vocab = INT32_MIN;
  std::memcpy(b.data() + 20, &min_vocab, 4);
  write_bytes(p, b);
  EXPECT_FALSE(load_model(p).has_value());

  b = good;
  std::memcpy(b.data(), "24ka", 4);  // llama2.c version-1 magic
  write_bytes(p, b);
  r = load_model(p);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.status().code(), StatusCode::kUnimplemented);
}

TEST(Llama2cLoader, TokenizerErrorsAndDiscovery) {
  TempDir dir;
  const fs::path p = dir.path() / "m.bin";
  write_bytes(p, checkpoint(kTiny));

  // The only tok*.bin is used when there is no tokenizer.bin.
  write_bytes(dir.path() / "tok5.bin", tokenizer(kTinyPieces));
  auto m = load_model(p);
  ASSERT_TRUE(m.has_value()) << m.status().to_string();
  EXPECT_EQ((*m)->vocab().tokens.size(), 5u);

  // Two candidates: ambiguous.
  write_bytes(dir.path() / "tok6.bin", tokenizer(kTinyPieces));
  auto r = load_model(p);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.status().message().find("several"), std::string::npos) << r.status().message();

  // tokenizer.bin wins; a tokenizer with more tokens than the model is refused.
  auto six = kTinyPieces;
  six.push_back({"x", -2.0f});
  write_bytes(dir.path() / "tokenizer.bin", tokenizer(six));
  r = load_model(p);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.status().message().find("tokenizer.bin"), std::string::npos);
  EXPECT_NE(r.status().message().find("bytes left"), std::string::npos) << r.status().message();

  auto tok = tokenizer(kTinyPieces);
  for (size_t cut : {size_t{2}, size_t{10}, tok.size() - 1}) {
    auto t = tok;
    t.resize(cut);
    auto v = parse_llama2c_tokenizer(t, 5, "t.bin");
    ASSERT_FALSE(v.has_value()) << cut;
    EXPECT_EQ(v.status().code(), StatusCode::kDataLoss);
  }
  auto v = parse_llama2c_tokenizer(tok, 5, "t.bin");
  ASSERT_TRUE(v.has_value()) << v.status().to_string();
  auto bad_len = tok;
  const int32_t huge = 1 << 30;
  std::memcpy(bad_len.data() + 4 + 4, &huge, 4);  // first token's length
  EXPECT_FALSE(parse_llama2c_tokenizer(bad_len, 5, "t.bin").has_value());
}

// The shared .bin holds the GGUF's tensor bytes: same config (but the context: llama.cpp's
// conversion wrote 2048, llama2.c's header the trained 512), same tensors, same vocabulary, so
// both give the same tokens.
TEST(Llama2cLoader, Stories260KBinMatchesGguf) {
  const fs::path bin = shared_assets() / "models/stories260K/stories260K.bin";
  TURBINE_REQUIRE_ASSET(bin);
  TURBINE_REQUIRE_ASSET(turbine::testing::stories_gguf());
  auto a = load_model(bin);
  ASSERT_TRUE(a.has_value()) << a.status().to_string();
  auto g = load_model(turbine::testing::stories_gguf());
  ASSERT_TRUE(g.has_value()) << g.status().to_string();
  const ModelConfig &ca = (*a)->config(), &cg = (*g)->config();
  EXPECT_EQ(ca.max_context, 512);
  for (auto [x, y] : {std::pair{ca.dim, cg.dim},
                      {ca.n_layers, cg.n_layers},
                      {ca.n_heads, cg.n_heads},
                      {ca.n_kv_heads, cg.n_kv_heads},
                      {ca.head_dim, cg.head_dim},
                      {ca.ffn_dim, cg.ffn_dim},
                      {ca.n_vocab, cg.n_vocab}})
    EXPECT_EQ(x, y);
  EXPECT_EQ(ca.rope_layout, cg.rope_layout);
  EXPECT_EQ(ca.norm_eps, cg.norm_eps);
  EXPECT_EQ(ca.rope_theta, cg.rope_theta);
  // The .bin shares the classifier with the embeddings; the GGUF stores a copy (same bytes,
  // checked below).
  EXPECT_TRUE(ca.tie_embeddings);

  const auto same = [](const TensorView& x, const TensorView& y, const std::string& what) {
    ASSERT_EQ(x.rows, y.rows) << what;
    ASSERT_EQ(x.cols, y.cols) << what;
    ASSERT_EQ(x.size_bytes, y.size_bytes) << what;
    EXPECT_EQ(std::memcmp(x.data, y.data, x.size_bytes), 0) << what;
  };
  const Weights &wa = (*a)->weights(), &wg = (*g)->weights();
  same(wa.tok_embeddings, wg.tok_embeddings, "tok_embeddings");
  same(wa.output_norm, wg.output_norm, "output_norm");
  same(wa.output, wg.output, "output");
  for (size_t l = 0; l < wa.layers.size(); ++l) {
    const LayerWeights &x = wa.layers[l], &y = wg.layers[l];
    const std::string s = " layer " + std::to_string(l);
    same(x.attn_norm, y.attn_norm, "attn_norm" + s);
    same(x.wq, y.wq, "wq" + s);
    same(x.wk, y.wk, "wk" + s);
    same(x.wv, y.wv, "wv" + s);
    same(x.wo, y.wo, "wo" + s);
    same(x.ffn_norm, y.ffn_norm, "ffn_norm" + s);
    same(x.w_gate, y.w_gate, "w_gate" + s);
    same(x.w_up, y.w_up, "w_up" + s);
    same(x.w_down, y.w_down, "w_down" + s);
  }

  const VocabSpec &va = (*a)->vocab(), &vg = (*g)->vocab();
  EXPECT_EQ(va.model, vg.model);
  EXPECT_EQ(va.tokens, vg.tokens);
  EXPECT_EQ(va.scores, vg.scores);
  EXPECT_EQ(va.token_types, vg.token_types);
  EXPECT_EQ(va.bos_id, vg.bos_id);
  EXPECT_EQ(va.eos_id, vg.eos_id);
  EXPECT_EQ(va.unk_id, vg.unk_id);
  EXPECT_EQ(va.add_bos, vg.add_bos);
  EXPECT_EQ(va.add_space_prefix, vg.add_space_prefix);
}

// What bench/gen_llama2c writes: the same weights as a llama2.c checkpoint and as a GGUF.
TEST(Llama2cLoader, GgufCopyLoadsToTheSameModel) {
  for (const int32_t vocab : {5, -5}) {  // shared and unshared classifier
    TempDir dir;
    Llama2cHeader h = kTiny;
    h.vocab_size = vocab;
    std::vector<float> w(llama2c_weight_floats(h));
    for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(i % 97) * 0.25f - 3.0f;
    ASSERT_TRUE(write_llama2c(dir.path() / "m.bin", h, w).is_ok());
    write_bytes(dir.path() / "tokenizer.bin", tokenizer(kTinyPieces));
    auto vocab_spec = load_llama2c_tokenizer(dir.path() / "tokenizer.bin", 5);
    ASSERT_TRUE(vocab_spec.has_value()) << vocab_spec.status().to_string();
    ASSERT_TRUE(write_llama2c_as_gguf(dir.path() / "m.gguf", h, w, *vocab_spec, "tiny").is_ok());
    EXPECT_FALSE(write_llama2c(dir.path() / "x.bin", h, std::span(w).first(w.size() - 1)).is_ok());

    auto a = load_model(dir.path() / "m.bin");
    ASSERT_TRUE(a.has_value()) << a.status().to_string();
    auto g = load_model(dir.path() / "m.gguf");
    ASSERT_TRUE(g.has_value()) << g.status().to_string();
    const ModelConfig &ca = (*a)->config(), &cg = (*g)->config();
    EXPECT_EQ(cg.arch_name, "llama");
    EXPECT_EQ(ca.dim, cg.dim);
    EXPECT_EQ(ca.ffn_dim, cg.ffn_dim);
    EXPECT_EQ(ca.n_layers, cg.n_layers);
    EXPECT_EQ(ca.n_heads, cg.n_heads);
    EXPECT_EQ(ca.n_kv_heads, cg.n_kv_heads);
    EXPECT_EQ(ca.head_dim, cg.head_dim);
    EXPECT_EQ(ca.n_vocab, cg.n_vocab);
    EXPECT_EQ(ca.max_context, cg.max_context);
    EXPECT_EQ(ca.norm_eps, cg.norm_eps);
    EXPECT_EQ(ca.rope_theta, cg.rope_theta);
    EXPECT_EQ(ca.rope_layout, cg.rope_layout);
    EXPECT_EQ(ca.tie_embeddings, cg.tie_embeddings) << vocab;
    const auto same = [](const TensorView& x, const TensorView& y) {
      return x.rows == y.rows && x.cols == y.cols && x.size_bytes == y.size_bytes &&
             std::memcmp(x.data, y.data, x.size_bytes) == 0;
    };
    const Weights &wa = (*a)->weights(), &wg = (*g)->weights();
    EXPECT_TRUE(same(wa.tok_embeddings, wg.tok_embeddings));
    EXPECT_TRUE(same(wa.output_norm, wg.output_norm));
    EXPECT_TRUE(same(wa.output, wg.output));
    for (size_t l = 0; l < wa.layers.size(); ++l) {
      const LayerWeights &x = wa.layers[l], &y = wg.layers[l];
      EXPECT_TRUE(same(x.attn_norm, y.attn_norm) && same(x.wq, y.wq) && same(x.wk, y.wk) &&
                  same(x.wv, y.wv) && same(x.wo, y.wo) && same(x.ffn_norm, y.ffn_norm) &&
                  same(x.w_gate, y.w_gate) && same(x.w_up, y.w_up) && same(x.w_down, y.w_down))
          << "layer " << l;
    }
    EXPECT_EQ((*a)->vocab().tokens, (*g)->vocab().tokens);
    EXPECT_EQ((*a)->vocab().scores, (*g)->vocab().scores);
    EXPECT_EQ((*a)->vocab().token_types, (*g)->vocab().token_types);
    EXPECT_EQ((*g)->vocab().bos_id, 1);
    EXPECT_EQ((*g)->vocab().eos_id, 2);
  }
}

}  // namespace
}  // namespace turbine::model
