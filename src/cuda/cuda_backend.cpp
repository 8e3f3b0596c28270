#include "cuda/cuda_backend.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "cuda/attention.h"
#include "cuda/device.h"
#include "cuda/gemm.h"
#include "cuda/kernels.h"
#include "cuda/kv_copy.h"
#include "cuda/sampling.h"
#include "engine/kv_write_tracker.h"
#include "model/dtype.h"

namespace turbine::cuda {
namespace {

using model::DType;
using model::TensorView;

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

// Writes `t` (any loader dtype) as rows of `dst` into host memory at `out`.
void convert_tensor(const TensorView& t, DType dst, uint8_t* out) {
  const size_t eb = dtype_bytes(dst);
  const auto cols = static_cast<size_t>(t.cols);
  std::vector<float> row(cols);
  for (int64_t r = 0; r < t.rows; ++r) {
    model::dequantize_row(t, r, row.data());
    uint8_t* o = out + static_cast<size_t>(r) * cols * eb;
    switch (dst) {
      case DType::kF32: std::memcpy(o, row.data(), cols * sizeof(float)); break;
      case DType::kF16:
        for (size_t i = 0; i < cols; ++i) {
          const uint16_t h = model::f32_to_f16(row[i]);
          std::memcpy(o + 2 * i, &h, 2);
        }
        break;
      default:
        for (size_t i = 0; i < cols; ++i) {
          const uint16_t h = model::f32_to_bf16(row[i]);
          std::memcpy(o + 2 * i, &h, 2);
        }
        break;
    }
  }
}

// Uploads the row-wise concatenation of `parts` (all with the same number of columns).
Result<DeviceBuffer> upload_concat(std::initializer_list<const TensorView*> parts, DType dst) {
  const size_t eb = dtype_bytes(dst);
  size_t total = 0;
  for (const TensorView* t : parts) total += static_cast<size_t>(t->rows * t->cols) * eb;
  TURBINE_ASSIGN_OR_RETURN(DeviceBuffer buf, DeviceBuffer::allocate(total));
  size_t off = 0;
  std::vector<uint8_t> host;
  for (const TensorView* t : parts) {
    const size_t bytes = static_cast<size_t>(t->rows * t->cols) * eb;
    auto* dst_ptr = static_cast<uint8_t*>(buf.data()) + off;
    if (t->dtype == dst) {
      if (t->size_bytes < bytes) return data_loss("cuda backend: tensor " + t->name + " too short");
      TURBINE_RETURN_IF_ERROR(
          check(cudaMemcpy(dst_ptr, t->data, bytes, cudaMemcpyHostToDevice), "upload weights"));
    } else {
      host.resize(bytes);
      convert_tensor(*t, dst, host.data());
      TURBINE_RETURN_IF_ERROR(
          check(cudaMemcpy(dst_ptr, host.data(), bytes, cudaMemcpyHostToDevice), "upload weights"));
    }
    off += bytes;
  }
  return buf;
}

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

struct LayerDev {
  DeviceBuffer attn_norm, ffn_norm, wqkv, bqkv, q_norm, k_norm, wo, wgu, wdown;
};

// Offsets (in int32 elements) of the parts of one step's staging buffer.
struct StepLayout {
  size_t ids, pos, slots, ctx, cu, tables, out_rows, total;
};

// What CudaBackend::kv_pool_descriptor() hands to peers (opaque to everyone else): enough for a
// backend in another process on the same host to map this pool with CUDA IPC, or, in the same
// process, to use its pointers. Read and written with memcpy by the same binary on one host.
struct KvPoolDescriptor {
  char magic[8] = {'T', 'K', 'V', 'P', 'O', 'O', 'L', '1'};
  char boot_id[40] = {};  // /proc/sys/kernel/random/boot_id: which host (and boot)
  int32_t pid = 0;
  int32_t device = 0;
  int32_t elem_bytes = 0, n_layers = 0, block_size = 0, kv_dim = 0, n_blocks = 0;
  int32_t has_ipc = 0;
  uint64_t k_ptr = 0, v_ptr = 0;  // valid in process `pid` only
  cudaIpcMemHandle_t k_handle{}, v_handle{};
};
static_assert(std::is_trivially_copyable_v<KvPoolDescriptor>);

std::string host_boot_id() {
  std::ifstream f("/proc/sys/kernel/random/boot_id");
  std::string id;
  std::getline(f, id);
  if (id.empty()) {
    char host[64] = {};
    gethostname(host, sizeof host - 1);
    id = host;
  }
  return id;
}

// KV copies for disaggregation are staged through buffers of at most this many bytes.
constexpr size_t kKvStagingBytes = size_t{16} << 20;

class CudaBackend final : public engine::Backend {
 public:
  CudaBackend(const model::Model& model, const CudaBackendOptions& opts, int max_context)
      : cfg_(model.config()),
        dtype_(opts.dtype),
        eb_(dtype_bytes(opts.dtype)),
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
  Status forward_sample(std::span<const engine::SeqChunk> chunks,
                        std::span<const engine::RowSampling> rows, std::vector<int32_t>& tokens,
                        std::vector<float>& logits) override;

