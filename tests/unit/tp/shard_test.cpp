// The shard plan (heads, KV replication, FFN and vocabulary ranges) and RankWeights slices.
#include "tp/shard.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "model/dtype.h"

namespace turbine::tp {
namespace {

model::ModelConfig config(int heads, int kv, int ffn, int vocab) {
  model::ModelConfig c;
  c.n_heads = heads;
  c.n_kv_heads = kv;
  c.head_dim = 4;
  c.dim = heads * 4;
  c.ffn_dim = ffn;
  c.n_vocab = vocab;
  c.n_layers = 1;
  return c;
}

TEST(ShardPlan, SplitsHeadsFfnAndVocabulary) {
  const auto c = config(32, 8, 14336, 128257);
  for (int size : {1, 2, 4, 8}) {
    int64_t vocab = 0, ffn = 0;
    for (int r = 0; r < size; ++r) {
      auto p = make_shard_plan(c, r, size);
      ASSERT_TRUE(p.has_value()) << p.status().to_string();
      EXPECT_EQ(p->n_q_heads, 32 / size);
      EXPECT_EQ(p->q_head0, r * 32 / size);
      EXPECT_EQ(p->n_kv_heads, 8 / size);
      EXPECT_EQ(p->kv_head0, r * 8 / size);
      EXPECT_FALSE(p->kv_replicated);
      // A rank's query heads read only its own KV heads.
      const int group = 32 / 8;
      EXPECT_EQ(p->q_head0 / group, p->kv_head0);
      EXPECT_EQ(ffn, p->ffn0);
      ffn = p->ffn1;
      EXPECT_EQ(vocab, p->vocab0);
      EXPECT_LE(p->vocab1 - p->vocab0, p->vocab_per_rank);
      vocab = p->vocab1;
    }
    EXPECT_EQ(ffn, 14336);
    EXPECT_EQ(vocab, 128257);
  }
}

TEST(ShardPlan, ReplicatesKvHeadsWhenThereAreFewerThanRanks) {
  const auto c = config(8, 2, 64, 100);
  for (int r = 0; r < 8; ++r) {
    auto p = make_shard_plan(c, r, 8);
    ASSERT_TRUE(p.has_value());
    EXPECT_TRUE(p->kv_replicated);
    EXPECT_EQ(p->n_q_heads, 1);
    EXPECT_EQ(p->n_kv_heads, 1);
    EXPECT_EQ(p->kv_head0, r / 4);
    EXPECT_EQ(p->q_head0 / (8 / 2), p->kv_head0);  // its query head belongs to that KV head
  }
  EXPECT_EQ(kv_head_owner(c, 8, 0).rank, 0);
  EXPECT_EQ(kv_head_owner(c, 8, 1).rank, 4);
  EXPECT_EQ(kv_head_owner(c, 8, 1).local_head, 0);
  const auto c2 = config(8, 4, 64, 100);
  EXPECT_EQ(kv_head_owner(c2, 2, 3).rank, 1);
  EXPECT_EQ(kv_head_owner(c2, 2, 3).local_head, 1);
}

TEST(ShardPlan, RefusesSplitsThatDoNotFit) {
  EXPECT_FALSE(make_shard_plan(config(32, 8, 64, 100), 0, 3).has_value());  // heads
  EXPECT_FALSE(make_shard_plan(config(12, 6, 64, 100), 0, 4).has_value());  // kv 6 vs 4
  EXPECT_FALSE(make_shard_plan(config(4, 2, 64, 100), 4, 4).has_value());   // rank
  const Status s = check_tensor_parallel(config(32, 8, 64, 100), 3);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("32 attention heads"), std::string::npos) << s.message();
  EXPECT_TRUE(check_tensor_parallel(config(32, 8, 64, 100), 1).is_ok());
}

// A model whose every weight element encodes its (tensor, row, col).
class FakeModel : public model::Model {
 public:
  FakeModel(const model::ModelConfig& c, model::DType dtype) {
    config_ = c;
    name_ = "fake";
    const int64_t hd = c.head_dim;
    auto make = [&](int64_t rows, int64_t cols, float tag) {
      model::TensorView t;
      t.dtype = dtype;
      t.rows = rows;
      t.cols = cols;
      const size_t rb = model::row_bytes(dtype, cols);
      auto& buf = storage_.emplace_back(rb * static_cast<size_t>(rows));
      std::vector<float> row(static_cast<size_t>(cols));
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t k = 0; k < cols; ++k)
          row[static_cast<size_t>(k)] = tag + static_cast<float>(r) + static_cast<float>(k) / 128;
        uint8_t* dst = buf.data() + static_cast<size_t>(r) * rb;
        if (dtype == model::DType::kF32) {
          std::memcpy(dst, row.data(), rb);
        } else if (dtype == model::DType::kQ8_0) {
          model::quantize_row_q8_0(row.data(), cols, dst);
        }
      }
      t.data = buf.data();
      t.size_bytes = buf.size();
      return t;
    };
    weights_.tok_embeddings = make(c.n_vocab, c.dim, 0);
    weights_.output = make(c.n_vocab, c.dim, 1000);
    auto& L = weights_.layers.emplace_back();
    L.wq = make(c.n_heads * hd, c.dim, 2000);
    L.wk = make(c.n_kv_heads * hd, c.dim, 3000);
    L.wv = make(c.n_kv_heads * hd, c.dim, 4000);
    L.wo = make(c.dim, c.n_heads * hd, 5000);
    L.w_gate = make(c.ffn_dim, c.dim, 6000);
    L.w_up = make(c.ffn_dim, c.dim, 7000);
    L.w_down = make(c.dim, c.ffn_dim, 8000);
    if (dtype == model::DType::kF32) L.bq = make(1, c.n_heads * hd, 9000);
  }

 private:
  std::vector<std::vector<uint8_t>> storage_;
};

