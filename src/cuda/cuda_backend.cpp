#include "cuda/cuda_backend.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "cuda/cuda_backend_impl.h"
#include "cuda/fp8.h"
#include "cuda/kernels.h"
#include "cuda/sampling.h"

namespace turbine::cuda {

using model::DType;

Status CudaBackend::init(const model::Model& model, const CudaBackendOptions& opts) {
  const bool fp8_device_ok = fp8_device(device_);
  if (fp8_kv_ && !fp8_device_ok) {
    int major = 0, minor = 0;
    cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device_);
    cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device_);
    return unimplemented(
        "cuda backend: --kv-cache-dtype fp8 needs a GPU of compute capability "
        "8.9 or later (Ada, Hopper); device " +
            std::to_string(device_) + " is sm_" + std::to_string(major) + std::to_string(minor),
        "kv_cache_dtype");
  }
  // Tensor-parallel shards would slice FP8 weights without their scales.
  if (opts.shard) {
    for (const model::LayerWeights& L : model.weights().layers) {
      for (const model::TensorView* t :
           {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) {
        if (t->dtype == DType::kF8E4M3)
          return unimplemented("cuda backend: tensor parallelism with FP8 weights (" + t->name +
                                   ") is not supported yet",
                               "tensor_parallel_size");
      }
    }
  }
  // The ranks of a group run on threads of their own; one OpTimer records from one thread.
  if (opts.profile && opts.comm)
    return unimplemented("cuda backend: the op profile with tensor parallelism", "profile");
  TURBINE_RETURN_IF_ERROR(check(cudaSetDevice(device_), "set device"));
  max_num_seqs_ = opts.max_num_seqs;
  use_graphs_ = opts.cuda_graphs;
  device_sampling_ = opts.device_sampling;
  TURBINE_ASSIGN_OR_RETURN(stream_, Stream::create());
  TURBINE_ASSIGN_OR_RETURN(auto gemm, Gemm::create());
  gemm_.emplace(std::move(gemm));
  gemm_->use_gemv(opts.skinny_gemv);
  gemm_->gemv_all(opts.gemv_all);
  int cc_major = 0;
  TURBINE_RETURN_IF_ERROR(check(
      cudaDeviceGetAttribute(&cc_major, cudaDevAttrComputeCapabilityMajor, device_), "device cc"));
  pdl_ = opts.pdl && cc_major >= 9;
  fused_swiglu_ = opts.fused_swiglu;
  fp8_w8a16_ = opts.skinny_gemv && opts.fp8_gemv == CudaBackendOptions::Fp8Gemv::kW8A16;
  gemm_->use_pdl(pdl_);
  gemm_->fp8_outer_vec(opts.fp8_outer_vec_scales);
  gemm_->fp8_fast_accum(opts.fp8_fast_accum);
  profile_ = opts.profile;
  if (profile_) {
    use_graphs_ = false;  // every op bracketed apart: eager steps
    name_profile_kinds();
    if (opts.profile_hold) {
      TURBINE_ASSIGN_OR_RETURN(hold_, LaunchHold::create());
      profile_hold_ = true;
    }
  }
  const model::Weights& mw = shard_ ? shard_->weights() : model.weights();
  // E4M3 weights on the device: BF16 or F32 activations (F16 cannot hold cuBLASLt's raw E4M3
  // sums), sm_89+; otherwise FP8 checkpoints are dequantized at upload.
  const bool fp8_weights =
      opts.fp8_weights && fp8_device_ok && (dtype_ == DType::kBF16 || dtype_ == DType::kF32);
  TURBINE_ASSIGN_OR_RETURN(DeviceWeights weights, upload_weights(mw, dtype_, fp8_weights));
  has_fp8_ = weights.fp8_groups > 0;
  if (weights.fp8_groups > 0 || weights.fp8_dequantized > 0) {
    spdlog::info("cuda backend: {} FP8 projection groups kept in E4M3, {} dequantized to {}{}{}",
                 weights.fp8_groups, weights.fp8_dequantized, model::dtype_name(dtype_),
                 weights.fp8_fallback.empty() ? "" : " (",
                 weights.fp8_fallback.empty() ? "" : weights.fp8_fallback + ")");
  }
  for (const model::LayerWeights& L : mw.layers) {
    k_scales_.push_back(engine::kv_scale_or_one(L.k_scale));
    v_scales_.push_back(engine::kv_scale_or_one(L.v_scale));
  }
  embed_ = std::move(weights.embed);
  output_norm_ = std::move(weights.output_norm);
  lm_head_ = std::move(weights.lm_head);
  lm_head_ptr_ = weights.lm_head_ptr;
  layers_ = std::move(weights.layers);
  lm_rows_ = cfg_.n_vocab;
  if (shard_) {
    // Vocab-parallel LM head: every rank multiplies vocab_per_rank rows (the last slice padded
    // with zero rows) so that the gather moves equal pieces.
    const tp::ShardPlan& plan = shard_->plan();
    lm_rows_ = static_cast<int>(plan.vocab_per_rank);
    const int64_t local = plan.vocab1 - plan.vocab0;
    if (local < lm_rows_) {
      const size_t row = static_cast<size_t>(cfg_.dim) * eb_;
      TURBINE_ASSIGN_OR_RETURN(DeviceBuffer padded,
                               DeviceBuffer::allocate(static_cast<size_t>(lm_rows_) * row));
      TURBINE_RETURN_IF_ERROR(check(cudaMemset(padded.data(), 0, padded.size_bytes()), "pad"));
      TURBINE_RETURN_IF_ERROR(
          check(cudaMemcpy(padded.data(), lm_head_ptr_, static_cast<size_t>(local) * row,
                           cudaMemcpyDeviceToDevice),
                "pad LM head"));
      lm_head_ = std::move(padded);
      lm_head_ptr_ = lm_head_.data();
    }
  }
  if (opts.fp8_lm_head && has_fp8_ && fp8_w8a16_ && !shard_ && cfg_.dim % 16 == 0) {
    // Per-row scales from the head itself (the input quantization's rule applied to weight rows).
    const auto rows = static_cast<size_t>(lm_rows_);
    TURBINE_ASSIGN_OR_RETURN(lm_head8_,
                             DeviceBuffer::allocate(rows * static_cast<size_t>(cfg_.dim)));
    TURBINE_ASSIGN_OR_RETURN(lm_head8_scales_, DeviceBuffer::allocate(rows * sizeof(float)));
    TURBINE_RETURN_IF_ERROR(quantize_fp8_rows(stream_.get(), dtype_, lm_head8_.as<uint8_t>(),
                                              lm_head8_scales_.as<float>(), lm_head_ptr_, lm_rows_,
                                              cfg_.dim, cfg_.dim, 0.0f));
    spdlog::info("cuda backend: E4M3 copy of the LM head for decode steps of <= {} rows",
                 kW8A16MaxRows);
  }
  TURBINE_ASSIGN_OR_RETURN(inv_freq_, upload_rope_inv_freq(cfg_.head_dim, cfg_.rope_theta,
                                                           cfg_.rope_scaling, stream_.get()));

  // Step buffers for the configured batch, then the decode split workspace (bounded: a decode
  // step that would need more runs through the prefill kernel instead).
  const int max_seqs = opts.max_num_seqs;
  const int max_tokens = std::max(opts.max_num_batched_tokens, max_seqs);
  const int width = (max_context_ + block_size_ - 1) / block_size_;
  TURBINE_RETURN_IF_ERROR(
      reserve(max_tokens, max_seqs,
              static_cast<size_t>(max_tokens) * 3 + static_cast<size_t>(max_seqs) * (3 + width) + 1,
              max_seqs));
  if (opts.tune_gemm) TURBINE_RETURN_IF_ERROR(tune_decode_gemms());
  TURBINE_RETURN_IF_ERROR(prepare_decode_attention());
  constexpr size_t kMaxDecodeWorkspace = size_t{256} << 20;
  const size_t ws = std::min(
      kMaxDecodeWorkspace, decode_attention_workspace_bound(max_seqs, cfg_.n_heads, cfg_.n_kv_heads,
                                                            cfg_.head_dim, max_context_));
  if (ws > 0) {
    TURBINE_ASSIGN_OR_RETURN(decode_ws_, DeviceBuffer::allocate(ws));
  }

  // KV cache from what is left.
  TURBINE_RETURN_IF_ERROR(stream_.synchronize());
  const int64_t block_bytes =
      cuda_kv_bytes_per_token(cfg_, dtype_, opts.kv_cache_dtype) * block_size_;
  int64_t budget = opts.kv_cache_memory_bytes;
  size_t free_b = 0, total_b = 0;
  TURBINE_RETURN_IF_ERROR(check(cudaMemGetInfo(&free_b, &total_b), "memory info"));
  if (budget <= 0) {
    const auto used = static_cast<int64_t>(total_b - free_b);
    budget =
        static_cast<int64_t>(opts.gpu_memory_utilization * static_cast<double>(total_b)) - used;
  }
  int64_t n_blocks = budget / block_bytes;
  const int64_t useful = static_cast<int64_t>(max_seqs) * width;
  n_blocks = std::min({n_blocks, useful, (int64_t{1} << 31) / block_size_ - 1});
  if (n_blocks < 1) {
    return Status(StatusCode::kResourceExhausted,
                  "cuda backend: no room for a KV block of " + std::to_string(block_bytes) +
                      " bytes (budget " + std::to_string(budget) + " bytes, " +
                      std::to_string(free_b) + " free of " + std::to_string(total_b) + ")");
  }
  n_blocks_ = static_cast<int>(n_blocks);
  const size_t half = static_cast<size_t>(n_blocks) * static_cast<size_t>(block_bytes) / 2;
  TURBINE_ASSIGN_OR_RETURN(k_cache_, DeviceBuffer::allocate(half));
  TURBINE_ASSIGN_OR_RETURN(v_cache_, DeviceBuffer::allocate(half));
  // Zeroed: padded rows of graph steps read block 0 and must not meet NaN bit patterns.
  TURBINE_RETURN_IF_ERROR(check(cudaMemset(k_cache_.data(), 0, half), "clear KV"));
  TURBINE_RETURN_IF_ERROR(check(cudaMemset(v_cache_.data(), 0, half), "clear KV"));
  kv_writes_ = engine::KvWriteTracker(n_blocks_, block_size_, max_context_, cfg_.n_vocab);
  return make_pool_descriptor();
}

