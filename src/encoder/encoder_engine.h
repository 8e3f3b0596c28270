// The encoder engine: a queue of encode jobs and the one thread that owns the backend.
//
// Jobs (one tokenized input each, with the output it wants) are taken FIFO and packed into
// padding-free batches of at most max_batch_tokens tokens and max_batch_seqs sequences (a single
// job longer than the token budget runs alone). Each batch is one EncoderBackend::forward; each
// job's rows go to its callback. No KV cache, no decode: a job is done after one pass.
//
// Thread ownership: submit() / shutdown() / stats() from any thread (a short mutex guards the
// queue); the engine thread owns the backend and the batch. Callbacks run on the engine thread
// and must not block (hand the result to the caller's thread, as run() does with futures).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "common/status.h"
#include "encoder/encoder_backend.h"

namespace turbine::encoder {

struct EncoderEngineOptions {
  int max_batch_tokens = 8192;
  int max_batch_seqs = 256;
  size_t max_queue = 4096;  // pending jobs; more are refused with kResourceExhausted
  Status validate() const;
};

struct EncodeJob {
  std::vector<int32_t> ids;
  std::vector<int32_t> type_ids;  // empty: zeros
  Output output = Output::kCls;
};

// The job's rows (1 x dim for pooled outputs, n_tokens x dim for kAllTokens), or why not.
using EncodeResult = Result<std::vector<float>>;
using EncodeCallback = std::function<void(EncodeResult)>;

struct EncoderEngineStats {
  uint64_t batches = 0;
  uint64_t sequences = 0;
  uint64_t tokens = 0;
  size_t queued = 0;
};

class EncoderEngine {
 public:
  EncoderEngine(std::unique_ptr<EncoderBackend> backend, EncoderEngineOptions options);
  ~EncoderEngine();  // shutdown()
  EncoderEngine(const EncoderEngine&) = delete;
  EncoderEngine& operator=(const EncoderEngine&) = delete;

  // Queues a job; `done` is called exactly once: on the engine thread with the result, or
  // before submit() returns when the job is refused (queue full: kResourceExhausted; shut down:
  // kUnavailable).
  void submit(EncodeJob job, EncodeCallback done);
  // Submits `jobs` and waits for all of them (the calling thread blocks).
  std::vector<EncodeResult> run(std::vector<EncodeJob> jobs);
  // Stops the thread; queued jobs fail with kUnavailable. Idempotent.
  void shutdown();

  EncoderEngineStats stats() const;
  int hidden_dim() const { return hidden_dim_; }
  int max_tokens() const { return max_tokens_; }

 private:
  struct Pending {
    EncodeJob job;
    EncodeCallback done;
  };
  void loop();

  const EncoderEngineOptions options_;
  std::unique_ptr<EncoderBackend> backend_;  // engine thread only
  const int hidden_dim_;
  const int max_tokens_;
  mutable std::mutex mu_;  // guards queue_, stopping_, stats_
  std::condition_variable cv_;
  std::deque<Pending> queue_;
  bool stopping_ = false;
  EncoderEngineStats stats_;
  std::thread thread_;
};

}  // namespace turbine::encoder
