// LoadBuffer: the bytes of one tier load, taken from a LoadBufferPool of reusable buffers, so that
// a load neither allocates nor zero-fills its result once the pool is warm (issue 24: a fresh
// zero-filled std::string per load cost most of the host tier's load time, docs/PERFORMANCE.md).
//
// A buffer goes back to its pool when it is destroyed (the engine drops the TierLoad after writing
// its bytes into the backend); a buffer that outlives its pool frees its memory itself. The pool
// keeps at most `retain_bytes` of free buffers and hands out the smallest free one that fits.
// Threads: LoadBufferPool is thread-safe (the TierManager's worker takes, the engine thread gives
// back); one LoadBuffer belongs to one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string_view>

namespace turbine::kvtier {

class LoadBufferPool;

class LoadBuffer {
 public:
  LoadBuffer() = default;
  ~LoadBuffer() { reset(); }
  LoadBuffer(LoadBuffer&& o) noexcept { *this = std::move(o); }
  LoadBuffer& operator=(LoadBuffer&& o) noexcept;
  LoadBuffer(const LoadBuffer&) = delete;
  LoadBuffer& operator=(const LoadBuffer&) = delete;

  uint8_t* data() { return mem_.get(); }
  const uint8_t* data() const { return mem_.get(); }
  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  bool empty() const { return size_ == 0; }
  std::string_view view() const { return {reinterpret_cast<const char*>(mem_.get()), size_}; }
  // Makes the visible size smaller (a load that stopped short); never larger.
  void truncate(size_t n) {
    if (n < size_) size_ = n;
  }
  // Gives the memory back to the pool (or frees it) and leaves the buffer empty.
  void reset();

 private:
  friend class LoadBufferPool;
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  using Memory = std::unique_ptr<uint8_t, Free>;
  Memory mem_;
  size_t size_ = 0;
  size_t capacity_ = 0;
  std::weak_ptr<LoadBufferPool> pool_;
};

class LoadBufferPool : public std::enable_shared_from_this<LoadBufferPool> {
 public:
  explicit LoadBufferPool(size_t retain_bytes) : retain_bytes_(retain_bytes) {}
  // A buffer of `bytes` (contents unspecified): a free one when one fits, else new memory.
  LoadBuffer take(size_t bytes);

  struct Stats {
    uint64_t allocations = 0;   // takes that allocated
    uint64_t reuses = 0;        // takes served by a free buffer
    size_t retained_bytes = 0;  // gauge: free buffers kept
  };
  Stats stats() const;

 private:
  friend class LoadBuffer;
  void give_back(LoadBuffer::Memory mem, size_t capacity);

  const size_t retain_bytes_;
  mutable std::mutex mu_;                           // guards everything below
  std::multimap<size_t, LoadBuffer::Memory> free_;  // by capacity
  Stats stats_;
};

}  // namespace turbine::kvtier