Status CudaBackend::tune_decode_gemms() {
  const auto t0 = std::chrono::steady_clock::now();
  cudaStream_t s = stream_.get();
  const int dim = cfg_.dim, ffn = cfg_.ffn_dim;
  // Inputs hold small finite values (0x3c3c: 0.0115 in BF16, 1.0 in F16); outputs are scratch.
  // E4M3 inputs: 0x3c is 1.5.
  for (const DeviceBuffer* b : {&xb_, &att_, &h_, &xq_})
    if (b->data() != nullptr)
      TURBINE_RETURN_IF_ERROR(check(cudaMemsetAsync(b->data(), 0x3c, b->size_bytes(), s), "tune"));
  std::vector<const void*> wqkv, wo, wgu, wdown, wqkv8, wo8, wgu8, wdown8;
  for (const LayerDev& L : layers_) {
    (L.qkv8.on() ? wqkv8 : wqkv).push_back(L.qkv8.on() ? L.qkv8.w.data() : L.wqkv.data());
    (L.o8.on() ? wo8 : wo).push_back(L.o8.on() ? L.o8.w.data() : L.wo.data());
    (L.gu8.on() ? wgu8 : wgu).push_back(L.gu8.on() ? L.gu8.w.data() : L.wgu.data());
    (L.down8.on() ? wdown8 : wdown).push_back(L.down8.on() ? L.down8.w.data() : L.wdown.data());
  }
  const std::vector<const void*> lm{lm_head_ptr_};
  struct Proj {
    const char* name;
    const void* x;
    const std::vector<const void*>* ws;
    void* y;
    int n, k;
    DType out;
    bool fp8 = false;  // cuBLASLt's E4M3 GEMM with unit scales (matmul_fp8's epilogue plans)
  };
  const Proj projs[] = {
      {"qkv", xb_.data(), &wqkv, qkv_.data(), qkv_w_, dim, dtype_},
      {"o", att_.data(), &wo, o_.data(), dim, q_dim_, dtype_},
      {"gate_up", xb_.data(), &wgu, gu_.data(), 2 * ffn, dim, dtype_},
      {"down", h_.data(), &wdown, o_.data(), dim, ffn, dtype_},
      {"lm_head", xb_.data(), &lm, logits_dev_.data(), lm_rows_, dim, DType::kF32},
      // FP8 projections: the plans matmul_fp8 runs before its scale epilogue (the outer-vector
      // plans of fp8_outer_vec_scales keep the heuristic's choice).
      {"qkv fp8", xq_.data(), &wqkv8, qkv_.data(), qkv_w_, dim, dtype_, true},
      {"o fp8", xq_.data(), &wo8, o_.data(), dim, q_dim_, dtype_, true},
      {"gate_up fp8", xq_.data(), &wgu8, gu_.data(), 2 * ffn, dim, dtype_, true},
      {"down fp8", xq_.data(), &wdown8, o_.data(), dim, ffn, dtype_, true}};
  int tuned = 0;
  float saved_us = 0.0f;  // per step of the largest bucket, against the heuristic's choice
  for (int b = 1;; b = std::min(2 * b, max_num_seqs_)) {
    for (const Proj& p : projs) {
      if (p.ws->empty()) continue;
      // The shapes a graph step of b rows sends to cuBLASLt (gemv or fused SwiGLU take the rest).
      if (p.fp8 && (w8a16(b, p.k) || gemm_->takes_gemv_fp8(b, p.k))) continue;
      if (!p.fp8 && gemm_->takes_gemv(dtype_, p.out, b, p.k)) continue;
      if (std::string_view(p.name) == "gate_up" && fused_swiglu_ &&
          gemm_->fused_swiglu_applies(dtype_, xb_.data(), p.ws->front(), b, p.k))
        continue;
      // The LM head's weights are one matrix: time it a few times over.
      TURBINE_ASSIGN_OR_RETURN(
          std::vector<float> us,
          gemm_->tune(s, p.fp8 ? DType::kF8E4M3 : dtype_, p.x, *p.ws, p.y, b, p.n, p.k, p.out,
                      Gemm::kMaxTuneCandidates, p.ws->size() > 1 ? 1 : 8));
      float best = std::numeric_limits<float>::max();  // tune fails unless one candidate ran
      for (float t : us)
        if (t >= 0.0f) best = std::min(best, t);
      spdlog::debug("cuda backend: {} at {} rows: heuristic {:.1f} us, fastest {:.1f} us", p.name,
                    b, us.front(), best);
      if (b == max_num_seqs_ && us.front() > 0.0f)
        saved_us += (us.front() - best) * static_cast<float>(p.ws->size());
      ++tuned;
    }
    if (b == max_num_seqs_) break;
  }
  spdlog::info(
      "cuda backend: tuned {} decode GEMM shapes in {:.0f} ms ({:.0f} us less per step "
      "of {} sequences than cuBLASLt's heuristic)",
      tuned,
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count(),
      saved_us, max_num_seqs_);
  return Status::ok();
}

