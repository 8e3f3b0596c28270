#include "semantic/model_calls.h"

#include <algorithm>

namespace turbine::semantic {

ModelCalls::ModelCalls(size_t max_parallel, std::chrono::milliseconds timeout)
    : max_parallel_(std::max<size_t>(1, max_parallel)),
      timeout_(timeout),
      state_(std::make_shared<State>()) {}

ModelCalls::~ModelCalls() {
  // Calls never started are dropped with their closures; running ones complete into state_'s
  // copies held by their completions.
  std::lock_guard<std::mutex> lock(state_->mu);
  for (State::Call& c : state_->calls) c.launch = nullptr;
  state_->next = state_->calls.size();
}

size_t ModelCalls::peak_running() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->peak;
}

size_t ModelCalls::enqueue(std::function<void()> launch) {
  std::lock_guard<std::mutex> lock(state_->mu);
  if (!state_->deadline) state_->deadline = Clock::now() + timeout_;
  state_->calls.push_back({std::move(launch), false, {}, {}});
  return state_->calls.size() - 1;
}

void ModelCalls::pump() {
  for (;;) {
    std::function<void()> launch;
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      State& s = *state_;
      if (s.running >= max_parallel_ || s.next >= s.calls.size()) return;
      if (s.deadline && Clock::now() >= *s.deadline) return;  // nobody will wait for it
      State::Call& c = s.calls[s.next++];
      launch = std::move(c.launch);
      c.start = Clock::now();
      ++s.running;
      s.peak = std::max(s.peak, s.running);
    }
    // Outside the lock: a model may answer before submit returns.
    launch();
  }
}

void ModelCalls::complete(const std::shared_ptr<State>& st, size_t index,
                          const std::function<void()>& store) {
  std::lock_guard<std::mutex> lock(st->mu);
  State::Call& c = st->calls[index];
  if (c.done) return;  // a model that answers twice: the first answer stands
  store();
  c.done = true;
  c.end = Clock::now();
  --st->running;
  st->cv.notify_all();
}

bool ModelCalls::wait(size_t index, CallInfo* info) {
  for (;;) {
    pump();
    std::unique_lock<std::mutex> lock(state_->mu);
    State& s = *state_;
    const State::Call& c = s.calls[index];
    if (c.done) {
      info->timed_out = false;
      info->seconds = std::chrono::duration<double>(c.end - c.start).count();
      return true;
    }
    const bool can_start = s.running < max_parallel_ && s.next < s.calls.size();
    if (Clock::now() >= *s.deadline) {
      info->timed_out = true;
      info->seconds = 0.0;
      return false;
    }
    if (can_start) continue;  // a slot freed since pump(): start the next call first
    // Woken by any completion (a slot to refill, or this call's answer) or the deadline.
    s.cv.wait_until(lock, *s.deadline);
  }
}

namespace {

template <typename T, typename Call>
Result<T> run_blocking(Call&& call) {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<Result<T>> out;
  call([&](Result<T> r) {
    std::lock_guard<std::mutex> lock(mu);
    if (!out) out = std::move(r);
    cv.notify_all();
  });
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return out.has_value(); });
  return std::move(*out);
}

}  // namespace

Result<std::vector<std::vector<float>>> embed_blocking(Embedder& model,
                                                       std::vector<std::string> texts) {
  return run_blocking<std::vector<std::vector<float>>>(
      [&](ModelDone<std::vector<std::vector<float>>> done) {
        model.embed(std::move(texts), std::move(done));
      });
}

Result<std::vector<std::vector<LabelScore>>> classify_blocking(SequenceClassifier& model,
                                                               std::vector<std::string> texts) {
  return run_blocking<std::vector<std::vector<LabelScore>>>(
      [&](ModelDone<std::vector<std::vector<LabelScore>>> done) {
        model.classify(std::move(texts), std::move(done));
      });
}

Result<std::vector<std::vector<Entity>>> classify_blocking(TokenClassifier& model,
                                                           std::vector<std::string> texts) {
  return run_blocking<std::vector<std::vector<Entity>>>(
      [&](ModelDone<std::vector<std::vector<Entity>>> done) {
        model.classify(std::move(texts), std::move(done));
      });
}

}  // namespace turbine::semantic
