// ModelCalls: the model calls of one request (issue 21), run concurrently, bounded in number and
// in time.
//
// The stage adds the calls a request may need (models.h: each call one batch for one model);
// at most `max_parallel` run at once, the others wait in the order they were added and are
// started as earlier ones finish. Every call is started by the request's own thread, in add() or
// while get() waits, never from a model's completion: a local model answers on its engine thread,
// which must not tokenize another model's input. The request waits at most `timeout` from its
// first call for all of them together; a call still running (or not started) then counts as
// failed, and calls not yet started are never started.
//
// Threads: add() and get() on the request's thread only; completions arrive on any thread. A
// call that answers after the request gave up completes into shared state that outlives this
// object (and its result is dropped).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "semantic/models.h"

namespace turbine::semantic {

// How one call went, for the stage's metrics.
struct CallInfo {
  bool timed_out = false;  // the request's time ran out before it answered
  double seconds = 0.0;    // from its start to its answer (0 when it never answered)
};

class ModelCalls {
 public:
  using Clock = std::chrono::steady_clock;

  ModelCalls(size_t max_parallel, std::chrono::milliseconds timeout);
  ~ModelCalls();
  ModelCalls(const ModelCalls&) = delete;
  ModelCalls& operator=(const ModelCalls&) = delete;

  template <typename T>
  struct Handle {
    size_t index = 0;
    std::shared_ptr<std::optional<Result<T>>> value;  // written once, under the state's mutex
  };

  // Queues a call and starts what the bound allows. `submit` starts the model call and hands it
  // the completion, which it (or the model) calls exactly once.
  template <typename T>
  Handle<T> add(std::function<void(ModelDone<T>)> submit);

  // Waits for the call (starting queued calls as slots free up) until the request's deadline.
  // A call that did not answer in time: kUnavailable ("timed out"), info->timed_out set.
  template <typename T>
  Result<T> get(const Handle<T>& handle, CallInfo* info = nullptr);

  size_t max_parallel() const { return max_parallel_; }
  // The most calls that ran at once so far (tests, the bench).
  size_t peak_running() const;

 private:
  struct State {
    std::mutex mu;  // guards everything below
    std::condition_variable cv;
    struct Call {
      std::function<void()> launch;  // moved out when started
      bool done = false;
      Clock::time_point start, end;
    };
    std::vector<Call> calls;
    size_t running = 0;
    size_t next = 0;  // the first call not started
    size_t peak = 0;
    std::optional<Clock::time_point> deadline;  // set by the first add()
  };

  size_t enqueue(std::function<void()> launch);
  // Starts queued calls while the bound and the deadline allow.
  void pump();
  // Waits for call `index`; false when the deadline passed first.
  bool wait(size_t index, CallInfo* info);
  // The completion of call `index`: `store` writes its result under the mutex.
  static void complete(const std::shared_ptr<State>& state, size_t index,
                       const std::function<void()>& store);

  const size_t max_parallel_;
  const std::chrono::milliseconds timeout_;
  std::shared_ptr<State> state_;
};

template <typename T>
ModelCalls::Handle<T> ModelCalls::add(std::function<void(ModelDone<T>)> submit) {
  Handle<T> h;
  h.value = std::make_shared<std::optional<Result<T>>>();
  // The index is known only once queued: the launch reads it from a shared cell.
  auto index = std::make_shared<size_t>(0);
  std::weak_ptr<State> weak = state_;
  h.index = enqueue([weak, index, value = h.value, submit = std::move(submit)] {
    std::shared_ptr<State> st = weak.lock();
    if (!st) return;
    const size_t i = *index;
    submit([st, i, value](Result<T> r) { complete(st, i, [&] { *value = std::move(r); }); });
  });
  *index = h.index;
  pump();
  return h;
}

template <typename T>
Result<T> ModelCalls::get(const Handle<T>& h, CallInfo* info) {
  CallInfo local;
  CallInfo& out = info ? *info : local;
  if (!wait(h.index, &out)) {
    return Status(StatusCode::kUnavailable,
                  "no answer within " + std::to_string(timeout_.count()) + " ms");
  }
  std::lock_guard<std::mutex> lock(state_->mu);
  if (!h.value->has_value()) return internal_error("model call answered twice or not at all");
  Result<T> r = std::move(**h.value);
  h.value->reset();
  return r;
}

}  // namespace turbine::semantic
