// OpTimer: GPU time per op kind of a stream's work, measured with CUDA event pairs (issue 27's
// encoder profile; any CUDA path can use it).
//
// The owner names its op kinds once (kind()), then brackets each enqueued op with begin()/end()
// on the stream, and after the stream's synchronisation calls collect(), which reads every
// pair's elapsed time and adds it to its kind; add_wall() records the host wall time of the work
// the pairs belong to (a forward pass), so that GPU-busy time (the sum over kinds) can be set
// against it and host gaps show. Events come from a pool that grows to the largest pass and is
// reused. Recording events costs a little GPU time itself; a caller that does not profile holds
// no OpTimer at all (zero cost: a null pointer check).
//
// Thread ownership: one thread records (begin/end/collect/add_wall: the encoder engine thread);
// rows()/reset() may be called from another thread; a mutex guards the totals.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace turbine::cuda {

class OpTimer {
 public:
  OpTimer() = default;
  ~OpTimer();
  OpTimer(const OpTimer&) = delete;
  OpTimer& operator=(const OpTimer&) = delete;

  // The index of the kind called `name` (added on first use). `gemm`: rows report TFLOP/s from
  // the flops given to end(); otherwise GB/s from its bytes.
  int kind(std::string_view name, bool gemm = false);
  // Brackets one op of `kind` on `stream`. `flops` / `bytes`: the work the op does (for the
  // achieved rates). A failed event call is kept and returned by collect().
  void begin(cudaStream_t stream, int kind);
  void end(cudaStream_t stream, int kind, double flops, double bytes);
  // After the stream has reached every end(): adds the pending pairs' times to their kinds.
  Status collect();
  // Host wall time of one pass (forward()), and the GPU-busy time of its pairs.
  void add_wall(double ms);

  struct Row {
    std::string name;
    bool gemm = false;
    int64_t calls = 0;
    double ms = 0.0;
    double flops = 0.0;
    double bytes = 0.0;
  };
  std::vector<Row> rows() const;
  double wall_ms() const;
  double busy_ms() const;  // the sum of every row's ms
  int64_t passes() const;
  // Zeroes the totals (kinds stay), e.g. after warm-up passes.
  void reset();

 private:
  struct Pending {
    int kind;
    size_t begin_event, end_event;
    double flops, bytes;
  };
  cudaEvent_t event_at(size_t i);

  // Recording thread only.
  std::vector<cudaEvent_t> pool_;
  size_t used_ = 0;
  std::vector<Pending> pending_;
  std::vector<size_t> open_;  // per kind: the begin event of its open op
  Status error_ = Status::ok();

  mutable std::mutex mu_;  // guards rows_, wall_ms_, passes_
  std::vector<Row> rows_;
  double wall_ms_ = 0.0;
  int64_t passes_ = 0;
};

// Brackets `f()` (returning Status) as one op of `kind` on `stream` when `timer` is set; just
// runs it otherwise (the backends' unprofiled passes).
template <typename F>
Status time_op(OpTimer* timer, cudaStream_t stream, int kind, double flops, double bytes, F&& f) {
  if (timer == nullptr) return f();
  timer->begin(stream, kind);
  Status st = f();
  timer->end(stream, kind, flops, bytes);
  return st;
}

}  // namespace turbine::cuda
