// HostPool: the host tier, an LRU of equal-sized blocks within a byte budget.
//
// One arena (HostMemory: pinned on CUDA) cut into slots of one block each, allocated at start-up
// so that the budget is checked once and copies never allocate. adopt() takes a block whose bytes
// a device copy already wrote into a staging slot (TierManager's, same HostMemory) and hands one of
// the pool's free slots back in exchange, so an asynchronous offload lands without a host copy.
// Each stored block keeps its checksum; get() checks it (computed while copying: one pass over the
// bytes). Not thread-safe: the TierManager's worker thread owns it.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "kvtier/tier.h"

namespace turbine::kvtier {

class HostPool {
 public:
  // budget_bytes / block_bytes slots (at least one, else an error naming the flag).
  static Result<std::unique_ptr<HostPool>> create(int64_t budget_bytes, int64_t block_bytes,
                                                  std::shared_ptr<HostMemory> memory);
  ~HostPool();
  HostPool(const HostPool&) = delete;
  HostPool& operator=(const HostPool&) = delete;

  int64_t capacity_blocks() const { return static_cast<int64_t>(n_slots_); }
  int64_t size_blocks() const { return static_cast<int64_t>(index_.size()); }
  int64_t block_bytes() const { return block_bytes_; }
  bool full() const { return free_.empty(); }
  bool contains(uint64_t hash) const { return index_.count(hash) != 0; }

  // The least recently used block (the next victim), if any.
  std::optional<uint64_t> lru() const;
  // The stored bytes of `hash` (unchecked; valid until the block is erased or replaced).
  std::span<const uint8_t> peek(uint64_t hash) const;
  // Stores a block; the pool must not be full (erase the victim first) and must not hold it.
  // `bytes` is block_bytes long.
  void put(uint64_t hash, std::span<const uint8_t> bytes);
  // Stores a block whose bytes already lie in `slot` (slot_bytes() of memory that outlives the
  // pool, not a slot in use here): the block keeps `slot`, and the pool gives up one of its free
  // slots in exchange (returned; the caller now owns it). Checksums the bytes where they lie. The
  // pool must not be full (erase the victim first) and must not hold `hash`; else nothing is
  // stored and `slot` itself is returned.
  uint8_t* adopt(uint64_t hash, uint8_t* slot);
  // Bytes between two slots' starts (block_bytes rounded up to 64).
  static size_t slot_bytes_for(int64_t block_bytes) {
    return (static_cast<size_t>(block_bytes) + 63) / 64 * 64;
  }
  // Copies the block into `dst` (block_bytes), checking its checksum on the way, and marks it
  // most recently used. kNotFound when absent; kDataLoss (block dropped, `dst` unusable) on a
  // checksum mismatch.
  Status get(uint64_t hash, std::span<uint8_t> dst);
  void touch(uint64_t hash);
  void erase(uint64_t hash);
  // Tests: flips one byte of a stored block.
  void corrupt_for_test(uint64_t hash);

 private:
  HostPool(std::shared_ptr<HostMemory> memory, uint8_t* arena, size_t n_slots, int64_t block_bytes,
           size_t slot_bytes);
  struct Entry {
    uint8_t* slot = nullptr;  // in arena_, or a staging slot taken by adopt()
    uint64_t checksum = 0;
    std::list<uint64_t>::iterator lru;
  };

  std::shared_ptr<HostMemory> memory_;
  uint8_t* arena_ = nullptr;
  size_t n_slots_ = 0;
  int64_t block_bytes_ = 0;
  size_t slot_bytes_ = 0;
  std::vector<uint8_t*> free_;  // n_slots_ - size_blocks() of them
  std::list<uint64_t> lru_;     // front = least recently used
  std::unordered_map<uint64_t, Entry> index_;
  ChecksumCopier copier_;  // put() and get() copy and checksum in one pass
};

}  // namespace turbine::kvtier
