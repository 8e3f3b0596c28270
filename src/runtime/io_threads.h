// An io_context and the threads that run it; the request plane's event loop.
#pragma once

#include <thread>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

namespace turbine::runtime {

class IoThreads {
 public:
  explicit IoThreads(int n_threads) : work_(boost::asio::make_work_guard(io_)) {
    for (int i = 0; i < n_threads; ++i) threads_.emplace_back([this] { io_.run(); });
  }
  ~IoThreads() { stop(); }
  IoThreads(const IoThreads&) = delete;
  IoThreads& operator=(const IoThreads&) = delete;

  boost::asio::io_context& context() { return io_; }
  boost::asio::any_io_executor executor() { return io_.get_executor(); }

  // Stops the loop and joins; handlers not yet run are destroyed. Not from a loop thread.
  void stop() {
    work_.reset();
    io_.stop();
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
    threads_.clear();
  }

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::vector<std::thread> threads_;
};

}  // namespace turbine::runtime
