// A few threads that run queued jobs in order of arrival: the engine's cold constraint compiles
// (issue 19), which must not run on the thread that called submit() (on a worker, a request-plane
// I/O thread that the connection's other requests share).
//
// Threads: post() from any thread. The destructor runs the jobs still queued, then joins; a job
// must therefore not wait for anything the destroying thread holds.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace turbine::engine {

class JobPool {
 public:
  explicit JobPool(int n_threads);
  ~JobPool();
  JobPool(const JobPool&) = delete;
  JobPool& operator=(const JobPool&) = delete;

  void post(std::function<void()> job);

 private:
  void worker();

  std::mutex mu_;  // guards jobs_ and stop_
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace turbine::engine