Status CudaBackend::reserve(int n_tokens, int n_chunks, size_t staging_ints, int n_out) {
  (void)n_chunks;
  if (n_tokens > cap_tokens_ || n_out > cap_out_ || staging_ints > cap_staging_) graphs_.clear();
  if (n_tokens > cap_tokens_) {
    const auto n = static_cast<size_t>(n_tokens);
    const auto sz = [&](int width) { return n * static_cast<size_t>(width) * eb_; };
    x_ = {};  // free before allocating the larger ones
    xb_ = {};
    qkv_ = {};
    att_ = {};
    o_ = {};
    gu_ = {};
    h_ = {};
    TURBINE_ASSIGN_OR_RETURN(x_, DeviceBuffer::allocate(sz(cfg_.dim)));
    TURBINE_ASSIGN_OR_RETURN(xb_, DeviceBuffer::allocate(sz(cfg_.dim)));
    TURBINE_ASSIGN_OR_RETURN(qkv_, DeviceBuffer::allocate(sz(qkv_w_)));
    TURBINE_ASSIGN_OR_RETURN(att_, DeviceBuffer::allocate(sz(q_dim_)));
    TURBINE_ASSIGN_OR_RETURN(o_, DeviceBuffer::allocate(sz(cfg_.dim)));
    TURBINE_ASSIGN_OR_RETURN(gu_, DeviceBuffer::allocate(sz(2 * cfg_.ffn_dim)));
    TURBINE_ASSIGN_OR_RETURN(h_, DeviceBuffer::allocate(sz(cfg_.ffn_dim)));
    if (has_fp8_) {
      xq_ = {};
      xs_ = {};
      const auto widest = static_cast<size_t>(std::max({cfg_.dim, q_dim_, cfg_.ffn_dim}));
      TURBINE_ASSIGN_OR_RETURN(xq_, DeviceBuffer::allocate(n * widest));
      TURBINE_ASSIGN_OR_RETURN(xs_, DeviceBuffer::allocate(n * sizeof(float)));
    }
    cap_tokens_ = n_tokens;
  }
  if (n_out > cap_out_) {
    const auto n = static_cast<size_t>(n_out);
    TURBINE_ASSIGN_OR_RETURN(xg_, DeviceBuffer::allocate(n * cfg_.dim * eb_));
    TURBINE_ASSIGN_OR_RETURN(logits_dev_, DeviceBuffer::allocate(n * cfg_.n_vocab * sizeof(float)));
    TURBINE_ASSIGN_OR_RETURN(logits_host_,
                             PinnedBuffer::allocate(n * cfg_.n_vocab * sizeof(float)));
    TURBINE_ASSIGN_OR_RETURN(sample_params_dev_, DeviceBuffer::allocate(n * sizeof(SampleParams)));
    TURBINE_ASSIGN_OR_RETURN(sample_params_host_, PinnedBuffer::allocate(n * sizeof(SampleParams)));
    TURBINE_ASSIGN_OR_RETURN(tokens_dev_, DeviceBuffer::allocate(n * sizeof(int32_t)));
    TURBINE_ASSIGN_OR_RETURN(tokens_host_, PinnedBuffer::allocate(n * sizeof(int32_t)));
    if (gathers()) {
      const size_t piece = n * static_cast<size_t>(lm_rows_) * sizeof(float);
      TURBINE_ASSIGN_OR_RETURN(lm_local_, DeviceBuffer::allocate(piece));
      TURBINE_ASSIGN_OR_RETURN(lm_gathered_,
                               DeviceBuffer::allocate(piece * static_cast<size_t>(comm_->size())));
    }
    // Structured outputs: one allowed-token bitmask per row (n_vocab bits); 64 rows of a 128k
    // vocabulary are 1 MiB.
    const size_t words = n * mask_words();
    TURBINE_ASSIGN_OR_RETURN(masks_dev_, DeviceBuffer::allocate(words * sizeof(uint32_t)));
    TURBINE_ASSIGN_OR_RETURN(masks_host_, PinnedBuffer::allocate(words * sizeof(uint32_t)));
    cap_out_ = n_out;
  }
  if (staging_ints > cap_staging_) {
    TURBINE_ASSIGN_OR_RETURN(staging_dev_, DeviceBuffer::allocate(staging_ints * sizeof(int32_t)));
    TURBINE_ASSIGN_OR_RETURN(staging_host_, PinnedBuffer::allocate(staging_ints * sizeof(int32_t)));
    cap_staging_ = staging_ints;
  }
  return Status::ok();
}

