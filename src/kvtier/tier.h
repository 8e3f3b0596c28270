// KV cache tiers below the device pool (issue 24): the shared vocabulary of the module.
//
// A block is named by its chained sequence hash (kv/block_hash.h) and carries the backend's
// exported bytes of one full KV block (Backend::read_kv_blocks layout). Tiers, fastest first:
// device (the engine's kv::BlockPool, not here), host (a pinned-memory pool on CUDA, plain memory
// on the CPU backend), disk (one preallocated file of fixed slots under --kv-offload-disk-path).
// Every block carries a checksum (XXH3-64 of its bytes) that is checked whenever it is read back,
// so a corrupt block is dropped and recomputed, never used.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "common/status.h"

namespace turbine::kvtier {

// Where a block lives. The numbers travel in KV events (kv::BlockStored::storage_tier).
enum class Tier : uint8_t { kDevice = 0, kHost = 1, kDisk = 2 };
const char* tier_name(Tier t);

// The tiers' configuration (flags --kv-offload-*). All zero/empty: no tiers.
struct TierOptions {
  int64_t host_bytes = 0;  // host pool budget; 0: no host tier
  std::string disk_path;   // directory for the disk tier's file; empty: no disk tier
  int64_t disk_bytes = 0;  // disk tier budget (required with disk_path)
  // A block is written to disk only once it has been seen (offered or hit) this many times: the
  // frequency filter that spares SSDs from blocks used once. 1: every block that leaves the
  // host tier (or the device, without a host tier).
  int disk_min_hits = 2;
  // --kv-offload-all-completed: the engine offers every full block once it is computed (write
  // through), not only when the device evicts it (write back, the default); blocks a tier holds
  // already are not copied again. The host tier then holds the working set that fits it, so a
  // prompt evicted from the device finds all of its prefix below.
  bool offload_all_completed = false;
  // --kv-offload-inflight-bytes: the in-flight budget of asynchronous offload copies (device ->
  // host staging slots handed out by TierManager::reserve_staging and not yet stored by the
  // worker). Offers beyond it are dropped and counted, so an engine whose copies or tier worker
  // fall behind degrades to "no tier" instead of waiting. At least one block.
  int64_t offload_inflight_bytes = int64_t{256} << 20;
  bool use_io_uring = true;   // false, or io_uring unavailable: pread/pwrite
  bool use_direct_io = true;  // false, or O_DIRECT refused by the file system: buffered I/O

  bool enabled() const { return host_bytes > 0 || !disk_path.empty(); }
  Status validate() const;
};

// Checksum of a block's bytes (XXH3-64, seed 0x7ee5): written beside the block, checked on read.
uint64_t block_checksum(std::span<const uint8_t> bytes);

// Copies `src` into `dst` (the same size) and returns block_checksum of the bytes copied, in one
// pass over memory: each 64 KiB piece is hashed from `dst` right after its copy, while it is in
// cache (checksum, then copy, read the source from memory twice). Not thread-safe: one per owner
// thread (the TierManager's worker owns the HostPool's).
class ChecksumCopier {
 public:
  ChecksumCopier();
  ~ChecksumCopier();
  ChecksumCopier(const ChecksumCopier&) = delete;
  ChecksumCopier& operator=(const ChecksumCopier&) = delete;
  uint64_t copy(std::span<const uint8_t> src, std::span<uint8_t> dst);

 private:
  void* state_ = nullptr;  // XXH3_state_t, reused by every copy
};

// Where the host pool's memory comes from: plain page-aligned memory by default; the CUDA
// backend supplies pinned (page-locked) memory so copies to and from the device run at full
// bandwidth and asynchronously. Called at start-up only.
class HostMemory {
 public:
  virtual ~HostMemory() = default;
  // nullptr when the memory cannot be had (the tier then fails to start with a clear error).
  virtual void* allocate(size_t bytes) = 0;
  virtual void release(void* p, size_t bytes) = 0;
  virtual const char* kind() const = 0;  // "pageable", "pinned"
};
std::shared_ptr<HostMemory> pageable_host_memory();

// Bytes of memory the host can still hand out (MemAvailable), or -1 when unknown.
int64_t host_available_bytes();

// Counters of one tier (TierManager::stats); monotonic except the gauges marked.
struct TierCounters {
  uint64_t offloaded_blocks = 0;  // blocks stored into this tier
  uint64_t offloaded_bytes = 0;
  uint64_t onboarded_blocks = 0;  // blocks read back from this tier for a sequence
  uint64_t onboarded_bytes = 0;
  uint64_t lookups = 0;          // blocks looked up in this tier at admission
  uint64_t hits = 0;             // of those, found here
  uint64_t evicted_blocks = 0;   // dropped (or demoted) to make room
  uint64_t errors = 0;           // failed reads/writes (I/O error), each fell back
  uint64_t corrupt_blocks = 0;   // checksum mismatches on read: dropped, recomputed
  uint64_t filtered_blocks = 0;  // disk only: refused by the frequency filter
  double onboard_seconds = 0;    // time spent reading blocks back (sum)
  // Gauges.
  int64_t used_bytes = 0;
  int64_t capacity_bytes = 0;
  int64_t blocks = 0;
};

}  // namespace turbine::kvtier
