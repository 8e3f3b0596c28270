#include "tp/shm_communicator.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <string>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define TURBINE_TP_RELAX() _mm_pause()
#else
#define TURBINE_TP_RELAX() ((void)0)
#endif

namespace turbine::tp {
namespace {

// State shared by the ranks of one group.
struct GroupState {
  explicit GroupState(int n) : size(n), ptrs(static_cast<size_t>(n), nullptr) {}
  const int size;
  // A central barrier: the last rank to arrive resets `arrived` and bumps `generation`. The
  // release on `generation` (and the acq_rel chain on `arrived`) publish every rank's writes
  // before the barrier to every rank after it.
  std::atomic<uint32_t> arrived{0};
  std::atomic<uint32_t> generation{0};
  std::atomic<bool> aborted{false};
  // ptrs[r]: rank r's buffer of the current collective; written by rank r before the first
  // barrier, read by the others between the two barriers.
  std::vector<void*> ptrs;

  Status barrier() {
    if (aborted.load(std::memory_order_acquire)) return aborted_status();
    const uint32_t gen = generation.load(std::memory_order_acquire);
    if (arrived.fetch_add(1, std::memory_order_acq_rel) + 1 == static_cast<uint32_t>(size)) {
      arrived.store(0, std::memory_order_relaxed);
      generation.fetch_add(1, std::memory_order_release);
      generation.notify_all();
      return Status::ok();
    }
    // Spin a little (the other ranks are usually microseconds away), then sleep.
    for (int i = 0; i < 2000; ++i) {
      if (generation.load(std::memory_order_acquire) != gen) break;
      TURBINE_TP_RELAX();
    }
    while (generation.load(std::memory_order_acquire) == gen) generation.wait(gen);
    if (aborted.load(std::memory_order_acquire)) return aborted_status();
    return Status::ok();
  }

  void abort() {
    aborted.store(true, std::memory_order_release);
    generation.fetch_add(1, std::memory_order_release);
    generation.notify_all();
  }

  void reset() {
    arrived.store(0, std::memory_order_relaxed);
    aborted.store(false, std::memory_order_release);
  }

  static Status aborted_status() {
    return internal_error("tensor-parallel collective aborted: another rank failed");
  }
};

class ShmCommunicator final : public Communicator {
 public:
  ShmCommunicator(std::shared_ptr<GroupState> g, int rank) : g_(std::move(g)), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return g_->size; }

  Status all_reduce_sum(void* buf, size_t count, model::DType dtype, void*) override {
    if (dtype != model::DType::kF32) {
      return invalid_argument(std::string("shared-memory all_reduce_sum supports f32, not ") +
                              model::dtype_name(dtype));
    }
    if (g_->size == 1 || count == 0) return Status::ok();
    g_->ptrs[static_cast<size_t>(rank_)] = buf;
    TURBINE_RETURN_IF_ERROR(g_->barrier());
    const size_t n = static_cast<size_t>(g_->size);
    const size_t r = static_cast<size_t>(rank_);
    const size_t begin = count * r / n, end = count * (r + 1) / n;
    // Sum in rank order through a small tile so the partial sums stay in L1, then store the
    // tile into every rank's buffer.
    constexpr size_t kTile = 1024;
    float tile[kTile];
    for (size_t t0 = begin; t0 < end; t0 += kTile) {
      const size_t m = std::min(kTile, end - t0);
      const float* first = static_cast<const float*>(g_->ptrs[0]) + t0;
      std::memcpy(tile, first, m * sizeof(float));
      for (size_t k = 1; k < n; ++k) {
        const float* src = static_cast<const float*>(g_->ptrs[k]) + t0;
        for (size_t j = 0; j < m; ++j) tile[j] += src[j];
      }
      for (size_t k = 0; k < n; ++k)
        std::memcpy(static_cast<float*>(g_->ptrs[k]) + t0, tile, m * sizeof(float));
    }
    return g_->barrier();
  }

  Status all_gather(const void* send, void* recv, size_t count, model::DType dtype,
                    void*) override {
    const size_t eb = element_bytes(dtype);
    if (eb == 0) return invalid_argument("all_gather: unsupported dtype");
    if (g_->size == 1) {
      if (count > 0 && recv != send) std::memmove(recv, send, count * eb);
      return Status::ok();
    }
    g_->ptrs[static_cast<size_t>(rank_)] = const_cast<void*>(send);
    TURBINE_RETURN_IF_ERROR(g_->barrier());
    for (int k = 0; k < g_->size; ++k) {
      if (count == 0) break;
      std::memcpy(static_cast<uint8_t*>(recv) + static_cast<size_t>(k) * count * eb,
                  g_->ptrs[static_cast<size_t>(k)], count * eb);
    }
    return g_->barrier();
  }

  Status broadcast(void* buf, size_t count, model::DType dtype, int root, void*) override {
    const size_t eb = element_bytes(dtype);
    if (eb == 0) return invalid_argument("broadcast: unsupported dtype");
    if (root < 0 || root >= g_->size) return invalid_argument("broadcast: root out of range");
    if (g_->size == 1) return Status::ok();
    if (rank_ == root) g_->ptrs[static_cast<size_t>(root)] = buf;
    TURBINE_RETURN_IF_ERROR(g_->barrier());
    if (rank_ != root && count > 0)
      std::memcpy(buf, g_->ptrs[static_cast<size_t>(root)], count * eb);
    return g_->barrier();
  }

  Status barrier() override { return g_->size == 1 ? Status::ok() : g_->barrier(); }

 private:
  std::shared_ptr<GroupState> g_;
  const int rank_;
};

}  // namespace

ShmGroup make_shm_group(int size) {
  auto state = std::make_shared<GroupState>(std::max(1, size));
  ShmGroup g;
  for (int r = 0; r < state->size; ++r)
    g.comms.push_back(std::make_unique<ShmCommunicator>(state, r));
  g.abort = [state] { state->abort(); };
  g.reset = [state] { state->reset(); };
  return g;
}

}  // namespace turbine::tp
