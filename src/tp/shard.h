// Megatron-style sharding of a Llama-family model over the ranks of a tensor-parallel group.
//
// Column-parallel (each rank computes a slice of the outputs): Q, K, V (by head) and gate, up (by
// FFN row); row-parallel (each rank holds the matching slice of the inputs and produces a partial
// sum that an all-reduce completes): O and down. KV heads are split across ranks, or replicated
// when the model has fewer KV heads than ranks (each rank then holds the one KV head its query
// heads read). The LM head is vocab-parallel: rank r computes logits [vocab0, vocab1) and the
// rows are gathered on rank 0, which samples. Embeddings, norms and the residual stream are
// replicated: every rank holds the whole hidden state, kept bit-identical by the all-reduces.
//
// Pure functions and an immutable RankWeights: any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "common/status.h"
#include "model/model.h"

namespace turbine::tp {

// The part of the model rank `rank` of `size` computes.
struct ShardPlan {
  int rank = 0;
  int size = 1;
  int q_head0 = 0;  // query heads [q_head0, q_head0 + n_q_heads)
  int n_q_heads = 0;
  int kv_head0 = 0;  // KV heads [kv_head0, kv_head0 + n_kv_heads)
  int n_kv_heads = 0;
  int64_t ffn0 = 0;  // FFN rows (gate/up outputs, down inputs) [ffn0, ffn1)
  int64_t ffn1 = 0;
  int64_t vocab0 = 0;  // LM-head rows [vocab0, vocab1)
  int64_t vocab1 = 0;
  // ceil(n_vocab / size): every rank's logits row is padded to this for the gather.
  int64_t vocab_per_rank = 0;
  bool kv_replicated = false;  // the model has fewer KV heads than ranks
};

// Why `config` cannot be split `size` ways (ok when it can): query heads must divide evenly, KV
// heads divide evenly or divide the size, the FFN and the vocabulary need a row per rank.
Status check_tensor_parallel(const model::ModelConfig& config, int size);

Result<ShardPlan> make_shard_plan(const model::ModelConfig& config, int rank, int size);

// Which rank's KV slice holds KV head `head` (the lowest rank holding it when replicated), and
// that head's index within the rank's slice.
struct KvHeadOwner {
  int rank = 0;
  int local_head = 0;
};
KvHeadOwner kv_head_owner(const model::ModelConfig& config, int size, int head);

// One rank's weights. Contiguous slices are views into the model's tensors (rows of Q/K/V, gate,
// up, the LM head; bias slices); the input-column slices of O and down are copies in the
// tensor's own dtype (Q8_0 whose slice does not fall on its 32-element blocks is dequantized to
// f32). The embedding table is the model's own (replicated).
class RankWeights {
 public:
  static Result<std::unique_ptr<RankWeights>> make(const model::Model& model,
                                                   const ShardPlan& plan);
  // The model's config with the rank's shapes: n_heads, n_kv_heads, ffn_dim are the rank's;
  // n_vocab, dim and everything else are the model's.
  const model::ModelConfig& config() const { return config_; }
  // tok_embeddings: whole; output: rows [vocab0, vocab1).
  const model::Weights& weights() const { return weights_; }
  const ShardPlan& plan() const { return plan_; }
  // Bytes copied for this rank (the O and down slices).
  int64_t copied_bytes() const { return copied_bytes_; }

 private:
  RankWeights() = default;
  model::TensorView slice_rows(const model::TensorView& t, int64_t r0, int64_t r1);
  Result<model::TensorView> slice_cols(const model::TensorView& t, int64_t c0, int64_t c1);

  model::ModelConfig config_;
  model::Weights weights_;
  ShardPlan plan_;
  std::vector<std::unique_ptr<uint8_t[]>> storage_;
  int64_t copied_bytes_ = 0;
};

}  // namespace turbine::tp
