// The CPU backend: a batched f32 forward pass for Llama-family models (Llama, Mistral without
// sliding window, Qwen2, Qwen3).
//
// Thread ownership: the engine thread calls forward()/release_slot(); the pool's workers only run
// the kernels forward() hands them and touch nothing else. The KV cache is per slot, f32,
// [position][kv_heads * head_dim] per layer, grown on demand and freed on release.
#include <algorithm>
#include <cmath>
#include <string>
#include <thread>

#include "engine/backend.h"
#include "engine/cpu_kernels.h"
#include "engine/cpu_thread_pool.h"
#include "model/dtype.h"

namespace turbine::engine {
namespace {

using model::TensorView;

struct LayerF32 {
  std::vector<float> attn_norm, ffn_norm, bq, bk, bv, q_norm, k_norm;
};

struct SlotCache {
  int len = 0;                           // positions [0, len) hold valid K/V
  int capacity = 0;                      // positions allocated
  std::vector<std::vector<float>> k, v;  // per layer, capacity * kv_dim
};

class CpuBackend final : public Backend {
 public:
  CpuBackend(const model::Model& model, int n_threads, int n_slots, int max_context)
      : model_(model),
        cfg_(model.config()),
        pool_(n_threads),
        max_context_(max_context),
        slots_(static_cast<size_t>(n_slots)) {
    const auto& w = model.weights();
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
    }
    output_norm_ = to_f32(w.output_norm);
    inv_freq_ = rope_inv_freq(cfg_.head_dim, cfg_.rope_theta, cfg_.rope_scaling);
    const int widest = std::max({cfg_.dim, cfg_.ffn_dim, cfg_.n_heads * cfg_.head_dim});
    row_scratch_.assign(static_cast<size_t>(pool_.size()),
                        std::vector<float>(static_cast<size_t>(widest)));
    score_scratch_.resize(static_cast<size_t>(pool_.size()));
  }

  std::string_view name() const override { return "cpu"; }
  int num_slots() const override { return static_cast<int>(slots_.size()); }
  int max_context() const override { return max_context_; }

  void release_slot(int slot) override {
    if (slot < 0 || slot >= num_slots()) return;
    slots_[static_cast<size_t>(slot)] = SlotCache{};  // frees the memory: idle slots cost nothing
  }

  Status forward(std::span<const SeqChunk> chunks, std::vector<float>& logits) override;

 private:
  Status validate(std::span<const SeqChunk> chunks) const;
  void reserve(SlotCache& s, int needed);
  void attention(int layer, int n_tokens);

