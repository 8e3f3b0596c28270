// Engine v0: an asynchronous token-in/token-out generator owned by one engine thread.
//
// Threads: submit() and cancel() may be called from any thread; they post to the engine
// thread's inbox. The engine thread alone owns the running sequences, the backend and its KV
// slots. Output callbacks run ON THE ENGINE THREAD and must not block: they hand the output to
// the caller's own executor (the frontend posts it to the connection's strand).
//
// Scheduling: continuous batching. Each step takes every running sequence: a decode token for
// sequences past their prompt, and a chunk of prompt (chunked prefill) for the others, within
// `max_num_batched_tokens`. Waiting requests are admitted FIFO when a slot is free. Paged KV and
// prefix caching come with the engine-core issue; slots here are whole-sequence KV caches.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_set>
#include <vector>

#include "common/status.h"
#include "engine/backend.h"
#include "engine/sampling.h"

namespace turbine::engine {

enum class FinishReason { kNone, kStop, kLength, kCancelled, kError };
const char* finish_reason_name(FinishReason reason);  // "stop", "length", "cancelled", "error"

struct EngineOutput {
  std::vector<SampledToken> tokens;  // new tokens since the last output (usually one)
  FinishReason finish = FinishReason::kNone;
  Status error;  // set when finish == kError
  int prompt_tokens = 0;
  int completion_tokens = 0;  // total so far
};

using OutputCallback = std::function<void(EngineOutput&&)>;

struct EngineRequest {
  uint64_t id = 0;  // unique among live requests
  std::vector<int32_t> prompt;
  SamplingParams params;
  OutputCallback on_output;
};

struct EngineOptions {
  int max_num_batched_tokens = 2048;  // tokens in one forward step
  int max_waiting = 1024;             // queued requests before submit() refuses (429)
  std::vector<int32_t> eos_token_ids;

  Status validate() const;
};

struct EngineStats {
  int running = 0;
  int waiting = 0;
  uint64_t steps = 0;
  uint64_t cancelled = 0;
  uint64_t prompt_tokens = 0;
  uint64_t generated_tokens = 0;
};

class Engine {
 public:
  Engine(std::unique_ptr<Backend> backend, int32_t n_vocab, EngineOptions options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Checks the request (prompt fits the context, parameters valid) and queues it. On success the
  // callback will be called at least once, the last time with finish != kNone.
  Status submit(EngineRequest request);
  // Stops a request; its callback gets a final output with FinishReason::kCancelled (unless it
  // already finished). Unknown ids are ignored.
  void cancel(uint64_t id);
  // Finishes the engine thread; requests still running are cancelled.
  void shutdown();

  EngineStats stats() const;
  int max_context() const { return max_context_; }
  int num_slots() const { return n_slots_; }

 private:
  struct Sequence;
  void loop();
  void admit();
  bool step();
  void finish(Sequence& seq, FinishReason reason, Status error = Status::ok());

  std::unique_ptr<Backend> backend_;
  const int32_t n_vocab_;
  const EngineOptions options_;
  const int max_context_;
  const int n_slots_;

  // Inbox, guarded by mu_: written by any thread, drained by the engine thread.
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<EngineRequest> inbox_;
  std::unordered_set<uint64_t> cancels_;
  bool stopping_ = false;

  // Engine-thread state.
  std::deque<std::unique_ptr<Sequence>> waiting_;
  std::vector<std::unique_ptr<Sequence>> running_;
  std::vector<int> free_slots_;

  // Published by the engine thread for stats()/metrics.
  std::atomic<int> n_running_{0};
  std::atomic<int> n_waiting_{0};
  std::atomic<uint64_t> n_steps_{0};
  std::atomic<uint64_t> n_cancelled_{0};
  std::atomic<uint64_t> n_prompt_tokens_{0};
  std::atomic<uint64_t> n_generated_tokens_{0};

  std::thread thread_;
};

}  // namespace turbine::engine
