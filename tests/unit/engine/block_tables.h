// Fixed block tables for backend tests: "slot" s owns blocks [s * per_slot, (s + 1) * per_slot),
// which is what the old slot-based backends did.
#pragma once

#include <cstdint>
#include <numeric>
#include <span>
#include <vector>

#include "engine/backend.h"

namespace turbine::engine::testing {

class SlotTables {
 public:
  // Each slot gets a full context's worth of blocks (clamped to the backend's blocks).
  explicit SlotTables(const Backend& b)
      : per_slot_((b.max_context() + b.block_size() - 1) / b.block_size()),
        ids_(static_cast<size_t>(b.num_blocks())) {
    std::iota(ids_.begin(), ids_.end(), 0);
  }
  // Block ids of `slot`; out-of-range blocks are kept so tests can provoke range errors.
  std::span<const int32_t> operator()(int slot) {
    auto& t = tables_.emplace_back(static_cast<size_t>(per_slot_));
    std::iota(t.begin(), t.end(), slot * per_slot_);
    return t;
  }

 private:
  int per_slot_;
  std::vector<int32_t> ids_;
  std::vector<std::vector<int32_t>> tables_;
};

}  // namespace turbine::engine::testing
