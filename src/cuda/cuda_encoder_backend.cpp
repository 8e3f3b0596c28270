#include "cuda/cuda_encoder_backend.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <optional>
#include <set>
#include <tuple>
#include <utility>
#include <vector>

#include "cuda/device.h"
#include "cuda/encoder_attention.h"
#include "cuda/encoder_kernels.h"
#include "cuda/gemm.h"
#include "engine/cpu_kernels.h"
#include "model/dtype.h"

namespace turbine::cuda {
namespace {

using encoder::EncoderArch;
using encoder::EncoderBatch;
using encoder::EncoderConfig;
using encoder::EncoderWeights;
using model::DType;
using model::TensorView;

// Move-only owner of page-locked host memory (the staging and result copies).
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  ~PinnedBuffer() {
    if (ptr_ != nullptr) (void)cudaFreeHost(ptr_);
  }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  Status reserve(size_t bytes) {
    if (bytes <= size_) return Status::ok();
    if (ptr_ != nullptr) (void)cudaFreeHost(ptr_);
    ptr_ = nullptr;
    size_ = 0;
    TURBINE_RETURN_IF_ERROR(check(cudaMallocHost(&ptr_, bytes), "cudaMallocHost"));
    size_ = bytes;
    return Status::ok();
  }
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }

 private:
  void* ptr_ = nullptr;
  size_t size_ = 0;
};

// Rows of the GEMMs: rounded up so that distinct batch sizes share cuBLASLt plans.
int gemm_rows(int n) {
  return n <= 256 ? (n + 15) / 16 * 16 : (n + 255) / 256 * 256;
}

Act to_act(encoder::Activation a) {
  switch (a) {
    case encoder::Activation::kGelu: return Act::kGelu;
    case encoder::Activation::kGeluTanh: return Act::kGeluTanh;
    case encoder::Activation::kRelu: return Act::kRelu;
    case encoder::Activation::kSilu: return Act::kSilu;
    case encoder::Activation::kTanh: return Act::kTanh;
  }
  return Act::kGelu;
}

// The views' elements, concatenated (row-major: concatenating matrices with equal columns stacks
// their rows), converted to `dtype` and uploaded. All absent: an empty buffer.
Result<DeviceBuffer> upload(std::initializer_list<const TensorView*> parts, DType dtype,
                            cudaStream_t stream) {
  size_t n = 0;
  int64_t cols = 0;
  for (const TensorView* t : parts) {
    if (!t->present()) continue;
    n += static_cast<size_t>(t->rows * t->cols);
    cols = std::max(cols, t->cols);
  }
  if (n == 0) return DeviceBuffer();
  const size_t esize = dtype_bytes(dtype);
  std::vector<uint8_t> host(n * esize);
  std::vector<float> row(static_cast<size_t>(cols));
  size_t at = 0;
  for (const TensorView* t : parts) {
    if (!t->present()) continue;
    for (int64_t r = 0; r < t->rows; ++r) {
      model::dequantize_row(*t, r, row.data());
      for (int64_t c = 0; c < t->cols; ++c, ++at) {
        const float f = row[static_cast<size_t>(c)];
        if (dtype == DType::kF32) {
          std::memcpy(host.data() + at * 4, &f, 4);
        } else {
          const uint16_t h = dtype == DType::kBF16 ? model::f32_to_bf16(f) : model::f32_to_f16(f);
          std::memcpy(host.data() + at * 2, &h, 2);
        }
      }
    }
  }
  TURBINE_ASSIGN_OR_RETURN(DeviceBuffer b, DeviceBuffer::allocate(host.size()));
  TURBINE_RETURN_IF_ERROR(
      check(cudaMemcpyAsync(b.data(), host.data(), host.size(), cudaMemcpyHostToDevice, stream),
            "weight upload"));
  TURBINE_RETURN_IF_ERROR(check(cudaStreamSynchronize(stream), "weight upload"));
  return b;
}

Result<DeviceBuffer> upload_f32(const std::vector<float>& v, cudaStream_t stream) {
  if (v.empty()) return DeviceBuffer();
  TURBINE_ASSIGN_OR_RETURN(DeviceBuffer b, DeviceBuffer::allocate(v.size() * sizeof(float)));
  TURBINE_RETURN_IF_ERROR(check(
      cudaMemcpyAsync(b.data(), v.data(), v.size() * sizeof(float), cudaMemcpyHostToDevice, stream),
      "norm upload"));
  TURBINE_RETURN_IF_ERROR(check(cudaStreamSynchronize(stream), "norm upload"));
  return b;
}