Status CudaBackend::forward(std::span<const engine::SeqChunk> chunks, std::vector<float>& logits) {
  OpTimer* t = profile_.get();
  if (t == nullptr) return forward_impl(chunks, logits);
  const auto t0 = std::chrono::steady_clock::now();
  Status st = forward_impl(chunks, logits);
  if (!st.is_ok()) {  // every bracket reached before collect()
    hold_.release();
    (void)stream_.synchronize();
  }
  const Status ct = t->collect();
  t->add_wall(
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  return st.is_ok() ? ct : st;
}

Status CudaBackend::forward_impl(std::span<const engine::SeqChunk> chunks,
                                 std::vector<float>& logits) {
  TURBINE_RETURN_IF_ERROR(kv_writes_.validate(chunks));
  TURBINE_RETURN_IF_ERROR(check(cudaSetDevice(device_), "set device"));
  const int bs = block_size_;
  const int n_chunks = static_cast<int>(chunks.size());
  if (use_graphs_ && n_chunks > 0 && n_chunks <= max_num_seqs_ &&
      std::all_of(chunks.begin(), chunks.end(),
                  [](const engine::SeqChunk& c) { return c.tokens.size() == 1; })) {
    int bucket = 1;
    while (bucket < n_chunks) bucket *= 2;
    bucket = std::min(bucket, max_num_seqs_);
    int ctx = 0;
    for (const engine::SeqChunk& c : chunks) ctx = std::max(ctx, c.pos + 1);
    int ctx_bucket = kDecodePartitionTokens;
    while (ctx_bucket < ctx) ctx_bucket *= 2;
    ctx_bucket = std::min(ctx_bucket, max_context_);
    if (decode_attention_workspace_bytes(bucket, cfg_.n_heads, cfg_.n_kv_heads, cfg_.head_dim,
                                         ctx_bucket) <= decode_ws_.size_bytes())
      return forward_graph(chunks, logits, bucket, ctx_bucket);
  }

  // Decode chunks (one token) first: their rows are 0 .. n_decode - 1 and go to the decode
  // kernel; the rest go to the prefill kernel. The decode kernel's split workspace is bounded;
  // when a step would need more, every chunk goes through the prefill kernel.
  order_.clear();
  int n_tokens = 0, n_out = 0, width = 1, max_decode_ctx = 0, max_q_len = 0;
  for (int c = 0; c < n_chunks; ++c) {
    const engine::SeqChunk& ch = chunks[static_cast<size_t>(c)];
    const int len = static_cast<int>(ch.tokens.size());
    const int end = ch.pos + len;
    n_tokens += len;
    n_out += ch.want_logits ? 1 : 0;
    width = std::max(width, (end + bs - 1) / bs);
    if (len == 1) {
      order_.push_back(c);
      max_decode_ctx = std::max(max_decode_ctx, end);
    }
  }
  int n_decode = static_cast<int>(order_.size());
  if (n_decode > 0 &&
      decode_attention_workspace_bytes(n_decode, cfg_.n_heads, cfg_.n_kv_heads, cfg_.head_dim,
                                       max_decode_ctx) > decode_ws_.size_bytes()) {
    n_decode = 0;
    order_.clear();
    max_decode_ctx = 0;
  }
  for (int c = 0; c < n_chunks; ++c) {
    const int len = static_cast<int>(chunks[static_cast<size_t>(c)].tokens.size());
    if (n_decode == 0 || len != 1) {
      order_.push_back(c);
      max_q_len = std::max(max_q_len, len);
    }
  }
  const int n_prefill = n_chunks - n_decode;
  prof_decode_ctx_ = prof_prefill_pairs_ = 0.0;
  for (int k = 0; k < n_chunks; ++k) {
    const engine::SeqChunk& ch = chunks[static_cast<size_t>(order_[static_cast<size_t>(k)])];
    const double len = static_cast<double>(ch.tokens.size());
    if (k < n_decode)
      prof_decode_ctx_ += ch.pos + 1;
    else  // query i of the chunk sees pos + i + 1 keys
      prof_prefill_pairs_ += len * ch.pos + len * (len + 1) / 2;
  }
  if (n_tokens > 65535)
    return invalid_argument("cuda backend: more than 65535 tokens in one step", "tokens");

  StepLayout lay{};
  const auto nt = static_cast<size_t>(n_tokens), nc = static_cast<size_t>(n_chunks);
  lay.ids = 0;
  lay.pos = lay.ids + nt;
  lay.slots = lay.pos + nt;
  lay.ctx = lay.slots + nt;
  lay.cu = lay.ctx + nc;
  lay.tables = lay.cu + static_cast<size_t>(n_prefill) + 1;
  lay.out_rows = lay.tables + nc * static_cast<size_t>(width);
  lay.total = lay.out_rows + static_cast<size_t>(n_out);
  TURBINE_RETURN_IF_ERROR(reserve(n_tokens, n_chunks, lay.total, std::max(n_out, 1)));

  int32_t* h = staging_host_.as<int32_t>();
  std::vector<int> last_row(nc, 0);
  int row = 0;
  h[lay.cu] = 0;
  for (int k = 0; k < n_chunks; ++k) {
    const engine::SeqChunk& ch = chunks[static_cast<size_t>(order_[static_cast<size_t>(k)])];
    const int len = static_cast<int>(ch.tokens.size());
    for (int i = 0; i < len; ++i, ++row) {
      const int p = ch.pos + i;
      h[lay.ids + static_cast<size_t>(row)] = ch.tokens[static_cast<size_t>(i)];
      h[lay.pos + static_cast<size_t>(row)] = p;
      h[lay.slots + static_cast<size_t>(row)] =
          ch.block_table[static_cast<size_t>(p / bs)] * bs + p % bs;
    }
    last_row[static_cast<size_t>(order_[static_cast<size_t>(k)])] = row - 1;
    h[lay.ctx + static_cast<size_t>(k)] = ch.pos + len;
    if (k >= n_decode) {
      const size_t j = static_cast<size_t>(k - n_decode);
      h[lay.cu + j + 1] = h[lay.cu + j] + len;
    }
    const int used = (ch.pos + len + bs - 1) / bs;
    int32_t* t = h + lay.tables + static_cast<size_t>(k) * static_cast<size_t>(width);
    for (int j = 0; j < width; ++j) t[j] = j < used ? ch.block_table[static_cast<size_t>(j)] : 0;
  }
  int o = 0;
  for (int c = 0; c < n_chunks; ++c) {
    if (chunks[static_cast<size_t>(c)].want_logits)
      h[lay.out_rows + static_cast<size_t>(o++)] = last_row[static_cast<size_t>(c)];
  }
  cudaStream_t s = stream_.get();
  if (profile_hold_) TURBINE_RETURN_IF_ERROR(hold_.hold(s));  // released by finish_step
  TURBINE_RETURN_IF_ERROR(timed(pk_.h2d, 0.0, double(lay.total) * sizeof(int32_t), [&] {
    return check(cudaMemcpyAsync(staging_dev_.data(), h, lay.total * sizeof(int32_t),
                                 cudaMemcpyHostToDevice, s),
                 "staging upload");
  }));
  Status st = run_layers(n_tokens, n_decode, n_prefill, max_decode_ctx, max_q_len, width, lay);
  if (st.is_ok() && n_out > 0) {
    const int32_t* dev = staging_dev_.as<int32_t>();
    st = timed(pk_.gather, 0.0, 2.0 * n_out * cfg_.dim * double(eb_), [&] {
      return gather_rows(s, dtype_, xg_.data(), xb_.data(), dev + lay.out_rows, n_out, cfg_.dim,
                         pdl_);
    });
    const double lm_flops = 2.0 * n_out * double(lm_rows_) * cfg_.dim;
    const bool lm8 = lm_head8_.data() != nullptr && n_out <= kW8A16MaxRows;
    const double lm_bytes =
        double(lm_rows_) * (cfg_.dim * (lm8 ? 1.0 : double(eb_)) + (lm8 ? 4 : 0)) +
        double(n_out) * (cfg_.dim * double(eb_) + 4.0 * lm_rows_);
    if (st.is_ok()) st = timed(pk_.lm_head, lm_flops, lm_bytes, [&] { return lm_head(s, n_out); });
    if (st.is_ok() && answers()) st = emit_outputs(n_out);
  }
  return finish_step(chunks, logits, n_out, st);
}

Status CudaBackend::finish_step(std::span<const engine::SeqChunk> chunks,
                                std::vector<float>& logits, int n_out, Status st) {
  hold_.release();  // the profile's held steps: everything is enqueued
  // The step's one synchronisation (also when nothing is read back: the staging buffer is
  // rewritten by the next step).
  const Status sync = stream_.synchronize();
  TURBINE_RETURN_IF_ERROR(st);
  TURBINE_RETURN_IF_ERROR(sync);

  kv_writes_.commit(chunks);
  if (!answers()) {  // rank 0 of the group returns the step's logits or tokens
    logits.clear();
    if (tokens_out_ != nullptr) tokens_out_->clear();
    return Status::ok();
  }
  const auto vocab = static_cast<size_t>(cfg_.n_vocab);
  if (tokens_out_ == nullptr) {
    logits.resize(static_cast<size_t>(n_out) * vocab);
    if (n_out > 0)
      std::memcpy(logits.data(), logits_host_.as<float>(), logits.size() * sizeof(float));
    return Status::ok();
  }
  tokens_out_->assign(static_cast<size_t>(n_out), -1);
  size_t n_host = 0;
  for (int r = 0; r < n_out; ++r) {
    if (rows_[static_cast<size_t>(r)].on_host)
      ++n_host;
    else
      (*tokens_out_)[static_cast<size_t>(r)] = tokens_host_.as<int32_t>()[r];
  }
  logits.resize(n_host * vocab);
  if (n_host > 0)
    std::memcpy(logits.data(), logits_host_.as<float>(), logits.size() * sizeof(float));
  return Status::ok();
}

Status CudaBackend::emit_outputs(int n_out) {
  cudaStream_t s = stream_.get();
  const auto vocab = static_cast<size_t>(cfg_.n_vocab);
  const auto* dev_logits = static_cast<const float*>(logits_dev_.data());
  if (tokens_out_ == nullptr) {
    return timed(pk_.d2h, 0.0, double(n_out) * double(vocab) * sizeof(float), [&] {
      return check(cudaMemcpyAsync(logits_host_.as<float>(), dev_logits,
                                   static_cast<size_t>(n_out) * vocab * sizeof(float),
                                   cudaMemcpyDeviceToHost, s),
                   "logits download");
    });
  }
  // The forward pass is queued (graph or eager launches are asynchronous): the host fills the
  // structured-output masks now, while the device computes the logits they apply to, and they go
  // up with the sampling parameters. Rows are packed, so only the first masked rows are copied.
  SampleParams* hp = sample_params_host_.as<SampleParams>();
  const size_t words = mask_words();
  uint32_t* hm = masks_host_.as<uint32_t>();
  int last_masked = -1;
  bool bias = false;
  for (int r = 0; r < n_out; ++r) {
    const engine::RowSampling& row = rows_[static_cast<size_t>(r)];
    const bool masked = !row.on_host && row.fill_mask;
    hp[r] = SampleParams{row.temperature, row.top_k, row.top_p, masked ? 1 : 0, row.seed, row.step};
    if (masked) {
      row.fill_mask(hm + static_cast<size_t>(r) * words);
      last_masked = r;
    }
    // Host rows keep their logits as the model made them (the host sampler adds the bias).
    if (row.on_host || row.logit_bias.size() > static_cast<size_t>(kMaxRowLogitBias)) continue;
    for (const auto& [id, b] : row.logit_bias) {
      hp[r].bias_ids[hp[r].n_bias] = id;
      hp[r].bias_values[hp[r].n_bias++] = b;
    }
    bias = bias || hp[r].n_bias > 0;
  }
  // The profile's "sampling": parameters and masks up, bias, the draw, the token ids down.
  if (profile_) profile_->begin(s, pk_.sampling);
  TURBINE_RETURN_IF_ERROR(check(
      cudaMemcpyAsync(sample_params_dev_.data(), hp,
                      static_cast<size_t>(n_out) * sizeof(SampleParams), cudaMemcpyHostToDevice, s),
      "sampling parameters upload"));
  if (last_masked >= 0) {
    TURBINE_RETURN_IF_ERROR(
        check(cudaMemcpyAsync(masks_dev_.data(), hm,
                              static_cast<size_t>(last_masked + 1) * words * sizeof(uint32_t),
                              cudaMemcpyHostToDevice, s),
              "token masks upload"));
  }
  if (bias) {
    TURBINE_RETURN_IF_ERROR(add_logit_bias(s, static_cast<float*>(logits_dev_.data()), n_out,
                                           cfg_.n_vocab, sample_params_dev_.as<SampleParams>()));
  }
  TURBINE_RETURN_IF_ERROR(sample(s, DType::kF32, dev_logits, n_out, cfg_.n_vocab,
                                 sample_params_dev_.as<SampleParams>(), tokens_dev_.as<int32_t>(),
                                 last_masked >= 0 ? masks_dev_.as<uint32_t>() : nullptr,
                                 static_cast<int>(words)));
  TURBINE_RETURN_IF_ERROR(check(
      cudaMemcpyAsync(tokens_host_.as<int32_t>(), tokens_dev_.data(),
                      static_cast<size_t>(n_out) * sizeof(int32_t), cudaMemcpyDeviceToHost, s),
      "sampled tokens download"));
  if (profile_) profile_->end(s, pk_.sampling, 0.0, double(n_out) * double(vocab) * sizeof(float));
  if (profile_) profile_->begin(s, pk_.d2h);
  size_t j = 0;
  for (int r = 0; r < n_out; ++r) {
    if (!rows_[static_cast<size_t>(r)].on_host) continue;
    TURBINE_RETURN_IF_ERROR(check(cudaMemcpyAsync(logits_host_.as<float>() + j * vocab,
                                                  dev_logits + static_cast<size_t>(r) * vocab,
                                                  vocab * sizeof(float), cudaMemcpyDeviceToHost, s),
                                  "logits download"));
    ++j;
  }
  if (profile_) profile_->end(s, pk_.d2h, 0.0, double(j) * double(vocab) * sizeof(float));
  return Status::ok();
}

Status CudaBackend::forward_sample(std::span<const engine::SeqChunk> chunks,
                                   std::span<const engine::RowSampling> rows,
                                   std::vector<int32_t>& tokens, std::vector<float>& logits) {
  if (!device_sampling_) return unimplemented("device sampling is off for this backend");
  const auto n_out = static_cast<size_t>(std::count_if(
      chunks.begin(), chunks.end(), [](const engine::SeqChunk& c) { return c.want_logits; }));
  if (rows.size() != n_out)
    return invalid_argument("forward_sample: " + std::to_string(rows.size()) +
                                " sampling rows for " + std::to_string(n_out) + " logits rows",
                            "rows");
  rows_ = rows;
  tokens_out_ = &tokens;
  const Status st = forward(chunks, logits);
  rows_ = {};
  tokens_out_ = nullptr;
  return st;
}

Status CudaBackend::forward_graph(std::span<const engine::SeqChunk> chunks,
                                  std::vector<float>& logits, int bucket, int ctx_bucket) {
  const int bs = block_size_, b = bucket;
  const int n = static_cast<int>(chunks.size());
  const int width = (max_context_ + bs - 1) / bs;
  const auto nb = static_cast<size_t>(b);
  StepLayout lay{};
  lay.ids = 0;
  lay.pos = nb;
  lay.slots = 2 * nb;
  lay.ctx = 3 * nb;
  lay.cu = 4 * nb;
  lay.tables = lay.cu + 1;
  lay.out_rows = lay.tables + nb * static_cast<size_t>(width);
  lay.total = lay.out_rows + nb;
  TURBINE_RETURN_IF_ERROR(reserve(b, b, lay.total, b));

  int32_t* h = staging_host_.as<int32_t>();
  std::memset(h, 0, lay.total * sizeof(int32_t));
  int n_out = 0;
  for (int k = 0; k < b; ++k) {
    const auto kk = static_cast<size_t>(k);
    if (k < n) {
      const engine::SeqChunk& ch = chunks[kk];
      h[lay.ids + kk] = ch.tokens[0];
      h[lay.pos + kk] = ch.pos;
      h[lay.slots + kk] = ch.block_table[static_cast<size_t>(ch.pos / bs)] * bs + ch.pos % bs;
      h[lay.ctx + kk] = ch.pos + 1;
      const int used = ch.pos / bs + 1;
      std::copy_n(ch.block_table.begin(), used, h + lay.tables + kk * static_cast<size_t>(width));
      if (ch.want_logits) h[lay.out_rows + static_cast<size_t>(n_out++)] = k;
    } else {  // padding: writes nothing, attends to position 0 of block 0
      h[lay.slots + kk] = -1;
      h[lay.ctx + kk] = 1;
    }
  }
  cudaStream_t s = stream_.get();
  TURBINE_RETURN_IF_ERROR(check(cudaMemcpyAsync(staging_dev_.data(), h, lay.total * sizeof(int32_t),
                                                cudaMemcpyHostToDevice, s),
                                "staging upload"));
  const std::pair<int, int> key(b, ctx_bucket);
  auto it = graphs_.find(key);
  if (it == graphs_.end()) {
    TURBINE_RETURN_IF_ERROR(
        check(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), "begin capture"));
    Status st = run_layers(b, b, 0, ctx_bucket, 0, width, lay);
    if (st.is_ok())
      st = gather_rows(s, dtype_, xg_.data(), xb_.data(), staging_dev_.as<int32_t>() + lay.out_rows,
                       b, cfg_.dim, pdl_);
    if (st.is_ok()) st = lm_head(s, b);
    cudaGraph_t graph = nullptr;
    const Status end = check(cudaStreamEndCapture(s, &graph), "end capture");
    if (!st.is_ok() || !end.is_ok()) {
      if (graph != nullptr) cudaGraphDestroy(graph);
      return st.is_ok() ? end : st;
    }
    cudaGraphExec_t exec = nullptr;
    const Status inst = check(cudaGraphInstantiate(&exec, graph, 0), "instantiate graph");
    cudaGraphDestroy(graph);
    TURBINE_RETURN_IF_ERROR(inst);
    it = graphs_.emplace(key, GraphExec(exec)).first;
  }
  Status st = check(cudaGraphLaunch(it->second.get(), s), "graph launch");
  if (st.is_ok() && n_out > 0 && answers()) st = emit_outputs(n_out);
  return finish_step(chunks, logits, n_out, st);
}

