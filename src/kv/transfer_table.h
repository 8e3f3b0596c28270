// TransferTable: the KV blocks of prefill-only results, pinned under a transfer id until the
// decode side releases them or their TTL passes (disaggregated serving, engine/kv_transfer.h).
// Used by engine::Engine (the mock engine is one too). Owned and used by one thread (the engine's).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "kv/block_pool.h"

namespace turbine::kv {

class TransferTable {
 public:
  using Clock = std::chrono::steady_clock;

  // Pins `blocks` until release() or `expires`; returns the new transfer id (unique, from 1).
  uint64_t pin(std::vector<BlockRef> blocks, Clock::time_point expires);
  // Ids of blocks [first, first + n) of a pinned transfer: NotFound when it is not held (released,
  // expired, never pinned), InvalidArgument for a range outside it.
  Result<std::vector<int32_t>> block_ids(uint64_t transfer_id, int first, int n) const;
  void release(uint64_t transfer_id);  // unknown ids are ignored
  // Frees every transfer whose TTL passed; returns how many.
  int expire(Clock::time_point now);
  std::optional<Clock::time_point> next_expiry() const;
  void clear();

  bool empty() const { return pinned_.empty(); }
  int size() const { return static_cast<int>(pinned_.size()); }
  int pinned_blocks() const { return pinned_blocks_; }

 private:
  struct Pinned {
    std::vector<BlockRef> blocks;
    Clock::time_point expires;
  };
  void erase(std::unordered_map<uint64_t, Pinned>::iterator it);

  std::unordered_map<uint64_t, Pinned> pinned_;
  uint64_t next_id_ = 1;
  int pinned_blocks_ = 0;  // sum of blocks.size(), kept so that stats need no walk
};

}  // namespace turbine::kv