Result<DeviceBuffer> upload_norm(const TensorView& t, cudaStream_t stream) {
  return upload_f32(engine::to_f32(t), stream);
}

struct Layer {
  DeviceBuffer wqkv, bqkv;  // [3 dim, dim], [3 dim] or empty
  DeviceBuffer wo, bo;      // [dim, dim], [dim] or empty
  DeviceBuffer wi, bi;      // BERT [ffn, dim] (+ [ffn]); ModernBERT [2 ffn, dim] input|gate
  DeviceBuffer wd, bd;      // [dim, ffn], [dim] or empty
  DeviceBuffer attn_norm_w, attn_norm_b, ffn_norm_w, ffn_norm_b;  // F32; may be empty
  bool local = false;
};

const float* f32(const DeviceBuffer& b) {
  return b.as<const float>();
}

class CudaEncoderBackend final : public encoder::EncoderBackend {
 public:
  CudaEncoderBackend(const EncoderConfig& c, const CudaEncoderOptions& o) : c_(c), o_(o) {}

  Status init(const EncoderWeights& w) {
    TURBINE_RETURN_IF_ERROR(check(cudaSetDevice(o_.device), "cudaSetDevice"));
    TURBINE_ASSIGN_OR_RETURN(stream_, Stream::create());
    TURBINE_ASSIGN_OR_RETURN(Gemm gemm, Gemm::create());
    gemm_.emplace(std::move(gemm));
    cudaStream_t s = stream_.get();
    const DType dt = o_.dtype;
    TURBINE_ASSIGN_OR_RETURN(word_, upload({&w.word_emb}, dt, s));
    TURBINE_ASSIGN_OR_RETURN(pos_, upload({&w.pos_emb}, dt, s));
    TURBINE_ASSIGN_OR_RETURN(type_, upload({&w.type_emb}, dt, s));
    TURBINE_ASSIGN_OR_RETURN(emb_norm_w_, upload_norm(w.emb_norm.w, s));
    TURBINE_ASSIGN_OR_RETURN(emb_norm_b_, upload_norm(w.emb_norm.b, s));
    TURBINE_ASSIGN_OR_RETURN(final_norm_w_, upload_norm(w.final_norm.w, s));
    TURBINE_ASSIGN_OR_RETURN(final_norm_b_, upload_norm(w.final_norm.b, s));
    layers_.resize(w.layers.size());
    for (size_t l = 0; l < w.layers.size(); ++l) {
      const encoder::EncoderLayer& L = w.layers[l];
      Layer& D = layers_[l];
      TURBINE_ASSIGN_OR_RETURN(D.wqkv, upload({&L.q.w, &L.k.w, &L.v.w}, dt, s));
      TURBINE_ASSIGN_OR_RETURN(D.bqkv, upload({&L.q.b, &L.k.b, &L.v.b}, dt, s));
      TURBINE_ASSIGN_OR_RETURN(D.wo, upload({&L.o.w}, dt, s));
      TURBINE_ASSIGN_OR_RETURN(D.bo, upload({&L.o.b}, dt, s));
      TURBINE_ASSIGN_OR_RETURN(D.wi, upload({&L.up.w, &L.gate.w}, dt, s));
      TURBINE_ASSIGN_OR_RETURN(D.bi, upload({&L.up.b, &L.gate.b}, dt, s));
      TURBINE_ASSIGN_OR_RETURN(D.wd, upload({&L.down.w}, dt, s));
      TURBINE_ASSIGN_OR_RETURN(D.bd, upload({&L.down.b}, dt, s));
      TURBINE_ASSIGN_OR_RETURN(D.attn_norm_w, upload_norm(L.attn_norm.w, s));
      TURBINE_ASSIGN_OR_RETURN(D.attn_norm_b, upload_norm(L.attn_norm.b, s));
      TURBINE_ASSIGN_OR_RETURN(D.ffn_norm_w, upload_norm(L.ffn_norm.w, s));
      TURBINE_ASSIGN_OR_RETURN(D.ffn_norm_b, upload_norm(L.ffn_norm.b, s));
      D.local = modern() && c_.layer_local[l];
      if (modern() && !L.gate.w.present())
        return invalid_argument("cuda encoder: ModernBERT layer without a gate projection");
    }
    if (modern()) {
      if (!w.final_norm.present())
        return invalid_argument("cuda encoder: ModernBERT without a final norm");
      TURBINE_ASSIGN_OR_RETURN(
          global_inv_freq_,
          upload_f32(engine::rope_inv_freq(c_.head_dim, c_.global_rope_theta, {}), s));
      TURBINE_ASSIGN_OR_RETURN(
          local_inv_freq_,
          upload_f32(engine::rope_inv_freq(c_.head_dim, c_.local_rope_theta, {}), s));
    }
    if (OpTimer* t = o_.profile.get()) {
      k_.h2d = t->kind("H2D staging");
      k_.embed = t->kind("embed+LN");
      k_.qkv_gemm = t->kind("QKV GEMM", true);
      k_.qkv_bias = t->kind("qkv bias/rope");
      k_.attention = t->kind("attention", true);
      k_.o_gemm = t->kind("O GEMM", true);
      k_.add_ln = t->kind("add+LN");
      k_.up_gemm = t->kind("FFN-up GEMM", true);
      k_.act = t->kind("activation");
      k_.down_gemm = t->kind("FFN-down GEMM", true);
      k_.gather = t->kind("gather (pruned)");
      k_.pool = t->kind("pooling");
      k_.d2h = t->kind("D2H result");
    }
    return reserve(std::max(o_.max_batch_tokens, max_tokens()), 256);
  }

