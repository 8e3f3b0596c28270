// The CPU backend: a batched f32 forward pass for Llama-family models (Llama, Mistral without
// sliding window, Qwen2, Qwen3).
//
// Thread ownership: the engine thread calls forward(); the pool's workers only run the kernels
// forward() hands them and touch nothing else. The KV cache is one arena of f32 blocks allocated at
// start (pages are committed by the OS on first write): K and V each
// [layer][block][slot in block][kv_heads * head_dim]; with KvCacheDtype::kFp8 the arenas hold
// e4m3 bytes (per-layer K and V scales, backend.h) and attention dequantizes the rows it reads.
// Attention reads it through each chunk's block table. A KvWriteTracker records how many leading
// positions of each block were written, so a chunk that would read positions nobody wrote is
// refused (this catches caller bugs in block tables; blocks reused for another sequence keep their
// old length until rewritten).
//
// Tensor parallelism (tp/shard.h): a CpuBackend may be one rank of a group. It then computes its
// shard (its heads, FFN rows and vocabulary rows, with the rank's RankWeights), holds the KV of
// its heads only, all-reduces after O and after down, and gathers the LM-head rows on rank 0,
// which alone returns logits. A TensorParallelBackend drives the ranks; with one rank (the
// default) no collective runs and the code path is the plain one.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "engine/backend.h"
#include "engine/cpu_kernels.h"
#include "engine/cpu_thread_pool.h"
#include "engine/kv_write_tracker.h"
#include "engine/tensor_parallel_backend.h"
#include "model/dtype.h"
#include "tp/communicator.h"
#include "tp/shard.h"
#include "tp/shm_communicator.h"

namespace turbine::engine {
namespace {

using model::TensorView;

struct LayerF32 {
  std::vector<float> attn_norm, ffn_norm, bq, bk, bv, q_norm, k_norm;
  float k_scale = 1.0f, v_scale = 1.0f;  // FP8 KV cache
};

class CpuBackend final : public Backend {
 public:
  // `shard` and `comm`: this rank's weights and collectives (both null: the whole model).
  CpuBackend(const model::Model& model, std::unique_ptr<tp::RankWeights> shard,
             std::unique_ptr<tp::Communicator> comm, int n_threads, int max_context, int n_blocks,
             int block_size, KvCacheDtype kv_dtype)
      : shard_(std::move(shard)),
        comm_(std::move(comm)),
        cfg_(shard_ ? shard_->config() : model.config()),
        w_(shard_ ? shard_->weights() : model.weights()),
        fp8_kv_(kv_dtype == KvCacheDtype::kFp8),
        pool_(n_threads),
        max_context_(max_context),
        n_blocks_(n_blocks),
        block_size_(block_size),
        kv_dim_(static_cast<size_t>(cfg_.n_kv_heads) * static_cast<size_t>(cfg_.head_dim)),
        kv_writes_(n_blocks, block_size, max_context, model.config().n_vocab) {
    const size_t arena = static_cast<size_t>(cfg_.n_layers) * static_cast<size_t>(n_blocks) *
                         static_cast<size_t>(block_size) * kv_dim_;
    // Default-initialised: untouched pages cost nothing.
    if (fp8_kv_) {
      k8_.reset(new uint8_t[arena]);
      v8_.reset(new uint8_t[arena]);
    } else {
      k_arena_.reset(new float[arena]);
      v_arena_.reset(new float[arena]);
    }
    const auto& w = w_;
    layers_.resize(w.layers.size());
    for (size_t l = 0; l < w.layers.size(); ++l) {
      const auto& L = w.layers[l];
      LayerF32& f = layers_[l];
      f.attn_norm = to_f32(L.attn_norm);
      f.ffn_norm = to_f32(L.ffn_norm);
      f.bq = to_f32(L.bq);
      f.bk = to_f32(L.bk);
      f.bv = to_f32(L.bv);
      f.q_norm = to_f32(L.q_norm);
      f.k_norm = to_f32(L.k_norm);
      f.k_scale = kv_scale_or_one(L.k_scale);
      f.v_scale = kv_scale_or_one(L.v_scale);
    }
    output_norm_ = to_f32(w.output_norm);
    inv_freq_ = rope_inv_freq(cfg_.head_dim, cfg_.rope_theta, cfg_.rope_scaling);
    const int widest = std::max({cfg_.dim, cfg_.ffn_dim, cfg_.n_heads * cfg_.head_dim});
    row_scratch_.assign(static_cast<size_t>(pool_.size()),
                        std::vector<float>(static_cast<size_t>(widest)));
    score_scratch_.resize(static_cast<size_t>(pool_.size()));
    row_ptr_scratch_.resize(static_cast<size_t>(pool_.size()));
    kv_rows_scratch_.resize(static_cast<size_t>(pool_.size()));
  }

