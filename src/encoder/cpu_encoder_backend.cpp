#include "encoder/cpu_encoder_backend.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <thread>

#include "encoder/encoder_math.h"
#include "engine/cpu_kernels.h"
#include "engine/cpu_thread_pool.h"
#include "model/dtype.h"

namespace turbine::encoder {
namespace {

using engine::MatmulOut;
using model::TensorView;

struct NormF32 {
  std::vector<float> w, b;
  bool present() const { return !w.empty(); }
  const float* bias() const { return b.empty() ? nullptr : b.data(); }
};

NormF32 norm_f32(const Norm& n) {
  return {engine::to_f32(n.w), engine::to_f32(n.b)};
}

struct LayerF32 {
  std::vector<float> bq, bk, bv, bo, bup, bgate, bdown;
  NormF32 attn_norm, ffn_norm;
};

// Attention work item: queries [q0, q1) of one head of one sequence.
struct AttnTask {
  int seq_begin, seq_len, head, q0, q1;
};

class CpuEncoderBackend final : public EncoderBackend {
 public:
  CpuEncoderBackend(const EncoderConfig& config, const EncoderWeights& weights, int n_threads)
      : c_(config), w_(weights), pool_(n_threads) {
    emb_norm_ = norm_f32(w_.emb_norm);
    final_norm_ = norm_f32(w_.final_norm);
    layers_.resize(w_.layers.size());
    for (size_t l = 0; l < w_.layers.size(); ++l) {
      const EncoderLayer& L = w_.layers[l];
      LayerF32& F = layers_[l];
      F.bq = engine::to_f32(L.q.b);
      F.bk = engine::to_f32(L.k.b);
      F.bv = engine::to_f32(L.v.b);
      F.bo = engine::to_f32(L.o.b);
      F.bup = engine::to_f32(L.up.b);
      F.bgate = engine::to_f32(L.gate.b);
      F.bdown = engine::to_f32(L.down.b);
      F.attn_norm = norm_f32(L.attn_norm);
      F.ffn_norm = norm_f32(L.ffn_norm);
    }
    if (c_.arch == EncoderArch::kModernBert) {
      global_inv_freq_ = engine::rope_inv_freq(c_.head_dim, c_.global_rope_theta, {});
      local_inv_freq_ = engine::rope_inv_freq(c_.head_dim, c_.local_rope_theta, {});
    }
    scratch_.resize(static_cast<size_t>(pool_.size()));
    scores_.resize(static_cast<size_t>(pool_.size()));
    v_rows_.resize(static_cast<size_t>(pool_.size()));
  }

  std::string_view name() const override { return "cpu"; }
  int hidden_dim() const override { return c_.dim; }
  int max_tokens() const override { return c_.max_tokens(); }
  Status forward(const EncoderBatch& batch, std::vector<float>& out) override;

 private:
  // fn(i0, i1) over [0, total) in at most pool-size ranges of at least `min_chunk`.
  void for_ranges(size_t total, size_t min_chunk, const std::function<void(size_t, size_t)>& fn) {
    const size_t n_tasks = std::min(static_cast<size_t>(pool_.size()),
                                    std::max<size_t>(1, total / std::max<size_t>(1, min_chunk)));
    const size_t per = (total + n_tasks - 1) / n_tasks;
    pool_.run(static_cast<int>(n_tasks), [&](int task, int) {
      const size_t b = static_cast<size_t>(task) * per;
      if (b < total) fn(b, std::min(total, b + per));
    });
  }
  void add_bias(float* y, size_t n, int width, const std::vector<float>& b) {
    if (b.empty()) return;
    for_ranges(n, 16, [&](size_t i0, size_t i1) {
      for (size_t i = i0; i < i1; ++i) {
        float* row = y + i * static_cast<size_t>(width);
        for (int j = 0; j < width; ++j) row[j] += b[static_cast<size_t>(j)];
      }
    });
  }
  void embed(const EncoderBatch& batch);
  void attention(const EncoderBatch& batch, bool local);
  void rope(const EncoderBatch& batch, bool local);