  const model::Model& model_;
  const model::ModelConfig& cfg_;
  CpuThreadPool pool_;
  int max_context_;
  std::vector<SlotCache> slots_;
  std::vector<LayerF32> layers_;
  std::vector<float> output_norm_;
  std::vector<float> inv_freq_;
  // Per-thread scratch for the pool's tasks, indexed by thread.
  std::vector<std::vector<float>> row_scratch_;
  std::vector<std::vector<float>> score_scratch_;
  // Step activations, reused across calls: [n_tokens x width].
  std::vector<float> x_, xb_, xb2_, q_, k_, v_, att_, hb_, hb2_;
  std::vector<int> tok_slot_, tok_pos_;
};

Status CpuBackend::validate(std::span<const SeqChunk> chunks) const {
  std::vector<bool> seen(slots_.size(), false);
  for (size_t c = 0; c < chunks.size(); ++c) {
    const SeqChunk& ch = chunks[c];
    const std::string where = "chunk " + std::to_string(c) + ": ";
    if (ch.slot < 0 || ch.slot >= num_slots()) {
      return invalid_argument(where + "slot " + std::to_string(ch.slot) + " out of range [0, " +
                                  std::to_string(num_slots()) + ")",
                              "slot");
    }
    if (seen[static_cast<size_t>(ch.slot)]) {
      return invalid_argument(
          where + "slot " + std::to_string(ch.slot) + " appears twice in one step", "slot");
    }
    seen[static_cast<size_t>(ch.slot)] = true;
    if (ch.tokens.empty()) return invalid_argument(where + "no tokens", "tokens");
    const int have = slots_[static_cast<size_t>(ch.slot)].len;
    if (ch.pos < 0 || ch.pos > have) {
      return invalid_argument(where + "position " + std::to_string(ch.pos) + " but slot " +
                                  std::to_string(ch.slot) + " holds " + std::to_string(have) +
                                  " positions",
                              "pos");
    }
    if (static_cast<int64_t>(ch.pos) + static_cast<int64_t>(ch.tokens.size()) > max_context_) {
      return invalid_argument(where + "positions up to " +
                                  std::to_string(ch.pos + ch.tokens.size()) +
                                  " exceed max context " + std::to_string(max_context_),
                              "pos");
    }
    for (int32_t t : ch.tokens) {
      if (t < 0 || t >= cfg_.n_vocab) {
        return invalid_argument(where + "token id " + std::to_string(t) +
                                    " out of vocabulary [0, " + std::to_string(cfg_.n_vocab) + ")",
                                "tokens");
      }
    }
  }
  return Status::ok();
}

void CpuBackend::reserve(SlotCache& s, int needed) {
  if (needed <= s.capacity) return;
  const int cap = std::min(max_context_, std::max({needed, 2 * s.capacity, 16}));
  const size_t kv_dim = static_cast<size_t>(cfg_.n_kv_heads) * static_cast<size_t>(cfg_.head_dim);
  s.k.resize(layers_.size());
  s.v.resize(layers_.size());
  for (size_t l = 0; l < layers_.size(); ++l) {
    s.k[l].resize(static_cast<size_t>(cap) * kv_dim);
    s.v[l].resize(static_cast<size_t>(cap) * kv_dim);
  }
  s.capacity = cap;
}

void CpuBackend::attention(int layer, int n_tokens) {
  const int hd = cfg_.head_dim, n_heads = cfg_.n_heads;
  const int kv_dim = cfg_.n_kv_heads * hd, q_dim = n_heads * hd;
  const int group = n_heads / cfg_.n_kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  pool_.run(n_tokens * n_heads, [&](int task, int thread) {
    const int t = task / n_heads, h = task % n_heads;
    const int pos = tok_pos_[static_cast<size_t>(t)];
    const SlotCache& s = slots_[static_cast<size_t>(tok_slot_[static_cast<size_t>(t)])];
    const float* kc = s.k[static_cast<size_t>(layer)].data() + (h / group) * hd;
    const float* vc = s.v[static_cast<size_t>(layer)].data() + (h / group) * hd;
    const float* q = q_.data() + static_cast<size_t>(t) * q_dim + h * hd;
    float* scores = score_scratch_[static_cast<size_t>(thread)].data();
    // Causal: a token sees every earlier position of its own sequence and itself.
    for (int p = 0; p <= pos; ++p)
      scores[p] = dot_f32(q, kc + static_cast<size_t>(p) * kv_dim, hd) * scale;
    softmax(scores, pos + 1);
    float* out = att_.data() + static_cast<size_t>(t) * q_dim + h * hd;
    std::fill(out, out + hd, 0.0f);
    for (int p = 0; p <= pos; ++p) {
      const float a = scores[p];
      const float* vp = vc + static_cast<size_t>(p) * kv_dim;
      for (int i = 0; i < hd; ++i) out[i] += a * vp[i];
    }
  });
}

Status CpuBackend::forward(std::span<const SeqChunk> chunks, std::vector<float>& logits) {
  TURBINE_RETURN_IF_ERROR(validate(chunks));
  const auto& w = model_.weights();
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
  tok_slot_.resize(static_cast<size_t>(n));
  tok_pos_.resize(static_cast<size_t>(n));
  for (auto& s : score_scratch_) {
    if (s.size() < static_cast<size_t>(max_pos)) s.resize(static_cast<size_t>(max_pos));
  }

  // Token rows in chunk order; the cache grows before any work so nothing can fail midway.
  int t = 0;
  for (const SeqChunk& ch : chunks) {
    SlotCache& s = slots_[static_cast<size_t>(ch.slot)];
    reserve(s, ch.pos + static_cast<int>(ch.tokens.size()));
    for (size_t i = 0; i < ch.tokens.size(); ++i, ++t) {
      tok_slot_[static_cast<size_t>(t)] = ch.slot;
      tok_pos_[static_cast<size_t>(t)] = ch.pos + static_cast<int>(i);
      model::dequantize_row(w.tok_embeddings, ch.tokens[i],
                            x_.data() + static_cast<size_t>(t) * dim);
    }
  }

  for (size_t l = 0; l < layers_.size(); ++l) {
    const model::LayerWeights& L = w.layers[l];
    const LayerF32& F = layers_[l];
    for (int i = 0; i < n; ++i) {
      rmsnorm(xb_.data() + static_cast<size_t>(i) * dim, x_.data() + static_cast<size_t>(i) * dim,
              F.attn_norm.data(), dim, cfg_.norm_eps);
    }
    matmul(pool_, xb_.data(), n, L.wq, q_.data(), row_scratch_);
    matmul(pool_, xb_.data(), n, L.wk, k_.data(), row_scratch_);
    matmul(pool_, xb_.data(), n, L.wv, v_.data(), row_scratch_);
    for (int i = 0; i < n; ++i) {
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
      const int pos = tok_pos_[static_cast<size_t>(i)];
      apply_rope(q, cfg_.n_heads, hd, pos, inv_freq_, cfg_.rope_layout);
      apply_rope(k, cfg_.n_kv_heads, hd, pos, inv_freq_, cfg_.rope_layout);
      SlotCache& s = slots_[static_cast<size_t>(tok_slot_[static_cast<size_t>(i)])];
      std::copy(k, k + kv_dim, s.k[l].data() + static_cast<size_t>(pos) * kv_dim);
      std::copy(v, v + kv_dim, s.v[l].data() + static_cast<size_t>(pos) * kv_dim);
    }
    attention(static_cast<int>(l), n);
    matmul(pool_, att_.data(), n, L.wo, xb2_.data(), row_scratch_);
    for (size_t j = 0; j < sz(dim); ++j) x_[j] += xb2_[j];

    for (int i = 0; i < n; ++i) {
      rmsnorm(xb_.data() + static_cast<size_t>(i) * dim, x_.data() + static_cast<size_t>(i) * dim,
              F.ffn_norm.data(), dim, cfg_.norm_eps);
    }
    matmul(pool_, xb_.data(), n, L.w_gate, hb_.data(), row_scratch_);
    matmul(pool_, xb_.data(), n, L.w_up, hb2_.data(), row_scratch_);
    for (size_t j = 0; j < sz(ffn); ++j) {
      const float g = hb_[j];
      hb_[j] = g / (1.0f + std::exp(-g)) * hb2_[j];  // SwiGLU: silu(gate) * up
    }
    matmul(pool_, hb_.data(), n, L.w_down, xb2_.data(), row_scratch_);
    for (size_t j = 0; j < sz(dim); ++j) x_[j] += xb2_[j];
  }

  // Only the last token of each chunk that wants logits goes through the LM head.
  int n_out = 0;
  t = 0;
  for (const SeqChunk& ch : chunks) {
    t += static_cast<int>(ch.tokens.size());
    slots_[static_cast<size_t>(ch.slot)].len = ch.pos + static_cast<int>(ch.tokens.size());
    if (ch.want_logits) {
      rmsnorm(xb_.data() + static_cast<size_t>(n_out) * dim,
              x_.data() + static_cast<size_t>(t - 1) * dim, output_norm_.data(), dim,
              cfg_.norm_eps);
      ++n_out;
    }
  }
  logits.resize(static_cast<size_t>(n_out) * static_cast<size_t>(cfg_.n_vocab));
  if (n_out > 0) matmul(pool_, xb_.data(), n_out, w.output, logits.data(), row_scratch_);
  return Status::ok();
}

}  // namespace