float at(const model::TensorView& t, int64_t r, int64_t c) {
  std::vector<float> row(static_cast<size_t>(t.cols));
  model::dequantize_row(t, r, row.data());
  return row[static_cast<size_t>(c)];
}

TEST(RankWeights, SlicesMatchTheWholeTensors) {
  auto c = config(8, 4, 96, 50);
  c.dim = 64;
  c.head_dim = 8;
  for (model::DType dt : {model::DType::kF32, model::DType::kQ8_0}) {
    FakeModel m(c, dt);
    const auto& W = m.weights().layers[0];
    for (int size : {2, 4}) {
      for (int r = 0; r < size; ++r) {
        SCOPED_TRACE(std::to_string(size) + "/" + std::to_string(r));
        auto p = make_shard_plan(c, r, size);
        ASSERT_TRUE(p.has_value());
        auto rw = RankWeights::make(m, *p);
        ASSERT_TRUE(rw.has_value()) << rw.status().to_string();
        const auto& R = (*rw)->weights().layers[0];
        EXPECT_EQ((*rw)->config().n_heads, 8 / size);
        EXPECT_EQ((*rw)->config().ffn_dim, 96 / size);
        EXPECT_EQ((*rw)->config().n_vocab, 50);
        const int64_t q0 = p->q_head0 * 8, k0 = p->kv_head0 * 8;
        EXPECT_EQ(R.wq.rows, 64 / size);
        EXPECT_EQ(at(R.wq, 3, 5), at(W.wq, q0 + 3, 5));
        EXPECT_EQ(at(R.wk, 1, 7), at(W.wk, k0 + 1, 7));
        EXPECT_EQ(R.wo.rows, 64);
        EXPECT_EQ(R.wo.cols, 64 / size);
        // Q8_0 slices of 16 columns cut its 32-wide blocks: dequantized to f32.
        EXPECT_EQ(R.wo.dtype, dt == model::DType::kQ8_0 && size == 4 ? model::DType::kF32 : dt);
        for (int64_t k = 0; k < R.wo.cols; ++k) EXPECT_EQ(at(R.wo, 9, k), at(W.wo, 9, q0 + k));
        for (int64_t k = 0; k < R.w_down.cols; ++k)
          EXPECT_EQ(at(R.w_down, 2, k), at(W.w_down, 2, p->ffn0 + k));
        EXPECT_EQ(at(R.w_up, 0, 1), at(W.w_up, p->ffn0, 1));
        EXPECT_EQ((*rw)->weights().output.rows, p->vocab1 - p->vocab0);
        EXPECT_EQ(at((*rw)->weights().output, 0, 2), at(m.weights().output, p->vocab0, 2));
        if (W.bq.present()) {
          EXPECT_EQ(R.bq.cols, 64 / size);
          EXPECT_EQ(at(R.bq, 0, 1), at(W.bq, 0, q0 + 1));
        }
      }
    }
  }
}

}  // namespace
}  // namespace turbine::tp
