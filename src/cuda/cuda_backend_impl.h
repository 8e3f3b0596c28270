// The CUDA Backend's class, shared by its implementation files (internal to src/cuda):
//   cuda_backend.cpp     start-up (buffers, KV cache sizing, GEMM tuning), the step: forward,
//                        CUDA graphs, outputs
//   cuda_backend_layers.cpp  the layers (run_layers) and the op profile's kinds
//   cuda_backend_kv.cpp  KV export/import for disaggregation: host-staged block reads/writes,
//                        the pool descriptor, device-to-device copies from a peer's pool (IPC)
//   weight_upload.cpp    the weights, converted and uploaded once
//   cuda_backend_fp8.cpp the FP8 projections: input quantization, E4M3 or dense weights
// Thread ownership as in cuda/cuda_backend.h: used by one thread at a time (the engine thread).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cuda/attention.h"
#include "cuda/cuda_backend.h"
#include "cuda/device.h"
#include "cuda/gemm.h"
#include "cuda/kv_copy.h"
#include "cuda/launch_hold.h"
#include "cuda/op_timer.h"
#include "cuda/weight_upload.h"
#include "engine/kv_write_tracker.h"
#include "model/dtype.h"

namespace turbine::cuda {

// Move-only owner of page-locked host memory (the step's staging and logits buffers).
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  static Result<PinnedBuffer> allocate(size_t bytes) {
    PinnedBuffer b;
    TURBINE_RETURN_IF_ERROR(check(cudaMallocHost(&b.ptr_, std::max<size_t>(bytes, 1)), "pinned"));
    b.size_ = bytes;
    return b;
  }
  ~PinnedBuffer() {
    if (ptr_ != nullptr) cudaFreeHost(ptr_);
  }
  PinnedBuffer(PinnedBuffer&& o) noexcept
      : ptr_(std::exchange(o.ptr_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  PinnedBuffer& operator=(PinnedBuffer&& o) noexcept {
    if (this != &o) {
      if (ptr_ != nullptr) cudaFreeHost(ptr_);
      ptr_ = std::exchange(o.ptr_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }
  size_t size_bytes() const { return size_; }

 private:
  void* ptr_ = nullptr;
  size_t size_ = 0;
};

// Move-only owner of an instantiated CUDA graph.
class GraphExec {
 public:
  explicit GraphExec(cudaGraphExec_t e) : e_(e) {}
  ~GraphExec() {
    if (e_ != nullptr) cudaGraphExecDestroy(e_);
  }
  GraphExec(GraphExec&& o) noexcept : e_(std::exchange(o.e_, nullptr)) {}
  GraphExec& operator=(GraphExec&&) = delete;
  GraphExec(const GraphExec&) = delete;
  GraphExec& operator=(const GraphExec&) = delete;
  cudaGraphExec_t get() const { return e_; }

 private:
  cudaGraphExec_t e_ = nullptr;
};

// Offsets (in int32 elements) of the parts of one step's staging buffer.
struct StepLayout {
  size_t ids, pos, slots, ctx, cu, tables, out_rows, total;
};

class CudaBackend final : public engine::Backend {
 public:
  CudaBackend(const model::Model& model, const CudaBackendOptions& opts, int max_context)
      : shard_(opts.shard),
        comm_(opts.comm),
        cfg_(shard_ ? shard_->config() : model.config()),
        dtype_(opts.dtype),
        eb_(dtype_bytes(opts.dtype)),
        fp8_kv_(opts.kv_cache_dtype == engine::KvCacheDtype::kFp8),
        kv_eb_(fp8_kv_ ? 1 : eb_),
        device_(opts.device),
        max_context_(max_context),
        block_size_(opts.block_size),
        q_dim_(cfg_.n_heads * cfg_.head_dim),
        kv_dim_(cfg_.n_kv_heads * cfg_.head_dim),
        qkv_w_(q_dim_ + 2 * kv_dim_) {}

  Status init(const model::Model& model, const CudaBackendOptions& opts);

  std::string_view name() const override { return "cuda"; }
  int max_context() const override { return max_context_; }
  int num_blocks() const override { return n_blocks_; }
  int block_size() const override { return block_size_; }
  Status forward(std::span<const engine::SeqChunk> chunks, std::vector<float>& logits) override;
  bool supports_sampling() const override { return device_sampling_; }
  bool supports_sampling_mask() const override { return device_sampling_; }
  Status forward_sample(std::span<const engine::SeqChunk> chunks,
                        std::span<const engine::RowSampling> rows, std::vector<int32_t>& tokens,
                        std::vector<float>& logits) override;

  ~CudaBackend() override;
  engine::KvLayout kv_layout() const override;
  Status read_kv_blocks(std::span<const int32_t> blocks, std::string& out) override;
  Status write_kv_blocks(std::span<const int32_t> blocks, std::string_view bytes,
                         int n_positions) override;
  std::string kv_pool_descriptor() const override { return kv_pool_; }
  // KV tiers (issue 24): the host tier in pinned memory (cudaHostAlloc), so its copies to and
  // from the device need no bounce through pageable memory (cuda_backend_kv.cpp).
  std::shared_ptr<kvtier::HostMemory> host_memory() const override;
  // KV tiers' offload without waiting (issue 24): cudaMemcpy2DAsync from the pool straight into
  // the tiers' pinned staging slots on kv_copy_stream_, after the compute stream's work so far
  // (an event), and the compute stream waits on the copy's event before its next kernel (the
  // evicted blocks' slots are reused by that step), on the device. poll_kv_copy queries the
  // event; nothing here blocks the engine thread except wait_kv_copy (shutdown).
  Result<uint64_t> read_kv_blocks_async(std::span<const int32_t> blocks,
                                        std::span<uint8_t* const> dst) override;
  std::optional<Status> poll_kv_copy(uint64_t ticket) override;
  Status wait_kv_copy(uint64_t ticket) override;
  // Tier onboarding: the bytes are copied into pinned staging (kv_onboard_stage_) and uploaded
  // straight into the pool by pitched copies on kv_copy_stream_; the compute stream waits on the
  // upload's event. The engine thread waits only when the staging is still being read by the
  // previous upload.
  Status write_kv_blocks_async(std::span<const int32_t> blocks, std::string_view bytes,
                               int n_positions) override;
  Status copy_kv_blocks_from_pool(std::string_view descriptor, std::span<const int32_t> src_blocks,
                                  std::span<const int32_t> blocks, int n_positions) override;

 private:
  int64_t kv_chunk_bytes() const {
    return static_cast<int64_t>(block_size_) * kv_dim_ * static_cast<int64_t>(kv_eb_);
  }
  // This pool, with block ids at `ids` (device).
  KvBlockView pool_view(const int32_t* ids) const {
    return {k_cache_.data(), v_cache_.data(), int64_t{n_blocks_} * kv_chunk_bytes(),
            kv_chunk_bytes(), ids};
  }
  // The packed wire layout at `base` (device).
  KvBlockView packed_view(void* base) const {
    const int64_t chunk = kv_chunk_bytes();
    return {base, static_cast<uint8_t*>(base) + chunk, 2 * chunk,
            int64_t{2} * cfg_.n_layers * chunk, nullptr};
  }
  Status check_block_ids(std::span<const int32_t> blocks, int n_blocks, const char* what) const;
  // A KV import's bytes are whole packed blocks, one per id, and the ids are in the pool.
  Status check_kv_write(std::span<const int32_t> blocks, std::string_view bytes) const;
  // Copies a and then b (block ids) to kv_ids_dev_ (enqueued on the stream).
  Status upload_ids(std::span<const int32_t> a, std::span<const int32_t> b);
  Status reserve_kv_staging(size_t bytes);
  Status make_pool_descriptor();

  // After the LM head: downloads the n_out logits rows, or (forward_sample) samples them and
  // downloads the token ids and the on_host rows only.
  Status emit_outputs(int n_out);
  // Decode-only steps of up to max_num_seqs chunks replay a CUDA graph captured per batch-size
  // bucket (powers of two) and context bucket (powers of two from kDecodePartitionTokens up to
  // max_context): fixed shapes (padded rows, full-width block tables, the decode grid sized for
  // the context bucket; partitions past a sequence's actual context exit at once and the
  // reduction reads the count from the context lengths) so that one capture serves every step of
  // that bucket.
  Status forward_graph(std::span<const engine::SeqChunk> chunks, std::vector<float>& logits,
                       int bucket, int ctx_bucket);
  Status finish_step(std::span<const engine::SeqChunk> chunks, std::vector<float>& logits,
                     int n_out, Status st);
  Status reserve(int n_tokens, int n_chunks, size_t staging_ints, int n_out);
  // Tensor parallelism. The LM head over `rows` gathered rows of xg_ into logits_dev_ (rank 0;
  // with a group: this rank's vocabulary rows, gathered); the all-reduce of o_ after O and down;
  // whether this rank answers (rank 0, or no group) and whether it gathers (a group of several).
  Status lm_head(cudaStream_t s, int rows);
  Status all_reduce_o(cudaStream_t s, int rows);
  bool answers() const { return !comm_ || comm_->rank() == 0; }
  bool gathers() const { return comm_ && comm_->size() > 1; }
  // Picks the fastest cuBLASLt algorithm for the projections and the LM head at every decode
  // graph bucket that runs cuBLASLt (Gemm::tune over all layers' weights). Uses the step buffers.
  Status tune_decode_gemms();
  Status run_layers(int n_tokens, int n_decode, int n_prefill_seqs, int max_decode_ctx,
                    int max_q_len, int table_width, const StepLayout& lay);
  void* kv_layer(const DeviceBuffer& cache, int layer) const {
    return static_cast<uint8_t*>(cache.data()) +
           static_cast<size_t>(layer) * static_cast<size_t>(n_blocks_) *
               static_cast<size_t>(block_size_) * static_cast<size_t>(kv_dim_) * kv_eb_;
  }
  // The input quantization of FP8 projection `w` over `n` rows of `src` (dtype, `cols` wide) into
  // xq_/xs_ (nothing when w is not FP8).
  Status quantize_input(cudaStream_t s, const Fp8Weight& w, const void* src, int n, int cols);
  // Whether an FP8 projection of n rows and k inputs runs the weight-only gemv (gemv_w8a16:
  // input read in dtype, no quantization kernel) rather than the A8 paths (input in xq_/xs_).
  bool w8a16(int n, int k) const {
    return fp8_w8a16_ && n >= 1 && n <= kW8A16MaxRows && k % 16 == 0;
  }
  static constexpr int kW8A16MaxRows = 2;  // cuBLASLt's FP8 GEMM is faster from 4 rows (H100)
  // The gate|up projection and SwiGLU of an FP8 gu8 on the W8A16 path: xb_ -> h_ (fused when
  // fused_swiglu_), then the down projection's input quantization if down is not W8A16.
  Status gate_up_w8a16(cudaStream_t s, const LayerDev& L, int n);
  // y = x · wᵀ through the FP8 weight when it is on (input already in xq_/xs_ unless w8a16(n,
  // in), which reads x), else in dtype. `kind`: the profile's op kind (ProfileKinds).
  Status project(cudaStream_t s, const DeviceBuffer& dense, const Fp8Weight& f8, const void* x,
                 void* y, int n, int out, int in, int kind);
  // forward() without the profile's wall-time bracket.
  Status forward_impl(std::span<const engine::SeqChunk> chunks, std::vector<float>& logits);

  // The op profile (CudaBackendOptions::profile). One kind per op of a step, named in init().
  struct ProfileKinds {
    int h2d = 0, embed = 0, norm = 0, norm_quant = 0, qkv = 0, qkv_post = 0, rope_kv = 0,
        attn_decode = 0, attn_prefill = 0, quant = 0, o = 0, gate_up = 0, gate_up_swiglu = 0,
        swiglu = 0, swiglu_quant = 0, down = 0, scales = 0, final_norm = 0, gather = 0, lm_head = 0,
        sampling = 0, d2h = 0;
  };
  void name_profile_kinds();
  // Brackets one op (its work: flops and bytes moved, for the achieved rates); just runs it when
  // not profiling.
  template <typename F>
  Status timed(int kind, double flops, double bytes, F&& f) {
    return time_op(profile_.get(), stream_.get(), kind, flops, bytes, std::forward<F>(f));
  }
  // Bytes of one projection's weights as stored on the device (E4M3 plus scales, or dtype).
  double weight_bytes(const Fp8Weight& f8, int out, int in) const {
    return f8.on() ? double(out) * in + 4.0 * out : double(out) * in * double(eb_);
  }

  const std::shared_ptr<const tp::RankWeights> shard_;  // null: the whole model
  const std::shared_ptr<tp::Communicator> comm_;        // null: no tensor-parallel group
  const model::ModelConfig cfg_;  // the rank's shapes (heads, FFN) with a shard
  const model::DType dtype_;
  const size_t eb_;
  const bool fp8_kv_;                       // E4M3 KV cache
  const size_t kv_eb_;                      // bytes per KV element: 1 (FP8) or eb_
  std::vector<float> k_scales_, v_scales_;  // per layer, FP8 KV cache (the checkpoint's, else 1)
  bool has_fp8_ = false;  // some projection keeps E4M3 weights (xq_/xs_ allocated)
  const int device_;
  const int max_context_;
  const int block_size_;
  const int q_dim_, kv_dim_, qkv_w_;
  int n_blocks_ = 0;
  int max_num_seqs_ = 0;
  bool use_graphs_ = true;
  bool device_sampling_ = true;
  bool pdl_ = false;  // programmatic dependent launch for the step's kernels
  bool fused_swiglu_ = false;
  bool fp8_w8a16_ = false;            // CudaBackendOptions::fp8_gemv == kW8A16
  std::shared_ptr<OpTimer> profile_;  // null: no op profile
  LaunchHold hold_;                   // CudaBackendOptions::profile_hold (created with it only)
  bool profile_hold_ = false;
  ProfileKinds pk_;
  // The attention work of the step being profiled, set by forward_impl(): the decode rows' summed
  // context lengths, and the prefill chunks' (query, key) pairs under the causal mask.
  double prof_decode_ctx_ = 0.0, prof_prefill_pairs_ = 0.0;
  // Set by forward_sample() for the duration of the step.
  std::span<const engine::RowSampling> rows_;
  std::vector<int32_t>* tokens_out_ = nullptr;
  // By (bucket, context bucket); cleared when a step buffer moves.
  std::map<std::pair<int, int>, GraphExec> graphs_;

  Stream stream_;
  std::optional<Gemm> gemm_;
  DeviceBuffer embed_, output_norm_, lm_head_, inv_freq_;
  // CudaBackendOptions::fp8_lm_head: the head's E4M3 rows and their f32 scales (empty: off).
  DeviceBuffer lm_head8_, lm_head8_scales_;
  const void* lm_head_ptr_ = nullptr;  // lm_head_ or embed_ (tied)
  int lm_rows_ = 0;  // LM-head rows computed here: n_vocab, or the shard's padded vocabulary slice
  std::vector<LayerDev> layers_;
  DeviceBuffer k_cache_, v_cache_;

  // Step buffers, grown on demand.
  int cap_tokens_ = 0, cap_out_ = 0;
  size_t cap_staging_ = 0;
  DeviceBuffer x_, xb_, qkv_, att_, o_, gu_, h_, xg_, logits_dev_, staging_dev_, decode_ws_;
  DeviceBuffer xq_, xs_;  // FP8 projections' quantized inputs: E4M3 rows and their f32 scales
  DeviceBuffer lm_local_, lm_gathered_;  // a group's LM-head rows: this rank's, every rank's
  PinnedBuffer staging_host_, logits_host_;
  DeviceBuffer sample_params_dev_, tokens_dev_;  // cap_out_ rows
  PinnedBuffer sample_params_host_, tokens_host_;
  // Structured outputs: cap_out_ rows of mask_words() allowed-token bits (RowSampling::fill_mask).
  DeviceBuffer masks_dev_;
  PinnedBuffer masks_host_;
  size_t mask_words() const { return (static_cast<size_t>(cfg_.n_vocab) + 31) / 32; }

  engine::KvWriteTracker kv_writes_;  // which positions each block holds; validates chunks
  std::vector<int> order_;            // chunk indices, decode chunks first

  // Disaggregation: KV export/import staging, this pool's descriptor, peers' pools mapped here
  // (by descriptor; CUDA IPC mappings are closed with the backend).
  DeviceBuffer kv_ids_dev_, kv_stage_dev_;
  PinnedBuffer kv_ids_host_, kv_stage_host_;
  std::string kv_pool_;
  std::string boot_id_;  // this host's, read once (make_pool_descriptor)
  struct PeerPool {
    void* k = nullptr;
    void* v = nullptr;
    bool ipc = false;  // opened with cudaIpcOpenMemHandle
  };
  std::map<std::string, PeerPool, std::less<>> peer_pools_;

  // KV tiers' asynchronous offload (read_kv_blocks_async); engine thread only. Created at the
  // first offload. Copies complete in enqueue order (one stream); each has its own event
  // (recycled through kv_copy_events_, timing disabled: polled, never timed). The destructor
  // waits for the stream before the pool goes.
  Stream kv_copy_stream_;
  cudaEvent_t kv_compute_ready_ = nullptr;  // recorded on stream_ before each batch of copies
  struct KvCopy {
    uint64_t ticket = 0;
    cudaEvent_t done = nullptr;
  };
  std::deque<KvCopy> kv_copies_;
  std::vector<cudaEvent_t> kv_copy_events_;
  uint64_t next_kv_copy_ = 1;  // 0 is "done" (engine::Backend)
  Status finish_kv_copy(std::deque<KvCopy>::iterator it, cudaError_t e);
  // Creates kv_copy_stream_ and kv_compute_ready_ on first use.
  Status ensure_kv_copy_stream();
  // Pinned staging of write_kv_blocks_async (grown to at most one piece) and the event recorded
  // after the last upload that reads it.
  PinnedBuffer kv_onboard_stage_;
  cudaEvent_t kv_onboard_done_ = nullptr;
  bool kv_onboard_pending_ = false;
};

}  // namespace turbine::cuda