Status CudaBackend::lm_head(cudaStream_t s, int rows) {
  if (lm_head8_.data() != nullptr && !gathers() && rows <= kW8A16MaxRows) {
    return gemv_w8a16_out(s, dtype_, DType::kF32, xg_.data(), lm_head8_.as<uint8_t>(),
                          lm_head8_scales_.as<float>(), logits_dev_.data(), rows, cfg_.n_vocab,
                          cfg_.dim, pdl_);
  }
  if (!gathers()) {
    return gemm_->matmul(s, dtype_, xg_.data(), lm_head_ptr_, logits_dev_.data(), rows,
                         cfg_.n_vocab, cfg_.dim, DType::kF32);
  }
  const auto per = static_cast<size_t>(lm_rows_);
  const auto n = static_cast<size_t>(rows);
  TURBINE_RETURN_IF_ERROR(gemm_->matmul(s, dtype_, xg_.data(), lm_head_ptr_, lm_local_.data(), rows,
                                        lm_rows_, cfg_.dim, DType::kF32));
  TURBINE_RETURN_IF_ERROR(
      comm_->all_gather(lm_local_.data(), lm_gathered_.data(), n * per, DType::kF32, s));
  if (!answers()) return Status::ok();
  // Rank r's piece is [rows][per]; its columns go to [v0, v0 + len) of each logits row.
  const auto vocab = static_cast<size_t>(cfg_.n_vocab);
  for (size_t r = 0; r < static_cast<size_t>(comm_->size()); ++r) {
    const size_t v0 = std::min(vocab, r * per), len = std::min(vocab, v0 + per) - v0;
    if (len == 0) continue;
    TURBINE_RETURN_IF_ERROR(
        check(cudaMemcpy2DAsync(logits_dev_.as<float>() + v0, vocab * sizeof(float),
                                lm_gathered_.as<float>() + r * n * per, per * sizeof(float),
                                len * sizeof(float), n, cudaMemcpyDeviceToDevice, s),
              "gather logits"));
  }
  return Status::ok();
}

