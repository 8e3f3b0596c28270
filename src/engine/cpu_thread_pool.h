// A small persistent thread pool for data-parallel kernels.
//
// Owned by one CpuBackend; only the engine thread calls run(), which blocks until every task is
// done. Workers touch only what the task function hands them.
//
// One forward pass calls run() about ten times per layer, microseconds apart, so waking workers
// through a condition variable each time would cost more than small kernels take. Workers
// therefore spin (with a pause instruction) for a short while after each job and only then
// sleep on the condition variable; the caller spins for the workers that joined to finish.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace turbine::engine {

class CpuThreadPool {
 public:
  // `n_threads` includes the calling thread; 1 runs everything inline. `spin_nanos`: how long an
  // idle worker spins before it sleeps (kSpinNanos suits kernels microseconds apart; a pool used
  // once per step, like the structured-output mask pool, passes 0 so its idle workers never take
  // a core from the forward pass).
  explicit CpuThreadPool(int n_threads, int64_t spin_nanos = kSpinNanos);
  ~CpuThreadPool();
  CpuThreadPool(const CpuThreadPool&) = delete;
  CpuThreadPool& operator=(const CpuThreadPool&) = delete;

  int size() const { return n_threads_; }
  // Calls fn(task, thread) for task in [0, n_tasks); thread in [0, size()) identifies per-thread
  // scratch. Returns when all tasks have finished.
  void run(int n_tasks, const std::function<void(int task, int thread)>& fn);

  // How long an idle worker spins before it sleeps, by default.
  static constexpr int64_t kSpinNanos = 200'000;

 private:
  void worker(int thread);
  void drain(int thread);

  int n_threads_;
  int64_t spin_nanos_;
  std::vector<std::thread> workers_;
  // The current job: written by run() before the generation in state_ is bumped (release), read
  // by workers after they joined it (acquire).
  const std::function<void(int, int)>* job_ = nullptr;
  int n_tasks_ = 0;
  std::atomic<int> next_task_{0};
  // generation << 32 | closed bit << 31 | workers in the job. A worker joins a job (count + 1)
  // only while it is open; run() closes it once its own draining found no task left and waits
  // only for the workers that joined. A worker that is descheduled or asleep therefore never
  // holds up a job it did not join: the caller simply ran the tasks itself.
  std::atomic<uint64_t> state_{0};
  std::atomic<bool> stop_{false};
  // Sleeping workers wait on cv_; mu_ guards the sleep/wake hand-over (the generation is bumped
  // and sleepers_ read under it, so no wake-up is lost).
  std::mutex mu_;
  std::condition_variable cv_;
  int sleepers_ = 0;
};

}  // namespace turbine::engine
