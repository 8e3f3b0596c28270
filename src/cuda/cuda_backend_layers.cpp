// The CUDA backend's layers: every kernel of a step's forward pass between the embedding and the
// final norm, and the op profile's kinds (CudaBackendOptions::profile) that bracket them.
#include <cmath>

#include "cuda/cuda_backend_impl.h"
#include "cuda/fp8.h"
#include "cuda/kernels.h"

namespace turbine::cuda {

void CudaBackend::name_profile_kinds() {
  OpTimer& t = *profile_;
  pk_.h2d = t.kind("H2D staging");
  pk_.embed = t.kind("embedding");
  pk_.norm = t.kind("add+rmsnorm");
  pk_.norm_quant = t.kind("add+rmsnorm+quant");
  pk_.qkv = t.kind("QKV", true);
  pk_.qkv_post = t.kind("qkv bias/qk-norm");
  pk_.rope_kv = t.kind("rope+KV write");
  pk_.attn_decode = t.kind("attention decode", true);
  pk_.attn_prefill = t.kind("attention prefill", true);
  pk_.quant = t.kind("fp8 quantize (O in)");
  pk_.o = t.kind("O", true);
  pk_.gate_up = t.kind("gate_up", true);
  pk_.gate_up_swiglu = t.kind("gate_up+swiglu", true);
  pk_.swiglu = t.kind("swiglu");
  pk_.swiglu_quant = t.kind("swiglu+quant");
  pk_.down = t.kind("down", true);
  pk_.scales = t.kind("fp8 scale epilogue");
  pk_.final_norm = t.kind("final add+norm");
  pk_.gather = t.kind("gather rows");
  pk_.lm_head = t.kind("LM head", true);
  pk_.sampling = t.kind("sampling");
  pk_.d2h = t.kind("D2H outputs");
}

Status CudaBackend::run_layers(int n, int n_decode, int n_prefill, int max_decode_ctx,
                               int max_q_len, int width, const StepLayout& lay) {
  cudaStream_t s = stream_.get();
  const int32_t* dev = staging_dev_.as<int32_t>();
  const int dim = cfg_.dim, hd = cfg_.head_dim, ffn = cfg_.ffn_dim;
  const float eps = cfg_.norm_eps;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  auto* qkv = static_cast<uint8_t*>(qkv_.data());
  auto* att = static_cast<uint8_t*>(att_.data());
  const size_t qkv_row = static_cast<size_t>(qkv_w_) * eb_;
  const size_t att_row = static_cast<size_t>(q_dim_) * eb_;
  // The profile's bytes moved per op (element-wise kernels: what they read and write).
  const double nd = double(n) * dim * double(eb_);  // one [n][dim] activation
  const double norm_bytes = 4.0 * nd, norm_q_bytes = 3.0 * nd + double(n) * dim;
  const double kv_eb = double(kv_eb_);

  TURBINE_RETURN_IF_ERROR(timed(pk_.embed, 0.0, 2.0 * nd, [&] {
    return embedding(s, dtype_, x_.data(), embed_.data(), dev + lay.ids, n, dim, cfg_.n_vocab,
                     pdl_);
  }));
  for (size_t l = 0; l < layers_.size(); ++l) {
    const LayerDev& L = layers_[l];
    if (L.qkv8.on() && !w8a16(n, dim)) {  // the norm quantizes the QKV input; xb_ not written
      TURBINE_RETURN_IF_ERROR(timed(pk_.norm_quant, 0.0, norm_q_bytes, [&] {
        return rmsnorm_fp8(s, dtype_, xq_.as<uint8_t>(), xs_.as<float>(), x_.data(),
                           l == 0 ? nullptr : o_.data(), L.attn_norm.data(), n, dim, eps,
                           L.qkv8.input_scale, pdl_);
      }));
    } else if (l == 0) {
      TURBINE_RETURN_IF_ERROR(timed(pk_.norm, 0.0, 2.0 * nd, [&] {
        return rmsnorm(s, dtype_, xb_.data(), x_.data(), L.attn_norm.data(), n, dim, eps, pdl_);
      }));
    } else {
      TURBINE_RETURN_IF_ERROR(timed(pk_.norm, 0.0, norm_bytes, [&] {
        return add_rmsnorm(s, dtype_, xb_.data(), x_.data(), o_.data(), L.attn_norm.data(), n, dim,
                           eps, pdl_);
      }));
    }
    TURBINE_RETURN_IF_ERROR(project(s, L.wqkv, L.qkv8, xb_.data(), qkv, n, qkv_w_, dim, pk_.qkv));
    void* k = qkv + static_cast<size_t>(q_dim_) * eb_;
    if (L.bqkv.data() != nullptr || L.q_norm.data() != nullptr) {
      TURBINE_RETURN_IF_ERROR(timed(pk_.qkv_post, 0.0, 2.0 * n * qkv_w_ * double(eb_), [&] {
        if (L.bqkv.data() != nullptr)
          TURBINE_RETURN_IF_ERROR(add_bias(s, dtype_, qkv, L.bqkv.data(), n, qkv_w_, qkv_w_, pdl_));
        if (L.q_norm.data() != nullptr) {
          TURBINE_RETURN_IF_ERROR(head_rmsnorm(s, dtype_, qkv, L.q_norm.data(), n, cfg_.n_heads, hd,
                                               qkv_w_, eps, pdl_));
          TURBINE_RETURN_IF_ERROR(head_rmsnorm(s, dtype_, k, L.k_norm.data(), n, cfg_.n_kv_heads,
                                               hd, qkv_w_, eps, pdl_));
        }
        return Status::ok();
      }));
    }
    void* kc = kv_layer(k_cache_, static_cast<int>(l));
    void* vc = kv_layer(v_cache_, static_cast<int>(l));
    // K heads follow the Q heads in a fused row: one launch rotates both and writes K and V to
    // the cache.
    const double rope_bytes =
        double(n) * (2.0 * (q_dim_ + kv_dim_) * double(eb_) + kv_dim_ * (double(eb_) + 2 * kv_eb));
    TURBINE_RETURN_IF_ERROR(timed(pk_.rope_kv, 0.0, rope_bytes, [&] {
      if (fp8_kv_) {
        return rope_write_kv_fp8(s, dtype_, qkv, dev + lay.pos, inv_freq_.as<float>(), n,
                                 cfg_.n_heads, cfg_.n_kv_heads, hd, qkv_w_, cfg_.rope_layout, kc,
                                 vc, dev + lay.slots, k_scales_[l], v_scales_[l], pdl_);
      }
      return rope_write_kv(s, dtype_, qkv, dev + lay.pos, inv_freq_.as<float>(), n, cfg_.n_heads,
                           cfg_.n_kv_heads, hd, qkv_w_, cfg_.rope_layout, kc, vc, dev + lay.slots,
                           pdl_);
    }));
    PagedKv kv;
    kv.k_cache = kc;
    kv.v_cache = vc;
    kv.fp8 = fp8_kv_;
    kv.k_scale = k_scales_[l];
    kv.v_scale = v_scales_[l];
    kv.block_size = block_size_;
    kv.n_kv_heads = cfg_.n_kv_heads;
    kv.head_dim = hd;
    kv.max_blocks_per_seq = width;
    // Attention work: QK and PV, 2 flops per multiply-add, per (query, key) pair and head; decode
    // reads each sequence's K and V once.
    const double pair_flops = 4.0 * cfg_.n_heads * hd;
    if (n_decode > 0) {
      kv.block_tables = dev + lay.tables;
      kv.context_lens = dev + lay.ctx;
      DecodeAttentionArgs a;
      a.dtype = dtype_;
      a.out = att;
      a.q = qkv;
      a.q_row_stride = qkv_w_;
      a.n_seqs = n_decode;
      a.n_q_heads = cfg_.n_heads;
      a.max_context_len = max_decode_ctx;
      a.scale = scale;
      a.workspace = decode_ws_.data();
      a.workspace_bytes = decode_ws_.size_bytes();
      a.pdl = pdl_;
      TURBINE_RETURN_IF_ERROR(timed(pk_.attn_decode, pair_flops * prof_decode_ctx_,
                                    prof_decode_ctx_ * 2.0 * kv_dim_ * kv_eb,
                                    [&] { return paged_decode_attention(s, kv, a); }));
    }
    if (n_prefill > 0) {
      kv.block_tables = dev + lay.tables + static_cast<size_t>(n_decode) * width;
      kv.context_lens = dev + lay.ctx + n_decode;
      PrefillAttentionArgs a;
      a.dtype = dtype_;
      a.out = att + static_cast<size_t>(n_decode) * att_row;
      a.q = qkv + static_cast<size_t>(n_decode) * qkv_row;
      a.q_row_stride = qkv_w_;
      a.cu_q_lens = dev + lay.cu;
      a.n_seqs = n_prefill;
      a.n_q_heads = cfg_.n_heads;
      a.max_q_len = max_q_len;
      a.scale = scale;
      TURBINE_RETURN_IF_ERROR(timed(pk_.attn_prefill, pair_flops * prof_prefill_pairs_, 0.0,
                                    [&] { return prefill_attention(s, kv, a); }));
    }
    TURBINE_RETURN_IF_ERROR(quantize_input(s, L.o8, att, n, q_dim_));
    TURBINE_RETURN_IF_ERROR(project(s, L.wo, L.o8, att, o_.data(), n, dim, q_dim_, pk_.o));
    TURBINE_RETURN_IF_ERROR(all_reduce_o(s, n));
    const bool gu_w8a16 = L.gu8.on() && w8a16(n, dim);
    // The down projection's input quantized by SwiGLU (A8 gemv or cuBLASLt FP8 GEMM).
    const bool down_a8 = L.down8.on() && !w8a16(n, ffn);
    if (L.gu8.on() && !gu_w8a16) {
      TURBINE_RETURN_IF_ERROR(timed(pk_.norm_quant, 0.0, norm_q_bytes, [&] {
        return rmsnorm_fp8(s, dtype_, xq_.as<uint8_t>(), xs_.as<float>(), x_.data(), o_.data(),
                           L.ffn_norm.data(), n, dim, eps, L.gu8.input_scale, pdl_);
      }));
    } else {
      TURBINE_RETURN_IF_ERROR(timed(pk_.norm, 0.0, norm_bytes, [&] {
        return add_rmsnorm(s, dtype_, xb_.data(), x_.data(), o_.data(), L.ffn_norm.data(), n, dim,
                           eps, pdl_);
      }));
    }
    auto* gu = static_cast<uint8_t*>(gu_.data());
    const double swiglu_bytes = 3.0 * n * ffn * double(eb_);
    if (gu_w8a16) {
      TURBINE_RETURN_IF_ERROR(gate_up_w8a16(s, L, n));
    } else if (L.gu8.on()) {
      TURBINE_RETURN_IF_ERROR(project(s, L.wgu, L.gu8, nullptr, gu, n, 2 * ffn, dim, pk_.gate_up));
      if (down_a8) {  // SwiGLU quantizes the down projection's input
        TURBINE_RETURN_IF_ERROR(
            timed(pk_.swiglu_quant, 0.0, double(n) * ffn * (2.0 * double(eb_) + 1.0), [&] {
              return swiglu_fp8(s, dtype_, xq_.as<uint8_t>(), xs_.as<float>(), gu,
                                gu + static_cast<size_t>(ffn) * eb_, n, ffn, 2 * ffn,
                                L.down8.input_scale, pdl_);
            }));
      } else {
        TURBINE_RETURN_IF_ERROR(timed(pk_.swiglu, 0.0, swiglu_bytes, [&] {
          return swiglu(s, dtype_, h_.data(), gu, gu + static_cast<size_t>(ffn) * eb_, n, ffn,
                        2 * ffn, pdl_);
        }));
      }
    } else if (fused_swiglu_ &&
               gemm_->fused_swiglu_applies(dtype_, xb_.data(), L.wgu.data(), n, dim)) {
      TURBINE_RETURN_IF_ERROR(
          timed(pk_.gate_up_swiglu, 2.0 * n * 2 * ffn * dim,
                weight_bytes(L.gu8, 2 * ffn, dim) + double(n) * (dim + ffn) * double(eb_), [&] {
                  return gemm_->matmul_swiglu(s, dtype_, xb_.data(), L.wgu.data(), h_.data(), n,
                                              ffn, dim);
                }));
    } else {
      TURBINE_RETURN_IF_ERROR(
          project(s, L.wgu, L.gu8, xb_.data(), gu, n, 2 * ffn, dim, pk_.gate_up));
      TURBINE_RETURN_IF_ERROR(timed(pk_.swiglu, 0.0, swiglu_bytes, [&] {
        return swiglu(s, dtype_, h_.data(), gu, gu + static_cast<size_t>(ffn) * eb_, n, ffn,
                      2 * ffn, pdl_);
      }));
    }
    if (!L.gu8.on()) TURBINE_RETURN_IF_ERROR(quantize_input(s, L.down8, h_.data(), n, ffn));
    TURBINE_RETURN_IF_ERROR(
        project(s, L.wdown, L.down8, h_.data(), o_.data(), n, dim, ffn, pk_.down));
    TURBINE_RETURN_IF_ERROR(all_reduce_o(s, n));
  }
  // Last residual add and the final norm (rows for the LM head are gathered from xb).
  return timed(pk_.final_norm, 0.0, norm_bytes, [&] {
    return add_rmsnorm(s, dtype_, xb_.data(), x_.data(), o_.data(), output_norm_.data(), n, dim,
                       eps, pdl_);
  });
}

}  // namespace turbine::cuda