  const EncoderConfig c_;
  const EncoderWeights& w_;
  engine::CpuThreadPool pool_;
  NormF32 emb_norm_, final_norm_;
  std::vector<LayerF32> layers_;
  std::vector<float> global_inv_freq_, local_inv_freq_;
  std::vector<std::vector<float>> scratch_;  // matmul dequantisation, per thread
  std::vector<std::vector<float>> scores_;   // attention scores, per thread
  std::vector<std::vector<const float*>> v_rows_;
  // Activations [n_tokens x width], reused across calls.
  std::vector<float> x_, h_, q_, k_, v_, att_, up_, gate_;
  std::vector<int32_t> pos_;  // position of each token within its sequence
  std::vector<AttnTask> tasks_;
};

void CpuEncoderBackend::embed(const EncoderBatch& batch) {
  const size_t n = batch.ids.size();
  const auto d = static_cast<size_t>(c_.dim);
  for_ranges(n, 16, [&](size_t i0, size_t i1) {
    std::vector<float> tmp(d);
    for (size_t i = i0; i < i1; ++i) {
      float* x = x_.data() + i * d;
      model::dequantize_row(w_.word_emb, batch.ids[i], x);
      if (c_.arch != EncoderArch::kModernBert) {
        model::dequantize_row(w_.pos_emb, pos_[i] + c_.position_offset, tmp.data());
        for (size_t j = 0; j < d; ++j) x[j] += tmp[j];
        if (w_.type_emb.present()) {
          model::dequantize_row(w_.type_emb, batch.type_ids[i], tmp.data());
          for (size_t j = 0; j < d; ++j) x[j] += tmp[j];
        }
      }
      layer_norm(x, x, emb_norm_.w.data(), emb_norm_.bias(), c_.dim, c_.norm_eps);
    }
  });
}

void CpuEncoderBackend::rope(const EncoderBatch& batch, bool local) {
  const std::vector<float>& inv = local ? local_inv_freq_ : global_inv_freq_;
  const size_t half = inv.size();
  const auto d = static_cast<size_t>(c_.dim);
  for_ranges(batch.ids.size(), 8, [&](size_t i0, size_t i1) {
    std::vector<float> cs(2 * half);
    for (size_t i = i0; i < i1; ++i) {
      engine::rope_cos_sin(pos_[i], inv, cs.data(), cs.data() + half);
      engine::apply_rope(q_.data() + i * d, c_.n_heads, c_.head_dim, cs.data(), cs.data() + half,
                         model::RopeLayout::kHalves);
      engine::apply_rope(k_.data() + i * d, c_.n_heads, c_.head_dim, cs.data(), cs.data() + half,
                         model::RopeLayout::kHalves);
    }
  });
}

void CpuEncoderBackend::attention(const EncoderBatch& batch, bool local) {
  const int hd = c_.head_dim, d = c_.dim;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const int half_window = local ? c_.local_window / 2 : -1;
  tasks_.clear();
  constexpr int kQueriesPerTask = 16;
  for (size_t s = 0; s < batch.n_seqs(); ++s) {
    const int b = batch.seq_begin[s], len = batch.seq_begin[s + 1] - b;
    for (int h = 0; h < c_.n_heads; ++h) {
      for (int q0 = 0; q0 < len; q0 += kQueriesPerTask)
        tasks_.push_back({b, len, h, q0, std::min(len, q0 + kQueriesPerTask)});
    }
  }
  pool_.run(static_cast<int>(tasks_.size()), [&](int task, int thread) {
    const AttnTask& t = tasks_[static_cast<size_t>(task)];
    std::vector<float>& scores = scores_[static_cast<size_t>(thread)];
    std::vector<const float*>& v_rows = v_rows_[static_cast<size_t>(thread)];
    if (scores.size() < static_cast<size_t>(t.seq_len))
      scores.resize(static_cast<size_t>(t.seq_len));
    if (v_rows.size() < static_cast<size_t>(t.seq_len))
      v_rows.resize(static_cast<size_t>(t.seq_len));
    const size_t head_off = static_cast<size_t>(t.head * hd);
    for (int i = t.q0; i < t.q1; ++i) {
      // Bidirectional within the sequence; local layers see |i - j| <= window / 2.
      const int lo = half_window < 0 ? 0 : std::max(0, i - half_window);
      const int hi = half_window < 0 ? t.seq_len : std::min(t.seq_len, i + half_window + 1);
      const float* q = q_.data() + static_cast<size_t>(t.seq_begin + i) * d + head_off;
      for (int j = lo; j < hi; ++j) {
        const size_t row = static_cast<size_t>(t.seq_begin + j) * d + head_off;
        scores[static_cast<size_t>(j - lo)] = engine::dot_f32(q, k_.data() + row, hd) * scale;
        v_rows[static_cast<size_t>(j - lo)] = v_.data() + row;
      }
      engine::softmax(scores.data(), hi - lo);
      engine::weighted_sum_f32(scores.data(), v_rows.data(), hi - lo, hd,
                               att_.data() + static_cast<size_t>(t.seq_begin + i) * d + head_off);
    }
  });
}

Status CpuEncoderBackend::forward(const EncoderBatch& batch, std::vector<float>& out) {
  TURBINE_RETURN_IF_ERROR(validate_batch(batch, c_.vocab_size, max_tokens(), c_.type_vocab_size));
  const size_t n = batch.ids.size();
  const auto d = static_cast<size_t>(c_.dim), f = static_cast<size_t>(c_.ffn_dim);
  const int nt = static_cast<int>(n);
  x_.resize(n * d);
  h_.resize(n * d);
  q_.resize(n * d);
  k_.resize(n * d);
  v_.resize(n * d);
  att_.resize(n * d);
  up_.resize(n * f);
  gate_.resize(n * f);
  pos_.resize(n);
  for (size_t s = 0; s < batch.n_seqs(); ++s) {
    for (int i = batch.seq_begin[s]; i < batch.seq_begin[s + 1]; ++i)
      pos_[static_cast<size_t>(i)] = i - batch.seq_begin[s];
  }
  embed(batch);

  const bool modern = c_.arch == EncoderArch::kModernBert;
  for (size_t l = 0; l < w_.layers.size(); ++l) {
    const EncoderLayer& L = w_.layers[l];
    const LayerF32& F = layers_[l];
    if (modern) {
      // Pre-norm; layer 0 reads the embedding norm's output directly.
      const float* in = x_.data();
      if (F.attn_norm.present()) {
        for_ranges(n, 16, [&](size_t i0, size_t i1) {
          for (size_t i = i0; i < i1; ++i)
            layer_norm(h_.data() + i * d, x_.data() + i * d, F.attn_norm.w.data(),
                       F.attn_norm.bias(), c_.dim, c_.norm_eps);
        });
        in = h_.data();
      }
      const MatmulOut qkv[] = {{&L.q.w, q_.data()}, {&L.k.w, k_.data()}, {&L.v.w, v_.data()}};
      engine::matmul(pool_, in, nt, qkv, scratch_);
      add_bias(q_.data(), n, c_.dim, F.bq);
      add_bias(k_.data(), n, c_.dim, F.bk);
      add_bias(v_.data(), n, c_.dim, F.bv);
      const bool local = c_.layer_local[l];
      rope(batch, local);
      attention(batch, local);
      engine::matmul(pool_, att_.data(), nt, L.o.w, h_.data(), scratch_);
      add_bias(h_.data(), n, c_.dim, F.bo);
      for_ranges(n, 16, [&](size_t i0, size_t i1) {
        for (size_t i = i0; i < i1; ++i) {
          float* x = x_.data() + i * d;
          float* h = h_.data() + i * d;
          for (size_t j = 0; j < d; ++j) x[j] += h[j];
          layer_norm(h, x, F.ffn_norm.w.data(), F.ffn_norm.bias(), c_.dim, c_.norm_eps);
        }
      });
      const MatmulOut wi[] = {{&L.up.w, up_.data()}, {&L.gate.w, gate_.data()}};
      engine::matmul(pool_, h_.data(), nt, wi, scratch_);
      add_bias(up_.data(), n, c_.ffn_dim, F.bup);
      add_bias(gate_.data(), n, c_.ffn_dim, F.bgate);
      for_ranges(n * f, 4096, [&](size_t j0, size_t j1) {
        activate(up_.data() + j0, static_cast<int64_t>(j1 - j0), c_.act);
        for (size_t j = j0; j < j1; ++j) up_[j] *= gate_[j];
      });
      engine::matmul(pool_, up_.data(), nt, L.down.w, h_.data(), scratch_);
      add_bias(h_.data(), n, c_.dim, F.bdown);
      for_ranges(n * d, 4096, [&](size_t j0, size_t j1) {
        for (size_t j = j0; j < j1; ++j) x_[j] += h_[j];
      });
    } else {
      // BERT: post-norm.
      const MatmulOut qkv[] = {{&L.q.w, q_.data()}, {&L.k.w, k_.data()}, {&L.v.w, v_.data()}};
      engine::matmul(pool_, x_.data(), nt, qkv, scratch_);
      add_bias(q_.data(), n, c_.dim, F.bq);
      add_bias(k_.data(), n, c_.dim, F.bk);
      add_bias(v_.data(), n, c_.dim, F.bv);
      attention(batch, false);
      engine::matmul(pool_, att_.data(), nt, L.o.w, h_.data(), scratch_);
      for_ranges(n, 16, [&](size_t i0, size_t i1) {
        for (size_t i = i0; i < i1; ++i) {
          float* x = x_.data() + i * d;
          const float* h = h_.data() + i * d;
          for (size_t j = 0; j < d; ++j) x[j] += h[j] + F.bo[j];
          layer_norm(x, x, F.attn_norm.w.data(), F.attn_norm.bias(), c_.dim, c_.norm_eps);
        }
      });
      engine::matmul(pool_, x_.data(), nt, L.up.w, up_.data(), scratch_);
      for_ranges(n, 4, [&](size_t i0, size_t i1) {
        for (size_t i = i0; i < i1; ++i) {
          float* u = up_.data() + i * f;
          for (size_t j = 0; j < f; ++j) u[j] += F.bup[j];
          activate(u, static_cast<int64_t>(f), c_.act);
        }
      });
      engine::matmul(pool_, up_.data(), nt, L.down.w, h_.data(), scratch_);
      for_ranges(n, 16, [&](size_t i0, size_t i1) {
        for (size_t i = i0; i < i1; ++i) {
          float* x = x_.data() + i * d;
          const float* h = h_.data() + i * d;
          for (size_t j = 0; j < d; ++j) x[j] += h[j] + F.bdown[j];
          layer_norm(x, x, F.ffn_norm.w.data(), F.ffn_norm.bias(), c_.dim, c_.norm_eps);
        }
      });
    }
  }
  if (final_norm_.present()) {
    for_ranges(n, 16, [&](size_t i0, size_t i1) {
      for (size_t i = i0; i < i1; ++i)
        layer_norm(x_.data() + i * d, x_.data() + i * d, final_norm_.w.data(), final_norm_.bias(),
                   c_.dim, c_.norm_eps);
    });
  }

  out.resize(batch.output_rows() * d);
  size_t row = 0;
  for (size_t s = 0; s < batch.n_seqs(); ++s) {
    const int b = batch.seq_begin[s], len = batch.seq_begin[s + 1] - b;
    const float* rows = x_.data() + static_cast<size_t>(b) * d;
    if (batch.outputs[s] == Output::kAllTokens) {
      std::memcpy(out.data() + row * d, rows, static_cast<size_t>(len) * d * sizeof(float));
      row += static_cast<size_t>(len);
    } else {
      pool_rows(rows, len, c_.dim, batch.outputs[s], out.data() + row * d);
      ++row;
    }
  }
  return Status::ok();
}

}  // namespace

const char* output_name(Output o) {
  switch (o) {
    case Output::kAllTokens: return "all_tokens";
    case Output::kCls: return "cls";
    case Output::kMean: return "mean";
    case Output::kLastToken: return "last_token";
    case Output::kMax: return "max";
  }
  return "?";
}

size_t EncoderBatch::output_rows() const {
  size_t rows = 0;
  for (size_t s = 0; s < outputs.size(); ++s) {
    rows +=
        outputs[s] == Output::kAllTokens ? static_cast<size_t>(seq_begin[s + 1] - seq_begin[s]) : 1;
  }
  return rows;
}

Status validate_batch(const EncoderBatch& batch, int vocab_size, int max_tokens,
                      int type_vocab_size) {
  if (batch.seq_begin.size() != batch.outputs.size() + 1 || batch.seq_begin.front() != 0 ||
      static_cast<size_t>(batch.seq_begin.back()) != batch.ids.size() ||
      batch.type_ids.size() != batch.ids.size()) {
    return invalid_argument("encoder batch: inconsistent sequence offsets");
  }
  for (size_t s = 0; s < batch.outputs.size(); ++s) {
    const int len = batch.seq_begin[s + 1] - batch.seq_begin[s];
    if (len <= 0) return invalid_argument("encoder batch: empty sequence", "input");
    if (len > max_tokens) {
      return invalid_argument("input of " + std::to_string(len) +
                                  " tokens is longer than the model's maximum of " +
                                  std::to_string(max_tokens),
                              "input");
    }
  }
  for (size_t i = 0; i < batch.ids.size(); ++i) {
    if (batch.ids[i] < 0 || batch.ids[i] >= vocab_size)
      return invalid_argument("token id " + std::to_string(batch.ids[i]) + " is out of range",
                              "input");
    if (batch.type_ids[i] < 0 || batch.type_ids[i] >= std::max(1, type_vocab_size))
      return invalid_argument(
          "token type id " + std::to_string(batch.type_ids[i]) + " is out of range", "input");
  }
  return Status::ok();
}

Result<std::unique_ptr<EncoderBackend>> make_cpu_encoder_backend(const EncoderConfig& config,
                                                                 const EncoderWeights& weights,
                                                                 const CpuEncoderOptions& options) {
  if (config.arch == EncoderArch::kDecoder)
    return invalid_argument("cpu encoder backend: decoder models run on the engine's backend");
  if (weights.layers.size() != static_cast<size_t>(config.n_layers))
    return invalid_argument("cpu encoder backend: weights do not match the config");
  if (options.n_threads < 0 || options.n_threads > 1024)
    return invalid_argument("cpu encoder backend: n_threads must be in [0, 1024]", "n_threads");
  int threads = options.n_threads;
  if (threads == 0) threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  return std::unique_ptr<EncoderBackend>(
      std::make_unique<CpuEncoderBackend>(config, weights, threads));
}

}  // namespace turbine::encoder