  std::string_view name() const override { return "cpu"; }
  int max_context() const override { return max_context_; }
  int num_blocks() const override { return n_blocks_; }
  int block_size() const override { return block_size_; }

  Status forward(std::span<const SeqChunk> chunks, std::vector<float>& logits) override {
    return run(chunks, logits, /*hidden_only=*/false);
  }
  Status forward_hidden(std::span<const SeqChunk> chunks, std::vector<float>& hidden) override {
    return run(chunks, hidden, /*hidden_only=*/true);
  }
  bool supports_all_logits() const override { return true; }

  KvLayout kv_layout() const override {
    KvLayout l;
    l.dtype = fp8_kv_ ? "fp8" : "f32";
    l.block_size = block_size_;
    l.n_layers = cfg_.n_layers;
    l.n_kv_heads = cfg_.n_kv_heads;
    l.head_dim = cfg_.head_dim;
    l.bytes_per_block =
        static_cast<int64_t>(block_floats()) * 2 * cfg_.n_layers * static_cast<int64_t>(elem_);
    return l;
  }
  Status read_kv_blocks(std::span<const int32_t> blocks, std::string& out) override;
  Status write_kv_blocks(std::span<const int32_t> blocks, std::string_view bytes,
                         int n_positions) override;

 private:
  size_t block_floats() const { return static_cast<size_t>(block_size_) * kv_dim_; }
  // Start of the K (or V) arena's element `off`, as bytes (f32 or e4m3).
  uint8_t* k_bytes(size_t off) const {
    return fp8_kv_ ? k8_.get() + off : reinterpret_cast<uint8_t*>(k_arena_.get() + off);
  }
  uint8_t* v_bytes(size_t off) const {
    return fp8_kv_ ? v8_.get() + off : reinterpret_cast<uint8_t*>(v_arena_.get() + off);
  }
  // Start of block `block` of layer `layer` in the K (or V) arena.
  size_t block_offset(int layer, int32_t block) const {
    return (static_cast<size_t>(layer) * static_cast<size_t>(n_blocks_) +
            static_cast<size_t>(block)) *
           block_floats();
  }
  // One step; `hidden_only` returns the normed last-token states instead of logits.
  Status run(std::span<const SeqChunk> chunks, std::vector<float>& out, bool hidden_only);
  void attention(int layer, int n_tokens);
  // Calls fn(begin, end) over [0, total) split into at most pool-size ranges of >= min_chunk.
  void for_ranges(size_t total, size_t min_chunk, const std::function<void(size_t, size_t)>& fn);
  // Offset of position `pos` of layer `layer` in the K (or V) arena, for block table `table`.
  size_t kv_offset(int layer, std::span<const int32_t> table, int pos) const {
    const int block = table[static_cast<size_t>(pos / block_size_)];
    return ((static_cast<size_t>(layer) * static_cast<size_t>(n_blocks_) +
             static_cast<size_t>(block)) *
                static_cast<size_t>(block_size_) +
            static_cast<size_t>(pos % block_size_)) *
           kv_dim_;
  }

