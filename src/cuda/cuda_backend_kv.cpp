// CudaBackend's KV export and import (disaggregated serving, issue 8): see cuda_backend_impl.h.
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <string>
#include <type_traits>

#include "cuda/cuda_backend_impl.h"

namespace turbine::cuda {
namespace {

using model::DType;

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
// Tier onboarding's pinned staging: one piece of a load (larger loads wait for each piece).
constexpr size_t kKvOnboardStagingBytes = size_t{256} << 20;

// The KV host tier's memory: page-locked, allocated once at start-up (cudaHostAlloc fails
// cleanly when the host cannot pin that much; the tier then refuses to start with that error).
class PinnedHostMemory final : public kvtier::HostMemory {
 public:
  void* allocate(size_t bytes) override {
    void* p = nullptr;
    if (cudaHostAlloc(&p, bytes, cudaHostAllocPortable) != cudaSuccess) {
      (void)cudaGetLastError();  // clear the sticky-free error state of this call
      return nullptr;
    }
    return p;
  }
  void release(void* p, size_t) override {
    if (p != nullptr) cudaFreeHost(p);
  }
  const char* kind() const override { return "pinned"; }
};

}  // namespace

std::shared_ptr<kvtier::HostMemory> CudaBackend::host_memory() const {
  return std::make_shared<PinnedHostMemory>();
}

CudaBackend::~CudaBackend() {
  if (kv_copy_stream_.get() != nullptr) {
    // The engine waits for its offloads; a backend torn down without one must not free the pool
    // (or let the staging slots go) under a copy.
    (void)cudaStreamSynchronize(kv_copy_stream_.get());
    for (const KvCopy& c : kv_copies_) kv_copy_events_.push_back(c.done);
    for (cudaEvent_t e : kv_copy_events_) (void)cudaEventDestroy(e);
    if (kv_compute_ready_ != nullptr) (void)cudaEventDestroy(kv_compute_ready_);
    if (kv_onboard_done_ != nullptr) (void)cudaEventDestroy(kv_onboard_done_);
  }
  for (auto& [key, pool] : peer_pools_) {
    if (!pool.ipc) continue;
    cudaIpcCloseMemHandle(pool.k);
    cudaIpcCloseMemHandle(pool.v);
  }
}

engine::KvLayout CudaBackend::kv_layout() const {
  engine::KvLayout l;
  switch (fp8_kv_ ? DType::kF8E4M3 : dtype_) {
    case DType::kF8E4M3: l.dtype = "fp8"; break;
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
  d.elem_bytes = static_cast<int32_t>(kv_eb_);
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

Status CudaBackend::check_kv_write(std::span<const int32_t> blocks, std::string_view bytes) const {
  const auto per_block = static_cast<size_t>(kv_layout().bytes_per_block);
  if (bytes.size() != blocks.size() * per_block) {
    return invalid_argument("write_kv_blocks: " + std::to_string(bytes.size()) + " bytes for " +
                            std::to_string(blocks.size()) + " blocks of " +
                            std::to_string(per_block));
  }
  return check_block_ids(blocks, n_blocks_, "write_kv_blocks");
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

Result<uint64_t> CudaBackend::read_kv_blocks_async(std::span<const int32_t> blocks,
                                                   std::span<uint8_t* const> dst) {
  TURBINE_RETURN_IF_ERROR(check_block_ids(blocks, n_blocks_, "read_kv_blocks_async"));
  if (dst.size() != blocks.size())
    return invalid_argument("read_kv_blocks_async: one destination per block");
  if (blocks.empty()) return uint64_t{0};
  TURBINE_RETURN_IF_ERROR(ensure_kv_copy_stream());
  cudaEvent_t done = nullptr;
  if (!kv_copy_events_.empty()) {
    done = kv_copy_events_.back();
    kv_copy_events_.pop_back();
  } else {
    TURBINE_RETURN_IF_ERROR(
        check(cudaEventCreateWithFlags(&done, cudaEventDisableTiming), "KV offload event"));
  }
  const cudaStream_t copy = kv_copy_stream_.get();
  // The copies read what every step enqueued so far has written (the evicted blocks were
  // computed on stream_).
  Status st = check(cudaEventRecord(kv_compute_ready_, stream_.get()), "KV offload event");
  if (st.is_ok())
    st = check(cudaStreamWaitEvent(copy, kv_compute_ready_, 0), "KV offload stream wait");
  // Pool chunk (layer l, block b) of K sits at k + l * n_blocks * chunk + b * chunk; the packed
  // block (engine::KvLayout) holds per layer K then V: one pitched copy per block for K (rows =
  // layers, source pitch = a layer of the pool, destination pitch = 2 chunks) and one for V.
  const auto chunk = static_cast<size_t>(kv_chunk_bytes());
  const size_t layer_stride = static_cast<size_t>(n_blocks_) * chunk;
  const auto* k = static_cast<const uint8_t*>(k_cache_.data());
  const auto* v = static_cast<const uint8_t*>(v_cache_.data());
  // A pitch must stay below cudaDeviceProp::memPitch (2^31 - 1 on current GPUs): a pool whose
  // layer is larger (a large KV cache over few layers) is copied chunk by chunk instead.
  const bool pitched = layer_stride < (size_t{1} << 31) - 1;
  const auto n_layers = static_cast<size_t>(cfg_.n_layers);
  for (size_t i = 0; i < blocks.size() && st.is_ok(); ++i) {
    const size_t at = static_cast<size_t>(blocks[i]) * chunk;
    if (pitched) {
      st = check(cudaMemcpy2DAsync(dst[i], 2 * chunk, k + at, layer_stride, chunk, n_layers,
                                   cudaMemcpyDeviceToHost, copy),
                 "offload KV blocks");
      if (st.is_ok()) {
        st = check(cudaMemcpy2DAsync(dst[i] + chunk, 2 * chunk, v + at, layer_stride, chunk,
                                     n_layers, cudaMemcpyDeviceToHost, copy),
                   "offload KV blocks");
      }
      continue;
    }
    for (size_t l = 0; l < n_layers && st.is_ok(); ++l) {
      st = check(cudaMemcpyAsync(dst[i] + 2 * l * chunk, k + l * layer_stride + at, chunk,
                                 cudaMemcpyDeviceToHost, copy),
                 "offload KV blocks");
      if (st.is_ok()) {
        st = check(cudaMemcpyAsync(dst[i] + (2 * l + 1) * chunk, v + l * layer_stride + at, chunk,
                                   cudaMemcpyDeviceToHost, copy),
                   "offload KV blocks");
      }
    }
  }
  if (st.is_ok()) st = check(cudaEventRecord(done, copy), "KV offload event");
  // This step's kernels reuse the evicted blocks' slots: they start after the copy has read
  // them (a wait on the device; the engine thread goes on).
  if (st.is_ok())
    st = check(cudaStreamWaitEvent(stream_.get(), done, 0), "KV offload compute wait");
  if (!st.is_ok()) {
    // Whatever was enqueued must be over before the caller hands `dst` back or the step writes.
    (void)cudaStreamSynchronize(copy);
    (void)cudaGetLastError();
    kv_copy_events_.push_back(done);
    return st;
  }
  const uint64_t ticket = next_kv_copy_++;
  kv_copies_.push_back({ticket, done});
  return ticket;
}

Status CudaBackend::ensure_kv_copy_stream() {
  // The stream and events belong to this backend's device, whatever thread calls first.
  TURBINE_RETURN_IF_ERROR(check(cudaSetDevice(device_), "set device"));
  if (kv_copy_stream_.get() != nullptr) return Status::ok();
  TURBINE_ASSIGN_OR_RETURN(kv_copy_stream_, Stream::create());
  return check(cudaEventCreateWithFlags(&kv_compute_ready_, cudaEventDisableTiming),
               "KV offload event");
}

Status CudaBackend::write_kv_blocks_async(std::span<const int32_t> blocks, std::string_view bytes,
                                          int n_positions) {
  const auto per_block = static_cast<size_t>(kv_layout().bytes_per_block);
  TURBINE_RETURN_IF_ERROR(check_kv_write(blocks, bytes));
  if (blocks.empty()) return Status::ok();
  const auto chunk = static_cast<size_t>(kv_chunk_bytes());
  const size_t layer_stride = static_cast<size_t>(n_blocks_) * chunk;
  if (layer_stride >= (size_t{1} << 31) - 1) {
    return write_kv_blocks(blocks, bytes, n_positions);  // beyond a copy pitch: the staged path
  }
  TURBINE_RETURN_IF_ERROR(ensure_kv_copy_stream());
  if (kv_onboard_done_ == nullptr) {
    TURBINE_RETURN_IF_ERROR(check(
        cudaEventCreateWithFlags(&kv_onboard_done_, cudaEventDisableTiming), "KV onboard event"));
  }
  const size_t piece = std::max<size_t>(1, kKvOnboardStagingBytes / per_block);
  const size_t want = std::min(piece, blocks.size()) * per_block;
  const cudaStream_t copy = kv_copy_stream_.get();
  if (kv_onboard_pending_) {
    // The previous upload may still read the staging.
    TURBINE_RETURN_IF_ERROR(check(cudaEventSynchronize(kv_onboard_done_), "KV onboard wait"));
    kv_onboard_pending_ = false;
  }
  if (kv_onboard_stage_.size_bytes() < want) {
    // Doubling (up to one piece): pinning is slow and freeing pinned memory synchronises.
    const size_t grown = std::min(std::max(want, 2 * kv_onboard_stage_.size_bytes()),
                                  std::max(want, piece * per_block));
    kv_onboard_stage_ = {};
    TURBINE_ASSIGN_OR_RETURN(kv_onboard_stage_, PinnedBuffer::allocate(grown));
  }
  TURBINE_RETURN_IF_ERROR(kv_writes_.record_import(blocks, n_positions));
  // After every step so far (the blocks' earlier users), and after the offloads on this stream.
  Status st = check(cudaEventRecord(kv_compute_ready_, stream_.get()), "KV onboard event");
  if (st.is_ok())
    st = check(cudaStreamWaitEvent(copy, kv_compute_ready_, 0), "KV onboard stream wait");
  auto* k = static_cast<uint8_t*>(k_cache_.data());
  auto* v = static_cast<uint8_t*>(v_cache_.data());
  auto* stage = kv_onboard_stage_.as<uint8_t>();
  const auto n_layers = static_cast<size_t>(cfg_.n_layers);
  for (size_t i = 0; i < blocks.size() && st.is_ok(); i += piece) {
    const size_t n = std::min(piece, blocks.size() - i);
    if (kv_onboard_pending_) {
      st = check(cudaEventSynchronize(kv_onboard_done_), "KV onboard wait");
      if (!st.is_ok()) break;
    }
    std::memcpy(stage, bytes.data() + i * per_block, n * per_block);
    // Packed block (per layer K then V) -> pool chunks: one pitched copy for K, one for V.
    for (size_t j = 0; j < n && st.is_ok(); ++j) {
      const size_t at = static_cast<size_t>(blocks[i + j]) * chunk;
      const uint8_t* src = stage + j * per_block;
      st = check(cudaMemcpy2DAsync(k + at, layer_stride, src, 2 * chunk, chunk, n_layers,
                                   cudaMemcpyHostToDevice, copy),
                 "onboard KV blocks");
      if (st.is_ok()) {
        st = check(cudaMemcpy2DAsync(v + at, layer_stride, src + chunk, 2 * chunk, chunk, n_layers,
                                     cudaMemcpyHostToDevice, copy),
                   "onboard KV blocks");
      }
    }
    if (st.is_ok()) st = check(cudaEventRecord(kv_onboard_done_, copy), "KV onboard event");
    kv_onboard_pending_ = st.is_ok();
  }
  // The next step reads the blocks: its kernels start after the upload (on the device).
  if (st.is_ok())
    st = check(cudaStreamWaitEvent(stream_.get(), kv_onboard_done_, 0), "KV onboard wait");
  if (!st.is_ok()) {
    (void)cudaStreamSynchronize(copy);  // nothing may still read the staging or write the pool
    (void)cudaGetLastError();
    kv_onboard_pending_ = false;
  }
  return st;
}

Status CudaBackend::finish_kv_copy(std::deque<KvCopy>::iterator it, cudaError_t e) {
  kv_copy_events_.push_back(it->done);
  kv_copies_.erase(it);
  return check(e, "offload KV blocks");
}

std::optional<Status> CudaBackend::poll_kv_copy(uint64_t ticket) {
  if (ticket == 0) return Status::ok();
  for (auto it = kv_copies_.begin(); it != kv_copies_.end(); ++it) {
    if (it->ticket != ticket) continue;
    const cudaError_t e = cudaEventQuery(it->done);
    if (e == cudaErrorNotReady) {
      // Not an error; should the runtime have recorded it, keep it from a later check_launch.
      if (cudaPeekAtLastError() == cudaErrorNotReady) (void)cudaGetLastError();
      return std::nullopt;
    }
    return finish_kv_copy(it, e);
  }
  return not_found("unknown KV copy");
}

Status CudaBackend::wait_kv_copy(uint64_t ticket) {
  if (ticket == 0) return Status::ok();
  for (auto it = kv_copies_.begin(); it != kv_copies_.end(); ++it) {
    if (it->ticket == ticket) return finish_kv_copy(it, cudaEventSynchronize(it->done));
  }
  return not_found("unknown KV copy");
}

Status CudaBackend::write_kv_blocks(std::span<const int32_t> blocks, std::string_view bytes,
                                    int n_positions) {
  const auto per_block = static_cast<size_t>(kv_layout().bytes_per_block);
  TURBINE_RETURN_IF_ERROR(check_kv_write(blocks, bytes));
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
  if (d.elem_bytes != static_cast<int32_t>(kv_eb_) || d.n_layers != cfg_.n_layers ||
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

}  // namespace turbine::cuda
