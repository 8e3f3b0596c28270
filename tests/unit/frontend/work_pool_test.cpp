#include "frontend/work_pool.h"

#include <chrono>
#include <future>
#include <thread>

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

namespace turbine::frontend {
namespace {

namespace asio = boost::asio;

TEST(WorkPoolTest, RunsOffTheCallersThreadAndResumesOnIt) {
  WorkPool pool(2);
  asio::io_context io;
  std::thread::id io_thread;
  std::thread::id job_thread;
  std::thread::id resumed_on;
  std::optional<Result<int>> got;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        io_thread = std::this_thread::get_id();
        got = co_await pool.run<int>([&]() -> Result<int> {
          job_thread = std::this_thread::get_id();
          return 42;
        });
        resumed_on = std::this_thread::get_id();
      },
      asio::detached);
  io.run();
  ASSERT_TRUE(got.has_value());
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(**got, 42);
  EXPECT_NE(job_thread, io_thread);
  EXPECT_EQ(resumed_on, io_thread);
}

TEST(WorkPoolTest, TheEventLoopKeepsRunningWhileAJobIsBusy) {
  WorkPool pool(1);
  asio::io_context io;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  int ticks = 0;
  bool job_done = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto r = co_await pool.run<int>([&]() -> Result<int> {
          released.wait();  // a long tokenization
          return 1;
        });
        job_done = r.has_value();
      },
      asio::detached);
  // Other work on the same loop (think /health) runs while the job blocks its pool thread.
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        asio::steady_timer t(io);
        for (int i = 0; i < 3; ++i) {
          t.expires_after(std::chrono::milliseconds(1));
          co_await t.async_wait(asio::use_awaitable);
          ++ticks;
        }
        release.set_value();
      },
      asio::detached);
  io.run();
  EXPECT_EQ(ticks, 3);
  EXPECT_TRUE(job_done);
}

TEST(WorkPoolTest, ErrorsPassThroughAndStopAnswersUnavailable) {
  WorkPool pool(1);
  asio::io_context io;
  std::optional<Result<int>> failed;
  std::optional<Result<int>> after_stop;
  bool ran_after_stop = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        failed = co_await pool.run<int>([]() -> Result<int> { return invalid_argument("bad"); });
      },
      asio::detached);
  io.run();
  ASSERT_TRUE(failed.has_value());
  EXPECT_EQ(failed->status().code(), StatusCode::kInvalidArgument);
  pool.stop();
  io.restart();
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        after_stop = co_await pool.run<int>([&]() -> Result<int> {
          ran_after_stop = true;
          return 1;
        });
      },
      asio::detached);
  io.run();
  ASSERT_TRUE(after_stop.has_value());
  EXPECT_EQ(after_stop->status().code(), StatusCode::kUnavailable);
  EXPECT_FALSE(ran_after_stop);
}

}  // namespace
}  // namespace turbine::frontend
