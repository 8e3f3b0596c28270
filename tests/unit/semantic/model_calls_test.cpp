// ModelCalls: a request's model calls run concurrently up to the bound, are started only by the
// request's thread, and give up at the request's deadline without losing a late answer's memory.
// No timing assertions: concurrency is shown by calls that can only finish together (each waits
// for the others to arrive), deadlines by calls that never answer until released.
#include "semantic/model_calls.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace turbine::semantic {
namespace {

using namespace std::chrono_literals;

// Calls that answer on their own threads once `release()` (or, with `meet` > 0, once that many
// calls have arrived: they can only finish if they run at the same time).
class Gate {
 public:
  explicit Gate(int meet = 0) : meet_(meet) {}
  ~Gate() {
    release();
    for (std::thread& t : threads_) t.join();
  }
  // A call that answers `value` through `done`.
  void start(int value, ModelDone<int> done) {
    std::lock_guard<std::mutex> lock(mu_);
    ++arrived_;
    peak_ = std::max(peak_, ++running_);
    cv_.notify_all();
    threads_.emplace_back([this, value, done = std::move(done)] {
      {
        std::unique_lock<std::mutex> lock(mu_);
        // Bounded only so that a broken implementation fails instead of hanging.
        met_ = cv_.wait_for(lock, 10s, [&] {
          return released_ || (meet_ > 0 && arrived_ >= meet_);
        }) && met_;
        --running_;
      }
      done(value);
    });
  }
  void release() {
    std::lock_guard<std::mutex> lock(mu_);
    released_ = true;
    cv_.notify_all();
  }
  int peak() {
    std::lock_guard<std::mutex> lock(mu_);
    return peak_;
  }
  bool met() {
    std::lock_guard<std::mutex> lock(mu_);
    return met_;
  }
  int arrived() {
    std::lock_guard<std::mutex> lock(mu_);
    return arrived_;
  }

 private:
  const int meet_;
  std::mutex mu_;
  std::condition_variable cv_;
  int arrived_ = 0, running_ = 0, peak_ = 0;
  bool released_ = false, met_ = true;
  std::vector<std::thread> threads_;
};

TEST(ModelCalls, CallsRunTogetherUpToTheBound) {
  Gate gate(/*meet=*/3);
  ModelCalls calls(3, 60s);
  std::vector<ModelCalls::Handle<int>> h;
  for (int i = 0; i < 3; ++i) {
    h.push_back(
        calls.add<int>([&gate, i](ModelDone<int> done) { gate.start(i, std::move(done)); }));
  }
  for (int i = 0; i < 3; ++i) {
    Result<int> r = calls.get(h[static_cast<size_t>(i)]);
    ASSERT_TRUE(r.has_value()) << r.status().to_string();
    EXPECT_EQ(*r, i);
  }
  EXPECT_TRUE(gate.met()) << "the three calls did not run at the same time";
  EXPECT_EQ(calls.peak_running(), 3u);
}

TEST(ModelCalls, ABoundOfOneRunsThemOneAfterTheOther) {
  std::atomic<int> running{0}, peak{0};
  ModelCalls calls(1, 60s);
  std::vector<ModelCalls::Handle<int>> h;
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    h.push_back(calls.add<int>([&, i](ModelDone<int> done) {
      peak = std::max(peak.load(), ++running);
      threads.emplace_back([&running, i, done = std::move(done)] {
        std::this_thread::sleep_for(1ms);  // answers later, from another thread
        --running;
        done(i * 10);
      });
    }));
  }
  // Awaiting the last one starts the others in order as each finishes.
  Result<int> last = calls.get(h[3]);
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(*last, 30);
  EXPECT_EQ(*calls.get(h[0]), 0);
  EXPECT_EQ(peak.load(), 1);
  EXPECT_EQ(calls.peak_running(), 1u);
  for (std::thread& t : threads) t.join();
}

TEST(ModelCalls, InlineAnswersAndErrorsPassThrough) {
  ModelCalls calls(2, 60s);
  auto ok = calls.add<int>([](ModelDone<int> done) { done(7); });
  auto bad = calls.add<int>(
      [](ModelDone<int> done) { done(Status(StatusCode::kInvalidArgument, "wrong task")); });
  CallInfo info;
  EXPECT_EQ(*calls.get(ok, &info), 7);
  EXPECT_FALSE(info.timed_out);
  Result<int> r = calls.get(bad, &info);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(info.timed_out);
}

// A call that does not answer in time fails the wait; calls queued behind it are never started;
// its late answer lands in state the request no longer holds.
TEST(ModelCalls, TheDeadlineEndsTheWaitAndStartsNothingMore) {
  Gate gate;  // answers only when released
  bool second_started = false;
  {
    ModelCalls calls(1, 20ms);
    auto slow = calls.add<int>([&](ModelDone<int> done) { gate.start(1, std::move(done)); });
    auto queued = calls.add<int>([&](ModelDone<int> done) {
      second_started = true;
      done(2);
    });
    CallInfo info;
    Result<int> r = calls.get(slow, &info);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
    EXPECT_TRUE(info.timed_out);
    Result<int> q = calls.get(queued, &info);
    EXPECT_FALSE(q.has_value());
    EXPECT_TRUE(info.timed_out);
  }
  EXPECT_FALSE(second_started);
  gate.release();  // the slow call answers after its request is gone: nothing to crash
  EXPECT_EQ(gate.arrived(), 1);
}

}  // namespace
}  // namespace turbine::semantic
