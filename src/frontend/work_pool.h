// A small pool of threads for the CPU work of a request that must not run on an I/O thread:
// parsing large bodies, chat templates, tokenization (issue 18 item 11). While a 10 MB prompt is
// tokenized the event loop keeps answering /health and writing other streams.
//
// `co_await pool.run(fn)` runs fn() on a pool thread and resumes the calling coroutine on its own
// executor (the connection's strand) with fn's result.
//
// Threads: the pool owns `n_threads` threads. run() may be called from any coroutine. stop()
// (and the destructor) waits for the job that is running; queued jobs and later run() calls skip
// their work and resume their coroutines with kUnavailable. Call stop() while the executors of
// waiting coroutines still run (before the HTTP server stops).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "common/status.h"

namespace turbine::frontend {

class WorkPool {
 public:
  explicit WorkPool(int n_threads) : pool_(static_cast<size_t>(n_threads < 1 ? 1 : n_threads)) {}
  ~WorkPool() { stop(); }
  WorkPool(const WorkPool&) = delete;
  WorkPool& operator=(const WorkPool&) = delete;

  void stop() {
    {
      std::lock_guard lock(mu_);
      stopped_ = true;
    }
    pool_.join();  // runs what was posted before (those jobs see stopped_ and skip fn)
  }

  // fn() -> Result<T>, run on a pool thread. After stop(): kUnavailable, fn not run.
  template <typename T, typename Fn>
  boost::asio::awaitable<Result<T>> run(Fn fn) {
    std::optional<Result<T>> result;
    co_await boost::asio::async_initiate<decltype(boost::asio::use_awaitable), void()>(
        [this, &fn, &result](auto handler) {
          std::lock_guard lock(mu_);  // a post never races stop()'s join
          if (stopped_) {
            result.emplace(Status(StatusCode::kUnavailable, "the server is shutting down"));
            auto ex = boost::asio::get_associated_executor(handler);
            boost::asio::post(ex, std::move(handler));
            return;
          }
          // The job owns the coroutine's handler and always hands it back to the coroutine's
          // executor, which resumes the coroutine there.
          boost::asio::post(pool_, [this, &fn, &result, h = std::move(handler)]() mutable {
            if (stopped_) {
              result.emplace(Status(StatusCode::kUnavailable, "the server is shutting down"));
            } else {
              result.emplace(fn());
            }
            auto ex = boost::asio::get_associated_executor(h);
            boost::asio::post(ex, std::move(h));
          });
        },
        boost::asio::use_awaitable);
    co_return std::move(*result);
  }

 private:
  boost::asio::thread_pool pool_;
  std::mutex mu_;  // orders posts before stop()'s join
  std::atomic<bool> stopped_{false};
};

}  // namespace turbine::frontend
