// A small persistent thread pool for data-parallel kernels.
//
// Owned by one CpuBackend; only the engine thread calls run(), which blocks until every task is
// done. Workers touch only what the task function hands them.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace turbine::engine {

class CpuThreadPool {
 public:
  // `n_threads` includes the calling thread; 1 runs everything inline.
  explicit CpuThreadPool(int n_threads);
  ~CpuThreadPool();
  CpuThreadPool(const CpuThreadPool&) = delete;
  CpuThreadPool& operator=(const CpuThreadPool&) = delete;

  int size() const { return n_threads_; }
  // Calls fn(task, thread) for task in [0, n_tasks); thread in [0, size()) identifies per-thread
  // scratch. Returns when all tasks have finished.
  void run(int n_tasks, const std::function<void(int task, int thread)>& fn);

 private:
  void worker(int thread);
  void drain(int thread);

  int n_threads_;
  std::vector<std::thread> workers_;
  // Guarded by mu_: the current job, its generation and the shutdown flag.
  std::mutex mu_;
  std::condition_variable start_cv_;
  std::condition_variable done_cv_;
  const std::function<void(int, int)>* job_ = nullptr;
  int n_tasks_ = 0;
  uint64_t generation_ = 0;
  int active_workers_ = 0;
  bool stop_ = false;
  std::atomic<int> next_task_{0};
};

}  // namespace turbine::engine