  std::string_view name() const override { return "cuda"; }
  int hidden_dim() const override { return c_.dim; }
  int max_tokens() const override { return c_.max_tokens(); }
  Status forward(const EncoderBatch& batch, std::vector<float>& out) override;

 private:
  bool modern() const { return c_.arch == EncoderArch::kModernBert; }
  size_t esize() const { return dtype_bytes(o_.dtype); }

  // Scratch for `tokens` tokens (GEMM rows included) and `seqs` sequences.
  Status reserve(int tokens, int seqs) {
    const int rows = gemm_rows(tokens);
    if (rows > cap_rows_) {
      const size_t d = static_cast<size_t>(c_.dim), f = static_cast<size_t>(c_.ffn_dim);
      const size_t r = static_cast<size_t>(rows) * esize();
      TURBINE_ASSIGN_OR_RETURN(x_, DeviceBuffer::allocate(r * d));
      TURBINE_ASSIGN_OR_RETURN(h_, DeviceBuffer::allocate(r * d));
      TURBINE_ASSIGN_OR_RETURN(a_, DeviceBuffer::allocate(r * d));
      TURBINE_ASSIGN_OR_RETURN(qkv_, DeviceBuffer::allocate(r * 3 * d));
      TURBINE_ASSIGN_OR_RETURN(u_, DeviceBuffer::allocate(r * (modern() ? 2 * f : f)));
      if (modern()) {
        TURBINE_ASSIGN_OR_RETURN(g_, DeviceBuffer::allocate(r * f));
      }
      cap_rows_ = rows;
    }
    if (tokens > cap_tokens_ || seqs > cap_seqs_) {
      cap_tokens_ = std::max(cap_tokens_, tokens);
      cap_seqs_ = std::max(cap_seqs_, seqs);
      const size_t ints = staging_ints(cap_tokens_, cap_seqs_);
      TURBINE_ASSIGN_OR_RETURN(staging_dev_, DeviceBuffer::allocate(ints * sizeof(int32_t)));
      TURBINE_RETURN_IF_ERROR(staging_.reserve(ints * sizeof(int32_t)));
    }
    return Status::ok();
  }
  static size_t staging_ints(int tokens, int seqs) {
    return 3 * static_cast<size_t>(tokens) + 7 * static_cast<size_t>(seqs) + 2;
  }
  Status reserve_out(size_t rows) {
    const size_t bytes = rows * static_cast<size_t>(c_.dim) * sizeof(float);
    if (bytes > out_dev_.size_bytes()) {
      TURBINE_ASSIGN_OR_RETURN(out_dev_, DeviceBuffer::allocate(bytes));
    }
    return out_host_.reserve(bytes);
  }
  Status matmul(const void* x, const DeviceBuffer& w, void* y, int m, int n, int k) {
    const int rows = gemm_rows(m);
    if (o_.tune_gemms && tuned_.insert({rows, n, k}).second) {
      // First time this shape: time cuBLASLt's candidates on this very product (y is then
      // overwritten by the real call below); the fastest stays in the plan cache.
      auto us = gemm_->tune(stream_.get(), o_.dtype, x, {w.data()}, y, rows, n, k, o_.dtype);
      if (!us.has_value()) return us.status();
    }
    return gemm_->matmul(stream_.get(), o_.dtype, x, w.data(), y, rows, n, k);
  }
  // y = x · wᵀ + bias through the epilogue when it is on and the bias exists: true when the
  // bias went in (the caller skips its own), false when the caller must still add it.
  Result<bool> matmul_bias(const void* x, const DeviceBuffer& w, const DeviceBuffer& bias, void* y,
                           int m, int n, int k) {
    if (o_.bias_epilogue && !bias_epilogue_refused_ && bias.data() != nullptr) {
      const Status st = gemm_->matmul_bias(stream_.get(), o_.dtype, x, w.data(), bias.data(), y,
                                           gemm_rows(m), n, k);
      if (st.is_ok()) return true;
      if (st.code() != StatusCode::kUnimplemented) return st;
      bias_epilogue_refused_ = true;  // cuBLASLt has no such algorithm: separate bias kernels
    }
    TURBINE_RETURN_IF_ERROR(matmul(x, w, y, m, n, k));
    return false;
  }
  // Brackets one op for the profile; just runs it when not profiling.
  template <typename F>
  Status timed(int kind, double flops, double bytes, F&& f) {
    return time_op(o_.profile.get(), stream_.get(), kind, flops, bytes, std::forward<F>(f));
  }
  Status forward_impl(const EncoderBatch& batch, std::vector<float>& out);

