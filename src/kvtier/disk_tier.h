// DiskTier: the disk tier, an LRU of equal-sized blocks in one preallocated file.
//
// The file (`turbine-kv-<pid>-<n>.blocks` under the configured directory) is created empty at
// start-up, sized to the budget with fallocate (so a budget the file system cannot hold is a
// start-up error, not a later ENOSPC) and deleted when the tier goes away: blocks do not outlive
// the process. Each slot is a 64-byte header (magic, block hash, checksum, payload length) and
// the block's bytes, padded to 4 KiB so that O_DIRECT reads and writes need no read-modify-write.
// I/O goes through io_uring (liburing) in batches where the kernel allows it, else
// pread/pwrite; O_DIRECT where the file system allows it (not tmpfs), else buffered. A read whose
// header or checksum does not match is reported as kDataLoss and the slot is freed.
// Not thread-safe: the TierManager's worker thread owns it.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/status.h"
#include "kvtier/tier.h"

namespace turbine::kvtier {

struct DiskTierOptions {
  std::string dir;
  int64_t budget_bytes = 0;
  int64_t block_bytes = 0;
  bool use_io_uring = true;
  bool use_direct_io = true;
};

struct DiskBlock {
  uint64_t hash = 0;
  std::span<const uint8_t> bytes;  // block_bytes
};

class DiskTier {
 public:
  // Errors name the flag: a path that cannot be created or written, a budget that holds no block,
  // a budget larger than the file system's free space.
  static Result<std::unique_ptr<DiskTier>> open(const DiskTierOptions& options);
  ~DiskTier();
  DiskTier(const DiskTier&) = delete;
  DiskTier& operator=(const DiskTier&) = delete;

  int64_t capacity_blocks() const { return static_cast<int64_t>(n_slots_); }
  int64_t size_blocks() const { return static_cast<int64_t>(index_.size()); }
  int64_t slot_bytes() const { return static_cast<int64_t>(slot_bytes_); }
  bool contains(uint64_t hash) const { return index_.count(hash) != 0; }
  bool uses_io_uring() const { return ring_ != nullptr; }
  bool direct_io() const { return direct_; }
  const std::string& file_path() const { return path_; }

  // Writes the blocks not held yet (least recently used blocks make room); a block already held
  // becomes most recently used. Returns the blocks written; a failed write is logged, counted in
  // errors() and leaves the block out.
  int store(std::span<const DiskBlock> blocks);
  // Reads the blocks into dst[i] (block_bytes each), in batches. Per block: ok, kNotFound,
  // kDataLoss (bad header or checksum: the slot is freed) or kInternal (I/O error).
  std::vector<Status> load(std::span<const uint64_t> hashes,
                           std::span<const std::span<uint8_t>> dst);
  void erase(uint64_t hash);
  // Hashes that left the tier since the last call (evicted, corrupt, failed reads), so that the
  // owner's index follows.
  std::vector<uint64_t> take_dropped() { return std::exchange(dropped_, {}); }

  uint64_t evicted() const { return evicted_; }
  uint64_t errors() const { return errors_; }
  uint64_t corrupt() const { return corrupt_; }
  // Tests: the file offset of a stored block's slot (-1: absent).
  int64_t slot_offset_for_test(uint64_t hash) const;

 private:
  DiskTier() = default;
  struct Entry {
    size_t slot = 0;
    std::list<uint64_t>::iterator lru;
  };
  struct Io {
    size_t slot = 0;
    uint8_t* buf = nullptr;
    bool write = false;
    int64_t result = 0;
  };
  // Runs the batch (each a whole slot); fills Io::result with bytes moved or -errno.
  void run_batch(std::span<Io> ios);
  size_t take_slot();  // a free slot, evicting the LRU block when none is free

  int fd_ = -1;
  std::string path_;
  bool direct_ = false;
  void* ring_ = nullptr;  // struct io_uring*, null: pread/pwrite
  size_t n_slots_ = 0;
  size_t slot_bytes_ = 0;
  int64_t block_bytes_ = 0;
  uint8_t* staging_ = nullptr;  // kBatch slots, 4 KiB aligned
  std::vector<size_t> free_;
  std::list<uint64_t> lru_;  // front = least recently used
  std::unordered_map<uint64_t, Entry> index_;
  std::vector<uint64_t> dropped_;
  uint64_t evicted_ = 0, errors_ = 0, corrupt_ = 0;
  ChecksumCopier copier_;  // writes and reads checksum the bytes as they copy them
};

}  // namespace turbine::kvtier
