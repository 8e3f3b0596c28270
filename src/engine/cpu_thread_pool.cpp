#include "engine/cpu_thread_pool.h"

#include <chrono>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define TURBINE_CPU_RELAX() _mm_pause()
#else
#define TURBINE_CPU_RELAX() std::this_thread::yield()
#endif

namespace turbine::engine {

CpuThreadPool::CpuThreadPool(int n_threads, int64_t spin_nanos)
    : n_threads_(n_threads < 1 ? 1 : n_threads), spin_nanos_(spin_nanos < 0 ? 0 : spin_nanos) {
  for (int t = 1; t < n_threads_; ++t) workers_.emplace_back([this, t] { worker(t); });
}

CpuThreadPool::~CpuThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true, std::memory_order_release);
  }
  cv_.notify_all();
  for (auto& w : workers_) w.join();
}

void CpuThreadPool::drain(int thread) {
  const auto& fn = *job_;
  for (;;) {
    const int task = next_task_.fetch_add(1, std::memory_order_relaxed);
    if (task >= n_tasks_) break;
    fn(task, thread);
  }
}

namespace {
constexpr uint64_t kClosed = uint64_t{1} << 31;
constexpr uint64_t kCountMask = kClosed - 1;
uint64_t generation_of(uint64_t state) {
  return state >> 32;
}
}  // namespace

void CpuThreadPool::worker(int thread) {
  using Clock = std::chrono::steady_clock;
  uint64_t seen = 0;
  for (;;) {
    // Spin for the next job, then sleep.
    const auto spin_until = Clock::now() + std::chrono::nanoseconds(spin_nanos_);
    uint64_t st = state_.load(std::memory_order_acquire);
    for (int i = 0; generation_of(st) == seen && !stop_.load(std::memory_order_relaxed); ++i) {
      TURBINE_CPU_RELAX();
      if ((i & 63) == 63 && Clock::now() > spin_until) {
        std::unique_lock<std::mutex> lock(mu_);
        ++sleepers_;
        cv_.wait(lock, [&] {
          return stop_.load(std::memory_order_relaxed) ||
                 generation_of(state_.load(std::memory_order_relaxed)) != seen;
        });
        --sleepers_;
      }
      st = state_.load(std::memory_order_acquire);
    }
    if (stop_.load(std::memory_order_acquire)) return;
    seen = generation_of(st);
    // Join the job unless it is closed (or already replaced by a newer one).
    bool joined = false;
    while (generation_of(st) == seen && (st & kClosed) == 0) {
      if (state_.compare_exchange_weak(st, st + 1, std::memory_order_acq_rel)) {
        joined = true;
        break;
      }
    }
    if (!joined) continue;
    drain(thread);
    state_.fetch_sub(1, std::memory_order_release);
  }
}

void CpuThreadPool::run(int n_tasks, const std::function<void(int, int)>& fn) {
  if (n_tasks <= 0) return;
  if (workers_.empty() || n_tasks == 1) {
    for (int t = 0; t < n_tasks; ++t) fn(t, 0);
    return;
  }
  job_ = &fn;
  n_tasks_ = n_tasks;
  next_task_.store(0, std::memory_order_relaxed);
  bool wake;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Open the next generation with nobody in it (the previous job is closed and empty).
    state_.store((generation_of(state_.load(std::memory_order_relaxed)) + 1) << 32,
                 std::memory_order_release);
    wake = sleepers_ > 0;
  }
  if (wake) cv_.notify_all();
  drain(0);
  // No task is left to hand out: close the job, then wait for those still running one.
  uint64_t st = state_.fetch_or(kClosed, std::memory_order_acq_rel) | kClosed;
  for (int i = 0; (st & kCountMask) != 0; ++i) {
    if (i < 4096)
      TURBINE_CPU_RELAX();
    else
      std::this_thread::yield();
    st = state_.load(std::memory_order_acquire);
  }
  job_ = nullptr;
}

}  // namespace turbine::engine
