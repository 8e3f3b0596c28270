#include "engine/job_pool.h"

#include <utility>

namespace turbine::engine {

JobPool::JobPool(int n_threads) {
  for (int i = 0; i < (n_threads < 1 ? 1 : n_threads); ++i)
    threads_.emplace_back([this] { worker(); });
}

JobPool::~JobPool() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void JobPool::post(std::function<void()> job) {
  {
    std::lock_guard lock(mu_);
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
}

void JobPool::worker() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !jobs_.empty(); });
      // Queued jobs still run after stop: each one answers its request.
      if (jobs_.empty()) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job();
  }
}

}  // namespace turbine::engine