  const EncoderConfig c_;
  const CudaEncoderOptions o_;
  Stream stream_;
  std::optional<Gemm> gemm_;  // set by init()
  DeviceBuffer word_, pos_, type_;
  DeviceBuffer emb_norm_w_, emb_norm_b_, final_norm_w_, final_norm_b_;
  DeviceBuffer global_inv_freq_, local_inv_freq_;
  std::vector<Layer> layers_;
  // Scratch, in dtype: the residual stream, the normed input / attention output, a sublayer's
  // output, fused QKV rows, the FFN's up (ModernBERT: input|gate) rows and GeGLU's output.
  DeviceBuffer x_, h_, a_, qkv_, u_, g_;
  int cap_rows_ = 0, cap_tokens_ = 0, cap_seqs_ = 0;
  DeviceBuffer staging_dev_;  // int32: ids, type ids, positions, seq_begin, pooling descriptors
  PinnedBuffer staging_;
  DeviceBuffer out_dev_;  // F32 output rows
  PinnedBuffer out_host_;
  bool bias_epilogue_refused_ = false;
  std::set<std::tuple<int, int, int>> tuned_;  // (rows, n, k) already tuned (tune_gemms)
  struct Kinds {  // the profile's op kinds (OpTimer::kind), set by init() when profiling
    int h2d = 0, embed = 0, qkv_gemm = 0, qkv_bias = 0, attention = 0, o_gemm = 0, add_ln = 0,
        up_gemm = 0, act = 0, down_gemm = 0, gather = 0, pool = 0, d2h = 0;
  } k_;
};