Status CudaBackend::all_reduce_o(cudaStream_t s, int rows) {
  if (!comm_) return Status::ok();
  return comm_->all_reduce_sum(o_.data(), static_cast<size_t>(rows) * cfg_.dim, dtype_, s);
}

int64_t cuda_kv_bytes_per_token(const model::ModelConfig& c, DType dtype,
                                engine::KvCacheDtype kv_dtype) {
  const int64_t eb =
      kv_dtype == engine::KvCacheDtype::kFp8 ? 1 : static_cast<int64_t>(dtype_bytes(dtype));
  return int64_t{2} * c.n_layers * c.n_kv_heads * c.head_dim * eb;
}

Result<std::unique_ptr<engine::Backend>> make_cuda_backend(const model::Model& model,
                                                           const CudaBackendOptions& options) {
  const model::ModelConfig& c = model.config();
  if (c.n_layers <= 0 || c.dim <= 0 || c.n_vocab <= 0 || c.n_kv_heads <= 0 || c.head_dim <= 0 ||
      c.n_heads % c.n_kv_heads != 0 ||
      model.weights().layers.size() != static_cast<size_t>(c.n_layers)) {
    return invalid_argument("cuda backend: model " + model.name() + " has an inconsistent config");
  }
  if (options.dtype != DType::kBF16 && options.dtype != DType::kF16 && options.dtype != DType::kF32)
    return invalid_argument("cuda backend: dtype must be bf16, f16 or f32", "dtype");
  if (options.block_size < 1 || options.block_size > 1024)
    return invalid_argument("cuda backend: block_size must be in [1, 1024]", "block_size");
  if (options.max_num_seqs <= 0 || options.max_num_seqs > 4096)
    return invalid_argument("cuda backend: max_num_seqs must be in [1, 4096]", "max_num_seqs");
  if (options.max_num_batched_tokens <= 0 || options.max_num_batched_tokens > 65535)
    return invalid_argument("cuda backend: max_num_batched_tokens must be in [1, 65535]",
                            "max_num_batched_tokens");
  if (options.max_context < 0)
    return invalid_argument("cuda backend: max_context must be >= 0", "max_context");
  if (!(options.gpu_memory_utilization > 0.0 && options.gpu_memory_utilization <= 1.0))
    return invalid_argument("cuda backend: gpu_memory_utilization must be in (0, 1]",
                            "gpu_memory_utilization");
  if (options.kv_cache_memory_bytes < 0)
    return invalid_argument("cuda backend: kv_cache_memory must be >= 0", "kv_cache_memory");
  if (c.head_dim % 2 != 0 || c.head_dim > 256)
    return unimplemented("cuda backend: head_dim " + std::to_string(c.head_dim) +
                         " (even sizes up to 256)");
  const int max_context = options.max_context > 0 ? options.max_context : c.max_context;
  if (max_context <= 0)
    return invalid_argument("cuda backend: model has no context length; set max_context",
                            "max_context");
  const int n = device_count();
  if (n == 0) return Status(StatusCode::kUnavailable, "cuda backend: no CUDA device");
  if (options.device < 0 || options.device >= n)
    return invalid_argument("cuda backend: device " + std::to_string(options.device) + " (have " +
                                std::to_string(n) + ")",
                            "device");
  auto backend = std::make_unique<CudaBackend>(model, options, max_context);
  TURBINE_RETURN_IF_ERROR(backend->init(model, options));
  return std::unique_ptr<engine::Backend>(std::move(backend));
}

}  // namespace turbine::cuda
