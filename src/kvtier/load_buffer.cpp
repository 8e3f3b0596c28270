#include "kvtier/load_buffer.h"

#include <algorithm>
#include <utility>

namespace turbine::kvtier {

LoadBuffer& LoadBuffer::operator=(LoadBuffer&& o) noexcept {
  if (this == &o) return *this;
  reset();
  mem_ = std::move(o.mem_);
  size_ = std::exchange(o.size_, 0);
  capacity_ = std::exchange(o.capacity_, 0);
  pool_ = std::move(o.pool_);
  o.pool_.reset();
  return *this;
}

void LoadBuffer::reset() {
  if (mem_) {
    if (auto pool = pool_.lock()) pool->give_back(std::move(mem_), capacity_);
    mem_.reset();
  }
  size_ = 0;
  capacity_ = 0;
  pool_.reset();
}

LoadBuffer LoadBufferPool::take(size_t bytes) {
  LoadBuffer b;
  b.pool_ = weak_from_this();
  b.size_ = bytes;
  {
    std::lock_guard lock(mu_);
    auto it = free_.lower_bound(bytes);
    if (it != free_.end()) {
      b.capacity_ = it->first;
      b.mem_ = std::move(it->second);
      stats_.retained_bytes -= it->first;
      free_.erase(it);
      stats_.reuses++;
      return b;
    }
    stats_.allocations++;
  }
  // Cache-line aligned (the copies into it are wide); not initialised: the load overwrites it.
  const size_t cap = (std::max<size_t>(bytes, 1) + 63) / 64 * 64;
  b.mem_.reset(static_cast<uint8_t*>(std::aligned_alloc(64, cap)));
  b.capacity_ = b.mem_ ? cap : 0;
  if (!b.mem_) b.size_ = 0;  // out of memory: the caller sees an empty buffer
  return b;
}

void LoadBufferPool::give_back(LoadBuffer::Memory mem, size_t capacity) {
  std::lock_guard lock(mu_);
  if (capacity > retain_bytes_) return;  // freed by `mem`
  // Smaller free buffers make room for a larger one: the large loads are the costly ones.
  while (stats_.retained_bytes + capacity > retain_bytes_ && !free_.empty() &&
         free_.begin()->first < capacity) {
    stats_.retained_bytes -= free_.begin()->first;
    free_.erase(free_.begin());
  }
  if (stats_.retained_bytes + capacity > retain_bytes_) return;
  stats_.retained_bytes += capacity;
  free_.emplace(capacity, std::move(mem));
}

LoadBufferPool::Stats LoadBufferPool::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

}  // namespace turbine::kvtier