Status CudaEncoderBackend::forward(const EncoderBatch& batch, std::vector<float>& out) {
  OpTimer* t = o_.profile.get();
  if (t == nullptr) return forward_impl(batch, out);
  const auto t0 = std::chrono::steady_clock::now();
  Status st = forward_impl(batch, out);
  // After the pass's synchronisation (or a failure: then drain the stream first).
  if (!st.is_ok()) (void)stream_.synchronize();
  const Status ct = t->collect();
  t->add_wall(
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  return st.is_ok() ? ct : st;
}

Status CudaEncoderBackend::forward_impl(const EncoderBatch& batch, std::vector<float>& out) {
  TURBINE_RETURN_IF_ERROR(
      encoder::validate_batch(batch, c_.vocab_size, max_tokens(), c_.type_vocab_size));
  TURBINE_RETURN_IF_ERROR(check(cudaSetDevice(o_.device), "cudaSetDevice"));
  const int n = static_cast<int>(batch.ids.size());
  const int S = static_cast<int>(batch.n_seqs());
  const size_t out_rows = batch.output_rows();
  TURBINE_RETURN_IF_ERROR(reserve(n, S));
  TURBINE_RETURN_IF_ERROR(reserve_out(out_rows));
  cudaStream_t s = stream_.get();

  // Staging: ids [n], type ids [n], positions [n], seq_begin [S + 1], descriptors [2 S]; then
  // for prune_last_layer: the pooled row of each sequence [S], 0..S [S + 1], CLS descriptors
  // over those rows [2 S].
  int32_t* host = staging_.as<int32_t>();
  std::memcpy(host, batch.ids.data(), static_cast<size_t>(n) * 4);
  std::memcpy(host + n, batch.type_ids.data(), static_cast<size_t>(n) * 4);
  int32_t* pos = host + 2 * n;
  int32_t* begin = host + 3 * n;
  int32_t* desc = begin + S + 1;
  int max_len = 0;
  double sum_len2 = 0.0;  // for the profile's attention FLOPs
  int32_t row = 0;
  for (int q = 0; q < S; ++q) {
    const int b = batch.seq_begin[static_cast<size_t>(q)];
    const int len = batch.seq_begin[static_cast<size_t>(q) + 1] - b;
    for (int i = 0; i < len; ++i) pos[b + i] = i;
    begin[q] = b;
    max_len = std::max(max_len, len);
    sum_len2 += static_cast<double>(len) * len;
    const encoder::Output mode = batch.outputs[static_cast<size_t>(q)];
    desc[2 * q] = static_cast<int32_t>(mode);
    desc[2 * q + 1] = row;
    row += mode == encoder::Output::kAllTokens ? len : 1;
  }
  begin[S] = n;
  // BERT's last layer for pooled rows only: attention needs every token's keys and values, but
  // after it only the rows pooling reads (CLS or last token) matter.
  bool prune = o_.prune_last_layer && !modern() && S < n;
  for (int q = 0; q < S && prune; ++q) {
    const encoder::Output mode = batch.outputs[static_cast<size_t>(q)];
    prune = mode == encoder::Output::kCls || mode == encoder::Output::kLastToken;
  }
  int32_t* sel = desc + 2 * S;
  int32_t* ident = sel + S;
  int32_t* sel_desc = ident + S + 1;
  size_t ints = 3 * static_cast<size_t>(n) + 3 * static_cast<size_t>(S) + 1;
  if (prune) {
    for (int q = 0; q < S; ++q) {
      const bool cls = batch.outputs[static_cast<size_t>(q)] == encoder::Output::kCls;
      sel[q] = cls ? begin[q] : begin[q + 1] - 1;
      ident[q] = q;
      sel_desc[2 * q] = static_cast<int32_t>(PoolMode::kCls);
      sel_desc[2 * q + 1] = q;
    }
    ident[S] = S;
    ints += 4 * static_cast<size_t>(S) + 1;
  }
  TURBINE_RETURN_IF_ERROR(timed(k_.h2d, 0, ints * 4.0, [&] {
    return check(cudaMemcpyAsync(staging_dev_.data(), host, ints * 4, cudaMemcpyHostToDevice, s),
                 "staging upload");
  }));
  const int32_t* d_ids = staging_dev_.as<int32_t>();
  const int32_t* d_types = d_ids + n;
  const int32_t* d_pos = d_ids + 2 * n;
  const int32_t* d_begin = d_ids + 3 * n;
  const int32_t* d_desc = d_begin + S + 1;
  const int32_t* d_sel = d_desc + 2 * S;
  const int32_t* d_ident = d_sel + S;
  const int32_t* d_sel_desc = d_ident + S + 1;

  const DType dt = o_.dtype;
  const int d = c_.dim, f = c_.ffn_dim;
  const float eps = c_.norm_eps;
  EmbedArgs ea;
  ea.word = word_.data();
  ea.ids = d_ids;
  ea.norm_w = f32(emb_norm_w_);
  ea.norm_b = f32(emb_norm_b_);
  if (!modern()) {
    ea.pos = pos_.data();
    ea.positions = d_pos;
    ea.pos_offset = c_.position_offset;
    if (type_.data() != nullptr) {
      ea.type = type_.data();
      ea.type_ids = d_types;
    }
  }
  // The profile's work estimates: FLOPs 2 m n k per GEMM (m = real tokens, not the rounded
  // rows); bytes read + written per element-wise pass.
  const double tok = n, es = static_cast<double>(esize());
  const double row_bytes = tok * d * es;
  TURBINE_RETURN_IF_ERROR(timed(k_.embed, 0, row_bytes * (modern() ? 2 : 4),
                                [&] { return embed_layernorm(s, dt, x_.data(), ea, n, d, eps); }));
  const double gemm_dd = 2.0 * tok * d * d, gemm_df = 2.0 * tok * d * f;
  const double att_flops = 4.0 * sum_len2 * d;

  VarlenAttentionArgs att;
  att.dtype = dt;
  att.out = h_.data();
  att.q = qkv_.data();
  att.k = static_cast<const uint8_t*>(qkv_.data()) + static_cast<size_t>(d) * esize();
  att.v = static_cast<const uint8_t*>(qkv_.data()) + 2 * static_cast<size_t>(d) * esize();
  att.qkv_stride = 3 * static_cast<int64_t>(d);
  att.seq_begin = d_begin;
  att.n_seqs = S;
  att.max_seq_len = max_len;
  att.n_heads = c_.n_heads;
  att.head_dim = c_.head_dim;
  att.scale = 1.0f / std::sqrt(static_cast<float>(c_.head_dim));
  att.tensor_cores = o_.tensor_core_attention;
  const Act act = to_act(c_.act);

  // Pruned last layer: its pooled rows, compacted into the QKV scratch after attention: the
  // attention output's rows (hs) and the residual's (xs), each at a GEMM-row-aligned offset.
  const int sr = gemm_rows(S);
  void* hs = qkv_.data();
  void* xs = static_cast<uint8_t*>(qkv_.data()) + static_cast<size_t>(sr) * d * esize();
  // BERT's QKV projection (its bias in the GEMM's epilogue or a separate pass) and attention.
  const auto bert_qkv_attention = [&](const Layer& L) -> Status {
    bool qkv_biased = false;
    TURBINE_RETURN_IF_ERROR(timed(k_.qkv_gemm, 3 * gemm_dd, 0, [&]() -> Status {
      TURBINE_ASSIGN_OR_RETURN(qkv_biased,
                               matmul_bias(x_.data(), L.wqkv, L.bqkv, qkv_.data(), n, 3 * d, d));
      return Status::ok();
    }));
    const bool bias_pending = !qkv_biased && L.bqkv.data() != nullptr;
    if (bias_pending && !o_.fused_qkv_bias) {
      TURBINE_RETURN_IF_ERROR(timed(k_.qkv_bias, 0, 2 * 3 * row_bytes, [&] {
        return qkv_bias_rope(s, dt, qkv_.data(), L.bqkv.data(), nullptr, nullptr, n, c_.n_heads,
                             c_.head_dim);
      }));
    }
    att.half_window = -1;
    att.qkv_bias = bias_pending && o_.fused_qkv_bias ? L.bqkv.data() : nullptr;
    const Status st = timed(k_.attention, att_flops, 0, [&] { return varlen_attention(s, att); });
    att.qkv_bias = nullptr;
    return st;
  };
  for (size_t l = 0; l < layers_.size(); ++l) {
    const Layer& L = layers_[l];
    if (prune && l + 1 == layers_.size()) {
      TURBINE_RETURN_IF_ERROR(bert_qkv_attention(L));
      // From here S rows: the QKV scratch is free once attention has read it.
      const double srows = S, s_dd = 2.0 * srows * d * d, s_df = 2.0 * srows * d * f;
      const double s_bytes = srows * d * es;
      TURBINE_RETURN_IF_ERROR(timed(k_.gather, 0, 4 * s_bytes, [&]() -> Status {
        TURBINE_RETURN_IF_ERROR(gather_rows(s, dt, hs, h_.data(), d_sel, S, d));
        return gather_rows(s, dt, xs, x_.data(), d_sel, S, d);
      }));
      TURBINE_RETURN_IF_ERROR(
          timed(k_.o_gemm, s_dd, 0, [&] { return matmul(hs, L.wo, a_.data(), S, d, d); }));
      TURBINE_RETURN_IF_ERROR(timed(k_.add_ln, 0, 3 * s_bytes, [&] {
        return add_layernorm(s, dt, xs, xs, a_.data(), L.bo.data(), false, f32(L.attn_norm_w),
                             f32(L.attn_norm_b), S, d, eps, o_.vector_kernels);
      }));
      bool up_biased = false;
      TURBINE_RETURN_IF_ERROR(timed(k_.up_gemm, s_df, 0, [&]() -> Status {
        TURBINE_ASSIGN_OR_RETURN(up_biased, matmul_bias(xs, L.wi, L.bi, u_.data(), S, f, d));
        return Status::ok();
      }));
      TURBINE_RETURN_IF_ERROR(timed(k_.act, 0, 2.0 * srows * f * es, [&] {
        return bias_activation(s, dt, u_.data(), up_biased ? nullptr : L.bi.data(), S, f, act,
                               o_.vector_kernels);
      }));
      TURBINE_RETURN_IF_ERROR(timed(k_.down_gemm, s_df, 0,
                                    [&] { return matmul(u_.data(), L.wd, a_.data(), S, d, f); }));
      TURBINE_RETURN_IF_ERROR(timed(k_.add_ln, 0, 3 * s_bytes, [&] {
        return add_layernorm(s, dt, xs, xs, a_.data(), L.bd.data(), false, f32(L.ffn_norm_w),
                             f32(L.ffn_norm_b), S, d, eps, o_.vector_kernels);
      }));
      continue;
    }
    if (modern()) {
      // Pre-norm: layer 0 reads the embedding norm's output, later layers the normed residual
      // the previous layer left in h_.
      const void* in = l == 0 ? x_.data() : h_.data();
      bool qkv_biased = false;
      TURBINE_RETURN_IF_ERROR(timed(k_.qkv_gemm, 3 * gemm_dd, 0, [&]() -> Status {
        TURBINE_ASSIGN_OR_RETURN(qkv_biased,
                                 matmul_bias(in, L.wqkv, L.bqkv, qkv_.data(), n, 3 * d, d));
        return Status::ok();
      }));
      TURBINE_RETURN_IF_ERROR(timed(k_.qkv_bias, 0, 2 * 2 * row_bytes, [&] {
        return qkv_bias_rope(s, dt, qkv_.data(), qkv_biased ? nullptr : L.bqkv.data(), d_pos,
                             f32(L.local ? local_inv_freq_ : global_inv_freq_), n, c_.n_heads,
                             c_.head_dim);
      }));
      att.half_window = L.local ? c_.local_window / 2 : -1;
      TURBINE_RETURN_IF_ERROR(
          timed(k_.attention, att_flops, 0, [&] { return varlen_attention(s, att); }));
      TURBINE_RETURN_IF_ERROR(timed(k_.o_gemm, gemm_dd, 0,
                                    [&] { return matmul(h_.data(), L.wo, a_.data(), n, d, d); }));
      TURBINE_RETURN_IF_ERROR(timed(k_.add_ln, 0, 4 * row_bytes, [&] {
        return add_layernorm(s, dt, h_.data(), x_.data(), a_.data(), L.bo.data(), true,
                             f32(L.ffn_norm_w), f32(L.ffn_norm_b), n, d, eps, o_.vector_kernels);
      }));
      TURBINE_RETURN_IF_ERROR(timed(k_.up_gemm, 2 * gemm_df, 0, [&] {
        return matmul(h_.data(), L.wi, u_.data(), n, 2 * f, d);
      }));
      TURBINE_RETURN_IF_ERROR(timed(k_.act, 0, 3.0 * tok * f * es, [&] {
        return gated_activation(s, dt, g_.data(), u_.data(), L.bi.data(), n, f, act);
      }));
      TURBINE_RETURN_IF_ERROR(timed(k_.down_gemm, gemm_df, 0,
                                    [&] { return matmul(g_.data(), L.wd, a_.data(), n, d, f); }));
      // The residual, then the next layer's attention norm (or the final norm) into h_.
      const bool last = l + 1 == layers_.size();
      const Layer* next = last ? nullptr : &layers_[l + 1];
      TURBINE_RETURN_IF_ERROR(timed(k_.add_ln, 0, 4 * row_bytes, [&] {
        return add_layernorm(s, dt, h_.data(), x_.data(), a_.data(), L.bd.data(), true,
                             last ? f32(final_norm_w_) : f32(next->attn_norm_w),
                             last ? f32(final_norm_b_) : f32(next->attn_norm_b), n, d, eps,
                             o_.vector_kernels);
      }));
    } else {
      TURBINE_RETURN_IF_ERROR(bert_qkv_attention(L));
      TURBINE_RETURN_IF_ERROR(timed(k_.o_gemm, gemm_dd, 0,
                                    [&] { return matmul(h_.data(), L.wo, a_.data(), n, d, d); }));
      // Post-norm: x = LN(x + attention + bias).
      TURBINE_RETURN_IF_ERROR(timed(k_.add_ln, 0, 3 * row_bytes, [&] {
        return add_layernorm(s, dt, x_.data(), x_.data(), a_.data(), L.bo.data(), false,
                             f32(L.attn_norm_w), f32(L.attn_norm_b), n, d, eps, o_.vector_kernels);
      }));
      bool up_biased = false;
      TURBINE_RETURN_IF_ERROR(timed(k_.up_gemm, gemm_df, 0, [&]() -> Status {
        TURBINE_ASSIGN_OR_RETURN(up_biased, matmul_bias(x_.data(), L.wi, L.bi, u_.data(), n, f, d));
        return Status::ok();
      }));
      TURBINE_RETURN_IF_ERROR(timed(k_.act, 0, 2.0 * tok * f * es, [&] {
        return bias_activation(s, dt, u_.data(), up_biased ? nullptr : L.bi.data(), n, f, act,
                               o_.vector_kernels);
      }));
      TURBINE_RETURN_IF_ERROR(timed(k_.down_gemm, gemm_df, 0,
                                    [&] { return matmul(u_.data(), L.wd, a_.data(), n, d, f); }));
      TURBINE_RETURN_IF_ERROR(timed(k_.add_ln, 0, 3 * row_bytes, [&] {
        return add_layernorm(s, dt, x_.data(), x_.data(), a_.data(), L.bd.data(), false,
                             f32(L.ffn_norm_w), f32(L.ffn_norm_b), n, d, eps, o_.vector_kernels);
      }));
    }
  }
  const void* final_rows = prune ? xs : modern() ? h_.data() : x_.data();
  const size_t bytes = out_rows * static_cast<size_t>(d) * sizeof(float);
  TURBINE_RETURN_IF_ERROR(timed(k_.pool, 0, static_cast<double>(bytes), [&] {
    return prune
               ? pool_sequences(s, dt, out_dev_.as<float>(), final_rows, d_ident, d_sel_desc, S, d)
               : pool_sequences(s, dt, out_dev_.as<float>(), final_rows, d_begin, d_desc, S, d);
  }));
  TURBINE_RETURN_IF_ERROR(timed(k_.d2h, 0, static_cast<double>(bytes), [&] {
    return check(
        cudaMemcpyAsync(out_host_.as<float>(), out_dev_.data(), bytes, cudaMemcpyDeviceToHost, s),
        "result download");
  }));
  TURBINE_RETURN_IF_ERROR(stream_.synchronize());
  out.resize(out_rows * static_cast<size_t>(d));
  std::memcpy(out.data(), out_host_.as<float>(), bytes);
  return Status::ok();
}

}  // namespace