  // All-reduces `n` floats of `buf` over the group (nothing with one rank).
  Status all_reduce(float* buf, size_t n) {
    if (!comm_ || comm_->size() == 1) return Status::ok();
    return comm_->all_reduce_sum(buf, n, model::DType::kF32, nullptr);
  }
  // The LM head over `n_out` normed rows in xb_: this rank's vocabulary rows, gathered on rank 0.
  Status lm_head(int n_out, std::vector<float>& logits);

  const std::unique_ptr<tp::RankWeights> shard_;  // null: the whole model
  const std::unique_ptr<tp::Communicator> comm_;  // null: one rank
  const model::ModelConfig& cfg_;                 // the rank's shapes (tp::RankWeights::config)
  const model::Weights& w_;
  const bool fp8_kv_;
  const size_t elem_ = fp8_kv_ ? 1 : sizeof(float);  // bytes per cached element
  CpuThreadPool pool_;
  int max_context_;
  const int n_blocks_;
  const int block_size_;
  const size_t kv_dim_;
  std::unique_ptr<float[]> k_arena_, v_arena_;  // f32 cache
  std::unique_ptr<uint8_t[]> k8_, v8_;          // FP8 cache
  KvWriteTracker kv_writes_;  // which positions each block holds; validates chunks
  std::vector<LayerF32> layers_;
  std::vector<float> output_norm_;
  std::vector<float> inv_freq_;
  // Per-thread scratch for the pool's tasks, indexed by thread.
  std::vector<std::vector<float>> row_scratch_;
  std::vector<std::vector<float>> score_scratch_;
  std::vector<std::vector<const float*>> row_ptr_scratch_;  // V rows of one head, per position
  std::vector<std::vector<float>> kv_rows_scratch_;  // FP8 cache: one head's K, V rows as f32
  // Step activations, reused across calls: [n_tokens x width].
  std::vector<float> x_, xb_, xb2_, q_, k_, v_, att_, hb_, hb2_;
  std::vector<float> rope_cs_;  // per token: cos then sin of each rotated pair
  std::vector<float> lm_local_, lm_send_, lm_gathered_;  // tensor-parallel LM head
  std::vector<int> tok_chunk_, tok_pos_;
  std::span<const SeqChunk> chunks_;  // the step being run (attention reads its block tables)
};

void CpuBackend::attention(int layer, int n_tokens) {
  const int hd = cfg_.head_dim, n_heads = cfg_.n_heads;
  const int q_dim = n_heads * hd;
  const int group = n_heads / cfg_.n_kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  pool_.run(n_tokens * n_heads, [&](int task, int thread) {
    const int t = task / n_heads, h = task % n_heads;
    const int pos = tok_pos_[static_cast<size_t>(t)];
    const std::span<const int32_t> table =
        chunks_[static_cast<size_t>(tok_chunk_[static_cast<size_t>(t)])].block_table;
    const size_t head_off = static_cast<size_t>((h / group) * hd);
    const float* q = q_.data() + static_cast<size_t>(t) * q_dim + h * hd;
    float* scores = score_scratch_[static_cast<size_t>(thread)].data();
    const float** v_rows = row_ptr_scratch_[static_cast<size_t>(thread)].data();
    float* out = att_.data() + static_cast<size_t>(t) * q_dim + h * hd;
    // Causal: a token sees every earlier position of its own sequence and itself. Positions are
    // visited in order whatever blocks hold them, so results do not depend on the block layout,
    // on prefix-cache hits or on the batch composition.
    if (!fp8_kv_) {
      for (int p = 0; p <= pos; ++p) {
        const size_t off = kv_offset(layer, table, p) + head_off;
        scores[p] = dot_f32(q, k_arena_.get() + off, hd) * scale;
        v_rows[p] = v_arena_.get() + off;
      }
      softmax(scores, pos + 1);
      weighted_sum_f32(scores, v_rows, pos + 1, hd, out);
      return;
    }
    // FP8: K rows dequantized one at a time, V rows of every position (then the weighted sum);
    // the per-layer scales multiply the scores and the output.
    const LayerF32& F = layers_[static_cast<size_t>(layer)];
    const float* lut = model::e4m3_table();
    std::vector<float>& rows = kv_rows_scratch_[static_cast<size_t>(thread)];
    if (rows.size() < static_cast<size_t>(pos + 2) * hd)
      rows.resize(static_cast<size_t>(pos + 2) * hd);
    float* krow = rows.data() + static_cast<size_t>(pos + 1) * hd;
    for (int p = 0; p <= pos; ++p) {
      const size_t off = kv_offset(layer, table, p) + head_off;
      const uint8_t* k8 = k8_.get() + off;
      const uint8_t* v8 = v8_.get() + off;
      float* vrow = rows.data() + static_cast<size_t>(p) * hd;
      for (int j = 0; j < hd; ++j) {
        krow[j] = lut[k8[j]];
        vrow[j] = lut[v8[j]];
      }
      scores[p] = dot_f32(q, krow, hd) * (F.k_scale * scale);
      v_rows[p] = vrow;
    }
    softmax(scores, pos + 1);
    weighted_sum_f32(scores, v_rows, pos + 1, hd, out);
    for (int j = 0; j < hd; ++j) out[j] *= F.v_scale;
  });
}

void CpuBackend::for_ranges(size_t total, size_t min_chunk,
                            const std::function<void(size_t, size_t)>& fn) {
  const size_t n_tasks = std::min(static_cast<size_t>(pool_.size()),
                                  std::max<size_t>(1, total / std::max<size_t>(1, min_chunk)));
  const size_t per = (total + n_tasks - 1) / n_tasks;
  pool_.run(static_cast<int>(n_tasks), [&](int task, int) {
    const size_t b = static_cast<size_t>(task) * per;
    fn(b, std::min(total, b + per));
  });
}

Status CpuBackend::run(std::span<const SeqChunk> chunks, std::vector<float>& logits,
                       bool hidden_only) {
  TURBINE_RETURN_IF_ERROR(kv_writes_.validate(chunks));
  const auto& w = w_;
  const int dim = cfg_.dim, hd = cfg_.head_dim;
  const int q_dim = cfg_.n_heads * hd, kv_dim = cfg_.n_kv_heads * hd, ffn = cfg_.ffn_dim;

  int n = 0, max_pos = 0;
  for (const SeqChunk& ch : chunks) {
    n += static_cast<int>(ch.tokens.size());
    max_pos = std::max(max_pos, ch.pos + static_cast<int>(ch.tokens.size()));
  }
  const auto sz = [n](int width) { return static_cast<size_t>(n) * static_cast<size_t>(width); };
  x_.resize(sz(dim));
  xb_.resize(sz(dim));
  xb2_.resize(sz(dim));
  q_.resize(sz(q_dim));
  k_.resize(sz(kv_dim));
  v_.resize(sz(kv_dim));
  att_.resize(sz(q_dim));
  hb_.resize(sz(ffn));
  hb2_.resize(sz(ffn));
  tok_chunk_.resize(static_cast<size_t>(n));
  chunks_ = chunks;
  tok_pos_.resize(static_cast<size_t>(n));
  for (auto& s : score_scratch_) {
    if (s.size() < static_cast<size_t>(max_pos)) s.resize(static_cast<size_t>(max_pos));
  }
  for (auto& s : row_ptr_scratch_) {
    if (s.size() < static_cast<size_t>(max_pos)) s.resize(static_cast<size_t>(max_pos));
  }

  // Token rows in chunk order; RoPE angles once per token for all layers.
  const size_t half = inv_freq_.size();
  rope_cs_.resize(2 * half * static_cast<size_t>(n));
  int t = 0;
  for (size_t c = 0; c < chunks.size(); ++c) {
    const SeqChunk& ch = chunks[c];
    for (size_t i = 0; i < ch.tokens.size(); ++i, ++t) {
      const auto ut = static_cast<size_t>(t);
      tok_chunk_[ut] = static_cast<int>(c);
      tok_pos_[ut] = ch.pos + static_cast<int>(i);
      model::dequantize_row(w.tok_embeddings, ch.tokens[i], x_.data() + ut * dim);
      rope_cos_sin(tok_pos_[ut], inv_freq_, rope_cs_.data() + 2 * half * ut,
                   rope_cs_.data() + 2 * half * ut + half);
    }
  }

  for (size_t l = 0; l < layers_.size(); ++l) {
    const model::LayerWeights& L = w.layers[l];
    const LayerF32& F = layers_[l];
    for_ranges(static_cast<size_t>(n), 8, [&](size_t i0, size_t i1) {
      for (size_t i = i0; i < i1; ++i)
        rmsnorm(xb_.data() + i * dim, x_.data() + i * dim, F.attn_norm.data(), dim, cfg_.norm_eps);
    });
    const MatmulOut qkv[] = {{&L.wq, q_.data()}, {&L.wk, k_.data()}, {&L.wv, v_.data()}};
    matmul(pool_, xb_.data(), n, qkv, row_scratch_);
    for_ranges(static_cast<size_t>(n), 8, [&](size_t i0, size_t i1) {
      for (size_t ui = i0; ui < i1; ++ui) {
        const int i = static_cast<int>(ui);
        float* q = q_.data() + static_cast<size_t>(i) * q_dim;
        float* k = k_.data() + static_cast<size_t>(i) * kv_dim;
        float* v = v_.data() + static_cast<size_t>(i) * kv_dim;
        if (!F.bq.empty()) {
          for (int j = 0; j < q_dim; ++j) q[j] += F.bq[static_cast<size_t>(j)];
          for (int j = 0; j < kv_dim; ++j) k[j] += F.bk[static_cast<size_t>(j)];
          for (int j = 0; j < kv_dim; ++j) v[j] += F.bv[static_cast<size_t>(j)];
        }
        if (!F.q_norm.empty()) {
          for (int h = 0; h < cfg_.n_heads; ++h)
            rmsnorm(q + h * hd, q + h * hd, F.q_norm.data(), hd, cfg_.norm_eps);
          for (int h = 0; h < cfg_.n_kv_heads; ++h)
            rmsnorm(k + h * hd, k + h * hd, F.k_norm.data(), hd, cfg_.norm_eps);
        }
        const int pos = tok_pos_[ui];
        const float* cs = rope_cs_.data() + 2 * half * ui;
        apply_rope(q, cfg_.n_heads, hd, cs, cs + half, cfg_.rope_layout);
        apply_rope(k, cfg_.n_kv_heads, hd, cs, cs + half, cfg_.rope_layout);
        const SeqChunk& ch = chunks[static_cast<size_t>(tok_chunk_[ui])];
        const size_t off = kv_offset(static_cast<int>(l), ch.block_table, pos);
        if (fp8_kv_) {
          for (int j = 0; j < kv_dim; ++j) {
            k8_[off + static_cast<size_t>(j)] = model::f32_to_e4m3(k[j] / F.k_scale);
            v8_[off + static_cast<size_t>(j)] = model::f32_to_e4m3(v[j] / F.v_scale);
          }
        } else {
          std::copy(k, k + kv_dim, k_arena_.get() + off);
          std::copy(v, v + kv_dim, v_arena_.get() + off);
        }
      }
    });
    attention(static_cast<int>(l), n);
    matmul(pool_, att_.data(), n, L.wo, xb2_.data(), row_scratch_);
    TURBINE_RETURN_IF_ERROR(all_reduce(xb2_.data(), sz(dim)));
    // Residual add and the FFN norm, per token.
    for_ranges(static_cast<size_t>(n), 8, [&](size_t i0, size_t i1) {
      for (size_t i = i0; i < i1; ++i) {
        float* xi = x_.data() + i * dim;
        const float* d = xb2_.data() + i * dim;
        for (int j = 0; j < dim; ++j) xi[j] += d[j];
        rmsnorm(xb_.data() + i * dim, xi, F.ffn_norm.data(), dim, cfg_.norm_eps);
      }
    });
    const MatmulOut gate_up[] = {{&L.w_gate, hb_.data()}, {&L.w_up, hb2_.data()}};
    matmul(pool_, xb_.data(), n, gate_up, row_scratch_);
    for_ranges(sz(ffn), 4096, [&](size_t j0, size_t j1) {
      swiglu(hb_.data() + j0, hb2_.data() + j0, static_cast<int64_t>(j1 - j0));
    });
    matmul(pool_, hb_.data(), n, L.w_down, xb2_.data(), row_scratch_);
    TURBINE_RETURN_IF_ERROR(all_reduce(xb2_.data(), sz(dim)));
    for (size_t j = 0; j < sz(dim); ++j) x_[j] += xb2_[j];
  }

  kv_writes_.commit(chunks);

  // Only the last token of each chunk that wants logits goes through the LM head, or every
  // token of an all_logits chunk (prompt logprobs; not for hidden states). Rows are compacted
  // into xb_ in order (row r <= token r, so nothing is overwritten before it is read).
  int n_out = 0;
  t = 0;
  for (const SeqChunk& ch : chunks) {
    const int first =
        ch.all_logits && !hidden_only ? t : t + static_cast<int>(ch.tokens.size()) - 1;
    t += static_cast<int>(ch.tokens.size());
    if (!ch.want_logits && !(ch.all_logits && !hidden_only)) continue;
    for (int i = first; i < t; ++i, ++n_out) {
      rmsnorm(xb_.data() + static_cast<size_t>(n_out) * dim,
              x_.data() + static_cast<size_t>(i) * dim, output_norm_.data(), dim, cfg_.norm_eps);
    }
  }
  if (hidden_only) {
    logits.assign(xb_.begin(), xb_.begin() + static_cast<std::ptrdiff_t>(n_out) * dim);
    chunks_ = {};
    return Status::ok();
  }
  chunks_ = {};
  return lm_head(n_out, logits);
}

Status CpuBackend::lm_head(int n_out, std::vector<float>& logits) {
  const auto n_vocab = static_cast<size_t>(cfg_.n_vocab);
  if (!comm_ || comm_->size() == 1) {
    logits.resize(static_cast<size_t>(n_out) * n_vocab);
    if (n_out > 0) matmul(pool_, xb_.data(), n_out, w_.output, logits.data(), row_scratch_);
    return Status::ok();
  }
  // Vocab-parallel: this rank's rows, padded to vocab_per_rank so every rank sends the same
  // count, gathered everywhere; rank 0 puts each row's pieces in vocabulary order.
  const tp::ShardPlan& plan = shard_->plan();
  const auto local = static_cast<size_t>(plan.vocab1 - plan.vocab0);
  const auto per = static_cast<size_t>(plan.vocab_per_rank);
  const auto rows = static_cast<size_t>(n_out);
  logits.clear();
  if (n_out == 0) return Status::ok();
  lm_local_.resize(rows * local);
  if (local > 0) matmul(pool_, xb_.data(), n_out, w_.output, lm_local_.data(), row_scratch_);
  lm_send_.assign(rows * per, 0.0f);
  for (size_t i = 0; i < rows; ++i)
    std::copy_n(lm_local_.data() + i * local, local, lm_send_.data() + i * per);
  const auto size = static_cast<size_t>(comm_->size());
  lm_gathered_.resize(size * rows * per);
  TURBINE_RETURN_IF_ERROR(comm_->all_gather(lm_send_.data(), lm_gathered_.data(), rows * per,
                                            model::DType::kF32, nullptr));
  if (comm_->rank() != 0) return Status::ok();
  logits.resize(rows * n_vocab);
  for (size_t r = 0; r < size; ++r) {
    const size_t v0 = std::min(n_vocab, r * per), len = std::min(n_vocab, v0 + per) - v0;
    for (size_t i = 0; i < rows; ++i)
      std::copy_n(lm_gathered_.data() + (r * rows + i) * per, len,
                  logits.data() + i * n_vocab + v0);
  }
  return Status::ok();
}

// Wire order per block: for each layer, K then V, each block_size x kv_dim floats.
Status CpuBackend::read_kv_blocks(std::span<const int32_t> blocks, std::string& out) {
  for (int32_t b : blocks) {
    if (b < 0 || b >= n_blocks_)
      return invalid_argument("read_kv_blocks: block " + std::to_string(b) + " out of range");
  }
  const size_t n = block_floats(), bytes = n * elem_;
  size_t at = out.size();
  out.resize(at + blocks.size() * 2 * static_cast<size_t>(cfg_.n_layers) * bytes);
  for (int32_t b : blocks) {
    for (int l = 0; l < cfg_.n_layers; ++l) {
      std::memcpy(out.data() + at, k_bytes(block_offset(l, b)), bytes);
      at += bytes;
      std::memcpy(out.data() + at, v_bytes(block_offset(l, b)), bytes);
      at += bytes;
    }
  }
  return Status::ok();
}

Status CpuBackend::write_kv_blocks(std::span<const int32_t> blocks, std::string_view bytes,
                                   int n_positions) {
  const size_t n = block_floats(), nb = n * elem_;
  const size_t per_block = 2 * static_cast<size_t>(cfg_.n_layers) * nb;
  if (bytes.size() != blocks.size() * per_block) {
    return invalid_argument("write_kv_blocks: " + std::to_string(bytes.size()) + " bytes for " +
                            std::to_string(blocks.size()) + " blocks of " +
                            std::to_string(per_block));
  }
  TURBINE_RETURN_IF_ERROR(kv_writes_.record_import(blocks, n_positions));
  size_t at = 0;
  for (int32_t b : blocks) {
    for (int l = 0; l < cfg_.n_layers; ++l) {
      std::memcpy(k_bytes(block_offset(l, b)), bytes.data() + at, nb);
      at += nb;
      std::memcpy(v_bytes(block_offset(l, b)), bytes.data() + at, nb);
      at += nb;
    }
  }
  return Status::ok();
}

}  // namespace

int64_t cpu_kv_bytes_per_token(const model::ModelConfig& c, int tensor_parallel_size,
                               KvCacheDtype dtype) {
  // Ranks hold n_kv_heads / size heads each, or one (replicated) when there are fewer.
  const int tp = std::max(1, tensor_parallel_size);
  const int64_t heads = c.n_kv_heads >= tp ? c.n_kv_heads : tp;
  const int64_t eb = dtype == KvCacheDtype::kFp8 ? 1 : static_cast<int64_t>(sizeof(float));
  return int64_t{2} * c.n_layers * heads * c.head_dim * eb;
}

Result<std::unique_ptr<Backend>> make_cpu_backend(const model::Model& model,
                                                  const CpuBackendOptions& options) {
  const model::ModelConfig& c = model.config();
  if (c.n_layers <= 0 || c.dim <= 0 || c.n_vocab <= 0 || c.n_kv_heads <= 0 || c.head_dim <= 0 ||
      c.n_heads % c.n_kv_heads != 0 ||
      model.weights().layers.size() != static_cast<size_t>(c.n_layers)) {
    return invalid_argument("cpu backend: model " + model.name() + " has an inconsistent config");
  }
  if (options.max_num_seqs <= 0 || options.max_num_seqs > 4096)
    return invalid_argument("cpu backend: max_num_seqs must be in [1, 4096]", "max_num_seqs");
  if (options.n_threads < 0 || options.n_threads > 1024)
    return invalid_argument("cpu backend: n_threads must be in [0, 1024]", "n_threads");
  if (options.max_context < 0)
    return invalid_argument("cpu backend: max_context must be >= 0", "max_context");
  if (options.block_size < 1 || options.block_size > 1024)
    return invalid_argument("cpu backend: block_size must be in [1, 1024]", "block_size");
  if (options.kv_cache_memory_bytes < 0)
    return invalid_argument("cpu backend: kv_cache_memory must be >= 0", "kv_cache_memory");
  if (options.num_blocks < 0 || options.num_blocks > (1 << 30))
    return invalid_argument("cpu backend: num_blocks out of range", "num_blocks");
  const int tp = options.tensor_parallel_size;
  if (tp < 1 || tp > 64) {
    return invalid_argument("cpu backend: tensor_parallel_size must be in [1, 64]",
                            "tensor_parallel_size");
  }
  TURBINE_RETURN_IF_ERROR(tp::check_tensor_parallel(c, tp));
  if (tp > 1) {
    // Shards slice weights without their FP8 scales, and a row-parallel layer's per-token input
    // scale needs the whole row's maximum: not done yet (issue 28).
    for (const model::LayerWeights& L : model.weights().layers) {
      for (const model::TensorView* t :
           {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) {
        if (t->dtype == model::DType::kF8E4M3)
          return unimplemented("cpu backend: tensor parallelism with FP8 weights (" + t->name +
                                   ") is not supported yet",
                               "tensor_parallel_size");
      }
    }
  }
  int threads = options.n_threads;
  if (threads == 0) threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  const int max_context = options.max_context > 0 ? options.max_context : c.max_context;
  if (max_context <= 0)
    return invalid_argument("cpu backend: model has no context length; set max_context",
                            "max_context");
  const int64_t per_token = cpu_kv_bytes_per_token(c, tp, options.kv_cache_dtype);
  const int64_t block_bytes = per_token * options.block_size;
  int64_t budget = options.kv_cache_memory_bytes;
  if (budget == 0) {
    const int64_t one_context = per_token * max_context;
    budget = std::max(one_context,
                      std::min(one_context * options.max_num_seqs, kDefaultKvCacheCapBytes));
    budget += block_bytes - 1;  // whole blocks
  }
  const int64_t n_blocks = options.num_blocks > 0 ? options.num_blocks : budget / block_bytes;
  if (n_blocks < 1) {
    return invalid_argument("cpu backend: kv_cache_memory of " + std::to_string(budget) +
                                " bytes holds no block of " + std::to_string(block_bytes) +
                                " bytes",
                            "kv_cache_memory");
  }
  if (n_blocks > (int64_t{1} << 30))
    return invalid_argument("cpu backend: kv_cache_memory is too large", "kv_cache_memory");
  if (tp == 1) {
    return std::unique_ptr<Backend>(std::make_unique<CpuBackend>(
        model, nullptr, nullptr, threads, max_context, static_cast<int>(n_blocks),
        options.block_size, options.kv_cache_dtype));
  }
  // Each rank: a thread group of threads / tp (its rank thread included), built on its own rank
  // thread so that the pages it first touches are its own.
  auto group = std::make_shared<tp::ShmGroup>(tp::make_shm_group(tp));
  const int rank_threads = std::max(1, threads / tp);
  RankFactory factory =
      [&model, group, rank_threads, max_context, n_blocks, block_size = options.block_size,
       kv_dtype = options.kv_cache_dtype](int rank) -> Result<std::unique_ptr<Backend>> {
    TURBINE_ASSIGN_OR_RETURN(
        tp::ShardPlan plan,
        tp::make_shard_plan(model.config(), rank, static_cast<int>(group->comms.size())));
    TURBINE_ASSIGN_OR_RETURN(auto shard, tp::RankWeights::make(model, plan));
    return std::unique_ptr<Backend>(std::make_unique<CpuBackend>(
        model, std::move(shard), std::move(group->comms[static_cast<size_t>(rank)]), rank_threads,
        max_context, static_cast<int>(n_blocks), block_size, kv_dtype));
  };
  TpGroupHooks hooks{group->abort, group->reset};
  return make_tensor_parallel_backend(c, tp, std::move(factory), std::move(hooks));
}

}  // namespace turbine::engine
