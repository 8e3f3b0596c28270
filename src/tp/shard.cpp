#include "tp/shard.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "model/dtype.h"

namespace turbine::tp {

using model::DType;
using model::TensorView;

Status check_tensor_parallel(const model::ModelConfig& c, int size) {
  const std::string tp = "tensor parallel size " + std::to_string(size);
  if (size < 1) return invalid_argument(tp + ": must be at least 1", "tensor_parallel_size");
  if (size == 1) return Status::ok();
  if (c.n_heads <= 0 || c.n_kv_heads <= 0 || c.n_heads % c.n_kv_heads != 0)
    return invalid_argument(tp + ": the model's head counts are inconsistent");
  if (c.n_heads % size != 0) {
    return invalid_argument(
        tp + ": the model's " + std::to_string(c.n_heads) + " attention heads do not divide evenly",
        "tensor_parallel_size");
  }
  if (c.n_kv_heads % size != 0 && size % c.n_kv_heads != 0) {
    return invalid_argument(tp + ": the model's " + std::to_string(c.n_kv_heads) +
                                " KV heads neither divide by it nor divide it",
                            "tensor_parallel_size");
  }
  if (c.ffn_dim < size || c.n_vocab < size) {
    return invalid_argument(tp + ": the model's FFN or vocabulary is smaller than that",
                            "tensor_parallel_size");
  }
  return Status::ok();
}

Result<ShardPlan> make_shard_plan(const model::ModelConfig& c, int rank, int size) {
  TURBINE_RETURN_IF_ERROR(check_tensor_parallel(c, size));
  if (rank < 0 || rank >= size) return invalid_argument("rank out of range");
  ShardPlan p;
  p.rank = rank;
  p.size = size;
  p.n_q_heads = c.n_heads / size;
  p.q_head0 = rank * p.n_q_heads;
  if (c.n_kv_heads >= size) {
    p.n_kv_heads = c.n_kv_heads / size;
    p.kv_head0 = rank * p.n_kv_heads;
  } else {
    // Fewer KV heads than ranks: size / n_kv consecutive ranks share (replicate) one KV head,
    // which is the one their query heads belong to.
    p.kv_replicated = true;
    p.n_kv_heads = 1;
    p.kv_head0 = rank / (size / c.n_kv_heads);
  }
  p.ffn0 = int64_t{c.ffn_dim} * rank / size;
  p.ffn1 = int64_t{c.ffn_dim} * (rank + 1) / size;
  p.vocab_per_rank = (int64_t{c.n_vocab} + size - 1) / size;
  p.vocab0 = std::min<int64_t>(c.n_vocab, p.vocab_per_rank * rank);
  p.vocab1 = std::min<int64_t>(c.n_vocab, p.vocab0 + p.vocab_per_rank);
  return p;
}

KvHeadOwner kv_head_owner(const model::ModelConfig& c, int size, int head) {
  if (size <= 1) return {0, head};
  if (c.n_kv_heads >= size) {
    const int per = c.n_kv_heads / size;
    return {head / per, head % per};
  }
  return {head * (size / c.n_kv_heads), 0};
}

TensorView RankWeights::slice_rows(const TensorView& t, int64_t r0, int64_t r1) {
  if (!t.present()) return t;
  TensorView v = t;
  const size_t rb = model::row_bytes(t.dtype, t.cols);
  v.rows = r1 - r0;
  v.data = static_cast<const uint8_t*>(t.data) + static_cast<size_t>(r0) * rb;
  v.size_bytes = static_cast<size_t>(v.rows) * rb;
  v.name = t.name + "[rows " + std::to_string(r0) + ":" + std::to_string(r1) + "]";
  return v;
}

Result<TensorView> RankWeights::slice_cols(const TensorView& t, int64_t c0, int64_t c1) {
  if (!t.present()) return t;
  if (c0 < 0 || c1 > t.cols || c0 >= c1)
    return invalid_argument("tensor " + t.name + ": column slice out of range");
  TensorView v = t;
  v.cols = c1 - c0;
  v.name = t.name + "[cols " + std::to_string(c0) + ":" + std::to_string(c1) + "]";
  const bool q8 = t.dtype == DType::kQ8_0;
  const bool q8_aligned = c0 % model::kQ8BlockSize == 0 && c1 % model::kQ8BlockSize == 0;
  const size_t src_rb = model::row_bytes(t.dtype, t.cols);
  if (t.rows == 1 && !q8) {
    // One row (a bias): the slice is contiguous.
    v.data = static_cast<const uint8_t*>(t.data) + model::row_bytes(t.dtype, c0);
    v.size_bytes = model::row_bytes(t.dtype, v.cols);
    return v;
  }
  if (q8 && !q8_aligned) {
    // The slice cuts Q8_0 blocks: dequantize the rows and keep the slice in f32.
    v.dtype = DType::kF32;
    const size_t rb = model::row_bytes(DType::kF32, v.cols);
    auto buf = std::make_unique<uint8_t[]>(rb * static_cast<size_t>(t.rows));
    std::vector<float> row(static_cast<size_t>(t.cols));
    for (int64_t r = 0; r < t.rows; ++r) {
      model::dequantize_row(t, r, row.data());
      std::memcpy(buf.get() + static_cast<size_t>(r) * rb, row.data() + c0, rb);
    }
    v.data = buf.get();
    v.size_bytes = rb * static_cast<size_t>(t.rows);
    storage_.push_back(std::move(buf));
    copied_bytes_ += static_cast<int64_t>(v.size_bytes);
    return v;
  }
  // Whole elements (or whole Q8_0 blocks): copy each row's byte range.
  const size_t off = model::row_bytes(t.dtype, c0);
  const size_t rb = model::row_bytes(t.dtype, v.cols);
  if (rb == 0) return invalid_argument("tensor " + t.name + ": column slice has no valid size");
  auto buf = std::make_unique<uint8_t[]>(rb * static_cast<size_t>(t.rows));
  const auto* src = static_cast<const uint8_t*>(t.data);
  for (int64_t r = 0; r < t.rows; ++r)
    std::memcpy(buf.get() + static_cast<size_t>(r) * rb,
                src + static_cast<size_t>(r) * src_rb + off, rb);
  v.data = buf.get();
  v.size_bytes = rb * static_cast<size_t>(t.rows);
  storage_.push_back(std::move(buf));
  copied_bytes_ += static_cast<int64_t>(v.size_bytes);
  return v;
}

Result<std::unique_ptr<RankWeights>> RankWeights::make(const model::Model& model,
                                                       const ShardPlan& plan) {
  const model::ModelConfig& c = model.config();
  const model::Weights& w = model.weights();
  if (w.layers.size() != static_cast<size_t>(c.n_layers))
    return invalid_argument("model " + model.name() + " has an inconsistent config");
  std::unique_ptr<RankWeights> rw(new RankWeights());
  rw->plan_ = plan;
  rw->config_ = c;
  rw->config_.n_heads = plan.n_q_heads;
  rw->config_.n_kv_heads = plan.n_kv_heads;
  rw->config_.ffn_dim = static_cast<int>(plan.ffn1 - plan.ffn0);
  const int64_t hd = c.head_dim;
  const int64_t q0 = plan.q_head0 * hd, q1 = (plan.q_head0 + plan.n_q_heads) * hd;
  const int64_t k0 = plan.kv_head0 * hd, k1 = (plan.kv_head0 + plan.n_kv_heads) * hd;
  model::Weights& out = rw->weights_;
  out.tok_embeddings = w.tok_embeddings;
  out.output_norm = w.output_norm;
  out.output = rw->slice_rows(w.output, plan.vocab0, plan.vocab1);
  out.layers.resize(w.layers.size());
  for (size_t l = 0; l < w.layers.size(); ++l) {
    const model::LayerWeights& L = w.layers[l];
    model::LayerWeights& R = out.layers[l];
    R.attn_norm = L.attn_norm;
    R.ffn_norm = L.ffn_norm;
    R.q_norm = L.q_norm;  // per head_dim: the same for every head
    R.k_norm = L.k_norm;
    if (L.wq.rows != c.n_heads * hd || L.wk.rows != c.n_kv_heads * hd ||
        L.wv.rows != c.n_kv_heads * hd || L.wo.cols != c.n_heads * hd ||
        L.w_gate.rows != c.ffn_dim || L.w_up.rows != c.ffn_dim || L.w_down.cols != c.ffn_dim) {
      return invalid_argument("model " + model.name() + ": layer " + std::to_string(l) +
                              " has shapes the config does not describe");
    }
    R.wq = rw->slice_rows(L.wq, q0, q1);
    R.wk = rw->slice_rows(L.wk, k0, k1);
    R.wv = rw->slice_rows(L.wv, k0, k1);
    TURBINE_ASSIGN_OR_RETURN(R.bq, rw->slice_cols(L.bq, q0, q1));
    TURBINE_ASSIGN_OR_RETURN(R.bk, rw->slice_cols(L.bk, k0, k1));
    TURBINE_ASSIGN_OR_RETURN(R.bv, rw->slice_cols(L.bv, k0, k1));
    TURBINE_ASSIGN_OR_RETURN(R.wo, rw->slice_cols(L.wo, q0, q1));
    R.w_gate = rw->slice_rows(L.w_gate, plan.ffn0, plan.ffn1);
    R.w_up = rw->slice_rows(L.w_up, plan.ffn0, plan.ffn1);
    TURBINE_ASSIGN_OR_RETURN(R.w_down, rw->slice_cols(L.w_down, plan.ffn0, plan.ffn1));
  }
  return rw;
}

}  // namespace turbine::tp