Result<std::unique_ptr<encoder::EncoderBackend>> make_cuda_encoder_backend(
    const encoder::EncoderConfig& config, const encoder::EncoderWeights& weights,
    const CudaEncoderOptions& options) {
  if (config.arch == EncoderArch::kDecoder)
    return unimplemented("cuda encoder backend: decoder embedders run on the engine's backend");
  if (weights.layers.size() != static_cast<size_t>(config.n_layers))
    return invalid_argument("cuda encoder backend: weights do not match the config");
  if (options.dtype != DType::kBF16 && options.dtype != DType::kF16 && options.dtype != DType::kF32)
    return invalid_argument("cuda encoder backend: dtype must be bf16, f16 or f32", "dtype");
  if (options.max_batch_tokens <= 0)
    return invalid_argument("cuda encoder backend: max_batch_tokens must be positive");
  if (config.head_dim * config.n_heads != config.dim)
    return unimplemented("cuda encoder backend: dim must be n_heads x head_dim");
  if (device_count() <= options.device)
    return Status(StatusCode::kUnavailable,
                  "cuda encoder backend: no CUDA device " + std::to_string(options.device));
  auto b = std::make_unique<CudaEncoderBackend>(config, options);
  TURBINE_RETURN_IF_ERROR(b->init(weights));
  return std::unique_ptr<encoder::EncoderBackend>(std::move(b));
}

}  // namespace turbine::cuda