Result<std::unique_ptr<Backend>> make_cpu_backend(const model::Model& model,
                                                  const CpuBackendOptions& options) {
  const model::ModelConfig& c = model.config();
  if (c.n_layers <= 0 || c.dim <= 0 || c.n_vocab <= 0 || c.n_kv_heads <= 0 ||
      c.n_heads % c.n_kv_heads != 0 ||
      model.weights().layers.size() != static_cast<size_t>(c.n_layers)) {
    return invalid_argument("cpu backend: model " + model.name() + " has an inconsistent config");
  }
  if (options.n_slots <= 0 || options.n_slots > 4096)
    return invalid_argument("cpu backend: n_slots must be in [1, 4096]", "n_slots");
  if (options.n_threads < 0 || options.n_threads > 1024)
    return invalid_argument("cpu backend: n_threads must be in [0, 1024]", "n_threads");
  if (options.max_context < 0)
    return invalid_argument("cpu backend: max_context must be >= 0", "max_context");
  int threads = options.n_threads;
  if (threads == 0) threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  const int max_context = options.max_context > 0 ? options.max_context : c.max_context;
  if (max_context <= 0)
    return invalid_argument("cpu backend: model has no context length; set max_context",
                            "max_context");
  return std::unique_ptr<Backend>(
      std::make_unique<CpuBackend>(model, threads, options.n_slots, max_context));
}

}  // namespace turbine::engine