  ~CudaBackend() override;
  engine::KvLayout kv_layout() const override;
  Status read_kv_blocks(std::span<const int32_t> blocks, std::string& out) override;
  Status write_kv_blocks(std::span<const int32_t> blocks, std::string_view bytes,
                         int n_positions) override;
  std::string kv_pool_descriptor() const override { return kv_pool_; }
  Status copy_kv_blocks_from_pool(std::string_view descriptor, std::span<const int32_t> src_blocks,
                                  std::span<const int32_t> blocks, int n_positions) override;

 private:
  int64_t kv_chunk_bytes() const {
    return static_cast<int64_t>(block_size_) * kv_dim_ * static_cast<int64_t>(eb_);
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
  // Picks the fastest cuBLASLt algorithm for the projections and the LM head at every decode
  // graph bucket that runs cuBLASLt (Gemm::tune over all layers' weights). Uses the step buffers.
  Status tune_decode_gemms();
  Status run_layers(int n_tokens, int n_decode, int n_prefill_seqs, int max_decode_ctx,
                    int max_q_len, int table_width, const StepLayout& lay);
  void* kv_layer(const DeviceBuffer& cache, int layer) const {
    return static_cast<uint8_t*>(cache.data()) +
           static_cast<size_t>(layer) * static_cast<size_t>(n_blocks_) *
               static_cast<size_t>(block_size_) * static_cast<size_t>(kv_dim_) * eb_;
  }

  const model::ModelConfig cfg_;
  const DType dtype_;
  const size_t eb_;
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
  // Set by forward_sample() for the duration of the step.
  std::span<const engine::RowSampling> rows_;
  std::vector<int32_t>* tokens_out_ = nullptr;
  // By (bucket, context bucket); cleared when a step buffer moves.
  std::map<std::pair<int, int>, GraphExec> graphs_;

  Stream stream_;
  std::optional<Gemm> gemm_;
  DeviceBuffer embed_, output_norm_, lm_head_, inv_freq_;
  const void* lm_head_ptr_ = nullptr;  // lm_head_ or embed_ (tied)
  std::vector<LayerDev> layers_;
  DeviceBuffer k_cache_, v_cache_;

  // Step buffers, grown on demand.
  int cap_tokens_ = 0, cap_out_ = 0;
  size_t cap_staging_ = 0;
  DeviceBuffer x_, xb_, qkv_, att_, o_, gu_, h_, xg_, logits_dev_, staging_dev_, decode_ws_;
  PinnedBuffer staging_host_, logits_host_;
  DeviceBuffer sample_params_dev_, tokens_dev_;  // cap_out_ rows
  PinnedBuffer sample_params_host_, tokens_host_;

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
};

Status CudaBackend::init(const model::Model& model, const CudaBackendOptions& opts) {
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
  gemm_->use_pdl(pdl_);
  const model::Weights& w = model.weights();
  TURBINE_ASSIGN_OR_RETURN(embed_, upload_concat({&w.tok_embeddings}, dtype_));
  TURBINE_ASSIGN_OR_RETURN(output_norm_, upload_concat({&w.output_norm}, dtype_));
  if (w.output.data == w.tok_embeddings.data && w.output.dtype == w.tok_embeddings.dtype) {
    lm_head_ptr_ = embed_.data();
  } else {
    TURBINE_ASSIGN_OR_RETURN(lm_head_, upload_concat({&w.output}, dtype_));
    lm_head_ptr_ = lm_head_.data();
  }
  layers_.resize(w.layers.size());
  for (size_t l = 0; l < w.layers.size(); ++l) {
    const model::LayerWeights& L = w.layers[l];
    LayerDev& d = layers_[l];
    TURBINE_ASSIGN_OR_RETURN(d.attn_norm, upload_concat({&L.attn_norm}, dtype_));
    TURBINE_ASSIGN_OR_RETURN(d.ffn_norm, upload_concat({&L.ffn_norm}, dtype_));
    TURBINE_ASSIGN_OR_RETURN(d.wqkv, upload_concat({&L.wq, &L.wk, &L.wv}, dtype_));
    if (L.bq.present()) {
      if (!L.bk.present() || !L.bv.present())
        return invalid_argument("cuda backend: q bias without k/v bias in layer " +
                                std::to_string(l));
      TURBINE_ASSIGN_OR_RETURN(d.bqkv, upload_concat({&L.bq, &L.bk, &L.bv}, dtype_));
    }
    if (L.q_norm.present()) {
      TURBINE_ASSIGN_OR_RETURN(d.q_norm, upload_concat({&L.q_norm}, dtype_));
      TURBINE_ASSIGN_OR_RETURN(d.k_norm, upload_concat({&L.k_norm}, dtype_));
    }
    TURBINE_ASSIGN_OR_RETURN(d.wo, upload_concat({&L.wo}, dtype_));
    TURBINE_ASSIGN_OR_RETURN(d.wgu, upload_concat({&L.w_gate, &L.w_up}, dtype_));
    TURBINE_ASSIGN_OR_RETURN(d.wdown, upload_concat({&L.w_down}, dtype_));
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
  const int64_t block_bytes = cuda_kv_bytes_per_token(cfg_, dtype_) * block_size_;
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
  for (const DeviceBuffer* b : {&xb_, &att_, &h_})
    TURBINE_RETURN_IF_ERROR(check(cudaMemsetAsync(b->data(), 0x3c, b->size_bytes(), s), "tune"));
  std::vector<const void*> wqkv, wo, wgu, wdown;
  for (const LayerDev& L : layers_) {
    wqkv.push_back(L.wqkv.data());
    wo.push_back(L.wo.data());
    wgu.push_back(L.wgu.data());
    wdown.push_back(L.wdown.data());
  }
  const std::vector<const void*> lm{lm_head_ptr_};
  struct Proj {
    const char* name;
    const void* x;
    const std::vector<const void*>* ws;
    void* y;
    int n, k;
    DType out;
  };
  const Proj projs[] = {
      {"qkv", xb_.data(), &wqkv, qkv_.data(), qkv_w_, dim, dtype_},
      {"o", att_.data(), &wo, o_.data(), dim, q_dim_, dtype_},
      {"gate_up", xb_.data(), &wgu, gu_.data(), 2 * ffn, dim, dtype_},
      {"down", h_.data(), &wdown, o_.data(), dim, ffn, dtype_},
      {"lm_head", xb_.data(), &lm, logits_dev_.data(), cfg_.n_vocab, dim, DType::kF32}};
  int tuned = 0;
  float saved_us = 0.0f;  // per step of the largest bucket, against the heuristic's choice
  for (int b = 1;; b = std::min(2 * b, max_num_seqs_)) {
    for (const Proj& p : projs) {
      // The shapes a graph step of b rows sends to cuBLASLt (gemv or fused SwiGLU take the rest).
      if (gemm_->takes_gemv(dtype_, p.out, b, p.k)) continue;
      if (std::string_view(p.name) == "gate_up" && fused_swiglu_ &&
          gemm_->fused_swiglu_applies(dtype_, xb_.data(), p.ws->front(), b, p.k))
        continue;
      // The LM head's weights are one matrix: time it a few times over.
      TURBINE_ASSIGN_OR_RETURN(std::vector<float> us,
                               gemm_->tune(s, dtype_, p.x, *p.ws, p.y, b, p.n, p.k, p.out,
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

CudaBackend::~CudaBackend() {
  for (auto& [key, pool] : peer_pools_) {
    if (!pool.ipc) continue;
    cudaIpcCloseMemHandle(pool.k);
    cudaIpcCloseMemHandle(pool.v);
  }
}

engine::KvLayout CudaBackend::kv_layout() const {
  engine::KvLayout l;
  switch (dtype_) {
    case DType::kF32: l.dtype = "f32"; break;
    case DType::kF16: l.dtype = "f16"; break;
    case DType::kBF16: l.dtype = "bf16"; break;
    default: return {};
  }
  l.block_size = block_size_;
  l.n_layers = cfg_.n_layers;
  l.n_kv_heads = cfg_.n_kv_heads;
  l.head_dim = cfg_.head_dim;
  l.bytes_per_block = int64_t{2} * cfg_.n_layers * kv_chunk_bytes();
  return l;
}

Status CudaBackend::make_pool_descriptor() {
  KvPoolDescriptor d;
  boot_id_ = host_boot_id().substr(0, sizeof d.boot_id - 1);
  std::memcpy(d.boot_id, boot_id_.data(), boot_id_.size());
  d.pid = static_cast<int32_t>(getpid());
  d.device = device_;
  d.elem_bytes = static_cast<int32_t>(eb_);
  d.n_layers = cfg_.n_layers;
  d.block_size = block_size_;
  d.kv_dim = kv_dim_;
  d.n_blocks = n_blocks_;
  d.k_ptr = reinterpret_cast<uintptr_t>(k_cache_.data());
  d.v_ptr = reinterpret_cast<uintptr_t>(v_cache_.data());
  // Without IPC (e.g. a container that forbids it) peers in this process can still copy.
  d.has_ipc = cudaIpcGetMemHandle(&d.k_handle, k_cache_.data()) == cudaSuccess &&
              cudaIpcGetMemHandle(&d.v_handle, v_cache_.data()) == cudaSuccess;
  if (!d.has_ipc) cudaGetLastError();  // clear it: a later check_launch must not see it
  kv_pool_.assign(reinterpret_cast<const char*>(&d), sizeof d);
  return Status::ok();
}

Status CudaBackend::check_block_ids(std::span<const int32_t> blocks, int n_blocks,
                                    const char* what) const {
  for (int32_t b : blocks) {
    if (b < 0 || b >= n_blocks)
      return invalid_argument(std::string(what) + ": block " + std::to_string(b) + " out of range");
  }
  return Status::ok();
}

Status CudaBackend::upload_ids(std::span<const int32_t> a, std::span<const int32_t> b) {
  const size_t bytes = (a.size() + b.size()) * sizeof(int32_t);
  if (bytes > kv_ids_host_.size_bytes()) {
    kv_ids_host_ = {};
    kv_ids_dev_ = {};
    TURBINE_ASSIGN_OR_RETURN(kv_ids_host_, PinnedBuffer::allocate(bytes));
    TURBINE_ASSIGN_OR_RETURN(kv_ids_dev_, DeviceBuffer::allocate(bytes));
  }
  auto* h = kv_ids_host_.as<int32_t>();
  std::copy(a.begin(), a.end(), h);
  std::copy(b.begin(), b.end(), h + a.size());
  return check(cudaMemcpyAsync(kv_ids_dev_.data(), h, bytes, cudaMemcpyHostToDevice, stream_.get()),
               "upload KV block ids");
}

Status CudaBackend::reserve_kv_staging(size_t bytes) {
  if (bytes <= kv_stage_host_.size_bytes()) return Status::ok();
  kv_stage_host_ = {};
  kv_stage_dev_ = {};
  TURBINE_ASSIGN_OR_RETURN(kv_stage_host_, PinnedBuffer::allocate(bytes));
  TURBINE_ASSIGN_OR_RETURN(kv_stage_dev_, DeviceBuffer::allocate(bytes));
  return Status::ok();
}

// Host-staged export: pool -> packed device buffer (one kernel) -> pinned host -> `out`, in
// groups of blocks that fit kKvStagingBytes.
Status CudaBackend::read_kv_blocks(std::span<const int32_t> blocks, std::string& out) {
  TURBINE_RETURN_IF_ERROR(check_block_ids(blocks, n_blocks_, "read_kv_blocks"));
  const auto per_block = static_cast<size_t>(kv_layout().bytes_per_block);
  const size_t group = std::max<size_t>(1, kKvStagingBytes / per_block);
  size_t at = out.size();
  out.resize(at + blocks.size() * per_block);
  for (size_t i = 0; i < blocks.size(); i += group) {
    const size_t n = std::min(group, blocks.size() - i);
    TURBINE_RETURN_IF_ERROR(reserve_kv_staging(n * per_block));
    TURBINE_RETURN_IF_ERROR(upload_ids(blocks.subspan(i, n), {}));
    TURBINE_RETURN_IF_ERROR(copy_kv_blocks(stream_.get(), pool_view(kv_ids_dev_.as<int32_t>()),
                                           packed_view(kv_stage_dev_.data()), static_cast<int>(n),
                                           cfg_.n_layers, kv_chunk_bytes()));
    TURBINE_RETURN_IF_ERROR(
        check(cudaMemcpyAsync(kv_stage_host_.as<uint8_t>(), kv_stage_dev_.data(), n * per_block,
                              cudaMemcpyDeviceToHost, stream_.get()),
              "download KV blocks"));
    TURBINE_RETURN_IF_ERROR(stream_.synchronize());
    std::memcpy(out.data() + at, kv_stage_host_.as<uint8_t>(), n * per_block);
    at += n * per_block;
  }
  return Status::ok();
}

Status CudaBackend::write_kv_blocks(std::span<const int32_t> blocks, std::string_view bytes,
                                    int n_positions) {
  const auto per_block = static_cast<size_t>(kv_layout().bytes_per_block);
  if (bytes.size() != blocks.size() * per_block) {
    return invalid_argument("write_kv_blocks: " + std::to_string(bytes.size()) + " bytes for " +
                            std::to_string(blocks.size()) + " blocks of " +
                            std::to_string(per_block));
  }
  TURBINE_RETURN_IF_ERROR(check_block_ids(blocks, n_blocks_, "write_kv_blocks"));
  TURBINE_RETURN_IF_ERROR(kv_writes_.record_import(blocks, n_positions));
  const size_t group = std::max<size_t>(1, kKvStagingBytes / per_block);
  for (size_t i = 0; i < blocks.size(); i += group) {
    const size_t n = std::min(group, blocks.size() - i);
    TURBINE_RETURN_IF_ERROR(reserve_kv_staging(n * per_block));
    std::memcpy(kv_stage_host_.as<uint8_t>(), bytes.data() + i * per_block, n * per_block);
    TURBINE_RETURN_IF_ERROR(
        check(cudaMemcpyAsync(kv_stage_dev_.data(), kv_stage_host_.as<uint8_t>(), n * per_block,
                              cudaMemcpyHostToDevice, stream_.get()),
              "upload KV blocks"));
    TURBINE_RETURN_IF_ERROR(upload_ids(blocks.subspan(i, n), {}));
    TURBINE_RETURN_IF_ERROR(copy_kv_blocks(stream_.get(), packed_view(kv_stage_dev_.data()),
                                           pool_view(kv_ids_dev_.as<int32_t>()),
                                           static_cast<int>(n), cfg_.n_layers, kv_chunk_bytes()));
    TURBINE_RETURN_IF_ERROR(stream_.synchronize());
  }
  return Status::ok();
}

// Device to device: the source pool is this process's (its pointers), or another process's on
// this host (CUDA IPC, mapped once per pool and kept until the backend goes). One kernel gathers
// the source blocks and scatters them into ours; a source on another GPU is read over the peer
// link.
Status CudaBackend::copy_kv_blocks_from_pool(std::string_view descriptor,
                                             std::span<const int32_t> src_blocks,
                                             std::span<const int32_t> blocks, int n_positions) {
  KvPoolDescriptor d;
  if (descriptor.size() != sizeof d) return invalid_argument("not a CUDA KV pool descriptor");
  std::memcpy(&d, descriptor.data(), sizeof d);
  if (std::memcmp(d.magic, KvPoolDescriptor{}.magic, sizeof d.magic) != 0)
    return invalid_argument("not a CUDA KV pool descriptor");
  if (d.elem_bytes != static_cast<int32_t>(eb_) || d.n_layers != cfg_.n_layers ||
      d.block_size != block_size_ || d.kv_dim != kv_dim_)
    return invalid_argument("the peer's KV pool has another layout");
  if (src_blocks.size() != blocks.size())
    return invalid_argument("copy_kv_blocks_from_pool: block counts differ");
  TURBINE_RETURN_IF_ERROR(check_block_ids(src_blocks, d.n_blocks, "copy_kv_blocks_from_pool"));
  TURBINE_RETURN_IF_ERROR(check_block_ids(blocks, n_blocks_, "copy_kv_blocks_from_pool"));
  if (std::strncmp(d.boot_id, boot_id_.c_str(), sizeof d.boot_id) != 0)
    return Status(StatusCode::kUnavailable, "the peer's KV pool is on another host");
  auto it = peer_pools_.find(descriptor);
  if (it == peer_pools_.end()) {
    PeerPool pool;
    if (d.pid == static_cast<int32_t>(getpid())) {
      pool.k = reinterpret_cast<void*>(static_cast<uintptr_t>(d.k_ptr));
      pool.v = reinterpret_cast<void*>(static_cast<uintptr_t>(d.v_ptr));
      if (d.device != device_) {
        int can = 0;
        TURBINE_RETURN_IF_ERROR(
            check(cudaDeviceCanAccessPeer(&can, device_, d.device), "peer access query"));
        if (can == 0)
          return Status(StatusCode::kUnavailable, "no peer access to the KV pool's GPU");
        const cudaError_t e = cudaDeviceEnablePeerAccess(d.device, 0);
        if (e == cudaErrorPeerAccessAlreadyEnabled) {
          cudaGetLastError();
        } else {
          TURBINE_RETURN_IF_ERROR(check(e, "enable peer access"));
        }
      }
    } else {
      if (d.has_ipc == 0)
        return Status(StatusCode::kUnavailable, "the peer's KV pool has no CUDA IPC handle");
      Status st = check(cudaIpcOpenMemHandle(&pool.k, d.k_handle, cudaIpcMemLazyEnablePeerAccess),
                        "IPC open K");
      if (st.is_ok()) {
        st = check(cudaIpcOpenMemHandle(&pool.v, d.v_handle, cudaIpcMemLazyEnablePeerAccess),
                   "IPC open V");
        if (!st.is_ok()) cudaIpcCloseMemHandle(pool.k);
      }
      if (!st.is_ok()) {
        cudaGetLastError();
        return Status(StatusCode::kUnavailable, st.message());
      }
      pool.ipc = true;
    }
    it = peer_pools_.emplace(std::string(descriptor), pool).first;
  }
  TURBINE_RETURN_IF_ERROR(kv_writes_.record_import(blocks, n_positions));
  TURBINE_RETURN_IF_ERROR(upload_ids(src_blocks, blocks));
  const int64_t chunk = kv_chunk_bytes();
  const KvBlockView src{it->second.k, it->second.v, int64_t{d.n_blocks} * chunk, chunk,
                        kv_ids_dev_.as<int32_t>()};
  TURBINE_RETURN_IF_ERROR(copy_kv_blocks(stream_.get(), src,
                                         pool_view(kv_ids_dev_.as<int32_t>() + src_blocks.size()),
                                         static_cast<int>(blocks.size()), cfg_.n_layers, chunk));
  return stream_.synchronize();
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
  TURBINE_RETURN_IF_ERROR(check(cudaMemcpyAsync(staging_dev_.data(), h, lay.total * sizeof(int32_t),
                                                cudaMemcpyHostToDevice, s),
                                "staging upload"));
  Status st = run_layers(n_tokens, n_decode, n_prefill, max_decode_ctx, max_q_len, width, lay);
  if (st.is_ok() && n_out > 0) {
    const int32_t* dev = staging_dev_.as<int32_t>();
    st = gather_rows(s, dtype_, xg_.data(), xb_.data(), dev + lay.out_rows, n_out, cfg_.dim, pdl_);
    if (st.is_ok())
      st = gemm_->matmul(s, dtype_, xg_.data(), lm_head_ptr_, logits_dev_.data(), n_out,
                         cfg_.n_vocab, cfg_.dim, DType::kF32);
    if (st.is_ok()) st = emit_outputs(n_out);
  }
  return finish_step(chunks, logits, n_out, st);
}

Status CudaBackend::finish_step(std::span<const engine::SeqChunk> chunks,
                                std::vector<float>& logits, int n_out, Status st) {
  // The step's one synchronisation (also when nothing is read back: the staging buffer is
  // rewritten by the next step).
  const Status sync = stream_.synchronize();
  TURBINE_RETURN_IF_ERROR(st);
  TURBINE_RETURN_IF_ERROR(sync);

  kv_writes_.commit(chunks);
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
  if (tokens_out_ == nullptr)
    return check(cudaMemcpyAsync(logits_host_.as<float>(), dev_logits,
                                 static_cast<size_t>(n_out) * vocab * sizeof(float),
                                 cudaMemcpyDeviceToHost, s),
                 "logits download");
  SampleParams* hp = sample_params_host_.as<SampleParams>();
  bool bias = false;
  for (int r = 0; r < n_out; ++r) {
    const engine::RowSampling& row = rows_[static_cast<size_t>(r)];
    hp[r] = SampleParams{row.temperature, row.top_k, row.top_p, row.seed, row.step};
    // Host rows keep their logits as the model made them (the host sampler adds the bias).
    if (row.on_host || row.logit_bias.size() > static_cast<size_t>(kMaxRowLogitBias)) continue;
    for (const auto& [id, b] : row.logit_bias) {
      hp[r].bias_ids[hp[r].n_bias] = id;
      hp[r].bias_values[hp[r].n_bias++] = b;
    }
    bias = bias || hp[r].n_bias > 0;
  }
  TURBINE_RETURN_IF_ERROR(check(
      cudaMemcpyAsync(sample_params_dev_.data(), hp,
                      static_cast<size_t>(n_out) * sizeof(SampleParams), cudaMemcpyHostToDevice, s),
      "sampling parameters upload"));
  if (bias) {
    TURBINE_RETURN_IF_ERROR(add_logit_bias(s, static_cast<float*>(logits_dev_.data()), n_out,
                                           cfg_.n_vocab, sample_params_dev_.as<SampleParams>()));
  }
  TURBINE_RETURN_IF_ERROR(sample(s, DType::kF32, dev_logits, n_out, cfg_.n_vocab,
                                 sample_params_dev_.as<SampleParams>(), tokens_dev_.as<int32_t>()));
  TURBINE_RETURN_IF_ERROR(check(
      cudaMemcpyAsync(tokens_host_.as<int32_t>(), tokens_dev_.data(),
                      static_cast<size_t>(n_out) * sizeof(int32_t), cudaMemcpyDeviceToHost, s),
      "sampled tokens download"));
  size_t j = 0;
  for (int r = 0; r < n_out; ++r) {
    if (!rows_[static_cast<size_t>(r)].on_host) continue;
    TURBINE_RETURN_IF_ERROR(check(cudaMemcpyAsync(logits_host_.as<float>() + j * vocab,
                                                  dev_logits + static_cast<size_t>(r) * vocab,
                                                  vocab * sizeof(float), cudaMemcpyDeviceToHost, s),
                                  "logits download"));
    ++j;
  }
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
    if (st.is_ok())
      st = gemm_->matmul(s, dtype_, xg_.data(), lm_head_ptr_, logits_dev_.data(), b, cfg_.n_vocab,
                         cfg_.dim, DType::kF32);
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
  if (st.is_ok() && n_out > 0) st = emit_outputs(n_out);
  return finish_step(chunks, logits, n_out, st);
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

  TURBINE_RETURN_IF_ERROR(
      embedding(s, dtype_, x_.data(), embed_.data(), dev + lay.ids, n, dim, cfg_.n_vocab, pdl_));
  for (size_t l = 0; l < layers_.size(); ++l) {
    const LayerDev& L = layers_[l];
    if (l == 0) {
      TURBINE_RETURN_IF_ERROR(
          rmsnorm(s, dtype_, xb_.data(), x_.data(), L.attn_norm.data(), n, dim, eps, pdl_));
    } else {
      TURBINE_RETURN_IF_ERROR(add_rmsnorm(s, dtype_, xb_.data(), x_.data(), o_.data(),
                                          L.attn_norm.data(), n, dim, eps, pdl_));
    }
    TURBINE_RETURN_IF_ERROR(
        gemm_->matmul(s, dtype_, xb_.data(), L.wqkv.data(), qkv, n, qkv_w_, dim));
    if (L.bqkv.data() != nullptr)
      TURBINE_RETURN_IF_ERROR(add_bias(s, dtype_, qkv, L.bqkv.data(), n, qkv_w_, qkv_w_, pdl_));
    void* k = qkv + static_cast<size_t>(q_dim_) * eb_;
    if (L.q_norm.data() != nullptr) {
      TURBINE_RETURN_IF_ERROR(
          head_rmsnorm(s, dtype_, qkv, L.q_norm.data(), n, cfg_.n_heads, hd, qkv_w_, eps, pdl_));
      TURBINE_RETURN_IF_ERROR(
          head_rmsnorm(s, dtype_, k, L.k_norm.data(), n, cfg_.n_kv_heads, hd, qkv_w_, eps, pdl_));
    }
    void* kc = kv_layer(k_cache_, static_cast<int>(l));
    void* vc = kv_layer(v_cache_, static_cast<int>(l));
    // K heads follow the Q heads in a fused row: one launch rotates both and writes K and V to
    // the cache.
    TURBINE_RETURN_IF_ERROR(rope_write_kv(s, dtype_, qkv, dev + lay.pos, inv_freq_.as<float>(), n,
                                          cfg_.n_heads, cfg_.n_kv_heads, hd, qkv_w_,
                                          cfg_.rope_layout, kc, vc, dev + lay.slots, pdl_));
    PagedKv kv;
    kv.k_cache = kc;
    kv.v_cache = vc;
    kv.block_size = block_size_;
    kv.n_kv_heads = cfg_.n_kv_heads;
    kv.head_dim = hd;
    kv.max_blocks_per_seq = width;
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
      TURBINE_RETURN_IF_ERROR(paged_decode_attention(s, kv, a));
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
      TURBINE_RETURN_IF_ERROR(prefill_attention(s, kv, a));
    }
    TURBINE_RETURN_IF_ERROR(gemm_->matmul(s, dtype_, att, L.wo.data(), o_.data(), n, dim, q_dim_));
    TURBINE_RETURN_IF_ERROR(add_rmsnorm(s, dtype_, xb_.data(), x_.data(), o_.data(),
                                        L.ffn_norm.data(), n, dim, eps, pdl_));
    if (fused_swiglu_ && gemm_->fused_swiglu_applies(dtype_, xb_.data(), L.wgu.data(), n, dim)) {
      TURBINE_RETURN_IF_ERROR(
          gemm_->matmul_swiglu(s, dtype_, xb_.data(), L.wgu.data(), h_.data(), n, ffn, dim));
    } else {
      TURBINE_RETURN_IF_ERROR(
          gemm_->matmul(s, dtype_, xb_.data(), L.wgu.data(), gu_.data(), n, 2 * ffn, dim));
      auto* gu = static_cast<uint8_t*>(gu_.data());
      TURBINE_RETURN_IF_ERROR(swiglu(s, dtype_, h_.data(), gu, gu + static_cast<size_t>(ffn) * eb_,
                                     n, ffn, 2 * ffn, pdl_));
    }
    TURBINE_RETURN_IF_ERROR(
        gemm_->matmul(s, dtype_, h_.data(), L.wdown.data(), o_.data(), n, dim, ffn));
  }
  // Last residual add and the final norm (rows for the LM head are gathered from xb).
  return add_rmsnorm(s, dtype_, xb_.data(), x_.data(), o_.data(), output_norm_.data(), n, dim, eps,
                     pdl_);
}

}  // namespace

int64_t cuda_kv_bytes_per_token(const model::ModelConfig& c, DType dtype) {
  return int64_t{2} * c.n_layers * c.n_kv_heads * c.head_dim *
         static_cast<int64_t>(dtype_bytes(dtype));
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
